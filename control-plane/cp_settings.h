/* SPDX-License-Identifier: BSD-2-Clause */
/* portcullisd's settings: defaults, command-line parsing and validation. */
#ifndef CP_SETTINGS_H
#define CP_SETTINGS_H
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#define CP_METRICS_ALLOW_MAX 32

struct cp_settings {
    char data_dir[PATH_MAX];
    char listen_addr[64]; /* numeric IPv4/IPv6 address */
    uint16_t port;
    int print_pin;
    char backup_file[PATH_MAX]; /* --backup FILE: copy the store there and exit ("" = no) */
    int backup_force;           /* --force: --backup may replace an existing FILE */
    /* --store URL / --store-file FILE: a PostgreSQL database (postgresql://… or postgres://…)
     * instead of DATA_DIR/portcullis.db; "" = SQLite. May hold a password: never shown. */
    char store[4096];
    int migrate_only;     /* --migrate-only: migrate the store to the newest schema and exit */
    int log_level;        /* enum pc_log_level */
    unsigned totp_window; /* accepted steps either side of now */
    int64_t push_ttl;     /* seconds a push stays pending */
    int64_t tx_ttl;       /* seconds a login transaction stays open */
    unsigned lockout_threshold;       /* failures before the first lock */
    int64_t lockout_base;             /* first lock, doubled per further failure */
    int64_t lockout_max;              /* cap */
    unsigned lockout_fleet_threshold; /* failures (at most lockout_threshold per host) before a
                                   * person is locked on every host */
    unsigned auth_rate;               /* auth/begin + auth/totp requests per host per minute */
    char webhook_url[1024];           /* "" = none */
    int webhook_slack;                /* --webhook-format slack */
    unsigned threads;                 /* HTTP worker threads */
    unsigned max_connections;
    int64_t max_wait;      /* longest long-poll a client may ask for */
    char exempt_group[65]; /* members are not subject to 2FA ("" = nobody) */
    char ca_key_type[16];  /* "ed25519" (default), "ecdsa" or "rsa": for new CA keys */
    int64_t host_cert_ttl; /* validity of host certificates */
    char public_url[256];  /* https://HOST[:PORT] clients use; "" = from the Host header */
    int64_t retention;     /* finished transactions, pushes, logins, sessions kept this long */
    /* --metrics-allow: addresses that may read /metrics without a token (CIDR text) */
    char metrics_allow[CP_METRICS_ALLOW_MAX][64];
    unsigned n_metrics_allow;

    /* connection admission (cp_admission.h) */
    unsigned max_unauth;         /* unproven connections in all (0 = max_connections / 4) */
    unsigned max_per_address;    /* unproven connections from one address (IPv6: its /64) */
    int64_t handshake_timeout;   /* accept → TLS handshake done and first request headers in */
    int64_t unauth_idle_timeout; /* idle limit before a connection presented a credential */
    int64_t idle_timeout;        /* idle limit after */
    /* The approval web app (cp_web.h): a second listener with the organisation's certificate.
     * web_port 0 = no web app. */
    char web_listen_addr[64];
    uint16_t web_port;
    char web_origin[256]; /* https://HOST[:PORT], exactly as browsers send Origin */
    char web_rp_id[256];  /* the origin's host name: the WebAuthn relying party ID */
    char web_cert[PATH_MAX], web_key[PATH_MAX];

    /* --webpush-contact: the VAPID sub, mailto:… or https://… ("" = none) */
    char webpush_contact[257];
};

/* Returns 0, 1 when --help/--version was printed (exit 0), or negative with err set. */
int cp_settings_parse(int argc, char **argv, struct cp_settings *s, char *err, size_t errsz);
void cp_settings_usage(FILE *f);

#endif
