/* portcullis audit [--user NAME] [--since DURATION] [--limit N] */
#include "config.h"
#include "cli.h"
#include "pc_config.h"
#include "pc_time.h"
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define SINCE_MAX ((int64_t)100 * 365 * 86400)
#define LIMIT_MAX 1000000
#define NCOLS 9

static int print_table(json_object *rows)
{
    static const char *const head[NCOLS] = { "TIME", "ACTOR", "ACTION", "USER", "HOST",
                                             "RESULT", "REASON", "TXID", "SOURCE" };
    static const char *const keys[NCOLS] = { "time", "actor", "action", "user", "host",
                                             "result", "reason", "txid", "source" };
    struct cli_table *t = cli_table_new(NCOLS, head);
    int rc = t ? PC_OK : PC_ERR_NOMEM;

    for (size_t i = 0; rc == PC_OK && i < json_object_array_length(rows); i++) {
        json_object *r = json_object_array_get_idx(rows, i);
        char b[NCOLS][512];
        const char *row[NCOLS];
        row[0] = cli_field_time(r, keys[0], b[0], sizeof b[0]);
        for (int k = 1; k < NCOLS; k++)
            row[k] = cli_field(r, keys[k], b[k], sizeof b[k]);
        rc = cli_table_add(t, row);
    }
    if (rc == PC_OK) {
        if (json_object_array_length(rows) == 0)
            puts("no audit records match");
        else
            cli_table_print(t, stdout);
    }
    cli_table_free(t);
    return rc == PC_OK ? PC_OK : cli_err(rc, "out of memory");
}

int cmd_audit(struct cli *c, int argc, char **argv)
{
    const char *user = NULL, *since = NULL, *limit = NULL;
    char path[256] = "/v1/audit";
    size_t n;
    int64_t back = 0;
    uint64_t lim = 0;
    json_object *reply, *rows = NULL;
    int r, rc;

    for (int i = 1; i < argc; i++) {
        if ((r = cli_opt(argc, argv, &i, "--user", &user)) != 0 ||
            (r = cli_opt(argc, argv, &i, "--since", &since)) != 0 ||
            (r = cli_opt(argc, argv, &i, "--limit", &limit)) != 0) {
            if (r < 0)
                return r;
        } else if (argv[i][0] == '-') {
            return cli_bad_opt("audit", argv[i]);
        } else {
            return cli_usage_err("unexpected argument '%.100s': usage: portcullis audit "
                                 "[--user NAME] [--since DURATION] [--limit N]", argv[i]);
        }
    }
    if (user && !cli_valid_user(user))
        return cli_usage_err("'%.100s' is not a valid user name", user);
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

    rc = cli_get_list(c, path, "audit", NULL, &reply, &rows);
    if (rc == PC_OK && rows)
        rc = print_table(rows);
    json_object_put(reply);
    return rc;
}
