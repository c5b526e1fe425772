/* SPDX-License-Identifier: BSD-2-Clause */
/* What every request handler of the agent shares (ag_ops.c, ag_principals.c) and the status
 * probe uses: the request context, one call to the control plane over the pool, and the
 * protocol's error replies (docs/AGENT-PROTOCOL.md). Below the handlers: it knows none of them. */
#ifndef AG_OPS_CALL_H
#define AG_OPS_CALL_H
#include "ag_config.h"
#include "ag_pool.h"
#include <json-c/json.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct ag_pcache;

struct ag_ctx {
    const struct ag_config *cfg;
    pthread_mutex_t lock;
    ag_pool *pool;            /* NULL until the host token has been read */
    struct ag_pcache *pcache; /* op principals' cache of allows (ag_principals.h) */
    /* Set when agent.conf did not load: every request is answered with the error "config"
     * (docs/AGENT-PROTOCOL.md) and nothing else is done. config_error is the whole scrubbed
     * message (logged), config_where its FILE:LINE (told to clients). */
    const char *config_error;
    const char *config_where;
    int64_t refused_logged_ms; /* under lock: when a refusal was last logged (0: never) */
    unsigned refused_unlogged; /* under lock: refusals since */
};

/* flags of ag_ops_cp_call */
#define AG_CALL_IDEMPOTENT \
    1 /* safe to send twice: retried once on PC_ERR_NET, and sent to
                                another instance after any failure */
#define AG_CALL_LONG_POLL \
    2 /* held open by the control plane (push_wait): admitted only
                                  within max_push_waits, else the error "push_busy" */

#define AG_CALL_REPEATABLE \
    4                         /* a second copy is harmless: another instance gets it after a
                                failure that may have been applied (auth/begin) */
#define AG_CALL_MARK_RESEND 8 /* another instance gets it with "resend": true (auth/totp) */

/* One call to the control plane over the pool. On success (HTTP 200 with a JSON object)
 * returns NULL and sets *ok (the caller puts it); otherwise returns the error reply
 * {"ok":false,"error":CODE,…}. extra_ms is added to the configured timeout (may be negative);
 * flags are AG_CALL_*. */
json_object *ag_ops_cp_call(struct ag_ctx *x, const char *op, const char *method, const char *path,
                            json_object *body, long extra_ms, unsigned flags, json_object **ok);
/* Creates the pool now (it is otherwise made on first use) so that its probe thread opens and
 * keeps a warm connection to each instance before the first login. Nothing on failure (the
 * first call reports it). */
void ag_ops_pool_start(struct ag_ctx *x);
/* A copy of s for logs: only [A-Za-z0-9._@:-], anything else becomes '?'. */
const char *ag_ops_log_safe(const char *s, char *buf, size_t n);

/* {"ok":false,"error":code,"message":message} */
json_object *ag_ops_error(const char *code, const char *message);
/* The protocol's error code for a pc_http_call result: rc, then HTTP status when rc is 0. */
const char *ag_ops_code_for(int rc, long status);

#endif
