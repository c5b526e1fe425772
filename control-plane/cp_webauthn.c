/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "cp_webauthn.h"
#include "pc_err.h"
#include "pc_rand.h"
#include <fido.h>
#include <fido/eddsa.h>
#include <fido/es256.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <string.h>

#define AD_MIN 37 /* rpIdHash(32) flags(1) signCount(4) */
#define FLAG_UP 0x01
#define FLAG_UV 0x04

static const char b64u[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void cp_b64url_encode(const unsigned char *in, size_t n, char *out)
{
    size_t i, o = 0;

    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64u[v >> 18 & 63];
        out[o++] = b64u[v >> 12 & 63];
        out[o++] = b64u[v >> 6 & 63];
        out[o++] = b64u[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64u[v >> 18 & 63];
        out[o++] = b64u[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64u[v >> 18 & 63];
        out[o++] = b64u[v >> 12 & 63];
        out[o++] = b64u[v >> 6 & 63];
    }
    out[o] = '\0';
}

int cp_b64url_decode(const char *in, unsigned char *out, size_t outsz, size_t *outlen)
{
    size_t n = strlen(in), o = 0;
    uint32_t acc = 0;
    int bits = 0;

    if (n % 4 == 1)
        return PC_ERR_INVAL;
    for (size_t i = 0; i < n; i++) {
        const char *p = strchr(b64u, in[i]);
        if (!p || !*p)
            return PC_ERR_INVAL;
        acc = acc << 6 | (uint32_t)(p - b64u);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == outsz)
                return PC_ERR_TOOBIG;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) /* non-canonical trailing bits */
        return PC_ERR_INVAL;
    *outlen = o;
    return PC_OK;
}

int cp_wa_client_data(const unsigned char *cdj, size_t len, const char *type, const char *origin,
                      char challenge[CP_WA_CHAL_B64 + 1])
{
    json_tokener *tok;
    json_object *o = NULL, *v;
    unsigned char raw[64];
    size_t rawlen;
    int rc = PC_ERR_INVAL;

    if (len == 0 || len > 4096 || memchr(cdj, 0, len))
        return PC_ERR_INVAL;
    tok = json_tokener_new();
    if (!tok)
        return PC_ERR_NOMEM;
    o = json_tokener_parse_ex(tok, (const char *)cdj, (int)len);
    if (!o || json_tokener_get_error(tok) != json_tokener_success ||
        json_tokener_get_parse_end(tok) != len || !json_object_is_type(o, json_type_object))
        goto out;
    rc = PC_ERR_AUTH;
    if (!json_object_object_get_ex(o, "type", &v) || !json_object_is_type(v, json_type_string) ||
        strcmp(json_object_get_string(v), type) != 0)
        goto out;
    if (!json_object_object_get_ex(o, "origin", &v) || !json_object_is_type(v, json_type_string) ||
        strcmp(json_object_get_string(v), origin) != 0)
        goto out;
    if (json_object_object_get_ex(o, "crossOrigin", &v) &&
        (!json_object_is_type(v, json_type_boolean) || json_object_get_boolean(v)))
        goto out;
    if (!json_object_object_get_ex(o, "challenge", &v) ||
        !json_object_is_type(v, json_type_string) ||
        json_object_get_string_len(v) != CP_WA_CHAL_B64 ||
        cp_b64url_decode(json_object_get_string(v), raw, sizeof raw, &rawlen) != PC_OK ||
        rawlen != 32)
        goto out;
    memcpy(challenge, json_object_get_string(v), CP_WA_CHAL_B64 + 1);
    rc = PC_OK;
out:
    json_object_put(o);
    json_tokener_free(tok);
    return rc;
}

/* rpIdHash and the UP and UV flags, on the raw authenticator data (no CBOR here). */
static int check_authdata(const char *rp_id, const unsigned char *ad, size_t adlen)
{
    unsigned char h[32];
    unsigned int hl = 0;

    if (adlen < AD_MIN || adlen > 4096)
        return PC_ERR_INVAL;
    if (EVP_Digest(rp_id, strlen(rp_id), h, &hl, EVP_sha256(), NULL) != 1)
        return PC_ERR_CRYPTO;
    if (!pc_ct_equal(h, ad, 32))
        return PC_ERR_AUTH;
    if ((ad[32] & (FLAG_UP | FLAG_UV)) != (FLAG_UP | FLAG_UV))
        return PC_ERR_AUTH;
    return PC_OK;
}

static int sha256(const unsigned char *p, size_t n, unsigned char out[32])
{
    unsigned int l = 0;
    return EVP_Digest(p, n, out, &l, EVP_sha256(), NULL) == 1 ? PC_OK : PC_ERR_CRYPTO;
}

int cp_wa_register(const char *rp_id, const unsigned char *cdj, size_t cdjlen,
                   const unsigned char *authdata, size_t adlen, int alg,
                   char cred_id[CP_WA_CREDID_MAX + 1], unsigned char pk[CP_WA_PK_MAX],
                   size_t *pklen)
{
    fido_cred_t *cred = NULL;
    unsigned char cdh[32];
    int rc;

    if (alg != CP_WA_ES256 && alg != CP_WA_EDDSA)
        return PC_ERR_INVAL;
    if ((rc = check_authdata(rp_id, authdata, adlen)) != PC_OK)
        return rc;
    if ((rc = sha256(cdj, cdjlen, cdh)) != PC_OK)
        return rc;
    if (!(cred = fido_cred_new()))
        return PC_ERR_NOMEM;
    rc = PC_ERR_INVAL;
    /* The type first: libfido2 refuses authenticator data whose COSE key is of another one.
     * Attestation "none" carries no statement, so there is no signature to verify:
     * libfido2 parses the attested credential (ID, COSE key) and we keep what it read. */
    if (fido_cred_set_type(cred, alg == CP_WA_ES256 ? COSE_ES256 : COSE_EDDSA) != FIDO_OK ||
        fido_cred_set_clientdata_hash(cred, cdh, sizeof cdh) != FIDO_OK ||
        fido_cred_set_rp(cred, rp_id, NULL) != FIDO_OK ||
        fido_cred_set_authdata_raw(cred, authdata, adlen) != FIDO_OK ||
        fido_cred_set_fmt(cred, "none") != FIDO_OK)
        goto out;
    if ((fido_cred_flags(cred) & (FLAG_UP | FLAG_UV)) != (FLAG_UP | FLAG_UV) ||
        fido_cred_id_len(cred) == 0 || fido_cred_id_len(cred) > 256 ||
        fido_cred_pubkey_len(cred) == 0 || fido_cred_pubkey_len(cred) > CP_WA_PK_MAX) {
        rc = PC_ERR_AUTH;
        goto out;
    }
    cp_b64url_encode(fido_cred_id_ptr(cred), fido_cred_id_len(cred), cred_id);
    *pklen = fido_cred_pubkey_len(cred);
    memcpy(pk, fido_cred_pubkey_ptr(cred), *pklen);
    rc = PC_OK;
out:
    fido_cred_free(&cred);
    return rc;
}

int cp_wa_assert(const char *rp_id, const unsigned char *cdj, size_t cdjlen,
                 const unsigned char *authdata, size_t adlen, const unsigned char *sig,
                 size_t siglen, int alg, const unsigned char *pk, size_t pklen, uint32_t *count)
{
    fido_assert_t *a = NULL;
    es256_pk_t *ek = NULL;
    eddsa_pk_t *dk = NULL;
    unsigned char cdh[32];
    const void *key;
    int rc;

    if ((rc = check_authdata(rp_id, authdata, adlen)) != PC_OK)
        return rc;
    if (siglen == 0 || siglen > 256)
        return PC_ERR_INVAL;
    if ((rc = sha256(cdj, cdjlen, cdh)) != PC_OK)
        return rc;
    if (!(a = fido_assert_new()))
        return PC_ERR_NOMEM;
    rc = PC_ERR_INVAL;
    if (alg == CP_WA_ES256) {
        if (!(ek = es256_pk_new()) || es256_pk_from_ptr(ek, pk, pklen) != FIDO_OK)
            goto out;
        key = ek;
    } else if (alg == CP_WA_EDDSA) {
        if (!(dk = eddsa_pk_new()) || eddsa_pk_from_ptr(dk, pk, pklen) != FIDO_OK)
            goto out;
        key = dk;
    } else
        goto out;
    if (fido_assert_set_clientdata_hash(a, cdh, sizeof cdh) != FIDO_OK ||
        fido_assert_set_rp(a, rp_id) != FIDO_OK || fido_assert_set_count(a, 1) != FIDO_OK ||
        fido_assert_set_authdata_raw(a, 0, authdata, adlen) != FIDO_OK ||
        fido_assert_set_sig(a, 0, sig, siglen) != FIDO_OK ||
        fido_assert_set_up(a, FIDO_OPT_TRUE) != FIDO_OK ||
        fido_assert_set_uv(a, FIDO_OPT_TRUE) != FIDO_OK)
        goto out;
    if (fido_assert_verify(a, 0, alg == CP_WA_ES256 ? COSE_ES256 : COSE_EDDSA, key) != FIDO_OK) {
        rc = PC_ERR_AUTH;
        goto out;
    }
    *count = fido_assert_sigcount(a, 0);
    rc = PC_OK;
out:
    es256_pk_free(&ek);
    eddsa_pk_free(&dk);
    fido_assert_free(&a);
    return rc;
}
