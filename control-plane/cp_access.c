/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "cp_access.h"
#include "cp_audit.h"
#include "cp_authtx.h"
#include "cp_policy.h"
#include "cp_store.h"
#include "cp_users.h"
#include "cp_webhook.h"
#include "pc_err.h"
#include "pc_json.h"
#include "pc_log.h"
#include "pc_mem.h"
#include "pc_rand.h"
#include "pc_time.h"
#include <stdio.h>
#include <string.h>

#define COLS \
    "id, user_name, account, hosts, policy_id, approver_group, duration, reason, state," \
    " created_at, expires_at, decided_by, decided_at, decision_reason, starts_at, ends_at"

struct req_row {
    char id[CP_ACCESS_ID_LEN + 1];
    char user[64], account[64], group[80], state[16];
    int64_t duration, expires_at, ends_at;
};

static void refuse(struct cp_access_res *res, unsigned status, const char *error, const char *msg)
{
    res->status = status;
    res->error = error;
    snprintf(res->message, sizeof res->message, "%s", msg);
}

static void add_text(json_object *o, const char *key, cp_stmt *st, int col)
{
    if (!cp_col_is_null(st, col))
        json_object_object_add(o, key, json_object_new_string(cp_col_text(st, col)));
}

/* One row of COLS as the API shows it. */
static json_object *row_json(cp_stmt *st)
{
    json_object *o = json_object_new_object(), *h = json_tokener_parse(cp_col_text(st, 3));
    static const char *const ints[] = { "policy_id", "duration" };

    add_text(o, "id", st, 0);
    add_text(o, "user", st, 1);
    add_text(o, "account", st, 2);
    json_object_object_add(o, "hosts", h ? h : json_object_new_object());
    json_object_object_add(o, ints[0], json_object_new_int64(cp_col_int64(st, 4)));
    add_text(o, "approver_group", st, 5);
    json_object_object_add(o, ints[1], json_object_new_int64(cp_col_int64(st, 6)));
    add_text(o, "reason", st, 7);
    add_text(o, "state", st, 8);
    json_object_object_add(o, "created_at", json_object_new_int64(cp_col_int64(st, 9)));
    json_object_object_add(o, "expires_at", json_object_new_int64(cp_col_int64(st, 10)));
    add_text(o, "decided_by", st, 11);
    json_object_object_add(o, "decided_at", json_object_new_int64(cp_col_int64(st, 12)));
    add_text(o, "decision_reason", st, 13);
    json_object_object_add(o, "starts_at", json_object_new_int64(cp_col_int64(st, 14)));
    json_object_object_add(o, "ends_at", json_object_new_int64(cp_col_int64(st, 15)));
    return o;
}

static int load(cp_conn *db, const char *id, struct req_row *r, json_object **obj)
{
    cp_stmt *st = cp_prepare(db, "SELECT " COLS " FROM access_requests WHERE id = ?");
    int rc;

    if (!st)
        return PC_ERR_STORE;
    cp_bind_text(st, 1, id);
    rc = cp_step(st);
    if (rc == CP_ROW) {
        memset(r, 0, sizeof *r);
        snprintf(r->id, sizeof r->id, "%s", cp_col_text(st, 0));
        snprintf(r->user, sizeof r->user, "%s", cp_col_text(st, 1));
        snprintf(r->account, sizeof r->account, "%s", cp_col_text(st, 2));
        snprintf(r->group, sizeof r->group, "%s", cp_col_text(st, 5));
        r->duration = cp_col_int64(st, 6);
        snprintf(r->state, sizeof r->state, "%s", cp_col_text(st, 8));
        r->expires_at = cp_col_int64(st, 10);
        r->ends_at = cp_col_int64(st, 15);
        if (obj)
            *obj = row_json(st);
    }
    cp_finalize(st);
    return rc == CP_ROW ? PC_OK : rc == CP_DONE ? PC_ERR_NOTFOUND : PC_ERR_STORE;
}

static int reload_json(cp_conn *db, const char *id, json_object **obj)
{
    struct req_row r;
    return load(db, id, &r, obj);
}

static int audit(cp_conn *db, const char *actor, const char *action, const struct req_row *r,
                 const char *result, const char *reason, const char *source)
{
    struct cp_audit_row row = { .actor = actor,
                                .action = action,
                                .user = r->user,
                                .result = result,
                                .reason = reason,
                                .txid = r->id,
                                .source = source };
    return cp_audit_add(db, &row);
}

static int count_pending(cp_conn *db, const char *user, int64_t *n)
{
    cp_stmt *st = cp_prepare(db, "SELECT COUNT(*) FROM access_requests WHERE user_name = ?"
                                 " AND state = 'pending' AND expires_at > ?");
    if (!st)
        return PC_ERR_STORE;
    cp_bind_text(st, 1, user);
    cp_bind_int64(st, 2, pc_now());
    *n = cp_step(st) == CP_ROW ? cp_col_int64(st, 0) : -1;
    cp_finalize(st);
    return *n >= 0 ? PC_OK : PC_ERR_STORE;
}

static void announce(const char *event, const struct req_row *r, const char *actor,
                     const char *reason)
{
    cp_webhook_request_event(event, r->id, r->user, r->account, actor, r->ends_at, reason);
}

int cp_access_create(const char *user, const char *source, const char *account, json_object *sel,
                     int64_t duration, const char *reason, struct cp_access_res *res)
{
    cp_conn *db = cp_db();
    json_object *rule = NULL;
    struct req_row r;
    char actor[80], msg[256];
    int64_t maxd, pending = 0, now = pc_now();
    cp_stmt *st;
    int rc;

    memset(res, 0, sizeof *res);
    memset(&r, 0, sizeof r);
    if (!db || cp_tx_begin(db) != PC_OK)
        return PC_ERR_STORE;
    rc = cp_policy_request_rule(db, user, account, sel, &rule);
    if (rc == PC_ERR_NOTFOUND) {
        snprintf(msg, sizeof msg,
                 "no rule that requires a request lets %s ask for account %.64s on these hosts",
                 user, account);
        refuse(res, 403, "no_rule", msg);
        rc = PC_OK;
        goto out;
    }
    if (rc != PC_OK || (rc = count_pending(db, user, &pending)) != PC_OK)
        goto out;
    if (pending >= CP_ACCESS_PENDING_MAX) {
        refuse(res, 429, "too_many_requests",
               "too many pending requests: wait for an answer or revoke one");
        goto out;
    }
    maxd = json_object_get_int64(json_object_object_get(rule, "max_duration"));
    if (maxd < CP_ACCESS_MIN_DURATION || maxd > CP_ACCESS_MAX_DURATION)
        maxd = CP_ACCESS_DEFAULT_MAX;
    r.duration = duration < maxd ? duration : maxd; /* capped by the rule */
    if ((rc = pc_random_hex(r.id, sizeof r.id, CP_ACCESS_ID_LEN / 2)) != PC_OK)
        goto out;
    snprintf(r.user, sizeof r.user, "%s", user);
    snprintf(r.account, sizeof r.account, "%s", account);
    snprintf(r.group, sizeof r.group, "%s",
             json_object_get_string(json_object_object_get(rule, "approver_group")));
    r.expires_at = now + CP_ACCESS_PENDING_TTL;
    st = cp_prepare(db, "INSERT INTO access_requests(id, user_name, account, hosts, policy_id,"
                        " approver_group, duration, reason, state, created_at, expires_at)"
                        " VALUES (?,?,?,?,?,?,?,?,'pending',?,?)");
    if (!st) {
        rc = PC_ERR_STORE;
        goto out;
    }
    cp_bind_text(st, 1, r.id);
    cp_bind_text(st, 2, user);
    cp_bind_text(st, 3, account);
    cp_bind_text(st, 4, pc_json_dump(sel));
    cp_bind_int64(st, 5, json_object_get_int64(json_object_object_get(rule, "id")));
    cp_bind_text(st, 6, r.group);
    cp_bind_int64(st, 7, r.duration);
    cp_bind_text(st, 8, reason);
    cp_bind_int64(st, 9, now);
    cp_bind_int64(st, 10, r.expires_at);
    snprintf(actor, sizeof actor, "session:%.64s", user);
    snprintf(msg, sizeof msg, "account=%.64s duration=%lld rule=%.64s", account,
             (long long)r.duration, json_object_get_string(json_object_object_get(rule, "name")));
    if ((rc = cp_exec_stmt(st)) != PC_OK ||
        (rc = audit(db, actor, "request.create", &r, "ok", msg, source)) != PC_OK ||
        (rc = reload_json(db, r.id, &res->out)) != PC_OK)
        goto out;
    rc = cp_tx_commit(db);
out:
    json_object_put(rule);
    if (rc != PC_OK || res->status) {
        cp_tx_rollback(db);
        json_object_put(res->out);
        res->out = NULL;
        return rc;
    }
    announce("request.create", &r, actor, reason);
    return PC_OK;
}

int cp_access_list(const struct cp_identity *id, json_object **out)
{
    cp_conn *db = cp_db();
    cp_stmt *st;
    json_object *arr;
    int rc;

    if (!db)
        return PC_ERR_STORE;
    if (id->kind == CP_CALLER_SESSION)
        st = cp_prepare(db, "SELECT " COLS " FROM access_requests WHERE user_name = ?1"
                            " OR (state = 'pending' AND expires_at > ?2 AND user_name <> ?1"
                            "  AND approver_group IN (SELECT g.grp FROM user_groups g"
                            "   JOIN users u ON u.id = g.user_id WHERE u.name = ?1))"
                            " ORDER BY created_at DESC LIMIT 200");
    else
        st = cp_prepare(db, "SELECT " COLS " FROM access_requests WHERE"
                            " (state = 'pending' AND expires_at > ?1)"
                            " OR (state = 'active' AND ends_at > ?1)"
                            " ORDER BY created_at DESC LIMIT 1000");
    if (!st)
        return PC_ERR_STORE;
    /* only the parameters the statement uses (PostgreSQL cannot type an unused one) */
    if (id->kind == CP_CALLER_SESSION) {
        cp_bind_text(st, 1, id->user);
        cp_bind_int64(st, 2, pc_now());
    } else {
        cp_bind_int64(st, 1, pc_now());
    }
    arr = json_object_new_array();
    while ((rc = cp_step(st)) == CP_ROW)
        json_object_array_add(arr, row_json(st));
    cp_finalize(st);
    if (rc != CP_DONE) {
        json_object_put(arr);
        return PC_ERR_STORE;
    }
    *out = arr;
    return PC_OK;
}

/* 1 if accounts a and b have a registered SSH key in common (one holder), -1 on error. */
static int same_holder(cp_conn *db, const char *a, const char *b)
{
    cp_stmt *st = cp_prepare(db, "SELECT 1 FROM user_ssh_keys ka JOIN users ua ON"
                                 " ua.id = ka.user_id JOIN user_ssh_keys kb ON"
                                 " kb.fingerprint = ka.fingerprint JOIN users ub ON"
                                 " ub.id = kb.user_id WHERE ua.name = ? AND ub.name = ?"
                                 " LIMIT 1");
    int rc;

    if (!st)
        return -1;
    cp_bind_text(st, 1, a);
    cp_bind_text(st, 2, b);
    rc = cp_step(st);
    cp_finalize(st);
    return rc == CP_ROW ? 1 : rc == CP_DONE ? 0 : -1;
}

/* 1 if who is r's requester: the same account, or another account holding one of the
 * requester's registered keys (a person's second account); -1 on error. */
static int is_requester(cp_conn *db, const char *who, const struct req_row *r)
{
    return strcmp(who, r->user) == 0 ? 1 : same_holder(db, who, r->user);
}

/* A person who may answer r: in its approver group, not its requester. */
static int may_approve(cp_conn *db, const char *who, const struct req_row *r, int *ok)
{
    struct cp_user_rec u;
    int rc, self = is_requester(db, who, r);

    *ok = 0;
    if (self < 0)
        return PC_ERR_STORE;
    if (self)
        return PC_OK;
    rc = cp_user_load(db, who, &u);
    if (rc == PC_ERR_NOTFOUND)
        return PC_OK;
    if (rc != PC_OK)
        return rc;
    *ok = u.enabled && cp_user_in_group(db, u.id, r->group);
    pc_wipe(&u, sizeof u);
    return PC_OK;
}

static int set_state(cp_conn *db, const char *id, const char *state, const char *by,
                     const char *why, int64_t starts, int64_t ends)
{
    cp_stmt *st = cp_prepare(db, "UPDATE access_requests SET state = ?, decided_by = ?,"
                                 " decided_at = ?, decision_reason = COALESCE(?,"
                                 " decision_reason), starts_at = CASE WHEN ?5 < 0 THEN"
                                 " starts_at ELSE ?5 END, ends_at = ? WHERE id = ?");
    if (!st)
        return PC_ERR_STORE;
    cp_bind_text(st, 1, state);
    cp_bind_text(st, 2, by);
    cp_bind_int64(st, 3, pc_now());
    cp_bind_text(st, 4, why);
    cp_bind_int64(st, 5, starts);
    cp_bind_int64(st, 6, ends);
    cp_bind_text(st, 7, id);
    return cp_exec_stmt(st);
}

/* Loads a request still open for an answer; else refuses (404, 409). */
static int load_pending(cp_conn *db, const char *id, struct req_row *r, struct cp_access_res *res)
{
    int rc = load(db, id, r, NULL);
    if (rc == PC_ERR_NOTFOUND) {
        refuse(res, 404, "not_found", "request not found");
        return PC_OK;
    }
    if (rc != PC_OK)
        return rc;
    if (strcmp(r->state, "pending") != 0)
        refuse(res, 409, "conflict", "the request was already answered (see its state)");
    else if (r->expires_at <= pc_now())
        refuse(res, 409, "expired", "the request expired unanswered: ask again");
    return PC_OK;
}

int cp_access_approve(const char *approver, int64_t approver_expires_at, const char *source,
                      const char *id, const char *code, struct cp_access_res *res)
{
    cp_conn *db = cp_db();
    struct req_row r;
    const char *result = "deny", *why = "";
    char actor[80];
    int64_t now = pc_now(), ends;
    int rc, ok = 0, keep = 0;

    memset(res, 0, sizeof *res);
    snprintf(actor, sizeof actor, "session:%.64s", approver);
    if (!db || cp_tx_begin(db) != PC_OK)
        return PC_ERR_STORE;
    if ((rc = load(db, id, &r, NULL)) == PC_ERR_NOTFOUND) {
        refuse(res, 404, "not_found", "request not found");
        rc = PC_OK;
        goto out;
    }
    if (rc != PC_OK || (rc = may_approve(db, approver, &r, &ok)) != PC_OK)
        goto out;
    if (!ok) {
        /* Refused before any code is looked at: the requester's own code never counts. */
        int self = is_requester(db, approver, &r) == 1;
        refuse(res, 403, self ? "self_approval" : "not_an_approver",
               self ? "nobody approves their own request"
                    : "only a member of the rule's approver group may approve this request");
        keep = 1;
        rc = audit(db, actor, "request.approve", &r, "deny",
                   self ? "self_approval" : "not_approver", source);
        goto out;
    }
    if ((rc = load_pending(db, id, &r, res)) != PC_OK || res->status)
        goto out;
    /* The approver's own second factor, spent (replay guard) in this transaction. */
    if ((rc = cp_totp_judge(db, approver, 0, code, &result, &why)) != PC_OK)
        goto out;
    if (strcmp(result, "allow") != 0) {
        refuse(res, 403, "second_factor",
               "the approver's code was not accepted (wrong, reused, or the approver is locked)");
        keep = 1; /* the failure counts */
        rc = audit(db, actor, "request.approve", &r, "deny", why, source);
        goto out;
    }
    ends = now + r.duration;
    if (approver_expires_at > 0 && approver_expires_at < ends)
        ends = approver_expires_at; /* no approval outlives the session that gave it */
    r.ends_at = ends;
    {
        char msg[96];
        snprintf(msg, sizeof msg, "until=%lld", (long long)ends);
        if ((rc = set_state(db, r.id, "active", approver, NULL, now, ends)) != PC_OK ||
            (rc = audit(db, actor, "request.approve", &r, "allow", msg, source)) != PC_OK ||
            (rc = reload_json(db, r.id, &res->out)) != PC_OK)
            goto out;
    }
    rc = cp_tx_commit(db);
out:
    if (rc == PC_OK && keep) {
        rc = cp_tx_commit(db);
        if (rc == PC_OK)
            announce("request.approve_refused", &r, actor, why[0] ? why : res->error);
    } else if (rc != PC_OK || res->status) {
        cp_tx_rollback(db);
    }
    if (rc != PC_OK || res->status) {
        json_object_put(res->out);
        res->out = NULL;
        return rc;
    }
    announce("request.approve", &r, actor, NULL);
    return PC_OK;
}

static void actor_of(const struct cp_identity *who, char *actor, size_t n)
{
    if (who->kind == CP_CALLER_SESSION)
        snprintf(actor, n, "session:%.64s", who->user);
    else
        snprintf(actor, n, "admin");
}

int cp_access_deny(const struct cp_identity *who, const char *source, const char *id,
                   const char *reason, struct cp_access_res *res)
{
    cp_conn *db = cp_db();
    struct req_row r;
    char actor[80];
    int rc, ok = who->kind == CP_CALLER_ADMIN;

    memset(res, 0, sizeof *res);
    actor_of(who, actor, sizeof actor);
    if (!db || cp_tx_begin(db) != PC_OK)
        return PC_ERR_STORE;
    if ((rc = load_pending(db, id, &r, res)) != PC_OK || res->status == 404)
        goto out;
    if (!ok && (rc = may_approve(db, who->user, &r, &ok)) != PC_OK)
        goto out;
    if (!ok) {
        res->status = 0;
        refuse(res, 403, "not_an_approver",
               "only a member of the rule's approver group (not the requester) or the admin "
               "may deny this request; the requester withdraws it with revoke");
        goto out;
    }
    if (res->status)
        goto out;
    if ((rc = set_state(db, r.id, "denied", who->kind == CP_CALLER_SESSION ? who->user : "admin",
                        reason, 0, 0)) != PC_OK ||
        (rc = audit(db, actor, "request.deny", &r, "ok", reason, source)) != PC_OK ||
        (rc = reload_json(db, r.id, &res->out)) != PC_OK)
        goto out;
    rc = cp_tx_commit(db);
out:
    if (rc != PC_OK || res->status) {
        cp_tx_rollback(db);
        json_object_put(res->out);
        res->out = NULL;
        return rc;
    }
    announce("request.deny", &r, actor, reason);
    return PC_OK;
}

int cp_access_revoke(const struct cp_identity *who, const char *source, const char *id,
                     struct cp_access_res *res)
{
    cp_conn *db = cp_db();
    struct req_row r;
    char actor[80];
    int64_t now = pc_now();
    int rc, ok = who->kind == CP_CALLER_ADMIN, active = 0;

    memset(res, 0, sizeof *res);
    actor_of(who, actor, sizeof actor);
    if (!db || cp_tx_begin(db) != PC_OK)
        return PC_ERR_STORE;
    if ((rc = load(db, id, &r, NULL)) == PC_ERR_NOTFOUND) {
        refuse(res, 404, "not_found", "request not found");
        rc = PC_OK;
        goto out;
    }
    if (rc != PC_OK)
        goto out;
    if (!ok && who->kind == CP_CALLER_SESSION)
        ok = strcmp(who->user, r.user) == 0;
    if (!ok && (rc = may_approve(db, who->user, &r, &ok)) != PC_OK)
        goto out;
    if (!ok) {
        /* Another person's request: answered as if it did not exist. */
        refuse(res, 404, "not_found", "request not found");
        goto out;
    }
    active = strcmp(r.state, "active") == 0 && r.ends_at > now;
    if (!active && !(strcmp(r.state, "pending") == 0 && r.expires_at > now)) {
        refuse(res, 409, "conflict", "the request is neither pending nor an active grant");
        goto out;
    }
    r.ends_at = active ? now : 0;
    /* A grant keeps its start; it ends now. */
    if ((rc = set_state(db, r.id, "revoked", who->kind == CP_CALLER_SESSION ? who->user : "admin",
                        NULL, -1, r.ends_at)) != PC_OK)
        goto out;
    if ((rc = audit(db, actor, active ? "grant.revoke" : "request.revoke", &r, "ok", NULL,
                    source)) != PC_OK ||
        (rc = reload_json(db, r.id, &res->out)) != PC_OK)
        goto out;
    rc = cp_tx_commit(db);
out:
    if (rc != PC_OK || res->status) {
        cp_tx_rollback(db);
        json_object_put(res->out);
        res->out = NULL;
        return rc;
    }
    announce(active ? "grant.revoke" : "request.revoke", &r, actor, NULL);
    return PC_OK;
}

/* Ends one batch of overdue rows of one kind; 1 if it did something. */
static int expire_batch(cp_conn *db, int grants)
{
    struct req_row rows[32];
    int n = 0, rc = PC_OK;
    int64_t now = pc_now();
    cp_stmt *st;

    if (cp_tx_begin(db) != PC_OK)
        return 0;
    st = cp_prepare(db, grants ? "SELECT id FROM access_requests WHERE state = 'active'"
                                 " AND ends_at <= ? LIMIT 32"
                               : "SELECT id FROM access_requests WHERE state = 'pending'"
                                 " AND expires_at <= ? LIMIT 32");
    if (!st) {
        cp_tx_rollback(db);
        return 0;
    }
    cp_bind_int64(st, 1, now);
    while (n < 32 && cp_step(st) == CP_ROW)
        snprintf(rows[n++].id, sizeof rows[0].id, "%s", cp_col_text(st, 0));
    cp_finalize(st);
    for (int i = 0; i < n && rc == PC_OK; i++) {
        char id[CP_ACCESS_ID_LEN + 1];
        snprintf(id, sizeof id, "%s", rows[i].id);
        if ((rc = load(db, id, &rows[i], NULL)) != PC_OK)
            break;
        st = cp_prepare(db, "UPDATE access_requests SET state = ? WHERE id = ?");
        if (!st) {
            rc = PC_ERR_STORE;
            break;
        }
        cp_bind_text(st, 1, grants ? "ended" : "expired");
        cp_bind_text(st, 2, id);
        if ((rc = cp_exec_stmt(st)) == PC_OK)
            rc = audit(db, "system", grants ? "grant.expire" : "request.expire", &rows[i], "ok",
                       NULL, NULL);
    }
    if (rc != PC_OK || cp_tx_commit(db) != PC_OK) {
        cp_tx_rollback(db);
        return 0;
    }
    for (int i = 0; i < n; i++)
        announce(grants ? "grant.expire" : "request.expire", &rows[i], "system", NULL);
    return n == 32;
}

void cp_access_expire_due(void)
{
    cp_conn *db = cp_db();
    if (!db)
        return;
    for (int i = 0; i < 8 && expire_batch(db, 1); i++)
        ;
    for (int i = 0; i < 8 && expire_batch(db, 0); i++)
        ;
}

static int labels_match(json_object *sel, json_object *labels)
{
    json_object *v;
    json_object_object_foreach(sel, k, want)
    {
        if (!json_object_object_get_ex(labels, k, &v) ||
            !json_object_is_type(v, json_type_string) ||
            strcmp(json_object_get_string(v), json_object_get_string(want)) != 0)
            return 0;
    }
    return 1;
}

int cp_access_grant_until(cp_conn *db, int64_t policy_id, const char *person, const char *account,
                          json_object *labels, int64_t *until, char req_id[CP_ACCESS_ID_LEN + 1])
{
    cp_stmt *st = cp_prepare(db, "SELECT id, hosts, ends_at FROM access_requests"
                                 " WHERE policy_id = ? AND user_name = ? AND account = ?"
                                 " AND state = 'active' AND ends_at > ?");
    int rc;

    *until = 0;
    req_id[0] = '\0';
    if (!st)
        return PC_ERR_STORE;
    cp_bind_int64(st, 1, policy_id);
    cp_bind_text(st, 2, person);
    cp_bind_text(st, 3, account);
    cp_bind_int64(st, 4, pc_now());
    while ((rc = cp_step(st)) == CP_ROW) {
        json_object *sel = json_tokener_parse(cp_col_text(st, 1));
        int64_t end = cp_col_int64(st, 2);
        /* An unreadable selector matches nothing. */
        if (sel && json_object_is_type(sel, json_type_object) && labels_match(sel, labels) &&
            end > *until) {
            *until = end;
            snprintf(req_id, CP_ACCESS_ID_LEN + 1, "%s", cp_col_text(st, 0));
        }
        json_object_put(sel);
    }
    cp_finalize(st);
    return rc == CP_DONE ? PC_OK : PC_ERR_STORE;
}

int cp_access_person_grant_until(cp_conn *db, int64_t policy_id, const char *person, int64_t *until)
{
    cp_stmt *st = cp_prepare(db, "SELECT COALESCE(MAX(ends_at), 0) FROM access_requests"
                                 " WHERE policy_id = ? AND user_name = ?"
                                 " AND state = 'active' AND ends_at > ?");
    int rc;

    *until = 0;
    if (!st)
        return PC_ERR_STORE;
    cp_bind_int64(st, 1, policy_id);
    cp_bind_text(st, 2, person);
    cp_bind_int64(st, 3, pc_now());
    rc = cp_step(st);
    if (rc == CP_ROW)
        *until = cp_col_int64(st, 0);
    cp_finalize(st);
    return rc == CP_ROW ? PC_OK : PC_ERR_STORE;
}

void cp_access_note_login(const struct cp_identity *host, const char *person, const char *account,
                          int64_t serial, const char *request_id)
{
    cp_conn *db = cp_db();
    char actor[48], reason[128];
    struct cp_audit_row row = { .actor = actor,
                                .action = "grant.login",
                                .user = person,
                                .host = host->hostname,
                                .result = "allow",
                                .reason = reason,
                                .txid = request_id };
    cp_stmt *st;
    int seen = 1;

    snprintf(actor, sizeof actor, "host:%lld", (long long)host->host_id);
    snprintf(reason, sizeof reason, "account=%.64s serial=%lld", account, (long long)serial);
    if (!db || cp_tx_begin(db) != PC_OK)
        return;
    /* sshd asks twice per key (query, then signature): one row per login certificate. */
    st = cp_prepare(db, "SELECT 1 FROM audit WHERE txid = ? AND action = 'grant.login'"
                        " AND reason = ? AND actor = ?");
    if (st) {
        cp_bind_text(st, 1, request_id);
        cp_bind_text(st, 2, reason);
        cp_bind_text(st, 3, actor);
        seen = cp_step(st) == CP_ROW;
        cp_finalize(st);
    }
    if (seen || cp_audit_add(db, &row) != PC_OK || cp_tx_commit(db) != PC_OK) {
        cp_tx_rollback(db);
        return;
    }
    cp_webhook_request_event("grant.login", request_id, person, account, actor, 0, host->hostname);
}
