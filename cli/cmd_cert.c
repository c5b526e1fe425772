/* SPDX-License-Identifier: BSD-2-Clause */
/* portcullis cert list|revoke, portcullis ssh-config */
#include "config.h"
#include "cli.h"
#include "pc_config.h"
#include "pc_fs.h"
#include "pc_http.h"
#include "pc_krl.h"
#include "pc_valid.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cert_list(struct cli *c, int argc, char **argv)
{
    static const struct cli_column cols[] = {
        { "SERIAL", "serial", NULL, 512 },
        { "KIND", "kind", NULL, 512 },
        { "KEY-ID", "key_id", NULL, 512 },
        { "PRINCIPALS", "principals", NULL, 512 },
        { "VALID-AFTER", "valid_after", cli_field_time, 512 },
        { "VALID-BEFORE", "valid_before", cli_field_time, 512 },
        { "REVOKED", "revoked", NULL, 512 },
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
        return argv[i][0] == '-'
                   ? cli_bad_opt("cert revoke", argv[i])
                   : cli_usage_err("usage: portcullis cert revoke --serial N | --key-id ID");
    }
    if ((serial != NULL) == (key_id != NULL))
        return cli_usage_err("usage: portcullis cert revoke --serial N | --key-id ID");
    if (serial && pc_parse_uint(serial, 1, UINT64_C(999999999999999), &n) != PC_OK)
        return cli_usage_err("--serial takes a certificate serial (1 or more), not '%.100s'",
                             serial);
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
        if (json_object_object_get_ex(reply, "revoked", &arr) &&
            json_object_is_type(arr, json_type_array))
            for (size_t i = 0; i < json_object_array_length(arr); i++)
                printf(" %lld",
                       (long long)json_object_get_int64(json_object_array_get_idx(arr, i)));
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

/* Fetches the host CA's KRL (GET /v1/krl/host), checks its framing and writes it to path. */
static int write_host_krl(struct cli *c, const char *path)
{
    unsigned char *krl = NULL;
    size_t len = 0;
    uint64_t version = 0;
    long status = 0;
    char err[512] = "";
    int rc;

    if ((rc = cli_connect(c)) != PC_OK)
        return rc;
    rc = pc_http_get(c->http, "/v1/krl/host", PC_KRL_MAX_BYTES, 0, &status, &krl, &len, err,
                     sizeof err);
    if (rc != PC_OK)
        return cli_err(rc, "GET /v1/krl/host failed: %s", err);
    if (status != 200)
        rc = cli_err(PC_ERR_STATE, "GET /v1/krl/host answered HTTP %ld: check --url", status);
    else if (pc_krl_check(krl, len, &version) != PC_OK)
        rc = cli_err(PC_ERR_PARSE, "the server's host KRL is malformed: check --url");
    else if ((rc = pc_write_file_atomic(path, krl, len, 0644)) != PC_OK)
        rc = cli_err(rc, "cannot write the host KRL to %s", path);
    free(krl);
    return rc;
}

/* The known_hosts line that trusts host certificates of this control plane for the hosts of a
 * domain (or any host), and with --krl-file the host KRL for ssh_config's RevokedHostKeys. */
int cmd_ssh_config(struct cli *c, int argc, char **argv)
{
    json_object *reply, *k, *keys = NULL;
    const char *domain = NULL, *krl_file = NULL, *v;
    char line[8192], pattern[300], krl_path[PATH_MAX];
    int rc = PC_OK, r;

    for (int i = 1; i < argc && rc == PC_OK; i++) {
        if ((r = cli_opt(argc, argv, &i, "--domain", &v)) != 0)
            rc = r < 0 ? r : (domain = v, PC_OK);
        else if ((r = cli_opt(argc, argv, &i, "--krl-file", &v)) != 0)
            rc = r < 0 ? r : (krl_file = v, PC_OK);
        else
            rc = argv[i][0] == '-'
                     ? cli_bad_opt("ssh-config", argv[i])
                     : cli_usage_err(
                           "usage: portcullis ssh-config [--domain DOMAIN] [--krl-file FILE]");
    }
    if (rc != PC_OK)
        return rc;
    if (domain && (*domain == '.' || strchr(domain, '*') || !pc_valid_hostname(domain)))
        return cli_usage_err("--domain '%.100s' is not a domain name (e.g. example.net)", domain);
    if (krl_file &&
        (!*krl_file || strspn(krl_file, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
                                        "qrstuvwxyz0123456789/._-+") != strlen(krl_file)))
        return cli_usage_err("--krl-file takes a path of letters, digits and /._-+");
    if (krl_file && krl_file[0] != '/') {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd) ||
            (size_t)snprintf(krl_path, sizeof krl_path, "%s/%s", cwd, krl_file) >= sizeof krl_path)
            return cli_err(PC_ERR_INVAL, "--krl-file: the path is too long");
    } else if (krl_file) {
        snprintf(krl_path, sizeof krl_path, "%s", krl_file);
    }
    snprintf(pattern, sizeof pattern, domain ? "*.%s" : "*", domain);
    c->no_token = 1;
    if ((rc = cli_call(c, "GET", "/v1/ca/host.pub", NULL, &reply, NULL)) != PC_OK)
        return rc;
    if (!json_object_object_get_ex(reply, "public_key", &k) ||
        !json_object_is_type(k, json_type_string)) {
        json_object_put(reply);
        return cli_err(PC_ERR_PARSE, "the server's reply has no public_key: check --url");
    }
    /* During a host CA rotation's overlap, public_keys holds both keys: trust both. */
    if (!json_object_object_get_ex(reply, "public_keys", &keys) ||
        !json_object_is_type(keys, json_type_array) || json_object_array_length(keys) < 1 ||
        json_object_array_length(keys) > 2)
        keys = NULL;
    if (krl_file && (rc = write_host_krl(c, krl_path)) != PC_OK) {
        json_object_put(reply);
        return rc;
    }
    if (!domain)
        fprintf(stderr, "portcullis: warning: without --domain the host CA is trusted for every "
                        "host name (*): pass --domain to scope it\n");
    if (c->json) {
        json_object_object_add(reply, "pattern", json_object_new_string(pattern));
        if (krl_file)
            json_object_object_add(reply, "krl_file", json_object_new_string(krl_path));
        cli_print_json(reply);
    } else {
        printf("# add to ~/.ssh/known_hosts: trust host certificates of this Portcullis\n");
        for (size_t i = 0; i < (keys ? json_object_array_length(keys) : 1); i++) {
            json_object *ki = keys ? json_object_array_get_idx(keys, i) : k;
            if (!json_object_is_type(ki, json_type_string))
                continue;
            cli_sanitize(line, sizeof line, json_object_get_string(ki));
            printf("@cert-authority %s %s\n", pattern, line);
        }
        if (krl_file)
            printf("# add to ~/.ssh/config (the host KRL is in %s: run this again to refresh it)\n"
                   "RevokedHostKeys %s\n",
                   krl_path, krl_path);
    }
    json_object_put(reply);
    return PC_OK;
}
