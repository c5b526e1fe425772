/* SPDX-License-Identifier: BSD-2-Clause */
/* TLS for the HTTPS client over OpenSSL's libssl (see pc_tls_client.h). Non-blocking: every
 * wait is a poll bounded by the caller's deadline. The error queue is per thread and cleared
 * before each call, so a message names this connection's failure, not an older one. */
#include "config.h"
#include "pc_tls_client.h"
#include "pc_err.h"
#include "pc_agent_proto.h"
#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#define CIPHERS "HIGH:!aNULL:!eNULL:!kRSA:!PSK:!SRP:!MD5:!RC4:!3DES"

SSL_CTX *pc_tls_client_ctx_new(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (!ctx)
        return NULL;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, CIPHERS) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    /* No resumption: a resumed session would skip the certificate, and with it the pin. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    /* An idle kept-alive connection holds no 16 KB record buffers. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    /* Read what the socket has, not a record header (5 bytes) and then its body: a reply in two
     * records (portcullisd sends head and body apart) is one read(2), not four. Bytes read ahead
     * are the reason pc_tls_idle_ok asks SSL_has_pending, not only the socket. */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* per connection below */
    return ctx;
}

int pc_tls_pins_valid(const char *p)
{
    if (strncmp(p, "sha256//", 8) != 0 || strlen(p) > 1024)
        return 0;
    for (; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              strchr("+/=;", *p)))
            return 0;
    return 1;
}

/* 1 if the certificate's SubjectPublicKeyInfo hashes to one of the pins. */
static int pin_matches(X509 *cert, const char *pins)
{
    unsigned char md[EVP_MAX_MD_SIZE], *der = NULL;
    char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
    unsigned mdlen = 0;
    int len, ok = 0;
    size_t blen;

    len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
    if (len <= 0)
        return 0;
    if (EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL) != 1) {
        OPENSSL_free(der);
        return 0;
    }
    OPENSSL_free(der);
    blen = (size_t)EVP_EncodeBlock((unsigned char *)b64, md, (int)mdlen);
    for (const char *p = pins; *p && !ok;) {
        const char *end = strchr(p, ';');
        size_t n = end ? (size_t)(end - p) : strlen(p);

        ok = n == 8 + blen && strncmp(p, "sha256//", 8) == 0 && memcmp(p + 8, b64, blen) == 0;
        p += n + (end ? 1 : 0);
    }
    return ok;
}

static int is_ip_literal(const char *host)
{
    unsigned char a[16];

    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

/* The CA file, read now: a replaced file counts from the next connection on. Partial chains
 * are accepted (an intermediate or the server's own certificate in the file is an anchor), as
 * curl does. */
static int set_ca(SSL *ssl, const char *host, const char *cafile)
{
    X509_STORE *st = X509_STORE_new();
    int ok;

    if (!st)
        return 0;
    ok = X509_STORE_load_file(st, cafile) == 1 &&
         X509_STORE_set_flags(st, X509_V_FLAG_PARTIAL_CHAIN) == 1 &&
         SSL_set1_verify_cert_store(ssl, st) == 1 && SSL_set1_host(ssl, host) == 1;
    X509_STORE_free(st);
    if (ok)
        SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
    return ok;
}

static void ssl_detail(char *buf, size_t n)
{
    unsigned long e = ERR_peek_last_error();

    if (e)
        ERR_error_string_n(e, buf, n);
    else
        snprintf(buf, n, "%s", errno ? strerror(errno) : "unexpected end of the connection");
}

/* The handshake or a read ended because the socket did: a reset, or an EOF without
 * close_notify. */
static int ended_by_peer(int e)
{
    unsigned long last = ERR_peek_last_error();

    return e == SSL_ERROR_SYSCALL || (e == SSL_ERROR_SSL && ERR_GET_LIB(last) == ERR_LIB_SSL &&
                                      ERR_GET_REASON(last) == SSL_R_UNEXPECTED_EOF_WHILE_READING);
}

/* Waits for what OpenSSL asked for (e: SSL_ERROR_WANT_READ or _WRITE) by deadline_ms. PC_OK:
 * call it again; else PC_ERR_TIMEOUT (err: timed_out) or PC_ERR_NET (poll failed). */
static int wait_for(SSL *ssl, int e, int64_t deadline_ms, const char *timed_out, char *err,
                    size_t errsz)
{
    int rc = pc_agent_wait(SSL_get_fd(ssl), e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN,
                           deadline_ms);

    if (rc == PC_OK)
        return PC_OK;
    if (rc == PC_ERR_TIMEOUT)
        return pc_errf(err, errsz, rc, "%s", timed_out);
    return pc_errf(err, errsz, PC_ERR_NET, "poll failed (%s)", strerror(errno));
}

int pc_tls_connect(SSL_CTX *ctx, int fd, const char *host, const char *pins, const char *cafile,
                   const char *url, int64_t deadline_ms, SSL **out, char *err, size_t errsz)
{
    SSL *ssl = SSL_new(ctx);
    char detail[256];
    int rc;

    *out = NULL;
    if (!ssl || SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        return pc_errf(err, errsz, PC_ERR_NOMEM, "out of memory");
    }
    SSL_set_quiet_shutdown(ssl, 1);
    if (!is_ip_literal(host) && SSL_set_tlsext_host_name(ssl, host) != 1) {
        SSL_free(ssl);
        return pc_errf(err, errsz, PC_ERR_INVAL, "%s: the host name cannot be sent (SNI)", url);
    }
    ERR_clear_error();
    if (cafile && !set_ca(ssl, host, cafile)) {
        ssl_detail(detail, sizeof detail);
        SSL_free(ssl);
        return pc_errf(err, errsz, PC_ERR_TLS, "TLS with %s failed (cannot use the CA file %s: %s)",
                       url, cafile, detail);
    }
    for (;;) {
        int r, e;

        ERR_clear_error();
        errno = 0;
        r = SSL_connect(ssl);
        if (r == 1)
            break;
        e = SSL_get_error(ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            rc = wait_for(ssl, e, deadline_ms, "TLS handshake", detail, sizeof detail);
            if (rc == PC_OK)
                continue;
            SSL_free(ssl);
            if (rc == PC_ERR_TIMEOUT)
                return pc_errf(err, errsz, rc, "%s did not answer in time (%s)", url, detail);
            return pc_errf(err, errsz, rc, "%s: %s", url, detail);
        }
        ssl_detail(detail, sizeof detail);
        if (ended_by_peer(e)) {
            SSL_free(ssl);
            return pc_errf(err, errsz, PC_ERR_NET,
                           "%s closed or reset the connection during the TLS handshake (%s)", url,
                           detail);
        }
        if (cafile && SSL_get_verify_result(ssl) != X509_V_OK)
            snprintf(detail, sizeof detail, "certificate: %s",
                     X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
        SSL_free(ssl);
        return pc_errf(err, errsz, PC_ERR_TLS, "TLS with %s failed (%s)", url, detail);
    }
    if (pins) {
        X509 *cert = SSL_get0_peer_certificate(ssl);

        if (!cert || !pin_matches(cert, pins)) {
            SSL_free(ssl);
            return pc_errf(err, errsz, PC_ERR_TLS, "the TLS key of %s does not match the pin", url);
        }
    }
    *out = ssl;
    return PC_OK;
}

int pc_tls_write_all(SSL *ssl, const void *p, size_t n, int64_t deadline_ms, int *sent, char *err,
                     size_t errsz)
{
    const unsigned char *b = p;
    size_t off = 0;
    char detail[256];

    while (off < n) {
        size_t w = 0;
        int r, e, rc;

        ERR_clear_error();
        errno = 0;
        r = SSL_write_ex(ssl, b + off, n - off, &w);
        if (r == 1) {
            off += w;
            *sent = 1;
            continue;
        }
        e = SSL_get_error(ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            *sent = 1; /* part of a record may be out */
            rc = wait_for(ssl, e, deadline_ms, "sending the request took too long", err, errsz);
            if (rc != PC_OK)
                return rc;
            continue;
        }
        ssl_detail(detail, sizeof detail);
        if (ended_by_peer(e) || e == SSL_ERROR_ZERO_RETURN)
            return pc_errf(err, errsz, PC_ERR_NET, "the connection was closed (%s)", detail);
        return pc_errf(err, errsz, PC_ERR_TLS, "TLS failed while sending (%s)", detail);
    }
    return PC_OK;
}

int pc_tls_read(SSL *ssl, void *buf, size_t n, int64_t deadline_ms, size_t *got, int *clean,
                char *err, size_t errsz)
{
    char detail[256];

    *got = 0;
    *clean = 0;
    for (;;) {
        int r, e, rc;

        ERR_clear_error();
        errno = 0;
        r = SSL_read_ex(ssl, buf, n, got);
        if (r == 1)
            return PC_OK;
        *got = 0;
        e = SSL_get_error(ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            rc = wait_for(ssl, e, deadline_ms, "no reply in time", err, errsz);
            if (rc != PC_OK)
                return rc;
            continue;
        }
        if (e == SSL_ERROR_ZERO_RETURN) {
            *clean = 1;
            return PC_OK;
        }
        if (e == SSL_ERROR_SYSCALL && errno == 0)
            return PC_OK; /* EOF, not announced */
        ssl_detail(detail, sizeof detail);
        if (e == SSL_ERROR_SSL && ended_by_peer(e))
            return PC_OK; /* EOF, not announced */
        if (e == SSL_ERROR_SYSCALL)
            return pc_errf(err, errsz, PC_ERR_NET, "the connection was reset (%s)", detail);
        return pc_errf(err, errsz, PC_ERR_TLS, "TLS failed while reading (%s)", detail);
    }
}

int pc_tls_idle_ok(SSL *ssl)
{
    struct pollfd p = { .fd = SSL_get_fd(ssl), .events = POLLIN };

    /* Readable while idle, or bytes already read ahead: the server closed it (EOF) or sent
     * something unasked. */
    return !SSL_has_pending(ssl) && poll(&p, 1, 0) == 0;
}

void pc_tls_close(SSL *ssl)
{
    SSL_free(ssl);
}
