/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests for lib/pc_json: strict parsing, unknown fields, typed getters. */
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
#include "pc_json.h"

#define assert_starts_with(s, prefix) \
    do { \
        if (strncmp((s), (prefix), strlen(prefix)) != 0) \
            fail_msg("\"%s\" does not start with \"%s\"", (s), (prefix)); \
    } while (0)

static void jerr_reset(struct pc_jerr *e)
{
    e->code = NULL;
    memset(e->message, 0, sizeof e->message);
}

/* Parses a text that must be accepted. */
static json_object *parse_ok(const char *s)
{
    json_object *o = NULL;
    struct pc_jerr e;
    int rc;

    jerr_reset(&e);
    rc = pc_json_parse_object(s, strlen(s), &o, &e);
    if (rc != PC_OK)
        fail_msg("refused %s: %d %s %s", s, rc, e.code ? e.code : "(null)", e.message);
    assert_non_null(o);
    assert_true(json_object_is_type(o, json_type_object));
    return o;
}

/* Parses len bytes that must be refused with bad_json; returns the message in e. */
static void parse_bad_n(const char *s, size_t len, struct pc_jerr *e)
{
    json_object *o = (json_object *)&o; /* non-NULL sentinel: must be reset to NULL */
    int rc;

    jerr_reset(e);
    rc = pc_json_parse_object(s, len, &o, e);
    if (rc != PC_ERR_PARSE)
        fail_msg("accepted or wrong code for [%.*s]: %d", (int)len, s, rc);
    assert_null(o);
    assert_non_null(e->code);
    assert_string_equal(e->code, "bad_json");
    assert_true(e->message[0] != '\0');
}

static void parse_bad(const char *s, struct pc_jerr *e)
{
    parse_bad_n(s, strlen(s), e);
}

/* ---- pc_json_parse_object -------------------------------------------------------------- */

static void test_parse_valid(void **state)
{
    json_object *o, *v;
    (void)state;

    o = parse_ok("{\"name\":\"alice\",\"n\":3,\"ok\":true,\"tags\":[\"a\",\"b\"],"
                 "\"nested\":{\"x\":[1,2]},\"nil\":null,\"u\":\"\\u00e9\xe2\x82\xac\"}");
    assert_int_equal(json_object_object_length(o), 7);
    assert_true(json_object_object_get_ex(o, "name", &v));
    assert_string_equal(json_object_get_string(v), "alice");
    assert_true(json_object_object_get_ex(o, "u", &v));
    assert_string_equal(json_object_get_string(v), "\xc3\xa9\xe2\x82\xac");
    json_object_put(o);

    o = parse_ok("{}");
    assert_int_equal(json_object_object_length(o), 0);
    json_object_put(o);

    o = parse_ok(" \t\r\n{ \"a\" : 1 }");
    json_object_put(o);
}

static void test_parse_trailing_whitespace(void **state)
{
    json_object *o;
    (void)state;

    o = parse_ok("{}\n");
    json_object_put(o);
    o = parse_ok("{\"a\":1} \t\r\n \n");
    json_object_put(o);
}

static void test_parse_not_object(void **state)
{
    static const char *texts[] = { "[]",    "[1,2]", "[{\"a\":1}]", "42 ",
                                   "\"s\"", "true ", "null ",       "1.5 " };
    struct pc_jerr e;
    (void)state;

    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        parse_bad(texts[i], &e);
        if (strcmp(e.message, "body must be a JSON object") != 0)
            fail_msg("%s: message \"%s\"", texts[i], e.message);
    }
    /* A bare number or null with nothing after it is refused too (as incomplete). */
    parse_bad("42", &e);
    parse_bad("null", &e);
}

static void test_parse_malformed(void **state)
{
    static const char *texts[] = {
        "{",
        "}",
        "{\"a\":}",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{a:1}",
        "{\"a\":tru}",
        "{\"a\":01}",
        "{\"a\":\"unterminated}",
        "{\"a\":[1,2}",
        "{\"a\":1 \"b\":2}",
        "{\"a\":\"\\x41\"}",
        "{\"a\":+1}",
        "{,}",
        "{\"a\":1 2}",
    };
    struct pc_jerr e;
    (void)state;

    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        parse_bad(texts[i], &e);
        assert_starts_with(e.message, "malformed JSON");
    }
}

static void test_parse_trailing_garbage(void **state)
{
    static const char *texts[] = { "{}x",    "{} x",  "{}{}",          "{\"a\":1}]",
                                   "{} \n,", "{}\n}", "{} // comment", "{}\x0b" };
    struct pc_jerr e;
    (void)state;

    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        parse_bad(texts[i], &e);
}

static char *nested(int depth)
{
    /* {"a": [[ ... ]]} with depth containers in total */
    size_t cap = 16 + 2 * (size_t)depth;
    char *s = malloc(cap);
    size_t n = 0;

    assert_non_null(s);
    n += (size_t)snprintf(s, cap, "{\"a\":");
    for (int i = 1; i < depth; i++)
        s[n++] = '[';
    for (int i = 1; i < depth; i++)
        s[n++] = ']';
    s[n++] = '}';
    s[n] = '\0';
    return s;
}

static char *nested_objects(int depth)
{
    /* {"a":{"a":{ ... {} ... }}} with depth objects in total */
    size_t cap = 8 * (size_t)depth + 8;
    char *s = malloc(cap);
    size_t n = 0;

    assert_non_null(s);
    for (int i = 1; i < depth; i++)
        n += (size_t)snprintf(s + n, cap - n, "{\"a\":");
    n += (size_t)snprintf(s + n, cap - n, "{}");
    for (int i = 1; i < depth; i++)
        s[n++] = '}';
    s[n] = '\0';
    return s;
}

static void test_parse_depth(void **state)
{
    struct pc_jerr e;
    json_object *o;
    char *s;
    (void)state;

    s = nested(PC_JSON_MAX_DEPTH);
    o = parse_ok(s);
    json_object_put(o);
    free(s);
    s = nested(PC_JSON_MAX_DEPTH + 1);
    parse_bad(s, &e);
    assert_string_equal(e.message, "malformed JSON: nested too deeply");
    free(s);
    s = nested(100);
    parse_bad(s, &e);
    free(s);

    s = nested_objects(PC_JSON_MAX_DEPTH);
    o = parse_ok(s);
    json_object_put(o);
    free(s);
    s = nested_objects(PC_JSON_MAX_DEPTH + 1);
    parse_bad(s, &e);
    assert_string_equal(e.message, "malformed JSON: nested too deeply");
    free(s);
}

static void test_parse_invalid_utf8(void **state)
{
    static const char *texts[] = {
        "{\"a\":\"\xff\"}",     /* never valid */
        "{\"a\":\"\xc3\"}",     /* truncated 2-byte sequence */
        "{\"a\":\"\xe2\x82\"}", /* truncated 3-byte sequence */
        "{\"a\":\"\x80\"}",     /* lone continuation byte */
        "{\"\xfe\":1}",         /* in a key */
        "{\"a\":\"ok\"} \xc3",  /* after the value */
    };
    struct pc_jerr e;
    json_object *o;
    (void)state;

    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        parse_bad(texts[i], &e);
    parse_bad(texts[0], &e);
    assert_string_equal(e.message, "malformed JSON: invalid UTF-8");
    /* Valid multi-byte UTF-8 passes. */
    o = parse_ok("{\"caf\xc3\xa9\":\"\xe2\x82\xac \xf0\x9f\x94\x91\"}");
    json_object_put(o);
}

static void test_parse_nul_byte(void **state)
{
    static const char after[] = "{\"a\":1}\0";
    static const char inside[] = "{\"a\":\"x\0y\"}";
    struct pc_jerr e;
    (void)state;

    parse_bad_n(after, sizeof after - 1, &e);
    assert_string_equal(e.message, "body contains a NUL byte");
    parse_bad_n(inside, sizeof inside - 1, &e);
    assert_string_equal(e.message, "body contains a NUL byte");
    /* escaped in a key, too: json-c would cut the key at it */
    parse_bad("{\"a\\u0000b\":1}", &e);
    assert_string_equal(e.message, "malformed JSON: \\u0000 in an object key");
}

static void test_parse_empty(void **state)
{
    struct pc_jerr e;
    (void)state;

    parse_bad_n("", 0, &e);
    assert_string_equal(e.message, "body must be a JSON object");
    parse_bad_n("{}", 0, &e); /* exactly len bytes: none */
    parse_bad(" ", &e);
    parse_bad("\n\n", &e);
}

static void test_parse_exact_len(void **state)
{
    /* Only len bytes are read: a prefix that is a whole object is accepted,
     * a prefix that is not is refused. */
    const char *s = "{\"a\":1}GARBAGE";
    json_object *o = NULL;
    struct pc_jerr e;
    (void)state;

    jerr_reset(&e);
    assert_int_equal(pc_json_parse_object(s, 7, &o, &e), PC_OK);
    assert_non_null(o);
    json_object_put(o);
    parse_bad_n(s, 6, &e);
    /* e may be NULL */
    assert_int_equal(pc_json_parse_object("[]", 2, &o, NULL), PC_ERR_PARSE);
    assert_null(o);
}

/* ---- pc_json_only_fields --------------------------------------------------------------- */

static void test_only_fields(void **state)
{
    static const char *const allowed[] = { "name", "role", NULL };
    static const char *const none[] = { NULL };
    struct pc_jerr e;
    json_object *o;
    (void)state;

    o = parse_ok("{\"name\":\"a\",\"role\":\"admin\"}");
    jerr_reset(&e);
    assert_int_equal(pc_json_only_fields(o, allowed, &e), PC_OK);
    assert_null(e.code);
    json_object_put(o);

    o = parse_ok("{\"role\":\"admin\"}");
    assert_int_equal(pc_json_only_fields(o, allowed, &e), PC_OK);
    json_object_put(o);

    o = parse_ok("{}");
    assert_int_equal(pc_json_only_fields(o, allowed, &e), PC_OK);
    assert_int_equal(pc_json_only_fields(o, none, &e), PC_OK);
    json_object_put(o);

    o = parse_ok("{\"name\":\"a\",\"is_admin\":true,\"role\":\"x\"}");
    jerr_reset(&e);
    assert_int_equal(pc_json_only_fields(o, allowed, &e), PC_ERR_INVAL);
    assert_string_equal(e.code, "unknown_field");
    assert_string_equal(e.message, "unknown field 'is_admin'");
    assert_int_equal(pc_json_only_fields(o, none, &e), PC_ERR_INVAL);
    assert_string_equal(e.code, "unknown_field");
    json_object_put(o);

    /* Names are compared exactly. */
    o = parse_ok("{\"Name\":\"a\"}");
    jerr_reset(&e);
    assert_int_equal(pc_json_only_fields(o, allowed, &e), PC_ERR_INVAL);
    assert_string_equal(e.message, "unknown field 'Name'");
    json_object_put(o);
    o = parse_ok("{\"nam\":\"a\"}");
    assert_int_equal(pc_json_only_fields(o, allowed, &e), PC_ERR_INVAL);
    assert_string_equal(e.message, "unknown field 'nam'");
    json_object_put(o);
}

/* ---- getters --------------------------------------------------------------------------- */

static void test_get_str(void **state)
{
    json_object *o = parse_ok("{\"name\":\"alice\",\"n\":1,\"b\":true,\"o\":{},\"a\":[\"x\"],"
                              "\"empty\":\"\",\"e\":\"\xc3\xa9\xc3\xa9\xc3\xa9\","
                              "\"nil\":null}");
    static const char *wrong[] = { "n", "b", "o", "a" };
    struct pc_jerr e;
    const char *s;
    (void)state;

    s = NULL;
    jerr_reset(&e);
    assert_int_equal(pc_json_get_str(o, "name", 1, 64, &s, &e), PC_OK);
    assert_string_equal(s, "alice");
    assert_null(e.code);

    /* missing */
    s = "default";
    assert_int_equal(pc_json_get_str(o, "absent", 0, 64, &s, &e), PC_OK);
    assert_string_equal(s, "default");
    assert_null(e.code);
    assert_int_equal(pc_json_get_str(o, "absent", 1, 64, &s, &e), PC_ERR_NOTFOUND);
    assert_string_equal(e.code, "missing_field");
    assert_string_equal(e.message, "missing field 'absent'");
    assert_string_equal(s, "default");

    /* an explicit JSON null is a wrong value, never "use the default" */
    jerr_reset(&e);
    assert_int_equal(pc_json_get_str(o, "nil", 0, 64, &s, &e), PC_ERR_INVAL);
    assert_string_equal(s, "default");
    assert_string_equal(e.code, "bad_field");
    assert_string_equal(e.message, "field 'nil' must not be null");
    assert_int_equal(pc_json_get_str(o, "nil", 1, 64, &s, &e), PC_ERR_INVAL);
    assert_string_equal(e.code, "bad_field");

    /* wrong types, required or not */
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        char want[64];
        for (int req = 0; req <= 1; req++) {
            jerr_reset(&e);
            assert_int_equal(pc_json_get_str(o, wrong[i], req, 64, &s, &e), PC_ERR_INVAL);
            assert_string_equal(e.code, "bad_field");
            snprintf(want, sizeof want, "field '%s' must be a string", wrong[i]);
            assert_string_equal(e.message, want);
            assert_string_equal(s, "default");
        }
    }

    /* embedded NUL: the parser refuses \u0000, so build the value directly (defence in depth) */
    json_object_object_add(o, "nul", json_object_new_string_len("a\0b", 3));
    jerr_reset(&e);
    assert_int_equal(pc_json_get_str(o, "nul", 0, 64, &s, &e), PC_ERR_INVAL);
    assert_string_equal(e.code, "bad_field");
    assert_string_equal(e.message, "field 'nul' contains a NUL character");
    assert_string_equal(s, "default");

    /* length in bytes, bound inclusive */
    assert_int_equal(pc_json_get_str(o, "name", 1, 5, &s, &e), PC_OK);
    assert_string_equal(s, "alice");
    s = "default";
    jerr_reset(&e);
    assert_int_equal(pc_json_get_str(o, "name", 1, 4, &s, &e), PC_ERR_INVAL);
    assert_string_equal(e.code, "bad_field");
    assert_string_equal(e.message, "field 'name' is too long");
    assert_string_equal(s, "default");
    assert_int_equal(pc_json_get_str(o, "e", 1, 6, &s, &e), PC_OK);
    assert_int_equal(strlen(s), 6);
    assert_int_equal(pc_json_get_str(o, "e", 1, 5, &s, &e), PC_ERR_INVAL);
    assert_string_equal(e.code, "bad_field");

    /* an empty string is a string */
    assert_int_equal(pc_json_get_str(o, "empty", 1, 64, &s, &e), PC_OK);
    assert_string_equal(s, "");

    /* e may be NULL */
    assert_int_equal(pc_json_get_str(o, "n", 1, 64, &s, NULL), PC_ERR_INVAL);
    json_object_put(o);
}

static void test_get_int(void **state)
{
    json_object *o = parse_ok("{\"n\":42,\"zero\":0,\"neg\":-5,\"s\":\"42\",\"d\":4.0,\"b\":true,"
                              "\"big\":99999999999999999999,\"min\":-9223372036854775808,"
                              "\"a\":[1],\"nil\":null}");
    static const char *wrong[] = { "s", "d", "b", "a" };
    struct pc_jerr e;
    int64_t v;
    (void)state;

    v = -1;
    jerr_reset(&e);
    assert_int_equal(pc_json_get_int(o, "n", 1, 0, 100, &v, &e), PC_OK);
    assert_int_equal(v, 42);
    assert_null(e.code);
    assert_int_equal(pc_json_get_int(o, "neg", 1, -10, 10, &v, &e), PC_OK);
    assert_int_equal(v, -5);
    assert_int_equal(pc_json_get_int(o, "min", 1, INT64_MIN, 0, &v, &e), PC_OK);
    assert_true(v == INT64_MIN);

    /* bounds inclusive */
    assert_int_equal(pc_json_get_int(o, "n", 1, 42, 42, &v, &e), PC_OK);
    assert_int_equal(v, 42);
    v = 7;
    jerr_reset(&e);
    assert_int_equal(pc_json_get_int(o, "n", 1, 43, 100, &v, &e), PC_ERR_INVAL);
    assert_string_equal(e.code, "bad_field");
    assert_string_equal(e.message, "field 'n' is out of range");
    assert_int_equal(pc_json_get_int(o, "n", 1, 0, 41, &v, &e), PC_ERR_INVAL);
    assert_int_equal(pc_json_get_int(o, "zero", 1, 1, 10, &v, &e), PC_ERR_INVAL);
    assert_int_equal(pc_json_get_int(o, "neg", 1, 0, 10, &v, &e), PC_ERR_INVAL);
    jerr_reset(&e);
    assert_int_equal(pc_json_get_int(o, "big", 1, 0, 1000000, &v, &e), PC_ERR_INVAL);
    assert_string_equal(e.code, "bad_field");
    assert_int_equal(v, 7);

    /* wrong types */
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        char want[64];
        jerr_reset(&e);
        assert_int_equal(pc_json_get_int(o, wrong[i], 0, INT64_MIN, INT64_MAX, &v, &e),
                         PC_ERR_INVAL);
        assert_string_equal(e.code, "bad_field");
        snprintf(want, sizeof want, "field '%s' must be an integer", wrong[i]);
        assert_string_equal(e.message, want);
    }
    assert_int_equal(v, 7);

    /* absent */
    assert_int_equal(pc_json_get_int(o, "absent", 0, 0, 10, &v, &e), PC_OK);
    assert_int_equal(v, 7);
    assert_int_equal(pc_json_get_int(o, "nil", 0, 0, 10, &v, &e), PC_ERR_INVAL);
    assert_int_equal(v, 7);
    jerr_reset(&e);
    assert_int_equal(pc_json_get_int(o, "absent", 1, 0, 10, &v, &e), PC_ERR_NOTFOUND);
    assert_string_equal(e.code, "missing_field");
    assert_string_equal(e.message, "missing field 'absent'");
    assert_int_equal(v, 7);
    json_object_put(o);
}

static void test_get_bool(void **state)
{
    json_object *o = parse_ok("{\"t\":true,\"f\":false,\"one\":1,\"s\":\"true\",\"a\":[true]}");
    static const char *wrong[] = { "one", "s", "a" };
    struct pc_jerr e;
    int b;
    (void)state;

    b = -1;
    assert_int_equal(pc_json_get_bool(o, "t", 1, &b, &e), PC_OK);
    assert_int_equal(b, 1);
    assert_int_equal(pc_json_get_bool(o, "f", 1, &b, &e), PC_OK);
    assert_int_equal(b, 0);

    b = -1;
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        char want[64];
        jerr_reset(&e);
        assert_int_equal(pc_json_get_bool(o, wrong[i], 0, &b, &e), PC_ERR_INVAL);
        assert_string_equal(e.code, "bad_field");
        snprintf(want, sizeof want, "field '%s' must be true or false", wrong[i]);
        assert_string_equal(e.message, want);
    }
    assert_int_equal(b, -1);

    assert_int_equal(pc_json_get_bool(o, "absent", 0, &b, &e), PC_OK);
    assert_int_equal(b, -1);
    jerr_reset(&e);
    assert_int_equal(pc_json_get_bool(o, "absent", 1, &b, &e), PC_ERR_NOTFOUND);
    assert_string_equal(e.code, "missing_field");
    assert_string_equal(e.message, "missing field 'absent'");
    assert_int_equal(b, -1);
    json_object_put(o);
}

static void test_get_str_array(void **state)
{
    json_object *o = parse_ok("{\"ok\":[\"web1\",\"db\"],\"empty\":[],\"num\":[\"a\",1],"
                              "\"nested\":[[\"a\"]],\"nil_item\":[null],\"blank\":[\"a\",\"\"],"
                              "\"long\":[\"abcd\",\"abcdef\"],"
                              "\"three\":[\"a\",\"b\",\"c\"],\"str\":\"a\",\"obj\":{}}");
    json_object *arr, *sentinel = (json_object *)&sentinel;
    struct pc_jerr e;
    (void)state;

    arr = NULL;
    jerr_reset(&e);
    assert_int_equal(pc_json_get_str_array(o, "ok", 1, 4, 16, &arr, &e), PC_OK);
    assert_non_null(arr);
    assert_int_equal(json_object_array_length(arr), 2);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(arr, 1)), "db");
    assert_null(e.code);

    arr = NULL;
    assert_int_equal(pc_json_get_str_array(o, "empty", 1, 4, 16, &arr, &e), PC_OK);
    assert_non_null(arr);
    assert_int_equal(json_object_array_length(arr), 0);

    /* item count: bound inclusive */
    assert_int_equal(pc_json_get_str_array(o, "three", 1, 3, 16, &arr, &e), PC_OK);
    arr = sentinel;
    jerr_reset(&e);
    assert_int_equal(pc_json_get_str_array(o, "three", 1, 2, 16, &arr, &e), PC_ERR_INVAL);
    assert_string_equal(e.code, "bad_field");
    assert_string_equal(e.message, "field 'three' has too many items");
    assert_ptr_equal(arr, sentinel);

    /* item length: bound inclusive, empty items refused */
    assert_int_equal(pc_json_get_str_array(o, "long", 1, 4, 6, &arr, &e), PC_OK);
    arr = sentinel;
    jerr_reset(&e);
    assert_int_equal(pc_json_get_str_array(o, "long", 1, 4, 5, &arr, &e), PC_ERR_INVAL);
    assert_string_equal(e.code, "bad_field");
    assert_string_equal(e.message, "field 'long' has an invalid item");
    jerr_reset(&e);
    assert_int_equal(pc_json_get_str_array(o, "blank", 1, 4, 16, &arr, &e), PC_ERR_INVAL);
    assert_string_equal(e.code, "bad_field");
    assert_string_equal(e.message, "field 'blank' has an invalid item");
    {
        json_object *nularr = json_object_new_array();
        json_object_array_add(nularr, json_object_new_string_len("a\0", 2));
        json_object_object_add(o, "nul", nularr);
    }
    jerr_reset(&e);
    assert_int_equal(pc_json_get_str_array(o, "nul", 1, 4, 16, &arr, &e), PC_ERR_INVAL);
    assert_string_equal(e.code, "bad_field");
    assert_string_equal(e.message, "field 'nul' has an invalid item");

    /* wrong item types and non-arrays */
    {
        static const char *wrong[] = { "num", "nested", "nil_item", "str", "obj" };
        for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
            char want[80];
            jerr_reset(&e);
            assert_int_equal(pc_json_get_str_array(o, wrong[i], 0, 4, 16, &arr, &e), PC_ERR_INVAL);
            assert_string_equal(e.code, "bad_field");
            snprintf(want, sizeof want, "field '%s' must be an array of strings", wrong[i]);
            assert_string_equal(e.message, want);
        }
    }
    assert_ptr_equal(arr, sentinel);

    /* absent */
    assert_int_equal(pc_json_get_str_array(o, "absent", 0, 4, 16, &arr, &e), PC_OK);
    assert_ptr_equal(arr, sentinel);
    jerr_reset(&e);
    assert_int_equal(pc_json_get_str_array(o, "absent", 1, 4, 16, &arr, &e), PC_ERR_NOTFOUND);
    assert_string_equal(e.code, "missing_field");
    assert_string_equal(e.message, "missing field 'absent'");
    json_object_put(o);
}

static void test_dump(void **state)
{
    json_object *o = parse_ok("{ \"a\" : \"x/y\" , \"n\" : [ 1 , true ] }");
    (void)state;

    assert_string_equal(pc_json_dump(o), "{\"a\":\"x/y\",\"n\":[1,true]}");
    json_object_put(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_trailing_whitespace),
        cmocka_unit_test(test_parse_not_object),
        cmocka_unit_test(test_parse_malformed),
        cmocka_unit_test(test_parse_trailing_garbage),
        cmocka_unit_test(test_parse_depth),
        cmocka_unit_test(test_parse_invalid_utf8),
        cmocka_unit_test(test_parse_nul_byte),
        cmocka_unit_test(test_parse_empty),
        cmocka_unit_test(test_parse_exact_len),
        cmocka_unit_test(test_only_fields),
        cmocka_unit_test(test_get_str),
        cmocka_unit_test(test_get_int),
        cmocka_unit_test(test_get_bool),
        cmocka_unit_test(test_get_str_array),
        cmocka_unit_test(test_dump),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
