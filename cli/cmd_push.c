/* SPDX-License-Identifier: BSD-2-Clause */
/* portcullis approvals | approve ID --match NN | deny ID */
#include "config.h"
#include "cli.h"
#include "pc_time.h"
#include "pc_valid.h"
#include <stdio.h>
#include <string.h>

#define NOT_FOUND_HINT "list pending pushes with 'portcullis approvals'"

/* The time the approvals list is printed at: one "now" for every row. */
static int64_t list_now;

/* The EXPIRES column: "in Ns" from list_now, or "expired". */
static const char *expires_in(json_object *p, const char *key, char *buf, size_t bufsz)
{
    json_object *v;
    int64_t left;

    if (!json_object_object_get_ex(p, key, &v) || !json_object_is_type(v, json_type_int))
        return "-";
    left = json_object_get_int64(v) - list_now;
    if (left <= 0)
        return "expired";
    snprintf(buf, bufsz, "in %llds", (long long)left);
    return buf;
}

int cmd_approvals(struct cli *c, int argc, char **argv)
{
    static const struct cli_column cols[] = {
        { "ID", "push_id", NULL, 256 },      { "USER", "user", NULL, 256 },
        { "HOST", "host", NULL, 256 },       { "RHOST", "rhost", NULL, 256 },
        { "SERVICE", "service", NULL, 256 }, { "EXPIRES", "expires_at", expires_in, 256 },
    };
    json_object *reply, *list = NULL;
    int rc;

    if (argc > 1)
        return argv[1][0] == '-' ? cli_bad_opt("approvals", argv[1])
                                 : cli_usage_err("wrong arguments; usage: portcullis approvals");
    rc = cli_get_list(c, "/v1/approvals", "approvals", "no pending push approvals", &reply, &list);
    list_now = pc_now();
    if (rc == PC_OK && list)
        rc = cli_print_table(stdout, list, cols, sizeof cols / sizeof cols[0]);
    json_object_put(reply);
    return rc;
}

/* POST /v1/approvals/ID/{approve|deny}; prints the final state. */
static int decide(struct cli *c, const char *id, const char *verb, const char *match)
{
    char path[256], st[64];
    json_object *body = json_object_new_object(), *reply;
    int rc;

    if (!body)
        return cli_err(PC_ERR_NOMEM, "out of memory");
    if (match)
        json_object_object_add(body, "match", json_object_new_string(match));
    snprintf(path, sizeof path, "/v1/approvals/%s/%s", id, verb);
    rc = cli_call(c, "POST", path, body, &reply, NOT_FOUND_HINT);
    json_object_put(body);
    if (rc != PC_OK)
        return rc;
    cli_field(reply, "state", st, sizeof st);
    if (c->json)
        cli_print_json(reply);
    if (match && strcmp(st, "approved") != 0)
        rc = cli_err(PC_ERR_AUTH,
                     "the number did not match, so push %s is now %s: ask the user "
                     "to log in again and read you the new number",
                     id, st);
    else if (!c->json)
        printf("push %s: %s\n", id, st);
    json_object_put(reply);
    return rc;
}

/* Collects the ID and, for approve, --match. */
static int parse(int argc, char **argv, int want_match, const char **id, const char **match)
{
    const char *usage = want_match ? "approve ID --match NN" : "deny ID";
    int r;

    for (int i = 1; i < argc; i++) {
        if (want_match && (r = cli_opt(argc, argv, &i, "--match", match)) != 0) {
            if (r < 0)
                return r;
        } else if (argv[i][0] == '-') {
            return cli_bad_opt(argv[0], argv[i]);
        } else if (*id) {
            return cli_usage_err("wrong arguments; usage: portcullis %s", usage);
        } else {
            *id = argv[i];
        }
    }
    if (!*id || (want_match && !*match))
        return cli_usage_err("wrong arguments; usage: portcullis %s", usage);
    if (!pc_valid_hex(*id, 1, 128))
        return cli_usage_err("'%.100s' is not a push id (see 'portcullis approvals')", *id);
    if (want_match && (strlen(*match) != 2 || strspn(*match, "0123456789") != 2))
        return cli_usage_err("--match takes the two-digit number the user sees, not '%.100s'",
                             *match);
    return PC_OK;
}

int cmd_approve(struct cli *c, int argc, char **argv)
{
    const char *id = NULL, *match = NULL;
    int rc = parse(argc, argv, 1, &id, &match);

    return rc != PC_OK ? rc : decide(c, id, "approve", match);
}

int cmd_deny(struct cli *c, int argc, char **argv)
{
    const char *id = NULL, *match = NULL;
    int rc = parse(argc, argv, 0, &id, &match);

    return rc != PC_OK ? rc : decide(c, id, "deny", NULL);
}
