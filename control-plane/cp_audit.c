/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "cp_audit.h"
#include "cp_store.h"
#include "pc_err.h"
#include "pc_time.h"
#include <stdlib.h>
#include <string.h>

/* Test builds: the audit row of the user named in PC_TEST_AUDIT_NULL_USER is written with a NULL
 * action, so its INSERT hits the NOT NULL constraint after the job's other writes (tests of
 * cp_store_write: a failing job in a batch is undone alone). */
static const char *action_of(const struct cp_audit_row *r)
{
#ifdef PC_TEST_HOOKS
    const char *u = getenv("PC_TEST_AUDIT_NULL_USER");
    if (u && *u && r->user && strcmp(u, r->user) == 0)
        return NULL;
#endif
    return r->action;
}

int cp_audit_add(cp_conn *db, const struct cp_audit_row *r)
{
    cp_stmt *st = cp_prepare(
        db, "INSERT INTO audit(time, actor, action, user_name, host, result, reason, txid, source)"
            " VALUES (?,?,?,?,?,?,?,?,?)");
    if (!st)
        return PC_ERR_STORE;
    cp_bind_int64(st, 1, pc_now());
    cp_bind_text(st, 2, r->actor ? r->actor : "system");
    cp_bind_text(st, 3, action_of(r));
    cp_bind_text(st, 4, r->user);
    cp_bind_text(st, 5, r->host);
    cp_bind_text(st, 6, r->result ? r->result : "ok");
    cp_bind_text(st, 7, r->reason);
    cp_bind_text(st, 8, r->txid);
    cp_bind_text(st, 9, r->source);
    return cp_exec_stmt(st);
}

static void add_text(json_object *o, const char *key, cp_stmt *st, int col)
{
    if (cp_col_is_null(st, col))
        json_object_object_add(o, key, NULL);
    else
        json_object_object_add(o, key, json_object_new_string(cp_col_text(st, col)));
}

/* The rows of a SELECT id, time, actor, action, user_name, host, result, reason, txid, source. */
static int rows_json(cp_stmt *st, json_object **out)
{
    json_object *arr = json_object_new_array();
    int rc;

    while ((rc = cp_step(st)) == CP_ROW) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_int64(cp_col_int64(st, 0)));
        json_object_object_add(o, "time", json_object_new_int64(cp_col_int64(st, 1)));
        add_text(o, "actor", st, 2);
        add_text(o, "action", st, 3);
        add_text(o, "user", st, 4);
        add_text(o, "host", st, 5);
        add_text(o, "result", st, 6);
        add_text(o, "reason", st, 7);
        add_text(o, "txid", st, 8);
        add_text(o, "source", st, 9);
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

int cp_audit_query(cp_conn *db, const char *user, int64_t since, int64_t limit, json_object **out)
{
    /* Newest `limit` rows, returned oldest first. */
    cp_stmt *st = cp_prepare(
        db, "SELECT * FROM (SELECT id, time, actor, action, user_name, host, result, reason, txid,"
            " source FROM audit WHERE time >= ?1 AND (CAST(?2 AS TEXT) IS NULL OR user_name = ?2)"
            " ORDER BY id DESC LIMIT ?3) AS newest ORDER BY id ASC");

    if (!st)
        return PC_ERR_STORE;
    cp_bind_int64(st, 1, since);
    cp_bind_text(st, 2, user);
    cp_bind_int64(st, 3, limit);
    return rows_json(st, out);
}

int cp_audit_query_txid(cp_conn *db, const char *txid, int64_t limit, json_object **out)
{
    cp_stmt *st =
        cp_prepare(db,
                   "SELECT id, time, actor, action, user_name, host, result, reason, txid, source"
                   " FROM audit WHERE txid = ? ORDER BY id ASC LIMIT ?");

    if (!st)
        return PC_ERR_STORE;
    cp_bind_text(st, 1, txid);
    cp_bind_int64(st, 2, limit);
    return rows_json(st, out);
}
