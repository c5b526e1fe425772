/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests for lib/pc_http_reply: the incremental HTTP/1.x response parser, fed whole, in
 * pieces and byte by byte, over good replies, malformed ones and ones past every bound. */
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

/* One parse: the reply state (large, so on the heap) and its body buffer. */
struct parse {
    struct pc_http_reply r;
    struct pc_sshbuf body;
    size_t used; /* bytes consumed over all feeds */
};

static struct parse *parse_new(size_t max, int head_only)
{
    struct parse *ps = calloc(1, sizeof *ps);

    assert_non_null(ps);
    pc_sshbuf_init_secret(&ps->body, max);
    pc_http_reply_init(&ps->r, &ps->body, head_only);
    return ps;
}

static void parse_free(struct parse *ps)
{
    pc_http_reply_clear(&ps->r);
    pc_sshbuf_free(&ps->body);
    free(ps);
}

/* Feeds n bytes in pieces of step bytes (0: all at once); stops at the first error or once
 * done. Returns the last return code; ps->used counts what was consumed. */
static int feed_steps(struct parse *ps, const void *p, size_t n, size_t step)
{
    const unsigned char *s = p;
    size_t off = 0;
    int rc = PC_OK;

    if (step == 0)
        step = n ? n : 1;
    while (off < n && !ps->r.done) {
        size_t k = n - off < step ? n - off : step, used = 99999999;
        rc = pc_http_reply_feed(&ps->r, s + off, k, &used);
        assert_true(used <= k);
        off += used;
        ps->used += used;
        if (rc != PC_OK)
            break;
        if (!ps->r.done)
            assert_int_equal(used, k); /* fewer than n only once done */
    }
    return rc;
}

static int feed_str(struct parse *ps, const char *s, size_t step)
{
    return feed_steps(ps, s, strlen(s), step);
}

/* Parses the text whole (body bound max), returns the code; *out is the parse (freed by the
 * caller). */
static int parse_text(const char *s, size_t max, int head_only, size_t step, struct parse **out)
{
    struct parse *ps = parse_new(max, head_only);
    int rc = feed_str(ps, s, step);

    *out = ps;
    return rc;
}

/* The code a text gets, fed whole and byte by byte (both must agree), eof included when the
 * feed left the reply open. */
static int outcome(const char *s, int with_eof)
{
    int rc[2];

    for (int m = 0; m < 2; m++) {
        struct parse *ps = parse_new(0, 0);
        rc[m] = feed_str(ps, s, m == 0 ? 0 : 1);
        if (rc[m] == PC_OK && with_eof && !ps->r.done)
            rc[m] = pc_http_reply_eof(&ps->r);
        parse_free(ps);
    }
    assert_int_equal(rc[0], rc[1]);
    return rc[0];
}

static void assert_body(const struct parse *ps, const char *want)
{
    assert_int_equal(pc_sshbuf_len(&ps->body), strlen(want));
    if (strlen(want))
        assert_memory_equal(pc_sshbuf_ptr(&ps->body), want, strlen(want));
}

/* ---- good replies ------------------------------------------------------------------------- */

static void test_content_length_whole_and_bytewise(void **state)
{
    static const char text[] = "HTTP/1.1 200 OK\r\n"
                               "Content-Type: application/json\r\n"
                               "content-length: 13\r\n"
                               "\r\n"
                               "{\"ok\": true}\n";
    (void)state;
    for (size_t step = 0; step <= 3; step++) {
        struct parse *ps = NULL;
        assert_int_equal(parse_text(text, 0, 0, step, &ps), PC_OK);
        assert_true(ps->r.done);
        assert_true(ps->r.head_done);
        assert_int_equal(ps->r.status, 200);
        assert_int_equal(ps->r.keep_alive, 1);
        assert_int_equal(ps->used, strlen(text));
        assert_body(ps, "{\"ok\": true}\n");
        /* eof after done: still fine, the connection is gone */
        assert_int_equal(pc_http_reply_eof(&ps->r), PC_OK);
        assert_int_equal(ps->r.keep_alive, 0);
        parse_free(ps);
    }
}

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

static void test_body_split_across_feeds(void **state)
{
    struct parse *ps = parse_new(0, 0);
    size_t used = 0;
    (void)state;
    assert_int_equal(feed_str(ps, "HTTP/1.1 201 Created\nContent-Length: 10\n\nhel", 0), PC_OK);
    assert_int_equal(ps->r.status, 201);
    assert_false(ps->r.done);
    assert_body(ps, "hel");
    assert_int_equal(pc_http_reply_feed(&ps->r, (const unsigned char *)"lo w", 4, &used), PC_OK);
    assert_int_equal(used, 4);
    assert_false(ps->r.done);
    assert_int_equal(pc_http_reply_feed(&ps->r, (const unsigned char *)"orld", 4, &used), PC_OK);
    assert_int_equal(used, 3); /* "d" is past the reply */
    assert_true(ps->r.done);
    assert_body(ps, "hello worl");
    parse_free(ps);
}

static const char chunked_text[] = "HTTP/1.1 200 OK\r\n"
                                   "Transfer-Encoding: Chunked\r\n"
                                   "\r\n"
                                   "5;name=value\r\n"
                                   "hello\r\n"
                                   "1 ; ext\n"
                                   " \n"
                                   "0000000000000A\r\n"
                                   "0123456789\r\n"
                                   "0;last\r\n"
                                   "Expires: never\r\n"
                                   "X-Trailer:  yes \r\n"
                                   "\r\n";
#define CHUNKED_BODY "hello 0123456789"

static void test_chunked_ext_trailers(void **state)
{
    struct parse *ps = NULL;
    (void)state;
    assert_int_equal(parse_text(chunked_text, 0, 0, 0, &ps), PC_OK);
    assert_true(ps->r.done);
    assert_int_equal(ps->r.status, 200);
    assert_int_equal(ps->r.keep_alive, 1);
    assert_int_equal(ps->used, strlen(chunked_text));
    assert_body(ps, CHUNKED_BODY);
    parse_free(ps);
    /* lower-case hex, no trailers, data fed past the end */
    assert_int_equal(parse_text("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                "a\r\nabcdefghij\r\n0\r\n\r\nHTTP/1.1",
                                0, 0, 0, &ps),
                     PC_OK);
    assert_true(ps->r.done);
    assert_body(ps, "abcdefghij");
    assert_int_equal(ps->used, strlen("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                      "a\r\nabcdefghij\r\n0\r\n\r\n"));
    parse_free(ps);
}

static void test_chunked_split_everywhere(void **state)
{
    size_t n = strlen(chunked_text);
    (void)state;
    for (size_t cut = 0; cut <= n; cut++) {
        for (size_t cut2 = cut; cut2 <= n; cut2 += 7) {
            struct parse *ps = parse_new(0, 0);
            size_t used = 0;
            assert_int_equal(pc_http_reply_feed(&ps->r, (const unsigned char *)chunked_text, cut,
                                                &used),
                             PC_OK);
            assert_int_equal(used, cut);
            assert_int_equal(pc_http_reply_feed(&ps->r, (const unsigned char *)chunked_text + cut,
                                                cut2 - cut, &used),
                             PC_OK);
            assert_int_equal(used, cut2 - cut);
            assert_int_equal(pc_http_reply_feed(&ps->r, (const unsigned char *)chunked_text + cut2,
                                                n - cut2, &used),
                             PC_OK);
            assert_int_equal(used, n - cut2);
            assert_true(ps->r.done);
            assert_int_equal(ps->r.status, 200);
            assert_body(ps, CHUNKED_BODY);
            parse_free(ps);
        }
    }
    /* and byte by byte */
    struct parse *ps = NULL;
    assert_int_equal(parse_text(chunked_text, 0, 0, 1, &ps), PC_OK);
    assert_true(ps->r.done);
    assert_body(ps, CHUNKED_BODY);
    parse_free(ps);
}

static void test_http10_until_eof(void **state)
{
    for (size_t step = 0; step <= 1; step++) {
        struct parse *ps = NULL;
        (void)state;
        assert_int_equal(parse_text("HTTP/1.0 200 OK\r\nServer: x\r\n\r\nline one\nline two\n", 0,
                                    0, step, &ps),
                         PC_OK);
        assert_false(ps->r.done);
        assert_int_equal(ps->r.status, 200);
        assert_body(ps, "line one\nline two\n");
        assert_int_equal(pc_http_reply_eof(&ps->r), PC_OK);
        assert_true(ps->r.done);
        assert_int_equal(ps->r.keep_alive, 0);
        parse_free(ps);
    }
    /* HTTP/1.1 without a length: until eof too, and never kept alive */
    struct parse *ps = NULL;
    assert_int_equal(parse_text("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\nabc", 0, 0, 0,
                                &ps),
                     PC_OK);
    assert_false(ps->r.done);
    assert_int_equal(pc_http_reply_eof(&ps->r), PC_OK);
    assert_true(ps->r.done);
    assert_int_equal(ps->r.keep_alive, 0);
    assert_body(ps, "abc");
    parse_free(ps);
}

static void test_http10_keep_alive(void **state)
{
    struct parse *ps = NULL;
    (void)state;
    assert_int_equal(parse_text("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n"
                                "\r\nok",
                                0, 0, 0, &ps),
                     PC_OK);
    assert_true(ps->r.done);
    assert_int_equal(ps->r.keep_alive, 1);
    assert_body(ps, "ok");
    parse_free(ps);
    /* 1.0 with a length but no keep-alive: closed */
    assert_int_equal(parse_text("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 0, 0, 0, &ps),
                     PC_OK);
    assert_true(ps->r.done);
    assert_int_equal(ps->r.keep_alive, 0);
    parse_free(ps);
    /* both: close wins */
    assert_int_equal(parse_text("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\n"
                                "Content-Length: 0\r\n\r\n",
                                0, 0, 0, &ps),
                     PC_OK);
    assert_true(ps->r.done);
    assert_int_equal(ps->r.keep_alive, 0);
    parse_free(ps);
}

static void test_connection_close(void **state)
{
    static const char *const closing[] = {
        "Connection: close",
        "Connection: CLOSE",
        "connection:close",
        "Connection: keep-alive, close",
        "Connection: Upgrade,Close ,foo",
        "Connection: ,, close ,",
    };
    static const char *const keep[] = {
        "Connection: keep-alive", "Connection: closed", "Connection: xclose",
        "X-Connection: close",    "Connection:",        "Proxy-Connection: close",
    };
    char text[256];
    (void)state;
    for (size_t i = 0; i < sizeof closing / sizeof closing[0]; i++) {
        struct parse *ps = NULL;
        snprintf(text, sizeof text, "HTTP/1.1 200 OK\r\n%s\r\nContent-Length: 0\r\n\r\n",
                 closing[i]);
        assert_int_equal(parse_text(text, 0, 0, 0, &ps), PC_OK);
        assert_true(ps->r.done);
        assert_int_equal(ps->r.keep_alive, 0);
        parse_free(ps);
    }
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        struct parse *ps = NULL;
        snprintf(text, sizeof text, "HTTP/1.1 200 OK\r\n%s\r\nContent-Length: 0\r\n\r\n", keep[i]);
        assert_int_equal(parse_text(text, 0, 0, 0, &ps), PC_OK);
        assert_true(ps->r.done);
        assert_int_equal(ps->r.keep_alive, 1);
        parse_free(ps);
    }
}

static void test_no_body_replies(void **state)
{
    static const char *const heads[] = {
        "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
        "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
        "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
    };
    struct parse *ps = NULL;
    char text[256];
    (void)state;
    for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
        snprintf(text, sizeof text, "%sabcde", heads[i]);
        assert_int_equal(parse_text(text, 0, 0, 0, &ps), PC_OK);
        assert_true(ps->r.done);
        assert_int_equal(ps->r.keep_alive, 1);
        assert_int_equal(ps->used, strlen(heads[i])); /* the "body" is not consumed */
        assert_body(ps, "");
        parse_free(ps);
    }
    /* HEAD: a Content-Length far past the buffer is not a body */
    snprintf(text, sizeof text, "HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\nabc");
    assert_int_equal(parse_text(text, 16, 1, 0, &ps), PC_OK);
    assert_true(ps->r.done);
    assert_int_equal(ps->r.status, 200);
    assert_int_equal(ps->r.keep_alive, 1);
    assert_int_equal(ps->used, strlen(text) - 3);
    assert_body(ps, "");
    parse_free(ps);
    /* and byte by byte: done right at the empty line */
    assert_int_equal(parse_text("HTTP/1.1 204 No Content\r\n\r\nX", 0, 0, 1, &ps), PC_OK);
    assert_true(ps->r.done);
    assert_int_equal(ps->r.status, 204);
    assert_int_equal(ps->used, strlen("HTTP/1.1 204 No Content\r\n\r\n"));
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

/* ---- refused heads ------------------------------------------------------------------------ */

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

static void test_chunk_sizes(void **state)
{
    static const char *const bad[] = {
        "g\r\n",
        "\r\n",
        "-1\r\n",
        "+1\r\n",
        " 1\r\n",
        "1 \r\n",
        "0x1\r\n",
        "1x\r\n",
        "1000000000000000\r\n", /* 16 hex digits */
        "ffffffffffffffffff\r\n",
        "5\r\nhelloX\r\n0\r\n\r\n",  /* no CRLF after the data */
        "5\r\nhello\rX0\r\n\r\n",    /* CR without LF */
        "5\r\nhello\r\r\n0\r\n\r\n", /* CR CR LF */
        "0\r\nBad trailer\r\n\r\n",
        "0\r\nX: a\r\n folded\r\n\r\n",
    };
    char text[256];
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%s",
                 bad[i]);
        int rc = outcome(text, 0);
        if (rc != PC_ERR_PARSE)
            fail_msg("chunk %zu: %d", i, rc);
    }
    /* 15 hex digits is a size: too big for the buffer, not malformed */
    assert_int_equal(outcome("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "fffffffffffffff\r\n",
                             0),
                     PC_ERR_TOOBIG);
    /* leading zeros beyond 15 digits are still more than 15 digits */
    assert_int_equal(outcome("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "00000000000000001\r\nx\r\n0\r\n\r\n",
                             0),
                     PC_ERR_PARSE);
}

/* ---- bounds ------------------------------------------------------------------------------- */

static void test_body_limits(void **state)
{
    struct parse *ps = NULL;
    (void)state;
    /* by Content-Length: refused at the head, before any body byte lands */
    for (size_t step = 0; step <= 1; step++) {
        assert_int_equal(
            parse_text("HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n0123456789abcdefg", 16, 0,
                       step, &ps),
            PC_ERR_TOOBIG);
        assert_int_equal(pc_sshbuf_len(&ps->body), 0);
        assert_true(ps->r.head_done);
        assert_false(ps->r.done);
        parse_free(ps);
    }
    /* exactly max fits */
    assert_int_equal(parse_text("HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n0123456789abcdef", 16,
                                0, 0, &ps),
                     PC_OK);
    assert_true(ps->r.done);
    assert_body(ps, "0123456789abcdef");
    parse_free(ps);
    /* what is already in the buffer counts against its max */
    ps = parse_new(16, 0);
    assert_int_equal(pc_sshbuf_put_raw(&ps->body, "xxxxxxxxxx", 10), PC_OK);
    assert_int_equal(feed_str(ps, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n", 0),
                     PC_ERR_TOOBIG);
    assert_int_equal(pc_sshbuf_len(&ps->body), 10);
    parse_free(ps);
    /* by chunks: each fits, the sum does not */
    for (size_t step = 0; step <= 1; step++) {
        assert_int_equal(parse_text("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    "a\r\n0123456789\r\n7\r\nabcdefg\r\n0\r\n\r\n",
                                    16, 0, step, &ps),
                         PC_ERR_TOOBIG);
        assert_true(pc_sshbuf_len(&ps->body) <= 16);
        assert_false(ps->r.done);
        parse_free(ps);
    }
    /* by chunks that fill it exactly */
    assert_int_equal(parse_text("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                "a\r\n0123456789\r\n6\r\nabcdef\r\n0\r\n\r\n",
                                16, 0, 0, &ps),
                     PC_OK);
    assert_true(ps->r.done);
    assert_body(ps, "0123456789abcdef");
    parse_free(ps);
    /* until eof */
    for (size_t step = 0; step <= 1; step++) {
        assert_int_equal(parse_text("HTTP/1.0 200 OK\r\n\r\n0123456789abcdefg", 16, 0, step, &ps),
                         PC_ERR_TOOBIG);
        assert_true(pc_sshbuf_len(&ps->body) <= 16);
        assert_int_equal(pc_http_reply_eof(&ps->r), PC_ERR_TOOBIG); /* sticky */
        assert_false(ps->r.done);
        parse_free(ps);
    }
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

static void test_eof_cases(void **state)
{
    static const char *const cut[] = {
        "",
        "HTTP/1.1 20",
        "HTTP/1.1 200 OK\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhell",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n",
        "HTTP/1.1 100 Continue\r\n\r\n",
    };
    (void)state;
    for (size_t i = 0; i < sizeof cut / sizeof cut[0]; i++) {
        struct parse *ps = NULL;
        assert_int_equal(parse_text(cut[i], 0, 0, 0, &ps), PC_OK);
        assert_false(ps->r.done);
        if (pc_http_reply_eof(&ps->r) != PC_ERR_PARSE)
            fail_msg("cut %zu", i);
        assert_false(ps->r.done);
        assert_int_equal(pc_http_reply_eof(&ps->r), PC_ERR_PARSE);
        parse_free(ps);
    }
    /* eof-delimited, even an empty body */
    struct parse *ps = NULL;
    assert_int_equal(parse_text("HTTP/1.1 500 Oops\r\n\r\n", 0, 0, 0, &ps), PC_OK);
    assert_int_equal(pc_http_reply_eof(&ps->r), PC_OK);
    assert_true(ps->r.done);
    assert_int_equal(ps->r.status, 500);
    assert_int_equal(ps->r.keep_alive, 0);
    assert_body(ps, "");
    parse_free(ps);
}

static void test_extra_bytes(void **state)
{
    static const char text[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
                               "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ndef";
    size_t used = 0, one = strlen(text) / 2;
    struct parse *ps = parse_new(0, 0);
    (void)state;
    assert_int_equal(pc_http_reply_feed(&ps->r, (const unsigned char *)text, strlen(text), &used),
                     PC_OK);
    assert_true(ps->r.done);
    assert_int_equal(used, one);
    assert_body(ps, "abc");
    /* once done, nothing more is taken */
    assert_int_equal(pc_http_reply_feed(&ps->r, (const unsigned char *)text + used,
                                        strlen(text) - used, &used),
                     PC_OK);
    assert_int_equal(used, 0);
    assert_body(ps, "abc");
    parse_free(ps);
    /* the same after a chunked body */
    ps = parse_new(0, 0);
    assert_int_equal(feed_str(ps,
                              "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nEXTRA",
                              0),
                     PC_OK);
    assert_true(ps->r.done);
    assert_int_equal(ps->used, strlen("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
                                      "\r\n"));
    parse_free(ps);
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

static void test_big_body(void **state)
{
    size_t n = 1024 * 1024, hl;
    char head[64];
    unsigned char *text;
    (void)state;
    hl = (size_t)snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", n);
    text = malloc(hl + n);
    assert_non_null(text);
    memcpy(text, head, hl);
    for (size_t i = 0; i < n; i++)
        text[hl + i] = (unsigned char)(i * 7 + (i >> 11));
    for (size_t step = 0; step <= 16384; step += 16384) {
        struct parse *ps = parse_new(n, 0);
        assert_int_equal(feed_steps(ps, text, hl + n, step), PC_OK);
        assert_true(ps->r.done);
        assert_int_equal(pc_sshbuf_len(&ps->body), n);
        assert_memory_equal(pc_sshbuf_ptr(&ps->body), text + hl, n);
        parse_free(ps);
    }
    /* one byte more than the bound */
    struct parse *ps = parse_new(n - 1, 0);
    assert_int_equal(feed_steps(ps, text, hl + n, 0), PC_ERR_TOOBIG);
    assert_int_equal(pc_sshbuf_len(&ps->body), 0);
    parse_free(ps);
    /* the same 1 MiB chunked in 4 KiB chunks, until eof in 1000-byte feeds */
    struct pc_sshbuf chunked;
    pc_sshbuf_init(&chunked, 2 * n);
    assert_int_equal(pc_sshbuf_putf(&chunked,
                                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
                     PC_OK);
    for (size_t off = 0; off < n; off += 4096) {
        assert_int_equal(pc_sshbuf_putf(&chunked, "1000\r\n"), PC_OK);
        assert_int_equal(pc_sshbuf_put_raw(&chunked, text + hl + off, 4096), PC_OK);
        assert_int_equal(pc_sshbuf_putf(&chunked, "\r\n"), PC_OK);
    }
    assert_int_equal(pc_sshbuf_putf(&chunked, "0\r\n\r\n"), PC_OK);
    ps = parse_new(n, 0);
    assert_int_equal(feed_steps(ps, pc_sshbuf_ptr(&chunked), pc_sshbuf_len(&chunked), 1000), PC_OK);
    assert_true(ps->r.done);
    assert_int_equal(ps->used, pc_sshbuf_len(&chunked));
    assert_int_equal(pc_sshbuf_len(&ps->body), n);
    assert_memory_equal(pc_sshbuf_ptr(&ps->body), text + hl, n);
    parse_free(ps);
    pc_sshbuf_free(&chunked);
    free(text);
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
        cmocka_unit_test(test_content_length_whole_and_bytewise),
        cmocka_unit_test(test_status_before_head_done),
        cmocka_unit_test(test_body_split_across_feeds),
        cmocka_unit_test(test_chunked_ext_trailers),
        cmocka_unit_test(test_chunked_split_everywhere),
        cmocka_unit_test(test_http10_until_eof),
        cmocka_unit_test(test_http10_keep_alive),
        cmocka_unit_test(test_connection_close),
        cmocka_unit_test(test_no_body_replies),
        cmocka_unit_test(test_interim_replies),
        cmocka_unit_test(test_101_refused),
        cmocka_unit_test(test_status_lines),
        cmocka_unit_test(test_header_lines),
        cmocka_unit_test(test_content_length_values),
        cmocka_unit_test(test_transfer_encoding),
        cmocka_unit_test(test_chunk_sizes),
        cmocka_unit_test(test_body_limits),
        cmocka_unit_test(test_line_limit),
        cmocka_unit_test(test_header_count),
        cmocka_unit_test(test_eof_cases),
        cmocka_unit_test(test_extra_bytes),
        cmocka_unit_test(test_sticky_error),
        cmocka_unit_test(test_big_body),
        cmocka_unit_test(test_clear_wipes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
