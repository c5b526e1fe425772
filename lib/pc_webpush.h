/* SPDX-License-Identifier: BSD-2-Clause */
/* Web Push, the sender's side: RFC 8291 message encryption (the aes128gcm content coding of
 * RFC 8188: one record, rs 4096, the sender's ephemeral P-256 key as key id) and RFC 8292 VAPID
 * (an ES256 JWT and the "vapid t=…, k=…" Authorization header). Pure: OpenSSL only, no I/O.
 * Keys are raw: a P-256 private key is its 32-byte scalar, a public key the 65-byte
 * uncompressed point (0x04 | X | Y), as browsers hand them out (PushSubscription.getKey()).
 * Every secret on the stack is wiped before return. */
#ifndef PC_WEBPUSH_H
#define PC_WEBPUSH_H
#include <stddef.h>
#include <stdint.h>

#define PC_WEBPUSH_PUB_LEN 65
#define PC_WEBPUSH_PRIV_LEN 32
#define PC_WEBPUSH_AUTH_LEN 16
#define PC_WEBPUSH_SALT_LEN 16
#define PC_WEBPUSH_RS 4096
#define PC_WEBPUSH_HEADER_LEN (PC_WEBPUSH_SALT_LEN + 4 + 1 + PC_WEBPUSH_PUB_LEN) /* 86 */
/* RFC 8291 §4: push services carry at least 4096 octets of body; one record, its 0x02
 * delimiter and the 16-byte tag fit in that. */
#define PC_WEBPUSH_BODY_MAX 4096
#define PC_WEBPUSH_PLAIN_MAX (PC_WEBPUSH_BODY_MAX - PC_WEBPUSH_HEADER_LEN - 16 - 1) /* 3993 */
#define PC_WEBPUSH_ENDPOINT_MAX 2048
#define PC_WEBPUSH_CONTACT_MAX 256
#define PC_WEBPUSH_JWT_TTL_MAX 86400 /* RFC 8292 §2: exp at most 24 h ahead */
/* "vapid t=" + JWT (header, claims with a 2 KiB origin, signature) + ", k=" + 87 */
#define PC_WEBPUSH_AUTH_HEADER_MAX 4096

/* base64url without padding (what Web Push uses everywhere). out: at least 4*ceil(len/3)+1. */
int pc_b64url_encode(const unsigned char *in, size_t len, char *out, size_t outsz);
/* Decodes base64url (padding tolerated, nothing else); PC_ERR_PARSE on any other character,
 * PC_ERR_TOOBIG when the result does not fit outsz. */
int pc_b64url_decode(const char *in, unsigned char *out, size_t outsz, size_t *outlen);

/* 1 if pub is an uncompressed point on P-256 (not the point at infinity). */
int pc_webpush_point_valid(const unsigned char pub[PC_WEBPUSH_PUB_LEN]);

/* Encrypts plain (at most PC_WEBPUSH_PLAIN_MAX bytes) to a subscription: ua_pub is its p256dh
 * key, auth its 16-byte auth secret. A fresh ephemeral key and salt for every message.
 * out: PC_WEBPUSH_BODY_MAX bytes are always enough; *outlen = 86 + len + 17. */
int pc_webpush_encrypt(const unsigned char ua_pub[PC_WEBPUSH_PUB_LEN],
                       const unsigned char auth[PC_WEBPUSH_AUTH_LEN], const unsigned char *plain,
                       size_t len, unsigned char *out, size_t outsz, size_t *outlen);
/* The same with a given sender key and salt: for the RFC's test vector only. */
int pc_webpush_encrypt_with(const unsigned char ua_pub[PC_WEBPUSH_PUB_LEN],
                            const unsigned char auth[PC_WEBPUSH_AUTH_LEN],
                            const unsigned char as_priv[PC_WEBPUSH_PRIV_LEN],
                            const unsigned char salt[PC_WEBPUSH_SALT_LEN],
                            const unsigned char *plain, size_t len, unsigned char *out,
                            size_t outsz, size_t *outlen);
/* The user agent's side (one record, as we send): for tests and tools. PC_ERR_CRYPTO when the
 * tag does not verify, PC_ERR_PARSE on a malformed header or padding. */
int pc_webpush_decrypt(const unsigned char ua_priv[PC_WEBPUSH_PRIV_LEN],
                       const unsigned char auth[PC_WEBPUSH_AUTH_LEN], const unsigned char *body,
                       size_t len, unsigned char *out, size_t outsz, size_t *outlen);

/* A new P-256 key pair (the VAPID key). */
int pc_webpush_keygen(unsigned char priv[PC_WEBPUSH_PRIV_LEN],
                      unsigned char pub[PC_WEBPUSH_PUB_LEN]);
/* The public point of a private scalar; PC_ERR_CRYPTO if it is 0 or not below the order. */
int pc_webpush_public(const unsigned char priv[PC_WEBPUSH_PRIV_LEN],
                      unsigned char pub[PC_WEBPUSH_PUB_LEN]);

/* 1 if url is an endpoint we send to: https://, at most PC_WEBPUSH_ENDPOINT_MAX characters of
 * printable ASCII, a host of letters, digits, '-', '.' (or [IPv6]), an optional port 1-65535,
 * no user info, no fragment. */
int pc_webpush_endpoint_valid(const char *url);
/* The endpoint's origin, the JWT's aud: "https://host[:port]" (port 443 left out). */
int pc_webpush_origin(const char *endpoint, char *out, size_t outsz);
/* 1 if contact is a VAPID sub: "mailto:…" or "https://…", printable ASCII without '"' or '\',
 * at most PC_WEBPUSH_CONTACT_MAX characters. */
int pc_webpush_contact_valid(const char *contact);

/* "vapid t=JWT, k=PUBLIC" for a POST to endpoint: the JWT (ES256) has aud = the endpoint's
 * origin, exp = now + ttl (1..PC_WEBPUSH_JWT_TTL_MAX) and, when contact is not NULL or "",
 * sub = contact. */
int pc_webpush_vapid_header(const unsigned char priv[PC_WEBPUSH_PRIV_LEN], const char *endpoint,
                            const char *contact, int64_t now, int64_t ttl, char *out, size_t outsz);

#endif
