/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "pc_totp.h"
#include "pc_err.h"
#include "pc_mem.h"
#include <liboath/oath.h>
#include <openssl/crypto.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pc_totp_init(void)
{
    return oath_init() == OATH_OK ? PC_OK : PC_ERR_CRYPTO;
}

int pc_totp_code(const unsigned char *secret, size_t len, int64_t t, char *out, size_t outsz)
{
    if (outsz < PC_TOTP_DIGITS + 1 || t < 0)
        return PC_ERR_INVAL;
    if (oath_totp_generate((const char *)secret, len, (time_t)t, PC_TOTP_PERIOD, 0,
                           PC_TOTP_DIGITS, out) != OATH_OK)
        return PC_ERR_CRYPTO;
    return PC_OK;
}

/* liboath calls this for each candidate; 0 means "equal". */
static int ct_compare(void *handle, const char *candidate)
{
    const char *given = handle;
    return CRYPTO_memcmp(given, candidate, PC_TOTP_DIGITS) == 0 ? 0 : 1;
}

int pc_totp_verify(const unsigned char *secret, size_t len, int64_t now, unsigned window,
                   const char *code, uint64_t *step)
{
    char given[PC_TOTP_DIGITS + 1];
    int pos = 0, rc;
    uint64_t counter = 0;

    if (!code || strlen(code) != PC_TOTP_DIGITS || now < 0)
        return PC_ERR_INVAL;
    for (int i = 0; i < PC_TOTP_DIGITS; i++)
        if (!isdigit((unsigned char)code[i]))
            return PC_ERR_INVAL;
    memcpy(given, code, sizeof given);
    rc = oath_totp_validate3_callback((const char *)secret, len, (time_t)now, PC_TOTP_PERIOD, 0,
                                      PC_TOTP_DIGITS, window, &pos, &counter, ct_compare, given);
    pc_wipe(given, sizeof given);
    if (rc < 0)
        return rc == OATH_INVALID_OTP ? PC_ERR_AUTH : PC_ERR_CRYPTO;
    *step = counter;
    return PC_OK;
}

static int append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t ncap = (*len + n + 1) * 2;
        char *nb = malloc(ncap);
        if (!nb)
            return PC_ERR_NOMEM;
        if (*buf) {
            memcpy(nb, *buf, *len);
            pc_free_secret(*buf, *cap);
        }
        *buf = nb;
        *cap = ncap;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
    return PC_OK;
}

int pc_totp_uri(const char *account, const unsigned char *secret, size_t len, char **out)
{
    char *b32 = NULL, *buf = NULL;
    size_t b32len = 0, blen = 0, cap = 0;
    int rc = PC_ERR_NOMEM;
    static const char tail[] = "&issuer=Portcullis&algorithm=SHA1&digits=6&period=30";

    *out = NULL;
    if (oath_base32_encode((const char *)secret, len, &b32, &b32len) != OATH_OK)
        return PC_ERR_CRYPTO;
    /* Authenticator apps expect the secret without '=' padding. */
    while (b32len > 0 && b32[b32len - 1] == '=')
        b32[--b32len] = '\0';
    if ((rc = append(&buf, &blen, &cap, "otpauth://totp/Portcullis:", 26)) != PC_OK)
        goto out;
    for (const char *p = account; *p; p++) {
        char enc[4];
        unsigned char c = (unsigned char)*p;
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            rc = append(&buf, &blen, &cap, (const char *)&c, 1);
        } else {
            snprintf(enc, sizeof enc, "%%%02X", c);
            rc = append(&buf, &blen, &cap, enc, 3);
        }
        if (rc != PC_OK)
            goto out;
    }
    if ((rc = append(&buf, &blen, &cap, "?secret=", 8)) != PC_OK ||
        (rc = append(&buf, &blen, &cap, b32, b32len)) != PC_OK ||
        (rc = append(&buf, &blen, &cap, tail, sizeof tail - 1)) != PC_OK)
        goto out;
    *out = buf;
    buf = NULL;
out:
    pc_free_secret(buf, cap);
    pc_free_secret(b32, b32len);
    return rc;
}
