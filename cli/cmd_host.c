/* SPDX-License-Identifier: BSD-2-Clause */
/* portcullis host token --hostname NAME [--principal P]... [--label K=V]... [--ttl DURATION] |
 * host list | host delete NAME */
#include "config.h"
#include "cli.h"
#include "pc_config.h"
#include "pc_mem.h"
#include "pc_valid.h"
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#define TTL_MIN 60
#define TTL_MAX (30 * 86400)
#define MAX_LABELS 32
#define MAX_PRINCIPALS 63
#define TOKEN_USAGE \
    "portcullis host token --hostname NAME [--principal P]... " \
    "[--label KEY=VALUE]... [--ttl DURATION]"

/* Only characters that need no quoting inside '…' and that curl takes in --pinnedpubkey. */
static int pin_ok(const char *p)
{
    if (strncmp(p, "sha256//", 8) != 0 || strlen(p) > 1024)
        return 0;
    return strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=;") ==
           strlen(p);
}

/* A URL that needs no quoting in the shell (and that portcullisd fills into setup.sh). */
static int url_ok(const char *u)
{
    return strncmp(u, "https://", 8) == 0 && u[8] && strlen(u) < 256 &&
           strspn(u + 8, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") ==
               strlen(u + 8);
}

/* The pin and URL for the installer (GET /v1/info): the pin is --pin, else the server's own
 * (when --cafile is used); the URL is the server's --public-url if it has one, else --url. */
static int get_pin_url(struct cli *c, char *pin, size_t pinsz, char *url, size_t urlsz)
{
    json_object *reply = NULL, *v;
    int rc;
    size_t n;

    if (c->pin)
        snprintf(pin, pinsz, "%s", c->pin);
    if (c->pin && !pin_ok(pin))
        return cli_err(PC_ERR_PARSE, "the pin must look like sha256//BASE64: check --pin");
    if ((rc = cli_call(c, "GET", "/v1/info", NULL, &reply, NULL)) != PC_OK)
        return rc;
    if (!c->pin &&
        (!json_object_object_get_ex(reply, "pin", &v) ||
         !json_object_is_type(v, json_type_string) || !pin_ok(json_object_get_string(v)) ||
         (size_t)snprintf(pin, pinsz, "%s", json_object_get_string(v)) >= pinsz))
        rc = cli_err(PC_ERR_PARSE, "the server did not say its pin (GET /v1/info): pass --pin "
                                   "(portcullisd --print-pin on the server)");
    if (json_object_object_get_ex(reply, "public_url", &v) &&
        json_object_is_type(v, json_type_string))
        snprintf(url, urlsz, "%s", json_object_get_string(v));
    else
        snprintf(url, urlsz, "%s", c->url);
    json_object_put(reply);
    n = strlen(url);
    while (n > 8 && url[n - 1] == '/')
        url[--n] = '\0';
    if (rc == PC_OK && !url_ok(url))
        rc = cli_err(PC_ERR_PARSE,
                     "'%.200s' is not an https://HOST[:PORT] URL a host can be "
                     "enrolled with: use --url (or portcullisd --public-url)",
                     url);
    return rc;
}

static int make_token(struct cli *c, const char *hostname, json_object *princ, json_object *labels,
                      int64_t ttl)
{
    char pin[1100], url[300], cmd[2600], exp[64];
    json_object *body, *reply = NULL, *tok, *expires = NULL, *out;
    const char *t;
    int rc;

    if ((rc = get_pin_url(c, pin, sizeof pin, url, sizeof url)) != PC_OK)
        return rc;
    body = json_object_new_object();
    if (!body)
        return cli_err(PC_ERR_NOMEM, "out of memory");
    json_object_object_add(body, "hostname", json_object_new_string(hostname));
    if (json_object_array_length(princ) > 0)
        json_object_object_add(body, "principals", json_object_get(princ));
    json_object_object_add(body, "labels", json_object_get(labels));
    if (ttl > 0)
        json_object_object_add(body, "ttl", json_object_new_int64(ttl));
    rc = cli_call(c, "POST", "/v1/tokens", body, &reply, NULL);
    json_object_put(body);
    if (rc != PC_OK)
        return rc;
    if (!json_object_object_get_ex(reply, "token", &tok) ||
        !json_object_is_type(tok, json_type_string) || !*(t = json_object_get_string(tok)) ||
        strlen(t) > 256 || strspn(t, "0123456789abcdefABCDEF") != strlen(t)) {
        json_object_put(reply);
        return cli_err(PC_ERR_PARSE, "the server's reply has no hex token: check that --url "
                                     "points at portcullisd");
    }
    json_object_object_get_ex(reply, "expires_at", &expires);
    /* -k: the pin, not a CA, vouches for the server; pin, URL and token need no quoting. The
     * token follows the script on bash's stdin (setup.sh reads it): echo is a shell builtin, so
     * it is in no argv (ps, sudo's log); && keeps it from bash when the download fails. */
    snprintf(cmd, sizeof cmd,
             "{ curl -fsSk --pinnedpubkey %s %s/v1/setup.sh && echo %s; } | "
             "sudo bash -s",
             pin, url, t);
    if (c->json) {
        out = json_object_new_object();
        if (out) {
            json_object_object_add(out, "token", json_object_get(tok));
            json_object_object_add(out, "expires_at", expires ? json_object_get(expires) : NULL);
            json_object_object_add(out, "command", json_object_new_string(cmd));
            cli_print_json(out);
            json_object_put(out);
        } else {
            rc = cli_err(PC_ERR_NOMEM, "out of memory");
        }
    } else {
        printf("Enrollment token for host %s (single use, valid until %s):\n  %s\n\n"
               "To enroll a host, run this on it as a user who may sudo:\n  %s\n",
               hostname, cli_field_time(reply, "expires_at", exp, sizeof exp), t, cmd);
    }
    pc_wipe(cmd, sizeof cmd);
    json_object_put(reply);
    return rc;
}

static int list_hosts(struct cli *c)
{
    static const struct cli_column cols[] = {
        { "ID", "host_id", NULL, 512 },
        { "HOSTNAME", "hostname", NULL, 512 },
        { "ENROLLED", "enrolled_at", cli_field_time, 512 },
        { "LABELS", "labels", NULL, 512 },
    };

    return cli_list(c, "/v1/hosts", "hosts", "no hosts are enrolled", cols,
                    sizeof cols / sizeof cols[0]);
}

static int add_label(json_object *labels, const char *kv)
{
    const char *eq = strchr(kv, '=');
    char key[128];

    if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof key)
        return cli_usage_err("--label takes KEY=VALUE, not '%.100s'", kv);
    memcpy(key, kv, (size_t)(eq - kv));
    key[eq - kv] = '\0';
    if (json_object_object_get_ex(labels, key, NULL))
        return cli_usage_err("label '%s' is given twice", key);
    if (json_object_object_length(labels) >= MAX_LABELS)
        return cli_usage_err("too many labels (at most %d)", MAX_LABELS);
    json_object_object_add(labels, key, json_object_new_string(eq + 1));
    return PC_OK;
}

static int host_token(struct cli *c, int argc, char **argv)
{
    json_object *labels = json_object_new_object(), *princ = json_object_new_array();
    const char *v, *hostname = NULL;
    int64_t ttl = 0;
    int rc = labels && princ ? PC_OK : cli_err(PC_ERR_NOMEM, "out of memory"), r;

    for (int i = 2; i < argc && rc == PC_OK; i++) {
        if ((r = cli_opt(argc, argv, &i, "--hostname", &v)) != 0)
            rc = r < 0      ? r
                 : hostname ? cli_usage_err("--hostname is given twice")
                 : pc_valid_hostname(v)
                     ? (hostname = v, PC_OK)
                     : cli_usage_err("--hostname '%.100s' is not a host name", v);
        else if ((r = cli_opt(argc, argv, &i, "--principal", &v)) != 0)
            rc = r < 0 ? r
                 : !pc_valid_principal(v, strlen(v))
                     ? cli_usage_err("--principal '%.100s' is not a host name or address", v)
                 : json_object_array_length(princ) >= MAX_PRINCIPALS
                     ? cli_usage_err("too many principals (at most %d)", MAX_PRINCIPALS)
                 : json_object_array_add(princ, json_object_new_string(v)) == 0
                     ? PC_OK
                     : cli_err(PC_ERR_NOMEM, "out of memory");
        else if ((r = cli_opt(argc, argv, &i, "--label", &v)) != 0)
            rc = r < 0 ? r : add_label(labels, v);
        else if ((r = cli_opt(argc, argv, &i, "--ttl", &v)) != 0)
            rc = r < 0 ? r
                 : pc_parse_duration(v, TTL_MIN, TTL_MAX, &ttl) == PC_OK
                     ? PC_OK
                     : cli_usage_err("--ttl '%.100s' is not a duration from 60s to 30d (e.g. 1h)",
                                     v);
        else if (argv[i][0] == '-')
            rc = cli_bad_opt("host token", argv[i]);
        else
            rc = cli_usage_err("unexpected argument '%.100s': usage: " TOKEN_USAGE, argv[i]);
    }
    if (rc == PC_OK && !hostname)
        rc = cli_usage_err("the host's name is missing: usage: " TOKEN_USAGE);
    if (rc == PC_OK)
        rc = make_token(c, hostname, princ, labels, ttl);
    json_object_put(labels);
    json_object_put(princ);
    return rc;
}

/* Finds the enrolled host named name (GET /v1/hosts) and deletes it (DELETE /v1/hosts/ID). */
static int host_delete(struct cli *c, int argc, char **argv)
{
    json_object *reply = NULL, *hosts, *out = NULL, *rev;
    int64_t id = 0;
    char path[64];
    int rc;

    if (argc != 3 || argv[2][0] == '-')
        return argc > 2 && argv[2][0] == '-' ? cli_bad_opt("host delete", argv[2])
                                             : cli_usage_err("usage: portcullis host delete NAME");
    if (!pc_valid_hostname(argv[2]))
        return cli_usage_err("'%.100s' is not a host name", argv[2]);
    if ((rc = cli_call(c, "GET", "/v1/hosts", NULL, &reply, NULL)) != PC_OK)
        return rc;
    if (!json_object_object_get_ex(reply, "hosts", &hosts) ||
        !json_object_is_type(hosts, json_type_array)) {
        json_object_put(reply);
        return cli_err(PC_ERR_PARSE, "the server's reply has no hosts list: check --url");
    }
    for (size_t i = 0; i < json_object_array_length(hosts) && !id; i++) {
        json_object *h = json_object_array_get_idx(hosts, i), *n, *v;
        if (json_object_object_get_ex(h, "hostname", &n) &&
            strcmp(json_object_get_string(n), argv[2]) == 0 &&
            json_object_object_get_ex(h, "host_id", &v))
            id = json_object_get_int64(v);
    }
    json_object_put(reply);
    if (id <= 0)
        return cli_err(PC_ERR_NOTFOUND, "no enrolled host is named '%s' (portcullis host list)",
                       argv[2]);
    snprintf(path, sizeof path, "/v1/hosts/%lld", (long long)id);
    if ((rc = cli_call(c, "DELETE", path, NULL, &out, NULL)) != PC_OK)
        return rc;
    if (c->json)
        cli_print_json(out);
    else
        printf("host %s (id %lld) deleted; its host token no longer works and %zu host "
               "certificate(s) are revoked (refresh clients' KRL: portcullis ssh-config "
               "--krl-file)\n",
               argv[2], (long long)id,
               json_object_object_get_ex(out, "revoked", &rev) &&
                       json_object_is_type(rev, json_type_array)
                   ? json_object_array_length(rev)
                   : 0);
    json_object_put(out);
    return PC_OK;
}

int cmd_host(struct cli *c, int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_err("'host' needs a subcommand: token, list or delete");
    if (strcmp(argv[1], "token") == 0)
        return host_token(c, argc, argv);
    if (strcmp(argv[1], "delete") == 0)
        return host_delete(c, argc, argv);
    if (strcmp(argv[1], "list") != 0)
        return cli_usage_err("unknown subcommand 'host %.100s'", argv[1]);
    if (argc > 2)
        return argv[2][0] == '-' ? cli_bad_opt("host list", argv[2])
                                 : cli_usage_err("wrong arguments; usage: portcullis host list");
    return list_hosts(c);
}
