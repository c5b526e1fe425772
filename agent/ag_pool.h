/* SPDX-License-Identifier: BSD-2-Clause */
/* A pool of pinned HTTPS handles to the control plane, one pool per instance URL (agent.conf's
 * url list; all instances share one TLS key, so one pin). Each handle keeps its TCP+TLS
 * connection open between calls (pc_http reuses it), so a login costs no handshake. Handles are
 * checked out per request and returned; each URL's pool grows up to `max` handles and otherwise
 * waits, bounded by the request's deadline. A call goes to a healthy instance (round robin) and
 * fails over to the next one inside its deadline; an instance that failed (refused, reset,
 * timed out, TLS, 5xx, garbage) is unhealthy until the pool's own probe (GET /v1/health, with
 * backoff) succeeds again. The probe thread also keeps one connection per healthy instance warm
 * (a cheap request every AG_POOL_PING_MS), so a login finds a connection without a handshake.
 * Thread-safe. */
#ifndef AG_POOL_H
#define AG_POOL_H
#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

/* A handle idle this long is replaced before use: portcullisd closes idle connections after
 * 30 s, and a request sent on a connection the server is closing cannot be safely retried. */
#define AG_POOL_IDLE_MAX_MS 20000
/* The warm connection of each healthy instance is used (GET /v1/health) at least this often. */
#define AG_POOL_PING_MS 10000
/* An unhealthy instance is probed after 1 s, then 2, 4, … up to this. */
#define AG_POOL_BACKOFF_MAX_MS 30000
#define AG_POOL_MAX_URLS 8

struct ag_pool_opts {
    const char *const *urls; /* n_urls instance URLs, 1..AG_POOL_MAX_URLS */
    unsigned n_urls;
    const char *pin, *cafile;
    const char *token; /* host token (copied; wiped on free) */
    long connect_timeout_ms;
    /* Kept back for the next instance when a call fails over: an attempt gets the call's time
     * left minus this (at most half of that time) while another instance is still to be
     * tried (0: no reserve). */
    long failover_reserve_ms;
    unsigned max;            /* at most this many handles (connections) per instance */
    unsigned max_long_polls; /* long-polls admitted at once (see ag_pool_long_poll_enter),
                                  1..max (kept in that range); agent.conf's max_push_waits */
    int no_thread;           /* no probe / keep-warm thread (unit tests) */
};

typedef struct ag_pool ag_pool;

int ag_pool_new(const struct ag_pool_opts *o, ag_pool **out, char *err, size_t errsz);
/* Stops the probe thread, frees idle handles and wipes the token. Call only when no request is
 * in flight. */
void ag_pool_free(ag_pool *p);

/* flags of ag_pool_call. A failure before any byte of the request was sent (refused, TLS, connect
 * timeout) always fails over: the server cannot have acted on it. After the request may have
 * been applied (reset or timeout after sending, 5xx, garbage) the call is sent again only with: */
#define AG_POOL_IDEMPOTENT \
    1                        /* safe to apply twice: sent again (also once more to the same
                                instance when it is the only one, on PC_ERR_NET) */
#define AG_POOL_REPEATABLE 2 /* a second copy is harmless (auth/begin: an unused transaction) */
#define AG_POOL_MARK_RESEND \
    4 /* sent again with "resend": true added to the body: the server
                                 answers a repeat of what it already applied (auth/totp) */

/* One control-plane exchange before deadline_ms (pc_now_ms clock): picks an instance, waits for
 * a handle, sends, returns the handle, fails over as flags allow. Returns what pc_http_call
 * returns for the last attempt, except that PC_ERR_TLS from any attempt wins over other
 * failures (a TLS failure never becomes "unreachable"); PC_ERR_TIMEOUT if no handle came free
 * in time. */
int ag_pool_call(ag_pool *p, const char *method, const char *path, json_object *body,
                 int64_t deadline_ms, unsigned flags, long *status, json_object **reply, char *err,
                 size_t errsz);

/* Long-polls (push_wait: a call held open by the control plane for up to a minute) have a lane
 * of their own: at most max_long_polls of them are admitted at once, so they can hold at most
 * that many connections and the rest of the pool stays for ordinary calls. A long-poll enters
 * before its ag_pool_call and leaves after it. Returns 1 when admitted, or 0 when the lane is
 * full (nothing to leave then; the caller refuses the request). *in_use, if not NULL, gets the
 * number of long-polls admitted (including this one when admitted). Never waits. */
int ag_pool_long_poll_enter(ag_pool *p, unsigned *in_use);
void ag_pool_long_poll_leave(ag_pool *p);
/* The lane's bound (for messages). */
unsigned ag_pool_long_poll_max(ag_pool *p);

/* Handles currently in existence, over all instances (for logs/tests). */
unsigned ag_pool_size(ag_pool *p);

/* Each instance's state as a JSON array of {"url", "state": "healthy"|"unhealthy",
 * "connections", "last_success" (unix time, 0: never), "latency_ms" (of the last success),
 * "last_error", "last_error_at", "failures" (in a row)}. NULL when out of memory. */
json_object *ag_pool_describe(ag_pool *p);

#endif
