/* SPDX-License-Identifier: BSD-2-Clause */
/* Web Push subscriptions: the store the session endpoints and the web app call (cp_webpush.h). */
#include "config.h"
#include "cp_audit.h"
#include "cp_store.h"
#include "cp_users.h"
#include "cp_webpush.h"
#include "pc_err.h"
#include "pc_mem.h"
#include "pc_time.h"
#include "pc_webpush.h"
#include <stdio.h>
#include <string.h>

static json_object *sub_json(int64_t id, const char *endpoint, int64_t created_at)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_int64(id));
    json_object_object_add(o, "endpoint", json_object_new_string(endpoint));
    json_object_object_add(o, "created_at", json_object_new_int64(created_at));
    return o;
}

static int audit(cp_conn *db, const char *action, const char *user, const char *source,
                 const char *reason)
{
    char actor[80];
    struct cp_audit_row row = { .actor = actor,
                                .action = action,
                                .user = user,
                                .result = "ok",
                                .reason = reason,
                                .source = source };
    snprintf(actor, sizeof actor, "session:%s", user);
    return cp_audit_add(db, &row);
}

int cp_webpush_subscribe(const char *user, const char *source, const char *endpoint,
                         const char *p256dh, const char *auth, const char **bad_field,
                         json_object **out)
{
    unsigned char pub[PC_WEBPUSH_PUB_LEN], sec[PC_WEBPUSH_AUTH_LEN];
    char origin[PC_WEBPUSH_ENDPOINT_MAX + 1], reason[PC_WEBPUSH_ENDPOINT_MAX + 32];
    cp_conn *db;
    cp_stmt *st = NULL;
    struct cp_user_rec u;
    size_t n = 0;
    int64_t now = pc_now(), count = 0, id = 0;
    int rc;

    *out = NULL;
    *bad_field = NULL;
    if (!pc_webpush_endpoint_valid(endpoint) ||
        pc_webpush_origin(endpoint, origin, sizeof origin) != PC_OK)
        *bad_field = "endpoint";
    else if (pc_b64url_decode(p256dh, pub, sizeof pub, &n) != PC_OK || n != sizeof pub ||
             !pc_webpush_point_valid(pub))
        *bad_field = "p256dh";
    else if (pc_b64url_decode(auth, sec, sizeof sec, &n) != PC_OK || n != sizeof sec)
        *bad_field = "auth";
    if (*bad_field) {
        pc_wipe(sec, sizeof sec);
        return PC_ERR_INVAL;
    }
    if (!(db = cp_db()) || cp_tx_begin(db) != PC_OK) {
        pc_wipe(sec, sizeof sec);
        return PC_ERR_STORE;
    }
    if ((rc = cp_user_load(db, user, &u)) != PC_OK || !u.enabled) {
        rc = rc == PC_OK ? PC_ERR_NOTFOUND : rc;
        goto out;
    }
    rc = PC_ERR_STORE;
    if (!(st = cp_prepare(
              db, "SELECT COUNT(*), COALESCE(SUM(CASE WHEN endpoint = ? THEN 1 ELSE 0 END), 0) FROM"
                  " webpush_subscriptions WHERE user_id = ?")))
        goto out;
    cp_bind_text(st, 1, endpoint);
    cp_bind_int64(st, 2, u.id);
    if (cp_step(st) != CP_ROW)
        goto out;
    count = cp_col_int64(st, 0);
    if (cp_col_int64(st, 1) == 0 && count >= CP_WEBPUSH_MAX_PER_USER) {
        rc = PC_ERR_TOOBIG;
        goto out;
    }
    cp_finalize(st);
    st = cp_prepare(db, "INSERT INTO webpush_subscriptions(user_id, endpoint, p256dh, auth,"
                        " created_at) VALUES (?,?,?,?,?) ON CONFLICT(user_id, endpoint) DO UPDATE"
                        " SET p256dh = excluded.p256dh, auth = excluded.auth,"
                        " created_at = excluded.created_at RETURNING id");
    if (!st)
        goto out;
    cp_bind_int64(st, 1, u.id);
    cp_bind_text(st, 2, endpoint);
    cp_bind_blob(st, 3, pub, sizeof pub);
    cp_bind_blob(st, 4, sec, sizeof sec);
    cp_bind_int64(st, 5, now);
    if (cp_step(st) != CP_ROW)
        goto out;
    id = cp_col_int64(st, 0);
    cp_finalize(st);
    st = NULL;
    snprintf(reason, sizeof reason, "subscription %lld at %s", (long long)id, origin);
    if ((rc = audit(db, "webpush.subscribe", user, source, reason)) != PC_OK)
        goto out;
    rc = cp_tx_commit(db);
    if (rc == PC_OK)
        *out = sub_json(id, endpoint, now);
out:
    if (st)
        cp_finalize(st);
    if (rc != PC_OK)
        cp_tx_rollback(db);
    pc_wipe(sec, sizeof sec);
    pc_wipe(&u, sizeof u);
    return rc;
}

int cp_webpush_unsubscribe(const char *user, const char *source, int64_t id)
{
    cp_conn *db = cp_db();
    cp_stmt *st;
    char reason[64];
    int rc;

    if (!db || cp_tx_begin(db) != PC_OK)
        return PC_ERR_STORE;
    st = cp_prepare(db, "DELETE FROM webpush_subscriptions WHERE id = ? AND user_id ="
                        " (SELECT id FROM users WHERE name = ?)");
    if (!st) {
        rc = PC_ERR_STORE;
        goto out;
    }
    cp_bind_int64(st, 1, id);
    cp_bind_text(st, 2, user);
    if ((rc = cp_exec_stmt(st)) != PC_OK)
        goto out;
    if (cp_changes(db) == 0) {
        rc = PC_ERR_NOTFOUND;
        goto out;
    }
    snprintf(reason, sizeof reason, "subscription %lld", (long long)id);
    if ((rc = audit(db, "webpush.unsubscribe", user, source, reason)) == PC_OK)
        rc = cp_tx_commit(db);
out:
    if (rc != PC_OK)
        cp_tx_rollback(db);
    return rc;
}

int cp_webpush_list(const char *user, json_object **out)
{
    cp_conn *db = cp_db();
    cp_stmt *st;
    json_object *arr;
    int rc;

    *out = NULL;
    if (!db || !(st = cp_prepare(db, "SELECT s.id, s.endpoint, s.created_at FROM"
                                     " webpush_subscriptions s JOIN users u ON u.id = s.user_id"
                                     " WHERE u.name = ? ORDER BY s.id")))
        return PC_ERR_STORE;
    cp_bind_text(st, 1, user);
    arr = json_object_new_array();
    while ((rc = cp_step(st)) == CP_ROW)
        json_object_array_add(arr, sub_json(cp_col_int64(st, 0), cp_col_text(st, 1),
                                            cp_col_int64(st, 2)));
    cp_finalize(st);
    if (rc != CP_DONE) {
        json_object_put(arr);
        return PC_ERR_STORE;
    }
    *out = json_object_new_object();
    json_object_object_add(*out, "subscriptions", arr);
    return PC_OK;
}
