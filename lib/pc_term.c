/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "pc_term.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pc_term_is_format(uint32_t cp)
{
    /* Category Cf (Unicode 15.1), as ranges. */
    static const uint32_t cf[][2] = {
        { 0x00AD, 0x00AD },   { 0x0600, 0x0605 },   { 0x061C, 0x061C },   { 0x06DD, 0x06DD },
        { 0x070F, 0x070F },   { 0x0890, 0x0891 },   { 0x08E2, 0x08E2 },   { 0x180E, 0x180E },
        { 0x200B, 0x200F },   { 0x202A, 0x202E },   { 0x2060, 0x2064 },   { 0x2066, 0x206F },
        { 0xFEFF, 0xFEFF },   { 0xFFF9, 0xFFFB },   { 0x110BD, 0x110BD }, { 0x110CD, 0x110CD },
        { 0x13430, 0x1343F }, { 0x1BCA0, 0x1BCA3 }, { 0x1D173, 0x1D17A }, { 0xE0001, 0xE0001 },
        { 0xE0020, 0xE007F },
    };
    for (size_t i = 0; i < sizeof cf / sizeof cf[0]; i++)
        if (cp >= cf[i][0] && cp <= cf[i][1])
            return 1;
    return 0;
}

/* Length of the well-formed UTF-8 sequence at s (shortest form, no surrogates, at most
 * U+10FFFF) and its code point; 0 if s does not start one. */
static size_t utf8_next(const unsigned char *s, uint32_t *cp)
{
    size_t len;
    uint32_t v, min;

    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2, v = s[0] & 0x1f, min = 0x80;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        len = 3, v = s[0] & 0x0f, min = 0x800;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4, v = s[0] & 0x07, min = 0x10000;
    else
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) /* also stops at the terminating NUL */
            return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

void pc_term_safe(char *dst, size_t dstsz, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;

    if (!dstsz)
        return;
    while (p && *p) {
        uint32_t cp = 0;
        size_t len = utf8_next(p, &cp);
        if (len && pc_term_is_format(cp)) {
            p += len;
            continue;
        }
        if (!len || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029) {
            if (n + 1 >= dstsz)
                break;
            dst[n++] = '?';
            p += len ? len : 1;
            continue;
        }
        if (n + len >= dstsz)
            break;
        memcpy(dst + n, p, len);
        n += len;
        p += len;
    }
    dst[n] = '\0';
}

char *pc_term_json(const char *json)
{
    const unsigned char *p = (const unsigned char *)json;
    size_t n = 0;
    /* Each input byte becomes at most 6 output bytes ("\\uFFFD"); a 4-byte sequence at most 12. */
    size_t cap = strlen(json) * 6 + 1;
    char *out = malloc(cap);

    if (!out)
        return NULL;
    while (*p) {
        uint32_t cp = 0;
        size_t len = utf8_next(p, &cp);
        if (!len) {
            memcpy(out + n, "\\uFFFD", 6);
            n += 6;
            p++;
        } else if (pc_term_is_format(cp) || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 ||
                   cp == 0x2029) {
            if (cp >= 0x10000)
                n += (size_t)snprintf(out + n, cap - n, "\\u%04X\\u%04X",
                                      0xD800 + ((cp - 0x10000) >> 10),
                                      0xDC00 + ((cp - 0x10000) & 0x3ff));
            else
                n += (size_t)snprintf(out + n, cap - n, "\\u%04X", (unsigned)cp);
            p += len;
        } else {
            memcpy(out + n, p, len);
            n += len;
            p += len;
        }
    }
    out[n] = '\0';
    return out;
}
