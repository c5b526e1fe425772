/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "pm_flow.h"
#include "pc_agent_proto.h"
#include "pc_mem.h"
#include "pc_time.h"
#include <security/pam_modules.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

struct pm_login {
    struct pm_ctx *c;
    struct pm_agent agent;
    int has_totp, has_push;
    int pushed; /* the push came with begin's reply (push_id and match are set) */
    char push_id[80];
    char match[12];
};

int pm_flow_fail(struct pm_ctx *c, int outcome, const char *reason)
{
    if (outcome == PM_OUT_FAILMODE && c->prompted) {
        /* The user has seen a prompt: the agent was up when the login began, and a failure
         * now (the agent closed the connection, garbage, an outage) must never turn whatever
         * was typed into an admission. */
        pm_log_error(c->pamh,
                     "the agent failed after the prompt (%s); denying whatever "
                     "failmode says",
                     reason ? reason : "-");
        pm_log_result(c, LOG_ERR, "deny", "agent_error_after_prompt");
        return PAM_AUTH_ERR;
    }
    if (outcome == PM_OUT_FAILMODE && c->opt->failmode_safe) {
        pm_log_failmode_admit(c, reason);
        return PAM_SUCCESS;
    }
    if (reason && strcmp(reason, "config") == 0)
        pm_log_error(c->pamh,
                     "portcullis-agent reports that its configuration (agent.conf) is "
                     "invalid; denying whatever failmode says (the agent's log names the file "
                     "and line)");
    pm_log_result(c, LOG_ERR, "deny", reason);
    return PAM_AUTH_ERR;
}

static int deny(struct pm_ctx *c, const char *reason, int pam_rc)
{
    pm_log_result(c, LOG_NOTICE, "deny", reason);
    return pam_rc;
}

/* A string field of an ok reply, copied if it fits and is made of [A-Za-z0-9_-]. */
static int copy_token(json_object *r, const char *key, char *out, size_t outsz, int digits)
{
    json_object *v = NULL;
    const char *s;
    size_t n;

    if (!json_object_object_get_ex(r, key, &v) || !json_object_is_type(v, json_type_string))
        return -1;
    s = json_object_get_string(v);
    n = strlen(s);
    if (n == 0 || n >= outsz)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        int ok = (ch >= '0' && ch <= '9') ||
                 (!digits &&
                  ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '-' || ch == '_'));
        if (!ok)
            return -1;
    }
    memcpy(out, s, n + 1);
    return 0;
}

static const char *str_field(json_object *r, const char *key)
{
    json_object *v = NULL;

    if (!json_object_object_get_ex(r, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* One request/reply with the login's deadline; *reason says why it failed. */
static int call_raw(struct pm_login *l, json_object *req, json_object **reply, const char **reason)
{
    int out = pm_agent_call(&l->agent, req, l->c->deadline_ms, reply, reason);

    if (out == PM_OUT_FAILMODE && l->agent.failmode_id[0] && !l->c->txid[0])
        memcpy(l->c->txid, l->agent.failmode_id, 33); /* syslog names what explain takes */
    return out;
}

/* One request/reply with the login's deadline. On failure the PAM code is in *pam_rc. */
static int call(struct pm_login *l, json_object *req, json_object **reply, int *pam_rc)
{
    const char *reason = "agent_error";
    int out = call_raw(l, req, reply, &reason);

    if (out != PM_OUT_OK)
        *pam_rc = pm_flow_fail(l->c, out, reason);
    return out;
}

/* Asks the user; *answer is malloc'd (wipe with pc_free_secret_str), NULL on error. */
static int ask(struct pm_ctx *c, const char *prompt, char **answer)
{
    const struct pam_conv *conv = NULL;
    struct pam_message msg = { .msg_style = PAM_PROMPT_ECHO_OFF, .msg = prompt };
    const struct pam_message *msgp = &msg;
    struct pam_response *resp = NULL;
    int rc;

    *answer = NULL;
    rc = pam_get_item(c->pamh, PAM_CONV, (const void **)&conv);
    if (rc != PAM_SUCCESS || !conv || !conv->conv)
        return PAM_CONV_ERR;
    c->prompted = 1; /* from here on every agent failure denies (pm_flow_fail) */
    rc = conv->conv(1, &msgp, &resp, conv->appdata_ptr);
    if (rc == PAM_SUCCESS && resp && resp[0].resp)
        *answer = resp[0].resp;
    else if (resp && resp[0].resp)
        pc_free_secret_str(resp[0].resp);
    free(resp);
    return *answer ? PAM_SUCCESS : PAM_CONV_ERR;
}

static int looks_like_code(const char *s)
{
    size_t n = strnlen(s, PM_ANSWER_MAX + 1);

    if (n < 6 || n > 8)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* Verifies a typed code. Returns 1 allow, 0 wrong (retry), or -1 with *pam_rc final. */
static int verify_code(struct pm_login *l, const char *code, int *pam_rc)
{
    json_object *req = json_object_new_object(), *r = NULL;
    const char *result, *reason;
    int ret;

    json_object_object_add(req, "op", json_object_new_string(PC_AGENT_OP_TOTP));
    json_object_object_add(req, "txid", json_object_new_string(l->c->txid));
    json_object_object_add(req, "code", json_object_new_string(code));
    ret = call(l, req, &r, pam_rc);
    pm_agent_wipe_request(req, "code");
    json_object_put(req);
    if (ret != PM_OUT_OK)
        return -1;
    result = str_field(r, "result");
    reason = str_field(r, "reason");
    pm_log_debug(l->c, "totp result=%s", result ? result : "-");
    if (result && strcmp(result, "allow") == 0) {
        pm_log_result(l->c, LOG_INFO, "allow", "totp");
        ret = 1;
    } else if (result && strcmp(result, "deny") == 0) {
        if (reason && (strcmp(reason, "wrong_code") == 0 || strcmp(reason, "replayed") == 0)) {
            pm_log_result(l->c, LOG_NOTICE, "retry",
                          strcmp(reason, "replayed") == 0 ? "replayed" : "wrong_code");
            ret = 0;
        } else {
            /* locked: on this host; locked_fleet: on every host */
            *pam_rc = deny(l->c,
                           reason && strcmp(reason, "locked") == 0         ? "locked"
                           : reason && strcmp(reason, "locked_fleet") == 0 ? "locked_fleet"
                                                                           : "totp_denied",
                           PAM_AUTH_ERR);
            ret = -1;
        }
    } else {
        *pam_rc = pm_flow_fail(l->c, PM_OUT_FAILMODE, "agent_malformed");
        ret = -1;
    }
    json_object_put(r);
    return ret;
}

/* Asks the agent to send a push. 0 with push_id/match set, or -1 with *pam_rc final. */
static int push_start(struct pm_login *l, int *pam_rc)
{
    json_object *req = json_object_new_object(), *r = NULL;
    int ret;

    json_object_object_add(req, "op", json_object_new_string(PC_AGENT_OP_PUSH));
    json_object_object_add(req, "txid", json_object_new_string(l->c->txid));
    ret = call(l, req, &r, pam_rc);
    json_object_put(req);
    if (ret != PM_OUT_OK)
        return -1;
    if (copy_token(r, "push_id", l->push_id, sizeof l->push_id, 0) != 0 ||
        copy_token(r, "match", l->match, 9, 1) != 0) {
        json_object_put(r);
        *pam_rc = pm_flow_fail(l->c, PM_OUT_FAILMODE, "agent_malformed");
        return -1;
    }
    json_object_put(r);
    return 0;
}

/* Long-polls the push until final or the deadline. Returns the PAM code. */
static int push_wait(struct pm_login *l)
{
    for (;;) {
        int64_t left = l->c->deadline_ms - pc_now_ms();
        json_object *req, *r = NULL;
        const char *state;
        int pam_rc = PAM_AUTH_ERR, wait;

        if (left < PM_MIN_CALL_MS)
            return deny(l->c, "push_timeout", PAM_AUTH_ERR);
        wait = (int)((left - 1000) / 1000);
        if (wait > PM_PUSH_WAIT_MAX_S)
            wait = PM_PUSH_WAIT_MAX_S;
        req = json_object_new_object();
        json_object_object_add(req, "op", json_object_new_string(PC_AGENT_OP_PUSH_WAIT));
        json_object_object_add(req, "push_id", json_object_new_string(l->push_id));
        json_object_object_add(req, "wait", json_object_new_int(wait));
        if (call(l, req, &r, &pam_rc) != PM_OUT_OK) {
            json_object_put(req);
            return pam_rc;
        }
        json_object_put(req);
        state = str_field(r, "state");
        pm_log_debug(l->c, "push state=%s", state ? state : "-");
        if (state && strcmp(state, "approved") == 0)
            pam_rc = PAM_SUCCESS, pm_log_result(l->c, LOG_INFO, "allow", "push");
        else if (state && strcmp(state, "denied") == 0)
            pam_rc = deny(l->c, "push_denied", PAM_AUTH_ERR);
        else if (state && strcmp(state, "expired") == 0)
            pam_rc = deny(l->c, "push_expired", PAM_AUTH_ERR);
        else if (!state || strcmp(state, "pending") != 0)
            pam_rc = pm_flow_fail(l->c, PM_OUT_FAILMODE, "agent_malformed");
        else
            pam_rc = -1;
        json_object_put(r);
        if (pam_rc != -1)
            return pam_rc;
    }
}

/* The prompt loop for a challenge. Returns the PAM code. */
static int challenge(struct pm_login *l)
{
    struct pm_ctx *c = l->c;
    char prompt[256];
    int pushing = 0, pam_rc = PAM_AUTH_ERR;

    if (l->has_push && c->opt->push) {
        if (c->opt->timeout_s == 0)
            c->deadline_ms = c->start_ms + pm_options_deadline_ms(c->opt, 1);
        if (!l->pushed && push_start(l, &pam_rc) != 0) /* an agent or control plane without
                                                          begin's "push" */
            return pam_rc;
        pushing = 1;
    } else if (!l->has_totp) {
        return deny(c, "no_usable_factor", PAM_AUTH_ERR);
    }
    for (int attempt = 0; attempt < c->opt->tries; attempt++) {
        char *answer = NULL;
        int v;

        if (pushing)
            snprintf(prompt, sizeof prompt,
                     "%sPush sent. Enter %s on your device to approve, "
                     "then press Enter%s: ",
                     attempt ? "Wrong code. " : "", l->match,
                     l->has_totp ? " \xe2\x80\x94 or type a code" : "");
        else
            snprintf(prompt, sizeof prompt, "%sVerification code: ", attempt ? "Wrong code. " : "");
        if ((pam_rc = ask(c, prompt, &answer)) != PAM_SUCCESS)
            return deny(c, "conversation_failed", pam_rc);
        if (c->deadline_ms - pc_now_ms() < PM_MIN_CALL_MS) {
            pc_free_secret_str(answer);
            return deny(c, "deadline", PAM_AUTH_ERR);
        }
        if (pushing && (answer[0] == '\0' || !l->has_totp)) {
            pc_free_secret_str(answer);
            return push_wait(l);
        }
        if (!looks_like_code(answer)) {
            pc_free_secret_str(answer);
            pm_log_result(c, LOG_NOTICE, "retry", "malformed_code");
            continue;
        }
        v = verify_code(l, answer, &pam_rc);
        pc_free_secret_str(answer);
        if (v != 0)
            return v > 0 ? PAM_SUCCESS : pam_rc;
    }
    return deny(c, "maxtries", PAM_MAXTRIES);
}

static void read_factors(struct pm_login *l, json_object *r)
{
    json_object *f = NULL;

    if (!json_object_object_get_ex(r, "factors", &f) || !json_object_is_type(f, json_type_array))
        return;
    for (size_t i = 0; i < json_object_array_length(f); i++) {
        json_object *e = json_object_array_get_idx(f, i);
        const char *s = json_object_is_type(e, json_type_string) ? json_object_get_string(e) : "";
        if (strcmp(s, "totp") == 0)
            l->has_totp = 1;
        else if (strcmp(s, "push") == 0)
            l->has_push = 1;
    }
}

/* With push: the push comes with the challenge, should the user have push (one round trip
 * less than asking for it after begin). */
static json_object *begin_request(const struct pm_ctx *c, int push)
{
    json_object *req = json_object_new_object();

    json_object_object_add(req, "op", json_object_new_string(PC_AGENT_OP_BEGIN));
    if (push)
        json_object_object_add(req, "push", json_object_new_boolean(1));
    json_object_object_add(req, "user", json_object_new_string(c->user));
    if (c->rhost && *c->rhost)
        json_object_object_add(req, "rhost", json_object_new_string(c->rhost));
    if (c->service && *c->service)
        json_object_object_add(req, "service", json_object_new_string(c->service));
    if (c->tty && *c->tty)
        json_object_object_add(req, "tty", json_object_new_string(c->tty));
    if (c->auth_info && *c->auth_info)
        json_object_object_add(req, "auth_info", json_object_new_string(c->auth_info));
    return req;
}

/* Issue 18: tells the agent what failmode decided after its begin error (failmode_id), so the
 * decision reaches the control plane's audit log. Best effort, at most PM_FAILMODE_REPORT_MS:
 * the decision is made already and does not depend on the answer. */
#define PM_FAILMODE_REPORT_MS 1000
static void report_failmode(struct pm_login *l, int admitted)
{
    json_object *req = json_object_new_object(), *r = NULL;
    const char *reason = "-";
    int64_t deadline = pc_now_ms() + PM_FAILMODE_REPORT_MS;
    int out;

    if (deadline > l->c->deadline_ms)
        deadline = l->c->deadline_ms;
    json_object_object_add(req, "op", json_object_new_string(PC_AGENT_OP_FAILMODE));
    json_object_object_add(req, "id", json_object_new_string(l->agent.failmode_id));
    json_object_object_add(req, "failmode", json_object_new_string(admitted ? "safe" : "secure"));
    out = pm_agent_call(&l->agent, req, deadline, &r, &reason);
    pm_log_debug(l->c, "failmode report id=%s result=%s", l->agent.failmode_id,
                 out == PM_OUT_OK ? "queued" : reason);
    json_object_put(r);
    json_object_put(req);
}

int pm_flow_run(struct pm_ctx *c)
{
    struct pm_login l = { .c = c, .agent = { .fd = -1 } };
    json_object *req, *r = NULL;
    const char *reason = "agent_error", *action;
    int out, pam_rc = PAM_AUTH_ERR;

    out = pm_agent_connect(&l.agent, c->opt->socket, c->deadline_ms, &reason);
    if (out != PM_OUT_OK)
        return pm_flow_fail(c, out, reason);
    req = begin_request(c, c->opt->push);
    out = call_raw(&l, req, &r, &reason);
    if (out == PM_OUT_DENY && c->opt->push && strcmp(reason, PC_AGENT_E_BAD_REQUEST) == 0) {
        /* An agent older than begin's "push" (the module is new, the agent not yet restarted
         * after an upgrade): ask as it expects, then for the push separately. */
        json_object_put(req);
        req = begin_request(c, 0);
        out = call_raw(&l, req, &r, &reason);
    }
    json_object_put(req);
    if (out != PM_OUT_OK)
        pam_rc = pm_flow_fail(c, out, reason);
    if (out == PM_OUT_FAILMODE && l.agent.failmode_id[0] && !c->prompted)
        report_failmode(&l, pam_rc == PAM_SUCCESS); /* issue 18 */
    if (out != PM_OUT_OK)
        goto out;
    action = str_field(r, "action");
    if (copy_token(r, "txid", c->txid, sizeof c->txid, 0) != 0)
        c->txid[0] = '\0';
    pm_log_debug(c, "begin action=%s", action ? action : "-");
    if (action && strcmp(action, "allow") == 0) {
        pm_log_result(c, LOG_INFO, "allow", "policy");
        pam_rc = PAM_SUCCESS;
    } else if (action && strcmp(action, "ignore") == 0) {
        pm_log_result(c, LOG_INFO, "ignore", "exempt");
        pam_rc = PAM_IGNORE;
    } else if (action && strcmp(action, "deny") == 0) {
        const char *why = str_field(r, "reason");
        pam_rc = deny(c,
                      why && (strcmp(why, "unknown_user") == 0 || strcmp(why, "disabled") == 0 ||
                              strcmp(why, "no_factor") == 0)
                          ? why
                          : "policy",
                      PAM_AUTH_ERR);
    } else if (action && strcmp(action, "challenge") == 0 && c->txid[0]) {
        read_factors(&l, r);
        if (l.has_push && copy_token(r, "push_id", l.push_id, sizeof l.push_id, 0) == 0) {
            if (copy_token(r, "match", l.match, 9, 1) != 0) {
                pam_rc = pm_flow_fail(c, PM_OUT_FAILMODE, "agent_malformed");
                goto out;
            }
            l.pushed = 1;
        }
        pam_rc = challenge(&l);
    } else {
        pam_rc = pm_flow_fail(c, PM_OUT_FAILMODE, "agent_malformed");
    }
out:
    json_object_put(r);
    pm_agent_close(&l.agent);
    return pam_rc;
}
