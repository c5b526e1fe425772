/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "pc_fs.h"
#include "pc_err.h"
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return PC_ERR_IO;
        p += w;
        len -= (size_t)w;
    }
    return PC_OK;
}

static void fsync_dir_of(const char *path)
{
    char copy[PATH_MAX];
    int fd;

    if (strlen(path) >= sizeof copy)
        return;
    memcpy(copy, path, strlen(path) + 1);
    fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int pc_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    char tmp[PATH_MAX];
    int fd, rc;

    if (snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= (int)sizeof tmp)
        return PC_ERR_INVAL;
    fd = mkstemp(tmp);
    if (fd < 0)
        return PC_ERR_IO;
    rc = fchmod(fd, mode) == 0 ? PC_OK : PC_ERR_IO;
#ifdef PC_TEST_HOOKS
    {
        /* Test hook: a crash half way through writing a file whose path contains the value
         * (what a power cut does): the target must still be the old file. */
        const char *e = getenv("PC_TEST_CRASH_WRITING");
        if (e && *e && strstr(path, e)) {
            write_all(fd, data, len / 2);
            fsync(fd);
            abort();
        }
    }
#endif
    if (rc == PC_OK)
        rc = write_all(fd, data, len);
    if (rc == PC_OK && fsync(fd) != 0)
        rc = PC_ERR_IO;
    if (close(fd) != 0 && rc == PC_OK)
        rc = PC_ERR_IO;
    if (rc == PC_OK && rename(tmp, path) != 0)
        rc = PC_ERR_IO;
    if (rc != PC_OK) {
        unlink(tmp);
        return rc;
    }
    fsync_dir_of(path);
    return PC_OK;
}

int pc_read_file(const char *path, size_t max, char **out, size_t *len)
{
    struct stat st;
    char *buf;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

    *out = NULL;
    *len = 0;
    if (fd < 0)
        return errno == ENOENT ? PC_ERR_NOTFOUND : PC_ERR_IO;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return PC_ERR_IO;
    }
    if ((size_t)st.st_size > max) {
        close(fd);
        return PC_ERR_TOOBIG;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return PC_ERR_NOMEM;
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            /* A short read is an error, never a silently truncated file. */
            close(fd);
            free(buf);
            return PC_ERR_IO;
        }
        if (r == 0)
            break; /* the file shrank while we read it: what we have is what it holds */
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return PC_OK;
}

int pc_mkdir_mode(const char *path, mode_t mode)
{
    struct stat st;

    if (mkdir(path, mode) != 0) {
        /* Something already there must be a directory: never chmod a file instead. */
        if (errno != EEXIST || stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
            return PC_ERR_IO;
    }
    return chmod(path, mode) == 0 ? PC_OK : PC_ERR_IO;
}
