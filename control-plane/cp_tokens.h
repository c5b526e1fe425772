/* SPDX-License-Identifier: BSD-2-Clause */
/* Bearer tokens (admin, host) and enrollment tokens. Only SHA-256 hashes are stored. */
#ifndef CP_TOKENS_H
#define CP_TOKENS_H
#include "cp_users.h"
#include "pc_sshkey.h"
#include <json-c/json.h>
#include "cp_sql.h"
#include <stddef.h>
#include <stdint.h>

enum cp_caller {
    CP_CALLER_NONE = 0,
    CP_CALLER_BAD,
    CP_CALLER_HOST,
    CP_CALLER_ADMIN,
    CP_CALLER_SESSION
};

struct cp_identity {
    enum cp_caller kind;
    int64_t host_id; /* for CP_CALLER_HOST */
    char hostname[256];
    char user[64];      /* for CP_CALLER_SESSION */
    int64_t expires_at; /* session, admin, host: when the credential expires (0: never) */
};

/* A host certificate to issue at enrollment (POST /v1/enroll with host_key). */
struct cp_enroll_cert {
    const struct pc_sshkey *host_key;
    json_object *principals; /* extra principals (strings, checked), may be NULL */
    char *line;              /* out: the certificate line (malloc'ed) */
};

/* Reads DIR/admin.token, creating it (0600) and its hash row on first start. */
int cp_admin_token_ensure(const char *dir, char *err, size_t errsz);
/* Classifies the value of an Authorization header (may be NULL). */
void cp_identify(const char *authorization, struct cp_identity *id);

/* A single-use enrollment token for host hostname (host principals: hostname and principals, or
 * hostname and its first label without them; checked), with labels, valid ttl seconds.
 * PC_ERR_EXISTS if an enrolled host has that name. */
int cp_enroll_token_create(const struct cp_who *who, const char *hostname, json_object *principals,
                           json_object *labels, int64_t ttl, char token[65], int64_t *expires_at);
/* Redeems an enrollment token as the host it names (copied to name_out): PC_ERR_AUTH if unknown,
 * used or expired; PC_ERR_STATE (token left unused) if hostname (may be NULL) or a principal of
 * cert differs from the token's; PC_ERR_EXISTS if an enrolled host has the name. */
int cp_host_enroll(const struct cp_who *who, const char *token, const char *hostname,
                   struct cp_enroll_cert *cert, int64_t *host_id, char host_token[65],
                   char *name_out, size_t name_sz);
/* 1 if an enrolled (not deleted) host has this name (or on error). */
int cp_host_name_taken(cp_conn *db, const char *hostname);
int cp_hosts_list(json_object **out);

#endif
