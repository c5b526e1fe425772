/* SPDX-License-Identifier: BSD-2-Clause */
/* The approval web app's approval endpoints: the user's pending pushes, and approve or deny
 * one. An approval's challenge is bound to (user, push): a session cookie alone reads the list
 * but never approves. The passkey ceremony itself is in api_web_session.c (api_web_int.h). */
#include "config.h"
#include "api.h"
#include "api_web.h"
#include "api_web_int.h"
#include "cp_push.h"
#include "cp_store.h"
#include "cp_webauthn.h"
#include "pc_err.h"
#include "pc_time.h"
#include "pc_valid.h"
#include <stdio.h>
#include <string.h>

#define APPROVE_CHAL_TTL 60 /* an approval's challenge: about a push's lifetime */

/* ---- pushes ---------------------------------------------------------------------------- */

void api_web_pushes(struct cp_call *c, struct cp_resp *r, struct cp_web_ctx *w)
{
    json_object *arr = NULL, *o;
    int rc = cp_push_list_pending(w->user, &arr);

    (void)c;
    if (rc != PC_OK) {
        cp_resp_from_err(r, rc, "pushes");
        return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "pushes", arr);
    json_object_object_add(o, "now", json_object_new_int64(pc_now()));
    cp_resp_json(r, 200, o);
}

/* 1 when push_id is a pending push of user. */
static int push_pending_for(const char *push_id, const char *user)
{
    cp_conn *db = cp_db();
    cp_stmt *st;
    int found = 0;

    if (!db || !pc_valid_hex(push_id, CP_PUSH_ID_LEN, CP_PUSH_ID_LEN))
        return 0;
    st = cp_prepare(db, "SELECT 1 FROM pushes WHERE id = ? AND user_name = ?"
                        " AND state = 'pending' AND expires_at > ?");
    if (!st)
        return 0;
    cp_bind_text(st, 1, push_id);
    cp_bind_text(st, 2, user);
    cp_bind_int64(st, 3, pc_now());
    found = cp_step(st) == CP_ROW;
    cp_finalize(st);
    return found;
}

void api_web_push_begin(struct cp_call *c, struct cp_resp *r, struct cp_web_ctx *w)
{
    static const char *const fields[] = { NULL };
    char chal[CP_WA_CHAL_B64 + 1];
    json_object *o;
    int rc;

    if (cp_body_check(c, r, fields))
        return;
    if (!push_pending_for(c->seg[1], w->user)) {
        cp_resp_error(r, 404, "not_found", "no such pending push");
        return;
    }
    if ((rc = api_web_challenge_new("approve", w->user, c->seg[1], APPROVE_CHAL_TTL, chal)) !=
        PC_OK) {
        cp_resp_from_err(r, rc, "challenge");
        return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "challenge", json_object_new_string(chal));
    json_object_object_add(o, "rp_id", json_object_new_string(cp_rt.settings->web_rp_id));
    json_object_object_add(o, "allow", api_web_user_cred_ids(w->user));
    cp_resp_json(r, 200, o);
}

void api_web_push_approve(struct cp_call *c, struct cp_resp *r, struct cp_web_ctx *w)
{
    static const char *const fields[] = { "match",       "credential_id",
                                          "client_data", "authenticator_data",
                                          "signature",   NULL };
    struct pc_jerr e = { 0 };
    struct cp_who who = { NULL, c->source };
    struct api_web_passkey k;
    const char *match;
    char chal[CP_WA_CHAL_B64 + 1], actor[80], state[16] = "";
    uint32_t count = 0;
    cp_conn *db = cp_db();
    int rc;

    if (cp_body_check(c, r, fields))
        return;
    if (pc_json_get_str(c->body, "match", 1, 8, &match, &e) != PC_OK) {
        cp_resp_jerr(r, &e);
        return;
    }
    if (!pc_valid_hex(c->seg[1], CP_PUSH_ID_LEN, CP_PUSH_ID_LEN)) {
        cp_resp_error(r, 404, "not_found", "no such pending push");
        return;
    }
    /* The session's user's own passkey, over a challenge issued for this push to this user. */
    if (api_web_verify_assertion(c, r, w->user, &k, chal, &count) != PC_OK) {
        api_web_audit_refusal("push.approve", w->user, "passkey_refused", c->source);
        return;
    }
    if (!db || cp_tx_begin(db) != PC_OK) {
        cp_resp_from_err(r, PC_ERR_STORE, "push");
        return;
    }
    rc = api_web_challenge_take(db, chal, "approve", w->user, c->seg[1], NULL);
    if (rc == PC_OK)
        rc = api_web_passkey_touch(db, k.id, count);
    if (rc == PC_OK)
        rc = cp_tx_commit(db);
    if (cp_autocommit(db) == 0)
        cp_tx_rollback(db);
    if (rc != PC_OK) {
        api_web_audit_refusal("push.approve", w->user, "challenge_not_for_this_push", c->source);
        cp_resp_error(r, 401, "passkey_refused",
                      "the passkey's answer was not for this push, was used already or expired");
        return;
    }
    snprintf(actor, sizeof actor, "passkey:%s", w->user);
    who.actor = actor;
    rc = cp_push_decide_passkey(&who, w->user, c->seg[1], 1, match, state);
    cp_resp_push_decided(r, rc, c->seg[1], state);
}

void api_web_push_deny(struct cp_call *c, struct cp_resp *r, struct cp_web_ctx *w)
{
    static const char *const fields[] = { NULL };
    struct cp_who who = { NULL, c->source };
    char actor[80], state[16] = "";
    int rc;

    if (cp_body_check(c, r, fields))
        return;
    if (!pc_valid_hex(c->seg[1], CP_PUSH_ID_LEN, CP_PUSH_ID_LEN)) {
        cp_resp_error(r, 404, "not_found", "no such pending push");
        return;
    }
    snprintf(actor, sizeof actor, "web:%s", w->user);
    who.actor = actor;
    rc = cp_push_decide_passkey(&who, w->user, c->seg[1], 0, NULL, state);
    cp_resp_push_decided(r, rc, c->seg[1], state);
}
