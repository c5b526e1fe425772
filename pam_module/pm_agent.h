/* SPDX-License-Identifier: BSD-2-Clause */
/* The module's side of the agent protocol (docs/AGENT-PROTOCOL.md): one unix-socket
 * connection per login, request/reply frames (lib/pc_frame.h), every I/O bounded by the
 * login's deadline. Outcomes are classified here once, by the failure table. */
#ifndef PM_AGENT_H
#define PM_AGENT_H
#include <json-c/json.h>
#include <stdint.h>

enum pm_outcome {
    PM_OUT_OK = 0,   /* a reply with "ok": true */
    PM_OUT_FAILMODE, /* agent or control plane down: the configured failmode decides */
    PM_OUT_DENY,     /* deny under every failmode (tls, not_enrolled, rejected, …) */
};

struct pm_agent {
    int fd;
    int64_t full_ms; /* time the login had left when it connected: the agent's fair budget */
    /* issue 18: the last error reply's "failmode_id" (32 hex), "" if it had none */
    char failmode_id[33];
};

/* A call that times out having started with less than min(this, half the login's time) left
 * ran out of the user's time, not the agent's: it denies instead of following failmode
 * (see pm_agent_call). */
#define PM_AGENT_FAIR_MS 5000

/* PM_OUT_OK, or PM_OUT_FAILMODE with *reason (static text). Paths too long are the caller's
 * configuration error (pm_options refuses them). */
int pm_agent_connect(struct pm_agent *a, const char *path, int64_t deadline_ms,
                     const char **reason);
/* Sends req and reads one reply. PM_OUT_OK with *reply (ok:true; the caller puts it), else
 * PM_OUT_FAILMODE / PM_OUT_DENY with *reason (static text, never from the wire verbatim). */
int pm_agent_call(struct pm_agent *a, json_object *req, int64_t deadline_ms, json_object **reply,
                  const char **reason);
void pm_agent_close(struct pm_agent *a);

/* Wipes the serialised form of req and the string value of key in req (it held a code). */
void pm_agent_wipe_request(json_object *req, const char *key);

#endif
