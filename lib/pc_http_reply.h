/* SPDX-License-Identifier: BSD-2-Clause */
/* An HTTP/1.x response (RFC 9112), parsed as its bytes arrive: the status line, the header
 * block, and the body delimited by Content-Length, chunked transfer coding, or the end of the
 * connection. No sockets here: lib/pc_http.c feeds what it reads from TLS, the fuzzer and the
 * unit tests feed bytes directly. The bytes are the peer's and hostile: every length is bounded
 * and every number checked for overflow.
 *
 *   struct pc_http_reply r;
 *   pc_http_reply_init(&r, &body, 0);       body: a pc_sshbuf writer (secret), bound = its max
 *   while (!r.done) { n = read(...); if (n == 0) rc = pc_http_reply_eof(&r);
 *                     else rc = pc_http_reply_feed(&r, buf, n, &used); if (rc) break; }
 *   pc_http_reply_clear(&r);
 *
 * Accepted: "HTTP/1.1" or "HTTP/1.0", a status of three digits 100–599; interim 1xx replies
 * (but 101) are skipped; a line ends with CRLF or a bare LF. Refused (PC_ERR_PARSE): anything
 * else in the status line, a header line without a colon or with a space before it, obsolete
 * line folding, a control byte (but HT) in the status line or a field line, Content-Length
 * that is not 1-19 digits or disagrees with another Content-Length (a list "5, 5" included), a
 * Transfer-Encoding other than one "chunked" (or any in an HTTP/1.0 reply, RFC 9112 section
 * 6.1), both Transfer-Encoding and Content-Length, a bad chunk size (1-15 hex digits, then
 * nothing or ";" extensions, which are ignored) or chunk terminator. Trailer lines are checked
 * and bounded as header lines are, then ignored. Limits (PC_ERR_TOOBIG): a line of more than
 * PC_HTTP_REPLY_MAX_LINE bytes (not counting its CRLF), more than PC_HTTP_REPLY_MAX_HEADERS
 * lines in one head or trailer section, a body larger than the body buffer's max less what it
 * already holds (announced by Content-Length or a chunk size: refused before any of those
 * bytes). */
#ifndef PC_HTTP_REPLY_H
#define PC_HTTP_REPLY_H
#include <stddef.h>
#include <stdint.h>
#include "pc_sshbuf.h"

#define PC_HTTP_REPLY_MAX_LINE 8192
#define PC_HTTP_REPLY_MAX_HEADERS 100

struct pc_http_reply {
    /* results */
    int status;     /* the final status, once the head was read (0 before) */
    int keep_alive; /* 1 once done: the connection may carry the next request */
    int done;       /* 1: the whole reply was read */
    int head_done;  /* 1: the final status line and headers were read */
    /* internal */
    struct pc_sshbuf *body;
    int err;           /* the first error (sticky), 0 while healthy */
    int code;          /* the status of the head being read (an interim 1xx, or the final) */
    int no_body;       /* the request was HEAD */
    int state;         /* parser state */
    int http10;        /* the status line said HTTP/1.0 */
    int conn_close;    /* Connection: close */
    int conn_keep;     /* Connection: keep-alive */
    int chunked;       /* Transfer-Encoding: chunked */
    int have_length;   /* a Content-Length was seen */
    uint64_t length;   /* its value */
    uint64_t left;     /* body bytes (or chunk bytes) still to come */
    unsigned nheaders; /* header lines in this head (or in the trailer section) */
    size_t linelen;    /* bytes in line */
    char line[PC_HTTP_REPLY_MAX_LINE + 1];
};

/* Ready to parse one reply into body (a writer; its max is the body's bound). head_only: the
 * request was HEAD, so no body follows whatever the headers announce. */
void pc_http_reply_init(struct pc_http_reply *r, struct pc_sshbuf *body, int head_only);

/* Consumes up to n bytes at p; *used gets how many. Fewer than n only once r->done is set:
 * the rest belongs to nobody (the caller must then not reuse the connection). PC_OK (more
 * wanted unless r->done), PC_ERR_PARSE, PC_ERR_TOOBIG or PC_ERR_NOMEM; after an error every
 * later call returns it again. */
int pc_http_reply_feed(struct pc_http_reply *r, const unsigned char *p, size_t n, size_t *used);

/* The peer closed the connection. PC_OK when that ends the reply (a body delimited by the
 * close, or one already done): r->done is then set and r->keep_alive is 0. PC_ERR_PARSE when
 * the reply was cut (no status yet, in the head, short of Content-Length, inside a chunk). */
int pc_http_reply_eof(struct pc_http_reply *r);

/* Wipes the line buffer (a header may carry a cookie or a token). Does not touch body. */
void pc_http_reply_clear(struct pc_http_reply *r);

#endif
