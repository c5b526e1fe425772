/* SPDX-License-Identifier: BSD-2-Clause */
/* Access policy evaluation: the stored rules that match (person, account, host) and what they
 * allow (each_match and its callers). Checking and storing the rules is in cp_policy_rules.c. */
#include "config.h"
#include "cp_policy.h"
#include "cp_policy_int.h"
#include "pc_offcode.h"
#include "cp_access.h"
#include "cp_store.h"
#include "pc_err.h"
#include "pc_keyopts.h"
#include <stdio.h>
#include <string.h>

/* ---- evaluation ---------------------------------------------------------------------------- */

static int requires_request(json_object *pol)
{
    json_object *v;
    return json_object_object_get_ex(pol, "requires_request", &v) && json_object_get_boolean(v);
}

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
    int rc = cp_policy_load_all(db, &all);

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
    int rc = cp_policy_load_all(db, &all);

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
            want[k] |= arr_has(p, "extensions", cp_policy_known_ext[k]);
    }
    for (int k = 0; k < CP_POLICY_EXT_MAX; k++)
        if (want[k])
            t->ext[t->n_ext++] = cp_policy_known_ext[k];
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
        t->want[k] |= arr_has(pol, "extensions", cp_policy_known_ext[k]);
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
            json_object_array_add(ext, json_object_new_string(cp_policy_known_ext[k]));
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
    int rc = cp_policy_load_all(db, &all);

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
