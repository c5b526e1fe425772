/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "pc_json.h"
#include "pc_err.h"
#include "pc_json_strict.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

__attribute__((format(printf, 4, 0))) static int failv(struct pc_jerr *e, const char *code, int rc,
                                                       const char *fmt, va_list ap)
{
    if (e) {
        e->code = code;
        vsnprintf(e->message, sizeof e->message, fmt, ap);
    }
    return rc;
}

__attribute__((format(printf, 4, 5))) static int fail(struct pc_jerr *e, const char *code, int rc,
                                                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    failv(e, code, rc, fmt, ap);
    va_end(ap);
    return rc;
}

int pc_json_parse_object(const char *buf, size_t len, json_object **out, struct pc_jerr *e)
{
    json_tokener *tok;
    json_object *obj;
    enum json_tokener_error jerr;
    size_t used;
    const char *why = NULL;

    *out = NULL;
    if (len == 0 || len > (size_t)0x7fffffff)
        return fail(e, "bad_json", PC_ERR_PARSE, "body must be a JSON object");
    if (memchr(buf, '\0', len))
        return fail(e, "bad_json", PC_ERR_PARSE, "body contains a NUL byte");
    /* Our own grammar check first: json-c is lenient in ways an API must not be. */
    if (pc_json_validate(buf, len, PC_JSON_MAX_DEPTH, &why) != PC_OK)
        return fail(e, "bad_json", PC_ERR_PARSE, "malformed JSON: %s", why);
    tok = json_tokener_new_ex(PC_JSON_MAX_DEPTH);
    if (!tok)
        return PC_ERR_NOMEM;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    obj = json_tokener_parse_ex(tok, buf, (int)len);
    jerr = json_tokener_get_error(tok);
    used = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    /* A top-level JSON null parses successfully to obj == NULL; the type check below
     * refuses it (json_object_is_type(NULL, json_type_object) is false). */
    if (jerr != json_tokener_success) {
        json_object_put(obj);
        return fail(e, "bad_json", PC_ERR_PARSE, "malformed JSON: %s",
                    json_tokener_error_desc(jerr));
    }
    /* Only whitespace may follow the value. */
    for (; used < len; used++) {
        if (!strchr(" \t\r\n", buf[used])) {
            json_object_put(obj);
            return fail(e, "bad_json", PC_ERR_PARSE, "trailing data after the JSON value");
        }
    }
    if (!json_object_is_type(obj, json_type_object)) {
        json_object_put(obj);
        return fail(e, "bad_json", PC_ERR_PARSE, "body must be a JSON object");
    }
    *out = obj;
    return PC_OK;
}

int pc_json_only_fields(json_object *obj, const char *const *allowed, struct pc_jerr *e)
{
    json_object_object_foreach(obj, key, val)
    {
        int known = 0;
        (void)val;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, key) == 0)
                known = 1;
        if (!known)
            return fail(e, "unknown_field", PC_ERR_INVAL, "unknown field '%.64s'", key);
    }
    return PC_OK;
}

/* Looks up key; returns 1 if present, 0 if absent (or an error for required). */
static int lookup(json_object *obj, const char *key, int required, json_object **val,
                  struct pc_jerr *e, int *rc)
{
    *rc = PC_OK;
    if (!json_object_object_get_ex(obj, key, val)) {
        if (required)
            *rc = fail(e, "missing_field", PC_ERR_NOTFOUND, "missing field '%s'", key);
        return 0;
    }
    if (!*val) {
        /* An explicit null is a wrong type, not an absent field: "null" must never mean
         * "use the default" for a security setting. */
        *rc = fail(e, "bad_field", PC_ERR_INVAL, "field '%s' must not be null", key);
        return 0;
    }
    return 1;
}

int pc_text_is_clean(const char *s, int multiline)
{
    /* Control characters (escaped in JSON, raw after decoding) would forge log lines and
     * terminal output wherever the value is shown. */
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p < 0x20 && !(multiline && (*p == '\n' || *p == '\t'))) || *p == 0x7f)
            return 0;
    }
    return 1;
}

static int get_string(json_object *obj, const char *key, int required, size_t maxlen, int multiline,
                      const char **out, struct pc_jerr *e)
{
    json_object *v;
    int rc;
    const char *s;

    if (!lookup(obj, key, required, &v, e, &rc))
        return rc;
    if (!json_object_is_type(v, json_type_string))
        return fail(e, "bad_field", PC_ERR_INVAL, "field '%s' must be a string", key);
    s = json_object_get_string(v);
    if ((size_t)json_object_get_string_len(v) != strlen(s))
        return fail(e, "bad_field", PC_ERR_INVAL, "field '%s' contains a NUL character", key);
    if (strlen(s) > maxlen)
        return fail(e, "bad_field", PC_ERR_INVAL, "field '%s' is too long", key);
    if (!pc_text_is_clean(s, multiline))
        return fail(e, "bad_field", PC_ERR_INVAL, "field '%s' contains a control character", key);
    *out = s;
    return PC_OK;
}

int pc_json_get_str(json_object *obj, const char *key, int required, size_t maxlen,
                    const char **out, struct pc_jerr *e)
{
    return get_string(obj, key, required, maxlen, 0, out, e);
}

int pc_json_get_text(json_object *obj, const char *key, int required, size_t maxlen,
                     const char **out, struct pc_jerr *e)
{
    return get_string(obj, key, required, maxlen, 1, out, e);
}

int pc_json_get_bool(json_object *obj, const char *key, int required, int *out, struct pc_jerr *e)
{
    json_object *v;
    int rc;

    if (!lookup(obj, key, required, &v, e, &rc))
        return rc;
    if (!json_object_is_type(v, json_type_boolean))
        return fail(e, "bad_field", PC_ERR_INVAL, "field '%s' must be true or false", key);
    *out = json_object_get_boolean(v) ? 1 : 0;
    return PC_OK;
}

int pc_json_get_int(json_object *obj, const char *key, int required, int64_t min, int64_t max,
                    int64_t *out, struct pc_jerr *e)
{
    json_object *v;
    int rc;
    int64_t n;

    if (!lookup(obj, key, required, &v, e, &rc))
        return rc;
    if (!json_object_is_type(v, json_type_int))
        return fail(e, "bad_field", PC_ERR_INVAL, "field '%s' must be an integer", key);
    errno = 0;
    n = json_object_get_int64(v);
    if (errno != 0 || n < min || n > max)
        return fail(e, "bad_field", PC_ERR_INVAL, "field '%s' is out of range", key);
    *out = n;
    return PC_OK;
}

int pc_json_get_str_array(json_object *obj, const char *key, int required, size_t maxitems,
                          size_t maxlen, json_object **out, struct pc_jerr *e)
{
    json_object *v;
    int rc;
    size_t n;

    if (!lookup(obj, key, required, &v, e, &rc))
        return rc;
    if (!json_object_is_type(v, json_type_array))
        return fail(e, "bad_field", PC_ERR_INVAL, "field '%s' must be an array of strings", key);
    n = json_object_array_length(v);
    if (n > maxitems)
        return fail(e, "bad_field", PC_ERR_INVAL, "field '%s' has too many items", key);
    for (size_t i = 0; i < n; i++) {
        json_object *it = json_object_array_get_idx(v, i);
        const char *s;
        if (!json_object_is_type(it, json_type_string))
            return fail(e, "bad_field", PC_ERR_INVAL, "field '%s' must be an array of strings",
                        key);
        s = json_object_get_string(it);
        if ((size_t)json_object_get_string_len(it) != strlen(s) || strlen(s) == 0 ||
            strlen(s) > maxlen)
            return fail(e, "bad_field", PC_ERR_INVAL, "field '%s' has an invalid item", key);
    }
    *out = v;
    return PC_OK;
}

const char *pc_json_dump(json_object *obj)
{
    return json_object_to_json_string_ext(obj,
                                          JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}
