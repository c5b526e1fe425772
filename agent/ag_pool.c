/* SPDX-License-Identifier: BSD-2-Clause */
/* The control-plane connection pool (see ag_pool.h). */
#include "config.h"
#include "ag_pool.h"
#include "pc_err.h"
#include "pc_http.h"
#include "pc_log.h"
#include "pc_mem.h"
#include "pc_time.h"
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct slot {
    pc_http *h;
    int64_t last_used_ms;
};

struct ag_pool {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    char *url, *pin, *cafile, *token;
    long connect_timeout_ms;
    unsigned max, count, nidle;
    unsigned max_long, nlong; /* long-poll lane: bound and admitted (see ag_pool.h) */
    struct slot *idle;        /* stack of idle handles, nidle of them */
};

static char *dup_or_null(const char *s, int *fail)
{
    char *d;
    if (!s)
        return NULL;
    d = strdup(s);
    if (!d)
        *fail = 1;
    return d;
}

int ag_pool_new(const struct ag_pool_opts *o, ag_pool **out, char *err, size_t errsz)
{
    pthread_condattr_t ca;
    ag_pool *p;
    int fail = 0;

    *out = NULL;
    p = calloc(1, sizeof *p);
    if (!p)
        goto nomem;
    p->max = o->max ? o->max : 1;
    /* the default (half the pool) is the configuration's (ag_config: max_push_waits) */
    p->max_long = o->max_long_polls < 1        ? 1
                  : o->max_long_polls > p->max ? p->max
                                               : o->max_long_polls;
    p->connect_timeout_ms = o->connect_timeout_ms;
    p->url = dup_or_null(o->url, &fail);
    p->pin = dup_or_null(o->pin, &fail);
    p->cafile = dup_or_null(o->cafile, &fail);
    p->token = dup_or_null(o->token, &fail);
    p->idle = calloc(p->max, sizeof *p->idle);
    if (fail || !p->idle)
        goto nomem;
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->freed, &ca);
    pthread_condattr_destroy(&ca);
    *out = p;
    return PC_OK;
nomem:
    if (p) {
        free(p->url);
        free(p->pin);
        free(p->cafile);
        pc_free_secret_str(p->token);
        free(p->idle);
        free(p);
    }
    snprintf(err, errsz, "out of memory");
    return PC_ERR_NOMEM;
}

void ag_pool_free(ag_pool *p)
{
    if (!p)
        return;
    for (unsigned i = 0; i < p->nidle; i++)
        pc_http_free(p->idle[i].h);
    pthread_cond_destroy(&p->freed);
    pthread_mutex_destroy(&p->lock);
    free(p->url);
    free(p->pin);
    free(p->cafile);
    pc_free_secret_str(p->token);
    free(p->idle);
    free(p);
}

unsigned ag_pool_size(ag_pool *p)
{
    unsigned n;
    pthread_mutex_lock(&p->lock);
    n = p->count;
    pthread_mutex_unlock(&p->lock);
    return n;
}

int ag_pool_long_poll_enter(ag_pool *p, unsigned *in_use)
{
    int admitted = 0;

    pthread_mutex_lock(&p->lock);
    if (p->nlong < p->max_long) {
        p->nlong++;
        admitted = 1;
    }
    if (in_use)
        *in_use = p->nlong;
    pthread_mutex_unlock(&p->lock);
    return admitted;
}

void ag_pool_long_poll_leave(ag_pool *p)
{
    pthread_mutex_lock(&p->lock);
    if (p->nlong > 0)
        p->nlong--;
    pthread_mutex_unlock(&p->lock);
}

unsigned ag_pool_long_poll_max(ag_pool *p)
{
    return p->max_long; /* set once in ag_pool_new */
}

static int make_handle(ag_pool *p, pc_http **h, char *err, size_t errsz)
{
    struct pc_http_opts o = {
        .base_url = p->url,
        .pin = p->pin,
        .cafile = p->cafile,
        .token = p->token,
        .connect_timeout_ms = p->connect_timeout_ms,
        .timeout_ms = 0,
    };
    return pc_http_new(&o, h, err, errsz);
}

/* Waits until deadline_ms for a handle. *h is an idle handle, or NULL with a reserved slot
 * (count already raised) that the caller fills with a new handle. */
static int checkout(ag_pool *p, int64_t deadline_ms, pc_http **h, char *err, size_t errsz)
{
    int rc = PC_OK;

    *h = NULL;
    pthread_mutex_lock(&p->lock);
    while (p->nidle == 0 && p->count >= p->max) {
        int64_t left = deadline_ms - pc_now_ms();
        struct timespec ts;
        if (left <= 0) {
            snprintf(err, errsz, "all %u connections to the control plane stayed busy", p->max);
            rc = PC_ERR_STATE; /* local capacity, not the network: reported as "busy" */
            goto out;
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += left / 1000;
        ts.tv_nsec += (left % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&p->freed, &p->lock, &ts);
    }
    if (p->nidle > 0) {
        struct slot s = p->idle[--p->nidle];
        if (pc_now_ms() - s.last_used_ms > AG_POOL_IDLE_MAX_MS) {
            pc_http_free(s.h); /* reserved slot: count unchanged, caller makes a new one */
        } else {
            *h = s.h;
        }
    } else {
        p->count++;
    }
out:
    pthread_mutex_unlock(&p->lock);
    return rc;
}

/* Returns a handle (or, with h NULL, gives back a reserved slot that could not be filled). */
static void checkin(ag_pool *p, pc_http *h)
{
    pthread_mutex_lock(&p->lock);
    if (h) {
        p->idle[p->nidle].h = h;
        p->idle[p->nidle].last_used_ms = pc_now_ms();
        p->nidle++;
    } else {
        p->count--;
    }
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->lock);
}

int ag_pool_call(ag_pool *p, const char *method, const char *path, json_object *body,
                 int64_t deadline_ms, int idempotent, long *status, json_object **reply, char *err,
                 size_t errsz)
{
    pc_http *h = NULL;
    int rc, attempts = idempotent ? 2 : 1;

    *status = 0;
    *reply = NULL;
    rc = checkout(p, deadline_ms, &h, err, errsz);
    if (rc != PC_OK)
        return rc;
    if (!h && (rc = make_handle(p, &h, err, errsz)) != PC_OK) {
        checkin(p, NULL);
        return rc;
    }
    for (int i = 0; i < attempts; i++) {
        int64_t left = deadline_ms - pc_now_ms();
        if (left <= 0) {
            if (i == 0) {
                snprintf(err, errsz, "no time left for the request");
                rc = PC_ERR_TIMEOUT;
            }
            break;
        }
        rc = pc_http_call(h, method, path, body, (long)left, status, reply, err, errsz);
        if (rc != PC_ERR_NET)
            break;
        if (i + 1 < attempts)
            pc_log(PC_LOG_INFO, "event=retry method=%s reason=unreachable", method);
    }
    checkin(p, h);
    return rc;
}
