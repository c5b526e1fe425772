/* SPDX-License-Identifier: BSD-2-Clause */
/* Helpers on one SQLite connection (see cp_sql.h). */
#include "config.h"
#include "cp_sql.h"
#include "cp_metrics.h"
#include "pc_err.h"
#include "pc_log.h"
#include <stddef.h>

int cp_tx_begin(sqlite3 *db)
{
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        pc_metric_inc(&cp_m_store_errors, "begin", NULL, NULL);
        pc_log(PC_LOG_ERR, "event=store_begin error=\"%s\"", sqlite3_errmsg(db));
        return PC_ERR_STORE;
    }
    return PC_OK;
}

int cp_tx_commit(sqlite3 *db)
{
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        pc_metric_inc(&cp_m_store_errors, "commit", NULL, NULL);
        pc_log(PC_LOG_ERR, "event=store_commit error=\"%s\"", sqlite3_errmsg(db));
        cp_tx_rollback(db);
        return PC_ERR_STORE;
    }
    return PC_OK;
}

void cp_tx_rollback(sqlite3 *db)
{
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

sqlite3_stmt *cp_prepare(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        pc_metric_inc(&cp_m_store_errors, "prepare", NULL, NULL);
        pc_log(PC_LOG_ERR, "event=store_prepare error=\"%s\"", sqlite3_errmsg(db));
        return NULL;
    }
    return st;
}

int cp_bind_text(sqlite3_stmt *st, int idx, const char *s)
{
    if (!s)
        return sqlite3_bind_null(st, idx);
    return sqlite3_bind_text(st, idx, s, -1, SQLITE_TRANSIENT);
}

int cp_exec_stmt(sqlite3_stmt *st)
{
    int rc;
    if (!st)
        return PC_ERR_STORE;
    rc = sqlite3_step(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        pc_metric_inc(&cp_m_store_errors, "step", NULL, NULL);
        pc_log(PC_LOG_ERR, "event=store_step error=\"%s\"", sqlite3_errmsg(sqlite3_db_handle(st)));
    }
    sqlite3_finalize(st);
    return (rc == SQLITE_DONE || rc == SQLITE_ROW) ? PC_OK : PC_ERR_STORE;
}

const char *cp_col_text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? (const char *)t : "";
}
