/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "cp_waiters.h"
#include "cp_parked.h"
#include "pc_err.h"
#include "pc_log.h"
#include "pc_time.h"
#include <malloc.h>
#include <pthread.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static struct cp_wait *head;
static unsigned count;
static int stopping, started;
static pthread_t ticker;
static void (*housekeeping_fn)(void);
static unsigned released;     /* waiters unlisted since the last trim */
static int hangup_ep = -1;    /* epoll set of the waiting sockets, EPOLLRDHUP only */
static struct cp_wait *ready; /* resumed parked waiters, for on_ready on the thread */
static unsigned parked_slots; /* cp_waiters_park_reserve */

#define TICK_MS 200
#define EXPIRE_EVERY_MS 1000
#define TRIM_AFTER 64 /* released waiters that make returning freed heap worth a malloc_trim */
#define TRIM_LAST_GAP_MS 32000 /* trims 1, 2, 4 … 32 s after, past the 30 s connection timeout */

/* Caller holds lock. A parked socket is watched for input too: libmicrohttpd no longer reads
 * it, and the client has nothing to send while it waits. */
static void watch_hangup(struct cp_wait *w)
{
    const union MHD_ConnectionInfo *ci =
        w->parked ? NULL : MHD_get_connection_info(w->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    int fd = w->parked ? w->parked->fd : ci ? ci->connect_fd : -1;
    struct epoll_event ev = { .events = EPOLLRDHUP | (w->parked ? EPOLLIN : 0), .data.ptr = w };

    w->gone = 0;
    w->watched = hangup_ep >= 0 && fd >= 0 && epoll_ctl(hangup_ep, EPOLL_CTL_ADD, fd, &ev) == 0;
    if (w->watched)
        w->fd = fd;
}

/* Caller holds lock. */
static void list(struct cp_wait *w)
{
    w->prev = NULL;
    w->next = head;
    if (head)
        head->prev = w;
    head = w;
    w->listed = 1;
    count++;
    watch_hangup(w);
}

static void unlist(struct cp_wait *w)
{
    if (w->watched) {
        epoll_ctl(hangup_ep, EPOLL_CTL_DEL, w->fd, NULL);
        w->watched = 0;
    }
    if (!w->listed)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;
    w->listed = 0;
    count--;
    released++;
}

/* Caller holds lock. A parked waiter goes to the ready list: its answer reads the store and
 * writes the socket, which is not work for a notifier (the store's writer, say). */
static void resume(struct cp_wait *w)
{
    struct MHD_Connection *c = w->conn;
    unlist(w);
    if (w->parked) {
        w->ready_next = ready;
        ready = w;
        pthread_cond_broadcast(&wake);
        return;
    }
    MHD_resume_connection(c);
}

/* Caller holds lock; releases it while the ready waiters' on_ready run. */
static void run_ready(void)
{
    while (ready) {
        struct cp_wait *w = ready;
        ready = NULL;
        pthread_mutex_unlock(&lock);
        while (w) {
            struct cp_wait *next = w->ready_next;
            w->ready_next = NULL;
            w->on_ready(w);
            w = next;
        }
        pthread_mutex_lock(&lock);
    }
}

/* Caller holds lock. Resumes every waiter whose client hung up (or whose socket failed). */
static void reap_hangups(void)
{
    struct epoll_event evs[64];
    int n;

    if (hangup_ep < 0)
        return;
    do {
        n = epoll_wait(hangup_ep, evs, 64, 0);
        for (int i = 0; i < n; i++) {
            struct cp_wait *w = evs[i].data.ptr;
            w->gone = 1;
            resume(w); /* unlists it, which also stops watching its socket */
        }
    } while (n == 64);
}

static void *tick(void *arg)
{
    int64_t last_expire = 0;
    int64_t trim_gap_ms = 0, trim_at = 0; /* gap 0: no trim planned */
    (void)arg;
    pthread_mutex_lock(&lock);
    while (!stopping) {
        struct timespec ts;
        int64_t now = pc_now_ms();
        run_ready();
        reap_hangups();
        for (struct cp_wait *w = head, *next; w; w = next) {
            next = w->next;
            if (w->deadline_ms <= now)
                resume(w);
        }
        if (now - last_expire >= EXPIRE_EVERY_MS) {
            /* Many waiters ended: their connections' buffers are freed once each answer left
             * and the client closed (or its keep-alive timed out), so give the freed heap pages
             * back a few times over the next half minute; else 10,000 released long-polls keep
             * their hundreds of MB of RSS for good. */
            int trim = trim_gap_ms && now >= trim_at;
            if (released >= TRIM_AFTER) {
                released = 0;
                trim_gap_ms = 1000;
                trim_at = now + trim_gap_ms;
            } else if (trim) {
                trim_gap_ms = trim_gap_ms >= TRIM_LAST_GAP_MS ? 0 : trim_gap_ms * 2;
                trim_at = now + trim_gap_ms;
            }
            last_expire = now;
            pthread_mutex_unlock(&lock); /* expiry notifies, which takes the lock */
            if (housekeeping_fn)
                housekeeping_fn();
            if (trim)
                malloc_trim(0);
            pthread_mutex_lock(&lock);
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (!ready)
            pthread_cond_timedwait(&wake, &lock, &ts);
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

int cp_waiters_start(void (*housekeeping)(void))
{
    housekeeping_fn = housekeeping;
    hangup_ep = epoll_create1(EPOLL_CLOEXEC); /* without it waiters just wait for their deadline */
    if (pthread_create(&ticker, NULL, tick, NULL) != 0)
        return PC_ERR_NOMEM;
    started = 1;
    return PC_OK;
}

void cp_waiters_stop(void)
{
    pthread_mutex_lock(&lock);
    stopping = 1;
    while (head)
        resume(head);
    pthread_cond_broadcast(&wake);
    pthread_mutex_unlock(&lock);
    if (started)
        pthread_join(ticker, NULL);
    pthread_mutex_lock(&lock);
    started = 0; /* from now on a poll parked late answers itself (cp_waiters_park) */
    run_ready(); /* the parked ones answer with their current state (stopping is set) */
    if (hangup_ep >= 0)
        close(hangup_ep); /* under the lock: list() may be adding a socket to it */
    hangup_ep = -1;
    pthread_mutex_unlock(&lock);
}

void cp_waiters_suspend(struct cp_wait *w)
{
    pthread_mutex_lock(&lock);
    /* Suspend under the lock: no notifier can resume this connection before it is suspended. */
    MHD_suspend_connection(w->conn);
    if (stopping) {
        MHD_resume_connection(w->conn);
    } else {
        list(w);
    }
    pthread_mutex_unlock(&lock);
}

int cp_waiters_park_reserve(unsigned limit)
{
    int ok;
    pthread_mutex_lock(&lock);
    ok = !stopping && started && parked_slots < limit;
    parked_slots += (unsigned)ok;
    pthread_mutex_unlock(&lock);
    return ok;
}

void cp_waiters_park_release(void)
{
    pthread_mutex_lock(&lock);
    if (parked_slots)
        parked_slots--;
    pthread_mutex_unlock(&lock);
}

void cp_waiters_park(struct cp_wait *w)
{
    pthread_mutex_lock(&lock);
    w->conn = NULL;
    list(w);
    if (stopping) {
        resume(w);
        /* Reserved before the stop, parked after its ticker ended: no thread is left to run the
         * ready list, so this one does (cp_waiters_stop's own last run may take it first). */
        if (!started)
            run_ready();
    }
    pthread_mutex_unlock(&lock);
}

void cp_waiters_notify(const char *push_id)
{
    pthread_mutex_lock(&lock);
    for (struct cp_wait *w = head, *next; w; w = next) {
        next = w->next;
        if (strcmp(w->push_id, push_id) == 0)
            resume(w);
    }
    pthread_mutex_unlock(&lock);
}

void cp_waiters_notify_all(void)
{
    pthread_mutex_lock(&lock);
    for (struct cp_wait *w = head, *next; w; w = next) {
        next = w->next;
        resume(w);
    }
    pthread_mutex_unlock(&lock);
}

void cp_waiters_forget(struct cp_wait *w)
{
    pthread_mutex_lock(&lock);
    unlist(w);
    pthread_mutex_unlock(&lock);
}

unsigned cp_waiters_count(void)
{
    unsigned n;
    pthread_mutex_lock(&lock);
    n = count;
    pthread_mutex_unlock(&lock);
    return n;
}

unsigned cp_waiters_parked_count(void)
{
    unsigned n;
    pthread_mutex_lock(&lock);
    n = parked_slots;
    pthread_mutex_unlock(&lock);
    return n;
}

int cp_waiters_stopping(void)
{
    int s;
    pthread_mutex_lock(&lock);
    s = stopping;
    pthread_mutex_unlock(&lock);
    return s;
}
