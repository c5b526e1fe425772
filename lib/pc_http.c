/* SPDX-License-Identifier: BSD-2-Clause */
/* The HTTPS client for the control-plane API (see pc_http.h): HTTP/1.1 over OpenSSL's libssl,
 * one kept-alive connection per handle. Built on three parts with one job each: pc_net (TCP
 * connect with a deadline, the name lookup included), pc_tls_client (handshake, pin or CA
 * check, reads and writes with deadlines) and pc_http_reply (the response parser).
 *
 * Not libcurl: the agent runs on every server, and libcurl's dependency tree (Kerberos, LDAP,
 * GnuTLS, SSH, RTMP, IDN, …) was a third of its idle memory for the one protocol used here.
 *
 * Only https, no redirects, no proxies, no cookies, no compression. The request (headers with
 * the token, and the body) and the reply are held in buffers wiped after use. */
#include "config.h"
#include "pc_http.h"
#include "pc_err.h"
#include "pc_http_reply.h"
#include "pc_json.h"
#include "pc_mem.h"
#include "pc_net.h"
#include "pc_sshbuf.h"
#include "pc_time.h"
#include "pc_tls_client.h"
#include "pc_valid.h"
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define PC_HTTP_MAX_REPLY (1024 * 1024)
#define PC_HTTP_MAX_URL 2048
#define PC_HTTP_MAX_HOST 253

struct pc_http {
    char *base_url;    /* without trailing '/': named in messages */
    char *host;        /* for connect, SNI and the certificate check (no brackets) */
    char *port;        /* "443" unless the URL names one */
    char *authority;   /* the Host header: host[:port] as the URL has it */
    char *prefix;      /* the URL's path, put before every request path ("" mostly) */
    char *pins;        /* or NULL */
    char *cafile;      /* or NULL */
    char *auth_header; /* "Authorization: Bearer …\r\n", wiped on free */
    SSL_CTX *ctx;
    SSL *ssl; /* the open connection, or NULL */
    int fd;
    int sent; /* a byte of the last request went out */
    long connect_timeout_ms;
    long timeout_ms;
};

_Static_assert(PC_HTTP_GET_MAX <= PC_SSHBUF_HARD_MAX, "a reply bound must fit a pc_sshbuf");

int pc_http_global_init(void)
{
    /* A write to a socket the peer closed would otherwise kill the process. */
    signal(SIGPIPE, SIG_IGN);
    return OPENSSL_init_ssl(0, NULL) == 1 ? PC_OK : PC_ERR_NOMEM;
}

void pc_http_global_cleanup(void)
{
}

static int host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

/* "https://host[:port][/path]", host a name, an IPv4 address or "[IPv6]". */
static int parse_url(pc_http *h, const char *url, char *err, size_t errsz)
{
    const char *a = url + 8, *end = a + strcspn(a, "/"), *hs, *he, *ps = NULL;
    char host[PC_HTTP_MAX_HOST + 1];
    unsigned char v6[16];
    size_t n;

    for (const char *p = url; *p; p++)
        if (*p <= ' ' || *p > '~' || *p == '?' || *p == '#' || *p == '@')
            return pc_errf(err, errsz, PC_ERR_INVAL,
                           "the server URL %s may hold no user, query, fragment or space", url);
    if (*a == '[') {
        hs = a + 1;
        he = memchr(hs, ']', (size_t)(end - hs));
        if (!he || (he + 1 != end && he[1] != ':'))
            return pc_errf(err, errsz, PC_ERR_INVAL, "bad IPv6 address in the server URL %s", url);
        if (he + 1 != end)
            ps = he + 2;
    } else {
        hs = a;
        he = memchr(hs, ':', (size_t)(end - hs));
        if (he)
            ps = he + 1;
        else
            he = end;
    }
    n = (size_t)(he - hs);
    if (n == 0 || n > PC_HTTP_MAX_HOST)
        return pc_errf(err, errsz, PC_ERR_INVAL,
                       "no host (or a host too long) in the server URL %s", url);
    memcpy(host, hs, n);
    host[n] = '\0';
    if (*a == '[' ? inet_pton(AF_INET6, host, v6) != 1 : strspn(host, "-._") == n)
        return pc_errf(err, errsz, PC_ERR_INVAL, "bad host in the server URL %s", url);
    for (size_t i = 0; *a != '[' && i < n; i++)
        if (!host_char(host[i]))
            return pc_errf(err, errsz, PC_ERR_INVAL, "bad host in the server URL %s", url);
    if (ps) {
        size_t pl = (size_t)(end - ps);
        unsigned long port = 0;

        for (size_t i = 0; i < pl && pl <= 5; i++) {
            if (ps[i] < '0' || ps[i] > '9') {
                port = 0;
                break;
            }
            port = port * 10 + (unsigned)(ps[i] - '0');
        }
        if (pl == 0 || pl > 5 || port == 0 || port > 65535)
            return pc_errf(err, errsz, PC_ERR_INVAL, "bad port in the server URL %s", url);
    }
    h->host = strdup(host);
    h->port = ps ? strndup(ps, (size_t)(end - ps)) : strdup("443");
    h->authority = strndup(a, (size_t)(end - a));
    h->prefix = strdup(end);
    if (!h->host || !h->port || !h->authority || !h->prefix)
        return pc_errf(err, errsz, PC_ERR_NOMEM, "out of memory");
    return PC_OK;
}

int pc_http_new(const struct pc_http_opts *opts, pc_http **out, char *err, size_t errsz)
{
    pc_http *h;
    size_t n;
    int rc;

    *out = NULL;
    if (!opts || !opts->base_url || strncasecmp(opts->base_url, "https://", 8) != 0)
        return pc_errf(err, errsz, PC_ERR_INVAL, "the server URL must start with https://");
    if (strlen(opts->base_url) > PC_HTTP_MAX_URL / 2)
        return pc_errf(err, errsz, PC_ERR_INVAL, "the server URL is too long");
    if (!opts->pin && !opts->cafile)
        return pc_errf(err, errsz, PC_ERR_INVAL, "neither a pin nor a CA file was given");
    if (opts->pin && !pc_tls_pins_valid(opts->pin))
        return pc_errf(err, errsz, PC_ERR_INVAL, "the pin must look like sha256//BASE64");
    if (opts->token && !pc_valid_bearer_token(opts->token))
        return pc_errf(err, errsz, PC_ERR_INVAL,
                       "the token contains characters that are not allowed");

    h = calloc(1, sizeof *h);
    if (!h)
        return pc_errf(err, errsz, PC_ERR_NOMEM, "out of memory");
    h->fd = -1;
    h->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 5000;
    h->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 30000;
    h->base_url = strdup(opts->base_url);
    if (!h->base_url)
        goto nomem;
    for (n = strlen(h->base_url); n > 8 && h->base_url[n - 1] == '/'; n--)
        h->base_url[n - 1] = '\0';
    if ((rc = parse_url(h, h->base_url, err, errsz)) != PC_OK) {
        pc_http_free(h);
        return rc;
    }
    if ((opts->pin && !(h->pins = strdup(opts->pin))) ||
        (opts->cafile && !(h->cafile = strdup(opts->cafile))))
        goto nomem;
    if (opts->token) {
        static const char prefix[] = "Authorization: Bearer ";
        size_t hlen = sizeof prefix + strlen(opts->token) + 2;

        h->auth_header = malloc(hlen);
        if (!h->auth_header)
            goto nomem;
        snprintf(h->auth_header, hlen, "%s%s\r\n", prefix, opts->token);
    }
    h->ctx = pc_tls_client_ctx_new();
    if (!h->ctx) {
        pc_http_free(h);
        return pc_errf(err, errsz, PC_ERR_NOMEM, "cannot set up TLS (OpenSSL)");
    }
    *out = h;
    return PC_OK;
nomem:
    pc_http_free(h);
    return pc_errf(err, errsz, PC_ERR_NOMEM, "out of memory");
}

static void drop_conn(pc_http *h)
{
    if (h->ssl)
        pc_tls_close(h->ssl);
    h->ssl = NULL;
    if (h->fd >= 0)
        close(h->fd);
    h->fd = -1;
}

void pc_http_free(pc_http *h)
{
    if (!h)
        return;
    drop_conn(h);
    SSL_CTX_free(h->ctx);
    pc_free_secret_str(h->auth_header);
    free(h->base_url);
    free(h->host);
    free(h->port);
    free(h->authority);
    free(h->prefix);
    free(h->pins);
    free(h->cafile);
    pc_wipe(h, sizeof *h);
    free(h);
}

static int open_conn(pc_http *h, int64_t deadline_ms, char *err, size_t errsz)
{
    int64_t connect_by = pc_now_ms() + h->connect_timeout_ms;
    char detail[512];
    int rc;

    if (connect_by > deadline_ms)
        connect_by = deadline_ms;
    rc = pc_net_connect(h->host, h->port, connect_by, &h->fd, detail, sizeof detail);
    if (rc == PC_ERR_TIMEOUT)
        return pc_errf(err, errsz, rc, "%s did not answer in time (%s)", h->base_url, detail);
    if (rc != PC_OK)
        return pc_errf(err, errsz, rc, "cannot reach %s (%s)", h->base_url, detail);
    rc = pc_tls_connect(h->ctx, h->fd, h->host, h->pins, h->cafile, h->base_url, connect_by,
                        &h->ssl, err, errsz);
    if (rc != PC_OK)
        drop_conn(h);
    return rc;
}

/* Every byte of a request path is printable ASCII without a space: nothing a header could be
 * smuggled in with. */
static int path_ok(const char *path)
{
    if (!path || path[0] != '/' || strlen(path) > PC_HTTP_MAX_URL / 2)
        return 0;
    for (; *path; path++)
        if (*path <= ' ' || *path > '~')
            return 0;
    return 1;
}

static int build_request(pc_http *h, struct pc_sshbuf *req, const char *method, const char *path,
                         const char *accept, const char *json, size_t jlen)
{
    int wants_body = !(strcmp(method, "GET") == 0 || strcmp(method, "DELETE") == 0 ||
                       strcmp(method, "HEAD") == 0);

    pc_sshbuf_putf(req,
                   "%s %s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: portcullis/" PC_VERSION
                   "\r\nAccept: %s\r\n",
                   method, h->prefix, path, h->authority, accept);
    if (json)
        pc_sshbuf_putf(req, "Content-Type: application/json\r\nContent-Length: %zu\r\n", jlen);
    else if (wants_body)
        pc_sshbuf_putf(req, "Content-Length: 0\r\n");
    if (h->auth_header) /* the token: put raw, never through printf's scratch space */
        pc_sshbuf_put_raw(req, h->auth_header, strlen(h->auth_header));
    pc_sshbuf_put_raw(req, "\r\n", 2);
    if (json)
        pc_sshbuf_put_raw(req, json, jlen);
    return pc_sshbuf_error(req);
}

/* Reads one reply into r. *got_any: a byte of it arrived. *reusable: the connection ended
 * the reply cleanly and may carry the next request. */
static int read_reply(pc_http *h, struct pc_http_reply *r, int64_t deadline_ms, int *got_any,
                      int *reusable, char *err, size_t errsz)
{
    unsigned char buf[16384];
    int rc = PC_OK;

    *got_any = 0;
    *reusable = 0;
    while (!r->done) {
        size_t got = 0, used = 0;
        int clean = 0;

        rc = pc_tls_read(h->ssl, buf, sizeof buf, deadline_ms, &got, &clean, err, errsz);
        if (rc != PC_OK)
            break;
        if (got == 0) {
            if (pc_http_reply_eof(r) != PC_OK)
                rc = pc_errf(err, errsz, PC_ERR_NET,
                             *got_any ? "the connection closed before the reply was complete"
                                      : "the connection closed without a reply");
            break;
        }
        *got_any = 1;
        rc = pc_http_reply_feed(r, buf, got, &used);
        if (rc == PC_ERR_TOOBIG && !r->head_done) {
            rc = pc_errf(err, errsz, PC_ERR_NET, "the reply's header is too long");
            break;
        }
        if (rc == PC_ERR_TOOBIG || rc == PC_ERR_NOMEM)
            break;
        if (rc != PC_OK) {
            rc = pc_errf(err, errsz, PC_ERR_NET, "the reply is not valid HTTP");
            break;
        }
        if (r->done)
            *reusable = r->keep_alive && used == got && SSL_pending(h->ssl) == 0;
    }
    pc_wipe(buf, sizeof buf);
    return rc;
}

/* One exchange: sends the request in req, reads the reply into body (at most its max). PC_OK
 * once a whole reply came back (*status); else the mapped error, err naming url. */
static int perform(pc_http *h, const struct pc_sshbuf *req, int head_only, long timeout_ms,
                   struct pc_sshbuf *body, long *status, const char *url, char *err, size_t errsz)
{
    int64_t deadline = pc_now_ms() + (timeout_ms > 0 ? timeout_ms : h->timeout_ms);
    char detail[512];
    int rc = PC_OK;

    h->sent = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        struct pc_http_reply r;
        int reused = 0, got_any = 0, reusable = 0;

        if (h->ssl && pc_tls_idle_ok(h->ssl))
            reused = 1;
        else
            drop_conn(h);
        /* h->sent is not cleared for the second attempt: if the first one's bytes went out, the
         * server may have acted on them before it died, whatever the second attempt does
         * (the agent then fails over marked "resend" or not at all, never as new). */
        if (!h->ssl && (rc = open_conn(h, deadline, err, errsz)) != PC_OK)
            return rc;
        detail[0] = '\0';
        rc = pc_tls_write_all(h->ssl, pc_sshbuf_ptr(req), pc_sshbuf_len(req), deadline, &h->sent,
                              detail, sizeof detail);
        pc_sshbuf_reset(body);
        pc_http_reply_init(&r, body, head_only);
        if (rc == PC_OK)
            rc = read_reply(h, &r, deadline, &got_any, &reusable, detail, sizeof detail);
        pc_http_reply_clear(&r);
        if (rc == PC_OK) {
            if (!reusable)
                drop_conn(h);
            *status = r.status;
            return PC_OK;
        }
        drop_conn(h);
        /* A kept-alive connection the server had closed just before the request went out:
         * nothing came back, so it is tried once more on a new connection, as curl does. */
        if (reused && rc == PC_ERR_NET && !got_any)
            continue;
        break;
    }
    if (rc == PC_ERR_TIMEOUT)
        return pc_errf(err, errsz, rc, "%s did not answer in time (%s)", url, detail);
    if (rc == PC_ERR_TOOBIG)
        return pc_errf(err, errsz, rc, "the reply from %s is larger than %zu bytes", url,
                       body->max);
    if (rc == PC_ERR_NOMEM)
        return pc_errf(err, errsz, rc, "out of memory reading the reply from %s", url);
    if (rc == PC_ERR_TLS)
        return pc_errf(err, errsz, rc, "TLS with %s failed (%s)", h->base_url, detail);
    return pc_errf(err, errsz, PC_ERR_NET, "cannot reach %s (%s)", h->base_url, detail);
}

int pc_http_request_sent(pc_http *h)
{
    return h->sent;
}

/* The request for method and path, ready to send, in the secret buffer req. */
static int prepare(pc_http *h, struct pc_sshbuf *req, const char *method, const char *path,
                   const char *accept, const char *json, size_t jlen, char *url, size_t urlsz,
                   char *err, size_t errsz)
{
    if (!path_ok(path))
        return pc_errf(err, errsz, PC_ERR_INVAL,
                       "bad request (the path must start with '/' and hold printable characters)");
    if ((size_t)snprintf(url, urlsz, "%s%s", h->base_url, path) >= urlsz)
        return pc_errf(err, errsz, PC_ERR_INVAL, "the request URL is too long");
    pc_sshbuf_init_secret(req, PC_HTTP_MAX_REPLY + 16384);
    if (build_request(h, req, method, path, accept, json, jlen) != PC_OK)
        return pc_errf(err, errsz, PC_ERR_TOOBIG, "the request to %s is too large", url);
    return PC_OK;
}

int pc_http_call(pc_http *h, const char *method, const char *path, json_object *body,
                 long timeout_ms, long *status, json_object **reply, char *err, size_t errsz)
{
    char url[PC_HTTP_MAX_URL];
    struct pc_sshbuf req = { 0 }, b;
    const char *json = NULL;
    size_t jlen = 0;
    int rc;

    *status = 0;
    *reply = NULL;
    if (!h || !method || !*method || strlen(method) > 16)
        return pc_errf(err, errsz, PC_ERR_INVAL, "bad HTTP method");
    for (const char *p = method; *p; p++)
        if (*p < 'A' || *p > 'Z')
            return pc_errf(err, errsz, PC_ERR_INVAL, "bad HTTP method");
    if (body) {
        json = pc_json_dump(body);
        if (!json)
            return pc_errf(err, errsz, PC_ERR_NOMEM, "out of memory");
        jlen = strlen(json);
    }
    rc = prepare(h, &req, method, path, "application/json", json, jlen, url, sizeof url, err,
                 errsz);
    if (rc != PC_OK) {
        pc_sshbuf_free(&req);
        return rc;
    }
    pc_sshbuf_init_secret(&b, PC_HTTP_MAX_REPLY); /* replies carry tokens, TOTP URIs */
    rc = perform(h, &req, strcmp(method, "HEAD") == 0, timeout_ms, &b, status, url, err, errsz);
    pc_sshbuf_free(&req);
    if (rc == PC_OK && pc_sshbuf_len(&b) > 0) {
        struct pc_jerr je = { 0 };

        rc = pc_json_parse_object((const char *)pc_sshbuf_ptr(&b), pc_sshbuf_len(&b), reply, &je);
        if (rc != PC_OK) {
            *reply = NULL;
            rc = pc_errf(err, errsz, rc == PC_ERR_NOMEM ? PC_ERR_NOMEM : PC_ERR_PARSE,
                         "the reply from %s (HTTP %ld) is not a JSON object (%s)", url, *status,
                         je.code ? je.message : "cannot parse");
        }
    }
    pc_sshbuf_free(&b);
    return rc;
}

int pc_http_get(pc_http *h, const char *path, size_t max, long timeout_ms, long *status,
                unsigned char **body, size_t *len, char *err, size_t errsz)
{
    char url[PC_HTTP_MAX_URL];
    struct pc_sshbuf req = { 0 }, b;
    int rc;

    *status = 0;
    *body = NULL;
    *len = 0;
    if (max == 0 || max > PC_HTTP_GET_MAX)
        return pc_errf(err, errsz, PC_ERR_INVAL, "the size bound must be 1 to %u bytes",
                       (unsigned)PC_HTTP_GET_MAX);
    if (!h)
        return pc_errf(err, errsz, PC_ERR_INVAL, "no client");
    rc = prepare(h, &req, "GET", path, "application/octet-stream", NULL, 0, url, sizeof url, err,
                 errsz);
    if (rc != PC_OK) {
        pc_sshbuf_free(&req);
        return rc;
    }
    pc_sshbuf_init_secret(&b, max);
    rc = perform(h, &req, 0, timeout_ms, &b, status, url, err, errsz);
    pc_sshbuf_free(&req);
    if (rc == PC_OK)
        rc = pc_sshbuf_steal(&b, body, len); /* *body NULL for an empty body */
    if (rc != PC_OK)
        *status = 0;
    pc_sshbuf_free(&b);
    return rc;
}
