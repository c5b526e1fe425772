/* SPDX-License-Identifier: BSD-2-Clause */
/* Error codes shared by every Portcullis component.
 * Functions return 0 on success or one of these negative values. */
#ifndef PC_ERR_H
#define PC_ERR_H

enum pc_err {
    PC_OK = 0,
    PC_ERR_NOMEM = -1,    /* allocation failed */
    PC_ERR_IO = -2,       /* file or socket I/O failed */
    PC_ERR_PARSE = -3,    /* malformed input (config, JSON, wire format) */
    PC_ERR_INVAL = -4,    /* a value out of its allowed set or range */
    PC_ERR_CRYPTO = -5,   /* OpenSSL failure, or authentication tag mismatch */
    PC_ERR_NOTFOUND = -6, /* no such user, token, transaction … */
    PC_ERR_EXISTS = -7,   /* already there */
    PC_ERR_AUTH = -8,     /* credentials refused */
    PC_ERR_TLS = -9,      /* TLS failure, including a pin mismatch: never fail open on it */
    PC_ERR_TIMEOUT = -10, /* deadline passed */
    PC_ERR_NET = -11,     /* peer unreachable / connection reset */
    PC_ERR_STORE = -12,   /* database failure */
    PC_ERR_STATE = -13,   /* operation not allowed in the current state */
    PC_ERR_TOOBIG = -14,  /* input larger than its bound */
};

/* A short, static, human-readable description. */
const char *pc_strerror(int err);

#include <stddef.h>
/* Writes the sentence (printf-style) into err (errsz bytes, may be 0) and returns rc: for
 * `return pc_errf(err, errsz, PC_ERR_NET, "cannot reach %s", url);`. */
int pc_errf(char *err, size_t errsz, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
