/* SPDX-License-Identifier: BSD-2-Clause */
/* Issue 13 step 2(b): the slow, salted hash of one TOTP code of one time step, as the control
 * plane computes it for a host's offline code cache and the agent checks a typed code against
 * it. scrypt (OpenSSL EVP_PBE_scrypt, N=2^11, r=8, p=1: 2 MiB, ~10-20 ms) over the code, salted
 * with the per-(host, person) salt and the step: a hash of one host is useless on another, and
 * one step's hashes say nothing about another step's code. */
#ifndef PC_OFFCODE_H
#define PC_OFFCODE_H
#include <stddef.h>
#include <stdint.h>

#define PC_OFFCODE_SALT 16
#define PC_OFFCODE_HASH 16
#define PC_OFFCODE_N 2048
#define PC_OFFCODE_R 8
#define PC_OFFCODE_P 1
#define PC_OFFCODE_MAX_SECS 259200 /* 72 h: a rule's --offline-codes at most */

/* out = scrypt(code, salt || step as 8 big-endian bytes). code: exactly 6 digits. */
int pc_offcode_hash(const char *code, const unsigned char salt[PC_OFFCODE_SALT], uint64_t step,
                    unsigned char out[PC_OFFCODE_HASH]);

#endif
