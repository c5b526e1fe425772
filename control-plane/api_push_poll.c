/* SPDX-License-Identifier: BSD-2-Clause */
/* GET /v1/auth/push/ID?wait=N — the agent's long-poll for a push's decision. Answers at once if
 * the push is final or wait is 0; otherwise the request waits, holding no thread, until the
 * state changes, the push expires or wait elapses. A TLS 1.3 connection waits parked
 * (cp_parked.h: its socket and ~60 bytes of key state, no libmicrohttpd connection, no TLS
 * session); others wait suspended in libmicrohttpd (cp_waiters.h). */
#include "config.h"
#include "api.h"
#include "cp_parked.h"
#include "cp_push.h"
#include "cp_test_hooks.h"
#include "cp_waiters.h"
#include "pc_err.h"
#include "pc_json.h"
#include "pc_mem.h"
#include "pc_time.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A parked poll: what its answer needs once libmicrohttpd has forgotten the request. */
struct parked_poll {
    struct cp_wait w; /* first: on_ready gets &w */
    struct cp_parked tls;
    struct cp_identity host;
    char auth[80]; /* its Authorization header ("Bearer " and 64 hex digits): a secret */
};

/* The poll's answer for the push's state now into r; 1 if it should wait instead. */
static int poll_state(const struct cp_identity *host, const char *id, int64_t deadline_ms,
                      struct cp_resp *r)
{
    char state[16];
    int64_t expires_at = 0;
    json_object *o;
    int rc;

    if ((rc = cp_push_status(host, id, state, &expires_at)) != PC_OK) {
        if (rc == PC_ERR_NOTFOUND)
            cp_resp_error(r, 404, "not_found", "no such push for this host");
        else
            cp_resp_from_err(r, rc, "push");
        return 0;
    }
    if (strcmp(state, "pending") == 0 && pc_now_ms() < deadline_ms && !cp_waiters_stopping())
        return 1;
    o = json_object_new_object();
    json_object_object_add(o, "push_id", json_object_new_string(id));
    json_object_object_add(o, "state", json_object_new_string(state));
    json_object_object_add(o, "expires_at", json_object_new_int64(expires_at));
    cp_resp_json(r, 200, o);
    return 0;
}

/* A decision made between the status read and the listing would be missed: look again. */
static void recheck(const struct cp_identity *host, const char *id)
{
    char state[16];
    int64_t expires_at;

    if (cp_push_status(host, id, state, &expires_at) == PC_OK && strcmp(state, "pending") != 0)
        cp_waiters_notify(id);
}

/* The host's credential is judged again before the answer, as a held poll's resumed request is
 * (cp_server.c's dispatch): a host deleted, or its token revoked, while its poll waited gets
 * 401, never the push's state. */
static int still_the_host(const struct parked_poll *pp, struct cp_resp *r)
{
    struct cp_identity now;

    cp_identify(pp->auth, &now);
    if (now.kind == CP_CALLER_HOST && now.host_id == pp->host.host_id)
        return 1;
    cp_resp_error(r, 401, "unauthorized", "the bearer token was not accepted");
    return 0;
}

static void parked_free(struct parked_poll *pp)
{
    cp_parked_drop(&pp->tls); /* closes, wipes the keys */
    pc_wipe(pp->auth, sizeof pp->auth);
    free(pp);
    cp_waiters_park_release();
}

/* On the waiters' thread: the push changed, the deadline passed, the client went or the server
 * stops. Answer, or park again (a wake-up for all, cp_waiters_notify_all, with nothing new). */
static void parked_ready(struct cp_wait *w)
{
    struct parked_poll *pp = (struct parked_poll *)w;
    struct cp_resp r = { 0 };

    if (w->gone) {
        parked_free(pp);
        return;
    }
    if (still_the_host(pp, &r) && poll_state(&pp->host, w->push_id, w->deadline_ms, &r)) {
        cp_waiters_park(w);
        recheck(&pp->host, w->push_id);
        return;
    }
    cp_parked_answer(&pp->tls, r.status ? r.status : 200, r.body ? pc_json_dump(r.body) : "{}");
    json_object_put(r.body);
    parked_free(pp);
}

/* Test builds (--enable-test-hooks): PC_TEST_PARK_DELAY_MS=N (1..10000) holds a poll that is
 * about to park for N ms, between its slot and its listing, so that a test can stop the server
 * in that moment (test_parked_polls.py: it must still be answered). */
static void test_park_delay(void)
{
#ifdef PC_TEST_HOOKS
    uint64_t ms = cp_test_hook_ms("PC_TEST_PARK_DELAY_MS", 10000);

    if (ms)
        cp_test_hook_sleep(ms);
#endif
}

/* 1 if c's connection now waits parked (the caller answers nothing and lets libmicrohttpd drop
 * its side); 0 to wait suspended instead. At most --max-connections polls are parked. */
static int park(struct cp_call *c, const char *id, int64_t deadline_ms)
{
    const char *auth = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_AUTHORIZATION);
    struct parked_poll *pp;

    if (!auth || strlen(auth) >= sizeof pp->auth ||
        !cp_waiters_park_reserve(cp_rt.settings->max_connections))
        return 0;
    if (!(pp = calloc(1, sizeof *pp)) || !cp_parked_detach(c->conn, &pp->tls)) {
        free(pp);
        cp_waiters_park_release();
        return 0;
    }
    pp->host = c->id;
    memcpy(pp->auth, auth, strlen(auth) + 1);
    pp->w.parked = &pp->tls;
    pp->w.on_ready = parked_ready;
    snprintf(pp->w.push_id, sizeof pp->w.push_id, "%s", id);
    pp->w.deadline_ms = deadline_ms;
    test_park_delay();
    cp_waiters_park(&pp->w); /* from here on pp may be answered and freed (by the waiters'
                              * thread, or at a stop by this call) */
    recheck(&c->id, id);
    return 1;
}

void api_push_poll(struct cp_call *c, struct cp_resp *r)
{
    const char *id = c->seg[2];
    struct cp_wait *w = &c->req->wait;
    uint64_t wait = 0;

    if (api_wait_param(c, r, &wait) != PC_OK)
        return;
    if (strlen(id) > CP_PUSH_ID_LEN) {
        cp_resp_error(r, 404, "not_found", "no such push for this host");
        return;
    }
    if (c->req->wait_deadline_ms == 0)
        c->req->wait_deadline_ms = pc_now_ms() + (int64_t)wait * 1000;
    if (!poll_state(&c->id, id, c->req->wait_deadline_ms, r))
        return;
    if (park(c, id, c->req->wait_deadline_ms)) {
        r->detached = 1;
        return;
    }
    w->conn = c->conn;
    snprintf(w->push_id, sizeof w->push_id, "%s", id);
    w->deadline_ms = c->req->wait_deadline_ms;
    cp_waiters_suspend(w);
    recheck(&c->id, id);
    r->suspended = 1;
}
