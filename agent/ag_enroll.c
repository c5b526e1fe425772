/* SPDX-License-Identifier: BSD-2-Clause */
/* `portcullis-agent enroll` and the host token file (see ag_enroll.h). */
#include "config.h"
#include "ag_enroll.h"
#include "ag_config.h"
#include "ag_hostca.h"
#include "ag_maint.h"
#include "ag_krl.h"
#include "pc_sshkey.h"
#include "pc_err.h"
#include "pc_fs.h"
#include "pc_http.h"
#include "pc_json.h"
#include "pc_mem.h"
#include "pc_valid.h"
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOKEN_FILE_MAX 4096
#define ERRSZ 512

int ag_enroll_read_token(const char *path, char **out, char *err, size_t errsz)
{
    char *buf = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    errno = 0;
    rc = pc_read_file(path, TOKEN_FILE_MAX, &buf, &len);
    if (rc == PC_ERR_NOTFOUND) {
        snprintf(err, errsz, "no host token at %s: run 'portcullis-agent enroll'", path);
        return rc;
    }
    if (rc != PC_OK) {
        snprintf(err, errsz, "cannot read the host token file %s: %s", path,
                 errno ? strerror(errno) : pc_strerror(rc));
        return rc;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
        buf[--len] = '\0';
    if (strlen(buf) != len || !pc_valid_hex(buf, 32, 256)) {
        pc_free_secret(buf, len);
        snprintf(err, errsz, "%s does not hold a host token (one line of hex)", path);
        return PC_ERR_PARSE;
    }
    *out = buf;
    return PC_OK;
}

int ag_enroll_http(const struct ag_config *c, pc_http **h, char *err, size_t errsz)
{
    struct pc_http_opts o = { .base_url = c->url,
                              .pin = c->pin,
                              .cafile = c->cafile,
                              .connect_timeout_ms = c->connect_timeout_ms,
                              .timeout_ms = c->timeout_ms };
    char *token = NULL;
    int rc;

    *h = NULL;
    if ((rc = ag_enroll_read_token(c->host_token_file, &token, err, errsz)) != PC_OK)
        return rc;
    o.token = token;
    rc = pc_http_new(&o, h, err, errsz);
    pc_free_secret_str(token);
    return rc;
}

/* Picks one value from the command line and the config: they must agree if both are set. */
static int pick(const char *what, const char *cli, const char *conf, const char *path,
                const char **out)
{
    if (cli && conf && strcmp(cli, conf) != 0) {
        fprintf(stderr,
                "portcullis-agent: --%s differs from '%s' in %s: edit the config file or "
                "leave --%s out\n",
                what, what, path, what);
        return PC_ERR_INVAL;
    }
    *out = cli ? cli : conf;
    return PC_OK;
}

/* Creates the token file's directory (0755) if it is missing; never changes an existing one. */
static int ensure_parent(const char *path)
{
    char copy[PATH_MAX];
    const char *dir;
    struct stat st;

    if (strlen(path) >= sizeof copy)
        return PC_ERR_INVAL;
    memcpy(copy, path, strlen(path) + 1);
    dir = dirname(copy);
    if (stat(dir, &st) == 0)
        return S_ISDIR(st.st_mode) ? PC_OK : PC_ERR_IO;
    return mkdir(dir, 0755) == 0 ? PC_OK : PC_ERR_IO;
}

/* The CA part of the enroll body: host_key and principals (config host_key, host_principals). */
static void add_host_key(json_object *body, const struct ag_config *cfg, const char *host_key)
{
    json_object *arr;

    if (!host_key)
        return;
    json_object_object_add(body, "host_key", json_object_new_string(host_key));
    arr = json_object_new_array();
    for (unsigned i = 0; i < cfg->n_host_principals; i++)
        json_object_array_add(arr, json_object_new_string(cfg->host_principals[i]));
    json_object_object_add(body, "principals", arr);
}

/* Copies the CA fields of the enroll reply into *ca (a new object), if there are any. */
static int take_ca(json_object *reply, json_object **ca)
{
    static const char *const keys[] = { "host_certificate", "user_ca", "host_ca" };
    struct pc_jerr je = { 0 };

    *ca = json_object_new_object();
    for (int i = 0; i < 3; i++) {
        const char *v = NULL;
        if (pc_json_get_str(reply, keys[i], 0, PC_SSHKEY_LINE_MAX, &v, &je) != PC_OK) {
            fprintf(stderr, "portcullis-agent: the control plane's %s is malformed\n", keys[i]);
            return PC_ERR_PARSE;
        }
        if (v)
            json_object_object_add(*ca, keys[i], json_object_new_string(v));
    }
    return PC_OK;
}

static int call_enroll(const char *url, const char *pin, const char *cafile,
                       const struct ag_config *cfg, const char *host_key, const char *token,
                       const char *hostname, char **host_token, int64_t *host_id, json_object **ca,
                       char *name, size_t namesz)
{
    long connect_ms = cfg->connect_timeout_ms, timeout_ms = cfg->timeout_ms;
    struct pc_http_opts o = { .base_url = url,
                              .pin = pin,
                              .cafile = cafile,
                              .connect_timeout_ms = connect_ms,
                              .timeout_ms = timeout_ms };
    char err[ERRSZ] = "";
    json_object *body = NULL, *reply = NULL;
    const char *ht = NULL, *ecode = NULL, *hn = NULL;
    struct pc_jerr je = { 0 };
    pc_http *h = NULL;
    long status = 0;
    int rc;

    *host_token = NULL;
    if ((rc = pc_http_new(&o, &h, err, sizeof err)) != PC_OK) {
        fprintf(stderr, "portcullis-agent: %s\n", err);
        goto out;
    }
    body = json_object_new_object();
    json_object_object_add(body, "token", json_object_new_string(token));
    if (hostname) /* else the token's name, which the control plane answers with */
        json_object_object_add(body, "hostname", json_object_new_string(hostname));
    add_host_key(body, cfg, host_key);
    rc = pc_http_call(h, "POST", "/v1/enroll", body, 0, &status, &reply, err, sizeof err);
    if (rc != PC_OK) {
        fprintf(stderr, "portcullis-agent: enrollment failed: %s%s\n", err,
                rc == PC_ERR_TLS ? " (check --pin / cafile)" : "");
        goto out;
    }
    if (status == 401) {
        fprintf(stderr, "portcullis-agent: the enrollment token was refused (unknown, already used "
                        "or expired): ask an admin for a new one ('portcullis host token')\n");
        rc = PC_ERR_AUTH;
        goto out;
    }
    if (status == 403 || status == 409) {
        fprintf(
            stderr, "portcullis-agent: enrollment refused: %s\n",
            status == 403
                ? "the token was made for another host name or other principals (pass --hostname "
                  "only with the token's name, or leave it out)"
                : "a host with the token's name is already enrolled (portcullis host delete NAME)");
        rc = PC_ERR_AUTH;
        goto out;
    }
    if (status != 200) {
        if (reply)
            pc_json_get_str(reply, "error", 0, 32, &ecode, &je);
        fprintf(stderr,
                "portcullis-agent: enrollment failed: the control plane answered HTTP %ld (%s)\n",
                status, ecode ? ecode : "no error code");
        rc = PC_ERR_AUTH;
        goto out;
    }
    if (!reply || pc_json_get_str(reply, "host_token", 1, 256, &ht, &je) != PC_OK ||
        !pc_valid_hex(ht, 32, 256) ||
        pc_json_get_int(reply, "host_id", 1, 1, INT64_MAX, host_id, &je) != PC_OK) {
        fprintf(stderr, "portcullis-agent: enrollment failed: the control plane's reply lacks a "
                        "host_token or host_id\n");
        rc = PC_ERR_PARSE;
        goto out;
    }
    if (pc_json_get_str(reply, "hostname", 0, 253, &hn, &je) != PC_OK ||
        (hn && !pc_valid_hostname(hn))) {
        fprintf(stderr, "portcullis-agent: enrollment failed: the control plane's hostname is "
                        "malformed\n");
        rc = PC_ERR_PARSE;
        goto out;
    }
    snprintf(name, namesz, "%s", hn ? hn : hostname ? hostname : "?");
    if ((rc = take_ca(reply, ca)) != PC_OK)
        goto out;
    if (!(*host_token = strdup(ht)))
        rc = PC_ERR_NOMEM;
out:
    if (body) {
        const char *ser = pc_json_dump(body);
        json_object *t = NULL;
        if (ser)
            pc_wipe((void *)ser, strlen(ser));
        if (json_object_object_get_ex(body, "token", &t))
            pc_wipe((void *)json_object_get_string(t), (size_t)json_object_get_string_len(t));
        json_object_put(body);
    }
    if (reply) {
        json_object *t = NULL;
        if (json_object_object_get_ex(reply, "host_token", &t) &&
            json_object_is_type(t, json_type_string))
            pc_wipe((void *)json_object_get_string(t), (size_t)json_object_get_string_len(t));
        json_object_put(reply);
    }
    pc_http_free(h);
    return rc;
}

/* The host public key to certify, or NULL (host_key none, or the default file is missing). */
static int read_host_key(const struct ag_config *cfg, char **line)
{
    char err[ERRSZ] = "";
    struct stat st;
    int rc;

    *line = NULL;
    if (!cfg->host_key)
        return PC_OK;
    if (strcmp(cfg->host_key, AG_DEFAULT_HOST_KEY) == 0 && stat(cfg->host_key, &st) != 0) {
        printf("no host key at %s: enrolling without a host certificate (set host_key)\n",
               cfg->host_key);
        return PC_OK;
    }
    if ((rc = ag_hostca_read_host_key(cfg, line, err, sizeof err)) != PC_OK)
        fprintf(stderr,
                "portcullis-agent: %s (set host_key = none to enroll without a host "
                "certificate)\n",
                err);
    return rc;
}

/* host_ca.pub, host-cert.pub, user_ca.pub (merged) and revoked.krl from the enroll reply. */
static int write_ca_files(const struct ag_config *cfg, const char *url, const char *pin,
                          const char *cafile, json_object *ca)
{
    static const char *const order[] = { "host_ca", "host_certificate", "user_ca" };
    static const char *const files[] = { AG_HOST_CA_FILE, AG_HOST_CERT_FILE, AG_USER_CA_FILE };
    struct ag_config k = *cfg; /* shallow: the url/pin in use (maybe not yet in the file) */
    char err[ERRSZ] = "";
    uint64_t version = 0;
    int rc, changed;

    if (!ca || !json_object_object_get_ex(ca, "host_certificate", NULL)) {
        fprintf(stderr, "portcullis-agent: enrolled, but the control plane sent no host "
                        "certificate (is it older than this agent?)\n");
        return PC_ERR_STATE;
    }
    if ((rc = ag_hostca_mkdir(cfg, err, sizeof err)) != PC_OK)
        goto fail;
    for (int i = 0; i < 3; i++) {
        json_object *v = NULL;
        const char *line;
        if (!json_object_object_get_ex(ca, order[i], &v))
            continue;
        line = json_object_get_string(v);
        rc = i == 0   ? ag_hostca_write_host_ca(cfg, line, &changed, err, sizeof err)
             : i == 1 ? ag_hostca_write_host_cert(cfg, line, &changed, err, sizeof err)
                      : ag_hostca_merge_user_ca(cfg, line, &changed, err, sizeof err);
        if (rc != PC_OK)
            goto fail;
        printf("wrote %s/%s%s\n", cfg->ssh_dir, files[i], changed ? "" : " (unchanged)");
    }
    k.url = (char *)url;
    k.pin = (char *)pin;
    k.cafile = (char *)cafile;
    /* during a CA rotation's overlap the reply names only the new keys: trust the old too */
    ag_maint_sync_cas(&k);
    if (ag_krl_sync(&k, &changed, &version, err, sizeof err) == PC_OK)
        printf("wrote %s/%s (KRL version %llu)\n", cfg->ssh_dir, AG_KRL_FILE,
               (unsigned long long)version);
    else
        fprintf(stderr,
                "portcullis-agent: warning: %s; the agent will fetch the KRL when it runs\n", err);
    return PC_OK;
fail:
    fprintf(stderr, "portcullis-agent: enrolled, but %s: fix it and run 'portcullis-agent renew'\n",
            err);
    return rc;
}

int ag_enroll_run(const struct ag_enroll_args *a)
{
    struct ag_config cfg;
    char err[ERRSZ] = "", name[256] = "", *host_token = NULL, *line = NULL, *host_key = NULL;
    json_object *ca = NULL;
    const char *url = NULL, *pin = NULL, *cafile = NULL, *hostname = a->hostname;
    int64_t host_id = 0;
    struct stat st;
    size_t n;
    int rc;

    if ((rc = ag_config_init(&cfg)) != PC_OK)
        return rc;
    if ((rc = ag_config_load(&cfg, a->config, 1, err, sizeof err)) != PC_OK) {
        fprintf(stderr, "portcullis-agent: %s\n", err);
        goto out;
    }
    if ((rc = pick("url", a->url, cfg.url, a->config, &url)) != PC_OK ||
        (rc = pick("pin", a->pin, cfg.pin, a->config, &pin)) != PC_OK ||
        (rc = pick("cafile", a->cafile, cfg.cafile, a->config, &cafile)) != PC_OK)
        goto out;
    rc = PC_ERR_INVAL;
    if (!url) {
        fprintf(stderr, "portcullis-agent: no server URL: pass --url https://HOST:PORT\n");
        goto out;
    }
    if (ag_config_check_url(url, err, sizeof err) != PC_OK ||
        (pin && ag_config_check_pin(pin, err, sizeof err) != PC_OK)) {
        fprintf(stderr, "portcullis-agent: %s\n", err);
        goto out;
    }
    if ((pin && cafile) || (!pin && !cafile)) {
        fprintf(stderr,
                "portcullis-agent: %s: give exactly one of --pin and --cafile (the config "
                "%s may already set one)\n",
                pin ? "both a pin and a CA file" : "no pin", a->config);
        goto out;
    }
    if (!pc_valid_bearer_token(a->token)) {
        fprintf(stderr,
                "portcullis-agent: the enrollment token is empty or has invalid characters\n");
        goto out;
    }
    /* The token names the host; --hostname only confirms it (a different name is refused). */
    if (hostname && !pc_valid_hostname(hostname)) {
        fprintf(stderr,
                "portcullis-agent: invalid host name '%.64s' (letters, digits, '-', '.', '_')\n",
                hostname);
        goto out;
    }
    if (stat(cfg.host_token_file, &st) == 0 && !a->force) {
        fprintf(stderr,
                "portcullis-agent: this host is already enrolled (%s exists); refusing to "
                "overwrite it: pass --force to enroll again and replace the host token\n",
                cfg.host_token_file);
        rc = PC_ERR_EXISTS;
        goto out;
    }
    if ((rc = read_host_key(&cfg, &host_key)) != PC_OK)
        goto out;
    rc = call_enroll(url, pin, cafile, &cfg, host_key, a->token, hostname, &host_token, &host_id,
                     &ca, name, sizeof name);
    if (rc != PC_OK)
        goto out;
    n = strlen(host_token) + 2;
    if (!(line = malloc(n))) {
        rc = PC_ERR_NOMEM;
        goto out;
    }
    snprintf(line, n, "%s\n", host_token);
    if ((rc = ensure_parent(cfg.host_token_file)) != PC_OK ||
        (rc = pc_write_file_atomic(cfg.host_token_file, line, n - 1, 0600)) != PC_OK) {
        fprintf(stderr,
                "portcullis-agent: enrolled, but cannot write the host token to %s (%s): "
                "fix the directory and enroll again with a new token and --force\n",
                cfg.host_token_file, strerror(errno));
        goto out;
    }
    printf("enrolled as host %lld (%s); host token written to %s\n", (long long)host_id, name,
           cfg.host_token_file);
    if (!cfg.url || (!cfg.pin && !cfg.cafile)) {
        rc = ag_config_append_server(a->config, cfg.url ? NULL : url,
                                     (cfg.pin || cfg.cafile) ? NULL : pin,
                                     (cfg.pin || cfg.cafile) ? NULL : cafile, err, sizeof err);
        if (rc != PC_OK) {
            fprintf(stderr, "portcullis-agent: %s: add url and pin to it by hand\n", err);
            goto out;
        }
        printf("recorded the server's url and %s in %s\n", pin ? "pin" : "cafile", a->config);
    }
    if (host_key && (rc = write_ca_files(&cfg, url, pin, cafile, ca)) != PC_OK)
        goto out;
    printf("restart the agent (systemctl restart portcullis-agent) if it is running\n");
out:
    json_object_put(ca);
    free(host_key);
    pc_free_secret_str(line);
    pc_free_secret_str(host_token);
    ag_config_free(&cfg);
    return rc;
}
