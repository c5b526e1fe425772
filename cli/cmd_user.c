/* SPDX-License-Identifier: BSD-2-Clause */
/* portcullis user add|list|show|disable|enable|delete|groups|push|invite|passkeys|passkey */
#include "config.h"
#include "cli.h"
#include "pc_config.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_GROUPS 64
#define MAX_POS 70
#define NOT_FOUND_HINT "list users with 'portcullis user list'"

enum { OPT_GROUP = 1, OPT_NOPUSH = 2, OPT_NONE = 4, OPT_SSHKEY = 8, OPT_TTL = 16 };

struct uargs {
    const char *sub;
    const char *pos[MAX_POS];
    int npos;
    json_object *groups; /* --group values */
    json_object *keys;   /* --ssh-key files' lines */
    int no_push, none, push_on;
    int64_t ttl; /* --ttl (invite), 0: the server's default */
};

static const struct {
    const char *name;
    int opts, minpos, maxpos;
    const char *usage;
} subs[] = {
    { "add", OPT_GROUP | OPT_NOPUSH | OPT_SSHKEY, 1, 1,
      "user add NAME [--group G]... [--no-push] [--ssh-key FILE]..." },
    { "list", 0, 0, 0, "user list" },
    { "show", 0, 1, 1, "user show NAME" },
    { "disable", 0, 1, 1, "user disable NAME" },
    { "enable", 0, 1, 1, "user enable NAME" },
    { "delete", 0, 1, 1, "user delete NAME" },
    { "groups", OPT_NONE, 1, MAX_POS, "user groups NAME G... | user groups NAME --none" },
    { "push", 0, 2, 2, "user push NAME on|off" },
    /* the approval web app */
    { "invite", OPT_TTL, 1, 1, "user invite NAME [--ttl DURATION]" },
    { "passkeys", 0, 1, 1, "user passkeys NAME" },
};

static int parse(int argc, char **argv, int opts, struct uargs *u)
{
    int dashdash = 0, r;
    const char *v;

    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!dashdash && strcmp(a, "--") == 0) {
            dashdash = 1;
        } else if (!dashdash && a[0] == '-') {
            if ((opts & OPT_NOPUSH) && strcmp(a, "--no-push") == 0) {
                u->no_push = 1;
            } else if ((opts & OPT_NONE) && strcmp(a, "--none") == 0) {
                u->none = 1;
            } else if ((opts & OPT_SSHKEY) && (r = cli_opt(argc, argv, &i, "--ssh-key", &v)) != 0) {
                char *line = NULL;
                if (r < 0 || (r = cli_read_pubkey(v, &line)) != PC_OK)
                    return r;
                json_object_array_add(u->keys, json_object_new_string(line));
                free(line);
            } else if ((opts & OPT_TTL) && (r = cli_opt(argc, argv, &i, "--ttl", &v)) != 0) {
                if (r < 0 ||
                    (r = cli_parse_duration("--ttl", v, 300, 30 * 86400, &u->ttl)) != PC_OK)
                    return r;
            } else if ((opts & OPT_GROUP) && (r = cli_opt(argc, argv, &i, "--group", &v)) != 0) {
                if (r < 0)
                    return r;
                if (json_object_array_length(u->groups) >= MAX_GROUPS)
                    return cli_usage_err("too many --group options (at most %d)", MAX_GROUPS);
                json_object_array_add(u->groups, json_object_new_string(v));
            } else {
                char what[32];
                snprintf(what, sizeof what, "user %s", u->sub);
                return cli_bad_opt(what, a);
            }
        } else {
            if (u->npos >= MAX_POS)
                return cli_usage_err("too many arguments");
            u->pos[u->npos++] = a;
        }
    }
    return PC_OK;
}

static void print_user(json_object *user)
{
    char b1[256], b2[1024];

    printf("name:          %s\n", cli_field(user, "name", b1, sizeof b1));
    printf("enabled:       %s\n", cli_field(user, "enabled", b1, sizeof b1));
    printf("groups:        %s\n", cli_field(user, "groups", b2, sizeof b2));
    printf("totp:          %s\n", cli_field(user, "totp", b1, sizeof b1));
    printf("push:          %s\n", cli_field(user, "push", b1, sizeof b1));
    printf("failures:      %s\n", cli_field(user, "failures", b1, sizeof b1));
    printf("locked until:  %s\n", cli_field_time(user, "locked_until", b1, sizeof b1));
}

static int list_users(struct cli *c)
{
    static const struct cli_column cols[] = {
        { "NAME", "name", NULL, 256 },
        { "ENABLED", "enabled", NULL, 256 },
        { "TOTP", "totp", NULL, 256 },
        { "PUSH", "push", NULL, 256 },
        { "FAILURES", "failures", NULL, 256 },
        { "LOCKED-UNTIL", "locked_until", cli_field_time, 256 },
        { "GROUPS", "groups", NULL, 256 },
    };

    return cli_list(c, "/v1/users", "users", "no users", cols, sizeof cols / sizeof cols[0]);
}

/* Sends one request about user NAME and prints the outcome. */
static int user_request(struct cli *c, const char *method, const char *name, const char *suffix,
                        json_object *body, const char *done)
{
    char path[128];
    json_object *reply;
    int rc;

    snprintf(path, sizeof path, "/v1/users%s%s", suffix, name ? name : "");
    rc = cli_call(c, method, path, body, &reply,
                  strcmp(method, "POST") == 0 ? NULL : NOT_FOUND_HINT);
    if (rc != PC_OK)
        return rc;
    if (c->json)
        cli_print_json(reply);
    else if (done)
        printf("%s\n", done);
    else
        print_user(reply);
    json_object_put(reply);
    return PC_OK;
}

/* user invite NAME: a one-time URL for the approval web app, and its QR code. */
static int invite(struct cli *c, const char *name, int64_t ttl)
{
    char path[128], safe[512];
    json_object *body = json_object_new_object(), *reply = NULL, *url;
    int rc;

    if (!body)
        return cli_err(PC_ERR_NOMEM, "out of memory");
    if (ttl)
        json_object_object_add(body, "ttl", json_object_new_int64(ttl));
    snprintf(path, sizeof path, "/v1/users/%s/invite", name);
    rc = cli_call(c, "POST", path, body, &reply, NOT_FOUND_HINT);
    json_object_put(body);
    if (rc != PC_OK)
        return rc;
    if (c->json) {
        cli_print_json(reply);
    } else if (json_object_object_get_ex(reply, "url", &url) &&
               json_object_is_type(url, json_type_string)) {
        char until[64];
        cli_sanitize(safe, sizeof safe, json_object_get_string(url));
        printf("Send %s this one-time link (or let them scan the code) to create a passkey on "
               "their phone; valid until %s, once:\n\n",
               name, cli_field_time(reply, "expires_at", until, sizeof until));
        if ((rc = cli_qr_print(stdout, json_object_get_string(url))) != PC_OK)
            fprintf(stderr, "portcullis: cannot draw the QR code (%s)\n", pc_strerror(rc));
        printf("\n%s\n", safe);
        rc = PC_OK;
    } else {
        rc = cli_err(PC_ERR_PARSE, "the server's answer has no url");
    }
    json_object_put(reply);
    return rc;
}

static int list_passkeys(struct cli *c, const char *name)
{
    static const struct cli_column cols[] = {
        { "ID", "id", NULL, 32 },
        { "ALGORITHM", "algorithm", NULL, 32 },
        { "CREATED", "created_at", cli_field_time, 64 },
        { "LAST-USED", "last_used_at", cli_field_time, 64 },
        { "CREDENTIAL", "credential_id", NULL, 24 },
    };
    char path[128], empty[96];

    snprintf(path, sizeof path, "/v1/users/%s/passkeys", name);
    snprintf(empty, sizeof empty, "%s has no passkeys (portcullis user invite %s)", name, name);
    return cli_list(c, path, "passkeys", empty, cols, sizeof cols / sizeof cols[0]);
}

/* argv: "passkey" "delete" NAME ID */
static int passkey_delete(struct cli *c, int argc, char **argv)
{
    char path[160], done[128];
    uint64_t id;

    if (argc != 4 || strcmp(argv[1], "delete") != 0)
        return cli_usage_err("usage: portcullis user passkey delete NAME ID");
    if (!cli_valid_user(argv[2]))
        return cli_usage_err("'%.100s' is not a valid user name", argv[2]);
    if (pc_parse_uint(argv[3], 1, INT64_MAX, &id) != PC_OK)
        return cli_usage_err("'%.40s' is not a passkey ID (see portcullis user passkeys %s)",
                             argv[3], argv[2]);
    snprintf(path, sizeof path, "%s/passkeys/%llu", argv[2], (unsigned long long)id);
    snprintf(done, sizeof done, "deleted passkey %llu of %s (and ended its web sessions)",
             (unsigned long long)id, argv[2]);
    return user_request(c, "DELETE", path, "/", NULL, done);
}

static int run(struct cli *c, int sub, struct uargs *u)
{
    const char *name = u->pos[0];
    const char *s = subs[sub].name;
    json_object *body = NULL;
    char done[256];
    int rc, on = u->push_on;

    if (strcmp(s, "list") == 0)
        return list_users(c);
    if (strcmp(s, "invite") == 0)
        return invite(c, name, u->ttl);
    if (strcmp(s, "passkeys") == 0)
        return list_passkeys(c, name);
    if (strcmp(s, "show") == 0)
        return user_request(c, "GET", name, "/", NULL, NULL);
    if (strcmp(s, "delete") == 0) {
        snprintf(done, sizeof done, "deleted user %s", name);
        return user_request(c, "DELETE", name, "/", NULL, done);
    }
    body = json_object_new_object();
    if (!body)
        return cli_err(PC_ERR_NOMEM, "out of memory");
    if (strcmp(s, "add") == 0) {
        json_object_object_add(body, "name", json_object_new_string(name));
        json_object_object_add(body, "groups", json_object_get(u->groups));
        json_object_object_add(body, "push", json_object_new_boolean(!u->no_push));
        if (json_object_array_length(u->keys) > 0)
            json_object_object_add(body, "ssh_keys", json_object_get(u->keys));
        snprintf(done, sizeof done,
                 "added user %s (push approval %s); next: portcullis totp "
                 "enroll %s",
                 name, u->no_push ? "off" : "on", name);
        rc = user_request(c, "POST", NULL, "", body, done);
    } else if (strcmp(s, "groups") == 0) {
        for (int i = 1; i < u->npos; i++)
            json_object_array_add(u->groups, json_object_new_string(u->pos[i]));
        json_object_object_add(body, "groups", json_object_get(u->groups));
        rc = user_request(c, "PATCH", name, "/", body, NULL);
    } else if (strcmp(s, "push") == 0) {
        json_object_object_add(body, "push", json_object_new_boolean(on));
        snprintf(done, sizeof done, "push approval is now %s for %s", on ? "on" : "off", name);
        rc = user_request(c, "PATCH", name, "/", body, done);
    } else { /* enable, disable */
        on = strcmp(s, "enable") == 0;
        json_object_object_add(body, "enabled", json_object_new_boolean(on));
        snprintf(done, sizeof done, "user %s is now %s", name, on ? "enabled" : "disabled");
        rc = user_request(c, "PATCH", name, "/", body, done);
    }
    json_object_put(body);
    return rc;
}

int cmd_user(struct cli *c, int argc, char **argv)
{
    struct uargs u = { 0 };
    int sub = -1, rc;

    if (argc < 2)
        return cli_usage_err("'user' needs a subcommand: add, list, show, disable, enable, "
                             "delete, groups, push, key, invite, passkeys or passkey");
    if (strcmp(argv[1], "key") == 0)
        return cmd_user_key(c, argc - 1, argv + 1);
    if (strcmp(argv[1], "passkey") == 0)
        return passkey_delete(c, argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (strcmp(argv[1], subs[i].name) == 0)
            sub = (int)i;
    if (sub < 0)
        return cli_usage_err("unknown subcommand 'user %.100s'", argv[1]);
    u.sub = subs[sub].name;
    u.groups = json_object_new_array();
    u.keys = json_object_new_array();
    if (!u.groups || !u.keys) {
        json_object_put(u.groups);
        json_object_put(u.keys);
        return cli_err(PC_ERR_NOMEM, "out of memory");
    }
    rc = parse(argc, argv, subs[sub].opts, &u);
    if (rc == PC_OK && (u.npos < subs[sub].minpos || u.npos > subs[sub].maxpos))
        rc = cli_usage_err("wrong arguments; usage: portcullis %s", subs[sub].usage);
    if (rc == PC_OK && u.npos > 0 && !cli_valid_user(u.pos[0]))
        rc = cli_usage_err("'%.100s' is not a valid user name (lower-case letters, digits, "
                           "'_', '.', '-'; at most 32; starting with a letter or '_')",
                           u.pos[0]);
    if (rc == PC_OK && strcmp(u.sub, "groups") == 0 && (u.npos > 1) == (u.none != 0))
        rc = cli_usage_err("wrong arguments; usage: portcullis %s", subs[sub].usage);
    if (rc == PC_OK && strcmp(u.sub, "push") == 0 && pc_parse_bool(u.pos[1], &u.push_on) != PC_OK)
        rc = cli_usage_err("'%.100s' is not on or off: usage: portcullis %s", u.pos[1],
                           subs[sub].usage);
    if (rc == PC_OK)
        rc = run(c, sub, &u);
    json_object_put(u.groups);
    json_object_put(u.keys);
    return rc;
}
