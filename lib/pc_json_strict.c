/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "pc_json_strict.h"
#include "pc_err.h"
#include <string.h>

struct cur {
    const unsigned char *p, *end;
    int depth, max_depth;
    const char *why;
};

static int bad(struct cur *c, const char *why)
{
    if (!c->why)
        c->why = why;
    return 0;
}

static void skip_ws(struct cur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

/* One well-formed UTF-8 sequence of 2-4 bytes starting at c->p (RFC 3629 table 3-7). */
static int utf8_seq(struct cur *c)
{
    const unsigned char *p = c->p;
    unsigned char b0 = p[0], lo = 0x80, hi = 0xBF;
    int n;

    if (b0 >= 0xC2 && b0 <= 0xDF)
        n = 1;
    else if (b0 == 0xE0) {
        n = 2;
        lo = 0xA0;
    } else if (b0 >= 0xE1 && b0 <= 0xEC)
        n = 2;
    else if (b0 == 0xED) {
        n = 2;
        hi = 0x9F;
    } /* no surrogates */
    else if (b0 >= 0xEE && b0 <= 0xEF)
        n = 2;
    else if (b0 == 0xF0) {
        n = 3;
        lo = 0x90;
    } else if (b0 >= 0xF1 && b0 <= 0xF3)
        n = 3;
    else if (b0 == 0xF4) {
        n = 3;
        hi = 0x8F;
    } else
        return bad(c, "invalid UTF-8");
    if (c->end - p <= n)
        return bad(c, "invalid UTF-8");
    if (p[1] < lo || p[1] > hi)
        return bad(c, "invalid UTF-8");
    for (int i = 2; i <= n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return bad(c, "invalid UTF-8");
    c->p += n + 1;
    return 1;
}

static int is_hex(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

static int string(struct cur *c, int is_key)
{
    c->p++; /* opening quote */
    while (c->p < c->end) {
        unsigned char ch = *c->p;
        if (ch == '"') {
            c->p++;
            return 1;
        }
        if (ch < 0x20)
            return bad(c, "control character in a string");
        if (ch == '\\') {
            if (c->end - c->p < 2)
                return bad(c, "unterminated string");
            ch = c->p[1];
            if (ch == 'u') {
                if (c->end - c->p < 6 || !is_hex(c->p[2]) || !is_hex(c->p[3]) || !is_hex(c->p[4]) ||
                    !is_hex(c->p[5]))
                    return bad(c, "bad \\u escape");
                /* json-c keys are C strings: it would cut a key at U+0000 silently. Values
                 * keep their length, and the field getters refuse them as bad_field. */
                if (is_key && memcmp(c->p + 2, "0000", 4) == 0)
                    return bad(c, "\\u0000 in an object key");
                c->p += 6;
            } else if (strchr("\"\\/bfnrt", ch) && ch) {
                c->p += 2;
            } else {
                return bad(c, "bad escape in a string");
            }
        } else if (ch < 0x80) {
            c->p++;
        } else if (!utf8_seq(c)) {
            return 0;
        }
    }
    return bad(c, "unterminated string");
}

static int digits(struct cur *c)
{
    const unsigned char *start = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
        c->p++;
    return c->p > start;
}

static int number(struct cur *c)
{
    if (c->p < c->end && *c->p == '-')
        c->p++;
    if (c->p < c->end && *c->p == '0')
        c->p++;
    else if (!digits(c))
        return bad(c, "bad number");
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        if (!digits(c))
            return bad(c, "bad number");
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
            c->p++;
        if (!digits(c))
            return bad(c, "bad number");
    }
    return 1;
}

static int literal(struct cur *c, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
        return bad(c, "unexpected character");
    c->p += n;
    return 1;
}

static int value(struct cur *c);

static int container(struct cur *c, unsigned char close)
{
    int first = 1;

    if (++c->depth > c->max_depth)
        return bad(c, "nested too deeply");
    c->p++;
    for (;;) {
        skip_ws(c);
        if (c->p >= c->end)
            return bad(c, "unterminated object or array");
        if (*c->p == close && first) {
            c->p++;
            break;
        }
        if (close == '}') {
            if (*c->p != '"')
                return bad(c, "object keys must be double-quoted strings");
            if (!string(c, 1))
                return 0;
            skip_ws(c);
            if (c->p >= c->end || *c->p != ':')
                return bad(c, "expected ':'");
            c->p++;
        }
        if (!value(c))
            return 0;
        skip_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            first = 0;
            continue;
        }
        if (c->p < c->end && *c->p == close) {
            c->p++;
            break;
        }
        return bad(c, "expected ',' or a closing bracket");
    }
    c->depth--;
    return 1;
}

static int value(struct cur *c)
{
    skip_ws(c);
    if (c->p >= c->end)
        return bad(c, "unexpected end of input");
    switch (*c->p) {
    case '{': return container(c, '}');
    case '[': return container(c, ']');
    case '"': return string(c, 0);
    case 't': return literal(c, "true");
    case 'f': return literal(c, "false");
    case 'n': return literal(c, "null");
    default:
        if (*c->p == '-' || (*c->p >= '0' && *c->p <= '9'))
            return number(c);
        return bad(c, "unexpected character");
    }
}

int pc_json_validate(const char *buf, size_t len, int max_depth, const char **why)
{
    struct cur c = { (const unsigned char *)buf, (const unsigned char *)buf + len, 0, max_depth,
                     NULL };

    if (!value(&c)) {
        *why = c.why ? c.why : "malformed JSON";
        return PC_ERR_PARSE;
    }
    skip_ws(&c);
    if (c.p != c.end) {
        *why = "trailing data after the JSON value";
        return PC_ERR_PARSE;
    }
    return PC_OK;
}
