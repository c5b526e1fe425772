/* SPDX-License-Identifier: BSD-2-Clause */
/* portcullis user key add|list|delete, and helpers shared by the CA commands. */
#include "config.h"
#include "cli.h"
#include "pc_fs.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PUBKEY_FILE_MAX (64 * 1024)

void cli_url_escape(char *dst, size_t dstsz, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;

    for (; *s && n + 4 < dstsz; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            strchr("._~-", ch)) {
            dst[n++] = (char)ch;
        } else {
            dst[n++] = '%';
            dst[n++] = hex[ch >> 4];
            dst[n++] = hex[ch & 15];
        }
    }
    dst[n] = '\0';
}

int cli_read_pubkey(const char *path, char **line)
{
    char *buf = NULL, alt[4096];
    size_t len = 0;
    int rc;

    rc = pc_read_file(path, PUBKEY_FILE_MAX, &buf, &len);
    if (rc == PC_OK && strstr(buf, "PRIVATE KEY-----")) {
        /* A private key was named: use its .pub beside it. */
        free(buf);
        buf = NULL;
        if (snprintf(alt, sizeof alt, "%s.pub", path) >= (int)sizeof alt)
            return cli_err(PC_ERR_INVAL, "%s: path too long", path);
        path = alt;
        rc = pc_read_file(path, PUBKEY_FILE_MAX, &buf, &len);
    }
    if (rc != PC_OK)
        return cli_err(rc, "cannot read the public key file %s (%s)", path,
                       rc == PC_ERR_NOTFOUND ? "no such file" : pc_strerror(rc));
    buf[strcspn(buf, "\r\n")] = '\0';
    if (!*buf) {
        free(buf);
        return cli_err(PC_ERR_PARSE, "%s: the first line is empty; expected an OpenSSH public key",
                       path);
    }
    *line = buf;
    return PC_OK;
}

static int key_list(struct cli *c, const char *name)
{
    static const struct cli_column cols[] = {
        { "FINGERPRINT", "fingerprint", NULL, 256 },
        { "TYPE", "type", NULL, 256 },
        { "COMMENT", "comment", NULL, 256 },
        { "ADDED", "added_at", cli_field_time, 256 },
    };
    char path[128];

    snprintf(path, sizeof path, "/v1/users/%s/keys", name);
    return cli_list(c, path, "keys", "no SSH keys", cols, sizeof cols / sizeof cols[0]);
}

static int key_add(struct cli *c, const char *name, const char *file)
{
    char path[128], fp[128], type[64];
    char *line = NULL;
    json_object *body, *reply;
    int rc;

    if ((rc = cli_read_pubkey(file, &line)) != PC_OK)
        return rc;
    body = json_object_new_object();
    json_object_object_add(body, "public_key", json_object_new_string(line));
    free(line);
    snprintf(path, sizeof path, "/v1/users/%s/keys", name);
    rc = cli_call(c, "POST", path, body, &reply, "list users with 'portcullis user list'");
    json_object_put(body);
    if (rc != PC_OK)
        return rc;
    if (c->json)
        cli_print_json(reply);
    else
        printf("added %s key %s for %s\n", cli_field(reply, "type", type, sizeof type),
               cli_field(reply, "fingerprint", fp, sizeof fp), name);
    json_object_put(reply);
    return PC_OK;
}

static int key_delete(struct cli *c, const char *name, const char *fp)
{
    char path[512], esc[256], b[128];
    json_object *reply;
    int rc;

    if (strlen(fp) > 100)
        return cli_usage_err("'%.100s…' is not a key fingerprint (see 'portcullis user key list')",
                             fp);
    cli_url_escape(esc, sizeof esc, fp);
    snprintf(path, sizeof path, "/v1/users/%s/keys/%s", name, esc);
    rc = cli_call(c, "DELETE", path, NULL, &reply, "see 'portcullis user key list NAME'");
    if (rc != PC_OK)
        return rc;
    if (c->json)
        cli_print_json(reply);
    else
        printf("deleted key %s of %s; its certificates are revoked and its sessions ended\n",
               cli_field(reply, "deleted", b, sizeof b), name);
    json_object_put(reply);
    return PC_OK;
}

/* argv: "key" SUB NAME [FILE|FP] */
int cmd_user_key(struct cli *c, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    int want = strcmp(sub, "list") == 0 ? 3 : 4;

    if (strcmp(sub, "add") != 0 && strcmp(sub, "list") != 0 && strcmp(sub, "delete") != 0)
        return cli_usage_err("'user key' needs add, list or delete");
    for (int i = 2; i < argc; i++)
        if (argv[i][0] == '-' && !(strcmp(sub, "add") == 0 && i == 3))
            return cli_bad_opt("user key", argv[i]);
    if (argc != want)
        return cli_usage_err("wrong arguments; usage: portcullis user key %s",
                             want == 3                 ? "list NAME"
                             : strcmp(sub, "add") == 0 ? "add NAME FILE"
                                                       : "delete NAME FINGERPRINT");
    if (!cli_valid_user(argv[2]))
        return cli_usage_err("'%.100s' is not a valid user name", argv[2]);
    if (strcmp(sub, "list") == 0)
        return key_list(c, argv[2]);
    if (strcmp(sub, "add") == 0)
        return key_add(c, argv[2], argv[3]);
    return key_delete(c, argv[2], argv[3]);
}
