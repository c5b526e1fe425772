/* SPDX-License-Identifier: BSD-2-Clause */
/* Endpoints for enrolled hosts (the agent): login transactions, TOTP, push, long-poll. */
#include "config.h"
#include "api.h"
#include "api_held.h"
#include "cp_authtx.h"
#include "cp_metrics.h"
#include "cp_push.h"
#include "cp_ratelimit.h"
#include "cp_waiters.h"
#include "pc_config.h"
#include "pc_err.h"
#include "pc_log.h"
#include "pc_rand.h"
#include "pc_time.h"
#include "pc_valid.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int api_auth_over_rate(struct cp_call *c, struct cp_resp *r)
{
    int64_t retry = 1;
    char msg[128];

    if (cp_ratelimit_take(c->id.host_id, &retry))
        return 0;
    snprintf(msg, sizeof msg,
             "this host is over its rate of login requests (--auth-rate); retry"
             " in %lld s",
             (long long)retry);
    cp_resp_error(r, 429, "rate_limited", msg);
    snprintf(r->header_name, sizeof r->header_name, "Retry-After");
    snprintf(r->header_value, sizeof r->header_value, "%lld", (long long)retry);
    pc_log(PC_LOG_WARN, "event=rate_limited host_id=%lld host=%s retry_after=%lld",
           (long long)c->id.host_id, c->id.hostname, (long long)retry);
    return 1;
}

/* ---- begin and totp, answered from the store's writer ------------------------------------
 * Both are one group-commit job and nothing else. Run on a pool thread (cp_defer), a login
 * crossed four threads: worker, pool, writer, pool, worker; each hand-over is a wake-up, and on
 * a virtual machine a wake-up costs tens of microseconds. The worker now queues the job itself
 * and goes back to its other connections; the writer, once the commit is durable, builds the
 * reply and resumes the connection (cp_defer_hold): worker, writer, worker. */

/* What a held login call keeps until the writer answers it. */
struct auth_call {
    struct api_held h;
    struct cp_begin_req req;
    struct cp_begin_res res;
    const char *txid, *code, *result, *reason;
    int resend;
};

/* Holds c (its connection suspended, its body taken over), or NULL: answer now. */
static struct auth_call *auth_call_hold(struct cp_call *c)
{
    struct auth_call *a = calloc(1, sizeof *a);

    if (a && api_held_init(&a->h, c) != 0) {
        free(a);
        a = NULL;
    }
    return a;
}

/* Sends the held call's reply (r on the heap; NULL is answered 500) and frees the call. */
static void auth_call_end(struct auth_call *a, struct cp_resp *r)
{
    api_held_answer(&a->h, r);
    free(a);
}

static void begin_answer(struct cp_resp *r, int rc, const struct cp_begin_res *res, int64_t t0)
{
    json_object *o, *factors;

    if (rc != PC_OK) {
        cp_resp_from_err(r, rc, "transaction");
        return;
    }
    pc_metric_observe_ms(&cp_m_verify_seconds, "begin", pc_now_ms() - t0);
    pc_metric_inc(&cp_m_decisions, "begin", res->action, res->reason);
    o = json_object_new_object();
    factors = json_object_new_array();
    if (res->totp)
        json_object_array_add(factors, json_object_new_string("totp"));
    if (res->push)
        json_object_array_add(factors, json_object_new_string("push"));
    json_object_object_add(o, "txid", json_object_new_string(res->txid));
    json_object_object_add(o, "action", json_object_new_string(res->action));
    json_object_object_add(o, "factors", factors);
    json_object_object_add(o, "reason", json_object_new_string(res->reason));
    if (res->pushed) { /* "push": true and a challenge with push: as POST /v1/auth/push answers */
        json_object_object_add(o, "push_id", json_object_new_string(res->push_id));
        json_object_object_add(o, "match", json_object_new_string(res->match));
        json_object_object_add(o, "expires_at", json_object_new_int64(res->push_expires_at));
    }
    cp_resp_json(r, 200, o);
}

/* On the writer, after the begin's commit. */
static void begin_then(void *ctx, int rc)
{
    struct auth_call *a = ctx;
    struct cp_resp *r = api_held_resp();

    if (r)
        begin_answer(r, rc, &a->res, a->h.t0);
    auth_call_end(a, r);
}

void api_auth_begin(struct cp_call *c, struct cp_resp *r)
{
    static const char *const fields[] = { "user",      "rhost", "service", "tty",
                                          "auth_info", "push",  NULL };
    struct pc_jerr e = { 0 };
    struct cp_begin_req req = { 0 };
    struct cp_begin_res res;
    struct auth_call *a;
    int64_t t0;
    int rc;

#ifdef PC_TEST_HOOKS
    /* Test builds: answer a begin with "push" as a control plane before that field did (400
     * unknown_field), so that the agent's fallback is tested against a real daemon. */
    static const char *const old_fields[] = {
        "user", "rhost", "service", "tty", "auth_info", NULL
    };
    if (getenv("PC_TEST_BEGIN_WITHOUT_PUSH") && cp_body_check(c, r, old_fields))
        return;
#endif
    if (cp_body_check(c, r, fields))
        return;
    if (pc_json_get_str(c->body, "user", 1, 64, &req.user, &e) != PC_OK ||
        pc_json_get_str(c->body, "rhost", 0, 255, &req.rhost, &e) != PC_OK ||
        pc_json_get_str(c->body, "service", 0, 64, &req.service, &e) != PC_OK ||
        pc_json_get_str(c->body, "tty", 0, 64, &req.tty, &e) != PC_OK ||
        pc_json_get_text(c->body, "auth_info", 0, 16384, &req.auth_info, &e) != PC_OK ||
        pc_json_get_bool(c->body, "push", 0, &req.push, &e) != PC_OK) {
        cp_resp_jerr(r, &e);
        return;
    }
    if ((a = auth_call_hold(c))) { /* req's strings live in the body a now holds */
        a->req = req;
        r->suspended = 1;
        if ((rc = cp_authtx_begin_then(&a->h.id, a->h.source, &a->req, &a->res, begin_then, a)) !=
            PC_OK) { /* not queued: answered now, through the hold */
            struct cp_resp *hr = api_held_resp();
            if (hr)
                begin_answer(hr, rc, &a->res, a->h.t0);
            auth_call_end(a, hr);
        }
        return;
    }
    t0 = pc_now_ms(); /* stopping: answered on this thread */
    rc = cp_authtx_begin(&c->id, c->source, &req, &res);
    begin_answer(r, rc, &res, t0);
}

static void tx_error(struct cp_resp *r, int rc)
{
    if (rc == PC_ERR_NOTFOUND)
        cp_resp_error(r, 404, "not_found", "no such transaction for this host");
    else if (rc == PC_ERR_STATE)
        cp_resp_error(r, 410, "gone", "the transaction is finished or expired; begin a new one");
    else
        cp_resp_from_err(r, rc, "transaction");
}

static void totp_answer(struct cp_resp *r, int rc, const char *result, const char *reason,
                        int64_t t0)
{
    json_object *o;

    if (rc != PC_OK) {
        tx_error(r, rc);
        return;
    }
    pc_metric_observe_ms(&cp_m_verify_seconds, "totp", pc_now_ms() - t0);
    pc_metric_inc(&cp_m_decisions, "totp", result, reason);
    o = json_object_new_object();
    json_object_object_add(o, "result", json_object_new_string(result));
    json_object_object_add(o, "reason", json_object_new_string(reason));
    cp_resp_json(r, 200, o);
}

/* On the writer, after the verdict's commit (synced). */
static void totp_then(void *ctx, int rc)
{
    struct auth_call *a = ctx;
    struct cp_resp *r = api_held_resp();

    if (r)
        totp_answer(r, rc, a->result, a->reason, a->h.t0);
    auth_call_end(a, r);
}

void api_auth_totp(struct cp_call *c, struct cp_resp *r)
{
    static const char *const fields[] = { "txid", "code", "resend", NULL };
    struct pc_jerr e = { 0 };
    const char *txid = NULL, *code = NULL, *result = NULL, *reason = NULL;
    struct auth_call *a;
    int64_t t0;
    int rc, resend = 0;

    if (cp_body_check(c, r, fields))
        return;
    if (pc_json_get_str(c->body, "txid", 1, 64, &txid, &e) != PC_OK ||
        pc_json_get_str(c->body, "code", 1, 16, &code, &e) != PC_OK) {
        cp_resp_jerr(r, &e);
        return;
    }
    if (pc_json_get_bool(c->body, "resend", 0, &resend, &e) != PC_OK) {
        cp_resp_jerr(r, &e);
        return;
    }
    if (!pc_valid_hex(txid, 32, 32)) {
        tx_error(r, PC_ERR_NOTFOUND);
        return;
    }
    if ((a = auth_call_hold(c))) { /* txid and code live in the body a now holds */
        a->txid = txid;
        a->code = code;
        a->resend = resend;
        r->suspended = 1;
        if ((rc = cp_authtx_totp_then(&a->h.id, a->h.source, a->txid, a->code, a->resend,
                                      &a->result, &a->reason, totp_then, a)) != PC_OK) {
            struct cp_resp *hr = api_held_resp();
            if (hr)
                totp_answer(hr, rc, NULL, NULL, a->h.t0);
            auth_call_end(a, hr);
        }
        return;
    }
    t0 = pc_now_ms(); /* stopping: answered on this thread */
    rc = cp_authtx_totp(&c->id, c->source, txid, code, resend, &result, &reason);
    totp_answer(r, rc, result, reason, t0);
}

void api_auth_push(struct cp_call *c, struct cp_resp *r)
{
    static const char *const fields[] = { "txid", NULL };
    struct pc_jerr e = { 0 };
    const char *txid = NULL;
    char push_id[CP_PUSH_ID_LEN + 1], match[3];
    int64_t expires_at = 0;
    json_object *o;
    int rc;

    if (cp_body_check(c, r, fields))
        return;
    if (pc_json_get_str(c->body, "txid", 1, 64, &txid, &e) != PC_OK) {
        cp_resp_jerr(r, &e);
        return;
    }
    if (!pc_valid_hex(txid, 32, 32)) {
        tx_error(r, PC_ERR_NOTFOUND);
        return;
    }
    rc = cp_push_create(&c->id, c->source, txid, push_id, match, &expires_at);
    if (rc == PC_ERR_AUTH) {
        cp_resp_error(r, 409, "conflict", "push approval is not enabled for this user");
        return;
    }
    if (rc != PC_OK) {
        tx_error(r, rc);
        return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "push_id", json_object_new_string(push_id));
    json_object_object_add(o, "match", json_object_new_string(match));
    json_object_object_add(o, "expires_at", json_object_new_int64(expires_at));
    cp_resp_json(r, 200, o);
}

/* The ?wait=N of a long-poll (GET /v1/auth/push/ID: api_push_poll.c; GET /v1/login/ID). */
int api_wait_param(struct cp_call *c, struct cp_resp *r, uint64_t *wait)
{
    const char *wait_s = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "wait");
    char msg[96];

    *wait = 0;
    if (!wait_s || pc_parse_uint(wait_s, 0, (uint64_t)cp_rt.settings->max_wait, wait) == PC_OK)
        return PC_OK;
    snprintf(msg, sizeof msg, "wait must be 0-%lld seconds", (long long)cp_rt.settings->max_wait);
    cp_resp_error(r, 400, "bad_field", msg);
    return PC_ERR_INVAL;
}
