/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests for lib/pc_http_reply, the head of a reply: the status line, the fields (lengths,
 * codings), interim and refused replies, the bounds on lines and fields, errors that stick and
 * the wipe of what was read. */
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
#include "pc_http_reply.h"
#include "pc_sshbuf.h"
#include "http_reply_feed.h"

static void test_status_before_head_done(void **state)
{
    struct parse *ps = parse_new(0, 0);
    (void)state;
    assert_int_equal(feed_str(ps, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n", 0), PC_OK);
    assert_int_equal(ps->r.status, 0);
    assert_false(ps->r.head_done);
    assert_int_equal(feed_str(ps, "\r\n", 0), PC_OK);
    assert_int_equal(ps->r.status, 200);
    assert_true(ps->r.head_done);
    assert_false(ps->r.done);
    assert_int_equal(feed_str(ps, "x", 0), PC_OK);
    assert_true(ps->r.done);
    parse_free(ps);
}

static void test_interim_replies(void **state)
{
    static const char text[] = "HTTP/1.1 100 Continue\r\n\r\n"
                               "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n"
                               "Connection: close\r\nContent-Length: 7\r\n\r\n"
                               "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
    (void)state;
    for (size_t step = 0; step <= 1; step++) {
        struct parse *ps = NULL;
        assert_int_equal(parse_text(text, 0, 0, step, &ps), PC_OK);
        assert_true(ps->r.done);
        assert_int_equal(ps->r.status, 200);
        assert_int_equal(ps->r.keep_alive, 1); /* the 103's fields were forgotten */
        assert_body(ps, "hi");
        parse_free(ps);
    }
    /* after a 100 alone, the reply is not done and eof cuts it */
    struct parse *ps = NULL;
    assert_int_equal(parse_text("HTTP/1.1 100 Continue\r\n\r\n", 0, 0, 0, &ps), PC_OK);
    assert_false(ps->r.done);
    assert_false(ps->r.head_done);
    assert_int_equal(ps->r.status, 0);
    assert_int_equal(pc_http_reply_eof(&ps->r), PC_ERR_PARSE);
    parse_free(ps);
}

static void test_101_refused(void **state)
{
    (void)state;
    assert_int_equal(outcome("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", 0),
                     PC_ERR_PARSE);
    assert_int_equal(outcome("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching\r\n\r\n", 0),
                     PC_ERR_PARSE);
}

static void test_status_lines(void **state)
{
    static const char *const bad[] = {
        "HTTP/2 200 OK\r\n",
        "HTTP/1.1 20\r\n",
        "HTTP/1.1 999 x\r\n",
        "ICY 200 OK\r\n",
        "\r\n",
        "\n",
        "garbage\r\n",
        "http/1.1 200 OK\r\n",
        "HTTP/1.2 200 OK\r\n",
        "HTTP/1.1  200 OK\r\n",
        "HTTP/1.1 2000\r\n",
        "HTTP/1.1 200OK\r\n",
        "HTTP/1.1 099 x\r\n",
        "HTTP/1.1 600 x\r\n",
        "HTTP/1.1 -20 x\r\n",
        " HTTP/1.1 200\r\n",
        "HTTP/1.1\t200 OK\r\n",
        "HTTP/1.1 200 O\x01K\r\n",
        "HTTP/1.1 200 OK\r\r\n",
        "HTTP/1.1 2a0 OK\r\n",
    };
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = outcome(bad[i], 0);
        if (rc != PC_ERR_PARSE)
            fail_msg("status line %zu (%s): %d", i, bad[i], rc);
    }
    /* NUL inside the status line */
    struct parse *ps = parse_new(0, 0);
    assert_int_equal(feed_steps(ps, "HTTP/1.1 200 O\0K\r\n", 18, 0), PC_ERR_PARSE);
    parse_free(ps);
    /* accepted: no reason phrase, an empty one, one with tabs and obs-text, HTTP/1.0, 599 */
    static const char *const good[] = {
        "HTTP/1.1 200\r\n",
        "HTTP/1.1 200 \r\n",
        "HTTP/1.1 404 Not\tFound \xe2\x9c\x93\r\n",
        "HTTP/1.0 500 Internal\r\n",
        "HTTP/1.1 599 x\n",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "%sContent-Length: 0\r\n\r\n", good[i]);
        ps = NULL;
        assert_int_equal(parse_text(text, 0, 0, 0, &ps), PC_OK);
        assert_true(ps->r.done);
        parse_free(ps);
    }
}

static void test_header_lines(void **state)
{
    static const char *const bad[] = {
        "NoColon\r\n",     "Name : value\r\n",      "Name\t: value\r\n",
        ": value\r\n",     "X-A: 1\r\n folded\r\n", "X-A: 1\r\n\tfolded\r\n",
        "X-A: a\x01b\r\n", "X-A: a\x7f\r\n",        "X-A: a\rb\r\n",
        "X A: b\r\n",      "X(A): b\r\n",           "X-\xc3\xa9: b\r\n",
    };
    char text[256];
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "HTTP/1.1 200 OK\r\n%sContent-Length: 0\r\n\r\n", bad[i]);
        int rc = outcome(text, 0);
        if (rc != PC_ERR_PARSE)
            fail_msg("header %zu: %d", i, rc);
    }
    /* a NUL in a header line */
    static const char nul[] = "HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 0\r\n\r\n";
    for (size_t step = 0; step <= 1; step++) {
        struct parse *ps = parse_new(0, 0);
        assert_int_equal(feed_steps(ps, nul, sizeof nul - 1, step), PC_ERR_PARSE);
        assert_false(ps->r.done);
        parse_free(ps);
    }
    /* accepted: values trimmed, empty values, odd but valid names */
    struct parse *ps = NULL;
    assert_int_equal(parse_text("HTTP/1.1 200 OK\r\nX-Empty:\r\nX-Sp: \t \r\n"
                                "!#$%&'*+-.^_`|~09az: v\r\n"
                                "Content-Length: \t 3 \t\r\n\r\nabc",
                                0, 0, 0, &ps),
                     PC_OK);
    assert_true(ps->r.done);
    assert_body(ps, "abc");
    parse_free(ps);
}

static void test_content_length_values(void **state)
{
    static const char *const bad[] = {
        "+5", "-5", "5a", "", "5 5", "5, 5", "0x5", "12345678901234567890", "99999999999999999999",
        "\t",
    };
    char text[256];
    struct parse *ps = NULL;
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "HTTP/1.1 200 OK\r\nContent-Length: %s\r\n\r\n", bad[i]);
        int rc = outcome(text, 0);
        if (rc != PC_ERR_PARSE)
            fail_msg("Content-Length '%s': %d", bad[i], rc);
    }
    /* two that disagree */
    assert_int_equal(outcome("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"
                             "hello",
                             0),
                     PC_ERR_PARSE);
    /* the same twice, and with leading zeros */
    assert_int_equal(parse_text("HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 005\r\n"
                                "\r\nhello",
                                0, 0, 0, &ps),
                     PC_OK);
    assert_true(ps->r.done);
    assert_body(ps, "hello");
    parse_free(ps);
    /* 19 digits is a number, then just too big for any buffer */
    assert_int_equal(outcome("HTTP/1.1 200 OK\r\nContent-Length: 9999999999999999999\r\n\r\n", 0),
                     PC_ERR_TOOBIG);
    /* zero: done at the empty line */
    assert_int_equal(parse_text("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0, 0, 0, &ps),
                     PC_OK);
    assert_true(ps->r.done);
    parse_free(ps);
}

static void test_transfer_encoding(void **state)
{
    static const char *const bad[] = {
        "Transfer-Encoding: gzip\r\n",
        "Transfer-Encoding: gzip, chunked\r\n",
        "Transfer-Encoding: chunked, chunked\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: identity\r\n",
        "Transfer-Encoding:\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
    };
    char text[256];
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "HTTP/1.1 200 OK\r\n%s\r\n0\r\n\r\n", bad[i]);
        int rc = outcome(text, 0);
        if (rc != PC_ERR_PARSE)
            fail_msg("TE %zu: %d", i, rc);
    }
    /* chunked in an HTTP/1.0 reply: faulty framing (RFC 9112 section 6.1) */
    assert_int_equal(outcome("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 0),
                     PC_ERR_PARSE);
}

/* A reply with one header line whose value makes the line len bytes long. */
static char *long_line_reply(size_t len, const char *eol)
{
    size_t cap = len + 128;
    char *s = malloc(cap), *p;

    assert_non_null(s);
    p = s + snprintf(s, cap, "HTTP/1.1 200 OK\r\n");
    memcpy(p, "X-Long: ", 8);
    memset(p + 8, 'a', len - 8);
    p += len;
    snprintf(p, cap - (size_t)(p - s), "%sContent-Length: 0\r\n\r\n", eol);
    return s;
}

static void test_line_limit(void **state)
{
    (void)state;
    for (int lf = 0; lf < 2; lf++) {
        const char *eol = lf ? "\n" : "\r\n";
        char *s = long_line_reply(PC_HTTP_REPLY_MAX_LINE, eol);
        assert_int_equal(outcome(s, 0), PC_OK);
        free(s);
        s = long_line_reply(PC_HTTP_REPLY_MAX_LINE + 1, eol);
        assert_int_equal(outcome(s, 0), PC_ERR_TOOBIG);
        free(s);
    }
    /* a long line with no end at all: refused as soon as it is too long */
    struct parse *ps = parse_new(0, 0);
    char *junk = malloc(3 * PC_HTTP_REPLY_MAX_LINE);
    assert_non_null(junk);
    memset(junk, 'H', 3 * PC_HTTP_REPLY_MAX_LINE);
    assert_int_equal(feed_steps(ps, junk, PC_HTTP_REPLY_MAX_LINE, 0), PC_OK);
    assert_int_equal(feed_steps(ps, junk, 1, 0), PC_ERR_TOOBIG);
    parse_free(ps);
    /* a long status line; a long chunk-size line (extensions) */
    ps = parse_new(0, 0);
    assert_int_equal(feed_steps(ps, junk, 3 * PC_HTTP_REPLY_MAX_LINE, 0), PC_ERR_TOOBIG);
    parse_free(ps);
    ps = parse_new(0, 0);
    assert_int_equal(feed_str(ps, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;", 0),
                     PC_OK);
    assert_int_equal(feed_steps(ps, junk, PC_HTTP_REPLY_MAX_LINE, 1000), PC_ERR_TOOBIG);
    parse_free(ps);
    free(junk);
}

/* A head with n header lines (or a chunked reply with n trailer lines). */
static char *many_lines(unsigned n, int trailers)
{
    size_t cap = 64 + 32 * (size_t)n;
    char *s = malloc(cap), *p;

    assert_non_null(s);
    p = s + snprintf(s, cap, "HTTP/1.1 200 OK\r\n");
    if (trailers)
        p += snprintf(p, cap - (size_t)(p - s), "Transfer-Encoding: chunked\r\n\r\n0\r\n");
    for (unsigned i = 0; i < n; i++)
        p += snprintf(p, cap - (size_t)(p - s), "X-H%u: %u\r\n", i, i);
    snprintf(p, cap - (size_t)(p - s), "\r\n");
    return s;
}

static void test_header_count(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        char *s = many_lines(PC_HTTP_REPLY_MAX_HEADERS, t);
        assert_int_equal(outcome(s, 1), PC_OK);
        free(s);
        s = many_lines(PC_HTTP_REPLY_MAX_HEADERS + 1, t);
        assert_int_equal(outcome(s, 1), PC_ERR_TOOBIG);
        free(s);
    }
    /* the count is per head: a 100 Continue's lines do not add to the final head's */
    char *a = many_lines(PC_HTTP_REPLY_MAX_HEADERS, 0), *b = many_lines(60, 0);
    size_t bothlen = strlen(a) + strlen(b) + 1;
    char *both = malloc(bothlen);
    assert_non_null(both);
    memcpy(a + 9, "100", 3);
    snprintf(both, bothlen, "%s%s", a, b);
    assert_int_equal(outcome(both, 1), PC_OK);
    free(a);
    free(b);
    free(both);
}

static void test_sticky_error(void **state)
{
    struct parse *ps = parse_new(0, 0);
    size_t used = 7;
    (void)state;
    assert_int_equal(feed_str(ps, "HTTP/1.1 200 OK\r\nContent-Length: x\r\n", 0), PC_ERR_PARSE);
    used = 7;
    assert_int_equal(pc_http_reply_feed(&ps->r, (const unsigned char *)"\r\n", 2, &used),
                     PC_ERR_PARSE);
    assert_int_equal(used, 0);
    assert_int_equal(pc_http_reply_eof(&ps->r), PC_ERR_PARSE);
    assert_false(ps->r.done);
    assert_int_equal(ps->r.status, 0);
    parse_free(ps);
    /* a TOOBIG stays TOOBIG, and a valid reply after it changes nothing */
    ps = parse_new(4, 0);
    assert_int_equal(feed_str(ps, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 0),
                     PC_ERR_TOOBIG);
    assert_int_equal(feed_str(ps, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0),
                     PC_ERR_TOOBIG);
    assert_false(ps->r.done);
    parse_free(ps);
}

static void test_clear_wipes(void **state)
{
    struct parse *ps = parse_new(0, 0);
    (void)state;
    assert_int_equal(feed_str(ps, "HTTP/1.1 200 OK\r\nSet-Cookie: secret=hunter2", 0), PC_OK);
    assert_non_null(memmem(ps->r.line, sizeof ps->r.line, "hunter2", 7));
    pc_http_reply_clear(&ps->r);
    assert_null(memmem(ps->r.line, sizeof ps->r.line, "hunter2", 7));
    assert_int_equal(ps->r.linelen, 0);
    parse_free(ps);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_before_head_done),
        cmocka_unit_test(test_interim_replies),
        cmocka_unit_test(test_101_refused),
        cmocka_unit_test(test_status_lines),
        cmocka_unit_test(test_header_lines),
        cmocka_unit_test(test_content_length_values),
        cmocka_unit_test(test_transfer_encoding),
        cmocka_unit_test(test_line_limit),
        cmocka_unit_test(test_header_count),
        cmocka_unit_test(test_sticky_error),
        cmocka_unit_test(test_clear_wipes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
