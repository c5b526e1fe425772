/* SPDX-License-Identifier: BSD-2-Clause */
/* The store's SQL layer: one connection, its statements and transactions, the same calls on
 * either back end — SQLite (the embedded default, cp_sql.c) or PostgreSQL (cp_sql_pg.c). The
 * calls mirror SQLite's C API (prepare, bind, step, column, finalize), so the store's code reads
 * the same on both; one process uses one back end (cp_sql_use_pg, before any connection).
 *
 * SQL written for both: '?' or '?N' parameters (PostgreSQL gets $N), INSERT … ON CONFLICT
 * instead of INSERT OR IGNORE/REPLACE, RETURNING instead of last_insert_rowid, no rowid, every
 * integer a 64-bit one (PostgreSQL's schema uses BIGINT), no bare integer as a condition. */
#ifndef CP_SQL_H
#define CP_SQL_H
#include <stddef.h>
#include <stdint.h>

typedef struct cp_conn cp_conn; /* a connection: sqlite3 *, or the PostgreSQL one */
typedef struct cp_stmt cp_stmt; /* a prepared statement with its binds and, once run, rows */

/* cp_step's answers; the values are SQLite's, so the SQLite side passes them through. */
enum { CP_ERROR = 1, CP_CONSTRAINT = 19, CP_ROW = 100, CP_DONE = 101 };

/* 1 when this process's store is PostgreSQL. */
int cp_sql_is_pg(void);
void cp_sql_use_pg(int on);

int cp_tx_begin(
    cp_conn *db); /* takes the write lock up front (BEGIN IMMEDIATE, or an advisory lock) */
int cp_tx_commit(cp_conn *db);
/* Commits that need not wait for the disk (group commit of logins begun, cp_store_write.c). An
 * unsynced commit is whole or absent after any crash: a crash of the process loses nothing, a
 * crash of the machine (power loss; on PostgreSQL, of its server) may lose it. Each back end
 * writes one log in order, so any later synced commit makes every earlier one durable too.
 * cp_sync_mode, outside a transaction: whether db's commits sync by default (SQLite's setting,
 * which may not change inside a transaction: synchronous=FULL or NORMAL; nothing on
 * PostgreSQL). cp_commit_synced: COMMIT, durable before it returns when sync is 1 whatever the
 * mode (SQLite syncs its log itself after a commit in NORMAL mode), or allowed to skip the sync
 * when 0 (PostgreSQL: SET LOCAL synchronous_commit off; SQLite: as the mode says). Both PC_OK
 * or PC_ERR_STORE (logged). */
int cp_sync_mode(cp_conn *db, int sync);
int cp_commit_synced(cp_conn *db, int sync);
void cp_tx_rollback(cp_conn *db);
/* Several reads in one snapshot on a connection outside any transaction (SQLite: a deferred
 * BEGIN, which takes no write lock). Each statement run alone is its own read transaction: on
 * SQLite each takes a read lock in the log's index and, when another connection has committed
 * since the last one, empties the connection's page cache, so the next pages are read again.
 * Nothing on PostgreSQL, where a transaction would cost two more round trips. PC_OK, or an
 * error (the reads then run alone, as before). cp_read_end ends it (a no-op when none). */
int cp_read_begin(cp_conn *db);
void cp_read_end(cp_conn *db);
/* Runs SQL without parameters or rows (one or more statements). PC_OK or PC_ERR_STORE, logged. */
int cp_exec(cp_conn *db, const char *sql);
/* 1 when no transaction is open on db (SQLite's autocommit mode). */
int cp_autocommit(cp_conn *db);
const char *cp_errmsg(cp_conn *db);
/* Rows changed by the last INSERT/UPDATE/DELETE statement run on db. */
int64_t cp_changes(cp_conn *db);

/* Prepare with logging; returns NULL on error. */
cp_stmt *cp_prepare(cp_conn *db, const char *sql);
/* Binds (1-based index). Texts and blobs are copied. A NULL text binds SQL NULL. */
int cp_bind_int64(cp_stmt *st, int idx, int64_t v);
int cp_bind_int(cp_stmt *st, int idx, int v);
int cp_bind_text(cp_stmt *st, int idx, const char *s);
int cp_bind_blob(cp_stmt *st, int idx, const void *p, int n);
int cp_bind_null(cp_stmt *st, int idx);
/* CP_ROW (a row to read), CP_DONE, CP_CONSTRAINT (a unique/foreign key/check refused the
 * change) or CP_ERROR (logged by the caller with cp_errmsg). */
int cp_step(cp_stmt *st);
int cp_reset(cp_stmt *st); /* to run again with new binds */
void cp_finalize(cp_stmt *st);
/* Columns of the current row (0-based). A NULL reads as 0, "" or (NULL, 0 bytes). */
int64_t cp_col_int64(cp_stmt *st, int col);
int cp_col_int(cp_stmt *st, int col);
const char *cp_col_text(cp_stmt *st, int col);
const void *cp_col_blob(cp_stmt *st, int col);
int cp_col_bytes(cp_stmt *st, int col);
int cp_col_is_null(cp_stmt *st, int col);

/* Before a connection is closed: frees every statement left on it (SQLite keeps a per-thread
 * cache of prepared statements, see cp_sql.c); nothing on PostgreSQL. */
void cp_sql_close_stmts(cp_conn *db);

/* Runs a statement that returns no rows; finalizes it. 0 or PC_ERR_STORE. */
int cp_exec_stmt(cp_stmt *st);
/* Runs an INSERT … RETURNING <id> and stores that id; finalizes it. PC_OK, PC_ERR_EXISTS (a
 * constraint refused the row) or PC_ERR_STORE. */
int cp_exec_stmt_id(cp_stmt *st, int64_t *id);

#endif
