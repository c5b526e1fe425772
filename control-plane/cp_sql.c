/* SPDX-License-Identifier: BSD-2-Clause */
/* The store's SQL layer (cp_sql.h): SQLite here, PostgreSQL in cp_sql_pg.c. On SQLite a
 * cp_conn is the sqlite3 handle and a cp_stmt the sqlite3_stmt, so this side adds no memory and
 * no copy; only the result codes are mapped. */
#include "config.h"
#include "cp_sql.h"
#include "cp_metrics.h"
#include "cp_sql_pg.h"
#include "pc_err.h"
#include "pc_log.h"
#include <sqlite3.h>
#include <stddef.h>

static int use_pg; /* set once at start, before any thread runs SQL */

#define SQ(db) ((sqlite3 *)(void *)(db))
#define SST(st) ((sqlite3_stmt *)(void *)(st))

int cp_sql_is_pg(void)
{
    return use_pg;
}

void cp_sql_use_pg(int on)
{
    use_pg = on;
}

int cp_exec(cp_conn *db, const char *sql)
{
    if (use_pg)
        return cp_pg_exec(db, sql);
    if (sqlite3_exec(SQ(db), sql, NULL, NULL, NULL) == SQLITE_OK)
        return PC_OK;
    pc_log(PC_LOG_ERR, "event=store_exec error=\"%s\"", sqlite3_errmsg(SQ(db)));
    return PC_ERR_STORE;
}

int cp_tx_begin(cp_conn *db)
{
    int rc = use_pg ? cp_pg_tx_begin(db)
             : sqlite3_exec(SQ(db), "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK
                 ? PC_OK
                 : PC_ERR_STORE;
    if (rc != PC_OK) {
        pc_metric_inc(&cp_m_store_errors, "begin", NULL, NULL);
        pc_log(PC_LOG_ERR, "event=store_begin error=\"%s\"", cp_errmsg(db));
        return PC_ERR_STORE;
    }
    return PC_OK;
}

int cp_tx_commit(cp_conn *db)
{
    if (cp_exec(db, "COMMIT") != PC_OK) {
        pc_metric_inc(&cp_m_store_errors, "commit", NULL, NULL);
        pc_log(PC_LOG_ERR, "event=store_commit error=\"%s\"", cp_errmsg(db));
        cp_tx_rollback(db);
        return PC_ERR_STORE;
    }
    return PC_OK;
}

void cp_tx_rollback(cp_conn *db)
{
    if (!cp_autocommit(db))
        cp_exec(db, "ROLLBACK");
}

int cp_autocommit(cp_conn *db)
{
    return use_pg ? cp_pg_autocommit(db) : sqlite3_get_autocommit(SQ(db));
}

const char *cp_errmsg(cp_conn *db)
{
    return use_pg ? cp_pg_errmsg(db) : sqlite3_errmsg(SQ(db));
}

int64_t cp_changes(cp_conn *db)
{
    return use_pg ? cp_pg_changes(db) : sqlite3_changes(SQ(db));
}

cp_stmt *cp_prepare(cp_conn *db, const char *sql)
{
    sqlite3_stmt *st = NULL;

    if (use_pg) {
        cp_stmt *p = cp_pg_prepare(db, sql);
        if (!p)
            pc_metric_inc(&cp_m_store_errors, "prepare", NULL, NULL);
        return p;
    }
    if (sqlite3_prepare_v2(SQ(db), sql, -1, &st, NULL) != SQLITE_OK) {
        pc_metric_inc(&cp_m_store_errors, "prepare", NULL, NULL);
        pc_log(PC_LOG_ERR, "event=store_prepare error=\"%s\"", sqlite3_errmsg(SQ(db)));
        return NULL;
    }
    return (cp_stmt *)(void *)st;
}

static int bind_rc(int rc)
{
    return rc == SQLITE_OK ? PC_OK : PC_ERR_STORE;
}

int cp_bind_int64(cp_stmt *st, int idx, int64_t v)
{
    return use_pg ? cp_pg_bind_int64(st, idx, v) : bind_rc(sqlite3_bind_int64(SST(st), idx, v));
}

int cp_bind_int(cp_stmt *st, int idx, int v)
{
    return cp_bind_int64(st, idx, v);
}

int cp_bind_text(cp_stmt *st, int idx, const char *s)
{
    if (use_pg)
        return s ? cp_pg_bind_text(st, idx, s) : cp_pg_bind_null(st, idx);
    if (!s)
        return bind_rc(sqlite3_bind_null(SST(st), idx));
    return bind_rc(sqlite3_bind_text(SST(st), idx, s, -1, SQLITE_TRANSIENT));
}

int cp_bind_blob(cp_stmt *st, int idx, const void *p, int n)
{
    if (use_pg)
        return cp_pg_bind_blob(st, idx, p, n);
    return bind_rc(sqlite3_bind_blob(SST(st), idx, p, n, SQLITE_TRANSIENT));
}

int cp_bind_null(cp_stmt *st, int idx)
{
    return use_pg ? cp_pg_bind_null(st, idx) : bind_rc(sqlite3_bind_null(SST(st), idx));
}

int cp_step(cp_stmt *st)
{
    int rc;

    if (use_pg)
        return cp_pg_step(st);
    rc = sqlite3_step(SST(st));
    if (rc == SQLITE_ROW || rc == SQLITE_DONE)
        return rc; /* CP_ROW, CP_DONE */
    return (rc & 0xff) == SQLITE_CONSTRAINT ? CP_CONSTRAINT : CP_ERROR;
}

int cp_reset(cp_stmt *st)
{
    if (use_pg)
        return cp_pg_reset(st);
    sqlite3_reset(SST(st));
    return bind_rc(sqlite3_clear_bindings(SST(st)));
}

void cp_finalize(cp_stmt *st)
{
    if (use_pg)
        cp_pg_finalize(st);
    else
        sqlite3_finalize(SST(st));
}

int64_t cp_col_int64(cp_stmt *st, int col)
{
    return use_pg ? cp_pg_col_int64(st, col) : sqlite3_column_int64(SST(st), col);
}

int cp_col_int(cp_stmt *st, int col)
{
    return (int)cp_col_int64(st, col);
}

const char *cp_col_text(cp_stmt *st, int col)
{
    const unsigned char *t;

    if (use_pg)
        return cp_pg_col_text(st, col);
    t = sqlite3_column_text(SST(st), col);
    return t ? (const char *)t : "";
}

const void *cp_col_blob(cp_stmt *st, int col)
{
    return use_pg ? cp_pg_col_blob(st, col) : sqlite3_column_blob(SST(st), col);
}

int cp_col_bytes(cp_stmt *st, int col)
{
    return use_pg ? cp_pg_col_bytes(st, col) : sqlite3_column_bytes(SST(st), col);
}

int cp_col_is_null(cp_stmt *st, int col)
{
    return use_pg ? cp_pg_col_is_null(st, col) : sqlite3_column_type(SST(st), col) == SQLITE_NULL;
}

int cp_exec_stmt(cp_stmt *st)
{
    int rc;

    if (!st)
        return PC_ERR_STORE;
    rc = cp_step(st);
    if (rc != CP_DONE && rc != CP_ROW) {
        pc_metric_inc(&cp_m_store_errors, "step", NULL, NULL);
        pc_log(PC_LOG_ERR, "event=store_step error=\"%s\"",
               use_pg ? "see the statement's log line"
                      : sqlite3_errmsg(sqlite3_db_handle(SST(st))));
    }
    cp_finalize(st);
    return (rc == CP_DONE || rc == CP_ROW) ? PC_OK : PC_ERR_STORE;
}

int cp_exec_stmt_id(cp_stmt *st, int64_t *id)
{
    int rc;

    if (!st)
        return PC_ERR_STORE;
    rc = cp_step(st);
    if (rc == CP_ROW)
        *id = cp_col_int64(st, 0);
    cp_finalize(st);
    return rc == CP_ROW ? PC_OK : rc == CP_CONSTRAINT ? PC_ERR_EXISTS : PC_ERR_STORE;
}
