/* SPDX-License-Identifier: BSD-2-Clause */
/* The CA key sets and their rotation (see cp_ca_keys.h). */
#include "config.h"
#include "cp_ca_keys.h"
#include "cp_audit.h"
#include "cp_ca.h"
#include "cp_notify.h"
#include "cp_secrets.h"
#include "cp_sql.h"
#include "cp_store.h"
#include "pc_err.h"
#include "pc_log.h"
#include "pc_time.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct ca_set {
    const char *name, *comment, *file, *next_file;
    struct pc_sshkey *cur, *prev; /* prev: only during an overlap */
    char *cur_line, *prev_line;   /* with the comment */
    int64_t since, overlap_end;
    int rename_pending; /* finish committed but the next key file is not renamed yet */
};

static struct ca_set sets[2] = {
    { "user", "portcullis-user-ca", "ca_user.key", "ca_user.next.key", NULL, NULL, NULL, NULL, 0, 0,
      0 },
    { "host", "portcullis-host-ca", "ca_host.key", "ca_host.next.key", NULL, NULL, NULL, NULL, 0, 0,
      0 },
};
static char ca_dir[PATH_MAX];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;       /* the pointers in sets */
static pthread_mutex_t admin_lock = PTHREAD_MUTEX_INITIALIZER; /* one rotate/finish at a time */
/* Lines replaced by a rotation: callers may still hold them (cp_ca_user_line). */
static char **old_lines;
static size_t n_old_lines;

static int type_from_name(const char *type, enum pc_keytype *t)
{
    if (!type || strcmp(type, "ed25519") == 0)
        *t = PC_KEY_ED25519;
    else if (strcmp(type, "ecdsa") == 0)
        *t = PC_KEY_ECDSA_P256;
    else if (strcmp(type, "rsa") == 0)
        *t = PC_KEY_RSA;
    else
        return PC_ERR_INVAL;
    return PC_OK;
}

static int path_of(const char *name, char *out, size_t n)
{
    return (size_t)snprintf(out, n, "%s/%s", ca_dir, name) < n ? PC_OK : PC_ERR_INVAL;
}

static void fsync_dir(void)
{
    int fd = open(ca_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* "TYPE BASE64" without a comment: how ca_rotations stores keys. */
static char *bare_line(const struct pc_sshkey *k)
{
    char *l = NULL;
    return pc_sshkey_to_line(k, NULL, &l) == PC_OK ? l : NULL;
}

static int same_key(const struct pc_sshkey *k, const char *bare)
{
    char *l = bare_line(k);
    int same = l && bare && strcmp(l, bare) == 0;
    free(l);
    return same;
}

static void keep_old_line(char *line)
{
    char **n;
    if (!line)
        return;
    if (!(n = realloc(old_lines, (n_old_lines + 1) * sizeof *n))) {
        /* cannot keep it: leaking it is safer than freeing a line a caller may hold */
        return;
    }
    old_lines = n;
    old_lines[n_old_lines++] = line;
}

/* Loads DIR/name; creates it when missing and create is set. */
static int load_key(const char *name, int create, enum pc_keytype t, struct pc_sshkey **k,
                    char *err, size_t errsz)
{
    char path[PATH_MAX];
    struct stat sb;
    int rc;

    if (path_of(name, path, sizeof path) != PC_OK)
        return PC_ERR_INVAL;
    if (stat(path, &sb) == 0) {
        if ((rc = pc_sshkey_load_private(path, k)) != PC_OK)
            snprintf(err, errsz,
                     "%s: cannot load the CA key (%s; it must be an unencrypted PEM "
                     "key readable only by its owner)",
                     path, pc_strerror(rc));
        else if ((*k)->type != t)
            pc_log(PC_LOG_WARN,
                   "event=ca_key_type file=%s type=%s note=\"kept; --ca-key-type "
                   "applies only to new keys\"",
                   path, pc_sshkey_type_name((*k)->type));
        return rc;
    }
    if (!create) {
        snprintf(err, errsz,
                 "%s: the CA key is missing but the database records rotations of it; "
                 "restore the file from a backup (a new key would cut off every host)",
                 path);
        return PC_ERR_NOTFOUND;
    }
    if ((rc = pc_sshkey_generate(t, k)) != PC_OK ||
        (rc = pc_sshkey_save_private(*k, path)) != PC_OK) {
        snprintf(err, errsz, "%s: cannot create the CA key: %s", path, pc_strerror(rc));
        return rc;
    }
    pc_log(PC_LOG_INFO, "event=ca_key_created file=%s type=%s", path, pc_sshkey_type_name(t));
    return PC_OK;
}

struct rotation_row {
    int found;
    char *old_key, *new_key;
    int64_t started_at, overlap_end, finished_at;
};

static void row_free(struct rotation_row *r)
{
    free(r->old_key);
    free(r->new_key);
    memset(r, 0, sizeof *r);
}

/* open: the rotation in its overlap; else the newest finished one. */
static int read_row(cp_conn *db, const char *kind, int open, struct rotation_row *r)
{
    cp_stmt *st = cp_prepare(
        db, open ? "SELECT old_key, new_key, started_at, overlap_end, finished_at FROM"
                   " ca_rotations WHERE kind = ? AND finished_at = 0"
                 : "SELECT old_key, new_key, started_at, overlap_end, finished_at FROM"
                   " ca_rotations WHERE kind = ? AND finished_at > 0 ORDER BY id DESC LIMIT 1");
    int rc;

    memset(r, 0, sizeof *r);
    if (!st)
        return PC_ERR_STORE;
    cp_bind_text(st, 1, kind);
    rc = cp_step(st);
    if (rc == CP_ROW) {
        r->found = 1;
        r->old_key = strdup(cp_col_text(st, 0));
        r->new_key = strdup(cp_col_text(st, 1));
        r->started_at = cp_col_int64(st, 2);
        r->overlap_end = cp_col_int64(st, 3);
        r->finished_at = cp_col_int64(st, 4);
    }
    cp_finalize(st);
    if (rc != CP_ROW && rc != CP_DONE)
        return PC_ERR_STORE;
    if (r->found && (!r->old_key || !r->new_key)) {
        row_free(r);
        return PC_ERR_NOMEM;
    }
    return PC_OK;
}

static int rename_next(struct ca_set *s)
{
    char from[PATH_MAX], to[PATH_MAX];

    if (path_of(s->next_file, from, sizeof from) != PC_OK ||
        path_of(s->file, to, sizeof to) != PC_OK || rename(from, to) != 0)
        return PC_ERR_IO;
    fsync_dir();
    return PC_OK;
}

static int init_set(cp_conn *db, struct ca_set *s, enum pc_keytype t, char *err, size_t errsz)
{
    struct rotation_row open = { 0 }, last = { 0 };
    struct pc_sshkey *key = NULL, *next = NULL;
    int rc;

    if ((rc = read_row(db, s->name, 1, &open)) != PC_OK ||
        (rc = read_row(db, s->name, 0, &last)) != PC_OK) {
        snprintf(err, errsz, "cannot read table ca_rotations");
        goto out;
    }
    if ((rc = load_key(s->file, !open.found && !last.found, t, &key, err, errsz)) != PC_OK)
        goto out;
    if (open.found) {
        if ((rc = load_key(s->next_file, 0, t, &next, err, errsz)) != PC_OK)
            goto out;
        if (!same_key(next, open.new_key) || !same_key(key, open.old_key)) {
            snprintf(err, errsz,
                     "%s/%s and %s/%s do not hold the keys of the %s CA rotation in progress",
                     ca_dir, s->file, ca_dir, s->next_file, s->name);
            rc = PC_ERR_STATE;
            goto out;
        }
        s->cur = next;
        s->prev = key;
        next = key = NULL;
        s->since = open.started_at;
        s->overlap_end = open.overlap_end;
    } else {
        if (last.found && !same_key(key, last.new_key)) {
            /* A finish that committed but did not rename: complete it. */
            if ((rc = load_key(s->next_file, 0, t, &next, err, errsz)) != PC_OK)
                goto out;
            if (!same_key(next, last.new_key) || rename_next(s) != PC_OK) {
                snprintf(err, errsz, "%s/%s does not hold the %s CA key the database names", ca_dir,
                         s->file, s->name);
                rc = PC_ERR_STATE;
                goto out;
            }
            pc_log(PC_LOG_WARN, "event=ca_finish_completed ca=%s", s->name);
            pc_sshkey_free(key);
            key = next;
            next = NULL;
        }
        s->cur = key;
        key = NULL;
        s->since = last.found ? last.finished_at : 0;
    }
    if ((rc = pc_sshkey_to_line(s->cur, s->comment, &s->cur_line)) != PC_OK ||
        (s->prev && (rc = pc_sshkey_to_line(s->prev, s->comment, &s->prev_line)) != PC_OK))
        snprintf(err, errsz, "cannot encode the CA public keys");
out:
    pc_sshkey_free(key);
    pc_sshkey_free(next);
    row_free(&open);
    row_free(&last);
    return rc;
}

int cp_ca_init(const char *dir, const char *type, char *err, size_t errsz)
{
    cp_conn *db = cp_db();
    enum pc_keytype t;
    int rc;

    if (type_from_name(type, &t) != PC_OK) {
        snprintf(err, errsz, "--ca-key-type must be ed25519, ecdsa or rsa");
        return PC_ERR_INVAL;
    }
    if (!db) {
        snprintf(err, errsz, "the CA needs the database open first");
        return PC_ERR_STATE;
    }
    if ((size_t)snprintf(ca_dir, sizeof ca_dir, "%s", dir) >= sizeof ca_dir) {
        snprintf(err, errsz, "%s: the data directory path is too long", dir);
        return PC_ERR_INVAL;
    }
    if ((rc = init_set(db, &sets[CP_CA_USER], t, err, errsz)) != PC_OK)
        return rc;
    return init_set(db, &sets[CP_CA_HOST], t, err, errsz);
}

/* Loads a set again from DIR (after cp_secrets_pull) and swaps it in if its keys changed. */
static int reload_set(cp_conn *db, struct ca_set *s, char *err, size_t errsz)
{
    struct ca_set n = {
        s->name, s->comment, s->file, s->next_file, NULL, NULL, NULL, NULL, 0, 0, 0
    };
    struct pc_sshkey *old_cur, *old_prev;
    int rc, same;

    if ((rc = init_set(db, &n, s->cur ? s->cur->type : PC_KEY_ED25519, err, errsz)) != PC_OK) {
        pc_sshkey_free(n.cur);
        pc_sshkey_free(n.prev);
        free(n.cur_line);
        free(n.prev_line);
        return rc;
    }
    pthread_mutex_lock(&lock);
    same = s->cur_line && strcmp(s->cur_line, n.cur_line) == 0 &&
           (s->prev_line ? n.prev_line && strcmp(s->prev_line, n.prev_line) == 0 : !n.prev_line);
    if (same) {
        s->since = n.since;
        s->overlap_end = n.overlap_end;
        pthread_mutex_unlock(&lock);
        pc_sshkey_free(n.cur);
        pc_sshkey_free(n.prev);
        free(n.cur_line);
        free(n.prev_line);
        return PC_OK;
    }
    old_cur = s->cur;
    old_prev = s->prev;
    keep_old_line(s->cur_line); /* callers may still hold them */
    keep_old_line(s->prev_line);
    s->cur = n.cur;
    s->prev = n.prev;
    s->cur_line = n.cur_line;
    s->prev_line = n.prev_line;
    s->since = n.since;
    s->overlap_end = n.overlap_end;
    s->rename_pending = 0;
    pthread_mutex_unlock(&lock);
    pc_sshkey_free(old_cur);
    pc_sshkey_free(old_prev);
    pc_log(PC_LOG_INFO, "event=ca_reloaded ca=%s phase=%s", s->name, n.prev ? "overlap" : "stable");
    return PC_OK;
}

void cp_ca_reload(void)
{
    cp_conn *db;
    char err[512];

    if (!cp_sql_is_pg() || !ca_dir[0] || !(db = cp_db()))
        return;
    pthread_mutex_lock(&admin_lock);
    if (cp_secrets_pull(db, ca_dir, err, sizeof err) != PC_OK ||
        reload_set(db, &sets[CP_CA_USER], err, sizeof err) != PC_OK ||
        reload_set(db, &sets[CP_CA_HOST], err, sizeof err) != PC_OK)
        pc_log(PC_LOG_ERR, "event=ca_reload_failed error=\"%s\"", err);
    pthread_mutex_unlock(&admin_lock);
}

void cp_ca_free(void)
{
    for (size_t i = 0; i < 2; i++) {
        pc_sshkey_free(sets[i].cur); /* frees the EVP_PKEY, which cleanses its private part */
        pc_sshkey_free(sets[i].prev);
        free(sets[i].cur_line);
        free(sets[i].prev_line);
        sets[i].cur = sets[i].prev = NULL;
        sets[i].cur_line = sets[i].prev_line = NULL;
    }
    for (size_t i = 0; i < n_old_lines; i++)
        free(old_lines[i]);
    free(old_lines);
    old_lines = NULL;
    n_old_lines = 0;
}

const char *cp_ca_user_line(void)
{
    const char *l;
    pthread_mutex_lock(&lock);
    l = sets[CP_CA_USER].cur_line;
    pthread_mutex_unlock(&lock);
    return l;
}

const char *cp_ca_host_line(void)
{
    const char *l;
    pthread_mutex_lock(&lock);
    l = sets[CP_CA_HOST].cur_line;
    pthread_mutex_unlock(&lock);
    return l;
}

json_object *cp_ca_lines_json(enum cp_ca_kind kind)
{
    json_object *a = json_object_new_array();
    pthread_mutex_lock(&lock);
    if (sets[kind].cur_line)
        json_object_array_add(a, json_object_new_string(sets[kind].cur_line));
    if (sets[kind].prev_line)
        json_object_array_add(a, json_object_new_string(sets[kind].prev_line));
    pthread_mutex_unlock(&lock);
    return a;
}

int cp_ca_user_trusts(const struct pc_sshkey *key)
{
    int yes;
    pthread_mutex_lock(&lock);
    yes = (sets[CP_CA_USER].cur && pc_sshkey_equal(key, sets[CP_CA_USER].cur)) ||
          (sets[CP_CA_USER].prev && pc_sshkey_equal(key, sets[CP_CA_USER].prev));
    pthread_mutex_unlock(&lock);
    return yes;
}

int cp_ca_sign_line(const struct pc_cert_req *cr, const char *comment, char **line)
{
    const struct ca_set *s = &sets[cr->type == PC_CERT_USER ? CP_CA_USER : CP_CA_HOST];
    int rc;

    pthread_mutex_lock(&lock);
    rc = s->cur ? pc_cert_sign_line(cr, s->cur, comment, line) : PC_ERR_STATE;
    pthread_mutex_unlock(&lock);
    return rc;
}

int cp_ca_trusted_public(enum cp_ca_kind kind, struct pc_sshkey *out[2], size_t *n)
{
    int rc = PC_OK;

    *n = 0;
    pthread_mutex_lock(&lock);
    if (sets[kind].cur && (rc = pc_sshkey_public_dup(sets[kind].cur, &out[*n])) == PC_OK)
        (*n)++;
    if (rc == PC_OK && sets[kind].prev &&
        (rc = pc_sshkey_public_dup(sets[kind].prev, &out[*n])) == PC_OK)
        (*n)++;
    pthread_mutex_unlock(&lock);
    if (rc != PC_OK) {
        for (size_t i = 0; i < *n; i++)
            pc_sshkey_free(out[i]);
        *n = 0;
    }
    return rc;
}

static json_object *key_json(const char *role, const struct pc_sshkey *k, const char *line)
{
    json_object *o = json_object_new_object();
    char fp[PC_SSHKEY_FP_SIZE] = "";

    pc_sshkey_fingerprint(k, fp);
    json_object_object_add(o, "role", json_object_new_string(role));
    json_object_object_add(o, "public_key", json_object_new_string(line));
    json_object_object_add(o, "fingerprint", json_object_new_string(fp));
    return o;
}

int cp_ca_status(enum cp_ca_kind kind, json_object **out)
{
    const struct ca_set *s = &sets[kind];
    json_object *o = json_object_new_object(), *keys = json_object_new_array();

    pthread_mutex_lock(&lock);
    json_object_object_add(o, "ca", json_object_new_string(s->name));
    json_object_object_add(o, "phase", json_object_new_string(s->prev ? "overlap" : "stable"));
    if (s->cur)
        json_object_array_add(keys, key_json("current", s->cur, s->cur_line));
    if (s->prev)
        json_object_array_add(keys, key_json("previous", s->prev, s->prev_line));
    json_object_object_add(o, "keys", keys);
    json_object_object_add(o, "since", json_object_new_int64(s->since));
    if (s->prev)
        json_object_object_add(o, "overlap_end", json_object_new_int64(s->overlap_end));
    pthread_mutex_unlock(&lock);
    *out = o;
    return PC_OK;
}

static int audit(cp_conn *db, const struct cp_who *who, const char *action, const char *reason)
{
    struct cp_audit_row row = { .actor = who->actor,
                                .action = action,
                                .result = "ok",
                                .reason = reason,
                                .source = who->source };
    return cp_audit_add(db, &row);
}

static int record_rotation(const struct cp_who *who, struct ca_set *s, const char *old_bare,
                           const char *new_bare, int64_t now, int64_t overlap, const char *reason)
{
    cp_conn *db = cp_db();
    cp_stmt *st;
    int rc;

    if (!db || cp_tx_begin(db) != PC_OK)
        return PC_ERR_STORE;
    /* Under the write lock: another instance on the same database may have begun a rotation
     * of this CA an instant ago, before its notice reached this one (s->prev still NULL). */
    if (!(st = cp_prepare(db, "SELECT COUNT(*) FROM ca_rotations WHERE kind = ? AND"
                              " finished_at = 0"))) {
        rc = PC_ERR_STORE;
        goto out;
    }
    cp_bind_text(st, 1, s->name);
    rc = cp_step(st) == CP_ROW ? (cp_col_int64(st, 0) > 0 ? PC_ERR_EXISTS : PC_OK) : PC_ERR_STORE;
    cp_finalize(st);
    if (rc != PC_OK)
        goto out;
    if (!(st = cp_prepare(db, "INSERT INTO ca_rotations(kind, old_key, new_key, started_at,"
                              " overlap_end) VALUES (?,?,?,?,?)"))) {
        rc = PC_ERR_STORE;
        goto out;
    }
    cp_bind_text(st, 1, s->name);
    cp_bind_text(st, 2, old_bare);
    cp_bind_text(st, 3, new_bare);
    cp_bind_int64(st, 4, now);
    cp_bind_int64(st, 5, now + overlap);
    /* PostgreSQL: the next key goes to the database with the row, and every instance reloads */
    if ((rc = cp_exec_stmt(st)) == PC_OK && (rc = cp_ca_bump_krl(db)) == PC_OK &&
        (rc = audit(db, who, "ca.rotate", reason)) == PC_OK &&
        (rc = cp_secret_put_file(db, ca_dir, s->next_file, s->next_file)) == PC_OK &&
        (rc = cp_notify_ca(db)) == PC_OK)
        rc = cp_tx_commit(db);
out:
    if (rc != PC_OK)
        cp_tx_rollback(db);
    return rc;
}

/* Under admin_lock: a finish whose rename failed is completed before anything else. */
static int settle_rename(struct ca_set *s)
{
    if (!s->rename_pending)
        return PC_OK;
    if (rename_next(s) != PC_OK)
        return PC_ERR_IO;
    s->rename_pending = 0;
    return PC_OK;
}

int cp_ca_rotate(const struct cp_who *who, enum cp_ca_kind kind, int64_t overlap, json_object **out)
{
    struct ca_set *s = &sets[kind];
    struct pc_sshkey *nk = NULL;
    char path[PATH_MAX], *old_bare = NULL, *new_bare = NULL, *new_line = NULL, reason[256];
    char ofp[PC_SSHKEY_FP_SIZE] = "", nfp[PC_SSHKEY_FP_SIZE] = "";
    int64_t now = pc_now();
    int rc, busy, written = 0;

    if (overlap < 0 || overlap > CP_CA_OVERLAP_MAX)
        return PC_ERR_INVAL;
    pthread_mutex_lock(&admin_lock);
    pthread_mutex_lock(&lock);
    busy = s->prev != NULL;
    pthread_mutex_unlock(&lock);
    if (busy) {
        rc = PC_ERR_EXISTS;
        goto out;
    }
    /* s->cur is only replaced under admin_lock, which this thread holds */
    if ((rc = settle_rename(s)) != PC_OK || (rc = path_of(s->next_file, path, sizeof path)) ||
        (rc = pc_sshkey_generate(s->cur->type, &nk)) != PC_OK ||
        (rc = pc_sshkey_save_private(nk, path)) != PC_OK)
        goto out;
    written = 1;
    if (!(old_bare = bare_line(s->cur)) || !(new_bare = bare_line(nk)) ||
        pc_sshkey_to_line(nk, s->comment, &new_line) != PC_OK) {
        rc = PC_ERR_NOMEM;
        goto out;
    }
    pc_sshkey_fingerprint(s->cur, ofp);
    pc_sshkey_fingerprint(nk, nfp);
    snprintf(reason, sizeof reason, "%s old=%s new=%s overlap=%lld", s->name, ofp, nfp,
             (long long)overlap);
    if ((rc = record_rotation(who, s, old_bare, new_bare, now, overlap, reason)) != PC_OK)
        goto out;
    pthread_mutex_lock(&lock);
    s->prev = s->cur;
    s->prev_line = s->cur_line;
    s->cur = nk;
    s->cur_line = new_line;
    s->since = now;
    s->overlap_end = now + overlap;
    pthread_mutex_unlock(&lock);
    nk = NULL;
    new_line = NULL;
    written = 0;
    pc_log(PC_LOG_INFO, "event=ca_rotate %s", reason);
out:
    if (written)
        unlink(path);
    pthread_mutex_unlock(&admin_lock);
    pc_sshkey_free(nk);
    free(old_bare);
    free(new_bare);
    free(new_line);
    return rc == PC_OK ? cp_ca_status(kind, out) : rc;
}

int cp_ca_finish(const struct cp_who *who, enum cp_ca_kind kind, int now, json_object **out)
{
    struct ca_set *s = &sets[kind];
    cp_conn *db = cp_db();
    cp_stmt *st;
    struct pc_sshkey *old = NULL;
    char reason[256], ofp[PC_SSHKEY_FP_SIZE] = "", nfp[PC_SSHKEY_FP_SIZE] = "";
    int64_t t = pc_now(), overlap_end;
    int rc;

    pthread_mutex_lock(&admin_lock);
    pthread_mutex_lock(&lock);
    old = s->prev;
    overlap_end = s->overlap_end;
    pthread_mutex_unlock(&lock);
    if (!old) {
        rc = PC_ERR_NOTFOUND;
        goto out;
    }
    if (!now && t < overlap_end) {
        rc = PC_ERR_STATE;
        goto out;
    }
    pc_sshkey_fingerprint(old, ofp);
    pc_sshkey_fingerprint(s->cur, nfp);
    snprintf(reason, sizeof reason, "%s removed=%s current=%s%s", s->name, ofp, nfp,
             t < overlap_end ? " before_overlap_end" : "");
    if (!db || cp_tx_begin(db) != PC_OK) {
        rc = PC_ERR_STORE;
        goto out;
    }
    if (!(st = cp_prepare(db, "UPDATE ca_rotations SET finished_at = ? WHERE kind = ? AND"
                              " finished_at = 0"))) {
        cp_tx_rollback(db);
        rc = PC_ERR_STORE;
        goto out;
    }
    cp_bind_int64(st, 1, t);
    cp_bind_text(st, 2, s->name);
    /* PostgreSQL: the next key becomes the CA key in the database too, and every instance
     * reloads (the rename below is this instance's copy in DIR) */
    if ((rc = cp_exec_stmt(st)) != PC_OK || (rc = cp_ca_bump_krl(db)) != PC_OK ||
        (rc = audit(db, who, "ca.finish", reason)) != PC_OK ||
        (rc = cp_secret_put_file(db, ca_dir, s->next_file, s->file)) != PC_OK ||
        (rc = cp_secret_delete(db, s->next_file)) != PC_OK || (rc = cp_notify_ca(db)) != PC_OK ||
        (rc = cp_tx_commit(db)) != PC_OK) {
        cp_tx_rollback(db);
        goto out;
    }
    pthread_mutex_lock(&lock);
    s->prev = NULL;
    keep_old_line(s->prev_line);
    s->prev_line = NULL;
    s->since = t;
    s->overlap_end = 0;
    pthread_mutex_unlock(&lock);
    pc_sshkey_free(old); /* cleanses the private part */
    s->rename_pending = 1;
    if (settle_rename(s) != PC_OK)
        pc_log(PC_LOG_ERR,
               "event=ca_finish ca=%s error=\"cannot rename %s over %s: %s\" (retried at the "
               "next rotation and at start)",
               s->name, s->next_file, s->file, strerror(errno));
    pc_log(PC_LOG_INFO, "event=ca_finish %s", reason);
out:
    pthread_mutex_unlock(&admin_lock);
    return rc == PC_OK ? cp_ca_status(kind, out) : rc;
}

int cp_ca_retired_public(int host_only, struct pc_sshkey ***out, size_t *n)
{
    cp_conn *db = cp_db();
    cp_stmt *st;
    struct pc_sshkey **a = NULL;
    int rc = PC_OK, step;

    *out = NULL;
    *n = 0;
    if (!db || !(st = cp_prepare(db, "SELECT old_key FROM ca_rotations WHERE finished_at > 0"
                                     " AND (?1 = 0 OR kind = 'host') ORDER BY id")))
        return PC_ERR_STORE;
    cp_bind_int(st, 1, host_only);
    while ((step = cp_step(st)) == CP_ROW) {
        struct pc_sshkey *k = NULL, **na;
        if (pc_sshkey_parse_line(cp_col_text(st, 0), &k, NULL) != PC_OK)
            continue; /* written by us; a row that does not parse revokes nothing */
        if (!(na = realloc(a, (*n + 1) * sizeof *na))) {
            pc_sshkey_free(k);
            rc = PC_ERR_NOMEM;
            break;
        }
        a = na;
        a[(*n)++] = k;
    }
    cp_finalize(st);
    if (rc == PC_OK && step != CP_DONE)
        rc = PC_ERR_STORE;
    if (rc != PC_OK) {
        for (size_t i = 0; i < *n; i++)
            pc_sshkey_free(a[i]);
        free(a);
        *n = 0;
        return rc;
    }
    *out = a;
    return PC_OK;
}
