/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "cp_users.h"
#include "cp_audit.h"
#include "cp_ca.h"
#include "cp_userkeys.h"
#include "cp_store.h"
#include "pc_err.h"
#include "pc_mem.h"
#include "pc_rand.h"
#include "pc_time.h"
#include "pc_totp.h"
#include <stdio.h>
#include <string.h>

static unsigned char secrets_key[PC_SECRETBOX_KEY_BYTES];

void cp_users_set_key(const unsigned char key[PC_SECRETBOX_KEY_BYTES])
{
    memcpy(secrets_key, key, sizeof secrets_key);
}

/* [a-z_][a-z0-9_.-]{0,31}: safe as a Unix user name and in every output we print. */
int cp_user_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 32)
        return 0;
    if (!((name[0] >= 'a' && name[0] <= 'z') || name[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

static int group_name_valid(const char *g)
{
    size_t n = strlen(g);
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = g[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

int cp_user_load(cp_conn *db, const char *name, struct cp_user_rec *rec)
{
    cp_stmt *st =
        cp_prepare(db, "SELECT id, enabled, push, totp_seed, totp_last_step, failures, locked_until"
                       " FROM users WHERE name = ?");
    int rc;

    memset(rec, 0, sizeof *rec);
    if (!st)
        return PC_ERR_STORE;
    cp_bind_text(st, 1, name);
    rc = cp_step(st);
    if (rc == CP_ROW) {
        int blen = cp_col_bytes(st, 3);
        rec->id = cp_col_int64(st, 0);
        rec->enabled = cp_col_int(st, 1);
        rec->push = cp_col_int(st, 2);
        if (!cp_col_is_null(st, 3) && blen > 0 && (size_t)blen <= sizeof rec->sealed) {
            memcpy(rec->sealed, cp_col_blob(st, 3), (size_t)blen);
            rec->sealed_len = (size_t)blen;
            rec->has_totp = 1;
        }
        rec->last_step = cp_col_int64(st, 4);
        rec->failures = cp_col_int64(st, 5);
        rec->locked_until = cp_col_int64(st, 6);
        rc = PC_OK;
    } else {
        rc = rc == CP_DONE ? PC_ERR_NOTFOUND : PC_ERR_STORE;
    }
    cp_finalize(st);
    return rc;
}

int cp_user_open_seed(const char *name, const struct cp_user_rec *rec, unsigned char *seed,
                      size_t seedsz, size_t *seedlen)
{
    char ad[64];
    snprintf(ad, sizeof ad, "totp:%s", name);
    return pc_secretbox_open(secrets_key, ad, rec->sealed, rec->sealed_len, seed, seedsz, seedlen);
}

int cp_user_in_group(cp_conn *db, int64_t user_id, const char *group)
{
    cp_stmt *st = cp_prepare(db, "SELECT 1 FROM user_groups WHERE user_id = ? AND grp = ?");
    int found;

    if (!st)
        return 0;
    cp_bind_int64(st, 1, user_id);
    cp_bind_text(st, 2, group);
    found = cp_step(st) == CP_ROW;
    cp_finalize(st);
    return found;
}

static json_object *groups_of(cp_conn *db, int64_t id)
{
    json_object *arr = json_object_new_array();
    cp_stmt *st = cp_prepare(db, "SELECT grp FROM user_groups WHERE user_id = ? ORDER BY grp");
    if (!st)
        return arr;
    cp_bind_int64(st, 1, id);
    while (cp_step(st) == CP_ROW)
        json_object_array_add(arr, json_object_new_string(cp_col_text(st, 0)));
    cp_finalize(st);
    return arr;
}

/* What the admin sees: the failures counted on every host, and the latest lock anywhere (the
 * fleet-wide lock or one host's). The audit rows say which host and which lock. */
static void lock_summary(cp_conn *db, const struct cp_user_rec *r, int64_t *failures,
                         int64_t *locked_until)
{
    cp_stmt *st = cp_prepare(db, "SELECT COALESCE(SUM(failures), 0), COALESCE(MAX(locked_until), 0)"
                                 " FROM auth_failures WHERE user_id = ?1"
                                 " AND (last_failure_at >= ?2 OR locked_until >= ?2)");
    *failures = 0;
    *locked_until = r->locked_until;
    if (!st)
        return;
    cp_bind_int64(st, 1, r->id);
    cp_bind_int64(st, 2, pc_now() - CP_LOCKOUT_WINDOW);
    if (cp_step(st) == CP_ROW) {
        *failures = cp_col_int64(st, 0);
        if (cp_col_int64(st, 1) > *locked_until)
            *locked_until = cp_col_int64(st, 1);
    }
    cp_finalize(st);
}

static json_object *user_json(cp_conn *db, const char *name, const struct cp_user_rec *r)
{
    json_object *o = json_object_new_object();
    int64_t failures, locked_until;

    lock_summary(db, r, &failures, &locked_until);
    json_object_object_add(o, "name", json_object_new_string(name));
    json_object_object_add(o, "groups", groups_of(db, r->id));
    json_object_object_add(o, "enabled", json_object_new_boolean(r->enabled));
    json_object_object_add(o, "push", json_object_new_boolean(r->push));
    json_object_object_add(o, "totp", json_object_new_boolean(r->has_totp));
    json_object_object_add(o, "failures", json_object_new_int64(failures));
    json_object_object_add(o, "locked_until",
                           json_object_new_int64(locked_until > pc_now() ? locked_until : 0));
    return o;
}

int cp_user_get(const char *name, json_object **out)
{
    cp_conn *db = cp_db();
    struct cp_user_rec r;
    int rc;

    if (!db)
        return PC_ERR_STORE;
    if ((rc = cp_user_load(db, name, &r)) == PC_OK)
        *out = user_json(db, name, &r);
    pc_wipe(&r, sizeof r);
    return rc;
}

int cp_user_list(json_object **out)
{
    cp_conn *db = cp_db();
    cp_stmt *st;
    json_object *arr;
    int rc;

    if (!db || !(st = cp_prepare(db, "SELECT name FROM users ORDER BY name")))
        return PC_ERR_STORE;
    arr = json_object_new_array();
    while ((rc = cp_step(st)) == CP_ROW) {
        json_object *u = NULL;
        if (cp_user_get(cp_col_text(st, 0), &u) == PC_OK)
            json_object_array_add(arr, u);
    }
    cp_finalize(st);
    if (rc != CP_DONE) {
        json_object_put(arr);
        return PC_ERR_STORE;
    }
    *out = arr;
    return PC_OK;
}

static int set_groups(cp_conn *db, int64_t id, json_object *groups)
{
    cp_stmt *st = cp_prepare(db, "DELETE FROM user_groups WHERE user_id = ?");
    size_t n = json_object_array_length(groups);

    if (!st)
        return PC_ERR_STORE;
    cp_bind_int64(st, 1, id);
    if (cp_exec_stmt(st) != PC_OK)
        return PC_ERR_STORE;
    for (size_t i = 0; i < n; i++) {
        const char *g = json_object_get_string(json_object_array_get_idx(groups, i));
        if (!group_name_valid(g))
            return PC_ERR_INVAL;
        st = cp_prepare(
            db, "INSERT INTO user_groups(user_id, grp) VALUES (?, ?) ON CONFLICT DO NOTHING");
        if (!st)
            return PC_ERR_STORE;
        cp_bind_int64(st, 1, id);
        cp_bind_text(st, 2, g);
        if (cp_exec_stmt(st) != PC_OK)
            return PC_ERR_STORE;
    }
    return PC_OK;
}

static int audit_admin(cp_conn *db, const struct cp_who *who, const char *action, const char *user,
                       const char *reason)
{
    struct cp_audit_row row = { .actor = who->actor,
                                .action = action,
                                .user = user,
                                .result = "ok",
                                .reason = reason,
                                .source = who->source };
    return cp_audit_add(db, &row);
}

/* A re-created user starts without the revocation its deleted namesake left behind (that
 * one's certificates stay revoked by serial). Then the user's SSH keys. */
static int fresh_user_keys(cp_conn *db, int64_t id, const char *name, json_object *ssh_keys)
{
    cp_stmt *st = cp_prepare(db, "DELETE FROM revoked_key_ids WHERE key_id = ? AND"
                                 " why = 'user_deleted'");
    int rc;

    if (st)
        cp_bind_text(st, 1, name);
    if ((rc = cp_exec_stmt(st)) != PC_OK)
        return rc;
    for (size_t i = 0; ssh_keys && i < json_object_array_length(ssh_keys); i++) {
        char fp[PC_SSHKEY_FP_SIZE];
        const char *type;
        rc = cp_userkey_insert(db, id,
                               json_object_get_string(json_object_array_get_idx(ssh_keys, i)), fp,
                               &type);
        if (rc != PC_OK && rc != PC_ERR_EXISTS)
            return rc == PC_ERR_PARSE ? PC_ERR_PARSE : rc;
    }
    return PC_OK;
}

int cp_user_add(const struct cp_who *who, const char *name, json_object *groups, int push,
                json_object *ssh_keys, json_object **out)
{
    cp_conn *db = cp_db();
    cp_stmt *st;
    int64_t id;
    int rc;

    if (!cp_user_name_valid(name))
        return PC_ERR_INVAL;
    if (!db || cp_tx_begin(db) != PC_OK)
        return PC_ERR_STORE;
    st = cp_prepare(db, "INSERT INTO users(name, push, created_at) VALUES (?, ?, ?) RETURNING id");
    if (!st) {
        rc = PC_ERR_STORE;
        goto out;
    }
    cp_bind_text(st, 1, name);
    cp_bind_int(st, 2, push ? 1 : 0);
    cp_bind_int64(st, 3, pc_now());
    if ((rc = cp_exec_stmt_id(st, &id)) != PC_OK)
        goto out;
    if (groups && (rc = set_groups(db, id, groups)) != PC_OK)
        goto out;
    if ((rc = fresh_user_keys(db, id, name, ssh_keys)) != PC_OK)
        goto out;
    if ((rc = audit_admin(db, who, "user.add", name, NULL)) != PC_OK)
        goto out;
    rc = cp_tx_commit(db);
out:
    if (rc != PC_OK)
        cp_tx_rollback(db);
    else
        rc = cp_user_get(name, out);
    return rc;
}

int cp_user_update(const struct cp_who *who, const char *name, int enabled, json_object *groups,
                   int push, json_object **out)
{
    cp_conn *db = cp_db();
    struct cp_user_rec r;
    cp_stmt *st;
    char what[64];
    int rc;

    if (!db || cp_tx_begin(db) != PC_OK)
        return PC_ERR_STORE;
    if ((rc = cp_user_load(db, name, &r)) != PC_OK)
        goto out;
    st = cp_prepare(db, "UPDATE users SET enabled = ?, push = ? WHERE id = ?");
    if (!st) {
        rc = PC_ERR_STORE;
        goto out;
    }
    cp_bind_int(st, 1, enabled < 0 ? r.enabled : enabled);
    cp_bind_int(st, 2, push < 0 ? r.push : push);
    cp_bind_int64(st, 3, r.id);
    if ((rc = cp_exec_stmt(st)) != PC_OK)
        goto out;
    if (groups && (rc = set_groups(db, r.id, groups)) != PC_OK)
        goto out;
    /* Disabling revokes every certificate of the user, in this transaction. */
    if (enabled == 0 && (rc = cp_ca_revoke_user(db, name, 0)) != PC_OK)
        goto out;
    if (enabled == 1 && (rc = cp_ca_bump_krl(db)) != PC_OK)
        goto out;
    snprintf(what, sizeof what, "%s%s%s",
             enabled == 0   ? "disabled "
             : enabled == 1 ? "enabled "
                            : "",
             groups ? "groups " : "",
             push == 0   ? "push_off"
             : push == 1 ? "push_on"
                         : "");
    if ((rc = audit_admin(db, who, "user.update", name, what)) != PC_OK)
        goto out;
    rc = cp_tx_commit(db);
out:
    pc_wipe(&r, sizeof r);
    if (rc != PC_OK)
        cp_tx_rollback(db);
    else
        rc = cp_user_get(name, out);
    return rc;
}

int cp_user_delete(const struct cp_who *who, const char *name)
{
    cp_conn *db = cp_db();
    cp_stmt *st;
    int rc;

    if (!db || cp_tx_begin(db) != PC_OK)
        return PC_ERR_STORE;
    st = cp_prepare(db, "DELETE FROM users WHERE name = ?");
    if (!st) {
        rc = PC_ERR_STORE;
        goto out;
    }
    cp_bind_text(st, 1, name);
    if ((rc = cp_exec_stmt(st)) != PC_OK)
        goto out;
    if (cp_changes(db) == 0) {
        rc = PC_ERR_NOTFOUND;
        goto out;
    }
    if ((rc = cp_ca_revoke_user(db, name, 1)) != PC_OK)
        goto out;
    if ((rc = audit_admin(db, who, "user.delete", name, NULL)) != PC_OK)
        goto out;
    rc = cp_tx_commit(db);
out:
    if (rc != PC_OK)
        cp_tx_rollback(db);
    return rc;
}

int cp_user_totp_enroll(const struct cp_who *who, const char *name, int force, char **uri)
{
    cp_conn *db = cp_db();
    struct cp_user_rec r;
    unsigned char seed[PC_TOTP_SECRET_BYTES], sealed[PC_TOTP_SECRET_BYTES + PC_SECRETBOX_OVERHEAD];
    size_t sealed_len = 0;
    char ad[64];
    cp_stmt *st;
    int rc;

    *uri = NULL;
    if (!db || cp_tx_begin(db) != PC_OK)
        return PC_ERR_STORE;
    if ((rc = cp_user_load(db, name, &r)) != PC_OK)
        goto out;
    if (r.has_totp && !force) {
        rc = PC_ERR_EXISTS;
        goto out;
    }
    snprintf(ad, sizeof ad, "totp:%s", name);
    if ((rc = pc_random_bytes(seed, sizeof seed)) != PC_OK ||
        (rc = pc_secretbox_seal(secrets_key, ad, seed, sizeof seed, sealed, sizeof sealed,
                                &sealed_len)) != PC_OK)
        goto out;
    /* A new seed starts a new replay history and clears any lock. */
    st = cp_prepare(db, "UPDATE users SET totp_seed = ?, totp_last_step = -1, failures = 0,"
                        " locked_until = 0 WHERE id = ?");
    if (!st) {
        rc = PC_ERR_STORE;
        goto out;
    }
    cp_bind_blob(st, 1, sealed, (int)sealed_len);
    cp_bind_int64(st, 2, r.id);
    if ((rc = cp_exec_stmt(st)) != PC_OK)
        goto out;
    if (!(st = cp_prepare(db, "DELETE FROM auth_failures WHERE user_id = ?"))) {
        rc = PC_ERR_STORE;
        goto out;
    }
    cp_bind_int64(st, 1, r.id);
    if ((rc = cp_exec_stmt(st)) != PC_OK)
        goto out;
    if ((rc = audit_admin(db, who, "totp.enroll", name, r.has_totp ? "replaced" : "new")) != PC_OK)
        goto out;
    if ((rc = pc_totp_uri(name, seed, sizeof seed, uri)) != PC_OK)
        goto out;
    rc = cp_tx_commit(db);
out:
    if (rc != PC_OK) {
        cp_tx_rollback(db);
        pc_free_secret_str(*uri);
        *uri = NULL;
    }
    pc_wipe(seed, sizeof seed);
    pc_wipe(&r, sizeof r);
    return rc;
}
