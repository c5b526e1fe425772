/* SPDX-License-Identifier: BSD-2-Clause */
/* portcullis policy add|list|delete */
#include "config.h"
#include "cli.h"
#include "pc_config.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POLICY_USAGE \
    "policy add NAME (--user U | --group G)... --account A... [--host KEY=VALUE]...\n" \
    "       [--no-2fa] [--max-ttl DURATION] [--extension permit-...]... [--source-address CIDRS]\n" \
    "       [--force-command CMD] [--requires-request --approver-group G [--max-duration D]]\n" \
    "       [--second-factor every-login|per-certificate] [--offline-codes DURATION]"

static int add_str(json_object *body, const char *key, const char *v)
{
    json_object *arr;
    if (!json_object_object_get_ex(body, key, &arr)) {
        arr = json_object_new_array();
        json_object_object_add(body, key, arr);
    }
    if (json_object_array_length(arr) >= 256)
        return cli_usage_err("too many %s values", key);
    json_object_array_add(arr, json_object_new_string(v));
    return PC_OK;
}

static int add_host(json_object *body, const char *kv)
{
    const char *eq = strchr(kv, '=');
    json_object *hosts;
    char key[128];

    if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof key)
        return cli_usage_err("--host takes KEY=VALUE, not '%.100s'", kv);
    memcpy(key, kv, (size_t)(eq - kv));
    key[eq - kv] = '\0';
    if (!json_object_object_get_ex(body, "hosts", &hosts)) {
        hosts = json_object_new_object();
        json_object_object_add(body, "hosts", hosts);
    }
    json_object_object_add(hosts, key, json_object_new_string(eq + 1));
    return PC_OK;
}

/* Issue 13: --second-factor every-login|per-certificate. 1 if consumed, 0 if unknown. */
static int add_offline_option(int argc, char **argv, int *i, json_object *body)
{
    const char *v;
    int r;

    if ((r = cli_opt(argc, argv, i, "--second-factor", &v)) != 0) {
        if (r < 0)
            return r;
        if (strcmp(v, "every-login") != 0 && strcmp(v, "per-certificate") != 0)
            return cli_usage_err("--second-factor takes every-login or per-certificate");
        json_object_object_add(body, "second_factor", json_object_new_string(v));
        return 1;
    }
    if ((r = cli_opt(argc, argv, i, "--offline-codes", &v)) != 0) {
        int64_t secs = 0;
        if (r < 0 || (r = cli_parse_duration("--offline-codes", v, 60, 259200, &secs)) != PC_OK)
            return r;
        json_object_object_add(body, "offline_codes", json_object_new_int64(secs));
        return 1;
    }
    return 0;
}

/* One option of `policy add` at argv[*i]; 1 if consumed, 0 if unknown, <0 on error. */
static int add_option(int argc, char **argv, int *i, json_object *body)
{
    static const struct {
        const char *opt, *key;
    } lists[] = {
        { "--user", "users" },
        { "--group", "groups" },
        { "--account", "accounts" },
        { "--extension", "extensions" },
    };
    const char *v;
    int64_t ttl;
    int r;

    if (strcmp(argv[*i], "--no-2fa") == 0) {
        json_object_object_add(body, "require_2fa", json_object_new_boolean(0));
        return 1;
    }
    /* access on request */
    if (strcmp(argv[*i], "--requires-request") == 0) {
        json_object_object_add(body, "requires_request", json_object_new_boolean(1));
        return 1;
    }
    if ((r = cli_opt(argc, argv, i, "--approver-group", &v)) != 0) {
        if (r > 0)
            json_object_object_add(body, "approver_group", json_object_new_string(v));
        return r;
    }
    if ((r = cli_opt(argc, argv, i, "--max-duration", &v)) != 0) {
        if (r < 0 || (r = cli_parse_duration("--max-duration", v, 60, 604800, &ttl)) != PC_OK)
            return r;
        json_object_object_add(body, "max_duration", json_object_new_int64(ttl));
        return 1;
    }
    for (size_t k = 0; k < sizeof lists / sizeof lists[0]; k++)
        if ((r = cli_opt(argc, argv, i, lists[k].opt, &v)) != 0)
            return r < 0 ? r : add_str(body, lists[k].key, v) == PC_OK ? 1 : CLI_EUSAGE;
    if ((r = cli_opt(argc, argv, i, "--host", &v)) != 0)
        return r < 0 ? r : add_host(body, v) == PC_OK ? 1 : CLI_EUSAGE;
    if ((r = cli_opt(argc, argv, i, "--max-ttl", &v)) != 0) {
        if (r < 0 || (r = cli_parse_duration("--max-ttl", v, 300, 604800, &ttl)) != PC_OK)
            return r;
        json_object_object_add(body, "max_ttl", json_object_new_int64(ttl));
        return 1;
    }
    if ((r = cli_opt(argc, argv, i, "--source-address", &v)) != 0) {
        if (r > 0)
            json_object_object_add(body, "source_address", json_object_new_string(v));
        return r;
    }
    if ((r = cli_opt(argc, argv, i, "--force-command", &v)) != 0) {
        if (r > 0)
            json_object_object_add(body, "force_command", json_object_new_string(v));
        return r;
    }
    return add_offline_option(argc, argv, i, body);
}

static int policy_add(struct cli *c, int argc, char **argv)
{
    json_object *body = json_object_new_object(), *reply = NULL;
    const char *name = NULL;
    char b[64];
    int rc = PC_OK, r;

    for (int i = 2; rc == PC_OK && i < argc; i++) {
        if (argv[i][0] == '-') {
            r = add_option(argc, argv, &i, body);
            rc = r < 0 ? r : r == 0 ? cli_bad_opt("policy add", argv[i]) : PC_OK;
        } else if (!name) {
            name = argv[i];
        } else {
            rc = cli_usage_err("wrong arguments; usage: portcullis " POLICY_USAGE);
        }
    }
    if (rc == PC_OK && (!name || !json_object_object_get_ex(body, "accounts", NULL)))
        rc = cli_usage_err(
            "a policy needs a NAME and at least one --account; usage: portcullis " POLICY_USAGE);
    if (rc == PC_OK) {
        json_object_object_add(body, "name", json_object_new_string(name));
        rc = cli_call(c, "POST", "/v1/policies", body, &reply, NULL);
    }
    if (rc == PC_OK && c->json)
        cli_print_json(reply);
    else if (rc == PC_OK)
        printf("added policy %s (id %s)\n", name, cli_field(reply, "id", b, sizeof b));
    json_object_put(reply);
    json_object_put(body);
    return rc;
}

/* The OPTIONS column (key: source_address): "from=ADDRESSES" and/or "command", else "-". */
static const char *options(json_object *p, const char *key, char *buf, size_t bufsz)
{
    char from[512];
    int src = json_object_object_get_ex(p, key, NULL);

    snprintf(buf, bufsz, "%s%s%s", src ? "from=" : "",
             src ? cli_field(p, key, from, sizeof from) : "",
             json_object_object_get_ex(p, "force_command", NULL) ? " command" : "");
    return buf[0] ? buf : "-";
}

static int policy_list(struct cli *c)
{
    static const struct cli_column cols[] = {
        { "ID", "id", NULL, 512 },
        { "NAME", "name", NULL, 512 },
        { "USERS", "users", NULL, 512 },
        { "GROUPS", "groups", NULL, 512 },
        { "ACCOUNTS", "accounts", NULL, 512 },
        { "HOSTS", "hosts", NULL, 512 },
        { "2FA", "require_2fa", NULL, 512 },
        { "SECOND-FACTOR", "second_factor", NULL, 512 },
        { "OFFLINE-CODES", "offline_codes", NULL, 512 },
        { "MAX-TTL", "max_ttl", NULL, 512 },
        { "EXTENSIONS", "extensions", NULL, 512 },
        { "OPTIONS", "source_address", options, 1100 },
        { "APPROVERS", "approver_group", NULL, 128 },
    };

    return cli_list(c, "/v1/policies", "policies", "no policies (nobody may log in)", cols,
                    sizeof cols / sizeof cols[0]);
}

static int policy_delete(struct cli *c, const char *id)
{
    char path[64];
    uint64_t n;
    json_object *reply;
    int rc;

    if (pc_parse_uint(id, 1, UINT64_C(1) << 62, &n) != PC_OK)
        return cli_usage_err("'%.100s' is not a policy id (see 'portcullis policy list')", id);
    snprintf(path, sizeof path, "/v1/policies/%llu", (unsigned long long)n);
    rc = cli_call(c, "DELETE", path, NULL, &reply, "see 'portcullis policy list'");
    if (rc != PC_OK)
        return rc;
    if (c->json)
        cli_print_json(reply);
    else
        printf("deleted policy %llu\n", (unsigned long long)n);
    json_object_put(reply);
    return PC_OK;
}

int cmd_policy(struct cli *c, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";

    if (strcmp(sub, "add") == 0)
        return policy_add(c, argc, argv);
    if (strcmp(sub, "list") == 0)
        return argc == 2 ? policy_list(c) : cli_usage_err("usage: portcullis policy list");
    if (strcmp(sub, "delete") == 0)
        return argc == 3 && argv[2][0] != '-' ? policy_delete(c, argv[2])
                                              : cli_usage_err("usage: portcullis policy delete ID");
    return cli_usage_err("'policy' needs add, list or delete");
}
