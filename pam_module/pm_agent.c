/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "pm_agent.h"
#include "pc_err.h"
#include "pc_frame.h"
#include "pc_mem.h"
#include "pc_time.h"
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Agent error codes and what the module does with them. Unknown codes deny. */
static const struct {
    const char *code;
    int outcome;
} agent_errors[] = {
    { "unreachable", PM_OUT_FAILMODE }, { "timeout", PM_OUT_FAILMODE },
    { "garbage", PM_OUT_FAILMODE },     { "server", PM_OUT_FAILMODE },
    /* busy: the agent is up but at its limit; local capacity, not the network: deny */
    { "busy", PM_OUT_DENY },            { "tls", PM_OUT_DENY },
    { "not_enrolled", PM_OUT_DENY },    { "rejected", PM_OUT_DENY },
    { "bad_request", PM_OUT_DENY },     { "forbidden", PM_OUT_DENY },
    { "internal", PM_OUT_DENY },
    /* config: the agent is up but its agent.conf did not load; it refuses everything. An
     * admin's typo must never switch the second factor off: deny, whatever failmode says. */
    { "config", PM_OUT_DENY },
    /* push_busy: the agent's share of connections for push long-polls is in use */
    { "push_busy", PM_OUT_DENY },
};

static int wait_writable(int fd, int64_t deadline_ms)
{
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        int64_t left = deadline_ms - pc_now_ms();
        int r;

        if (left <= 0)
            return PC_ERR_TIMEOUT;
        r = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r == 0 ? PC_ERR_TIMEOUT : PC_ERR_IO;
        return (p.revents & POLLOUT) ? PC_OK : PC_ERR_IO;
    }
}

int pm_agent_connect(struct pm_agent *a, const char *path, int64_t deadline_ms,
                     const char **reason)
{
    struct sockaddr_un sa;
    size_t n = strlen(path);

    a->fd = -1;
    a->full_ms = deadline_ms - pc_now_ms();
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (n >= sizeof sa.sun_path) {
        *reason = "agent_socket_path_too_long";
        return PM_OUT_FAILMODE;
    }
    memcpy(sa.sun_path, path, n + 1);
    a->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (a->fd < 0) {
        *reason = "agent_socket_error";
        return PM_OUT_FAILMODE;
    }
    for (;;) {
        if (connect(a->fd, (struct sockaddr *)&sa, sizeof sa) == 0)
            return PM_OUT_OK;
        if (errno == EINTR)
            continue;
        if (errno == EINPROGRESS) { /* not usual for AF_UNIX, but bounded anyway */
            int err = 0;
            socklen_t len = sizeof err;
            if (wait_writable(a->fd, deadline_ms) == PC_OK &&
                getsockopt(a->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0)
                return PM_OUT_OK;
            *reason = "agent_connect_timeout";
        } else if (errno == EAGAIN) { /* backlog full: retry briefly, within the deadline */
            struct timespec ts = { 0, 50 * 1000 * 1000 };
            if (pc_now_ms() + 50 < deadline_ms) {
                nanosleep(&ts, NULL);
                continue;
            }
            /* the agent is alive but its backlog stays full: capacity, not absence */
            *reason = "agent_busy";
            pm_agent_close(a);
            return PM_OUT_DENY;
        } else if (errno == ENOENT) {
            *reason = "agent_socket_missing";
        } else if (errno == ECONNREFUSED) {
            *reason = "agent_refused";
        } else {
            *reason = "agent_connect_failed";
        }
        pm_agent_close(a);
        return PM_OUT_FAILMODE;
    }
}

static int classify_error(json_object *reply, const char **reason)
{
    json_object *e = NULL;
    const char *code;

    if (!json_object_object_get_ex(reply, "error", &e) || !json_object_is_type(e, json_type_string)) {
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

int pm_agent_call(struct pm_agent *a, json_object *req, int64_t deadline_ms,
                  json_object **reply, const char **reason)
{
    json_object *r = NULL, *ok = NULL;
    int64_t budget = deadline_ms - pc_now_ms();
    int rc, out;

    *reply = NULL;
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
        pc_wipe((void *)(uintptr_t)json_object_get_string(v), (size_t)json_object_get_string_len(v));
}
