/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "cp_authtx.h"
#include "cp_explain.h"
#include "cp_audit.h"
#include "cp_ca.h"
#include "cp_ca_keys.h"
#include "cp_policy.h"
#include "cp_push.h"
#include "cp_store.h"
#include "cp_users.h"
#include "pc_err.h"
#include "pc_log.h"
#include "pc_mem.h"
#include "pc_rand.h"
#include "pc_time.h"
#include "pc_totp.h"
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct cp_authtx_limits limits = { 1, 300, 5, 30, 3600, NULL, 20 };

void cp_authtx_configure(const struct cp_authtx_limits *lim)
{
    limits = *lim;
}

static void host_actor(const struct cp_identity *host, char *buf, size_t n)
{
    snprintf(buf, n, "host:%lld", (long long)host->host_id);
}

int cp_authtx_load_open(cp_conn *db, int64_t host_id, const char *txid, char *user, size_t usersz)
{
    cp_stmt *st = cp_prepare(db, "SELECT user_name, state, expires_at FROM transactions"
                                 " WHERE txid = ? AND host_id = ?");
    int rc;

    if (!st)
        return PC_ERR_STORE;
    cp_bind_text(st, 1, txid);
    cp_bind_int64(st, 2, host_id);
    rc = cp_step(st);
    if (rc == CP_ROW) {
        snprintf(user, usersz, "%s", cp_col_text(st, 0));
        if (strcmp(cp_col_text(st, 1), "open") != 0 || cp_col_int64(st, 2) <= pc_now())
            rc = PC_ERR_STATE;
        else
            rc = PC_OK;
    } else {
        rc = rc == CP_DONE ? PC_ERR_NOTFOUND : PC_ERR_STORE;
    }
    cp_finalize(st);
    return rc;
}

int cp_authtx_set_state(cp_conn *db, const char *txid, const char *state)
{
    cp_stmt *st = cp_prepare(db, "UPDATE transactions SET state = ? WHERE txid = ?");
    if (!st)
        return PC_ERR_STORE;
    cp_bind_text(st, 1, state);
    cp_bind_text(st, 2, txid);
    return cp_exec_stmt(st);
}

/* The person logging in: the key id of a certificate from our user CA in auth_info (sshd's
 * SSH_AUTH_INFO_0), else the PAM user. */
static void person_of(const struct cp_begin_req *req, char *out, size_t n)
{
    struct pc_cert *cert = NULL;

    snprintf(out, n, "%s", req->user);
    if (!req->auth_info || pc_cert_parse_auth_info(req->auth_info, &cert) != PC_OK)
        return;
    if (cert->type == PC_CERT_USER && cp_ca_user_trusts(cert->ca) && cert->key_id &&
        strlen(cert->key_id) < n && cp_user_name_valid(cert->key_id))
        snprintf(out, n, "%s", cert->key_id);
    pc_cert_free(cert);
}

/* ---- issue 13: the certificate as the second factor ---------------------------------------- */

/* 1 if serial is a user certificate we issued to key_id and have not revoked. */
static int cert_issued_live(cp_conn *db, uint64_t serial, const char *key_id)
{
    cp_stmt *st = cp_prepare(db, "SELECT 1 FROM certs WHERE serial = ? AND kind = 'user'"
                                 " AND key_id = ? AND revoked_at = 0");
    int found;

    if (!st || serial >= PC_CERT_SERIAL_LIMIT)
        return 0;
    cp_bind_int64(st, 1, (int64_t)serial);
    cp_bind_text(st, 2, key_id);
    found = cp_step(st) == CP_ROW;
    cp_finalize(st);
    return found;
}

/* 1 if the certificate sshd verified in the publickey step (auth_info: sshd's SSH_AUTH_INFO_0,
 * which holds only methods that succeeded, so the client cannot name a certificate it did not
 * sign with) proves person's second factor: from our user CA, key id and principal person,
 * valid now, issued by us and not revoked (by serial, key id or a disabled user), carrying
 * PC_CERT_EXT_2FA with a time not in the future. */
static int cert_proves_2fa(cp_conn *db, const struct cp_begin_req *req, const char *person)
{
    struct pc_cert *cert = NULL;
    int64_t at = 0, now = pc_now();
    char method[16];
    int ok;

    if (!req->auth_info || pc_cert_parse_auth_info(req->auth_info, &cert) != PC_OK)
        return 0;
    ok = cert->type == PC_CERT_USER && cp_ca_user_trusts(cert->ca) && cert->key_id &&
         strcmp(cert->key_id, person) == 0 && pc_cert_has_principal(cert, person) &&
         pc_cert_valid_at(cert, now) && pc_cert_2fa(cert, &at, method) == PC_OK && at <= now &&
         cert_issued_live(db, cert->serial, person) && !cp_ca_key_id_revoked(db, person);
    pc_cert_free(cert);
    return ok;
}

/* A challenge becomes allow (reason certificate_2fa) where every rule for (person, account,
 * host) says per-certificate and the certificate proves the second factor. */
static int cert_2fa_decide(cp_conn *db, const struct cp_begin_req *req, const char *person,
                           int64_t host_id, struct cp_begin_res *res)
{
    int per_cert = 0, rc;

    if (!req->auth_info)
        return PC_OK;
    if ((rc = cp_policy_per_certificate(db, person, req->user, host_id, &per_cert)) != PC_OK)
        return rc;
    if (per_cert && cert_proves_2fa(db, req, person)) {
        res->action = "allow";
        res->reason = "certificate_2fa";
        res->totp = res->push = 0;
    }
    return PC_OK;
}

/* ---- end of issue 13 ------------------------------------------------------------------------- */

/* What begin answers for a user record (or its absence). */
static void decide(cp_conn *db, int found, const struct cp_user_rec *u, int no_2fa,
                   struct cp_begin_res *res)
{
    res->totp = res->push = 0;
    if (!found) {
        res->action = "deny";
        res->reason = "unknown_user";
    } else if (!u->enabled) {
        res->action = "deny";
        res->reason = "disabled";
    } else if (no_2fa) {
        /* Every matching rule says require_2fa false: PAM_IGNORE, like --exempt-group. */
        res->action = "ignore";
        res->reason = "policy_no_2fa";
    } else if (limits.exempt_group && *limits.exempt_group &&
               cp_user_in_group(db, u->id, limits.exempt_group)) {
        /* Not "allow": the PAM module answers PAM_IGNORE so the rest of the stack decides. */
        res->action = "ignore";
        res->reason = "exempt";
    } else {
        res->totp = u->has_totp;
        res->push = u->push;
        if (!res->totp && !res->push) {
            res->action = "deny";
            res->reason = "no_factor";
        } else {
            res->action = "challenge";
            res->reason = "second_factor_required";
        }
    }
}

struct begin_job {
    const struct cp_identity *host;
    const char *source, *person;
    const struct cp_begin_req *req;
    struct cp_begin_res *res;
    struct cp_push_new np; /* the push made with the challenge (req->push) */
};

static int begin_in_tx(cp_conn *db, void *arg)
{
    struct begin_job *j = arg;
    const struct cp_begin_req *req = j->req;
    struct cp_begin_res *res = j->res;
    struct cp_user_rec u;
    struct cp_audit_row row = {
        .action = "auth.begin", .user = j->person, .host = j->host->hostname, .source = j->source
    };
    char actor[48];
    cp_stmt *st;
    json_object *rules = NULL;
    int rc, found, no_2fa = 0;

    rc = cp_user_load(db, j->person, &u);
    if (rc != PC_OK && rc != PC_ERR_NOTFOUND)
        goto out;
    found = rc == PC_OK;
    /* The rules matching now: they decide no_2fa and are noted for explain (one evaluation). */
    if ((rc = cp_policy_matching(db, j->person, req->user, j->host->host_id, &rules)) != PC_OK)
        goto out;
    if (found && u.enabled)
        no_2fa = cp_policy_rules_no_2fa(rules);
    decide(db, found, &u, no_2fa, res);
    if (strcmp(res->action, "challenge") == 0 &&
        (rc = cert_2fa_decide(db, req, j->person, j->host->host_id, res)) != PC_OK)
        goto out;
    /* auth_info (up to 16 KB of certificate) is decided on above and read back by nothing: the
     * row keeps only what later steps need, so a begin writes a few hundred bytes. */
    st = cp_prepare(db, "INSERT INTO transactions(txid, host_id, user_name, rhost, service, tty,"
                        " state, created_at, expires_at) VALUES (?,?,?,?,?,?,?,?,?)");
    if (!st) {
        rc = PC_ERR_STORE;
        goto out;
    }
    cp_bind_text(st, 1, res->txid);
    cp_bind_int64(st, 2, j->host->host_id);
    cp_bind_text(st, 3, j->person);
    cp_bind_text(st, 4, req->rhost);
    cp_bind_text(st, 5, req->service);
    cp_bind_text(st, 6, req->tty);
    cp_bind_text(st, 7,
                 strcmp(res->action, "challenge") == 0 ? "open"
                 : strcmp(res->action, "deny") == 0    ? "denied"
                                                       : "allowed");
    cp_bind_int64(st, 8, pc_now());
    cp_bind_int64(st, 9, pc_now() + limits.tx_ttl);
    if ((rc = cp_exec_stmt(st)) != PC_OK)
        goto out;
    host_actor(j->host, actor, sizeof actor);
    row.actor = actor;
    row.result = res->action;
    row.reason = res->reason;
    row.txid = res->txid;
    if ((rc = cp_audit_add(db, &row)) != PC_OK)
        goto out;
    if ((rc = cp_explain_note_begin(db, res->txid, req->user, rules)) != PC_OK)
        goto out;
    /* The push the PAM module would ask for next (POST /v1/auth/push), made here: one round
     * trip and one commit less per login. Like that call's, it decides nothing. */
    res->pushed = 0;
    if (req->push && res->push && strcmp(res->action, "challenge") == 0) {
        if ((rc = cp_push_insert(db, res->txid, j->person, j->host->host_id, j->host->hostname,
                                 actor, j->source, &j->np)) != PC_OK)
            goto out;
        res->pushed = 1;
    }
    /* A challenge decides nothing: the login waits for its code, whose answer is synced (and
     * with it this row). Lost on a power loss, the login fails and is tried again. An answer
     * given here (allow, ignore, deny) is a decision and its audit row must last: synced. */
    if (strcmp(res->action, "challenge") == 0)
        cp_store_job_decides_nothing();
out:
    json_object_put(rules);
    pc_wipe(&u, sizeof u);
    return rc;
}

/* After the begin's commit: the push made with it goes into res and out to the phones. */
static void begin_done(struct begin_job *j)
{
    struct cp_begin_res *res = j->res;

    if (!res->pushed)
        return;
    memcpy(res->push_id, j->np.id, sizeof res->push_id);
    memcpy(res->match, j->np.match, sizeof res->match);
    res->push_expires_at = j->np.expires_at;
    cp_push_announce(&j->np, j->person, j->host->hostname);
}

int cp_authtx_begin(const struct cp_identity *host, const char *source,
                    const struct cp_begin_req *req, struct cp_begin_res *res)
{
    char person[64];
    struct begin_job j = {
        .host = host, .source = source, .person = person, .req = req, .res = res
    };
    int rc;

    if ((rc = pc_ordered_id(res->txid, sizeof res->txid, 16)) != PC_OK)
        return rc;
    person_of(req, person, sizeof person);
    if ((rc = cp_store_write_pending(begin_in_tx, &j)) != PC_OK)
        return rc;
    begin_done(&j);
    return PC_OK;
}

/* cp_authtx_begin_then's job: the begin's, and what to call after. */
struct begin_then {
    struct begin_job j; /* first: begin_in_tx takes a pointer to it */
    char person[64];
    cp_authtx_then_fn done;
    void *ctx;
};

static void begin_then_done(void *arg, int rc)
{
    struct begin_then *b = arg;

    if (rc == PC_OK)
        begin_done(&b->j);
    b->done(b->ctx, rc);
    free(b);
}

int cp_authtx_begin_then(const struct cp_identity *host, const char *source,
                         const struct cp_begin_req *req, struct cp_begin_res *res,
                         cp_authtx_then_fn done, void *ctx)
{
    struct begin_then *b;
    int rc;

    if ((rc = pc_ordered_id(res->txid, sizeof res->txid, 16)) != PC_OK)
        return rc;
    if (!(b = calloc(1, sizeof *b)))
        return PC_ERR_NOMEM;
    person_of(req, b->person, sizeof b->person);
    b->j = (struct begin_job){
        .host = host, .source = source, .person = b->person, .req = req, .res = res
    };
    b->done = done;
    b->ctx = ctx;
    if ((rc = cp_store_write_then(begin_in_tx, &b->j, 1, begin_then_done)) != PC_OK)
        free(b);
    return rc;
}

/* The lock after `over` failures beyond a threshold: base, doubled per further failure, capped. */
static int64_t backoff(int64_t over)
{
    int64_t lock = limits.lockout_base;
    for (int64_t i = 0; i < over && lock < limits.lockout_max; i++)
        lock *= 2;
    return lock > limits.lockout_max ? limits.lockout_max : lock;
}

/* This (person, host)'s live count and lock; zeros when none or past the window. */
static int host_failures(cp_conn *db, int64_t user_id, int64_t host_id, int64_t *failures,
                         int64_t *locked_until)
{
    cp_stmt *st = cp_prepare(db, "SELECT failures, locked_until FROM auth_failures"
                                 " WHERE user_id = ?1 AND host_id = ?2"
                                 " AND (last_failure_at >= ?3 OR locked_until >= ?3)");
    int rc;

    *failures = *locked_until = 0;
    if (!st)
        return PC_ERR_STORE;
    cp_bind_int64(st, 1, user_id);
    cp_bind_int64(st, 2, host_id);
    cp_bind_int64(st, 3, pc_now() - CP_LOCKOUT_WINDOW);
    rc = cp_step(st);
    if (rc == CP_ROW) {
        *failures = cp_col_int64(st, 0);
        *locked_until = cp_col_int64(st, 1);
    }
    cp_finalize(st);
    return rc == CP_ROW || rc == CP_DONE ? PC_OK : PC_ERR_STORE;
}

/* The fleet-wide count: each host counts at most lockout_threshold, so one host alone, however
 * long it keeps guessing, never reaches lockout_fleet_threshold (which is larger). */
static int fleet_failures(cp_conn *db, int64_t user_id, int64_t *n)
{
    cp_stmt *st =
        cp_prepare(db, "SELECT COALESCE(SUM(CASE WHEN failures < ?1 THEN failures ELSE ?1 END), 0)"
                       " FROM auth_failures"
                       " WHERE user_id = ?2 AND (last_failure_at >= ?3 OR locked_until >= ?3)");
    int rc;

    *n = 0;
    if (!st)
        return PC_ERR_STORE;
    cp_bind_int64(st, 1, limits.lockout_threshold);
    cp_bind_int64(st, 2, user_id);
    cp_bind_int64(st, 3, pc_now() - CP_LOCKOUT_WINDOW);
    rc = cp_step(st);
    if (rc == CP_ROW)
        *n = cp_col_int64(st, 0);
    cp_finalize(st);
    return rc == CP_ROW ? PC_OK : PC_ERR_STORE;
}

/* Counts a failure of the person on host_id (0: `portcullis login`). Past lockout_threshold the
 * person is locked on that host; past lockout_fleet_threshold (summed over hosts, see above)
 * on every host. Both locks back off by doubling. */
static int record_failure(cp_conn *db, const struct cp_user_rec *u, int64_t host_id)
{
    int64_t failures = 0, lock = 0, fleet = 0, now = pc_now();
    cp_stmt *st;
    int rc;

    if ((rc = host_failures(db, u->id, host_id, &failures, &lock)) != PC_OK)
        return rc;
    failures++;
    lock = failures >= limits.lockout_threshold ? now + backoff(failures - limits.lockout_threshold)
                                                : 0;
    st = cp_prepare(db,
                    "INSERT INTO auth_failures(user_id, host_id, failures, last_failure_at,"
                    " locked_until) VALUES (?,?,?,?,?) ON CONFLICT (user_id, host_id) DO UPDATE"
                    " SET failures = excluded.failures, last_failure_at = excluded.last_failure_at,"
                    " locked_until = excluded.locked_until");
    if (!st)
        return PC_ERR_STORE;
    cp_bind_int64(st, 1, u->id);
    cp_bind_int64(st, 2, host_id);
    cp_bind_int64(st, 3, failures);
    cp_bind_int64(st, 4, now);
    cp_bind_int64(st, 5, lock);
    if ((rc = cp_exec_stmt(st)) != PC_OK || (rc = fleet_failures(db, u->id, &fleet)) != PC_OK)
        return rc;
    if (fleet < limits.lockout_fleet_threshold)
        return PC_OK;
    st = cp_prepare(db, "UPDATE users SET locked_until = ? WHERE id = ?");
    if (!st)
        return PC_ERR_STORE;
    cp_bind_int64(st, 1, now + backoff(fleet - limits.lockout_fleet_threshold));
    cp_bind_int64(st, 2, u->id);
    if ((rc = cp_exec_stmt(st)) == PC_OK)
        pc_log(PC_LOG_WARN, "event=fleet_lock user_id=%lld failures=%lld", (long long)u->id,
               (long long)fleet);
    return rc;
}

/* Records the accepted step only if it is newer than any accepted before: the replay guard.
 * A fresh step also ends this host's count (other hosts' counts stay: a success here says
 * nothing about the codes another host sent). */
static int mark_step_used(cp_conn *db, const struct cp_user_rec *u, int64_t host_id, uint64_t step,
                          int *fresh)
{
    cp_stmt *st = cp_prepare(db, "UPDATE users SET totp_last_step = ?, locked_until = 0"
                                 " WHERE id = ? AND totp_last_step < ?");
    int rc;

    if (!st)
        return PC_ERR_STORE;
    cp_bind_int64(st, 1, (int64_t)step);
    cp_bind_int64(st, 2, u->id);
    cp_bind_int64(st, 3, (int64_t)step);
    rc = cp_exec_stmt(st);
    *fresh = rc == PC_OK && cp_changes(db) == 1;
    if (!*fresh)
        return rc;
    if (!(st = cp_prepare(db, "DELETE FROM auth_failures WHERE user_id = ? AND host_id = ?")))
        return PC_ERR_STORE;
    cp_bind_int64(st, 1, u->id);
    cp_bind_int64(st, 2, host_id);
    return cp_exec_stmt(st);
}

int cp_totp_judge(cp_conn *db, const char *user, int64_t host_id, const char *code,
                  const char **result, const char **reason)
{
    struct cp_user_rec u;
    unsigned char seed[64];
    size_t seedlen = 0;
    uint64_t step = 0;
    int64_t host_fails = 0, host_lock = 0;
    int rc, fresh = 0;

    *result = "deny";
    rc = cp_user_load(db, user, &u);
    if (rc == PC_ERR_NOTFOUND) {
        *reason = "unknown_user";
        return PC_OK;
    }
    if (rc != PC_OK || (rc = host_failures(db, u.id, host_id, &host_fails, &host_lock)) != PC_OK)
        goto out;
    if (!u.enabled) {
        *reason = "disabled";
    } else if (!u.has_totp) {
        *reason = "no_totp";
    } else if (u.locked_until > pc_now()) {
        *reason = "locked_fleet"; /* failures from several hosts: locked everywhere */
    } else if (host_lock > pc_now()) {
        *reason = "locked"; /* failures from this host: locked here */
    } else if ((rc = cp_user_open_seed(user, &u, seed, sizeof seed, &seedlen)) != PC_OK) {
        pc_log(PC_LOG_ERR, "event=seed_open_failed user=%s (wrong secrets.key?)", user);
        *reason = "internal";
        rc = PC_OK;
    } else {
        rc = pc_totp_verify(seed, seedlen, pc_now(), limits.totp_window, code, &step);
        if (rc == PC_OK) {
            rc = mark_step_used(db, &u, host_id, step, &fresh);
            if (rc == PC_OK && fresh) {
                *result = "allow";
                *reason = "totp_ok";
            } else if (rc == PC_OK) {
                *reason = "replayed";
                rc = record_failure(db, &u, host_id);
            }
        } else {
            *reason = "wrong_code";
            rc = record_failure(db, &u, host_id);
        }
    }
out:
    pc_wipe(seed, sizeof seed);
    pc_wipe(&u, sizeof u);
    return rc;
}

/* What an allowed transaction keeps of the code that allowed it: SHA-256 of "txid:code"
 * (the code is spent by then; the mark only recognises a resend of the same submission). */
static int code_mark(const char *txid, const char *code, char out[PC_SHA256_HEX_LEN + 1])
{
    char buf[128];
    int n = snprintf(buf, sizeof buf, "%s:%s", txid, code), rc;

    if (n < 0 || (size_t)n >= sizeof buf)
        return PC_ERR_INVAL;
    rc = pc_sha256_hex(buf, (size_t)n, out);
    pc_wipe(buf, sizeof buf);
    return rc;
}

/* A resend (the agent's first copy may have been applied on an instance that then failed):
 * PC_OK when this host's transaction is allowed, not expired, and was allowed by this very
 * code; PC_ERR_STATE otherwise (finished for another reason: a new verification would only be
 * refused as a replay). */
static int resend_of_allowed(cp_conn *db, int64_t host_id, const char *txid, const char *code,
                             char *user, size_t usersz)
{
    cp_stmt *st = cp_prepare(db, "SELECT user_name, state, expires_at, allowed_code"
                                 " FROM transactions WHERE txid = ? AND host_id = ?");
    char mark[PC_SHA256_HEX_LEN + 1];
    const char *have;
    int rc = PC_ERR_STATE;

    if (!st)
        return PC_ERR_STORE;
    if (code_mark(txid, code, mark) != PC_OK) {
        cp_finalize(st);
        return PC_ERR_STATE;
    }
    cp_bind_text(st, 1, txid);
    cp_bind_int64(st, 2, host_id);
    if (cp_step(st) == CP_ROW) {
        have = cp_col_text(st, 3);
        snprintf(user, usersz, "%s", cp_col_text(st, 0));
        if (strcmp(cp_col_text(st, 1), "allowed") == 0 && cp_col_int64(st, 2) > pc_now() &&
            strlen(have) == PC_SHA256_HEX_LEN && CRYPTO_memcmp(have, mark, PC_SHA256_HEX_LEN) == 0)
            rc = PC_OK;
    }
    cp_finalize(st);
    return rc;
}

static int set_allowed(cp_conn *db, const char *txid, const char *code)
{
    char mark[PC_SHA256_HEX_LEN + 1];
    cp_stmt *st;

    if (code_mark(txid, code, mark) != PC_OK)
        return PC_ERR_INVAL;
    st = cp_prepare(db, "UPDATE transactions SET state = 'allowed', allowed_code = ?"
                        " WHERE txid = ?");
    if (!st)
        return PC_ERR_STORE;
    cp_bind_text(st, 1, mark);
    cp_bind_text(st, 2, txid);
    return cp_exec_stmt(st);
}

struct totp_job {
    const struct cp_identity *host;
    const char *source, *txid, *code;
    int resend;
    const char **result, **reason;
};

/* One transaction from reading the replay state to recording the new step: of N concurrent
 * requests with the same code exactly one can succeed. */
static int totp_in_tx(cp_conn *db, void *arg)
{
    const struct totp_job *j = arg;
    char user[64] = "", actor[48];
    struct cp_audit_row row = {
        .action = "auth.totp", .host = j->host->hostname, .txid = j->txid, .source = j->source
    };
    int rc;

    rc = cp_authtx_load_open(db, j->host->host_id, j->txid, user, sizeof user);
    if (rc == PC_ERR_STATE && j->resend) {
        if ((rc = resend_of_allowed(db, j->host->host_id, j->txid, j->code, user, sizeof user)) !=
            PC_OK)
            return rc;
        *j->result = "allow";
        *j->reason = "totp_ok";
        row.reason = "totp_ok_resend"; /* the audit tells the repeat from a verification */
    } else if (rc != PC_OK) {
        return rc;
    } else {
        if ((rc = cp_totp_judge(db, user, j->host->host_id, j->code, j->result, j->reason)) !=
            PC_OK)
            return rc;
        if (strcmp(*j->result, "allow") == 0 && (rc = set_allowed(db, j->txid, j->code)) != PC_OK)
            return rc;
    }
    host_actor(j->host, actor, sizeof actor);
    row.actor = actor;
    row.user = user;
    row.result = *j->result;
    row.reason = row.reason ? row.reason : *j->reason;
    return cp_audit_add(db, &row);
}

int cp_authtx_totp(const struct cp_identity *host, const char *source, const char *txid,
                   const char *code, int resend, const char **result, const char **reason)
{
    struct totp_job j = { host, source, txid, code, resend, result, reason };
    return cp_store_write(totp_in_tx, &j);
}

struct totp_then {
    struct totp_job j; /* first: totp_in_tx takes a pointer to it */
    cp_authtx_then_fn done;
    void *ctx;
};

static void totp_then_done(void *arg, int rc)
{
    struct totp_then *t = arg;

    t->done(t->ctx, rc);
    free(t);
}

int cp_authtx_totp_then(const struct cp_identity *host, const char *source, const char *txid,
                        const char *code, int resend, const char **result, const char **reason,
                        cp_authtx_then_fn done, void *ctx)
{
    struct totp_then *t = calloc(1, sizeof *t);
    int rc;

    if (!t)
        return PC_ERR_NOMEM;
    t->j = (struct totp_job){ host, source, txid, code, resend, result, reason };
    t->done = done;
    t->ctx = ctx;
    if ((rc = cp_store_write_then(totp_in_tx, &t->j, 0, totp_then_done)) != PC_OK)
        free(t);
    return rc;
}
