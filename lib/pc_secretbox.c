/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "pc_secretbox.h"
#include "pc_err.h"
#include "pc_fs.h"
#include "pc_mem.h"
#include "pc_rand.h"
#include <openssl/evp.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define SEALED_VERSION 0x01
#define NONCE 12
#define TAG 16

static int gcm(int enc, const unsigned char *key, const unsigned char *nonce, const char *ad,
               const unsigned char *in, size_t len, unsigned char *out, unsigned char *tag)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, rc = PC_ERR_CRYPTO;
    size_t adlen = ad ? strlen(ad) : 0;

    if (!ctx)
        return PC_ERR_NOMEM;
    if (len > INT_MAX || adlen > INT_MAX)
        goto out;
    if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE, NULL) != 1 ||
        EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, enc) != 1)
        goto out;
    if (adlen && EVP_CipherUpdate(ctx, NULL, &n, (const unsigned char *)ad, (int)adlen) != 1)
        goto out;
    if (len && EVP_CipherUpdate(ctx, out, &n, in, (int)len) != 1)
        goto out;
    if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG, tag) != 1)
        goto out;
    if (EVP_CipherFinal_ex(ctx, out + n, &n) != 1)
        goto out; /* on decrypt: the tag did not verify */
    if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG, tag) != 1)
        goto out;
    rc = PC_OK;
out:
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

int pc_secretbox_seal(const unsigned char key[PC_SECRETBOX_KEY_BYTES], const char *ad,
                      const unsigned char *plain, size_t len, unsigned char *out, size_t outsz,
                      size_t *outlen)
{
    int rc;

    if (outsz < len + PC_SECRETBOX_OVERHEAD)
        return PC_ERR_TOOBIG;
    out[0] = SEALED_VERSION;
    if ((rc = pc_random_bytes(out + 1, NONCE)) != PC_OK)
        return rc;
    rc = gcm(1, key, out + 1, ad, plain, len, out + 1 + NONCE, out + 1 + NONCE + len);
    if (rc != PC_OK) {
        pc_wipe(out, outsz);
        return rc;
    }
    *outlen = len + PC_SECRETBOX_OVERHEAD;
    return PC_OK;
}

int pc_secretbox_open(const unsigned char key[PC_SECRETBOX_KEY_BYTES], const char *ad,
                      const unsigned char *sealed, size_t len, unsigned char *out, size_t outsz,
                      size_t *outlen)
{
    unsigned char tag[TAG];
    size_t plen;
    int rc;

    pc_wipe(out, outsz); /* whatever happens, out never holds stale or partial plaintext */
    if (len < PC_SECRETBOX_OVERHEAD || sealed[0] != SEALED_VERSION)
        return PC_ERR_CRYPTO;
    plen = len - PC_SECRETBOX_OVERHEAD;
    if (outsz < plen)
        return PC_ERR_TOOBIG;
    memcpy(tag, sealed + 1 + NONCE + plen, TAG);
    rc = gcm(0, key, sealed + 1, ad, sealed + 1 + NONCE, plen, out, tag);
    if (rc != PC_OK) {
        pc_wipe(out, outsz); /* never hand out unauthenticated plaintext */
        return PC_ERR_CRYPTO;
    }
    *outlen = plen;
    return PC_OK;
}

int pc_secretbox_load_key(const char *path, int create, unsigned char key[PC_SECRETBOX_KEY_BYTES],
                          char *err, size_t errsz)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    struct stat st;
    int rc;

    if (stat(path, &st) != 0) {
        if (errno != ENOENT || !create) {
            snprintf(err, errsz, "%s: %s", path, strerror(errno));
            return PC_ERR_IO;
        }
        if ((rc = pc_random_bytes(key, PC_SECRETBOX_KEY_BYTES)) != PC_OK)
            return rc;
        rc = pc_write_file_atomic(path, key, PC_SECRETBOX_KEY_BYTES, 0600);
        if (rc != PC_OK)
            snprintf(err, errsz, "%s: cannot write the key file", path);
        return rc;
    }
    if ((st.st_mode & 077) != 0) {
        snprintf(err, errsz, "%s: mode %03o is too open; it must be 0600", path,
                 (unsigned)(st.st_mode & 0777));
        return PC_ERR_INVAL;
    }
    rc = pc_read_file(path, 4096, (char **)&buf, &len);
    if (rc != PC_OK) {
        snprintf(err, errsz, "%s: cannot read the key file", path);
        return rc;
    }
    if (len != PC_SECRETBOX_KEY_BYTES) {
        snprintf(err, errsz, "%s: expected %d bytes, found %zu", path, PC_SECRETBOX_KEY_BYTES, len);
        rc = PC_ERR_INVAL;
    } else {
        memcpy(key, buf, PC_SECRETBOX_KEY_BYTES);
    }
    pc_free_secret(buf, len);
    return rc;
}
