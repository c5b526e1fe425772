/* SPDX-License-Identifier: BSD-2-Clause */
/* Host-side CA files, host certificate renewal and the sshd reload (see ag_hostca.h). */
#include "config.h"
#include "ag_hostca.h"
#include "pc_cert.h"
#include "pc_err.h"
#include "pc_fs.h"
#include "pc_json.h"
#include "pc_mem.h"
#include "pc_sshbuf.h"
#include "pc_sshkey.h"
#include "pc_time.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CA_FILE_MAX (1024 * 1024)
#define ERRSZ 512

extern char **environ;

int ag_hostca_path(const struct ag_config *c, const char *name, char *out, size_t outsz)
{
    if (!c->ssh_dir || (size_t)snprintf(out, outsz, "%s/%s", c->ssh_dir, name) >= outsz)
        return PC_ERR_INVAL;
    return PC_OK;
}

int ag_hostca_mkdir(const struct ag_config *c, char *err, size_t errsz)
{
    struct stat st;

    if (stat(c->ssh_dir, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return PC_OK;
        snprintf(err, errsz, "ssh_dir %s exists and is not a directory", c->ssh_dir);
        return PC_ERR_IO;
    }
    if (mkdir(c->ssh_dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errsz, "cannot create ssh_dir %s: %s", c->ssh_dir, strerror(errno));
        return PC_ERR_IO;
    }
    if (chmod(c->ssh_dir, 0755) != 0) {
        snprintf(err, errsz, "cannot chmod ssh_dir %s: %s", c->ssh_dir, strerror(errno));
        return PC_ERR_IO;
    }
    return PC_OK;
}

/* Writes path with data unless it holds exactly that already. */
static int write_if_changed(const char *path, const char *data, size_t len, int *changed, char *err,
                            size_t errsz)
{
    char *old = NULL;
    size_t oldlen = 0;
    int rc;

    *changed = 0;
    if (pc_read_file(path, CA_FILE_MAX, &old, &oldlen) == PC_OK && oldlen == len &&
        memcmp(old, data, len) == 0) {
        free(old);
        return PC_OK;
    }
    free(old);
    if ((rc = pc_write_file_atomic(path, data, len, 0644)) != PC_OK) {
        snprintf(err, errsz, "cannot write %s: %s", path, strerror(errno));
        return rc;
    }
    *changed = 1;
    return PC_OK;
}

/* "TYPE BASE64" of a public key line (comment dropped), checked by parsing it. */
static int key_text(const char *line, char **out, struct pc_sshkey **key)
{
    struct pc_sshkey *k = NULL;
    int rc;

    *out = NULL;
    if ((rc = pc_sshkey_parse_line(line, &k, NULL)) != PC_OK)
        return rc;
    rc = pc_sshkey_to_line(k, NULL, out);
    if (rc == PC_OK && key)
        *key = k;
    else
        pc_sshkey_free(k);
    return rc;
}

int ag_hostca_read_host_key(const struct ag_config *c, char **line, char *err, size_t errsz)
{
    char *buf = NULL;
    size_t len = 0;
    int rc;

    *line = NULL;
    if (!c->host_key)
        return PC_ERR_NOTFOUND;
    if ((rc = pc_read_file(c->host_key, PC_SSHKEY_LINE_MAX, &buf, &len)) != PC_OK) {
        snprintf(err, errsz, "cannot read the host key %s: %s", c->host_key,
                 rc == PC_ERR_NOTFOUND ? "no such file" : pc_strerror(rc));
        return rc;
    }
    if ((rc = key_text(buf, line, NULL)) != PC_OK)
        snprintf(err, errsz, "%s does not hold one public key (TYPE BASE64 [comment]): %s",
                 c->host_key, pc_strerror(rc));
    free(buf);
    return rc;
}

/* 1 if the line holds the key whose blob is blob/len. Lines that do not parse never match. */
static int line_has_key(const char *line, size_t n, const unsigned char *blob, size_t len)
{
    char *copy = strndup(line, n), *type = NULL;
    unsigned char *b = NULL;
    size_t blen = 0;
    int same = 0;

    if (copy && pc_sshkey_decode_line(copy, &type, &b, &blen, NULL) == PC_OK)
        same = blen == len && memcmp(b, blob, len) == 0;
    free(copy);
    free(type);
    free(b);
    return same;
}

int ag_hostca_merge_user_ca(const struct ag_config *c, const char *line, int *changed, char *err,
                            size_t errsz)
{
    char path[PATH_MAX], *old = NULL, *text = NULL, *type = NULL, *out = NULL;
    unsigned char *blob = NULL;
    size_t oldlen = 0, len = 0, n;
    int rc, found = 0;

    *changed = 0;
    if (ag_hostca_path(c, AG_USER_CA_FILE, path, sizeof path) != PC_OK)
        return PC_ERR_INVAL;
    if ((rc = key_text(line, &text, NULL)) != PC_OK ||
        (rc = pc_sshkey_decode_line(text, &type, &blob, &len, NULL)) != PC_OK) {
        snprintf(err, errsz, "the user CA from the control plane is not a public key");
        goto out;
    }
    rc = pc_read_file(path, CA_FILE_MAX, &old, &oldlen);
    if (rc != PC_OK && rc != PC_ERR_NOTFOUND) {
        snprintf(err, errsz, "cannot read %s: %s", path, pc_strerror(rc));
        goto out;
    }
    for (const char *p = old; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t ln = nl ? (size_t)(nl - p) : strlen(p);
        if (line_has_key(p, ln, blob, len))
            found = 1;
        p += ln + (nl ? 1 : 0);
    }
    rc = PC_OK;
    if (found)
        goto out;
    n = oldlen + strlen(text) + 64;
    if (!(out = malloc(n))) {
        rc = PC_ERR_NOMEM;
        goto out;
    }
    n = (size_t)snprintf(out, n, "%s%s%s portcullis-user-ca\n", old ? old : "",
                         (oldlen > 0 && old[oldlen - 1] != '\n') ? "\n" : "", text);
    rc = write_if_changed(path, out, n, changed, err, errsz);
out:
    free(old);
    free(text);
    free(type);
    free(blob);
    free(out);
    return rc;
}

/* 1 if the line (n bytes) holds one of keys[]; sets *comment_ours when its comment is ours. */
static int line_in_set(const char *line, size_t n, const char *ours, struct pc_sshkey *const *keys,
                       size_t nkeys, int *comment_ours, size_t *which)
{
    char *copy = strndup(line, n), *comment = NULL;
    struct pc_sshkey *k = NULL;
    int in = 0;

    *comment_ours = 0;
    if (copy && pc_sshkey_parse_line(copy, &k, &comment) == PC_OK) {
        *comment_ours = comment && strcmp(comment, ours) == 0;
        for (size_t i = 0; i < nkeys && !in; i++)
            if (pc_sshkey_equal(k, keys[i])) {
                in = 1;
                *which = i;
            }
    }
    free(copy);
    free(comment);
    pc_sshkey_free(k);
    return in;
}

/* Parses the control plane's key lines (1..AG_CA_SET_MAX public keys). */
static int parse_set(const char *const *lines, size_t n, struct pc_sshkey **keys, char **texts)
{
    if (n < 1 || n > AG_CA_SET_MAX)
        return PC_ERR_INVAL;
    for (size_t i = 0; i < n; i++)
        if (key_text(lines[i], &texts[i], &keys[i]) != PC_OK)
            return PC_ERR_PARSE;
    return PC_OK;
}

static void free_set(struct pc_sshkey **keys, char **texts)
{
    for (size_t i = 0; i < AG_CA_SET_MAX; i++) {
        pc_sshkey_free(keys[i]);
        free(texts[i]);
    }
}

int ag_hostca_set_user_cas(const struct ag_config *c, const char *const *lines, size_t n,
                           int *changed, char *err, size_t errsz)
{
    struct pc_sshkey *keys[AG_CA_SET_MAX] = { NULL };
    char path[PATH_MAX], *texts[AG_CA_SET_MAX] = { NULL }, *old = NULL;
    int present[AG_CA_SET_MAX] = { 0 };
    struct pc_sshbuf out;
    size_t oldlen = 0;
    int rc;

    *changed = 0;
    pc_sshbuf_init(&out, CA_FILE_MAX);
    if (ag_hostca_path(c, AG_USER_CA_FILE, path, sizeof path) != PC_OK)
        return PC_ERR_INVAL;
    if ((rc = parse_set(lines, n, keys, texts)) != PC_OK) {
        snprintf(err, errsz, "the user CA set from the control plane is not 1 to %d public keys",
                 AG_CA_SET_MAX);
        goto out;
    }
    rc = pc_read_file(path, CA_FILE_MAX, &old, &oldlen);
    if (rc != PC_OK && rc != PC_ERR_NOTFOUND) {
        snprintf(err, errsz, "cannot read %s: %s", path, pc_strerror(rc));
        goto out;
    }
    rc = PC_OK;
    /* Every line is kept byte for byte except our own keys that left the set. */
    for (const char *p = old; rc == PC_OK && p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t ln = nl ? (size_t)(nl - p) : strlen(p), which = 0;
        int ours = 0, keep;
        if (line_in_set(p, ln, "portcullis-user-ca", keys, n, &ours, &which)) {
            keep = !(ours && present[which]); /* our own duplicate goes */
            present[which] = 1;
        } else {
            keep = !ours; /* a key of ours that is no longer trusted goes */
        }
        if (keep && (rc = pc_sshbuf_put_raw(&out, p, ln)) == PC_OK)
            rc = pc_sshbuf_put_raw(&out, "\n", 1);
        p += ln + (nl ? 1 : 0);
    }
    for (size_t i = 0; rc == PC_OK && i < n; i++)
        if (!present[i])
            rc = pc_sshbuf_putf(&out, "%s portcullis-user-ca\n", texts[i]);
    if (rc == PC_OK)
        rc = write_if_changed(path, (const char *)pc_sshbuf_ptr(&out), pc_sshbuf_len(&out), changed,
                              err, errsz);
    else if (!*err)
        snprintf(err, errsz, "out of memory");
out:
    free_set(keys, texts);
    free(old);
    pc_sshbuf_free(&out);
    return rc;
}

int ag_hostca_write_host_cas(const struct ag_config *c, const char *const *lines, size_t n,
                             int *changed, char *err, size_t errsz)
{
    struct pc_sshkey *keys[AG_CA_SET_MAX] = { NULL };
    char path[PATH_MAX], *texts[AG_CA_SET_MAX] = { NULL };
    struct pc_sshbuf out;
    int rc;

    *changed = 0;
    pc_sshbuf_init(&out, CA_FILE_MAX);
    if (ag_hostca_path(c, AG_HOST_CA_FILE, path, sizeof path) != PC_OK)
        return PC_ERR_INVAL;
    if ((rc = parse_set(lines, n, keys, texts)) != PC_OK) {
        snprintf(err, errsz, "the host CA from the control plane is not 1 to %d public keys",
                 AG_CA_SET_MAX);
        goto out;
    }
    for (size_t i = 0; rc == PC_OK && i < n; i++)
        rc = pc_sshbuf_putf(&out, "%s portcullis-host-ca\n", texts[i]);
    if (rc == PC_OK)
        rc = write_if_changed(path, (const char *)pc_sshbuf_ptr(&out), pc_sshbuf_len(&out), changed,
                              err, errsz);
out:
    free_set(keys, texts);
    pc_sshbuf_free(&out);
    return rc;
}

int ag_hostca_write_host_ca(const struct ag_config *c, const char *line, int *changed, char *err,
                            size_t errsz)
{
    return ag_hostca_write_host_cas(c, &line, 1, changed, err, errsz);
}

int ag_hostca_host_ca_has(const struct ag_config *c, const struct pc_sshkey *ca)
{
    char path[PATH_MAX], *buf = NULL;
    size_t len = 0;
    int found = 0;

    if (ag_hostca_path(c, AG_HOST_CA_FILE, path, sizeof path) != PC_OK ||
        pc_read_file(path, CA_FILE_MAX, &buf, &len) != PC_OK)
        return -1;
    for (const char *p = buf; !found && *p;) {
        const char *nl = strchr(p, '\n');
        size_t ln = nl ? (size_t)(nl - p) : strlen(p), which = 0;
        int ours = 0;
        found = line_in_set(p, ln, "", (struct pc_sshkey *const *)&ca, 1, &ours, &which);
        p += ln + (nl ? 1 : 0);
    }
    free(buf);
    return found;
}

int ag_hostca_write_host_cert(const struct ag_config *c, const char *line, int *changed, char *err,
                              size_t errsz)
{
    char path[PATH_MAX], *host_line = NULL, *out = NULL;
    struct pc_sshkey *host = NULL;
    struct pc_cert *cert = NULL;
    size_t n;
    int rc;

    *changed = 0;
    if (ag_hostca_path(c, AG_HOST_CERT_FILE, path, sizeof path) != PC_OK)
        return PC_ERR_INVAL;
    if ((rc = ag_hostca_read_host_key(c, &host_line, err, errsz)) != PC_OK)
        goto out;
    if ((rc = pc_sshkey_parse_line(host_line, &host, NULL)) != PC_OK)
        goto out;
    if ((rc = pc_cert_parse_line(line, &cert)) != PC_OK) {
        snprintf(err, errsz,
                 "the host certificate from the control plane does not parse or its "
                 "signature does not verify (%s)",
                 pc_strerror(rc));
        goto out;
    }
    rc = PC_ERR_INVAL;
    if (cert->type != PC_CERT_HOST || !pc_sshkey_equal(cert->subject, host)) {
        snprintf(err, errsz,
                 "the certificate from the control plane is not a host certificate "
                 "for %s",
                 c->host_key);
        goto out;
    }
    if (ag_hostca_host_ca_has(c, cert->ca) == 0) {
        snprintf(err, errsz, "the host certificate is not signed by a host CA key in %s/%s",
                 c->ssh_dir, AG_HOST_CA_FILE);
        goto out;
    }
    if (!pc_cert_valid_at(cert, pc_now())) {
        snprintf(err, errsz, "the host certificate from the control plane is not valid now");
        goto out;
    }
    n = strlen(line) + 2;
    if (!(out = malloc(n))) {
        rc = PC_ERR_NOMEM;
        goto out;
    }
    n = (size_t)snprintf(out, n, "%s\n", line);
    rc = write_if_changed(path, out, n, changed, err, errsz);
out:
    free(host_line);
    free(out);
    pc_sshkey_free(host);
    pc_cert_free(cert);
    return rc;
}

int ag_hostca_cert_window(const struct ag_config *c, uint64_t *valid_after, uint64_t *valid_before)
{
    char path[PATH_MAX], *buf = NULL;
    struct pc_cert *cert = NULL;
    size_t len = 0;
    int rc;

    if (ag_hostca_path(c, AG_HOST_CERT_FILE, path, sizeof path) != PC_OK)
        return PC_ERR_INVAL;
    if ((rc = pc_read_file(path, CA_FILE_MAX, &buf, &len)) != PC_OK)
        return rc;
    if ((rc = pc_cert_parse_line(buf, &cert)) == PC_OK) {
        *valid_after = cert->valid_after;
        *valid_before = cert->valid_before;
    }
    pc_cert_free(cert);
    free(buf);
    return rc;
}

int ag_hostca_cert_ca_trusted(const struct ag_config *c)
{
    char path[PATH_MAX], *buf = NULL;
    struct pc_cert *cert = NULL;
    size_t len = 0;
    int r = -1;

    if (ag_hostca_path(c, AG_HOST_CERT_FILE, path, sizeof path) == PC_OK &&
        pc_read_file(path, CA_FILE_MAX, &buf, &len) == PC_OK &&
        pc_cert_parse_line(buf, &cert) == PC_OK)
        r = ag_hostca_host_ca_has(c, cert->ca);
    pc_cert_free(cert);
    free(buf);
    return r;
}

int ag_hostca_renew(const struct ag_config *c, pc_http *h, int *changed, int64_t *serial, char *err,
                    size_t errsz)
{
    char *host_line = NULL, herr[ERRSZ] = "";
    json_object *body = NULL, *reply = NULL;
    const char *cert = NULL;
    struct pc_jerr je = { 0 };
    long status = 0;
    int rc;

    *changed = 0;
    *serial = 0;
    if ((rc = ag_hostca_read_host_key(c, &host_line, err, errsz)) != PC_OK) {
        if (rc == PC_ERR_NOTFOUND)
            snprintf(err, errsz, "host_key is none: this host has no host certificate");
        return rc;
    }
    body = json_object_new_object();
    json_object_object_add(body, "host_key", json_object_new_string(host_line));
    rc = pc_http_call(h, "POST", "/v1/hosts/self/renew", body, 0, &status, &reply, herr,
                      sizeof herr);
    if (rc != PC_OK) {
        snprintf(err, errsz, "renewal failed: %s", herr);
        goto out;
    }
    if (status != 200) {
        const char *code = NULL;
        if (reply)
            pc_json_get_str(reply, "error", 0, 32, &code, &je);
        snprintf(err, errsz, "renewal failed: the control plane answered HTTP %ld (%s)", status,
                 code ? code : "no error code");
        rc = status == 401 || status == 403 ? PC_ERR_AUTH : PC_ERR_STATE;
        goto out;
    }
    if (!reply || pc_json_get_str(reply, "host_certificate", 1, PC_SSHKEY_LINE_MAX, &cert, &je) ||
        pc_json_get_int(reply, "serial", 0, 1, INT64_MAX, serial, &je) != PC_OK) {
        snprintf(err, errsz, "renewal failed: the reply lacks a host_certificate");
        rc = PC_ERR_PARSE;
        goto out;
    }
    rc = ag_hostca_write_host_cert(c, cert, changed, err, errsz);
out:
    json_object_put(body);
    json_object_put(reply);
    free(host_line);
    return rc;
}

int ag_hostca_reload(const struct ag_config *c, char *err, size_t errsz)
{
    char *argv[] = { "sh", "-c", c->reload_command, NULL };
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, dfl;
    int64_t deadline;
    pid_t pid;
    int st = 0, e;

    if (!c->reload_command)
        return PC_OK;
    /* The daemon blocks SIGTERM/SIGINT and ignores SIGPIPE: the command gets neither. */
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);
    sigaddset(&dfl, SIGTERM);
    sigaddset(&dfl, SIGINT);
    posix_spawnattr_init(&at);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dfl);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    e = posix_spawn(&pid, "/bin/sh", &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (e != 0) {
        snprintf(err, errsz, "cannot run /bin/sh for reload_command: %s", strerror(e));
        return PC_ERR_IO;
    }
    deadline = pc_now_ms() + AG_RELOAD_TIMEOUT_MS;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        struct timespec ts = { 0, 50 * 1000 * 1000 };
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR) {
            snprintf(err, errsz, "waitpid: %s", strerror(errno));
            return PC_ERR_IO;
        }
        if (pc_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            snprintf(err, errsz, "reload_command did not finish within %d s (killed)",
                     AG_RELOAD_TIMEOUT_MS / 1000);
            return PC_ERR_TIMEOUT;
        }
        nanosleep(&ts, NULL);
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return PC_OK;
    snprintf(err, errsz, "reload_command %s %d", WIFEXITED(st) ? "exited" : "was killed by signal",
             WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    return PC_ERR_STATE;
}
