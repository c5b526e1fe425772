/* SPDX-License-Identifier: BSD-2-Clause */
/* The control plane's TLS identity: an ECDSA P-256 key and a self-signed certificate made on
 * first start, and the public-key pin clients use (sha256 of the SubjectPublicKeyInfo, base64). */
#ifndef CP_TLS_H
#define CP_TLS_H
#include <stddef.h>

#define CP_PIN_MAX 64

/* Creates DIR/tls.key (0600) and DIR/tls.crt (0644) if missing; loads both as PEM. */
int cp_tls_load_or_create(const char *dir, char **key_pem, char **cert_pem, char *err,
                          size_t errsz);
/* "sha256//BASE64" of the certificate's public key. */
int cp_tls_pin(const char *cert_pem, char pin[CP_PIN_MAX], char *err, size_t errsz);

#endif
