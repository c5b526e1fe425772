/* SPDX-License-Identifier: BSD-2-Clause */
/* A strict RFC 8259 syntax check run before json-c parses untrusted input: json-c accepts
 * single-quoted strings, NaN/Infinity, raw control characters in strings and ill-formed UTF-8
 * (overlong forms, surrogates) even in its strict mode. This validator accepts exactly the
 * JSON grammar, with well-formed UTF-8 (RFC 3629) and a nesting limit — and refuses \u0000 in
 * object keys, which json-c would silently cut at it (values keep their length; the getters
 * refuse them). */
#ifndef PC_JSON_STRICT_H
#define PC_JSON_STRICT_H
#include <stddef.h>

/* PC_OK or PC_ERR_PARSE with *why set to a short static reason. */
int pc_json_validate(const char *buf, size_t len, int max_depth, const char **why);

#endif
