/* SPDX-License-Identifier: BSD-2-Clause */
/* The steps of a certificate login that start, finish and the push-login poll share: the
 * login's row and audit, refusals, the policy check and the certificate itself. */
#include "config.h"
#include "cp_audit.h"
#include "cp_ca.h"
#include "cp_cert_login_int.h"
#include "cp_store.h"
#include "cp_userkeys.h"
#include "cp_users.h"
#include "pc_cert.h"
#include "pc_err.h"
#include "pc_mem.h"
#include "pc_time.h"
#include <stdio.h>
#include <string.h>

int cp_login_audit(cp_conn *db, const char *action, const char *user, const char *result,
                   const char *reason, const char *login_id, const char *source)
{
    char actor[80];
    struct cp_audit_row row = { .actor = actor,
                                .action = action,
                                .user = user,
                                .result = result,
                                .reason = reason,
                                .txid = login_id,
                                .source = source };
    snprintf(actor, sizeof actor, "user:%.64s", user);
    return cp_audit_add(db, &row);
}

int cp_login_load(cp_conn *db, const char *id, struct cp_login_row *l)
{
    cp_stmt *st = cp_prepare(db, "SELECT user_name, fingerprint, challenge, ttl, state,"
                                 " expires_at FROM logins WHERE id = ?");
    int rc;

    if (!st)
        return PC_ERR_STORE;
    cp_bind_text(st, 1, id);
    rc = cp_step(st);
    if (rc == CP_ROW && cp_col_bytes(st, 2) == CP_LOGIN_CHALLENGE_BYTES) {
        snprintf(l->user, sizeof l->user, "%s", cp_col_text(st, 0));
        snprintf(l->fp, sizeof l->fp, "%s", cp_col_text(st, 1));
        memcpy(l->chal, cp_col_blob(st, 2), CP_LOGIN_CHALLENGE_BYTES);
        l->ttl = cp_col_int64(st, 3);
        snprintf(l->state, sizeof l->state, "%s", cp_col_text(st, 4));
        l->expires_at = cp_col_int64(st, 5);
        rc = PC_OK;
    } else {
        rc = rc == CP_DONE || rc == CP_ROW ? PC_ERR_NOTFOUND : PC_ERR_STORE;
    }
    cp_finalize(st);
    return rc;
}

int cp_login_set_state(cp_conn *db, const char *id, const char *state)
{
    cp_stmt *st = cp_prepare(db, "UPDATE logins SET state = ? WHERE id = ?");
    if (!st)
        return PC_ERR_STORE;
    cp_bind_text(st, 1, state);
    cp_bind_text(st, 2, id);
    return cp_exec_stmt(st);
}

void cp_login_refuse(struct cp_cert_login_finish_res *res, unsigned status, const char *error,
                     const char *reason, const char *msg)
{
    res->status = status;
    res->error = error;
    res->reason = reason;
    snprintf(res->message, sizeof res->message, "%s", msg);
}

/* The session remembers its key: deleting the key ends it. until (0: none) caps its expiry. */
static int create_session(cp_conn *db, const struct cp_login_row *l, int64_t until,
                          struct cp_cert_login_finish_res *res)
{
    char hash[PC_SHA256_HEX_LEN + 1];
    cp_stmt *st;
    int rc;

    if ((rc = pc_token_new(res->session)) != PC_OK ||
        (rc = pc_sha256_hex(res->session, strlen(res->session), hash)) != PC_OK)
        return rc;
    res->session_expires_at = pc_now() + CP_SESSION_TTL;
    if (until > 0 && res->session_expires_at > until)
        res->session_expires_at = until;
    if (!(st = cp_prepare(db, "INSERT INTO sessions(hash, user_name, created_at, expires_at,"
                              " fingerprint) VALUES (?,?,?,?,?)")))
        return PC_ERR_STORE;
    cp_bind_text(st, 1, hash);
    cp_bind_text(st, 2, l->user);
    cp_bind_int64(st, 3, pc_now());
    cp_bind_int64(st, 4, res->session_expires_at);
    cp_bind_text(st, 5, l->fp);
    return cp_exec_stmt(st);
}

/* The certificate and the session. until > 0: the approving credential's expiry, which
 * neither may outlive (the caller has checked that it lies in the future). subject: the
 * login's key, already parsed and seen registered in this transaction (NULL: loaded here). */
int cp_login_issue(cp_conn *db, const struct cp_login_row *l, const struct cp_login_terms *t,
                   int64_t until, const char *method, const char *source,
                   const struct pc_sshkey *subject, struct cp_cert_login_finish_res *res)
{
    struct pc_sshkey *key = NULL;
    struct cp_user_rec u;
    struct pc_cert_opt crit[2], ext[CP_POLICY_EXT_MAX + 1];
    char second[PC_CERT_2FA_VALUE_MAX];
    const char *princ[1] = { l->user };
    char actor[80];
    struct cp_issue_req req = { .type = PC_CERT_USER,
                                .key_id = l->user,
                                .principals = princ,
                                .n_principals = 1,
                                .user_name = l->user,
                                .critical = crit,
                                .extensions = ext,
                                .n_extensions = t->n_ext,
                                .actor = actor,
                                .source = source };
    int rc;

    memset(&u, 0, sizeof u);
    if (!subject && ((rc = cp_user_load(db, l->user, &u)) != PC_OK ||
                     (rc = cp_userkey_find(db, u.id, l->fp, &key)) != PC_OK))
        goto out;
    snprintf(actor, sizeof actor, "user:%.64s", l->user);
    req.subject = subject ? subject : key;
    req.ttl = l->ttl > 0 && l->ttl < t->max_ttl ? l->ttl : t->max_ttl;
    req.not_after = until;
    /* Access that only grants give: the certificate ends with the grant. */
    if (t->grant_until > 0 && (until <= 0 || t->grant_until < until))
        req.not_after = t->grant_until;
    if (t->force_command[0])
        crit[req.n_critical++] = (struct pc_cert_opt){ "force-command", t->force_command };
    /* req.critical and req.extensions point to crit and ext: cppcheck misses it */
    if (t->source_address[0])
        /* cppcheck-suppress unreadVariable */
        crit[req.n_critical++] = (struct pc_cert_opt){ "source-address", t->source_address };
    for (size_t i = 0; i < t->n_ext; i++)
        /* cppcheck-suppress unreadVariable */
        ext[i] = (struct pc_cert_opt){ t->ext[i], NULL };
    /* When and how the second factor was passed (issue 13): per-certificate rules let the PAM
     * step accept the certificate itself as that proof. */
    if ((rc = pc_cert_2fa_format(pc_now(), method, second, sizeof second)) != PC_OK)
        goto out;
    /* cppcheck-suppress unreadVariable */
    ext[req.n_extensions++] = (struct pc_cert_opt){ PC_CERT_EXT_2FA, second };
    rc = cp_ca_issue(db, &req, &res->cert);
    if (rc == PC_OK)
        rc = create_session(db, l, until, res);
out:
    pc_sshkey_free(key);
    pc_wipe(&u, sizeof u);
    return rc;
}

/* After the proof: revocation and policy. PC_OK with res->status set on a refusal. */
int cp_login_check_policy(cp_conn *db, const struct cp_login_row *l, struct cp_login_terms *t,
                          struct cp_cert_login_finish_res *res)
{
    char msg[160];
    int rc;

    if (cp_ca_key_id_revoked(db, l->user)) {
        cp_login_refuse(res, 403, "forbidden", "revoked", "certificates for this user are revoked");
        return PC_OK;
    }
    if ((rc = cp_policy_login_terms(db, l->user, t)) != PC_OK)
        return rc;
    if (!t->named) {
        snprintf(msg, sizeof msg, "no policy allows %s to log in anywhere", l->user);
        cp_login_refuse(res, 403, "forbidden", "no_policy", msg);
    } else if (t->conflict) {
        snprintf(msg, sizeof msg, "the rules that name %s disagree on %s: make them agree", l->user,
                 t->conflict);
        cp_login_refuse(res, 403, "forbidden", "policy_conflict", msg);
    }
    return PC_OK;
}

/* The push of a login (txid = login id): PC_ERR_NOTFOUND when it has none. *approver: when
 * the credential that approved it expires (0: never). */
int cp_login_load_push(cp_conn *db, const char *login_id, char id[CP_PUSH_ID_LEN + 1],
                       char state[16], int64_t *expires_at, int64_t *approver)
{
    cp_stmt *st = cp_prepare(db, "SELECT id, state, expires_at, approver_expires_at"
                                 " FROM pushes WHERE txid = ?");
    int rc;

    if (!st)
        return PC_ERR_STORE;
    cp_bind_text(st, 1, login_id);
    if ((rc = cp_step(st)) == CP_ROW) {
        snprintf(id, CP_PUSH_ID_LEN + 1, "%s", cp_col_text(st, 0));
        snprintf(state, 16, "%s", cp_col_text(st, 1));
        *expires_at = cp_col_int64(st, 2);
        *approver = cp_col_int64(st, 3);
        rc = PC_OK;
    } else {
        rc = rc == CP_DONE ? PC_ERR_NOTFOUND : PC_ERR_STORE;
    }
    cp_finalize(st);
    return rc;
}

/* Whether a login of that id exists, by a plain read: in WAL mode it takes no write lock, so
 * unauthenticated callers naming random ids (login/finish and GET /v1/login/{id} are open to
 * anyone) cannot queue up for the write lock that hosts' logins need. 1 yes, 0 no, <0 error. */
int cp_login_known(cp_conn *db, const char *id)
{
    cp_stmt *st = cp_prepare(db, "SELECT 1 FROM logins WHERE id = ?");
    int rc;

    if (!st)
        return PC_ERR_STORE;
    cp_bind_text(st, 1, id);
    rc = cp_step(st);
    cp_finalize(st);
    return rc == CP_ROW ? 1 : rc == CP_DONE ? 0 : PC_ERR_STORE;
}
