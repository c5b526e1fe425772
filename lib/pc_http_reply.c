/* SPDX-License-Identifier: BSD-2-Clause */
/* An HTTP/1.x response parsed as it arrives: see pc_http_reply.h. Lines (status, fields, chunk
 * sizes, trailers) are gathered in r->line, bounded; body bytes go straight from the caller's
 * buffer to r->body in runs. */
#include "config.h"
#include "pc_http_reply.h"
#include "pc_err.h"
#include "pc_mem.h"
#include "pc_sshbuf.h"
#include <string.h>

enum {
    ST_STATUS = 0, /* the status line */
    ST_HEADER,     /* field lines until an empty line */
    ST_BODY_LEN,   /* r->left bytes of a Content-Length body */
    ST_BODY_EOF,   /* everything until the connection closes */
    ST_CHUNK_SIZE, /* a chunk-size line */
    ST_CHUNK_DATA, /* r->left bytes of chunk data */
    ST_CHUNK_CR,   /* the CRLF (or LF) after chunk data */
    ST_CHUNK_LF,   /* its LF */
    ST_TRAILER,    /* trailer field lines until an empty line */
    ST_DONE,
};

#define CL_MAX_DIGITS 19    /* 10^19 - 1 < 2^64 */
#define CHUNK_MAX_DIGITS 15 /* 16^15 - 1 < 2^60 */

void pc_http_reply_init(struct pc_http_reply *r, struct pc_sshbuf *body, int head_only)
{
    memset(r, 0, sizeof *r);
    r->body = body;
    r->no_body = head_only ? 1 : 0;
    r->state = ST_STATUS;
}

void pc_http_reply_clear(struct pc_http_reply *r)
{
    pc_wipe(r->line, sizeof r->line);
    r->linelen = 0;
}

/* ---- small helpers ----------------------------------------------------------------------- */

static int is_ws(char c)
{
    return c == ' ' || c == '\t';
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* n bytes at s equal the lower-case literal lit, ignoring ASCII case. */
static int ieq(const char *s, size_t n, const char *lit)
{
    if (strlen(lit) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)s[i]) != lit[i])
            return 0;
    return 1;
}

/* RFC 9110 section 5.6.2: tchar. */
static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (unsigned char)lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Space left in the body buffer. */
static size_t body_room(const struct pc_http_reply *r)
{
    size_t max = r->body->max, len = pc_sshbuf_len(r->body);
    return len < max ? max - len : 0;
}

/* Body bytes in one run. Past the buffer's max: PC_ERR_TOOBIG (from pc_sshbuf); or
 * PC_ERR_NOMEM. */
static int put_body(struct pc_http_reply *r, const unsigned char *p, size_t n)
{
    return pc_sshbuf_put_raw(r->body, p, n);
}

/* The reply is complete. eof_delimited: its end was the connection's. */
static int finish(struct pc_http_reply *r, int eof_delimited)
{
    r->done = 1;
    r->state = ST_DONE;
    if (eof_delimited)
        r->keep_alive = 0;
    else if (r->http10)
        r->keep_alive = r->conn_keep && !r->conn_close;
    else
        r->keep_alive = !r->conn_close;
    return PC_OK;
}

/* ---- lines ------------------------------------------------------------------------------- */

/* Gathers bytes from p[*i..n) into r->line up to and including the next LF. *complete: a
 * whole line is in r->line (its CRLF or LF removed, NUL-terminated, free of control bytes).
 * The buffer holds PC_HTTP_REPLY_MAX_LINE bytes plus the CR of a line of exactly that length. */
static int take_line(struct pc_http_reply *r, const unsigned char *p, size_t n, size_t *i,
                     int *complete)
{
    const unsigned char *lf = memchr(p + *i, '\n', n - *i);
    size_t k = lf ? (size_t)(lf - (p + *i)) : n - *i;

    *complete = 0;
    if (k > sizeof r->line - r->linelen)
        return PC_ERR_TOOBIG;
    memcpy(r->line + r->linelen, p + *i, k);
    r->linelen += k;
    *i += k;
    if (r->linelen > PC_HTTP_REPLY_MAX_LINE && r->line[PC_HTTP_REPLY_MAX_LINE] != '\r')
        return PC_ERR_TOOBIG;
    if (!lf)
        return PC_OK;
    (*i)++; /* the LF */
    if (r->linelen > 0 && r->line[r->linelen - 1] == '\r')
        r->linelen--;
    if (r->linelen > PC_HTTP_REPLY_MAX_LINE)
        return PC_ERR_TOOBIG;
    for (size_t j = 0; j < r->linelen; j++) {
        unsigned char c = (unsigned char)r->line[j];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return PC_ERR_PARSE;
    }
    r->line[r->linelen] = '\0';
    *complete = 1;
    return PC_OK;
}

/* "HTTP/1.1 200 OK", "HTTP/1.0 404", with any reason phrase (or none). */
static int status_line(struct pc_http_reply *r)
{
    const char *s = r->line;
    int code = 0;

    if (r->linelen < 12 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') ||
        s[8] != ' ')
        return PC_ERR_PARSE;
    for (int j = 9; j < 12; j++) {
        if (s[j] < '0' || s[j] > '9')
            return PC_ERR_PARSE;
        code = code * 10 + (s[j] - '0');
    }
    if (r->linelen > 12 && s[12] != ' ')
        return PC_ERR_PARSE;
    if (code < 100 || code > 599 || code == 101)
        return PC_ERR_PARSE; /* 101: no protocol switch was asked for */
    r->code = code;
    r->http10 = s[7] == '0';
    r->state = ST_HEADER;
    return PC_OK;
}

static int content_length(struct pc_http_reply *r, const char *v, size_t n)
{
    uint64_t x = 0;

    if (n == 0 || n > CL_MAX_DIGITS)
        return PC_ERR_PARSE;
    for (size_t j = 0; j < n; j++) {
        unsigned d;
        if (v[j] < '0' || v[j] > '9')
            return PC_ERR_PARSE; /* a sign, a space, a list "5, 5" */
        d = (unsigned)(v[j] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return PC_ERR_PARSE;
        x = x * 10 + d;
    }
    if (r->have_length && r->length != x)
        return PC_ERR_PARSE;
    r->have_length = 1;
    r->length = x;
    return PC_OK;
}

/* A comma-separated token list; "close" and "keep-alive" are the ones that matter. */
static void connection(struct pc_http_reply *r, const char *v, size_t n)
{
    size_t a = 0;

    while (a <= n) {
        size_t b = a, e;
        while (b < n && v[b] != ',')
            b++;
        e = b;
        while (a < e && is_ws(v[a]))
            a++;
        while (e > a && is_ws(v[e - 1]))
            e--;
        if (ieq(v + a, e - a, "close"))
            r->conn_close = 1;
        else if (ieq(v + a, e - a, "keep-alive"))
            r->conn_keep = 1;
        a = b + 1;
    }
}

/* One field line of the head (trailer == 0) or of the trailer section (checked, ignored). */
static int field_line(struct pc_http_reply *r, int trailer)
{
    const char *s = r->line, *v;
    size_t n = r->linelen, name = 0, vn;

    if (++r->nheaders > PC_HTTP_REPLY_MAX_HEADERS)
        return PC_ERR_TOOBIG;
    if (is_ws(s[0]))
        return PC_ERR_PARSE; /* obs-fold (RFC 9112 section 5.2), or a space before the name */
    while (name < n && is_tchar((unsigned char)s[name]))
        name++;
    if (name == 0 || name == n || s[name] != ':')
        return PC_ERR_PARSE; /* no name, no colon, or a space (or other byte) before it */
    v = s + name + 1;
    vn = n - name - 1;
    while (vn > 0 && is_ws(v[0]))
        v++, vn--;
    while (vn > 0 && is_ws(v[vn - 1]))
        vn--;
    if (trailer)
        return PC_OK;
    if (ieq(s, name, "content-length"))
        return content_length(r, v, vn);
    if (ieq(s, name, "transfer-encoding")) {
        /* only "chunked", once: anything else would be a coding we cannot remove, or chunked
         * applied twice */
        if (r->chunked || !ieq(v, vn, "chunked"))
            return PC_ERR_PARSE;
        r->chunked = 1;
        return PC_OK;
    }
    if (ieq(s, name, "connection"))
        connection(r, v, vn);
    return PC_OK;
}

/* The empty line after the fields: decides how the body is delimited. */
static int end_of_head(struct pc_http_reply *r)
{
    size_t room;

    if (r->chunked && (r->have_length || r->http10))
        return PC_ERR_PARSE; /* RFC 9112 section 6.1: faulty framing */
    if (r->code < 200) {
        /* an interim reply (100, 102, 103): forget it, read the next status line */
        r->conn_close = r->conn_keep = r->chunked = r->have_length = 0;
        r->length = 0;
        r->nheaders = 0;
        r->state = ST_STATUS;
        return PC_OK;
    }
    r->status = r->code;
    r->head_done = 1;
    if (r->no_body || r->code == 204 || r->code == 304)
        return finish(r, 0);
    if (r->chunked) {
        r->state = ST_CHUNK_SIZE;
        return PC_OK;
    }
    if (!r->have_length) {
        r->state = ST_BODY_EOF;
        return PC_OK;
    }
    room = body_room(r);
    if (r->length > room)
        return PC_ERR_TOOBIG;
    if (r->length == 0)
        return finish(r, 0);
    r->left = r->length;
    r->state = ST_BODY_LEN;
    return PC_OK;
}

/* "1a2b", "1a2b;name=value", "1a2b ; ext" */
static int chunk_size_line(struct pc_http_reply *r)
{
    const char *s = r->line;
    size_t n = r->linelen, j = 0;
    uint64_t x = 0;
    int d;

    while (j < n && (d = hexval((unsigned char)s[j])) >= 0) {
        if (j == CHUNK_MAX_DIGITS || x > (UINT64_MAX - (unsigned)d) / 16)
            return PC_ERR_PARSE;
        x = x * 16 + (unsigned)d;
        j++;
    }
    if (j == 0)
        return PC_ERR_PARSE;
    if (j < n) {
        while (j < n && is_ws(s[j]))
            j++;
        if (j == n || s[j] != ';')
            return PC_ERR_PARSE;
    }
    if (x == 0) {
        r->nheaders = 0;
        r->state = ST_TRAILER;
        return PC_OK;
    }
    if (x > body_room(r))
        return PC_ERR_TOOBIG;
    r->left = x;
    r->state = ST_CHUNK_DATA;
    return PC_OK;
}

static int line_done(struct pc_http_reply *r)
{
    switch (r->state) {
    case ST_STATUS: return status_line(r);
    case ST_HEADER: return r->linelen == 0 ? end_of_head(r) : field_line(r, 0);
    case ST_CHUNK_SIZE: return chunk_size_line(r);
    case ST_TRAILER: return r->linelen == 0 ? finish(r, 0) : field_line(r, 1);
    default: return PC_ERR_STATE;
    }
}

/* ---- the feed ---------------------------------------------------------------------------- */

int pc_http_reply_feed(struct pc_http_reply *r, const unsigned char *p, size_t n, size_t *used)
{
    size_t i = 0, k;
    int rc = PC_OK, complete;

    *used = 0;
    if (r->err)
        return r->err;
    while (i < n && !r->done && rc == PC_OK) {
        switch (r->state) {
        case ST_STATUS:
        case ST_HEADER:
        case ST_CHUNK_SIZE:
        case ST_TRAILER:
            rc = take_line(r, p, n, &i, &complete);
            if (rc == PC_OK && complete) {
                rc = line_done(r);
                r->linelen = 0;
            }
            break;
        case ST_BODY_LEN:
        case ST_CHUNK_DATA:
            k = n - i < r->left ? n - i : (size_t)r->left;
            if ((rc = put_body(r, p + i, k)) != PC_OK)
                break;
            i += k;
            r->left -= k;
            if (r->left == 0 && r->state == ST_BODY_LEN)
                rc = finish(r, 0);
            else if (r->left == 0)
                r->state = ST_CHUNK_CR;
            break;
        case ST_BODY_EOF:
            if ((rc = put_body(r, p + i, n - i)) == PC_OK)
                i = n;
            break;
        case ST_CHUNK_CR:
        case ST_CHUNK_LF:
            if (p[i] == '\n')
                r->state = ST_CHUNK_SIZE;
            else if (p[i] == '\r' && r->state == ST_CHUNK_CR)
                r->state = ST_CHUNK_LF;
            else
                rc = PC_ERR_PARSE; /* chunk data longer than its size said */
            i++;
            break;
        default: rc = PC_ERR_STATE; break;
        }
    }
    *used = i;
    if (rc != PC_OK)
        r->err = rc;
    return rc;
}

int pc_http_reply_eof(struct pc_http_reply *r)
{
    if (r->err)
        return r->err;
    if (r->state == ST_BODY_EOF)
        finish(r, 1);
    if (!r->done) {
        r->err = PC_ERR_PARSE; /* cut: no status yet, in the head, in a body or a chunk */
        return r->err;
    }
    r->keep_alive = 0;
    return PC_OK;
}
