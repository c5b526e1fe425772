/* SPDX-License-Identifier: BSD-2-Clause */
/* Issue 13: the per-host offline document (see cp_offline.h). */
#include "config.h"
#include "cp_offline.h"
#include "cp_ca.h"
#include "cp_policy.h"
#include "cp_store.h"
#include "pc_err.h"
#include "pc_time.h"
#include <stdlib.h>
#include <string.h>

/* Every account named by some rule ("$user" stands for the person). */
static int accounts_named(json_object *rules, json_object *accounts)
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

/* The pairs of one enabled person. */
static int person_pairs(sqlite3 *db, int64_t host_id, const char *person, json_object *accounts,
                        json_object *arr)
{
    json_object_object_foreach(accounts, acct, unused)
    {
        const char *account = strcmp(acct, "$user") == 0 ? person : acct;
        json_object *opts = NULL, *e;
        int per_cert = 0, rc;

        (void)unused;
        if (strcmp(acct, person) == 0 && json_object_object_get_ex(accounts, "$user", NULL))
            continue; /* named both ways: "$user" gives it once */
        if ((rc = cp_policy_per_certificate(db, person, account, host_id, &per_cert)) != PC_OK)
            return rc;
        if (!per_cert)
            continue;
        if ((rc = cp_policy_host_options(db, person, account, host_id, &opts)) != PC_OK)
            return rc;
        if (!opts)
            continue; /* rules that conflict: no principal online either */
        if (json_object_array_length(arr) >= CP_OFFLINE_MAX_ENTRIES) {
            json_object_put(opts);
            return PC_ERR_TOOBIG;
        }
        e = json_object_new_object();
        json_object_object_add(e, "person", json_object_new_string(person));
        json_object_object_add(e, "account", json_object_new_string(account));
        json_object_object_add(e, "options", opts);
        json_object_array_add(arr, e);
    }
    return PC_OK;
}

/* The user CA key(s) a certificate may come from, as public key lines. */
static int user_ca_lines(json_object **out)
{
    const struct pc_sshkey *ca = cp_ca_user_key();
    char *line = NULL;
    int rc;

    *out = NULL;
    if (!ca)
        return PC_ERR_STATE;
    if ((rc = pc_sshkey_to_line(ca, NULL, &line)) != PC_OK)
        return rc;
    *out = json_object_new_array();
    json_object_array_add(*out, json_object_new_string(line));
    free(line);
    return PC_OK;
}

int cp_offline_host_rules(const struct cp_identity *host, json_object **out)
{
    sqlite3 *db = cp_db();
    json_object *rules = NULL, *accounts = json_object_new_object(), *arr = json_object_new_array(),
                *o, *cas = NULL;
    sqlite3_stmt *st = NULL;
    int rc, step;

    *out = NULL;
    if (!db || (rc = cp_policy_list(&rules)) != PC_OK) {
        rc = db ? rc : PC_ERR_STORE;
        goto out;
    }
    accounts_named(rules, accounts);
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        rc = PC_ERR_STORE;
        goto out;
    }
    if (!(st = cp_prepare(db, "SELECT name FROM users WHERE enabled = 1 ORDER BY name"))) {
        rc = PC_ERR_STORE;
        goto out;
    }
    rc = PC_OK;
    while (rc == PC_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *person = cp_col_text(st, 0);
        if (!cp_ca_key_id_revoked(db, person))
            rc = person_pairs(db, host->host_id, person, accounts, arr);
    }
    if (rc == PC_OK && step != SQLITE_DONE)
        rc = PC_ERR_STORE;
out:
    if (st)
        sqlite3_finalize(st);
    if (db && sqlite3_get_autocommit(db) == 0)
        cp_tx_rollback(db); /* read only */
    if (rc == PC_OK && (rc = user_ca_lines(&cas)) == PC_OK) {
        o = json_object_new_object();
        json_object_object_add(o, "generated_at", json_object_new_int64(pc_now()));
        json_object_object_add(o, "user_ca", cas);
        json_object_object_add(o, "per_certificate", arr);
        *out = o;
    } else {
        json_object_put(arr);
    }
    json_object_put(rules);
    json_object_put(accounts);
    return rc;
}
