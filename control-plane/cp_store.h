/* SPDX-License-Identifier: BSD-2-Clause */
/* The SQLite store: one database file in WAL mode, one connection per thread (opened lazily),
 * schema migrations recorded in schema_version. Every state change runs in one transaction, so
 * a request is applied whole or not at all: preferably as a job of cp_store_write (below: grouped
 * with concurrent ones, one fsync per group), else in its own BEGIN IMMEDIATE … COMMIT on the
 * thread's connection (cp_tx_begin; correct, but each pays its own fsync and waits for the
 * write lock). Reads need no transaction (WAL: they never wait for a writer). */
#ifndef CP_STORE_H
#define CP_STORE_H
#include "cp_sql.h" /* every user of the store runs its SQL with these */
#include <stddef.h>
#include <stdint.h>

/* Opens (creating if needed) the database and migrates it to the newest schema. path is a file
 * (SQLite) or a postgresql:// / postgres:// URL (PostgreSQL; err and the log never show it). */
int cp_store_open(const char *path, char *err, size_t errsz);
/* The schema version before and after cp_store_open's migration (-1: unknown). */
void cp_store_versions(int *before, int *after);
/* 1 when spec names a PostgreSQL database (postgresql://… or postgres://…), not a file. */
int cp_store_is_url(const char *spec);
/* The calling thread's connection (NULL on failure, logged). */
cp_conn *cp_db(void);
void cp_store_close_all(void);
/* Closes the calling thread's connection, if it has one (the next cp_db() in this thread opens
 * a new one): for a thread whose connection would sit idle, e.g. main after start-up, which
 * otherwise keeps its schema copy, statement cache and page cache (~100 KB) for nothing. */
void cp_store_close_mine(void);

/* A write job: its SQL on db (never cp_tx_begin/commit: it already runs in a transaction).
 * Returns 0 to keep its changes, or a negative PC_ERR_* to undo them (and only them). */
typedef int (*cp_write_fn)(cp_conn *db, void *arg);
/* Runs fn(db, arg) in a transaction and returns its result once the transaction is durable
 * (committed, and synced under synchronous=FULL). Concurrent calls are grouped: one writer runs
 * each job in its own savepoint of one transaction and syncs once for all of them, so a failing
 * job never undoes a neighbour's. A call from inside a job runs inline, as part of that job.
 * The caller must not hold a transaction of its own (cp_tx_begin) while calling this.
 * Backend-neutral: on a server database every call is simply its own transaction. */
int cp_store_write(cp_write_fn fn, void *arg);
/* cp_store_write for a job that may only record something pending — a login begun, waiting for
 * its code. If the job calls cp_store_job_decides_nothing() while it runs (and so do the others
 * of its batch), its commit does not wait for the disk: a crash of the process loses nothing,
 * a power loss may lose the row (the login then fails and is tried again). A job that records a
 * decision (allow, deny, a spent code, an audit row of an answer) must not call it: it is then
 * synced like any other. A later synced commit makes the row durable too (one log, in order). */
int cp_store_write_pending(cp_write_fn fn, void *arg);
void cp_store_job_decides_nothing(void);
/* What runs a job's answer for a caller that did not wait: rc as cp_store_write returns it. */
typedef void (*cp_write_then_fn)(void *arg, int rc);
/* cp_store_write (pending: cp_store_write_pending) for a caller that does not wait: then(arg,
 * rc) runs on the writer thread once rc is final, after the commit (synced as the waiting form
 * would be), never before. then must be quick and must not wait for the store (it delays the
 * rest of the batch's answers). PC_OK when queued: then runs exactly once, also at a stop (the
 * writer finishes its queue). An error (not queued, then never runs) when the writer cannot be
 * started, memory is short, or the caller is itself a job (its commit is still to come). */
int cp_store_write_then(cp_write_fn fn, void *arg, int pending, cp_write_then_fn then);
/* Finishes the queued jobs and stops the writer (before cp_store_close_all). */
void cp_store_write_stop(void);

#endif
