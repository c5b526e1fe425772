/* SPDX-License-Identifier: BSD-2-Clause */
/* Admin endpoints: server info, push approvals, enrollment tokens, hosts, audit. */
#include "config.h"
#include "api.h"
#include "cp_audit.h"
#include "cp_hosts.h"
#include "cp_push.h"
#include "cp_store.h"
#include "cp_tokens.h"
#include "cp_webpush.h"
#include "pc_config.h"
#include "pc_err.h"
#include "pc_mem.h"
#include "pc_valid.h"
#include <stdio.h>
#include <string.h>

void api_info(struct cp_call *c, struct cp_resp *r)
{
    json_object *o = json_object_new_object();
    (void)c;
    json_object_object_add(o, "pin", json_object_new_string(cp_rt.pin));
    json_object_object_add(o, "version", json_object_new_string(PC_VERSION));
    json_object_object_add(o, "push_ttl", json_object_new_int64(cp_rt.settings->push_ttl));
    if (cp_rt.settings->public_url[0])
        json_object_object_add(o, "public_url", json_object_new_string(cp_rt.settings->public_url));
    /* Web Push notices dropped on a full queue since start (cp_webpush.h) */
    json_object_object_add(o, "webpush_dropped",
                           json_object_new_int64((int64_t)cp_webpush_dropped()));
    cp_resp_json(r, 200, o);
}

void api_approvals_list(struct cp_call *c, struct cp_resp *r)
{
    json_object *arr = NULL, *o;
    int rc = cp_push_list_pending(c->id.kind == CP_CALLER_SESSION ? c->id.user : NULL, &arr);
    if (rc != PC_OK) {
        cp_resp_from_err(r, rc, "approvals");
        return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "approvals", arr);
    cp_resp_json(r, 200, o);
}

void cp_resp_push_decided(struct cp_resp *r, int rc, const char *push_id, const char *state)
{
    json_object *o;

    if (rc == PC_ERR_STATE) {
        cp_resp_error(r, 409, "conflict",
                      "the push is no longer pending (approved, denied or expired)");
        return;
    }
    if (rc != PC_OK) {
        cp_resp_from_err(r, rc, "push");
        return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "push_id", json_object_new_string(push_id));
    json_object_object_add(o, "state", json_object_new_string(state));
    cp_resp_json(r, 200, o);
}

static void decide(struct cp_call *c, struct cp_resp *r, int approve)
{
    static const char *const approve_fields[] = { "match", NULL };
    static const char *const deny_fields[] = { NULL };
    struct pc_jerr e = { 0 };
    struct cp_who who = { "admin", c->source };
    const char *match = NULL, *only = NULL;
    char state[16] = "", actor[80];
    int rc;

    if (cp_body_check(c, r, approve ? approve_fields : deny_fields))
        return;
    if (approve && pc_json_get_str(c->body, "match", 1, 8, &match, &e) != PC_OK) {
        cp_resp_jerr(r, &e);
        return;
    }
    if (c->id.kind == CP_CALLER_SESSION) {
        /* A session decides only its own user's pushes. */
        snprintf(actor, sizeof actor, "session:%s", c->id.user);
        who.actor = actor;
        only = c->id.user;
    }
    rc = cp_push_decide(&who, only, c->seg[1], approve, match, c->id.expires_at, state);
    if (rc == PC_ERR_AUTH) {
        cp_resp_error(r, 403, "forbidden",
                      "a session cannot approve a 'portcullis login' push "
                      "(it would renew itself): an admin approves it");
        return;
    }
    cp_resp_push_decided(r, rc, c->seg[1], state);
}

void api_approval_approve(struct cp_call *c, struct cp_resp *r)
{
    decide(c, r, 1);
}

void api_approval_deny(struct cp_call *c, struct cp_resp *r)
{
    decide(c, r, 0);
}

int api_labels_valid(json_object *labels)
{
    if (json_object_object_length(labels) > 32)
        return 0;
    json_object_object_foreach(labels, k, v)
    {
        if (strlen(k) == 0 || strlen(k) > 64 || !pc_text_is_clean(k, 0) ||
            !json_object_is_type(v, json_type_string) || json_object_get_string_len(v) > 256 ||
            strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v) ||
            !pc_text_is_clean(json_object_get_string(v), 0))
            return 0;
    }
    return 1;
}

void api_tokens_create(struct cp_call *c, struct cp_resp *r)
{
    static const char *const fields[] = { "hostname", "principals", "labels", "ttl", NULL };
    struct pc_jerr e = { 0 };
    struct cp_who who = { "admin", c->source };
    json_object *labels = NULL, *princ = NULL, *o;
    const char *hostname = NULL;
    int64_t ttl = 3600, expires_at = 0;
    char token[65];
    int rc;

    if (cp_body_check(c, r, fields))
        return;
    if (pc_json_get_str(c->body, "hostname", 1, 253, &hostname, &e) != PC_OK ||
        pc_json_get_str_array(c->body, "principals", 0, CP_HOST_MAX_PRINCIPALS - 1, 255, &princ,
                              &e) != PC_OK ||
        pc_json_get_int(c->body, "ttl", 0, 60, 2592000, &ttl, &e) != PC_OK) {
        cp_resp_jerr(r, &e);
        return;
    }
    if (!pc_valid_hostname(hostname)) {
        cp_resp_error(r, 400, "bad_field", "field 'hostname' must be a host name");
        return;
    }
    for (size_t i = 0; princ && i < json_object_array_length(princ); i++) {
        json_object *p = json_object_array_get_idx(princ, i);
        if (!pc_valid_principal(json_object_get_string(p), (size_t)json_object_get_string_len(p))) {
            cp_resp_error(r, 400, "bad_field",
                          "field 'principals' holds an invalid name or address");
            return;
        }
    }
    if (json_object_object_get_ex(c->body, "labels", &labels) &&
        (!json_object_is_type(labels, json_type_object) || !api_labels_valid(labels))) {
        cp_resp_error(r, 400, "bad_field",
                      "field 'labels' must be an object of at most 32 string values");
        return;
    }
    rc = cp_enroll_token_create(&who, hostname, princ, labels, ttl, token, &expires_at);
    if (rc == PC_ERR_EXISTS) {
        cp_resp_error(r, 409, "conflict",
                      "a host with this name is enrolled: delete it first "
                      "(portcullis host delete)");
        return;
    }
    if (rc != PC_OK) {
        cp_resp_from_err(r, rc, "token");
        return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "token", json_object_new_string(token));
    json_object_object_add(o, "expires_at", json_object_new_int64(expires_at));
    json_object_object_add(o, "hostname", json_object_new_string(hostname));
    pc_wipe(token, sizeof token);
    cp_resp_json(r, 201, o);
}

void api_hosts_list(struct cp_call *c, struct cp_resp *r)
{
    json_object *arr = NULL, *o;
    int rc = cp_hosts_list(&arr);
    (void)c;
    if (rc != PC_OK) {
        cp_resp_from_err(r, rc, "hosts");
        return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "hosts", arr);
    cp_resp_json(r, 200, o);
}

void api_audit(struct cp_call *c, struct cp_resp *r)
{
    const char *user = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "user");
    const char *since_s = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "since");
    const char *limit_s = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "limit");
    const char *request = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "request");
    uint64_t since = 0, limit = 1000;
    json_object *arr = NULL, *o;
    cp_conn *db = cp_db();

    if ((since_s && pc_parse_uint(since_s, 0, UINT64_C(1) << 40, &since) != PC_OK) ||
        (limit_s && pc_parse_uint(limit_s, 1, 100000, &limit) != PC_OK)) {
        cp_resp_error(r, 400, "bad_field", "since must be epoch seconds, limit 1-100000");
        return;
    }
    /* ?request=ID: the chain of one access request (request.create … grant.expire) */
    if (request && !pc_valid_hex(request, 32, 32)) {
        cp_resp_error(r, 400, "bad_field", "request must be a request id (32 hex digits)");
        return;
    }
    if (!db || (request ? cp_audit_query_txid(db, request, (int64_t)limit, &arr)
                        : cp_audit_query(db, user && *user ? user : NULL, (int64_t)since,
                                         (int64_t)limit, &arr)) != PC_OK) {
        cp_resp_error(r, 500, "internal", "cannot read the audit log");
        return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "audit", arr);
    cp_resp_json(r, 200, o);
}
