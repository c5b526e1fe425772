/* SPDX-License-Identifier: BSD-2-Clause */
/* The HTTP/1.x response parser (lib/pc_http_reply.c). The input: one flags byte (bit 0: the
 * request was HEAD; bits 1-2: how many feed-size bytes follow, 0-3), those feed sizes (cycled;
 * 0 means the rest at once), then the bytes the server sent. They are fed in those pieces into
 * a 64 KiB-bounded secret body buffer, then the connection ends (pc_http_reply_eof). The same
 * bytes are parsed again in one feed: the outcome must not depend on how the bytes arrived. */
#include "config.h"
#include "fuzz.h"
#include "pc_err.h"
#include "pc_http_reply.h"
#include "pc_sshbuf.h"

#define BODY_MAX (64u * 1024u)

struct run {
    struct pc_http_reply r;
    struct pc_sshbuf body;
    int rc;
    size_t used; /* bytes consumed */
};

static void check(int cond)
{
    if (!cond)
        abort();
}

static void check_state(const struct pc_http_reply *r, const struct pc_sshbuf *body)
{
    check(pc_sshbuf_len(body) <= BODY_MAX);
    if (r->done)
        check(r->head_done && r->status >= 200 && r->status <= 599 && r->status != 101);
    if (r->head_done)
        check(r->status >= 200 && r->status <= 599);
    else
        check(r->status == 0);
    check(r->keep_alive == 0 || r->keep_alive == 1);
    check(r->linelen <= PC_HTTP_REPLY_MAX_LINE + 1);
}

/* Feeds data in pieces sized by sizes[0..nsizes) (cycled), then eof. */
static void run(struct run *x, int head_only, const uint8_t *sizes, size_t nsizes,
                const uint8_t *data, size_t size)
{
    size_t off = 0, piece = 0;

    pc_sshbuf_init_secret(&x->body, BODY_MAX);
    pc_http_reply_init(&x->r, &x->body, head_only);
    x->rc = PC_OK;
    x->used = 0;
    while (off < size) {
        size_t k = size - off, used = (size_t)-1;
        if (nsizes > 0 && sizes[piece % nsizes] != 0 && sizes[piece % nsizes] < k)
            k = sizes[piece % nsizes];
        piece++;
        x->rc = pc_http_reply_feed(&x->r, data + off, k, &used);
        check(used <= k);
        check_state(&x->r, &x->body);
        off += used;
        x->used += used;
        if (x->rc != PC_OK)
            break;
        if (used < k) {
            check(x->r.done); /* fewer than offered only once done */
            break;
        }
    }
    if (x->rc == PC_OK && x->r.done) {
        /* once done, nothing more is taken */
        size_t used = (size_t)-1;
        check(pc_http_reply_feed(&x->r, (const uint8_t *)"x", 1, &used) == PC_OK && used == 0);
    }
    if (x->rc == PC_OK) {
        x->rc = pc_http_reply_eof(&x->r);
        if (x->rc == PC_OK)
            check(x->r.done && x->r.keep_alive == 0);
        else
            check(!x->r.done);
    } else {
        /* sticky */
        size_t used = (size_t)-1;
        int again = x->rc;
        check(pc_http_reply_feed(&x->r, (const uint8_t *)"\r\n", 2, &used) == again && used == 0);
        check(pc_http_reply_eof(&x->r) == again);
    }
    check(x->rc == PC_OK || x->rc == PC_ERR_PARSE || x->rc == PC_ERR_TOOBIG);
    check_state(&x->r, &x->body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct run a, b; /* about 8 KiB each: not on the stack */
    size_t nsizes;
    int head_only;

    if (size < 1)
        return 0;
    head_only = data[0] & 1;
    nsizes = (data[0] >> 1) & 3;
    if (size < 1 + nsizes)
        return 0;
    run(&a, head_only, data + 1, nsizes, data + 1 + nsizes, size - 1 - nsizes);
    run(&b, head_only, NULL, 0, data + 1 + nsizes, size - 1 - nsizes);

    /* the same outcome either way (the body only when it was all accepted: a body past the
     * bound is refused at different points) */
    check(a.rc == b.rc);
    check(a.r.done == b.r.done && a.r.head_done == b.r.head_done && a.r.status == b.r.status);
    check(a.r.keep_alive == b.r.keep_alive);
    if (a.rc == PC_OK) {
        check(a.used == b.used);
        check(pc_sshbuf_len(&a.body) == pc_sshbuf_len(&b.body));
        check(pc_sshbuf_len(&a.body) == 0 ||
              memcmp(pc_sshbuf_ptr(&a.body), pc_sshbuf_ptr(&b.body), pc_sshbuf_len(&a.body)) == 0);
    }
    pc_http_reply_clear(&a.r);
    pc_http_reply_clear(&b.r);
    pc_sshbuf_free(&a.body);
    pc_sshbuf_free(&b.body);
    return 0;
}
