/* SPDX-License-Identifier: BSD-2-Clause */
/* Access on request: /v1/requests (cp_access.h). */
#include "config.h"
#include "api.h"
#include "cp_access.h"
#include "cp_users.h"
#include "pc_err.h"
#include "pc_valid.h"
#include <stdio.h>
#include <string.h>

static void reply(struct cp_resp *r, int rc, struct cp_access_res *res, unsigned ok_status)
{
    if (rc != PC_OK)
        cp_resp_error(r, 500, "internal", "internal error; nothing was changed");
    else if (res->status)
        cp_resp_error(r, res->status, res->error, res->message);
    else
        cp_resp_json(r, ok_status, res->out);
}

/* The {id} of /v1/requests/{id}/…: 32 hex digits, else 404. */
static const char *request_id(struct cp_call *c, struct cp_resp *r)
{
    if (!pc_valid_hex(c->seg[1], CP_ACCESS_ID_LEN, CP_ACCESS_ID_LEN)) {
        cp_resp_error(r, 404, "not_found", "request not found");
        return NULL;
    }
    return c->seg[1];
}

/* A reason: 1..CP_ACCESS_REASON_MAX characters, no control characters. */
static int get_reason(struct cp_call *c, struct cp_resp *r, const char **reason)
{
    struct pc_jerr e = { 0 };
    if (pc_json_get_str(c->body, "reason", 1, CP_ACCESS_REASON_MAX, reason, &e) != PC_OK) {
        cp_resp_jerr(r, &e);
        return -1;
    }
    if (!**reason) {
        cp_resp_error(r, 400, "bad_field", "field 'reason' must not be empty");
        return -1;
    }
    return 0;
}

void api_request_create(struct cp_call *c, struct cp_resp *r)
{
    static const char *const fields[] = { "account", "hosts", "duration", "reason", NULL };
    struct pc_jerr e = { 0 };
    struct cp_access_res res;
    const char *account = NULL, *reason = NULL;
    json_object *hosts = NULL, *sel;
    int64_t duration = 0;
    int rc;

    if (cp_body_check(c, r, fields))
        return;
    if (pc_json_get_str(c->body, "account", 1, 64, &account, &e) != PC_OK ||
        pc_json_get_int(c->body, "duration", 1, CP_ACCESS_MIN_DURATION, CP_ACCESS_MAX_DURATION,
                        &duration, &e) != PC_OK) {
        cp_resp_jerr(r, &e);
        return;
    }
    if (get_reason(c, r, &reason))
        return;
    if (!cp_user_name_valid(account)) {
        cp_resp_error(r, 400, "bad_field", "field 'account' must be a local account name");
        return;
    }
    if (json_object_object_get_ex(c->body, "hosts", &hosts) &&
        (!json_object_is_type(hosts, json_type_object) || !api_labels_valid(hosts))) {
        cp_resp_error(r, 400, "bad_field",
                      "field 'hosts' must be an object of at most 32 string labels");
        return;
    }
    sel = hosts ? json_object_get(hosts) : json_object_new_object();
    rc = cp_access_create(c->id.user, c->source, account, sel, duration, reason, &res);
    json_object_put(sel);
    reply(r, rc, &res, 201);
}

void api_requests_list(struct cp_call *c, struct cp_resp *r)
{
    json_object *arr = NULL, *o;
    int rc = cp_access_list(&c->id, &arr);

    if (rc != PC_OK) {
        cp_resp_from_err(r, rc, "requests");
        return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "requests", arr);
    cp_resp_json(r, 200, o);
}

void api_request_approve(struct cp_call *c, struct cp_resp *r)
{
    static const char *const fields[] = { "code", NULL };
    struct pc_jerr e = { 0 };
    struct cp_access_res res;
    const char *id = request_id(c, r), *code = NULL;
    int rc;

    if (!id || cp_body_check(c, r, fields))
        return;
    if (pc_json_get_str(c->body, "code", 1, 8, &code, &e) != PC_OK) {
        cp_resp_jerr(r, &e);
        return;
    }
    if (strlen(code) < 6 || strspn(code, "0123456789") != strlen(code)) {
        cp_resp_error(r, 400, "bad_field", "field 'code' must be the approver's 6-8 digit code");
        return;
    }
    rc = cp_access_approve(c->id.user, c->id.expires_at, c->source, id, code, &res);
    reply(r, rc, &res, 200);
}

void api_request_deny(struct cp_call *c, struct cp_resp *r)
{
    static const char *const fields[] = { "reason", NULL };
    struct cp_access_res res;
    const char *id = request_id(c, r), *reason = NULL;
    int rc;

    if (!id || cp_body_check(c, r, fields) || get_reason(c, r, &reason))
        return;
    rc = cp_access_deny(&c->id, c->source, id, reason, &res);
    reply(r, rc, &res, 200);
}

void api_request_revoke(struct cp_call *c, struct cp_resp *r)
{
    static const char *const fields[] = { NULL };
    struct cp_access_res res;
    const char *id = request_id(c, r);
    int rc;

    if (!id || cp_body_check(c, r, fields))
        return;
    rc = cp_access_revoke(&c->id, c->source, id, &res);
    reply(r, rc, &res, 200);
}
