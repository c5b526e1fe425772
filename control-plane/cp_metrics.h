/* SPDX-License-Identifier: BSD-2-Clause */
/* portcullisd's metrics (GET /metrics): every counter is defined here, and each decision
 * point adds to it with one line. See docs/METRICS.md for names and meanings. */
#ifndef CP_METRICS_H
#define CP_METRICS_H
#include "pc_metrics.h"
#include <stdint.h>

extern const struct pc_metric cp_m_decisions;       /* stage, result, reason */
extern const struct pc_metric cp_m_verify_seconds;  /* stage: begin, totp */
extern const struct pc_metric cp_m_push_decisions;  /* method, result */
extern const struct pc_metric cp_m_certs_issued;    /* type: user, host */
extern const struct pc_metric cp_m_store_errors;    /* op: begin, commit, prepare, step */
extern const struct pc_metric cp_m_store_busy;      /* SQLite busy retries */
extern const struct pc_metric cp_m_tls_connections; /* connections accepted (TLS) */
extern const struct pc_metric cp_m_refused_unauth;  /* reason: no_token, bad_token, throttled */
extern const struct pc_metric cp_m_metrics_scrapes; /* by: address, admin */

/* A parsed --metrics-allow entry. */
struct cp_cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    unsigned bits;
};
/* "ADDR/BITS" or a bare address (all bits); 0 or PC_ERR_INVAL. Host bits must be zero. */
int cp_cidr_parse(const char *text, struct cp_cidr *out);
/* 1 if the numeric address text (IPv4, IPv6 or IPv4-mapped IPv6) is inside c. */
int cp_cidr_contains(const struct cp_cidr *c, const char *address);

/* sqlite3_busy_handler: waits like sqlite3_busy_timeout(10 s), counting each retry. */
int cp_metrics_busy_handler(void *arg, int count);
/* The whole exposition, gauges read from the store included; malloc'ed text in *out. */
int cp_metrics_text(unsigned char **out, size_t *len);

#endif
