/* SPDX-License-Identifier: BSD-2-Clause */
/* A waiting long-poll without its TLS session ("parked").
 *
 * Why: a long-poll held in libmicrohttpd keeps its connection, its memory pool and its GnuTLS
 * session, ~16 KB of heap per waiting poll (docs/PERFORMANCE.md), most of it the session. All a
 * waiting poll still needs is one answer: a single TLS record. So, once its request is read and
 * it must wait, a TLS 1.3 connection is detached: the write direction's traffic key, IV and
 * record sequence number are copied out of the session, the socket is duplicated, and
 * libmicrohttpd is told to drop the connection (its session then writes nowhere: no
 * close_notify, no shutdown, so the client sees nothing). What is left is the descriptor and
 * ~60 bytes of key state. Just before the copy the session sends a KeyUpdate of its own (so
 * a client's request for one is answered, and the copied keys are fresh). The answer is sealed
 * here as TLS 1.3 application-data records of at most 511 bytes each (AES-GCM or
 * ChaCha20-Poly1305 with OpenSSL, RFC 8446 section 5.2; that size fits any record_size_limit
 * GnuTLS accepts), followed by close_notify; the reply says "Connection: close" and the socket
 * is closed.
 *
 * Only what was never sent is sealed with those keys: the session that owned them is freed
 * without writing again, so a record sequence number (the AEAD nonce) is never used twice. The
 * read direction is not kept: anything the client sends to a parked poll ends it. TLS 1.2
 * connections, a session with unread or unsent data, and kernel TLS are not parked; they wait
 * as before. */
#ifndef CP_PARKED_H
#define CP_PARKED_H
#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

struct cp_parked {
    int fd;     /* a duplicate of the connection's socket (non-blocking, close-on-exec) */
    int cipher; /* gnutls_cipher_algorithm_t of the session */
    unsigned char key[32];
    size_t key_len;
    unsigned char iv[12];
    uint64_t seq; /* the next record's sequence number */
};

/* From inside the access handler: 1 if conn was detached into p (the handler must then return
 * MHD_NO so that libmicrohttpd drops its side), 0 if it cannot be (not TLS 1.3, an unsupported
 * cipher, unread or unsent data, kernel TLS, a KeyUpdate that could not be sent whole, no
 * descriptor): p is then untouched and conn usable as before (its keys possibly updated). */
int cp_parked_detach(struct MHD_Connection *conn, struct cp_parked *p);
/* Sends one HTTP/1.1 reply (status, a JSON body, "Connection: close"; records of at most 511
 * bytes) and close_notify, then closes p's socket and wipes its keys. A reply that cannot be
 * sent at once is dropped. */
void cp_parked_answer(struct cp_parked *p, unsigned status, const char *json);
/* Closes p's socket without a reply and wipes its keys. */
void cp_parked_drop(struct cp_parked *p);
/* Seals plaintext (at most 16,384 bytes) as one TLS 1.3 record of content type type into out
 * (room for len + 22 bytes) and advances p->seq; the record's length, or 0 on failure. Exposed
 * for the unit test. */
size_t cp_parked_seal(struct cp_parked *p, unsigned char type, const unsigned char *plaintext,
                      size_t len, unsigned char *out, size_t outsz);

#endif
