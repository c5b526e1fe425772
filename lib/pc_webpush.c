/* SPDX-License-Identifier: BSD-2-Clause */
/* Web Push encryption (RFC 8291 over RFC 8188 aes128gcm) and VAPID (RFC 8292): see pc_webpush.h. */
#include "config.h"
#include "pc_webpush.h"
#include "pc_err.h"
#include "pc_mem.h"
#include "pc_rand.h"
#include "pc_sshbuf.h"
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <stdio.h>
#include <string.h>

static const char b64url_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int pc_b64url_encode(const unsigned char *in, size_t len, char *out, size_t outsz)
{
    char *std = NULL;
    size_t o = 0;
    int rc;

    if (!out || outsz < (len + 2) / 3 * 4 + 1)
        return PC_ERR_TOOBIG;
    if ((rc = pc_base64_encode(in, len, &std)) != PC_OK)
        return rc;
    for (const char *p = std; *p && *p != '='; p++)
        out[o++] = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    out[o] = '\0';
    pc_free_secret_str(std);
    return PC_OK;
}

static int b64url_value(char c)
{
    const char *p = c ? strchr(b64url_chars, c) : NULL;
    return p ? (int)(p - b64url_chars) : -1;
}

int pc_b64url_decode(const char *in, unsigned char *out, size_t outsz, size_t *outlen)
{
    size_t n = strlen(in), o = 0, bits = 0;
    uint32_t acc = 0;

    while (n > 0 && in[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return PC_ERR_PARSE;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_value(in[i]);
        if (v < 0)
            return PC_ERR_PARSE;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= outsz)
                return PC_ERR_TOOBIG;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) /* non-canonical trailing bits */
        return PC_ERR_PARSE;
    *outlen = o;
    return PC_OK;
}

/* ---- P-256 keys ------------------------------------------------------------------------------ */

static EC_GROUP *p256(void)
{
    return EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
}

int pc_webpush_point_valid(const unsigned char pub[PC_WEBPUSH_PUB_LEN])
{
    EC_GROUP *g = p256();
    EC_POINT *pt = g ? EC_POINT_new(g) : NULL;
    int ok = pt && pub[0] == 0x04 &&
             EC_POINT_oct2point(g, pt, pub, PC_WEBPUSH_PUB_LEN, NULL) == 1 &&
             EC_POINT_is_at_infinity(g, pt) == 0 && EC_POINT_is_on_curve(g, pt, NULL) == 1;
    EC_POINT_free(pt);
    EC_GROUP_free(g);
    return ok;
}

int pc_webpush_public(const unsigned char priv[PC_WEBPUSH_PRIV_LEN],
                      unsigned char pub[PC_WEBPUSH_PUB_LEN])
{
    EC_GROUP *g = p256();
    EC_POINT *pt = g ? EC_POINT_new(g) : NULL;
    BIGNUM *d = BN_secure_new();
    int rc = PC_ERR_CRYPTO;

    if (!pt || !d || !BN_bin2bn(priv, PC_WEBPUSH_PRIV_LEN, d) || BN_is_zero(d) ||
        BN_cmp(d, EC_GROUP_get0_order(g)) >= 0 || EC_POINT_mul(g, pt, d, NULL, NULL, NULL) != 1 ||
        EC_POINT_point2oct(g, pt, POINT_CONVERSION_UNCOMPRESSED, pub, PC_WEBPUSH_PUB_LEN, NULL) !=
            PC_WEBPUSH_PUB_LEN)
        goto out;
    rc = PC_OK;
out:
    BN_clear_free(d);
    EC_POINT_free(pt);
    EC_GROUP_free(g);
    return rc;
}

int pc_webpush_keygen(unsigned char priv[PC_WEBPUSH_PRIV_LEN],
                      unsigned char pub[PC_WEBPUSH_PUB_LEN])
{
    /* a uniformly random scalar by rejection: fewer than 1 in 2^32 draws is out of range */
    for (int i = 0; i < 16; i++) {
        if (pc_random_bytes(priv, PC_WEBPUSH_PRIV_LEN) != PC_OK)
            break;
        if (pc_webpush_public(priv, pub) == PC_OK)
            return PC_OK;
    }
    pc_wipe(priv, PC_WEBPUSH_PRIV_LEN);
    return PC_ERR_CRYPTO;
}

/* An EVP_PKEY from a public point (priv NULL) or a key pair. */
static EVP_PKEY *pkey_from(const unsigned char *priv, const unsigned char pub[PC_WEBPUSH_PUB_LEN])
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    BIGNUM *d = NULL;

    if (!bld ||
        !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, PC_WEBPUSH_PUB_LEN))
        goto out;
    if (priv && (!(d = BN_secure_new()) || !BN_bin2bn(priv, PC_WEBPUSH_PRIV_LEN, d) ||
                 !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d)))
        goto out;
    if (!(params = OSSL_PARAM_BLD_to_param(bld)))
        goto out;
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, priv ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, params) != 1)
        pkey = NULL;
out:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params); /* the secure-heap copy of a BN_secure scalar is cleared */
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(d);
    return pkey;
}

/* ECDH(priv, peer) → 32 bytes. */
static int ecdh(const unsigned char priv[PC_WEBPUSH_PRIV_LEN],
                const unsigned char own_pub[PC_WEBPUSH_PUB_LEN],
                const unsigned char peer_pub[PC_WEBPUSH_PUB_LEN], unsigned char secret[32])
{
    EVP_PKEY *own = NULL, *peer = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    size_t n = 32;
    int rc = PC_ERR_CRYPTO;

    if (!pc_webpush_point_valid(peer_pub) || !(own = pkey_from(priv, own_pub)) ||
        !(peer = pkey_from(NULL, peer_pub)) || !(ctx = EVP_PKEY_CTX_new_from_pkey(NULL, own, NULL)))
        goto out;
    if (EVP_PKEY_derive_init(ctx) != 1 || EVP_PKEY_derive_set_peer_ex(ctx, peer, 1) != 1 ||
        EVP_PKEY_derive(ctx, secret, &n) != 1 || n != 32)
        goto out;
    rc = PC_OK;
out:
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(own);
    EVP_PKEY_free(peer);
    return rc;
}

static int hkdf(const unsigned char *salt, size_t saltlen, const unsigned char *ikm, size_t ikmlen,
                const unsigned char *info, size_t infolen, unsigned char *out, size_t outlen)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    size_t n = outlen;
    int ok = ctx && EVP_PKEY_derive_init(ctx) == 1 &&
             EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) == 1 &&
             EVP_PKEY_CTX_set1_hkdf_salt(ctx, salt, (int)saltlen) == 1 &&
             EVP_PKEY_CTX_set1_hkdf_key(ctx, ikm, (int)ikmlen) == 1 &&
             EVP_PKEY_CTX_add1_hkdf_info(ctx, info, (int)infolen) == 1 &&
             EVP_PKEY_derive(ctx, out, &n) == 1 && n == outlen;
    EVP_PKEY_CTX_free(ctx);
    return ok ? PC_OK : PC_ERR_CRYPTO;
}

/* RFC 8291 §3.4 and RFC 8188 §2.2-2.3: the content encryption key and nonce. */
static int derive(const unsigned char secret[32], const unsigned char auth[PC_WEBPUSH_AUTH_LEN],
                  const unsigned char ua_pub[PC_WEBPUSH_PUB_LEN],
                  const unsigned char as_pub[PC_WEBPUSH_PUB_LEN],
                  const unsigned char salt[PC_WEBPUSH_SALT_LEN], unsigned char cek[16],
                  unsigned char nonce[12])
{
    static const char key_label[] = "WebPush: info"; /* and its NUL */
    static const char cek_info[] = "Content-Encoding: aes128gcm";
    static const char nonce_info[] = "Content-Encoding: nonce";
    unsigned char info[sizeof key_label + 2 * PC_WEBPUSH_PUB_LEN], ikm[32];
    int rc;

    memcpy(info, key_label, sizeof key_label);
    memcpy(info + sizeof key_label, ua_pub, PC_WEBPUSH_PUB_LEN);
    memcpy(info + sizeof key_label + PC_WEBPUSH_PUB_LEN, as_pub, PC_WEBPUSH_PUB_LEN);
    if ((rc = hkdf(auth, PC_WEBPUSH_AUTH_LEN, secret, 32, info, sizeof info, ikm, sizeof ikm)) ==
            PC_OK &&
        (rc = hkdf(salt, PC_WEBPUSH_SALT_LEN, ikm, sizeof ikm, (const unsigned char *)cek_info,
                   sizeof cek_info, cek, 16)) == PC_OK)
        rc = hkdf(salt, PC_WEBPUSH_SALT_LEN, ikm, sizeof ikm, (const unsigned char *)nonce_info,
                  sizeof nonce_info, nonce, 12);
    pc_wipe(ikm, sizeof ikm);
    return rc;
}

/* AES-128-GCM over in (encrypt: tag appended; decrypt: in ends with the tag). */
static int gcm(int enc, const unsigned char cek[16], const unsigned char nonce[12],
               const unsigned char *in, size_t len, unsigned char *out)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    size_t body = enc ? len : len - 16;
    int n = 0, fin = 0, ok;

    ok = c && EVP_CipherInit_ex(c, EVP_aes_128_gcm(), NULL, cek, nonce, enc) == 1 &&
         EVP_CipherUpdate(c, out, &n, in, (int)body) == 1;
    if (ok && !enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, (void *)(in + body)) == 1;
    ok = ok && EVP_CipherFinal_ex(c, out + n, &fin) == 1 && (size_t)(n + fin) == body;
    if (ok && enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, out + body) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok ? PC_OK : PC_ERR_CRYPTO;
}

int pc_webpush_encrypt_with(const unsigned char ua_pub[PC_WEBPUSH_PUB_LEN],
                            const unsigned char auth[PC_WEBPUSH_AUTH_LEN],
                            const unsigned char as_priv[PC_WEBPUSH_PRIV_LEN],
                            const unsigned char salt[PC_WEBPUSH_SALT_LEN],
                            const unsigned char *plain, size_t len, unsigned char *out,
                            size_t outsz, size_t *outlen)
{
    unsigned char as_pub[PC_WEBPUSH_PUB_LEN], secret[32], cek[16], nonce[12];
    unsigned char record[PC_WEBPUSH_PLAIN_MAX + 1];
    size_t total = PC_WEBPUSH_HEADER_LEN + len + 1 + 16;
    int rc;

    if (len > PC_WEBPUSH_PLAIN_MAX)
        return PC_ERR_TOOBIG;
    if (outsz < total)
        return PC_ERR_TOOBIG;
    if (!pc_webpush_point_valid(ua_pub))
        return PC_ERR_CRYPTO;
    if ((rc = pc_webpush_public(as_priv, as_pub)) != PC_OK ||
        (rc = ecdh(as_priv, as_pub, ua_pub, secret)) != PC_OK ||
        (rc = derive(secret, auth, ua_pub, as_pub, salt, cek, nonce)) != PC_OK)
        goto out;
    memcpy(record, plain, len);
    record[len] = 0x02; /* the last (and only) record, no padding */
    memcpy(out, salt, PC_WEBPUSH_SALT_LEN);
    out[16] = (PC_WEBPUSH_RS >> 24) & 0xff;
    out[17] = (PC_WEBPUSH_RS >> 16) & 0xff;
    out[18] = (PC_WEBPUSH_RS >> 8) & 0xff;
    out[19] = PC_WEBPUSH_RS & 0xff;
    out[20] = PC_WEBPUSH_PUB_LEN;
    memcpy(out + 21, as_pub, PC_WEBPUSH_PUB_LEN);
    if ((rc = gcm(1, cek, nonce, record, len + 1, out + PC_WEBPUSH_HEADER_LEN)) != PC_OK)
        goto out;
    *outlen = total;
out:
    pc_wipe(secret, sizeof secret);
    pc_wipe(cek, sizeof cek);
    pc_wipe(nonce, sizeof nonce);
    pc_wipe(record, sizeof record);
    if (rc != PC_OK)
        pc_wipe(out, outsz < total ? outsz : total);
    return rc;
}

int pc_webpush_encrypt(const unsigned char ua_pub[PC_WEBPUSH_PUB_LEN],
                       const unsigned char auth[PC_WEBPUSH_AUTH_LEN], const unsigned char *plain,
                       size_t len, unsigned char *out, size_t outsz, size_t *outlen)
{
    unsigned char as_priv[PC_WEBPUSH_PRIV_LEN], as_pub[PC_WEBPUSH_PUB_LEN];
    unsigned char salt[PC_WEBPUSH_SALT_LEN];
    int rc;

    if (len > PC_WEBPUSH_PLAIN_MAX)
        return PC_ERR_TOOBIG;
    if ((rc = pc_webpush_keygen(as_priv, as_pub)) == PC_OK &&
        (rc = pc_random_bytes(salt, sizeof salt)) == PC_OK)
        rc = pc_webpush_encrypt_with(ua_pub, auth, as_priv, salt, plain, len, out, outsz, outlen);
    pc_wipe(as_priv, sizeof as_priv);
    return rc;
}

int pc_webpush_decrypt(const unsigned char ua_priv[PC_WEBPUSH_PRIV_LEN],
                       const unsigned char auth[PC_WEBPUSH_AUTH_LEN], const unsigned char *body,
                       size_t len, unsigned char *out, size_t outsz, size_t *outlen)
{
    unsigned char ua_pub[PC_WEBPUSH_PUB_LEN], secret[32], cek[16], nonce[12];
    unsigned char record[PC_WEBPUSH_BODY_MAX];
    uint32_t rs;
    size_t clen, n;
    int rc;

    if (len < PC_WEBPUSH_HEADER_LEN + 17 || len > PC_WEBPUSH_BODY_MAX)
        return PC_ERR_PARSE;
    rs = (uint32_t)body[16] << 24 | (uint32_t)body[17] << 16 | (uint32_t)body[18] << 8 | body[19];
    clen = len - PC_WEBPUSH_HEADER_LEN;
    if (body[20] != PC_WEBPUSH_PUB_LEN || rs < 18 || clen > rs) /* one record only */
        return PC_ERR_PARSE;
    if ((rc = pc_webpush_public(ua_priv, ua_pub)) != PC_OK ||
        (rc = ecdh(ua_priv, ua_pub, body + 21, secret)) != PC_OK ||
        (rc = derive(secret, auth, ua_pub, body + 21, body, cek, nonce)) != PC_OK ||
        (rc = gcm(0, cek, nonce, body + PC_WEBPUSH_HEADER_LEN, clen, record)) != PC_OK)
        goto out;
    n = clen - 16;
    while (n > 0 && record[n - 1] == 0)
        n--;
    if (n == 0 || record[n - 1] != 0x02) {
        rc = PC_ERR_PARSE;
        goto out;
    }
    n--;
    if (n > outsz) {
        rc = PC_ERR_TOOBIG;
        goto out;
    }
    memcpy(out, record, n);
    *outlen = n;
out:
    pc_wipe(secret, sizeof secret);
    pc_wipe(cek, sizeof cek);
    pc_wipe(nonce, sizeof nonce);
    pc_wipe(record, sizeof record);
    return rc;
}

/* ---- endpoints and VAPID ---------------------------------------------------------------------- */

static int host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.';
}

/* Splits "https://AUTHORITY/…": host [hs, he), port string [ps, pe) (empty: none). */
static int parse_endpoint(const char *url, size_t *hs, size_t *he, size_t *ps, size_t *pe)
{
    static const char scheme[] = "https://";
    size_t n, i = sizeof scheme - 1, end;

    if (!url || strncmp(url, scheme, i) != 0)
        return 0;
    n = strlen(url);
    if (n > PC_WEBPUSH_ENDPOINT_MAX)
        return 0;
    for (size_t k = 0; k < n; k++)
        if (url[k] < 0x21 || url[k] > 0x7e || url[k] == '#' || url[k] == '\\' || url[k] == '"')
            return 0;
    end = i + strcspn(url + i, "/?");
    *hs = i;
    if (url[i] == '[') { /* [IPv6] */
        const char *close = memchr(url + i, ']', end - i);
        if (!close || close == url + i + 1)
            return 0;
        for (const char *p = url + i + 1; p < close; p++)
            if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') ||
                  (*p >= 'A' && *p <= 'F') || *p == ':' || *p == '.'))
                return 0;
        *he = (size_t)(close - url) + 1;
    } else {
        *he = i;
        while (*he < end && host_char(url[*he]))
            (*he)++;
        if (*he == i)
            return 0;
    }
    *ps = *pe = *he;
    if (*he < end) {
        unsigned long port = 0;
        if (url[*he] != ':')
            return 0; /* '@' (user info) or anything else in the authority */
        *ps = *he + 1;
        for (*pe = *ps; *pe < end; (*pe)++) {
            if (url[*pe] < '0' || url[*pe] > '9' || *pe - *ps >= 5)
                return 0;
            port = port * 10 + (unsigned long)(url[*pe] - '0');
        }
        if (*pe == *ps || port == 0 || port > 65535)
            return 0;
    }
    return 1;
}

int pc_webpush_endpoint_valid(const char *url)
{
    size_t hs, he, ps, pe;
    return parse_endpoint(url, &hs, &he, &ps, &pe);
}

int pc_webpush_origin(const char *endpoint, char *out, size_t outsz)
{
    size_t hs, he, ps, pe;
    int n;

    if (!parse_endpoint(endpoint, &hs, &he, &ps, &pe))
        return PC_ERR_INVAL;
    if (pe > ps && !(pe - ps == 3 && memcmp(endpoint + ps, "443", 3) == 0))
        n = snprintf(out, outsz, "https://%.*s:%.*s", (int)(he - hs), endpoint + hs, (int)(pe - ps),
                     endpoint + ps);
    else
        n = snprintf(out, outsz, "https://%.*s", (int)(he - hs), endpoint + hs);
    return n > 0 && (size_t)n < outsz ? PC_OK : PC_ERR_TOOBIG;
}

int pc_webpush_contact_valid(const char *contact)
{
    size_t n;

    if (!contact || (strncmp(contact, "mailto:", 7) != 0 && strncmp(contact, "https://", 8) != 0))
        return 0;
    n = strlen(contact);
    if (n > PC_WEBPUSH_CONTACT_MAX || n <= 8)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (contact[i] < 0x21 || contact[i] > 0x7e || contact[i] == '"' || contact[i] == '\\')
            return 0;
    return 1;
}

/* ES256: the raw r | s signature (64 bytes) of msg. */
static int es256_sign(const unsigned char priv[PC_WEBPUSH_PRIV_LEN], const char *msg,
                      unsigned char sig[64])
{
    unsigned char pub[PC_WEBPUSH_PUB_LEN], der[80];
    const unsigned char *p = der;
    EVP_PKEY *key = NULL;
    EVP_MD_CTX *md = NULL;
    ECDSA_SIG *s = NULL;
    size_t derlen = sizeof der;
    int rc = PC_ERR_CRYPTO;

    if (pc_webpush_public(priv, pub) != PC_OK || !(key = pkey_from(priv, pub)) ||
        !(md = EVP_MD_CTX_new()) || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, der, &derlen, (const unsigned char *)msg, strlen(msg)) != 1 ||
        !(s = d2i_ECDSA_SIG(NULL, &p, (long)derlen)) ||
        BN_bn2binpad(ECDSA_SIG_get0_r(s), sig, 32) != 32 ||
        BN_bn2binpad(ECDSA_SIG_get0_s(s), sig + 32, 32) != 32)
        goto out;
    rc = PC_OK;
out:
    ECDSA_SIG_free(s);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    return rc;
}

int pc_webpush_vapid_header(const unsigned char priv[PC_WEBPUSH_PRIV_LEN], const char *endpoint,
                            const char *contact, int64_t now, int64_t ttl, char *out, size_t outsz)
{
    static const char jwt_header[] = "{\"typ\":\"JWT\",\"alg\":\"ES256\"}";
    char aud[PC_WEBPUSH_ENDPOINT_MAX + 1], claims[PC_WEBPUSH_ENDPOINT_MAX + 512];
    char input[PC_WEBPUSH_AUTH_HEADER_MAX], sig64[90], k64[90];
    unsigned char sig[64], pub[PC_WEBPUSH_PUB_LEN];
    size_t hl;
    int rc, n;

    if (ttl < 1 || ttl > PC_WEBPUSH_JWT_TTL_MAX || now < 0)
        return PC_ERR_INVAL;
    if (contact && *contact && !pc_webpush_contact_valid(contact))
        return PC_ERR_INVAL;
    if ((rc = pc_webpush_origin(endpoint, aud, sizeof aud)) != PC_OK)
        return rc;
    if (contact && *contact)
        n = snprintf(claims, sizeof claims, "{\"aud\":\"%s\",\"exp\":%lld,\"sub\":\"%s\"}", aud,
                     (long long)(now + ttl), contact);
    else
        n = snprintf(claims, sizeof claims, "{\"aud\":\"%s\",\"exp\":%lld}", aud,
                     (long long)(now + ttl));
    if (n < 0 || (size_t)n >= sizeof claims)
        return PC_ERR_TOOBIG;
    if ((rc = pc_b64url_encode((const unsigned char *)jwt_header, sizeof jwt_header - 1, input,
                               sizeof input)) != PC_OK)
        return rc;
    hl = strlen(input);
    input[hl++] = '.';
    if ((rc = pc_b64url_encode((const unsigned char *)claims, (size_t)n, input + hl,
                               sizeof input - hl)) != PC_OK ||
        (rc = es256_sign(priv, input, sig)) != PC_OK ||
        (rc = pc_b64url_encode(sig, sizeof sig, sig64, sizeof sig64)) != PC_OK ||
        (rc = pc_webpush_public(priv, pub)) != PC_OK ||
        (rc = pc_b64url_encode(pub, sizeof pub, k64, sizeof k64)) != PC_OK)
        return rc;
    n = snprintf(out, outsz, "vapid t=%s.%s, k=%s", input, sig64, k64);
    return n > 0 && (size_t)n < outsz ? PC_OK : PC_ERR_TOOBIG;
}
