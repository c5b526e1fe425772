/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "cp_tls.h"
#include "pc_err.h"
#include "pc_fs.h"
#include "pc_mem.h"
#include "pc_rand.h"
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int pem_of_key(EVP_PKEY *k, char **out, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p;
    long n;
    int rc = PC_ERR_CRYPTO;

    if (!b)
        return PC_ERR_NOMEM;
    if (PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) == 1 &&
        (n = BIO_get_mem_data(b, &p)) > 0) {
        *out = OPENSSL_memdup(p, (size_t)n);
        *len = (size_t)n;
        rc = *out ? PC_OK : PC_ERR_NOMEM;
    }
    BIO_free_all(b); /* BIO_s_mem frees (not wipes) its buffer; the key lives on disk anyway */
    return rc;
}

static int pem_of_cert(X509 *x, char **out, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p;
    long n;
    int rc = PC_ERR_CRYPTO;

    if (!b)
        return PC_ERR_NOMEM;
    if (PEM_write_bio_X509(b, x) == 1 && (n = BIO_get_mem_data(b, &p)) > 0) {
        *out = OPENSSL_memdup(p, (size_t)n);
        *len = (size_t)n;
        rc = *out ? PC_OK : PC_ERR_NOMEM;
    }
    BIO_free_all(b);
    return rc;
}

static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return 0;
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

static int make_identity(const char *keypath, const char *certpath)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = NULL;
    X509_NAME *name;
    char *kpem = NULL, *cpem = NULL;
    size_t klen = 0, clen = 0;
    unsigned char serial[16];
    BIGNUM *bn = NULL;
    int rc = PC_ERR_CRYPTO;

    if (!k || !(x = X509_new()))
        goto out;
    if (pc_random_bytes(serial, sizeof serial) != PC_OK)
        goto out;
    serial[0] &= 0x7f;
    if (!(bn = BN_bin2bn(serial, sizeof serial, NULL)) ||
        !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
        goto out;
    X509_set_version(x, 2);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 86400);
    X509_set_pubkey(x, k);
    name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"portcullisd", -1,
                               -1, 0);
    X509_set_issuer_name(x, name);
    if (!add_ext(x, NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(x, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1") ||
        !add_ext(x, NID_ext_key_usage, "serverAuth"))
        goto out;
    if (X509_sign(x, k, EVP_sha256()) == 0)
        goto out;
    if ((rc = pem_of_key(k, &kpem, &klen)) != PC_OK || (rc = pem_of_cert(x, &cpem, &clen)) != PC_OK)
        goto out;
    /* Key first: a crash between the two leaves a key without a cert, which the next start
     * detects and regenerates; never a cert whose key is missing. */
    if ((rc = pc_write_file_atomic(keypath, kpem, klen, 0600)) != PC_OK)
        goto out;
    rc = pc_write_file_atomic(certpath, cpem, clen, 0644);
out:
    if (kpem)
        OPENSSL_clear_free(kpem, klen);
    OPENSSL_free(cpem);
    BN_free(bn);
    X509_free(x);
    EVP_PKEY_free(k);
    return rc;
}

int cp_tls_load_or_create(const char *dir, char **key_pem, char **cert_pem, char *err, size_t errsz)
{
    char kp[PATH_MAX], cp[PATH_MAX];
    size_t klen, clen;
    int rc;

    *key_pem = *cert_pem = NULL;
    if (snprintf(kp, sizeof kp, "%s/tls.key", dir) >= (int)sizeof kp ||
        snprintf(cp, sizeof cp, "%s/tls.crt", dir) >= (int)sizeof cp) {
        snprintf(err, errsz, "%s: path too long", dir);
        return PC_ERR_INVAL;
    }
    rc = pc_read_file(cp, 65536, cert_pem, &clen);
    if (rc == PC_ERR_NOTFOUND) {
        if ((rc = make_identity(kp, cp)) != PC_OK) {
            snprintf(err, errsz, "%s: cannot create the TLS key and certificate", dir);
            return rc;
        }
        rc = pc_read_file(cp, 65536, cert_pem, &clen);
    }
    if (rc != PC_OK) {
        snprintf(err, errsz, "%s: cannot read: %s", cp, pc_strerror(rc));
        return rc;
    }
    rc = pc_read_file(kp, 65536, key_pem, &klen);
    if (rc != PC_OK) {
        snprintf(err, errsz, "%s: cannot read: %s (remove %s to make a new identity)", kp,
                 pc_strerror(rc), cp);
        free(*cert_pem);
        *cert_pem = NULL;
        return rc;
    }
    return PC_OK;
}

int cp_tls_pin(const char *cert_pem, char pin[CP_PIN_MAX], char *err, size_t errsz)
{
    BIO *b = BIO_new_mem_buf(cert_pem, -1);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    unsigned char *der = NULL, md[32];
    unsigned int mdlen = 0;
    int n, rc = PC_ERR_CRYPTO;

    if (!x) {
        snprintf(err, errsz, "tls.crt is not a PEM certificate");
        goto out;
    }
    n = i2d_PUBKEY(X509_get0_pubkey(x), &der);
    if (n <= 0 || EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL) != 1)
        goto out;
    memcpy(pin, "sha256//", 8);
    EVP_EncodeBlock((unsigned char *)pin + 8, md, 32); /* 44 chars + NUL */
    rc = PC_OK;
out:
    OPENSSL_free(der);
    X509_free(x);
    BIO_free(b);
    return rc;
}
