/* SPDX-License-Identifier: BSD-2-Clause */
/* The `key = value` configuration parser (lib/pc_config.c) and its value parsers: every
 * value is read as a number, a boolean and a duration, as the agent's and portcullisd's
 * settings do. */
#include "config.h"
#include "fuzz.h"
#include "pc_config.h"
#include "pc_err.h"
#include <stdio.h>

static int each(void *ctx, const char *key, const char *value, char *err, size_t errsz)
{
    uint64_t u;
    int64_t d;
    int b;

    (*(int *)ctx)++;
    (void)pc_parse_uint(value, 0, UINT64_MAX, &u);
    (void)pc_parse_uint(value, 1, 65535, &u);
    (void)pc_parse_bool(value, &b);
    (void)pc_parse_duration(value, 0, INT64_MAX, &d);
    (void)pc_parse_duration(value, 1, 86400, &d);
    if (strcmp(key, "refuse") == 0) { /* a callback that refuses: the error path */
        snprintf(err, errsz, "refused '%s'", value);
        return PC_ERR_INVAL;
    }
    return PC_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256] = "";
    int n = 0;

    (void)pc_config_parse_buffer("fuzz.conf", (const char *)data, size, each, &n, err, sizeof err);
    if (memchr(err, '\0', sizeof err) == NULL)
        abort();
    return 0;
}
