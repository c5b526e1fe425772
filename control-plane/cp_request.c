/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "cp_request.h"
#include "pc_err.h"
#include <stdio.h>
#include <stdlib.h>

enum MHD_Result cp_req_body_piece(struct cp_req *req, const char *data, size_t *size)
{
    size_t n = *size;
    /* Keep reading an oversize body (to answer 413) but never store past the bound. */
    if (!req->too_large) {
        int rc = pc_sshbuf_put_raw(&req->body, data, n);
        if (rc == PC_ERR_TOOBIG)
            req->too_large = 1;
        else if (rc != PC_OK)
            return MHD_NO;
    }
    *size = 0;
    return MHD_YES;
}

void cp_resp_json(struct cp_resp *r, unsigned status, json_object *body)
{
    free(r->raw);
    r->raw = NULL;
    json_object_put(r->body);
    r->status = status;
    r->body = body;
}

void cp_resp_raw(struct cp_resp *r, unsigned status, const char *type, unsigned char *data,
                 size_t len)
{
    json_object_put(r->body);
    r->body = NULL;
    free(r->raw);
    r->status = status;
    r->raw = data;
    r->raw_len = len;
    r->raw_type = type;
}

void cp_resp_error(struct cp_resp *r, unsigned status, const char *code, const char *message)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "error", json_object_new_string(code));
    json_object_object_add(o, "message", json_object_new_string(message));
    cp_resp_json(r, status, o);
}

void cp_resp_from_err(struct cp_resp *r, int err, const char *what)
{
    char msg[256];

    switch (err) {
    case PC_ERR_NOTFOUND:
        snprintf(msg, sizeof msg, "%s not found", what);
        cp_resp_error(r, 404, "not_found", msg);
        break;
    case PC_ERR_EXISTS:
        snprintf(msg, sizeof msg, "%s already exists", what);
        cp_resp_error(r, 409, "conflict", msg);
        break;
    case PC_ERR_STATE:
        snprintf(msg, sizeof msg, "%s is no longer open", what);
        cp_resp_error(r, 409, "conflict", msg);
        break;
    case PC_ERR_INVAL:
        snprintf(msg, sizeof msg, "invalid %s", what);
        cp_resp_error(r, 400, "bad_field", msg);
        break;
    case PC_ERR_AUTH:
        snprintf(msg, sizeof msg, "%s refused", what);
        cp_resp_error(r, 401, "unauthorized", msg);
        break;
    default: cp_resp_error(r, 500, "internal", "internal error; nothing was changed"); break;
    }
}

void cp_resp_jerr(struct cp_resp *r, const struct pc_jerr *e)
{
    cp_resp_error(r, 400, e->code ? e->code : "bad_json", e->message);
}

int cp_body_check(struct cp_call *c, struct cp_resp *r, const char *const *allowed)
{
    struct pc_jerr e = { 0 };
    if (pc_json_only_fields(c->body, allowed, &e) != PC_OK) {
        cp_resp_jerr(r, &e);
        return 1;
    }
    return 0;
}
