/* SPDX-License-Identifier: BSD-2-Clause */
/* The agent's metrics: every counter is defined here and each decision point adds to it with
 * one line. Read over the socket ({"op":"metrics"}, root only) by `portcullis-agent status
 * --metrics`, which prints the Prometheus text exposition (docs/METRICS.md). */
#ifndef AG_METRICS_H
#define AG_METRICS_H
#include "ag_ops_call.h"
#include "pc_metrics.h"
#include <json-c/json.h>
#include <sys/types.h>

extern const struct pc_metric ag_m_calls;            /* op, outcome */
extern const struct pc_metric ag_m_cp_seconds;       /* op: control-plane call latency */
extern const struct pc_metric ag_m_failmode;         /* error: begin replies that follow failmode */
extern const struct pc_metric ag_m_offline;          /* result: offline decisions */
extern const struct pc_metric ag_m_principals_cache; /* result: hit, miss */

/* One answered socket request: counts it by op and outcome (ok or the reply's error). */
void ag_metrics_call(json_object *req, json_object *reply);
/* A KRL sync succeeded now (the KRL's age starts again from 0). */
void ag_metrics_krl_synced(void);
/* {"op":"metrics"}: {"ok":true,"metrics":TEXT} for root; forbidden for anyone else. */
json_object *ag_metrics_op(struct ag_ctx *x, json_object *req, uid_t peer_uid);
/* `status --metrics`: asks the running agent and prints the text; 0, or 1 with a message. */
int ag_metrics_cmd(const char *config_path);

#endif
