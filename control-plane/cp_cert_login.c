/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "cp_cert_login.h"
#include "cp_audit.h"
#include "cp_authtx.h"
#include "cp_metrics.h"
#include "cp_policy.h"
#include "cp_refusals.h"
#include "cp_store.h"
#include "cp_userkeys.h"
#include "pc_cert.h"
#include "pc_err.h"
#include "pc_mem.h"
#include "pc_sshbuf.h"
#include "pc_sshsig.h"
#include "pc_time.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHALLENGE_BYTES 32
#define COLLECT_GRACE 60 /* seconds to fetch the certificate after the push ends */

static int audit_login(cp_conn *db, const char *action, const char *user, const char *result,
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

static int insert_login(cp_conn *db, const struct cp_cert_login_start_res *res, const char *user,
                        const char *fp, const unsigned char *chal, int64_t ttl, const char *source)
{
    cp_stmt *st = cp_prepare(db, "INSERT INTO logins(id, user_name, fingerprint, challenge,"
                                 " ttl, state, source, created_at, expires_at)"
                                 " VALUES (?,?,?,?,?,'open',?,?,?)");
    if (!st)
        return PC_ERR_STORE;
    cp_bind_text(st, 1, res->login_id);
    cp_bind_text(st, 2, user);
    cp_bind_text(st, 3, fp);
    cp_bind_blob(st, 4, chal, CHALLENGE_BYTES);
    cp_bind_int64(st, 5, ttl);
    cp_bind_text(st, 6, source);
    cp_bind_int64(st, 7, pc_now());
    cp_bind_int64(st, 8, res->expires_at);
    return cp_exec_stmt(st);
}

struct start_job {
    const char *source, *user, *fp;
    int64_t ttl;
    struct cp_cert_login_start_res *res;
    int answer; /* what the caller gets once the job's changes are kept */
};

static int start_in_tx(cp_conn *db, void *arg)
{
    struct start_job *j = arg;
    struct cp_cert_login_start_res *res = j->res;
    struct cp_user_rec u;
    unsigned char chal[CHALLENGE_BYTES];
    const char *why = NULL;
    int rc;

    rc = cp_user_load(db, j->user, &u);
    if (rc == PC_ERR_NOTFOUND)
        why = "unknown_user";
    else if (rc == PC_OK && !u.enabled)
        why = "disabled";
    else if (rc == PC_OK && (rc = cp_userkey_find(db, u.id, j->fp, NULL)) == PC_ERR_NOTFOUND)
        why = "unregistered_key";
    if (why && !cp_refusal_note(j->source)) {
        rc = PC_ERR_AUTH; /* counted, summed up in the audit log later (cp_refusals.h) */
        goto out;
    }
    if (why) {
        j->answer = PC_ERR_AUTH;
        rc = audit_login(db, "login.start", j->user, "deny", why, NULL, j->source);
        goto out;
    }
    if (rc != PC_OK)
        goto out;
    res->expires_at = pc_now() + CP_CERT_LOGIN_TTL;
    res->push = u.push;
    if ((rc = pc_ordered_id(res->login_id, sizeof res->login_id, 16)) != PC_OK ||
        (rc = pc_random_bytes(chal, sizeof chal)) != PC_OK ||
        (rc = pc_base64_encode(chal, sizeof chal, &res->challenge)) != PC_OK ||
        (rc = insert_login(db, res, j->user, j->fp, chal, j->ttl, j->source)) != PC_OK)
        goto out;
    rc = audit_login(db, "login.start", j->user, "ok", j->fp, res->login_id, j->source);
    /* A challenge handed out decides nothing, like a begun login: login/finish, which issues
     * the certificate, is a synced commit later in the same log and makes this row durable
     * with it. A power loss can take the challenge away (finish then answers "unknown login"
     * and the user runs portcullis login again); a refused start above is synced. */
    if (rc == PC_OK)
        cp_store_job_decides_nothing();
out:
    pc_wipe(&u, sizeof u);
    pc_wipe(chal, sizeof chal);
    return rc;
}

/* The start's answer once its job has run (rc: the write's result). */
static int start_end(const struct start_job *j, int rc)
{
    if (rc == PC_OK)
        rc = j->answer;
    if (rc != PC_OK) {
        free(j->res->challenge);
        j->res->challenge = NULL;
    }
    return rc;
}

int cp_cert_login_start(const char *source, const char *user, const struct pc_sshkey *key,
                        int64_t ttl, struct cp_cert_login_start_res *res)
{
    char fp[PC_SSHKEY_FP_SIZE];
    struct start_job j = { source, user, fp, ttl, res, PC_OK };

    memset(res, 0, sizeof *res);
    if (pc_sshkey_fingerprint(key, fp) != PC_OK)
        return PC_ERR_STORE;
    return start_end(&j, cp_store_write_pending(start_in_tx, &j));
}

/* cp_cert_login_start_then's job, and what to call after. */
struct start_then {
    struct start_job j; /* first: start_in_tx takes a pointer to it */
    char fp[PC_SSHKEY_FP_SIZE];
    cp_cert_login_then_fn done;
    void *ctx;
};

static void start_then_done(void *arg, int rc)
{
    struct start_then *t = arg;

    t->done(t->ctx, start_end(&t->j, rc));
    free(t);
}

int cp_cert_login_start_then(const char *source, const char *user, const struct pc_sshkey *key,
                             int64_t ttl, struct cp_cert_login_start_res *res,
                             cp_cert_login_then_fn done, void *ctx)
{
    struct start_then *t;
    int rc;

    memset(res, 0, sizeof *res);
    if (!(t = calloc(1, sizeof *t)))
        return PC_ERR_NOMEM;
    t->j = (struct start_job){ source, user, t->fp, ttl, res, PC_OK };
    t->done = done;
    t->ctx = ctx;
    if (pc_sshkey_fingerprint(key, t->fp) != PC_OK)
        rc = PC_ERR_STORE;
    else
        rc = cp_store_write_then(start_in_tx, &t->j, 1, start_then_done);
    if (rc != PC_OK)
        free(t);
    return rc;
}

struct login_row {
    char user[64];
    char fp[PC_SSHKEY_FP_SIZE];
    unsigned char chal[CHALLENGE_BYTES];
    int64_t ttl, expires_at;
    char state[16];
};

static int load_login(cp_conn *db, const char *id, struct login_row *l)
{
    cp_stmt *st = cp_prepare(db, "SELECT user_name, fingerprint, challenge, ttl, state,"
                                 " expires_at FROM logins WHERE id = ?");
    int rc;

    if (!st)
        return PC_ERR_STORE;
    cp_bind_text(st, 1, id);
    rc = cp_step(st);
    if (rc == CP_ROW && cp_col_bytes(st, 2) == CHALLENGE_BYTES) {
        snprintf(l->user, sizeof l->user, "%s", cp_col_text(st, 0));
        snprintf(l->fp, sizeof l->fp, "%s", cp_col_text(st, 1));
        memcpy(l->chal, cp_col_blob(st, 2), CHALLENGE_BYTES);
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

static int set_login_state(cp_conn *db, const char *id, const char *state)
{
    cp_stmt *st = cp_prepare(db, "UPDATE logins SET state = ? WHERE id = ?");
    if (!st)
        return PC_ERR_STORE;
    cp_bind_text(st, 1, state);
    cp_bind_text(st, 2, id);
    return cp_exec_stmt(st);
}

static void refuse(struct cp_cert_login_finish_res *res, unsigned status, const char *error,
                   const char *reason, const char *msg)
{
    res->status = status;
    res->error = error;
    res->reason = reason;
    snprintf(res->message, sizeof res->message, "%s", msg);
}

/* A login's signature, checked before its write. The check (an Ed25519 or RSA verify, and
 * the key's parse) was the largest CPU cost of a finish, and the store's writer is one thread
 * for every write of the daemon: it now runs on the calling thread, with a plain read. The
 * writer takes its result only for the same login, challenge and key (the fingerprint is the
 * key's hash), after it has seen in its own transaction that the user is enabled and the key
 * still registered; else it checks the signature itself. */
struct proof {
    int checked;                /* 0: nothing below; the writer checks */
    char fp[PC_SSHKEY_FP_SIZE]; /* the key it was checked with */
    unsigned char chal[CHALLENGE_BYTES];
    struct pc_sshkey *key;     /* that key, parsed: the certificate's subject */
    enum pc_sshsig_result why; /* PC_SSHSIG_OK: the signature is right */
};

static int proof_fits(const struct proof *p, const struct login_row *l)
{
    return p && p->checked && strcmp(p->fp, l->fp) == 0 &&
           memcmp(p->chal, l->chal, sizeof p->chal) == 0;
}

static void verify(const struct login_row *l, const char *sig, const struct pc_sshkey *key,
                   enum pc_sshsig_result *why)
{
    *why = PC_SSHSIG_MALFORMED;
    if (pc_sshsig_verify(sig, strlen(sig), l->chal, sizeof l->chal, key, PC_SSHSIG_NAMESPACE_LOGIN,
                         why) == PC_OK)
        *why = PC_SSHSIG_OK;
    else if (*why == PC_SSHSIG_OK) /* failed without saying why: not a proof */
        *why = PC_SSHSIG_MALFORMED;
}

/* Outside the transaction (a read on the caller's connection): what the writer may take. */
static void proof_check(cp_conn *db, const struct login_row *l, const char *sig, struct proof *p)
{
    struct cp_user_rec u;

    memset(p, 0, sizeof *p);
    if (cp_user_load(db, l->user, &u) != PC_OK)
        return;
    if (u.enabled && cp_userkey_find(db, u.id, l->fp, &p->key) == PC_OK) {
        verify(l, sig, p->key, &p->why);
        snprintf(p->fp, sizeof p->fp, "%s", l->fp);
        memcpy(p->chal, l->chal, sizeof p->chal);
        p->checked = 1;
    }
    pc_wipe(&u, sizeof u);
}

static void proof_free(struct proof *p)
{
    pc_sshkey_free(p->key);
    pc_wipe(p, sizeof *p);
}

/* The key proof: the user is enabled, the key still registered, the signature right (sig
 * NULL: only the first two, when an approved push is collected). p: the signature as checked
 * before the transaction (NULL: none). */
static void check_proof(cp_conn *db, const struct login_row *l, const char *sig,
                        const struct proof *p, struct cp_cert_login_finish_res *res)
{
    struct cp_user_rec u;
    struct pc_sshkey *key = NULL;
    enum pc_sshsig_result why = PC_SSHSIG_OK;
    static const char *const names[] = { "ok", "malformed_signature", "wrong_key",
                                         "wrong_namespace", "bad_signature" };

    if (cp_user_load(db, l->user, &u) != PC_OK || !u.enabled)
        refuse(res, 401, "unauthorized", "disabled", "the user is unknown or disabled");
    else if (cp_userkey_find(db, u.id, l->fp, sig && !proof_fits(p, l) ? &key : NULL) != PC_OK)
        refuse(res, 401, "unauthorized", "unregistered_key", "the key is no longer registered");
    else if (sig && proof_fits(p, l))
        why = p->why;
    else if (sig)
        verify(l, sig, key, &why);
    if (why != PC_SSHSIG_OK)
        refuse(res, 401, "unauthorized", names[why <= PC_SSHSIG_BAD_SIGNATURE ? why : 1],
               "the signature does not prove possession of the registered key for this login");
    pc_sshkey_free(key);
    pc_wipe(&u, sizeof u);
}

/* The session remembers its key: deleting the key ends it. until (0: none) caps its expiry. */
static int create_session(cp_conn *db, const struct login_row *l, int64_t until,
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
static int issue(cp_conn *db, const struct login_row *l, const struct cp_login_terms *t,
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
static int check_policy(cp_conn *db, const struct login_row *l, struct cp_login_terms *t,
                        struct cp_cert_login_finish_res *res)
{
    char msg[160];
    int rc;

    if (cp_ca_key_id_revoked(db, l->user)) {
        refuse(res, 403, "forbidden", "revoked", "certificates for this user are revoked");
        return PC_OK;
    }
    if ((rc = cp_policy_login_terms(db, l->user, t)) != PC_OK)
        return rc;
    if (!t->named) {
        snprintf(msg, sizeof msg, "no policy allows %s to log in anywhere", l->user);
        refuse(res, 403, "forbidden", "no_policy", msg);
    } else if (t->conflict) {
        snprintf(msg, sizeof msg, "the rules that name %s disagree on %s: make them agree", l->user,
                 t->conflict);
        refuse(res, 403, "forbidden", "policy_conflict", msg);
    }
    return PC_OK;
}

/* A push login: the transaction (txid = login id, no host) and its push, in this transaction.
 * The login stays open and lives at least until the push ends plus COLLECT_GRACE. */
static int send_push(cp_conn *db, const char *id, const struct login_row *l, const char *source,
                     struct cp_cert_login_finish_res *res)
{
    struct cp_user_rec u;
    char actor[80];
    cp_stmt *st;
    int rc, may_push;

    if ((rc = cp_user_load(db, l->user, &u)) != PC_OK)
        return rc;
    may_push = u.push;
    pc_wipe(&u, sizeof u);
    if (!may_push) {
        refuse(res, 401, "unauthorized", "no_push",
               "push approval is off for this user: use a code");
        return PC_OK;
    }
    if (!(st = cp_prepare(db,
                          "INSERT INTO transactions(txid, host_id, user_name, rhost, service,"
                          " state, created_at, expires_at) VALUES (?,NULL,?,?,'portcullis-login',"
                          "'open',?,?)")))
        return PC_ERR_STORE;
    cp_bind_text(st, 1, id);
    cp_bind_text(st, 2, l->user);
    cp_bind_text(st, 3, source);
    cp_bind_int64(st, 4, pc_now());
    cp_bind_int64(st, 5, l->expires_at);
    if ((rc = cp_exec_stmt(st)) != PC_OK)
        return rc;
    snprintf(actor, sizeof actor, "user:%.64s", l->user);
    if ((rc = cp_push_insert(db, id, l->user, 0, NULL, actor, source, &res->push)) != PC_OK)
        return rc;
    for (int i = 0; i < 2; i++) { /* the transaction lasts as long as its push */
        if (!(st = cp_prepare(db, i ? "UPDATE logins SET expires_at = CASE WHEN expires_at > ?1"
                                      " THEN expires_at ELSE ?1 END WHERE id = ?2"
                                    : "UPDATE transactions SET expires_at = ?1 WHERE txid = ?2")))
            return PC_ERR_STORE;
        cp_bind_int64(st, 1, res->push.expires_at + (i ? COLLECT_GRACE : 0));
        cp_bind_text(st, 2, id);
        if ((rc = cp_exec_stmt(st)) != PC_OK)
            return rc;
    }
    res->status = 202;
    res->reason = "push_sent";
    return PC_OK;
}

/* After the proof: revocation, policy, the code (or the push), then the certificate. */
static int decide(cp_conn *db, const char *id, const struct login_row *l, const char *code,
                  int push, const char *source, const struct proof *p,
                  struct cp_cert_login_finish_res *res)
{
    struct cp_login_terms t;
    const char *result = "deny", *reason = "wrong_code";
    int rc;

    if ((rc = check_policy(db, l, &t, res)) != PC_OK || res->status)
        return rc;
    if (push)
        return send_push(db, id, l, source, res);
    if ((rc = cp_totp_judge(db, l->user, 0, code, &result, &reason)) != PC_OK)
        return rc;
    if (strcmp(result, "allow") != 0) {
        refuse(res, 401, "unauthorized", reason, "the code was not accepted");
        return PC_OK;
    }
    res->status = 200;
    res->reason = "totp_ok";
    if ((rc = issue(db, l, &t, 0, "totp", source, proof_fits(p, l) ? p->key : NULL, res)) == PC_OK)
        rc = set_login_state(db, id, "done");
    return rc;
}

/* The push of a login (txid = login id): PC_ERR_NOTFOUND when it has none. *approver: when
 * the credential that approved it expires (0: never). */
static int load_push(cp_conn *db, const char *login_id, char id[CP_PUSH_ID_LEN + 1], char state[16],
                     int64_t *expires_at, int64_t *approver)
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
static int login_known(cp_conn *db, const char *id)
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

struct finish_job {
    const char *source, *login_id, *signature, *code;
    int push;
    struct cp_cert_login_finish_res *res;
    struct login_row l;
    struct proof proof;
};

static int finish_in_tx(cp_conn *db, void *arg)
{
    struct finish_job *j = arg;
    struct cp_cert_login_finish_res *res = j->res;
    struct login_row *l = &j->l;
    char pid[CP_PUSH_ID_LEN + 1], pstate[16];
    int64_t pexp, approver;
    int rc;

    if ((rc = load_login(db, j->login_id, l)) == PC_ERR_NOTFOUND) {
        refuse(res, 404, "not_found", "unknown_login", "no such login");
        return PC_OK;
    }
    if (rc != PC_OK)
        return rc;
    if (strcmp(l->state, "open") != 0 || l->expires_at <= pc_now()) {
        refuse(res, 410, "gone", "finished", "the login is finished or expired; start a new one");
        return PC_OK;
    }
    if ((rc = load_push(db, j->login_id, pid, pstate, &pexp, &approver)) != PC_ERR_NOTFOUND) {
        if (rc == PC_OK)
            refuse(res, 410, "gone", "push_sent",
                   "a push was already sent for this login: "
                   "poll GET /v1/login/ID, or start a new login");
        return rc;
    }
    check_proof(db, l, j->signature, &j->proof, res);
    if (res->status) /* a failed proof ends the login: sign a fresh challenge */
        rc = set_login_state(db, j->login_id, "failed");
    else
        rc = decide(db, j->login_id, l, j->code, j->push, j->source, &j->proof, res);
    if (rc == PC_OK && res->status == 403)
        rc = set_login_state(db, j->login_id, "failed");
    if (rc == PC_OK && res->status != 202) /* a push sent is audited push.create */
        rc = audit_login(db, "login.finish", l->user, res->status == 200 ? "allow" : "deny",
                         res->reason, j->login_id, j->source);
    return rc;
}

/* Before the write, a plain read on the caller's connection: in WAL mode it takes no write
 * lock, so unauthenticated callers naming random ids (login/finish is open to anyone) cannot
 * queue up for the write lock that hosts' logins need; and the signature of a login that
 * exists is checked here, off the writer. 1: no such login, answered (404); 0: write next. */
static int finish_read(struct finish_job *j)
{
    cp_conn *db = cp_db();
    int rc = PC_ERR_STORE;

    memset(j->res, 0, sizeof *j->res);
    if (!db)
        return 0;
    int snap = cp_read_begin(db) == PC_OK; /* the login, the user and the key: one snapshot */
    if ((rc = load_login(db, j->login_id, &j->l)) == PC_OK && strcmp(j->l.state, "open") == 0)
        proof_check(db, &j->l, j->signature, &j->proof);
    if (snap)
        cp_read_end(db);
    if (rc == PC_ERR_NOTFOUND)
        refuse(j->res, 404, "not_found", "unknown_login", "no such login");
    return rc == PC_ERR_NOTFOUND;
}

/* After the write (rc its result): what the committed answer sets off, then the job's wipe. */
static int finish_end(struct finish_job *j, int rc)
{
    struct cp_cert_login_finish_res *res = j->res;

    if (rc == PC_OK && res->status != 202) /* as audited login.finish, once committed */
        pc_metric_inc(&cp_m_decisions, "login", res->status == 200 ? "allow" : "deny",
                      res->reason ? res->reason : "-");
    if (rc == PC_OK && res->status == 202)
        cp_push_announce(&res->push, j->l.user, NULL);
    if (rc != PC_OK)
        cp_cert_login_finish_res_wipe(res);
    pc_wipe(&j->l, sizeof j->l);
    proof_free(&j->proof);
    return rc;
}

int cp_cert_login_finish(const char *source, const char *login_id, const char *signature,
                         const char *code, int push, struct cp_cert_login_finish_res *res)
{
    struct finish_job j = { .source = source,
                            .login_id = login_id,
                            .signature = signature,
                            .code = code,
                            .push = push,
                            .res = res };

    if (finish_read(&j))
        return finish_end(&j, PC_OK);
    return finish_end(&j, cp_store_write(finish_in_tx, &j));
}

/* cp_cert_login_finish_then's job, and what to call after. */
struct finish_then {
    struct finish_job j; /* first: finish_in_tx takes a pointer to it */
    cp_cert_login_then_fn done;
    void *ctx;
};

static void finish_then_done(void *arg, int rc)
{
    struct finish_then *t = arg;

    t->done(t->ctx, finish_end(&t->j, rc));
    free(t);
}

int cp_cert_login_finish_then(const char *source, const char *login_id, const char *signature,
                              const char *code, int push, struct cp_cert_login_finish_res *res,
                              cp_cert_login_then_fn done, void *ctx)
{
    struct finish_then *t = calloc(1, sizeof *t);
    int rc;

    if (!t) {
        memset(res, 0, sizeof *res);
        return PC_ERR_NOMEM;
    }
    t->j = (struct finish_job){ .source = source,
                                .login_id = login_id,
                                .signature = signature,
                                .code = code,
                                .push = push,
                                .res = res };
    t->done = done;
    t->ctx = ctx;
    if (finish_read(&t->j)) { /* answered now */
        finish_then_done(t, PC_OK);
        return PC_OK;
    }
    if ((rc = cp_store_write_then(finish_in_tx, &t->j, 0, finish_then_done)) != PC_OK) {
        finish_end(&t->j, rc);
        free(t);
    }
    return rc;
}

void cp_cert_login_finish_res_wipe(struct cp_cert_login_finish_res *res)
{
    cp_issued_free(&res->cert);
    pc_wipe(res->session, sizeof res->session);
}

/* An open login whose push has ended (collect mode, in the caller's transaction): the
 * certificate once approved and still allowed, else the end of the login. Audited. */
static int conclude(cp_conn *db, const char *id, const struct login_row *l, const char *pstate,
                    int64_t approver, const char *source, struct cp_cert_login_poll_res *res)
{
    struct cp_cert_login_finish_res *f = &res->fin;
    struct cp_login_terms t;
    int rc = PC_OK;

    if (strcmp(pstate, "approved") != 0)
        refuse(f, 401, "unauthorized",
               strcmp(pstate, "expired") == 0 ? "push_expired" : "push_denied",
               strcmp(pstate, "expired") == 0 ? "the push expired" : "the push was denied");
    else if (l->expires_at <= pc_now())
        refuse(f, 410, "gone", "expired", "the login expired before the certificate was fetched");
    else if (approver > 0 && approver <= pc_now()) /* nothing may outlive the approver */
        refuse(f, 401, "unauthorized", "approver_expired",
               "the credential that approved the push expired before the certificate was fetched");
    else
        check_proof(db, l, NULL, NULL, f); /* the user and key may have changed since */
    if (!f->status)
        rc = check_policy(db, l, &t, f);
    if (rc == PC_OK && !f->status) {
        f->status = 200;
        f->reason = "push_approved";
        if ((rc = issue(db, l, &t, approver, "push", source, NULL, f)) == PC_OK)
            rc = set_login_state(db, id, "done");
    } else if (rc == PC_OK) {
        rc = set_login_state(db, id, "failed");
    }
    if (rc == PC_OK)
        rc = audit_login(db, "login.finish", l->user, f->status == 200 ? "allow" : "deny",
                         f->reason, id, source);
    snprintf(res->state, sizeof res->state, "%s",
             f->status == 200                                     ? "approved"
             : strcmp(pstate, "expired") == 0 || f->status == 410 ? "expired"
                                                                  : "denied");
    return rc;
}

int cp_cert_login_poll(const char *source, const char *login_id, int collect,
                       struct cp_cert_login_poll_res *res)
{
    cp_conn *db = cp_db();
    struct login_row l;
    char pstate[16] = "";
    int64_t pexp = 0, approver = 0, now = pc_now();
    int rc;

    memset(res, 0, sizeof *res);
    if (db && login_known(db, login_id) == 0)
        return PC_ERR_NOTFOUND; /* as load_login would say, without the write lock */
    if (!db || cp_tx_begin(db) != PC_OK)
        return PC_ERR_STORE;
    if ((rc = load_login(db, login_id, &l)) != PC_OK)
        goto out;
    res->expires_at = l.expires_at;
    rc = load_push(db, login_id, res->push_id, pstate, &pexp, &approver);
    if (rc != PC_OK && rc != PC_ERR_NOTFOUND)
        goto out;
    if (rc == PC_ERR_NOTFOUND) /* a TOTP login, or one not finished yet */
        snprintf(res->state, sizeof res->state, "%s",
                 strcmp(l.state, "done") == 0     ? "approved"
                 : strcmp(l.state, "failed") == 0 ? "denied"
                 : l.expires_at <= now            ? "expired"
                                                  : "pending");
    else if (strcmp(l.state, "done") == 0)
        snprintf(res->state, sizeof res->state, "done");
    else if (strcmp(l.state, "failed") == 0)
        snprintf(res->state, sizeof res->state, "%s",
                 strcmp(pstate, "expired") == 0 ? "expired" : "denied");
    else if (strcmp(pstate, "pending") == 0)
        snprintf(res->state, sizeof res->state, "%s",
                 pexp <= now || l.expires_at <= now ? "expired" : "pending");
    else if (!collect)
        snprintf(res->state, sizeof res->state, "%s", pstate);
    else if ((rc = conclude(db, login_id, &l, pstate, approver, source, res)) == PC_OK)
        rc = cp_tx_commit(db);
    rc = rc == PC_ERR_NOTFOUND ? PC_OK : rc;
out:
    if (cp_autocommit(db) == 0)
        cp_tx_rollback(db);
    if (rc != PC_OK)
        cp_cert_login_finish_res_wipe(&res->fin);
    pc_wipe(&l, sizeof l);
    return rc;
}
