/* SPDX-License-Identifier: BSD-2-Clause */
/* portcullis audit [--user NAME] [--since DURATION] [--limit N], audit --user NAME --last-denial */
#include "config.h"
#include "cli.h"
#include "pc_config.h"
#include "pc_time.h"
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define SINCE_MAX ((int64_t)100 * 365 * 86400)
#define LIMIT_MAX 1000000

static const struct cli_column cols[] = {
    { "TIME", "time", cli_field_time, 512 }, { "ACTOR", "actor", NULL, 512 },
    { "ACTION", "action", NULL, 512 },       { "USER", "user", NULL, 512 },
    { "HOST", "host", NULL, 512 },           { "RESULT", "result", NULL, 512 },
    { "REASON", "reason", NULL, 512 },       { "TXID", "txid", NULL, 512 },
    { "SOURCE", "source", NULL, 512 },
};

int cmd_audit(struct cli *c, int argc, char **argv)
{
    const char *user = NULL, *since = NULL, *limit = NULL, *request = NULL;
    char path[256] = "/v1/audit";
    size_t n;
    int64_t back = 0;
    uint64_t lim = 0;
    int r, last_denial = 0;

    for (int i = 1; i < argc; i++) {
        if ((r = cli_opt(argc, argv, &i, "--user", &user)) != 0 ||
            (r = cli_opt(argc, argv, &i, "--since", &since)) != 0 ||
            (r = cli_opt(argc, argv, &i, "--limit", &limit)) != 0 ||
            (r = cli_opt(argc, argv, &i, "--request", &request)) != 0) {
            if (r < 0)
                return r;
        } else if (strcmp(argv[i], "--last-denial") == 0) {
            last_denial = 1;
        } else if (argv[i][0] == '-') {
            return cli_bad_opt("audit", argv[i]);
        } else {
            return cli_usage_err("unexpected argument '%.100s': usage: portcullis audit "
                                 "[--user NAME] [--since DURATION] [--limit N] | --request ID",
                                 argv[i]);
        }
    }
    if (request && (user || since || limit))
        return cli_usage_err("--request ID shows one request's whole chain: no other option");
    if (request && (strlen(request) != 32 || strspn(request, "0123456789abcdef") != 32))
        return cli_usage_err("'%.100s' is not a request id (see 'portcullis requests')", request);
    if (request)
        snprintf(path, sizeof path, "/v1/audit?request=%s", request);
    if (user && !cli_valid_user(user))
        return cli_usage_err("'%.100s' is not a valid user name", user);
    if (last_denial && (!user || since || limit))
        return cli_usage_err("--last-denial takes --user NAME and nothing else");
    if (last_denial)
        return cli_explain_last_denial(c, user);
    if (since && pc_parse_duration(since, 1, SINCE_MAX, &back) != PC_OK)
        return cli_usage_err("--since '%.100s' is not a duration (e.g. 90s, 30m, 1h, 7d)", since);
    if (limit && pc_parse_uint(limit, 1, LIMIT_MAX, &lim) != PC_OK)
        return cli_usage_err("--limit '%.100s' is not a number from 1 to %d", limit, LIMIT_MAX);

    if (user) {
        n = strlen(path);
        snprintf(path + n, sizeof path - n, "%cuser=%s", n > 9 ? '&' : '?', user);
    }
    if (since) {
        int64_t from = pc_now() - back;
        n = strlen(path);
        snprintf(path + n, sizeof path - n, "%csince=%" PRId64, n > 9 ? '&' : '?',
                 from > 0 ? from : 0);
    }
    if (limit) {
        n = strlen(path);
        snprintf(path + n, sizeof path - n, "%climit=%" PRIu64, n > 9 ? '&' : '?', lim);
    }

    return cli_list(c, path, "audit", "no audit records match", cols, sizeof cols / sizeof cols[0]);
}
