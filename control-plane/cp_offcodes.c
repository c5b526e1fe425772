/* SPDX-License-Identifier: BSD-2-Clause */
/* Issue 13 step 2(b): offline codes (see cp_offcodes.h). */
#include "config.h"
#include "cp_offcodes.h"
#include "cp_offline.h"
#include "cp_policy.h"
#include "cp_store.h"
#include "cp_users.h"
#include "pc_err.h"
#include "pc_log.h"
#include "pc_mem.h"
#include "pc_offcode.h"
#include "pc_rand.h"
#include "pc_time.h"
#include "pc_totp.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STEPS (PC_OFFCODE_MAX_SECS / PC_TOTP_PERIOD + 2)
#define IDLE_MS 5000

static int64_t now_step(void)
{
    return pc_now() / PC_TOTP_PERIOD;
}

static void to_hex(const unsigned char *b, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[b[i] >> 4];
        out[2 * i + 1] = d[b[i] & 15];
    }
    out[2 * n] = '\0';
}

/* The accounts named by rules (a set), if some rule has offline_codes; else NULL (the job
 * only clears the cache). */
static json_object *any_rule_has_codes(void)
{
    json_object *rules = NULL, *accounts = NULL;
    int any = 0;

    if (cp_policy_list(&rules) != PC_OK)
        return NULL;
    for (size_t i = 0; !any && i < json_object_array_length(rules); i++)
        any = json_object_object_get_ex(json_object_array_get_idx(rules, i), "offline_codes", NULL);
    if (any) {
        accounts = json_object_new_object();
        cp_offline_accounts_named(rules, accounts);
    }
    json_object_put(rules);
    return accounts;
}

static int drop_pair(cp_conn *db, int64_t uid, int64_t hid)
{
    static const char *const sql[] = {
        "DELETE FROM offline_code_hashes WHERE user_id = ? AND host_id = ?",
        "DELETE FROM offline_code_salts WHERE user_id = ? AND host_id = ?",
    };
    for (size_t i = 0; i < 2; i++) {
        cp_stmt *st = cp_prepare(db, sql[i]);
        int rc;
        if (!st)
            return PC_ERR_STORE;
        cp_bind_int64(st, 1, uid);
        cp_bind_int64(st, 2, hid);
        if ((rc = cp_exec_stmt(st)) != PC_OK)
            return rc;
    }
    return PC_OK;
}

static int pair_held(cp_conn *db, int64_t uid, int64_t hid)
{
    cp_stmt *st = cp_prepare(db, "SELECT 1 FROM offline_code_salts WHERE user_id = ? AND"
                                 " host_id = ?");
    int held;

    if (!st)
        return 0;
    cp_bind_int64(st, 1, uid);
    cp_bind_int64(st, 2, hid);
    held = cp_step(st) == CP_ROW;
    cp_finalize(st);
    return held;
}

/* The pair's salt, made (and older hashes dropped) when missing or from another seed. */
static int pair_salt(cp_conn *db, int64_t uid, int64_t hid, const char *mark,
                     unsigned char salt[PC_OFFCODE_SALT])
{
    cp_stmt *st = cp_prepare(db, "SELECT salt, seed_mark FROM offline_code_salts"
                                 " WHERE user_id = ? AND host_id = ?");
    int have = 0, rc;

    if (!st)
        return PC_ERR_STORE;
    cp_bind_int64(st, 1, uid);
    cp_bind_int64(st, 2, hid);
    if (cp_step(st) == CP_ROW && cp_col_bytes(st, 0) == PC_OFFCODE_SALT &&
        strcmp(cp_col_text(st, 1), mark) == 0) {
        memcpy(salt, cp_col_blob(st, 0), PC_OFFCODE_SALT);
        have = 1;
    }
    cp_finalize(st);
    if (have)
        return PC_OK;
    if ((rc = pc_random_bytes(salt, PC_OFFCODE_SALT)) != PC_OK ||
        (rc = drop_pair(db, uid, hid)) != PC_OK)
        return rc;
    if (!(st = cp_prepare(db, "INSERT INTO offline_code_salts(user_id, host_id, salt, seed_mark)"
                              " VALUES (?,?,?,?)")))
        return PC_ERR_STORE;
    cp_bind_int64(st, 1, uid);
    cp_bind_int64(st, 2, hid);
    cp_bind_blob(st, 3, salt, PC_OFFCODE_SALT);
    cp_bind_text(st, 4, mark);
    return cp_exec_stmt(st);
}

/* Marks in have[] (index step - first) the steps already hashed. */
static int steps_held(cp_conn *db, int64_t uid, int64_t hid, int64_t first, int64_t last,
                      unsigned char *have)
{
    cp_stmt *st = cp_prepare(db, "SELECT step FROM offline_code_hashes WHERE user_id = ?"
                                 " AND host_id = ? AND step BETWEEN ? AND ?");
    if (!st)
        return PC_ERR_STORE;
    cp_bind_int64(st, 1, uid);
    cp_bind_int64(st, 2, hid);
    cp_bind_int64(st, 3, first);
    cp_bind_int64(st, 4, last);
    while (cp_step(st) == CP_ROW)
        have[cp_col_int64(st, 0) - first] = 1;
    cp_finalize(st);
    return PC_OK;
}

/* The longest window of person on host_id over the accounts named by rules. */
static int person_window(cp_conn *db, const char *person, int64_t hid, json_object *accounts,
                         int64_t *secs)
{
    int rc = PC_OK;

    *secs = 0;
    json_object_object_foreach(accounts, acct, unused)
    {
        const char *account = strcmp(acct, "$user") == 0 ? person : acct;
        int64_t s = 0;
        (void)unused;
        if ((rc = cp_policy_offline_codes(db, person, account, hid, &s)) != PC_OK)
            return rc;
        if (s > *secs)
            *secs = s;
    }
    return rc;
}

/* One (person, host) pair: up to *budget missing hashes of its window, in one transaction. */
static int fill_pair(cp_conn *db, const char *name, int64_t hid, int64_t secs, int *budget,
                     int *done)
{
    struct cp_user_rec u;
    unsigned char seed[64], salt[PC_OFFCODE_SALT], h[PC_OFFCODE_HASH], *have = NULL;
    char mark[PC_SHA256_HEX_LEN + 1], code[PC_TOTP_DIGITS + 1];
    size_t seedlen = 0;
    int64_t first = now_step() - 1, last = now_step() + secs / PC_TOTP_PERIOD;
    cp_stmt *st = NULL;
    int rc, opened = 0;

    if ((rc = cp_user_load(db, name, &u)) != PC_OK || !u.has_totp)
        goto out;
    if ((rc = cp_tx_begin(db)) != PC_OK)
        goto out;
    st = cp_prepare(db, "SELECT totp_seed FROM users WHERE id = ?");
    rc = PC_ERR_STORE;
    if (st) {
        cp_bind_int64(st, 1, u.id);
        if (cp_step(st) == CP_ROW)
            rc = pc_sha256_hex(cp_col_blob(st, 0), (size_t)cp_col_bytes(st, 0), mark);
        cp_finalize(st);
        st = NULL;
    }
    if (rc != PC_OK || (rc = pair_salt(db, u.id, hid, mark, salt)) != PC_OK)
        goto out;
    if (!(st = cp_prepare(db, "DELETE FROM offline_code_hashes WHERE user_id = ? AND host_id = ?"
                              " AND (step < ? OR step > ?)"))) {
        rc = PC_ERR_STORE;
        goto out;
    }
    cp_bind_int64(st, 1, u.id);
    cp_bind_int64(st, 2, hid);
    cp_bind_int64(st, 3, first);
    cp_bind_int64(st, 4, last);
    if ((rc = cp_exec_stmt(st)) != PC_OK)
        goto out;
    st = NULL;
    if (!(have = calloc((size_t)(last - first + 1), 1))) {
        rc = PC_ERR_NOMEM;
        goto out;
    }
    if ((rc = steps_held(db, u.id, hid, first, last, have)) != PC_OK)
        goto out;
    for (int64_t s = first; rc == PC_OK && s <= last && *budget > 0; s++) {
        if (have[s - first])
            continue;
        if (!opened) {
            if ((rc = cp_user_open_seed(name, &u, seed, sizeof seed, &seedlen)) != PC_OK)
                break;
            opened = 1;
        }
        if ((rc = pc_totp_code(seed, seedlen, s * PC_TOTP_PERIOD, code, sizeof code)) != PC_OK ||
            (rc = pc_offcode_hash(code, salt, (uint64_t)s, h)) != PC_OK)
            break;
        if (!(st = cp_prepare(db, "INSERT INTO offline_code_hashes(user_id, host_id, step, hash)"
                                  " VALUES (?,?,?,?)"))) {
            rc = PC_ERR_STORE;
            break;
        }
        cp_bind_int64(st, 1, u.id);
        cp_bind_int64(st, 2, hid);
        cp_bind_int64(st, 3, s);
        cp_bind_blob(st, 4, h, PC_OFFCODE_HASH);
        rc = cp_exec_stmt(st);
        st = NULL;
        (*budget)--;
        (*done)++;
    }
    if (rc == PC_OK)
        rc = cp_tx_commit(db);
out:
    if (st)
        cp_finalize(st);
    if (cp_autocommit(db) == 0)
        cp_tx_rollback(db);
    free(have);
    pc_wipe(code, sizeof code);
    pc_wipe(seed, sizeof seed);
    pc_wipe(&u, sizeof u);
    return rc;
}

int cp_offcodes_fill(int budget, int *done)
{
    cp_conn *db = cp_db();
    cp_stmt *hs = NULL, *us = NULL;
    json_object *accounts = NULL;
    int rc = PC_OK;

    *done = 0;
    if (!db)
        return PC_ERR_STORE;
    if (!(accounts = any_rule_has_codes())) {
        if (cp_exec(db, "DELETE FROM offline_code_hashes; DELETE FROM offline_code_salts;") !=
            PC_OK)
            return PC_ERR_STORE;
        return PC_OK;
    }
    if (!(hs = cp_prepare(db, "SELECT id FROM hosts WHERE deleted_at = 0 ORDER BY id")))
        return PC_ERR_STORE;
    while (rc == PC_OK && budget > 0 && cp_step(hs) == CP_ROW) {
        int64_t hid = cp_col_int64(hs, 0);
        if (!(us = cp_prepare(db, "SELECT id, name, enabled, totp_seed IS NOT NULL FROM users"
                                  " ORDER BY id"))) {
            rc = PC_ERR_STORE;
            break;
        }
        while (rc == PC_OK && budget > 0 && cp_step(us) == CP_ROW) {
            char name[72];
            int64_t secs = 0, uid = cp_col_int64(us, 0);
            snprintf(name, sizeof name, "%s", cp_col_text(us, 1));
            if (cp_col_int(us, 2) && cp_col_int(us, 3) &&
                (rc = person_window(db, name, hid, accounts, &secs)) != PC_OK)
                break;
            if (secs > 0) {
                rc = fill_pair(db, name, hid, secs, &budget, done);
            } else if (pair_held(db, uid, hid)) {
                rc = drop_pair(db, uid, hid); /* no longer covered there: its hashes go */
            }
        }
        cp_finalize(us);
        us = NULL;
    }
    cp_finalize(hs);
    json_object_put(accounts);
    return rc;
}

/* ---- the job ---------------------------------------------------------------------------- */

static pthread_t job;
static pthread_mutex_t job_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t job_wake = PTHREAD_COND_INITIALIZER;
static int job_stopping, job_started;

static void *job_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&job_lock);
    while (!job_stopping) {
        struct timespec ts;
        int done = 0, rc;
        int64_t wait_ms;

        pthread_mutex_unlock(&job_lock);
        rc = cp_offcodes_fill(CP_OFFCODES_BUDGET, &done);
        if (rc != PC_OK)
            pc_log(PC_LOG_WARN, "event=offline_codes_fill result=error rc=%d", rc);
        else if (done > 0)
            pc_log(PC_LOG_DEBUG, "event=offline_codes_fill hashes=%d", done);
        pthread_mutex_lock(&job_lock);
        wait_ms = done >= CP_OFFCODES_BUDGET ? 10 : IDLE_MS; /* more to do: let others in */
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += wait_ms / 1000;
        ts.tv_nsec += (wait_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (!job_stopping)
            pthread_cond_timedwait(&job_wake, &job_lock, &ts);
    }
    pthread_mutex_unlock(&job_lock);
    return NULL;
}

int cp_offcodes_start(void)
{
    if (pthread_create(&job, NULL, job_main, NULL) != 0)
        return PC_ERR_NOMEM;
    job_started = 1;
    return PC_OK;
}

void cp_offcodes_stop(void)
{
    if (!job_started)
        return;
    pthread_mutex_lock(&job_lock);
    job_stopping = 1;
    pthread_cond_signal(&job_wake);
    pthread_mutex_unlock(&job_lock);
    pthread_join(job, NULL);
    job_started = 0;
}

/* ---- the document and the replay guard --------------------------------------------------- */

/* The person's registered key fingerprints (a certificate's key must be one of them). */
static json_object *fingerprints_of(cp_conn *db, int64_t uid)
{
    cp_stmt *st = cp_prepare(db, "SELECT fingerprint FROM user_ssh_keys WHERE user_id = ?"
                                 " ORDER BY 1");
    json_object *arr = json_object_new_array();

    if (!st)
        return arr;
    cp_bind_int64(st, 1, uid);
    while (cp_step(st) == CP_ROW && json_object_array_length(arr) < 64)
        json_object_array_add(arr, json_object_new_string(cp_col_text(st, 0)));
    cp_finalize(st);
    return arr;
}

/* {account: {"until": window end, "options": key options}} of person on hid. */
static int person_accounts(cp_conn *db, const char *person, int64_t hid, json_object *accounts,
                           int64_t last_end, json_object *out)
{
    json_object_object_foreach(accounts, acct, unused)
    {
        const char *account = strcmp(acct, "$user") == 0 ? person : acct;
        json_object *opts = NULL, *a;
        int64_t s = 0, until;
        int rc;

        (void)unused;
        if (strcmp(acct, person) == 0 && json_object_object_get_ex(accounts, "$user", NULL))
            continue;
        if ((rc = cp_policy_offline_codes(db, person, account, hid, &s)) != PC_OK)
            return rc;
        if (s <= 0)
            continue;
        if ((rc = cp_policy_host_options(db, person, account, hid, &opts)) != PC_OK)
            return rc;
        if (!opts)
            continue; /* rules that conflict: no principal online either */
        until = (now_step() + 1 + s / PC_TOTP_PERIOD) * PC_TOTP_PERIOD;
        a = json_object_new_object();
        json_object_object_add(a, "until",
                               json_object_new_int64(until < last_end ? until : last_end));
        json_object_object_add(a, "options", opts);
        json_object_object_add(out, account, a);
    }
    return PC_OK;
}

static json_object *pair_entry(cp_conn *db, const char *name, int64_t uid, int64_t hid,
                               int64_t secs)
{
    cp_stmt *st = cp_prepare(db, "SELECT salt FROM offline_code_salts WHERE user_id = ?"
                                 " AND host_id = ?");
    json_object *e = NULL, *hashes;
    int64_t first = now_step() - 1, last = now_step() + secs / PC_TOTP_PERIOD, end = 0;
    char hex[2 * PC_OFFCODE_HASH + 1], key[24];

    if (!st)
        return NULL;
    cp_bind_int64(st, 1, uid);
    cp_bind_int64(st, 2, hid);
    if (cp_step(st) != CP_ROW || cp_col_bytes(st, 0) != PC_OFFCODE_SALT) {
        cp_finalize(st);
        return NULL; /* not computed yet */
    }
    to_hex(cp_col_blob(st, 0), PC_OFFCODE_SALT, hex);
    cp_finalize(st);
    e = json_object_new_object();
    json_object_object_add(e, "person", json_object_new_string(name));
    json_object_object_add(e, "salt", json_object_new_string(hex));
    hashes = json_object_new_object();
    if ((st = cp_prepare(db, "SELECT step, hash FROM offline_code_hashes WHERE user_id = ? AND"
                             " host_id = ? AND step BETWEEN ? AND ? ORDER BY step"))) {
        cp_bind_int64(st, 1, uid);
        cp_bind_int64(st, 2, hid);
        cp_bind_int64(st, 3, first);
        cp_bind_int64(st, 4, last);
        while (cp_step(st) == CP_ROW) {
            if (cp_col_bytes(st, 1) != PC_OFFCODE_HASH)
                continue;
            snprintf(key, sizeof key, "%lld", (long long)cp_col_int64(st, 0));
            to_hex(cp_col_blob(st, 1), PC_OFFCODE_HASH, hex);
            json_object_object_add(hashes, key, json_object_new_string(hex));
            end = (cp_col_int64(st, 0) + 1) * PC_TOTP_PERIOD;
        }
        cp_finalize(st);
    }
    json_object_object_add(e, "until", json_object_new_int64(end));
    /* the steps spent online (or by an uploaded offline code): refused offline too */
    if ((st = cp_prepare(db, "SELECT totp_last_step FROM users WHERE id = ?"))) {
        cp_bind_int64(st, 1, uid);
        if (cp_step(st) == CP_ROW)
            json_object_object_add(e, "spent_step", json_object_new_int64(cp_col_int64(st, 0)));
        cp_finalize(st);
    }
    json_object_object_add(e, "hashes", hashes);
    return e;
}

int cp_offcodes_document(cp_conn *db, int64_t host_id, json_object *accounts, json_object **out)
{
    cp_stmt *st = cp_prepare(db, "SELECT id, name FROM users WHERE enabled = 1 AND"
                                 " totp_seed IS NOT NULL ORDER BY name");
    json_object *arr = json_object_new_array();
    int rc = PC_OK;

    *out = NULL;
    if (!st) {
        json_object_put(arr);
        return PC_ERR_STORE;
    }
    while (rc == PC_OK && cp_step(st) == CP_ROW) {
        char name[72];
        int64_t secs = 0, uid = cp_col_int64(st, 0);
        json_object *e;
        snprintf(name, sizeof name, "%s", cp_col_text(st, 1));
        if ((rc = person_window(db, name, host_id, accounts, &secs)) != PC_OK || secs <= 0)
            continue;
        if ((e = pair_entry(db, name, uid, host_id, secs)) != NULL) {
            json_object *acc = json_object_new_object();
            rc = person_accounts(db, name, host_id, accounts,
                                 json_object_get_int64(json_object_object_get(e, "until")), acc);
            json_object_object_add(e, "accounts", acc);
            json_object_object_add(e, "fingerprints", fingerprints_of(db, uid));
            if (json_object_object_length(acc) > 0)
                json_object_array_add(arr, e);
            else
                json_object_put(e);
        }
    }
    cp_finalize(st);
    if (rc != PC_OK) {
        json_object_put(arr);
        return rc;
    }
    *out = arr;
    return PC_OK;
}

int cp_offcodes_mark_used(cp_conn *db, int64_t host_id, const char *person, int64_t step)
{
    cp_stmt *st;

    if (step < 0 || step > now_step() + 1)
        return PC_OK; /* not a code of now: nothing to mark */
    st = cp_prepare(db, "UPDATE users SET totp_last_step = ?3 WHERE name = ?1 AND"
                        " totp_last_step < ?3 AND EXISTS (SELECT 1 FROM offline_code_salts s"
                        " WHERE s.user_id = users.id AND s.host_id = ?2)");
    if (!st)
        return PC_ERR_STORE;
    cp_bind_text(st, 1, person);
    cp_bind_int64(st, 2, host_id);
    cp_bind_int64(st, 3, step);
    return cp_exec_stmt(st);
}
