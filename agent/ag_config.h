/* SPDX-License-Identifier: BSD-2-Clause */
/* agent.conf: the host agent's settings (see portcullis-agent.conf(5)).
 * Parsed strictly with pc_config: unknown keys, bad values and conflicting trust settings are
 * errors naming FILE:LINE. */
#ifndef AG_CONFIG_H
#define AG_CONFIG_H
#include "pc_log.h"
#include <stddef.h>
#include <sys/types.h>

#define AG_DEFAULT_CONFIG PC_SYSCONFDIR "/agent.conf"
#define AG_DEFAULT_TOKEN_FILE PC_SYSCONFDIR "/host.token"
#define AG_DEFAULT_HOST_KEY "/etc/ssh/ssh_host_ed25519_key.pub"
#define AG_DEFAULT_SSH_DIR "/etc/ssh/portcullis"
#define AG_DEFAULT_RELOAD "systemctl reload ssh || systemctl reload sshd"
#define AG_MAX_HOST_PRINCIPALS 32
#define AG_MAX_URLS 8 /* urls = in agent.conf: instances of one control plane */

struct ag_config {
    char *path; /* the file read (or that would have been read) */
    char *url;  /* the first of urls (enroll, KRL sync, renewal, logs), NULL if unset */
    char *urls[AG_MAX_URLS]; /* control-plane instances (one TLS key: one pin), n_urls */
    unsigned n_urls;
    char *pin;    /* sha256//BASE64, NULL if unset */
    char *cafile; /* PEM file, NULL if unset; exactly one of pin / cafile */
    char *host_token_file;
    char *socket;
    char *socket_group; /* NULL → root */
    gid_t socket_gid;   /* resolved from socket_group (0 if unset) */
    long timeout_ms;    /* total per control-plane call */
    long connect_timeout_ms;
    unsigned max_connections; /* pool size to the control plane */
    unsigned max_push_waits;  /* push_wait long-polls in flight at once (<= max_connections);
                                 ag_config_load sets the default, half of max_connections */
    unsigned max_clients;     /* concurrent PAM clients */
    enum pc_log_level log_level;
    /* certificate authority (host certificate, user CA, KRL, principals) */
    char *host_key; /* public host key file; NULL = "none" (no host certificate) */
    char *host_principals[AG_MAX_HOST_PRINCIPALS]; /* extra names/addresses, NULL-terminated */
    unsigned n_host_principals;
    char *ssh_dir;         /* user_ca.pub, host-cert.pub, host_ca.pub, revoked.krl */
    long krl_interval_ms;  /* KRL + user CA sync period */
    char *reload_command;  /* /bin/sh -c; NULL = never reload */
    char *principals_user; /* may ask op principals besides root; NULL = root only */
    uid_t principals_uid;
    long principals_stale_ms; /* a cached allow is used this long when the CP is unreachable */
    /* issue 13: offline decisions refuse when the KRL is older than this */
    long offline_krl_max_age_ms;
};

/* Sets the defaults. Call before ag_config_load; ag_config_free releases everything. */
int ag_config_init(struct ag_config *c);
/* Parses path. With missing_ok a file that does not exist leaves the defaults (for enroll). */
int ag_config_load(struct ag_config *c, const char *path, int missing_ok, char *err, size_t errsz);
/* The settings `run` and `status` need: url, and pin or cafile. */
int ag_config_require_server(const struct ag_config *c, char *err, size_t errsz);
void ag_config_free(struct ag_config *c);

/* For `run` when path does not load (see portcullis-agent(8), "invalid configuration"): on c,
 * fresh from ag_config_init, sets path and, from the file's lines that are valid on their own
 * (the first valid one of each), socket and socket_group. Returns AG_SALVAGED_* bits. */
#define AG_SALVAGED_SOCKET 1
#define AG_SALVAGED_GROUP 2
int ag_config_salvage(struct ag_config *c, const char *path);
/* "FILE:LINE" (or "FILE") of an error message of ag_config_load / ag_config_require_server for
 * path, scrubbed, into out: what may be told to clients. */
void ag_config_error_where(const char *path, const char *err, char *out, size_t outsz);
/* Makes a message safe to log and to show: control characters, double quotes and backslashes
 * become '?', and a run of 32 or more hex digits (a token pasted into the wrong place) becomes
 * "[redacted]". ag_config_load applies it to its errors. */
void ag_config_scrub(char *s);

/* Checks the forms of values given on the command line (same rules as the file). */
int ag_config_check_url(const char *url, char *err, size_t errsz);
int ag_config_check_pin(const char *pin, char *err, size_t errsz);

/* Appends `url = …` and `pin = …`/`cafile = …` (each only when given, i.e. non-NULL) to the
 * config file at path, keeping every existing line, its mode and owner; creates the file (0644)
 * if missing. Atomic (temp file + rename). */
int ag_config_append_server(const char *path, const char *url, const char *pin, const char *cafile,
                            char *err, size_t errsz);

#endif
