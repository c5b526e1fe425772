/* SPDX-License-Identifier: BSD-2-Clause */
/* The CA key sets and their rotation. Each CA (user, host) has a current key, the one that
 * signs, and during a rotation's overlap also the previous one, which is still trusted:
 *   DIR/ca_KIND.key       the key before a rotation, the only key outside one
 *   DIR/ca_KIND.next.key  the new key during the overlap (PEM PKCS#8, 0600, like the first)
 * Table ca_rotations records each rotation (old and new public key, start, planned overlap end,
 * finish). rotate writes the next key file, then commits the row; finish commits, then renames
 * the next key over the old one; a start after a crash between the two completes the rename.
 * Every key is read and used under one lock: rotation may happen while requests sign. */
#ifndef CP_CA_KEYS_H
#define CP_CA_KEYS_H
#include "cp_users.h"
#include "pc_cert.h"
#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

enum cp_ca_kind { CP_CA_USER = 0, CP_CA_HOST = 1 };

#define CP_CA_OVERLAP_DEFAULT 86400    /* 1 day */
#define CP_CA_OVERLAP_MAX (90 * 86400) /* 90 days */

/* Loads both CA sets (the database must be open), creating missing keys of type "ed25519",
 * "ecdsa" (P-256) or "rsa" (3072 bits) on a first start, and completing an interrupted finish. */
int cp_ca_init(const char *dir, const char *type, char *err, size_t errsz);
void cp_ca_free(void);
/* PostgreSQL: copies the CA keys from the database into DIR (cp_secrets_pull) and loads both
 * sets again, so a rotation started or finished on another instance applies here too (run on a
 * CA notice, cp_notify.h). A failure is logged and keeps the keys in use. No-op on SQLite. */
void cp_ca_reload(void);

/* "TYPE BASE64 portcullis-user-ca" / "… portcullis-host-ca" of the current (signing) key. The
 * string stays valid until cp_ca_free, also after a rotation. */
const char *cp_ca_user_line(void);
const char *cp_ca_host_line(void);
/* Every trusted key line of a CA, the current one first (a JSON array of strings). */
json_object *cp_ca_lines_json(enum cp_ca_kind kind);
/* 1 if key is a trusted key of the user CA (current or, during an overlap, previous). */
int cp_ca_user_trusts(const struct pc_sshkey *key);

/* Signs cr with the current key of the CA for cr->type (certificate line, malloc'ed). */
int cp_ca_sign_line(const struct pc_cert_req *cr, const char *comment, char **line);

/* Public copies of the trusted keys of a CA (at most 2), for the KRL; free each. */
int cp_ca_trusted_public(enum cp_ca_kind kind, struct pc_sshkey *out[2], size_t *n);

/* Starts a rotation: a new key of the current key's type signs from now on; the old one stays
 * trusted. overlap: seconds until finish may run without now (0..CP_CA_OVERLAP_MAX).
 * PC_ERR_EXISTS if a rotation of that CA is already in its overlap. *out: the status. */
int cp_ca_rotate(const struct cp_who *who, enum cp_ca_kind kind, int64_t overlap,
                 json_object **out);
/* Ends the overlap: the old key is no longer trusted (and is revoked in the KRL).
 * PC_ERR_NOTFOUND without a rotation in its overlap; PC_ERR_STATE before the overlap's end
 * unless now. *out: the status. */
int cp_ca_finish(const struct cp_who *who, enum cp_ca_kind kind, int now, json_object **out);
/* {"phase":"stable"|"overlap","keys":[{"role","public_key","fingerprint"}],"since",
 *  "overlap_end"(overlap only)} of one CA. */
int cp_ca_status(enum cp_ca_kind kind, json_object **out);
/* SHA-256-revocable public keys of every retired CA key (finished rotations), for the KRL;
 * host_only: only the host CA's. Free each and the array. */
int cp_ca_retired_public(int host_only, struct pc_sshkey ***out, size_t *n);

#endif
