/* SPDX-License-Identifier: BSD-2-Clause */
/* The approval web app's sessions: challenges, the passkey assertion check, sign-in and the
 * session cookie (invites, registration and the admin's passkey endpoints are in
 * api_web_passkeys.c, the approvals in api_web_approve.c). Tokens (invites, session cookies) and challenges are stored only as
 * SHA-256 hex; every challenge is server-issued, single use and short-lived, and an approval's
 * challenge is bound to (user, push): a session cookie alone reads the list but never approves. */
#include "config.h"
#include "api.h"
#include "api_web.h"
#include "api_web_int.h"
#include "cp_audit.h"
#include "cp_store.h"
#include "cp_users.h"
#include "cp_webauthn.h"
#include "pc_err.h"
#include "pc_log.h"
#include "pc_mem.h"
#include "pc_rand.h"
#include "pc_time.h"
#include "pc_valid.h"
#include "pc_config.h"
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OPEN_CHALLENGES 2000
#define SIG_MAX 256

/* A base64url field of the body, decoded; 400 on absence, garbage or more than max bytes. */
int api_web_get_b64(struct cp_call *c, struct cp_resp *r, const char *key, unsigned char *out,
                    size_t max, size_t *len)
{
    struct pc_jerr e = { 0 };
    const char *s;
    char msg[96];

    if (pc_json_get_str(c->body, key, 1, (max * 4 + 2) / 3 + 1, &s, &e) != PC_OK) {
        cp_resp_jerr(r, &e);
        return PC_ERR_INVAL;
    }
    if (cp_b64url_decode(s, out, max, len) != PC_OK || *len == 0) {
        snprintf(msg, sizeof msg, "%s: not base64url of at most %zu bytes", key, max);
        cp_resp_error(r, 400, "bad_field", msg);
        return PC_ERR_INVAL;
    }
    return PC_OK;
}

int api_web_hash_token(const char *tok, char out[PC_SHA256_HEX_LEN + 1])
{
    if (!tok || !pc_valid_hex(tok, PC_TOKEN_HEX_LEN, PC_TOKEN_HEX_LEN))
        return PC_ERR_INVAL;
    return pc_sha256_hex(tok, strlen(tok), out);
}

void api_web_audit(cp_conn *db, const char *actor, const char *action, const char *user,
                   const char *result, const char *reason, const char *source)
{
    struct cp_audit_row row = { .actor = actor,
                                .action = action,
                                .user = user,
                                .result = result,
                                .reason = reason,
                                .source = source };
    cp_audit_add(db, &row);
}

/* A refusal worth an audit row, in its own transaction. */
void api_web_audit_refusal(const char *action, const char *user, const char *reason,
                           const char *source)
{
    cp_conn *db = cp_db();
    if (!db || cp_tx_begin(db) != PC_OK)
        return;
    api_web_audit(db, "web", action, user, "deny", reason, source);
    if (cp_tx_commit(db) != PC_OK)
        cp_tx_rollback(db);
}

/* ---- challenges ------------------------------------------------------------------------ */

int api_web_challenge_new(const char *kind, const char *user, const char *bound, int64_t ttl,
                          char out[CP_WA_CHAL_B64 + 1])
{
    cp_conn *db = cp_db();
    cp_stmt *st;
    unsigned char raw[32];
    char hash[PC_SHA256_HEX_LEN + 1];
    int rc = PC_ERR_STORE;

    if (!db || pc_random_bytes(raw, sizeof raw) != PC_OK)
        return PC_ERR_STORE;
    cp_b64url_encode(raw, sizeof raw, out);
    pc_sha256_hex(out, strlen(out), hash);
    if (cp_tx_begin(db) != PC_OK)
        return PC_ERR_STORE;
    st = cp_prepare(db, "DELETE FROM web_challenges WHERE expires_at <= ?");
    if (!st)
        goto out;
    cp_bind_int64(st, 1, pc_now());
    if (cp_exec_stmt(st) != PC_OK)
        goto out;
    /* Anyone may start a sign-in: the open ceremonies are bounded, per kind and user, so a
     * flood of sign-ins never keeps a signed-in user from approving, nor one user another. */
    st = cp_prepare(db, "SELECT COUNT(*) FROM web_challenges WHERE kind = ?"
                        " AND COALESCE(user_name, '') = COALESCE(?, '')");
    if (!st)
        goto out;
    cp_bind_text(st, 1, kind);
    cp_bind_text(st, 2, user);
    if (cp_step(st) == CP_ROW && cp_col_int64(st, 0) >= MAX_OPEN_CHALLENGES) {
        cp_finalize(st);
        rc = PC_ERR_TOOBIG;
        goto out;
    }
    cp_finalize(st);
    st = cp_prepare(db, "INSERT INTO web_challenges(hash, kind, user_name, bound, expires_at)"
                        " VALUES (?, ?, ?, ?, ?)");
    if (!st)
        goto out;
    cp_bind_text(st, 1, hash);
    cp_bind_text(st, 2, kind);
    cp_bind_text(st, 3, user);
    cp_bind_text(st, 4, bound);
    cp_bind_int64(st, 5, pc_now() + ttl);
    if (cp_exec_stmt(st) != PC_OK)
        goto out;
    rc = cp_tx_commit(db);
out:
    if (cp_autocommit(db) == 0)
        cp_tx_rollback(db);
    pc_wipe(raw, sizeof raw);
    return rc;
}

/* Inside the caller's transaction: consumes the challenge if it is open, of this kind, and
 * (when given) of this user and bound to this value. PC_ERR_AUTH otherwise. */
int api_web_challenge_take(cp_conn *db, const char *chal, const char *kind, const char *user,
                           const char *bound, char user_out[64])
{
    cp_stmt *st;
    char hash[PC_SHA256_HEX_LEN + 1];
    int rc = PC_ERR_AUTH;

    pc_sha256_hex(chal, strlen(chal), hash);
    st = cp_prepare(
        db, "DELETE FROM web_challenges WHERE hash = ?1 AND kind = ?2"
            " AND expires_at > ?3 AND (CAST(?4 AS TEXT) IS NULL OR user_name = ?4)"
            " AND (CAST(?5 AS TEXT) IS NULL OR bound = ?5) RETURNING COALESCE(user_name, '')");
    if (!st)
        return PC_ERR_STORE;
    cp_bind_text(st, 1, hash);
    cp_bind_text(st, 2, kind);
    cp_bind_int64(st, 3, pc_now());
    cp_bind_text(st, 4, user);
    cp_bind_text(st, 5, bound);
    if (cp_step(st) == CP_ROW) {
        if (user_out)
            snprintf(user_out, 64, "%s", cp_col_text(st, 0));
        rc = PC_OK;
    }
    cp_finalize(st);
    return rc;
}

/* ---- sessions -------------------------------------------------------------------------- */

/* Inside the caller's transaction: a new session for user; the cookie goes into w. */
int api_web_session_new(cp_conn *db, const char *user, struct cp_web_ctx *w)
{
    char tok[PC_TOKEN_HEX_LEN + 1], hash[PC_SHA256_HEX_LEN + 1];
    cp_stmt *st;
    int rc;

    if (pc_token_new(tok) != PC_OK || pc_sha256_hex(tok, strlen(tok), hash) != PC_OK)
        return PC_ERR_CRYPTO;
    st = cp_prepare(db, "INSERT INTO web_sessions(hash, user_name, created_at, expires_at)"
                        " VALUES (?, ?, ?, ?)");
    if (!st) {
        pc_wipe(tok, sizeof tok);
        return PC_ERR_STORE;
    }
    cp_bind_text(st, 1, hash);
    cp_bind_text(st, 2, user);
    cp_bind_int64(st, 3, pc_now());
    cp_bind_int64(st, 4, pc_now() + CP_WEB_SESSION_TTL);
    rc = cp_exec_stmt(st);
    if (rc == PC_OK)
        snprintf(w->set_cookie, sizeof w->set_cookie,
                 CP_WEB_COOKIE "=%s; Path=/; Max-Age=%d; Secure; HttpOnly; SameSite=Strict", tok,
                 CP_WEB_SESSION_TTL);
    pc_wipe(tok, sizeof tok);
    return rc;
}

void api_web_identify(const char *cookie, struct cp_web_ctx *w)
{
    cp_conn *db = cp_db();
    cp_stmt *st;

    w->user[0] = '\0';
    if (!db || api_web_hash_token(cookie, w->session_hash) != PC_OK)
        return;
    st = cp_prepare(db, "SELECT s.user_name FROM web_sessions s JOIN users u"
                        " ON u.name = s.user_name AND u.enabled = 1"
                        " WHERE s.hash = ? AND s.expires_at > ?");
    if (!st)
        return;
    cp_bind_text(st, 1, w->session_hash);
    cp_bind_int64(st, 2, pc_now());
    if (cp_step(st) == CP_ROW)
        snprintf(w->user, sizeof w->user, "%s", cp_col_text(st, 0));
    cp_finalize(st);
}

void api_web_me(struct cp_call *c, struct cp_resp *r, struct cp_web_ctx *w)
{
    json_object *o = json_object_new_object();
    (void)c;
    json_object_object_add(o, "user", json_object_new_string(w->user));
    cp_resp_json(r, 200, o);
}

void api_web_signout(struct cp_call *c, struct cp_resp *r, struct cp_web_ctx *w)
{
    cp_conn *db = cp_db();
    cp_stmt *st = db ? cp_prepare(db, "DELETE FROM web_sessions WHERE hash = ?") : NULL;

    (void)c;
    if (st) {
        cp_bind_text(st, 1, w->session_hash);
        cp_exec_stmt(st);
    }
    snprintf(w->set_cookie, sizeof w->set_cookie,
             CP_WEB_COOKIE "=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Strict");
    cp_resp_json(r, 200, json_object_new_object());
}

/* ---- passkeys -------------------------------------------------------------------------- */

/* The passkey with this credential ID (of user, if given). */
static int passkey_load(const char *cred_id, const char *user, struct api_web_passkey *k)
{
    cp_conn *db = cp_db();
    cp_stmt *st;
    int rc = PC_ERR_NOTFOUND;

    if (!db)
        return PC_ERR_STORE;
    st = cp_prepare(db, "SELECT k.id, k.user_name, k.alg, k.pubkey, k.sign_count FROM passkeys k"
                        " JOIN users u ON u.name = k.user_name AND u.enabled = 1"
                        " WHERE k.cred_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR k.user_name = ?2)");
    if (!st)
        return PC_ERR_STORE;
    cp_bind_text(st, 1, cred_id);
    cp_bind_text(st, 2, user);
    if (cp_step(st) == CP_ROW) {
        size_t n = (size_t)cp_col_bytes(st, 3);
        k->id = cp_col_int64(st, 0);
        snprintf(k->user, sizeof k->user, "%s", cp_col_text(st, 1));
        k->alg = cp_col_int(st, 2);
        k->count = cp_col_int64(st, 4);
        if (n > 0 && n <= sizeof k->pk) {
            memcpy(k->pk, cp_col_blob(st, 3), n);
            k->pklen = n;
            rc = PC_OK;
        } else
            rc = PC_ERR_STORE;
    }
    cp_finalize(st);
    return rc;
}

/* Reads {credential_id, client_data, authenticator_data, signature}, checks the client data
 * (webauthn.get, our origin) and the assertion by the stored passkey. Out: the challenge the
 * client data names (the caller takes it in its transaction) and the new signature count. On
 * failure r is filled. */
int api_web_verify_assertion(struct cp_call *c, struct cp_resp *r, const char *only_user,
                             struct api_web_passkey *k, char chal[CP_WA_CHAL_B64 + 1],
                             uint32_t *count)
{
    const struct cp_settings *s = cp_rt.settings;
    struct pc_jerr e = { 0 };
    const char *cred_id;
    unsigned char cdj[API_WEB_CDJ_MAX], ad[API_WEB_AD_MAX], sig[SIG_MAX];
    size_t cdjlen, adlen, siglen;
    int rc;

    if (pc_json_get_str(c->body, "credential_id", 1, CP_WA_CREDID_MAX, &cred_id, &e) != PC_OK) {
        cp_resp_jerr(r, &e);
        return PC_ERR_INVAL;
    }
    if (api_web_get_b64(c, r, "client_data", cdj, sizeof cdj, &cdjlen) != PC_OK ||
        api_web_get_b64(c, r, "authenticator_data", ad, sizeof ad, &adlen) != PC_OK ||
        api_web_get_b64(c, r, "signature", sig, sizeof sig, &siglen) != PC_OK)
        return PC_ERR_INVAL;
    rc = passkey_load(cred_id, only_user, k);
    if (rc == PC_OK)
        rc = cp_wa_client_data(cdj, cdjlen, "webauthn.get", s->web_origin, chal);
    if (rc == PC_OK)
        rc = cp_wa_assert(s->web_rp_id, cdj, cdjlen, ad, adlen, sig, siglen, k->alg, k->pk,
                          k->pklen, count);
    /* A counter that does not move forward (both non-zero): a cloned authenticator. */
    if (rc == PC_OK && *count != 0 && k->count != 0 && (int64_t)*count <= k->count)
        rc = PC_ERR_AUTH;
    if (rc == PC_ERR_STORE || rc == PC_ERR_NOMEM) {
        cp_resp_from_err(r, rc, "passkey");
        return rc;
    }
    if (rc != PC_OK) {
        cp_resp_error(r, 401, "passkey_refused",
                      "the passkey's answer was not accepted (unknown passkey, wrong challenge, "
                      "origin or relying party, no user verification, or a bad signature)");
        return PC_ERR_AUTH;
    }
    return PC_OK;
}

int api_web_passkey_touch(cp_conn *db, int64_t id, uint32_t count)
{
    cp_stmt *st = cp_prepare(db,
                             "UPDATE passkeys SET sign_count = ?, last_used_at = ? WHERE id = ?");
    if (!st)
        return PC_ERR_STORE;
    cp_bind_int64(st, 1, count);
    cp_bind_int64(st, 2, pc_now());
    cp_bind_int64(st, 3, id);
    return cp_exec_stmt(st);
}

json_object *api_web_user_cred_ids(const char *user)
{
    cp_conn *db = cp_db();
    cp_stmt *st = db ? cp_prepare(db, "SELECT cred_id FROM passkeys WHERE user_name = ?"
                                      " ORDER BY id")
                     : NULL;
    json_object *arr = json_object_new_array();

    if (!st)
        return arr;
    cp_bind_text(st, 1, user);
    while (cp_step(st) == CP_ROW)
        json_object_array_add(arr, json_object_new_string(cp_col_text(st, 0)));
    cp_finalize(st);
    return arr;
}

/* ---- sign-in --------------------------------------------------------------------------- */

void api_web_signin_begin(struct cp_call *c, struct cp_resp *r, struct cp_web_ctx *w)
{
    static const char *const fields[] = { NULL };
    char chal[CP_WA_CHAL_B64 + 1];
    json_object *o;
    int rc;

    (void)w;
    if (cp_body_check(c, r, fields))
        return;
    rc = api_web_challenge_new("signin", NULL, NULL, API_WEB_CHAL_TTL, chal);
    if (rc == PC_ERR_TOOBIG) {
        cp_resp_error(r, 429, "too_many_requests", "too many sign-ins under way: try again");
        return;
    }
    if (rc != PC_OK) {
        cp_resp_from_err(r, rc, "challenge");
        return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "challenge", json_object_new_string(chal));
    json_object_object_add(o, "rp_id", json_object_new_string(cp_rt.settings->web_rp_id));
    cp_resp_json(r, 200, o);
}

void api_web_signin_finish(struct cp_call *c, struct cp_resp *r, struct cp_web_ctx *w)
{
    static const char *const fields[] = { "credential_id", "client_data", "authenticator_data",
                                          "signature", NULL };
    struct api_web_passkey k;
    char chal[CP_WA_CHAL_B64 + 1];
    uint32_t count = 0;
    cp_conn *db = cp_db();
    json_object *o;
    int rc;

    if (cp_body_check(c, r, fields))
        return;
    if (api_web_verify_assertion(c, r, NULL, &k, chal, &count) != PC_OK) {
        api_web_audit_refusal("web.signin", NULL, "passkey_refused", c->source);
        return;
    }
    if (!db || cp_tx_begin(db) != PC_OK) {
        cp_resp_from_err(r, PC_ERR_STORE, "session");
        return;
    }
    rc = api_web_challenge_take(db, chal, "signin", NULL, NULL, NULL);
    if (rc == PC_OK)
        rc = api_web_passkey_touch(db, k.id, count);
    if (rc == PC_OK)
        rc = api_web_session_new(db, k.user, w);
    if (rc == PC_OK) {
        api_web_audit(db, "passkey", "web.signin", k.user, "ok", NULL, c->source);
        rc = cp_tx_commit(db);
    }
    if (cp_autocommit(db) == 0)
        cp_tx_rollback(db);
    if (rc != PC_OK) {
        w->set_cookie[0] = '\0';
        cp_resp_error(r, 401, "passkey_refused", "the challenge was used already or expired");
        return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "user", json_object_new_string(k.user));
    cp_resp_json(r, 200, o);
}
