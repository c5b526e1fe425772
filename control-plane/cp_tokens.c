/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "cp_tokens.h"
#include "cp_audit.h"
#include "cp_hosts.h"
#include "cp_refusals.h"
#include "cp_store.h"
#include "pc_err.h"
#include "pc_fs.h"
#include "pc_json.h"
#include "pc_mem.h"
#include "pc_rand.h"
#include "pc_time.h"
#include "pc_valid.h"
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int insert_token(cp_conn *db, const char *token, const char *kind, int64_t host_id,
                        const char *labels, int64_t expires_at, const char *hostname,
                        const char *principals)
{
    char hash[PC_SHA256_HEX_LEN + 1];
    cp_stmt *st;

    if (pc_sha256_hex(token, strlen(token), hash) != PC_OK)
        return PC_ERR_CRYPTO;
    st = cp_prepare(db, "INSERT INTO tokens(hash, kind, host_id, labels, created_at, expires_at,"
                        " hostname, principals) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING");
    if (!st)
        return PC_ERR_STORE;
    cp_bind_text(st, 1, hash);
    cp_bind_text(st, 2, kind);
    if (host_id > 0)
        cp_bind_int64(st, 3, host_id);
    else
        cp_bind_null(st, 3);
    cp_bind_text(st, 4, labels ? labels : "{}");
    cp_bind_int64(st, 5, pc_now());
    cp_bind_int64(st, 6, expires_at);
    cp_bind_text(st, 7, hostname);
    cp_bind_text(st, 8, principals ? principals : "[]");
    return cp_exec_stmt(st);
}

int cp_admin_token_ensure(const char *dir, char *err, size_t errsz)
{
    char path[PATH_MAX], token[PC_TOKEN_HEX_LEN + 1];
    char *buf = NULL;
    size_t len = 0;
    cp_conn *db = cp_db();
    int rc;

    if (!db)
        return PC_ERR_STORE;
    if (snprintf(path, sizeof path, "%s/admin.token", dir) >= (int)sizeof path)
        return PC_ERR_INVAL;
    rc = pc_read_file(path, 1024, &buf, &len);
    if (rc == PC_ERR_NOTFOUND) {
        if ((rc = pc_token_new(token)) != PC_OK)
            return rc;
        token[PC_TOKEN_HEX_LEN] = '\n';
        rc = pc_write_file_atomic(path, token, PC_TOKEN_HEX_LEN + 1, 0600);
        token[PC_TOKEN_HEX_LEN] = '\0';
        if (rc != PC_OK) {
            snprintf(err, errsz, "%s: cannot write the admin token", path);
            pc_wipe(token, sizeof token);
            return rc;
        }
    } else if (rc == PC_OK) {
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
            buf[--len] = '\0';
        if (!pc_valid_hex(buf, PC_TOKEN_HEX_LEN, PC_TOKEN_HEX_LEN)) {
            snprintf(err, errsz, "%s: not a Portcullis token (64 lower-case hex digits)", path);
            pc_free_secret(buf, len);
            return PC_ERR_INVAL;
        }
        memcpy(token, buf, PC_TOKEN_HEX_LEN + 1);
        pc_free_secret(buf, len);
    } else {
        snprintf(err, errsz, "%s: cannot read: %s", path, pc_strerror(rc));
        return rc;
    }
    /* The file is the admin credential: whatever it holds is registered (once). */
    rc = insert_token(db, token, "admin", 0, NULL, 0, NULL, NULL);
    pc_wipe(token, sizeof token);
    if (rc != PC_OK)
        snprintf(err, errsz, "cannot store the admin token hash");
    return rc;
}

/* A user's session from `portcullis login` (table sessions; the user must still be enabled). */
static void identify_session(cp_conn *db, const char *hash, struct cp_identity *id)
{
    cp_stmt *st = cp_prepare(db, "SELECT s.user_name, s.expires_at FROM sessions s"
                                 " JOIN users u ON u.name = s.user_name AND u.enabled = 1"
                                 " WHERE s.hash = ? AND s.expires_at > ?");
    if (!st)
        return;
    cp_bind_text(st, 1, hash);
    cp_bind_int64(st, 2, pc_now());
    if (cp_step(st) == CP_ROW) {
        id->kind = CP_CALLER_SESSION;
        snprintf(id->user, sizeof id->user, "%s", cp_col_text(st, 0));
        id->expires_at = cp_col_int64(st, 1);
    }
    cp_finalize(st);
}

void cp_identify(const char *authorization, struct cp_identity *id)
{
    char hash[PC_SHA256_HEX_LEN + 1];
    cp_conn *db;
    cp_stmt *st;
    const char *tok;

    memset(id, 0, sizeof *id);
    if (!authorization || !*authorization) {
        id->kind = CP_CALLER_NONE;
        return;
    }
    id->kind = CP_CALLER_BAD;
    if (strncasecmp(authorization, "Bearer ", 7) != 0)
        return;
    tok = authorization + 7;
    if (!pc_valid_hex(tok, PC_TOKEN_HEX_LEN, PC_TOKEN_HEX_LEN) ||
        pc_sha256_hex(tok, strlen(tok), hash) != PC_OK)
        return;
    if (!(db = cp_db()))
        return;
    /* Hash lookup: the comparison happens on SHA-256 values, so timing reveals nothing
     * useful about the token itself. Enrollment tokens are not bearer credentials. */
    st = cp_prepare(db,
                    "SELECT t.kind, t.host_id, COALESCE(h.hostname, ''), t.expires_at FROM tokens t"
                    " LEFT JOIN hosts h ON h.id = t.host_id"
                    " WHERE t.hash = ? AND t.kind IN ('admin', 'host')"
                    " AND (t.expires_at = 0 OR t.expires_at > ?)");
    if (!st)
        return;
    cp_bind_text(st, 1, hash);
    cp_bind_int64(st, 2, pc_now());
    if (cp_step(st) == CP_ROW) {
        if (strcmp(cp_col_text(st, 0), "admin") == 0) {
            id->kind = CP_CALLER_ADMIN;
        } else {
            id->kind = CP_CALLER_HOST;
            id->host_id = cp_col_int64(st, 1);
            snprintf(id->hostname, sizeof id->hostname, "%s", cp_col_text(st, 2));
        }
        id->expires_at = cp_col_int64(st, 3);
    }
    cp_finalize(st);
    if (id->kind == CP_CALLER_BAD)
        identify_session(db, hash, id);
}

int cp_host_name_taken(cp_conn *db, const char *hostname)
{
    cp_stmt *st = cp_prepare(db, "SELECT 1 FROM hosts WHERE hostname = ? AND deleted_at = 0");
    int taken;

    if (!st)
        return 1; /* fail closed */
    cp_bind_text(st, 1, hostname);
    taken = cp_step(st) == CP_ROW;
    cp_finalize(st);
    return taken;
}

/* The token's principals: hostname, then extra (or, without extra, the first label). */
static int token_principals(const char *hostname, json_object *extra, json_object **out)
{
    json_object *arr = json_object_new_array();
    const char *dot = strchr(hostname, '.');
    char first[256];

    if (!arr)
        return PC_ERR_NOMEM;
    json_object_array_add(arr, json_object_new_string(hostname));
    if (!extra && dot && dot > hostname && (size_t)(dot - hostname) < sizeof first) {
        memcpy(first, hostname, (size_t)(dot - hostname));
        first[dot - hostname] = '\0';
        json_object_array_add(arr, json_object_new_string(first));
    }
    for (size_t i = 0; extra && i < json_object_array_length(extra); i++) {
        const char *p = json_object_get_string(json_object_array_get_idx(extra, i));
        int dup = 0;
        for (size_t j = 0; j < json_object_array_length(arr); j++)
            dup |= strcmp(json_object_get_string(json_object_array_get_idx(arr, j)), p) == 0;
        if (!dup)
            json_object_array_add(arr, json_object_new_string(p));
    }
    if (json_object_array_length(arr) > CP_HOST_MAX_PRINCIPALS) {
        json_object_put(arr);
        return PC_ERR_INVAL;
    }
    *out = arr;
    return PC_OK;
}

int cp_enroll_token_create(const struct cp_who *who, const char *hostname, json_object *principals,
                           json_object *labels, int64_t ttl, char token[65], int64_t *expires_at)
{
    cp_conn *db = cp_db();
    struct cp_audit_row row = { .actor = who->actor,
                                .action = "token.create",
                                .result = "ok",
                                .host = hostname,
                                .source = who->source };
    json_object *princ = NULL;
    char reason[96];
    int rc;

    if (!db)
        return PC_ERR_STORE;
    if ((rc = token_principals(hostname, principals, &princ)) != PC_OK)
        return rc;
    if ((rc = pc_token_new(token)) != PC_OK) {
        json_object_put(princ);
        return rc;
    }
    *expires_at = pc_now() + ttl;
    snprintf(reason, sizeof reason, "enroll ttl=%lld", (long long)ttl);
    row.reason = reason;
    if (cp_tx_begin(db) != PC_OK) {
        json_object_put(princ);
        return PC_ERR_STORE;
    }
    rc = cp_host_name_taken(db, hostname) ? PC_ERR_EXISTS : PC_OK;
    if (rc != PC_OK ||
        (rc = insert_token(db, token, "enroll", 0, labels ? pc_json_dump(labels) : "{}",
                           *expires_at, hostname, pc_json_dump(princ))) != PC_OK ||
        (rc = cp_audit_add(db, &row)) != PC_OK || (rc = cp_tx_commit(db)) != PC_OK) {
        cp_tx_rollback(db);
        pc_wipe(token, 65);
    }
    json_object_put(princ);
    return rc;
}

static int enroll_cert(cp_conn *db, int64_t host_id, const char *hostname, json_object *princ,
                       struct cp_enroll_cert *cert, const char *source)
{
    struct cp_issued is;
    char actor[48];
    int rc;

    snprintf(actor, sizeof actor, "host:%lld", (long long)host_id);
    rc = cp_host_cert_issue(db, host_id, hostname, cert->host_key, princ, 1, actor, source, &is);
    if (rc == PC_OK)
        cert->line = is.line;
    return rc;
}

/* What the request may add to the token: nothing. A hostname or principal it names must be the
 * token's own (sending none takes the token's). */
static const char *request_mismatch(const char *want, json_object *princ, const char *hostname,
                                    const struct cp_enroll_cert *cert)
{
    if (hostname && strcmp(hostname, want) != 0)
        return "hostname_mismatch";
    for (size_t i = 0; cert && cert->principals && i < json_object_array_length(cert->principals);
         i++) {
        const char *p = json_object_get_string(json_object_array_get_idx(cert->principals, i));
        int found = 0;
        for (size_t j = 0; j < json_object_array_length(princ); j++)
            found |= strcmp(json_object_get_string(json_object_array_get_idx(princ, j)), p) == 0;
        if (!found)
            return "principal_mismatch";
    }
    return NULL;
}

static int store_principals(cp_conn *db, int64_t host_id, json_object *princ)
{
    cp_stmt *st = cp_prepare(db, "UPDATE hosts SET principals = ? WHERE id = ?");
    if (st) {
        cp_bind_text(st, 1, pc_json_dump(princ));
        cp_bind_int64(st, 2, host_id);
    }
    return cp_exec_stmt(st);
}

int cp_host_enroll(const struct cp_who *who, const char *token, const char *hostname,
                   struct cp_enroll_cert *cert, int64_t *host_id, char host_token[65],
                   char *name_out, size_t name_sz)
{
    cp_conn *db = cp_db();
    char hash[PC_SHA256_HEX_LEN + 1], idbuf[32];
    char *labels = NULL, name[256] = ""; /* labels: up to ~20 KB of JSON (api_labels_valid) */
    struct cp_audit_row row = {
        .actor = "enroll", .action = "host.enroll", .host = hostname, .source = who->source
    };
    json_object *princ = NULL;
    const char *why = "bad_token";
    cp_stmt *st;
    int rc = PC_ERR_AUTH, found = 0;

    if (!db)
        return PC_ERR_STORE;
    if (!pc_valid_hex(token, PC_TOKEN_HEX_LEN, PC_TOKEN_HEX_LEN) ||
        pc_sha256_hex(token, strlen(token), hash) != PC_OK)
        goto refused;
    if (cp_tx_begin(db) != PC_OK)
        return PC_ERR_STORE;
    /* Claim the token in the same statement that checks it: single use even under races. */
    st = cp_prepare(db,
                    "UPDATE tokens SET used_at = ?1 WHERE hash = ?2 AND kind = 'enroll'"
                    " AND used_at = 0 AND expires_at > ?1 RETURNING labels, hostname, principals");
    if (!st) {
        rc = PC_ERR_STORE;
        goto out;
    }
    cp_bind_int64(st, 1, pc_now());
    cp_bind_text(st, 2, hash);
    if (cp_step(st) == CP_ROW) {
        found = 1;
        if (!(labels = strdup(cp_col_text(st, 0)))) {
            cp_finalize(st);
            rc = PC_ERR_NOMEM;
            goto out;
        }
        snprintf(name, sizeof name, "%s", cp_col_text(st, 1));
        princ = json_tokener_parse(cp_col_text(st, 2));
    }
    cp_finalize(st);
    /* A token from before hostnames were bound to tokens names no host: it enrolls none. */
    if (found && (!name[0] || !pc_valid_hostname(name) || !princ ||
                  !json_object_is_type(princ, json_type_array))) {
        found = 0;
        why = "token_without_hostname";
    } else if (found && (why = request_mismatch(name, princ, hostname, cert)) != NULL) {
        cp_tx_rollback(db); /* the token stays unused: its holder may still enroll as it says */
        rc = PC_ERR_STATE;
        goto deny;
    }
    if (!found) {
        why = why ? why : "bad_token";
        cp_tx_rollback(db);
        goto refused;
    }
    row.host = name;
    if (cp_host_name_taken(db, name)) {
        cp_tx_rollback(db);
        why = "hostname_taken";
        rc = PC_ERR_EXISTS;
        goto deny;
    }
    st = cp_prepare(
        db, "INSERT INTO hosts(hostname, labels, enrolled_at) VALUES (?, ?, ?) RETURNING id");
    if (!st) {
        rc = PC_ERR_STORE;
        goto out;
    }
    cp_bind_text(st, 1, name);
    cp_bind_text(st, 2, labels[0] ? labels : "{}");
    cp_bind_int64(st, 3, pc_now());
    if ((rc = cp_exec_stmt_id(st, host_id)) != PC_OK) {
        rc = rc == PC_ERR_EXISTS ? PC_ERR_STORE : rc;
        goto out;
    }
    if ((rc = pc_token_new(host_token)) != PC_OK ||
        (rc = insert_token(db, host_token, "host", *host_id, NULL, 0, NULL, NULL)) != PC_OK)
        goto out;
    if (cert && (rc = enroll_cert(db, *host_id, name, princ, cert, who->source)) != PC_OK)
        goto out;
    if (!cert && (rc = store_principals(db, *host_id, princ)) != PC_OK)
        goto out;
    snprintf(idbuf, sizeof idbuf, "host_id=%lld", (long long)*host_id);
    row.result = "ok";
    row.reason = idbuf;
    if ((rc = cp_audit_add(db, &row)) != PC_OK)
        goto out;
    rc = cp_tx_commit(db);
    snprintf(name_out, name_sz, "%s", name);
out:
    if (rc != PC_OK) {
        cp_tx_rollback(db);
        pc_wipe(host_token, 65);
    }
    json_object_put(princ);
    free(labels);
    return rc;
refused:
    rc = PC_ERR_AUTH;
deny:
    /* The refusal is audited in its own transaction. A caller without a valid token is only
     * counted past the first few (cp_refusals.h); one who holds a valid token and asks for
     * other names is always audited in full: the admin gave that token to someone. */
    json_object_put(princ);
    free(labels);
    row.result = "deny";
    row.reason = why;
    if ((strcmp(why, "bad_token") != 0 || cp_refusal_note(who->source)) &&
        cp_tx_begin(db) == PC_OK) {
        if (cp_audit_add(db, &row) != PC_OK || cp_tx_commit(db) != PC_OK)
            cp_tx_rollback(db);
    }
    return rc;
}

int cp_hosts_list(json_object **out)
{
    cp_conn *db = cp_db();
    cp_stmt *st;
    json_object *arr;

    if (!db || !(st = cp_prepare(db, "SELECT id, hostname, labels, enrolled_at FROM hosts"
                                     " WHERE deleted_at = 0 ORDER BY id")))
        return PC_ERR_STORE;
    arr = json_object_new_array();
    while (cp_step(st) == CP_ROW) {
        json_object *o = json_object_new_object();
        json_object *labels = json_tokener_parse(cp_col_text(st, 2));
        json_object_object_add(o, "host_id", json_object_new_int64(cp_col_int64(st, 0)));
        json_object_object_add(o, "hostname", json_object_new_string(cp_col_text(st, 1)));
        json_object_object_add(o, "labels", labels ? labels : json_object_new_object());
        json_object_object_add(o, "enrolled_at", json_object_new_int64(cp_col_int64(st, 3)));
        json_object_array_add(arr, o);
    }
    cp_finalize(st);
    *out = arr;
    return PC_OK;
}
