/* SPDX-License-Identifier: BSD-2-Clause */
/* The API's request-body checks: the input is a request body, parsed as portcullisd parses
 * every POST/PATCH body (pc_json_parse_object), then put through each endpoint's field checks
 * as its handler in control-plane/api_*.c does them before touching the store: the allowed
 * fields (pc_json_only_fields), the typed getters with the handler's limits, and the lib/
 * validators the handler applies to the values (pc_valid_*, public-key lines). The table below
 * mirrors the handlers; what lives in control-plane/ next to the store (policy bodies, label
 * objects) is not reached from here. */
#include "config.h"
#include "fuzz.h"
#include "pc_err.h"
#include "pc_json.h"
#include "pc_sshkey.h"
#include "pc_valid.h"

enum kind { ANY, STR, TEXT, BOOL, INT, STRS }; /* ANY: allowed, checked in control-plane/ */
enum check { NONE, HEX32, HOSTNAME, PRINCIPALS, KEYLINE, KEYLINES, BEARER };

struct field {
    const char *name;
    enum kind kind;
    int required;
    int64_t a, b; /* STR/TEXT: maxlen; INT: min, max; STRS: maxitems, maxlen */
    enum check check;
};

struct endpoint {
    /* cppcheck-suppress unusedStructMember ; name: the handler, for the reader */
    const char *name;
    struct field f[6];
};

static const struct endpoint endpoints[] = {
    { "api_auth_begin",
      { { "user", STR, 1, 64, 0, NONE },
        { "rhost", STR, 0, 255, 0, NONE },
        { "service", STR, 0, 64, 0, NONE },
        { "tty", STR, 0, 64, 0, NONE },
        { "auth_info", TEXT, 0, 16384, 0, NONE } } },
    { "api_auth_totp", { { "txid", STR, 1, 64, 0, HEX32 }, { "code", STR, 1, 16, 0, NONE } } },
    { "api_auth_push", { { "txid", STR, 1, 64, 0, HEX32 } } },
    { "api_enroll",
      { { "token", STR, 1, 128, 0, BEARER },
        { "hostname", STR, 1, 253, 0, HOSTNAME },
        { "host_key", STR, 0, PC_SSHKEY_LINE_MAX, 0, KEYLINE },
        { "principals", STRS, 0, 63, 255, PRINCIPALS } } },
    { "api_host_renew", { { "host_key", STR, 1, PC_SSHKEY_LINE_MAX, 0, KEYLINE } } },
    { "api_users_add",
      { { "name", STR, 1, 32, 0, NONE },
        { "groups", STRS, 0, 64, 64, NONE },
        { "push", BOOL, 0, 0, 0, NONE },
        { "ssh_keys", STRS, 0, 32, PC_SSHKEY_LINE_MAX, KEYLINES } } },
    { "api_user_patch",
      { { "enabled", BOOL, 0, 0, 0, NONE },
        { "groups", STRS, 0, 64, 64, NONE },
        { "push", BOOL, 0, 0, 0, NONE } } },
    { "api_user_totp", { { "force", BOOL, 0, 0, 0, NONE } } },
    { "api_approval_approve", { { "match", STR, 1, 8, 0, NONE } } },
    { "api_tokens_create",
      { { "labels", ANY, 0, 0, 0, NONE }, { "ttl", INT, 0, 60, 2592000, NONE } } },
    { "api_certs_revoke",
      { { "serial", INT, 0, 1, 999999999999999LL, NONE }, { "key_id", STR, 0, 255, 0, NONE } } },
    { "api_user_keys_add", { { "public_key", STR, 1, PC_SSHKEY_LINE_MAX, 0, KEYLINE } } },
    { "api_login_start",
      { { "user", STR, 1, 64, 0, NONE },
        { "public_key", STR, 1, PC_SSHKEY_LINE_MAX, 0, KEYLINE },
        { "ttl", INT, 0, 60, 604800, NONE } } },
    { "api_login_finish",
      { { "login_id", STR, 1, 64, 0, HEX32 },
        { "signature", TEXT, 1, 65536, 0, NONE },
        { "code", STR, 0, 16, 0, NONE },
        { "push", BOOL, 0, 0, 0, NONE } } },
};

static void key_line(const char *line)
{
    struct pc_sshkey *k = NULL;
    char *comment = NULL;

    if (pc_sshkey_parse_line(line, &k, &comment) == PC_OK) {
        pc_sshkey_free(k);
        free(comment);
    }
}

static void check_value(enum check ck, const char *s, size_t len)
{
    switch (ck) {
    case HEX32: (void)pc_valid_hex(s, 32, 32); break;
    case HOSTNAME: (void)pc_valid_hostname(s); break;
    case BEARER: (void)pc_valid_bearer_token(s); break;
    case PRINCIPALS: (void)pc_valid_principal(s, len); break;
    case KEYLINE:
    case KEYLINES: key_line(s); break;
    case NONE: break;
    }
}

/* One endpoint: 0 if the body passes every field check, as the handler would go on. */
static int endpoint_check(json_object *body, const struct endpoint *ep)
{
    const char *allowed[7];
    struct pc_jerr e = { 0 };
    size_t n = 0;

    for (; n < 6 && ep->f[n].name; n++)
        allowed[n] = ep->f[n].name;
    allowed[n] = NULL;
    if (pc_json_only_fields(body, allowed, &e) != PC_OK)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const struct field *f = &ep->f[i];
        const char *s = NULL;
        json_object *arr = NULL;
        int64_t v = 0;
        int b = 0, rc = PC_OK;

        switch (f->kind) {
        case ANY: break;
        case STR: rc = pc_json_get_str(body, f->name, f->required, (size_t)f->a, &s, &e); break;
        case TEXT: rc = pc_json_get_text(body, f->name, f->required, (size_t)f->a, &s, &e); break;
        case BOOL: rc = pc_json_get_bool(body, f->name, f->required, &b, &e); break;
        case INT: rc = pc_json_get_int(body, f->name, f->required, f->a, f->b, &v, &e); break;
        case STRS:
            rc = pc_json_get_str_array(body, f->name, f->required, (size_t)f->a, (size_t)f->b, &arr,
                                       &e);
            break;
        }
        if (rc != PC_OK) {
            if (!e.code || !e.message[0])
                abort(); /* every refusal names its reason for the 400 reply */
            return -1;
        }
        if (s) {
            if (strlen(s) > (size_t)f->a || !pc_text_is_clean(s, f->kind == TEXT))
                abort(); /* a getter let through what it promises to refuse */
            check_value(f->check, s, strlen(s));
        }
        for (size_t k = 0; arr && k < json_object_array_length(arr); k++) {
            json_object *it = json_object_array_get_idx(arr, k);
            check_value(f->check, json_object_get_string(it),
                        (size_t)json_object_get_string_len(it));
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_object *body = NULL;
    struct pc_jerr e = { 0 };
    char *s;

    /* The validators on their own, on the raw input (query parameters, path segments, headers). */
    s = fuzz_cstr(data, size);
    (void)pc_valid_hostname(s);
    (void)pc_valid_bearer_token(s);
    (void)pc_valid_hex(s, 32, 32);
    (void)pc_valid_hex(s, 1, 64);
    (void)pc_valid_principal((const char *)data, size);
    free(s);

    if (pc_json_parse_object((const char *)data, size, &body, &e) != PC_OK) {
        if (!e.code || strcmp(e.code, "bad_json") != 0)
            abort();
        return 0;
    }
    for (size_t i = 0; i < sizeof endpoints / sizeof endpoints[0]; i++)
        (void)endpoint_check(body, &endpoints[i]);
    json_object_put(body);
    return 0;
}
