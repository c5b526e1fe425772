/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "cp_policy.h"
#include "pc_offcode.h"
#include "cp_access.h"
#include "cp_audit.h"
#include "cp_store.h"
#include "pc_err.h"
#include "pc_keyopts.h"
#include "pc_time.h"
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const known_ext[CP_POLICY_EXT_MAX] = {
    "permit-X11-forwarding", "permit-agent-forwarding", "permit-port-forwarding", "permit-pty",
    "permit-user-rc",
}; /* byte order, as certificates want them */

static int jfail(struct pc_jerr *e, const char *field, const char *why)
{
    e->code = "bad_field";
    snprintf(e->message, sizeof e->message, "field '%s' %s", field, why);
    return PC_ERR_INVAL;
}

static int name_chars_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || strchr("_.-", s[i])))
            return 0;
    return 1;
}

/* Every item passes ok(); the array is copied (deduplicated) into canon under key. */
static int copy_names(json_object *body, const char *key, int required, int (*ok)(const char *),
                      json_object *canon, struct pc_jerr *e)
{
    json_object *arr = NULL, *out = json_object_new_array();
    int rc = pc_json_get_str_array(body, key, required, 256, 64, &arr, e);

    for (size_t i = 0; rc == PC_OK && arr && i < json_object_array_length(arr); i++) {
        const char *s = json_object_get_string(json_object_array_get_idx(arr, i));
        int dup = 0;
        if (!ok(s))
            rc = jfail(e, key, "has an invalid name");
        for (size_t j = 0; j < json_object_array_length(out); j++)
            dup |= strcmp(json_object_get_string(json_object_array_get_idx(out, j)), s) == 0;
        if (rc == PC_OK && !dup)
            json_object_array_add(out, json_object_new_string(s));
    }
    if (rc != PC_OK) {
        json_object_put(out);
        return rc;
    }
    json_object_object_add(canon, key, out);
    return PC_OK;
}

static int user_ok(const char *s)
{
    return cp_user_name_valid(s);
}

static int group_ok(const char *s)
{
    return name_chars_ok(s, 64);
}

static int account_ok(const char *s)
{
    return strcmp(s, "$user") == 0 || cp_user_name_valid(s);
}

static int copy_hosts(json_object *body, json_object *canon, struct pc_jerr *e)
{
    json_object *h = NULL, *out = json_object_new_object();

    if (json_object_object_get_ex(body, "hosts", &h)) {
        if (!json_object_is_type(h, json_type_object) || json_object_object_length(h) > 32) {
            json_object_put(out);
            return jfail(e, "hosts", "must be an object of at most 32 string labels");
        }
        json_object_object_foreach(h, k, v)
        {
            if (strlen(k) == 0 || strlen(k) > 64 || !pc_text_is_clean(k, 0) ||
                !json_object_is_type(v, json_type_string) || json_object_get_string_len(v) > 256 ||
                strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v) ||
                !pc_text_is_clean(json_object_get_string(v), 0)) {
                json_object_put(out);
                return jfail(e, "hosts", "must be an object of at most 32 string labels");
            }
            json_object_object_add(out, k, json_object_new_string(json_object_get_string(v)));
        }
    }
    json_object_object_add(canon, "hosts", out);
    return PC_OK;
}

static int copy_extensions(json_object *body, json_object *canon, struct pc_jerr *e)
{
    json_object *arr = NULL, *out;
    int want[CP_POLICY_EXT_MAX] = { 0, 0, 0, 1, 1 };
    int rc = pc_json_get_str_array(body, "extensions", 0, 16, 64, &arr, e);

    if (rc != PC_OK)
        return rc;
    if (arr) {
        memset(want, 0, sizeof want);
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
            const char *s = json_object_get_string(json_object_array_get_idx(arr, i));
            int found = 0;
            for (int k = 0; k < CP_POLICY_EXT_MAX; k++)
                if (strcmp(known_ext[k], s) == 0)
                    want[k] = found = 1;
            if (!found)
                return jfail(e, "extensions",
                             "may only hold permit-pty, permit-port-forwarding, "
                             "permit-agent-forwarding, permit-X11-forwarding, permit-user-rc");
        }
    }
    out = json_object_new_array();
    for (int k = 0; k < CP_POLICY_EXT_MAX; k++)
        if (want[k])
            json_object_array_add(out, json_object_new_string(known_ext[k]));
    json_object_object_add(canon, "extensions", out);
    return PC_OK;
}

/* "CIDR[,CIDR]…" with numeric IPv4/IPv6 addresses and optional prefix lengths. */
static int cidrs_ok(const char *s)
{
    char buf[1025], *save = NULL, *tok;
    unsigned char addr[16];

    if (strlen(s) >= sizeof buf)
        return 0;
    memcpy(buf, s, strlen(s) + 1);
    if (!*buf || buf[0] == ',' || buf[strlen(buf) - 1] == ',' || strstr(buf, ",,"))
        return 0;
    for (char *p = buf; (tok = strtok_r(p, ",", &save)); p = NULL) {
        char *slash = strchr(tok, '/');
        int v6 = strchr(tok, ':') != NULL;
        if (slash) {
            char *end;
            long bits;
            *slash = '\0';
            if (!slash[1] || strspn(slash + 1, "0123456789") != strlen(slash + 1))
                return 0;
            bits = strtol(slash + 1, &end, 10);
            if (bits < 0 || bits > (v6 ? 128 : 32) || strlen(slash + 1) > 3)
                return 0;
        }
        if (inet_pton(v6 ? AF_INET6 : AF_INET, tok, addr) != 1)
            return 0;
    }
    return 1;
}

static int copy_scalars(json_object *body, json_object *canon, struct pc_jerr *e)
{
    const char *name = NULL, *src = NULL, *cmd = NULL;
    int req2fa = 1;
    int64_t max_ttl = 28800;
    int rc;

    if ((rc = pc_json_get_str(body, "name", 1, 64, &name, e)) != PC_OK ||
        (rc = pc_json_get_bool(body, "require_2fa", 0, &req2fa, e)) != PC_OK ||
        (rc = pc_json_get_int(body, "max_ttl", 0, 300, 604800, &max_ttl, e)) != PC_OK ||
        (rc = pc_json_get_str(body, "source_address", 0, 1024, &src, e)) != PC_OK ||
        (rc = pc_json_get_str(body, "force_command", 0, 1024, &cmd, e)) != PC_OK)
        return rc;
    if (!name_chars_ok(name, 64))
        return jfail(e, "name", "must be 1-64 characters of A-Z a-z 0-9 _ . -");
    if (src && !cidrs_ok(src))
        return jfail(e, "source_address", "must be a comma-separated list of addresses or CIDRs");
    /* It is printed inside command="…" of the principals line of the hosts the rule matches. */
    if (cmd && !pc_keyopts_command_ok(cmd))
        return jfail(e, "force_command",
                     "must be 1-1024 characters of printable ASCII without "
                     "'\"' or '\\'");
    json_object_object_add(canon, "name", json_object_new_string(name));
    json_object_object_add(canon, "require_2fa", json_object_new_boolean(req2fa));
    json_object_object_add(canon, "max_ttl", json_object_new_int64(max_ttl));
    if (src)
        json_object_object_add(canon, "source_address", json_object_new_string(src));
    if (cmd)
        json_object_object_add(canon, "force_command", json_object_new_string(cmd));
    return PC_OK;
}

/* ---- access on request: requires_request, approver_group, max_duration ------------------- */

static int copy_request_terms(json_object *body, json_object *canon, struct pc_jerr *e)
{
    const char *grp = NULL;
    int req = 0;
    int64_t maxd = CP_ACCESS_DEFAULT_MAX;
    int rc;

    if ((rc = pc_json_get_bool(body, "requires_request", 0, &req, e)) != PC_OK ||
        (rc = pc_json_get_str(body, "approver_group", 0, 64, &grp, e)) != PC_OK ||
        (rc = pc_json_get_int(body, "max_duration", 0, CP_ACCESS_MIN_DURATION,
                              CP_ACCESS_MAX_DURATION, &maxd, e)) != PC_OK)
        return rc;
    if (!req) {
        if (grp || json_object_object_get_ex(body, "max_duration", NULL))
            return jfail(e, "approver_group",
                         "and 'max_duration' belong to a rule with requires_request");
        return PC_OK;
    }
    if (!grp)
        return jfail(e, "approver_group", "is required with requires_request");
    if (!group_ok(grp))
        return jfail(e, "approver_group", "must be 1-64 characters of A-Z a-z 0-9 _ . -");
    json_object_object_add(canon, "requires_request", json_object_new_boolean(1));
    json_object_object_add(canon, "approver_group", json_object_new_string(grp));
    json_object_object_add(canon, "max_duration", json_object_new_int64(maxd));
    return PC_OK;
}

static int requires_request(json_object *pol)
{
    json_object *v;
    return json_object_object_get_ex(pol, "requires_request", &v) && json_object_get_boolean(v);
}

/* ---- issue 13: logins that survive the control plane ------------------------------------ */

/* "offline_codes": seconds (0 or absent: none; at most 72 h) of TOTP codes whose slow hashes
 * a host keeps for the people this rule allows there (step 2(b)). */
static int copy_offline_codes(json_object *body, json_object *canon, struct pc_jerr *e)
{
    int64_t secs = 0;
    int rc;

    if ((rc = pc_json_get_int(body, "offline_codes", 0, 0, PC_OFFCODE_MAX_SECS, &secs, e)) != PC_OK)
        return rc;
    if (secs > 0 && secs < 60)
        return jfail(e, "offline_codes", "must be 0 or at least 60 seconds");
    if (secs > 0)
        json_object_object_add(canon, "offline_codes", json_object_new_int64(secs));
    return PC_OK;
}

/* "second_factor": "every-login" (the default: a code or push at each login) or
 * "per-certificate" (a `portcullis login` certificate carrying PC_CERT_EXT_2FA is the proof). */
static int copy_offline_terms(json_object *body, json_object *canon, struct pc_jerr *e)
{
    const char *sf = NULL;
    int rc;

    if ((rc = pc_json_get_str(body, "second_factor", 0, 32, &sf, e)) != PC_OK)
        return rc;
    if (sf && strcmp(sf, "every-login") != 0 && strcmp(sf, "per-certificate") != 0)
        return jfail(e, "second_factor", "must be every-login or per-certificate");
    json_object_object_add(canon, "second_factor", json_object_new_string(sf ? sf : "every-login"));
    return copy_offline_codes(body, canon, e);
}

/* ---- end of issue 13's validation ---------------------------------------------------------- */

int cp_policy_validate(json_object *body, json_object **canon, struct pc_jerr *e)
{
    static const char *const fields[] = {
        "name",           "users",         "groups",           "accounts",
        "hosts",          "require_2fa",   "max_ttl",          "extensions",
        "source_address", "force_command", "requires_request", "approver_group",
        "max_duration",   "second_factor", "offline_codes",    NULL
    };
    json_object *c = json_object_new_object(), *u, *g, *a;
    int rc;

    if ((rc = pc_json_only_fields(body, fields, e)) != PC_OK ||
        (rc = copy_scalars(body, c, e)) != PC_OK ||
        (rc = copy_names(body, "users", 0, user_ok, c, e)) != PC_OK ||
        (rc = copy_names(body, "groups", 0, group_ok, c, e)) != PC_OK ||
        (rc = copy_names(body, "accounts", 1, account_ok, c, e)) != PC_OK ||
        (rc = copy_hosts(body, c, e)) != PC_OK || (rc = copy_extensions(body, c, e)) != PC_OK ||
        (rc = copy_request_terms(body, c, e)) != PC_OK ||
        (rc = copy_offline_terms(body, c, e)) != PC_OK)
        goto out;
    json_object_object_get_ex(c, "users", &u);
    json_object_object_get_ex(c, "groups", &g);
    json_object_object_get_ex(c, "accounts", &a);
    if (json_object_array_length(u) == 0 && json_object_array_length(g) == 0)
        rc = jfail(e, "users", "and 'groups' must not both be empty");
    else if (json_object_array_length(a) == 0)
        rc = jfail(e, "accounts", "must not be empty");
out:
    if (rc != PC_OK) {
        json_object_put(c);
        return rc;
    }
    *canon = c;
    return PC_OK;
}

int cp_policy_add(const struct cp_who *who, json_object *canon, json_object **out)
{
    cp_conn *db = cp_db();
    const char *name = json_object_get_string(json_object_object_get(canon, "name"));
    struct cp_audit_row row = { .actor = who->actor,
                                .action = "policy.add",
                                .result = "ok",
                                .reason = name,
                                .source = who->source };
    cp_stmt *st;
    int64_t new_id = 0;
    int rc;

    if (!db || cp_tx_begin(db) != PC_OK)
        return PC_ERR_STORE;
    if (!(st = cp_prepare(
              db, "INSERT INTO policies(name, body, created_at) VALUES (?,?,?) RETURNING id"))) {
        rc = PC_ERR_STORE;
        goto out;
    }
    cp_bind_text(st, 1, name);
    cp_bind_text(st, 2, pc_json_dump(canon));
    cp_bind_int64(st, 3, pc_now());
    rc = cp_exec_stmt_id(st, &new_id);
    if (rc == PC_OK) {
        json_object_object_add(canon, "id", json_object_new_int64(new_id));
        if ((rc = cp_audit_add(db, &row)) == PC_OK)
            rc = cp_tx_commit(db);
    }
out:
    if (rc != PC_OK) {
        cp_tx_rollback(db);
        return rc;
    }
    *out = json_object_get(canon);
    return PC_OK;
}

/* Every stored policy as parsed objects with "id". */
static int load_all(cp_conn *db, json_object **out)
{
    cp_stmt *st = cp_prepare(db, "SELECT id, body FROM policies ORDER BY id");
    json_object *arr;
    int rc;

    if (!st)
        return PC_ERR_STORE;
    arr = json_object_new_array();
    while ((rc = cp_step(st)) == CP_ROW) {
        json_object *p = json_tokener_parse(cp_col_text(st, 1));
        if (!p)
            continue;
        json_object_object_add(p, "id", json_object_new_int64(cp_col_int64(st, 0)));
        json_object_array_add(arr, p);
    }
    cp_finalize(st);
    if (rc != CP_DONE) {
        json_object_put(arr);
        return PC_ERR_STORE;
    }
    *out = arr;
    return PC_OK;
}

int cp_policy_list(json_object **out)
{
    cp_conn *db = cp_db();
    return db ? load_all(db, out) : PC_ERR_STORE;
}

int cp_policy_delete(const struct cp_who *who, int64_t id)
{
    cp_conn *db = cp_db();
    char reason[96];
    struct cp_audit_row row = { .actor = who->actor,
                                .action = "policy.delete",
                                .result = "ok",
                                .reason = reason,
                                .source = who->source };
    cp_stmt *st;
    int rc;

    if (!db || cp_tx_begin(db) != PC_OK)
        return PC_ERR_STORE;
    st = cp_prepare(db, "DELETE FROM policies WHERE id = ? RETURNING name");
    if (!st) {
        cp_tx_rollback(db);
        return PC_ERR_STORE;
    }
    cp_bind_int64(st, 1, id);
    rc = cp_step(st);
    if (rc == CP_ROW)
        snprintf(reason, sizeof reason, "id=%lld name=%.64s", (long long)id, cp_col_text(st, 0));
    cp_finalize(st);
    rc = rc == CP_ROW ? PC_OK : rc == CP_DONE ? PC_ERR_NOTFOUND : PC_ERR_STORE;
    if (rc == PC_OK && (rc = cp_audit_add(db, &row)) == PC_OK)
        rc = cp_tx_commit(db);
    if (rc != PC_OK)
        cp_tx_rollback(db);
    return rc;
}

/* ---- evaluation ---------------------------------------------------------------------------- */

static int arr_has(json_object *pol, const char *key, const char *s)
{
    json_object *a;
    if (!json_object_object_get_ex(pol, key, &a) || !json_object_is_type(a, json_type_array))
        return 0;
    for (size_t i = 0; i < json_object_array_length(a); i++)
        if (strcmp(json_object_get_string(json_object_array_get_idx(a, i)), s) == 0)
            return 1;
    return 0;
}

static int64_t user_id_of(cp_conn *db, const char *name)
{
    cp_stmt *st = cp_prepare(db, "SELECT id FROM users WHERE name = ?");
    int64_t id = 0;
    if (!st)
        return 0;
    cp_bind_text(st, 1, name);
    if (cp_step(st) == CP_ROW)
        id = cp_col_int64(st, 0);
    cp_finalize(st);
    return id;
}

static int names_person(cp_conn *db, json_object *pol, const char *person, int64_t uid)
{
    json_object *g;
    if (arr_has(pol, "users", person))
        return 1;
    if (!uid || !json_object_object_get_ex(pol, "groups", &g))
        return 0;
    for (size_t i = 0; i < json_object_array_length(g); i++)
        if (cp_user_in_group(db, uid, json_object_get_string(json_object_array_get_idx(g, i))))
            return 1;
    return 0;
}

static json_object *host_labels(cp_conn *db, int64_t host_id)
{
    cp_stmt *st = cp_prepare(db, "SELECT labels FROM hosts WHERE id = ?");
    json_object *l = NULL;
    if (st) {
        cp_bind_int64(st, 1, host_id);
        if (cp_step(st) == CP_ROW)
            l = json_tokener_parse(cp_col_text(st, 0));
        cp_finalize(st);
    }
    if (l && !json_object_is_type(l, json_type_object)) {
        json_object_put(l);
        l = NULL;
    }
    return l ? l : json_object_new_object();
}

static int hosts_match(json_object *pol, json_object *labels)
{
    json_object *h, *v;
    if (!json_object_object_get_ex(pol, "hosts", &h))
        return 1;
    json_object_object_foreach(h, k, want)
    {
        if (!json_object_object_get_ex(labels, k, &v) ||
            !json_object_is_type(v, json_type_string) ||
            strcmp(json_object_get_string(v), json_object_get_string(want)) != 0)
            return 0;
    }
    return 1;
}

/* Calls fn for every rule matching (person, account, host). */
static int each_match(cp_conn *db, const char *person, const char *account, int64_t host_id,
                      void (*fn)(json_object *pol, void *ctx), void *ctx)
{
    json_object *all = NULL, *labels;
    int64_t uid = user_id_of(db, person);
    int rc = load_all(db, &all);

    if (rc != PC_OK)
        return rc;
    labels = host_labels(db, host_id);
    for (size_t i = 0; i < json_object_array_length(all); i++) {
        json_object *p = json_object_array_get_idx(all, i);
        int acct = arr_has(p, "accounts", account) ||
                   (strcmp(account, person) == 0 && arr_has(p, "accounts", "$user"));
        int64_t until = 0;
        if (!acct || !names_person(db, p, person, uid) || !hosts_match(p, labels))
            continue;
        /* A rule that requires a request allows nothing without an active grant of it for
         * (person, account) whose own host selector this host matches too. */
        if (requires_request(p)) {
            char req_id[CP_ACCESS_ID_LEN + 1] = "";
            if (cp_access_grant_until(db, json_object_get_int64(json_object_object_get(p, "id")),
                                      person, account, labels, &until, req_id) != PC_OK ||
                until == 0)
                continue;
            json_object_object_add(p, "grant_until", json_object_new_int64(until));
            json_object_object_add(p, "grant_request", json_object_new_string(req_id));
        }
        fn(p, ctx);
    }
    json_object_put(labels);
    json_object_put(all);
    return PC_OK;
}

struct tally {
    int matched, need_2fa;
};

static void count_rule(json_object *pol, void *ctx)
{
    struct tally *t = ctx;
    t->matched++;
    if (json_object_get_boolean(json_object_object_get(pol, "require_2fa")))
        t->need_2fa++;
}

int cp_policy_allows(cp_conn *db, const char *person, const char *account, int64_t host_id,
                     int *allowed)
{
    struct tally t = { 0, 0 };
    int rc = each_match(db, person, account, host_id, count_rule, &t);
    *allowed = rc == PC_OK && t.matched > 0;
    return rc;
}

int cp_policy_no_2fa(cp_conn *db, const char *person, const char *account, int64_t host_id,
                     int *ignore)
{
    struct tally t = { 0, 0 };
    int rc = each_match(db, person, account, host_id, count_rule, &t);
    *ignore = rc == PC_OK && t.matched > 0 && t.need_2fa == 0;
    return rc;
}

/* ---- issue 13: the certificate as the second factor ----------------------------------------- */

struct per_cert_tally {
    int matched, per_cert;
};

static void count_per_cert(json_object *pol, void *ctx)
{
    struct per_cert_tally *t = ctx;
    json_object *v;

    t->matched++;
    if (json_object_object_get_ex(pol, "second_factor", &v) &&
        json_object_is_type(v, json_type_string) &&
        strcmp(json_object_get_string(v), "per-certificate") == 0)
        t->per_cert++;
}

int cp_policy_per_certificate(cp_conn *db, const char *person, const char *account, int64_t host_id,
                              int *per_cert)
{
    struct per_cert_tally t = { 0, 0 };
    int rc = each_match(db, person, account, host_id, count_per_cert, &t);
    *per_cert = rc == PC_OK && t.matched > 0 && t.per_cert == t.matched;
    return rc;
}

/* Offline codes: the shortest window of the matching rules, 0 if any of them has none. */
struct offcodes_tally {
    int matched, with;
    int64_t secs;
};

static void count_offcodes(json_object *pol, void *ctx)
{
    struct offcodes_tally *t = ctx;
    json_object *v;
    int64_t s;

    t->matched++;
    if (!json_object_object_get_ex(pol, "offline_codes", &v) ||
        !json_object_is_type(v, json_type_int) || (s = json_object_get_int64(v)) <= 0)
        return;
    t->with++;
    if (t->secs == 0 || s < t->secs)
        t->secs = s;
}

int cp_policy_offline_codes(cp_conn *db, const char *person, const char *account, int64_t host_id,
                            int64_t *secs)
{
    struct offcodes_tally t = { 0, 0, 0 };
    int rc = each_match(db, person, account, host_id, count_offcodes, &t);
    *secs = rc == PC_OK && t.matched > 0 && t.with == t.matched ? t.secs : 0;
    if (*secs > PC_OFFCODE_MAX_SECS)
        *secs = PC_OFFCODE_MAX_SECS;
    return rc;
}

/* ---- end of issue 13's evaluation ----------------------------------------------------------- */

/* One critical option across the rules. A certificate is not scoped to one rule's accounts or
 * hosts, so dropping a restriction because another rule lacks it (or sets another value) would
 * hand out a shell or an address range that no single rule allowed: rules that disagree are a
 * conflict, and no certificate is issued until the admin resolves it. */
static void merge_opt(json_object *pol, const char *key, char *val, size_t valsz, int first,
                      const char **conflict)
{
    json_object *v;
    const char *s = json_object_object_get_ex(pol, key, &v) && v ? json_object_get_string(v) : "";
    if (first)
        snprintf(val, valsz, "%s", s);
    else if (strcmp(val, s) != 0 && !*conflict)
        *conflict = key;
}

int cp_policy_login_terms(cp_conn *db, const char *person, struct cp_login_terms *t)
{
    json_object *all = NULL;
    int64_t uid = user_id_of(db, person);
    int want[CP_POLICY_EXT_MAX] = { 0 };
    int64_t grant_until = 0;
    int standing = 0;
    int rc = load_all(db, &all);

    memset(t, 0, sizeof *t);
    if (rc != PC_OK)
        return rc;
    for (size_t i = 0; i < json_object_array_length(all); i++) {
        json_object *p = json_object_array_get_idx(all, i);
        int64_t ttl = json_object_get_int64(json_object_object_get(p, "max_ttl"));
        if (!names_person(db, p, person, uid))
            continue;
        if (requires_request(p)) {
            int64_t until = 0;
            if (cp_access_person_grant_until(db,
                                             json_object_get_int64(json_object_object_get(p, "id")),
                                             person, &until) != PC_OK) {
                rc = PC_ERR_STORE;
                break;
            }
            if (until > grant_until)
                grant_until = until;
        } else {
            standing = 1;
        }
        merge_opt(p, "source_address", t->source_address, sizeof t->source_address, !t->named,
                  &t->conflict);
        merge_opt(p, "force_command", t->force_command, sizeof t->force_command, !t->named,
                  &t->conflict);
        t->named = 1;
        if (ttl > t->max_ttl)
            t->max_ttl = ttl;
        for (int k = 0; k < CP_POLICY_EXT_MAX; k++)
            want[k] |= arr_has(p, "extensions", known_ext[k]);
    }
    for (int k = 0; k < CP_POLICY_EXT_MAX; k++)
        if (want[k])
            t->ext[t->n_ext++] = known_ext[k];
    /* Access that only grants give: a certificate issued now ends with the last grant. */
    if (!standing)
        t->grant_until = grant_until;
    json_object_put(all);
    return rc;
}

/* The key options of the rules matching (person, account, host). */
struct host_terms {
    int matched, bad, standing;
    int64_t grant_until;
    char grant_request[CP_ACCESS_ID_LEN + 1];
    int want[CP_POLICY_EXT_MAX];
    char source_address[1025], force_command[1025];
    const char *conflict;
};

static void host_rule(json_object *pol, void *ctx)
{
    struct host_terms *t = ctx;
    json_object *v;

    merge_opt(pol, "source_address", t->source_address, sizeof t->source_address, !t->matched,
              &t->conflict);
    merge_opt(pol, "force_command", t->force_command, sizeof t->force_command, !t->matched,
              &t->conflict);
    /* A rule stored before force_command was checked for the line: it cannot be printed. */
    if (json_object_object_get_ex(pol, "force_command", &v) &&
        !pc_keyopts_command_ok(json_object_get_string(v)))
        t->bad = 1;
    t->matched++;
    for (int k = 0; k < CP_POLICY_EXT_MAX; k++)
        t->want[k] |= arr_has(pol, "extensions", known_ext[k]);
    if (json_object_object_get_ex(pol, "grant_until", &v)) {
        if (json_object_get_int64(v) > t->grant_until) {
            t->grant_until = json_object_get_int64(v);
            snprintf(t->grant_request, sizeof t->grant_request, "%s",
                     json_object_get_string(json_object_object_get(pol, "grant_request")));
        }
    } else {
        t->standing = 1;
    }
}

int cp_policy_host_options(cp_conn *db, const char *person, const char *account, int64_t host_id,
                           json_object **opts)
{
    return cp_policy_host_grant_options(db, person, account, host_id, opts, NULL);
}

int cp_policy_host_grant_options(cp_conn *db, const char *person, const char *account,
                                 int64_t host_id, json_object **opts, struct cp_policy_grant *g)
{
    struct host_terms t;
    json_object *o, *ext;
    int rc;

    memset(&t, 0, sizeof t);
    *opts = NULL;
    if ((rc = each_match(db, person, account, host_id, host_rule, &t)) != PC_OK)
        return rc;
    if (!t.matched || t.conflict || t.bad)
        return PC_OK;
    o = json_object_new_object();
    ext = json_object_new_array();
    for (int k = 0; k < CP_POLICY_EXT_MAX; k++)
        if (t.want[k])
            json_object_array_add(ext, json_object_new_string(known_ext[k]));
    json_object_object_add(o, "extensions", ext);
    if (t.source_address[0])
        json_object_object_add(o, "source_address", json_object_new_string(t.source_address));
    if (t.force_command[0])
        json_object_object_add(o, "force_command", json_object_new_string(t.force_command));
    *opts = o;
    if (g && !t.standing) {
        g->until = t.grant_until;
        snprintf(g->request_id, sizeof g->request_id, "%s", t.grant_request);
    }
    return PC_OK;
}

/* ---- access on request: the rule a request asks under --------------------------------------- */

/* Every label the rule and the selector both name has one value: the grant's hosts (those
 * matching both) can then exist. The selector only ever narrows the rule. */
static int selector_compatible(json_object *pol, json_object *sel)
{
    json_object *h, *v;
    if (!json_object_object_get_ex(pol, "hosts", &h))
        return 1;
    json_object_object_foreach(sel, k, want)
    {
        if (json_object_object_get_ex(h, k, &v) &&
            strcmp(json_object_get_string(v), json_object_get_string(want)) != 0)
            return 0;
    }
    return 1;
}

int cp_policy_request_rule(cp_conn *db, const char *person, const char *account, json_object *sel,
                           json_object **rule)
{
    json_object *all = NULL;
    int64_t uid = user_id_of(db, person);
    int rc = load_all(db, &all);

    *rule = NULL;
    if (rc != PC_OK)
        return rc;
    for (size_t i = 0; i < json_object_array_length(all) && !*rule; i++) {
        json_object *p = json_object_array_get_idx(all, i);
        int acct = arr_has(p, "accounts", account) ||
                   (strcmp(account, person) == 0 && arr_has(p, "accounts", "$user"));
        if (requires_request(p) && acct && names_person(db, p, person, uid) &&
            selector_compatible(p, sel))
            *rule = json_object_get(p);
    }
    json_object_put(all);
    return *rule ? PC_OK : PC_ERR_NOTFOUND;
}

static void collect_rule(json_object *pol, void *ctx)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_get(json_object_object_get(pol, "name")));
    json_object_object_add(o, "require_2fa",
                           json_object_new_boolean(json_object_get_boolean(
                               json_object_object_get(pol, "require_2fa"))));
    json_object_array_add(ctx, o);
}

int cp_policy_matching(cp_conn *db, const char *person, const char *account, int64_t host_id,
                       json_object **rules)
{
    json_object *arr = json_object_new_array();
    int rc = each_match(db, person, account, host_id, collect_rule, arr);

    if (rc != PC_OK) {
        json_object_put(arr);
        return rc;
    }
    *rules = arr;
    return PC_OK;
}

int cp_policy_rules_no_2fa(json_object *rules)
{
    size_t n = json_object_array_length(rules);

    for (size_t i = 0; i < n; i++)
        if (json_object_get_boolean(
                json_object_object_get(json_object_array_get_idx(rules, i), "require_2fa")))
            return 0;
    return n > 0;
}
