/* SPDX-License-Identifier: BSD-2-Clause */
/* The agent's metrics (see ag_metrics.h). */
#include "config.h"
#include "ag_metrics.h"
#include "ag_config.h"
#include "ag_hostca.h"
#include "ag_krl.h"
#include "pc_agent_proto.h"
#include "pc_err.h"
#include "pc_frame.h"
#include "pc_json.h"
#include "pc_log.h"
#include "pc_time.h"
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define METRICS_DEADLINE_MS 5000

const struct pc_metric ag_m_calls = {
    "portcullis_agent_calls_total",
    "Socket requests answered, by op and outcome (ok or the protocol error code).",
    PC_METRIC_COUNTER,
    { "op", "outcome" }
};
const struct pc_metric ag_m_cp_seconds = { "portcullis_agent_control_plane_seconds",
                                           "Time of each call to the control plane, by op.",
                                           PC_METRIC_HISTOGRAM,
                                           { "op" } };
const struct pc_metric ag_m_failmode = {
    "portcullis_agent_failmode_replies_total",
    "begin requests answered with a control-plane failure (unreachable, timeout, garbage,"
    " server): the PAM module then follows its failmode (safe admits without a second factor).",
    PC_METRIC_COUNTER,
    { "error" }
};
const struct pc_metric ag_m_offline = { "portcullis_agent_offline_decisions_total",
                                        "Logins decided offline (control plane unreachable),"
                                        " by result.",
                                        PC_METRIC_COUNTER,
                                        { "result" } };
const struct pc_metric ag_m_principals_cache = {
    "portcullis_agent_principals_cache_total",
    "Principals requests the control plane could not answer: answered from the cache (hit)"
    " or not (miss).",
    PC_METRIC_COUNTER,
    { "result" }
};

static const struct pc_metric *const all[] = { &ag_m_calls, &ag_m_cp_seconds, &ag_m_failmode,
                                               &ag_m_offline, &ag_m_principals_cache };

static atomic_llong krl_synced_at; /* wall-clock seconds of the last successful sync, 0 = none */

static const char *known_op(const char *op)
{
    static const char *const ops[] = { PC_AGENT_OP_BEGIN,      PC_AGENT_OP_TOTP,
                                       PC_AGENT_OP_PUSH,       PC_AGENT_OP_PUSH_WAIT,
                                       PC_AGENT_OP_PRINCIPALS, PC_AGENT_OP_STATUS,
                                       PC_AGENT_OP_METRICS };
    for (size_t i = 0; op && i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(op, ops[i]) == 0)
            return ops[i];
    return "other"; /* a peer's garbage never becomes a series of its own */
}

void ag_metrics_call(json_object *req, json_object *reply)
{
    json_object *o = NULL;
    const char *op = NULL, *outcome = "ok";

    if (req && json_object_object_get_ex(req, "op", &o) && json_object_is_type(o, json_type_string))
        op = json_object_get_string(o);
    op = known_op(op);
    if (reply && json_object_object_get_ex(reply, "error", &o) &&
        json_object_is_type(o, json_type_string))
        outcome = json_object_get_string(o); /* our own PC_AGENT_E_* codes */
    pc_metric_inc(&ag_m_calls, op, outcome, NULL);
    if (strcmp(op, PC_AGENT_OP_BEGIN) == 0 &&
        (strcmp(outcome, PC_AGENT_E_UNREACHABLE) == 0 || strcmp(outcome, PC_AGENT_E_TIMEOUT) == 0 ||
         strcmp(outcome, PC_AGENT_E_GARBAGE) == 0 || strcmp(outcome, PC_AGENT_E_SERVER) == 0))
        pc_metric_inc(&ag_m_failmode, outcome, NULL, NULL);
}

void ag_metrics_krl_synced(void)
{
    atomic_store(&krl_synced_at, (long long)pc_now());
}

static char *render(const struct ag_config *cfg)
{
    struct pc_sshbuf b;
    char path[PATH_MAX];
    struct stat st;
    long long synced = atomic_load(&krl_synced_at);
    unsigned char *text = NULL;
    size_t len = 0;

    pc_sshbuf_init(&b, PC_FRAME_MAX / 2);
    pc_metrics_render(&b, all, sizeof all / sizeof all[0]);
    /* Before the first sync of this run: the file's own time (when it last changed). */
    if (!synced && ag_hostca_path(cfg, AG_KRL_FILE, path, sizeof path) == PC_OK &&
        stat(path, &st) == 0)
        synced = (long long)st.st_mtime;
    if (synced) {
        pc_metrics_gauge(&b, "portcullis_agent_krl_last_sync_timestamp_seconds",
                         "When the KRL was last fetched successfully (Unix time).", "",
                         (double)synced);
        pc_metrics_gauge(&b, "portcullis_agent_krl_age_seconds",
                         "Seconds since the KRL was last fetched successfully.", "",
                         (double)(pc_now() - synced));
    }
    pc_metrics_gauge(&b, "portcullis_agent_build_info", "Always 1; the version is a label.",
                     "version=\"" PC_VERSION "\"", 1);
    if (pc_sshbuf_error(&b) != PC_OK || pc_sshbuf_steal(&b, &text, &len) != PC_OK)
        text = NULL;
    pc_sshbuf_free(&b);
    return (char *)text;
}

json_object *ag_metrics_op(struct ag_ctx *x, json_object *req, uid_t peer_uid)
{
    static const char *const fields[] = { "op", NULL };
    struct pc_jerr je = { 0 };
    json_object *o;
    char *text;

    if (peer_uid != 0) {
        pc_log(PC_LOG_WARN, "event=forbidden op=metrics uid=%u", (unsigned)peer_uid);
        return ag_ops_error(PC_AGENT_E_FORBIDDEN, "metrics are for root only");
    }
    if (pc_json_only_fields(req, fields, &je) != PC_OK)
        return ag_ops_error(PC_AGENT_E_BAD_REQUEST, je.message);
    if (!(text = render(x->cfg)))
        return ag_ops_error(PC_AGENT_E_INTERNAL, "cannot render the metrics");
    o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(1));
    json_object_object_add(o, "metrics", json_object_new_string(text));
    free(text);
    return o;
}

int ag_metrics_cmd(const char *config_path)
{
    struct ag_config cfg;
    char err[1024] = "";
    json_object *req = NULL, *reply = NULL, *m = NULL;
    int64_t deadline = pc_now_ms() + METRICS_DEADLINE_MS;
    int fd = -1, rc = 1;

    if (ag_config_init(&cfg) != PC_OK)
        return 1;
    if (ag_config_load(&cfg, config_path, 0, err, sizeof err) != PC_OK) {
        fprintf(stderr, "portcullis-agent: %s\n", err);
        goto out;
    }
    req = json_object_new_object();
    json_object_object_add(req, "op", json_object_new_string(PC_AGENT_OP_METRICS));
    if (pc_agent_connect(cfg.socket, deadline, &fd) != PC_OK) {
        fprintf(stderr, "portcullis-agent: cannot connect to the agent on %s\n", cfg.socket);
        goto out;
    }
    if (pc_frame_write(fd, req, deadline) != PC_OK ||
        pc_frame_read(fd, deadline, &reply) != PC_OK) {
        fprintf(stderr, "portcullis-agent: no answer from the agent on %s\n", cfg.socket);
        goto out;
    }
    if (!json_object_object_get_ex(reply, "metrics", &m) ||
        !json_object_is_type(m, json_type_string)) {
        json_object *e = NULL;
        fprintf(stderr, "portcullis-agent: the agent refused: %s\n",
                json_object_object_get_ex(reply, "message", &e) ? json_object_get_string(e)
                                                                : pc_json_dump(reply));
        goto out;
    }
    fputs(json_object_get_string(m), stdout);
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    json_object_put(reply);
    json_object_put(req);
    ag_config_free(&cfg);
    return rc;
}
