/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "cp_waiters.h"
#include "pc_err.h"
#include "pc_log.h"
#include "pc_time.h"
#include <pthread.h>
#include <string.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static struct cp_wait *head;
static unsigned count;
static int stopping, started;
static pthread_t ticker;
static void (*housekeeping_fn)(void);

#define TICK_MS 200
#define EXPIRE_EVERY_MS 1000

static void unlist(struct cp_wait *w)
{
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
}

/* Caller holds lock. */
static void resume(struct cp_wait *w)
{
    struct MHD_Connection *c = w->conn;
    unlist(w);
    MHD_resume_connection(c);
}

static void *tick(void *arg)
{
    int64_t last_expire = 0;
    (void)arg;
    pthread_mutex_lock(&lock);
    while (!stopping) {
        struct timespec ts;
        int64_t now = pc_now_ms();
        for (struct cp_wait *w = head, *next; w; w = next) {
            next = w->next;
            if (w->deadline_ms <= now)
                resume(w);
        }
        if (housekeeping_fn && now - last_expire >= EXPIRE_EVERY_MS) {
            last_expire = now;
            pthread_mutex_unlock(&lock); /* expiry notifies, which takes the lock */
            housekeeping_fn();
            pthread_mutex_lock(&lock);
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&wake, &lock, &ts);
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

int cp_waiters_start(void (*housekeeping)(void))
{
    housekeeping_fn = housekeeping;
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
    started = 0;
}

void cp_waiters_suspend(struct cp_wait *w)
{
    pthread_mutex_lock(&lock);
    /* Suspend under the lock: no notifier can resume this connection before it is suspended. */
    MHD_suspend_connection(w->conn);
    if (stopping) {
        MHD_resume_connection(w->conn);
    } else {
        w->prev = NULL;
        w->next = head;
        if (head)
            head->prev = w;
        head = w;
        w->listed = 1;
        count++;
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

int cp_waiters_stopping(void)
{
    int s;
    pthread_mutex_lock(&lock);
    s = stopping;
    pthread_mutex_unlock(&lock);
    return s;
}
