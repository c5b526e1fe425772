/* SPDX-License-Identifier: BSD-2-Clause */
/* configure's outside world: sshd -V/-t/-T, reloading sshd, diff -u.
 * With --root DIR, sshd must read DIR's files although every path inside them is absolute
 * (/etc/ssh/…): it runs in a private mount namespace with DIR/etc/ssh (and
 * DIR/etc/crypto-policies, if both exist) bind-mounted over the real ones. */
#include "config.h"
#include "agc.h"
#include "pc_err.h"
#include "pc_sshd_config.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define EFFECTIVE_ARGS "user=root,host=localhost,addr=127.0.0.1"

static int bind_over(const char *root, const char *dir)
{
    char src[PATH_MAX];
    struct stat a, b;

    if (snprintf(src, sizeof src, "%s%s", root, dir) >= (int)sizeof src)
        return -1;
    if (stat(src, &a) != 0 || stat(dir, &b) != 0 || !S_ISDIR(a.st_mode) || !S_ISDIR(b.st_mode))
        return strcmp(dir, "/etc/ssh") == 0 ? -1 : 0; /* /etc/ssh is required, others optional */
    return mount(src, dir, NULL, MS_BIND | MS_REC, NULL);
}

static int enter_namespace(const char *root)
{
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        return -1;
    if (bind_over(root, "/etc/ssh") != 0 || bind_over(root, "/etc/crypto-policies") != 0)
        return -1;
    return 0;
}

static void child(char *const argv[], const char *ns_root, int fd, int with_stderr)
{
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);

    if (null >= 0)
        dup2(null, 0);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(with_stderr ? fd : null, 2);
    }
    if (ns_root && ns_root[0] && enter_namespace(ns_root) != 0) {
        dprintf(2, "cannot enter a mount namespace for %s: %s\n", ns_root, strerror(errno));
        _exit(126);
    }
    if (strchr(argv[0], '/'))
        execv(argv[0], argv);
    else
        execvp(argv[0], argv);
    dprintf(2, "%s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

int agc_spawn(char *const argv[], const char *ns_root, char *out, size_t outsz, int with_stderr,
              int *status)
{
    int pfd[2] = { -1, -1 }, st = 0;
    size_t got = 0;
    pid_t pid;

    if (out && (outsz == 0 || pipe2(pfd, O_CLOEXEC) != 0))
        return PC_ERR_IO;
    fflush(stdout);
    fflush(stderr);
    if ((pid = fork()) < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return PC_ERR_IO;
    }
    if (pid == 0)
        child(argv, ns_root, pfd[1], with_stderr);
    if (out) {
        char sink[4096];
        close(pfd[1]);
        for (;;) {
            ssize_t r = got + 1 < outsz ? read(pfd[0], out + got, outsz - 1 - got)
                                        : read(pfd[0], sink, sizeof sink);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            if (got + 1 < outsz)
                got += (size_t)r;
        }
        out[got] = '\0';
        close(pfd[0]);
    }
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    return PC_OK;
}

/* The sshd to run: --sshd, else "sshd" found in PATH, else /usr/sbin/sshd. */
static void sshd_path(const struct agc_opts *o, char *buf, size_t bufsz)
{
    const char *path = getenv("PATH");
    char dir[PATH_MAX];

    if (o->sshd) {
        snprintf(buf, bufsz, "%s", o->sshd);
        return;
    }
    for (const char *s = path ? path : ""; *s;) {
        size_t l = strcspn(s, ":");
        if (l > 0 && l < sizeof dir) {
            memcpy(dir, s, l);
            dir[l] = '\0';
            if (snprintf(buf, bufsz, "%s/sshd", dir) < (int)bufsz && access(buf, X_OK) == 0)
                return;
        }
        s += l + (s[l] == ':');
    }
    snprintf(buf, bufsz, "/usr/sbin/sshd");
}

int agc_sshd_version(const struct agc_opts *o, int *major, int *minor)
{
    char bin[PATH_MAX], out[1024];
    char *argv[] = { bin, "-V", NULL };
    char *argv2[] = { "ssh", "-V", NULL };
    int st;

    *major = *minor = 0;
    sshd_path(o, bin, sizeof bin);
    if (agc_spawn(argv, NULL, out, sizeof out, 1, &st) == PC_OK &&
        pc_sshd_parse_version(out, major, minor) == PC_OK)
        return PC_OK;
    if (agc_spawn(argv2, NULL, out, sizeof out, 1, &st) == PC_OK &&
        pc_sshd_parse_version(out, major, minor) == PC_OK)
        return PC_OK;
    return PC_ERR_NOTFOUND;
}

/* The first lines of a program's output, on one line, for an error message. */
static void squeeze(char *s, size_t max)
{
    size_t n = strlen(s);

    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
        s[--n] = '\0';
    for (char *p = s; *p; p++)
        if (*p == '\n')
            *p = ';';
    if (n > max)
        s[max] = '\0';
}

int agc_sshd_test(const struct agc_opts *o, char *err, size_t errsz)
{
    char bin[PATH_MAX], out[4096];
    char *argv[] = { bin, "-t", "-f", AGC_SSHD_CONFIG, NULL };
    int st;

    if (mkdir("/run/sshd", 0755) != 0 && errno != EEXIST) {
        snprintf(err, errsz, "cannot create /run/sshd (sshd -t needs it): %s", strerror(errno));
        return PC_ERR_IO;
    }
    sshd_path(o, bin, sizeof bin);
    if (agc_spawn(argv, o->root, out, sizeof out, 1, &st) != PC_OK) {
        snprintf(err, errsz, "cannot run %s: %s", bin, strerror(errno));
        return PC_ERR_IO;
    }
    if (st != 0) {
        squeeze(out, 600);
        snprintf(err, errsz, "%s -t rejects the new configuration (exit %d): %s", bin, st, out);
        return PC_ERR_INVAL;
    }
    return PC_OK;
}

int agc_sshd_effective(const struct agc_opts *o, char *out, size_t outsz, char *err, size_t errsz)
{
    char bin[PATH_MAX];
    char *argv[] = { bin, "-T", "-C", EFFECTIVE_ARGS, "-f", AGC_SSHD_CONFIG, NULL };
    int st;

    sshd_path(o, bin, sizeof bin);
    if (agc_spawn(argv, o->root, out, outsz, 0, &st) != PC_OK || st != 0) {
        snprintf(err, errsz, "%s -T -C %s failed (exit %d)", bin, EFFECTIVE_ARGS, st);
        return PC_ERR_INVAL;
    }
    return PC_OK;
}

static int systemd_reload(char *err, size_t errsz, int *done)
{
    static const char *const units[] = { "ssh.service", "sshd.service" };
    char out[1024];
    int st;

    *done = 0;
    if (access("/run/systemd/system", F_OK) != 0)
        return PC_OK;
    for (size_t i = 0; i < 2; i++) {
        char *active[] = { "systemctl", "is-active", "--quiet", (char *)units[i], NULL };
        char *reload[] = { "systemctl", "reload", (char *)units[i], NULL };
        if (agc_spawn(active, NULL, out, sizeof out, 1, &st) != PC_OK || st != 0)
            continue;
        *done = 1;
        if (agc_spawn(reload, NULL, out, sizeof out, 1, &st) != PC_OK || st != 0) {
            squeeze(out, 300);
            snprintf(err, errsz, "systemctl reload %s failed: %s", units[i], out);
            return PC_ERR_IO;
        }
        printf("reloaded sshd (systemctl reload %s)\n", units[i]);
        return PC_OK;
    }
    return PC_OK;
}

int agc_reload(const struct agc_opts *o, char *err, size_t errsz)
{
    char buf[64], comm[64] = "", path[64];
    FILE *f;
    long pid = 0;
    int done, rc;

    if (o->root[0] || o->no_reload) {
        printf("sshd not reloaded (%s)\n", o->root[0] ? "--root" : "--no-reload");
        return PC_OK;
    }
    if ((rc = systemd_reload(err, errsz, &done)) != PC_OK || done)
        return rc;
    if ((f = fopen("/run/sshd.pid", "r"))) {
        if (fgets(buf, sizeof buf, f))
            pid = strtol(buf, NULL, 10);
        fclose(f);
    }
    snprintf(path, sizeof path, "/proc/%ld/comm", pid);
    if (pid > 1 && (f = fopen(path, "r"))) {
        if (!fgets(comm, sizeof comm, f))
            comm[0] = '\0';
        fclose(f);
    }
    if (pid > 1 && strncmp(comm, "sshd", 4) == 0) {
        if (kill((pid_t)pid, SIGHUP) != 0) {
            snprintf(err, errsz, "cannot signal sshd (pid %ld): %s", pid, strerror(errno));
            return PC_ERR_IO;
        }
        printf("reloaded sshd (SIGHUP to pid %ld)\n", pid);
        return PC_OK;
    }
    printf("sshd is not running; it reads the new configuration when it starts\n");
    return PC_OK;
}

static int write_tmp(const char *dir, const char *name, const char *data, size_t len, char *path,
                     size_t pathsz)
{
    FILE *f;
    int ok;

    if (snprintf(path, pathsz, "%s/%s", dir, name) >= (int)pathsz || !(f = fopen(path, "w")))
        return PC_ERR_IO;
    ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok ? PC_OK : PC_ERR_IO;
}

int agc_print_diff(const char *path, const char *old, size_t old_len, const char *new_,
                   size_t new_len)
{
    char dir[] = "/tmp/pc-configure-diff.XXXXXX", a[PATH_MAX], b[PATH_MAX];
    char la[PATH_MAX + 8], lb[PATH_MAX + 8];
    int st = 2, rc;

    if (!mkdtemp(dir))
        return PC_ERR_IO;
    snprintf(a, sizeof a, "/dev/null");
    snprintf(b, sizeof b, "/dev/null");
    snprintf(la, sizeof la, "%s%s", old ? "a" : "/dev/null", old ? path : "");
    snprintf(lb, sizeof lb, "%s%s", new_ ? "b" : "/dev/null", new_ ? path : "");
    rc = old ? write_tmp(dir, "a", old, old_len, a, sizeof a) : PC_OK;
    if (rc == PC_OK && new_)
        rc = write_tmp(dir, "b", new_, new_len, b, sizeof b);
    if (rc == PC_OK) {
        char *argv[] = { "diff", "-u", "--label", la, "--label", lb, a, b, NULL };
        rc = agc_spawn(argv, NULL, NULL, 0, 1, &st);
    }
    if (old)
        unlink(a);
    if (new_)
        unlink(b);
    rmdir(dir);
    return rc == PC_OK && st <= 1 ? PC_OK : PC_ERR_IO;
}
