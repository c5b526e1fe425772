/* SPDX-License-Identifier: BSD-2-Clause */
/* Process-wide counters and histograms in the Prometheus text exposition format 0.0.4.
 *
 * A metric is a static descriptor; its series (one per combination of label values) are
 * created on first use in a fixed table and updated with atomics, so an increment on the hot
 * path is a short scan and one atomic add, and never takes a lock once the series exists.
 * Counters only go up. Label values are cut to PC_METRIC_VALUE_MAX - 1 bytes and every byte
 * outside [A-Za-z0-9_.:-] becomes '_', so a value never needs escaping.
 *
 *   static const struct pc_metric calls = { "app_calls_total", "Calls.", PC_METRIC_COUNTER,
 *                                           { "op", "outcome" } };
 *   pc_metric_inc(&calls, "begin", "ok", NULL);
 *   pc_metrics_render(&buf, all, n);   // HELP, TYPE and every series of each metric in all */
#ifndef PC_METRICS_H
#define PC_METRICS_H
#include "pc_sshbuf.h"
#include <stddef.h>
#include <stdint.h>

#define PC_METRIC_MAX_LABELS 3
#define PC_METRIC_VALUE_MAX 48
#define PC_METRIC_BUCKETS 12 /* histogram upper bounds below; +Inf is added */

enum pc_metric_kind { PC_METRIC_COUNTER, PC_METRIC_HISTOGRAM };

struct pc_metric {
    const char *name; /* counters end in _total, histograms in _seconds */
    const char *help;
    enum pc_metric_kind kind;
    const char *labels[PC_METRIC_MAX_LABELS]; /* label names; unused ones NULL */
};

/* Adds 1 to the series of m with these label values (NULL for labels m does not have). */
void pc_metric_inc(const struct pc_metric *m, const char *v0, const char *v1, const char *v2);
/* Records one observation of ms milliseconds in histogram m (one label at most). */
void pc_metric_observe_ms(const struct pc_metric *m, const char *v0, int64_t ms);
/* The current value of a counter series (0 if it does not exist): for tests and gauges. */
uint64_t pc_metric_value(const struct pc_metric *m, const char *v0, const char *v1, const char *v2);
/* Appends HELP, TYPE and the series of each metric; an unlabelled counter that never moved
 * is shown as 0. Returns 0 or the buffer's error. */
int pc_metrics_render(struct pc_sshbuf *out, const struct pc_metric *const *all, size_t n);
/* Appends one gauge (labels: "" or 'a="x"', already safe). */
int pc_metrics_gauge(struct pc_sshbuf *out, const char *name, const char *help, const char *labels,
                     double value);

#endif
