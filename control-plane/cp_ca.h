/* SPDX-License-Identifier: BSD-2-Clause */
/* The certificate authority: certificate issuance with serials from table certs, revocation
 * and the KRL (the keys and their rotation: cp_ca_keys.h). */
#ifndef CP_CA_H
#define CP_CA_H
#include "cp_ca_keys.h"
#include "cp_users.h"
#include "pc_cert.h"
#include <json-c/json.h>
#include "cp_sql.h"
#include <stdint.h>

struct cp_issue_req {
    enum pc_cert_type type;
    const struct pc_sshkey *subject;
    const char *key_id;
    const char *const *principals;
    size_t n_principals;
    const char *user_name; /* user certificates */
    int64_t host_id;       /* host certificates */
    int64_t ttl;
    int64_t not_after; /* > 0: valid_before is never later (what vouched for it expires) */
    const struct pc_cert_opt *critical;
    size_t n_critical;
    const struct pc_cert_opt *extensions;
    size_t n_extensions;
    const char *actor, *source; /* for the cert.issue audit row */
};

struct cp_issued {
    char *line; /* the -cert.pub line (malloc'ed) */
    uint64_t serial;
    int64_t valid_after, valid_before;
};

/* In the caller's transaction: takes the next serial, signs, records and audits. */
int cp_ca_issue(cp_conn *db, const struct cp_issue_req *req, struct cp_issued *out);
void cp_issued_free(struct cp_issued *i);

/* In the caller's transaction: revokes every certificate of user, drops the user's sessions,
 * and (deleted) revokes the key id; bumps the KRL version. */
int cp_ca_revoke_user(cp_conn *db, const char *user, int deleted);
/* In the caller's transaction, when user's key fp is deleted: revokes every user certificate
 * issued to user for that key, ends the user's sessions created with it (and those whose key
 * is unknown), bumps the KRL version, and audits cert.revoke (reason: the fingerprint and the
 * serials) as actor. */
int cp_ca_revoke_user_key(cp_conn *db, const char *user, const char *fp, const char *actor,
                          const char *source);
/* In the caller's transaction: the KRL changed (a user was enabled or disabled). */
int cp_ca_bump_krl(cp_conn *db);
/* serial > 0: that certificate (PC_ERR_NOTFOUND if unknown); else every certificate with
 * key_id, and the key id itself. *revoked: JSON array of the serials. Audited cert.revoke. */
int cp_ca_revoke(const struct cp_who *who, int64_t serial, const char *key_id,
                 json_object **revoked);
/* The current KRL bytes and version. */
int cp_ca_krl(unsigned char **out, size_t *len, uint64_t *version);
/* GET /v1/krl/host: the same, with only the host CA's revoked certificates (for a client's
 * RevokedHostKeys). */
int cp_ca_krl_host(unsigned char **out, size_t *len, uint64_t *version);
/* Certificates, optionally of one user, oldest first. */
int cp_ca_list(const char *user, json_object **out);
/* 1 if key id is revoked by key id (admin revocation or deleted user), or its user disabled. */
int cp_ca_key_id_revoked(cp_conn *db, const char *key_id);

#endif
