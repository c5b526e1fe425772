/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "cp_admission.h"
#include "cp_metrics.h"
#include "cp_refusals.h"
#include "pc_err.h"
#include "pc_log.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUCKETS 4096
#define KEY_MAX 64
#define RECENT_MS (10 * 60 * 1000) /* an address that proved itself stays "known" this long */
#define TICK_MS 250                /* the deadline thread's period */

/* One source address (as cp_refusal_source_key counts it). Kept while it has connections or
 * proved itself within RECENT_MS; only callers with a valid credential create the latter. */
struct addr {
    char key[KEY_MAX];
    unsigned unproven, proven;
    unsigned vouched; /* proven connections that presented a host's or the admin's token */
    int64_t proven_until_ms;
    struct addr *next;
};

/* One connection (libmicrohttpd's socket context). */
struct conn {
    struct addr *addr;
    int fd;
    int64_t deadline_ms; /* handshake deadline while pending */
    int pending;         /* in the deadline list: no request headers yet */
    int proven, vouched;
    struct conn *prev, *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static struct addr *table[BUCKETS];
static struct conn *pend_head, *pend_tail; /* accept order = deadline order */
static unsigned total_unproven;
static struct cp_admission_limits lim = { 1024, 64, 5, 60 };
static pthread_t reaper;
static int running, stopping;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cp_admission_addr_string(const struct sockaddr *sa, char *out, size_t n)
{
    snprintf(out, n, "unknown");
    if (!sa)
        return;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)n);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)n);
}

static unsigned bucket_of(const char *key)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % BUCKETS;
}

/* The entry of key (locked); with create, a new one if none (NULL when out of memory). */
static struct addr *addr_find(const char *key, int create)
{
    unsigned b = bucket_of(key);
    struct addr *a;

    for (a = table[b]; a; a = a->next)
        if (strcmp(a->key, key) == 0)
            return a;
    if (!create || !(a = calloc(1, sizeof *a)))
        return NULL;
    snprintf(a->key, sizeof a->key, "%s", key);
    a->next = table[b];
    table[b] = a;
    return a;
}

/* Frees the entries with no connections whose "recently proven" time has passed (locked). */
static void addr_sweep(int64_t now)
{
    for (unsigned b = 0; b < BUCKETS; b++) {
        struct addr **pp = &table[b];
        while (*pp) {
            struct addr *a = *pp;
            if (a->unproven == 0 && a->proven == 0 && a->proven_until_ms <= now) {
                *pp = a->next;
                free(a);
            } else {
                pp = &a->next;
            }
        }
    }
}

static void addr_key_of(const struct sockaddr *sa, char key[KEY_MAX])
{
    char s[INET6_ADDRSTRLEN];
    cp_admission_addr_string(sa, s, sizeof s);
    cp_refusal_source_key(s, key);
}

static void pend_remove(struct conn *c)
{
    if (!c->pending)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        pend_head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        pend_tail = c->prev;
    c->prev = c->next = NULL;
    c->pending = 0;
}

enum MHD_Result cp_admission_accept(void *cls, const struct sockaddr *sa, socklen_t addrlen)
{
    char key[KEY_MAX];
    struct addr *a;
    int64_t now = mono_ms();
    const char *why = NULL;
    int known;

    (void)cls;
    (void)addrlen;
    addr_key_of(sa, key);
    pthread_mutex_lock(&lock);
    a = addr_find(key, 0);
    known = a && (a->vouched || a->proven_until_ms > now);
    /* A known address (a host, or hosts behind one NAT address, opening a burst of connections
     * that prove themselves a moment later) may hold up to the overall cap. */
    if (a && a->unproven >=
                 (known && lim.max_unauth > lim.per_address ? lim.max_unauth : lim.per_address))
        why = "per_address";
    else if (!known && total_unproven >= lim.max_unauth)
        why = "unauthenticated";
    pthread_mutex_unlock(&lock);
    if (!why)
        return MHD_YES;
    /* counted in memory; one summary row per address and window (cp_refusals.h) */
    cp_refusal_count(key);
    pc_metric_inc(&cp_m_refused_unauth, "connection_limit", NULL, NULL);
    pc_log(PC_LOG_DEBUG, "event=connection_refused source=%s limit=%s", key, why);
    return MHD_NO;
}

static void conn_started(struct MHD_Connection *mc, void **socket_context)
{
    const union MHD_ConnectionInfo *ai =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const union MHD_ConnectionInfo *fi = MHD_get_connection_info(mc,
                                                                 MHD_CONNECTION_INFO_CONNECTION_FD);
    struct conn *c = calloc(1, sizeof *c);
    char key[KEY_MAX];

    addr_key_of(ai ? ai->client_addr : NULL, key);
    pthread_mutex_lock(&lock);
    if (c && !(c->addr = addr_find(key, 1))) {
        free(c);
        c = NULL;
    }
    if (c) {
        c->fd = fi ? (int)fi->connect_fd : -1;
        c->addr->unproven++;
        total_unproven++;
        c->deadline_ms = mono_ms() + (int64_t)lim.handshake_s * 1000;
        c->pending = 1;
        c->prev = pend_tail;
        if (pend_tail)
            pend_tail->next = c;
        else
            pend_head = c;
        pend_tail = c;
    }
    pthread_mutex_unlock(&lock);
    /* Out of memory: the connection goes uncounted; the deadline of libmicrohttpd's idle
     * timeout (the unproven one) still applies. */
    *socket_context = c;
}

static void conn_closed(void **socket_context)
{
    struct conn *c = *socket_context;

    if (!c)
        return;
    pthread_mutex_lock(&lock);
    pend_remove(c);
    if (c->proven) {
        c->addr->proven--;
        if (c->vouched)
            c->addr->vouched--;
    } else {
        c->addr->unproven--;
        total_unproven--;
    }
    pthread_mutex_unlock(&lock);
    free(c); /* the addr entry is freed by the sweep */
    *socket_context = NULL;
}

void cp_admission_notify(void *cls, struct MHD_Connection *mc, void **socket_context,
                         enum MHD_ConnectionNotificationCode toe)
{
    (void)cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED)
        conn_started(mc, socket_context);
    else if (toe == MHD_CONNECTION_NOTIFY_CLOSED)
        conn_closed(socket_context);
}

static struct conn *conn_of(struct MHD_Connection *mc)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

void cp_admission_request_started(struct MHD_Connection *mc)
{
    struct conn *c = conn_of(mc);

    if (!c)
        return;
    pthread_mutex_lock(&lock);
    pend_remove(c);
    pthread_mutex_unlock(&lock);
}

void cp_admission_proven(struct MHD_Connection *mc, int vouches)
{
    struct conn *c = conn_of(mc);
    int changed = 0;

    if (!c)
        return;
    pthread_mutex_lock(&lock);
    pend_remove(c);
    if (!c->proven) {
        c->proven = 1;
        c->addr->unproven--;
        c->addr->proven++;
        total_unproven--;
        changed = 1;
    }
    if (vouches && !c->vouched) {
        c->vouched = 1;
        c->addr->vouched++;
    }
    if (vouches)
        c->addr->proven_until_ms = mono_ms() + RECENT_MS;
    pthread_mutex_unlock(&lock);
    /* from inside the access handler (its worker thread), as libmicrohttpd requires */
    if (changed)
        MHD_set_connection_option(mc, MHD_CONNECTION_OPTION_TIMEOUT, lim.idle_s);
}

/* Shuts down every connection past its handshake deadline (locked). shutdown() only: the
 * worker thread sees the end of the stream and closes the connection itself (NOTIFY_CLOSED,
 * which takes this lock, runs before libmicrohttpd closes the descriptor, so fd is still the
 * connection's own here). */
static unsigned reap(int64_t now)
{
    unsigned n = 0;

    while (pend_head && pend_head->deadline_ms <= now) {
        struct conn *c = pend_head;
        if (c->fd >= 0)
            shutdown(c->fd, SHUT_RDWR);
        pend_remove(c);
        n++;
    }
    return n;
}

static void *reaper_main(void *arg)
{
    unsigned ticks = 0;
    (void)arg;

    pthread_mutex_lock(&lock);
    while (!stopping) {
        struct timespec ts;
        unsigned n;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&wake, &lock, &ts);
        if (stopping)
            break;
        n = reap(mono_ms());
        if (n)
            pc_log(PC_LOG_DEBUG, "event=handshake_deadline closed=%u", n);
        if (++ticks % 40 == 0)
            addr_sweep(mono_ms());
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

int cp_admission_start(const struct cp_admission_limits *l)
{
    pthread_mutex_lock(&lock);
    lim = *l;
    stopping = 0;
    pthread_mutex_unlock(&lock);
    if (pthread_create(&reaper, NULL, reaper_main, NULL) != 0)
        return PC_ERR_NOMEM;
    running = 1;
    return PC_OK;
}

void cp_admission_stop(void)
{
    if (!running)
        return;
    pthread_mutex_lock(&lock);
    stopping = 1;
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&lock);
    pthread_join(reaper, NULL);
    running = 0;
    pthread_mutex_lock(&lock);
    addr_sweep(INT64_MAX); /* connections are gone (after cp_server_stop) */
    pthread_mutex_unlock(&lock);
}
