/* SPDX-License-Identifier: BSD-2-Clause */
/* Group commit for the SQLite store (cp_store_write in cp_store.h). One writer thread owns one
 * connection; callers queue jobs and sleep. The writer takes every queued job, runs each in its
 * own SAVEPOINT inside one BEGIN IMMEDIATE … COMMIT (synchronous=FULL: one fsync of the WAL per
 * batch) and wakes each caller only after that COMMIT returned, so no reply leaves before its
 * changes are on disk. A job that fails is rolled back to its savepoint alone. */
#include "config.h"
#include "cp_store.h"
#include "pc_config.h"
#include "pc_err.h"
#include "pc_log.h"
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <time.h>

struct job {
    cp_write_fn fn;
    void *arg;
    int rc, done;
    pthread_cond_t cond;
    struct job *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work = PTHREAD_COND_INITIALIZER;
static struct job *queue_head, **queue_tail = &queue_head;
static int started, stopping;
static pthread_t writer;
static _Thread_local int on_writer; /* this thread is the writer: nested calls run inline */

static int exec(cp_conn *db, const char *sql)
{
    if (cp_exec(db, sql) == PC_OK)
        return PC_OK;
    pc_log(PC_LOG_ERR, "event=store_write sql=\"%s\"", sql);
    return PC_ERR_STORE;
}

/* fn inside a savepoint of the open transaction; its changes are undone alone if it fails. */
static int run_in_savepoint(cp_conn *db, cp_write_fn fn, void *arg)
{
    int rc;

    if (exec(db, "SAVEPOINT cp_job") != PC_OK)
        return PC_ERR_STORE;
    rc = fn(db, arg);
    if (cp_autocommit(db)) /* an error SQLite answers by rolling back everything */
        return rc != PC_OK ? rc : PC_ERR_STORE;
    if (rc != PC_OK)
        exec(db, "ROLLBACK TO cp_job");
    if (exec(db, "RELEASE cp_job") != PC_OK && rc == PC_OK)
        rc = PC_ERR_STORE;
    return rc;
}

/* Runs the batch and sets each job's rc. Should a job end in an error that SQLite answers by
 * rolling back the whole transaction (I/O error, disk full, out of memory), the neighbours'
 * work is gone too: they all answer PC_ERR_STORE, and none of them was acknowledged. */
static void run_batch(cp_conn *db, struct job *batch)
{
    struct job *j;
    unsigned n = 0, failed = 0;

    if (!db || cp_tx_begin(db) != PC_OK) {
        for (j = batch; j; j = j->next)
            j->rc = PC_ERR_STORE;
        return;
    }
    for (j = batch; j; j = j->next) {
        j->rc = run_in_savepoint(db, j->fn, j->arg);
        n++;
        failed += j->rc != PC_OK;
        if (cp_autocommit(db))
            break;
    }
    pc_log(PC_LOG_DEBUG, "event=store_batch jobs=%u failed=%u", n, failed);
    if (j) { /* the transaction is gone */
        pc_log(PC_LOG_ERR, "event=store_batch_lost error=\"%s\"", cp_errmsg(db));
        for (struct job *k = batch; k; k = k->next)
            k->rc = k == j && j->rc != PC_OK ? j->rc : PC_ERR_STORE;
        return;
    }
    if (exec(db, "COMMIT") != PC_OK) {
        if (!cp_autocommit(db))
            cp_exec(db, "ROLLBACK");
        for (j = batch; j; j = j->next)
            j->rc = PC_ERR_STORE;
    }
}

/* Test builds (--enable-test-hooks): PC_TEST_STORE_GATHER_MS=N makes the writer wait N ms
 * (1..1000) after the first job of a batch arrived, so that concurrent requests of a test burst
 * are run in one batch whatever the machine's speed (tests/integration/test_durability.py needs
 * a batch mixing a failing job with good ones). Caller holds lock; released while waiting. */
static void test_gather(void)
{
#ifdef PC_TEST_HOOKS
    const char *v = getenv("PC_TEST_STORE_GATHER_MS");
    uint64_t ms;

    if (v && pc_parse_uint(v, 1, 1000, &ms) == PC_OK) {
        struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
        pthread_mutex_unlock(&lock);
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&lock);
    }
#endif
}

static void *writer_main(void *arg)
{
    cp_conn *db;

    (void)arg;
    on_writer = 1;
    db = cp_db(); /* this thread's connection: cp_db() inside a job returns it too */
    pthread_mutex_lock(&lock);
    for (;;) {
        struct job *batch, *j, *next;

        while (!queue_head && !stopping)
            pthread_cond_wait(&work, &lock);
        if (!queue_head)
            break;     /* stopping and nothing left */
        test_gather(); /* test builds: let a burst's jobs meet in one batch */
        batch = queue_head;
        queue_head = NULL;
        queue_tail = &queue_head;
        pthread_mutex_unlock(&lock);
        run_batch(db, batch);
        pthread_mutex_lock(&lock);
        for (j = batch; j; j = next) {
            next = j->next; /* j lives on its caller's stack: gone once it wakes */
            j->done = 1;
            pthread_cond_signal(&j->cond);
        }
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

/* Caller holds lock. */
static int start_writer(void)
{
    if (started)
        return PC_OK;
    if (stopping || pthread_create(&writer, NULL, writer_main, NULL) != 0)
        return PC_ERR_STORE;
    started = 1;
    return PC_OK;
}

int cp_store_write(cp_write_fn fn, void *arg)
{
    struct job j = { .fn = fn, .arg = arg, .rc = PC_ERR_STORE };

    if (on_writer) /* nested: part of the caller's job */
        return run_in_savepoint(cp_db(), fn, arg);
    pthread_cond_init(&j.cond, NULL);
    pthread_mutex_lock(&lock);
    if (start_writer() != PC_OK) {
        pthread_mutex_unlock(&lock);
        pthread_cond_destroy(&j.cond);
        return PC_ERR_STORE;
    }
    *queue_tail = &j;
    queue_tail = &j.next;
    pthread_cond_signal(&work);
    while (!j.done)
        pthread_cond_wait(&j.cond, &lock);
    pthread_mutex_unlock(&lock);
    pthread_cond_destroy(&j.cond);
    return j.rc;
}

void cp_store_write_stop(void)
{
    int join;

    pthread_mutex_lock(&lock);
    stopping = 1;
    join = started;
    pthread_cond_signal(&work);
    pthread_mutex_unlock(&lock);
    if (join)
        pthread_join(writer, NULL);
    pthread_mutex_lock(&lock);
    started = 0;
    stopping = 0;
    pthread_mutex_unlock(&lock);
}
