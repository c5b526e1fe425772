/* SPDX-License-Identifier: BSD-2-Clause */
/* The strict JSON grammar check that runs before json-c on untrusted input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include "pc_err.h"
#include "pc_json.h"
#include "pc_json_strict.h"

static int check(const char *s)
{
    const char *why = NULL;
    return pc_json_validate(s, strlen(s), 8, &why);
}

static void test_accepts_rfc8259(void **state)
{
    static const char *good[] = {
        "{}",
        "[]",
        "{\"a\":1}",
        " {\"a\" : [1, -2.5e+3, 0, 0.0, 1E9, true, false, null]} ",
        "{\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\"}",
        "{\"caf\xc3\xa9\":\"\xf0\x9f\x94\x91\"}",
        "\"x\"",
        "0",
        "{\"a\":{\"b\":{\"c\":[[]]}}}",
        "{\"a\":\"x\\u0000\"}", /* in a value: the getters refuse it by length */
    };
    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_int_equal(check(good[i]), PC_OK);
}

static void test_refuses_what_json_c_lets_through(void **state)
{
    static const char *bad[] = {
        "{'a':1}", /* single quotes */
        "{\"a\":'x'}",
        "{\"a\":NaN}",
        "{\"a\":Infinity}",
        "{\"a\":-Infinity}",
        "{\"a\":\"x\ny\"}", /* raw control character in a string */
        "{\"a\":\"\x01\"}",
        "{\"a\":\"\xc0\xaf\"}",         /* overlong '/' */
        "{\"a\":\"\xe0\x80\xaf\"}",     /* overlong 3-byte */
        "{\"a\":\"\xed\xa0\x80\"}",     /* UTF-16 surrogate */
        "{\"a\":\"\xf4\x90\x80\x80\"}", /* above U+10FFFF */
        "{\"a\":\"\xff\"}",
        "{\"a\":01}",
        "{\"a\":1.}",
        "{\"a\":.5}",
        "{\"a\":+1}",
        "{\"a\":1e}",
        "{\"a\":1,}",
        "[1,]",
        "{,}",
        "{\"a\"}",
        "{\"a\":}",
        "{a:1}",
        "{\"a\":\"\\x41\"}",
        "{\"a\":\"\\u12\"}",
        "{\"a\":tru}",
        "{\"a\":nul}",
        "{\"a\":1} x",
        "{\"a\":1}{}",
        "",
        "   ",
        "{",
        "[",
        "\"abc",
        "{\"a\":1 /* comment */}",
        "{\"a\\u0000b\":1}",
        "{\"o\":{\"\\u0000\":1}}", /* U+0000 in a key */
    };
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (check(bad[i]) != PC_ERR_PARSE)
            fail_msg("accepted: %s", bad[i]);
    }
}

static void test_depth_limit(void **state)
{
    const char *why = NULL;
    (void)state;
    assert_int_equal(pc_json_validate("[[[[[[[[1]]]]]]]]", 17, 8, &why), PC_OK);
    assert_int_equal(pc_json_validate("[[[[[[[[[1]]]]]]]]]", 19, 8, &why), PC_ERR_PARSE);
    assert_string_equal(why, "nested too deeply");
}

static void test_length_is_exact(void **state)
{
    const char *why = NULL;
    (void)state;
    /* Only len bytes count: a valid prefix of a longer buffer is judged alone. */
    assert_int_equal(pc_json_validate("{}GARBAGE", 2, 8, &why), PC_OK);
    assert_int_equal(pc_json_validate("{\"a\":1}", 5, 8, &why), PC_ERR_PARSE);
}

static void test_control_characters_in_fields(void **state)
{
    struct pc_jerr e = { 0 };
    json_object *o = NULL;
    const char *s = NULL;
    const char *body =
        "{\"user\":\"bob\\nfake log line\",\"info\":\"line1\\nline2\\tx\",\"esc\":\"\\u001b[2J\"}";
    (void)state;
    assert_int_equal(pc_json_parse_object(body, strlen(body), &o, &e), PC_OK);
    assert_int_equal(pc_json_get_str(o, "user", 1, 64, &s, &e), PC_ERR_INVAL);
    assert_string_equal(e.message, "field 'user' contains a control character");
    assert_int_equal(pc_json_get_str(o, "esc", 1, 64, &s, &e), PC_ERR_INVAL);
    assert_int_equal(pc_json_get_text(o, "esc", 1, 64, &s, &e), PC_ERR_INVAL);
    assert_int_equal(pc_json_get_text(o, "info", 1, 64, &s, &e), PC_OK);
    assert_string_equal(s, "line1\nline2\tx");
    json_object_put(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_rfc8259),
        cmocka_unit_test(test_refuses_what_json_c_lets_through),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_length_is_exact),
        cmocka_unit_test(test_control_characters_in_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
