/* SPDX-License-Identifier: BSD-2-Clause */
/* OpenSSH public keys, CA keys and SSH signatures: see pc_sshkey.h. */
#include "config.h"
#include "pc_sshkey.h"
#include "pc_err.h"
#include "pc_fs.h"
#include "pc_mem.h"
#include "pc_sshbuf.h"
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const struct {
    enum pc_keytype type;
    const char *name, *curve, *group, *label, *sig_alg;
    int bits;
} key_types[] = {
    { PC_KEY_ED25519, "ssh-ed25519", NULL, NULL, "ED25519", "ssh-ed25519", 256 },
    { PC_KEY_ECDSA_P256, "ecdsa-sha2-nistp256", "nistp256", "prime256v1", "ECDSA",
      "ecdsa-sha2-nistp256", 256 },
    { PC_KEY_ECDSA_P384, "ecdsa-sha2-nistp384", "nistp384", "secp384r1", "ECDSA",
      "ecdsa-sha2-nistp384", 384 },
    { PC_KEY_ECDSA_P521, "ecdsa-sha2-nistp521", "nistp521", "secp521r1", "ECDSA",
      "ecdsa-sha2-nistp521", 521 },
    { PC_KEY_RSA, "ssh-rsa", NULL, NULL, "RSA", "rsa-sha2-512", 0 },
};
#define N_TYPES (sizeof key_types / sizeof key_types[0])

static int type_index(enum pc_keytype t)
{
    for (size_t i = 0; i < N_TYPES; i++)
        if (key_types[i].type == t)
            return (int)i;
    return -1;
}

const char *pc_sshkey_type_name(enum pc_keytype t)
{
    int i = type_index(t);
    return i < 0 ? NULL : key_types[i].name;
}

const char *pc_sshkey_curve_name(enum pc_keytype t)
{
    int i = type_index(t);
    return i < 0 ? NULL : key_types[i].curve;
}

const char *pc_sshkey_type_label(enum pc_keytype t)
{
    int i = type_index(t);
    return i < 0 ? NULL : key_types[i].label;
}

const char *pc_sshkey_sig_alg(enum pc_keytype t)
{
    int i = type_index(t);
    return i < 0 ? NULL : key_types[i].sig_alg;
}

enum pc_keytype pc_sshkey_type_from_name(const char *name, size_t n)
{
    for (size_t i = 0; i < N_TYPES; i++)
        if (strlen(key_types[i].name) == n && memcmp(key_types[i].name, name, n) == 0)
            return key_types[i].type;
    return PC_KEY_UNKNOWN;
}

static int is_ecdsa(enum pc_keytype t)
{
    return t == PC_KEY_ECDSA_P256 || t == PC_KEY_ECDSA_P384 || t == PC_KEY_ECDSA_P521;
}

void pc_sshkey_free(struct pc_sshkey *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey);
    free(k);
}

static int key_wrap(enum pc_keytype t, EVP_PKEY *pkey, int priv, struct pc_sshkey **out)
{
    struct pc_sshkey *k = calloc(1, sizeof *k);
    if (!k) {
        EVP_PKEY_free(pkey);
        return PC_ERR_NOMEM;
    }
    k->type = t;
    k->pkey = pkey;
    k->has_private = priv;
    *out = k;
    return PC_OK;
}

int pc_sshkey_bits(const struct pc_sshkey *k)
{
    int i = type_index(k->type);
    if (i < 0)
        return 0;
    return k->type == PC_KEY_RSA ? EVP_PKEY_get_bits(k->pkey) : key_types[i].bits;
}

/* ---- reading public keys -------------------------------------------------------------------- */

static int ec_from_point(enum pc_keytype t, const unsigned char *q, size_t qlen, EVP_PKEY **out)
{
    int i = type_index(t), rc = PC_ERR_INVAL;
    size_t field = (size_t)(key_types[i].bits + 7) / 8;
    EVP_PKEY_CTX *ctx = NULL, *chk = NULL;
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM params[3];

    /* Only the uncompressed form 0x04 || X || Y (RFC 5656 uses SEC1 2.3.3, OpenSSH emits it). */
    if (qlen != 1 + 2 * field || q[0] != 0x04)
        return PC_ERR_PARSE;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                 (char *)(uintptr_t)key_types[i].group, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)(uintptr_t)q,
                                                  qlen);
    params[2] = OSSL_PARAM_construct_end();
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        goto out; /* not on the curve */
    chk = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (!chk || EVP_PKEY_public_check(chk) != 1)
        goto out; /* infinity, wrong order, coordinates out of range */
    *out = pkey;
    pkey = NULL;
    rc = PC_OK;
out:
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_CTX_free(chk);
    if (rc != PC_OK)
        ERR_clear_error();
    return rc;
}

static int rsa_from_bn(BIGNUM *e, BIGNUM *n, EVP_PKEY **out)
{
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    int rc = PC_ERR_INVAL, bits = BN_num_bits(n);

    if (bits < PC_RSA_MIN_BITS || bits > PC_RSA_MAX_BITS || !BN_is_odd(n) || !BN_is_odd(e) ||
        BN_num_bits(e) < 2 || BN_num_bits(e) > 64)
        return PC_ERR_INVAL;
    bld = OSSL_PARAM_BLD_new();
    if (!bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
        !(params = OSSL_PARAM_BLD_to_param(bld))) {
        rc = PC_ERR_NOMEM;
        goto out;
    }
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        rc = PC_ERR_CRYPTO;
        goto out;
    }
    rc = PC_OK;
out:
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

int pc_sshkey_read_fields(struct pc_sshbuf *b, enum pc_keytype t, struct pc_sshkey **out)
{
    const unsigned char *p = NULL;
    size_t n = 0;
    BIGNUM *e = NULL, *mod = NULL;
    EVP_PKEY *pkey = NULL;
    int rc;

    if (t == PC_KEY_ED25519) {
        if ((rc = pc_sshbuf_get_string(b, &p, &n)) != 0)
            return rc;
        if (n != 32)
            return PC_ERR_PARSE;
        pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, p, n);
        if (!pkey)
            return PC_ERR_CRYPTO;
    } else if (is_ecdsa(t)) {
        if ((rc = pc_sshbuf_get_expect_cstring(b, pc_sshkey_curve_name(t))) != 0 ||
            (rc = pc_sshbuf_get_string(b, &p, &n)) != 0)
            return rc;
        if ((rc = ec_from_point(t, p, n, &pkey)) != 0)
            return rc;
    } else if (t == PC_KEY_RSA) {
        pc_sshbuf_get_bignum(b, &e);
        pc_sshbuf_get_bignum(b, &mod);
        rc = pc_sshbuf_error(b);
        if (rc == 0)
            rc = rsa_from_bn(e, mod, &pkey);
        BN_free(e);
        BN_free(mod);
        if (rc != 0)
            return rc;
    } else {
        return PC_ERR_INVAL;
    }
    return key_wrap(t, pkey, 0, out);
}

int pc_sshkey_from_blob(const unsigned char *blob, size_t len, struct pc_sshkey **out)
{
    struct pc_sshbuf b;
    const unsigned char *name = NULL;
    size_t nlen = 0;
    struct pc_sshkey *k = NULL;
    enum pc_keytype t;
    int rc;

    if (len > PC_SSHKEY_BLOB_MAX)
        return PC_ERR_TOOBIG;
    pc_sshbuf_init_reader(&b, blob, len);
    if ((rc = pc_sshbuf_get_string(&b, &name, &nlen)) != 0)
        return rc;
    t = pc_sshkey_type_from_name((const char *)name, nlen);
    if (t == PC_KEY_UNKNOWN)
        return PC_ERR_INVAL;
    if ((rc = pc_sshkey_read_fields(&b, t, &k)) != 0)
        return rc;
    if ((rc = pc_sshbuf_expect_end(&b)) != 0) {
        pc_sshkey_free(k);
        return rc;
    }
    *out = k;
    return PC_OK;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

int pc_sshkey_decode_line(const char *line, char **type, unsigned char **blob, size_t *len,
                          char **comment)
{
    const char *p = line, *t0, *b0, *c0, *end;
    unsigned char *raw = NULL;
    size_t rawlen = 0, tlen, llen = strnlen(line, PC_SSHKEY_LINE_MAX + 1);
    struct pc_sshbuf b;
    char *ty = NULL, *cm = NULL;
    int rc;

    if (llen > PC_SSHKEY_LINE_MAX)
        return PC_ERR_TOOBIG;
    end = line + llen;
    while (end > line && (is_space(end[-1]) || end[-1] == '\n' || end[-1] == '\r'))
        end--;
    if (memchr(line, '\n', (size_t)(end - line)) || memchr(line, '\r', (size_t)(end - line)))
        return PC_ERR_PARSE; /* one line only */
    while (p < end && is_space(*p))
        p++;
    for (t0 = p; p < end && !is_space(*p); p++)
        ;
    tlen = (size_t)(p - t0);
    while (p < end && is_space(*p))
        p++;
    for (b0 = p; p < end && !is_space(*p); p++)
        ;
    if (tlen == 0 || p == b0)
        return PC_ERR_PARSE;
    if ((rc = pc_base64_decode(b0, (size_t)(p - b0), &raw, &rawlen)) != 0)
        return rc;
    while (p < end && is_space(*p))
        p++;
    c0 = p;
    pc_sshbuf_init_reader(&b, raw, rawlen);
    ty = strndup(t0, tlen);
    if (!ty) {
        rc = PC_ERR_NOMEM;
        goto out;
    }
    if ((rc = pc_sshbuf_get_expect_cstring(&b, ty)) != 0)
        goto out; /* the word before the base64 must name the blob's own type */
    if (comment && c0 < end && !(cm = strndup(c0, (size_t)(end - c0)))) {
        rc = PC_ERR_NOMEM;
        goto out;
    }
    *type = ty;
    *blob = raw;
    *len = rawlen;
    if (comment)
        *comment = cm;
    ty = NULL;
    raw = NULL;
    rc = PC_OK;
out:
    free(ty);
    free(raw);
    return rc;
}

int pc_sshkey_parse_line(const char *line, struct pc_sshkey **out, char **comment)
{
    char *type = NULL, *cm = NULL;
    unsigned char *blob = NULL;
    size_t len = 0;
    int rc;

    if ((rc = pc_sshkey_decode_line(line, &type, &blob, &len, comment ? &cm : NULL)) != 0)
        return rc;
    if ((rc = pc_sshkey_from_blob(blob, len, out)) != 0)
        goto out;
    if (comment) {
        *comment = cm;
        cm = NULL;
    }
out:
    free(type);
    free(blob);
    free(cm);
    return rc;
}

/* ---- writing public keys -------------------------------------------------------------------- */

int pc_sshkey_put_fields(const struct pc_sshkey *k, struct pc_sshbuf *b)
{
    unsigned char tmp[1 + 2 * 66];
    size_t n = sizeof tmp;
    BIGNUM *e = NULL, *mod = NULL;

    if (k->type == PC_KEY_ED25519) {
        if (EVP_PKEY_get_raw_public_key(k->pkey, tmp, &n) != 1 || n != 32)
            return PC_ERR_CRYPTO;
        return pc_sshbuf_put_string(b, tmp, n);
    }
    if (is_ecdsa(k->type)) {
        if (EVP_PKEY_get_octet_string_param(k->pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, tmp,
                                            sizeof tmp, &n) != 1 ||
            n == 0 || tmp[0] != 0x04)
            return PC_ERR_CRYPTO;
        pc_sshbuf_put_cstring(b, pc_sshkey_curve_name(k->type));
        return pc_sshbuf_put_string(b, tmp, n);
    }
    if (k->type == PC_KEY_RSA) {
        if (EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_RSA_E, &e) != 1 ||
            EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_RSA_N, &mod) != 1) {
            BN_free(e);
            return PC_ERR_CRYPTO;
        }
        pc_sshbuf_put_bignum(b, e);
        pc_sshbuf_put_bignum(b, mod);
        BN_free(e);
        BN_free(mod);
        return pc_sshbuf_error(b);
    }
    return PC_ERR_INVAL;
}

int pc_sshkey_put_blob(const struct pc_sshkey *k, struct pc_sshbuf *b)
{
    const char *name = pc_sshkey_type_name(k->type);
    if (!name)
        return PC_ERR_INVAL;
    if (pc_sshbuf_put_cstring(b, name) != 0)
        return pc_sshbuf_error(b);
    return pc_sshkey_put_fields(k, b);
}

int pc_sshkey_to_blob(const struct pc_sshkey *k, unsigned char **blob, size_t *len)
{
    struct pc_sshbuf b;
    int rc;

    pc_sshbuf_init(&b, PC_SSHKEY_BLOB_MAX);
    if ((rc = pc_sshkey_put_blob(k, &b)) == 0)
        rc = pc_sshbuf_steal(&b, blob, len);
    pc_sshbuf_free(&b);
    return rc;
}

int pc_sshkey_to_line(const struct pc_sshkey *k, const char *comment, char **line)
{
    unsigned char *blob = NULL;
    size_t len = 0, n;
    char *b64 = NULL, *s;
    const char *name = pc_sshkey_type_name(k->type);
    int rc;

    if ((rc = pc_sshkey_to_blob(k, &blob, &len)) != 0)
        goto out;
    if ((rc = pc_base64_encode(blob, len, &b64)) != 0)
        goto out;
    n = strlen(name) + 1 + strlen(b64) + (comment ? 1 + strlen(comment) : 0) + 1;
    if (!(s = malloc(n))) {
        rc = PC_ERR_NOMEM;
        goto out;
    }
    snprintf(s, n, "%s %s%s%s", name, b64, comment ? " " : "", comment ? comment : "");
    *line = s;
out:
    free(blob);
    free(b64);
    return rc;
}

int pc_sshkey_fingerprint_blob(const unsigned char *blob, size_t len, char out[PC_SSHKEY_FP_SIZE])
{
    unsigned char md[32];
    char *b64 = NULL;
    size_t n;
    int rc;

    if (EVP_Digest(blob, len, md, NULL, EVP_sha256(), NULL) != 1)
        return PC_ERR_CRYPTO;
    if ((rc = pc_base64_encode(md, sizeof md, &b64)) != 0)
        return rc;
    n = strlen(b64);
    while (n > 0 && b64[n - 1] == '=')
        n--;
    snprintf(out, PC_SSHKEY_FP_SIZE, "SHA256:%.*s", (int)n, b64);
    free(b64);
    return PC_OK;
}

int pc_sshkey_fingerprint(const struct pc_sshkey *k, char out[PC_SSHKEY_FP_SIZE])
{
    unsigned char *blob = NULL;
    size_t len = 0;
    int rc = pc_sshkey_to_blob(k, &blob, &len);
    if (rc == 0)
        rc = pc_sshkey_fingerprint_blob(blob, len, out);
    free(blob);
    return rc;
}

int pc_sshkey_sha256(const struct pc_sshkey *k, unsigned char out[32])
{
    unsigned char *blob = NULL;
    size_t len = 0;
    int rc = pc_sshkey_to_blob(k, &blob, &len);
    if (rc == 0 && EVP_Digest(blob, len, out, NULL, EVP_sha256(), NULL) != 1)
        rc = PC_ERR_CRYPTO;
    free(blob);
    return rc;
}

int pc_sshkey_equal(const struct pc_sshkey *a, const struct pc_sshkey *b)
{
    unsigned char *ba = NULL, *bb = NULL;
    size_t la = 0, lb = 0;
    int eq = 0;

    if (a && b && a->type == b->type && pc_sshkey_to_blob(a, &ba, &la) == 0 &&
        pc_sshkey_to_blob(b, &bb, &lb) == 0)
        eq = la == lb && memcmp(ba, bb, la) == 0;
    free(ba);
    free(bb);
    return eq;
}

/* ---- CA private keys -------------------------------------------------------------------- */

static int type_of_pkey(EVP_PKEY *pkey, enum pc_keytype *t)
{
    char group[64];

    if (EVP_PKEY_is_a(pkey, "ED25519")) {
        *t = PC_KEY_ED25519;
        return PC_OK;
    }
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        *t = PC_KEY_RSA;
        return EVP_PKEY_get_bits(pkey) >= PC_RSA_MIN_BITS ? PC_OK : PC_ERR_INVAL;
    }
    if (EVP_PKEY_is_a(pkey, "EC") &&
        EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                       NULL) == 1) {
        for (size_t i = 0; i < N_TYPES; i++)
            if (key_types[i].group && strcmp(group, key_types[i].group) == 0) {
                *t = key_types[i].type;
                return PC_OK;
            }
    }
    return PC_ERR_INVAL;
}

int pc_sshkey_generate(enum pc_keytype t, struct pc_sshkey **out)
{
    EVP_PKEY *pkey = NULL;
    int i = type_index(t);

    if (t == PC_KEY_ED25519)
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    else if (is_ecdsa(t))
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", key_types[i].group);
    else if (t == PC_KEY_RSA)
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)PC_RSA_CA_BITS);
    else
        return PC_ERR_INVAL;
    if (!pkey)
        return PC_ERR_CRYPTO;
    return key_wrap(t, pkey, 1, out);
}

int pc_sshkey_has_private(const struct pc_sshkey *k)
{
    return k && k->has_private;
}

int pc_sshkey_public_dup(const struct pc_sshkey *k, struct pc_sshkey **out)
{
    unsigned char *blob = NULL;
    size_t len = 0;
    int rc = pc_sshkey_to_blob(k, &blob, &len);
    if (rc == 0)
        rc = pc_sshkey_from_blob(blob, len, out);
    free(blob);
    return rc;
}

int pc_sshkey_save_private(const struct pc_sshkey *k, const char *path)
{
    BIO *bio = NULL;
    char *pem = NULL;
    long n;
    int rc = PC_ERR_CRYPTO;

    if (!pc_sshkey_has_private(k))
        return PC_ERR_INVAL;
    bio = BIO_new(BIO_s_secmem());
    if (!bio)
        return PC_ERR_NOMEM;
    if (PEM_write_bio_PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL) != 1)
        goto out;
    n = BIO_get_mem_data(bio, &pem);
    if (n <= 0)
        goto out;
    rc = pc_write_file_atomic(path, pem, (size_t)n, 0600);
    OPENSSL_cleanse(pem, (size_t)n);
out:
    BIO_free(bio);
    return rc;
}

/* Never prompt on a terminal for a passphrase: an encrypted key simply fails to load. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

int pc_sshkey_load_private(const char *path, struct pc_sshkey **out)
{
    struct stat st;
    char *pem = NULL;
    size_t len = 0;
    BIO *bio = NULL;
    EVP_PKEY *pkey = NULL;
    enum pc_keytype t = PC_KEY_UNKNOWN;
    int rc;

    if (stat(path, &st) != 0)
        return PC_ERR_IO;
    if (st.st_mode & 077)
        return PC_ERR_INVAL; /* a CA key others can read is not a CA key any more */
    if ((rc = pc_read_file(path, 64 * 1024, &pem, &len)) != 0)
        return rc;
    rc = PC_ERR_CRYPTO;
    bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio || !(pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL)))
        goto out;
    if ((rc = type_of_pkey(pkey, &t)) != 0)
        goto out;
    rc = key_wrap(t, pkey, 1, out);
    pkey = NULL;
out:
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    pc_free_secret(pem, len);
    ERR_clear_error();
    return rc;
}
