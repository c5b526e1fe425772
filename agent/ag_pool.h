/* SPDX-License-Identifier: BSD-2-Clause */
/* A pool of pinned HTTPS handles to the control plane. Each handle keeps its TCP+TLS
 * connection open between calls (libcurl reuses it), so a login costs no handshake. Handles are
 * checked out per request and returned; the pool grows up to `max` handles and otherwise waits,
 * bounded by the request's deadline. Thread-safe. */
#ifndef AG_POOL_H
#define AG_POOL_H
#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

/* A handle idle this long is replaced before use: portcullisd closes idle connections after
 * 30 s, and a request sent on a connection the server is closing cannot be safely retried. */
#define AG_POOL_IDLE_MAX_MS 20000

struct ag_pool_opts {
    const char *url, *pin, *cafile;
    const char *token; /* host token (copied; wiped on free) */
    long connect_timeout_ms;
    unsigned max;            /* at most this many handles (connections) */
    unsigned max_long_polls; /* long-polls admitted at once (see ag_pool_long_poll_enter),
                                  1..max (kept in that range); agent.conf's max_push_waits */
};

typedef struct ag_pool ag_pool;

int ag_pool_new(const struct ag_pool_opts *o, ag_pool **out, char *err, size_t errsz);
/* Frees idle handles and wipes the token. Call only when no request is in flight. */
void ag_pool_free(ag_pool *p);

/* One control-plane exchange before deadline_ms (pc_now_ms clock): waits for a handle, sends,
 * returns the handle. With idempotent, a PC_ERR_NET failure is retried once if time is left.
 * Returns what pc_http_call returns, or PC_ERR_TIMEOUT if no handle came free in time. */
int ag_pool_call(ag_pool *p, const char *method, const char *path, json_object *body,
                 int64_t deadline_ms, int idempotent, long *status, json_object **reply, char *err,
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

/* Handles currently in existence (for logs/tests). */
unsigned ag_pool_size(ag_pool *p);

#endif
