/* SPDX-License-Identifier: BSD-2-Clause */
/* Enrollment and reachability checks (see ag_status.h). */
#include "config.h"
#include "ag_status.h"
#include "ag_offline.h"
#include "ag_enroll.h"
#include "ag_ops_call.h"
#include "pc_agent_proto.h"
#include "pc_err.h"
#include "pc_http.h"
#include "pc_json.h"
#include "pc_frame.h"
#include "pc_mem.h"
#include "pc_time.h"
#include <time.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>

#define ERRSZ 512

static void probe_enrolled(const struct ag_config *cfg, struct ag_probe *pr)
{
    char *token = NULL;

    pr->enrolled = ag_enroll_read_token(cfg->host_token_file, &token, pr->enroll_detail,
                                        sizeof pr->enroll_detail) == PC_OK;
    pc_free_secret_str(token);
}

static void probe_url(const struct ag_config *cfg, const char *url, struct ag_url_probe *u)
{
    struct pc_http_opts o = { .base_url = url,
                              .pin = cfg->pin,
                              .cafile = cfg->cafile,
                              .connect_timeout_ms = cfg->connect_timeout_ms,
                              .timeout_ms = cfg->timeout_ms };
    char err[ERRSZ] = "";
    json_object *reply = NULL;
    const char *st = NULL, *ver = NULL;
    struct pc_jerr je = { 0 };
    pc_http *h = NULL;
    long status = 0;
    int64_t t0;
    int rc;

    if ((rc = pc_http_new(&o, &h, err, sizeof err)) != PC_OK) {
        u->error = PC_AGENT_E_UNREACHABLE;
        snprintf(u->detail, sizeof u->detail, "%s", err);
        goto out;
    }
    t0 = pc_now_ms();
    rc = pc_http_call(h, "GET", "/v1/health", NULL, 0, &status, &reply, err, sizeof err);
    if (rc == PC_OK && status == 200 && reply &&
        pc_json_get_str(reply, "status", 1, 16, &st, &je) == PC_OK && strcmp(st, "ok") == 0) {
        u->reachable = 1;
        u->latency_ms = (long)(pc_now_ms() - t0);
        if (pc_json_get_str(reply, "version", 0, 60, &ver, &je) == PC_OK && ver)
            snprintf(u->version, sizeof u->version, "%s", ver);
        goto out;
    }
    u->error = ag_ops_code_for(rc, status);
    if (rc == PC_OK && status == 200)
        u->error = PC_AGENT_E_GARBAGE;
    /* pc_http says "does not match the pin" only for CURLE_SSL_PINNEDPUBKEYNOTMATCH. */
    u->pin_mismatch = rc == PC_ERR_TLS && strstr(err, "does not match the pin") != NULL;
    if (rc != PC_OK)
        snprintf(u->detail, sizeof u->detail, "%s", err);
    else
        snprintf(u->detail, sizeof u->detail, "GET /v1/health answered HTTP %ld%s", status,
                 status == 200 ? " without status \"ok\"" : "");
out:
    if (reply)
        json_object_put(reply);
    pc_http_free(h);
}

void ag_status_probe(const struct ag_config *cfg, struct ag_probe *pr)
{
    int first_bad = -1;

    memset(pr, 0, sizeof *pr);
    probe_enrolled(cfg, pr);
    pr->n_urls = cfg->n_urls;
    for (unsigned i = 0; i < cfg->n_urls; i++) {
        struct ag_url_probe *u = &pr->urls[i];
        probe_url(cfg, cfg->urls[i], u);
        if (u->reachable && !pr->reachable) {
            pr->reachable = 1;
            snprintf(pr->version, sizeof pr->version, "%s", u->version);
        }
        if (!u->reachable &&
            (first_bad < 0 || (strcmp(u->error, PC_AGENT_E_TLS) == 0 &&
                               strcmp(pr->urls[first_bad].error, PC_AGENT_E_TLS) != 0)))
            first_bad = (int)i;
    }
    if (first_bad >= 0) {
        const struct ag_url_probe *u = &pr->urls[first_bad];
        pr->error = u->error;
        pr->pin_mismatch = u->pin_mismatch;
        snprintf(pr->detail, sizeof pr->detail, "%s", u->detail);
    }
}

json_object *ag_status_reply(const struct ag_config *cfg, const struct ag_probe *pr)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "ok", json_object_new_boolean(1));
    json_object_object_add(o, "enrolled", json_object_new_boolean(pr->enrolled));
    json_object_object_add(o, "reachable", json_object_new_boolean(pr->reachable));
    json_object_object_add(o, "pin", json_object_new_string(cfg->pin ? cfg->pin : ""));
    json_object_object_add(o, "url", json_object_new_string(cfg->url ? cfg->url : ""));
    if (cfg->cafile)
        json_object_object_add(o, "cafile", json_object_new_string(cfg->cafile));
    if (pr->n_urls > 0) {
        json_object *a = json_object_new_array();
        for (unsigned i = 0; i < pr->n_urls; i++) {
            const struct ag_url_probe *u = &pr->urls[i];
            json_object *e = json_object_new_object();
            json_object_object_add(e, "url", json_object_new_string(cfg->urls[i]));
            json_object_object_add(e, "reachable", json_object_new_boolean(u->reachable));
            if (u->reachable) {
                json_object_object_add(e, "latency_ms", json_object_new_int64(u->latency_ms));
            } else {
                json_object_object_add(e, "error", json_object_new_string(u->error));
                json_object_object_add(e, "pin_mismatch", json_object_new_boolean(u->pin_mismatch));
                json_object_object_add(e, "detail", json_object_new_string(u->detail));
            }
            json_object_array_add(a, e);
        }
        json_object_object_add(o, "urls", a);
    }
    if (!pr->reachable && pr->error) {
        json_object_object_add(o, "error",
                               json_object_new_string(pr->error ? pr->error
                                                                : PC_AGENT_E_UNREACHABLE));
        json_object_object_add(o, "pin_mismatch", json_object_new_boolean(pr->pin_mismatch));
        json_object_object_add(o, "detail", json_object_new_string(pr->detail));
    }
    return o;
}

static void print_text(const struct ag_config *cfg, const struct ag_probe *pr)
{
    if (pr->enrolled)
        printf("enrolled:  yes (host token in %s)\n", cfg->host_token_file);
    else
        printf("enrolled:  no (%s)\n", pr->enroll_detail);
    printf("url:       %s\n", cfg->url);
    if (cfg->pin)
        printf("pin:       %s\n", cfg->pin);
    else
        printf("cafile:    %s\n", cfg->cafile);
    if (pr->reachable)
        printf("reachable: yes (portcullisd %s)\n", pr->version[0] ? pr->version : "?");
    else if (pr->pin_mismatch)
        printf("reachable: no: TLS pin mismatch: the server's key does not match the pin (%s)\n",
               pr->detail);
    else if (pr->error && strcmp(pr->error, PC_AGENT_E_TLS) == 0)
        printf("reachable: no: TLS handshake failed (%s)\n", pr->detail);
    else
        printf("reachable: no: %s (%s)\n", pr->error ? pr->error : PC_AGENT_E_UNREACHABLE,
               pr->detail);
    for (unsigned i = 0; i < pr->n_urls; i++) {
        const struct ag_url_probe *u = &pr->urls[i];
        if (u->reachable)
            printf("instance:  %s healthy (%ld ms)\n", cfg->urls[i], u->latency_ms);
        else
            printf("instance:  %s unhealthy: %s%s (%s)\n", cfg->urls[i], u->error,
                   u->pin_mismatch ? ", TLS pin mismatch" : "", u->detail);
    }
}

static void print_time(const char *label, int64_t t)
{
    char buf[40] = "never";
    struct tm tm;
    time_t tt = (time_t)t;

    if (t > 0 && gmtime_r(&tt, &tm))
        strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf(" %s %s", label, buf);
}

/* The running agent's view of each instance (its pool: state, last success, latency, last
 * error), from its socket's status reply; nothing when the agent does not answer. */
static json_object *ask_daemon_pool(const struct ag_config *cfg)
{
    int64_t deadline = pc_now_ms() + cfg->timeout_ms + 2000;
    json_object *req = json_object_new_object(), *reply = NULL, *pool = NULL;
    int fd = -1;

    json_object_object_add(req, "op", json_object_new_string("status"));
    if (pc_agent_connect(cfg->socket, deadline, &fd) == PC_OK &&
        pc_frame_write(fd, req, deadline) == PC_OK &&
        pc_frame_read(fd, deadline, &reply) == PC_OK && reply &&
        json_object_object_get_ex(reply, "pool", &pool) &&
        json_object_is_type(pool, json_type_array))
        json_object_get(pool);
    else
        pool = NULL;
    if (fd >= 0)
        close(fd);
    json_object_put(reply);
    json_object_put(req);
    return pool;
}

static void print_pool(json_object *pool)
{
    size_t n = json_object_array_length(pool);

    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(pool, i), *v;
        const char *url = "?", *state = "?", *lerr = "";
        int64_t ok = 0, lat = 0, errat = 0;
        if (json_object_object_get_ex(e, "url", &v))
            url = json_object_get_string(v);
        if (json_object_object_get_ex(e, "state", &v))
            state = json_object_get_string(v);
        if (json_object_object_get_ex(e, "last_success", &v))
            ok = json_object_get_int64(v);
        if (json_object_object_get_ex(e, "latency_ms", &v))
            lat = json_object_get_int64(v);
        if (json_object_object_get_ex(e, "last_error", &v))
            lerr = json_object_get_string(v);
        if (json_object_object_get_ex(e, "last_error_at", &v))
            errat = json_object_get_int64(v);
        printf("agent:     %s %s,", url, state);
        print_time("last success", ok);
        printf(" (%lld ms),", (long long)lat);
        print_time("last error", errat);
        printf("%s%s\n", *lerr ? ": " : "", lerr);
    }
}

/* ---- issue 13: the offline state ----------------------------------------------------------- */

static json_object *offline_json(const struct ag_config *cfg)
{
    json_object *o = json_object_new_object();
    int64_t doc_age, people, krl_age;

    ag_offline_summary(cfg, &doc_age, &people, &krl_age);
    json_object_object_add(o, "cache_age", json_object_new_int64(doc_age));
    json_object_object_add(o, "people", json_object_new_int64(people));
    json_object_object_add(o, "krl_age", json_object_new_int64(krl_age));
    json_object_object_add(o, "krl_max_age",
                           json_object_new_int64(cfg->offline_krl_max_age_ms / 1000));
    json_object_object_add(o, "queued_events", json_object_new_int64(ag_offline_queued(cfg)));
    ag_offcodes_summary(cfg, &people, &krl_age); /* step 2(b) */
    json_object_object_add(o, "offline_codes_people", json_object_new_int64(people));
    json_object_object_add(o, "offline_codes_until", json_object_new_int64(krl_age));
    return o;
}

static void offline_text(const struct ag_config *cfg)
{
    int64_t doc_age, people, krl_age;

    ag_offline_summary(cfg, &doc_age, &people, &krl_age);
    if (doc_age < 0)
        printf("offline:   no cache (not fetched yet)\n");
    else
        printf("offline:   cache %llds old, %lld people with per-certificate rules here\n",
               (long long)doc_age, (long long)people);
    if (krl_age < 0)
        printf("krl:       none\n");
    else
        printf("krl:       verified %llds ago (offline decisions refuse after %lds)%s\n",
               (long long)krl_age, cfg->offline_krl_max_age_ms / 1000,
               krl_age * 1000 > cfg->offline_krl_max_age_ms ? ": STALE" : "");
    printf("queued:    %lld offline decisions not uploaded yet\n",
           (long long)ag_offline_queued(cfg));
    ag_offcodes_summary(cfg, &people, &krl_age); /* step 2(b) */
    if (people > 0)
        printf("codes:     offline codes of %lld people here, until %lld (unix time, %llds from "
               "now)\n",
               (long long)people, (long long)krl_age, (long long)(krl_age - pc_now()));
    else
        printf("codes:     no offline codes here\n");
}

/* ---- end of issue 13 ------------------------------------------------------------------------ */

int ag_status_run(const char *config_path, int json)
{
    struct ag_config cfg;
    struct ag_probe pr;
    char err[ERRSZ] = "";
    json_object *pool = NULL;
    int rc = 1;

    if (ag_config_init(&cfg) != PC_OK)
        return 1;
    if (ag_config_load(&cfg, config_path, 0, err, sizeof err) != PC_OK ||
        ag_config_require_server(&cfg, err, sizeof err) != PC_OK) {
        if (json) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "ok", json_object_new_boolean(0));
            json_object_object_add(o, "error", json_object_new_string("config"));
            json_object_object_add(o, "message", json_object_new_string(err));
            printf("%s\n", pc_json_dump(o));
            json_object_put(o);
        }
        fprintf(stderr, "portcullis-agent: %s\n", err);
        goto out;
    }
    ag_status_probe(&cfg, &pr);
    pool = ask_daemon_pool(&cfg);
    if (json) {
        json_object *o = ag_status_reply(&cfg, &pr);
        if (pool)
            json_object_object_add(o, "pool", json_object_get(pool));
        json_object_object_add(o, "host_token_file", json_object_new_string(cfg.host_token_file));
        if (pr.version[0])
            json_object_object_add(o, "version", json_object_new_string(pr.version));
        json_object_object_add(o, "offline", offline_json(&cfg)); /* issue 13 */
        printf("%s\n", pc_json_dump(o));
        json_object_put(o);
    } else {
        print_text(&cfg, &pr);
        if (pool)
            print_pool(pool);
        offline_text(&cfg); /* issue 13 */
    }
    rc = pr.enrolled && pr.reachable ? 0 : 1;
out:
    json_object_put(pool);
    ag_config_free(&cfg);
    return rc;
}
