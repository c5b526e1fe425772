/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests for lib/pc_http_reply, the body of a reply: by Content-Length, chunked (split
 * everywhere), until the connection closes, none at all; its bounds, the end of the stream,
 * bytes after the reply. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length_whole_and_bytewise),
        cmocka_unit_test(test_body_split_across_feeds),
        cmocka_unit_test(test_chunked_ext_trailers),
        cmocka_unit_test(test_chunked_split_everywhere),
        cmocka_unit_test(test_http10_until_eof),
        cmocka_unit_test(test_http10_keep_alive),
        cmocka_unit_test(test_connection_close),
        cmocka_unit_test(test_no_body_replies),
        cmocka_unit_test(test_chunk_sizes),
        cmocka_unit_test(test_body_limits),
        cmocka_unit_test(test_eof_cases),
        cmocka_unit_test(test_extra_bytes),
        cmocka_unit_test(test_big_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
