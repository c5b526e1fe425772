/* SPDX-License-Identifier: BSD-2-Clause */
/* Strict `key = value` configuration files.
 * Grammar: one setting per line; blank lines and lines whose first non-blank character is '#'
 * are ignored; keys are [a-z0-9_]+; the value is the rest of the line, trimmed, and may be empty
 * only if the callback accepts it. A key given twice, a line without '=', a line over 4095
 * bytes, a NUL byte or a file over 1 MiB is an error. Every error message starts "FILE:LINE: ". */
#ifndef PC_CONFIG_H
#define PC_CONFIG_H
#include <stddef.h>
#include <stdint.h>

#define PC_CONFIG_MAX_BYTES (1024 * 1024)
#define PC_CONFIG_MAX_LINE 4095

/* Called once per setting. Return 0 to go on, or a negative PC_ERR_* after writing a message
 * (without the FILE:LINE prefix; the parser adds it) into err. */
typedef int (*pc_config_cb)(void *ctx, const char *key, const char *value, char *err, size_t errsz);

int pc_config_parse_buffer(const char *name, const char *buf, size_t len, pc_config_cb cb,
                           void *ctx, char *err, size_t errsz);
/* Reads the whole file first, then parses: nothing is applied from a file that fails to read. */
int pc_config_parse_file(const char *path, pc_config_cb cb, void *ctx, char *err, size_t errsz);

/* Value parsers: 0 or PC_ERR_INVAL. They accept exactly the documented forms, nothing else. */
int pc_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out); /* decimal digits */
int pc_parse_bool(const char *s, int *out); /* yes/no, true/false, on/off, 1/0 */
/* "90", "90s", "5m", "2h", "7d" → seconds, within [min, max]. */
int pc_parse_duration(const char *s, int64_t min, int64_t max, int64_t *out);

#endif
