/* SPDX-License-Identifier: BSD-2-Clause */
/* Request handlers for the agent's socket (see ag_ops.h and docs/AGENT-PROTOCOL.md). */
#include "config.h"
#include "ag_ops.h"
#include "ag_failmode.h"
#include "ag_metrics.h"
#include "ag_offline.h"
#include "ag_principals.h"
#include "ag_status.h"
#include "pc_agent_proto.h"
#include "pc_err.h"
#include "pc_json.h"
#include "pc_log.h"
#include "pc_mem.h"
#include "pc_rand.h"
#include "pc_time.h"
#include "pc_valid.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ag_ctx_init(struct ag_ctx *x, const struct ag_config *cfg, char *err, size_t errsz)
{
    memset(x, 0, sizeof *x);
    x->cfg = cfg;
    pthread_mutex_init(&x->lock, NULL);
    if (ag_pcache_new(AG_PCACHE_MAX, &x->pcache) != PC_OK) {
        snprintf(err, errsz, "out of memory");
        return PC_ERR_NOMEM;
    }
    return PC_OK;
}

void ag_ctx_free(struct ag_ctx *x)
{
    ag_pool_free(x->pool);
    x->pool = NULL;
    ag_pcache_free(x->pcache);
    x->pcache = NULL;
    pthread_mutex_destroy(&x->lock);
}

static int is_digits(const char *s, size_t min, size_t max)
{
    size_t n = strlen(s);
    if (n < min || n > max)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

static int one_of(const char *s, const char *const *set)
{
    for (; *set; set++)
        if (strcmp(s, *set) == 0)
            return 1;
    return 0;
}

static json_object *bad_request(const char *msg)
{
    /* The message names a field or a rule, never a value: safe to log. */
    pc_log(PC_LOG_WARN, "event=request_refused error=bad_request message=\"%s\"", msg);
    return ag_ops_error(PC_AGENT_E_BAD_REQUEST, msg);
}

static json_object *garbage(const char *what)
{
    char m[256];
    snprintf(m, sizeof m, "the control plane's reply is not what was expected (%s)", what);
    return ag_ops_error(PC_AGENT_E_GARBAGE, m);
}

/* ---- issue 13: begin while the control plane is unreachable ------------------------------- */

/* 1 if err (an error reply of ag_ops_cp_call) says unreachable or timeout: only then may the
 * agent decide offline (never on a TLS failure, never on an answer). */
static int cp_unreachable(json_object *err)
{
    json_object *c = NULL;
    const char *code;

    if (!err || !json_object_object_get_ex(err, "error", &c))
        return 0;
    code = json_object_get_string(c);
    return code &&
           (strcmp(code, PC_AGENT_E_UNREACHABLE) == 0 || strcmp(code, PC_AGENT_E_TIMEOUT) == 0);
}

/* The offline decision (ag_offline.h) as a begin reply, or NULL: not decided here. */
static json_object *offline_begin(struct ag_ctx *x, json_object *err, const char *user,
                                  const char *info)
{
    const char *action = NULL, *reason = NULL;
    char txid[33], su[72];
    json_object *out;

    json_object *factors = json_object_new_array();

    if (!cp_unreachable(err)) {
        json_object_put(factors);
        return NULL;
    }
    if (!ag_offline_begin(x->cfg, user, info, &action, &reason, txid)) {
        /* step 2(b): offline codes, prompted for as online */
        if (!ag_offcodes_begin(x->cfg, user, info, txid)) {
            json_object_put(factors);
            return NULL;
        }
        action = "challenge";
        reason = "offline_code";
        json_object_array_add(factors, json_object_new_string("totp"));
    }
    out = json_object_new_object();
    json_object_object_add(out, "ok", json_object_new_boolean(1));
    json_object_object_add(out, "txid", json_object_new_string(txid));
    json_object_object_add(out, "action", json_object_new_string(action));
    json_object_object_add(out, "factors", factors);
    json_object_object_add(out, "reason", json_object_new_string(reason));
    pc_metric_inc(&ag_m_offline, action, NULL, NULL);
    pc_log(PC_LOG_WARN, "event=begin user=%s action=%s reason=%s source=offline txid=%s",
           ag_ops_log_safe(user, su, sizeof su), action, reason, txid);
    return out;
}

/* ---- end of issue 13 ------------------------------------------------------------------------ */

/* Set once a control plane refused begin's "push" field as unknown (a version before it took
 * one): from then on the push is asked for in a call of its own, as the module does itself
 * when this agent is that old (docs/AGENT-PROTOCOL.md). */
static int cp_begin_without_push; /* __atomic: read and set by every client thread */

/* A push in a control plane's reply (POST /v1/auth/push, or begin with "push": true): its
 * fields, checked, into out. 0 when cp has none, 1 when copied, -1 when malformed. */
static int copy_push(json_object *cp, json_object *out)
{
    const char *push_id = NULL, *match = NULL;
    struct pc_jerr je = { 0 };
    int64_t expires = 0;

    if (!json_object_object_get_ex(cp, "push_id", NULL))
        return 0;
    if (pc_json_get_str(cp, "push_id", 1, 64, &push_id, &je) != PC_OK ||
        !pc_valid_hex(push_id, 1, 64) || pc_json_get_str(cp, "match", 1, 2, &match, &je) != PC_OK ||
        !is_digits(match, 2, 2) ||
        pc_json_get_int(cp, "expires_at", 1, 1, INT64_MAX, &expires, &je) != PC_OK)
        return -1;
    json_object_object_add(out, "push_id", json_object_new_string(push_id));
    json_object_object_add(out, "match", json_object_new_string(match));
    json_object_object_add(out, "expires_at", json_object_new_int64(expires));
    return 1;
}

/* An older control plane's answer to a begin with "push": HTTP 400 unknown_field. */
static int refused_push_field(json_object *err)
{
    const char *code = NULL, *msg = NULL;
    struct pc_jerr je = { 0 };

    return pc_json_get_str(err, "error", 0, 64, &code, &je) == PC_OK && code &&
           strcmp(code, PC_AGENT_E_BAD_REQUEST) == 0 &&
           pc_json_get_str(err, "message", 0, 256, &msg, &je) == PC_OK && msg &&
           strstr(msg, "(unknown_field)");
}

static json_object *op_begin(struct ag_ctx *x, json_object *req)
{
    static const char *const fields[] = { "op",  "user",      "rhost", "service",
                                          "tty", "auth_info", "push",  NULL };
    static const char *const actions[] = { "challenge", "allow", "deny", "ignore", NULL };
    static const char *const factor_names[] = { "totp", "push", NULL };
    const char *user = NULL, *rhost = NULL, *service = NULL, *tty = NULL, *info = NULL;
    const char *txid = NULL, *action = NULL, *reason = NULL;
    json_object *body = NULL, *cp = NULL, *out = NULL, *factors = NULL, *fcopy = NULL;
    struct pc_jerr je = { 0 };
    char su[72], sr[72], sw[72];
    size_t nf;
    int want_push = 0, pushed;

    if (pc_json_only_fields(req, fields, &je) != PC_OK ||
        pc_json_get_bool(req, "push", 0, &want_push, &je) != PC_OK ||
        pc_json_get_str(req, "user", 1, 64, &user, &je) != PC_OK ||
        pc_json_get_str(req, "rhost", 0, 255, &rhost, &je) != PC_OK ||
        pc_json_get_str(req, "service", 0, 64, &service, &je) != PC_OK ||
        pc_json_get_str(req, "tty", 0, 64, &tty, &je) != PC_OK ||
        pc_json_get_text(req, "auth_info", 0, 16384, &info, &je) != PC_OK)
        return bad_request(je.message);
    if (!*user)
        return bad_request("field 'user' is empty");
    body = json_object_new_object();
    json_object_object_add(body, "user", json_object_new_string(user));
    if (rhost)
        json_object_object_add(body, "rhost", json_object_new_string(rhost));
    if (service)
        json_object_object_add(body, "service", json_object_new_string(service));
    if (tty)
        json_object_object_add(body, "tty", json_object_new_string(tty));
    if (info)
        json_object_object_add(body, "auth_info", json_object_new_string(info));
    if (want_push && !__atomic_load_n(&cp_begin_without_push, __ATOMIC_RELAXED))
        json_object_object_add(body, "push", json_object_new_boolean(1));
    /* A second copy on another instance only leaves an unused transaction (it expires), and
     * with "push" a second notice, whose match number is not the one the prompt shows. */
    out = ag_ops_cp_call(x, "begin", "POST", "/v1/auth/begin", body, 0, AG_CALL_REPEATABLE, &cp);
    if (out && json_object_object_get_ex(body, "push", NULL) && refused_push_field(out)) {
        __atomic_store_n(&cp_begin_without_push, 1, __ATOMIC_RELAXED);
        pc_log(PC_LOG_WARN, "event=begin detail=\"the control plane takes no push with begin"
                            " (an older version): asking for it separately\"");
        json_object_put(out);
        json_object_object_del(body, "push");
        out = ag_ops_cp_call(x, "begin", "POST", "/v1/auth/begin", body, 0, AG_CALL_REPEATABLE,
                             &cp);
    }
    if (out) {
        json_object *off = offline_begin(x, out, user, info); /* issue 13 */
        if (off) {
            json_object_put(out);
            out = off;
        } else {
            ag_failmode_note(out, user, rhost, service); /* issue 18 */
        }
        goto out;
    }
    if (pc_json_get_str(cp, "txid", 1, 64, &txid, &je) != PC_OK || !pc_valid_hex(txid, 1, 64) ||
        pc_json_get_str(cp, "action", 1, 16, &action, &je) != PC_OK || !one_of(action, actions) ||
        pc_json_get_str(cp, "reason", 1, 128, &reason, &je) != PC_OK ||
        pc_json_get_str_array(cp, "factors", 1, 2, 16, &factors, &je) != PC_OK) {
        out = garbage("begin: txid, action, factors or reason");
        goto out;
    }
    nf = json_object_array_length(factors);
    fcopy = json_object_new_array();
    for (size_t i = 0; i < nf; i++) {
        const char *f = json_object_get_string(json_object_array_get_idx(factors, i));
        if (!one_of(f, factor_names)) {
            out = garbage("begin: unknown factor");
            goto out;
        }
        json_object_array_add(fcopy, json_object_new_string(f));
    }
    if (strcmp(action, "challenge") == 0 && nf == 0) {
        out = garbage("begin: a challenge without factors");
        goto out;
    }
    out = json_object_new_object();
    json_object_object_add(out, "ok", json_object_new_boolean(1));
    json_object_object_add(out, "txid", json_object_new_string(txid));
    json_object_object_add(out, "action", json_object_new_string(action));
    json_object_object_add(out, "factors", fcopy);
    json_object_object_add(out, "reason", json_object_new_string(reason));
    fcopy = NULL;
    if ((pushed = copy_push(cp, out)) < 0) {
        json_object_put(out);
        out = garbage("begin: push_id, match or expires_at");
        goto out;
    }
    pc_log(PC_LOG_INFO, "event=begin user=%s rhost=%s action=%s reason=%s",
           ag_ops_log_safe(user, su, sizeof su), ag_ops_log_safe(rhost, sr, sizeof sr), action,
           ag_ops_log_safe(reason, sw, sizeof sw));
    if (pushed)
        pc_log(PC_LOG_INFO, "event=push txid=%s push_id=%s", txid,
               json_object_get_string(json_object_object_get(out, "push_id")));
out:
    json_object_put(fcopy);
    json_object_put(cp);
    json_object_put(body);
    return out;
}

/* Wipes a JSON string's bytes in place (it held a code). */
static void wipe_json_string(json_object *s)
{
    if (s && json_object_is_type(s, json_type_string))
        pc_wipe((void *)json_object_get_string(s), (size_t)json_object_get_string_len(s));
}

static json_object *op_totp(struct ag_ctx *x, json_object *req)
{
    static const char *const fields[] = { "op", "txid", "code", NULL };
    static const char *const results[] = { "allow", "deny", NULL };
    const char *txid = NULL, *code = NULL, *result = NULL, *reason = NULL;
    json_object *body = NULL, *cp = NULL, *out = NULL, *jcode = NULL;
    struct pc_jerr je = { 0 };
    char sr[72];

    if (pc_json_only_fields(req, fields, &je) != PC_OK ||
        pc_json_get_str(req, "txid", 1, 64, &txid, &je) != PC_OK ||
        pc_json_get_str(req, "code", 1, 16, &code, &je) != PC_OK) {
        out = bad_request(je.message);
        goto out;
    }
    if (!pc_valid_hex(txid, 1, 64) || !is_digits(code, 1, 16)) {
        out = bad_request("txid must be hex and code must be digits");
        goto out;
    }
    if (ag_offcodes_pending(txid)) { /* issue 13 step 2(b): an offline code challenge */
        if (ag_offcodes_verify(x->cfg, txid, code, &result, &reason) != PC_OK) {
            out = garbage("totp: the offline decision could not be recorded");
            goto out;
        }
        pc_metric_inc(&ag_m_offline, result, NULL, NULL);
        out = json_object_new_object();
        json_object_object_add(out, "ok", json_object_new_boolean(1));
        json_object_object_add(out, "result", json_object_new_string(result));
        json_object_object_add(out, "reason", json_object_new_string(reason));
        goto out;
    }
    body = json_object_new_object();
    json_object_object_add(body, "txid", json_object_new_string(txid));
    jcode = json_object_new_string(code);
    json_object_object_add(body, "code", jcode);
    /* Never sent twice as if new: a code already verified would be refused as a replay. After a
     * failure that may have been applied, another instance gets it marked "resend", and the
     * control plane answers allow only for the same code on a transaction it already allowed. */
    if ((out = ag_ops_cp_call(x, "totp", "POST", "/v1/auth/totp", body, 0, AG_CALL_MARK_RESEND,
                              &cp)))
        goto out;
    if (pc_json_get_str(cp, "result", 1, 16, &result, &je) != PC_OK || !one_of(result, results) ||
        pc_json_get_str(cp, "reason", 1, 128, &reason, &je) != PC_OK) {
        out = garbage("totp: result or reason");
        goto out;
    }
    out = json_object_new_object();
    json_object_object_add(out, "ok", json_object_new_boolean(1));
    json_object_object_add(out, "result", json_object_new_string(result));
    json_object_object_add(out, "reason", json_object_new_string(reason));
    pc_log(PC_LOG_INFO, "event=totp txid=%s result=%s reason=%s", txid, result,
           ag_ops_log_safe(reason, sr, sizeof sr));
out:
    if (body) {
        /* The serialised body (json-c's buffer) and the string both hold the code. */
        const char *ser = pc_json_dump(body);
        if (ser)
            pc_wipe((void *)ser, strlen(ser));
        wipe_json_string(jcode);
        json_object_put(body);
    }
    json_object_object_get_ex(req, "code", &jcode);
    wipe_json_string(jcode);
    json_object_put(cp);
    return out;
}

static json_object *op_push(struct ag_ctx *x, json_object *req)
{
    static const char *const fields[] = { "op", "txid", NULL };
    const char *txid = NULL;
    json_object *body = NULL, *cp = NULL, *out = NULL;
    struct pc_jerr je = { 0 };

    if (pc_json_only_fields(req, fields, &je) != PC_OK ||
        pc_json_get_str(req, "txid", 1, 64, &txid, &je) != PC_OK)
        return bad_request(je.message);
    if (!pc_valid_hex(txid, 1, 64))
        return bad_request("txid must be hex");
    body = json_object_new_object();
    json_object_object_add(body, "txid", json_object_new_string(txid));
    /* Idempotent per transaction on the server: safe to retry. */
    if ((out = ag_ops_cp_call(x, "push", "POST", "/v1/auth/push", body, 0, AG_CALL_IDEMPOTENT,
                              &cp)))
        goto out;
    out = json_object_new_object();
    json_object_object_add(out, "ok", json_object_new_boolean(1));
    if (copy_push(cp, out) != 1) { /* here the push is the whole answer: absent is malformed */
        json_object_put(out);
        out = garbage("push: push_id, match or expires_at");
        goto out;
    }
    pc_log(PC_LOG_INFO, "event=push txid=%s push_id=%s", txid,
           json_object_get_string(json_object_object_get(out, "push_id")));
out:
    json_object_put(cp);
    json_object_put(body);
    return out;
}

static json_object *op_push_wait(struct ag_ctx *x, json_object *req)
{
    static const char *const fields[] = { "op", "push_id", "wait", NULL };
    static const char *const states[] = { "pending", "approved", "denied", "expired", NULL };
    const char *push_id = NULL, *state = NULL, *echo = NULL;
    json_object *cp = NULL, *out = NULL;
    struct pc_jerr je = { 0 };
    int64_t wait = 0, expires = 0;
    char path[160];

    if (pc_json_only_fields(req, fields, &je) != PC_OK ||
        pc_json_get_str(req, "push_id", 1, 64, &push_id, &je) != PC_OK ||
        pc_json_get_int(req, "wait", 0, 0, INT32_MAX, &wait, &je) != PC_OK)
        return bad_request(je.message);
    if (!pc_valid_hex(push_id, 1, 64))
        return bad_request("push_id must be hex");
    if (wait > AG_PUSH_WAIT_MAX)
        wait = AG_PUSH_WAIT_MAX;
    snprintf(path, sizeof path, "/v1/auth/push/%s?wait=%d", push_id, (int)wait);
    /* A status read is safe to repeat. The call may take wait seconds plus the usual timeout,
     * so it is a long-poll: it gets a connection only within max_push_waits. */
    if ((out = ag_ops_cp_call(x, "push_wait", "GET", path, NULL, (long)wait * 1000,
                              AG_CALL_IDEMPOTENT | AG_CALL_LONG_POLL, &cp)))
        goto out;
    if (pc_json_get_str(cp, "state", 1, 16, &state, &je) != PC_OK || !one_of(state, states) ||
        pc_json_get_str(cp, "push_id", 0, 64, &echo, &je) != PC_OK ||
        (echo && strcmp(echo, push_id) != 0) ||
        pc_json_get_int(cp, "expires_at", 0, 0, INT64_MAX, &expires, &je) != PC_OK) {
        out = garbage("push status: state or push_id");
        goto out;
    }
    out = json_object_new_object();
    json_object_object_add(out, "ok", json_object_new_boolean(1));
    json_object_object_add(out, "state", json_object_new_string(state));
    pc_log(state[0] == 'p' ? PC_LOG_DEBUG : PC_LOG_INFO, "event=push_wait push_id=%s state=%s",
           push_id, state);
out:
    json_object_put(cp);
    return out;
}

static json_object *op_status(struct ag_ctx *x, json_object *req)
{
    static const char *const fields[] = { "op", NULL };
    struct ag_probe pr;
    struct pc_jerr je = { 0 };
    json_object *o;
    ag_pool *pool;

    if (pc_json_only_fields(req, fields, &je) != PC_OK)
        return bad_request(je.message);
    ag_status_probe(x->cfg, &pr);
    o = ag_status_reply(x->cfg, &pr);
    pthread_mutex_lock(&x->lock);
    pool = x->pool; /* set once, freed only after the server stopped */
    pthread_mutex_unlock(&x->lock);
    if (pool) /* the pool's view of each instance: state, last success, latency, last error */
        json_object_object_add(o, "pool", ag_pool_describe(pool));
    /* how long a login's connection may stay idle: the module's longest timeout= fits */
    json_object_object_add(o, "login_idle_s", json_object_new_int(PC_AGENT_LOGIN_IDLE_MS / 1000));
    return o;
}

/* The agent's configuration did not load: whatever was asked, by whomever, the answer is the
 * error "config" (a deny for the module under every failmode). Logged at most once every
 * AG_CONFIG_LOG_MS, with the number of refusals since the last line. */
static json_object *refuse_config(struct ag_ctx *x, json_object *req, uid_t peer_uid)
{
    const char *op = NULL;
    struct pc_jerr je = { 0 };
    char so[24], msg[768];
    int64_t now = pc_now_ms();
    unsigned n = 0;
    int log = 0;

    if (pc_json_get_str(req, "op", 1, 16, &op, &je) != PC_OK)
        op = NULL;
    pthread_mutex_lock(&x->lock);
    x->refused_unlogged++;
    if (x->refused_logged_ms == 0 || now - x->refused_logged_ms >= AG_CONFIG_LOG_MS) {
        log = 1;
        n = x->refused_unlogged;
        x->refused_unlogged = 0;
        x->refused_logged_ms = now;
    }
    pthread_mutex_unlock(&x->lock);
    if (log)
        pc_log(PC_LOG_ERR,
               "event=request_refused error=config op=%s uid=%u refused=%u "
               "config_error=\"%s\" detail=\"every request is refused until the configuration "
               "is fixed and the agent restarted\"",
               ag_ops_log_safe(op, so, sizeof so), (unsigned)peer_uid, n, x->config_error);
    snprintf(msg, sizeof msg,
             "the host agent's configuration is invalid (%s): every request is "
             "refused until it is fixed and the agent restarted",
             x->config_where);
    return ag_ops_error(PC_AGENT_E_CONFIG, msg);
}

void ag_ops_recheck_config(const struct ag_ctx *x)
{
    struct ag_config fresh;
    char err[1024] = "";
    const char *path = x->cfg->path;

    if (ag_config_init(&fresh) != PC_OK) {
        pc_log(PC_LOG_ERR, "event=reload result=error error=\"out of memory\"");
        return;
    }
    if (ag_config_load(&fresh, path, 0, err, sizeof err) != PC_OK ||
        ag_config_require_server(&fresh, err, sizeof err) != PC_OK) {
        ag_config_scrub(err);
        pc_log(PC_LOG_ERR, "event=reload result=invalid error=\"%s\" detail=\"%s\"", err,
               x->config_error ? "still refusing every request"
                               : "nothing changes: the configuration loaded at the start stays in "
                                 "force, but a restart now would refuse every request");
    } else {
        pc_log(PC_LOG_WARN,
               "event=reload result=valid file=%s detail=\"the agent does not "
               "reload its configuration: restart it to use the file%s\"",
               path, x->config_error ? " (until then every request is refused)" : "");
    }
    ag_config_free(&fresh);
}

json_object *ag_ops_handle(struct ag_ctx *x, json_object *req, uid_t peer_uid, int *close_after)
{
    const char *op = NULL;
    struct pc_jerr je = { 0 };

    *close_after = 0;
    if (x->config_error) {
        *close_after = 1;
        return refuse_config(x, req, peer_uid);
    }
    if (pc_json_get_str(req, "op", 1, 16, &op, &je) != PC_OK)
        return bad_request(je.message);
    if (strcmp(op, PC_AGENT_OP_STATUS) == 0)
        return op_status(x, req);
    if (strcmp(op, PC_AGENT_OP_METRICS) == 0)
        return ag_metrics_op(x, req, peer_uid);
    if (strcmp(op, PC_AGENT_OP_PRINCIPALS) == 0) {
        /* sshd's AuthorizedPrincipalsCommandUser: root or principals_user */
        if (peer_uid != 0 && !(x->cfg->principals_user && peer_uid == x->cfg->principals_uid)) {
            *close_after = 1;
            pc_log(PC_LOG_WARN, "event=forbidden op=principals uid=%u", (unsigned)peer_uid);
            return ag_ops_error(PC_AGENT_E_FORBIDDEN,
                                "principals requests are accepted from root and "
                                "principals_user only");
        }
        return ag_principals_op(x, req);
    }
    if (strcmp(op, PC_AGENT_OP_BEGIN) && strcmp(op, PC_AGENT_OP_TOTP) &&
        strcmp(op, PC_AGENT_OP_PUSH) && strcmp(op, PC_AGENT_OP_PUSH_WAIT) &&
        strcmp(op, PC_AGENT_OP_FAILMODE))
        return bad_request("unknown op (begin, totp, push, push_wait, failmode, principals, "
                           "status, metrics)");
    if (peer_uid != 0) {
        *close_after = 1;
        pc_log(PC_LOG_WARN, "event=forbidden op=%s uid=%u", op, (unsigned)peer_uid);
        return ag_ops_error(PC_AGENT_E_FORBIDDEN, "login requests are accepted from root only");
    }
    if (strcmp(op, PC_AGENT_OP_BEGIN) == 0)
        return op_begin(x, req);
    if (strcmp(op, PC_AGENT_OP_TOTP) == 0)
        return op_totp(x, req);
    if (strcmp(op, PC_AGENT_OP_PUSH) == 0)
        return op_push(x, req);
    if (strcmp(op, PC_AGENT_OP_FAILMODE) == 0)
        return ag_failmode_op(x, req); /* issue 18 */
    return op_push_wait(x, req);
}
