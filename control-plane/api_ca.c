/* SPDX-License-Identifier: BSD-2-Clause */
/* Endpoints of the certificate authority (public keys, KRL, certificates) and of policy. */
#include "config.h"
#include "api.h"
#include "cp_ca.h"
#include "cp_policy.h"
#include "pc_config.h"
#include "pc_err.h"
#include <stdio.h>
#include <string.h>

/* public_key: the current key (what signs); public_keys: every trusted key, current first
 * (during a rotation's overlap also the previous one). */
static void pub_reply(struct cp_resp *r, enum cp_ca_kind kind)
{
    const char *line = kind == CP_CA_USER ? cp_ca_user_line() : cp_ca_host_line();
    json_object *o;
    if (!line) {
        cp_resp_error(r, 500, "internal", "the CA is not loaded");
        return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "public_key", json_object_new_string(line));
    json_object_object_add(o, "public_keys", cp_ca_lines_json(kind));
    cp_resp_json(r, 200, o);
}

void api_ca_user_pub(struct cp_call *c, struct cp_resp *r)
{
    (void)c;
    pub_reply(r, CP_CA_USER);
}

void api_ca_host_pub(struct cp_call *c, struct cp_resp *r)
{
    (void)c;
    pub_reply(r, CP_CA_HOST);
}

/* ---- rotation (admin) ---------------------------------------------------------------- */

/* seg[1] is "user" or "host"; anything else is 404. */
static int kind_of(struct cp_call *c, struct cp_resp *r, enum cp_ca_kind *kind)
{
    if (strcmp(c->seg[1], "user") == 0)
        *kind = CP_CA_USER;
    else if (strcmp(c->seg[1], "host") == 0)
        *kind = CP_CA_HOST;
    else {
        cp_resp_error(r, 404, "not_found", "no such CA: use user or host");
        return 1;
    }
    return 0;
}

void api_ca_status(struct cp_call *c, struct cp_resp *r)
{
    json_object *o = json_object_new_object(), *u = NULL, *h = NULL;
    (void)c;
    cp_ca_status(CP_CA_USER, &u);
    cp_ca_status(CP_CA_HOST, &h);
    json_object_object_add(o, "user", u);
    json_object_object_add(o, "host", h);
    cp_resp_json(r, 200, o);
}

void api_ca_rotate(struct cp_call *c, struct cp_resp *r)
{
    static const char *const fields[] = { "overlap", NULL };
    struct pc_jerr e = { 0 };
    struct cp_who who = { "admin", c->source };
    enum cp_ca_kind kind;
    int64_t overlap = CP_CA_OVERLAP_DEFAULT;
    json_object *out = NULL;
    int rc;

    if (kind_of(c, r, &kind) || cp_body_check(c, r, fields))
        return;
    if (c->body &&
        pc_json_get_int(c->body, "overlap", 0, 0, CP_CA_OVERLAP_MAX, &overlap, &e) != PC_OK) {
        cp_resp_jerr(r, &e);
        return;
    }
    rc = cp_ca_rotate(&who, kind, overlap, &out);
    if (rc == PC_ERR_EXISTS) {
        cp_resp_error(r, 409, "rotation_in_progress",
                      "this CA is already rotating: run 'portcullis ca finish' first");
        return;
    }
    if (rc != PC_OK) {
        cp_resp_from_err(r, rc, "CA rotation");
        return;
    }
    cp_resp_json(r, 200, out);
}

void api_ca_finish(struct cp_call *c, struct cp_resp *r)
{
    static const char *const fields[] = { "now", NULL };
    struct pc_jerr e = { 0 };
    struct cp_who who = { "admin", c->source };
    enum cp_ca_kind kind;
    json_object *out = NULL;
    int now = 0, rc;

    if (kind_of(c, r, &kind) || cp_body_check(c, r, fields))
        return;
    if (c->body && pc_json_get_bool(c->body, "now", 0, &now, &e) != PC_OK) {
        cp_resp_jerr(r, &e);
        return;
    }
    rc = cp_ca_finish(&who, kind, now, &out);
    if (rc == PC_ERR_NOTFOUND) {
        cp_resp_error(r, 409, "no_rotation", "this CA is not rotating: nothing to finish");
        return;
    }
    if (rc == PC_ERR_STATE) {
        cp_resp_error(r, 409, "overlap_running",
                      "the overlap has not ended yet: finish with now=true (--now) to remove "
                      "the old key at once");
        return;
    }
    if (rc != PC_OK) {
        cp_resp_from_err(r, rc, "CA rotation");
        return;
    }
    cp_resp_json(r, 200, out);
}

static void krl_reply(struct cp_resp *r, int host_only)
{
    unsigned char *krl = NULL;
    size_t len = 0;
    uint64_t version = 0;

    if ((host_only ? cp_ca_krl_host(&krl, &len, &version) : cp_ca_krl(&krl, &len, &version)) !=
        PC_OK) {
        cp_resp_error(r, 500, "internal", "cannot build the KRL");
        return;
    }
    cp_resp_raw(r, 200, "application/octet-stream", krl, len);
    snprintf(r->header_name, sizeof r->header_name, "X-KRL-Version");
    snprintf(r->header_value, sizeof r->header_value, "%llu", (unsigned long long)version);
}

void api_krl(struct cp_call *c, struct cp_resp *r)
{
    (void)c;
    krl_reply(r, 0);
}

void api_krl_host(struct cp_call *c, struct cp_resp *r)
{
    (void)c;
    krl_reply(r, 1);
}

void api_certs_list(struct cp_call *c, struct cp_resp *r)
{
    const char *user = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "user");
    json_object *arr = NULL, *o;

    if (user && *user && !cp_user_name_valid(user)) {
        cp_resp_error(r, 400, "bad_field", "user must be a user name");
        return;
    }
    if (cp_ca_list(user && *user ? user : NULL, &arr) != PC_OK) {
        cp_resp_error(r, 500, "internal", "cannot read the certificates");
        return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "certs", arr);
    cp_resp_json(r, 200, o);
}

static int key_id_printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return 0;
    return 1;
}

void api_certs_revoke(struct cp_call *c, struct cp_resp *r)
{
    static const char *const fields[] = { "serial", "key_id", NULL };
    struct pc_jerr e = { 0 };
    struct cp_who who = { "admin", c->source };
    const char *key_id = NULL;
    int64_t serial = 0;
    json_object *revoked = NULL, *o;
    int rc;

    if (cp_body_check(c, r, fields))
        return;
    if (pc_json_get_int(c->body, "serial", 0, 1, 999999999999999LL, &serial, &e) != PC_OK ||
        pc_json_get_str(c->body, "key_id", 0, 255, &key_id, &e) != PC_OK) {
        cp_resp_jerr(r, &e);
        return;
    }
    if ((serial > 0) == (key_id != NULL)) {
        cp_resp_error(r, 400, "missing_field", "send exactly one of 'serial' and 'key_id'");
        return;
    }
    if (key_id && (!*key_id || !key_id_printable(key_id))) {
        cp_resp_error(r, 400, "bad_field", "field 'key_id' must be printable ASCII");
        return;
    }
    if ((rc = cp_ca_revoke(&who, serial, key_id, &revoked)) != PC_OK) {
        cp_resp_from_err(r, rc, "certificate");
        return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "revoked", revoked);
    cp_resp_json(r, 200, o);
}

void api_policies_list(struct cp_call *c, struct cp_resp *r)
{
    json_object *arr = NULL, *o;
    (void)c;
    if (cp_policy_list(&arr) != PC_OK) {
        cp_resp_error(r, 500, "internal", "cannot read the policies");
        return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "policies", arr);
    cp_resp_json(r, 200, o);
}

void api_policies_add(struct cp_call *c, struct cp_resp *r)
{
    struct pc_jerr e = { 0 };
    struct cp_who who = { "admin", c->source };
    json_object *canon = NULL, *out = NULL;
    int rc;

    if (cp_policy_validate(c->body, &canon, &e) != PC_OK) {
        cp_resp_jerr(r, &e);
        return;
    }
    rc = cp_policy_add(&who, canon, &out);
    json_object_put(canon);
    if (rc == PC_ERR_EXISTS) {
        cp_resp_error(r, 409, "conflict", "a policy with this name already exists");
        return;
    }
    if (rc != PC_OK) {
        cp_resp_from_err(r, rc, "policy");
        return;
    }
    cp_resp_json(r, 201, out);
}

void api_policy_delete(struct cp_call *c, struct cp_resp *r)
{
    struct cp_who who = { "admin", c->source };
    uint64_t id = 0;
    json_object *o;
    int rc;

    if (pc_parse_uint(c->seg[1], 1, UINT64_C(1) << 62, &id) != PC_OK) {
        cp_resp_error(r, 404, "not_found", "policy not found");
        return;
    }
    if ((rc = cp_policy_delete(&who, (int64_t)id)) != PC_OK) {
        cp_resp_from_err(r, rc, "policy");
        return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "deleted", json_object_new_int64((int64_t)id));
    cp_resp_json(r, 200, o);
}
