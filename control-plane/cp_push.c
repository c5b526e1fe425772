/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "cp_push.h"
#include "cp_notify.h"
#include "cp_audit.h"
#include "cp_metrics.h"
#include "cp_authtx.h"
#include "cp_store.h"
#include "cp_waiters.h"
#include "cp_webhook.h"
#include "cp_webpush.h"
#include "pc_err.h"
#include "pc_rand.h"
#include "pc_time.h"
#include <stdio.h>
#include <string.h>

static int64_t push_ttl = 60;

void cp_push_configure(int64_t ttl)
{
    push_ttl = ttl;
}

struct push_row {
    char id[CP_PUSH_ID_LEN + 1];
    char txid[33];
    char user[64];
    char host[256];
    char match[3];
    char state[16];
    int64_t host_id, expires_at;
};

static int load(cp_conn *db, const char *where, const char *key, struct push_row *p)
{
    char sql[512];
    cp_stmt *st;
    int rc;

    snprintf(
        sql, sizeof sql,
        "SELECT p.id, p.txid, p.user_name, COALESCE(h.hostname, ''), p.match, p.state,"
        " COALESCE(p.host_id, 0), p.expires_at FROM pushes p LEFT JOIN hosts h ON h.id = p.host_id"
        " WHERE %s = ?",
        where);
    if (!(st = cp_prepare(db, sql)))
        return PC_ERR_STORE;
    cp_bind_text(st, 1, key);
    rc = cp_step(st);
    if (rc == CP_ROW) {
        snprintf(p->id, sizeof p->id, "%s", cp_col_text(st, 0));
        snprintf(p->txid, sizeof p->txid, "%s", cp_col_text(st, 1));
        snprintf(p->user, sizeof p->user, "%s", cp_col_text(st, 2));
        snprintf(p->host, sizeof p->host, "%s", cp_col_text(st, 3));
        snprintf(p->match, sizeof p->match, "%s", cp_col_text(st, 4));
        snprintf(p->state, sizeof p->state, "%s", cp_col_text(st, 5));
        p->host_id = cp_col_int64(st, 6);
        p->expires_at = cp_col_int64(st, 7);
        rc = PC_OK;
    } else {
        rc = rc == CP_DONE ? PC_ERR_NOTFOUND : PC_ERR_STORE;
    }
    cp_finalize(st);
    return rc;
}

/* Moves a pending push to a final state, with its audit row and the transaction's outcome. */
static int finish(cp_conn *db, struct push_row *p, const char *state, const char *actor,
                  const char *reason, const char *source)
{
    static const struct {
        const char *state, *action, *result, *tx;
    } map[] = {
        { "approved", "push.approve", "allow", "allowed" },
        { "denied", "push.deny", "deny", "denied" },
        { "expired", "push.expire", "deny", "denied" },
    };
    struct cp_audit_row row = { .actor = actor,
                                .user = p->user,
                                .host = p->host,
                                .reason = reason,
                                .txid = p->txid,
                                .source = source };
    cp_stmt *st;
    int rc;

    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i].state, state) == 0) {
            row.action = map[i].action;
            row.result = map[i].result;
            rc = cp_authtx_set_state(db, p->txid, map[i].tx);
            if (rc != PC_OK)
                return rc;
        }
    st = cp_prepare(
        db, "UPDATE pushes SET state = ?, decided_at = ? WHERE id = ? AND state = 'pending'");
    if (!st)
        return PC_ERR_STORE;
    cp_bind_text(st, 1, state);
    cp_bind_int64(st, 2, pc_now());
    cp_bind_text(st, 3, p->id);
    if ((rc = cp_exec_stmt(st)) != PC_OK)
        return rc;
    if (cp_changes(db) != 1)
        return PC_ERR_STATE;
    if ((rc = cp_notify_push(db, p->id)) != PC_OK) /* other instances' waiters, at commit */
        return rc;
    snprintf(p->state, sizeof p->state, "%s", state);
    pc_metric_inc(&cp_m_push_decisions,
                  strncmp(actor ? actor : "system", "session:", 8) == 0 ? "session"
                  : actor && strcmp(actor, "admin") == 0 ? "admin"
                                                         : "expiry",
                  row.result, NULL);
    pc_metric_inc(&cp_m_decisions, "push", row.result, reason);
    return cp_audit_add(db, &row);
}

/* Expires p in place if it is overdue; returns 1 if it did. */
static int expire_if_due(cp_conn *db, struct push_row *p, int *rc)
{
    *rc = PC_OK;
    if (strcmp(p->state, "pending") != 0 || p->expires_at > pc_now())
        return 0;
    *rc = finish(db, p, "expired", "system", "timeout", NULL);
    return *rc == PC_OK;
}

int cp_push_insert(cp_conn *db, const char *txid, const char *user, int64_t host_id,
                   const char *host, const char *actor, const char *source, struct cp_push_new *out)
{
    struct cp_user_rec u;
    struct cp_audit_row row = { .action = "push.create",
                                .actor = actor,
                                .user = user,
                                .host = host,
                                .txid = txid,
                                .result = "pending",
                                .source = source };
    unsigned n;
    cp_stmt *st;
    int rc;

    memset(out, 0, sizeof *out);
    if ((rc = cp_user_load(db, user, &u)) != PC_OK || !u.enabled || !u.push)
        return rc == PC_OK || rc == PC_ERR_NOTFOUND ? PC_ERR_AUTH : rc;
    if ((rc = pc_random_hex(out->id, sizeof out->id, CP_PUSH_ID_LEN / 2)) != PC_OK ||
        (rc = pc_random_uniform(90, &n)) != PC_OK)
        return rc;
    snprintf(out->match, sizeof out->match, "%02u",
             n + 10); /* 10–99: two digits, no leading zero */
    out->expires_at = pc_now() + push_ttl;
    st = cp_prepare(db, "INSERT INTO pushes(id, txid, user_name, host_id, match, state, created_at,"
                        " expires_at) VALUES (?,?,?,?,?,'pending',?,?)");
    if (!st)
        return PC_ERR_STORE;
    cp_bind_text(st, 1, out->id);
    cp_bind_text(st, 2, txid);
    cp_bind_text(st, 3, user);
    if (host_id > 0)
        cp_bind_int64(st, 4, host_id);
    else
        cp_bind_null(st, 4);
    cp_bind_text(st, 5, out->match);
    cp_bind_int64(st, 6, pc_now());
    cp_bind_int64(st, 7, out->expires_at);
    if ((rc = cp_exec_stmt(st)) != PC_OK)
        return rc;
    st = cp_prepare(
        db, "SELECT COALESCE(rhost, ''), COALESCE(service, '') FROM transactions WHERE txid = ?");
    if (st) {
        cp_bind_text(st, 1, txid);
        if (cp_step(st) == CP_ROW) {
            snprintf(out->rhost, sizeof out->rhost, "%s", cp_col_text(st, 0));
            snprintf(out->service, sizeof out->service, "%s", cp_col_text(st, 1));
        }
        cp_finalize(st);
    }
    return cp_audit_add(db, &row);
}

void cp_push_announce(const struct cp_push_new *p, const char *user, const char *host)
{
    cp_webhook_push_created(p->id, user, host ? host : "", p->rhost, p->service, p->expires_at);
    cp_webpush_push_created(p->id, user, host, p->rhost, p->service, p->expires_at);
}

struct create_job {
    const struct cp_identity *host;
    const char *source, *txid;
    struct push_row p;
    struct cp_push_new np;
    char user[64];
    int created;
};

static int create_in_tx(cp_conn *db, void *arg)
{
    struct create_job *j = arg;
    char actor[48];
    int rc;

    rc = load(db, "p.txid", j->txid, &j->p);
    if (rc == PC_OK && j->p.host_id == j->host->host_id) {
        cp_store_job_decides_nothing(); /* wrote nothing */
        return PC_OK; /* same transaction, same push: a retry must not send a second notice */
    }
    if (rc != PC_ERR_NOTFOUND && rc != PC_OK)
        return rc;
    if ((rc = cp_authtx_load_open(db, j->host->host_id, j->txid, j->user, sizeof j->user)) != PC_OK)
        return rc;
    snprintf(actor, sizeof actor, "host:%lld", (long long)j->host->host_id);
    rc = cp_push_insert(db, j->txid, j->user, j->host->host_id, j->host->hostname, actor, j->source,
                        &j->np);
    j->created = rc == PC_OK;
    /* A pending push decides nothing, like the begun login it belongs to: its answer (an
     * approval, a denial, the login's code) is a synced commit later in the same log, which
     * makes the push durable with it. A power loss can take the push away (its notice may
     * already be on a phone: approving it then answers "not found"); it cannot approve. */
    if (j->created)
        cp_store_job_decides_nothing();
    return rc;
}

int cp_push_create(const struct cp_identity *host, const char *source, const char *txid,
                   char push_id[CP_PUSH_ID_LEN + 1], char match[3], int64_t *expires_at)
{
    struct create_job j = { .host = host, .source = source, .txid = txid };
    int rc = cp_store_write_pending(create_in_tx, &j);

    if (rc != PC_OK)
        return rc;
    if (!j.created) {
        memcpy(push_id, j.p.id, sizeof j.p.id);
        memcpy(match, j.p.match, 3);
        *expires_at = j.p.expires_at;
        return PC_OK;
    }
    memcpy(push_id, j.np.id, sizeof j.np.id);
    memcpy(match, j.np.match, 3);
    *expires_at = j.np.expires_at;
    cp_push_announce(&j.np, j.user, host->hostname);
    return PC_OK;
}

struct status_job {
    const struct cp_identity *host;
    const char *push_id;
    struct push_row p;
    int expired;
};

static int status_in_tx(cp_conn *db, void *arg)
{
    struct status_job *j = arg;
    int rc = load(db, "p.id", j->push_id, &j->p);

    if (rc == PC_OK && j->p.host_id != j->host->host_id)
        rc = PC_ERR_NOTFOUND; /* another host's push does not exist for this caller */
    if (rc == PC_OK)
        j->expired = expire_if_due(db, &j->p, &rc);
    return rc;
}

int cp_push_status(const struct cp_identity *host, const char *push_id, char state[16],
                   int64_t *expires_at)
{
    cp_conn *db = cp_db();
    struct status_job j = { .host = host, .push_id = push_id };
    int rc;

    if (!db)
        return PC_ERR_STORE;
    /* A plain read first (WAL: no write lock, no fsync); a write only to expire an overdue push. */
    rc = load(db, "p.id", push_id, &j.p);
    if (rc == PC_OK && j.p.host_id != host->host_id)
        rc = PC_ERR_NOTFOUND;
    if (rc == PC_OK && strcmp(j.p.state, "pending") == 0 && j.p.expires_at <= pc_now())
        rc = cp_store_write(status_in_tx, &j);
    if (rc == PC_OK) {
        memcpy(state, j.p.state, 16);
        *expires_at = j.p.expires_at;
        if (j.expired)
            cp_waiters_notify(push_id);
    }
    return rc;
}

/* A session may not approve a login push: audited, the push stays pending. */
static int refuse_session(cp_conn *db, const struct push_row *p, const struct cp_who *who)
{
    struct cp_audit_row row = { .actor = who->actor,
                                .action = "push.approve",
                                .user = p->user,
                                .result = "deny",
                                .reason = "login_push_needs_admin",
                                .txid = p->txid,
                                .source = who->source };
    return cp_audit_add(db, &row);
}

static int set_approver_expiry(cp_conn *db, const char *id, int64_t expires_at)
{
    cp_stmt *st = cp_prepare(db, "UPDATE pushes SET approver_expires_at = ? WHERE id = ?");
    if (!st)
        return PC_ERR_STORE;
    cp_bind_int64(st, 1, expires_at);
    cp_bind_text(st, 2, id);
    return cp_exec_stmt(st);
}

struct decide_job {
    const struct cp_who *who;
    const char *only_user, *push_id, *match;
    int approve;
    int fresh; /* the approver passed a fresh second factor (a passkey assertion for this push) */
    int64_t approver_expires_at;
    struct push_row p;
    int changed, answer; /* answer: what the caller gets once the job's changes are kept */
};

static int decide_in_tx(cp_conn *db, void *arg)
{
    struct decide_job *j = arg;
    struct push_row *p = &j->p;
    int rc;

    if ((rc = load(db, "p.id", j->push_id, p)) != PC_OK)
        return rc;
    if (j->only_user && strcmp(j->only_user, p->user) != 0)
        return PC_ERR_NOTFOUND; /* another user's push does not exist for a session */
    if (expire_if_due(db, p, &rc) || rc != PC_OK) {
        j->changed = rc == PC_OK;
        j->answer = PC_ERR_STATE;
        return rc;
    }
    if (strcmp(p->state, "pending") != 0)
        return PC_ERR_STATE;
    if (j->approve && j->only_user && !j->fresh && p->host_id == 0) {
        j->answer = PC_ERR_AUTH;
        return refuse_session(db, p, j->who);
    }
    if (!j->approve)
        rc = finish(db, p, "denied", j->who->actor, "denied_by_approver", j->who->source);
    else if (!j->match || strlen(j->match) != 2 || !pc_ct_equal(j->match, p->match, 2))
        rc = finish(db, p, "denied", j->who->actor, "wrong_match", j->who->source);
    else if ((rc = set_approver_expiry(db, p->id, j->approver_expires_at)) == PC_OK)
        rc = finish(db, p, "approved", j->who->actor, "approved", j->who->source);
    j->changed = rc == PC_OK;
    return rc;
}

static int decide(const struct cp_who *who, const char *only_user, const char *push_id, int approve,
                  const char *match, int64_t approver_expires_at, int fresh, char state[16])
{
    struct decide_job j = { .who = who,
                            .only_user = only_user,
                            .push_id = push_id,
                            .match = match,
                            .approve = approve,
                            .fresh = fresh,
                            .approver_expires_at = approver_expires_at };
    int rc = cp_store_write(decide_in_tx, &j);

    if (rc != PC_OK)
        return rc;
    if (j.changed) {
        memcpy(state, j.p.state, 16);
        cp_waiters_notify(push_id);
    }
    return j.answer;
}

int cp_push_decide(const struct cp_who *who, const char *only_user, const char *push_id,
                   int approve, const char *match, int64_t approver_expires_at, char state[16])
{
    return decide(who, only_user, push_id, approve, match, approver_expires_at, 0, state);
}

int cp_push_decide_passkey(const struct cp_who *who, const char *user, const char *push_id,
                           int approve, const char *match, char state[16])
{
    return decide(who, user, push_id, approve, match, 0, 1, state);
}

int cp_push_list_pending(const char *only_user, json_object **out)
{
    cp_conn *db = cp_db();
    cp_stmt *st;
    json_object *arr;

    if (!db)
        return PC_ERR_STORE;
    st = cp_prepare(
        db, "SELECT p.id, p.user_name, COALESCE(h.hostname, ''), COALESCE(t.rhost, ''),"
            " COALESCE(t.service, ''), p.created_at, p.expires_at FROM pushes p"
            " LEFT JOIN hosts h ON h.id = p.host_id LEFT JOIN transactions t ON t.txid = p.txid"
            " WHERE p.state = 'pending' AND p.expires_at > ?1"
            " AND (CAST(?2 AS TEXT) IS NULL OR p.user_name = ?2)"
            " ORDER BY p.created_at");
    if (!st)
        return PC_ERR_STORE;
    cp_bind_int64(st, 1, pc_now());
    cp_bind_text(st, 2, only_user);
    arr = json_object_new_array();
    while (cp_step(st) == CP_ROW) {
        /* The match number is deliberately absent: the approver must read it off the login. */
        json_object *o = json_object_new_object();
        json_object_object_add(o, "push_id", json_object_new_string(cp_col_text(st, 0)));
        json_object_object_add(o, "user", json_object_new_string(cp_col_text(st, 1)));
        json_object_object_add(o, "host", json_object_new_string(cp_col_text(st, 2)));
        json_object_object_add(o, "rhost", json_object_new_string(cp_col_text(st, 3)));
        json_object_object_add(o, "service", json_object_new_string(cp_col_text(st, 4)));
        json_object_object_add(o, "created_at", json_object_new_int64(cp_col_int64(st, 5)));
        json_object_object_add(o, "expires_at", json_object_new_int64(cp_col_int64(st, 6)));
        json_object_array_add(arr, o);
    }
    cp_finalize(st);
    *out = arr;
    return PC_OK;
}

void cp_push_expire_due(void)
{
    cp_conn *db = cp_db();
    cp_stmt *st;
    char ids[64][CP_PUSH_ID_LEN + 1];
    int n = 0;

    if (!db)
        return;
    st = cp_prepare(db,
                    "SELECT id FROM pushes WHERE state = 'pending' AND expires_at <= ? LIMIT 64");
    if (!st)
        return;
    cp_bind_int64(st, 1, pc_now());
    while (n < 64 && cp_step(st) == CP_ROW)
        snprintf(ids[n++], CP_PUSH_ID_LEN + 1, "%s", cp_col_text(st, 0));
    cp_finalize(st);
    for (int i = 0; i < n; i++) {
        struct push_row p;
        int rc;
        if (cp_tx_begin(db) != PC_OK)
            return;
        if (load(db, "p.id", ids[i], &p) == PC_OK && expire_if_due(db, &p, &rc) &&
            cp_tx_commit(db) == PC_OK)
            cp_waiters_notify(ids[i]);
        else
            cp_tx_rollback(db);
    }
}
