/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "pc_config.h"
#include "pc_err.h"
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_KEYS 256

static int key_is_valid(const char *k)
{
    if (!*k)
        return 0;
    for (; *k; k++)
        if (!(islower((unsigned char)*k) || isdigit((unsigned char)*k) || *k == '_'))
            return 0;
    return 1;
}

static char *trim(char *s)
{
    char *end;
    while (*s == ' ' || *s == '\t')
        s++;
    end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
        *--end = '\0';
    return s;
}

/* Parses one line (already NUL-terminated, without '\n'). */
static int parse_line(char *line, char **keys, int *nkeys, pc_config_cb cb, void *ctx, char *err,
                      size_t errsz)
{
    char *t = trim(line), *eq, *key, *value;

    if (*t == '\0' || *t == '#')
        return PC_OK;
    eq = strchr(t, '=');
    if (!eq) {
        snprintf(err, errsz, "expected 'key = value'");
        return PC_ERR_PARSE;
    }
    *eq = '\0';
    key = trim(t);
    value = trim(eq + 1);
    if (!key_is_valid(key)) {
        snprintf(err, errsz, "invalid key '%.64s' (keys are lower-case letters, digits and _)",
                 key);
        return PC_ERR_PARSE;
    }
    for (int i = 0; i < *nkeys; i++) {
        if (strcmp(keys[i], key) == 0) {
            snprintf(err, errsz, "'%.64s' is set twice", key);
            return PC_ERR_PARSE;
        }
    }
    if (*nkeys >= MAX_KEYS) {
        snprintf(err, errsz, "too many settings");
        return PC_ERR_PARSE;
    }
    keys[*nkeys] = strdup(key);
    if (!keys[*nkeys])
        return PC_ERR_NOMEM;
    (*nkeys)++;
    return cb(ctx, key, value, err, errsz);
}

int pc_config_parse_buffer(const char *name, const char *buf, size_t len, pc_config_cb cb,
                           void *ctx, char *err, size_t errsz)
{
    char line[PC_CONFIG_MAX_LINE + 1];
    char msg[512] = "";
    char *keys[MAX_KEYS];
    int nkeys = 0, lineno = 0, rc = PC_OK;
    size_t pos = 0;

    if (len > PC_CONFIG_MAX_BYTES) {
        snprintf(err, errsz, "%s:0: file is larger than %d bytes", name, PC_CONFIG_MAX_BYTES);
        return PC_ERR_TOOBIG;
    }
    while (pos < len && rc == PC_OK) {
        size_t n = 0;
        lineno++;
        while (pos < len && buf[pos] != '\n') {
            if (buf[pos] == '\0') {
                snprintf(msg, sizeof msg, "NUL byte in file");
                rc = PC_ERR_PARSE;
                break;
            }
            if (n >= PC_CONFIG_MAX_LINE) {
                snprintf(msg, sizeof msg, "line longer than %d bytes", PC_CONFIG_MAX_LINE);
                rc = PC_ERR_PARSE;
                break;
            }
            line[n++] = buf[pos++];
        }
        if (rc != PC_OK)
            break;
        pos++; /* the '\n' */
        line[n] = '\0';
        msg[0] = '\0';
        rc = parse_line(line, keys, &nkeys, cb, ctx, msg, sizeof msg);
    }
    if (rc != PC_OK)
        snprintf(err, errsz, "%s:%d: %s", name, lineno, msg[0] ? msg : pc_strerror(rc));
    for (int i = 0; i < nkeys; i++)
        free(keys[i]);
    return rc;
}

int pc_config_parse_file(const char *path, pc_config_cb cb, void *ctx, char *err, size_t errsz)
{
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    int fd, rc = PC_OK;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errsz, "%s:0: cannot open: %s", path, strerror(errno));
        return PC_ERR_IO;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errsz, "%s:0: not a regular file", path);
        rc = PC_ERR_IO;
        goto out;
    }
    if (st.st_size > PC_CONFIG_MAX_BYTES) {
        snprintf(err, errsz, "%s:0: file is larger than %d bytes", path, PC_CONFIG_MAX_BYTES);
        rc = PC_ERR_TOOBIG;
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        rc = PC_ERR_NOMEM;
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            snprintf(err, errsz, "%s:0: read failed", path);
            rc = PC_ERR_IO;
            goto out;
        }
        got += (size_t)r;
    }
    rc = pc_config_parse_buffer(path, buf, got, cb, ctx, err, errsz);
out:
    free(buf);
    close(fd);
    return rc;
}

int pc_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (!s || !*s || strlen(s) > 19)
        return PC_ERR_INVAL;
    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return PC_ERR_INVAL;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (v < min || v > max)
        return PC_ERR_INVAL;
    *out = v;
    return PC_OK;
}

int pc_parse_bool(const char *s, int *out)
{
    static const char *yes[] = { "yes", "true", "on", "1" };
    static const char *no[] = { "no", "false", "off", "0" };

    if (!s)
        return PC_ERR_INVAL;
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return PC_OK;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return PC_OK;
        }
    }
    return PC_ERR_INVAL;
}

int pc_parse_duration(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char digits[20];
    size_t n;
    uint64_t v, mult = 1;

    if (!s || !*s)
        return PC_ERR_INVAL;
    n = strlen(s);
    switch (s[n - 1]) {
    case 's':
        mult = 1;
        n--;
        break;
    case 'm':
        mult = 60;
        n--;
        break;
    case 'h':
        mult = 3600;
        n--;
        break;
    case 'd':
        mult = 86400;
        n--;
        break;
    default: break;
    }
    if (n == 0 || n >= sizeof digits)
        return PC_ERR_INVAL;
    memcpy(digits, s, n);
    digits[n] = '\0';
    if (pc_parse_uint(digits, 0, UINT64_C(1) << 40, &v) != PC_OK)
        return PC_ERR_INVAL;
    v *= mult;
    if ((int64_t)v < min || (int64_t)v > max)
        return PC_ERR_INVAL;
    *out = (int64_t)v;
    return PC_OK;
}
