/* Endpoints anyone may call: health and host enrollment (the enrollment token is the credential). */
#include "config.h"
#include "api.h"
#include "cp_tokens.h"
#include "pc_err.h"
#include "pc_mem.h"
#include <string.h>

void api_health(struct cp_call *c, struct cp_resp *r)
{
    json_object *o = json_object_new_object();
    (void)c;
    json_object_object_add(o, "status", json_object_new_string("ok"));
    json_object_object_add(o, "version", json_object_new_string(PC_VERSION));
    cp_resp_json(r, 200, o);
}

static int hostname_valid(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = h[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '.' || ch == '_'))
            return 0;
    }
    return 1;
}

void api_enroll(struct cp_call *c, struct cp_resp *r)
{
    static const char *const fields[] = { "token", "hostname", NULL };
    struct pc_jerr e = { 0 };
    const char *token = NULL, *hostname = NULL;
    struct cp_who who = { "enroll", c->source };
    char host_token[65];
    int64_t host_id = 0;
    json_object *o;
    int rc;

    if (cp_body_check(c, r, fields))
        return;
    if (pc_json_get_str(c->body, "token", 1, 128, &token, &e) != PC_OK ||
        pc_json_get_str(c->body, "hostname", 1, 253, &hostname, &e) != PC_OK) {
        cp_resp_jerr(r, &e);
        return;
    }
    if (!hostname_valid(hostname)) {
        cp_resp_error(r, 400, "bad_field", "field 'hostname' must be a host name");
        return;
    }
    rc = cp_host_enroll(&who, token, hostname, &host_id, host_token);
    if (rc == PC_ERR_AUTH) {
        cp_resp_error(r, 401, "unauthorized",
                      "enrollment token unknown, already used or expired: ask for a new one");
        return;
    }
    if (rc != PC_OK) {
        cp_resp_from_err(r, rc, "host");
        return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "host_id", json_object_new_int64(host_id));
    json_object_object_add(o, "host_token", json_object_new_string(host_token));
    pc_wipe(host_token, sizeof host_token);
    cp_resp_json(r, 200, o);
}
