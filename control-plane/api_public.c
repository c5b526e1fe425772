/* SPDX-License-Identifier: BSD-2-Clause */
/* Endpoints anyone may call: health and host enrollment (the enrollment token is the credential). */
#include "config.h"
#include "api.h"
#include "cp_hosts.h"
#include "cp_tokens.h"
#include "cp_userkeys.h"
#include "pc_err.h"
#include "pc_mem.h"
#include "pc_time.h"
#include "pc_valid.h"
#include <stdlib.h>
#include <string.h>

void api_health(struct cp_call *c, struct cp_resp *r)
{
    json_object *o = json_object_new_object();
    (void)c;
    json_object_object_add(o, "status", json_object_new_string("ok"));
    json_object_object_add(o, "version", json_object_new_string(PC_VERSION));
    json_object_object_add(o, "time", json_object_new_int64(pc_now())); /* doctor's clock check */
    cp_resp_json(r, 200, o);
}

/* Optional host_key + principals: checked here so enrollment fails before the token is used. */
static int enroll_cert_args(struct cp_call *c, struct cp_resp *r, struct pc_sshkey **key,
                            json_object **princ)
{
    struct pc_jerr e = { 0 };
    const char *line = NULL;

    if (pc_json_get_str(c->body, "host_key", 0, PC_SSHKEY_LINE_MAX, &line, &e) != PC_OK ||
        pc_json_get_str_array(c->body, "principals", 0, CP_HOST_MAX_PRINCIPALS - 1, 255, princ,
                              &e) != PC_OK) {
        cp_resp_jerr(r, &e);
        return 1;
    }
    for (size_t i = 0; *princ && i < json_object_array_length(*princ); i++) {
        json_object *p = json_object_array_get_idx(*princ, i);
        if (!pc_valid_principal(json_object_get_string(p), (size_t)json_object_get_string_len(p))) {
            cp_resp_error(r, 400, "bad_field",
                          "field 'principals' holds an invalid name or address");
            return 1;
        }
    }
    if (line && cp_userkey_parse(line, key, NULL) != PC_OK) {
        cp_resp_error(r, 400, "bad_field", "field 'host_key' must be an OpenSSH public key line");
        return 1;
    }
    return 0;
}

static json_object *enroll_reply(int64_t host_id, const char *hostname, char *host_token,
                                 const char *cert_line)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "host_id", json_object_new_int64(host_id));
    json_object_object_add(o, "hostname", json_object_new_string(hostname));
    json_object_object_add(o, "host_token", json_object_new_string(host_token));
    if (cert_line) {
        json_object_object_add(o, "host_certificate", json_object_new_string(cert_line));
        json_object_object_add(o, "user_ca", json_object_new_string(cp_ca_user_line()));
        json_object_object_add(o, "host_ca", json_object_new_string(cp_ca_host_line()));
    }
    return o;
}

void api_enroll(struct cp_call *c, struct cp_resp *r)
{
    static const char *const fields[] = { "token", "hostname", "host_key", "principals", NULL };
    struct pc_jerr e = { 0 };
    const char *token = NULL, *hostname = NULL;
    struct cp_who who = { "enroll", c->source };
    struct pc_sshkey *key = NULL;
    struct cp_enroll_cert cert = { 0 };
    char host_token[65], name[256] = "";
    int64_t host_id = 0;
    int rc;

    if (cp_body_check(c, r, fields))
        return;
    if (pc_json_get_str(c->body, "token", 1, 128, &token, &e) != PC_OK ||
        pc_json_get_str(c->body, "hostname", 0, 253, &hostname, &e) != PC_OK) {
        cp_resp_jerr(r, &e);
        return;
    }
    if (hostname && !pc_valid_hostname(hostname)) {
        cp_resp_error(r, 400, "bad_field", "field 'hostname' must be a host name");
        return;
    }
    if (enroll_cert_args(c, r, &key, &cert.principals))
        return;
    cert.host_key = key;
    rc = cp_host_enroll(&who, token, hostname, key ? &cert : NULL, &host_id, host_token, name,
                        sizeof name);
    pc_sshkey_free(key);
    if (rc == PC_ERR_AUTH)
        cp_resp_error(r, 401, "unauthorized",
                      "enrollment token unknown, already used or expired: ask for a new one");
    else if (rc == PC_ERR_STATE)
        cp_resp_error(r, 403, "forbidden",
                      "the enrollment token names another hostname or other "
                      "principals: a host enrolls as its token says (send none to take them)");
    else if (rc == PC_ERR_EXISTS)
        cp_resp_error(r, 409, "conflict",
                      "a host with this name is enrolled: delete it first "
                      "(portcullis host delete)");
    else if (rc != PC_OK)
        cp_resp_from_err(r, rc, "host");
    else
        cp_resp_json(r, 200, enroll_reply(host_id, name, host_token, cert.line));
    free(cert.line);
    pc_wipe(host_token, sizeof host_token);
}
