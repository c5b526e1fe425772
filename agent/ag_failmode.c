/* SPDX-License-Identifier: BSD-2-Clause */
/* Issue 18: failmode decisions reported by the module (see ag_failmode.h). */
#include "config.h"
#include "ag_failmode.h"
#include "ag_hostca.h"
#include "ag_offline.h"
#include "pc_agent_proto.h"
#include "pc_err.h"
#include "pc_json.h"
#include "pc_log.h"
#include "pc_rand.h"
#include "pc_time.h"
#include "pc_valid.h"
#include <pthread.h>
#include <stdio.h>
#include <string.h>

struct note {
    char id[33];
    char user[65];
    char rhost[65]; /* an address or a host name; longer ones are left out */
    char service[65];
    char error[16];
    int64_t at;    /* wall clock (the event's time) */
    int64_t at_ms; /* monotonic, for the TTL; 0: free */
};

static pthread_mutex_t notes_lock = PTHREAD_MUTEX_INITIALIZER;
static struct note notes[AG_FAILMODE_SLOTS];

/* 1 if s is 1..max-1 bytes of [A-Za-z0-9] and the characters of extra. */
static int plain(const char *s, size_t max, const char *extra)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n >= max)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr(extra, *s)))
            return 0;
    return 1;
}

/* The control plane's rule for user names (cp_user_name_valid): 1-32 of [a-z0-9_.-], starting
 * with [a-z_]. A report it would refuse must never be queued: one bad event refuses the whole
 * upload, and would hold back every event behind it. */
static int user_ok(const char *s)
{
    return s && ((*s >= 'a' && *s <= 'z') || *s == '_') && strlen(s) <= 32 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_.-") == strlen(s);
}

/* The reply's error code if it follows failmode at the module (docs/AGENT-PROTOCOL.md). */
static const char *failmode_error(json_object *err)
{
    static const char *const codes[] = { PC_AGENT_E_UNREACHABLE, PC_AGENT_E_TIMEOUT,
                                         PC_AGENT_E_GARBAGE, PC_AGENT_E_SERVER, NULL };
    json_object *c = NULL;
    const char *code;

    if (!err || !json_object_object_get_ex(err, "error", &c) ||
        !json_object_is_type(c, json_type_string))
        return NULL;
    code = json_object_get_string(c);
    for (size_t i = 0; codes[i]; i++)
        if (strcmp(code, codes[i]) == 0)
            return codes[i];
    return NULL;
}

void ag_failmode_note(json_object *err, const char *user, const char *rhost, const char *service)
{
    const char *code = failmode_error(err);
    int64_t now = pc_now_ms();
    struct note n = { .at = pc_now(), .at_ms = now };
    size_t slot = 0;

    /* user as the control plane's names; rhost and service kept only when plain (else ""),
     * with the control plane's own limits (cp_offline.c) */
    if (!code || !user_ok(user) || pc_random_hex(n.id, 33, 16) != PC_OK)
        return;
    snprintf(n.user, sizeof n.user, "%s", user);
    snprintf(n.error, sizeof n.error, "%s", code);
    if (plain(rhost, sizeof n.rhost, ".:-_%"))
        snprintf(n.rhost, sizeof n.rhost, "%s", rhost);
    if (plain(service, sizeof n.service, "._-"))
        snprintf(n.service, sizeof n.service, "%s", service);
    pthread_mutex_lock(&notes_lock);
    for (size_t i = 0; i < AG_FAILMODE_SLOTS; i++) {
        if (notes[i].at_ms == 0 || now - notes[i].at_ms > AG_FAILMODE_TTL_MS) {
            slot = i;
            break;
        }
        if (notes[i].at_ms < notes[slot].at_ms)
            slot = i;
    }
    notes[slot] = n;
    pthread_mutex_unlock(&notes_lock);
    json_object_object_add(err, "failmode_id", json_object_new_string(n.id));
}

/* Takes (removes) the note with id if it is still fresh. */
static int take(const char *id, struct note *out)
{
    int found = 0;
    int64_t now = pc_now_ms();

    pthread_mutex_lock(&notes_lock);
    for (size_t i = 0; i < AG_FAILMODE_SLOTS && !found; i++) {
        if (notes[i].at_ms == 0 || strcmp(notes[i].id, id) != 0)
            continue;
        found = now - notes[i].at_ms <= AG_FAILMODE_TTL_MS;
        if (found)
            *out = notes[i];
        memset(&notes[i], 0, sizeof notes[i]);
    }
    pthread_mutex_unlock(&notes_lock);
    return found;
}

json_object *ag_failmode_op(struct ag_ctx *x, json_object *req)
{
    static const char *const fields[] = { "op", "id", "failmode", NULL };
    const char *id = NULL, *mode = NULL;
    struct pc_jerr je = { 0 };
    struct note n;
    char err[256] = "";
    json_object *ev, *out;
    int safe;

    if (pc_json_only_fields(req, fields, &je) != PC_OK ||
        pc_json_get_str(req, "id", 1, 32, &id, &je) != PC_OK ||
        pc_json_get_str(req, "failmode", 1, 8, &mode, &je) != PC_OK) {
        pc_log(PC_LOG_WARN, "event=request_refused error=bad_request op=failmode message=\"%s\"",
               je.message);
        return ag_ops_error(PC_AGENT_E_BAD_REQUEST, je.message);
    }
    if (strcmp(mode, "safe") != 0 && strcmp(mode, "secure") != 0)
        return ag_ops_error(PC_AGENT_E_BAD_REQUEST, "field 'failmode' must be safe or secure");
    safe = strcmp(mode, "safe") == 0;
    if (!pc_valid_hex(id, 32, 32) || !take(id, &n)) {
        pc_log(PC_LOG_WARN, "event=request_refused error=bad_request op=failmode "
                            "message=\"unknown, used or expired id\"");
        return ag_ops_error(PC_AGENT_E_BAD_REQUEST,
                            "no begin of the last minute answered with this failmode_id (or it "
                            "was reported already)");
    }
    ev = json_object_new_object();
    json_object_object_add(ev, "id", json_object_new_string(n.id));
    json_object_object_add(ev, "at", json_object_new_int64(n.at));
    json_object_object_add(ev, "kind", json_object_new_string("failmode"));
    json_object_object_add(ev, "user", json_object_new_string(n.user));
    json_object_object_add(ev, "action", json_object_new_string(safe ? "allow" : "deny"));
    json_object_object_add(ev, "failmode", json_object_new_string(safe ? "safe" : "secure"));
    json_object_object_add(ev, "error", json_object_new_string(n.error));
    if (n.service[0])
        json_object_object_add(ev, "service", json_object_new_string(n.service));
    if (n.rhost[0])
        json_object_object_add(ev, "rhost", json_object_new_string(n.rhost));
    /* a host enrolled without a host key has no ssh_dir yet: the queue lives there */
    if (ag_hostca_mkdir(x->cfg, err, sizeof err) != PC_OK ||
        ag_offline_enqueue(x->cfg, ev) != PC_OK) {
        json_object_put(ev);
        return ag_ops_error(PC_AGENT_E_INTERNAL, "the report could not be queued");
    }
    json_object_put(ev);
    pc_log(PC_LOG_WARN,
           "event=failmode user=%s failmode=%s error=%s action=%s id=%s (queued for "
           "the control plane's audit log)",
           n.user, safe ? "safe" : "secure", n.error, safe ? "allow" : "deny", n.id);
    out = json_object_new_object();
    json_object_object_add(out, "ok", json_object_new_boolean(1));
    return out;
}
