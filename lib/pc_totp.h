/* SPDX-License-Identifier: BSD-2-Clause */
/* TOTP (RFC 6238, HMAC-SHA1, 6 digits, 30 s) over liboath, plus the otpauth:// URI. */
#ifndef PC_TOTP_H
#define PC_TOTP_H
#include <stddef.h>
#include <stdint.h>

#define PC_TOTP_PERIOD 30
#define PC_TOTP_DIGITS 6
#define PC_TOTP_SECRET_BYTES 20 /* 160-bit seeds, as RFC 4226 recommends */

int pc_totp_init(void); /* once per process, before threads */
/* The code for time t into out[PC_TOTP_DIGITS + 1]. */
int pc_totp_code(const unsigned char *secret, size_t len, int64_t t, char *out, size_t outsz);
/* Checks code against the steps now±window. PC_OK with *step = the matched time step
 * (t / 30), PC_ERR_AUTH if it matches none, PC_ERR_INVAL if code is not exactly 6 digits.
 * The comparison is constant-time. */
int pc_totp_verify(const unsigned char *secret, size_t len, int64_t now, unsigned window,
                   const char *code, uint64_t *step);
/* "otpauth://totp/Portcullis:NAME?secret=BASE32&issuer=Portcullis&algorithm=SHA1&digits=6&period=30"
 * The caller frees *out with pc_free_secret_str (it holds the seed). NAME is percent-encoded. */
int pc_totp_uri(const char *account, const unsigned char *secret, size_t len, char **out);

#endif
