/* SPDX-License-Identifier: BSD-2-Clause */
/* Test helpers: see ssh_tool.h. */
#include "config.h"
#include "ssh_tool.h"
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int st_mkdtemp(const char *tag, char *dir)
{
    snprintf(dir, ST_PATH_MAX, "/tmp/pc-%s.XXXXXX", tag);
    return mkdtemp(dir) ? 0 : -1;
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

int st_rmtree(const char *dir)
{
    if (!dir || !dir[0])
        return 0;
    return nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *st_path(char *out, const char *dir, const char *name)
{
    snprintf(out, ST_PATH_MAX, "%s/%s", dir, name);
    return out;
}

struct sink {
    char *buf;
    size_t len, cap;
};

static int sink_read(int fd, struct sink *s)
{
    char tmp[4096];
    ssize_t n = read(fd, tmp, sizeof tmp);
    if (n < 0 && errno == EINTR)
        return 1;
    if (n <= 0)
        return 0;
    if (s->len + (size_t)n + 1 > s->cap) {
        size_t ncap = (s->cap ? s->cap * 2 : 8192) + (size_t)n;
        char *p = realloc(s->buf, ncap);
        if (!p)
            return 0;
        s->buf = p;
        s->cap = ncap;
    }
    memcpy(s->buf + s->len, tmp, (size_t)n);
    s->len += (size_t)n;
    s->buf[s->len] = 0;
    return 1;
}

static char *sink_take(struct sink *s)
{
    return s->buf ? s->buf : strdup("");
}

int st_run(const char *const argv[], const char *stdin_data, struct st_result *r)
{
    int in[2], out[2], err[2], wst = 0;
    struct sink so = { 0 }, se = { 0 };
    pid_t pid;

    memset(r, 0, sizeof *r);
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
        return -1;
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        setenv("TZ", "UTC", 1);
        setenv("LC_ALL", "C", 1);
        execvp(argv[0], (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    if (stdin_data) {
        signal(SIGPIPE, SIG_IGN);
        if (write(in[1], stdin_data, strlen(stdin_data)) < 0) {
            /* the child may not read stdin; its exit status tells */
        }
    }
    close(in[1]);
    for (int open_fds = 2; open_fds > 0;) {
        struct pollfd p[2] = { { .fd = out[0], .events = POLLIN },
                               { .fd = err[0], .events = POLLIN } };
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (p[i].fd >= 0 && (p[i].revents & (POLLIN | POLLHUP | POLLERR)) &&
                !sink_read(p[i].fd, i == 0 ? &so : &se)) {
                close(i == 0 ? out[0] : err[0]);
                if (i == 0)
                    out[0] = -1;
                else
                    err[0] = -1;
                open_fds--;
            }
        }
    }
    while (waitpid(pid, &wst, 0) < 0 && errno == EINTR)
        ;
    r->status = WIFEXITED(wst) ? WEXITSTATUS(wst) : 128 + WTERMSIG(wst);
    r->out = sink_take(&so);
    r->err = sink_take(&se);
    return 0;
}

void st_result_free(struct st_result *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

int st_keygen(const char *path, const char *type, int bits)
{
    char b[16];
    const char *argv[16];
    int n = 0, rc;
    struct st_result r;

    snprintf(b, sizeof b, "%d", bits);
    argv[n++] = "ssh-keygen";
    argv[n++] = "-q";
    argv[n++] = "-t";
    argv[n++] = type;
    if (bits > 0) {
        argv[n++] = "-b";
        argv[n++] = b;
    }
    argv[n++] = "-N";
    argv[n++] = "";
    argv[n++] = "-C";
    argv[n++] = "test@portcullis";
    argv[n++] = "-f";
    argv[n++] = path;
    argv[n] = NULL;
    if (st_run(argv, NULL, &r) != 0)
        return -1;
    rc = r.status == 0 ? 0 : -1;
    if (rc)
        fprintf(stderr, "ssh-keygen failed: %s\n", r.err);
    st_result_free(&r);
    return rc;
}

char *st_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0, got;

    if (!f)
        return NULL;
    do {
        if (n + 4096 + 1 > cap) {
            char *p = realloc(buf, cap = n + 8192);
            if (!p) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = p;
        }
        got = fread(buf + n, 1, 4096, f);
        n += got;
    } while (got > 0);
    fclose(f);
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

int st_write(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    int rc;
    if (!f)
        return -1;
    rc = fwrite(data, 1, len, f) == len ? 0 : -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

int st_contains(const char *haystack, const char *needle)
{
    return haystack && needle && strstr(haystack, needle) != NULL;
}
