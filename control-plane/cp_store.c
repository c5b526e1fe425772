/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "cp_store.h"
#include "cp_metrics.h"
#include "cp_schema.h"
#include "cp_sql_pg.h"
#include "cp_sql_walbuf.h"
#include "pc_err.h"
#include "pc_log.h"
#include "pc_mem.h"
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Each thread gets its own connection; they are listed so shutdown can close them all. */
struct conn_node {
    cp_conn *db;
    struct conn_node *next;
};

static char *store_path; /* a file, or a PostgreSQL URL (may hold a password: never shown) */
static int version_before = -1, version_after = -1;
static pthread_mutex_t conns_lock = PTHREAD_MUTEX_INITIALIZER;
static struct conn_node *conns;
static _Thread_local cp_conn *thread_db;

/* Once, before the first connection: no memory statistics, and the log's write buffer
 * (cp_sql_walbuf.h). SQLite's memory statistics (on by default) take one process-wide mutex
 * around every allocation and free of every connection: the writer and the readers of the
 * workers contended on it. Nothing here reads those statistics (no soft heap limit either).
 * It must come before SQLite initialises, which registering the VFS does. */
static void sqlite_config_once(void)
{
    if (sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) != SQLITE_OK)
        pc_log(PC_LOG_DEBUG, "event=store_config detail=\"SQLite's memory statistics stay on\"");
    if (cp_sql_walbuf_register() != PC_OK)
        pc_log(PC_LOG_WARN, "event=store_config detail=\"the log's write buffer is not in use\"");
}

static int open_conn(const char *path, cp_conn **out)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    sqlite3 *db = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;

    if (cp_sql_is_pg()) {
        char err[512];
        int rc = cp_pg_connect(path, out, err, sizeof err); /* err never holds the URL */
        if (rc != PC_OK)
            pc_log(PC_LOG_ERR, "event=store_open store=postgresql error=\"%s\"", err);
        return rc;
    }
    pthread_once(&once, sqlite_config_once);
    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
        pc_log(PC_LOG_ERR, "event=store_open path=%s error=\"%s\"", path,
               db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return PC_ERR_STORE;
    }
    sqlite3_busy_handler(db, cp_metrics_busy_handler, NULL); /* 10 s, counted */
    /* wal_autocheckpoint 10000 pages (SQLite's default is 1000): the commit that crosses it
     * copies the log into the database file and syncs both, on the writer, in a login's
     * request. A login writes ~8 pages, the same hot ones (users, indexes) again and again, so
     * a ten times longer log is copied about ten times less often with far fewer pages in all:
     * begin +15 %, certificates +35 % (docs/PERFORMANCE.md). The log file grows to ~40 MB. */
    /* temp_store=MEMORY: every write job runs in a SAVEPOINT (cp_store_write.c), so SQLite
     * keeps the first image of each page a job changes in a sub-journal, by default in memory
     * only up to 64 KiB and then in a file: a login with its push (~14 pages) made, wrote and
     * deleted a file in /var/tmp about every other batch. In memory it stays in small chunks.
     * (Not SQLITE_CONFIG_STMTJRNL_SPILL: its value is also the chunk size, so 4 MiB made every
     * transaction allocate, and wipe at free, 4 MiB: a login took 12 ms.) Temporary tables and
     * sorts are in memory too; no query of ours sorts more than a page of results. */
    if (sqlite3_exec(db,
                     "PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL;"
                     " PRAGMA wal_autocheckpoint=10000; PRAGMA temp_store=MEMORY;",
                     NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return PC_ERR_STORE;
    }
    *out = (cp_conn *)(void *)db;
    return PC_OK;
}

static void close_conn(cp_conn *db)
{
    if (cp_sql_is_pg())
        cp_pg_close(db);
    else {
        cp_sql_close_stmts(db); /* the statement cache's */
        sqlite3_close_v2((sqlite3 *)(void *)db);
    }
}

int cp_store_is_url(const char *spec)
{
    return !strncmp(spec, "postgresql://", 13) || !strncmp(spec, "postgres://", 11);
}

int cp_store_open(const char *path, char *err, size_t errsz)
{
    int pg = cp_store_is_url(path);
    cp_conn *db;
    char *msg = NULL;
    int rc;

    cp_sql_use_pg(pg); /* before any connection: one back end per process */
    store_path = strdup(path);
    if (!store_path)
        return PC_ERR_NOMEM;
    if (pg) {
        if ((rc = cp_pg_connect(path, &db, err, errsz)) != PC_OK)
            return rc; /* err: "PostgreSQL: cannot connect: …", without the URL */
    } else {
        if ((rc = open_conn(path, &db)) != PC_OK) {
            snprintf(err, errsz, "%s: cannot open the database", path);
            return rc;
        }
        if (sqlite3_exec((sqlite3 *)(void *)db, "PRAGMA journal_mode=WAL;", NULL, NULL, &msg) !=
            SQLITE_OK) {
            snprintf(err, errsz, "%s: cannot switch to WAL: %s", path, msg ? msg : "?");
            sqlite3_free(msg);
            close_conn(db);
            return PC_ERR_STORE;
        }
    }
    rc = cp_schema_migrate(db, &version_before, &version_after, err, errsz);
    if (rc != PC_OK)
        version_before = version_after = -1;
    close_conn(db);
    return rc;
}

void cp_store_versions(int *before, int *after)
{
    *before = version_before;
    *after = version_after;
}

void cp_store_close_mine(void)
{
    struct conn_node **p, *n = NULL;

    if (!thread_db)
        return;
    /* out of the list first: cp_store_close_all never sees it */
    pthread_mutex_lock(&conns_lock);
    for (p = &conns; *p; p = &(*p)->next)
        if ((*p)->db == thread_db) {
            n = *p;
            *p = n->next;
            break;
        }
    pthread_mutex_unlock(&conns_lock);
    close_conn(thread_db); /* this thread's statement cache with it */
    free(n);
    thread_db = NULL;
}

cp_conn *cp_db(void)
{
    struct conn_node *n;

    if (thread_db)
        return thread_db;
    if (!store_path || open_conn(store_path, &thread_db) != PC_OK)
        return NULL;
    n = calloc(1, sizeof *n);
    if (!n) {
        close_conn(thread_db);
        thread_db = NULL;
        return NULL;
    }
    n->db = thread_db;
    pthread_mutex_lock(&conns_lock);
    n->next = conns;
    conns = n;
    pthread_mutex_unlock(&conns_lock);
    return thread_db;
}

void cp_store_close_all(void)
{
    cp_store_write_stop();
    pthread_mutex_lock(&conns_lock);
    while (conns) {
        struct conn_node *n = conns;
        conns = n->next;
        close_conn(n->db);
        free(n);
    }
    pthread_mutex_unlock(&conns_lock);
    if (store_path)
        pc_free_secret_str(store_path); /* a URL may hold a password */
    store_path = NULL;
}
