/* SPDX-License-Identifier: BSD-2-Clause */
/* portcullis explain TXID, and portcullis audit --user U --last-denial: the decision path of
 * one login in sentences (GET /v1/audit/explain/{txid}). */
#include "config.h"
#include "cli.h"
#include "pc_valid.h"
#include <stdio.h>
#include <string.h>

/* Prints the explanation of txid (or, with --json, the whole reply). */
static int explain(struct cli *c, const char *txid)
{
    char path[96], line[1200];
    json_object *reply = NULL, *lines = NULL;
    int rc;

    snprintf(path, sizeof path, "/v1/audit/explain/%s", txid);
    if ((rc = cli_call(c, "GET", path, NULL, &reply, NULL)) != PC_OK)
        goto out;
    if (c->json) {
        cli_print_json(reply);
        goto out;
    }
    if (!json_object_object_get_ex(reply, "explanation", &lines) ||
        !json_object_is_type(lines, json_type_array)) {
        rc = cli_err(PC_ERR_PARSE, "the server's reply has no explanation");
        goto out;
    }
    for (size_t i = 0; i < json_object_array_length(lines); i++) {
        cli_sanitize(line, sizeof line,
                     json_object_get_string(json_object_array_get_idx(lines, i)));
        printf("%s\n", line);
    }
out:
    json_object_put(reply);
    return rc;
}

int cmd_explain(struct cli *c, int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-')
        return cli_usage_err("usage: portcullis explain TXID");
    if (!pc_valid_hex(argv[1], 32, 32))
        return cli_usage_err("'%.100s' is not a txid (32 hex digits, as in the audit log's TXID "
                             "column and the host's syslog)",
                             argv[1]);
    return explain(c, argv[1]);
}

/* The newest login of user that was denied: an auth.* or push.* row with result deny. */
int cli_explain_last_denial(struct cli *c, const char *user)
{
    char path[128], txid[33] = "";
    json_object *reply = NULL, *rows;
    int rc;

    snprintf(path, sizeof path, "/v1/audit?user=%s&limit=10000", user);
    if ((rc = cli_call(c, "GET", path, NULL, &reply, NULL)) != PC_OK)
        goto out;
    if (!json_object_object_get_ex(reply, "audit", &rows) ||
        !json_object_is_type(rows, json_type_array)) {
        rc = cli_err(PC_ERR_PARSE, "the server's reply has no audit rows");
        goto out;
    }
    for (size_t i = json_object_array_length(rows); i-- > 0 && !txid[0];) {
        json_object *r = json_object_array_get_idx(rows, i), *v;
        const char *action = json_object_object_get_ex(r, "action", &v) && v
                                 ? json_object_get_string(v)
                                 : "";
        const char *result = json_object_object_get_ex(r, "result", &v) && v
                                 ? json_object_get_string(v)
                                 : "";
        const char *t = json_object_object_get_ex(r, "txid", &v) && v ? json_object_get_string(v)
                                                                      : "";
        if ((strncmp(action, "auth.", 5) == 0 || strncmp(action, "push.", 5) == 0) &&
            strcmp(result, "deny") == 0 && pc_valid_hex(t, 32, 32))
            snprintf(txid, sizeof txid, "%s", t);
    }
    if (!txid[0]) {
        rc = cli_err(PC_ERR_NOTFOUND,
                     "no denied login of %s in the audit log. A login the control plane never "
                     "saw (the host could not reach it) was decided by the PAM module's failmode "
                     "or offline, and appears here once that host reports it (auth.failmode, "
                     "auth.offline); until then see that host's syslog (pam_portcullis) and its "
                     "portcullis_agent_failmode_replies_total",
                     user);
        goto out;
    }
    rc = explain(c, txid);
out:
    json_object_put(reply);
    return rc;
}
