/* SPDX-License-Identifier: BSD-2-Clause */
/* The agent's request handlers: one PAM request object in, one reply object out
 * (docs/AGENT-PROTOCOL.md). Every control-plane reply is validated strictly before anything
 * of it reaches the reply: a reply that is not what we expect is "garbage", never "allow". */
#ifndef AG_OPS_H
#define AG_OPS_H
#include "ag_config.h"
#include "ag_pool.h"
#include <json-c/json.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#define AG_PUSH_WAIT_MAX 60     /* push_wait's wait is capped at this many seconds */

struct ag_pcache;

#define AG_CONFIG_LOG_MS 10000 /* a refusing agent logs refused requests at most this often */

struct ag_ctx {
    const struct ag_config *cfg;
    pthread_mutex_t lock;
    ag_pool *pool;             /* NULL until the host token has been read */
    struct ag_pcache *pcache;  /* op principals' cache of allows (ag_principals.h) */
    /* Set when agent.conf did not load: every request is answered with the error "config"
     * (docs/AGENT-PROTOCOL.md) and nothing else is done. config_error is the whole scrubbed
     * message (logged), config_where its FILE:LINE (told to clients). */
    const char *config_error;
    const char *config_where;
    int64_t refused_logged_ms; /* under lock: when a refusal was last logged (0: never) */
    unsigned refused_unlogged; /* under lock: refusals since */
};

/* Reads the host token if present (a missing token is not an error: login requests get
 * "not_enrolled" until it appears). */
int ag_ctx_init(struct ag_ctx *x, const struct ag_config *cfg, char *err, size_t errsz);
/* Frees the pool and wipes the token. Only when no request is in flight. */
void ag_ctx_free(struct ag_ctx *x);

/* SIGHUP: reads agent.conf again and logs whether it is valid. Nothing is applied (the agent
 * does not reload): a valid file is used from the next start, and a broken one never replaces
 * the configuration in force. */
void ag_ops_recheck_config(const struct ag_ctx *x);

/* Handles one request from a peer with uid peer_uid. Returns the reply (never NULL unless out
 * of memory); *close_after is set when the connection must be closed after the reply. */
json_object *ag_ops_handle(struct ag_ctx *x, json_object *req, uid_t peer_uid, int *close_after);

/* flags of ag_ops_cp_call */
#define AG_CALL_IDEMPOTENT 1   /* safe to send twice: retried once on PC_ERR_NET */
#define AG_CALL_LONG_POLL 2    /* held open by the control plane (push_wait): admitted only
                                  within max_push_waits, else the error "push_busy" */

/* One call to the control plane over the pool. On success (HTTP 200 with a JSON object)
 * returns NULL and sets *ok (the caller puts it); otherwise returns the error reply
 * {"ok":false,"error":CODE,…}. extra_ms is added to the configured timeout (may be negative);
 * flags are AG_CALL_*. */
json_object *ag_ops_cp_call(struct ag_ctx *x, const char *op, const char *method,
                           const char *path, json_object *body, long extra_ms, unsigned flags,
                           json_object **ok);
/* A copy of s for logs: only [A-Za-z0-9._@:-], anything else becomes '?'. */
const char *ag_ops_log_safe(const char *s, char *buf, size_t n);

/* {"ok":false,"error":code,"message":message} */
json_object *ag_ops_error(const char *code, const char *message);
/* The protocol's error code for a pc_http_call result: rc, then HTTP status when rc is 0. */
const char *ag_ops_code_for(int rc, long status);

#endif
