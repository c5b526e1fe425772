/* SPDX-License-Identifier: BSD-2-Clause */
#include "pc_err.h"
#include <stdarg.h>
#include <stdio.h>

const char *pc_strerror(int err)
{
    switch (err) {
    case PC_OK: return "ok";
    case PC_ERR_NOMEM: return "out of memory";
    case PC_ERR_IO: return "I/O error";
    case PC_ERR_PARSE: return "malformed input";
    case PC_ERR_INVAL: return "invalid value";
    case PC_ERR_CRYPTO: return "cryptographic failure";
    case PC_ERR_NOTFOUND: return "not found";
    case PC_ERR_EXISTS: return "already exists";
    case PC_ERR_AUTH: return "authentication refused";
    case PC_ERR_TLS: return "TLS failure";
    case PC_ERR_TIMEOUT: return "timed out";
    case PC_ERR_NET: return "network failure";
    case PC_ERR_STORE: return "store failure";
    case PC_ERR_STATE: return "not allowed in this state";
    case PC_ERR_TOOBIG: return "input too large";
    default: return "unknown error";
    }
}

int pc_errf(char *err, size_t errsz, int rc, const char *fmt, ...)
{
    va_list ap;

    if (err && errsz) {
        va_start(ap, fmt);
        vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
    }
    return rc;
}
