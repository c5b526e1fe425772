/* SPDX-License-Identifier: BSD-2-Clause */
/* SSH signature blobs (pc_sshkey_sign / pc_sshkey_verify) and SSHSIG: see pc_sshsig.h. */
#include "config.h"
#include "pc_sshsig.h"
#include "pc_err.h"
#include "pc_sshbuf.h"
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* ---- raw SSH signatures ------------------------------------------------------------------ */

static const EVP_MD *ecdsa_md(enum pc_keytype t)
{
    switch (t) {
    case PC_KEY_ECDSA_P256: return EVP_sha256();
    case PC_KEY_ECDSA_P384: return EVP_sha384();
    case PC_KEY_ECDSA_P521: return EVP_sha512();
    default: return NULL;
    }
}

static int is_ecdsa(enum pc_keytype t)
{
    return ecdsa_md(t) != NULL;
}

/* One-shot EVP signature: *sig malloc'ed. md NULL for Ed25519. */
static int evp_sign(EVP_PKEY *pkey, const EVP_MD *md, const void *data, size_t len,
                    unsigned char **sig, size_t *siglen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *s = NULL;
    size_t n = 0;
    int rc = PC_ERR_CRYPTO;

    if (!ctx || EVP_DigestSignInit(ctx, NULL, md, NULL, pkey) != 1 ||
        EVP_DigestSign(ctx, NULL, &n, data, len) != 1)
        goto out;
    if (!(s = malloc(n))) {
        rc = PC_ERR_NOMEM;
        goto out;
    }
    if (EVP_DigestSign(ctx, s, &n, data, len) != 1)
        goto out;
    *sig = s;
    *siglen = n;
    s = NULL;
    rc = PC_OK;
out:
    free(s);
    EVP_MD_CTX_free(ctx);
    return rc;
}

static int evp_verify(EVP_PKEY *pkey, const EVP_MD *md, const unsigned char *sig, size_t siglen,
                      const void *data, size_t len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, md, NULL, pkey) == 1 &&
             EVP_DigestVerify(ctx, sig, siglen, data, len) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        ERR_clear_error();
    return ok ? PC_OK : PC_ERR_CRYPTO;
}

/* Writes the signature blob (string alg, string signature) into sig. */
static int build_sig(const struct pc_sshkey *k, const void *data, size_t len, struct pc_sshbuf *sig)
{
    unsigned char *raw = NULL;
    const unsigned char *p;
    size_t n = 0;
    ECDSA_SIG *es = NULL;
    const BIGNUM *r = NULL, *s = NULL;
    struct pc_sshbuf inner;
    int rc;

    pc_sshbuf_init(&inner, 0);
    if (!pc_sshkey_has_private(k) || !pc_sshkey_sig_alg(k->type))
        return PC_ERR_INVAL;
    if (k->type == PC_KEY_ED25519)
        rc = evp_sign(k->pkey, NULL, data, len, &raw, &n);
    else if (k->type == PC_KEY_RSA)
        rc = evp_sign(k->pkey, EVP_sha512(), data, len, &raw, &n); /* rsa-sha2-512, never SHA-1 */
    else
        rc = evp_sign(k->pkey, ecdsa_md(k->type), data, len, &raw, &n);
    if (rc != 0)
        goto out;
    pc_sshbuf_put_cstring(sig, pc_sshkey_sig_alg(k->type));
    if (is_ecdsa(k->type)) {
        /* OpenSSL gives DER; SSH wants string(mpint r, mpint s) (RFC 5656 3.1.2). */
        p = raw;
        if (!(es = d2i_ECDSA_SIG(NULL, &p, (long)n))) {
            rc = PC_ERR_CRYPTO;
            goto out;
        }
        ECDSA_SIG_get0(es, &r, &s);
        pc_sshbuf_put_bignum(&inner, r);
        pc_sshbuf_put_bignum(&inner, s);
        pc_sshbuf_put_buf(sig, &inner);
    } else {
        pc_sshbuf_put_string(sig, raw, n);
    }
    rc = pc_sshbuf_error(sig);
out:
    ECDSA_SIG_free(es);
    free(raw);
    pc_sshbuf_free(&inner);
    return rc;
}

int pc_sshkey_sign(const struct pc_sshkey *k, const void *data, size_t len, unsigned char **sig,
                   size_t *siglen)
{
    struct pc_sshbuf b;
    int rc;

    pc_sshbuf_init(&b, 0);
    if ((rc = build_sig(k, data, len, &b)) == 0)
        rc = pc_sshbuf_steal(&b, sig, siglen);
    pc_sshbuf_free(&b);
    return rc;
}

int pc_sshkey_sign_to_buf(const struct pc_sshkey *k, const void *data, size_t len,
                          struct pc_sshbuf *b)
{
    struct pc_sshbuf sig;
    int rc;

    pc_sshbuf_init(&sig, 0);
    if ((rc = build_sig(k, data, len, &sig)) == 0)
        rc = pc_sshbuf_put_buf(b, &sig);
    pc_sshbuf_free(&sig);
    return rc;
}

static int name_is(const unsigned char *p, size_t n, const char *want)
{
    return n == strlen(want) && memcmp(p, want, n) == 0;
}

/* ECDSA: string(mpint r, mpint s) → DER for OpenSSL. */
static int ecdsa_to_der(const unsigned char *p, size_t n, unsigned char **der, int *derlen)
{
    struct pc_sshbuf b;
    BIGNUM *r = NULL, *s = NULL;
    ECDSA_SIG *es = NULL;
    int rc;

    pc_sshbuf_init_reader(&b, p, n);
    pc_sshbuf_get_bignum(&b, &r);
    pc_sshbuf_get_bignum(&b, &s);
    if ((rc = pc_sshbuf_expect_end(&b)) != 0)
        goto out;
    rc = PC_ERR_NOMEM;
    if (!(es = ECDSA_SIG_new()) || ECDSA_SIG_set0(es, r, s) != 1)
        goto out;
    r = s = NULL;
    *der = NULL;
    if ((*derlen = i2d_ECDSA_SIG(es, der)) <= 0)
        goto out;
    rc = PC_OK;
out:
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return rc;
}

int pc_sshkey_verify(const struct pc_sshkey *k, const unsigned char *sig, size_t siglen,
                     const void *data, size_t len, const char **alg_out)
{
    struct pc_sshbuf b;
    const unsigned char *alg = NULL, *s = NULL;
    size_t alen = 0, slen = 0, mod;
    const EVP_MD *md = NULL;
    const char *name = NULL;
    unsigned char *tmp = NULL;
    int rc, tlen = 0;

    pc_sshbuf_init_reader(&b, sig, siglen);
    pc_sshbuf_get_string(&b, &alg, &alen);
    pc_sshbuf_get_string(&b, &s, &slen);
    if ((rc = pc_sshbuf_expect_end(&b)) != 0)
        return rc;
    if (k->type == PC_KEY_RSA && name_is(alg, alen, "rsa-sha2-512")) {
        name = "rsa-sha2-512";
        md = EVP_sha512();
    } else if (k->type == PC_KEY_RSA && name_is(alg, alen, "rsa-sha2-256")) {
        name = "rsa-sha2-256";
        md = EVP_sha256();
    } else if (k->type != PC_KEY_RSA && pc_sshkey_sig_alg(k->type) &&
               name_is(alg, alen, pc_sshkey_sig_alg(k->type))) {
        name = pc_sshkey_sig_alg(k->type);
        md = ecdsa_md(k->type); /* NULL for Ed25519 */
    } else {
        return PC_ERR_INVAL; /* includes "ssh-rsa" (SHA-1) and mismatched key types */
    }
    if (alg_out)
        *alg_out = name;
    if (k->type == PC_KEY_ED25519) {
        if (slen != 64)
            return PC_ERR_PARSE;
        return evp_verify(k->pkey, NULL, s, slen, data, len);
    }
    if (is_ecdsa(k->type)) {
        if ((rc = ecdsa_to_der(s, slen, &tmp, &tlen)) == 0)
            rc = evp_verify(k->pkey, md, tmp, (size_t)tlen, data, len);
        OPENSSL_free(tmp);
        return rc;
    }
    /* RSA: OpenSSH accepts a signature shorter than the modulus and left-pads it. */
    mod = (size_t)EVP_PKEY_get_size(k->pkey);
    if (slen > mod || slen == 0)
        return PC_ERR_PARSE;
    if (!(tmp = calloc(1, mod)))
        return PC_ERR_NOMEM;
    memcpy(tmp + (mod - slen), s, slen);
    rc = evp_verify(k->pkey, md, tmp, mod, data, len);
    free(tmp);
    return rc;
}

/* ---- SSHSIG ------------------------------------------------------------------------------ */

#define ARMOR_BEGIN "-----BEGIN SSH SIGNATURE-----"
#define ARMOR_END "-----END SSH SIGNATURE-----"
#define SSHSIG_MAGIC "SSHSIG"
#define SSHSIG_VERSION 1

int pc_sshsig_dearmor(const char *armored, size_t len, unsigned char **blob, size_t *bloblen)
{
    size_t hb = strlen(ARMOR_BEGIN), he = strlen(ARMOR_END), i, n = 0;
    const char *body, *foot, *end = armored + len;
    char *b64 = NULL;
    int rc;

    if (len > PC_SSHSIG_ARMOR_MAX)
        return PC_ERR_TOOBIG;
    if (len < hb + he + 2 || memchr(armored, 0, len) || memcmp(armored, ARMOR_BEGIN, hb) != 0)
        return PC_ERR_PARSE;
    body = armored + hb;
    if (*body == '\r')
        body++;
    if (body >= end || *body != '\n')
        return PC_ERR_PARSE;
    body++;
    foot = memmem(body, (size_t)(end - body), ARMOR_END, he);
    if (!foot || foot == body || foot[-1] != '\n')
        return PC_ERR_PARSE;
    for (const char *t = foot + he; t < end; t++)
        if (*t != '\n' && *t != '\r' && *t != ' ' && *t != '\t')
            return PC_ERR_PARSE;
    if (!(b64 = malloc((size_t)(foot - body) + 1)))
        return PC_ERR_NOMEM;
    for (i = 0; body + i < foot; i++)
        if (body[i] != '\n' && body[i] != '\r')
            b64[n++] = body[i];
    b64[n] = 0;
    rc = pc_base64_decode(b64, n, blob, bloblen);
    free(b64);
    return rc == PC_ERR_NOMEM ? rc : (rc != 0 ? PC_ERR_PARSE : PC_OK);
}

static int hash_message(const unsigned char *alg, size_t alen, const void *msg, size_t msglen,
                        unsigned char *md, unsigned int *mdlen)
{
    const EVP_MD *h = name_is(alg, alen, "sha512")   ? EVP_sha512()
                      : name_is(alg, alen, "sha256") ? EVP_sha256()
                                                     : NULL;
    if (!h)
        return PC_ERR_PARSE;
    return EVP_Digest(msg, msglen, md, mdlen, h, NULL) == 1 ? PC_OK : PC_ERR_CRYPTO;
}

/* "SSHSIG" || string ns || string reserved (empty) || string hash_alg || string H(msg). */
static int signed_data(struct pc_sshbuf *d, const void *ns, size_t nslen, const char *hash,
                       const unsigned char *md, size_t mdlen)
{
    pc_sshbuf_put_raw(d, SSHSIG_MAGIC, 6);
    pc_sshbuf_put_string(d, ns, nslen);
    pc_sshbuf_put_string(d, NULL, 0);
    pc_sshbuf_put_cstring(d, hash);
    return pc_sshbuf_put_string(d, md, mdlen);
}

static int result(enum pc_sshsig_result r, enum pc_sshsig_result *why)
{
    static const int codes[] = { PC_OK, PC_ERR_PARSE, PC_ERR_AUTH, PC_ERR_INVAL, PC_ERR_CRYPTO };
    if (why)
        *why = r;
    return codes[r];
}

int pc_sshsig_verify(const char *armored, size_t len, const void *msg, size_t msglen,
                     const struct pc_sshkey *expected, const char *ns, enum pc_sshsig_result *why)
{
    unsigned char *blob = NULL, *want = NULL, magic[6], md[EVP_MAX_MD_SIZE];
    const unsigned char *pk = NULL, *sns = NULL, *res = NULL, *hash = NULL, *sig = NULL;
    size_t bloblen = 0, wantlen = 0, pklen = 0, nslen = 0, reslen = 0, hlen = 0, siglen = 0;
    unsigned int mdlen = 0;
    uint32_t version = 0;
    char hname[8];
    struct pc_sshbuf b, d;
    enum pc_sshsig_result r = PC_SSHSIG_MALFORMED;
    int rc;

    pc_sshbuf_init(&d, 0);
    if ((rc = pc_sshsig_dearmor(armored, len, &blob, &bloblen)) != 0)
        goto out;
    pc_sshbuf_init_reader(&b, blob, bloblen);
    pc_sshbuf_get_raw(&b, magic, sizeof magic);
    pc_sshbuf_get_u32(&b, &version);
    pc_sshbuf_get_string(&b, &pk, &pklen);
    pc_sshbuf_get_string(&b, &sns, &nslen);
    pc_sshbuf_get_string(&b, &res, &reslen);
    pc_sshbuf_get_string(&b, &hash, &hlen);
    pc_sshbuf_get_string(&b, &sig, &siglen);
    if (pc_sshbuf_expect_end(&b) != 0 || memcmp(magic, SSHSIG_MAGIC, 6) != 0 ||
        version != SSHSIG_VERSION || nslen == 0 || hlen >= sizeof hname)
        goto out;
    if ((rc = pc_sshkey_to_blob(expected, &want, &wantlen)) != 0)
        goto out;
    r = PC_SSHSIG_WRONG_KEY;
    if (pklen != wantlen || memcmp(pk, want, wantlen) != 0)
        goto out;
    r = PC_SSHSIG_WRONG_NAMESPACE;
    if (!ns || nslen != strlen(ns) || memcmp(sns, ns, nslen) != 0)
        goto out;
    r = PC_SSHSIG_MALFORMED;
    if (hash_message(hash, hlen, msg, msglen, md, &mdlen) != 0)
        goto out;
    memcpy(hname, hash, hlen);
    hname[hlen] = 0;
    /* The blob's reserved field is ignored: like OpenSSH, sign and verify over an empty one. */
    if (signed_data(&d, sns, nslen, hname, md, mdlen) != 0)
        goto out;
    rc = pc_sshkey_verify(expected, sig, siglen, pc_sshbuf_ptr(&d), pc_sshbuf_len(&d), NULL);
    r = rc == 0 ? PC_SSHSIG_OK : rc == PC_ERR_PARSE ? PC_SSHSIG_MALFORMED : PC_SSHSIG_BAD_SIGNATURE;
out:
    free(blob);
    free(want);
    pc_sshbuf_free(&d);
    if (rc == PC_ERR_NOMEM || rc == PC_ERR_TOOBIG) {
        if (why)
            *why = PC_SSHSIG_MALFORMED;
        return rc;
    }
    return result(r, why);
}

int pc_sshsig_sign(const struct pc_sshkey *key, const char *ns, const void *msg, size_t msglen,
                   char **out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    struct pc_sshbuf d, blob, pk;
    char *b64 = NULL, *s = NULL;
    size_t n, pos = 0, cap;
    int rc;

    pc_sshbuf_init(&d, 0);
    pc_sshbuf_init(&blob, 0);
    pc_sshbuf_init(&pk, PC_SSHKEY_BLOB_MAX);
    if (!ns || !*ns) {
        rc = PC_ERR_INVAL;
        goto out;
    }
    if ((rc = hash_message((const unsigned char *)"sha512", 6, msg, msglen, md, &mdlen)) != 0 ||
        (rc = signed_data(&d, ns, strlen(ns), "sha512", md, mdlen)) != 0)
        goto out;
    pc_sshbuf_put_raw(&blob, SSHSIG_MAGIC, 6);
    pc_sshbuf_put_u32(&blob, SSHSIG_VERSION);
    if ((rc = pc_sshkey_put_blob(key, &pk)) != 0 || (rc = pc_sshbuf_put_buf(&blob, &pk)) != 0)
        goto out;
    pc_sshbuf_put_cstring(&blob, ns);
    pc_sshbuf_put_string(&blob, NULL, 0);
    pc_sshbuf_put_cstring(&blob, "sha512");
    if ((rc = pc_sshkey_sign_to_buf(key, pc_sshbuf_ptr(&d), pc_sshbuf_len(&d), &blob)) != 0 ||
        (rc = pc_base64_encode(pc_sshbuf_ptr(&blob), pc_sshbuf_len(&blob), &b64)) != 0)
        goto out;
    n = strlen(b64);
    cap = strlen(ARMOR_BEGIN) + strlen(ARMOR_END) + n + n / 70 + 8;
    if (!(s = malloc(cap))) {
        rc = PC_ERR_NOMEM;
        goto out;
    }
    pos = (size_t)snprintf(s, cap, "%s\n", ARMOR_BEGIN);
    for (size_t i = 0; i < n; i += 70)
        pos += (size_t)snprintf(s + pos, cap - pos, "%.*s\n", (int)(n - i < 70 ? n - i : 70),
                                b64 + i);
    snprintf(s + pos, cap - pos, "%s\n", ARMOR_END);
    *out = s;
    rc = PC_OK;
out:
    free(b64);
    pc_sshbuf_free(&d);
    pc_sshbuf_free(&blob);
    pc_sshbuf_free(&pk);
    return rc;
}
