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

/* One instance: its handles and its health. All fields under the pool's lock. */
struct backend {
    char *url;
    unsigned count, nidle;
    struct slot *idle; /* stack of idle handles, nidle of them */
    int healthy;
    unsigned failures;   /* in a row */
    int64_t retry_at_ms; /* unhealthy: when the probe tries again */
    int64_t last_ok;     /* unix time of the last success, 0: never */
    long latency_ms;     /* of the last success */
    int64_t last_err_at; /* unix time */
    char last_error[200];
};

struct ag_pool {
    pthread_mutex_t lock;
    pthread_cond_t freed, wake;
    char *pin, *cafile, *token;
    long connect_timeout_ms, reserve_ms;
    unsigned max, max_long, nlong; /* long-poll lane: bound and admitted (see ag_pool.h) */
    unsigned n, rr;                /* instances; round-robin start */
    struct backend b[AG_POOL_MAX_URLS];
    pthread_t thread;
    int has_thread, stop;
};

static void *probe_main(void *arg);

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

static void release(ag_pool *p)
{
    for (unsigned i = 0; i < p->n; i++) {
        for (unsigned j = 0; j < p->b[i].nidle; j++)
            pc_http_free(p->b[i].idle[j].h);
        free(p->b[i].idle);
        free(p->b[i].url);
    }
    free(p->pin);
    free(p->cafile);
    pc_free_secret_str(p->token);
    free(p);
}

int ag_pool_new(const struct ag_pool_opts *o, ag_pool **out, char *err, size_t errsz)
{
    pthread_condattr_t ca;
    ag_pool *p;
    int fail = 0;

    *out = NULL;
    if (o->n_urls < 1 || o->n_urls > AG_POOL_MAX_URLS) {
        snprintf(err, errsz, "between 1 and %d control-plane URLs are needed", AG_POOL_MAX_URLS);
        return PC_ERR_INVAL;
    }
    p = calloc(1, sizeof *p);
    if (!p)
        goto nomem;
    p->max = o->max ? o->max : 1;
    /* the default (half the pool) is the configuration's (ag_config: max_push_waits) */
    p->max_long = o->max_long_polls < 1        ? 1
                  : o->max_long_polls > p->max ? p->max
                                               : o->max_long_polls;
    p->connect_timeout_ms = o->connect_timeout_ms;
    p->reserve_ms = o->failover_reserve_ms > 0 ? o->failover_reserve_ms : 0;
    p->pin = dup_or_null(o->pin, &fail);
    p->cafile = dup_or_null(o->cafile, &fail);
    p->token = dup_or_null(o->token, &fail);
    p->n = o->n_urls;
    for (unsigned i = 0; i < p->n; i++) {
        p->b[i].url = dup_or_null(o->urls[i], &fail);
        p->b[i].idle = calloc(p->max, sizeof *p->b[i].idle);
        p->b[i].healthy = 1; /* until shown otherwise */
        if (!p->b[i].idle)
            fail = 1;
    }
    if (fail)
        goto nomem;
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->freed, &ca);
    pthread_cond_init(&p->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (!o->no_thread) {
        if (pthread_create(&p->thread, NULL, probe_main, p) != 0) {
            snprintf(err, errsz, "cannot start the connection probe thread");
            pthread_cond_destroy(&p->freed);
            pthread_cond_destroy(&p->wake);
            pthread_mutex_destroy(&p->lock);
            release(p);
            return PC_ERR_NOMEM;
        }
        p->has_thread = 1;
    }
    *out = p;
    return PC_OK;
nomem:
    if (p)
        release(p);
    snprintf(err, errsz, "out of memory");
    return PC_ERR_NOMEM;
}

void ag_pool_free(ag_pool *p)
{
    if (!p)
        return;
    if (p->has_thread) {
        pthread_mutex_lock(&p->lock);
        p->stop = 1;
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->lock);
        pthread_join(p->thread, NULL);
    }
    pthread_cond_destroy(&p->freed);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    release(p);
}

unsigned ag_pool_size(ag_pool *p)
{
    unsigned n = 0;
    pthread_mutex_lock(&p->lock);
    for (unsigned i = 0; i < p->n; i++)
        n += p->b[i].count;
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

static int make_handle(ag_pool *p, const struct backend *b, pc_http **h, char *err, size_t errsz)
{
    struct pc_http_opts o = {
        .base_url = b->url,
        .pin = p->pin,
        .cafile = p->cafile,
        .token = p->token,
        .connect_timeout_ms = p->connect_timeout_ms,
        .timeout_ms = 0,
    };
    return pc_http_new(&o, h, err, errsz);
}

/* Under lock: the result of an exchange with b. */
static void mark_ok(struct backend *b, long latency_ms)
{
    if (!b->healthy)
        pc_log(PC_LOG_INFO, "event=instance_healthy url=%s", b->url);
    b->healthy = 1;
    b->failures = 0;
    b->last_ok = pc_now();
    b->latency_ms = latency_ms;
}

static void mark_failed(struct backend *b, const char *why)
{
    int64_t backoff = 1000;

    for (unsigned i = 0; i < b->failures && backoff < AG_POOL_BACKOFF_MAX_MS; i++)
        backoff *= 2;
    if (backoff > AG_POOL_BACKOFF_MAX_MS)
        backoff = AG_POOL_BACKOFF_MAX_MS;
    if (b->healthy)
        pc_log(PC_LOG_WARN, "event=instance_unhealthy url=%s detail=\"%s\"", b->url, why);
    b->healthy = 0;
    if (b->failures < 64)
        b->failures++;
    b->retry_at_ms = pc_now_ms() + backoff;
    b->last_err_at = pc_now();
    snprintf(b->last_error, sizeof b->last_error, "%s", why);
}

static void wait_until(ag_pool *p, pthread_cond_t *cv, int64_t deadline_ms)
{
    int64_t left = deadline_ms - pc_now_ms();
    struct timespec ts;

    if (left < 0)
        left = 0;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += left / 1000;
    ts.tv_nsec += (left % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(cv, &p->lock, &ts);
}

/* Waits until deadline_ms for a handle of b. *h is an idle handle, or NULL with a reserved slot
 * (count already raised) that the caller fills with a new handle. */
static int checkout(ag_pool *p, struct backend *b, int64_t deadline_ms, pc_http **h, char *err,
                    size_t errsz)
{
    int rc = PC_OK;

    *h = NULL;
    pthread_mutex_lock(&p->lock);
    while (b->nidle == 0 && b->count >= p->max) {
        if (deadline_ms - pc_now_ms() <= 0) {
            snprintf(err, errsz, "all %u connections to %s stayed busy", p->max, b->url);
            rc = PC_ERR_STATE; /* local capacity, not the network: reported as "busy" */
            goto out;
        }
        wait_until(p, &p->freed, deadline_ms);
    }
    if (b->nidle > 0) {
        struct slot s = b->idle[--b->nidle];
        if (pc_now_ms() - s.last_used_ms > AG_POOL_IDLE_MAX_MS) {
            pc_http_free(s.h); /* reserved slot: count unchanged, caller makes a new one */
        } else {
            *h = s.h;
        }
    } else {
        b->count++;
    }
out:
    pthread_mutex_unlock(&p->lock);
    return rc;
}

/* Returns a handle (or, with h NULL, gives back a slot: reserved and not filled, or a handle
 * that failed and was freed by the caller). */
static void checkin(ag_pool *p, struct backend *b, pc_http *h)
{
    pthread_mutex_lock(&p->lock);
    if (h) {
        b->idle[b->nidle].h = h;
        b->idle[b->nidle].last_used_ms = pc_now_ms();
        b->nidle++;
    } else {
        b->count--;
    }
    pthread_cond_broadcast(&p->freed);
    pthread_mutex_unlock(&p->lock);
}

/* The next instance to try: a healthy one not tried yet (round robin), else, as a last resort,
 * the unhealthy one not tried yet that is due for a probe soonest. -1 when all were tried. */
static int pick(ag_pool *p, unsigned tried, unsigned *left_after)
{
    int best = -1, start;
    unsigned untried = 0;

    pthread_mutex_lock(&p->lock);
    start = (int)(p->rr++ % p->n);
    for (unsigned k = 0; k < p->n; k++) {
        unsigned i = (unsigned)(start + (int)k) % p->n;
        if (tried & (1u << i))
            continue;
        untried++;
        if (p->b[i].healthy && (best < 0 || !p->b[best].healthy))
            best = (int)i;
        else if (!p->b[i].healthy && (best < 0 || (!p->b[best].healthy &&
                                                   p->b[i].retry_at_ms < p->b[best].retry_at_ms)))
            best = (int)i;
    }
    pthread_mutex_unlock(&p->lock);
    *left_after = untried ? untried - 1 : 0;
    return best;
}

/* Is a failure (rc, status) the instance's fault? Then it is marked unhealthy. Answers below
 * 500 (a refusal, a 404 for an unknown transaction) are the instance working. */
static int instance_failed(int rc, long status)
{
    if (rc == PC_OK)
        return status >= 500 || status == 0;
    return rc == PC_ERR_NET || rc == PC_ERR_TIMEOUT || rc == PC_ERR_TLS || rc == PC_ERR_PARSE ||
           rc == PC_ERR_TOOBIG;
}

/* One attempt on backend b within budget_ms. *sent: the server may have acted on it. */
static int attempt(ag_pool *p, struct backend *b, const char *method, const char *path,
                   json_object *body, int64_t deadline_ms, long budget_ms, unsigned flags,
                   long *status, json_object **reply, int *sent, char *err, size_t errsz)
{
    pc_http *h = NULL;
    int rc, tries = (flags & AG_POOL_IDEMPOTENT) && p->n == 1 ? 2 : 1;
    int64_t t0;

    *sent = 0;
    /* a busy instance waits only this attempt's share, then the next instance is tried */
    rc = checkout(p, b, pc_now_ms() + budget_ms, &h, err, errsz);
    if (rc != PC_OK)
        return rc;
    if (!h && (rc = make_handle(p, b, &h, err, errsz)) != PC_OK) {
        checkin(p, b, NULL);
        return rc;
    }
    for (int i = 0; i < tries; i++) {
        int64_t left = deadline_ms - pc_now_ms();
        if (left <= 0) {
            if (i == 0) {
                snprintf(err, errsz, "no time left for the request");
                rc = PC_ERR_TIMEOUT;
            }
            break;
        }
        if (left > budget_ms)
            left = budget_ms;
        if (reply && *reply) {
            json_object_put(*reply);
            *reply = NULL;
        }
        t0 = pc_now_ms();
        rc = pc_http_call(h, method, path, body, (long)left, status, reply, err, errsz);
        if (rc != PC_OK)
            *sent = *sent || pc_http_request_sent(h);
        else
            *sent = 1;
        if (rc != PC_ERR_NET)
            break;
        if (i + 1 < tries)
            pc_log(PC_LOG_INFO, "event=retry method=%s reason=unreachable", method);
    }
    pthread_mutex_lock(&p->lock);
    if (instance_failed(rc, *status))
        mark_failed(b, rc == PC_OK ? "answered HTTP 5xx" : err);
    else if (rc == PC_OK)
        mark_ok(b, (long)(pc_now_ms() - t0));
    pthread_mutex_unlock(&p->lock);
    if (rc != PC_OK && rc != PC_ERR_STATE) {
        pc_http_free(h); /* a failed connection is not kept */
        h = NULL;
    }
    checkin(p, b, h);
    return rc;
}

int ag_pool_call(ag_pool *p, const char *method, const char *path, json_object *body,
                 int64_t deadline_ms, unsigned flags, long *status, json_object **reply, char *err,
                 size_t errsz)
{
    char tls_err[256] = "";
    unsigned tried = 0, left_after = 0;
    int rc = PC_ERR_TIMEOUT, i, sent = 0, saw_tls = 0;

    *status = 0;
    *reply = NULL;
    snprintf(err, errsz, "no time left for the request");
    while ((i = pick(p, tried, &left_after)) >= 0) {
        int64_t left = deadline_ms - pc_now_ms();
        long budget;
        if (left <= 0)
            break;
        if (sent) {
            /* the previous attempt may have been applied: send again only where that is safe */
            if ((flags & AG_POOL_MARK_RESEND) && body)
                json_object_object_add(body, "resend", json_object_new_boolean(1));
            else if (!(flags & (AG_POOL_IDEMPOTENT | AG_POOL_REPEATABLE)))
                break;
            pc_log(PC_LOG_INFO, "event=failover method=%s to=%s resend=1", method, p->b[i].url);
        } else if (tried) {
            pc_log(PC_LOG_INFO, "event=failover method=%s to=%s", method, p->b[i].url);
        }
        tried |= 1u << i;
        /* while another instance remains, keep some time for it: half of `timeout`, at most
         * half of what is left (a short call like principals splits its budget) */
        budget = (long)left;
        if (left_after > 0)
            budget = (long)(left - (p->reserve_ms < left / 2 ? p->reserve_ms : left / 2));
        if (*reply) {
            json_object_put(*reply);
            *reply = NULL;
        }
        *status = 0;
        rc = attempt(p, &p->b[i], method, path, body, deadline_ms, budget, flags, status, reply,
                     &sent, err, errsz);
        if (rc == PC_ERR_TLS && !saw_tls) {
            saw_tls = 1;
            snprintf(tls_err, sizeof tls_err, "%s", err);
        }
        if (!instance_failed(rc, *status) && rc != PC_ERR_STATE)
            break; /* an answer (or a local fault no other instance would change) */
    }
    if (saw_tls && rc != PC_OK) {
        /* a TLS failure anywhere never reads as "unreachable" (it must never follow failmode) */
        snprintf(err, errsz, "%s", tls_err);
        rc = PC_ERR_TLS;
    }
    return rc;
}

/* The probe thread: every second, probes the unhealthy instances that are due and pings the
 * warm connection of each healthy one that was not used for AG_POOL_PING_MS. */
static void probe_one(ag_pool *p, struct backend *b)
{
    char err[256] = "";
    pc_http *h = NULL;
    json_object *reply = NULL;
    long status = 0;
    int64_t t0;
    int rc, fresh = 0;

    pthread_mutex_lock(&p->lock);
    if (b->healthy && b->nidle > 0 &&
        pc_now_ms() - b->idle[b->nidle - 1].last_used_ms < AG_POOL_PING_MS) {
        pthread_mutex_unlock(&p->lock);
        return; /* used recently: warm */
    }
    if (b->healthy && b->nidle > 0 &&
        pc_now_ms() - b->idle[b->nidle - 1].last_used_ms <= AG_POOL_IDLE_MAX_MS) {
        h = b->idle[--b->nidle].h;
    } else if (b->count < p->max &&
               (b->healthy ? b->count == 0 || b->nidle > 0 : pc_now_ms() >= b->retry_at_ms)) {
        if (b->nidle > 0) { /* too old to use: replaced */
            pc_http_free(b->idle[--b->nidle].h);
            b->count--;
        }
        b->count++;
        fresh = 1;
    } else {
        pthread_mutex_unlock(&p->lock);
        return; /* healthy and all connections in use, or not due */
    }
    pthread_mutex_unlock(&p->lock);
    if (fresh && (rc = make_handle(p, b, &h, err, sizeof err)) != PC_OK) {
        checkin(p, b, NULL);
        return;
    }
    t0 = pc_now_ms();
    rc = pc_http_call(h, "GET", "/v1/health", NULL, p->connect_timeout_ms + 2000, &status, &reply,
                      err, sizeof err);
    if (reply)
        json_object_put(reply);
    pthread_mutex_lock(&p->lock);
    if (rc == PC_OK && status == 200) {
        mark_ok(b, (long)(pc_now_ms() - t0));
    } else {
        if (rc == PC_OK)
            snprintf(err, sizeof err, "GET /v1/health answered HTTP %ld", status);
        mark_failed(b, err);
    }
    pthread_mutex_unlock(&p->lock);
    if (rc != PC_OK || status != 200) {
        pc_http_free(h);
        h = NULL;
    }
    checkin(p, b, h);
}

static void *probe_main(void *arg)
{
    ag_pool *p = arg;

    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        pthread_mutex_unlock(&p->lock);
        for (unsigned i = 0; i < p->n; i++)
            probe_one(p, &p->b[i]);
        pthread_mutex_lock(&p->lock);
        if (!p->stop)
            wait_until(p, &p->wake, pc_now_ms() + 1000);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

json_object *ag_pool_describe(ag_pool *p)
{
    json_object *a = json_object_new_array();

    if (!a)
        return NULL;
    pthread_mutex_lock(&p->lock);
    for (unsigned i = 0; i < p->n; i++) {
        const struct backend *b = &p->b[i];
        json_object *o = json_object_new_object();
        if (!o)
            break;
        json_object_object_add(o, "url", json_object_new_string(b->url));
        json_object_object_add(o, "state",
                               json_object_new_string(b->healthy ? "healthy" : "unhealthy"));
        json_object_object_add(o, "connections", json_object_new_int((int)b->count));
        json_object_object_add(o, "last_success", json_object_new_int64(b->last_ok));
        json_object_object_add(o, "latency_ms", json_object_new_int64(b->latency_ms));
        json_object_object_add(o, "failures", json_object_new_int((int)b->failures));
        json_object_object_add(o, "last_error", json_object_new_string(b->last_error));
        json_object_object_add(o, "last_error_at", json_object_new_int64(b->last_err_at));
        json_object_array_add(a, o);
    }
    pthread_mutex_unlock(&p->lock);
    return a;
}
