/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests for lib/pc_valid: host names, bearer tokens, hex ids and principals, at their
 * edges (empty, the longest allowed, one more, characters just outside each set, NUL, control
 * characters, non-ASCII and bidirectional overrides). */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "pc_cert.h"
#include "pc_valid.h"

/* "x" repeated n times, then suffix, in buf of bufsz bytes. */
static const char *rep(char *buf, size_t bufsz, char c, size_t n, const char *suffix)
{
    assert_true(n + strlen(suffix) < bufsz);
    memset(buf, c, n);
    memcpy(buf + n, suffix, strlen(suffix) + 1);
    return buf;
}

static const char *const nasty[] = {
    "a b",
    "a\tb",
    "a\nb",
    "a\rb",
    "a\x01"
    "b",
    "a\x7f"
    "b",
    "a\"b",
    "a\\b",
    "a/b",
    "a;b",
    "caf\xc3\xa9", /* é */
    "a\xe2\x80\xae"
    "b", /* U+202E RIGHT-TO-LEFT OVERRIDE */
    "a\xe2\x81\xa6"
    "b", /* U+2066 LEFT-TO-RIGHT ISOLATE */
    "a\xc2\xa0"
    "b", /* NO-BREAK SPACE */
};

static void test_hostname(void **state)
{
    char buf[400];
    (void)state;
    assert_true(pc_valid_hostname("a"));
    assert_true(pc_valid_hostname("web-01.example.net"));
    assert_true(pc_valid_hostname("Web_01"));
    assert_true(pc_valid_hostname(rep(buf, sizeof buf, 'a', PC_HOSTNAME_MAX, "")));
    assert_false(pc_valid_hostname(rep(buf, sizeof buf, 'a', PC_HOSTNAME_MAX + 1, "")));
    assert_false(pc_valid_hostname(""));
    assert_false(pc_valid_hostname("a:b"));
    assert_false(pc_valid_hostname("a@b"));
    for (size_t i = 0; i < sizeof nasty / sizeof nasty[0]; i++)
        assert_false(pc_valid_hostname(nasty[i]));
}

static void test_bearer_token(void **state)
{
    char buf[1100];
    (void)state;
    assert_true(pc_valid_bearer_token("0123abcdef"));
    assert_true(pc_valid_bearer_token("!~AZaz09+/="));
    assert_true(pc_valid_bearer_token(rep(buf, sizeof buf, 'f', PC_BEARER_TOKEN_MAX, "")));
    assert_false(pc_valid_bearer_token(rep(buf, sizeof buf, 'f', PC_BEARER_TOKEN_MAX + 1, "")));
    assert_false(pc_valid_bearer_token(""));
    assert_false(pc_valid_bearer_token("abc\r\nX-Injected: 1"));
    assert_false(pc_valid_bearer_token("abc "));
    for (size_t i = 0; i < sizeof nasty / sizeof nasty[0]; i++)
        if (!strchr(nasty[i], '"') && !strchr(nasty[i], '\\') && !strchr(nasty[i], '/') &&
            !strchr(nasty[i], ';'))
            assert_false(pc_valid_bearer_token(nasty[i]));
}

static void test_hex(void **state)
{
    char buf[300];
    (void)state;
    assert_true(pc_valid_hex("0123456789abcdef", 16, 16));
    assert_false(pc_valid_hex("0123456789abcdef", 15, 15)); /* longer than asked */
    assert_false(pc_valid_hex("0123456789abcde", 16, 16));  /* shorter */
    assert_true(pc_valid_hex("0123456789abcde", 1, 16));
    /* upper case is not ours: every id and token we make is lower-case (pc_random_hex) */
    assert_false(pc_valid_hex("0123456789ABCDEF", 16, 16));
    assert_false(pc_valid_hex("abcdeF", 1, 64));
    assert_false(pc_valid_hex("0123456789abcdeg", 16, 16));
    assert_false(pc_valid_hex("", 16, 16));
    assert_false(pc_valid_hex("", 1, 64));
    assert_true(pc_valid_hex("", 0, 0));
    assert_false(pc_valid_hex("0x12", 1, 64));
    assert_false(pc_valid_hex("12 ", 1, 64));
    assert_false(pc_valid_hex("-12", 1, 64));
    assert_true(pc_valid_hex(rep(buf, sizeof buf, 'a', 256, ""), 32, 256));
    assert_false(pc_valid_hex(rep(buf, sizeof buf, 'a', 257, ""), 32, 256));
    assert_false(pc_valid_hex(rep(buf, sizeof buf, 'a', 31, ""), 32, 256));
    for (size_t i = 0; i < sizeof nasty / sizeof nasty[0]; i++)
        assert_false(pc_valid_hex(nasty[i], 1, 64));
}

static void test_principal(void **state)
{
    char buf[300];
    const char withnul[] = "ab\0cd";
    (void)state;
    assert_true(pc_valid_principal("alice", 5));
    assert_true(pc_valid_principal("web-01.example.net", 18));
    assert_true(pc_valid_principal("a._@+$:-z", 9));
    assert_true(pc_valid_principal("192.0.2.1", 9));
    assert_true(pc_valid_principal("2001:db8::1", 11));
    assert_true(pc_valid_principal(".dot-first", 10));
    assert_true(pc_valid_principal("dash-last-", 10));
    assert_false(pc_valid_principal("-dash-first", 11)); /* would read as an option */
    assert_false(pc_valid_principal("", 0));
    assert_true(
        pc_valid_principal(rep(buf, sizeof buf, 'p', PC_PRINCIPAL_MAX, ""), PC_PRINCIPAL_MAX));
    assert_false(pc_valid_principal(rep(buf, sizeof buf, 'p', PC_PRINCIPAL_MAX + 1, ""),
                                    PC_PRINCIPAL_MAX + 1));
    assert_int_equal(PC_PRINCIPAL_MAX, PC_CERT_NAME_MAX);
    assert_false(pc_valid_principal(withnul, 5)); /* a NUL within the length */
    assert_true(pc_valid_principal(withnul, 2));
    assert_true(pc_valid_principal("ab,cd", 2)); /* only s[0..len) counts */
    assert_false(pc_valid_principal("ab,cd", 5));
    assert_false(pc_valid_principal("a*b", 3));
    for (size_t i = 0; i < sizeof nasty / sizeof nasty[0]; i++)
        assert_false(pc_valid_principal(nasty[i], strlen(nasty[i])));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostname),
        cmocka_unit_test(test_bearer_token),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_principal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
