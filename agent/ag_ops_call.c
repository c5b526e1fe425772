/* SPDX-License-Identifier: BSD-2-Clause */
/* What every request handler shares: one call to the control plane over the pool, and the
 * protocol's error replies (see ag_ops_call.h). */
#include "config.h"
#include "ag_ops_call.h"
#include "ag_metrics.h"
#include "ag_enroll.h"
#include "pc_agent_proto.h"
#include "pc_err.h"
#include "pc_json.h"
#include "pc_log.h"
#include "pc_mem.h"
#include "pc_time.h"
#include <stdio.h>
#include <string.h>

#define ERRSZ 512

json_object *ag_ops_error(const char *code, const char *message)
{
    json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    json_object_object_add(o, "ok", json_object_new_boolean(0));
    json_object_object_add(o, "error", json_object_new_string(code));
    json_object_object_add(o, "message", json_object_new_string(message ? message : code));
    return o;
}

const char *ag_ops_code_for(int rc, long status)
{
    switch (rc) {
    case PC_OK: break;
    case PC_ERR_TLS: return PC_AGENT_E_TLS;
    case PC_ERR_TIMEOUT: return PC_AGENT_E_TIMEOUT;
    case PC_ERR_NET: return PC_AGENT_E_UNREACHABLE;
    case PC_ERR_PARSE:
    case PC_ERR_TOOBIG: return PC_AGENT_E_GARBAGE;
    case PC_ERR_STATE:
        return PC_AGENT_E_BUSY; /* every pooled connection stayed busy: our capacity, not the network */
    default:
        /* The agent could not make the call at all (memory, setup): a local fault, which
         * must never read as "the control plane is unreachable" (that follows failmode). */
        return PC_AGENT_E_INTERNAL;
    }
    if (status == 401 || status == 403)
        return PC_AGENT_E_REJECTED;
    if (status >= 500 && status <= 599)
        return PC_AGENT_E_SERVER;
    if (status ==
        429) /* the control plane answered, refusing this host's rate: deny, never failmode */
        return PC_AGENT_E_RATE_LIMITED;
    if (status >= 400 && status <= 499)
        return PC_AGENT_E_BAD_REQUEST;
    return PC_AGENT_E_GARBAGE;
}

/* A copy of s for logs: only [A-Za-z0-9._@:-], anything else becomes '?'. */
const char *ag_ops_log_safe(const char *s, char *buf, size_t n)
{
    size_t i = 0;
    if (!s)
        s = "-";
    for (; *s && i + 1 < n; s++, i++) {
        char c = *s;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-' || c == '@' || c == ':';
        buf[i] = ok ? c : '?';
    }
    buf[i] = '\0';
    return buf;
}

/* The pool, created on first use once the host token can be read. NULL → *errreply set. */
static ag_pool *get_pool(struct ag_ctx *x, json_object **errreply)
{
    char err[ERRSZ] = "", *token = NULL;
    ag_pool *p;
    int rc;

    pthread_mutex_lock(&x->lock);
    if (!x->pool) {
        rc = ag_enroll_read_token(x->cfg->host_token_file, &token, err, sizeof err);
        if (rc == PC_OK) {
            struct ag_pool_opts o = {
                .urls = (const char *const *)x->cfg->urls,
                .n_urls = x->cfg->n_urls,
                .failover_reserve_ms = x->cfg->timeout_ms / 2,
                .pin = x->cfg->pin,
                .cafile = x->cfg->cafile,
                .token = token,
                .connect_timeout_ms = x->cfg->connect_timeout_ms,
                .max = x->cfg->max_connections,
                .max_long_polls = x->cfg->max_push_waits,
            };
            rc = ag_pool_new(&o, &x->pool, err, sizeof err);
            if (rc == PC_OK)
                pc_log(PC_LOG_INFO, "event=enrolled token_file=%s", x->cfg->host_token_file);
        }
        if (rc != PC_OK)
            pc_log(PC_LOG_ERR, "event=not_enrolled token_file=%s detail=\"%s\"",
                   x->cfg->host_token_file, err);
        pc_free_secret_str(token);
    }
    p = x->pool;
    pthread_mutex_unlock(&x->lock);
    if (!p)
        *errreply = ag_ops_error(PC_AGENT_E_NOT_ENROLLED,
                                 err[0] ? err : "this host is not enrolled");
    return p;
}

void ag_ops_pool_start(struct ag_ctx *x)
{
    json_object *errreply = NULL;

    if (!get_pool(x, &errreply))
        json_object_put(errreply);
}

/* A long-poll beyond the pool's long-poll lane: refused at once, without a connection. Waiting
 * for the lane would only hold the PAM client longer for a call that itself takes up to a
 * minute; the module denies on push_busy (local capacity, not the network). */
static json_object *refuse_long_poll(ag_pool *p, const char *op, unsigned in_use)
{
    char msg[256];

    pc_log(PC_LOG_WARN, "event=%s result=refused error=push_busy in_flight=%u max_push_waits=%u",
           op, in_use, ag_pool_long_poll_max(p));
    snprintf(msg, sizeof msg,
             "%u push approvals are being waited for already (max_push_waits "
             "= %u): refused, so that other logins keep their connections to the control plane",
             in_use, ag_pool_long_poll_max(p));
    return ag_ops_error(PC_AGENT_E_PUSH_BUSY, msg);
}

/* One call to the control plane. On success (HTTP 200 with a JSON object) returns NULL and sets
 * *ok; otherwise returns the error reply. extra_ms is added to the configured timeout. */
json_object *ag_ops_cp_call(struct ag_ctx *x, const char *op, const char *method, const char *path,
                            json_object *body, long extra_ms, unsigned flags, json_object **ok)
{
    char err[ERRSZ] = "", msg[ERRSZ + 64];
    json_object *errreply = NULL, *reply = NULL;
    int64_t deadline = pc_now_ms() + x->cfg->timeout_ms + extra_ms, t0;
    const char *code;
    long status = 0;
    unsigned in_use = 0;
    ag_pool *p;
    int rc;

    *ok = NULL;
    if (!(p = get_pool(x, &errreply)))
        return errreply;
    if ((flags & AG_CALL_LONG_POLL) && !ag_pool_long_poll_enter(p, &in_use))
        return refuse_long_poll(p, op, in_use);
    t0 = pc_now_ms();
    rc = ag_pool_call(p, method, path, body, deadline,
                      ((flags & AG_CALL_IDEMPOTENT) ? AG_POOL_IDEMPOTENT : 0) |
                          ((flags & AG_CALL_REPEATABLE) ? AG_POOL_REPEATABLE : 0) |
                          ((flags & AG_CALL_MARK_RESEND) ? AG_POOL_MARK_RESEND : 0),
                      &status, &reply, err, sizeof err);
    pc_metric_observe_ms(&ag_m_cp_seconds, op, pc_now_ms() - t0);
    if (flags & AG_CALL_LONG_POLL)
        ag_pool_long_poll_leave(p);
    if (rc == PC_OK && status == 200 && reply) {
        *ok = reply;
        return NULL;
    }
    code = ag_ops_code_for(rc, status);
    if (rc == PC_OK && status == 200) {
        snprintf(msg, sizeof msg, "the control plane answered HTTP 200 with an empty body");
    } else if (rc == PC_OK) {
        const char *ecode = NULL;
        struct pc_jerr je = { 0 };
        if (reply && pc_json_get_str(reply, "error", 0, 32, &ecode, &je) == PC_OK && ecode &&
            *ecode) {
            char safe[40];
            snprintf(msg, sizeof msg, "the control plane answered HTTP %ld (%s)", status,
                     ag_ops_log_safe(ecode, safe, sizeof safe));
        } else {
            snprintf(msg, sizeof msg, "the control plane answered HTTP %ld", status);
        }
    } else {
        snprintf(msg, sizeof msg, "%s", err[0] ? err : pc_strerror(rc));
    }
    pc_log(PC_LOG_WARN, "event=%s result=error error=%s http_status=%ld detail=\"%s\"", op, code,
           status, msg);
    if (reply)
        json_object_put(reply);
    return ag_ops_error(code, msg);
}
