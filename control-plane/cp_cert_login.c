/* SPDX-License-Identifier: BSD-2-Clause */
/* login/start (a challenge for a registered key) and login/finish (the signed challenge and a
 * code, or a push sent): the transactions, and their answers by the store's writer. The shared
 * steps are in cp_cert_login_steps.c, the key proof in cp_cert_login_proof.c, the poll of a
 * push login in cp_cert_login_poll.c. */
#include "config.h"
#include "cp_cert_login.h"
#include "cp_cert_login_int.h"
#include "cp_authtx.h"
#include "cp_metrics.h"
#include "cp_policy.h"
#include "cp_refusals.h"
#include "cp_store.h"
#include "cp_userkeys.h"
#include "pc_err.h"
#include "pc_mem.h"
#include "pc_sshbuf.h"
#include "pc_time.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COLLECT_GRACE 60 /* seconds to fetch the certificate after the push ends */

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
    cp_bind_blob(st, 4, chal, CP_LOGIN_CHALLENGE_BYTES);
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
    unsigned char chal[CP_LOGIN_CHALLENGE_BYTES];
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
        rc = cp_login_audit(db, "login.start", j->user, "deny", why, NULL, j->source);
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
    rc = cp_login_audit(db, "login.start", j->user, "ok", j->fp, res->login_id, j->source);
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

/* A push login: the transaction (txid = login id, no host) and its push, in this transaction.
 * The login stays open and lives at least until the push ends plus COLLECT_GRACE. */
static int send_push(cp_conn *db, const char *id, const struct cp_login_row *l, const char *source,
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
        cp_login_refuse(res, 401, "unauthorized", "no_push",
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
static int decide(cp_conn *db, const char *id, const struct cp_login_row *l, const char *code,
                  int push, const char *source, const struct cp_login_proof *p,
                  struct cp_cert_login_finish_res *res)
{
    struct cp_login_terms t;
    const char *result = "deny", *reason = "wrong_code";
    int rc;

    if ((rc = cp_login_check_policy(db, l, &t, res)) != PC_OK || res->status)
        return rc;
    if (push)
        return send_push(db, id, l, source, res);
    if ((rc = cp_totp_judge(db, l->user, 0, code, &result, &reason)) != PC_OK)
        return rc;
    if (strcmp(result, "allow") != 0) {
        cp_login_refuse(res, 401, "unauthorized", reason, "the code was not accepted");
        return PC_OK;
    }
    res->status = 200;
    res->reason = "totp_ok";
    if ((rc = cp_login_issue(db, l, &t, 0, "totp", source,
                             cp_login_proof_fits(p, l) ? p->key : NULL, res)) == PC_OK)
        rc = cp_login_set_state(db, id, "done");
    return rc;
}

struct finish_job {
    const char *source, *login_id, *signature, *code;
    int push;
    struct cp_cert_login_finish_res *res;
    struct cp_login_row l;
    struct cp_login_proof proof;
};

static int finish_in_tx(cp_conn *db, void *arg)
{
    struct finish_job *j = arg;
    struct cp_cert_login_finish_res *res = j->res;
    struct cp_login_row *l = &j->l;
    char pid[CP_PUSH_ID_LEN + 1], pstate[16];
    int64_t pexp, approver;
    int rc;

    if ((rc = cp_login_load(db, j->login_id, l)) == PC_ERR_NOTFOUND) {
        cp_login_refuse(res, 404, "not_found", "unknown_login", "no such login");
        return PC_OK;
    }
    if (rc != PC_OK)
        return rc;
    if (strcmp(l->state, "open") != 0 || l->expires_at <= pc_now()) {
        cp_login_refuse(res, 410, "gone", "finished",
                        "the login is finished or expired; start a new one");
        return PC_OK;
    }
    if ((rc = cp_login_load_push(db, j->login_id, pid, pstate, &pexp, &approver)) !=
        PC_ERR_NOTFOUND) {
        if (rc == PC_OK)
            cp_login_refuse(res, 410, "gone", "push_sent",
                            "a push was already sent for this login: "
                            "poll GET /v1/login/ID, or start a new login");
        return rc;
    }
    cp_login_check_proof(db, l, j->signature, &j->proof, res);
    if (res->status) /* a failed proof ends the login: sign a fresh challenge */
        rc = cp_login_set_state(db, j->login_id, "failed");
    else
        rc = decide(db, j->login_id, l, j->code, j->push, j->source, &j->proof, res);
    if (rc == PC_OK && res->status == 403)
        rc = cp_login_set_state(db, j->login_id, "failed");
    if (rc == PC_OK && res->status != 202) /* a push sent is audited push.create */
        rc = cp_login_audit(db, "login.finish", l->user, res->status == 200 ? "allow" : "deny",
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
    if ((rc = cp_login_load(db, j->login_id, &j->l)) == PC_OK && strcmp(j->l.state, "open") == 0)
        cp_login_proof_check(db, &j->l, j->signature, &j->proof);
    if (snap)
        cp_read_end(db);
    if (rc == PC_ERR_NOTFOUND)
        cp_login_refuse(j->res, 404, "not_found", "unknown_login", "no such login");
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
    cp_login_proof_free(&j->proof);
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
