/* SPDX-License-Identifier: BSD-2-Clause */
/* Health of this host's enrollment and of the path to the control plane: used by the `status`
 * subcommand and by the socket's {"op":"status"}. */
#ifndef AG_STATUS_H
#define AG_STATUS_H
#include "ag_config.h"
#include <json-c/json.h>
#include <stddef.h>

/* One instance's answer to GET /v1/health. */
struct ag_url_probe {
    int reachable, pin_mismatch;
    const char *error; /* as in ag_probe */
    long latency_ms;   /* when reachable */
    char detail[384];
    char version[64];
};

struct ag_probe {
    int enrolled;            /* host token file present, readable and well-formed */
    int reachable;           /* GET /v1/health answered 200 {"status":"ok"} */
    const char *error;       /* protocol error code when not reachable: tls, timeout,
                                  unreachable, garbage, server, rejected, bad_request */
    int pin_mismatch;        /* the TLS failure was the pin */
    char enroll_detail[256]; /* why not enrolled */
    char detail[512];        /* why not reachable, a sentence */
    char version[64];        /* portcullisd's version when reachable */
    unsigned n_urls;         /* cfg->n_urls, each probed in urls[] */
    struct ag_url_probe urls[AG_MAX_URLS];
};

/* Fills pr; never fails (problems are described in pr). cfg must have url and pin/cafile.
 * Every URL is probed; reachable is set when one answers; error, pin_mismatch and detail
 * describe the first TLS failure if there is one, else the first URL's failure. */
void ag_status_probe(const struct ag_config *cfg, struct ag_probe *pr);
/* The probe as the socket protocol's status reply ("urls": each instance's probe). */
json_object *ag_status_reply(const struct ag_config *cfg, const struct ag_probe *pr);
/* The `status` subcommand: returns 0 when enrolled and reachable, 1 otherwise. */
int ag_status_run(const char *config_path, int json);

#endif
