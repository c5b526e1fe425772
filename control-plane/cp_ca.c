/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "cp_ca.h"
#include "cp_audit.h"
#include "cp_ca_keys.h"
#include "cp_metrics.h"
#include "cp_store.h"
#include "pc_err.h"
#include "pc_json.h"
#include "pc_krl.h"
#include "pc_log.h"
#include "pc_time.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void cp_issued_free(struct cp_issued *i)
{
    free(i->line);
    i->line = NULL;
}

static json_object *principals_json(const char *const *p, size_t n)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < n; i++)
        json_object_array_add(a, json_object_new_string(p[i]));
    return a;
}

/* Inserts the certs row first: AUTOINCREMENT hands out the serial the certificate carries. */
static int insert_row(cp_conn *db, const struct cp_issue_req *req, const char *fp, uint64_t va,
                      uint64_t vb, uint64_t *serial)
{
    json_object *pj = principals_json(req->principals, req->n_principals);
    cp_stmt *st = cp_prepare(
        db,
        "INSERT INTO certs(kind, key_id, principals, user_name,"
        " host_id, fingerprint, valid_after, valid_before, issued_at) VALUES (?,?,?,?,?,?,?,?,?)"
        " RETURNING serial");
    int rc;

    if (!st) {
        json_object_put(pj);
        return PC_ERR_STORE;
    }
    cp_bind_text(st, 1, req->type == PC_CERT_USER ? "user" : "host");
    cp_bind_text(st, 2, req->key_id);
    cp_bind_text(st, 3, pc_json_dump(pj));
    cp_bind_text(st, 4, req->user_name);
    if (req->host_id > 0)
        cp_bind_int64(st, 5, req->host_id);
    else
        cp_bind_null(st, 5);
    cp_bind_text(st, 6, fp);
    cp_bind_int64(st, 7, (int64_t)va);
    cp_bind_int64(st, 8, (int64_t)vb);
    cp_bind_int64(st, 9, pc_now());
    int64_t id = 0;
    rc = cp_exec_stmt_id(st, &id);
    json_object_put(pj);
    if (rc != PC_OK)
        return rc == PC_ERR_EXISTS ? PC_ERR_STORE : rc;
    *serial = (uint64_t)id;
    return *serial >= 1 && *serial < PC_CERT_SERIAL_LIMIT ? PC_OK : PC_ERR_STATE;
}

int cp_ca_issue(cp_conn *db, const struct cp_issue_req *req, struct cp_issued *out)
{
    struct pc_cert_req cr = { 0 };
    struct cp_audit_row row = {
        .actor = req->actor, .action = "cert.issue", .result = "ok", .source = req->source
    };
    char fp[PC_SSHKEY_FP_SIZE], reason[160];
    uint64_t va, vb;
    int rc;

    memset(out, 0, sizeof *out);
    if ((rc = pc_sshkey_fingerprint(req->subject, fp)) != PC_OK ||
        (rc = pc_cert_validity(pc_now(), req->type == PC_CERT_USER ? -1 : 300, req->ttl, &va,
                               &vb)) != PC_OK)
        return rc;
    if (req->not_after > 0 && vb > (uint64_t)req->not_after)
        vb = (uint64_t)req->not_after;
    if (vb <= va)
        return PC_ERR_INVAL;
    if ((rc = insert_row(db, req, fp, va, vb, &out->serial)) != PC_OK)
        return rc;
    cr.type = req->type;
    cr.subject = req->subject;
    cr.serial = out->serial;
    cr.key_id = req->key_id;
    cr.principals = req->principals;
    cr.n_principals = req->n_principals;
    cr.valid_after = va;
    cr.valid_before = vb;
    cr.critical = req->critical;
    cr.n_critical = req->n_critical;
    cr.extensions = req->extensions;
    cr.n_extensions = req->n_extensions;
    rc = cp_ca_sign_line(&cr, req->key_id, &out->line);
    if (rc != PC_OK)
        return rc;
    out->valid_after = (int64_t)va;
    out->valid_before = (int64_t)vb;
    snprintf(reason, sizeof reason, "%s serial=%llu key_id=%.64s fp=%s ttl=%lld",
             req->type == PC_CERT_USER ? "user" : "host", (unsigned long long)out->serial,
             req->key_id, fp, (long long)req->ttl);
    row.user = req->user_name;
    row.reason = reason;
    pc_metric_inc(&cp_m_certs_issued, req->type == PC_CERT_USER ? "user" : "host", NULL, NULL);
    if ((rc = cp_audit_add(db, &row)) != PC_OK)
        cp_issued_free(out);
    return rc;
}

int cp_ca_bump_krl(cp_conn *db)
{
    cp_stmt *st = cp_prepare(db, "UPDATE krl_state SET version = version + 1, "
                                 "changed_at = ? WHERE id = 1");
    if (st)
        cp_bind_int64(st, 1, pc_now());
    return cp_exec_stmt(st);
}

static int exec_text(cp_conn *db, const char *sql, const char *a)
{
    cp_stmt *st = cp_prepare(db, sql);
    if (!st)
        return PC_ERR_STORE;
    cp_bind_text(st, 1, a);
    cp_bind_int64(st, 2, pc_now());
    return cp_exec_stmt(st);
}

int cp_ca_revoke_user(cp_conn *db, const char *user, int deleted)
{
    int rc;

    if ((rc = exec_text(db,
                        "UPDATE certs SET revoked_at = ?2 WHERE user_name = ?1 AND"
                        " revoked_at = 0",
                        user)) != PC_OK ||
        (rc = exec_text(db, "DELETE FROM sessions WHERE user_name = ?1", user)) != PC_OK)
        return rc;
    if (deleted && (rc = exec_text(db,
                                   "INSERT INTO revoked_key_ids(key_id, why, revoked_at)"
                                   " VALUES (?1, 'user_deleted', ?2) ON CONFLICT DO NOTHING",
                                   user)) != PC_OK)
        return rc;
    return cp_ca_bump_krl(db);
}

int cp_ca_revoke_user_key(cp_conn *db, const char *user, const char *fp, const char *actor,
                          const char *source)
{
    struct cp_audit_row row = {
        .actor = actor, .action = "cert.revoke", .user = user, .result = "ok", .source = source
    };
    char reason[512];
    size_t n;
    cp_stmt *st;
    int rc;

    n = (size_t)snprintf(reason, sizeof reason, "key_deleted fingerprint=%s serials=", fp);
    if (!(st = cp_prepare(db, "UPDATE certs SET revoked_at = ?3 WHERE kind = 'user' AND"
                              " user_name = ?1 AND fingerprint = ?2 AND revoked_at = 0"
                              " RETURNING serial")))
        return PC_ERR_STORE;
    cp_bind_text(st, 1, user);
    cp_bind_text(st, 2, fp);
    cp_bind_int64(st, 3, pc_now());
    while ((rc = cp_step(st)) == CP_ROW) {
        if (n < sizeof reason) /* the list is cut short in the audit row, never in the KRL */
            n += (size_t)snprintf(reason + n, sizeof reason - n, "%s%lld",
                                  reason[n - 1] == '=' ? "" : ",", (long long)cp_col_int64(st, 0));
    }
    cp_finalize(st);
    if (rc != CP_DONE)
        return PC_ERR_STORE;
    if (!(st = cp_prepare(db, "DELETE FROM sessions WHERE user_name = ?1 AND"
                              " (fingerprint = ?2 OR fingerprint IS NULL)")))
        return PC_ERR_STORE;
    cp_bind_text(st, 1, user);
    cp_bind_text(st, 2, fp);
    if ((rc = cp_exec_stmt(st)) != PC_OK || (rc = cp_ca_bump_krl(db)) != PC_OK)
        return rc;
    row.reason = reason;
    return cp_audit_add(db, &row);
}

int cp_ca_key_id_revoked(cp_conn *db, const char *key_id)
{
    cp_stmt *st = cp_prepare(db, "SELECT 1 FROM revoked_key_ids WHERE key_id = ?1 UNION ALL"
                                 " SELECT 1 FROM users WHERE name = ?1 AND enabled = 0");
    int found;

    if (!st)
        return 1; /* fail closed */
    cp_bind_text(st, 1, key_id);
    found = cp_step(st) == CP_ROW;
    cp_finalize(st);
    return found;
}

/* Marks the selected certificates revoked and collects their serials. where's ?1 is key_id
 * when given, else serial (every parameter a statement binds, it uses: PostgreSQL refuses a
 * parameter whose type nothing in the statement names). */
static int revoke_where(cp_conn *db, const char *where, int64_t serial, const char *key_id,
                        json_object *arr)
{
    char sql[256];
    cp_stmt *st;
    int rc;

    snprintf(sql, sizeof sql, "UPDATE certs SET revoked_at = ?2 WHERE %s RETURNING serial", where);
    if (!(st = cp_prepare(db, sql)))
        return PC_ERR_STORE;
    if (key_id)
        cp_bind_text(st, 1, key_id);
    else
        cp_bind_int64(st, 1, serial);
    cp_bind_int64(st, 2, pc_now());
    while ((rc = cp_step(st)) == CP_ROW)
        json_object_array_add(arr, json_object_new_int64(cp_col_int64(st, 0)));
    cp_finalize(st);
    return rc == CP_DONE ? PC_OK : PC_ERR_STORE;
}

static int serial_exists(cp_conn *db, int64_t serial)
{
    cp_stmt *st = cp_prepare(db, "SELECT 1 FROM certs WHERE serial = ?");
    int found;
    if (!st)
        return 0;
    cp_bind_int64(st, 1, serial);
    found = cp_step(st) == CP_ROW;
    cp_finalize(st);
    return found;
}

int cp_ca_revoke(const struct cp_who *who, int64_t serial, const char *key_id,
                 json_object **revoked)
{
    cp_conn *db = cp_db();
    struct cp_audit_row row = {
        .actor = who->actor, .action = "cert.revoke", .result = "ok", .source = who->source
    };
    json_object *arr = json_object_new_array();
    char reason[320];
    int rc;

    if (!db || cp_tx_begin(db) != PC_OK) {
        json_object_put(arr);
        return PC_ERR_STORE;
    }
    if (serial > 0) {
        if (!serial_exists(db, serial)) {
            rc = PC_ERR_NOTFOUND;
            goto out;
        }
        /* Already revoked: still listed, the call is idempotent. */
        rc = revoke_where(db, "serial = ?1 AND revoked_at = 0", serial, NULL, arr);
        if (rc == PC_OK && json_object_array_length(arr) == 0)
            json_object_array_add(arr, json_object_new_int64(serial));
        snprintf(reason, sizeof reason, "serial=%lld", (long long)serial);
    } else {
        rc = revoke_where(db, "key_id = ?1 AND revoked_at = 0", 0, key_id, arr);
        if (rc == PC_OK)
            rc = exec_text(
                db,
                "INSERT INTO revoked_key_ids(key_id, why, revoked_at) VALUES (?1, 'admin', ?2)"
                " ON CONFLICT (key_id) DO UPDATE SET why = excluded.why,"
                " revoked_at = excluded.revoked_at",
                key_id);
        snprintf(reason, sizeof reason, "key_id=%.255s", key_id);
    }
    row.reason = reason;
    if (rc == PC_OK && (rc = cp_ca_bump_krl(db)) == PC_OK && (rc = cp_audit_add(db, &row)) == PC_OK)
        rc = cp_tx_commit(db);
out:
    if (rc != PC_OK) {
        cp_tx_rollback(db);
        json_object_put(arr);
        return rc;
    }
    *revoked = arr;
    return PC_OK;
}

/* Grows a uint64 list / string list. */
struct lists {
    uint64_t *user_serials, *host_serials;
    size_t n_user, n_host;
    char **ids;
    size_t n_ids;
};

static int push_serial(uint64_t **a, size_t *n, uint64_t v)
{
    uint64_t *na = realloc(*a, (*n + 1) * sizeof **a);
    if (!na)
        return PC_ERR_NOMEM;
    na[(*n)++] = v;
    *a = na;
    return PC_OK;
}

static int collect(cp_conn *db, struct lists *l)
{
    cp_stmt *st = cp_prepare(db, "SELECT serial, kind FROM certs WHERE revoked_at > 0");
    int rc = PC_OK;

    if (!st)
        return PC_ERR_STORE;
    while (rc == PC_OK && cp_step(st) == CP_ROW) {
        uint64_t s = (uint64_t)cp_col_int64(st, 0);
        if (strcmp(cp_col_text(st, 1), "user") == 0)
            rc = push_serial(&l->user_serials, &l->n_user, s);
        else
            rc = push_serial(&l->host_serials, &l->n_host, s);
    }
    cp_finalize(st);
    if (rc != PC_OK || !(st = cp_prepare(db, "SELECT key_id FROM revoked_key_ids UNION"
                                             " SELECT name FROM users WHERE enabled = 0")))
        return rc != PC_OK ? rc : PC_ERR_STORE;
    while (rc == PC_OK && cp_step(st) == CP_ROW) {
        char **na = realloc(l->ids, (l->n_ids + 1) * sizeof *na);
        if (!na || !(na[l->n_ids] = strdup(cp_col_text(st, 0)))) {
            if (na)
                l->ids = na;
            rc = PC_ERR_NOMEM;
            break;
        }
        l->ids = na;
        l->n_ids++;
    }
    cp_finalize(st);
    return rc;
}

/* The KRL's version and the time it last changed (its generated_date: see migration 4). */
static uint64_t krl_version(cp_conn *db, uint64_t *changed_at)
{
    cp_stmt *st = cp_prepare(db, "SELECT version, changed_at FROM krl_state WHERE id = 1");
    uint64_t v = 0;

    *changed_at = 0;
    if (st && cp_step(st) == CP_ROW) {
        v = (uint64_t)cp_col_int64(st, 0);
        if (cp_col_int64(st, 1) > 0)
            *changed_at = (uint64_t)cp_col_int64(st, 1);
    }
    cp_finalize(st);
    return v;
}

/* One certificate section per trusted key of each CA (during a rotation's overlap both keys
 * are trusted, and serials are unique across them), and every retired CA key revoked whole. */
static int build_krl(int host_only, unsigned char **out, size_t *len, uint64_t *version)
{
    cp_conn *db = cp_db();
    struct lists l = { 0 };
    struct pc_krl_certs sec[4];
    struct pc_krl_spec spec = { 0 };
    struct pc_sshkey *ucas[2] = { NULL, NULL }, *hcas[2] = { NULL, NULL }, **retired = NULL;
    size_t n_ucas = 0, n_hcas = 0, n_retired = 0;
    uint64_t changed_at;
    int rc;

    if (!db || cp_exec(db, "BEGIN") != PC_OK)
        return PC_ERR_STORE;
    rc = collect(db, &l);
    *version = krl_version(db, &changed_at);
    if (rc == PC_OK)
        rc = cp_ca_retired_public(host_only, &retired, &n_retired);
    cp_tx_rollback(db); /* read only */
    if (rc == PC_OK && (rc = cp_ca_trusted_public(CP_CA_USER, ucas, &n_ucas)) == PC_OK)
        rc = cp_ca_trusted_public(CP_CA_HOST, hcas, &n_hcas);
    if (rc == PC_OK) {
        memset(sec, 0, sizeof sec);
        for (size_t i = 0; !host_only && (l.n_user || l.n_ids) && i < n_ucas; i++) {
            sec[spec.n_certs].ca = ucas[i];
            sec[spec.n_certs].serials = l.user_serials;
            sec[spec.n_certs].n_serials = l.n_user;
            sec[spec.n_certs].key_ids = (const char *const *)l.ids;
            sec[spec.n_certs++].n_key_ids = l.n_ids;
        }
        for (size_t i = 0; l.n_host && i < n_hcas; i++) {
            sec[spec.n_certs].ca = hcas[i];
            sec[spec.n_certs].serials = l.host_serials;
            sec[spec.n_certs++].n_serials = l.n_host;
        }
        spec.krl_version = *version;
        spec.generated_date = changed_at;
        spec.comment = "portcullis";
        spec.certs = sec;
        spec.keys = (const struct pc_sshkey *const *)retired;
        spec.n_keys = n_retired;
        rc = pc_krl_encode(&spec, out, len);
    }
    for (size_t i = 0; i < 2; i++) {
        pc_sshkey_free(ucas[i]);
        pc_sshkey_free(hcas[i]);
    }
    for (size_t i = 0; i < n_retired; i++)
        pc_sshkey_free(retired[i]);
    free(retired);
    for (size_t i = 0; i < l.n_ids; i++)
        free(l.ids[i]);
    free(l.ids);
    free(l.user_serials);
    free(l.host_serials);
    return rc;
}

int cp_ca_krl(unsigned char **out, size_t *len, uint64_t *version)
{
    return build_krl(0, out, len, version);
}

int cp_ca_krl_host(unsigned char **out, size_t *len, uint64_t *version)
{
    return build_krl(1, out, len, version);
}

static json_object *cert_json(cp_stmt *st)
{
    json_object *o = json_object_new_object();
    json_object *pr = json_tokener_parse(cp_col_text(st, 3));

    json_object_object_add(o, "serial", json_object_new_int64(cp_col_int64(st, 0)));
    json_object_object_add(o, "kind", json_object_new_string(cp_col_text(st, 1)));
    json_object_object_add(o, "key_id", json_object_new_string(cp_col_text(st, 2)));
    json_object_object_add(o, "principals", pr ? pr : json_object_new_array());
    json_object_object_add(o, "user",
                           cp_col_is_null(st, 4) ? NULL
                                                 : json_object_new_string(cp_col_text(st, 4)));
    json_object_object_add(o, "fingerprint", json_object_new_string(cp_col_text(st, 5)));
    json_object_object_add(o, "valid_after", json_object_new_int64(cp_col_int64(st, 6)));
    json_object_object_add(o, "valid_before", json_object_new_int64(cp_col_int64(st, 7)));
    json_object_object_add(o, "issued_at", json_object_new_int64(cp_col_int64(st, 8)));
    json_object_object_add(o, "revoked", json_object_new_boolean(cp_col_int(st, 9)));
    return o;
}

int cp_ca_list(const char *user, json_object **out)
{
    cp_conn *db = cp_db();
    cp_stmt *st;
    json_object *arr;
    int rc;

    if (!db ||
        !(st = cp_prepare(
              db, "SELECT serial, kind, key_id, principals, user_name, fingerprint, valid_after,"
                  " valid_before, issued_at, (revoked_at > 0 OR (kind = 'user' AND (key_id IN"
                  " (SELECT key_id FROM revoked_key_ids) OR key_id IN (SELECT name FROM users"
                  " WHERE enabled = 0)))) FROM certs"
                  " WHERE (CAST(?1 AS TEXT) IS NULL OR user_name = ?1) ORDER BY serial")))
        return PC_ERR_STORE;
    cp_bind_text(st, 1, user);
    arr = json_object_new_array();
    while ((rc = cp_step(st)) == CP_ROW)
        json_object_array_add(arr, cert_json(st));
    cp_finalize(st);
    if (rc != CP_DONE) {
        json_object_put(arr);
        return PC_ERR_STORE;
    }
    *out = arr;
    return PC_OK;
}
