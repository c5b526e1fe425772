/* SPDX-License-Identifier: BSD-2-Clause */
/* The HTTPS server: libmicrohttpd with a fixed pool of worker threads, request bodies bounded,
 * routes matched, callers identified and checked before any handler runs. */
#ifndef CP_SERVER_H
#define CP_SERVER_H
#include "cp_settings.h"
#include <microhttpd.h>
#include <stddef.h>

int cp_server_start(const struct cp_settings *s, const char *key_pem, const char *cert_pem,
                    char *err, size_t errsz);
void cp_server_stop(void);
/* The peer's numeric address ("unknown" if none), for audit rows; also the web listener's. */
void cp_client_address(struct MHD_Connection *conn, char *out, size_t n);

#endif
