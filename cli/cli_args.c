/* SPDX-License-Identifier: BSD-2-Clause */
/* The commands' argument parsing: options with values, unknown options, durations. */
#include "config.h"
#include "cli.h"
#include "pc_config.h"
#include <string.h>

int cli_opt(int argc, char **argv, int *i, const char *name, const char **val)
{
    const char *a = argv[*i];
    size_t n = strlen(name);

    if (strncmp(a, name, n) != 0 || (a[n] != '\0' && a[n] != '='))
        return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
    } else if (*i + 1 < argc) {
        *val = argv[++*i];
    } else {
        return cli_usage_err("option %s needs a value", name);
    }
    if (!**val)
        return cli_usage_err("option %s needs a non-empty value", name);
    return 1;
}

int cli_bad_opt(const char *cmd, const char *arg)
{
    return cli_usage_err("unknown option '%.100s' for '%s'", arg, cmd);
}

int cli_parse_duration(const char *opt, const char *v, int64_t min, int64_t max, int64_t *out)
{
    if (pc_parse_duration(v, min, max, out) != PC_OK)
        return cli_usage_err("%s takes a DURATION between %llds and %llds, not '%.100s'", opt,
                             (long long)min, (long long)max, v);
    return PC_OK;
}
