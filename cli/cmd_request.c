/* SPDX-License-Identifier: BSD-2-Clause */
/* Access on request: portcullis request --account A [--host K=V]... --for D --reason TEXT |
 * request approve ID [--code-file F] | request deny ID --reason TEXT | request revoke ID |
 * requests */
#include "config.h"
#include "cli.h"
#include "pc_mem.h"
#include <stdio.h>
#include <string.h>

#define REQUEST_USAGE \
    "usage: portcullis request --account A [--host KEY=VALUE]... --for DURATION --reason TEXT\n" \
    "       portcullis request approve ID [--code-file FILE] | deny ID --reason TEXT | revoke ID"

static int valid_id(const char *id)
{
    return strlen(id) == 32 && strspn(id, "0123456789abcdef") == 32;
}

static int add_host(json_object *hosts, const char *kv)
{
    const char *eq = strchr(kv, '=');
    char key[128];

    if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof key)
        return cli_usage_err("--host takes KEY=VALUE, not '%.100s'", kv);
    memcpy(key, kv, (size_t)(eq - kv));
    key[eq - kv] = '\0';
    json_object_object_add(hosts, key, json_object_new_string(eq + 1));
    return PC_OK;
}

static void print_request(struct cli *c, json_object *reply)
{
    char id[64], st[32], until[32];

    if (c->json) {
        cli_print_json(reply);
        return;
    }
    cli_field(reply, "id", id, sizeof id);
    cli_field(reply, "state", st, sizeof st);
    if (strcmp(st, "active") == 0)
        printf("request %s: %s until %s\n", id, st,
               cli_field_time(reply, "ends_at", until, sizeof until));
    else
        printf("request %s: %s\n", id, st);
}

static int create(struct cli *c, int argc, char **argv)
{
    const char *account = NULL, *dur = NULL, *reason = NULL, *v;
    json_object *body = json_object_new_object(), *hosts = json_object_new_object(), *reply = NULL;
    int64_t seconds = 0;
    int rc = PC_OK, r;

    for (int i = 1; rc == PC_OK && i < argc; i++) {
        if ((r = cli_opt(argc, argv, &i, "--account", &account)) != 0 ||
            (r = cli_opt(argc, argv, &i, "--for", &dur)) != 0 ||
            (r = cli_opt(argc, argv, &i, "--reason", &reason)) != 0)
            rc = r < 0 ? r : PC_OK;
        else if ((r = cli_opt(argc, argv, &i, "--host", &v)) != 0)
            rc = r < 0 ? r : add_host(hosts, v);
        else if (argv[i][0] == '-')
            rc = cli_bad_opt("request", argv[i]);
        else
            rc = cli_usage_err("unexpected argument '%.100s'\n" REQUEST_USAGE, argv[i]);
    }
    if (rc == PC_OK && (!account || !dur || !reason))
        rc = cli_usage_err("a request needs --account, --for and --reason\n" REQUEST_USAGE);
    if (rc == PC_OK)
        rc = cli_parse_duration("--for", dur, 60, 604800, &seconds);
    if (rc == PC_OK) {
        json_object_object_add(body, "account", json_object_new_string(account));
        json_object_object_add(body, "hosts", json_object_get(hosts));
        json_object_object_add(body, "duration", json_object_new_int64(seconds));
        json_object_object_add(body, "reason", json_object_new_string(reason));
        rc = cli_call(c, "POST", "/v1/requests", body, &reply,
                      "a rule added with --requires-request must name you, the account and "
                      "these hosts");
    }
    if (rc == PC_OK && c->json) {
        cli_print_json(reply);
    } else if (rc == PC_OK) {
        char id[64], d[32];
        printf("%s\n", cli_field(reply, "id", id, sizeof id));
        fprintf(stderr, "request %s is waiting for an approver (duration %ss)\n", id,
                cli_field(reply, "duration", d, sizeof d));
    }
    json_object_put(reply);
    json_object_put(hosts);
    json_object_put(body);
    return rc;
}

/* POST /v1/requests/ID/VERB with body (taken). */
static int act(struct cli *c, const char *id, const char *verb, json_object *body)
{
    char path[128];
    json_object *reply = NULL;
    int rc;

    snprintf(path, sizeof path, "/v1/requests/%s/%s", id, verb);
    rc = cli_call(c, "POST", path, body, &reply, "see 'portcullis requests'");
    json_object_put(body);
    if (rc == PC_OK)
        print_request(c, reply);
    json_object_put(reply);
    return rc;
}

static int approve(struct cli *c, int argc, char **argv)
{
    const char *id = NULL, *code_file = NULL;
    char code[32] = "";
    json_object *body;
    int rc, r;

    for (int i = 2; i < argc; i++) {
        if ((r = cli_opt(argc, argv, &i, "--code-file", &code_file)) != 0) {
            if (r < 0)
                return r;
        } else if (argv[i][0] == '-') {
            return cli_bad_opt("request approve", argv[i]);
        } else if (id) {
            return cli_usage_err(REQUEST_USAGE);
        } else {
            id = argv[i];
        }
    }
    if (!id || !valid_id(id))
        return cli_usage_err("request approve needs a request id (see 'portcullis requests')");
    if ((rc = cli_read_code(code_file, "your approval", code, sizeof code)) != PC_OK)
        return rc;
    body = json_object_new_object();
    json_object_object_add(body, "code", json_object_new_string(code));
    pc_wipe(code, sizeof code);
    return act(c, id, "approve", body);
}

static int deny_or_revoke(struct cli *c, int argc, char **argv, int deny)
{
    const char *id = NULL, *reason = NULL;
    json_object *body;
    int r;

    for (int i = 2; i < argc; i++) {
        if (deny && (r = cli_opt(argc, argv, &i, "--reason", &reason)) != 0) {
            if (r < 0)
                return r;
        } else if (argv[i][0] == '-') {
            return cli_bad_opt(deny ? "request deny" : "request revoke", argv[i]);
        } else if (id) {
            return cli_usage_err(REQUEST_USAGE);
        } else {
            id = argv[i];
        }
    }
    if (!id || !valid_id(id))
        return cli_usage_err("request %s needs a request id (see 'portcullis requests')",
                             deny ? "deny" : "revoke");
    if (deny && !reason)
        return cli_usage_err("request deny needs --reason TEXT");
    body = json_object_new_object();
    if (reason)
        json_object_object_add(body, "reason", json_object_new_string(reason));
    return act(c, id, deny ? "deny" : "revoke", body);
}

int cmd_request(struct cli *c, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";

    if (strcmp(sub, "approve") == 0)
        return approve(c, argc, argv);
    if (strcmp(sub, "deny") == 0)
        return deny_or_revoke(c, argc, argv, 1);
    if (strcmp(sub, "revoke") == 0)
        return deny_or_revoke(c, argc, argv, 0);
    return create(c, argc, argv);
}

int cmd_requests(struct cli *c, int argc, char **argv)
{
    static const struct cli_column cols[] = {
        { "ID", "id", NULL, 64 },
        { "USER", "user", NULL, 128 },
        { "ACCOUNT", "account", NULL, 128 },
        { "HOSTS", "hosts", NULL, 512 },
        { "STATE", "state", NULL, 32 },
        { "SECONDS", "duration", NULL, 32 },
        { "APPROVERS", "approver_group", NULL, 128 },
        { "ENDS", "ends_at", cli_field_time, 32 },
        { "REASON", "reason", NULL, 600 },
    };

    if (argc > 1)
        return argv[1][0] == '-' ? cli_bad_opt("requests", argv[1])
                                 : cli_usage_err("usage: portcullis requests");
    return cli_list(c, "/v1/requests", "requests", "no requests", cols,
                    sizeof cols / sizeof cols[0]);
}
