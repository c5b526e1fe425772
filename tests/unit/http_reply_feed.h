/* SPDX-License-Identifier: BSD-2-Clause */
/* Feeding lib/pc_http_reply in tests: one parse (the reply state and its body buffer), fed
 * whole, in pieces or byte by byte (test_http_reply_head.c, test_http_reply_body.c). The
 * helpers assert with cmocka. */
#ifndef HTTP_REPLY_FEED_H
#define HTTP_REPLY_FEED_H
#include "pc_http_reply.h"
#include "pc_sshbuf.h"
#include <stddef.h>

/* One parse: the reply state (large, so on the heap) and its body buffer. */
struct parse {
    struct pc_http_reply r;
    struct pc_sshbuf body;
    size_t used; /* bytes consumed over all feeds */
};

/* A parse whose body may grow to max bytes (0: the parser's own bound). */
struct parse *parse_new(size_t max, int head_only);
void parse_free(struct parse *ps);
/* Feeds n bytes in pieces of step bytes (0: all at once); stops at the first error or once
 * done. Returns the last return code; ps->used counts what was consumed. */
int feed_steps(struct parse *ps, const void *p, size_t n, size_t step);
int feed_str(struct parse *ps, const char *s, size_t step);
/* Parses the text whole (body bound max), returns the code; *out is the parse (freed by the
 * caller). */
int parse_text(const char *s, size_t max, int head_only, size_t step, struct parse **out);
/* The code a text gets, fed whole and byte by byte (both must agree), eof included when the
 * feed left the reply open. */
int outcome(const char *s, int with_eof);
void assert_body(const struct parse *ps, const char *want);

#endif
