/* SPDX-License-Identifier: BSD-2-Clause */
/* Users, their groups and their TOTP seeds (sealed with the secrets key). */
#ifndef CP_USERS_H
#define CP_USERS_H
#include "pc_secretbox.h"
#include <json-c/json.h>
#include "cp_sql.h"
#include <stdint.h>

/* Who asked, for the audit row. */
struct cp_who {
    const char *actor;
    const char *source;
};

/* A (person, host) failure count starts over once this long has passed since its last failure
 * and its lock (cp_authtx.c): old typos never add up to a lock, a host that keeps guessing
 * keeps its back-off. */
#define CP_LOCKOUT_WINDOW 86400

struct cp_user_rec {
    int64_t id;
    int enabled;
    int push;
    int has_totp;
    int64_t last_step;
    int64_t failures;
    int64_t locked_until;      /* the lock on every host (per-host locks: auth_failures) */
    unsigned char sealed[128]; /* sealed seed as stored */
    size_t sealed_len;
};

void cp_users_set_key(const unsigned char key[PC_SECRETBOX_KEY_BYTES]);
int cp_user_name_valid(const char *name);

/* ssh_keys: array of public key lines (checked by the caller), may be NULL. */
int cp_user_add(const struct cp_who *who, const char *name, json_object *groups, int push,
                json_object *ssh_keys, json_object **out);
int cp_user_get(const char *name, json_object **out);
int cp_user_list(json_object **out);
/* enabled/push: -1 keeps the current value; groups NULL keeps them. */
int cp_user_update(const struct cp_who *who, const char *name, int enabled, json_object *groups,
                   int push, json_object **out);
int cp_user_delete(const struct cp_who *who, const char *name);
/* New seed; PC_ERR_EXISTS if one is set and !force. *uri is freed with pc_free_secret_str. */
int cp_user_totp_enroll(const struct cp_who *who, const char *name, int force, char **uri);

/* For the login path, inside the caller's transaction. */
int cp_user_in_group(cp_conn *db, int64_t user_id, const char *group);
int cp_user_load(cp_conn *db, const char *name, struct cp_user_rec *rec);
/* Opens the sealed seed into seed (>= 64 bytes); the caller wipes it. */
int cp_user_open_seed(const char *name, const struct cp_user_rec *rec, unsigned char *seed,
                      size_t seedsz, size_t *seedlen);

#endif
