/* SPDX-License-Identifier: BSD-2-Clause */
/* The master key and the shared server secrets (see cp_secrets.h). */
#include "config.h"
#include "cp_secrets.h"
#include "pc_err.h"
#include "pc_fs.h"
#include "pc_log.h"
#include "pc_mem.h"
#include "pc_time.h"
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET_MAX 65536 /* a 3072-bit RSA key in PEM is about 2.5 KiB */

static const struct {
    const char *name;
    mode_t mode;
    const char *base; /* a rotation's next key: the CA key it follows */
} names[] = {
    { "tls.key", 0600, NULL },
    { "tls.crt", 0644, NULL },
    { "admin.token", 0600, NULL },
    { "ca_user.key", 0600, NULL },
    { "ca_host.key", 0600, NULL },
    { "ca_user.next.key", 0600, "ca_user.key" },
    { "ca_host.next.key", 0600, "ca_host.key" },
};
#define N_NAMES (sizeof names / sizeof names[0])

static unsigned char master[PC_SECRETBOX_KEY_BYTES];
static char master_path[PATH_MAX];

int cp_secrets_master_path(const char *dir, char *out, size_t n)
{
    char legacy[PATH_MAX];
    struct stat sb;
    int has_new, has_old;

    if ((size_t)snprintf(out, n, "%s/master.key", dir) >= n ||
        (size_t)snprintf(legacy, sizeof legacy, "%s/secrets.key", dir) >= sizeof legacy)
        return PC_ERR_INVAL;
    has_new = stat(out, &sb) == 0;
    has_old = stat(legacy, &sb) == 0;
    if (has_new && has_old)
        pc_log(PC_LOG_WARN,
               "event=master_key_both file=%s ignored=%s note=\"master.key wins; "
               "remove secrets.key once they are known to be the same\"",
               out, legacy);
    else if (has_old)
        snprintf(out, n, "%s", legacy); /* a data directory from before the rename */
    return PC_OK;
}

void cp_secrets_set_master(const unsigned char key[PC_SECRETBOX_KEY_BYTES], const char *path)
{
    memcpy(master, key, sizeof master);
    snprintf(master_path, sizeof master_path, "%s", path);
}

void cp_secrets_wipe(void)
{
    pc_wipe(master, sizeof master);
}

static void ad_of(const char *name, char *ad, size_t n)
{
    snprintf(ad, n, "secret:%s", name);
}

/* The database's plain secret (malloc'ed, *len bytes, NUL after them); PC_ERR_NOTFOUND. */
static int db_get(cp_conn *db, const char *name, unsigned char **out, size_t *len)
{
    cp_stmt *st = cp_prepare(db, "SELECT sealed FROM server_secrets WHERE name = ?");
    unsigned char *plain = NULL;
    char ad[64];
    int rc;

    *out = NULL;
    *len = 0;
    if (!st)
        return PC_ERR_STORE;
    cp_bind_text(st, 1, name);
    rc = cp_step(st);
    if (rc == CP_ROW) {
        const void *blob = cp_col_blob(st, 0);
        int n = cp_col_bytes(st, 0);
        rc = PC_ERR_CRYPTO;
        if (blob && n > PC_SECRETBOX_OVERHEAD && n <= SECRET_MAX + PC_SECRETBOX_OVERHEAD &&
            (plain = malloc((size_t)n)) != NULL) {
            ad_of(name, ad, sizeof ad);
            rc = pc_secretbox_open(master, ad, blob, (size_t)n, plain, (size_t)n, len);
        }
    } else {
        rc = rc == CP_DONE ? PC_ERR_NOTFOUND : PC_ERR_STORE;
    }
    cp_finalize(st);
    if (rc != PC_OK) {
        if (plain)
            pc_free_secret(plain, *len);
        *len = 0;
        return rc;
    }
    plain[*len] = '\0'; /* sealed bytes exceed the plain ones by the overhead */
    *out = plain;
    return PC_OK;
}

static int db_put(cp_conn *db, const char *name, const void *plain, size_t len, int replace)
{
    unsigned char *sealed;
    size_t sl = 0;
    char ad[64];
    cp_stmt *st;
    int rc;

    if (len == 0 || len > SECRET_MAX)
        return PC_ERR_INVAL;
    if (!(sealed = malloc(len + PC_SECRETBOX_OVERHEAD)))
        return PC_ERR_NOMEM;
    ad_of(name, ad, sizeof ad);
    rc = pc_secretbox_seal(master, ad, plain, len, sealed, len + PC_SECRETBOX_OVERHEAD, &sl);
    if (rc == PC_OK) {
        st = cp_prepare(db, replace ? "INSERT INTO server_secrets(name, sealed, created_at)"
                                      " VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
                                      " sealed = excluded.sealed, created_at = excluded.created_at"
                                    : "INSERT INTO server_secrets(name, sealed, created_at)"
                                      " VALUES (?, ?, ?) ON CONFLICT DO NOTHING");
        if (!st) {
            rc = PC_ERR_STORE;
        } else {
            cp_bind_text(st, 1, name);
            cp_bind_blob(st, 2, sealed, (int)sl);
            cp_bind_int64(st, 3, pc_now());
            rc = cp_exec_stmt(st);
        }
    }
    free(sealed); /* sealed bytes are not secret */
    return rc;
}

static int path_of(const char *dir, const char *name, char *out, size_t n)
{
    return (size_t)snprintf(out, n, "%s/%s", dir, name) < n ? PC_OK : PC_ERR_INVAL;
}

/* Writes plain to DIR/name unless the file already holds exactly that. */
static int file_sync(const char *dir, const char *name, mode_t mode, const unsigned char *plain,
                     size_t len, int *written)
{
    char path[PATH_MAX], *cur = NULL;
    size_t cl = 0;
    int rc;

    *written = 0;
    if ((rc = path_of(dir, name, path, sizeof path)) != PC_OK)
        return rc;
    rc = pc_read_file(path, SECRET_MAX, &cur, &cl);
    if (rc == PC_OK && cl == len && memcmp(cur, plain, len) == 0) {
        pc_free_secret(cur, cl);
        return PC_OK;
    }
    if (cur)
        pc_free_secret(cur, cl);
    if (rc != PC_OK && rc != PC_ERR_NOTFOUND)
        return rc;
    if (rc == PC_OK)
        pc_log(PC_LOG_WARN, "event=secret_replaced file=%s note=\"the database's copy wins\"",
               path);
    if ((rc = pc_write_file_atomic(path, plain, len, mode)) == PC_OK)
        *written = 1;
    return rc;
}

static int index_of(const char *name)
{
    for (size_t i = 0; i < N_NAMES; i++)
        if (strcmp(names[i].name, name) == 0)
            return (int)i;
    return -1;
}

static void wrong_key(const char *name, char *err, size_t errsz)
{
    snprintf(err, errsz,
             "%s does not open the server secret %s stored in the database: every instance "
             "needs a copy of the first instance's master key file (refusing to start rather "
             "than make new keys)",
             master_path, name);
}

int cp_secrets_pull(cp_conn *db, const char *dir, char *err, size_t errsz)
{
    unsigned char *plain;
    size_t len;
    int rc, written;

    if (!cp_sql_is_pg())
        return PC_OK;
    for (size_t i = 0; i < N_NAMES; i++) {
        rc = db_get(db, names[i].name, &plain, &len);
        if (rc == PC_ERR_NOTFOUND && names[i].base) {
            /* no rotation in progress: a local next key is left over from an earlier one */
            unsigned char *base = NULL;
            size_t bl = 0;
            char path[PATH_MAX];
            int brc = db_get(db, names[i].base, &base, &bl);
            if (base)
                pc_free_secret(base, bl);
            if (brc == PC_OK && path_of(dir, names[i].name, path, sizeof path) == PC_OK &&
                unlink(path) == 0)
                pc_log(PC_LOG_INFO, "event=secret_removed file=%s", path);
            continue;
        }
        if (rc == PC_ERR_NOTFOUND)
            continue;
        if (rc == PC_ERR_CRYPTO) {
            wrong_key(names[i].name, err, errsz);
            return rc;
        }
        if (rc != PC_OK) {
            snprintf(err, errsz, "cannot read the server secrets: %s", cp_errmsg(db));
            return rc;
        }
        rc = file_sync(dir, names[i].name, names[i].mode, plain, len, &written);
        pc_free_secret(plain, len);
        if (rc != PC_OK) {
            snprintf(err, errsz, "%s/%s: cannot write: %s", dir, names[i].name, pc_strerror(rc));
            return rc;
        }
    }
    return PC_OK;
}

int cp_secrets_push(cp_conn *db, const char *dir, int *changed, char *err, size_t errsz)
{
    char path[PATH_MAX], *file = NULL;
    unsigned char *plain = NULL;
    size_t fl = 0, len = 0;
    int rc = PC_OK, written;

    *changed = 0;
    if (!cp_sql_is_pg())
        return PC_OK;
    for (size_t i = 0; i < N_NAMES && rc == PC_OK; i++) {
        if ((rc = path_of(dir, names[i].name, path, sizeof path)) != PC_OK)
            break;
        rc = pc_read_file(path, SECRET_MAX, &file, &fl);
        if (rc == PC_ERR_NOTFOUND) {
            rc = PC_OK;
            continue;
        }
        if (rc != PC_OK) {
            snprintf(err, errsz, "%s: cannot read: %s", path, pc_strerror(rc));
            break;
        }
        rc = db_get(db, names[i].name, &plain, &len);
        if (rc == PC_ERR_NOTFOUND && names[i].base) {
            unsigned char *base = NULL;
            size_t bl = 0;
            rc = db_get(db, names[i].base, &base, &bl);
            if (base)
                pc_free_secret(base, bl);
            if (rc == PC_OK) /* the CA is already shared: not an import, a stale file */
                goto next;
        }
        if (rc == PC_ERR_NOTFOUND) {
            if ((rc = db_put(db, names[i].name, file, fl, 0)) != PC_OK ||
                (rc = db_get(db, names[i].name, &plain, &len)) != PC_OK)
                goto fail;
            pc_log(PC_LOG_INFO, "event=secret_stored name=%s", names[i].name);
        } else if (rc != PC_OK) {
            goto fail;
        }
        if ((rc = file_sync(dir, names[i].name, names[i].mode, plain, len, &written)) != PC_OK) {
            snprintf(err, errsz, "%s: cannot write: %s", path, pc_strerror(rc));
            goto next;
        }
        if (written)
            *changed = 1;
        goto next;
    fail:
        if (rc == PC_ERR_CRYPTO)
            wrong_key(names[i].name, err, errsz);
        else
            snprintf(err, errsz, "cannot store the server secret %s: %s", names[i].name,
                     cp_errmsg(db));
    next:
        if (plain)
            pc_free_secret(plain, len);
        pc_free_secret(file, fl);
        plain = NULL;
        file = NULL;
        len = fl = 0;
    }
    return rc;
}

int cp_secret_put_file(cp_conn *db, const char *dir, const char *file, const char *name)
{
    char path[PATH_MAX], *buf = NULL;
    size_t len = 0;
    int rc;

    if (!cp_sql_is_pg())
        return PC_OK;
    if (index_of(name) < 0 || (rc = path_of(dir, file, path, sizeof path)) != PC_OK)
        return PC_ERR_INVAL;
    if ((rc = pc_read_file(path, SECRET_MAX, &buf, &len)) != PC_OK)
        return rc;
    rc = db_put(db, name, buf, len, 1);
    pc_free_secret(buf, len);
    return rc;
}

int cp_secret_delete(cp_conn *db, const char *name)
{
    cp_stmt *st;

    if (!cp_sql_is_pg())
        return PC_OK;
    if (!(st = cp_prepare(db, "DELETE FROM server_secrets WHERE name = ?")))
        return PC_ERR_STORE;
    cp_bind_text(st, 1, name);
    return cp_exec_stmt(st);
}
