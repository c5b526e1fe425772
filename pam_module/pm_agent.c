/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "pm_agent.h"
#include "pc_agent_proto.h"
#include "pc_err.h"
#include "pc_frame.h"
#include "pc_mem.h"
#include "pc_time.h"
#include <string.h>
#include <unistd.h>

/* Agent error codes and what the module does with them. Unknown codes deny. */
static const struct {
    const char *code;
    int outcome;
} agent_errors[] = {
    { PC_AGENT_E_UNREACHABLE, PM_OUT_FAILMODE },
    { PC_AGENT_E_TIMEOUT, PM_OUT_FAILMODE },
    { PC_AGENT_E_GARBAGE, PM_OUT_FAILMODE },
    { PC_AGENT_E_SERVER, PM_OUT_FAILMODE },
    /* busy: the agent is up but at its limit; local capacity, not the network: deny */
    { PC_AGENT_E_BUSY, PM_OUT_DENY },
    { PC_AGENT_E_TLS, PM_OUT_DENY },
    { PC_AGENT_E_NOT_ENROLLED, PM_OUT_DENY },
    { PC_AGENT_E_REJECTED, PM_OUT_DENY },
    { PC_AGENT_E_BAD_REQUEST, PM_OUT_DENY },
    { PC_AGENT_E_FORBIDDEN, PM_OUT_DENY },
    { PC_AGENT_E_INTERNAL, PM_OUT_DENY },
    /* config: the agent is up but its agent.conf did not load; it refuses everything. An
     * admin's typo must never switch the second factor off: deny, whatever failmode says. */
    { PC_AGENT_E_CONFIG, PM_OUT_DENY },
    /* push_busy: the agent's share of connections for push long-polls is in use */
    { PC_AGENT_E_PUSH_BUSY, PM_OUT_DENY },
    /* rate_limited: the control plane is up and refuses this host's rate of logins */
    { PC_AGENT_E_RATE_LIMITED, PM_OUT_DENY },
};

int pm_agent_connect(struct pm_agent *a, const char *path, int64_t deadline_ms, const char **reason)
{
    int rc;

    a->full_ms = deadline_ms - pc_now_ms();
    rc = pc_agent_connect(path, deadline_ms, &a->fd);
    switch (rc) {
    case PC_OK: return PM_OUT_OK;
    case PC_ERR_STATE:
        /* the agent is alive but its backlog stays full: capacity, not absence */
        *reason = "agent_busy";
        return PM_OUT_DENY;
    case PC_ERR_INVAL: *reason = "agent_socket_path_too_long"; break;
    case PC_ERR_NOMEM: *reason = "agent_socket_error"; break;
    case PC_ERR_TIMEOUT: *reason = "agent_connect_timeout"; break;
    case PC_ERR_NOTFOUND: *reason = "agent_socket_missing"; break;
    case PC_ERR_NET: *reason = "agent_refused"; break;
    default: *reason = "agent_connect_failed"; break;
    }
    return PM_OUT_FAILMODE;
}

/* issue 18: keeps the error reply's "failmode_id" if it is 32 lowercase hex digits. */
static void keep_failmode_id(struct pm_agent *a, json_object *reply)
{
    json_object *v = NULL;
    const char *s;

    a->failmode_id[0] = '\0';
    if (!json_object_object_get_ex(reply, "failmode_id", &v) ||
        !json_object_is_type(v, json_type_string) || json_object_get_string_len(v) != 32)
        return;
    s = json_object_get_string(v);
    for (size_t i = 0; i < 32; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return;
    memcpy(a->failmode_id, s, 33);
}

static int classify_error(json_object *reply, const char **reason)
{
    json_object *e = NULL;
    const char *code;

    if (!json_object_object_get_ex(reply, "error", &e) ||
        !json_object_is_type(e, json_type_string)) {
        *reason = "agent_malformed";
        return PM_OUT_FAILMODE;
    }
    code = json_object_get_string(e);
    for (size_t i = 0; i < sizeof agent_errors / sizeof agent_errors[0]; i++)
        if (strcmp(code, agent_errors[i].code) == 0) {
            *reason = agent_errors[i].code; /* static: never the wire's own buffer */
            return agent_errors[i].outcome;
        }
    *reason = "agent_unknown_error";
    return PM_OUT_DENY;
}

int pm_agent_call(struct pm_agent *a, json_object *req, int64_t deadline_ms, json_object **reply,
                  const char **reason)
{
    json_object *r = NULL, *ok = NULL;
    int64_t budget = deadline_ms - pc_now_ms();
    int rc, out;

    *reply = NULL;
    a->failmode_id[0] = '\0';
    if (a->fd < 0) {
        *reason = "agent_not_connected";
        return PM_OUT_FAILMODE;
    }
    rc = pc_frame_write(a->fd, req, deadline_ms);
    if (rc == PC_ERR_TOOBIG) {
        pm_agent_close(a);
        *reason = "module_error"; /* our own request is over the frame limit: not the agent */
        return PM_OUT_DENY;
    }
    if (rc == PC_OK)
        rc = pc_frame_read(a->fd, deadline_ms, &r);
    if (rc != PC_OK) {
        pm_agent_close(a); /* the stream is out of step now */
        if (rc == PC_ERR_TIMEOUT &&
            budget < (a->full_ms / 2 < PM_AGENT_FAIR_MS ? a->full_ms / 2 : PM_AGENT_FAIR_MS)) {
            /* The user spent the login's time at the prompt; a slow answer then must not
             * turn into a failmode=safe admission. The agent's fair share is half the login's
             * time (at most PM_AGENT_FAIR_MS): comparing with all of it would call every
             * timeout the user's once a millisecond had passed since connecting. */
            *reason = "deadline";
            return PM_OUT_DENY;
        }
        if (rc == PC_ERR_NOMEM) {
            *reason = "module_error"; /* our own memory: not the agent being down */
            return PM_OUT_DENY;
        }
        *reason = rc == PC_ERR_TIMEOUT ? "agent_timeout"
                  : rc == PC_ERR_IO    ? "agent_closed"
                                       : "agent_malformed";
        return PM_OUT_FAILMODE;
    }
    if (!json_object_object_get_ex(r, "ok", &ok) || !json_object_is_type(ok, json_type_boolean)) {
        *reason = "agent_malformed";
        out = PM_OUT_FAILMODE;
    } else if (json_object_get_boolean(ok)) {
        *reply = r;
        return PM_OUT_OK;
    } else {
        out = classify_error(r, reason);
        if (out == PM_OUT_FAILMODE)
            keep_failmode_id(a, r);
    }
    json_object_put(r);
    return out;
}

void pm_agent_close(struct pm_agent *a)
{
    if (a->fd >= 0)
        close(a->fd);
    a->fd = -1;
}

void pm_agent_wipe_request(json_object *req, const char *key)
{
    json_object *v = NULL;
    const char *text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);

    if (text)
        pc_wipe((void *)(uintptr_t)text, strlen(text));
    if (json_object_object_get_ex(req, key, &v) && json_object_is_type(v, json_type_string))
        pc_wipe((void *)(uintptr_t)json_object_get_string(v),
                (size_t)json_object_get_string_len(v));
}
