/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests for lib/pc_term: what reaches a terminal. Format characters (bidirectional
 * overrides and isolates, zero-width characters, BOM, tags) are dropped; C0/C1 controls, DEL,
 * line/paragraph separators and malformed UTF-8 become '?'; other text passes unchanged;
 * truncation never splits a character. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pc_term.h"

static void check(const char *in, const char *want)
{
    char out[256];
    pc_term_safe(out, sizeof out, in);
    if (strcmp(out, want) != 0)
        fail_msg("pc_term_safe(\"%s\") = \"%s\", want \"%s\"", in, out, want);
}

static void test_plain_text_unchanged(void **state)
{
    (void)state;
    check("", "");
    check("alice host-1 10.0.0.1 [::1]:22 ~!@#$%^&*()",
          "alice host-1 10.0.0.1 [::1]:22 ~!@#$%^&*()");
    check("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x94\x91",
          "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x94\x91");
    check("\xc2\xa0nbsp", "\xc2\xa0nbsp"); /* U+00A0 is a space, not a format character */
}

static void test_format_characters_dropped(void **state)
{
    static const char *const cf[] = {
        "\xe2\x80\xaa",     "\xe2\x80\xab", "\xe2\x80\xac", "\xe2\x80\xad",
        "\xe2\x80\xae",                                                     /* 202A-E */
        "\xe2\x81\xa6",     "\xe2\x81\xa7", "\xe2\x81\xa8", "\xe2\x81\xa9", /* 2066-9 */
        "\xe2\x80\x8b",     "\xe2\x80\x8c", "\xe2\x80\x8d", "\xe2\x80\x8e",
        "\xe2\x80\x8f",                                     /* 200B-F */
        "\xe2\x81\xa0",     "\xe2\x81\xa1", "\xe2\x81\xa4", /* 2060-4 */
        "\xef\xbb\xbf",                                     /* FEFF */
        "\xd8\x9c",                                         /* 061C ARABIC LETTER MARK */
        "\xc2\xad",                                         /* 00AD SOFT HYPHEN */
        "\xf3\xa0\x80\x81",                                 /* E0001 LANGUAGE TAG */
        "\xf3\xa0\x81\xbf",                                 /* E007F CANCEL TAG */
    };
    (void)state;
    for (size_t i = 0; i < sizeof cf / sizeof cf[0]; i++) {
        char in[32];
        snprintf(in, sizeof in, "a%sb", cf[i]);
        check(in, "ab");
    }
    /* the classic: "evil\u202Egnp.exe" would show as "evilexe.png" */
    check("evil\xe2\x80\xaegnp.exe", "evilgnp.exe");
    assert_true(pc_term_is_format(0x202E));
    assert_false(pc_term_is_format(0x2065));
    assert_false(pc_term_is_format('a'));
}

static void test_controls_become_question_marks(void **state)
{
    (void)state;
    check("a\x01"
          "b\tc\nd\re\x1b[2Jf\x7fg",
          "a?b?c?d?e?[2Jf?g");
    check("a\xc2\x80"
          "b\xc2\x9b"
          "c",
          "a?b?c"); /* C1: U+0080, U+009B (CSI) */
    check("a\xe2\x80\xa8"
          "b\xe2\x80\xa9"
          "c",
          "a?b?c"); /* U+2028, U+2029 */
}

static void test_malformed_utf8(void **state)
{
    (void)state;
    check("a\x9b"
          "b",
          "a?b"); /* a lone C1 byte: CSI on an 8-bit terminal */
    check("a\xc0\xaf"
          "b",
          "a??b"); /* overlong '/' */
    check("a\xe0\x80\xae"
          "b",
          "a???b"); /* overlong */
    check("a\xed\xa0\x80"
          "b",
          "a???b"); /* surrogate D800 */
    check("a\xf4\x90\x80\x80"
          "b",
          "a????b");           /* above U+10FFFF */
    check("a\xe2\x80", "a??"); /* truncated sequence at the end */
    check("a\xff\xfe"
          "b",
          "a??b");
}

static void test_truncation(void **state)
{
    char out[8];
    (void)state;
    pc_term_safe(out, sizeof out, "abcdefghij");
    assert_string_equal(out, "abcdefg");
    pc_term_safe(out, sizeof out,
                 "abcde\xc3\xa9"
                 "f"); /* 5 + 2 bytes fit with the NUL: 8 */
    assert_string_equal(out, "abcde\xc3\xa9");
    pc_term_safe(out, sizeof out, "abcdef\xc3\xa9"); /* é would not fit whole: dropped */
    assert_string_equal(out, "abcdef");
    pc_term_safe(out, 1, "abc");
    assert_string_equal(out, "");
    pc_term_safe(out, sizeof out,
                 "\xe2\x80\xae\xe2\x80\xae\xe2\x80\xae"
                 "abc");
    assert_string_equal(out, "abc");
}

static void test_json_escapes(void **state)
{
    char *j;
    (void)state;
    j = pc_term_json("{\"user\":\"ev\xe2\x80\xaeil\",\"h\":\"caf\xc3\xa9\"}");
    assert_non_null(j);
    assert_string_equal(j, "{\"user\":\"ev\\u202Eil\",\"h\":\"caf\xc3\xa9\"}");
    free(j);
    j = pc_term_json("[\"\xc2\x9b\x7f\xe2\x80\xa8\xf3\xa0\x80\x81\xff\"]");
    assert_non_null(j);
    assert_string_equal(j, "[\"\\u009B\\u007F\\u2028\\uDB40\\uDC01\\uFFFD\"]");
    free(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_text_unchanged),
        cmocka_unit_test(test_format_characters_dropped),
        cmocka_unit_test(test_controls_become_question_marks),
        cmocka_unit_test(test_malformed_utf8),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_json_escapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
