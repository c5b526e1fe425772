/* SPDX-License-Identifier: BSD-2-Clause */
/* Counters and histograms (see pc_metrics.h). */
#include "config.h"
#include "pc_metrics.h"
#include "pc_err.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define MAX_SERIES 512

/* Upper bounds in milliseconds: 5 ms to 30 s, then +Inf. */
static const int64_t bounds_ms[PC_METRIC_BUCKETS] = { 5,   10,   25,   50,   100,   250,
                                                      500, 1000, 2500, 5000, 10000, 30000 };

struct series {
    const struct pc_metric *m;
    char values[PC_METRIC_MAX_LABELS][PC_METRIC_VALUE_MAX];
    atomic_uint_fast64_t count; /* counters: the value; histograms: observations */
    atomic_uint_fast64_t sum_ms;
    atomic_uint_fast64_t bucket[PC_METRIC_BUCKETS]; /* not cumulative; summed when shown */
};

static struct series table[MAX_SERIES];
static atomic_uint nseries;
static pthread_mutex_t grow_lock = PTHREAD_MUTEX_INITIALIZER;

static void clean_value(const char *v, char out[PC_METRIC_VALUE_MAX])
{
    size_t i = 0;

    for (; v && v[i] && i < PC_METRIC_VALUE_MAX - 1; i++) {
        char ch = v[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '_' || ch == '.' || ch == ':' || ch == '-';
        out[i] = ok ? ch : '_';
    }
    out[i] = '\0';
}

static int same(const struct series *s, const struct pc_metric *m,
                char v[PC_METRIC_MAX_LABELS][PC_METRIC_VALUE_MAX])
{
    if (s->m != m)
        return 0;
    for (int i = 0; i < PC_METRIC_MAX_LABELS; i++)
        if (m->labels[i] && strcmp(s->values[i], v[i]) != 0)
            return 0;
    return 1;
}

static struct series *scan(const struct pc_metric *m,
                           char v[PC_METRIC_MAX_LABELS][PC_METRIC_VALUE_MAX], unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (same(&table[i], m, v))
            return &table[i];
    return NULL;
}

/* The series of m with these values, created if new; NULL when the table is full. */
static struct series *find(const struct pc_metric *m, const char *v0, const char *v1,
                           const char *v2, int create)
{
    char v[PC_METRIC_MAX_LABELS][PC_METRIC_VALUE_MAX];
    const char *in[PC_METRIC_MAX_LABELS] = { v0, v1, v2 };
    struct series *s;
    unsigned n;

    for (int i = 0; i < PC_METRIC_MAX_LABELS; i++)
        clean_value(m->labels[i] ? in[i] : NULL, v[i]);
    if ((s = scan(m, v, atomic_load_explicit(&nseries, memory_order_acquire))) || !create)
        return s;
    pthread_mutex_lock(&grow_lock);
    n = atomic_load_explicit(&nseries, memory_order_relaxed);
    if (!(s = scan(m, v, n)) && n < MAX_SERIES) {
        s = &table[n];
        s->m = m;
        memcpy(s->values, v, sizeof v);
        /* published only when complete: readers scan up to nseries */
        atomic_store_explicit(&nseries, n + 1, memory_order_release);
    }
    pthread_mutex_unlock(&grow_lock);
    return s;
}

void pc_metric_inc(const struct pc_metric *m, const char *v0, const char *v1, const char *v2)
{
    struct series *s = find(m, v0, v1, v2, 1);
    if (s)
        atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
}

void pc_metric_observe_ms(const struct pc_metric *m, const char *v0, int64_t ms)
{
    struct series *s = find(m, v0, NULL, NULL, 1);
    int b = 0;

    if (!s)
        return;
    if (ms < 0)
        ms = 0;
    while (b < PC_METRIC_BUCKETS && ms > bounds_ms[b])
        b++;
    if (b < PC_METRIC_BUCKETS)
        atomic_fetch_add_explicit(&s->bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->sum_ms, (uint64_t)ms, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
}

uint64_t pc_metric_value(const struct pc_metric *m, const char *v0, const char *v1, const char *v2)
{
    struct series *s = find(m, v0, v1, v2, 0);
    return s ? atomic_load_explicit(&s->count, memory_order_relaxed) : 0;
}

/* 'a="x",b="y"' for s's labels, plus extra (e.g. le="0.5") if given. */
static void label_text(const struct series *s, const char *extra, char *out, size_t n)
{
    size_t off = 0;

    out[0] = '\0';
    for (int i = 0; i < PC_METRIC_MAX_LABELS && s->m->labels[i]; i++) {
        int w = snprintf(out + off, n - off, "%s%s=\"%s\"", off ? "," : "", s->m->labels[i],
                         s->values[i]);
        if (w < 0 || (size_t)w >= n - off)
            return;
        off += (size_t)w;
    }
    if (extra)
        snprintf(out + off, n - off, "%s%s", off ? "," : "", extra);
}

static void render_histogram(struct pc_sshbuf *out, const struct series *s)
{
    char labels[256], le[32];
    uint64_t cum = 0, count = atomic_load_explicit(&s->count, memory_order_relaxed);

    for (int b = 0; b < PC_METRIC_BUCKETS; b++) {
        cum += atomic_load_explicit(&s->bucket[b], memory_order_relaxed);
        snprintf(le, sizeof le, "le=\"%g\"", (double)bounds_ms[b] / 1000.0);
        label_text(s, le, labels, sizeof labels);
        pc_sshbuf_putf(out, "%s_bucket{%s} %llu\n", s->m->name, labels, (unsigned long long)cum);
    }
    /* +Inf is the count: observations made while this was being read land in both or neither */
    if (count < cum)
        count = cum;
    label_text(s, "le=\"+Inf\"", labels, sizeof labels);
    pc_sshbuf_putf(out, "%s_bucket{%s} %llu\n", s->m->name, labels, (unsigned long long)count);
    label_text(s, NULL, labels, sizeof labels);
    pc_sshbuf_putf(out, "%s_sum%s%s%s %.3f\n", s->m->name, labels[0] ? "{" : "", labels,
                   labels[0] ? "}" : "",
                   (double)atomic_load_explicit(&s->sum_ms, memory_order_relaxed) / 1000.0);
    pc_sshbuf_putf(out, "%s_count%s%s%s %llu\n", s->m->name, labels[0] ? "{" : "", labels,
                   labels[0] ? "}" : "", (unsigned long long)count);
}

int pc_metrics_render(struct pc_sshbuf *out, const struct pc_metric *const *all, size_t n)
{
    unsigned ns = atomic_load_explicit(&nseries, memory_order_acquire);
    char labels[256];

    for (size_t k = 0; k < n; k++) {
        const struct pc_metric *m = all[k];
        int shown = 0;

        pc_sshbuf_putf(out, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name,
                       m->kind == PC_METRIC_HISTOGRAM ? "histogram" : "counter");
        for (unsigned i = 0; i < ns; i++) {
            const struct series *s = &table[i];
            if (s->m != m)
                continue;
            shown = 1;
            if (m->kind == PC_METRIC_HISTOGRAM) {
                render_histogram(out, s);
                continue;
            }
            label_text(s, NULL, labels, sizeof labels);
            pc_sshbuf_putf(out, "%s%s%s%s %llu\n", m->name, labels[0] ? "{" : "", labels,
                           labels[0] ? "}" : "",
                           (unsigned long long)atomic_load_explicit(&s->count,
                                                                    memory_order_relaxed));
        }
        if (!shown && !m->labels[0] && m->kind == PC_METRIC_COUNTER)
            pc_sshbuf_putf(out, "%s 0\n", m->name);
    }
    return pc_sshbuf_error(out);
}

int pc_metrics_gauge(struct pc_sshbuf *out, const char *name, const char *help, const char *labels,
                     double value)
{
    pc_sshbuf_putf(out, "# HELP %s %s\n# TYPE %s gauge\n%s%s%s%s %.17g\n", name, help, name, name,
                   labels && *labels ? "{" : "", labels ? labels : "", labels && *labels ? "}" : "",
                   value);
    return pc_sshbuf_error(out);
}
