/* SPDX-License-Identifier: BSD-2-Clause */
/* The TLS side of the HTTPS client (OpenSSL's libssl over a connected socket): the handshake
 * within a deadline, the trust check, and reads and writes with deadlines.
 *
 * Trust is a public-key pin, a CA file, or both:
 *   - pins: "sha256//BASE64[;sha256//BASE64…]", the SHA-256 of the server certificate's
 *     SubjectPublicKeyInfo (DER) as curl's --pinnedpubkey has it. Checked after the handshake
 *     and before the caller sends a byte. With a pin alone the chain and the name are not
 *     verified: the pin is the trust.
 *   - cafile: the chain must lead to a certificate in that PEM file (read again for every
 *     connection, so a CA file replaced on disk takes effect without a restart; never the
 *     system store) and the certificate must name host (DNS name or IP address). */
#ifndef PC_TLS_CLIENT_H
#define PC_TLS_CLIENT_H
#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>

/* TLS 1.2 or later, strong ciphers only, no session resumption (every connection is a full
 * handshake whose key is checked), no renegotiation, record buffers released while idle. */
SSL_CTX *pc_tls_client_ctx_new(void);

/* "sha256//BASE64[;sha256//BASE64…]" in the alphabet curl accepts. */
int pc_tls_pins_valid(const char *pins);

/* Handshakes on fd (connected, non-blocking) with host for SNI and verification, by
 * deadline_ms. *out: the connection (pc_tls_close it). Errors, err naming url:
 * PC_ERR_TLS (alert, garbage, certificate refused, pin mismatch: "the TLS key of URL does not
 * match the pin"), PC_ERR_NET (the peer reset or closed during the handshake), PC_ERR_TIMEOUT,
 * PC_ERR_NOMEM. fd stays the caller's in every case. */
int pc_tls_connect(SSL_CTX *ctx, int fd, const char *host, const char *pins, const char *cafile,
                   const char *url, int64_t deadline_ms, SSL **out, char *err, size_t errsz);

/* Writes all n bytes by deadline_ms. *sent is set to 1 once any of them went out. PC_OK,
 * PC_ERR_NET (reset, closed), PC_ERR_TIMEOUT, PC_ERR_TLS. */
int pc_tls_write_all(SSL *ssl, const void *p, size_t n, int64_t deadline_ms, int *sent, char *err,
                     size_t errsz);

/* Reads at most n bytes by deadline_ms into buf; *got 0 means the peer closed. *clean is 1 when
 * it closed with a TLS close_notify, 0 when the socket just ended (a cut the peer did not
 * announce). PC_OK, PC_ERR_NET (reset), PC_ERR_TIMEOUT, PC_ERR_TLS. */
int pc_tls_read(SSL *ssl, void *buf, size_t n, int64_t deadline_ms, size_t *got, int *clean,
                char *err, size_t errsz);

/* 1 if the connection can carry another request: nothing arrived and it is not closed. */
int pc_tls_idle_ok(SSL *ssl);

/* Frees the connection (no close_notify: the socket is closed by the caller right after). */
void pc_tls_close(SSL *ssl);

#endif
