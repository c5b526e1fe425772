/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "cp_server.h"
#include "api.h"
#include "cp_metrics.h"
#include "cp_admission.h"
#include "cp_defer.h"
#include "api_web.h"
#include "cp_refusals.h"
#include "cp_request.h"
#include "cp_waiters.h"
#include "pc_err.h"
#include "pc_log.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

enum access { ANYONE, HOST_ONLY, ADMIN_ONLY, ADMIN_OR_SESSION, SESSION_ONLY };

struct route {
    const char *method;
    const char *pattern; /* after "/v1/"; "*" matches one segment, a final "**" the rest */
    enum access access;
    cp_handler handler;
};

static const struct route routes[] = {
    { "GET", "health", ANYONE, api_health },
    { "GET", "setup.sh", ANYONE, api_setup_script },
    { "POST", "enroll", ANYONE, api_enroll },
    { "POST", "auth/begin", HOST_ONLY, api_auth_begin },
    { "POST", "auth/totp", HOST_ONLY, api_auth_totp },
    { "POST", "auth/push", HOST_ONLY, api_auth_push },
    { "GET", "auth/push/*", HOST_ONLY, api_push_poll },
    { "GET", "info", ADMIN_ONLY, api_info },
    { "GET", "users", ADMIN_ONLY, api_users_list },
    { "POST", "users", ADMIN_ONLY, api_users_add },
    { "GET", "users/*", ADMIN_ONLY, api_user_get },
    { "PATCH", "users/*", ADMIN_ONLY, api_user_patch },
    { "DELETE", "users/*", ADMIN_ONLY, api_user_delete },
    { "POST", "users/*/totp", ADMIN_ONLY, api_user_totp },
    { "GET", "users/*/keys", ADMIN_ONLY, api_user_keys_list },
    { "POST", "users/*/keys", ADMIN_ONLY, api_user_keys_add },
    { "DELETE", "users/*/keys/**", ADMIN_ONLY, api_user_keys_delete },
    { "GET", "approvals", ADMIN_OR_SESSION, api_approvals_list },
    { "POST", "approvals/*/approve", ADMIN_OR_SESSION, api_approval_approve },
    { "POST", "approvals/*/deny", ADMIN_OR_SESSION, api_approval_deny },
    { "POST", "tokens", ADMIN_ONLY, api_tokens_create },
    { "GET", "hosts", ADMIN_ONLY, api_hosts_list },
    { "GET", "hosts/self/principals", HOST_ONLY, api_host_principals },
    { "POST", "hosts/self/renew", HOST_ONLY, api_host_renew },
    { "PATCH", "hosts/*", ADMIN_ONLY, api_host_patch },
    { "DELETE", "hosts/*", ADMIN_ONLY, api_host_delete },
    { "GET", "audit", ADMIN_ONLY, api_audit },
    { "GET", "audit/explain/*", ADMIN_ONLY, api_audit_explain },
    { "GET", "ca/user.pub", ANYONE, api_ca_user_pub },
    { "GET", "ca/host.pub", ANYONE, api_ca_host_pub },
    { "GET", "ca", ADMIN_ONLY, api_ca_status },           /* CA rotation */
    { "POST", "ca/*/rotate", ADMIN_ONLY, api_ca_rotate }, /* CA rotation */
    { "POST", "ca/*/finish", ADMIN_ONLY, api_ca_finish }, /* CA rotation */
    { "GET", "krl", ANYONE, api_krl },
    { "GET", "krl/host", ANYONE, api_krl_host },
    { "GET", "certs", ADMIN_ONLY, api_certs_list },
    { "POST", "certs/revoke", ADMIN_ONLY, api_certs_revoke },
    { "GET", "policies", ADMIN_ONLY, api_policies_list },
    { "POST", "policies", ADMIN_ONLY, api_policies_add },
    { "DELETE", "policies/*", ADMIN_ONLY, api_policy_delete },
    { "POST", "login/start", ANYONE, api_login_start },
    { "POST", "login/finish", ANYONE, api_login_finish },
    { "GET", "login/*", ANYONE, api_login_poll },
    { "GET", "session", SESSION_ONLY, api_session },
    /* access on request */
    { "GET", "requests", ADMIN_OR_SESSION, api_requests_list },
    { "POST", "requests", SESSION_ONLY, api_request_create },
    { "POST", "requests/*/approve", SESSION_ONLY, api_request_approve },
    { "POST", "requests/*/deny", ADMIN_OR_SESSION, api_request_deny },
    { "POST", "requests/*/revoke", ADMIN_OR_SESSION, api_request_revoke },
    /* issue 13: logins that survive the control plane */
    { "GET", "hosts/self/offline", HOST_ONLY, api_host_offline },
    { "POST", "hosts/self/offline/events", HOST_ONLY, api_host_offline_events },
    /* the approval web app (api_web_session.c): invites and passkeys, for the admin */
    { "POST", "users/*/invite", ADMIN_ONLY, api_user_invite },
    { "GET", "users/*/passkeys", ADMIN_ONLY, api_user_passkeys },
    { "DELETE", "users/*/passkeys/*", ADMIN_ONLY, api_user_passkey_delete },
    /* Web Push (the web app calls the same store functions with its cookie session) */
    { "GET", "webpush/vapid-public-key", ANYONE, api_webpush_vapid_key },
    { "GET", "webpush/subscriptions", SESSION_ONLY, api_webpush_list },
    { "POST", "webpush/subscriptions", SESSION_ONLY, api_webpush_subscribe },
    { "DELETE", "webpush/subscriptions/*", SESSION_ONLY, api_webpush_unsubscribe },
};

static struct MHD_Daemon *daemon_handle;

/* Splits url ("/v1/a/b") into c->seg; 0 if it is not a well-formed /v1 path. */
static int split_path(const char *url, struct cp_call *c)
{
    char *p, *save = NULL, *tok;

    if (strncmp(url, "/v1/", 4) != 0 || strlen(url) >= sizeof c->pathbuf)
        return 0;
    memcpy(c->pathbuf, url + 4, strlen(url + 4) + 1);
    c->nseg = 0;
    for (p = c->pathbuf; (tok = strtok_r(p, "/", &save)); p = NULL) {
        if (c->nseg == CP_MAX_SEGS)
            return 0;
        c->seg[c->nseg++] = tok;
    }
    return c->nseg > 0;
}

static int pattern_matches(const char *pattern, const struct cp_call *c)
{
    char buf[64];
    char *p, *save = NULL, *tok;
    int i = 0;

    snprintf(buf, sizeof buf, "%s", pattern);
    for (p = buf; (tok = strtok_r(p, "/", &save)); p = NULL, i++) {
        if (strcmp(tok, "**") == 0)
            return i < c->nseg;
        if (i >= c->nseg || (strcmp(tok, "*") != 0 && strcmp(tok, c->seg[i]) != 0))
            return 0;
    }
    return i == c->nseg;
}

void cp_client_address(struct MHD_Connection *conn, char *out, size_t n)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    cp_admission_addr_string(ci ? ci->client_addr : NULL, out, n);
}

/* 401 without a valid token; 403 for a token of the wrong kind. */
static int caller_allowed(enum access access, struct cp_call *c, struct cp_resp *r)
{
    enum cp_caller k = c->id.kind;
    const char *why;

    if (access == ANYONE)
        return 1;
    if (k == CP_CALLER_NONE || k == CP_CALLER_BAD) {
        pc_metric_inc(&cp_m_refused_unauth, k == CP_CALLER_NONE ? "no_token" : "bad_token", NULL,
                      NULL);
        cp_resp_error(r, 401, "unauthorized",
                      k == CP_CALLER_NONE ? "a bearer token is required"
                                          : "the bearer token was not accepted");
        return 0;
    }
    switch (access) {
    case HOST_ONLY:
        if (k == CP_CALLER_HOST)
            return 1;
        why = "this endpoint is for enrolled hosts";
        break;
    case ADMIN_OR_SESSION:
        if (k == CP_CALLER_ADMIN || k == CP_CALLER_SESSION)
            return 1;
        why = "this endpoint needs the admin token or a user session";
        break;
    case SESSION_ONLY:
        if (k == CP_CALLER_SESSION)
            return 1;
        why = "this endpoint needs a user session from 'portcullis login'";
        break;
    default:
        if (k == CP_CALLER_ADMIN)
            return 1;
        why = "this endpoint needs the admin token";
        break;
    }
    cp_resp_error(r, 403, "forbidden", why);
    return 0;
}

/* Endpoints whose refusals are written to the store for anyone who asks (cp_refusals.h). */
static int refusal_counted(cp_handler h)
{
    return h == api_enroll || h == api_login_start;
}

/* ---- connection admission (cp_admission.h): throttled addresses, proven connections ---- */

static void refuse_throttled(struct cp_resp *r)
{
    pc_metric_inc(&cp_m_refused_unauth, "throttled", NULL, NULL);
    cp_resp_error(r, 429, "too_many_requests",
                  "too many refused requests from this address: try again later");
    snprintf(r->header_name, sizeof r->header_name, "Retry-After");
    snprintf(r->header_value, sizeof r->header_value, "%d", CP_REFUSAL_WINDOW);
}

/* caller_allowed, plus: a valid credential makes the connection proven (its slot is then out
 * of the unauthenticated clients' share, its idle limit the longer one); a request refused for
 * want of one is counted per address in memory (never a store write) and, once the address is
 * over its refusal limit, answered 429 (cp_refusals.h). */
static int admitted_caller(enum access access, struct cp_call *c, struct cp_resp *r)
{
    enum cp_caller k = c->id.kind;

    if (k == CP_CALLER_HOST || k == CP_CALLER_ADMIN || k == CP_CALLER_SESSION)
        cp_admission_proven(c->conn, k != CP_CALLER_SESSION);
    if (access != ANYONE && k == CP_CALLER_BAD && cp_refusal_throttled(c->source)) {
        refuse_throttled(r);
        return 0;
    }
    if (caller_allowed(access, c, r))
        return 1;
    if (k == CP_CALLER_NONE || k == CP_CALLER_BAD)
        cp_refusal_count(c->source);
    return 0;
}

/* ---- end of connection admission ---- */

/* The endpoints that wait for a group commit and neither park their connection nor touch it:
 * run on cp_defer's pool, so that their worker serves its other connections meanwhile and
 * concurrent requests share a commit. (auth/begin, auth/totp, login/start and login/finish hold
 * their connection themselves and are answered by the store's writer: api_auth.c, api_login.c.) */
static int waits_for_store(cp_handler h)
{
    return h == api_auth_push;
}

/* Finds the route, checks the caller, parses the body, runs the handler. */
static void dispatch(struct cp_call *c, const char *url, struct cp_resp *r)
{
    const struct route *rt = NULL;
    const char *auth;
    int path_known = 0;

    if (strcmp(url, "/metrics") == 0) {
        api_metrics(c, r);
        return;
    }
    if (!split_path(url, c)) {
        cp_resp_error(r, 404, "not_found", "no such endpoint");
        return;
    }
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (!pattern_matches(routes[i].pattern, c))
            continue;
        path_known = 1;
        if (strcmp(routes[i].method, c->method) == 0) {
            rt = &routes[i];
            break;
        }
    }
    if (!rt) {
        if (path_known)
            cp_resp_error(r, 405, "method_not_allowed", "method not allowed on this endpoint");
        else
            cp_resp_error(r, 404, "not_found", "no such endpoint");
        return;
    }
    auth = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if ((refusal_counted(rt->handler) || (rt->access != ANYONE && (!auth || !*auth))) &&
        cp_refusal_throttled(c->source)) {
        refuse_throttled(r);
        return;
    }
    cp_identify(auth, &c->id);
    if (!admitted_caller(rt->access, c, r))
        return;
    /* the login endpoints: a host over its rate is refused before its body is even parsed */
    if ((rt->handler == api_auth_begin || rt->handler == api_auth_totp) && api_auth_over_rate(c, r))
        return;
    if (c->req->too_large) {
        cp_resp_error(r, 413, "too_large", "request body is larger than 64 KiB");
        return;
    }
    if (strcmp(c->method, "POST") == 0 || strcmp(c->method, "PATCH") == 0) {
        struct pc_jerr e = { 0 };
        if (pc_json_parse_object((const char *)pc_sshbuf_ptr(&c->req->body),
                                 pc_sshbuf_len(&c->req->body), &c->body, &e) != PC_OK) {
            cp_resp_jerr(r, &e);
            return;
        }
    }
    if (waits_for_store(rt->handler) && cp_defer(rt->handler, c)) {
        r->suspended = 1; /* the pool answers (cp_defer.h) */
        return;
    }
    rt->handler(c, r);
}

static enum MHD_Result send_reply(struct MHD_Connection *conn, struct cp_resp *r)
{
    const char *text = r->body ? pc_json_dump(r->body) : "{}";
    struct MHD_Response *resp;
    enum MHD_Result ret;

    if (r->raw)
        resp = MHD_create_response_from_buffer(r->raw_len, r->raw, MHD_RESPMEM_MUST_COPY);
    else
        resp = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            r->raw ? r->raw_type : "application/json");
    if (r->header_name[0])
        MHD_add_response_header(resp, r->header_name, r->header_value);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    ret = MHD_queue_response(conn, r->status ? r->status : 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct cp_req *req = *con_cls;
    struct cp_call call;
    struct cp_resp resp = { 0 };
    enum MHD_Result ret;

    (void)cls;
    (void)version;
    if (!req) {
        req = calloc(1, sizeof *req);
        if (!req)
            return MHD_NO;
        pc_sshbuf_init_secret(&req->body, CP_MAX_BODY);
        *con_cls = req;
        cp_admission_request_started(conn); /* headers in: the handshake deadline is met */
        return MHD_YES;
    }
    if (*upload_data_size)
        return cp_req_body_piece(req, upload_data, upload_data_size);
    if (cp_defer_take(req, &resp)) { /* resumed: the pool's reply */
        ret = send_reply(conn, &resp);
        json_object_put(resp.body);
        free(resp.raw);
        return ret;
    }
    /* long-poll lifecycle: resumed because the client hung up while it waited (cp_waiters.c) */
    if (req->wait.gone)
        return MHD_NO;
    memset(&call, 0, sizeof call);
    call.conn = conn;
    call.req = req;
    call.method = method;
    call.url = url;
    cp_client_address(conn, call.source, sizeof call.source);
    dispatch(&call, url, &resp);
    json_object_put(call.body);
    if (resp.detached) { /* the connection lives on outside libmicrohttpd: it must close its side */
        json_object_put(resp.body);
        free(resp.raw);
        return MHD_NO;
    }
    if (resp.suspended) {
        json_object_put(resp.body);
        free(resp.raw);
        return MHD_YES;
    }
    ret = send_reply(conn, &resp);
    json_object_put(resp.body);
    free(resp.raw);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct cp_req *req = *con_cls;
    (void)cls;
    (void)conn;
    (void)toe;
    if (!req)
        return;
    cp_waiters_forget(&req->wait);
    if (req->dresp) { /* answered while suspended, but the client left before it was sent */
        json_object_put(req->dresp->body);
        free(req->dresp->raw);
        free(req->dresp);
    }
    pc_sshbuf_free(&req->body); /* secret: bodies carry codes and tokens */
    free(req);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    /* one notify callback per daemon: admission's bookkeeping (cp_admission.h), then the count */
    cp_admission_notify(cls, conn, socket_context, toe);
    if (toe == MHD_CONNECTION_NOTIFY_STARTED)
        pc_metric_inc(&cp_m_tls_connections, NULL, NULL, NULL);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    size_t n;
    (void)cls;
    vsnprintf(line, sizeof line, fmt, ap);
    n = strlen(line);
    while (n > 0 && line[n - 1] == '\n')
        line[--n] = '\0';
    pc_log(PC_LOG_DEBUG, "event=http_library message=\"%s\"", line);
}

/* Per-connection memory of libmicrohttpd (request line, headers, body chunks, reply headers; a
 * body is handed over in pieces, so it need not fit). It is held by every open connection, among
 * them every waiting long-poll (RSS per waiting poll, 2,000 polls: 17.5 KB with an 8 KB pool, 16.0
 * KB with 4 KB; most of the rest is the GnuTLS session, ~10 KB: docs/PERFORMANCE.md). With 4 KB a
 * request's header block may be up to ~3.6 KB (longer: refused, 431 or the connection closed); the
 * longest we need is well under half that: a bearer token of PC_BEARER_TOKEN_MAX (1,024)
 * characters and a few ordinary headers (test_conn_memory checks it). */
#define CONN_POOL_BYTES 4096

int cp_server_start(const struct cp_settings *s, const char *key_pem, const char *cert_pem,
                    char *err, size_t errsz)
{
    struct sockaddr_storage ss;
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_TLS | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ITC | MHD_USE_ERROR_LOG;
    const struct cp_admission_limits lim = { s->max_unauth, s->max_per_address,
                                             (unsigned)s->handshake_timeout,
                                             (unsigned)s->idle_timeout };
    int rc;

    memset(&ss, 0, sizeof ss);
    if (inet_pton(AF_INET, s->listen_addr, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        ((struct sockaddr_in *)&ss)->sin_family = AF_INET;
        ((struct sockaddr_in *)&ss)->sin_port = htons(s->port);
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        if (inet_pton(AF_INET6, s->listen_addr, &s6->sin6_addr) != 1) {
            snprintf(err, errsz, "--listen: '%s' is not a numeric address", s->listen_addr);
            return PC_ERR_INVAL;
        }
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(s->port);
        flags |= MHD_USE_IPv6;
    }
    if ((rc = cp_admission_start(&lim)) != PC_OK) {
        snprintf(err, errsz, "cannot start the connection deadline thread");
        return rc;
    }
    /* Four threads per worker for the login requests that wait for the store: that many can
     * share one commit (each opens a store connection when it first reads outside a job:
     * login/finish). The workers themselves no longer wait, so a few suffice: each one more
     * kept ~1.5 MB of released long-polls' heap (16 workers: 50 MB 5 s after 10,000 polls
     * ended, against 30 MB with 4; docs/PERFORMANCE.md). */
    cp_defer_start(4 * (unsigned)s->threads);
    /* The default timeout is the unauthenticated one; cp_admission_proven raises it per
     * connection. Accept policy and connection notices: cp_admission.h. */
    daemon_handle = MHD_start_daemon(
        flags, s->port, cp_admission_accept, NULL, on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER,
        mhd_log, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned int)s->threads, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)s->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)s->unauth_idle_timeout,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL, MHD_OPTION_HTTPS_MEM_KEY, key_pem,
        MHD_OPTION_HTTPS_MEM_CERT, cert_pem, MHD_OPTION_HTTPS_PRIORITIES,
        "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2", MHD_OPTION_NOTIFY_COMPLETED, on_completed,
        NULL, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_POOL_BYTES, MHD_OPTION_END);
    if (!daemon_handle) {
        cp_admission_stop();
        snprintf(err, errsz,
                 "cannot listen on %s port %u (in use, or not an address of this machine?)",
                 s->listen_addr, (unsigned)s->port);
        return PC_ERR_NET;
    }
    return PC_OK;
}

void cp_server_stop(void)
{
    if (!daemon_handle)
        return;
    cp_defer_stop(); /* every deferred request answered and resumed */
    /* Waiters were resumed by cp_waiters_stop before this. No MHD_quiesce_daemon first: with
     * the epoll thread pool (libmicrohttpd 0.9.75) it can abort in a worker ("Failed to remove
     * listen FD from epoll set"); MHD_stop_daemon closes the listener itself. */
    MHD_stop_daemon(daemon_handle);
    daemon_handle = NULL;
    cp_admission_stop();
}
