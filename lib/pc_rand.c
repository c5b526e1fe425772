/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "pc_rand.h"
#include "pc_err.h"
#include "pc_mem.h"
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <limits.h>
#include <stdint.h>
#include <time.h>

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int pc_random_bytes(void *buf, size_t n)
{
    if (n > INT_MAX)
        return PC_ERR_INVAL;
    return RAND_bytes(buf, (int)n) == 1 ? PC_OK : PC_ERR_CRYPTO;
}

int pc_random_hex(char *out, size_t outsz, size_t nbytes)
{
    unsigned char raw[64];
    int rc;

    if (nbytes > sizeof raw || outsz < 2 * nbytes + 1)
        return PC_ERR_INVAL;
    rc = pc_random_bytes(raw, nbytes);
    if (rc == PC_OK)
        to_hex(raw, nbytes, out);
    pc_wipe(raw, sizeof raw);
    return rc;
}

int pc_ordered_id(char *out, size_t outsz, size_t nbytes)
{
    unsigned char raw[64];
    struct timespec ts;
    uint64_t ms;
    int rc;

    if (nbytes < PC_ORDERED_ID_MIN || nbytes > sizeof raw || outsz < 2 * nbytes + 1)
        return PC_ERR_INVAL;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || ts.tv_sec < 0)
        return PC_ERR_INVAL;
    ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    for (int i = 5; i >= 0; i--, ms >>= 8)
        raw[i] = (unsigned char)(ms & 0xff);
    rc = pc_random_bytes(raw + 6, nbytes - 6);
    if (rc == PC_OK)
        to_hex(raw, nbytes, out);
    pc_wipe(raw, sizeof raw);
    return rc;
}

int pc_token_new(char out[PC_TOKEN_HEX_LEN + 1])
{
    return pc_random_hex(out, PC_TOKEN_HEX_LEN + 1, PC_TOKEN_BYTES);
}

int pc_random_uniform(unsigned bound, unsigned *out)
{
    unsigned v, limit;

    if (bound == 0)
        return PC_ERR_INVAL;
    /* Rejection sampling: no modulo bias. */
    limit = UINT_MAX - (UINT_MAX % bound);
    do {
        if (pc_random_bytes(&v, sizeof v) != PC_OK)
            return PC_ERR_CRYPTO;
    } while (v >= limit);
    *out = v % bound;
    return PC_OK;
}

int pc_sha256_hex(const void *data, size_t len, char out[PC_SHA256_HEX_LEN + 1])
{
    unsigned char md[32];
    unsigned int mdlen = 0;

    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return PC_ERR_CRYPTO;
    to_hex(md, 32, out);
    return PC_OK;
}

int pc_ct_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}
