/* SPDX-License-Identifier: BSD-2-Clause */
/* Users' registered SSH public keys: what `portcullis login` proves possession of. */
#ifndef CP_USERKEYS_H
#define CP_USERKEYS_H
#include "cp_users.h"
#include "pc_sshkey.h"
#include <json-c/json.h>
#include "cp_sql.h"
#include <stdint.h>

/* Parses a public key line (no certificates, DSA or FIDO keys). */
int cp_userkey_parse(const char *line, struct pc_sshkey **key, char **comment);
/* In the caller's transaction: registers line for user_id. PC_ERR_EXISTS if present. */
int cp_userkey_insert(cp_conn *db, int64_t user_id, const char *line, char fp[PC_SSHKEY_FP_SIZE],
                      const char **type);
/* POST /v1/users/{name}/keys: PC_ERR_NOTFOUND (user), PC_ERR_EXISTS, PC_ERR_PARSE (line). */
int cp_userkey_add(const struct cp_who *who, const char *user, const char *line,
                   char fp[PC_SSHKEY_FP_SIZE], const char **type);
int cp_userkey_list(const char *user, json_object **out);
int cp_userkey_delete(const struct cp_who *who, const char *user, const char *fp);
/* In the caller's transaction: the registered key of user_id with fingerprint fp (key NULL:
 * only whether it is registered; PC_ERR_NOTFOUND when not). */
int cp_userkey_find(cp_conn *db, int64_t user_id, const char *fp, struct pc_sshkey **key);

#endif
