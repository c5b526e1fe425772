/* SPDX-License-Identifier: BSD-2-Clause */
/* Secrets at rest: AES-256-GCM with a 256-bit key kept in a file outside the database.
 * Sealed format: 0x01 | nonce (12) | ciphertext | tag (16). The associated data (e.g. "totp:alice")
 * binds a ciphertext to its row, so a seed copied to another user's row does not open. */
#ifndef PC_SECRETBOX_H
#define PC_SECRETBOX_H
#include <stddef.h>

#define PC_SECRETBOX_KEY_BYTES 32
#define PC_SECRETBOX_OVERHEAD (1 + 12 + 16)

/* out must hold len + PC_SECRETBOX_OVERHEAD bytes. */
int pc_secretbox_seal(const unsigned char key[PC_SECRETBOX_KEY_BYTES], const char *ad,
                      const unsigned char *plain, size_t len, unsigned char *out, size_t outsz,
                      size_t *outlen);
/* PC_ERR_CRYPTO if the tag, the version, the associated data or the key is wrong.
 * out must hold len - PC_SECRETBOX_OVERHEAD bytes. */
int pc_secretbox_open(const unsigned char key[PC_SECRETBOX_KEY_BYTES], const char *ad,
                      const unsigned char *sealed, size_t len, unsigned char *out, size_t outsz,
                      size_t *outlen);
/* Loads the key file; if it does not exist and create is set, makes a new random one (0600,
 * written atomically). A file of the wrong size or mode wider than 0600 is refused. */
int pc_secretbox_load_key(const char *path, int create, unsigned char key[PC_SECRETBOX_KEY_BYTES],
                          char *err, size_t errsz);

#endif
