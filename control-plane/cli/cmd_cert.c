/* portcullis cert list|revoke, portcullis ssh-config */
#include "config.h"
#include "cli.h"
#include "pc_config.h"
#include <stdio.h>
#include <string.h>

static int cert_list(struct cli *c, int argc, char **argv)
{
    static const char *const head[] = { "SERIAL", "KIND", "KEY-ID", "PRINCIPALS", "VALID-AFTER",
                                        "VALID-BEFORE", "REVOKED" };
    const char *user = NULL;
    char path[128];
    json_object *reply, *list = NULL;
    struct cli_table *t;
    int rc, r;

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
    rc = cli_get_list(c, path, "certs", "no certificates", &reply, &list);
    if (rc != PC_OK || !list) {
        json_object_put(reply);
        return rc;
    }
    t = cli_table_new(7, head);
    for (size_t i = 0; t && rc == PC_OK && i < json_object_array_length(list); i++) {
        json_object *o = json_object_array_get_idx(list, i);
        char b[7][512];
        const char *row[7] = {
            cli_field(o, "serial", b[0], sizeof b[0]), cli_field(o, "kind", b[1], sizeof b[1]),
            cli_field(o, "key_id", b[2], sizeof b[2]), cli_field(o, "principals", b[3], sizeof b[3]),
            cli_field_time(o, "valid_after", b[4], sizeof b[4]),
            cli_field_time(o, "valid_before", b[5], sizeof b[5]),
            cli_field(o, "revoked", b[6], sizeof b[6]),
        };
        rc = cli_table_add(t, row);
    }
    if (t && rc == PC_OK)
        cli_table_print(t, stdout);
    cli_table_free(t);
    json_object_put(reply);
    return t && rc == PC_OK ? PC_OK : cli_err(PC_ERR_NOMEM, "out of memory");
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
