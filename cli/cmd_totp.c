/* SPDX-License-Identifier: BSD-2-Clause */
/* portcullis totp enroll NAME [--force] */
#include "config.h"
#include "cli.h"
#include <stdio.h>
#include <string.h>

static int enroll(struct cli *c, const char *name, int force)
{
    char path[128];
    json_object *body, *reply = NULL, *uri = NULL, *out;
    long status;
    int rc;

    snprintf(path, sizeof path, "/v1/users/%s/totp", name);
    body = json_object_new_object();
    if (!body)
        return cli_err(PC_ERR_NOMEM, "out of memory");
    json_object_object_add(body, "force", json_object_new_boolean(force));
    rc = cli_request(c, "POST", path, body, &status, &reply);
    json_object_put(body);
    if (rc != PC_OK)
        return rc;
    if (status == 409 && !force) {
        json_object_put(reply);
        return cli_err(PC_ERR_EXISTS,
                       "%s already has TOTP; re-run with --force to replace it "
                       "(the old codes stop working)",
                       name);
    }
    rc = cli_check(c, status, reply,
                   status == 404 ? "list users with 'portcullis user list'" : NULL);
    if (rc == PC_OK && (!reply || !json_object_object_get_ex(reply, "uri", &uri) ||
                        !json_object_is_type(uri, json_type_string) ||
                        strncmp(json_object_get_string(uri), "otpauth://", 10) != 0))
        rc = cli_err(PC_ERR_PARSE, "the server's reply has no otpauth:// URI: check that --url "
                                   "points at portcullisd");
    if (rc != PC_OK) {
        json_object_put(reply);
        return rc;
    }
    if (c->json) {
        /* Exactly {"uri":…}, whatever else the server adds. */
        out = json_object_new_object();
        if (!out) {
            json_object_put(reply);
            return cli_err(PC_ERR_NOMEM, "out of memory");
        }
        json_object_object_add(out, "uri", json_object_get(uri));
        cli_print_json(out);
        json_object_put(out);
    } else {
        char safe[1024];
        cli_sanitize(safe, sizeof safe, json_object_get_string(uri));
        printf("Scan this QR code with %s's authenticator app:\n\n", name);
        rc = cli_qr_print(stdout, json_object_get_string(uri));
        if (rc != PC_OK)
            fprintf(stderr,
                    "portcullis: cannot draw the QR code (%s): enter the URI below "
                    "by hand\n",
                    pc_strerror(rc));
        printf("\nOr enter this URI by hand (it contains the secret: do not store or share it):\n"
               "%s\n",
               safe);
        rc = PC_OK;
    }
    json_object_put(reply);
    return rc;
}

int cmd_totp(struct cli *c, int argc, char **argv)
{
    const char *name = NULL;
    int force = 0, dashdash = 0;

    if (argc < 2)
        return cli_usage_err("'totp' needs a subcommand: enroll");
    if (strcmp(argv[1], "enroll") != 0)
        return cli_usage_err("unknown subcommand 'totp %.100s'", argv[1]);
    for (int i = 2; i < argc; i++) {
        if (!dashdash && strcmp(argv[i], "--") == 0)
            dashdash = 1;
        else if (!dashdash && strcmp(argv[i], "--force") == 0)
            force = 1;
        else if (!dashdash && argv[i][0] == '-')
            return cli_bad_opt("totp enroll", argv[i]);
        else if (name)
            return cli_usage_err("wrong arguments; usage: portcullis totp enroll NAME [--force]");
        else
            name = argv[i];
    }
    if (!name)
        return cli_usage_err("wrong arguments; usage: portcullis totp enroll NAME [--force]");
    if (!cli_valid_user(name))
        return cli_usage_err("'%.100s' is not a valid user name", name);
    return enroll(c, name, force);
}
