/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "pc_keyopts.h"
#include "pc_err.h"
#include "pc_json.h"
#include <string.h>

/* A rule's extension and the key option that re-enables it after restrict, in line order. */
static const struct {
    const char *ext, *opt;
} flags[] = {
    { "permit-X11-forwarding", "X11-forwarding" },
    { "permit-agent-forwarding", "agent-forwarding" },
    { "permit-port-forwarding", "port-forwarding" },
    { "permit-pty", "pty" },
    { "permit-user-rc", "user-rc" },
};
#define N_FLAGS (sizeof flags / sizeof flags[0])

int pc_keyopts_from_ok(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n <= PC_KEYOPTS_VALUE_MAX && strspn(s, "0123456789abcdefABCDEF.:/,") == n;
}

int pc_keyopts_command_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > PC_KEYOPTS_VALUE_MAX)
        return 0;
    for (; *s; s++)
        if (*s < 0x20 || *s > 0x7e || *s == '"' || *s == '\\' || *s == '#')
            return 0;
    return 1;
}

/* Appends a then b; *pos becomes outsz (and stays) once they do not fit. */
static void put(char *out, size_t outsz, size_t *pos, const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (*pos >= outsz || outsz - *pos <= la + lb) {
        *pos = outsz;
        return;
    }
    memcpy(out + *pos, a, la);
    memcpy(out + *pos + la, b, lb + 1);
    *pos += la + lb;
}

int pc_keyopts_build(json_object *opts, char *out, size_t outsz)
{
    static const char *const fields[] = { "extensions", "source_address", "force_command", NULL };
    struct pc_jerr je = { 0 };
    json_object *arr = NULL;
    const char *from = NULL, *cmd = NULL;
    int want[N_FLAGS] = { 0 };
    size_t pos = 0;

    if (outsz)
        *out = '\0';
    if (!opts || !json_object_is_type(opts, json_type_object) ||
        pc_json_only_fields(opts, fields, &je) != PC_OK ||
        pc_json_get_str_array(opts, "extensions", 1, N_FLAGS, 64, &arr, &je) != PC_OK ||
        pc_json_get_str(opts, "source_address", 0, PC_KEYOPTS_VALUE_MAX, &from, &je) != PC_OK ||
        pc_json_get_str(opts, "force_command", 0, PC_KEYOPTS_VALUE_MAX, &cmd, &je) != PC_OK)
        return PC_ERR_PARSE;
    if ((from && !pc_keyopts_from_ok(from)) || (cmd && !pc_keyopts_command_ok(cmd)))
        return PC_ERR_PARSE;
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        const char *s = json_object_get_string(json_object_array_get_idx(arr, i));
        size_t k = 0;
        while (k < N_FLAGS && strcmp(flags[k].ext, s) != 0)
            k++;
        if (k == N_FLAGS)
            return PC_ERR_PARSE;
        want[k] = 1;
    }
    put(out, outsz, &pos, "restrict", "");
    for (size_t k = 0; k < N_FLAGS; k++)
        if (want[k])
            put(out, outsz, &pos, ",", flags[k].opt);
    if (from) {
        put(out, outsz, &pos, ",from=\"", from);
        put(out, outsz, &pos, "\"", "");
    }
    if (cmd) {
        put(out, outsz, &pos, ",command=\"", cmd);
        put(out, outsz, &pos, "\"", "");
    }
    if (pos >= outsz) {
        if (outsz)
            *out = '\0';
        return PC_ERR_TOOBIG;
    }
    return PC_OK;
}
