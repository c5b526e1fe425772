/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "pc_offcode.h"
#include "pc_err.h"
#include <openssl/evp.h>
#include <string.h>

int pc_offcode_hash(const char *code, const unsigned char salt[PC_OFFCODE_SALT], uint64_t step,
                    unsigned char out[PC_OFFCODE_HASH])
{
    unsigned char s[PC_OFFCODE_SALT + 8];

    if (!code || strlen(code) != 6 || strspn(code, "0123456789") != 6)
        return PC_ERR_INVAL;
    memcpy(s, salt, PC_OFFCODE_SALT);
    for (int i = 0; i < 8; i++)
        s[PC_OFFCODE_SALT + i] = (unsigned char)(step >> (56 - 8 * i));
    if (EVP_PBE_scrypt(code, 6, s, sizeof s, PC_OFFCODE_N, PC_OFFCODE_R, PC_OFFCODE_P,
                       8u * 1024u * 1024u, out, PC_OFFCODE_HASH) != 1)
        return PC_ERR_CRYPTO;
    return PC_OK;
}
