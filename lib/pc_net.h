/* SPDX-License-Identifier: BSD-2-Clause */
/* A TCP connection to host:port within a deadline, the name lookup included: the HTTPS client
 * (pc_http.c) must give up at its deadline even when the resolver hangs. */
#ifndef PC_NET_H
#define PC_NET_H
#include <stddef.h>
#include <stdint.h>

/* Resolves host (a name, or an IPv4/IPv6 literal without brackets) and connects to the first
 * address that answers, trying each in turn, by deadline_ms (pc_now_ms() clock). *fd: a
 * connected non-blocking socket with TCP_NODELAY and SO_KEEPALIVE, close-on-exec. PC_OK;
 * PC_ERR_TIMEOUT (the deadline passed: in the lookup or the connects); PC_ERR_NET (no such
 * name, refused, unreachable; err names the last reason); PC_ERR_NOMEM. */
int pc_net_connect(const char *host, const char *port, int64_t deadline_ms, int *fd, char *err,
                   size_t errsz);

#endif
