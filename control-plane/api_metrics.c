/* SPDX-License-Identifier: BSD-2-Clause */
/* GET /metrics: the Prometheus exposition, for the admin token or an address in
 * --metrics-allow; anyone else is answered as the API answers (401 without a valid
 * credential, 403 with a credential of another kind). */
#include "config.h"
#include "api.h"
#include "cp_metrics.h"
#include "cp_refusals.h"
#include "pc_err.h"
#include <stdio.h>
#include <string.h>

static int address_allowed(const char *source)
{
    const struct cp_settings *s = cp_rt.settings;
    struct cp_cidr c;

    for (unsigned i = 0; i < s->n_metrics_allow; i++)
        if (cp_cidr_parse(s->metrics_allow[i], &c) == PC_OK && cp_cidr_contains(&c, source))
            return 1;
    return 0;
}

void api_metrics(struct cp_call *c, struct cp_resp *r)
{
    unsigned char *text = NULL;
    size_t len = 0;
    const char *by = "address";

    if (strcmp(c->method, "GET") != 0) {
        cp_resp_error(r, 405, "method_not_allowed", "method not allowed on this endpoint");
        return;
    }
    if (!address_allowed(c->source)) {
        cp_identify(MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION),
                    &c->id);
        if (c->id.kind == CP_CALLER_NONE || c->id.kind == CP_CALLER_BAD) {
            /* Counted and throttled as the API's refusals: no token guessing here either. */
            if (cp_refusal_throttled(c->source)) {
                pc_metric_inc(&cp_m_refused_unauth, "throttled", NULL, NULL);
                cp_resp_error(r, 429, "too_many_requests",
                              "too many refused requests from this address: try again later");
                snprintf(r->header_name, sizeof r->header_name, "Retry-After");
                snprintf(r->header_value, sizeof r->header_value, "%d", CP_REFUSAL_WINDOW);
                return;
            }
            cp_refusal_count(c->source);
            pc_metric_inc(&cp_m_refused_unauth,
                          c->id.kind == CP_CALLER_NONE ? "no_token" : "bad_token", NULL, NULL);
            cp_resp_error(r, 401, "unauthorized",
                          "the admin token or an address in --metrics-allow is required");
            return;
        }
        if (c->id.kind != CP_CALLER_ADMIN) {
            cp_resp_error(r, 403, "forbidden", "/metrics needs the admin token");
            return;
        }
        by = "admin";
    }
    pc_metric_inc(&cp_m_metrics_scrapes, by, NULL, NULL);
    if (cp_metrics_text(&text, &len) != PC_OK) {
        cp_resp_error(r, 500, "internal", "cannot render the metrics");
        return;
    }
    cp_resp_raw(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}
