/* SPDX-License-Identifier: BSD-2-Clause */
/* The CLI's connection to portcullisd, its error messages, and argument validation. */
#include "config.h"
#include "cli.h"
#include "pc_fs.h"
#include "pc_json.h"
#include "pc_mem.h"
#include "pc_term.h"
#include "pc_valid.h"
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TOKEN_FILE_MAX 4096

static void vmsg(const char *fmt, va_list ap)
{
    fflush(stdout);
    fputs("portcullis: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int cli_err(int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
    return rc;
}

int cli_usage_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
    fputs("Run 'portcullis --help' for usage.\n", stderr);
    return CLI_EUSAGE;
}

/* Reads the admin token: the file's first line, hex. *out is freed with pc_free_secret_str. */
static int read_token(const char *path, char **out)
{
    char *buf = NULL;
    size_t len = 0;
    int rc;

    errno = 0;
    rc = pc_read_file(path, TOKEN_FILE_MAX, &buf, &len);
    if (rc == PC_ERR_NOTFOUND)
        return cli_err(rc, "the token file %s does not exist: check --token-file", path);
    if (rc == PC_ERR_TOOBIG)
        return cli_err(rc, "the token file %s is too large to hold a token: check --token-file",
                       path);
    if (rc != PC_OK)
        return cli_err(rc,
                       "cannot read the token file %s (%s): check --token-file and its permissions",
                       path, errno ? strerror(errno) : "not a regular file");
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        buf[--len] = '\0';
    rc = strlen(buf) == len && pc_valid_hex(buf, 1, 256) ? PC_OK : PC_ERR_PARSE;
    if (rc != PC_OK) {
        pc_free_secret(buf, len);
        return cli_err(rc, "the token file %s does not hold a hex token: check --token-file", path);
    }
    *out = buf;
    return PC_OK;
}

int cli_connect(struct cli *c)
{
    struct pc_http_opts o = { 0 };
    char err[512] = "";
    char *token = NULL;
    int rc;

    if (c->http)
        return PC_OK;
    if (!c->url)
        return cli_err(PC_ERR_NOTFOUND, "no server given: pass --url or set PORTCULLIS_URL");
    if (!c->pin && !c->cafile)
        return cli_err(
            PC_ERR_NOTFOUND,
            "no server key given: pass --pin (portcullisd --print-pin "
            "on the server prints it) or --cafile, or set PORTCULLIS_PIN or PORTCULLIS_CAFILE");
    if (!c->token_file && !c->no_token && c->session_ok &&
        cli_session_path(c->session_path, sizeof c->session_path) == PC_OK &&
        access(c->session_path, F_OK) == 0) {
        c->token_file = c->session_path;
        c->using_session = 1;
    }
    if (!c->token_file && !c->no_token)
        return cli_err(
            PC_ERR_NOTFOUND,
            "no admin token given: pass --token-file or set "
            "PORTCULLIS_TOKEN_FILE (portcullisd writes admin.token in its data directory)%s",
            c->session_ok ? ", or run 'portcullis login' for a session" : "");
    if (!c->no_token && (rc = read_token(c->token_file, &token)) != PC_OK)
        return rc;
    o.base_url = c->url;
    o.pin = c->pin;
    o.cafile = c->cafile;
    o.token = token;
    rc = pc_http_new(&o, &c->http, err, sizeof err);
    if (token)
        pc_free_secret_str(token);
    if (rc != PC_OK) {
        const char *what = c->pin && strstr(err, "pin") ? "check --pin"
                                                        : "check --url, --pin and --cafile";
        return cli_err(rc == CLI_EUSAGE ? PC_ERR_PARSE : rc, "%s: %s", err, what);
    }
    return PC_OK;
}

int cli_request(struct cli *c, const char *method, const char *path, json_object *body,
                long *status, json_object **reply)
{
    char err[1024] = "";
    int rc;

    *reply = NULL;
    *status = 0;
    if ((rc = cli_connect(c)) != PC_OK)
        return rc;
    rc = pc_http_call(c->http, method, path, body, 0, status, reply, err, sizeof err);
    switch (rc) {
    case PC_OK: return PC_OK;
    case PC_ERR_TLS:
        if (c->pin)
            return cli_err(rc, "%s; check --pin (portcullisd --print-pin on the server)", err);
        return cli_err(rc,
                       "%s: check --cafile, and that --url names the host in the server's "
                       "certificate",
                       err);
    case PC_ERR_TIMEOUT:
    case PC_ERR_NET: return cli_err(rc, "%s: check --url and that portcullisd is running", err);
    case PC_ERR_PARSE:
    case PC_ERR_TOOBIG: return cli_err(rc, "%s: check that --url points at portcullisd", err);
    default: return cli_err(rc == CLI_EUSAGE ? PC_ERR_PARSE : rc, "%s", err);
    }
}

int cli_check(struct cli *c, long status, json_object *reply, const char *hint)
{
    char msg[512];
    json_object *m = NULL;
    int rc;

    if (status >= 200 && status < 300)
        return PC_OK;
    if (status == 401 && c->using_session)
        return cli_err(PC_ERR_AUTH, "the session was refused or has expired: run 'portcullis "
                                    "login' again");
    if (status == 401 && !c->no_token)
        return cli_err(PC_ERR_AUTH, "the admin token was refused: check --token-file");
    if (reply && json_object_object_get_ex(reply, "message", &m) &&
        json_object_is_type(m, json_type_string))
        cli_sanitize(msg, sizeof msg, json_object_get_string(m));
    else if (reply && json_object_object_get_ex(reply, "error", &m) &&
             json_object_is_type(m, json_type_string))
        cli_sanitize(msg, sizeof msg, json_object_get_string(m));
    else
        snprintf(msg, sizeof msg, "the server answered HTTP %ld", status);
    switch (status) {
    case 400: rc = PC_ERR_PARSE; break;
    case 403:
        rc = PC_ERR_AUTH;
        if (!hint)
            hint = "check --token-file (it must hold the admin token)";
        break;
    case 404: rc = PC_ERR_NOTFOUND; break;
    case 409: rc = PC_ERR_EXISTS; break;
    case 410: rc = PC_ERR_STATE; break;
    case 413: rc = PC_ERR_TOOBIG; break;
    default:
        if (status >= 500)
            return cli_err(PC_ERR_STORE,
                           "the server failed (HTTP %ld: %s): nothing was changed; "
                           "see the portcullisd log",
                           status, msg);
        return cli_err(PC_ERR_NET, "unexpected answer from the server (HTTP %ld: %s)", status, msg);
    }
    if (hint)
        return cli_err(rc, "%s: %s", msg, hint);
    return cli_err(rc, "%s", msg);
}

int cli_call(struct cli *c, const char *method, const char *path, json_object *body,
             json_object **reply, const char *hint)
{
    long status;
    int rc = cli_request(c, method, path, body, &status, reply);

    if (rc == PC_OK)
        rc = cli_check(c, status, *reply, hint);
    if (rc == PC_OK && !*reply)
        rc = cli_err(PC_ERR_PARSE,
                     "the server sent an empty reply (HTTP %ld): check that --url "
                     "points at portcullisd",
                     status);
    if (rc != PC_OK) {
        json_object_put(*reply);
        *reply = NULL;
    }
    return rc;
}

int cli_get_list(struct cli *c, const char *path, const char *key, const char *empty,
                 json_object **reply, json_object **list)
{
    int rc;

    *reply = *list = NULL;
    rc = cli_call(c, "GET", path, NULL, reply, NULL);
    if (rc != PC_OK)
        return rc;
    if (c->json) {
        cli_print_json(*reply);
        return PC_OK;
    }
    if (!json_object_object_get_ex(*reply, key, list) ||
        !json_object_is_type(*list, json_type_array)) {
        *list = NULL;
        return cli_err(PC_ERR_PARSE,
                       "the server's reply has no %s list: check that --url "
                       "points at portcullisd",
                       key);
    }
    if (json_object_array_length(*list) == 0 && empty) {
        puts(empty);
        *list = NULL;
    }
    return PC_OK;
}

int cli_valid_user(const char *name)
{
    size_t n = strlen(name);

    if (n < 1 || n > 32 || !((name[0] >= 'a' && name[0] <= 'z') || name[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
              strchr("_.-", name[i])))
            return 0;
    return 1;
}

/* ---- output ------------------------------------------------------------------------------ */

void cli_print_json(json_object *obj)
{
    char *safe = pc_term_json(pc_json_dump(obj));

    if (safe)
        puts(safe);
    free(safe);
}

/* Controls and malformed UTF-8 become '?', format characters (bidi overrides, zero-width
 * characters) are dropped: see lib/pc_term.h. */
void cli_sanitize(char *dst, size_t dstsz, const char *s)
{
    pc_term_safe(dst, dstsz, s);
}

/* Appends "sep" and s (sanitized) to buf, keeping it terminated. */
static void append(char *buf, size_t bufsz, const char *sep, const char *s)
{
    size_t n = strlen(buf);
    if (!s)
        s = "-";
    if (n && n + strlen(sep) < bufsz) {
        memcpy(buf + n, sep, strlen(sep) + 1);
        n += strlen(sep);
    }
    if (n < bufsz)
        cli_sanitize(buf + n, bufsz - n, s);
}

const char *cli_field(json_object *obj, const char *key, char *buf, size_t bufsz)
{
    json_object *v = NULL;

    buf[0] = '\0';
    if (!obj || !json_object_object_get_ex(obj, key, &v) || !v)
        return "-";
    switch (json_object_get_type(v)) {
    case json_type_string: cli_sanitize(buf, bufsz, json_object_get_string(v)); break;
    case json_type_boolean: return json_object_get_boolean(v) ? "yes" : "no";
    case json_type_int: snprintf(buf, bufsz, "%lld", (long long)json_object_get_int64(v)); break;
    case json_type_array:
        for (size_t i = 0; i < json_object_array_length(v); i++)
            append(buf, bufsz, ",", json_object_get_string(json_object_array_get_idx(v, i)));
        break;
    case json_type_object: {
        json_object_object_foreach(v, k, val)
        {
            append(buf, bufsz, ",", k);
            append(buf, bufsz, "=", json_object_get_string(val));
        }
        break;
    }
    default: cli_sanitize(buf, bufsz, json_object_get_string(v)); break;
    }
    return buf[0] ? buf : "-";
}

const char *cli_field_time(json_object *obj, const char *key, char *buf, size_t bufsz)
{
    json_object *v = NULL;
    time_t t;
    struct tm tm;

    if (!obj || !json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_int))
        return cli_field(obj, key, buf, bufsz);
    t = (time_t)json_object_get_int64(v);
    if (t <= 0 || !gmtime_r(&t, &tm) || !strftime(buf, bufsz, "%Y-%m-%dT%H:%M:%SZ", &tm))
        return "-";
    return buf;
}

int cli_session_path(char *out, size_t outsz)
{
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    int n;

    if (xdg && *xdg == '/')
        n = snprintf(out, outsz, "%s/portcullis/session", xdg);
    else if (home && *home)
        n = snprintf(out, outsz, "%s/.config/portcullis/session", home);
    else
        return PC_ERR_NOTFOUND;
    return n > 0 && (size_t)n < outsz ? PC_OK : PC_ERR_INVAL;
}
