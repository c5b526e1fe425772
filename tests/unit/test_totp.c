/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests for lib/pc_totp: RFC 6238 vectors, verification window, otpauth:// URI. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "pc_err.h"
#include "pc_mem.h"
#include "pc_totp.h"

/* RFC 6238 Appendix B, SHA-1 seed: the 20 ASCII bytes "12345678901234567890". */
static const unsigned char rfc_secret[] = "12345678901234567890";
#define RFC_LEN 20

static const struct {
    int64_t t;
    const char *code; /* the last 6 digits of the RFC's 8-digit value */
} vectors[] = {
    { 59, "287082" },          /* 94287082 */
    { 1111111109, "081804" },  /* 07081804 */
    { 1111111111, "050471" },  /* 14050471 */
    { 1234567890, "005924" },  /* 89005924 */
    { 2000000000, "279037" },  /* 69279037 */
    { 20000000000, "353130" }, /* 65353130 */
};
#define NVECTORS (sizeof vectors / sizeof vectors[0])

static int group_setup(void **state)
{
    (void)state;
    return pc_totp_init() == PC_OK ? 0 : -1;
}

static void code_at(int64_t t, char out[PC_TOTP_DIGITS + 1])
{
    assert_int_equal(pc_totp_code(rfc_secret, RFC_LEN, t, out, PC_TOTP_DIGITS + 1), PC_OK);
    assert_int_equal(strlen(out), PC_TOTP_DIGITS);
}

/* ---- pc_totp_code ---------------------------------------------------------------------- */

static void test_rfc6238_vectors(void **state)
{
    (void)state;
    assert_int_equal(sizeof rfc_secret - 1, RFC_LEN);
    for (size_t i = 0; i < NVECTORS; i++) {
        char out[PC_TOTP_DIGITS + 1];
        memset(out, 'X', sizeof out);
        code_at(vectors[i].t, out);
        if (strcmp(out, vectors[i].code) != 0)
            fail_msg("t=%lld: got %s, RFC says %s", (long long)vectors[i].t, out, vectors[i].code);
    }
}

static void test_code_same_within_step(void **state)
{
    char a[PC_TOTP_DIGITS + 1], b[PC_TOTP_DIGITS + 1];
    (void)state;

    /* 1111111109 and 1111111111 are in different steps (37037036 and 37037037). */
    code_at(1111111110, a); /* first second of step 37037037 */
    assert_string_equal(a, "050471");
    code_at(1111111139, b); /* last second of it */
    assert_string_equal(b, "050471");
    code_at(1111111140, b); /* next step */
    assert_string_not_equal(b, "050471");
}

static void test_code_bad_args(void **state)
{
    char out[PC_TOTP_DIGITS + 1];
    (void)state;

    assert_int_equal(pc_totp_code(rfc_secret, RFC_LEN, 59, out, PC_TOTP_DIGITS), PC_ERR_INVAL);
    assert_int_equal(pc_totp_code(rfc_secret, RFC_LEN, -1, out, sizeof out), PC_ERR_INVAL);
}

/* ---- pc_totp_verify -------------------------------------------------------------------- */

#define T0 1111111111 /* RFC vector: step 37037037, code 050471 */
#define S0 (T0 / 30)
#define C0 "050471"

static void test_verify_exact_step(void **state)
{
    uint64_t step;
    (void)state;

    for (size_t i = 0; i < NVECTORS; i++) {
        step = 0;
        assert_int_equal(pc_totp_verify(rfc_secret, RFC_LEN, vectors[i].t, 0, vectors[i].code,
                                        &step),
                         PC_OK);
        assert_true(step == (uint64_t)(vectors[i].t / 30));
        step = 0;
        assert_int_equal(pc_totp_verify(rfc_secret, RFC_LEN, vectors[i].t, 1, vectors[i].code,
                                        &step),
                         PC_OK);
        assert_true(step == (uint64_t)(vectors[i].t / 30));
    }
    assert_int_equal(S0, 37037037);
}

static void test_verify_window_one(void **state)
{
    uint64_t step;
    (void)state;

    /* The code of step S0, checked one step later (the user was slow) ... */
    step = 0;
    assert_int_equal(pc_totp_verify(rfc_secret, RFC_LEN, T0 + 30, 1, C0, &step), PC_OK);
    assert_true(step == S0);
    /* ... and one step earlier (the client's clock is ahead). */
    step = 0;
    assert_int_equal(pc_totp_verify(rfc_secret, RFC_LEN, T0 - 30, 1, C0, &step), PC_OK);
    assert_true(step == S0);
    /* Step edges: last second of S0+1, first second of S0-1. */
    step = 0;
    assert_int_equal(pc_totp_verify(rfc_secret, RFC_LEN, (S0 + 2) * 30 - 1, 1, C0, &step), PC_OK);
    assert_true(step == S0);
    step = 0;
    assert_int_equal(pc_totp_verify(rfc_secret, RFC_LEN, (S0 - 1) * 30, 1, C0, &step), PC_OK);
    assert_true(step == S0);
}

static void test_verify_two_steps_away(void **state)
{
    uint64_t step = 4242;
    (void)state;

    assert_int_equal(pc_totp_verify(rfc_secret, RFC_LEN, T0 + 60, 1, C0, &step), PC_ERR_AUTH);
    assert_int_equal(pc_totp_verify(rfc_secret, RFC_LEN, T0 - 60, 1, C0, &step), PC_ERR_AUTH);
    assert_int_equal(pc_totp_verify(rfc_secret, RFC_LEN, (S0 + 2) * 30, 1, C0, &step), PC_ERR_AUTH);
    assert_int_equal(pc_totp_verify(rfc_secret, RFC_LEN, (S0 - 1) * 30 - 1, 1, C0, &step),
                     PC_ERR_AUTH);
    assert_int_equal(step, 4242); /* untouched on failure */

    step = 0;
    assert_int_equal(pc_totp_verify(rfc_secret, RFC_LEN, T0 + 60, 2, C0, &step), PC_OK);
    assert_true(step == S0);
    step = 0;
    assert_int_equal(pc_totp_verify(rfc_secret, RFC_LEN, T0 - 60, 2, C0, &step), PC_OK);
    assert_true(step == S0);

    step = 4242;
    assert_int_equal(pc_totp_verify(rfc_secret, RFC_LEN, T0 + 90, 2, C0, &step), PC_ERR_AUTH);
    assert_int_equal(pc_totp_verify(rfc_secret, RFC_LEN, T0 - 90, 2, C0, &step), PC_ERR_AUTH);
    assert_int_equal(step, 4242);
}

static void test_verify_window_zero(void **state)
{
    uint64_t step = 4242;
    (void)state;

    assert_int_equal(pc_totp_verify(rfc_secret, RFC_LEN, T0 + 30, 0, C0, &step), PC_ERR_AUTH);
    assert_int_equal(pc_totp_verify(rfc_secret, RFC_LEN, T0 - 30, 0, C0, &step), PC_ERR_AUTH);
    assert_int_equal(step, 4242);
    /* anywhere within the same step is fine */
    assert_int_equal(pc_totp_verify(rfc_secret, RFC_LEN, S0 * 30, 0, C0, &step), PC_OK);
    assert_true(step == S0);
    assert_int_equal(pc_totp_verify(rfc_secret, RFC_LEN, S0 * 30 + 29, 0, C0, &step), PC_OK);
    assert_true(step == S0);
}

static void test_verify_wrong_code(void **state)
{
    char window[3][PC_TOTP_DIGITS + 1], wrong[PC_TOTP_DIGITS + 1];
    static const unsigned char other_secret[] = "09876543210987654321";
    uint64_t step = 4242;
    (void)state;

    code_at(T0 - 30, window[0]);
    code_at(T0, window[1]);
    code_at(T0 + 30, window[2]);
    /* change the last digit until it matches none of the three */
    memcpy(wrong, C0, sizeof wrong);
    do {
        wrong[5] = (char)('0' + (wrong[5] - '0' + 1) % 10);
    } while (!strcmp(wrong, window[0]) || !strcmp(wrong, window[1]) || !strcmp(wrong, window[2]));

    assert_int_equal(pc_totp_verify(rfc_secret, RFC_LEN, T0, 1, wrong, &step), PC_ERR_AUTH);
    /* right code, wrong seed */
    assert_int_equal(pc_totp_verify(other_secret, RFC_LEN, T0, 1, C0, &step), PC_ERR_AUTH);
    /* a code from another vector's time */
    assert_int_equal(pc_totp_verify(rfc_secret, RFC_LEN, T0, 1, "005924", &step), PC_ERR_AUTH);
    assert_int_equal(step, 4242);
}

static void test_verify_malformed_code(void **state)
{
    static const char *bad[] = { "12345",  "1234567", "12a456",  "",       " 50471", "050471 ",
                                 "+50471", "-50471",  "05047\n", "0504.1", "0x0471" };
    uint64_t step = 4242;
    (void)state;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = pc_totp_verify(rfc_secret, RFC_LEN, T0, 1, bad[i], &step);
        if (rc != PC_ERR_INVAL)
            fail_msg("code \"%s\" gave %d, expected PC_ERR_INVAL", bad[i], rc);
    }
    assert_int_equal(pc_totp_verify(rfc_secret, RFC_LEN, T0, 1, NULL, &step), PC_ERR_INVAL);
    /* the right code followed by more digits is not the right code */
    assert_int_equal(pc_totp_verify(rfc_secret, RFC_LEN, T0, 1, "0504710", &step), PC_ERR_INVAL);
    assert_int_equal(pc_totp_verify(rfc_secret, RFC_LEN, -1, 1, C0, &step), PC_ERR_INVAL);
    assert_int_equal(step, 4242);
}

static void test_verify_near_epoch(void **state)
{
    char c0[PC_TOTP_DIGITS + 1], c1[PC_TOTP_DIGITS + 1];
    uint64_t step = 4242;
    (void)state;

    code_at(0, c0);
    code_at(30, c1);
    assert_int_equal(pc_totp_verify(rfc_secret, RFC_LEN, 5, 1, c0, &step), PC_OK);
    assert_int_equal(step, 0);
    assert_int_equal(pc_totp_verify(rfc_secret, RFC_LEN, 5, 1, c1, &step), PC_OK);
    assert_int_equal(step, 1);
    assert_int_equal(pc_totp_verify(rfc_secret, RFC_LEN, 59, 0, "287082", &step), PC_OK);
    assert_int_equal(step, 1);
}

/* ---- pc_totp_uri ----------------------------------------------------------------------- */

#define URI_TAIL "&issuer=Portcullis&algorithm=SHA1&digits=6&period=30"

static void check_uri(const char *account, const unsigned char *secret, size_t len,
                      const char *want)
{
    char *uri = (char *)"sentinel";
    assert_int_equal(pc_totp_uri(account, secret, len, &uri), PC_OK);
    assert_non_null(uri);
    assert_string_equal(uri, want);
    pc_free_secret_str(uri);
}

static void test_uri_known_secret(void **state)
{
    (void)state;
    check_uri("alice", rfc_secret, RFC_LEN,
              "otpauth://totp/Portcullis:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" URI_TAIL);
}

static void test_uri_no_padding(void **state)
{
    (void)state;
    /* base32("1") = "GE======", base32("1234") = "GEZDGNA=", base32("123456") = "GEZDGNBVGY======" */
    check_uri("bob", (const unsigned char *)"1", 1,
              "otpauth://totp/Portcullis:bob?secret=GE" URI_TAIL);
    check_uri("bob", (const unsigned char *)"1234", 4,
              "otpauth://totp/Portcullis:bob?secret=GEZDGNA" URI_TAIL);
    check_uri("bob", (const unsigned char *)"123456", 6,
              "otpauth://totp/Portcullis:bob?secret=GEZDGNBVGY" URI_TAIL);
}

static void test_uri_percent_encoding(void **state)
{
    (void)state;
    check_uri(
        "alice smith", rfc_secret, RFC_LEN,
        "otpauth://totp/Portcullis:alice%20smith?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" URI_TAIL);
    check_uri("alice@example.com", rfc_secret, RFC_LEN,
              "otpauth://totp/Portcullis:alice%40example.com"
              "?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" URI_TAIL);
    check_uri(
        "dom:user", rfc_secret, RFC_LEN,
        "otpauth://totp/Portcullis:dom%3Auser?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" URI_TAIL);
    check_uri("a/b?c&d=e#f%+", (const unsigned char *)"1", 1,
              "otpauth://totp/Portcullis:a%2Fb%3Fc%26d%3De%23f%25%2B?secret=GE" URI_TAIL);
    /* unreserved characters stay as they are; UTF-8 is encoded byte by byte, upper-case hex */
    check_uri("Az09-._~", (const unsigned char *)"1", 1,
              "otpauth://totp/Portcullis:Az09-._~?secret=GE" URI_TAIL);
    check_uri("j\xc3\xb6rg", (const unsigned char *)"1", 1,
              "otpauth://totp/Portcullis:j%C3%B6rg?secret=GE" URI_TAIL);
}

static void test_uri_long_account(void **state)
{
    /* forces the buffer to grow several times */
    char account[301], want[2048];
    size_t n;
    (void)state;

    memset(account, ' ', 300);
    account[300] = '\0';
    n = (size_t)snprintf(want, sizeof want, "otpauth://totp/Portcullis:");
    for (int i = 0; i < 300; i++)
        n += (size_t)snprintf(want + n, sizeof want - n, "%%20");
    snprintf(want + n, sizeof want - n, "?secret=GE" URI_TAIL);
    check_uri(account, (const unsigned char *)"1", 1, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc6238_vectors),       cmocka_unit_test(test_code_same_within_step),
        cmocka_unit_test(test_code_bad_args),         cmocka_unit_test(test_verify_exact_step),
        cmocka_unit_test(test_verify_window_one),     cmocka_unit_test(test_verify_two_steps_away),
        cmocka_unit_test(test_verify_window_zero),    cmocka_unit_test(test_verify_wrong_code),
        cmocka_unit_test(test_verify_malformed_code), cmocka_unit_test(test_verify_near_epoch),
        cmocka_unit_test(test_uri_known_secret),      cmocka_unit_test(test_uri_no_padding),
        cmocka_unit_test(test_uri_percent_encoding),  cmocka_unit_test(test_uri_long_account),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
