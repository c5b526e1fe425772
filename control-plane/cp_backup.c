/* SPDX-License-Identifier: BSD-2-Clause */
/* portcullisd --backup FILE: a consistent copy of the store while the daemon runs (see
 * cp_backup.h). */
#include "config.h"
#include "cp_backup.h"
#include "pc_err.h"
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Copies src into the new database file tmp with the online backup API: pages in steps, so a
 * writer (the running daemon) is never held up for long; a write between steps restarts the
 * copy, so the result is one consistent snapshot. */
static int copy_db(const char *src, const char *tmp, char *err, size_t errsz)
{
    sqlite3 *from = NULL, *to = NULL;
    sqlite3_backup *b = NULL;
    int rc = PC_ERR_STORE, s;

    if (sqlite3_open_v2(src, &from, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        snprintf(err, errsz, "%s: cannot open the store: %s", src,
                 from ? sqlite3_errmsg(from) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(from, 10000);
    if (sqlite3_open_v2(tmp, &to, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        snprintf(err, errsz, "%s: cannot create: %s", tmp,
                 to ? sqlite3_errmsg(to) : "out of memory");
        goto out;
    }
    if (!(b = sqlite3_backup_init(to, "main", from, "main"))) {
        snprintf(err, errsz, "%s: cannot start the backup: %s", tmp, sqlite3_errmsg(to));
        goto out;
    }
    do {
        s = sqlite3_backup_step(b, 256);
        if (s == SQLITE_BUSY || s == SQLITE_LOCKED)
            sqlite3_sleep(20);
    } while (s == SQLITE_OK || s == SQLITE_BUSY || s == SQLITE_LOCKED);
    if (sqlite3_backup_finish(b) != SQLITE_OK || s != SQLITE_DONE) {
        snprintf(err, errsz, "%s: the backup failed: %s", src, sqlite3_errstr(s));
        b = NULL;
        goto out;
    }
    b = NULL;
    /* The copy is a plain database file (journal mode DELETE): one file to keep. */
    if (sqlite3_exec(to, "PRAGMA journal_mode=DELETE;", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errsz, "%s: %s", tmp, sqlite3_errmsg(to));
        goto out;
    }
    rc = PC_OK;
out:
    if (b)
        sqlite3_backup_finish(b);
    if (to && sqlite3_close(to) != SQLITE_OK && rc == PC_OK) {
        snprintf(err, errsz, "%s: cannot close the copy", tmp);
        rc = PC_ERR_STORE;
    }
    if (from)
        sqlite3_close(from);
    return rc;
}

static int fsync_path(const char *path, int dir)
{
    int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDWR) | O_CLOEXEC), rc;

    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

int cp_backup_run(const char *data_dir, const char *file, int force, char *err, size_t errsz)
{
    char src[PATH_MAX], tmp[PATH_MAX], dircopy[PATH_MAX], *dir;
    struct stat st;
    int rc, fd;

    if (snprintf(src, sizeof src, "%s/portcullis.db", data_dir) >= (int)sizeof src ||
        snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", file) >= (int)sizeof tmp ||
        snprintf(dircopy, sizeof dircopy, "%s", file) >= (int)sizeof dircopy) {
        snprintf(err, errsz, "%.200s: path too long", file);
        return PC_ERR_INVAL;
    }
    if (stat(src, &st) != 0) {
        snprintf(err, errsz, "%s: no store to back up: %s", src, strerror(errno));
        return PC_ERR_NOTFOUND;
    }
    if (!force && lstat(file, &st) == 0) {
        snprintf(err, errsz, "%s exists; refusing to overwrite it (use --force)", file);
        return PC_ERR_STATE;
    }
    /* mkstemp makes the name 0600 and ours; SQLite then writes into the empty file. */
    if ((fd = mkstemp(tmp)) < 0) {
        snprintf(err, errsz, "%s: cannot create a temporary file next to it: %s", file,
                 strerror(errno));
        return PC_ERR_IO;
    }
    close(fd);
    if ((rc = copy_db(src, tmp, err, errsz)) != PC_OK)
        goto fail;
    if (chmod(tmp, 0600) != 0 || fsync_path(tmp, 0) != 0) {
        snprintf(err, errsz, "%s: cannot write it to disk: %s", tmp, strerror(errno));
        rc = PC_ERR_IO;
        goto fail;
    }
    if (!force && lstat(file, &st) == 0) { /* appeared meanwhile */
        snprintf(err, errsz, "%s exists; refusing to overwrite it (use --force)", file);
        rc = PC_ERR_STATE;
        goto fail;
    }
    if (rename(tmp, file) != 0) {
        snprintf(err, errsz, "%s: cannot rename %s to it: %s", file, tmp, strerror(errno));
        rc = PC_ERR_IO;
        goto fail;
    }
    dir = dirname(dircopy);
    fsync_path(dir, 1); /* best effort: the rename itself is durable on most file systems */
    return PC_OK;
fail:
    unlink(tmp);
    return rc;
}
