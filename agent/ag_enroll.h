/* SPDX-License-Identifier: BSD-2-Clause */
/* Enrollment: trading a one-time enrollment token for the host token (POST /v1/enroll), and
 * reading the stored host token back (and the control-plane client made with it). */
#ifndef AG_ENROLL_H
#define AG_ENROLL_H
#include "ag_config.h"
#include "pc_http.h"
#include <stddef.h>

struct ag_enroll_args {
    const char *config;   /* agent.conf path */
    const char *url;      /* --url, or NULL to take it from the config */
    const char *pin;      /* --pin, or NULL */
    const char *cafile;   /* --cafile, or NULL */
    const char *token;    /* the enrollment token (a secret) */
    const char *hostname; /* --hostname, or NULL for gethostname() */
    int force;            /* overwrite an existing enrollment */
};

/* The `enroll` subcommand. Prints progress to stdout and problems to stderr; returns 0 or a
 * negative PC_ERR_*. */
int ag_enroll_run(const struct ag_enroll_args *a);

/* Reads the host token file: one line of hex. *out is freed with pc_free_secret_str.
 * PC_ERR_NOTFOUND when the file does not exist; err says what is wrong otherwise. */
int ag_enroll_read_token(const char *path, char **out, char *err, size_t errsz);

/* A pc_http handle for the control plane with the host token (for enroll-free commands and the
 * daemon's background work). */
int ag_enroll_http(const struct ag_config *c, pc_http **h, char *err, size_t errsz);

#endif
