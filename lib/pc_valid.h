/* SPDX-License-Identifier: BSD-2-Clause */
/* The forms of the names and values that cross process boundaries, checked one way everywhere:
 * the agent, the control plane, the CLI and lib/ use these and no copies of their own. Each is
 * a whitelist of plain ASCII, so no NUL, control character, space, quote or non-ASCII byte
 * (bidirectional overrides included) passes any of them. 1 when s has the form, else 0. */
#ifndef PC_VALID_H
#define PC_VALID_H
#include <stddef.h>

#define PC_HOSTNAME_MAX 253 /* a DNS name's longest text form */
#define PC_BEARER_TOKEN_MAX 1024
#define PC_PRINCIPAL_MAX 255 /* = PC_CERT_NAME_MAX */

/* A host name as enrolled: 1..PC_HOSTNAME_MAX bytes of [A-Za-z0-9._-]. */
int pc_valid_hostname(const char *s);
/* A bearer token for an "Authorization: Bearer" header: 1..PC_BEARER_TOKEN_MAX bytes of visible
 * ASCII (0x21..0x7e): no space, CR or LF to split the header line. */
int pc_valid_bearer_token(const char *s);
/* An id or token as we make them (pc_random_hex, pc_token_new): min..max lower-case hex digits. */
int pc_valid_hex(const char *s, size_t min, size_t max);
/* A certificate principal, s[0..len): 1..PC_PRINCIPAL_MAX bytes of [A-Za-z0-9._@+$:-], not
 * starting with '-' (it would read as an option). A NUL inside len fails. */
int pc_valid_principal(const char *s, size_t len);

#endif
