/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "cp_parked.h"
#include "pc_mem.h"
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/socket.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TLS13_TAG 16
#define TLS13_HEADER 5
#define TLS13_MAX_PLAINTEXT 16384
#define CT_ALERT 21
#define CT_APPLICATION_DATA 23
#define PARKED_REPLY_MAX 8192 /* a poll's answer is a few hundred bytes */
/* The content of one sealed record. A client may limit the records it receives
 * (record_size_limit, RFC 8449), GnuTLS keeps the limit to itself, and it honours none below
 * 512 (content and type byte): records of 511 content bytes fit any limit it accepted. */
#define PARKED_RECORD_MAX 511
#define SEAL_OVERHEAD (TLS13_HEADER + 1 + TLS13_TAG)

/* The session's writes after detaching (libmicrohttpd's close_notify) go nowhere: the keys they
 * would have used are ours now, and nothing else may reach the client. */
static ssize_t write_nowhere(gnutls_transport_ptr_t ptr, const void *data, size_t len)
{
    (void)ptr;
    (void)data;
    return (ssize_t)len;
}

static ssize_t writev_nowhere(gnutls_transport_ptr_t ptr, const giovec_t *iov, int iovcnt)
{
    size_t n = 0;
    (void)ptr;
    for (int i = 0; i < iovcnt; i++)
        n += iov[i].iov_len;
    return (ssize_t)n;
}

static const EVP_CIPHER *aead_of(int cipher, size_t key_len)
{
    switch (cipher) {
    case GNUTLS_CIPHER_AES_128_GCM: return key_len == 16 ? EVP_aes_128_gcm() : NULL;
    case GNUTLS_CIPHER_AES_256_GCM: return key_len == 32 ? EVP_aes_256_gcm() : NULL;
    case GNUTLS_CIPHER_CHACHA20_POLY1305: return key_len == 32 ? EVP_chacha20_poly1305() : NULL;
    default: return NULL;
    }
}

int cp_parked_detach(struct MHD_Connection *conn, struct cp_parked *p)
{
    const union MHD_ConnectionInfo *si =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    const union MHD_ConnectionInfo *fi = MHD_get_connection_info(conn,
                                                                 MHD_CONNECTION_INFO_CONNECTION_FD);
    gnutls_session_t s;
    gnutls_datum_t iv, key;
    unsigned char seq[8];
    int cipher, fd;

    if (!si || !si->tls_session || !fi || fi->connect_fd < 0)
        return 0;
    s = (gnutls_session_t)si->tls_session;
    cipher = (int)gnutls_cipher_get(s);
    /* Nothing buffered either way: a record the session still has to send would take a
     * sequence number we are about to use; data it has read would go unanswered. Not with
     * kernel TLS (an admin's ktls = true in GnuTLS's configuration): the kernel holds the keys
     * and the sequence, and writes what the session sends after this, close_notify included. */
    if (gnutls_protocol_get_version(s) != GNUTLS_TLS1_3 || gnutls_record_check_pending(s) > 0 ||
        gnutls_record_check_corked(s) > 0 || gnutls_transport_is_ktls_enabled(s) != 0)
        return 0;
    /* A KeyUpdate of our own, sent now on the session: a client that asked for one (its
     * update_requested waits in GnuTLS for the next record the session sends, which would never
     * come) gets it before our reply, as RFC 8446 4.6.3 wants, and the keys copied below are
     * fresh ones, at sequence 0. If it cannot go out whole at once, the poll is not parked. */
    if (gnutls_session_key_update(s, 0) < 0 ||
        gnutls_record_get_state(s, 0, NULL, &iv, &key, seq) < 0 || iv.size != sizeof p->iv ||
        key.size > sizeof p->key || !aead_of(cipher, key.size))
        return 0;
    if ((fd = fcntl(fi->connect_fd, F_DUPFD_CLOEXEC, 3)) < 0)
        return 0;
    p->fd = fd;
    p->cipher = cipher;
    p->key_len = key.size;
    memcpy(p->key, key.data, key.size);
    memcpy(p->iv, iv.data, iv.size);
    p->seq = 0;
    for (int i = 0; i < 8; i++)
        p->seq = (p->seq << 8) | seq[i];
    gnutls_transport_set_push_function(s, write_nowhere);
    gnutls_transport_set_vec_push_function(s, writev_nowhere);
    return 1;
}

size_t cp_parked_seal(struct cp_parked *p, unsigned char type, const unsigned char *plaintext,
                      size_t len, unsigned char *out, size_t outsz)
{
    const EVP_CIPHER *aead = aead_of(p->cipher, p->key_len);
    size_t inner = len + 1 + TLS13_TAG; /* the content type is the inner plaintext's last byte */
    unsigned char nonce[sizeof p->iv];
    EVP_CIPHER_CTX *ctx;
    int n, ok;

    if (!aead || len > TLS13_MAX_PLAINTEXT || outsz < TLS13_HEADER + inner || p->seq == UINT64_MAX)
        return 0;
    /* RFC 8446 5.3: the nonce is the IV XOR the sequence number, left-padded to its length. */
    memcpy(nonce, p->iv, sizeof nonce);
    for (int i = 0; i < 8; i++)
        nonce[sizeof nonce - 1 - (size_t)i] ^= (unsigned char)(p->seq >> (8 * i));
    out[0] = CT_APPLICATION_DATA; /* the outer type; the real one is inside */
    out[1] = 3;
    out[2] = 3;
    out[3] = (unsigned char)(inner >> 8);
    out[4] = (unsigned char)inner;
    if (!(ctx = EVP_CIPHER_CTX_new()))
        return 0;
    ok = EVP_EncryptInit_ex(ctx, aead, NULL, NULL, NULL) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, (int)sizeof nonce, NULL) == 1 &&
         EVP_EncryptInit_ex(ctx, NULL, NULL, p->key, nonce) == 1 &&
         EVP_EncryptUpdate(ctx, NULL, &n, out, TLS13_HEADER) == 1 && /* the header is the AAD */
         EVP_EncryptUpdate(ctx, out + TLS13_HEADER, &n, plaintext, (int)len) == 1 &&
         (size_t)n == len && EVP_EncryptUpdate(ctx, out + TLS13_HEADER + len, &n, &type, 1) == 1 &&
         n == 1 && EVP_EncryptFinal_ex(ctx, out + TLS13_HEADER + len + 1, &n) == 1 && n == 0 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TLS13_TAG, out + TLS13_HEADER + len + 1) ==
             1;
    EVP_CIPHER_CTX_free(ctx);
    pc_wipe(nonce, sizeof nonce);
    if (!ok)
        return 0;
    p->seq++;
    return TLS13_HEADER + inner;
}

void cp_parked_drop(struct cp_parked *p)
{
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    pc_wipe(p->key, sizeof p->key);
    pc_wipe(p->iv, sizeof p->iv);
}

void cp_parked_answer(struct cp_parked *p, unsigned status, const char *json)
{
    static const unsigned char close_notify[2] = { 1, 0 }; /* warning, close_notify */
    char reply[PARKED_REPLY_MAX];
    /* the reply in records of PARKED_RECORD_MAX, then close_notify */
    unsigned char wire[PARKED_REPLY_MAX +
                       (PARKED_REPLY_MAX / PARKED_RECORD_MAX + 2) * SEAL_OVERHEAD +
                       sizeof close_notify];
    const char *reason = MHD_get_reason_phrase_for(status);
    size_t body = strlen(json), n, w = 0, done = 0, k = 1;
    int hn;

    hn = snprintf(reply, sizeof reply,
                  "HTTP/1.1 %u %s\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
                  "Connection: close\r\nContent-Length: %zu\r\n\r\n",
                  status, reason && *reason ? reason : "Unknown", body);
    if (hn < 0 || (size_t)hn + body > sizeof reply) {
        cp_parked_drop(p);
        return;
    }
    memcpy(reply + hn, json, body);
    n = (size_t)hn + body;
    while (done < n && k) {
        size_t part = n - done < PARKED_RECORD_MAX ? n - done : PARKED_RECORD_MAX;
        k = cp_parked_seal(p, CT_APPLICATION_DATA, (const unsigned char *)reply + done, part,
                           wire + w, sizeof wire - w);
        w += k;
        done += part;
    }
    if (k)
        k = cp_parked_seal(p, CT_ALERT, close_notify, sizeof close_notify, wire + w,
                           sizeof wire - w);
    if (k) {
        /* A reply of a few hundred bytes fits the idle socket's empty send buffer; one that does
         * not go out whole at once is not retried (the client sees a torn reply and retries). */
        ssize_t sent;
        w += k;
        do
            sent = send(p->fd, wire, w, MSG_NOSIGNAL | MSG_DONTWAIT);
        while (sent < 0 && errno == EINTR);
        if (sent == (ssize_t)w)
            shutdown(p->fd, SHUT_WR);
    }
    pc_wipe(reply, sizeof reply);
    cp_parked_drop(p);
}
