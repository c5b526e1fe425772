/* SPDX-License-Identifier: BSD-2-Clause */
/* The store's SQL layer (cp_sql.h): SQLite here, PostgreSQL in cp_sql_pg.c. On SQLite a
 * cp_conn is the sqlite3 handle and a cp_stmt the sqlite3_stmt, so this side adds no copy; only
 * the result codes are mapped.
 *
 * Statement cache (SQLite only): parsing the SQL was the largest cost of a request (a quarter
 * of the daemon's CPU under `bench_load begin`, issue 16), so each thread keeps the statements
 * it prepared, keyed by connection and SQL text. cp_finalize of a cached statement resets it and
 * clears its bindings (what sqlite3_finalize would release: rows, the read transaction, bound
 * copies) instead of freeing it; a statement whose SQL is already in use on this thread (a
 * nested call) is prepared afresh and finalized as before. Connections belong to one thread
 * (cp_db), so the cache needs no lock; cp_sql_close_stmts runs before a connection is closed. */
#include "config.h"
#include "cp_sql.h"
#include "cp_metrics.h"
#include "cp_sql_pg.h"
#include "pc_err.h"
#include "pc_log.h"
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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

/* ---- the SQLite statement cache ---------------------------------------------------------- */

#define CACHE_SLOTS 64 /* the store has fewer distinct statements on one thread's hot path */

struct cached {
    sqlite3 *db; /* NULL: a free slot */
    sqlite3_stmt *st;
    uint32_t hash; /* of the SQL text */
    int in_use;    /* handed out by cp_prepare, not yet given back by cp_finalize */
    uint64_t used; /* for eviction: the least recently used idle slot goes */
};

static _Thread_local struct cached cache[CACHE_SLOTS];
static _Thread_local uint64_t cache_clock;

static uint32_t sql_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    while (*s)
        h = (h ^ (uint8_t)*s++) * 16777619u;
    return h;
}

/* A statement for sql on db: a cached idle one (reset, no bindings) or a new one, cached when a
 * slot is free or an idle one can be evicted. *single is 0 when sql holds more than one
 * statement (then nothing is returned: the caller runs it with sqlite3_exec). */
static sqlite3_stmt *cache_get(sqlite3 *db, const char *sql, int *single)
{
    uint32_t h = sql_hash(sql);
    struct cached *slot = NULL;
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    int busy = 0;

    *single = 1;
    for (int i = 0; i < CACHE_SLOTS; i++) {
        struct cached *c = &cache[i];
        if (c->db == db && c->hash == h && strcmp(sqlite3_sql(c->st), sql) == 0) {
            if (c->in_use) {
                busy = 1; /* nested use of the same SQL: a private statement below */
                continue;
            }
            c->in_use = 1;
            c->used = ++cache_clock;
            return c->st;
        }
    }
    if (sqlite3_prepare_v2(db, sql, -1, &st, &tail) != SQLITE_OK)
        return NULL;
    while (tail && (*tail == ' ' || *tail == '\n' || *tail == '\t' || *tail == ';'))
        tail++;
    if (tail && *tail) {
        *single = 0;
        sqlite3_finalize(st);
        return NULL;
    }
    if (busy || !st) /* !st: only a comment or blanks */
        return st;
    for (int i = 0; i < CACHE_SLOTS; i++) {
        struct cached *c = &cache[i];
        if (!c->db) {
            slot = c;
            break;
        }
        if (!c->in_use && (!slot || c->used < slot->used))
            slot = c;
    }
    if (!slot)
        return st; /* every slot in use: not cached */
    if (slot->db)
        sqlite3_finalize(slot->st);
    *slot = (struct cached){ .db = db, .st = st, .hash = h, .in_use = 1, .used = ++cache_clock };
    return st;
}

/* 1 when st came from this thread's cache: it was reset and given back. */
static int cache_put(sqlite3_stmt *st)
{
    for (int i = 0; i < CACHE_SLOTS; i++) {
        if (cache[i].st == st && cache[i].db) {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            cache[i].in_use = 0;
            return 1;
        }
    }
    return 0;
}

void cp_sql_close_stmts(cp_conn *db)
{
    sqlite3_stmt *st;

    if (use_pg || !db)
        return;
    for (int i = 0; i < CACHE_SLOTS; i++)
        if (cache[i].db == SQ(db))
            cache[i] = (struct cached){ 0 };
    /* every statement left on db, cached by this thread or another (shutdown) */
    while ((st = sqlite3_next_stmt(SQ(db), NULL)) != NULL)
        sqlite3_finalize(st);
}

/* ---- the calls ------------------------------------------------------------------------------ */

int cp_exec(cp_conn *db, const char *sql)
{
    sqlite3_stmt *st;
    int single, rc;

    if (use_pg)
        return cp_pg_exec(db, sql);
    /* One statement without rows (BEGIN, SAVEPOINT, COMMIT …): from the cache. */
    st = cache_get(SQ(db), sql, &single);
    if (single) {
        if (!st && sqlite3_errcode(SQ(db)) != SQLITE_OK)
            goto fail;
        if (!st)
            return PC_OK;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            ;
        if (!cache_put(st))
            sqlite3_finalize(st);
        if (rc == SQLITE_DONE)
            return PC_OK;
        goto fail;
    }
    if (sqlite3_exec(SQ(db), sql, NULL, NULL, NULL) == SQLITE_OK)
        return PC_OK;
fail:
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
    if (cp_commit_synced(db, 1) != PC_OK) {
        pc_metric_inc(&cp_m_store_errors, "commit", NULL, NULL);
        pc_log(PC_LOG_ERR, "event=store_commit error=\"%s\"", cp_errmsg(db));
        cp_tx_rollback(db);
        return PC_ERR_STORE;
    }
    return PC_OK;
}

/* This thread's SQLite connection runs with synchronous=NORMAL (cp_sync_mode(db, 0)). Starts
 * 0: cp_store.c opens every connection with FULL, so a reopened connection is at worst set to
 * FULL once more. */
static _Thread_local int sq_unsynced;

int cp_sync_mode(cp_conn *db, int sync)
{
    if (use_pg || sync != sq_unsynced)
        return PC_OK;
    if (cp_exec(db, sync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL") != PC_OK)
        return PC_ERR_STORE;
    sq_unsynced = !sync;
    return PC_OK;
}

/* Syncs the write-ahead log of db's main database now (it holds every commit made so far). */
static int sq_sync_log(cp_conn *db)
{
    sqlite3_file *wal = NULL;

    if (sqlite3_file_control(SQ(db), "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal) != SQLITE_OK ||
        !wal || !wal->pMethods) {
        pc_log(PC_LOG_ERR, "event=store_sync error=\"no write-ahead log to sync\"");
        return PC_ERR_STORE;
    }
    if (wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL) != SQLITE_OK) {
        pc_log(PC_LOG_ERR, "event=store_sync error=\"the write-ahead log could not be synced\"");
        return PC_ERR_STORE;
    }
    return PC_OK;
}

int cp_commit_synced(cp_conn *db, int sync)
{
    if (use_pg) {
        /* SET LOCAL: this transaction only; the session keeps synchronous_commit on */
        if (!sync && cp_exec(db, "SET LOCAL synchronous_commit TO off") != PC_OK)
            return PC_ERR_STORE;
        return cp_exec(db, "COMMIT");
    }
    if (cp_exec(db, "COMMIT") != PC_OK)
        return PC_ERR_STORE;
    /* committed in NORMAL mode (WAL: written, not synced) by a caller that needs it durable */
    return sync && sq_unsynced ? sq_sync_log(db) : PC_OK;
}

int cp_read_begin(cp_conn *db)
{
    if (use_pg || !cp_autocommit(db))
        return PC_ERR_STATE;
    return sqlite3_exec(SQ(db), "BEGIN", NULL, NULL, NULL) == SQLITE_OK ? PC_OK : PC_ERR_STORE;
}

void cp_read_end(cp_conn *db)
{
    if (!use_pg && !cp_autocommit(db) &&
        sqlite3_exec(SQ(db), "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        cp_tx_rollback(db);
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
    int single;

    if (use_pg) {
        cp_stmt *p = cp_pg_prepare(db, sql);
        if (!p)
            pc_metric_inc(&cp_m_store_errors, "prepare", NULL, NULL);
        return p;
    }
    if (!(st = cache_get(SQ(db), sql, &single)) || !single) {
        if (!single)
            sqlite3_prepare_v2(SQ(db), sql, -1, &st, NULL); /* its first statement, as before */
        if (st)
            return (cp_stmt *)(void *)st;
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
    else if (st && !cache_put(SST(st)))
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
