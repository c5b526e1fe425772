/* SPDX-License-Identifier: BSD-2-Clause */
/* The HTTPS client for the control-plane API over libcurl (see pc_http.h).
 * Trust: a public-key pin (chain and host name not checked: the pin is the trust, and libcurl
 * compares it before any request byte is sent) or a CA file (chain and host name checked), or
 * both. Only https, no redirects, no proxies from the environment, no signals. */
#include "config.h"
#include "pc_http.h"
#include "pc_err.h"
#include "pc_json.h"
#include "pc_mem.h"
#include "pc_sshbuf.h"
#include "pc_valid.h"
#include <curl/curl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

#define PC_HTTP_MAX_REPLY (1024 * 1024)
#define PC_HTTP_MAX_URL 2048

struct pc_http {
    CURL *curl;
    char *base_url;               /* without trailing '/' */
    char *token;                  /* wiped on free */
    char *auth_header;            /* "Authorization: Bearer …", wiped on free */
    struct curl_slist hdr[4];     /* our own list nodes, so the auth header is never copied by
                                  curl_slist_append (whose copies are freed without a wipe) */
    struct curl_slist hdr_bin[3]; /* the same for pc_http_get (no JSON content type) */
    long connect_timeout_ms;
    long timeout_ms;
    char curl_err[CURL_ERROR_SIZE];
};

_Static_assert(PC_HTTP_GET_MAX <= PC_SSHBUF_HARD_MAX, "a reply bound must fit a pc_sshbuf");

struct reply_buf {
    struct pc_sshbuf body; /* secret (replies carry tokens, TOTP URIs): wiped on growth, free */
    size_t max;            /* the reply's bound (body's max): more is PC_ERR_TOOBIG */
    int too_big;
};

__attribute__((format(printf, 4, 5))) static int fail(char *err, size_t errsz, int rc,
                                                      const char *fmt, ...)
{
    va_list ap;
    if (err && errsz) {
        va_start(ap, fmt);
        vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
    }
    return rc;
}

int pc_http_global_init(void)
{
    /* With CURLOPT_NOSIGNAL libcurl leaves SIGPIPE to the application, and OpenSSL writes to a
     * socket the peer closed would otherwise kill the process. */
    signal(SIGPIPE, SIG_IGN);
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? PC_OK : PC_ERR_NOMEM;
}

void pc_http_global_cleanup(void)
{
    curl_global_cleanup();
}

/* "sha256//BASE64[;sha256//BASE64…]" */
static int pin_is_valid(const char *p)
{
    if (strncmp(p, "sha256//", 8) != 0 || strlen(p) > 1024)
        return 0;
    for (; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              strchr("+/=;", *p)))
            return 0;
    return 1;
}

static int setopts(pc_http *h, const struct pc_http_opts *o)
{
    static char hdr_content_type[] = "Content-Type: application/json";
    static char hdr_accept[] = "Accept: application/json";
    static char hdr_accept_bin[] = "Accept: application/octet-stream";
    static char hdr_no_expect[] = "Expect:"; /* no 100-continue round trip */
    CURL *c = h->curl;
    CURLcode rc = CURLE_OK;
    size_t n = 0;

#define SET(opt, val) \
    do { \
        if (rc == CURLE_OK) \
            rc = curl_easy_setopt(c, opt, val); \
    } while (0)
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_PROTOCOLS_STR, "https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_PROXY, ""); /* never an https_proxy from the environment */
    SET(CURLOPT_NETRC, (long)CURL_NETRC_IGNORED);
    SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    SET(CURLOPT_SSL_CIPHER_LIST, "HIGH:!aNULL:!eNULL:!kRSA:!PSK:!SRP:!MD5:!RC4:!3DES");
    /* A resumed session is not re-pinned by every libcurl version: always a full handshake. */
    SET(CURLOPT_SSL_SESSIONID_CACHE, 0L);
    SET(CURLOPT_ERRORBUFFER, h->curl_err);
    SET(CURLOPT_CONNECTTIMEOUT_MS, h->connect_timeout_ms);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_USERAGENT, "portcullis/" PC_VERSION);
    if (o->pin)
        SET(CURLOPT_PINNEDPUBLICKEY, o->pin);
    if (o->cafile) {
        SET(CURLOPT_SSL_VERIFYPEER, 1L);
        SET(CURLOPT_SSL_VERIFYHOST, 2L);
        SET(CURLOPT_CAINFO, o->cafile);
        SET(CURLOPT_CAPATH, (char *)NULL); /* only this CA, not the system store */
    } else {
        SET(CURLOPT_SSL_VERIFYPEER, 0L);
        SET(CURLOPT_SSL_VERIFYHOST, 0L);
    }

    /* The header lists and the reply's size bound are set by each call (perform). */
    h->hdr[n++].data = hdr_content_type;
    h->hdr[n++].data = hdr_accept;
    h->hdr[n++].data = hdr_no_expect;
    if (h->auth_header)
        h->hdr[n++].data = h->auth_header;
    for (size_t i = 0; i < n; i++)
        h->hdr[i].next = i + 1 < n ? &h->hdr[i + 1] : NULL;
    n = 0;
    h->hdr_bin[n++].data = hdr_accept_bin;
    h->hdr_bin[n++].data = hdr_no_expect;
    if (h->auth_header)
        h->hdr_bin[n++].data = h->auth_header;
    for (size_t i = 0; i < n; i++)
        h->hdr_bin[i].next = i + 1 < n ? &h->hdr_bin[i + 1] : NULL;
#undef SET
    return rc == CURLE_OK ? PC_OK : rc == CURLE_OUT_OF_MEMORY ? PC_ERR_NOMEM : PC_ERR_INVAL;
}

int pc_http_new(const struct pc_http_opts *opts, pc_http **out, char *err, size_t errsz)
{
    pc_http *h;
    size_t n;
    int rc;

    *out = NULL;
    if (!opts || !opts->base_url || strncasecmp(opts->base_url, "https://", 8) != 0)
        return fail(err, errsz, PC_ERR_INVAL, "the server URL must start with https://");
    if (strlen(opts->base_url) > PC_HTTP_MAX_URL / 2)
        return fail(err, errsz, PC_ERR_INVAL, "the server URL is too long");
    if (!opts->pin && !opts->cafile)
        return fail(err, errsz, PC_ERR_INVAL, "neither a pin nor a CA file was given");
    if (opts->pin && !pin_is_valid(opts->pin))
        return fail(err, errsz, PC_ERR_INVAL, "the pin must look like sha256//BASE64");
    if (opts->token && !pc_valid_bearer_token(opts->token))
        return fail(err, errsz, PC_ERR_INVAL, "the token contains characters that are not allowed");

    h = calloc(1, sizeof *h);
    if (!h)
        return fail(err, errsz, PC_ERR_NOMEM, "out of memory");
    h->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 5000;
    h->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 30000;
    h->base_url = strdup(opts->base_url);
    if (!h->base_url)
        goto nomem;
    for (n = strlen(h->base_url); n > 8 && h->base_url[n - 1] == '/'; n--)
        h->base_url[n - 1] = '\0';
    if (opts->token) {
        static const char prefix[] = "Authorization: Bearer ";
        size_t hlen = sizeof prefix + strlen(opts->token);
        h->token = strdup(opts->token);
        h->auth_header = malloc(hlen);
        if (!h->token || !h->auth_header)
            goto nomem;
        snprintf(h->auth_header, hlen, "%s%s", prefix, opts->token);
    }
    h->curl = curl_easy_init();
    if (!h->curl)
        goto nomem;
    rc = setopts(h, opts);
    if (rc != PC_OK) {
        pc_http_free(h);
        return fail(err, errsz, rc, "cannot set up the HTTPS client (libcurl lacks a feature)");
    }
    *out = h;
    return PC_OK;
nomem:
    pc_http_free(h);
    return fail(err, errsz, PC_ERR_NOMEM, "out of memory");
}

void pc_http_free(pc_http *h)
{
    if (!h)
        return;
    if (h->curl)
        curl_easy_cleanup(h->curl);
    pc_free_secret_str(h->auth_header);
    pc_free_secret_str(h->token);
    free(h->base_url);
    pc_wipe(h, sizeof *h);
    free(h);
}

/* Appends to the reply's secret buffer, so that no unwiped copy of a reply is left behind. */
static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct reply_buf *b = ud;
    size_t n = size * nmemb;
    int rc = pc_sshbuf_put_raw(&b->body, ptr, n);

    if (rc == PC_ERR_TOOBIG)
        b->too_big = 1;
    return rc == PC_OK ? n : 0; /* 0 aborts the transfer */
}

static int is_tls_error(CURLcode cc)
{
    switch (cc) {
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED: return 1;
    default: return 0;
    }
}

/* A handshake that the peer cut (reset, or EOF before it finished) is the network failing,
 * not TLS refusing an identity: it follows failmode like a refused connection would. Anything
 * the TLS layer itself rejected (pin, certificate, protocol garbage, alerts) stays PC_ERR_TLS. */
static int handshake_cut(pc_http *h, const char *detail)
{
    long oserr = 0;

    curl_easy_getinfo(h->curl, CURLINFO_OS_ERRNO, &oserr);
    if (oserr == ECONNRESET || oserr == EPIPE || oserr == ECONNABORTED)
        return 1;
    return strstr(detail, "SSL_ERROR_SYSCALL") != NULL || strstr(detail, "unexpected eof") != NULL;
}

/* Maps a failed transfer to a PC_ERR_* and a sentence naming the URL (never the token). */
static int map_curl_error(pc_http *h, CURLcode cc, const struct reply_buf *b, const char *url,
                          char *err, size_t errsz)
{
    const char *detail = h->curl_err[0] ? h->curl_err : curl_easy_strerror(cc);

    if (cc == CURLE_SSL_PINNEDPUBKEYNOTMATCH)
        return fail(err, errsz, PC_ERR_TLS, "the TLS key of %s does not match the pin",
                    h->base_url);
    if (cc == CURLE_SSL_CONNECT_ERROR && handshake_cut(h, detail))
        return fail(err, errsz, PC_ERR_NET,
                    "%s closed or reset the connection during the TLS "
                    "handshake (%s)",
                    h->base_url, detail);
    if (is_tls_error(cc))
        return fail(err, errsz, PC_ERR_TLS, "TLS with %s failed (%s)", h->base_url, detail);
    if (cc == CURLE_OPERATION_TIMEDOUT)
        return fail(err, errsz, PC_ERR_TIMEOUT, "%s did not answer in time (%s)", url, detail);
    if (cc == CURLE_FILESIZE_EXCEEDED || (cc == CURLE_WRITE_ERROR && b->too_big))
        return fail(err, errsz, PC_ERR_TOOBIG, "the reply from %s is larger than %zu bytes", url,
                    b->max);
    if (cc == CURLE_OUT_OF_MEMORY || cc == CURLE_WRITE_ERROR)
        return fail(err, errsz, PC_ERR_NOMEM, "out of memory reading the reply from %s", url);
    if (cc == CURLE_URL_MALFORMAT || cc == CURLE_UNSUPPORTED_PROTOCOL)
        return fail(err, errsz, PC_ERR_INVAL, "bad URL %s (%s)", url, detail);
    /* Resolve, connect, send, receive, reset, empty or garbled reply: the network. */
    return fail(err, errsz, PC_ERR_NET, "cannot reach %s (%s)", h->base_url, detail);
}

static int set_method(CURL *c, const char *method, const char *json, size_t jlen)
{
    CURLcode rc;
    int is_get = strcmp(method, "GET") == 0;
    int is_post = strcmp(method, "POST") == 0;

    if (json || !(is_get || strcmp(method, "DELETE") == 0 || strcmp(method, "HEAD") == 0)) {
        /* A body, or a method that wants one: an empty body has Content-Length: 0. */
        rc = curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(json ? jlen : 0));
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(c, CURLOPT_POSTFIELDS, json ? json : "");
    } else {
        rc = curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(c, CURLOPT_NOBODY, strcmp(method, "HEAD") == 0 ? 1L : 0L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, (is_get || is_post) ? NULL : method);
    return rc == CURLE_OK ? PC_OK : PC_ERR_NOMEM;
}

static int build_url(pc_http *h, const char *path, char *url, size_t urlsz, char *err, size_t errsz)
{
    if (!h || !path || path[0] != '/')
        return fail(err, errsz, PC_ERR_INVAL, "bad request (the path must start with '/')");
    if ((size_t)snprintf(url, urlsz, "%s%s", h->base_url, path) >= urlsz)
        return fail(err, errsz, PC_ERR_INVAL, "the request URL is too long");
    return PC_OK;
}

/* One exchange on h, its method already set (set_method): sends to url with the header list
 * hdrs, at most timeout_ms, the reply body into b (at most b->max bytes). PC_OK once a
 * response with an HTTP status came back (*status); else the mapped error. The caller frees
 * b->body in every case. */
static int perform(pc_http *h, const char *url, long timeout_ms, struct curl_slist *hdrs,
                   struct reply_buf *b, long *status, char *err, size_t errsz)
{
    long total_ms = timeout_ms > 0 ? timeout_ms : h->timeout_ms;
    CURLcode cc;

    if (curl_easy_setopt(h->curl, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, total_ms) != CURLE_OK ||
        curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK ||
        curl_easy_setopt(h->curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)b->max) != CURLE_OK ||
        curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_data) != CURLE_OK ||
        curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, b) != CURLE_OK) {
        curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, (char *)NULL);
        return fail(err, errsz, PC_ERR_NOMEM, "cannot set up the request");
    }
    cc = curl_easy_perform(h->curl);
    /* The body pointer is the caller's, b is on its stack: do not leave them in the handle. */
    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, (char *)NULL);
    curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, (void *)NULL);
    if (cc != CURLE_OK)
        return map_curl_error(h, cc, b, url, err, errsz);
    if (curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, status) != CURLE_OK || *status < 100) {
        *status = 0;
        return fail(err, errsz, PC_ERR_NET, "no HTTP status from %s", h->base_url);
    }
    return PC_OK;
}

int pc_http_request_sent(pc_http *h)
{
    long n = 0;

    if (curl_easy_getinfo(h->curl, CURLINFO_REQUEST_SIZE, &n) != CURLE_OK)
        return 1; /* unknown: assume the worst */
    return n > 0;
}

int pc_http_call(pc_http *h, const char *method, const char *path, json_object *body,
                 long timeout_ms, long *status, json_object **reply, char *err, size_t errsz)
{
    char url[PC_HTTP_MAX_URL];
    struct reply_buf b = { .max = PC_HTTP_MAX_REPLY };
    const char *json = NULL;
    size_t jlen = 0;
    int rc;

    *status = 0;
    *reply = NULL;
    if (!method || !*method)
        return fail(err, errsz, PC_ERR_INVAL, "bad HTTP method");
    for (const char *p = method; *p; p++)
        if (*p < 'A' || *p > 'Z')
            return fail(err, errsz, PC_ERR_INVAL, "bad HTTP method");
    if ((rc = build_url(h, path, url, sizeof url, err, errsz)) != PC_OK)
        return rc;
    if (body) {
        json = pc_json_dump(body);
        if (!json)
            return fail(err, errsz, PC_ERR_NOMEM, "out of memory");
        jlen = strlen(json);
    }

    h->curl_err[0] = '\0';
    if ((rc = set_method(h->curl, method, json, jlen)) != PC_OK) {
        curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, (char *)NULL);
        return fail(err, errsz, rc, "cannot set up the request");
    }
    pc_sshbuf_init_secret(&b.body, b.max);
    rc = perform(h, url, timeout_ms, h->hdr, &b, status, err, errsz);
    if (rc == PC_OK && pc_sshbuf_len(&b.body) > 0) {
        struct pc_jerr je = { 0 };
        rc = pc_json_parse_object((const char *)pc_sshbuf_ptr(&b.body), pc_sshbuf_len(&b.body),
                                  reply, &je);
        if (rc != PC_OK) {
            *reply = NULL;
            rc = fail(err, errsz, rc == PC_ERR_NOMEM ? PC_ERR_NOMEM : PC_ERR_PARSE,
                      "the reply from %s (HTTP %ld) is not a JSON object (%s)", url, *status,
                      je.code ? je.message : "cannot parse");
        }
    }
    pc_sshbuf_free(&b.body);
    return rc;
}

int pc_http_get(pc_http *h, const char *path, size_t max, long timeout_ms, long *status,
                unsigned char **body, size_t *len, char *err, size_t errsz)
{
    char url[PC_HTTP_MAX_URL];
    struct reply_buf b = { .max = max };
    int rc;

    *status = 0;
    *body = NULL;
    *len = 0;
    if (max == 0 || max > PC_HTTP_GET_MAX)
        return fail(err, errsz, PC_ERR_INVAL, "the size bound must be 1 to %u bytes",
                    (unsigned)PC_HTTP_GET_MAX);
    if ((rc = build_url(h, path, url, sizeof url, err, errsz)) != PC_OK)
        return rc;
    h->curl_err[0] = '\0';
    if ((rc = set_method(h->curl, "GET", NULL, 0)) != PC_OK)
        return fail(err, errsz, rc, "cannot set up the request");
    pc_sshbuf_init_secret(&b.body, b.max);
    rc = perform(h, url, timeout_ms, h->hdr_bin, &b, status, err, errsz);
    if (rc == PC_OK)
        rc = pc_sshbuf_steal(&b.body, body, len); /* *body NULL for an empty body */
    if (rc != PC_OK)
        *status = 0;
    pc_sshbuf_free(&b.body);
    return rc;
}
