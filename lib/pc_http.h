/* SPDX-License-Identifier: BSD-2-Clause */
/* The HTTPS client for the control-plane API, used by the CLI and the host agent: HTTP/1.1
 * over OpenSSL (lib/pc_http.c). Trust is a public-key pin ("sha256//BASE64", checked after the
 * handshake and before any request byte is sent; with a pin alone the certificate chain is not
 * verified, the pin is the trust), a CA file (chain and host name verified), or both.
 * One handle keeps its connection open across calls (reuse; the agent keeps a pool of them);
 * a handle is used by one thread at a time. Never logs or returns the token. */
#ifndef PC_HTTP_H
#define PC_HTTP_H
#include <json-c/json.h>
#include <stddef.h>

struct pc_http_opts {
    const char *base_url;    /* "https://host:port" (no trailing path) */
    const char *pin;         /* "sha256//…" or NULL */
    const char *cafile;      /* PEM CA file or NULL; one of pin / cafile is required */
    const char *token;       /* bearer token or NULL (copied, wiped on free) */
    long connect_timeout_ms; /* 0 → 5000 */
    long timeout_ms;         /* total per call; 0 → 30000 */
};

typedef struct pc_http pc_http;

int pc_http_new(const struct pc_http_opts *opts, pc_http **out, char *err, size_t errsz);
void pc_http_free(pc_http *h);

/* Sends METHOD base_url+path with body (may be NULL) as JSON; waits at most timeout_ms (or the
 * per-call override if > 0). On a completed exchange returns PC_OK with *status and *reply (a
 * JSON object the caller puts; NULL for an empty body). Errors: PC_ERR_TLS (handshake failure or
 * pin mismatch — callers must never fail open on it), PC_ERR_TIMEOUT, PC_ERR_NET (refused,
 * reset, DNS), PC_ERR_PARSE (reply body is not a JSON object), PC_ERR_TOOBIG (reply > 1 MiB).
 * err gets a human sentence. */
int pc_http_call(pc_http *h, const char *method, const char *path, json_object *body,
                 long timeout_ms, long *status, json_object **reply, char *err, size_t errsz);

/* After a failed pc_http_call/pc_http_get: 1 if any byte of the request was sent (the server
 * may have acted on it), 0 if the transfer failed before that (refused, TLS, connect timeout).
 * Counts every attempt of the call: a request resent on a new connection after the kept-alive
 * one died stays "sent" even when the new connection is refused. */
int pc_http_request_sent(pc_http *h);

/* The largest size bound pc_http_get takes (the reply is held in a pc_sshbuf: at most
 * PC_SSHBUF_HARD_MAX). */
#define PC_HTTP_GET_MAX (64u * 1024u * 1024u)

/* GET base_url+path for a body that is not JSON (the KRL), of at most max bytes (1 to
 * PC_HTTP_GET_MAX), within timeout_ms (0: the handle's). Same trust, protocol limits, headers
 * (Accept: application/octet-stream, the bearer token if the handle has one) and errors as
 * pc_http_call: PC_ERR_TLS (handshake failure or pin mismatch), PC_ERR_TIMEOUT, PC_ERR_NET
 * (refused, reset, DNS), PC_ERR_TOOBIG (a body over max: by Content-Length before it is read,
 * else as soon as more arrives). On PC_OK *status is the HTTP status (any: the caller checks
 * it) and *body (malloc'd, free it; NULL when empty) holds *len bytes; otherwise both are
 * NULL/0 and nothing is kept. The body is not wiped on free: for public data only. */
int pc_http_get(pc_http *h, const char *path, size_t max, long timeout_ms, long *status,
                unsigned char **body, size_t *len, char *err, size_t errsz);

/* Process-wide set-up (SIGPIPE ignored, OpenSSL initialised) and its counterpart; call once
 * from main before threads. */
int pc_http_global_init(void);
void pc_http_global_cleanup(void);

#endif
