/* SPDX-License-Identifier: BSD-2-Clause */
/* Endpoints for users' SSH keys (admin), `portcullis login` (no token: the proof is the key
 * and the second factor) and sessions. */
#include "config.h"
#include "api.h"
#include "api_held.h"
#include "cp_cert_login.h"
#include "cp_users.h"
#include "cp_userkeys.h"
#include "cp_waiters.h"
#include "pc_config.h"
#include "pc_err.h"
#include "pc_rand.h"
#include "pc_mem.h"
#include "pc_time.h"
#include "pc_valid.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void api_user_keys_list(struct cp_call *c, struct cp_resp *r)
{
    json_object *arr = NULL, *o;
    int rc = cp_userkey_list(c->seg[1], &arr);

    if (rc != PC_OK) {
        cp_resp_from_err(r, rc, "user");
        return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "keys", arr);
    cp_resp_json(r, 200, o);
}

void api_user_keys_add(struct cp_call *c, struct cp_resp *r)
{
    static const char *const fields[] = { "public_key", NULL };
    struct pc_jerr e = { 0 };
    struct cp_who who = { "admin", c->source };
    const char *line = NULL, *type = NULL;
    char fp[PC_SSHKEY_FP_SIZE];
    json_object *o;
    int rc;

    if (cp_body_check(c, r, fields))
        return;
    if (pc_json_get_str(c->body, "public_key", 1, PC_SSHKEY_LINE_MAX, &line, &e) != PC_OK) {
        cp_resp_jerr(r, &e);
        return;
    }
    rc = cp_userkey_add(&who, c->seg[1], line, fp, &type);
    if (rc == PC_ERR_PARSE) {
        cp_resp_error(r, 400, "bad_field",
                      "field 'public_key' must be an OpenSSH public key line "
                      "(ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa >= 2048 bits)");
        return;
    }
    if (rc == PC_ERR_EXISTS) {
        cp_resp_error(r, 409, "conflict", "the user already has this key");
        return;
    }
    if (rc != PC_OK) {
        cp_resp_from_err(r, rc, "user");
        return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "fingerprint", json_object_new_string(fp));
    json_object_object_add(o, "type", json_object_new_string(type));
    cp_resp_json(r, 201, o);
}

/* The fingerprint is the rest of the (unescaped) path: base64 may hold '/'. */
void api_user_keys_delete(struct cp_call *c, struct cp_resp *r)
{
    struct cp_who who = { "admin", c->source };
    char prefix[128];
    const char *fp;
    json_object *o;
    int rc;

    snprintf(prefix, sizeof prefix, "/v1/users/%s/keys/", c->seg[1]);
    if (!c->url || strncmp(c->url, prefix, strlen(prefix)) != 0 ||
        strlen(c->url + strlen(prefix)) >= PC_SSHKEY_FP_SIZE) {
        cp_resp_error(r, 404, "not_found", "key not found");
        return;
    }
    fp = c->url + strlen(prefix);
    if ((rc = cp_userkey_delete(&who, c->seg[1], fp)) != PC_OK) {
        cp_resp_from_err(r, rc, "key");
        return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "deleted", json_object_new_string(fp));
    cp_resp_json(r, 200, o);
}

/* ---- login/start and login/finish, answered from the store's writer ------------------------
 * As auth/begin and auth/totp (api_auth.c): the worker parses the request, does the reads and
 * the checks that need no lock (the key's parse, the signature), queues the write with a
 * continuation and goes back to its other connections; the writer, once the commit is kept,
 * builds the reply and resumes the connection. A certificate crossed eight threads before
 * (worker, pool, writer, pool, worker, twice); it now crosses four. */

/* What a held login/start or login/finish keeps until the writer answers it. */
struct login_call {
    struct api_held h;
    struct cp_cert_login_start_res start;
    struct cp_cert_login_finish_res fin;
};

static struct login_call *login_call_hold(struct cp_call *c)
{
    struct login_call *l = calloc(1, sizeof *l);

    if (l && api_held_init(&l->h, c) != 0) {
        free(l);
        l = NULL;
    }
    return l;
}

static void start_answer(struct cp_resp *r, int rc, struct cp_cert_login_start_res *res)
{
    json_object *o, *factors;

    if (rc == PC_ERR_AUTH) {
        cp_resp_error(r, 401, "unauthorized",
                      "unknown or disabled user, or a key that is not "
                      "registered for this user");
        return;
    }
    if (rc != PC_OK) {
        cp_resp_from_err(r, rc, "login");
        return;
    }
    o = json_object_new_object();
    factors = json_object_new_array();
    json_object_array_add(factors, json_object_new_string("totp"));
    if (res->push)
        json_object_array_add(factors, json_object_new_string("push"));
    json_object_object_add(o, "login_id", json_object_new_string(res->login_id));
    json_object_object_add(o, "challenge", json_object_new_string(res->challenge));
    json_object_object_add(o, "namespace", json_object_new_string("portcullis-login"));
    json_object_object_add(o, "factors", factors);
    json_object_object_add(o, "expires_at", json_object_new_int64(res->expires_at));
    cp_resp_json(r, 200, o);
}

/* On the writer after the start's commit, or on the worker when it was not queued. */
static void start_then(void *ctx, int rc)
{
    struct login_call *l = ctx;
    struct cp_resp *r = api_held_resp();

    if (r)
        start_answer(r, rc, &l->start);
    free(l->start.challenge);
    api_held_answer(&l->h, r);
    free(l);
}

void api_login_start(struct cp_call *c, struct cp_resp *r)
{
    static const char *const fields[] = { "user", "public_key", "ttl", NULL };
    struct pc_jerr e = { 0 };
    const char *user = NULL, *line = NULL;
    struct pc_sshkey *key = NULL;
    struct cp_cert_login_start_res res;
    struct login_call *l;
    int64_t ttl = 0;
    int rc;

    if (cp_body_check(c, r, fields))
        return;
    if (pc_json_get_str(c->body, "user", 1, 64, &user, &e) != PC_OK ||
        pc_json_get_str(c->body, "public_key", 1, PC_SSHKEY_LINE_MAX, &line, &e) != PC_OK ||
        pc_json_get_int(c->body, "ttl", 0, 60, 604800, &ttl, &e) != PC_OK) {
        cp_resp_jerr(r, &e);
        return;
    }
    /* Checked before anything is stored: no such name can be a user, and the refusal's audit
     * row would carry whatever bytes were sent. */
    if (!cp_user_name_valid(user)) {
        cp_resp_error(r, 400, "bad_field", "field 'user' must be a user name");
        return;
    }
    if (cp_userkey_parse(line, &key, NULL) != PC_OK) {
        cp_resp_error(r, 400, "bad_field", "field 'public_key' must be an OpenSSH public key line");
        return;
    }
    if ((l = login_call_hold(c))) { /* user lives in the body l now holds */
        r->suspended = 1;
        rc = cp_cert_login_start_then(l->h.source, user, key, ttl, &l->start, start_then, l);
        pc_sshkey_free(key);
        if (rc != PC_OK) /* not queued: answered now, through the hold */
            start_then(l, rc);
        return;
    }
    rc = cp_cert_login_start(c->source, user, key, ttl, &res); /* stopping: on this thread */
    pc_sshkey_free(key);
    start_answer(r, rc, &res);
    free(res.challenge);
}

/* The certificate and the session (the 200 of finish, and the approved poll). */
static void add_cert(json_object *o, const struct cp_cert_login_finish_res *res)
{
    json_object_object_add(o, "certificate", json_object_new_string(res->cert.line));
    json_object_object_add(o, "serial", json_object_new_int64((int64_t)res->cert.serial));
    json_object_object_add(o, "valid_before", json_object_new_int64(res->cert.valid_before));
    json_object_object_add(o, "session_token", json_object_new_string(res->session));
    json_object_object_add(o, "session_expires_at", json_object_new_int64(res->session_expires_at));
}

static void finish_reply(struct cp_resp *r, struct cp_cert_login_finish_res *res)
{
    json_object *o;

    if (res->status >= 400) {
        cp_resp_error(r, res->status, res->error, res->message);
        if (res->reason && (res->status == 401 || res->status == 403))
            json_object_object_add(r->body, "reason", json_object_new_string(res->reason));
        return;
    }
    o = json_object_new_object();
    if (res->status == 202) {
        json_object_object_add(o, "push_id", json_object_new_string(res->push.id));
        json_object_object_add(o, "match", json_object_new_string(res->push.match));
        json_object_object_add(o, "expires_at", json_object_new_int64(res->push.expires_at));
    } else {
        add_cert(o, res);
    }
    cp_resp_json(r, res->status, o);
}

static void fin_answer(struct cp_resp *r, int rc, struct cp_cert_login_finish_res *res)
{
    if (rc != PC_OK)
        cp_resp_from_err(r, rc, "login");
    else
        finish_reply(r, res);
    cp_cert_login_finish_res_wipe(res);
}

/* On the writer after the finish's commit, or on the worker when it was not queued. */
static void finish_then(void *ctx, int rc)
{
    struct login_call *l = ctx;
    struct cp_resp *r = api_held_resp();

    if (r)
        fin_answer(r, rc, &l->fin);
    else
        cp_cert_login_finish_res_wipe(&l->fin);
    api_held_answer(&l->h, r);
    pc_wipe(&l->fin, sizeof l->fin);
    free(l);
}

void api_login_finish(struct cp_call *c, struct cp_resp *r)
{
    static const char *const fields[] = { "login_id", "signature", "code", "push", NULL };
    struct pc_jerr e = { 0 };
    const char *id = NULL, *sig = NULL, *code = NULL;
    struct cp_cert_login_finish_res res;
    struct login_call *l;
    int push = 0, rc;

    if (cp_body_check(c, r, fields))
        return;
    if (pc_json_get_str(c->body, "login_id", 1, 64, &id, &e) != PC_OK ||
        pc_json_get_text(c->body, "signature", 1, 65536, &sig, &e) != PC_OK ||
        pc_json_get_str(c->body, "code", 0, 16, &code, &e) != PC_OK ||
        pc_json_get_bool(c->body, "push", 0, &push, &e) != PC_OK) {
        cp_resp_jerr(r, &e);
        return;
    }
    if (push && code) {
        cp_resp_error(r, 400, "bad_field", "send either 'code' or \"push\":true, not both");
        return;
    }
    if (!code && !push) {
        cp_resp_error(r, 400, "missing_field", "field 'code' is required (or \"push\":true)");
        return;
    }
    if (!pc_valid_hex(id, 32, 32)) {
        cp_resp_error(r, 404, "not_found", "no such login");
        return;
    }
    if ((l = login_call_hold(c))) { /* id, sig and code live in the body l now holds */
        r->suspended = 1;
        if ((rc = cp_cert_login_finish_then(l->h.source, id, sig, code, push, &l->fin, finish_then,
                                            l)) != PC_OK)
            finish_then(l, rc); /* not queued: answered now, through the hold */
        return;
    }
    rc = cp_cert_login_finish(c->source, id, sig, code, push, &res); /* stopping: here */
    fin_answer(r, rc, &res);
}

/* GET /v1/login/ID?wait=N — a pending push login parks the connection (no thread held) on its
 * push's waiters until the push is decided or expires, or wait elapses. */
void api_login_poll(struct cp_call *c, struct cp_resp *r)
{
    const char *id = c->seg[1];
    struct cp_cert_login_poll_res res, peek;
    uint64_t wait = 0;
    json_object *o;
    int rc;

    if (api_wait_param(c, r, &wait) != PC_OK)
        return;
    if (!pc_valid_hex(id, 32, 32) ||
        (rc = cp_cert_login_poll(c->source, id, 1, &res)) == PC_ERR_NOTFOUND) {
        cp_resp_error(r, 404, "not_found", "no such login");
        return;
    }
    if (rc != PC_OK) {
        cp_resp_from_err(r, rc, "login");
        return;
    }
    if (c->req->wait_deadline_ms == 0)
        c->req->wait_deadline_ms = pc_now_ms() + (int64_t)wait * 1000;
    if (strcmp(res.state, "pending") == 0 && res.push_id[0] &&
        pc_now_ms() < c->req->wait_deadline_ms && !cp_waiters_stopping()) {
        struct cp_wait *w = &c->req->wait;
        w->conn = c->conn;
        snprintf(w->push_id, sizeof w->push_id, "%s", res.push_id);
        w->deadline_ms = c->req->wait_deadline_ms;
        cp_waiters_suspend(w);
        /* A decision between the read and the listing would be missed: look again, without
         * collecting (the resumed request collects). */
        if (cp_cert_login_poll(c->source, id, 0, &peek) == PC_OK &&
            strcmp(peek.state, "pending") != 0)
            cp_waiters_notify(res.push_id);
        r->suspended = 1;
        return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "login_id", json_object_new_string(id));
    json_object_object_add(o, "state", json_object_new_string(res.state));
    json_object_object_add(o, "expires_at", json_object_new_int64(res.expires_at));
    if (res.fin.status == 200)
        add_cert(o, &res.fin);
    else if (res.fin.reason)
        json_object_object_add(o, "reason", json_object_new_string(res.fin.reason));
    cp_resp_json(r, 200, o);
    cp_cert_login_finish_res_wipe(&res.fin);
}

void api_session(struct cp_call *c, struct cp_resp *r)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "user", json_object_new_string(c->id.user));
    json_object_object_add(o, "expires_at", json_object_new_int64(c->id.expires_at));
    cp_resp_json(r, 200, o);
}
