/* SPDX-License-Identifier: BSD-2-Clause */
/* The decision path of one login (see cp_explain.h). */
#include "config.h"
#include "cp_explain.h"
#include "cp_audit.h"
#include "cp_policy.h"
#include "cp_sql.h"
#include "cp_store.h"
#include "pc_err.h"
#include "pc_json.h"
#include "pc_time.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int cp_explain_note_begin(cp_conn *db, const char *txid, const char *account, json_object *rules)
{
    cp_stmt *st;

    st = cp_prepare(db, "INSERT INTO tx_explain(txid, account, rules) VALUES (?,?,?)");
    if (st) {
        cp_bind_text(st, 1, txid);
        cp_bind_text(st, 2, account);
        cp_bind_text(st, 3, json_object_to_json_string_ext(rules, JSON_C_TO_STRING_PLAIN));
    }
    return cp_exec_stmt(st);
}

static const char *str(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && v ? json_object_get_string(v) : "";
}

static void when(int64_t t, char *out, size_t n)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(out, n, "%Y-%m-%d %H:%M:%S UTC", &tm))
        snprintf(out, n, "%lld", (long long)t);
}

static void say(json_object *lines, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(json_object *lines, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    json_object_array_add(lines, json_object_new_string(buf));
}

/* The transaction's own row and what begin noted; PC_ERR_NOTFOUND if there is none. */
static int load_tx(cp_conn *db, const char *txid, json_object *o, int64_t *host_id)
{
    cp_stmt *st =
        cp_prepare(db, "SELECT t.user_name, t.rhost, t.service, t.state, t.created_at, t.host_id,"
                       " h.hostname, e.account, e.rules FROM transactions t"
                       " LEFT JOIN hosts h ON h.id = t.host_id"
                       " LEFT JOIN tx_explain e ON e.txid = t.txid WHERE t.txid = ?");
    static const char *const keys[] = { "user", "rhost", "service", "state" };
    json_object *rules = NULL;
    int rc;

    if (!st)
        return PC_ERR_STORE;
    cp_bind_text(st, 1, txid);
    rc = cp_step(st);
    if (rc != CP_ROW) {
        cp_finalize(st);
        return rc == CP_DONE ? PC_ERR_NOTFOUND : PC_ERR_STORE;
    }
    json_object_object_add(o, "txid", json_object_new_string(txid));
    for (int i = 0; i < 4; i++)
        json_object_object_add(o, keys[i], json_object_new_string(cp_col_text(st, i)));
    json_object_object_add(o, "started_at", json_object_new_int64(cp_col_int64(st, 4)));
    *host_id = cp_col_int64(st, 5);
    json_object_object_add(o, "host", json_object_new_string(cp_col_text(st, 6)));
    if (!cp_col_is_null(st, 7)) {
        const char *r = cp_col_text(st, 8);
        json_object_object_add(o, "account", json_object_new_string(cp_col_text(st, 7)));
        rules = json_tokener_parse(r); /* written by cp_explain_note_begin */
        if (rules && json_object_is_type(rules, json_type_array))
            json_object_object_add(o, "rules", rules);
        else
            json_object_put(rules);
    }
    cp_finalize(st);
    return PC_OK;
}

static void lock_state(cp_conn *db, const char *user, int64_t host_id, json_object *o)
{
    cp_stmt *st = cp_prepare(db,
                             "SELECT u.failures, u.locked_until, COALESCE(f.failures, 0),"
                             " COALESCE(f.locked_until, 0) FROM users u LEFT JOIN auth_failures f"
                             " ON f.user_id = u.id AND f.host_id = ?2 WHERE u.name = ?1");
    json_object *l;

    if (!st)
        return;
    cp_bind_text(st, 1, user);
    cp_bind_int64(st, 2, host_id);
    if (cp_step(st) == CP_ROW) {
        l = json_object_new_object();
        json_object_object_add(l, "failures_fleet", json_object_new_int64(cp_col_int64(st, 0)));
        json_object_object_add(l, "locked_until_fleet", json_object_new_int64(cp_col_int64(st, 1)));
        json_object_object_add(l, "failures_host", json_object_new_int64(cp_col_int64(st, 2)));
        json_object_object_add(l, "locked_until_host", json_object_new_int64(cp_col_int64(st, 3)));
        json_object_object_add(o, "lock", l);
    }
    cp_finalize(st);
}

static int audit_rows(cp_conn *db, const char *txid, json_object *o)
{
    cp_stmt *st = cp_prepare(db, "SELECT time, actor, action, result, reason FROM audit"
                                 " WHERE txid = ? ORDER BY id LIMIT 200");
    json_object *arr = json_object_new_array();
    int rc;

    if (!st) {
        json_object_put(arr);
        return PC_ERR_STORE;
    }
    cp_bind_text(st, 1, txid);
    while ((rc = cp_step(st)) == CP_ROW) {
        json_object *r = json_object_new_object();
        json_object_object_add(r, "time", json_object_new_int64(cp_col_int64(st, 0)));
        json_object_object_add(r, "actor", json_object_new_string(cp_col_text(st, 1)));
        json_object_object_add(r, "action", json_object_new_string(cp_col_text(st, 2)));
        json_object_object_add(r, "result", json_object_new_string(cp_col_text(st, 3)));
        json_object_object_add(r, "reason", json_object_new_string(cp_col_text(st, 4)));
        json_object_array_add(arr, r);
    }
    cp_finalize(st);
    json_object_object_add(o, "audit", arr);
    return rc == CP_DONE ? PC_OK : PC_ERR_STORE;
}

/* text with each '@' replaced by who, cut to n - 1 bytes. */
static void fill(char *out, size_t n, const char *text, const char *who)
{
    size_t off = 0;

    for (; *text && off + 1 < n; text++) {
        const char *p = *text == '@' ? who : NULL;
        if (!p) {
            out[off++] = *text;
            continue;
        }
        for (; *p && off + 1 < n; p++)
            out[off++] = *p;
    }
    out[off] = '\0';
}

/* One sentence for one audit row of the login. */
static void step_text(json_object *lines, json_object *row, const char *user)
{
    static const struct {
        const char *action, *reason, *text;
    } known[] = {
        { "auth.begin", "second_factor_required", "the control plane asked for a second factor" },
        { "auth.begin", "unknown_user",
          "denied at once: @ is not a user of the control plane, so no second factor was asked" },
        { "auth.begin", "disabled", "denied at once: the user @ is disabled" },
        { "auth.begin", "no_factor",
          "denied at once: @ has no second factor (no TOTP enrolled and push is off)" },
        { "auth.begin", "policy_no_2fa",
          "no second factor asked: every matching rule says require_2fa false; the PAM module "
          "answered PAM_IGNORE and the rest of the PAM stack decided" },
        { "auth.begin", "exempt",
          "no second factor asked: @ is in the --exempt-group; the PAM module answered "
          "PAM_IGNORE and the rest of the PAM stack decided" },
        { "auth.totp", "totp_ok", "the TOTP code was right: allowed" },
        { "auth.totp", "wrong_code", "a wrong TOTP code was entered: denied" },
        { "auth.totp", "replayed", "the TOTP code had been used already (a replay): denied" },
        { "auth.totp", "locked",
          "the code was not checked: @ is locked on this host after too many wrong codes "
          "(--lockout-threshold): denied" },
        { "auth.totp", "locked_fleet",
          "the code was not checked: @ is locked on every host after wrong codes from several "
          "hosts (--lockout-fleet-threshold): denied" },
        { "auth.totp", "no_totp", "a code was entered but @ has no TOTP enrolled: denied" },
        { "auth.totp", "disabled", "the user @ was disabled meanwhile: denied" },
        { "push.create", NULL, "a push approval was sent to the approvers" },
        { "push.approve", "approved", "the push was approved by @ with the right number: allowed" },
        { "push.deny", "denied_by_approver", "the push was denied by @" },
        { "push.deny", "wrong_match", "@ typed a wrong number for the push: denied" },
        { "push.expire", NULL, "nobody answered the push in time: denied" },
    };
    const char *action = str(row, "action"), *reason = str(row, "reason");
    const char *actor = str(row, "actor");
    char t[40], text[512];

    when(json_object_get_int64(json_object_object_get(row, "time")), t, sizeof t);
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strcmp(known[i].action, action) != 0 ||
            (known[i].reason && strcmp(known[i].reason, reason) != 0))
            continue;
        /* '@' is the user, or for push decisions the approver */
        fill(text, sizeof text, known[i].text, strncmp(action, "push.", 5) == 0 ? actor : user);
        say(lines, "%s: %s.", t, text);
        return;
    }
    say(lines, "%s: %s by %s: %s (%s).", t, action, actor, str(row, "result"), reason);
}

static void rules_text(json_object *o, json_object *lines)
{
    json_object *rules;
    const char *user = str(o, "user"), *account = str(o, "account"), *host = str(o, "host");
    char names[512] = "";
    size_t n, off = 0;

    if (!json_object_object_get_ex(o, "account", NULL)) {
        say(lines, "Rules: not recorded for this login (it began before the control plane "
                   "recorded them).");
        return;
    }
    if (!json_object_object_get_ex(o, "rules", &rules) || !(n = json_object_array_length(rules))) {
        say(lines,
            "Rules: no rule lets %s log in as '%s' on %s (none names this person, or a group of "
            "theirs, with this account and this host's labels). sshd's principals command "
            "therefore gives a Portcullis certificate no principal for this account; add a rule "
            "(portcullis policy add) if the login should work.",
            user, account, host);
        return;
    }
    for (size_t i = 0; i < n && off < sizeof names - 1; i++) {
        json_object *r = json_object_array_get_idx(rules, i);
        int w = snprintf(names + off, sizeof names - off, "%s'%s'%s", i ? ", " : "", str(r, "name"),
                         json_object_get_boolean(json_object_object_get(r, "require_2fa"))
                             ? ""
                             : " (no second factor)");
        if (w < 0)
            break;
        off += (size_t)w;
    }
    say(lines, "Rules: %s may log in as '%s' on %s by the rule%s %s.", user, account, host,
        n > 1 ? "s" : "", names);
}

static void lock_text(json_object *o, json_object *lines)
{
    json_object *l;
    int64_t now = pc_now(), hu, fu;
    char t[40];

    if (!json_object_object_get_ex(o, "lock", &l)) {
        say(lines, "Lockout now: %s is not a user of the control plane now.", str(o, "user"));
        return;
    }
    hu = json_object_get_int64(json_object_object_get(l, "locked_until_host"));
    fu = json_object_get_int64(json_object_object_get(l, "locked_until_fleet"));
    if (fu > now) {
        when(fu, t, sizeof t);
        say(lines, "Lockout now: locked on every host until %s.", t);
    } else if (hu > now) {
        when(hu, t, sizeof t);
        say(lines, "Lockout now: locked on %s until %s (%lld failed codes counted there).",
            str(o, "host"), t,
            (long long)json_object_get_int64(json_object_object_get(l, "failures_host")));
    } else {
        say(lines, "Lockout now: not locked (%lld failed codes counted on %s).",
            (long long)json_object_get_int64(json_object_object_get(l, "failures_host")),
            str(o, "host"));
    }
}

/* ---- issue 18: logins decided on the host (failmode, offline) ---------------------------- */

/* The value of key=VALUE in an audit reason "WORD key=value …" ("" if absent); key NULL: the
 * first word. */
static void reason_token(const char *reason, const char *key, char *out, size_t n)
{
    size_t kl = key ? strlen(key) : 0;
    const char *p = reason;

    out[0] = '\0';
    while (p && *p) {
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (!key || (len > kl && strncmp(p, key, kl) == 0 && p[kl] == '=')) {
            size_t off = key ? kl + 1 : 0;
            snprintf(out, n, "%.*s", (int)(len - off), p + off);
            return;
        }
        p = end ? end + 1 : NULL;
    }
}

static const char *error_words(const char *error)
{
    return strcmp(error, "timeout") == 0 ? "did not answer in time"
           : strcmp(error, "garbage") == 0
               ? "answered with something that is not its API (a proxy or a captive portal?)"
           : strcmp(error, "server") == 0 ? "answered with a server error (HTTP 5xx)"
                                          : "was unreachable";
}

static void failmode_text(json_object *o, json_object *lines, const char *user, const char *host,
                          const char *result, const char *reason, const char *t)
{
    char mode[16], error[16], service[72], rhost[72];

    reason_token(reason, "failmode", mode, sizeof mode);
    reason_token(reason, "error", error, sizeof error);
    reason_token(reason, "service", service, sizeof service);
    reason_token(reason, "rhost", rhost, sizeof rhost);
    json_object_object_add(o, "account", json_object_new_string(user));
    json_object_object_add(o, "failmode", json_object_new_string(mode));
    json_object_object_add(o, "error", json_object_new_string(error));
    json_object_object_add(o, "service",
                           json_object_new_string(strcmp(service, "-") ? service : ""));
    json_object_object_add(o, "rhost", json_object_new_string(strcmp(rhost, "-") ? rhost : ""));
    say(lines, "Login %s: %s on %s from %s (%s), %s.", str(o, "txid"), user, host,
        strcmp(rhost, "-") ? rhost : "an unknown address",
        strcmp(service, "-") ? service : "unknown service", t);
    say(lines,
        "The control plane %s from host %s at %s (the agent's error: %s), so it never saw "
        "this login: no rule, second factor or lockout was checked.",
        error_words(error), host, t, error);
    if (strcmp(result, "allow") == 0)
        say(lines, "Failmode: failmode=safe admitted %s without a second factor.", user);
    else
        say(lines, "Failmode: failmode=secure refused %s (no second factor could be asked).", user);
    say(lines, "Outcome: %s.",
        strcmp(result, "allow") == 0 ? "allowed without a second factor (failmode=safe)"
                                     : "denied (failmode=secure)");
}

static void offline_text(json_object *o, json_object *lines, const char *person, const char *host,
                         const char *result, const char *reason, const char *t)
{
    char why[48], account[72];

    reason_token(reason, NULL, why, sizeof why);
    reason_token(reason, "account", account, sizeof account);
    json_object_object_add(o, "account", json_object_new_string(account));
    say(lines, "Login %s: %s as '%s' on %s, %s.", str(o, "txid"), person, account, host, t);
    if (strcmp(why, "certificate_2fa_offline") == 0)
        say(lines,
            "Offline: the control plane was unreachable from host %s, and its agent decided "
            "alone from its offline document: %s's certificate proved a second factor "
            "when it was issued, and a rule with second_factor per-certificate lets %s "
            "log in as '%s' there; the host's KRL was fresh. No second factor was asked "
            "again.",
            host, person, person, account);
    else if (strcmp(why, "offline_krl_stale") == 0)
        say(lines,
            "Offline: the control plane was unreachable from host %s, and its agent refused "
            "because its KRL (revoked certificates) was older than offline_krl_max_age: it "
            "could not know whether %s's certificate had been revoked.",
            host, person);
    else if (strcmp(why, "offline_code") == 0)
        say(lines,
            "Offline: the control plane was unreachable from host %s, and its agent checked "
            "the code %s typed against the hashed offline codes it holds for this host (a "
            "rule with offline_codes) and accepted it; that time step is spent, also online.",
            host, person);
    else if (strcmp(why, "offline_code_wrong") == 0 || strcmp(why, "offline_code_replayed") == 0 ||
             strcmp(why, "offline_code_locked") == 0)
        say(lines,
            "Offline: the control plane was unreachable from host %s, and its agent refused "
            "%s's code: %s.",
            host, person,
            strcmp(why, "offline_code_wrong") == 0
                ? "it matched no offline code of the current time steps"
            : strcmp(why, "offline_code_replayed") == 0
                ? "that code (or a later one) was already used"
                : "too many wrong codes on this host: locked for a while");
    else if (strcmp(why, "no_offline_rule_here") == 0)
        say(lines,
            "Offline: host %s reported an offline decision for %s as '%s', but no rule on "
            "that host lets it decide that login offline; the report is kept as the host's "
            "claim only and counts as no login of %s.",
            host, person, account, person);
    else
        say(lines,
            "Offline: the control plane was unreachable from host %s; its agent decided "
            "alone (%s).",
            host, why);
    say(lines, "Outcome: %s.",
        strcmp(result, "allow") == 0     ? "allowed (offline)"
        : strcmp(result, "invalid") == 0 ? "not counted (the host's claim only)"
                                         : "denied (offline)");
}

/* A login the host decided alone and reported later (auth.failmode, auth.offline); the id is
 * the host's event id. PC_ERR_NOTFOUND if there is none. */
static int explain_host_decision(cp_conn *db, const char *txid, json_object **out)
{
    cp_stmt *st = cp_prepare(db, "SELECT time, actor, action, user_name, host, result,"
                                 " reason FROM audit WHERE txid = ? AND action IN"
                                 " ('auth.failmode', 'auth.offline') ORDER BY id LIMIT 1");
    json_object *o, *lines, *rows, *row;
    const char *action, *user, *host, *result, *reason;
    char t[40];
    int rc;

    if (!st)
        return PC_ERR_STORE;
    cp_bind_text(st, 1, txid);
    if ((rc = cp_step(st)) != CP_ROW) {
        cp_finalize(st);
        return rc == CP_DONE ? PC_ERR_NOTFOUND : PC_ERR_STORE;
    }
    action = cp_col_text(st, 2);
    user = cp_col_text(st, 3);
    host = cp_col_text(st, 4);
    result = cp_col_text(st, 5);
    reason = cp_col_text(st, 6);
    o = json_object_new_object();
    lines = json_object_new_array();
    json_object_object_add(o, "txid", json_object_new_string(txid));
    json_object_object_add(o, "user", json_object_new_string(user));
    json_object_object_add(o, "host", json_object_new_string(host));
    json_object_object_add(o, "state",
                           json_object_new_string(strcmp(result, "allow") == 0 ? "allowed"
                                                                               : "denied"));
    json_object_object_add(o, "source",
                           json_object_new_string(
                               strcmp(action, "auth.failmode") == 0 ? "failmode" : "offline"));
    rows = json_object_new_array();
    row = json_object_new_object();
    json_object_object_add(row, "time", json_object_new_int64(cp_col_int64(st, 0)));
    json_object_object_add(row, "actor", json_object_new_string(cp_col_text(st, 1)));
    json_object_object_add(row, "action", json_object_new_string(action));
    json_object_object_add(row, "result", json_object_new_string(result));
    json_object_object_add(row, "reason", json_object_new_string(reason));
    json_object_array_add(rows, row);
    json_object_object_add(o, "audit", rows);
    {
        char at[24];
        int64_t when_at;
        reason_token(reason, "at", at, sizeof at);
        when_at = at[0] ? strtoll(at, NULL, 10) : cp_col_int64(st, 0);
        json_object_object_add(o, "started_at", json_object_new_int64(when_at));
        when(when_at, t, sizeof t);
    }
    if (strcmp(action, "auth.failmode") == 0)
        failmode_text(o, lines, user, host, result, reason, t);
    else
        offline_text(o, lines, user, host, result, reason, t);
    when(cp_col_int64(st, 0), t, sizeof t);
    say(lines,
        "Failmode/offline: used; host %s decided this login without the control plane and "
        "reported it at %s, when it could reach the control plane again (audit source %s).",
        host, t, str(o, "source"));
    cp_finalize(st);
    json_object_object_add(o, "explanation", lines);
    *out = o;
    return PC_OK;
}

/* ---- end of issue 18 -------------------------------------------------------------------- */

int cp_explain_tx(const char *txid, json_object **out)
{
    cp_conn *db = cp_db();
    json_object *o, *lines, *rows;
    const char *state, *last;
    size_t n;
    int64_t host_id = 0;
    char t[40];
    int rc;

    if (!db)
        return PC_ERR_STORE;
    o = json_object_new_object();
    if ((rc = load_tx(db, txid, o, &host_id)) != PC_OK || (rc = audit_rows(db, txid, o)) != PC_OK) {
        json_object_put(o);
        return rc == PC_ERR_NOTFOUND ? explain_host_decision(db, txid, out) : rc; /* issue 18 */
    }
    lock_state(db, str(o, "user"), host_id, o);
    lines = json_object_new_array();
    when(json_object_get_int64(json_object_object_get(o, "started_at")), t, sizeof t);
    say(lines, "Login %s: %s%s%s%s on %s from %s (%s), %s.", txid, str(o, "user"),
        json_object_object_get_ex(o, "account", NULL) ? " as '" : "", str(o, "account"),
        json_object_object_get_ex(o, "account", NULL) ? "'" : "", str(o, "host"),
        *str(o, "rhost") ? str(o, "rhost") : "an unknown address",
        *str(o, "service") ? str(o, "service") : "unknown service", t);
    rules_text(o, lines);
    json_object_object_get_ex(o, "audit", &rows);
    for (size_t i = 0; i < json_object_array_length(rows); i++)
        step_text(lines, json_object_array_get_idx(rows, i), str(o, "user"));
    state = str(o, "state");
    n = json_object_array_length(rows);
    last = n ? str(json_object_array_get_idx(rows, n - 1), "result") : "";
    say(lines, "Outcome: %s.",
        strcmp(state, "allowed") == 0  ? "allowed"
        : strcmp(state, "denied") == 0 ? "denied"
        : strcmp(last, "deny") == 0
            ? "denied (the last answer was a refusal; the login stayed open for another try "
              "until it expired)"
            : "not finished (no code or push answer was given, or the login was abandoned)");
    lock_text(o, lines);
    say(lines, "Failmode/offline: not used; the control plane decided this login itself (a host "
               "that cannot reach it decides by its PAM failmode or offline, and reports such a "
               "login later under an id of its own: audit action auth.failmode or auth.offline).");
    json_object_object_add(o, "explanation", lines);
    *out = o;
    return PC_OK;
}
