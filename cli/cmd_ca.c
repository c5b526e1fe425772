/* SPDX-License-Identifier: BSD-2-Clause */
/* portcullis ca rotate|finish|status: the CA rotation (docs/API-CA.md, "CA rotation"). */
#include "config.h"
#include "cli.h"
#include <stdio.h>
#include <string.h>

#define OVERLAP_MAX (90 * 86400)

static const char *usage = "usage: portcullis ca rotate user|host [--overlap DURATION] | "
                           "ca finish user|host [--now] | ca status";

static void print_one(json_object *ca)
{
    char name[16], phase[16], since[32], end[32], buf[2048];
    json_object *keys = NULL;

    cli_field(ca, "ca", name, sizeof name);
    cli_field(ca, "phase", phase, sizeof phase);
    cli_field_time(ca, "since", since, sizeof since);
    printf("%s CA: %s", name, phase);
    if (strcmp(since, "-") != 0) /* 0: never rotated */
        printf(" since %s", since);
    if (strcmp(phase, "overlap") == 0)
        printf(", overlap ends %s", cli_field_time(ca, "overlap_end", end, sizeof end));
    printf("\n");
    if (!json_object_object_get_ex(ca, "keys", &keys) ||
        !json_object_is_type(keys, json_type_array))
        return;
    for (size_t i = 0; i < json_object_array_length(keys); i++) {
        json_object *k = json_object_array_get_idx(keys, i);
        char role[16];
        cli_field(k, "role", role, sizeof role);
        printf("  %-8s %s\n", role, cli_field(k, "fingerprint", buf, sizeof buf));
    }
}

static int kind_arg(int argc, char **argv, int *i, const char **kind)
{
    if (*i >= argc || (strcmp(argv[*i], "user") != 0 && strcmp(argv[*i], "host") != 0))
        return cli_usage_err("%s", usage);
    *kind = argv[(*i)++];
    return PC_OK;
}

static int ca_change(struct cli *c, int argc, char **argv, int rotate)
{
    const char *kind = NULL, *overlap = NULL, *v = NULL;
    char path[64];
    json_object *body, *reply = NULL;
    int64_t secs = 0;
    int i = 2, now = 0, rc, r;

    if ((rc = kind_arg(argc, argv, &i, &kind)) != PC_OK)
        return rc;
    for (; i < argc; i++) {
        if (rotate && (r = cli_opt(argc, argv, &i, "--overlap", &v)) != 0) {
            if (r < 0)
                return r;
            overlap = v;
        } else if (!rotate && strcmp(argv[i], "--now") == 0) {
            now = 1;
        } else {
            return argv[i][0] == '-' ? cli_bad_opt(rotate ? "ca rotate" : "ca finish", argv[i])
                                     : cli_usage_err("%s", usage);
        }
    }
    if (overlap && (rc = cli_parse_duration("--overlap", overlap, 0, OVERLAP_MAX, &secs)) != PC_OK)
        return rc;
    body = json_object_new_object();
    if (overlap)
        json_object_object_add(body, "overlap", json_object_new_int64(secs));
    if (now)
        json_object_object_add(body, "now", json_object_new_boolean(1));
    snprintf(path, sizeof path, "/v1/ca/%s/%s", kind, rotate ? "rotate" : "finish");
    rc = cli_call(c, "POST", path, body, &reply,
                  rotate ? "see 'portcullis ca status'"
                         : "see 'portcullis ca status'; --now ends the overlap early");
    json_object_put(body);
    if (rc != PC_OK)
        return rc;
    if (c->json) {
        cli_print_json(reply);
    } else {
        print_one(reply);
        printf(rotate ? "new certificates are signed by the new key; agents trust both keys "
                        "from their next sync\n"
                      : "the old key is no longer trusted: agents drop it at their next sync "
                        "and the KRL revokes it\n");
        if (strcmp(kind, "host") == 0)
            printf("clients: run 'portcullis ssh-config' again for the new @cert-authority "
                   "lines\n");
    }
    json_object_put(reply);
    return PC_OK;
}

static int ca_status(struct cli *c, int argc, char **argv)
{
    json_object *reply = NULL, *o;
    int rc;

    if (argc > 2)
        return argv[2][0] == '-' ? cli_bad_opt("ca status", argv[2]) : cli_usage_err("%s", usage);
    if ((rc = cli_call(c, "GET", "/v1/ca", NULL, &reply, NULL)) != PC_OK)
        return rc;
    if (c->json) {
        cli_print_json(reply);
    } else {
        if (json_object_object_get_ex(reply, "user", &o))
            print_one(o);
        if (json_object_object_get_ex(reply, "host", &o))
            print_one(o);
    }
    json_object_put(reply);
    return PC_OK;
}

int cmd_ca(struct cli *c, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";

    if (strcmp(sub, "rotate") == 0)
        return ca_change(c, argc, argv, 1);
    if (strcmp(sub, "finish") == 0)
        return ca_change(c, argc, argv, 0);
    if (strcmp(sub, "status") == 0)
        return ca_status(c, argc, argv);
    return cli_usage_err("%s", usage);
}
