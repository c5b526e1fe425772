/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "cp_userkeys.h"
#include "cp_audit.h"
#include "cp_ca.h"
#include "cp_store.h"
#include "pc_err.h"
#include "pc_json.h"
#include "pc_time.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cp_userkey_parse(const char *line, struct pc_sshkey **key, char **comment)
{
    *key = NULL;
    if (comment)
        *comment = NULL;
    if (strlen(line) > PC_SSHKEY_LINE_MAX || !pc_text_is_clean(line, 0))
        return PC_ERR_PARSE;
    return pc_sshkey_parse_line(line, key, comment) == PC_OK ? PC_OK : PC_ERR_PARSE;
}

int cp_userkey_insert(cp_conn *db, int64_t user_id, const char *line, char fp[PC_SSHKEY_FP_SIZE],
                      const char **type)
{
    struct pc_sshkey *k = NULL;
    char *comment = NULL, *plain = NULL;
    cp_stmt *st;
    int rc;

    if ((rc = cp_userkey_parse(line, &k, &comment)) != PC_OK)
        return rc;
    if ((rc = pc_sshkey_fingerprint(k, fp)) != PC_OK ||
        (rc = pc_sshkey_to_line(k, NULL, &plain)) != PC_OK)
        goto out;
    *type = pc_sshkey_type_name(k->type);
    if (!(st = cp_prepare(db, "INSERT INTO user_ssh_keys(user_id, fingerprint, type, public_key,"
                              " comment, added_at) VALUES (?,?,?,?,?,?)"))) {
        rc = PC_ERR_STORE;
        goto out;
    }
    cp_bind_int64(st, 1, user_id);
    cp_bind_text(st, 2, fp);
    cp_bind_text(st, 3, *type);
    cp_bind_text(st, 4, plain);
    cp_bind_text(st, 5, comment && pc_text_is_clean(comment, 0) ? comment : NULL);
    cp_bind_int64(st, 6, pc_now());
    rc = cp_step(st);
    cp_finalize(st);
    rc = rc == CP_DONE ? PC_OK : rc == CP_CONSTRAINT ? PC_ERR_EXISTS : PC_ERR_STORE;
out:
    pc_sshkey_free(k);
    free(comment);
    free(plain);
    return rc;
}

static int64_t user_id(cp_conn *db, const char *name)
{
    cp_stmt *st = cp_prepare(db, "SELECT id FROM users WHERE name = ?");
    int64_t id = 0;
    if (!st)
        return -1;
    cp_bind_text(st, 1, name);
    if (cp_step(st) == CP_ROW)
        id = cp_col_int64(st, 0);
    cp_finalize(st);
    return id;
}

static int audit_key(cp_conn *db, const struct cp_who *who, const char *action, const char *user,
                     const char *fp)
{
    struct cp_audit_row row = { .actor = who->actor,
                                .action = action,
                                .user = user,
                                .result = "ok",
                                .reason = fp,
                                .source = who->source };
    return cp_audit_add(db, &row);
}

int cp_userkey_add(const struct cp_who *who, const char *user, const char *line,
                   char fp[PC_SSHKEY_FP_SIZE], const char **type)
{
    cp_conn *db = cp_db();
    int64_t id;
    int rc;

    if (!db || cp_tx_begin(db) != PC_OK)
        return PC_ERR_STORE;
    id = user_id(db, user);
    rc = id < 0 ? PC_ERR_STORE : id == 0 ? PC_ERR_NOTFOUND : PC_OK;
    if (rc == PC_OK && (rc = cp_userkey_insert(db, id, line, fp, type)) == PC_OK &&
        (rc = audit_key(db, who, "key.add", user, fp)) == PC_OK)
        rc = cp_tx_commit(db);
    if (rc != PC_OK)
        cp_tx_rollback(db);
    return rc;
}

int cp_userkey_list(const char *user, json_object **out)
{
    cp_conn *db = cp_db();
    cp_stmt *st;
    json_object *arr;
    int64_t id;
    int rc;

    if (!db)
        return PC_ERR_STORE;
    if ((id = user_id(db, user)) <= 0)
        return id < 0 ? PC_ERR_STORE : PC_ERR_NOTFOUND;
    if (!(st = cp_prepare(db, "SELECT fingerprint, type, comment, added_at FROM user_ssh_keys"
                              " WHERE user_id = ? ORDER BY added_at, fingerprint")))
        return PC_ERR_STORE;
    cp_bind_int64(st, 1, id);
    arr = json_object_new_array();
    while ((rc = cp_step(st)) == CP_ROW) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "fingerprint", json_object_new_string(cp_col_text(st, 0)));
        json_object_object_add(o, "type", json_object_new_string(cp_col_text(st, 1)));
        json_object_object_add(o, "comment",
                               cp_col_is_null(st, 2) ? NULL
                                                     : json_object_new_string(cp_col_text(st, 2)));
        json_object_object_add(o, "added_at", json_object_new_int64(cp_col_int64(st, 3)));
        json_object_array_add(arr, o);
    }
    cp_finalize(st);
    if (rc != CP_DONE) {
        json_object_put(arr);
        return PC_ERR_STORE;
    }
    *out = arr;
    return PC_OK;
}

int cp_userkey_delete(const struct cp_who *who, const char *user, const char *fp)
{
    cp_conn *db = cp_db();
    cp_stmt *st;
    int64_t id;
    int rc;

    if (!db || cp_tx_begin(db) != PC_OK)
        return PC_ERR_STORE;
    id = user_id(db, user);
    rc = id < 0 ? PC_ERR_STORE : id == 0 ? PC_ERR_NOTFOUND : PC_OK;
    if (rc == PC_OK) {
        st = cp_prepare(db, "DELETE FROM user_ssh_keys WHERE user_id = ? AND fingerprint = ?");
        if (st) {
            cp_bind_int64(st, 1, id);
            cp_bind_text(st, 2, fp);
        }
        rc = cp_exec_stmt(st);
        if (rc == PC_OK && cp_changes(db) == 0)
            rc = PC_ERR_NOTFOUND;
    }
    /* Nothing the key vouched for outlives it: its certificates, its sessions. */
    if (rc == PC_OK && (rc = audit_key(db, who, "key.delete", user, fp)) == PC_OK &&
        (rc = cp_ca_revoke_user_key(db, user, fp, who->actor, who->source)) == PC_OK)
        rc = cp_tx_commit(db);
    if (rc != PC_OK)
        cp_tx_rollback(db);
    return rc;
}

int cp_userkey_find(cp_conn *db, int64_t uid, const char *fp, struct pc_sshkey **key)
{
    cp_stmt *st = cp_prepare(db, "SELECT public_key FROM user_ssh_keys WHERE user_id = ?"
                                 " AND fingerprint = ?");
    int rc;

    if (key)
        *key = NULL;
    if (!st)
        return PC_ERR_STORE;
    cp_bind_int64(st, 1, uid);
    cp_bind_text(st, 2, fp);
    rc = cp_step(st);
    if (rc == CP_ROW) /* parsing makes an OpenSSL key object: only when the caller needs it */
        rc = key ? pc_sshkey_parse_line(cp_col_text(st, 0), key, NULL) : PC_OK;
    else
        rc = rc == CP_DONE ? PC_ERR_NOTFOUND : PC_ERR_STORE;
    cp_finalize(st);
    return rc;
}
