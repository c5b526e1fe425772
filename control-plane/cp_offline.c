/* SPDX-License-Identifier: BSD-2-Clause */
/* Issue 13: the per-host offline document (see cp_offline.h). */
#include "config.h"
#include "cp_offline.h"
#include "cp_offcodes.h"
#include "cp_audit.h"
#include "cp_ca.h"
#include "cp_ca_keys.h"
#include "cp_users.h"
#include "cp_policy.h"
#include "cp_store.h"
#include "pc_err.h"
#include "pc_log.h"
#include "pc_time.h"
#include "pc_valid.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every account named by some rule ("$user" stands for the person). */
int cp_offline_accounts_named(json_object *rules, json_object *accounts)
{
    for (size_t i = 0; i < json_object_array_length(rules); i++) {
        json_object *a = json_object_object_get(json_object_array_get_idx(rules, i), "accounts");
        for (size_t j = 0; a && j < json_object_array_length(a); j++) {
            const char *s = json_object_get_string(json_object_array_get_idx(a, j));
            if (s && !json_object_object_get_ex(accounts, s, NULL))
                json_object_object_add(accounts, s, NULL);
        }
    }
    return PC_OK;
}

/* The fingerprints of person's registered keys (a certificate's key must be one of them). */
static json_object *fingerprints_of(cp_conn *db, const char *person)
{
    cp_stmt *st = cp_prepare(db, "SELECT k.fingerprint FROM user_ssh_keys k JOIN users u"
                                 " ON u.id = k.user_id WHERE u.name = ? ORDER BY 1");
    json_object *arr = json_object_new_array();

    if (!st)
        return arr;
    cp_bind_text(st, 1, person);
    while (cp_step(st) == CP_ROW && json_object_array_length(arr) < 64)
        json_object_array_add(arr, json_object_new_string(cp_col_text(st, 0)));
    cp_finalize(st);
    return arr;
}

/* The pairs of one enabled person. */
static int person_pairs(cp_conn *db, int64_t host_id, const char *person, json_object *accounts,
                        json_object *arr)
{
    json_object_object_foreach(accounts, acct, unused)
    {
        const char *account = strcmp(acct, "$user") == 0 ? person : acct;
        json_object *opts = NULL, *e;
        struct cp_policy_grant g = { 0 };
        int per_cert = 0, rc;

        (void)unused;
        if (strcmp(acct, person) == 0 && json_object_object_get_ex(accounts, "$user", NULL))
            continue; /* named both ways: "$user" gives it once */
        if ((rc = cp_policy_per_certificate(db, person, account, host_id, &per_cert)) != PC_OK)
            return rc;
        if (!per_cert)
            continue;
        if ((rc = cp_policy_host_grant_options(db, person, account, host_id, &opts, &g)) != PC_OK)
            return rc;
        if (!opts)
            continue; /* rules that conflict: no principal online either */
        if (g.until > 0) {
            /* Access only a grant gives: the document has no end, a grant has (and may be
             * revoked); such a pair is decided online only. */
            json_object_put(opts);
            continue;
        }
        if (json_object_array_length(arr) >= CP_OFFLINE_MAX_ENTRIES) {
            json_object_put(opts);
            return PC_ERR_TOOBIG;
        }
        e = json_object_new_object();
        json_object_object_add(e, "person", json_object_new_string(person));
        json_object_object_add(e, "account", json_object_new_string(account));
        json_object_object_add(e, "options", opts);
        json_object_object_add(e, "fingerprints", fingerprints_of(db, person));
        json_object_array_add(arr, e);
    }
    return PC_OK;
}

/* The user CA key(s) a certificate may come from (both during a rotation's overlap), as public
 * key lines. */
static int user_ca_lines(json_object **out)
{
    *out = cp_ca_lines_json(CP_CA_USER);
    return *out ? PC_OK : PC_ERR_STATE;
}

int cp_offline_host_rules(const struct cp_identity *host, json_object **out)
{
    cp_conn *db = cp_db();
    json_object *rules = NULL, *accounts = json_object_new_object(), *arr = json_object_new_array(),
                *o, *cas = NULL, *codes = NULL;
    cp_stmt *st = NULL;
    int rc, step;

    *out = NULL;
    if (!db || (rc = cp_policy_list(&rules)) != PC_OK) {
        rc = db ? rc : PC_ERR_STORE;
        goto out;
    }
    cp_offline_accounts_named(rules, accounts);
    if (cp_exec(db, "BEGIN") != PC_OK) {
        rc = PC_ERR_STORE;
        goto out;
    }
    if (!(st = cp_prepare(db, "SELECT name FROM users WHERE enabled = 1 ORDER BY name"))) {
        rc = PC_ERR_STORE;
        goto out;
    }
    rc = PC_OK;
    while (rc == PC_OK && (step = cp_step(st)) == CP_ROW) {
        const char *person = cp_col_text(st, 0);
        if (!cp_ca_key_id_revoked(db, person))
            rc = person_pairs(db, host->host_id, person, accounts, arr);
    }
    if (rc == PC_OK && step != CP_DONE)
        rc = PC_ERR_STORE;
out:
    if (st)
        cp_finalize(st);
    if (db && cp_autocommit(db) == 0)
        cp_tx_rollback(db); /* read only */
    if (rc == PC_OK && (rc = user_ca_lines(&cas)) == PC_OK) {
        o = json_object_new_object();
        json_object_object_add(o, "generated_at", json_object_new_int64(pc_now()));
        json_object_object_add(o, "user_ca", cas);
        json_object_object_add(o, "per_certificate", arr);
        *out = o;
        if ((rc = cp_offcodes_document(db, host->host_id, accounts, &codes)) == PC_OK) {
            json_object_object_add(o, "offline_codes", codes);
        } else {
            json_object_put(o);
            *out = NULL;
        }
    } else {
        json_object_put(arr);
    }
    json_object_put(rules);
    json_object_put(accounts);
    return rc;
}

/* ---- offline events --------------------------------------------------------------------- */

/* ---- issue 18: failmode reports (agent/ag_failmode.h) ------------------------------------- */

/* 1 if s is empty or up to max bytes of [A-Za-z0-9] and extra. */
static int plain_or_empty(const char *s, size_t max, const char *extra)
{
    if (strlen(s) > max)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr(extra, *s)))
            return 0;
    return 1;
}

/* {"id","at","kind":"failmode","user","action","failmode","error","service"?,"rhost"?}: the
 * module's failmode after the agent's begin error; action allow exactly for failmode safe. */
static int failmode_event_ok(json_object *ev, size_t i, int64_t now, struct pc_jerr *e)
{
    static const char *const fields[] = { "id",       "at",    "kind",    "user",  "action",
                                          "failmode", "error", "service", "rhost", NULL };
    static const char *const errors[] = { "unreachable", "timeout", "garbage", "server", NULL };
    const char *id = NULL, *user = NULL, *action = NULL, *mode = NULL, *err = NULL;
    const char *service = "", *rhost = "";
    int64_t at = 0;
    int known = 0;

    if (pc_json_only_fields(ev, fields, e) != PC_OK ||
        pc_json_get_str(ev, "id", 1, 32, &id, e) != PC_OK ||
        pc_json_get_int(ev, "at", 1, now - 30 * 86400, now + 300, &at, e) != PC_OK ||
        pc_json_get_str(ev, "user", 1, 64, &user, e) != PC_OK ||
        pc_json_get_str(ev, "action", 1, 8, &action, e) != PC_OK ||
        pc_json_get_str(ev, "failmode", 1, 8, &mode, e) != PC_OK ||
        pc_json_get_str(ev, "error", 1, 16, &err, e) != PC_OK ||
        (json_object_object_get_ex(ev, "service", NULL) &&
         pc_json_get_str(ev, "service", 1, 64, &service, e) != PC_OK) ||
        (json_object_object_get_ex(ev, "rhost", NULL) &&
         pc_json_get_str(ev, "rhost", 1, 64, &rhost, e) != PC_OK)) {
        if (!e->code)
            e->code = "bad_field";
        return PC_ERR_INVAL;
    }
    for (size_t k = 0; errors[k]; k++)
        known |= strcmp(err, errors[k]) == 0;
    if (!pc_valid_hex(id, 32, 32) || !cp_user_name_valid(user) || !known ||
        !((strcmp(mode, "safe") == 0 && strcmp(action, "allow") == 0) ||
          (strcmp(mode, "secure") == 0 && strcmp(action, "deny") == 0)) ||
        !plain_or_empty(service, 64, "._-") || !plain_or_empty(rhost, 64, ".:-_%")) {
        e->code = "bad_field";
        snprintf(e->message, sizeof e->message,
                 "event %zu: id (32 hex), user, failmode with its action, error, service or "
                 "rhost is invalid",
                 i);
        return PC_ERR_INVAL;
    }
    return PC_OK;
}

/* The audit row's reason of a failmode report. */
static void failmode_reason(json_object *ev, char *out, size_t n)
{
    json_object *v = NULL;
    const char *service = json_object_object_get_ex(ev, "service", &v) ? json_object_get_string(v)
                                                                       : "-";
    const char *rhost = json_object_object_get_ex(ev, "rhost", &v) ? json_object_get_string(v)
                                                                   : "-";

    snprintf(out, n, "failmode=%s error=%s service=%s rhost=%s at=%lld",
             json_object_get_string(json_object_object_get(ev, "failmode")),
             json_object_get_string(json_object_object_get(ev, "error")), service, rhost,
             (long long)json_object_get_int64(json_object_object_get(ev, "at")));
}

/* ---- end of issue 18 -------------------------------------------------------------------- */

/* One event: a failmode report (issue 18) or an offline decision. PC_OK or PC_ERR_INVAL with
 * e saying why (naming the event's index). */
static int event_ok(json_object *ev, size_t i, int64_t now, struct pc_jerr *e)
{
    static const char *const fields[] = { "id",     "at",     "user", "person",
                                          "action", "reason", "step", NULL };
    static const char *const reasons[] = { "certificate_2fa_offline",
                                           "offline_krl_stale",
                                           "offline_code",
                                           "offline_code_wrong",
                                           "offline_code_replayed",
                                           "offline_code_locked",
                                           NULL };
    const char *id = NULL, *user = NULL, *person = NULL, *action = NULL, *reason = NULL;
    int64_t at = 0, step = 0;
    int known = 0;

    if (json_object_is_type(ev, json_type_object) &&
        json_object_object_get_ex(ev, "kind", NULL)) { /* issue 18 */
        const char *kind = NULL;
        if (pc_json_get_str(ev, "kind", 1, 16, &kind, e) != PC_OK ||
            strcmp(kind, "failmode") != 0) {
            e->code = "bad_field";
            snprintf(e->message, sizeof e->message, "event %zu: unknown kind", i);
            return PC_ERR_INVAL;
        }
        return failmode_event_ok(ev, i, now, e);
    }
    if (!json_object_is_type(ev, json_type_object)) {
        e->code = "bad_field";
        snprintf(e->message, sizeof e->message, "event %zu: not an object", i);
        return PC_ERR_INVAL;
    }
    if (pc_json_only_fields(ev, fields, e) != PC_OK ||
        pc_json_get_str(ev, "id", 1, 32, &id, e) != PC_OK ||
        pc_json_get_int(ev, "at", 1, now - 30 * 86400, now + 300, &at, e) != PC_OK ||
        pc_json_get_str(ev, "user", 1, 64, &user, e) != PC_OK ||
        pc_json_get_str(ev, "person", 1, 64, &person, e) != PC_OK ||
        pc_json_get_str(ev, "action", 1, 8, &action, e) != PC_OK ||
        pc_json_get_str(ev, "reason", 1, 64, &reason, e) != PC_OK ||
        pc_json_get_int(ev, "step", 0, 0, INT64_MAX / 2, &step, e) != PC_OK) {
        if (!e->code)
            e->code = "bad_field";
        return PC_ERR_INVAL;
    }
    for (size_t k = 0; reasons[k]; k++)
        known |= strcmp(reason, reasons[k]) == 0;
    if (!pc_valid_hex(id, 32, 32) || !cp_user_name_valid(user) || !cp_user_name_valid(person) ||
        !known || (strcmp(action, "allow") != 0 && strcmp(action, "deny") != 0)) {
        e->code = "bad_field";
        snprintf(e->message, sizeof e->message,
                 "event %zu: id (32 hex), user, person, action or reason is invalid", i);
        return PC_ERR_INVAL;
    }
    return PC_OK;
}

int cp_offline_events_ok(json_object *events, struct pc_jerr *e)
{
    if (!events || !json_object_is_type(events, json_type_array) ||
        json_object_array_length(events) > CP_OFFLINE_EVENTS_MAX) {
        e->code = "bad_field";
        snprintf(e->message, sizeof e->message, "field 'events' must be an array of at most %d",
                 CP_OFFLINE_EVENTS_MAX);
        return PC_ERR_INVAL;
    }
    return PC_OK;
}

/* The audit row of an event that was not valid: the host sent it, nobody logged in by it. Its
 * id is kept when it is one (32 hex), so the host's own log can be matched. */
static int event_rejected(cp_conn *db, const struct cp_identity *host, const char *actor,
                          json_object *ev, const struct pc_jerr *e)
{
    json_object *v = NULL;
    const char *id = json_object_is_type(ev, json_type_object) &&
                             json_object_object_get_ex(ev, "id", &v) &&
                             json_object_is_type(v, json_type_string)
                         ? json_object_get_string(v)
                         : NULL;
    char reason[300];
    struct cp_audit_row row = { .actor = actor,
                                .action = "auth.offline",
                                .host = host->hostname,
                                .result = "rejected",
                                .reason = reason,
                                .txid = id && pc_valid_hex(id, 32, 32) ? id : NULL,
                                .source = "offline" };

    snprintf(reason, sizeof reason, "%s: %s", e->code ? e->code : "bad_field", e->message);
    pc_log(PC_LOG_WARN, "event=offline_event_rejected host=%s why=\"%s\"", host->hostname,
           e->message);
    return cp_audit_add(db, &row);
}

/* 1 if the id was new (and is now stored), 0 if already there, <0 on error. */
static int event_claim(cp_conn *db, int64_t host_id, const char *id)
{
    cp_stmt *st = cp_prepare(db, "INSERT INTO offline_events(id, host_id,"
                                 " received_at) VALUES (?,?,?) ON CONFLICT DO NOTHING");
    int rc;

    if (!st)
        return PC_ERR_STORE;
    cp_bind_text(st, 1, id);
    cp_bind_int64(st, 2, host_id);
    cp_bind_int64(st, 3, pc_now());
    rc = cp_step(st);
    cp_finalize(st);
    if (rc != CP_DONE)
        return PC_ERR_STORE;
    return cp_changes(db) == 1;
}

/* 1 in *ok if (person, the event's account) is a pair of this host's offline document for the
 * kind of decision the event reports: offline codes (reasons offline_code*) need a rule with
 * offline_codes, certificate decisions a per-certificate rule. */
static int offline_pair_here(cp_conn *db, const char *person, json_object *ev, int64_t host_id,
                             int *ok)
{
    const char *account = json_object_get_string(json_object_object_get(ev, "user"));
    const char *why = json_object_get_string(json_object_object_get(ev, "reason"));
    int64_t secs = 0;
    int rc;

    *ok = 0;
    if (why && strncmp(why, "offline_code", 12) == 0) {
        rc = cp_policy_offline_codes(db, person, account, host_id, &secs);
        *ok = rc == PC_OK && secs > 0;
        return rc;
    }
    return cp_policy_per_certificate(db, person, account, host_id, ok);
}

int cp_offline_events_add(const struct cp_identity *host, json_object *events, int *added,
                          int *dups, int *rejected)
{
    cp_conn *db = cp_db();
    char actor[48], reason[256];
    int64_t now = pc_now();
    int rc = PC_OK;

    *added = *dups = *rejected = 0;
    if (!db || cp_tx_begin(db) != PC_OK)
        return PC_ERR_STORE;
    snprintf(actor, sizeof actor, "host:%lld", (long long)host->host_id);
    for (size_t i = 0; rc == PC_OK && i < json_object_array_length(events); i++) {
        json_object *ev = json_object_array_get_idx(events, i);
        struct pc_jerr e = { 0 };
        const char *id;
        struct cp_audit_row row;
        int failmode, r, per_cert = 0;

        if (event_ok(ev, i, now, &e) != PC_OK) {
            rc = event_rejected(db, host, actor, ev, &e);
            (*rejected)++;
            continue;
        }
        id = json_object_get_string(json_object_object_get(ev, "id"));
        row = (struct cp_audit_row){
            .actor = actor,
            .action = "auth.offline",
            .user = json_object_get_string(json_object_object_get(ev, "person")),
            .host = host->hostname,
            .result = json_object_get_string(json_object_object_get(ev, "action")),
            .reason = reason,
            .txid = id,
            .source = "offline",
        };
        failmode = json_object_object_get_ex(ev, "kind", NULL); /* issue 18 */
        r = event_claim(db, host->host_id, id);

        if (failmode) {
            row.action = "auth.failmode";
            row.user = json_object_get_string(json_object_object_get(ev, "user"));
            row.source = "failmode";
        }

        if (r < 0) {
            rc = r;
        } else if (r == 0) {
            (*dups)++;
        } else if (failmode) {
            failmode_reason(ev, reason, sizeof reason);
            rc = cp_audit_add(db, &row);
            (*added)++;
        } else if ((rc = offline_pair_here(db, row.user, ev, host->host_id, &per_cert)) == PC_OK) {
            /* A host decides offline only for a pair of its document: an event for any other
             * (person, account) is the host's claim, never a login of that person on record. */
            snprintf(reason, sizeof reason, "%s%s account=%s at=%lld",
                     per_cert ? "" : "no_offline_rule_here claimed=",
                     json_object_get_string(json_object_object_get(ev, "reason")),
                     json_object_get_string(json_object_object_get(ev, "user")),
                     (long long)json_object_get_int64(json_object_object_get(ev, "at")));
            if (!per_cert)
                row.result = "invalid";
            rc = cp_audit_add(db, &row);
            (*added)++;
            /* an offline code spent: refused online too (the host must hold its codes) */
            if (rc == PC_OK && strcmp(row.result, "allow") == 0 &&
                json_object_object_get_ex(ev, "step", NULL) &&
                strcmp(json_object_get_string(json_object_object_get(ev, "reason")),
                       "offline_code") == 0)
                rc = cp_offcodes_mark_used(db, host->host_id, row.user,
                                           json_object_get_int64(
                                               json_object_object_get(ev, "step")));
        }
    }
    if (rc == PC_OK)
        rc = cp_tx_commit(db);
    if (rc != PC_OK)
        cp_tx_rollback(db);
    return rc;
}
