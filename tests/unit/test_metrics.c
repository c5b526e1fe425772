/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests for lib/pc_metrics: counters counted exactly from many threads at once, label
 * values that could break the text format made safe, histograms cumulative with +Inf equal to
 * the count, unlabelled counters shown as 0 before their first increment. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pc_metrics.h"

static const struct pc_metric plain = {
    "t_plain_total", "A counter.", PC_METRIC_COUNTER, { NULL }
};
static const struct pc_metric calls = {
    "t_calls_total", "Calls.", PC_METRIC_COUNTER, { "op", "outcome" }
};
static const struct pc_metric lat = {
    "t_latency_seconds", "Latency.", PC_METRIC_HISTOGRAM, { "op" }
};

static char *render(const struct pc_metric *m)
{
    const struct pc_metric *all[] = { m };
    struct pc_sshbuf b;
    unsigned char *text = NULL;
    size_t len = 0;

    pc_sshbuf_init(&b, 0);
    assert_int_equal(pc_metrics_render(&b, all, 1), 0);
    assert_int_equal(pc_sshbuf_steal(&b, &text, &len), 0);
    pc_sshbuf_free(&b);
    return (char *)text;
}

static void test_unlabelled_counter_starts_at_zero(void **state)
{
    char *t;
    (void)state;
    t = render(&plain);
    assert_string_equal(t, "# HELP t_plain_total A counter.\n# TYPE t_plain_total counter\n"
                           "t_plain_total 0\n");
    free(t);
    pc_metric_inc(&plain, NULL, NULL, NULL);
    pc_metric_inc(&plain, NULL, NULL, NULL);
    t = render(&plain);
    assert_non_null(strstr(t, "\nt_plain_total 2\n"));
    free(t);
}

#define THREADS 8
#define PER_THREAD 20000

static void *hammer(void *arg)
{
    const char *op = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        pc_metric_inc(&calls, op, (i & 1) ? "ok" : "deny", NULL);
        pc_metric_observe_ms(&lat, op, i % 40);
    }
    return NULL;
}

static void test_threads_count_exactly(void **state)
{
    static const char *ops[] = { "a", "b" };
    pthread_t t[THREADS];
    char *text;
    (void)state;

    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, (void *)ops[i % 2]), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(pc_metric_value(&calls, "a", "ok", NULL), THREADS / 2 * PER_THREAD / 2);
    assert_int_equal(pc_metric_value(&calls, "b", "deny", NULL), THREADS / 2 * PER_THREAD / 2);
    text = render(&calls);
    assert_non_null(strstr(text, "t_calls_total{op=\"a\",outcome=\"ok\"} 40000\n"));
    /* one series per combination, never a duplicate created by a race */
    assert_null(strstr(strstr(text, "op=\"a\",outcome=\"ok\"") + 1, "op=\"a\",outcome=\"ok\""));
    free(text);
    text = render(&lat);
    /* 0..39 ms, evenly: 0..5 ms (6 of 40) are at most 5 ms */
    assert_non_null(strstr(text, "t_latency_seconds_bucket{op=\"a\",le=\"0.005\"} 12000\n"));
    assert_non_null(strstr(text, "t_latency_seconds_bucket{op=\"a\",le=\"+Inf\"} 80000\n"));
    assert_non_null(strstr(text, "t_latency_seconds_count{op=\"a\"} 80000\n"));
    free(text);
}

static void test_hostile_label_values(void **state)
{
    char *t;
    (void)state;
    pc_metric_inc(&calls, "x\"} 9\nevil_total 1\n#", "a\\b", NULL);
    t = render(&calls);
    assert_null(strstr(t, "evil_total 1\n"));
    assert_non_null(strstr(t, "{op=\"x___9_evil_total_1__\",outcome=\"a_b\"} 1\n"));
    free(t);
    /* cut, never overrun */
    char big[200];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    pc_metric_inc(&calls, big, "ok", NULL);
    assert_int_equal(pc_metric_value(&calls, big, "ok", NULL), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unlabelled_counter_starts_at_zero),
        cmocka_unit_test(test_threads_count_exactly),
        cmocka_unit_test(test_hostile_label_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
