/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "cp_web.h"
#include "api_web.h"
#include "cp_server.h"
#include "pc_err.h"
#include "pc_fs.h"
#include "pc_log.h"
#include "pc_mem.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "webapp_assets.h"

#define WEB_PER_ADDRESS 64 /* of CP_WEB_CONNECTIONS, from one client address */

#define WEB_MAX_BODY (16 * 1024)

static const char csp[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; manifest-src 'self'; worker-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

struct asset {
    const char *name; /* after /app/ */
    const char *type;
    const unsigned char *data;
    const unsigned int *len;
};

static const struct asset assets[] = {
    { "", "text/html; charset=utf-8", wa_index_html, &wa_index_html_len },
    { "index.html", "text/html; charset=utf-8", wa_index_html, &wa_index_html_len },
    { "app.js", "text/javascript; charset=utf-8", wa_app_js, &wa_app_js_len },
    { "app.css", "text/css; charset=utf-8", wa_app_css, &wa_app_css_len },
    { "sw.js", "text/javascript; charset=utf-8", wa_sw_js, &wa_sw_js_len },
    { "manifest.webmanifest", "application/manifest+json", wa_manifest_webmanifest,
      &wa_manifest_webmanifest_len },
    { "icon.svg", "image/svg+xml", wa_icon_svg, &wa_icon_svg_len },
};

struct api_route {
    const char *method;
    const char *pattern; /* after "/app/api/"; "*" matches one segment */
    int need_session;
    void (*handler)(struct cp_call *c, struct cp_resp *r, struct cp_web_ctx *w);
};

static const struct api_route api_routes[] = {
    { "GET", "me", 1, api_web_me },
    { "POST", "invite/begin", 0, api_web_invite_begin },
    { "POST", "invite/finish", 0, api_web_invite_finish },
    { "POST", "signin/begin", 0, api_web_signin_begin },
    { "POST", "signin/finish", 0, api_web_signin_finish },
    { "POST", "signout", 1, api_web_signout },
    { "GET", "pushes", 1, api_web_pushes },
    { "POST", "pushes/*/begin", 1, api_web_push_begin },
    { "POST", "pushes/*/approve", 1, api_web_push_approve },
    { "POST", "pushes/*/deny", 1, api_web_push_deny },
    /* Web Push (issue 14 item 5): this browser's subscriptions (api_webpush.c). */
    { "GET", "webpush/vapid-public-key", 1, api_web_webpush_key },
    { "GET", "webpush/subscriptions", 1, api_web_webpush_list },
    { "POST", "webpush/subscriptions", 1, api_web_webpush_subscribe },
    { "DELETE", "webpush/subscriptions/*", 1, api_web_webpush_unsubscribe },
};

static const struct cp_settings *web_settings;
static struct MHD_Daemon *web_daemon;
static pthread_mutex_t web_lock = PTHREAD_MUTEX_INITIALIZER;

static int split_api_path(const char *url, struct cp_call *c)
{
    char *p, *save = NULL, *tok;
    size_t n = strlen(url);

    if (strncmp(url, "/app/api/", 9) != 0 || n >= sizeof c->pathbuf)
        return 0;
    memcpy(c->pathbuf, url + 9, n - 9 + 1);
    c->nseg = 0;
    for (p = c->pathbuf; (tok = strtok_r(p, "/", &save)); p = NULL) {
        if (c->nseg == 8)
            return 0;
        c->seg[c->nseg++] = tok;
    }
    return c->nseg > 0;
}

static int api_pattern_matches(const char *pattern, const struct cp_call *c)
{
    char buf[64], *p, *save = NULL, *tok;
    int i = 0;

    snprintf(buf, sizeof buf, "%s", pattern);
    for (p = buf; (tok = strtok_r(p, "/", &save)); p = NULL, i++)
        if (i >= c->nseg || (strcmp(tok, "*") != 0 && strcmp(tok, c->seg[i]) != 0))
            return 0;
    return i == c->nseg;
}

/* Every POST must come from the app's own origin: a page elsewhere cannot make the browser act
 * with the user's cookie (SameSite=Strict says the same; this does not depend on it). */
static int origin_ok(struct MHD_Connection *conn)
{
    const char *o = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    return o && strcmp(o, web_settings->web_origin) == 0;
}

static void web_api(struct cp_call *c, struct cp_resp *r, struct cp_web_ctx *w)
{
    const struct api_route *rt = NULL;
    int known = 0;

    if (!split_api_path(c->url, c)) {
        cp_resp_error(r, 404, "not_found", "no such endpoint");
        return;
    }
    for (size_t i = 0; i < sizeof api_routes / sizeof api_routes[0]; i++) {
        if (!api_pattern_matches(api_routes[i].pattern, c))
            continue;
        known = 1;
        if (strcmp(api_routes[i].method, c->method) == 0) {
            rt = &api_routes[i];
            break;
        }
    }
    if (!rt) {
        cp_resp_error(r, known ? 405 : 404, known ? "method_not_allowed" : "not_found",
                      known ? "method not allowed on this endpoint" : "no such endpoint");
        return;
    }
    if (strcmp(c->method, "GET") != 0 && !origin_ok(c->conn)) {
        cp_resp_error(r, 403, "bad_origin", "this request did not come from the app's origin");
        return;
    }
    api_web_identify(MHD_lookup_connection_value(c->conn, MHD_COOKIE_KIND, CP_WEB_COOKIE), w);
    if (rt->need_session && !w->user[0]) {
        cp_resp_error(r, 401, "unauthorized", "sign in with your passkey");
        return;
    }
    if (c->req->too_large) {
        cp_resp_error(r, 413, "too_large", "request body is larger than 16 KiB");
        return;
    }
    if (strcmp(c->method, "POST") == 0) {
        struct pc_jerr e = { 0 };
        if (pc_json_parse_object((const char *)pc_sshbuf_ptr(&c->req->body),
                                 pc_sshbuf_len(&c->req->body), &c->body, &e) != PC_OK) {
            cp_resp_jerr(r, &e);
            return;
        }
    }
    rt->handler(c, r, w);
}

static void add_security_headers(struct MHD_Response *resp)
{
    MHD_add_response_header(resp, "Content-Security-Policy", csp);
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
    MHD_add_response_header(resp, "Cross-Origin-Resource-Policy", "same-origin");
    MHD_add_response_header(resp, "Strict-Transport-Security", "max-age=31536000");
    MHD_add_response_header(resp, "Permissions-Policy", "camera=(), microphone=(), geolocation=()");
}

static enum MHD_Result send_static(struct MHD_Connection *conn, const struct asset *a)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(*a->len, (void *)a->data,
                                                                MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret;

    if (!resp)
        return MHD_NO;
    add_security_headers(resp);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, a->type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    if (strcmp(a->name, "sw.js") == 0)
        MHD_add_response_header(resp, "Service-Worker-Allowed", "/app/");
    ret = MHD_queue_response(conn, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *conn, struct cp_resp *r,
                                 const struct cp_web_ctx *w, const char *location)
{
    const char *text = r->body ? pc_json_dump(r->body) : "{}";
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(text), (void *)text,
                                                                MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;

    if (!resp)
        return MHD_NO;
    add_security_headers(resp);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (w && w->set_cookie[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, w->set_cookie);
    if (location)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
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
    struct cp_web_ctx w;
    enum MHD_Result ret;

    (void)cls;
    (void)version;
    if (!req) {
        req = calloc(1, sizeof *req);
        if (!req)
            return MHD_NO;
        pc_sshbuf_init_secret(&req->body, WEB_MAX_BODY);
        *con_cls = req;
        return MHD_YES;
    }
    if (*upload_data_size)
        return cp_req_body_piece(req, upload_data, upload_data_size);
    if (strcmp(method, "GET") == 0 && strncmp(url, "/app/api/", 9) != 0) {
        if (strcmp(url, "/") == 0 || strcmp(url, "/app") == 0) {
            cp_resp_error(&resp, 302, "moved", "the app is at /app/");
            ret = send_json(conn, &resp, NULL, "/app/");
            json_object_put(resp.body);
            return ret;
        }
        if (strncmp(url, "/app/", 5) == 0)
            for (size_t i = 0; i < sizeof assets / sizeof assets[0]; i++)
                if (strcmp(url + 5, assets[i].name) == 0)
                    return send_static(conn, &assets[i]);
    }
    memset(&call, 0, sizeof call);
    memset(&w, 0, sizeof w);
    call.conn = conn;
    call.req = req;
    call.method = method;
    call.url = url;
    cp_client_address(conn, call.source, sizeof call.source);
    if (strncmp(url, "/app/api/", 9) == 0)
        web_api(&call, &resp, &w);
    else
        cp_resp_error(&resp, 404, "not_found", "no such page (the app is at /app/)");
    json_object_put(call.body);
    ret = send_json(conn, &resp, &w, NULL);
    json_object_put(resp.body);
    free(resp.raw);
    pc_wipe(&w, sizeof w);
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
    pc_sshbuf_free(&req->body);
    free(req);
    *con_cls = NULL;
}

static struct MHD_Daemon *start_daemon(char *err, size_t errsz)
{
    const struct cp_settings *s = web_settings;
    struct sockaddr_storage ss;
    struct MHD_Daemon *d;
    char *key = NULL, *cert = NULL;
    size_t klen = 0, clen = 0;
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_TLS | MHD_USE_ERROR_LOG;
    int rc;

    memset(&ss, 0, sizeof ss);
    if (inet_pton(AF_INET, s->web_listen_addr, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        ((struct sockaddr_in *)&ss)->sin_family = AF_INET;
        ((struct sockaddr_in *)&ss)->sin_port = htons(s->web_port);
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        if (inet_pton(AF_INET6, s->web_listen_addr, &s6->sin6_addr) != 1) {
            snprintf(err, errsz, "--web-listen: '%s' is not a numeric address", s->web_listen_addr);
            return NULL;
        }
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(s->web_port);
        flags |= MHD_USE_IPv6;
    }
    if ((rc = pc_read_file(s->web_cert, 256 * 1024, &cert, &clen)) != PC_OK) {
        snprintf(err, errsz, "--web-cert %s: cannot read: %s", s->web_cert, pc_strerror(rc));
        return NULL;
    }
    if ((rc = pc_read_file(s->web_key, 64 * 1024, &key, &klen)) != PC_OK) {
        snprintf(err, errsz, "--web-key %s: cannot read: %s", s->web_key, pc_strerror(rc));
        free(cert);
        return NULL;
    }
    /* SO_REUSEPORT: on SIGHUP the new daemon binds while the old one still serves. The
     * listener faces phones on any network: one address may hold at most WEB_PER_ADDRESS of
     * its CP_WEB_CONNECTIONS (a whole office behind one NAT approves at once with far fewer), so
     * half-open handshakes from one client cannot fill it (issue 12's attack, on this port). */
    d = MHD_start_daemon(flags, s->web_port, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR,
                         (struct sockaddr *)&ss, MHD_OPTION_LISTENING_ADDRESS_REUSE,
                         (unsigned int)1, MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)2,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned int)CP_WEB_CONNECTIONS,
                         MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)WEB_PER_ADDRESS,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30, MHD_OPTION_HTTPS_MEM_KEY,
                         key, MHD_OPTION_HTTPS_MEM_CERT, cert, MHD_OPTION_HTTPS_PRIORITIES,
                         "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2", MHD_OPTION_NOTIFY_COMPLETED,
                         on_completed, NULL, MHD_OPTION_END);
    pc_free_secret(key, klen);
    free(cert);
    if (!d)
        snprintf(err, errsz,
                 "--web-listen %s port %u: cannot listen, or --web-cert/--web-key are not a "
                 "matching PEM certificate and key",
                 s->web_listen_addr, (unsigned)s->web_port);
    return d;
}

int cp_web_start(const struct cp_settings *s, char *err, size_t errsz)
{
    if (!s->web_port)
        return PC_OK;
    web_settings = s;
    web_daemon = start_daemon(err, errsz);
    if (!web_daemon)
        return PC_ERR_NET;
    pc_log(PC_LOG_INFO, "event=web_started listen=%s port=%u origin=%s rp_id=%s",
           s->web_listen_addr, (unsigned)s->web_port, s->web_origin, s->web_rp_id);
    return PC_OK;
}

void cp_web_reload(void)
{
    struct MHD_Daemon *d, *old;
    char err[512] = "";

    if (!web_settings)
        return;
    pthread_mutex_lock(&web_lock);
    d = start_daemon(err, sizeof err);
    if (!d) {
        pthread_mutex_unlock(&web_lock);
        pc_log(PC_LOG_ERR, "event=web_reload_failed error=\"%s\" (the old certificate stays)", err);
        return;
    }
    old = web_daemon;
    web_daemon = d;
    pthread_mutex_unlock(&web_lock);
    MHD_stop_daemon(old);
    pc_log(PC_LOG_INFO, "event=web_reloaded cert=%s", web_settings->web_cert);
}

void cp_web_stop(void)
{
    pthread_mutex_lock(&web_lock);
    if (web_daemon)
        MHD_stop_daemon(web_daemon);
    web_daemon = NULL;
    pthread_mutex_unlock(&web_lock);
}
