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
    const char *token;         /* host token (copied; wiped on free) */
    long connect_timeout_ms;
    unsigned max;              /* at most this many handles (connections) */
};

typedef struct ag_pool ag_pool;

int ag_pool_new(const struct ag_pool_opts *o, ag_pool **out, char *err, size_t errsz);
/* Frees idle handles and wipes the token. Call only when no request is in flight. */
void ag_pool_free(ag_pool *p);

/* One control-plane exchange before deadline_ms (pc_now_ms clock): waits for a handle, sends,
 * returns the handle. With idempotent, a PC_ERR_NET failure is retried once if time is left.
 * Returns what pc_http_call returns, or PC_ERR_TIMEOUT if no handle came free in time. */
int ag_pool_call(ag_pool *p, const char *method, const char *path, json_object *body,
                 int64_t deadline_ms, int idempotent, long *status, json_object **reply,
                 char *err, size_t errsz);

/* Handles currently in existence (for logs/tests). */
unsigned ag_pool_size(ag_pool *p);

#endif
