/* SPDX-License-Identifier: BSD-2-Clause */
/* Admin endpoints for users and their TOTP enrollment. */
#include "config.h"
#include "api.h"
#include "cp_userkeys.h"
#include "cp_users.h"
#include "pc_err.h"
#include "pc_mem.h"
#include <stdio.h>

static const struct cp_who *admin(struct cp_call *c, struct cp_who *who)
{
    who->actor = "admin";
    who->source = c->source;
    return who;
}

void api_users_list(struct cp_call *c, struct cp_resp *r)
{
    json_object *arr = NULL, *o;
    int rc = cp_user_list(&arr);
    (void)c;
    if (rc != PC_OK) {
        cp_resp_from_err(r, rc, "users");
        return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "users", arr);
    cp_resp_json(r, 200, o);
}

void api_users_add(struct cp_call *c, struct cp_resp *r)
{
    static const char *const fields[] = { "name", "groups", "push", "ssh_keys", NULL };
    struct pc_jerr e = { 0 };
    struct cp_who who;
    const char *name = NULL;
    json_object *groups = NULL, *keys = NULL, *out = NULL;
    int push = 1, rc;

    if (cp_body_check(c, r, fields))
        return;
    if (pc_json_get_str(c->body, "name", 1, 32, &name, &e) != PC_OK ||
        pc_json_get_str_array(c->body, "groups", 0, 64, 64, &groups, &e) != PC_OK ||
        pc_json_get_bool(c->body, "push", 0, &push, &e) != PC_OK ||
        pc_json_get_str_array(c->body, "ssh_keys", 0, 32, PC_SSHKEY_LINE_MAX, &keys, &e) != PC_OK) {
        cp_resp_jerr(r, &e);
        return;
    }
    for (size_t i = 0; keys && i < json_object_array_length(keys); i++) {
        struct pc_sshkey *k = NULL;
        rc = cp_userkey_parse(json_object_get_string(json_object_array_get_idx(keys, i)), &k, NULL);
        pc_sshkey_free(k);
        if (rc != PC_OK) {
            cp_resp_error(r, 400, "bad_field",
                          "field 'ssh_keys' holds a line that is not an "
                          "OpenSSH public key");
            return;
        }
    }
    if (!cp_user_name_valid(name)) {
        cp_resp_error(r, 400, "bad_field",
                      "field 'name' must match [a-z_][a-z0-9_.-]* and be at most 32 characters");
        return;
    }
    rc = cp_user_add(admin(c, &who), name, groups, push, keys, &out);
    if (rc == PC_ERR_INVAL) {
        cp_resp_error(r, 400, "bad_field", "field 'groups' has an invalid group name");
        return;
    }
    if (rc != PC_OK) {
        cp_resp_from_err(r, rc, "user");
        return;
    }
    cp_resp_json(r, 201, out);
}

void api_user_get(struct cp_call *c, struct cp_resp *r)
{
    json_object *out = NULL;
    int rc = cp_user_get(c->seg[1], &out);
    if (rc != PC_OK) {
        cp_resp_from_err(r, rc, "user");
        return;
    }
    cp_resp_json(r, 200, out);
}

void api_user_patch(struct cp_call *c, struct cp_resp *r)
{
    static const char *const fields[] = { "enabled", "groups", "push", NULL };
    struct pc_jerr e = { 0 };
    struct cp_who who;
    json_object *groups = NULL, *out = NULL;
    int enabled = -1, push = -1, rc;

    if (cp_body_check(c, r, fields))
        return;
    if (pc_json_get_bool(c->body, "enabled", 0, &enabled, &e) != PC_OK ||
        pc_json_get_str_array(c->body, "groups", 0, 64, 64, &groups, &e) != PC_OK ||
        pc_json_get_bool(c->body, "push", 0, &push, &e) != PC_OK) {
        cp_resp_jerr(r, &e);
        return;
    }
    rc = cp_user_update(admin(c, &who), c->seg[1], enabled, groups, push, &out);
    if (rc == PC_ERR_INVAL) {
        cp_resp_error(r, 400, "bad_field", "field 'groups' has an invalid group name");
        return;
    }
    if (rc != PC_OK) {
        cp_resp_from_err(r, rc, "user");
        return;
    }
    cp_resp_json(r, 200, out);
}

void api_user_delete(struct cp_call *c, struct cp_resp *r)
{
    struct cp_who who;
    json_object *o;
    int rc = cp_user_delete(admin(c, &who), c->seg[1]);
    if (rc != PC_OK) {
        cp_resp_from_err(r, rc, "user");
        return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "deleted", json_object_new_string(c->seg[1]));
    cp_resp_json(r, 200, o);
}

void api_user_totp(struct cp_call *c, struct cp_resp *r)
{
    static const char *const fields[] = { "force", NULL };
    struct pc_jerr e = { 0 };
    struct cp_who who;
    char *uri = NULL;
    json_object *o;
    int force = 0, rc;

    if (cp_body_check(c, r, fields))
        return;
    if (pc_json_get_bool(c->body, "force", 0, &force, &e) != PC_OK) {
        cp_resp_jerr(r, &e);
        return;
    }
    rc = cp_user_totp_enroll(admin(c, &who), c->seg[1], force, &uri);
    if (rc == PC_ERR_EXISTS) {
        cp_resp_error(r, 409, "conflict",
                      "the user already has TOTP; send force=true to replace it");
        return;
    }
    if (rc != PC_OK) {
        cp_resp_from_err(r, rc, "user");
        return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "uri", json_object_new_string(uri));
    pc_free_secret_str(uri);
    cp_resp_json(r, 201, o);
}
