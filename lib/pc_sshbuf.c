/* SPDX-License-Identifier: BSD-2-Clause */
/* SSH wire buffer: see pc_sshbuf.h. Every access goes through need() / reserve(). */
#include "config.h"
#include "pc_sshbuf.h"
#include "pc_err.h"
#include "pc_mem.h"
#include <openssl/evp.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void init_common(struct pc_sshbuf *b, size_t max, int secret)
{
    memset(b, 0, sizeof *b);
    if (max == 0)
        max = PC_SSHBUF_DEFAULT_MAX;
    if (max > PC_SSHBUF_HARD_MAX)
        max = PC_SSHBUF_HARD_MAX;
    b->max = max;
    b->owned = 1;
    b->secret = secret ? 1 : 0;
}

void pc_sshbuf_init(struct pc_sshbuf *b, size_t max)
{
    init_common(b, max, 0);
}

void pc_sshbuf_init_secret(struct pc_sshbuf *b, size_t max)
{
    init_common(b, max, 1);
}

void pc_sshbuf_init_reader(struct pc_sshbuf *b, const void *data, size_t len)
{
    memset(b, 0, sizeof *b);
    /* The reader never writes through data; the cast only lets one struct serve both. */
    b->data = (unsigned char *)(uintptr_t)data;
    b->len = data ? len : 0;
    b->max = b->len;
}

void pc_sshbuf_free(struct pc_sshbuf *b)
{
    if (!b)
        return;
    if (b->owned) {
        if (b->secret)
            pc_free_secret(b->data, b->cap);
        else
            free(b->data);
    }
    memset(b, 0, sizeof *b);
}

void pc_sshbuf_reset(struct pc_sshbuf *b)
{
    if (b->owned && b->secret)
        pc_wipe(b->data, b->cap);
    if (b->owned) {
        b->len = 0;
        if (b->data)
            b->data[0] = 0;
    }
    b->off = 0;
    b->err = 0;
}

int pc_sshbuf_error(const struct pc_sshbuf *b)
{
    return b->err;
}

const unsigned char *pc_sshbuf_ptr(const struct pc_sshbuf *b)
{
    return b->data;
}

size_t pc_sshbuf_len(const struct pc_sshbuf *b)
{
    return b->len;
}

const char *pc_sshbuf_cstr(const struct pc_sshbuf *b)
{
    if (!b->owned)
        return NULL;
    return b->data ? (const char *)b->data : "";
}

size_t pc_sshbuf_remaining(const struct pc_sshbuf *b)
{
    return b->len - b->off;
}

const unsigned char *pc_sshbuf_cursor(const struct pc_sshbuf *b)
{
    return b->data ? b->data + b->off : NULL;
}

static int fail(struct pc_sshbuf *b, int err)
{
    if (b->err == 0)
        b->err = err;
    return b->err;
}

int pc_sshbuf_expect_end(struct pc_sshbuf *b)
{
    if (b->err)
        return b->err;
    return b->off == b->len ? PC_OK : fail(b, PC_ERR_PARSE);
}

int pc_sshbuf_steal(struct pc_sshbuf *b, unsigned char **out, size_t *len)
{
    if (b->err)
        return b->err;
    if (!b->owned)
        return PC_ERR_STATE;
    *out = b->data;
    *len = b->len;
    b->data = NULL;
    b->len = b->cap = b->off = 0;
    return PC_OK;
}

/* Makes room for n more bytes in a writer, plus the NUL kept after the contents (not counted
 * against max); returns a pointer to them or NULL (error set, contents unchanged). */
static unsigned char *reserve(struct pc_sshbuf *b, size_t n)
{
    size_t want, ncap;
    unsigned char *p;

    if (b->err)
        return NULL;
    if (!b->owned) {
        fail(b, PC_ERR_STATE);
        return NULL;
    }
    if (n > b->max || b->len > b->max - n) {
        fail(b, PC_ERR_TOOBIG);
        return NULL;
    }
    want = b->len + n + 1; /* max <= PC_SSHBUF_HARD_MAX: no overflow */
    if (want > b->cap) {
        ncap = b->cap ? b->cap : 256;
        while (ncap < want)
            ncap = ncap > b->max / 2 ? b->max + 1 : ncap * 2;
        if (b->secret) {
            /* realloc could leave a secret copy behind: allocate, copy, wipe, free. */
            p = malloc(ncap);
            if (p && b->len)
                memcpy(p, b->data, b->len);
            if (p)
                pc_free_secret(b->data, b->cap);
        } else {
            p = realloc(b->data, ncap);
        }
        if (!p) {
            fail(b, PC_ERR_NOMEM);
            return NULL;
        }
        b->data = p;
        b->cap = ncap;
    }
    p = b->data + b->len;
    b->len += n;
    b->data[b->len] = 0;
    return p;
}

/* Consumes n bytes from the cursor; returns a pointer to them or NULL (error set). */
static const unsigned char *need(struct pc_sshbuf *b, size_t n)
{
    const unsigned char *p;

    if (b->err)
        return NULL;
    if (n > b->len - b->off) {
        fail(b, PC_ERR_PARSE);
        return NULL;
    }
    p = b->data + b->off;
    b->off += n;
    return p;
}

int pc_sshbuf_put_raw(struct pc_sshbuf *b, const void *p, size_t n)
{
    unsigned char *d;

    if (n == 0)
        return b->err;
    if (!p)
        return fail(b, PC_ERR_INVAL);
    d = reserve(b, n);
    if (d)
        memcpy(d, p, n);
    return b->err;
}

int pc_sshbuf_putf(struct pc_sshbuf *b, const char *fmt, ...)
{
    va_list ap, again;
    unsigned char *d;
    int n;

    if (b->err)
        return b->err;
    if (!fmt)
        return fail(b, PC_ERR_INVAL);
    va_start(ap, fmt);
    va_copy(again, ap);
    errno = 0;
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        fail(b, errno == EOVERFLOW ? PC_ERR_TOOBIG : PC_ERR_INVAL);
    else if (n > 0 && (d = reserve(b, (size_t)n)) != NULL)
        vsnprintf((char *)d, (size_t)n + 1, fmt, again); /* the +1 is reserve's NUL */
    va_end(again);
    return b->err;
}

int pc_sshbuf_put_u8(struct pc_sshbuf *b, uint8_t v)
{
    return pc_sshbuf_put_raw(b, &v, 1);
}

int pc_sshbuf_put_u32(struct pc_sshbuf *b, uint32_t v)
{
    unsigned char t[4];
    for (int i = 3; i >= 0; i--, v >>= 8)
        t[i] = (unsigned char)(v & 0xff);
    return pc_sshbuf_put_raw(b, t, sizeof t);
}

int pc_sshbuf_put_u64(struct pc_sshbuf *b, uint64_t v)
{
    unsigned char t[8];
    for (int i = 7; i >= 0; i--, v >>= 8)
        t[i] = (unsigned char)(v & 0xff);
    return pc_sshbuf_put_raw(b, t, sizeof t);
}

int pc_sshbuf_put_bool(struct pc_sshbuf *b, int v)
{
    return pc_sshbuf_put_u8(b, v ? 1 : 0);
}

int pc_sshbuf_put_string(struct pc_sshbuf *b, const void *p, size_t n)
{
    if (n > UINT32_MAX)
        return fail(b, PC_ERR_TOOBIG);
    if (pc_sshbuf_put_u32(b, (uint32_t)n) != 0)
        return b->err;
    return pc_sshbuf_put_raw(b, p, n);
}

int pc_sshbuf_put_cstring(struct pc_sshbuf *b, const char *s)
{
    if (!s)
        return fail(b, PC_ERR_INVAL);
    return pc_sshbuf_put_string(b, s, strlen(s));
}

int pc_sshbuf_put_buf(struct pc_sshbuf *b, const struct pc_sshbuf *inner)
{
    if (inner->err)
        return fail(b, inner->err);
    return pc_sshbuf_put_string(b, inner->data, inner->len);
}

int pc_sshbuf_put_mpint(struct pc_sshbuf *b, const unsigned char *mag, size_t n)
{
    size_t pad;

    while (n > 0 && mag[0] == 0) {
        mag++;
        n--;
    }
    if (n >= PC_SSHBUF_MPINT_MAX_BYTES)
        return fail(b, PC_ERR_TOOBIG);
    pad = (n > 0 && (mag[0] & 0x80)) ? 1 : 0;
    if (pc_sshbuf_put_u32(b, (uint32_t)(n + pad)) != 0)
        return b->err;
    if (pad && pc_sshbuf_put_u8(b, 0) != 0)
        return b->err;
    return pc_sshbuf_put_raw(b, mag, n);
}

int pc_sshbuf_put_bignum(struct pc_sshbuf *b, const BIGNUM *bn)
{
    unsigned char tmp[PC_SSHBUF_MPINT_MAX_BYTES];
    int n;

    if (b->err)
        return b->err;
    if (!bn || BN_is_negative(bn))
        return fail(b, PC_ERR_INVAL);
    if (BN_num_bytes(bn) > (int)sizeof tmp - 1)
        return fail(b, PC_ERR_TOOBIG);
    n = BN_bn2bin(bn, tmp);
    if (n < 0)
        return fail(b, PC_ERR_CRYPTO);
    return pc_sshbuf_put_mpint(b, tmp, (size_t)n);
}

int pc_sshbuf_get_raw(struct pc_sshbuf *b, void *out, size_t n)
{
    const unsigned char *p = need(b, n);
    if (p && n)
        memcpy(out, p, n);
    return b->err;
}

int pc_sshbuf_get_u8(struct pc_sshbuf *b, uint8_t *v)
{
    const unsigned char *p = need(b, 1);
    if (p)
        *v = p[0];
    return b->err;
}

int pc_sshbuf_get_u32(struct pc_sshbuf *b, uint32_t *v)
{
    const unsigned char *p = need(b, 4);
    if (p)
        *v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    return b->err;
}

int pc_sshbuf_get_u64(struct pc_sshbuf *b, uint64_t *v)
{
    const unsigned char *p = need(b, 8);
    uint64_t r = 0;
    if (!p)
        return b->err;
    for (int i = 0; i < 8; i++)
        r = r << 8 | p[i];
    *v = r;
    return PC_OK;
}

int pc_sshbuf_get_bool(struct pc_sshbuf *b, int *v)
{
    uint8_t c = 0;
    if (pc_sshbuf_get_u8(b, &c) != 0)
        return b->err;
    if (c > 1)
        return fail(b, PC_ERR_PARSE);
    *v = c;
    return PC_OK;
}

int pc_sshbuf_get_string(struct pc_sshbuf *b, const unsigned char **p, size_t *len)
{
    uint32_t n = 0;
    size_t save = b->off;
    const unsigned char *d;

    if (pc_sshbuf_get_u32(b, &n) != 0)
        return b->err;
    d = need(b, n);
    if (!d) {
        b->off = save;
        return b->err;
    }
    *p = n ? d : NULL;
    *len = n;
    return PC_OK;
}

int pc_sshbuf_get_string_dup(struct pc_sshbuf *b, unsigned char **out, size_t *len)
{
    const unsigned char *p = NULL;
    size_t n = 0;
    unsigned char *d;

    if (pc_sshbuf_get_string(b, &p, &n) != 0)
        return b->err;
    d = malloc(n + 1);
    if (!d)
        return fail(b, PC_ERR_NOMEM);
    if (n)
        memcpy(d, p, n);
    d[n] = 0;
    *out = d;
    *len = n;
    return PC_OK;
}

int pc_sshbuf_get_cstring(struct pc_sshbuf *b, char **out)
{
    const unsigned char *p = NULL;
    size_t n = 0;
    char *s;

    if (pc_sshbuf_get_string(b, &p, &n) != 0)
        return b->err;
    if (n && memchr(p, 0, n))
        return fail(b, PC_ERR_PARSE);
    s = malloc(n + 1);
    if (!s)
        return fail(b, PC_ERR_NOMEM);
    if (n)
        memcpy(s, p, n);
    s[n] = 0;
    *out = s;
    return PC_OK;
}

int pc_sshbuf_get_expect_cstring(struct pc_sshbuf *b, const char *want)
{
    const unsigned char *p = NULL;
    size_t n = 0, wn = strlen(want);

    if (pc_sshbuf_get_string(b, &p, &n) != 0)
        return b->err;
    if (n != wn || (n && memcmp(p, want, n) != 0))
        return fail(b, PC_ERR_PARSE);
    return PC_OK;
}

int pc_sshbuf_get_sub(struct pc_sshbuf *b, struct pc_sshbuf *sub)
{
    const unsigned char *p = NULL;
    size_t n = 0;

    if (pc_sshbuf_get_string(b, &p, &n) != 0)
        return b->err;
    pc_sshbuf_init_reader(sub, p, n);
    return PC_OK;
}

int pc_sshbuf_get_mpint(struct pc_sshbuf *b, const unsigned char **mag, size_t *len)
{
    const unsigned char *p = NULL;
    size_t n = 0;

    if (pc_sshbuf_get_string(b, &p, &n) != 0)
        return b->err;
    if (n > PC_SSHBUF_MPINT_MAX_BYTES)
        return fail(b, PC_ERR_TOOBIG);
    if (n > 0 && (p[0] & 0x80))
        return fail(b, PC_ERR_PARSE); /* negative */
    if (n > 0 && p[0] == 0 && (n == 1 || !(p[1] & 0x80)))
        return fail(b, PC_ERR_PARSE); /* unnecessary leading zero */
    if (n > 0 && p[0] == 0) {
        p++;
        n--;
    }
    if (n == PC_SSHBUF_MPINT_MAX_BYTES)
        return fail(b, PC_ERR_TOOBIG);
    *mag = n ? p : NULL;
    *len = n;
    return PC_OK;
}

int pc_sshbuf_get_bignum(struct pc_sshbuf *b, BIGNUM **out)
{
    const unsigned char *p = NULL;
    size_t n = 0;
    BIGNUM *bn;

    if (pc_sshbuf_get_mpint(b, &p, &n) != 0)
        return b->err;
    bn = BN_bin2bn(p, (int)n, NULL);
    if (!bn)
        return fail(b, PC_ERR_NOMEM);
    *out = bn;
    return PC_OK;
}

/* ---- base64 -------------------------------------------------------------------------------- */

int pc_base64_encode(const void *data, size_t len, char **out)
{
    size_t olen;
    char *s;

    if (len > PC_SSHBUF_HARD_MAX)
        return PC_ERR_TOOBIG;
    olen = 4 * ((len + 2) / 3);
    s = malloc(olen + 1);
    if (!s)
        return PC_ERR_NOMEM;
    if (len == 0)
        s[0] = 0;
    else if (EVP_EncodeBlock((unsigned char *)s, data, (int)len) != (int)olen) {
        free(s);
        return PC_ERR_CRYPTO;
    }
    s[olen] = 0;
    *out = s;
    return PC_OK;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int pc_base64_decode(const char *in, size_t inlen, unsigned char **out, size_t *outlen)
{
    size_t pad = 0, olen;
    unsigned char *d;
    int v;

    if (inlen % 4 != 0)
        return PC_ERR_PARSE;
    if (inlen > PC_SSHBUF_HARD_MAX)
        return PC_ERR_TOOBIG;
    if (inlen == 0) {
        *out = NULL;
        *outlen = 0;
        return PC_OK;
    }
    if (in[inlen - 1] == '=')
        pad = in[inlen - 2] == '=' ? 2 : 1;
    for (size_t i = 0; i < inlen - pad; i++)
        if (b64_value((unsigned char)in[i]) < 0)
            return PC_ERR_PARSE;
    /* The bits the padding leaves unused must be zero (canonical encoding). */
    v = b64_value((unsigned char)in[inlen - pad - 1]);
    if ((pad == 1 && (v & 0x03)) || (pad == 2 && (v & 0x0f)))
        return PC_ERR_PARSE;
    d = malloc(inlen / 4 * 3 + 1);
    if (!d)
        return PC_ERR_NOMEM;
    if (EVP_DecodeBlock(d, (const unsigned char *)in, (int)inlen) != (int)(inlen / 4 * 3)) {
        free(d);
        return PC_ERR_PARSE;
    }
    olen = inlen / 4 * 3 - pad;
    *out = d;
    *outlen = olen;
    return PC_OK;
}
