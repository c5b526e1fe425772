/* SPDX-License-Identifier: BSD-2-Clause */
/* Group commit for the SQLite store (cp_store_write in cp_store.h). One writer thread owns one
 * connection; callers queue jobs and sleep. The writer takes every queued job, runs each in its
 * own SAVEPOINT inside one BEGIN IMMEDIATE … COMMIT (synchronous=FULL: one fsync of the WAL per
 * batch) and wakes each caller only after that COMMIT returned, so no reply leaves before its
 * changes are on disk. A job that fails is rolled back to its savepoint alone.
 *
 * Jobs queued with cp_store_write_pending go first, in a transaction of their own, whose commit
 * skips the sync when every one of them said, while it ran, that what it wrote decides nothing
 * (cp_store_job_decides_nothing: a login begun and waiting for its code). Their callers are
 * woken before the other jobs run. A power loss can take such a row away; it cannot reorder:
 * the log is one file, so the next synced commit (the code that answers that login) makes the
 * row durable before its own answer leaves. */
#include "config.h"
#include "cp_store.h"
#include "cp_test_hooks.h"
#include "pc_err.h"
#include "pc_log.h"
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stddef.h>
#include <stdlib.h>

struct job {
    cp_write_fn fn;
    void *arg;
    int pending; /* queued by cp_store_write_pending */
    int rc;
    /* cp_store_write_then: called with rc instead of posting done (the job is then the
     * writer's, on the heap, and freed after) */
    cp_write_then_fn then;
    /* Posted once rc is final. A semaphore, not a condition variable under the queue's lock:
     * it is posted after the lock is released (a caller woken while the writer still held the
     * lock would only sleep again on it), and glibc lets the caller destroy it as soon as its
     * wait returned, though sem_post may not have returned yet. */
    sem_t done;
    struct job *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work = PTHREAD_COND_INITIALIZER;
static struct job *queue_head, **queue_tail = &queue_head;
static int started, stopping;
static pthread_t writer;
static _Thread_local int on_writer; /* this thread is the writer: nested calls run inline */
static int job_decides_nothing;     /* the running job called cp_store_job_decides_nothing */
static int nested_decided; /* a write nested in the running job kept a change that decides */
static int in_batch;       /* the writer is inside run_batch's transaction */

void cp_store_job_decides_nothing(void)
{
    if (on_writer)
        job_decides_nothing = 1;
}

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
    /* A savepoint that cannot be rolled back to or released (a statement left running, say)
     * would keep a failed job's writes, or leave the job open, inside the batch's commit: the
     * whole transaction goes instead, and run_batch fails every job of the batch. */
    if ((rc != PC_OK && exec(db, "ROLLBACK TO cp_job") != PC_OK) ||
        exec(db, "RELEASE cp_job") != PC_OK) {
        if (!cp_autocommit(db))
            cp_exec(db, "ROLLBACK");
        return rc != PC_OK ? rc : PC_ERR_STORE;
    }
    return rc;
}

/* Runs the batch and sets each job's rc; the commit is synced unless may_skip_sync and every
 * job of the batch said it decides nothing. Should a job end in an error that SQLite answers by
 * rolling back the whole transaction (I/O error, disk full, out of memory), the neighbours'
 * work is gone too: they all answer PC_ERR_STORE, and none of them was acknowledged. */
static void run_batch(cp_conn *db, struct job *batch, int may_skip_sync)
{
    struct job *j;
    unsigned n = 0, failed = 0;
    int sync = !may_skip_sync;

    if (!batch)
        return;
    if (!db || cp_sync_mode(db, sync) != PC_OK || cp_tx_begin(db) != PC_OK) {
        for (j = batch; j; j = j->next)
            j->rc = PC_ERR_STORE;
        return;
    }
    in_batch = 1;
    for (j = batch; j; j = j->next) {
        job_decides_nothing = nested_decided = 0;
        j->rc = run_in_savepoint(db, j->fn, j->arg);
        n++;
        failed += j->rc != PC_OK;
        /* a job that failed changed nothing: only a kept change can need the disk */
        if (j->rc == PC_OK && (!job_decides_nothing || nested_decided))
            sync = 1;
        if (cp_autocommit(db))
            break;
    }
    in_batch = 0;
    job_decides_nothing = nested_decided = 0;
    pc_log(PC_LOG_DEBUG, "event=store_batch jobs=%u failed=%u synced=%d", n, failed, sync);
    if (j) { /* the transaction is gone */
        pc_log(PC_LOG_ERR, "event=store_batch_lost error=\"%s\"", cp_errmsg(db));
        for (struct job *k = batch; k; k = k->next)
            k->rc = k == j && j->rc != PC_OK ? j->rc : PC_ERR_STORE;
        return;
    }
    if (cp_commit_synced(db, sync) != PC_OK) {
        pc_log(PC_LOG_ERR, "event=store_write sql=\"COMMIT\"");
        if (!cp_autocommit(db))
            cp_exec(db, "ROLLBACK");
        for (j = batch; j; j = j->next)
            j->rc = PC_ERR_STORE;
    }
}

/* Wakes the batch's callers, or runs their continuations (without the lock: the batch is this
 * thread's alone). */
static void wake(struct job *batch)
{
    struct job *j, *next;

    for (j = batch; j; j = next) {
        next = j->next; /* j lives on its caller's stack: gone once it wakes */
        if (j->then) {
            j->then(j->arg, j->rc);
            free(j);
        } else {
            sem_post(&j->done);
        }
    }
}

/* Test builds (--enable-test-hooks): PC_TEST_STORE_GATHER_MS=N makes the writer wait N ms
 * (1..1000) after the first job of a batch arrived, so that concurrent requests of a test burst
 * are run in one batch whatever the machine's speed (tests/integration/test_durability.py needs
 * a batch mixing a failing job with good ones). Caller holds lock; released while waiting. */
static void test_gather(void)
{
#ifdef PC_TEST_HOOKS
    uint64_t ms = cp_test_hook_ms("PC_TEST_STORE_GATHER_MS", 1000);

    if (ms) {
        pthread_mutex_unlock(&lock);
        cp_test_hook_sleep(ms);
        pthread_mutex_lock(&lock);
    }
#endif
}

static void *writer_main(void *arg)
{
    cp_conn *db = NULL;

    (void)arg;
    on_writer = 1;
    pthread_mutex_lock(&lock);
    for (;;) {
        struct job *pend = NULL, **pend_tail = &pend, *rest = NULL, **rest_tail = &rest, *j;

        while (!queue_head && !stopping)
            pthread_cond_wait(&work, &lock);
        if (!queue_head) {
            started = 0; /* under the lock: a job queued from now on finds no writer */
            break;       /* stopping and nothing left */
        }
        test_gather(); /* test builds: let a burst's jobs meet in one batch */
        for (j = queue_head; j; j = j->next) { /* two lists, each in queue order */
            struct job ***tail = j->pending ? &pend_tail : &rest_tail;
            **tail = j;
            *tail = &j->next;
        }
        *pend_tail = *rest_tail = NULL;
        queue_head = NULL;
        queue_tail = &queue_head;
        pthread_mutex_unlock(&lock);
        /* This thread's connection (cp_db() inside a job returns it too), opened again for each
         * batch until it opens, outside the queue's lock (a server connection can take a
         * while): one that failed (the database server down or restarting at the first write
         * after a start) must not fail every later write until a restart. */
        if (!db)
            db = cp_db();
        run_batch(db, pend, 1);
        wake(pend);
        run_batch(db, rest, 0);
        wake(rest);
        pthread_mutex_lock(&lock);
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

/* Queues j for the writer (started if need be). */
static int push_job(struct job *j)
{
    pthread_mutex_lock(&lock);
    if (start_writer() != PC_OK) {
        pthread_mutex_unlock(&lock);
        return PC_ERR_STORE;
    }
    *queue_tail = j;
    queue_tail = &j->next;
    pthread_mutex_unlock(&lock);
    pthread_cond_signal(&work); /* after the unlock, as in wake(): the job is queued either way */
    return PC_OK;
}

static int enqueue(cp_write_fn fn, void *arg, int pending)
{
    struct job j = { .fn = fn, .arg = arg, .pending = pending, .rc = PC_ERR_STORE };

    if (on_writer) { /* nested: part of the caller's job */
        int outer = job_decides_nothing, rc;
        /* Outside a batch (a continuation, after its commit) there is no job to be part of,
         * and nothing would sync it. */
        if (!in_batch)
            return PC_ERR_INVAL;
        /* Whether the nested write decides is its own: it neither lends the caller its
         * "decides nothing" nor takes the caller's. */
        job_decides_nothing = 0;
        rc = run_in_savepoint(cp_db(), fn, arg);
        if (rc == PC_OK && !job_decides_nothing)
            nested_decided = 1;
        job_decides_nothing = outer;
        return rc;
    }
    if (sem_init(&j.done, 0, 0) != 0)
        return PC_ERR_STORE;
    if (push_job(&j) != PC_OK) {
        sem_destroy(&j.done);
        return PC_ERR_STORE;
    }
    while (sem_wait(&j.done) != 0 && errno == EINTR)
        ;
    sem_destroy(&j.done);
    return j.rc;
}

int cp_store_write_then(cp_write_fn fn, void *arg, int pending, cp_write_then_fn then)
{
    struct job *j;

    if (on_writer || !then) /* a continuation would run before the caller's job commits */
        return PC_ERR_INVAL;
    if (!(j = calloc(1, sizeof *j)))
        return PC_ERR_NOMEM;
    *j = (struct job){ .fn = fn, .arg = arg, .pending = pending, .rc = PC_ERR_STORE, .then = then };
    if (push_job(j) != PC_OK) {
        free(j);
        return PC_ERR_STORE;
    }
    return PC_OK;
}

int cp_store_write(cp_write_fn fn, void *arg)
{
    return enqueue(fn, arg, 0);
}

int cp_store_write_pending(cp_write_fn fn, void *arg)
{
    return enqueue(fn, arg, 1);
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
