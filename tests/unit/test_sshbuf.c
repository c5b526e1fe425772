/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests for lib/pc_sshbuf: integers, strings, mpints (RFC 4251), nesting, bounds,
 * sticky errors, trailing data, printf-style text and strict base64. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pc_err.h"
#include "pc_sshbuf.h"

static void assert_bytes(const struct pc_sshbuf *b, const void *want, size_t n)
{
    assert_int_equal(pc_sshbuf_len(b), n);
    assert_memory_equal(pc_sshbuf_ptr(b), want, n);
}

static void test_integers_roundtrip(void **state)
{
    struct pc_sshbuf w, r;
    uint8_t u8 = 0;
    uint32_t u32 = 0;
    uint64_t u64 = 0;
    int bo = -1;
    static const unsigned char want[] = { 0xab, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03,
                                          0x04, 0x05, 0x06, 0x07, 0x08, 0x01, 0x00 };
    (void)state;
    pc_sshbuf_init(&w, 0);
    pc_sshbuf_put_u8(&w, 0xab);
    pc_sshbuf_put_u32(&w, 0xdeadbeef);
    pc_sshbuf_put_u64(&w, 0x0102030405060708ULL);
    pc_sshbuf_put_bool(&w, 7);
    pc_sshbuf_put_bool(&w, 0);
    assert_int_equal(pc_sshbuf_error(&w), 0);
    assert_bytes(&w, want, sizeof want);

    pc_sshbuf_init_reader(&r, pc_sshbuf_ptr(&w), pc_sshbuf_len(&w));
    assert_int_equal(pc_sshbuf_get_u8(&r, &u8), 0);
    assert_int_equal(pc_sshbuf_get_u32(&r, &u32), 0);
    assert_int_equal(pc_sshbuf_get_u64(&r, &u64), 0);
    assert_int_equal(u8, 0xab);
    assert_int_equal(u32, 0xdeadbeef);
    assert_true(u64 == 0x0102030405060708ULL);
    assert_int_equal(pc_sshbuf_get_bool(&r, &bo), 0);
    assert_int_equal(bo, 1);
    assert_int_equal(pc_sshbuf_get_bool(&r, &bo), 0);
    assert_int_equal(bo, 0);
    assert_int_equal(pc_sshbuf_expect_end(&r), 0);
    pc_sshbuf_free(&w);
}

static void test_bool_strict(void **state)
{
    static const unsigned char two[] = { 2 };
    struct pc_sshbuf r;
    int v = 9;
    (void)state;
    pc_sshbuf_init_reader(&r, two, 1);
    assert_int_equal(pc_sshbuf_get_bool(&r, &v), PC_ERR_PARSE);
    assert_int_equal(v, 9);
}

static void test_underflow_is_sticky(void **state)
{
    static const unsigned char three[] = { 1, 2, 3 };
    struct pc_sshbuf r;
    uint32_t v = 42;
    uint8_t c = 0;
    (void)state;
    pc_sshbuf_init_reader(&r, three, sizeof three);
    assert_int_equal(pc_sshbuf_get_u32(&r, &v), PC_ERR_PARSE);
    assert_int_equal(v, 42); /* untouched */
    /* Sticky: even a read that would fit now fails. */
    assert_int_equal(pc_sshbuf_get_u8(&r, &c), PC_ERR_PARSE);
    assert_int_equal(pc_sshbuf_error(&r), PC_ERR_PARSE);
}

static void test_string_bounds(void **state)
{
    /* Claims 5 bytes, has 4. */
    static const unsigned char bad[] = { 0, 0, 0, 5, 'a', 'b', 'c', 'd' };
    /* Claims 4 GiB - 1. */
    static const unsigned char huge[] = { 0xff, 0xff, 0xff, 0xff, 'x' };
    static const unsigned char ok[] = { 0, 0, 0, 3, 'a', 'b', 'c', 0, 0, 0, 0 };
    struct pc_sshbuf r;
    const unsigned char *p = NULL;
    size_t n = 0;
    (void)state;
    pc_sshbuf_init_reader(&r, bad, sizeof bad);
    assert_int_equal(pc_sshbuf_get_string(&r, &p, &n), PC_ERR_PARSE);
    pc_sshbuf_init_reader(&r, huge, sizeof huge);
    assert_int_equal(pc_sshbuf_get_string(&r, &p, &n), PC_ERR_PARSE);
    pc_sshbuf_init_reader(&r, ok, sizeof ok);
    assert_int_equal(pc_sshbuf_get_string(&r, &p, &n), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(p, "abc", 3);
    assert_int_equal(pc_sshbuf_get_string(&r, &p, &n), 0); /* empty string */
    assert_int_equal(n, 0);
    assert_int_equal(pc_sshbuf_expect_end(&r), 0);
}

static void test_cstring_rules(void **state)
{
    static const unsigned char nul[] = { 0, 0, 0, 3, 'a', 0, 'b' };
    static const unsigned char good[] = { 0, 0, 0, 2, 'h', 'i' };
    struct pc_sshbuf r, w;
    char *s = NULL;
    (void)state;
    pc_sshbuf_init_reader(&r, nul, sizeof nul);
    assert_int_equal(pc_sshbuf_get_cstring(&r, &s), PC_ERR_PARSE);
    assert_null(s);
    pc_sshbuf_init_reader(&r, good, sizeof good);
    assert_int_equal(pc_sshbuf_get_cstring(&r, &s), 0);
    assert_string_equal(s, "hi");
    free(s);
    pc_sshbuf_init_reader(&r, good, sizeof good);
    assert_int_equal(pc_sshbuf_get_expect_cstring(&r, "hi"), 0);
    pc_sshbuf_init_reader(&r, good, sizeof good);
    assert_int_equal(pc_sshbuf_get_expect_cstring(&r, "h"), PC_ERR_PARSE);

    pc_sshbuf_init(&w, 0);
    assert_int_equal(pc_sshbuf_put_cstring(&w, "hi"), 0);
    assert_bytes(&w, good, sizeof good);
    pc_sshbuf_free(&w);
}

static void test_trailing_data(void **state)
{
    static const unsigned char d[] = { 0, 0, 0, 1, 'x', 0xee };
    struct pc_sshbuf r;
    const unsigned char *p;
    size_t n;
    (void)state;
    pc_sshbuf_init_reader(&r, d, sizeof d);
    assert_int_equal(pc_sshbuf_get_string(&r, &p, &n), 0);
    assert_int_equal(pc_sshbuf_remaining(&r), 1);
    assert_int_equal(pc_sshbuf_expect_end(&r), PC_ERR_PARSE);
}

static void put_mpint_expect(const unsigned char *mag, size_t n, const unsigned char *want,
                             size_t wn)
{
    struct pc_sshbuf w, r;
    const unsigned char *p = NULL;
    size_t len = 99;
    pc_sshbuf_init(&w, 0);
    assert_int_equal(pc_sshbuf_put_mpint(&w, mag, n), 0);
    assert_bytes(&w, want, wn);
    /* And it reads back as the minimal magnitude. */
    pc_sshbuf_init_reader(&r, pc_sshbuf_ptr(&w), pc_sshbuf_len(&w));
    assert_int_equal(pc_sshbuf_get_mpint(&r, &p, &len), 0);
    assert_int_equal(pc_sshbuf_expect_end(&r), 0);
    while (n > 0 && mag[0] == 0) {
        mag++;
        n--;
    }
    assert_int_equal(len, n);
    if (n)
        assert_memory_equal(p, mag, n);
    pc_sshbuf_free(&w);
}

static void test_mpint_encoding(void **state)
{
    (void)state;
    /* RFC 4251 examples: 0 → empty; 0x80 → 00 80; 0x9a378f9b2e332a7 → as is; leading zeros cut. */
    put_mpint_expect(NULL, 0, (const unsigned char[]){ 0, 0, 0, 0 }, 4);
    put_mpint_expect((const unsigned char[]){ 0, 0 }, 2, (const unsigned char[]){ 0, 0, 0, 0 }, 4);
    put_mpint_expect((const unsigned char[]){ 0x80 }, 1,
                     (const unsigned char[]){ 0, 0, 0, 2, 0x00, 0x80 }, 6);
    put_mpint_expect((const unsigned char[]){ 0x7f }, 1,
                     (const unsigned char[]){ 0, 0, 0, 1, 0x7f }, 5);
    put_mpint_expect((const unsigned char[]){ 0x09, 0xa3, 0x78, 0xf9, 0xb2, 0xe3, 0x32, 0xa7 }, 8,
                     (const unsigned char[]){ 0, 0, 0, 8, 0x09, 0xa3, 0x78, 0xf9, 0xb2, 0xe3, 0x32,
                                              0xa7 },
                     12);
    put_mpint_expect((const unsigned char[]){ 0x00, 0x00, 0xff, 0x01 }, 4,
                     (const unsigned char[]){ 0, 0, 0, 3, 0x00, 0xff, 0x01 }, 7);
}

static void expect_mpint_refused(const unsigned char *d, size_t n, int want)
{
    struct pc_sshbuf r;
    const unsigned char *p = NULL;
    size_t len = 0;
    pc_sshbuf_init_reader(&r, d, n);
    assert_int_equal(pc_sshbuf_get_mpint(&r, &p, &len), want);
}

static void test_mpint_refusals(void **state)
{
    static unsigned char big[4 + PC_SSHBUF_MPINT_MAX_BYTES + 1];
    (void)state;
    /* Negative numbers (sign bit set). */
    expect_mpint_refused((const unsigned char[]){ 0, 0, 0, 1, 0x80 }, 5, PC_ERR_PARSE);
    expect_mpint_refused((const unsigned char[]){ 0, 0, 0, 2, 0xff, 0x01 }, 6, PC_ERR_PARSE);
    /* Non-minimal: zero as 00, and a needless leading zero. */
    expect_mpint_refused((const unsigned char[]){ 0, 0, 0, 1, 0x00 }, 5, PC_ERR_PARSE);
    expect_mpint_refused((const unsigned char[]){ 0, 0, 0, 2, 0x00, 0x7f }, 6, PC_ERR_PARSE);
    /* Truncated. */
    expect_mpint_refused((const unsigned char[]){ 0, 0, 0, 2, 0x01 }, 5, PC_ERR_PARSE);
    /* Too large: 2049-byte magnitude. */
    big[2] = (PC_SSHBUF_MPINT_MAX_BYTES >> 8) & 0xff;
    big[3] = PC_SSHBUF_MPINT_MAX_BYTES & 0xff;
    big[4] = 0x01;
    expect_mpint_refused(big, 4 + PC_SSHBUF_MPINT_MAX_BYTES, PC_ERR_TOOBIG);
}

static void test_bignum_roundtrip(void **state)
{
    struct pc_sshbuf w, r;
    BIGNUM *a = BN_new(), *b = NULL, *neg = BN_new();
    (void)state;
    assert_true(BN_hex2bn(&a, "80000000000000000000000000000001") > 0);
    pc_sshbuf_init(&w, 0);
    assert_int_equal(pc_sshbuf_put_bignum(&w, a), 0);
    assert_int_equal(pc_sshbuf_len(&w), 4 + 17); /* sign pad added */
    pc_sshbuf_init_reader(&r, pc_sshbuf_ptr(&w), pc_sshbuf_len(&w));
    assert_int_equal(pc_sshbuf_get_bignum(&r, &b), 0);
    assert_int_equal(BN_cmp(a, b), 0);
    BN_set_word(neg, 5);
    BN_set_negative(neg, 1);
    assert_int_equal(pc_sshbuf_put_bignum(&w, neg), PC_ERR_INVAL);
    BN_free(a);
    BN_free(b);
    BN_free(neg);
    pc_sshbuf_free(&w);
}

static void test_nested_buffer(void **state)
{
    struct pc_sshbuf outer, inner, r, sub;
    uint32_t v = 0;
    char *s = NULL;
    (void)state;
    pc_sshbuf_init(&outer, 0);
    pc_sshbuf_init(&inner, 0);
    pc_sshbuf_put_cstring(&inner, "alice");
    pc_sshbuf_put_u32(&inner, 7);
    pc_sshbuf_put_buf(&outer, &inner);
    pc_sshbuf_put_u32(&outer, 9);
    assert_int_equal(pc_sshbuf_error(&outer), 0);
    assert_int_equal(pc_sshbuf_len(&outer), 4 + 4 + 5 + 4 + 4);
    pc_sshbuf_init_reader(&r, pc_sshbuf_ptr(&outer), pc_sshbuf_len(&outer));
    assert_int_equal(pc_sshbuf_get_sub(&r, &sub), 0);
    assert_int_equal(pc_sshbuf_get_cstring(&sub, &s), 0);
    assert_string_equal(s, "alice");
    free(s);
    assert_int_equal(pc_sshbuf_get_u32(&sub, &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(pc_sshbuf_expect_end(&sub), 0);
    /* The nested reader cannot read past its own end into the outer data. */
    assert_int_equal(pc_sshbuf_get_u32(&sub, &v), PC_ERR_PARSE);
    assert_int_equal(pc_sshbuf_get_u32(&r, &v), 0);
    assert_int_equal(v, 9);
    assert_int_equal(pc_sshbuf_expect_end(&r), 0);
    pc_sshbuf_free(&outer);
    pc_sshbuf_free(&inner);
}

static void test_writer_max(void **state)
{
    struct pc_sshbuf w;
    unsigned char blob[100] = { 0 };
    unsigned char *out = NULL;
    size_t n = 0;
    (void)state;
    pc_sshbuf_init(&w, 64);
    assert_int_equal(pc_sshbuf_put_raw(&w, blob, 60), 0);
    assert_int_equal(pc_sshbuf_put_u32(&w, 1), 0); /* exactly 64 */
    assert_int_equal(pc_sshbuf_put_u8(&w, 1), PC_ERR_TOOBIG);
    assert_int_equal(pc_sshbuf_len(&w), 64);
    assert_int_equal(pc_sshbuf_steal(&w, &out, &n), PC_ERR_TOOBIG); /* sticky */
    pc_sshbuf_reset(&w);
    assert_int_equal(pc_sshbuf_put_raw(&w, blob, 10), 0);
    assert_int_equal(pc_sshbuf_steal(&w, &out, &n), 0);
    assert_int_equal(n, 10);
    free(out);
    pc_sshbuf_free(&w);
    /* A reader cannot be written to. */
    pc_sshbuf_init_reader(&w, blob, sizeof blob);
    assert_int_equal(pc_sshbuf_put_u8(&w, 1), PC_ERR_STATE);
}

static void test_secret_buffer_grows(void **state)
{
    struct pc_sshbuf w;
    unsigned char chunk[1000];
    (void)state;
    memset(chunk, 0x5a, sizeof chunk);
    pc_sshbuf_init_secret(&w, 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(pc_sshbuf_put_raw(&w, chunk, sizeof chunk), 0);
    assert_int_equal(pc_sshbuf_len(&w), 10000);
    assert_int_equal(pc_sshbuf_ptr(&w)[9999], 0x5a);
    pc_sshbuf_free(&w);
    assert_null(pc_sshbuf_ptr(&w));
}

static void test_putf_exact(void **state)
{
    struct pc_sshbuf w;
    (void)state;
    pc_sshbuf_init(&w, 0);
    assert_int_equal(pc_sshbuf_putf(&w, "%s=%d %04o %.*s|%%|%zu", "a", -42, 0644u, 3, "abcdef",
                                    (size_t)7),
                     0);
    assert_bytes(&w, "a=-42 0644 abc|%|7", 18);
    assert_string_equal((const char *)pc_sshbuf_ptr(&w), "a=-42 0644 abc|%|7");
    assert_string_equal(pc_sshbuf_cstr(&w), "a=-42 0644 abc|%|7");
    /* Nothing printed: nothing written, no error. */
    assert_int_equal(pc_sshbuf_putf(&w, "%s", ""), 0);
    assert_int_equal(pc_sshbuf_len(&w), 18);
    /* Text after binary: the contents stay NUL-terminated, the NUL never counted. */
    pc_sshbuf_reset(&w);
    assert_int_equal(pc_sshbuf_put_u32(&w, 0x41424344), 0);
    assert_int_equal(pc_sshbuf_putf(&w, "%c", 'E'), 0);
    assert_string_equal((const char *)pc_sshbuf_ptr(&w), "ABCDE");
    /* Emptied, it is the empty string again. */
    pc_sshbuf_reset(&w);
    assert_string_equal(pc_sshbuf_cstr(&w), "");
    pc_sshbuf_free(&w);
    /* An empty writer has no storage yet, but its text is "". */
    pc_sshbuf_init(&w, 0);
    assert_int_equal(pc_sshbuf_putf(&w, "%.0s", "x"), 0);
    assert_null(pc_sshbuf_ptr(&w));
    assert_string_equal(pc_sshbuf_cstr(&w), "");
    pc_sshbuf_free(&w);
    /* A reader's memory is the caller's: no C string is promised. */
    pc_sshbuf_init_reader(&w, "abc", 3);
    assert_null(pc_sshbuf_cstr(&w));
}

/* A %s argument is copied, never interpreted as a format. */
static void test_putf_embedded_formats(void **state)
{
    static const char tricky[] = "100%d %s %n %%";
    struct pc_sshbuf w;
    (void)state;
    pc_sshbuf_init(&w, 0);
    assert_int_equal(pc_sshbuf_putf(&w, "%s", tricky), 0);
    assert_int_equal(pc_sshbuf_putf(&w, "<%s>", "%x"), 0);
    assert_string_equal((const char *)pc_sshbuf_ptr(&w), "100%d %s %n %%<%x>");
    assert_int_equal(pc_sshbuf_len(&w), sizeof tricky - 1 + 4);
    pc_sshbuf_free(&w);
}

/* Past the first allocation (256 bytes), by many small appends and by one large one. */
static void test_putf_grows(void **state)
{
    char want[5000], big[3000];
    struct pc_sshbuf w;
    size_t n = 0;
    (void)state;
    pc_sshbuf_init(&w, 0);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(pc_sshbuf_putf(&w, "%03d,", i), 0);
        n += (size_t)snprintf(want + n, sizeof want - n, "%03d,", i);
    }
    assert_int_equal(n, 4000);
    assert_bytes(&w, want, n);
    assert_string_equal((const char *)pc_sshbuf_ptr(&w), want);
    pc_sshbuf_free(&w);

    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = 0;
    pc_sshbuf_init_secret(&w, 0);
    assert_int_equal(pc_sshbuf_putf(&w, "[%s]", big), 0);
    assert_int_equal(pc_sshbuf_len(&w), sizeof big + 1);
    assert_int_equal(pc_sshbuf_ptr(&w)[0], '[');
    assert_memory_equal(pc_sshbuf_ptr(&w) + 1, big, sizeof big - 1);
    assert_string_equal((const char *)pc_sshbuf_ptr(&w) + sizeof big, "]");
    pc_sshbuf_free(&w);
}

/* The writer's max holds for text too: a refused putf writes nothing and the error sticks. */
static void test_putf_max(void **state)
{
    struct pc_sshbuf w;
    unsigned char *out = NULL;
    size_t n = 0;
    (void)state;
    pc_sshbuf_init(&w, 16);
    assert_int_equal(pc_sshbuf_putf(&w, "%s", "0123456789"), 0);
    assert_int_equal(pc_sshbuf_putf(&w, "%06d", 42), 0); /* exactly 16 */
    assert_int_equal(pc_sshbuf_putf(&w, "x"), PC_ERR_TOOBIG);
    assert_bytes(&w, "0123456789000042", 16);
    assert_string_equal((const char *)pc_sshbuf_ptr(&w), "0123456789000042");
    assert_int_equal(pc_sshbuf_putf(&w, "%s", ""), PC_ERR_TOOBIG); /* sticky */
    assert_int_equal(pc_sshbuf_put_raw(&w, "y", 1), PC_ERR_TOOBIG);
    assert_int_equal(pc_sshbuf_len(&w), 16);
    pc_sshbuf_free(&w);

    /* One large refusal on a buffer that has not grown yet: unchanged as well. */
    pc_sshbuf_init(&w, 300);
    assert_int_equal(pc_sshbuf_putf(&w, "head;"), 0);
    assert_int_equal(pc_sshbuf_putf(&w, "%400s", "tail"), PC_ERR_TOOBIG);
    assert_bytes(&w, "head;", 5);
    assert_int_equal(pc_sshbuf_steal(&w, &out, &n), PC_ERR_TOOBIG);
    pc_sshbuf_reset(&w);
    assert_int_equal(pc_sshbuf_len(&w), 0);
    assert_int_equal(pc_sshbuf_putf(&w, "%295s", "tail"), 0);
    assert_int_equal(pc_sshbuf_putf(&w, "%s", "head;"), 0); /* 300: the bound, not above */
    assert_int_equal(pc_sshbuf_putf(&w, "."), PC_ERR_TOOBIG);
    assert_int_equal(pc_sshbuf_len(&w), 300);
    assert_int_equal(strlen((const char *)pc_sshbuf_ptr(&w)), 300);
    pc_sshbuf_reset(&w);
    assert_int_equal(pc_sshbuf_putf(&w, "%d", 7), 0);
    assert_int_equal(pc_sshbuf_steal(&w, &out, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal((const char *)out, "7"); /* the stolen text keeps its NUL */
    free(out);
    pc_sshbuf_free(&w);

    /* A reader cannot be written to. */
    pc_sshbuf_init_reader(&w, "abc", 3);
    assert_int_equal(pc_sshbuf_putf(&w, "%d", 1), PC_ERR_STATE);
}

static void test_base64_strict(void **state)
{
    unsigned char *d = NULL;
    size_t n = 0;
    char *e = NULL;
    (void)state;
    assert_int_equal(pc_base64_encode("foobar", 6, &e), 0);
    assert_string_equal(e, "Zm9vYmFy");
    free(e);
    assert_int_equal(pc_base64_encode("fo", 2, &e), 0);
    assert_string_equal(e, "Zm8=");
    free(e);
    assert_int_equal(pc_base64_decode("Zm8=", 4, &d, &n), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(d, "fo", 2);
    free(d);
    assert_int_equal(pc_base64_decode("Zg==", 4, &d, &n), 0);
    assert_int_equal(n, 1);
    free(d);
    assert_int_equal(pc_base64_decode("Zm8", 3, &d, &n), PC_ERR_PARSE);  /* length */
    assert_int_equal(pc_base64_decode("Zm9=", 4, &d, &n), PC_ERR_PARSE); /* stray bits */
    assert_int_equal(pc_base64_decode("Zh==", 4, &d, &n), PC_ERR_PARSE); /* stray bits */
    assert_int_equal(pc_base64_decode("Z=8=", 4, &d, &n), PC_ERR_PARSE); /* inner '=' */
    assert_int_equal(pc_base64_decode("Zm 8", 4, &d, &n), PC_ERR_PARSE); /* space */
    assert_int_equal(pc_base64_decode("Zm8*", 4, &d, &n), PC_ERR_PARSE); /* alphabet */
    assert_int_equal(pc_base64_decode("Zg===", 5, &d, &n), PC_ERR_PARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_integers_roundtrip),  cmocka_unit_test(test_bool_strict),
        cmocka_unit_test(test_underflow_is_sticky), cmocka_unit_test(test_string_bounds),
        cmocka_unit_test(test_cstring_rules),       cmocka_unit_test(test_trailing_data),
        cmocka_unit_test(test_mpint_encoding),      cmocka_unit_test(test_mpint_refusals),
        cmocka_unit_test(test_bignum_roundtrip),    cmocka_unit_test(test_nested_buffer),
        cmocka_unit_test(test_writer_max),          cmocka_unit_test(test_secret_buffer_grows),
        cmocka_unit_test(test_putf_exact),          cmocka_unit_test(test_putf_embedded_formats),
        cmocka_unit_test(test_putf_grows),          cmocka_unit_test(test_putf_max),
        cmocka_unit_test(test_base64_strict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
