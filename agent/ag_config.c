/* SPDX-License-Identifier: BSD-2-Clause */
/* agent.conf parsing and validation (see ag_config.h, portcullis-agent.conf(5)). */
#include "config.h"
#include "ag_config.h"
#include "pc_agent_proto.h"
#include "pc_config.h"
#include "pc_err.h"
#include "pc_fs.h"
#include "pc_json.h"
#include "pc_valid.h"
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CONFIG_FILE_MAX (1024 * 1024)

static int set_str(char **slot, const char *value)
{
    char *copy = strdup(value);
    if (!copy)
        return PC_ERR_NOMEM;
    free(*slot);
    *slot = copy;
    return PC_OK;
}

/* Stores v only if the check before it passed. */
static int then_set(int check_rc, char **slot, const char *v)
{
    return check_rc != PC_OK ? check_rc : set_str(slot, v);
}

int ag_config_init(struct ag_config *c)
{
    memset(c, 0, sizeof *c);
    c->timeout_ms = 10000;
    c->connect_timeout_ms = 3000;
    c->max_connections = 16;
    c->max_clients = 128;
    c->log_level = PC_LOG_INFO;
    c->krl_interval_ms = 60000;
    c->principals_stale_ms = 300000;
    c->offline_krl_max_age_ms = 86400000L; /* issue 13 */
    if (set_str(&c->host_key, AG_DEFAULT_HOST_KEY) != PC_OK ||
        set_str(&c->ssh_dir, AG_DEFAULT_SSH_DIR) != PC_OK ||
        set_str(&c->reload_command, AG_DEFAULT_RELOAD) != PC_OK ||
        set_str(&c->host_token_file, AG_DEFAULT_TOKEN_FILE) != PC_OK ||
        set_str(&c->socket, PC_AGENT_SOCKET_DEFAULT) != PC_OK ||
        set_str(&c->path, AG_DEFAULT_CONFIG) != PC_OK) {
        ag_config_free(c);
        return PC_ERR_NOMEM;
    }
    return PC_OK;
}

void ag_config_free(struct ag_config *c)
{
    free(c->path);
    free(c->url);
    for (unsigned i = 0; i < c->n_urls; i++)
        free(c->urls[i]);
    free(c->pin);
    free(c->cafile);
    free(c->host_token_file);
    free(c->socket);
    free(c->socket_group);
    free(c->host_key);
    for (unsigned i = 0; i < c->n_host_principals; i++)
        free(c->host_principals[i]);
    free(c->ssh_dir);
    free(c->reload_command);
    free(c->principals_user);
    memset(c, 0, sizeof *c);
}

int ag_config_check_url(const char *url, char *err, size_t errsz)
{
    size_t n = strlen(url);

    if (strncasecmp(url, "https://", 8) != 0 || n <= 8 || n > 1000) {
        snprintf(err, errsz, "the url must be https://HOST[:PORT]");
        return PC_ERR_INVAL;
    }
    for (const char *p = url; *p; p++) {
        if (*p <= 0x20 || *p >= 0x7f || *p == '?' || *p == '#' || *p == '@') {
            snprintf(err, errsz, "the url must be https://HOST[:PORT] (no spaces, query, or user)");
            return PC_ERR_INVAL;
        }
    }
    return PC_OK;
}

/* url = URL[,| ]URL…: up to AG_MAX_URLS instances of one control plane (they share one TLS
 * key, so the one pin or cafile holds for all). Each is checked like a single url; a URL listed
 * twice is an error. The value replaces any earlier url line. */
static int set_urls(struct ag_config *c, const char *v, char *err, size_t errsz)
{
    char *urls[AG_MAX_URLS] = { 0 }, *copy = strdup(v), *save = NULL, *tok;
    unsigned n = 0;
    int rc = PC_OK;

    if (!copy)
        return PC_ERR_NOMEM;
    for (tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
        char e[160] = "";
        if (n == AG_MAX_URLS) {
            snprintf(err, errsz, "url: more than %d URLs (at most %d instances)", AG_MAX_URLS,
                     AG_MAX_URLS);
            rc = PC_ERR_INVAL;
            goto out;
        }
        if (ag_config_check_url(tok, e, sizeof e) != PC_OK) {
            snprintf(err, errsz, "url: URL %u of the list: %s", n + 1, e);
            rc = PC_ERR_INVAL;
            goto out;
        }
        for (unsigned i = 0; i < n; i++) {
            if (strcasecmp(urls[i], tok) == 0) {
                snprintf(err, errsz, "url: URL %u is listed twice (%.200s)", n + 1, tok);
                rc = PC_ERR_INVAL;
                goto out;
            }
        }
        if (!(urls[n++] = strdup(tok))) {
            rc = PC_ERR_NOMEM;
            goto out;
        }
    }
    if (n == 0) {
        snprintf(err, errsz, "url: no URL given");
        rc = PC_ERR_INVAL;
        goto out;
    }
    if ((rc = set_str(&c->url, urls[0])) != PC_OK)
        goto out;
    for (unsigned i = 0; i < c->n_urls; i++)
        free(c->urls[i]);
    memcpy(c->urls, urls, sizeof urls);
    c->n_urls = n;
    n = 0; /* moved */
out:
    for (unsigned i = 0; i < n; i++)
        free(urls[i]);
    free(copy);
    return rc;
}

int ag_config_check_pin(const char *pin, char *err, size_t errsz)
{
    size_t n = strlen(pin);

    if (strncmp(pin, "sha256//", 8) != 0 || n < 9 || n > 1024)
        goto bad;
    for (const char *p = pin + 8; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '+' || *p == '/' || *p == '=' || *p == ';'))
            goto bad;
    return PC_OK;
bad:
    snprintf(err, errsz,
             "the pin must look like sha256//BASE64 (as printed by portcullisd --print-pin)");
    return PC_ERR_INVAL;
}

static int check_abs_path(const char *key, const char *v, size_t max, char *err, size_t errsz)
{
    if (v[0] != '/' || strlen(v) >= max) {
        snprintf(err, errsz, "%s must be an absolute path shorter than %zu bytes", key, max);
        return PC_ERR_INVAL;
    }
    return PC_OK;
}

static int set_group(struct ag_config *c, const char *v, char *err, size_t errsz)
{
    struct group gr, *res = NULL;
    char buf[8192];
    int e = getgrnam_r(v, &gr, buf, sizeof buf, &res);

    if (e != 0 || !res) {
        snprintf(err, errsz, "socket_group: no such group '%.64s'", v);
        return PC_ERR_INVAL;
    }
    c->socket_gid = res->gr_gid;
    return set_str(&c->socket_group, v);
}

static int set_duration_ms(long *slot, const char *key, const char *v, int64_t max_s, char *err,
                           size_t errsz)
{
    int64_t s;
    if (pc_parse_duration(v, 1, max_s, &s) != PC_OK) {
        snprintf(err, errsz,
                 "%s: '%.64s' is not a duration between 1s and %llds (e.g. 10, 10s, 1m)", key, v,
                 (long long)max_s);
        return PC_ERR_INVAL;
    }
    *slot = (long)(s * 1000);
    return PC_OK;
}

static int set_count(unsigned *slot, const char *key, const char *v, uint64_t max, char *err,
                     size_t errsz)
{
    uint64_t n;
    if (pc_parse_uint(v, 1, max, &n) != PC_OK) {
        snprintf(err, errsz, "%s: '%.64s' is not a whole number between 1 and %llu", key, v,
                 (unsigned long long)max);
        return PC_ERR_INVAL;
    }
    *slot = (unsigned)n;
    return PC_OK;
}

static int set_log_level(struct ag_config *c, const char *v, char *err, size_t errsz)
{
    static const char *const names[] = { "debug", "info", "warning", "error" };
    for (int i = 0; i < 4; i++) {
        if (strcmp(v, names[i]) == 0) {
            c->log_level = (enum pc_log_level)i;
            return PC_OK;
        }
    }
    snprintf(err, errsz, "log_level: '%.64s' is not one of debug, info, warning, error", v);
    return PC_ERR_INVAL;
}

static int set_host_principals(struct ag_config *c, const char *v, char *err, size_t errsz)
{
    const char *p = v;

    while (*p) {
        const char *start, *end, *comma = strchr(p, ',');
        size_t n;

        end = comma ? comma : p + strlen(p);
        for (start = p; start < end && *start == ' '; start++)
            ;
        while (end > start && end[-1] == ' ')
            end--;
        n = (size_t)(end - start);
        if (!pc_valid_principal(start, n)) {
            snprintf(err, errsz,
                     "host_principals: '%.*s' is not a host name or address "
                     "(letters, digits, . _ @ + $ : -; comma-separated, no empty entries)",
                     /* cppcheck-suppress knownConditionTrueFalse ; n can exceed 64 */
                     (int)(n > 64 ? 64 : n), start);
            return PC_ERR_INVAL;
        }
        for (unsigned i = 0; i < c->n_host_principals; i++) {
            if (strlen(c->host_principals[i]) == n &&
                memcmp(c->host_principals[i], start, n) == 0) {
                snprintf(err, errsz, "host_principals: '%.*s' is listed twice", (int)n, start);
                return PC_ERR_INVAL;
            }
        }
        if (c->n_host_principals >= AG_MAX_HOST_PRINCIPALS) {
            snprintf(err, errsz, "host_principals: more than %d names", AG_MAX_HOST_PRINCIPALS);
            return PC_ERR_INVAL;
        }
        if (!(c->host_principals[c->n_host_principals] = strndup(start, n)))
            return PC_ERR_NOMEM;
        c->n_host_principals++;
        if (!comma)
            break;
        p = comma + 1;
        if (!*p) {
            snprintf(err, errsz, "host_principals: a trailing comma (empty entry)");
            return PC_ERR_INVAL;
        }
    }
    return PC_OK;
}

static int set_principals_user(struct ag_config *c, const char *v, char *err, size_t errsz)
{
    struct passwd pw, *res = NULL;
    char buf[8192];
    uint64_t n;

    if (pc_parse_uint(v, 0, 0x7fffffff, &n) == PC_OK) {
        c->principals_uid = (uid_t)n;
    } else if (getpwnam_r(v, &pw, buf, sizeof buf, &res) == 0 && res) {
        c->principals_uid = res->pw_uid;
    } else {
        snprintf(err, errsz, "principals_user: no such user '%.64s' (a user name or a numeric uid)",
                 v);
        return PC_ERR_INVAL;
    }
    return set_str(&c->principals_user, v);
}

static int set_optional_duration_ms(long *slot, const char *key, const char *v, int64_t max_s,
                                    char *err, size_t errsz)
{
    int64_t s;
    if (pc_parse_duration(v, 0, max_s, &s) != PC_OK) {
        snprintf(err, errsz, "%s: '%.64s' is not a duration between 0 and %llds (e.g. 0, 30s, 5m)",
                 key, v, (long long)max_s);
        return PC_ERR_INVAL;
    }
    *slot = (long)(s * 1000);
    return PC_OK;
}

/* The settings of the certificate authority part; PC_ERR_NOTFOUND for a key that is not one. */
static int on_ca_setting(struct ag_config *c, const char *key, const char *v, char *err,
                         size_t errsz)
{
    if (strcmp(key, "host_key") == 0) {
        if (strcmp(v, "none") == 0) {
            free(c->host_key);
            c->host_key = NULL;
            return PC_OK;
        }
        return then_set(check_abs_path(key, v, 4096, err, errsz), &c->host_key, v);
    }
    if (strcmp(key, "host_principals") == 0)
        return set_host_principals(c, v, err, errsz);
    if (strcmp(key, "ssh_dir") == 0)
        return then_set(check_abs_path(key, v, 3800, err, errsz), &c->ssh_dir, v);
    if (strcmp(key, "krl_interval") == 0)
        return set_duration_ms(&c->krl_interval_ms, key, v, 86400, err, errsz);
    if (strcmp(key, "principals_user") == 0)
        return set_principals_user(c, v, err, errsz);
    if (strcmp(key, "principals_stale") == 0)
        return set_optional_duration_ms(&c->principals_stale_ms, key, v, 86400, err, errsz);
    /* issue 13: 0 refuses every offline certificate decision */
    if (strcmp(key, "offline_krl_max_age") == 0)
        return set_optional_duration_ms(&c->offline_krl_max_age_ms, key, v, 7 * 86400, err, errsz);
    return PC_ERR_NOTFOUND;
}

static int on_setting(void *ctx, const char *key, const char *v, char *err, size_t errsz)
{
    struct ag_config *c = ctx;
    struct sockaddr_un sun;
    int rc;

    if (strcmp(key, "reload_command") == 0) {
        /* Empty: never reload sshd. Run with /bin/sh -c: the file is root's. */
        free(c->reload_command);
        c->reload_command = NULL;
        if (*v == '\0')
            return PC_OK;
        if (!pc_text_is_clean(v, 0) || strlen(v) > 1024) {
            snprintf(err, errsz, "reload_command: control characters or longer than 1024 bytes");
            return PC_ERR_INVAL;
        }
        return set_str(&c->reload_command, v);
    }
    if (*v == '\0') {
        snprintf(err, errsz, "%.64s: empty value", key);
        return PC_ERR_INVAL;
    }
    if (strcmp(key, "url") == 0)
        return set_urls(c, v, err, errsz);
    if (strcmp(key, "pin") == 0 || strcmp(key, "cafile") == 0) {
        int is_pin = key[0] == 'p';
        if (is_pin ? c->cafile != NULL : c->pin != NULL) {
            snprintf(err, errsz,
                     "'%s' conflicts with '%s' set earlier: set exactly one of pin and cafile", key,
                     is_pin ? "cafile" : "pin");
            return PC_ERR_INVAL;
        }
        if (is_pin)
            return then_set(ag_config_check_pin(v, err, errsz), &c->pin, v);
        return then_set(check_abs_path(key, v, 4096, err, errsz), &c->cafile, v);
    }
    if (strcmp(key, "host_token_file") == 0)
        return then_set(check_abs_path(key, v, 4096, err, errsz), &c->host_token_file, v);
    if (strcmp(key, "socket") == 0)
        return then_set(check_abs_path(key, v, sizeof sun.sun_path, err, errsz), &c->socket, v);
    if (strcmp(key, "socket_group") == 0)
        return set_group(c, v, err, errsz);
    if (strcmp(key, "timeout") == 0)
        return set_duration_ms(&c->timeout_ms, key, v, 300, err, errsz);
    if (strcmp(key, "connect_timeout") == 0)
        return set_duration_ms(&c->connect_timeout_ms, key, v, 60, err, errsz);
    if (strcmp(key, "max_connections") == 0)
        return set_count(&c->max_connections, key, v, 256, err, errsz);
    if (strcmp(key, "max_push_waits") == 0)
        return set_count(&c->max_push_waits, key, v, 256, err, errsz);
    if (strcmp(key, "max_clients") == 0)
        return set_count(&c->max_clients, key, v, 4096, err, errsz);
    if (strcmp(key, "log_level") == 0)
        return set_log_level(c, v, err, errsz);
    if ((rc = on_ca_setting(c, key, v, err, errsz)) != PC_ERR_NOTFOUND)
        return rc;
    snprintf(err, errsz, "unknown key '%.64s' (see portcullis-agent.conf(5))", key);
    return PC_ERR_INVAL;
}

/* A run of at least this many hex digits in a message is taken for a token and masked. */
#define SCRUB_HEX_RUN 32

void ag_config_scrub(char *s)
{
    size_t i = 0, o = 0;

    while (s[i]) {
        size_t run = 0;
        while (isxdigit((unsigned char)s[i + run]))
            run++;
        if (run >= SCRUB_HEX_RUN) {
            static const char mask[] = "[redacted]";
            /* the mask is shorter than the run: writing it never overtakes the reading */
            memcpy(s + o, mask, sizeof mask - 1);
            o += sizeof mask - 1;
            i += run;
            continue;
        }
        for (size_t k = 0; k < (run ? run : 1); k++, i++) {
            unsigned char ch = (unsigned char)s[i];
            s[o++] = (ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\') ? '?' : (char)ch;
        }
    }
    s[o] = '\0';
}

/* An error that involves two keys is found once the whole file is read (they may come in any
 * order); the file is parsed again with a callback that refuses `key`, so that the parser names
 * its FILE:LINE like for every other error. */
struct locate {
    const char *key, *msg;
};

static int on_locate(void *ctx, const char *key, const char *v, char *err, size_t errsz)
{
    const struct locate *l = ctx;

    (void)v;
    if (strcmp(key, l->key) != 0)
        return PC_OK;
    snprintf(err, errsz, "%s", l->msg);
    return PC_ERR_INVAL;
}

/* max_push_waits: the default is half the pool (at least 1); a value above max_connections is
 * an error at its line. */
static int resolve_push_waits(struct ag_config *c, const char *path, char *err, size_t errsz)
{
    char msg[256];
    struct locate l = { .key = "max_push_waits", .msg = msg };

    if (c->max_push_waits == 0) {
        c->max_push_waits = c->max_connections > 1 ? c->max_connections / 2 : 1;
        return PC_OK;
    }
    if (c->max_push_waits <= c->max_connections)
        return PC_OK;
    snprintf(msg, sizeof msg,
             "max_push_waits: %u is more than max_connections (%u); push "
             "long-polls may hold at most the whole pool",
             c->max_push_waits, c->max_connections);
    if (pc_config_parse_file(path, on_locate, &l, err, errsz) == PC_OK)
        snprintf(err, errsz, "%s: %s", path, msg); /* the file changed since: no line to name */
    return PC_ERR_INVAL;
}

int ag_config_load(struct ag_config *c, const char *path, int missing_ok, char *err, size_t errsz)
{
    struct stat st;
    int rc;

    if ((rc = set_str(&c->path, path)) != PC_OK) {
        snprintf(err, errsz, "out of memory");
        return rc;
    }
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        /* Checked before the open: opening a FIFO would block the agent before it binds. */
        snprintf(err, errsz, "%s:0: not a regular file", path);
        return PC_ERR_IO;
    }
    if (missing_ok && stat(path, &st) != 0 && errno == ENOENT)
        return resolve_push_waits(c, path, err, errsz);
    rc = pc_config_parse_file(path, on_setting, c, err, errsz);
    if (rc == PC_OK)
        rc = resolve_push_waits(c, path, err, errsz);
    if (rc != PC_OK && errsz > 0)
        ag_config_scrub(err);
    return rc;
}

/* salvage: one setting per call, from a file that as a whole failed to load */
struct salvage {
    struct ag_config *c;
    int have_socket, have_group;
};

static int on_salvage(void *ctx, const char *key, const char *v, char *err, size_t errsz)
{
    struct salvage *sv = ctx;
    struct sockaddr_un sun;

    if (strcmp(key, "socket") == 0 && !sv->have_socket &&
        check_abs_path(key, v, sizeof sun.sun_path, err, errsz) == PC_OK &&
        set_str(&sv->c->socket, v) == PC_OK)
        sv->have_socket = 1;
    else if (strcmp(key, "socket_group") == 0 && !sv->have_group && *v &&
             set_group(sv->c, v, err, errsz) == PC_OK)
        sv->have_group = 1;
    return PC_OK;
}

int ag_config_salvage(struct ag_config *c, const char *path)
{
    struct salvage sv = { .c = c };
    struct stat st;
    char *buf = NULL, err[256];
    size_t len = 0, pos = 0;

    if (set_str(&c->path, path) != PC_OK)
        return 0;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) ||
        pc_read_file(path, CONFIG_FILE_MAX, &buf, &len) != PC_OK)
        return 0;
    /* Line by line, each parsed on its own with the strict grammar: a bad line elsewhere (or a
     * key given twice: the first valid one wins) does not hide the socket. */
    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (buf + pos)) : len - pos;

        if (n <= PC_CONFIG_MAX_LINE && !memchr(buf + pos, '\0', n))
            pc_config_parse_buffer(path, buf + pos, n, on_salvage, &sv, err, sizeof err);
        pos += n + 1;
    }
    free(buf);
    return (sv.have_socket ? AG_SALVAGED_SOCKET : 0) | (sv.have_group ? AG_SALVAGED_GROUP : 0);
}

void ag_config_error_where(const char *path, const char *err, char *out, size_t outsz)
{
    size_t n = strlen(path), d = 0;

    if (outsz == 0)
        return;
    if (strncmp(err, path, n) == 0 && err[n] == ':') {
        while (d < 10 && isdigit((unsigned char)err[n + 1 + d]))
            d++;
        if (err[n + 1 + d] != ':')
            d = 0;
    }
    if (d)
        snprintf(out, outsz, "%s:%.*s", path, (int)d, err + n + 1);
    else
        snprintf(out, outsz, "%s", path);
    ag_config_scrub(out);
}

int ag_config_require_server(const struct ag_config *c, char *err, size_t errsz)
{
    if (!c->url) {
        snprintf(
            err, errsz,
            "%s: 'url' is not set (run 'portcullis-agent enroll' or add url = https://HOST:PORT)",
            c->path);
        return PC_ERR_INVAL;
    }
    if (!c->pin && !c->cafile) {
        snprintf(err, errsz, "%s: neither 'pin' nor 'cafile' is set: set exactly one", c->path);
        return PC_ERR_INVAL;
    }
    return PC_OK;
}

int ag_config_append_server(const char *path, const char *url, const char *pin, const char *cafile,
                            char *err, size_t errsz)
{
    struct stat st;
    char *old = NULL, *buf = NULL;
    size_t oldlen = 0, cap, n;
    int have = 0, rc;

    if (stat(path, &st) == 0) {
        have = 1;
        rc = pc_read_file(path, CONFIG_FILE_MAX, &old, &oldlen);
        if (rc != PC_OK) {
            snprintf(err, errsz, "cannot read %s: %s", path, pc_strerror(rc));
            goto out;
        }
    } else if (errno != ENOENT) {
        snprintf(err, errsz, "cannot stat %s: %s", path, strerror(errno));
        rc = PC_ERR_IO;
        goto out;
    }
    cap = oldlen + 128 + (url ? strlen(url) : 0) + (pin ? strlen(pin) : 0) +
          (cafile ? strlen(cafile) : 0);
    buf = malloc(cap);
    if (!buf) {
        rc = PC_ERR_NOMEM;
        snprintf(err, errsz, "out of memory");
        goto out;
    }
    n = (size_t)snprintf(buf, cap, "%s%s# written by portcullis-agent enroll\n%s%s%s%s%s%s%s%s%s",
                         old ? old : "", (oldlen > 0 && old[oldlen - 1] != '\n') ? "\n" : "",
                         url ? "url = " : "", url ? url : "", url ? "\n" : "", pin ? "pin = " : "",
                         pin ? pin : "", pin ? "\n" : "", cafile ? "cafile = " : "",
                         cafile ? cafile : "", cafile ? "\n" : "");
    rc = pc_write_file_atomic(path, buf, n, have ? (st.st_mode & 07777) : 0644);
    if (rc != PC_OK) {
        snprintf(err, errsz, "cannot write %s: %s", path, pc_strerror(rc));
        goto out;
    }
    if (have && (st.st_uid != 0 || st.st_gid != 0) && chown(path, st.st_uid, st.st_gid) != 0) {
        snprintf(err, errsz, "wrote %s but cannot restore its owner: %s", path, strerror(errno));
        rc = PC_ERR_IO;
    }
out:
    free(old);
    free(buf);
    return rc;
}
