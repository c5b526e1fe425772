/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "pc_totp.h"
#include "pc_err.h"
#include "pc_mem.h"
#include "pc_sshbuf.h"
#include <liboath/oath.h>
#include <openssl/crypto.h>
#include <ctype.h>
#include <string.h>

int pc_totp_init(void)
{
    return oath_init() == OATH_OK ? PC_OK : PC_ERR_CRYPTO;
}

int pc_totp_code(const unsigned char *secret, size_t len, int64_t t, char *out, size_t outsz)
{
    if (outsz < PC_TOTP_DIGITS + 1 || t < 0)
        return PC_ERR_INVAL;
    if (oath_totp_generate((const char *)secret, len, (time_t)t, PC_TOTP_PERIOD, 0, PC_TOTP_DIGITS,
                           out) != OATH_OK)
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

int pc_totp_uri(const char *account, const unsigned char *secret, size_t len, char **out)
{
    struct pc_sshbuf b;
    unsigned char *uri = NULL;
    size_t urilen = 0;
    char *b32 = NULL;
    size_t b32len = 0;
    int rc;
    static const char tail[] = "&issuer=Portcullis&algorithm=SHA1&digits=6&period=30";

    *out = NULL;
    if (oath_base32_encode((const char *)secret, len, &b32, &b32len) != OATH_OK)
        return PC_ERR_CRYPTO;
    /* The URI holds the seed: a secret buffer, wiped when it grows and when it is freed. */
    pc_sshbuf_init_secret(&b, 0);
    /* Authenticator apps expect the secret without '=' padding. */
    while (b32len > 0 && b32[b32len - 1] == '=')
        b32[--b32len] = '\0';
    pc_sshbuf_putf(&b, "otpauth://totp/Portcullis:");
    for (const char *p = account; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
            pc_sshbuf_put_u8(&b, c);
        else
            pc_sshbuf_putf(&b, "%%%02X", c);
    }
    /* The seed goes in by copy, not through vsnprintf (whose scratch space is not wiped). */
    pc_sshbuf_putf(&b, "?secret=");
    pc_sshbuf_put_raw(&b, b32, b32len);
    pc_sshbuf_put_raw(&b, tail, sizeof tail - 1);
    if ((rc = pc_sshbuf_steal(&b, &uri, &urilen)) != PC_OK)
        goto out;
    *out = (char *)uri; /* NUL-terminated: a writer keeps a NUL after its contents */
out:
    pc_sshbuf_free(&b);
    pc_free_secret(b32, b32len);
    return rc;
}
