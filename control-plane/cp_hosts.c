/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "cp_hosts.h"
#include "cp_access.h"
#include "cp_audit.h"
#include "cp_policy.h"
#include "cp_store.h"
#include "pc_err.h"
#include "pc_json.h"
#include "pc_time.h"
#include "pc_valid.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t host_cert_ttl = 30 * 86400;

void cp_hosts_configure(int64_t ttl)
{
    host_cert_ttl = ttl;
}

static void add_unique(json_object *arr, const char *s)
{
    for (size_t i = 0; i < json_object_array_length(arr); i++)
        if (strcmp(json_object_get_string(json_object_array_get_idx(arr, i)), s) == 0)
            return;
    json_object_array_add(arr, json_object_new_string(s));
}

/* The host's principal list: hostname + extra (stored), or what was stored before. */
static int principals_for(cp_conn *db, int64_t host_id, const char *hostname, json_object *extra,
                          int set, json_object **out)
{
    json_object *arr = NULL;
    cp_stmt *st;

    if (!set) {
        if (!(st = cp_prepare(db, "SELECT principals FROM hosts WHERE id = ?")))
            return PC_ERR_STORE;
        cp_bind_int64(st, 1, host_id);
        if (cp_step(st) == CP_ROW)
            arr = json_tokener_parse(cp_col_text(st, 0));
        cp_finalize(st);
        if (arr && !json_object_is_type(arr, json_type_array)) {
            json_object_put(arr);
            arr = NULL;
        }
    }
    if (!arr)
        arr = json_object_new_array();
    if (json_object_array_length(arr) == 0)
        add_unique(arr, hostname);
    for (size_t i = 0; set && extra && i < json_object_array_length(extra); i++)
        add_unique(arr, json_object_get_string(json_object_array_get_idx(extra, i)));
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *p = json_object_array_get_idx(arr, i);
        if (!pc_valid_principal(json_object_get_string(p), (size_t)json_object_get_string_len(p))) {
            json_object_put(arr);
            return PC_ERR_INVAL;
        }
    }
    *out = arr;
    return PC_OK;
}

static int store_host_key(cp_conn *db, int64_t host_id, const struct pc_sshkey *key,
                          json_object *princ)
{
    cp_stmt *st;
    char *line = NULL;
    int rc;

    if ((rc = pc_sshkey_to_line(key, NULL, &line)) != PC_OK)
        return rc;
    st = cp_prepare(db, "UPDATE hosts SET host_key = ?, principals = ? WHERE id = ?");
    if (st) {
        cp_bind_text(st, 1, line);
        cp_bind_text(st, 2, pc_json_dump(princ));
        cp_bind_int64(st, 3, host_id);
    }
    free(line);
    return cp_exec_stmt(st);
}

int cp_host_cert_issue(cp_conn *db, int64_t host_id, const char *hostname,
                       const struct pc_sshkey *key, json_object *extra, int set_principals,
                       const char *actor, const char *source, struct cp_issued *out)
{
    json_object *princ = NULL;
    const char *names[CP_HOST_MAX_PRINCIPALS + 1];
    char key_id[300];
    struct cp_issue_req req = { .type = PC_CERT_HOST,
                                .subject = key,
                                .key_id = key_id,
                                .principals = names,
                                .host_id = host_id,
                                .ttl = host_cert_ttl,
                                .actor = actor,
                                .source = source };
    int rc;

    memset(out, 0, sizeof *out);
    if ((rc = principals_for(db, host_id, hostname, extra, set_principals, &princ)) != PC_OK)
        return rc;
    req.n_principals = json_object_array_length(princ);
    if (req.n_principals > CP_HOST_MAX_PRINCIPALS) {
        json_object_put(princ);
        return PC_ERR_INVAL;
    }
    for (size_t i = 0; i < req.n_principals; i++)
        names[i] = json_object_get_string(json_object_array_get_idx(princ, i));
    snprintf(key_id, sizeof key_id, "host:%s", hostname);
    if ((rc = store_host_key(db, host_id, key, princ)) == PC_OK)
        rc = cp_ca_issue(db, &req, out);
    json_object_put(princ);
    return rc;
}

/* PC_OK if key is the host key enrolled for host_id; PC_ERR_STATE for any other (or none). */
static int is_enrolled_key(cp_conn *db, int64_t host_id, const struct pc_sshkey *key)
{
    cp_stmt *st;
    char *line = NULL;
    int rc;

    if ((rc = pc_sshkey_to_line(key, NULL, &line)) != PC_OK)
        return rc;
    if (!(st = cp_prepare(
              db, "SELECT 1 FROM hosts WHERE id = ? AND host_key = ? AND deleted_at = 0"))) {
        free(line);
        return PC_ERR_STORE;
    }
    cp_bind_int64(st, 1, host_id);
    cp_bind_text(st, 2, line);
    rc = cp_step(st) == CP_ROW ? PC_OK : PC_ERR_STATE;
    cp_finalize(st);
    free(line);
    return rc;
}

int cp_host_renew(const struct cp_identity *host, const char *source, const struct pc_sshkey *key,
                  struct cp_issued *out)
{
    cp_conn *db = cp_db();
    char actor[48];
    int rc;

    snprintf(actor, sizeof actor, "host:%lld", (long long)host->host_id);
    memset(out, 0, sizeof *out);
    if (!db || cp_tx_begin(db) != PC_OK)
        return PC_ERR_STORE;
    rc = is_enrolled_key(db, host->host_id, key);
    if (rc == PC_OK)
        rc = cp_host_cert_issue(db, host->host_id, host->hostname, key, NULL, 0, actor, source,
                                out);
    if (rc == PC_OK)
        rc = cp_tx_commit(db);
    if (rc != PC_OK) {
        cp_tx_rollback(db);
        cp_issued_free(out);
    }
    if (rc == PC_ERR_STATE) {
        /* Another key than the enrolled one: refused, and the attempt audited in a transaction
         * of its own (a host trying to certify a key it was not enrolled with). */
        struct cp_audit_row row = { .actor = actor,
                                    .action = "host.renew",
                                    .result = "deny",
                                    .reason = "not_enrolled_key",
                                    .host = host->hostname,
                                    .source = source };
        if (cp_tx_begin(db) == PC_OK) {
            if (cp_audit_add(db, &row) != PC_OK || cp_tx_commit(db) != PC_OK)
                cp_tx_rollback(db);
        }
    }
    return rc;
}

/* The certificate row checks of the principals decision. */
static int cert_ok(cp_conn *db, const char *key_id, int64_t serial, const char *fp)
{
    cp_stmt *st =
        cp_prepare(db,
                   "SELECT 1 FROM certs c JOIN users u ON u.name = c.user_name AND u.enabled = 1"
                   " WHERE c.serial = ? AND c.kind = 'user' AND c.key_id = ? AND c.revoked_at = 0"
                   " AND c.valid_before > ? AND (CAST(?4 AS TEXT) IS NULL OR c.fingerprint = ?4)");
    int ok;

    if (!st)
        return 0;
    cp_bind_int64(st, 1, serial);
    cp_bind_text(st, 2, key_id);
    cp_bind_int64(st, 3, pc_now());
    cp_bind_text(st, 4, fp);
    ok = cp_step(st) == CP_ROW;
    cp_finalize(st);
    return ok;
}

int cp_host_principals(const struct cp_identity *host, const char *account, const char *key_id,
                       int64_t serial, const char *fp, json_object **options, int64_t *grant_until)
{
    cp_conn *db = cp_db();
    struct cp_policy_grant g = { 0, "" };
    int rc = PC_OK;

    *options = NULL;
    *grant_until = 0;
    if (!db || cp_exec(db, "BEGIN") != PC_OK)
        return PC_ERR_STORE;
    if (cert_ok(db, key_id, serial, fp) && !cp_ca_key_id_revoked(db, key_id))
        rc = cp_policy_host_grant_options(db, key_id, account, host->host_id, options, &g);
    cp_tx_rollback(db); /* read only */
    if (rc != PC_OK) {
        json_object_put(*options);
        *options = NULL;
    }
    /* In through an access request's grant only: the chain gets the login. */
    if (rc == PC_OK && *options && g.until > 0) {
        *grant_until = g.until;
        cp_access_note_login(host, key_id, account, serial, g.request_id);
    }
    return rc;
}

static int host_json(cp_conn *db, int64_t id, json_object **out)
{
    cp_stmt *st = cp_prepare(db, "SELECT hostname, labels, enrolled_at FROM hosts WHERE id = ?"
                                 " AND deleted_at = 0");
    int rc;

    if (!st)
        return PC_ERR_STORE;
    cp_bind_int64(st, 1, id);
    rc = cp_step(st);
    if (rc == CP_ROW) {
        json_object *o = json_object_new_object(), *l = json_tokener_parse(cp_col_text(st, 1));
        json_object_object_add(o, "host_id", json_object_new_int64(id));
        json_object_object_add(o, "hostname", json_object_new_string(cp_col_text(st, 0)));
        json_object_object_add(o, "labels", l ? l : json_object_new_object());
        json_object_object_add(o, "enrolled_at", json_object_new_int64(cp_col_int64(st, 2)));
        *out = o;
        rc = PC_OK;
    } else {
        rc = rc == CP_DONE ? PC_ERR_NOTFOUND : PC_ERR_STORE;
    }
    cp_finalize(st);
    return rc;
}

int cp_host_set_labels(const struct cp_who *who, int64_t id, json_object *labels, json_object **out)
{
    cp_conn *db = cp_db();
    char reason[48];
    struct cp_audit_row row = { .actor = who->actor,
                                .action = "host.update",
                                .result = "ok",
                                .reason = reason,
                                .source = who->source };
    cp_stmt *st;
    int rc;

    if (!db || cp_tx_begin(db) != PC_OK)
        return PC_ERR_STORE;
    st = cp_prepare(db, "UPDATE hosts SET labels = ? WHERE id = ? AND deleted_at = 0"
                        " RETURNING hostname");
    if (!st) {
        cp_tx_rollback(db);
        return PC_ERR_STORE;
    }
    cp_bind_text(st, 1, pc_json_dump(labels));
    cp_bind_int64(st, 2, id);
    rc = cp_step(st);
    cp_finalize(st);
    rc = rc == CP_ROW ? PC_OK : rc == CP_DONE ? PC_ERR_NOTFOUND : PC_ERR_STORE;
    snprintf(reason, sizeof reason, "host_id=%lld labels", (long long)id);
    if (rc == PC_OK && (rc = cp_audit_add(db, &row)) == PC_OK)
        rc = cp_tx_commit(db);
    if (rc != PC_OK) {
        cp_tx_rollback(db);
        return rc;
    }
    return host_json(db, id, out);
}

/* Marks host id's unrevoked host certificates revoked, adding their serials to arr. */
static int revoke_host_certs(cp_conn *db, int64_t id, json_object *arr)
{
    cp_stmt *st = cp_prepare(db, "UPDATE certs SET revoked_at = ? WHERE host_id = ? AND"
                                 " kind = 'host' AND revoked_at = 0 RETURNING serial");
    int rc;

    if (!st)
        return PC_ERR_STORE;
    cp_bind_int64(st, 1, pc_now());
    cp_bind_int64(st, 2, id);
    while ((rc = cp_step(st)) == CP_ROW)
        json_object_array_add(arr, json_object_new_int64(cp_col_int64(st, 0)));
    cp_finalize(st);
    return rc == CP_DONE ? PC_OK : PC_ERR_STORE;
}

int cp_host_delete(const struct cp_who *who, int64_t id, json_object **out)
{
    cp_conn *db = cp_db();
    char reason[64], name[256] = "";
    struct cp_audit_row row = { .actor = who->actor,
                                .action = "host.delete",
                                .result = "ok",
                                .host = name,
                                .reason = reason,
                                .source = who->source };
    json_object *revoked = json_object_new_array();
    cp_stmt *st;
    int rc;

    if (!revoked || !db || cp_tx_begin(db) != PC_OK) {
        json_object_put(revoked);
        return PC_ERR_STORE;
    }
    st = cp_prepare(db, "UPDATE hosts SET deleted_at = ? WHERE id = ? AND deleted_at = 0"
                        " RETURNING hostname");
    rc = PC_ERR_STORE;
    if (st) {
        cp_bind_int64(st, 1, pc_now());
        cp_bind_int64(st, 2, id);
        rc = cp_step(st);
        if (rc == CP_ROW)
            snprintf(name, sizeof name, "%s", cp_col_text(st, 0));
        rc = rc == CP_ROW ? PC_OK : rc == CP_DONE ? PC_ERR_NOTFOUND : PC_ERR_STORE;
        cp_finalize(st);
    }
    /* The host token stops working now; its certificates go into the KRL. */
    if (rc == PC_OK &&
        (st = cp_prepare(db, "DELETE FROM tokens WHERE host_id = ? AND kind = 'host'"))) {
        cp_bind_int64(st, 1, id);
        rc = cp_exec_stmt(st);
    } else if (rc == PC_OK) {
        rc = PC_ERR_STORE;
    }
    /* Its per-(person, host) failure counts (cp_authtx.c) go with it: a host id is never reused,
     * but nothing should keep rows for a host that no longer exists. */
    if (rc == PC_OK && (st = cp_prepare(db, "DELETE FROM auth_failures WHERE host_id = ?"))) {
        cp_bind_int64(st, 1, id);
        rc = cp_exec_stmt(st);
    } else if (rc == PC_OK) {
        rc = PC_ERR_STORE;
    }
    if (rc == PC_OK)
        rc = revoke_host_certs(db, id, revoked);
    snprintf(reason, sizeof reason, "host_id=%lld certs_revoked=%zu", (long long)id,
             json_object_array_length(revoked));
    if (rc == PC_OK && (rc = cp_ca_bump_krl(db)) == PC_OK && (rc = cp_audit_add(db, &row)) == PC_OK)
        rc = cp_tx_commit(db);
    if (rc != PC_OK) {
        cp_tx_rollback(db);
        json_object_put(revoked);
        return rc;
    }
    *out = json_object_new_object();
    json_object_object_add(*out, "host_id", json_object_new_int64(id));
    json_object_object_add(*out, "hostname", json_object_new_string(name));
    json_object_object_add(*out, "revoked", revoked);
    return PC_OK;
}
