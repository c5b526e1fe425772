/* SPDX-License-Identifier: BSD-2-Clause */
/* Text for a terminal. Whatever a server, a file or a user sent is made safe to print here:
 * - C0 controls, DEL, C1 controls (U+0080..U+009F), U+2028/U+2029 and bytes that are not
 *   well-formed UTF-8 become '?' (one column, like the character it replaces, so tables stay
 *   aligned, and the reader sees that something was there);
 * - Unicode format characters (general category Cf: the bidirectional embeddings, overrides
 *   and isolates U+202A..U+202E, U+2066..U+2069, U+061C, the marks U+200E/U+200F, zero-width
 *   U+200B..U+200D, U+2060..U+2064, U+FEFF, the tag characters, ...) are dropped: they are
 *   invisible, and removing them shows the text in the order its bytes have. */
#ifndef PC_TERM_H
#define PC_TERM_H
#include <stddef.h>
#include <stdint.h>

/* Copies s into dst (dstsz > 0), made safe; truncates at a character boundary, always
 * terminates. */
void pc_term_safe(char *dst, size_t dstsz, const char *s);
/* The JSON text json for a terminal: format characters, DEL, C1 controls and U+2028/U+2029
 * as \uXXXX escapes (surrogate pairs above U+FFFF), malformed UTF-8 as \uFFFD. The result
 * means the same JSON (such characters only occur inside strings). malloc'ed; NULL if out of
 * memory. */
char *pc_term_json(const char *json);
/* 1 if code point cp is a Unicode format character (category Cf). */
int pc_term_is_format(uint32_t cp);

#endif
