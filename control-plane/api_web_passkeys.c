/* SPDX-License-Identifier: BSD-2-Clause */
/* The approval web app's passkeys: an invite (a one-time URL from `portcullis user invite`),
 * the passkey registration it opens (and, for a user without TOTP, the seed's QR code once),
 * and the admin's invite, passkey list and passkey delete on the pinned listener. Invite tokens
 * are stored only as SHA-256 hex and are single use; registration verifies with libfido2
 * (cp_webauthn.c). Sessions and sign-in are in api_web_session.c. */
#include "config.h"
#include "api.h"
#include "api_web.h"
#include "api_web_int.h"
#include "cp_audit.h"
#include "cp_store.h"
#include "cp_users.h"
#include "cp_webauthn.h"
#include "pc_config.h"
#include "pc_err.h"
#include "pc_mem.h"
#include "pc_rand.h"
#include "pc_time.h"
#include "pc_valid.h"
#include <openssl/evp.h>
#include <qrencode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INVITE_TTL_DEFAULT 86400

/* ---- invites and registration ---------------------------------------------------------- */

/* The user of an open invite (token in the body). */
static int invite_user(struct cp_call *c, struct cp_resp *r, char hash[PC_SHA256_HEX_LEN + 1],
                       char user[64])
{
    struct pc_jerr e = { 0 };
    const char *tok;
    cp_conn *db = cp_db();
    cp_stmt *st;
    int rc = PC_ERR_NOTFOUND;

    if (pc_json_get_str(c->body, "invite", 1, 128, &tok, &e) != PC_OK) {
        cp_resp_jerr(r, &e);
        return PC_ERR_INVAL;
    }
    if (api_web_hash_token(tok, hash) != PC_OK) {
        cp_resp_error(r, 400, "bad_field", "invite: not an invite");
        return PC_ERR_INVAL;
    }
    st = db ? cp_prepare(db, "SELECT i.user_name FROM web_invites i JOIN users u"
                             " ON u.name = i.user_name AND u.enabled = 1"
                             " WHERE i.hash = ? AND i.used_at = 0 AND i.expires_at > ?")
            : NULL;
    if (!st) {
        cp_resp_from_err(r, PC_ERR_STORE, "invite");
        return PC_ERR_STORE;
    }
    cp_bind_text(st, 1, hash);
    cp_bind_int64(st, 2, pc_now());
    if (cp_step(st) == CP_ROW) {
        snprintf(user, 64, "%s", cp_col_text(st, 0));
        rc = PC_OK;
    }
    cp_finalize(st);
    if (rc != PC_OK)
        cp_resp_error(r, 410, "invite_invalid",
                      "this invite was used already, has expired or does not exist: ask your "
                      "administrator for a new one");
    return rc;
}

void api_web_invite_begin(struct cp_call *c, struct cp_resp *r, struct cp_web_ctx *w)
{
    static const char *const fields[] = { "invite", NULL };
    const struct cp_settings *s = cp_rt.settings;
    char hash[PC_SHA256_HEX_LEN + 1], user[64], chal[CP_WA_CHAL_B64 + 1], handle[32];
    unsigned char uh[32];
    unsigned int uhl = 0;
    json_object *o;
    int rc;

    (void)w;
    if (cp_body_check(c, r, fields) || invite_user(c, r, hash, user) != PC_OK)
        return;
    if ((rc = api_web_challenge_new("register", user, hash, API_WEB_CHAL_TTL, chal)) != PC_OK) {
        cp_resp_from_err(r, rc, "challenge");
        return;
    }
    /* user.id: stable per user, not the name itself (RFC: no personal data in it) */
    EVP_Digest(user, strlen(user), uh, &uhl, EVP_sha256(), NULL);
    cp_b64url_encode(uh, 16, handle);
    o = json_object_new_object();
    json_object_object_add(o, "user", json_object_new_string(user));
    json_object_object_add(o, "user_handle", json_object_new_string(handle));
    json_object_object_add(o, "challenge", json_object_new_string(chal));
    json_object_object_add(o, "rp_id", json_object_new_string(s->web_rp_id));
    json_object_object_add(o, "exclude", api_web_user_cred_ids(user));
    cp_resp_json(r, 200, o);
}

/* The TOTP QR code as an SVG document (one path), for a user who had no TOTP yet. */
static char *qr_svg(const char *text)
{
    QRcode *q = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    size_t cap, n = 0;
    char *out;
    int w;

    if (!q)
        return NULL;
    w = q->width;
    cap = 256 + (size_t)w * (size_t)w * 24;
    out = malloc(cap);
    if (!out) {
        QRcode_free(q);
        return NULL;
    }
    n += (size_t)snprintf(out + n, cap - n,
                          "<svg xmlns='http://www.w3.org/2000/svg' viewBox='-4 -4 %d %d'>"
                          "<rect x='-4' y='-4' width='%d' height='%d' fill='#fff'/>"
                          "<path shape-rendering='crispEdges' d='",
                          w + 8, w + 8, w + 8, w + 8);
    /* one rectangle per run of dark modules in a row: no seams inside a run */
    for (int y = 0; y < w; y++)
        for (int x = 0; x < w; x++) {
            int run = 0;
            while (x + run < w && (q->data[y * w + x + run] & 1))
                run++;
            if (run)
                n += (size_t)snprintf(out + n, cap - n, "M%d %dh%dv1h-%dz", x, y, run, run);
            x += run;
        }
    snprintf(out + n, cap - n, "'/></svg>");
    QRcode_free(q);
    return out;
}

void api_web_invite_finish(struct cp_call *c, struct cp_resp *r, struct cp_web_ctx *w)
{
    static const char *const fields[] = { "invite", "client_data", "authenticator_data", "alg",
                                          NULL };
    const struct cp_settings *s = cp_rt.settings;
    struct pc_jerr e = { 0 };
    struct cp_who who = { NULL, c->source };
    char hash[PC_SHA256_HEX_LEN + 1], user[64], chal[CP_WA_CHAL_B64 + 1], actor[80];
    char cred_id[CP_WA_CREDID_MAX + 1], *uri = NULL, *svg = NULL;
    unsigned char cdj[API_WEB_CDJ_MAX], ad[API_WEB_AD_MAX], pk[CP_WA_PK_MAX];
    size_t cdjlen, adlen, pklen = 0;
    int64_t alg;
    cp_conn *db = cp_db();
    cp_stmt *st;
    json_object *o;
    int rc;

    if (cp_body_check(c, r, fields) || invite_user(c, r, hash, user) != PC_OK)
        return;
    if (pc_json_get_int(c->body, "alg", 1, -8, -7, &alg, &e) != PC_OK) {
        cp_resp_jerr(r, &e);
        return;
    }
    if (api_web_get_b64(c, r, "client_data", cdj, sizeof cdj, &cdjlen) != PC_OK ||
        api_web_get_b64(c, r, "authenticator_data", ad, sizeof ad, &adlen) != PC_OK)
        return;
    rc = cp_wa_client_data(cdj, cdjlen, "webauthn.create", s->web_origin, chal);
    if (rc == PC_OK)
        rc = cp_wa_register(s->web_rp_id, cdj, cdjlen, ad, adlen, (int)alg, cred_id, pk, &pklen);
    if (rc != PC_OK) {
        api_web_audit_refusal("passkey.register", user, "bad_registration", c->source);
        cp_resp_error(r, 401, "passkey_refused",
                      "the new passkey was not accepted (wrong challenge, origin or relying "
                      "party, no user verification, or not ES256/Ed25519)");
        return;
    }
    if (!db || cp_tx_begin(db) != PC_OK) {
        cp_resp_from_err(r, PC_ERR_STORE, "passkey");
        return;
    }
    rc = api_web_challenge_take(db, chal, "register", user, hash, NULL);
    if (rc == PC_OK) {
        /* single use: the row changes only while it is open */
        st = cp_prepare(db, "UPDATE web_invites SET used_at = ?1 WHERE hash = ?2 AND used_at = 0"
                            " AND expires_at > ?1");
        rc = st ? PC_OK : PC_ERR_STORE;
        if (st) {
            cp_bind_int64(st, 1, pc_now());
            cp_bind_text(st, 2, hash);
            rc = cp_exec_stmt(st);
            if (rc == PC_OK && cp_changes(db) != 1)
                rc = PC_ERR_STATE;
        }
    }
    if (rc == PC_OK) {
        st = cp_prepare(db, "INSERT INTO passkeys(user_name, cred_id, alg, pubkey, created_at)"
                            " VALUES (?, ?, ?, ?, ?)");
        rc = st ? PC_OK : PC_ERR_STORE;
        if (st) {
            cp_bind_text(st, 1, user);
            cp_bind_text(st, 2, cred_id);
            cp_bind_int(st, 3, (int)alg);
            cp_bind_blob(st, 4, pk, (int)pklen);
            cp_bind_int64(st, 5, pc_now());
            rc = cp_exec_stmt(st); /* a credential ID registered twice: UNIQUE refuses it */
        }
    }
    if (rc == PC_OK)
        rc = api_web_session_new(db, user, w);
    if (rc == PC_OK) {
        api_web_audit(db, "web", "passkey.register", user, "ok",
                      alg == CP_WA_ES256 ? "es256" : "ed25519", c->source);
        rc = cp_tx_commit(db);
    }
    if (cp_autocommit(db) == 0)
        cp_tx_rollback(db);
    if (rc != PC_OK) {
        w->set_cookie[0] = '\0';
        if (rc == PC_ERR_AUTH)
            cp_resp_error(r, 401, "passkey_refused",
                          "the registration answered a challenge not issued for this invite, "
                          "or one that expired: start again");
        else if (rc == PC_ERR_STATE)
            cp_resp_error(r, 410, "invite_invalid", "this invite was used already");
        else
            cp_resp_error(r, 409, "conflict",
                          "the passkey could not be stored (registered "
                          "already?)");
        return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "user", json_object_new_string(user));
    /* Shown once: only a user who has no TOTP yet gets a seed here. */
    snprintf(actor, sizeof actor, "invite:%s", user);
    who.actor = actor;
    if (cp_user_totp_enroll(&who, user, 0, &uri) == PC_OK && uri) {
        json_object_object_add(o, "totp_uri", json_object_new_string(uri));
        if ((svg = qr_svg(uri)))
            json_object_object_add(o, "totp_qr_svg", json_object_new_string(svg));
        free(svg);
        pc_free_secret_str(uri);
    }
    cp_resp_json(r, 200, o);
}

/* ---- admin: invites and passkeys (pinned listener) ------------------------------------- */

/* The end of an admin change in its transaction on db: when rc is PC_OK so far, its audit row
 * and the commit; whatever failed, the transaction is rolled back. Returns the outcome. */
static int admin_audit_commit(cp_conn *db, int rc, const char *action, const char *user,
                              const char *reason, const char *source)
{
    if (rc == PC_OK) {
        struct cp_audit_row row = { .actor = "admin",
                                    .action = action,
                                    .user = user,
                                    .result = "ok",
                                    .reason = reason,
                                    .source = source };
        rc = cp_audit_add(db, &row);
    }
    if (rc == PC_OK)
        rc = cp_tx_commit(db);
    if (cp_autocommit(db) == 0)
        cp_tx_rollback(db);
    return rc;
}

void api_user_invite(struct cp_call *c, struct cp_resp *r)
{
    static const char *const fields[] = { "ttl", NULL };
    const struct cp_settings *s = cp_rt.settings;
    struct pc_jerr e = { 0 };
    char tok[PC_TOKEN_HEX_LEN + 1], hash[PC_SHA256_HEX_LEN + 1], url[400];
    int64_t ttl = INVITE_TTL_DEFAULT, now = pc_now();
    cp_conn *db = cp_db();
    cp_stmt *st;
    struct cp_user_rec rec;
    json_object *o;
    int rc;

    if (cp_body_check(c, r, fields))
        return;
    if (json_object_object_get_ex(c->body, "ttl", NULL) &&
        pc_json_get_int(c->body, "ttl", 1, 300, 30 * 86400, &ttl, &e) != PC_OK) {
        cp_resp_jerr(r, &e);
        return;
    }
    if (!s->web_port) {
        cp_resp_error(r, 409, "no_web_app",
                      "portcullisd serves no web app: start it with --web-listen and --web-origin");
        return;
    }
    if (!cp_user_name_valid(c->seg[1])) {
        cp_resp_from_err(r, PC_ERR_NOTFOUND, "user");
        return;
    }
    if (pc_token_new(tok) != PC_OK || pc_sha256_hex(tok, strlen(tok), hash) != PC_OK) {
        cp_resp_from_err(r, PC_ERR_CRYPTO, "invite");
        return;
    }
    if (!db || cp_tx_begin(db) != PC_OK) {
        cp_resp_from_err(r, PC_ERR_STORE, "invite");
        return;
    }
    rc = cp_user_load(db, c->seg[1], &rec);
    pc_wipe(&rec, sizeof rec);
    if (rc == PC_OK) {
        st = cp_prepare(db, "INSERT INTO web_invites(hash, user_name, created_at, expires_at)"
                            " VALUES (?, ?, ?, ?)");
        rc = st ? PC_OK : PC_ERR_STORE;
        if (st) {
            cp_bind_text(st, 1, hash);
            cp_bind_text(st, 2, c->seg[1]);
            cp_bind_int64(st, 3, now);
            cp_bind_int64(st, 4, now + ttl);
            rc = cp_exec_stmt(st);
        }
    }
    rc = admin_audit_commit(db, rc, "web.invite", c->seg[1], NULL, c->source);
    if (rc != PC_OK) {
        pc_wipe(tok, sizeof tok);
        cp_resp_from_err(r, rc, "user");
        return;
    }
    /* The token rides in the fragment: browsers never send it in a request line or Referer. */
    snprintf(url, sizeof url, "%s/app/#invite=%s", s->web_origin, tok);
    pc_wipe(tok, sizeof tok);
    o = json_object_new_object();
    json_object_object_add(o, "user", json_object_new_string(c->seg[1]));
    json_object_object_add(o, "url", json_object_new_string(url));
    json_object_object_add(o, "expires_at", json_object_new_int64(now + ttl));
    pc_wipe(url, sizeof url);
    cp_resp_json(r, 201, o);
}

void api_user_passkeys(struct cp_call *c, struct cp_resp *r)
{
    cp_conn *db = cp_db();
    cp_stmt *st;
    json_object *arr, *o;
    struct cp_user_rec rec;
    int rc;

    if (!db) {
        cp_resp_from_err(r, PC_ERR_STORE, "passkeys");
        return;
    }
    rc = cp_user_name_valid(c->seg[1]) ? cp_user_load(db, c->seg[1], &rec) : PC_ERR_NOTFOUND;
    pc_wipe(&rec, sizeof rec);
    if (rc != PC_OK) {
        cp_resp_from_err(r, rc, "user");
        return;
    }
    st = cp_prepare(db, "SELECT id, cred_id, alg, created_at, last_used_at FROM passkeys"
                        " WHERE user_name = ? ORDER BY id");
    if (!st) {
        cp_resp_from_err(r, PC_ERR_STORE, "passkeys");
        return;
    }
    cp_bind_text(st, 1, c->seg[1]);
    arr = json_object_new_array();
    while (cp_step(st) == CP_ROW) {
        json_object *k = json_object_new_object();
        json_object_object_add(k, "id", json_object_new_int64(cp_col_int64(st, 0)));
        json_object_object_add(k, "credential_id", json_object_new_string(cp_col_text(st, 1)));
        json_object_object_add(k, "algorithm",
                               json_object_new_string(
                                   cp_col_int(st, 2) == CP_WA_ES256 ? "es256" : "ed25519"));
        json_object_object_add(k, "created_at", json_object_new_int64(cp_col_int64(st, 3)));
        json_object_object_add(k, "last_used_at", json_object_new_int64(cp_col_int64(st, 4)));
        json_object_array_add(arr, k);
    }
    cp_finalize(st);
    o = json_object_new_object();
    json_object_object_add(o, "passkeys", arr);
    cp_resp_json(r, 200, o);
}

void api_user_passkey_delete(struct cp_call *c, struct cp_resp *r)
{
    cp_conn *db = cp_db();
    cp_stmt *st;
    uint64_t id;
    int rc;

    if (c->nseg != 4 || pc_parse_uint(c->seg[3], 1, INT64_MAX, &id) != PC_OK) {
        cp_resp_error(r, 404, "not_found", "passkey not found");
        return;
    }
    if (!db || cp_tx_begin(db) != PC_OK) {
        cp_resp_from_err(r, PC_ERR_STORE, "passkey");
        return;
    }
    st = cp_prepare(db, "DELETE FROM passkeys WHERE id = ? AND user_name = ?");
    rc = st ? PC_OK : PC_ERR_STORE;
    if (st) {
        cp_bind_int64(st, 1, (int64_t)id);
        cp_bind_text(st, 2, c->seg[1]);
        rc = cp_exec_stmt(st);
        if (rc == PC_OK && cp_changes(db) != 1)
            rc = PC_ERR_NOTFOUND;
    }
    /* A lost phone: its web sessions end with its passkey. */
    if (rc == PC_OK && (st = cp_prepare(db, "DELETE FROM web_sessions WHERE user_name = ?"))) {
        cp_bind_text(st, 1, c->seg[1]);
        rc = cp_exec_stmt(st);
    }
    rc = admin_audit_commit(db, rc, "passkey.delete", c->seg[1], c->seg[3], c->source);
    if (rc != PC_OK) {
        cp_resp_from_err(r, rc, "passkey");
        return;
    }
    cp_resp_json(r, 200, json_object_new_object());
}
