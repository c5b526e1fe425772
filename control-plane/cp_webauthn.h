/* SPDX-License-Identifier: BSD-2-Clause */
/* WebAuthn for the approval web app: the client data checked here (type, challenge, origin),
 * the authenticator data, COSE keys and signatures parsed and verified by libfido2. */
#ifndef CP_WEBAUTHN_H
#define CP_WEBAUTHN_H
#include <stddef.h>
#include <stdint.h>

#define CP_WA_ES256 (-7)
#define CP_WA_EDDSA (-8)
#define CP_WA_PK_MAX 128     /* an ES256 or Ed25519 public key as libfido2 stores it */
#define CP_WA_CHAL_B64 43    /* 32 random bytes, base64url without padding */
#define CP_WA_CREDID_MAX 344 /* base64url of at most 256 bytes */

/* base64url without padding. enc: out needs 4*n/3+2 bytes. dec: PC_ERR_INVAL on any other
 * character or a length that cannot be; *outlen at most outsz. */
void cp_b64url_encode(const unsigned char *in, size_t n, char *out);
int cp_b64url_decode(const char *in, unsigned char *out, size_t outsz, size_t *outlen);

/* clientDataJSON (at most 4 KiB, a JSON object): type must be type ("webauthn.create" or
 * "webauthn.get"), origin exactly origin, crossOrigin absent or false; its challenge (base64url
 * of 32 bytes) is copied to challenge. PC_ERR_AUTH for a mismatch, PC_ERR_INVAL for garbage. */
int cp_wa_client_data(const unsigned char *cdj, size_t len, const char *type, const char *origin,
                      char challenge[CP_WA_CHAL_B64 + 1]);

/* A registration ("none" attestation): authenticator data with rpIdHash = SHA-256(rp_id), user
 * present and user verified, an attested credential of algorithm alg (-7 ES256 or -8 EdDSA).
 * Out: its credential ID (base64url) and public key. */
int cp_wa_register(const char *rp_id, const unsigned char *cdj, size_t cdjlen,
                   const unsigned char *authdata, size_t adlen, int alg,
                   char cred_id[CP_WA_CREDID_MAX + 1], unsigned char pk[CP_WA_PK_MAX],
                   size_t *pklen);

/* An assertion by the stored key (alg, pk) over authdata and SHA-256(cdj), user present and
 * verified, rpIdHash = SHA-256(rp_id). Out: the authenticator's signature counter. */
int cp_wa_assert(const char *rp_id, const unsigned char *cdj, size_t cdjlen,
                 const unsigned char *authdata, size_t adlen, const unsigned char *sig,
                 size_t siglen, int alg, const unsigned char *pk, size_t pklen, uint32_t *count);

#endif
