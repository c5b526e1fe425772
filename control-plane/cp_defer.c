/* SPDX-License-Identifier: BSD-2-Clause */
/* The pool of cp_defer.h: a queue of suspended requests, threads that run their handlers and
 * resume them. */
#include "config.h"
#include "cp_defer.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct task {
    cp_handler h;
    struct cp_call call; /* a copy: the worker's own is gone once it returned */
    struct task *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work = PTHREAD_COND_INITIALIZER;
static pthread_cond_t drained = PTHREAD_COND_INITIALIZER; /* busy fell to 0 */
static struct task *queue_head, **queue_tail = &queue_head;
static unsigned max_threads, nthreads, idle, queued, busy; /* busy: queued or running */
static int accepting;
static pthread_t *threads;

/* Hands the reply r (NULL: out of memory, answered 500) of a suspended request over and resumes
 * its connection; the request no longer counts as busy once that has returned. Called without
 * the lock. */
static void answer(struct MHD_Connection *conn, struct cp_req *req, struct cp_resp *r)
{
    pthread_mutex_lock(&lock);
    /* Under the lock: the worker that sends the reply takes it under the lock too. */
    req->dresp = r;
    req->deferred = 2;
    pthread_mutex_unlock(&lock);
    /* Outside the lock (it takes libmicrohttpd's own and writes to its wake-up fd): nobody
     * reads the request of a suspended connection, and busy, still counting this request,
     * keeps cp_defer_stop (and so the daemon's stop) waiting until it has returned. */
    MHD_resume_connection(conn); /* req may be freed from here on */
    pthread_mutex_lock(&lock);
    if (--busy == 0)
        pthread_cond_broadcast(&drained);
    pthread_mutex_unlock(&lock);
}

static void *pool_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    for (;;) {
        struct task *t;
        struct cp_resp *r;

        while (!queue_head && accepting)
            pthread_cond_wait(&work, &lock);
        if (!queue_head)
            break; /* stopping, and nothing left */
        t = queue_head;
        if (!(queue_head = t->next))
            queue_tail = &queue_head;
        queued--;
        idle--;
        pthread_mutex_unlock(&lock);
        r = calloc(1, sizeof *r);
        if (r)
            t->h(&t->call, r);
        json_object_put(t->call.body);
        answer(t->call.conn, t->call.req, r);
        free(t);
        pthread_mutex_lock(&lock);
        idle++;
    }
    idle--;
    pthread_mutex_unlock(&lock);
    return NULL;
}

void cp_defer_start(unsigned max)
{
    pthread_mutex_lock(&lock);
    free(threads);
    threads = calloc(max ? max : 1, sizeof *threads);
    max_threads = threads ? max : 0;
    nthreads = idle = queued = busy = 0;
    accepting = 1;
    pthread_mutex_unlock(&lock);
}

void cp_defer_stop(void)
{
    unsigned n;

    pthread_mutex_lock(&lock);
    accepting = 0;
    while (busy)
        pthread_cond_wait(&drained, &lock);
    pthread_cond_broadcast(&work);
    n = nthreads;
    pthread_mutex_unlock(&lock);
    for (unsigned i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    pthread_mutex_lock(&lock);
    nthreads = idle = 0;
    pthread_mutex_unlock(&lock);
}

/* Caller holds lock: a thread will take the next task (one is idle, or a new one was made). */
static int thread_ready(void)
{
    if (idle > queued)
        return 1;
    if (nthreads < max_threads && pthread_create(&threads[nthreads], NULL, pool_main, NULL) == 0) {
        nthreads++;
        idle++;
        return 1;
    }
    return nthreads > 0; /* all busy and no more: it waits its turn */
}

int cp_defer(cp_handler h, struct cp_call *c)
{
    struct task *t = malloc(sizeof *t);

    if (!t)
        return 0;
    pthread_mutex_lock(&lock);
    if (!accepting || !thread_ready()) {
        pthread_mutex_unlock(&lock);
        free(t);
        return 0;
    }
    t->h = h;
    t->call = *c;
    for (int i = 0; i < c->nseg; i++) /* the segments point into the copied pathbuf */
        t->call.seg[i] = t->call.pathbuf + (c->seg[i] - c->pathbuf);
    t->next = NULL;
    c->body = NULL;
    c->req->deferred = 1;
    /* Suspended before it is queued: the pool resumes it, never before this. */
    MHD_suspend_connection(c->conn);
    *queue_tail = t;
    queue_tail = &t->next;
    queued++;
    busy++;
    pthread_mutex_unlock(&lock);
    /* After the unlock: a thread woken while it is still held would only wait for it again.
     * The task is queued; any thread that looks (woken or not) takes it. */
    pthread_cond_signal(&work);
    return 1;
}

int cp_defer_take(struct cp_req *req, struct cp_resp *r)
{
    struct cp_resp *d;

    pthread_mutex_lock(&lock);
    if (req->deferred != 2) {
        pthread_mutex_unlock(&lock);
        return 0;
    }
    d = req->dresp;
    req->dresp = NULL;
    req->deferred = 0;
    pthread_mutex_unlock(&lock);
    if (d) {
        *r = *d;
        free(d);
    } else {
        memset(r, 0, sizeof *r);
        cp_resp_error(r, 500, "internal", "out of memory");
    }
    return 1;
}

struct cp_defer_hold {
    struct MHD_Connection *conn;
    struct cp_req *req;
};

struct cp_defer_hold *cp_defer_hold(struct cp_call *c)
{
    struct cp_defer_hold *h = malloc(sizeof *h);

    if (!h)
        return NULL;
    pthread_mutex_lock(&lock);
    if (!accepting) {
        pthread_mutex_unlock(&lock);
        free(h);
        return NULL;
    }
    h->conn = c->conn;
    h->req = c->req;
    c->req->deferred = 1;
    MHD_suspend_connection(c->conn); /* before anyone can answer it */
    busy++;
    pthread_mutex_unlock(&lock);
    return h;
}

void cp_defer_answer(struct cp_defer_hold *h, struct cp_resp *r)
{
    answer(h->conn, h->req, r);
    free(h);
}
