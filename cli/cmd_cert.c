/* SPDX-License-Identifier: BSD-2-Clause */
/* portcullis cert list|revoke, portcullis ssh-config */
#include "config.h"
#include "cli.h"
#include "pc_config.h"
#include <stdio.h>
#include <string.h>

static int cert_list(struct cli *c, int argc, char **argv)
{
    static const struct cli_column cols[] = {
        { "SERIAL", "serial", NULL, 512 }, { "KIND", "kind", NULL, 512 },
        { "KEY-ID", "key_id", NULL, 512 }, { "PRINCIPALS", "principals", NULL, 512 },
        { "VALID-AFTER", "valid_after", cli_field_time, 512 },
        { "VALID-BEFORE", "valid_before", cli_field_time, 512 }, { "REVOKED", "revoked", NULL, 512 },
    };
    const char *user = NULL;
    char path[128];
    int r;

    for (int i = 2; i < argc; i++) {
        if ((r = cli_opt(argc, argv, &i, "--user", &user)) < 0)
            return r;
        if (r == 0)
            return argv[i][0] == '-' ? cli_bad_opt("cert list", argv[i])
                                     : cli_usage_err("usage: portcullis cert list [--user NAME]");
    }
    if (user && !cli_valid_user(user))
        return cli_usage_err("'%.100s' is not a valid user name", user);
    snprintf(path, sizeof path, "/v1/certs%s%s", user ? "?user=" : "", user ? user : "");
    return cli_list(c, path, "certs", "no certificates", cols, sizeof cols / sizeof cols[0]);
}

static int cert_revoke(struct cli *c, int argc, char **argv)
{
    const char *serial = NULL, *key_id = NULL;
    json_object *body, *reply, *arr;
    uint64_t n = 0;
    int rc, r;

    for (int i = 2; i < argc; i++) {
        if ((r = cli_opt(argc, argv, &i, "--serial", &serial)) != 0 ||
            (r = cli_opt(argc, argv, &i, "--key-id", &key_id)) != 0) {
            if (r < 0)
                return r;
            continue;
        }
        return argv[i][0] == '-' ? cli_bad_opt("cert revoke", argv[i])
                                 : cli_usage_err("usage: portcullis cert revoke --serial N | --key-id ID");
    }
    if ((serial != NULL) == (key_id != NULL))
        return cli_usage_err("usage: portcullis cert revoke --serial N | --key-id ID");
    if (serial && pc_parse_uint(serial, 1, UINT64_C(999999999999999), &n) != PC_OK)
        return cli_usage_err("--serial takes a certificate serial (1 or more), not '%.100s'", serial);
    body = json_object_new_object();
    if (serial)
        json_object_object_add(body, "serial", json_object_new_int64((int64_t)n));
    else
        json_object_object_add(body, "key_id", json_object_new_string(key_id));
    rc = cli_call(c, "POST", "/v1/certs/revoke", body, &reply, "see 'portcullis cert list'");
    json_object_put(body);
    if (rc != PC_OK)
        return rc;
    if (c->json) {
        cli_print_json(reply);
    } else {
        printf("revoked");
        if (json_object_object_get_ex(reply, "revoked", &arr) && json_object_is_type(arr, json_type_array))
            for (size_t i = 0; i < json_object_array_length(arr); i++)
                printf(" %lld", (long long)json_object_get_int64(json_object_array_get_idx(arr, i)));
        printf("%s\n", key_id ? " (and every future certificate with this key id)" : "");
    }
    json_object_put(reply);
    return PC_OK;
}

int cmd_cert(struct cli *c, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";

    if (strcmp(sub, "list") == 0)
        return cert_list(c, argc, argv);
    if (strcmp(sub, "revoke") == 0)
        return cert_revoke(c, argc, argv);
    return cli_usage_err("'cert' needs list or revoke");
}

/* The known_hosts line that trusts every host certificate of this control plane. */
int cmd_ssh_config(struct cli *c, int argc, char **argv)
{
    json_object *reply, *k;
    char line[8192];
    int rc;

    if (argc > 1)
        return argv[1][0] == '-' ? cli_bad_opt("ssh-config", argv[1])
                                 : cli_usage_err("usage: portcullis ssh-config");
    c->no_token = 1;
    if ((rc = cli_call(c, "GET", "/v1/ca/host.pub", NULL, &reply, NULL)) != PC_OK)
        return rc;
    if (!json_object_object_get_ex(reply, "public_key", &k) || !json_object_is_type(k, json_type_string)) {
        json_object_put(reply);
        return cli_err(PC_ERR_PARSE, "the server's reply has no public_key: check --url");
    }
    cli_sanitize(line, sizeof line, json_object_get_string(k));
    if (c->json)
        cli_print_json(reply);
    else
        printf("# add to ~/.ssh/known_hosts: trust host certificates of this Portcullis\n"
               "@cert-authority * %s\n", line);
    json_object_put(reply);
    return PC_OK;
}
