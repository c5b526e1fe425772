/* SPDX-License-Identifier: BSD-2-Clause */
/* The feeding helpers of http_reply_feed.h. */
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

struct parse *parse_new(size_t max, int head_only)
{
    struct parse *ps = calloc(1, sizeof *ps);

    assert_non_null(ps);
    pc_sshbuf_init_secret(&ps->body, max);
    pc_http_reply_init(&ps->r, &ps->body, head_only);
    return ps;
}

void parse_free(struct parse *ps)
{
    pc_http_reply_clear(&ps->r);
    pc_sshbuf_free(&ps->body);
    free(ps);
}

/* Feeds n bytes in pieces of step bytes (0: all at once); stops at the first error or once
 * done. Returns the last return code; ps->used counts what was consumed. */
int feed_steps(struct parse *ps, const void *p, size_t n, size_t step)
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

int feed_str(struct parse *ps, const char *s, size_t step)
{
    return feed_steps(ps, s, strlen(s), step);
}

/* Parses the text whole (body bound max), returns the code; *out is the parse (freed by the
 * caller). */
int parse_text(const char *s, size_t max, int head_only, size_t step, struct parse **out)
{
    struct parse *ps = parse_new(max, head_only);
    int rc = feed_str(ps, s, step);

    *out = ps;
    return rc;
}

/* The code a text gets, fed whole and byte by byte (both must agree), eof included when the
 * feed left the reply open. */
int outcome(const char *s, int with_eof)
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

void assert_body(const struct parse *ps, const char *want)
{
    assert_int_equal(pc_sshbuf_len(&ps->body), strlen(want));
    if (strlen(want))
        assert_memory_equal(pc_sshbuf_ptr(&ps->body), want, strlen(want));
}
