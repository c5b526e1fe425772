/* SPDX-License-Identifier: BSD-2-Clause */
/* Issue 13 step 2(b): offline codes in the agent (see ag_offline.h). The document holds, per
 * person allowed here, a salt and the scrypt hashes (pc_offcode.h) of the window's codes by
 * step: never a seed, never a code. A typed code is checked against the steps now±1 only. */
#include "config.h"
#include "ag_offline.h"
#include "ag_hostca.h"
#include "pc_err.h"
#include "pc_fs.h"
#include "pc_json.h"
#include "pc_keyopts.h"
#include "pc_log.h"
#include "pc_mem.h"
#include "pc_offcode.h"
#include "pc_rand.h"
#include "pc_time.h"
#include "pc_totp.h"
#include "pc_valid.h"
#include <limits.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HASHES (PC_OFFCODE_MAX_SECS / PC_TOTP_PERIOD + 2)
#define PENDING 64
#define PENDING_TTL 300 /* s a challenge stays answerable, as an online transaction */

static int64_t now_step(void)
{
    return pc_now() / PC_TOTP_PERIOD;
}

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || s[0] == '-')
        return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

static int unhex(const char *h, unsigned char *out, size_t n)
{
    if (!h || strlen(h) != 2 * n || !pc_valid_hex(h, 2 * n, 2 * n))
        return PC_ERR_PARSE;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(h + 2 * i, "%2x", &v) != 1)
            return PC_ERR_PARSE;
        out[i] = (unsigned char)v;
    }
    return PC_OK;
}

int ag_offcodes_ok(json_object *doc)
{
    json_object *arr = NULL;
    struct pc_jerr je = { 0 };

    if (!json_object_object_get_ex(doc, "offline_codes", &arr))
        return 1; /* an older control plane: none */
    if (!json_object_is_type(arr, json_type_array) || json_object_array_length(arr) > 4096)
        return 0;
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *e = json_object_array_get_idx(arr, i), *h = NULL, *acc = NULL, *fps = NULL;
        const char *p = NULL, *salt = NULL;
        int64_t until = 0;
        size_t n = 0;
        if (!json_object_is_type(e, json_type_object) ||
            pc_json_get_str(e, "person", 1, 64, &p, &je) != PC_OK || !name_ok(p) ||
            pc_json_get_str(e, "salt", 1, 2 * PC_OFFCODE_SALT, &salt, &je) != PC_OK ||
            !pc_valid_hex(salt, 2 * PC_OFFCODE_SALT, 2 * PC_OFFCODE_SALT) ||
            pc_json_get_int(e, "until", 1, 0, INT64_MAX / 2, &until, &je) != PC_OK ||
            pc_json_get_int(e, "spent_step", 0, -1, INT64_MAX / 2, &until, &je) != PC_OK ||
            !json_object_object_get_ex(e, "hashes", &h) ||
            !json_object_is_type(h, json_type_object) ||
            pc_json_get_str_array(e, "fingerprints", 1, 64, PC_SSHKEY_FP_SIZE, &fps, &je) !=
                PC_OK ||
            !json_object_object_get_ex(e, "accounts", &acc) ||
            !json_object_is_type(acc, json_type_object) || json_object_object_length(acc) > 256)
            return 0;
        json_object_object_foreach(acc, an, av)
        {
            json_object *o = NULL;
            int64_t u = 0;
            char line[PC_KEYOPTS_LINE_MAX];
            if (!name_ok(an) || !json_object_is_type(av, json_type_object) ||
                pc_json_get_int(av, "until", 1, 0, INT64_MAX / 2, &u, &je) != PC_OK ||
                !json_object_object_get_ex(av, "options", &o) ||
                pc_keyopts_build(o, line, sizeof line) != PC_OK)
                return 0;
        }
        json_object_object_foreach(h, k, v)
        {
            char *end = NULL;
            long long step = strtoll(k, &end, 10);
            if (++n > MAX_HASHES || !*k || *end || step < 0 ||
                !json_object_is_type(v, json_type_string) ||
                !pc_valid_hex(json_object_get_string(v), 2 * PC_OFFCODE_HASH, 2 * PC_OFFCODE_HASH))
                return 0;
        }
    }
    return 1;
}

/* The document's entry for person, or NULL. */
static json_object *entry_of(json_object *doc, const char *person)
{
    json_object *arr = doc ? json_object_object_get(doc, "offline_codes") : NULL;
    if (!arr || !json_object_is_type(arr, json_type_array))
        return NULL; /* an older control plane's document: no codes */
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *e = json_object_array_get_idx(arr, i);
        if (strcmp(json_object_get_string(json_object_object_get(e, "person")), person) == 0)
            return e;
    }
    return NULL;
}

/* The account's window end in entry e, or 0. */
static int64_t account_until(json_object *e, const char *account)
{
    json_object *a = json_object_object_get(json_object_object_get(e, "accounts"), account);
    return a ? json_object_get_int64(json_object_object_get(a, "until")) : 0;
}

static int fp_of(json_object *e, const char *fp)
{
    json_object *arr = e ? json_object_object_get(e, "fingerprints") : NULL;
    if (!arr || !json_object_is_type(arr, json_type_array))
        return 0;
    for (size_t i = 0; fp && i < json_object_array_length(arr); i++)
        if (strcmp(json_object_get_string(json_object_array_get_idx(arr, i)), fp) == 0)
            return 1;
    return 0;
}

json_object *ag_offcodes_options(json_object *doc, const char *person, const char *account,
                                 const char *fp)
{
    json_object *e = entry_of(doc, person);
    if (!e || !fp_of(e, fp) || account_until(e, account) <= pc_now())
        return NULL;
    return json_object_object_get(json_object_object_get(json_object_object_get(e, "accounts"),
                                                         account),
                                  "options");
}

/* ---- the local state: spent steps and failures (crash-safe: written atomically, fsync'ed) -- */

static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;

static json_object *state_load(const struct ag_config *c)
{
    char path[PATH_MAX], *txt = NULL;
    size_t len = 0;
    json_object *st = NULL;

    if (ag_hostca_path(c, AG_OFFCODES_STATE, path, sizeof path) == PC_OK &&
        pc_read_file(path, 4u * 1024u * 1024u, &txt, &len) == PC_OK) {
        st = json_tokener_parse(txt);
        free(txt);
    }
    if (st && !json_object_is_type(st, json_type_object)) {
        json_object_put(st);
        st = NULL;
    }
    return st ? st : json_object_new_object();
}

static int state_save(const struct ag_config *c, json_object *st)
{
    char path[PATH_MAX];
    const char *txt = json_object_to_json_string_ext(st, JSON_C_TO_STRING_PLAIN);

    if (ag_hostca_path(c, AG_OFFCODES_STATE, path, sizeof path) != PC_OK)
        return PC_ERR_INVAL;
    return pc_write_file_atomic(path, txt, strlen(txt), 0600);
}

static int64_t state_get(json_object *st, const char *person, const char *key, int64_t dflt)
{
    json_object *p = json_object_object_get(st, person), *v;
    if (p && json_object_object_get_ex(p, key, &v) && json_object_is_type(v, json_type_int))
        return json_object_get_int64(v);
    return dflt;
}

static void state_set(json_object *st, const char *person, const char *key, int64_t v)
{
    json_object *p = json_object_object_get(st, person);
    if (!p || !json_object_is_type(p, json_type_object)) {
        p = json_object_new_object();
        json_object_object_add(st, person, p);
    }
    json_object_object_add(p, key, json_object_new_int64(v));
}

/* ---- challenges ---------------------------------------------------------------------------- */

static struct {
    char txid[33], user[65], person[65];
    int64_t expires;
} pending[PENDING];
static pthread_mutex_t pending_lock = PTHREAD_MUTEX_INITIALIZER;

int ag_offcodes_begin(const struct ag_config *c, const char *user, const char *auth_info,
                      char txid[33])
{
    json_object *doc, *e, *st;
    int64_t now = pc_now(), locked;
    char person[65], fp[PC_SSHKEY_FP_SIZE];
    size_t slot = 0;
    int ok = 0;

    if (!name_ok(user) || !(doc = ag_offline_doc_load(c)))
        return 0;
    /* the person: our certificate's key id (its key registered to them), else the account */
    if (!ag_offline_cert_person(doc, auth_info, person, sizeof person, fp))
        snprintf(person, sizeof person, "%s", user);
    else if (!fp_of(entry_of(doc, person), fp))
        person[0] = '\0';
    e = person[0] ? entry_of(doc, person) : NULL;
    if (e && account_until(e, user) > now) {
        pthread_mutex_lock(&state_lock);
        st = state_load(c);
        locked = state_get(st, person, "locked_until", 0);
        json_object_put(st);
        pthread_mutex_unlock(&state_lock);
        ok = locked <= now && pc_random_hex(txid, 33, 16) == PC_OK;
    }
    json_object_put(doc);
    if (!ok)
        return 0;
    pthread_mutex_lock(&pending_lock);
    for (size_t i = 0; i < PENDING; i++) /* a free or expired slot, else the oldest */
        if (pending[i].expires < pending[slot].expires)
            slot = i;
    snprintf(pending[slot].txid, sizeof pending[slot].txid, "%s", txid);
    snprintf(pending[slot].user, sizeof pending[slot].user, "%s", user);
    snprintf(pending[slot].person, sizeof pending[slot].person, "%s", person);
    pending[slot].expires = now + PENDING_TTL;
    pthread_mutex_unlock(&pending_lock);
    return 1;
}

/* The account and person of a pending txid (65 bytes each); 1 if found. */
static int pending_user(const char *txid, char *user, char *person)
{
    int found = 0;
    pthread_mutex_lock(&pending_lock);
    for (size_t i = 0; i < PENDING && !found; i++)
        if (pending[i].expires > pc_now() && strcmp(pending[i].txid, txid) == 0) {
            memcpy(user, pending[i].user, sizeof pending[i].user);
            memcpy(person, pending[i].person, sizeof pending[i].person);
            found = 1;
        }
    pthread_mutex_unlock(&pending_lock);
    return found;
}

int ag_offcodes_pending(const char *txid)
{
    char user[65], person[65];
    return txid && pending_user(txid, user, person);
}

/* The step among now±1 whose cached hash matches code, or -1. At most 3 slow hashes. */
static int64_t match_step(json_object *e, const char *code)
{
    unsigned char salt[PC_OFFCODE_SALT], want[PC_OFFCODE_HASH], got[PC_OFFCODE_HASH];
    json_object *hashes = json_object_object_get(e, "hashes"), *h;
    int64_t found = -1, now = now_step();
    char key[24];

    if (unhex(json_object_get_string(json_object_object_get(e, "salt")), salt, sizeof salt) !=
        PC_OK)
        return -1;
    for (int64_t s = now - 1; s <= now + 1; s++) {
        snprintf(key, sizeof key, "%lld", (long long)s);
        if (!json_object_object_get_ex(hashes, key, &h) ||
            unhex(json_object_get_string(h), want, sizeof want) != PC_OK ||
            pc_offcode_hash(code, salt, (uint64_t)s, got) != PC_OK)
            continue;
        if (CRYPTO_memcmp(got, want, sizeof want) == 0 && found < 0)
            found = s; /* keep going: the same time for every code */
    }
    pc_wipe(got, sizeof got);
    return found;
}

int ag_offcodes_verify(const struct ag_config *c, const char *txid, const char *code,
                       const char **result, const char **reason)
{
    char user[65], person[65], id[33];
    json_object *doc = NULL, *e, *st = NULL;
    int64_t now = pc_now(), step = -1, last, fails;
    int rc = PC_OK;

    *result = "deny";
    *reason = "offline_code_wrong";
    if (!pending_user(txid, user, person))
        return PC_ERR_NOTFOUND;
    if (!(doc = ag_offline_doc_load(c)) || !(e = entry_of(doc, person))) {
        json_object_put(doc);
        return PC_ERR_NOTFOUND;
    }
    pthread_mutex_lock(&state_lock); /* one decision at a time: the spent step is shared */
    st = state_load(c);
    last = state_get(st, person, "spent_step", -1);
    if (json_object_get_int64(json_object_object_get(e, "spent_step")) > last)
        last = json_object_get_int64(json_object_object_get(e, "spent_step")); /* online */
    fails = state_get(st, person, "failures", 0);
    if (state_get(st, person, "locked_until", 0) > now) {
        *reason = "offline_code_locked";
    } else if ((step = match_step(e, code)) >= 0 && step > last) {
        *result = "allow";
        *reason = "offline_code";
        state_set(st, person, "spent_step", step); /* this step and all before it */
        state_set(st, person, "failures", 0);
    } else {
        *reason = step >= 0 ? "offline_code_replayed" : "offline_code_wrong";
        step = -1;
        state_set(st, person, "failures", ++fails);
        if (fails >= AG_OFFCODES_LOCK_AFTER) {
            int64_t shift = fails - AG_OFFCODES_LOCK_AFTER;
            state_set(st, person, "locked_until", now + (60LL << (shift > 6 ? 6 : shift)));
        }
    }
    /* spent (or counted) on disk, then queued, then answered; a failure: no decision */
    if ((rc = state_save(c, st)) == PC_OK && (rc = pc_random_hex(id, sizeof id, 16)) == PC_OK)
        rc = ag_offline_queue_append(c, id, user, person, *result, *reason, step);
    pthread_mutex_unlock(&state_lock);
    if (rc != PC_OK)
        pc_log(PC_LOG_ERR, "event=offline_code result=error user=%s (no decision)", user);
    else
        pc_log(PC_LOG_WARN,
               "event=totp txid=%s result=%s reason=%s source=offline user=%s person=%s", txid,
               *result, *reason, user, person);
    json_object_put(st);
    json_object_put(doc);
    return rc;
}

void ag_offcodes_summary(const struct ag_config *c, int64_t *people, int64_t *until)
{
    json_object *doc = ag_offline_doc_load(c), *arr;
    int64_t now = pc_now();

    *people = *until = -1;
    if (!doc)
        return;
    arr = json_object_object_get(doc, "offline_codes");
    *people = 0;
    if (!arr || !json_object_is_type(arr, json_type_array))
        arr = NULL;
    for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
        int64_t u = json_object_get_int64(
            json_object_object_get(json_object_array_get_idx(arr, i), "until"));
        if (u > now) {
            (*people)++;
            if (u > *until)
                *until = u;
        }
    }
    json_object_put(doc);
}
