/* SPDX-License-Identifier: BSD-2-Clause */
/* Access policy rules: checking a rule (cp_policy_validate and its copy_* steps), storing,
 * listing and deleting rules. Matching them to a login is in cp_policy_match.c. */
#include "config.h"
#include "cp_policy.h"
#include "cp_policy_int.h"
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

const char *const cp_policy_known_ext[CP_POLICY_EXT_MAX] = {
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
                if (strcmp(cp_policy_known_ext[k], s) == 0)
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
            json_object_array_add(out, json_object_new_string(cp_policy_known_ext[k]));
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
                     "'\"', '\\' or '#'");
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
int cp_policy_load_all(cp_conn *db, json_object **out)
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
    return db ? cp_policy_load_all(db, out) : PC_ERR_STORE;
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
