/* SPDX-License-Identifier: BSD-2-Clause */
/* Randomness and token hashing (OpenSSL's CSPRNG). */
#ifndef PC_RAND_H
#define PC_RAND_H
#include <stddef.h>

#define PC_TOKEN_BYTES 32                     /* 256-bit tokens */
#define PC_TOKEN_HEX_LEN (PC_TOKEN_BYTES * 2) /* without the NUL */
#define PC_SHA256_HEX_LEN 64

int pc_random_bytes(void *buf, size_t n);
/* A fresh random token as lower-case hex into out[PC_TOKEN_HEX_LEN + 1]. */
int pc_token_new(char out[PC_TOKEN_HEX_LEN + 1]);
/* Random hex id of nbytes random bytes into out (size >= 2*nbytes+1). */
int pc_random_hex(char *out, size_t outsz, size_t nbytes);
/* An id of nbytes (at least PC_ORDERED_ID_MIN) as lower-case hex into out (size >= 2*nbytes+1):
 * the first 6 bytes are the wall clock in milliseconds, big-endian, the rest random. Ids made
 * one after another sort in time, so a B-tree keyed by them (a primary key, an index) takes a
 * new one on its rightmost page, which the next commit rewrites anyway, instead of on a random
 * page of its own (issue 16: fewer pages per commit). With 16 bytes, 80 bits stay random:
 * unguessable, like pc_random_hex. The time it shows is the row's creation time, which the
 * row holds anyway. */
#define PC_ORDERED_ID_MIN 12
int pc_ordered_id(char *out, size_t outsz, size_t nbytes);
/* Uniform random integer in [0, bound). */
int pc_random_uniform(unsigned bound, unsigned *out);
/* SHA-256 of data as lower-case hex into out[PC_SHA256_HEX_LEN + 1]. */
int pc_sha256_hex(const void *data, size_t len, char out[PC_SHA256_HEX_LEN + 1]);
/* Constant-time comparison of two equal-length buffers: 1 if equal. */
int pc_ct_equal(const void *a, const void *b, size_t n);

#endif
