/* SPDX-License-Identifier: BSD-2-Clause */
/* portcullisd's metrics (see cp_metrics.h). */
#include "config.h"
#include "cp_metrics.h"
#include "cp_sql.h"
#include "cp_store.h"
#include "cp_waiters.h"
#include "pc_err.h"
#include "pc_time.h"
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const struct pc_metric cp_m_decisions = {
    "portcullis_decisions_total",
    "Login decisions by stage (begin, totp, push), result and reason.",
    PC_METRIC_COUNTER,
    { "stage", "result", "reason" }
};
const struct pc_metric cp_m_verify_seconds = {
    "portcullis_verification_seconds",
    "Time to decide auth/begin and auth/totp requests, store transaction included.",
    PC_METRIC_HISTOGRAM,
    { "stage" }
};
const struct pc_metric cp_m_push_decisions = {
    "portcullis_push_decisions_total",
    "Push approvals decided, by method (admin, session, expiry) and result.",
    PC_METRIC_COUNTER,
    { "method", "result" }
};
const struct pc_metric cp_m_certs_issued = { "portcullis_certificates_issued_total",
                                             "Certificates signed, by type (user, host).",
                                             PC_METRIC_COUNTER,
                                             { "type" } };
const struct pc_metric cp_m_store_errors = { "portcullis_store_errors_total",
                                             "Store (SQLite) operations that failed, by op.",
                                             PC_METRIC_COUNTER,
                                             { "op" } };
const struct pc_metric cp_m_store_busy = { "portcullis_store_busy_retries_total",
                                           "Times a store operation waited for a lock.",
                                           PC_METRIC_COUNTER,
                                           { NULL } };
const struct pc_metric cp_m_tls_connections = {
    "portcullis_tls_connections_total",
    "Connections accepted for TLS (each starts a handshake).",
    PC_METRIC_COUNTER,
    { NULL }
};
const struct pc_metric cp_m_refused_unauth = {
    "portcullis_refused_unauthenticated_total",
    "Requests refused for want of a valid credential (no_token, bad_token) or throttled"
    " (throttled).",
    PC_METRIC_COUNTER,
    { "reason" }
};
const struct pc_metric cp_m_metrics_scrapes = {
    "portcullis_metrics_scrapes_total",
    "Answered GET /metrics, by caller (address, admin).",
    PC_METRIC_COUNTER,
    { "by" }
};

static const struct pc_metric *const all[] = {
    &cp_m_decisions,       &cp_m_verify_seconds, &cp_m_push_decisions,
    &cp_m_certs_issued,    &cp_m_store_errors,   &cp_m_store_busy,
    &cp_m_tls_connections, &cp_m_refused_unauth, &cp_m_metrics_scrapes,
};

int cp_cidr_parse(const char *text, struct cp_cidr *out)
{
    char addr[64];
    const char *slash = strchr(text, '/');
    size_t alen = slash ? (size_t)(slash - text) : strlen(text);
    unsigned maxbits;
    uint64_t bits;

    memset(out, 0, sizeof *out);
    if (alen == 0 || alen >= sizeof addr)
        return PC_ERR_INVAL;
    memcpy(addr, text, alen);
    addr[alen] = '\0';
    if (inet_pton(AF_INET, addr, out->addr) == 1) {
        out->family = AF_INET;
        maxbits = 32;
    } else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
        out->family = AF_INET6;
        maxbits = 128;
    } else {
        return PC_ERR_INVAL;
    }
    bits = maxbits;
    if (slash) {
        char *end = NULL;
        if (!slash[1] || slash[1] < '0' || slash[1] > '9')
            return PC_ERR_INVAL;
        bits = strtoull(slash + 1, &end, 10);
        if (*end || bits > maxbits)
            return PC_ERR_INVAL;
    }
    out->bits = (unsigned)bits;
    for (unsigned i = out->bits; i < maxbits; i++)
        if (out->addr[i / 8] & (0x80u >> (i % 8)))
            return PC_ERR_INVAL; /* 10.0.0.1/8: say 10.0.0.0/8 */
    return PC_OK;
}

int cp_cidr_contains(const struct cp_cidr *c, const char *address)
{
    unsigned char a[16];
    const unsigned char *p = a;
    int family;

    if (inet_pton(AF_INET, address, a) == 1) {
        family = AF_INET;
    } else if (inet_pton(AF_INET6, address, a) == 1) {
        static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
        family = AF_INET6;
        if (c->family == AF_INET && memcmp(a, mapped, sizeof mapped) == 0) {
            family = AF_INET;
            p = a + 12;
        }
    } else {
        return 0;
    }
    if (family != c->family)
        return 0;
    for (unsigned i = 0; i < c->bits; i++)
        if ((p[i / 8] ^ c->addr[i / 8]) & (0x80u >> (i % 8)))
            return 0;
    return 1;
}

int cp_metrics_busy_handler(void *arg, int count)
{
    struct timespec ts = { 0, 10 * 1000 * 1000 };

    (void)arg;
    if (count >= 1000) /* 1000 waits of 10 ms: sqlite3_busy_timeout(db, 10000) */
        return 0;
    pc_metric_inc(&cp_m_store_busy, NULL, NULL, NULL);
    nanosleep(&ts, NULL);
    return 1;
}

/* One integer from the store, or -1. */
static int64_t store_int(const char *sql)
{
    cp_conn *db = cp_db();
    cp_stmt *st = db ? cp_prepare(db, sql) : NULL;
    int64_t v = -1;

    if (!st)
        return -1;
    cp_bind_int64(st, 1, pc_now());
    if (cp_step(st) == CP_ROW)
        v = cp_col_int64(st, 0);
    cp_finalize(st);
    return v;
}

int cp_metrics_text(unsigned char **out, size_t *len)
{
    struct pc_sshbuf b;
    int rc;

    pc_sshbuf_init(&b, 1024 * 1024);
    pc_metrics_render(&b, all, sizeof all / sizeof all[0]);
    pc_metrics_gauge(&b, "portcullis_pushes_pending", "Push approvals waiting for a decision.", "",
                     (double)store_int("SELECT count(*) FROM pushes WHERE state = 'pending'"
                                       " AND expires_at > ?1"));
    pc_metrics_gauge(&b, "portcullis_long_polls_held",
                     "Long-polls (push and login waits) waiting on this instance.", "",
                     (double)cp_waiters_count());
    pc_metrics_gauge(&b, "portcullis_long_polls_parked",
                     "Of those, the ones waiting without their TLS session (TLS 1.3 push polls).",
                     "", (double)cp_waiters_parked_count());
    pc_metrics_gauge(&b, "portcullis_krl_version", "Version of the KRL hosts fetch.", "",
                     (double)store_int("SELECT version + 0 * ?1 FROM krl_state WHERE id = 1"));
    pc_metrics_gauge(&b, "portcullis_build_info", "Always 1; the version is a label.",
                     "version=\"" PC_VERSION "\"", 1);
    if ((rc = pc_sshbuf_error(&b)) == PC_OK)
        rc = pc_sshbuf_steal(&b, out, len);
    pc_sshbuf_free(&b);
    return rc;
}
