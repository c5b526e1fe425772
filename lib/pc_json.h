/* SPDX-License-Identifier: BSD-2-Clause */
/* Strict JSON input helpers over json-c: every request body and every reply a client
 * receives passes through these, so wrong types, unknown fields and oversize input are caught
 * in one place and reported with the API's error codes. */
#ifndef PC_JSON_H
#define PC_JSON_H
#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#define PC_JSON_MAX_DEPTH 8

/* What went wrong, ready for a 400 reply: code is one of "bad_json", "missing_field",
 * "bad_field", "unknown_field"; message names the field. */
struct pc_jerr {
    const char *code;
    char message[256];
};

/* Parses exactly len bytes (strict mode, UTF-8 validated, no trailing garbage, depth-limited);
 * the top level must be an object. */
int pc_json_parse_object(const char *buf, size_t len, json_object **out, struct pc_jerr *e);
/* Fails if obj has a field not in the NULL-terminated list allowed. */
int pc_json_only_fields(json_object *obj, const char *const *allowed, struct pc_jerr *e);

/* Getters. If the field is absent: required → error "missing_field"; else PC_OK and *out is
 * left unchanged (so set the default first). An explicit null, a wrong type, an embedded NUL, a
 * control character, a string longer than maxlen or an integer outside [min,max] → "bad_field".
 * *out points into obj. */
int pc_json_get_str(json_object *obj, const char *key, int required, size_t maxlen,
                    const char **out, struct pc_jerr *e);
/* Like pc_json_get_str, which refuses every control character; this one allows '\n' and '\t'
 * (for multi-line values such as SSH_AUTH_INFO_0). */
int pc_json_get_text(json_object *obj, const char *key, int required, size_t maxlen,
                     const char **out, struct pc_jerr *e);
int pc_json_get_bool(json_object *obj, const char *key, int required, int *out, struct pc_jerr *e);
int pc_json_get_int(json_object *obj, const char *key, int required, int64_t min, int64_t max,
                    int64_t *out, struct pc_jerr *e);
/* An array of strings, each 1..maxlen bytes, at most maxitems. *out is the array object. */
int pc_json_get_str_array(json_object *obj, const char *key, int required, size_t maxitems,
                          size_t maxlen, json_object **out, struct pc_jerr *e);

/* 1 if s holds no control character (with multiline: '\n' and '\t' allowed). */
int pc_text_is_clean(const char *s, int multiline);

/* Output: serialise compactly; the string belongs to obj. */
const char *pc_json_dump(json_object *obj);

#endif
