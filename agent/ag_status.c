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
#include "pc_mem.h"
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

void ag_status_probe(const struct ag_config *cfg, struct ag_probe *pr)
{
    struct pc_http_opts o = { .base_url = cfg->url,
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
    int rc;

    memset(pr, 0, sizeof *pr);
    probe_enrolled(cfg, pr);
    if ((rc = pc_http_new(&o, &h, err, sizeof err)) != PC_OK) {
        pr->error = PC_AGENT_E_UNREACHABLE;
        snprintf(pr->detail, sizeof pr->detail, "%s", err);
        goto out;
    }
    rc = pc_http_call(h, "GET", "/v1/health", NULL, 0, &status, &reply, err, sizeof err);
    if (rc == PC_OK && status == 200 && reply &&
        pc_json_get_str(reply, "status", 1, 16, &st, &je) == PC_OK && strcmp(st, "ok") == 0) {
        pr->reachable = 1;
        if (pc_json_get_str(reply, "version", 0, 60, &ver, &je) == PC_OK && ver)
            snprintf(pr->version, sizeof pr->version, "%s", ver);
        goto out;
    }
    pr->error = ag_ops_code_for(rc, status);
    if (rc == PC_OK && status == 200)
        pr->error = PC_AGENT_E_GARBAGE;
    /* pc_http says "does not match the pin" only for CURLE_SSL_PINNEDPUBKEYNOTMATCH. */
    pr->pin_mismatch = rc == PC_ERR_TLS && strstr(err, "does not match the pin") != NULL;
    if (rc != PC_OK)
        snprintf(pr->detail, sizeof pr->detail, "%s", err);
    else
        snprintf(pr->detail, sizeof pr->detail, "GET /v1/health answered HTTP %ld%s", status,
                 status == 200 ? " without status \"ok\"" : "");
out:
    if (reply)
        json_object_put(reply);
    pc_http_free(h);
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
    if (!pr->reachable) {
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
}

/* ---- end of issue 13 ------------------------------------------------------------------------ */

int ag_status_run(const char *config_path, int json)
{
    struct ag_config cfg;
    struct ag_probe pr;
    char err[ERRSZ] = "";
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
    if (json) {
        json_object *o = ag_status_reply(&cfg, &pr);
        json_object_object_add(o, "host_token_file", json_object_new_string(cfg.host_token_file));
        if (pr.version[0])
            json_object_object_add(o, "version", json_object_new_string(pr.version));
        json_object_object_add(o, "offline", offline_json(&cfg)); /* issue 13 */
        printf("%s\n", pc_json_dump(o));
        json_object_put(o);
    } else {
        print_text(&cfg, &pr);
        offline_text(&cfg); /* issue 13 */
    }
    rc = pr.enrolled && pr.reachable ? 0 : 1;
out:
    ag_config_free(&cfg);
    return rc;
}
