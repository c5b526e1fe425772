/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "cp_settings.h"
#include "cp_metrics.h"
#include "pc_config.h"
#include "pc_err.h"
#include "pc_log.h"
#include "pc_mem.h"
#include "pc_webpush.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void cp_settings_usage(FILE *f)
{
    fprintf(
        f,
        "Usage: portcullisd --data-dir DIR --listen ADDR:PORT [options]\n"
        "       portcullisd --data-dir DIR --print-pin\n"
        "       portcullisd --data-dir DIR --backup FILE [--force]\n"
        "       portcullisd --data-dir DIR [--store URL | --store-file FILE] --migrate-only\n"
        "\n"
        "The Portcullis control plane: users, TOTP, push approvals, hosts, the SSH certificate\n"
        "authority, policy and audit over HTTPS.\n"
        "Runs in the foreground and logs to stderr.\n"
        "\n"
        "  --data-dir DIR            state directory (created 0700): database, TLS key, secrets key,\n"
        "                            CA keys, admin token (default " PC_LOCALSTATEDIR ")\n"
        "  --listen ADDR:PORT        numeric address to serve HTTPS on, e.g. 127.0.0.1:8443 or [::1]:8443\n"
        "  --print-pin               print the TLS public-key pin (sha256//BASE64) and exit\n"
        "  --backup FILE             copy the database (consistent, also while a daemon runs) to\n"
        "                            FILE (0600) and exit; FILE must not exist unless --force\n"
        "  --force                   with --backup: replace an existing FILE\n"
        "  --store URL               keep the store in PostgreSQL (postgresql://… or postgres://…)\n"
        "                            instead of DIR/portcullis.db; the URL may carry a password:\n"
        "                            prefer --store-file, argv is visible to every local user\n"
        "  --store-file FILE         the --store URL on FILE's first line (FILE must be a regular\n"
        "                            file, not accessible by group or others)\n"
        "  --migrate-only            migrate the store to the newest schema, print what was done\n"
        "                            and exit (before a rolling upgrade); starts no listener\n"
        "  --totp-window N           accept codes N steps of 30 s either side of now (0-10, default 1)\n"
        "  --push-ttl DURATION       how long a push waits for approval (10s-10m, default 60s)\n"
        "  --tx-ttl DURATION         how long a login transaction stays open (30s-30m, default 5m)\n"
        "  --lockout-threshold N     failed codes from one host before the person is locked on\n"
        "                            that host (1-100, default 5)\n"
        "  --lockout-fleet-threshold N  failed codes, counting at most --lockout-threshold per\n"
        "                            host, before the person is locked on every host (2-1000,\n"
        "                            more than --lockout-threshold; default 20)\n"
        "  --lockout-base DURATION   first lock; doubles with each further failure (1s-1h, default 30s)\n"
        "  --lockout-max DURATION    longest lock (1s-1d, default 1h)\n"
        "  --auth-rate N             auth/begin and auth/totp requests a host may make per minute\n"
        "                            (bursts up to N; 1-100000, default 300)\n"
        "  --exempt-group GROUP      members of GROUP are not asked for a second factor: the PAM\n"
        "                            module answers PAM_IGNORE for them (default: nobody)\n"
        "  --ca-key-type TYPE        type of the CA keys made on first start: ed25519 (default),\n"
        "                            ecdsa (P-256) or rsa (3072 bits, signs with rsa-sha2-512)\n"
        "  --host-cert-ttl DURATION  validity of host certificates (1h-365d, default 30d)\n"
        "  --public-url URL          https://HOST[:PORT] under which hosts reach this server: filled\n"
        "                            into /v1/setup.sh and reported by /v1/info (default: the Host\n"
        "                            header of each setup.sh request)\n"
        "  --webhook-url URL         POST a JSON notice here when a push is created (http or https)\n"
        "                            and at each step of an access request\n"
        "  --webhook-format FORMAT   json (default: the event object) or slack ({\"text\": …},\n"
        "                            for a Slack incoming webhook)\n"
        "  --webpush-contact URI     mailto:ADDRESS or https://URL that push services may use to\n"
        "                            reach the operator (the VAPID \"sub\" of each Web Push)\n"
        "  --retention DURATION      delete login transactions, pushes, logins and sessions this\n"
        "                            long after they expired (1h-3650d, default 30d); audit rows\n"
        "                            are kept\n"
        "  --metrics-allow CIDR      addresses (ADDR/BITS or ADDR; repeatable, up to 32) that may\n"
        "                            read GET /metrics without the admin token\n"
        "  --web-listen ADDR:PORT    also serve the approval web app (/app/) on this address, with\n"
        "                            --web-cert and --web-key (reloaded on SIGHUP); needs --web-origin\n"
        "  --web-origin URL          https://HOST[:PORT] under which phones open the app; HOST is the\n"
        "                            passkeys' relying party ID\n"
        "  --web-cert FILE           PEM certificate chain for --web-listen (the organisation's CA)\n"
        "  --web-key FILE            its PEM private key\n"
        "  --threads N               HTTP worker threads (1-64, default 4)\n"
        "  --max-connections N       concurrent connections, waiting long-polls included (default 4096);\n"
        "                            up to N more TLS 1.3 push long-polls wait parked, outside them\n"
        "  --max-unauthenticated N   connections that have not (yet) presented a valid token, in\n"
        "                            all (default a quarter of --max-connections); the other slots\n"
        "                            stay for hosts, admins and sessions\n"
        "  --max-per-address N       connections without a valid token from one address (an IPv6\n"
        "                            address by its /64; 1-65536, default 64)\n"
        "  --handshake-timeout DURATION  time from accept for the TLS handshake and the first\n"
        "                            request's headers (1s-60s, default 5s)\n"
        "  --unauth-idle-timeout DURATION  idle keep-alive of a connection without a valid token\n"
        "                            (1s-10m, default 10s)\n"
        "  --idle-timeout DURATION   idle keep-alive of a connection that presented a valid token\n"
        "                            (1s-1h, default 60s); waiting long-polls are not idle\n"
        "  --log-level LEVEL         debug, info (default), warning or error\n"
        "  --help, --version\n"
        "\n"
        "Durations are seconds, or a number followed by s, m, h or d.\n");
}

static int parse_listen(const char *v, struct cp_settings *s)
{
    char host[64];
    const char *colon;
    size_t hlen;
    uint64_t port;
    unsigned char buf[16];

    if (v[0] == '[') {
        const char *close = strchr(v, ']');
        if (!close || close[1] != ':')
            return PC_ERR_INVAL;
        hlen = (size_t)(close - v - 1);
        if (hlen >= sizeof host)
            return PC_ERR_INVAL;
        memcpy(host, v + 1, hlen);
        colon = close + 1;
    } else {
        colon = strrchr(v, ':');
        if (!colon)
            return PC_ERR_INVAL;
        hlen = (size_t)(colon - v);
        if (hlen >= sizeof host)
            return PC_ERR_INVAL;
        memcpy(host, v, hlen);
    }
    host[hlen] = '\0';
    if (inet_pton(AF_INET, host, buf) != 1 && inet_pton(AF_INET6, host, buf) != 1)
        return PC_ERR_INVAL;
    if (pc_parse_uint(colon + 1, 1, 65535, &port) != PC_OK)
        return PC_ERR_INVAL;
    memcpy(s->listen_addr, host, hlen + 1);
    s->port = (uint16_t)port;
    return PC_OK;
}

static int set_copy(char *dst, size_t dstsz, const char *v)
{
    if (strlen(v) >= dstsz)
        return PC_ERR_INVAL;
    memcpy(dst, v, strlen(v) + 1);
    return PC_OK;
}

static int parse_log_level(const char *v, int *out)
{
    static const char *names[] = { "debug", "info", "warning", "error" };
    for (int i = 0; i < 4; i++)
        if (strcmp(v, names[i]) == 0) {
            *out = i;
            return PC_OK;
        }
    return PC_ERR_INVAL;
}

static int parse_uint_into(const char *v, uint64_t lo, uint64_t hi, unsigned *out)
{
    uint64_t n;
    int rc = pc_parse_uint(v, lo, hi, &n);
    if (rc == PC_OK)
        *out = (unsigned)n;
    return rc;
}

static int validate_url(const char *v)
{
    if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0)
        return PC_ERR_INVAL;
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return PC_ERR_INVAL;
    return PC_OK;
}

/* https://HOST[:PORT] with nothing after it: it is pasted into a shell script and a command
 * line, so only characters that need no quoting are accepted. */
static int validate_public_url(const char *v)
{
    const char *h = v + 8;

    if (strncmp(v, "https://", 8) != 0 || !*h || strlen(v) >= 256)
        return PC_ERR_INVAL;
    if (strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") !=
        strlen(h))
        return PC_ERR_INVAL;
    return PC_OK;
}

static void set_defaults(struct cp_settings *s)
{
    memset(s, 0, sizeof *s);
    set_copy(s->data_dir, sizeof s->data_dir, PC_LOCALSTATEDIR);
    s->log_level = PC_LOG_INFO;
    s->totp_window = 1;
    s->push_ttl = 60;
    s->tx_ttl = 300;
    s->lockout_threshold = 5;
    s->lockout_base = 30;
    s->lockout_max = 3600;
    s->lockout_fleet_threshold = 20;
    s->auth_rate = 300;
    /* A worker waiting for its store write (group commit, cp_store_write.c) serves none of its
     * other connections meanwhile: the writes that can meet in one commit are at most one per
     * worker. 16 let a burst of logins share a commit; an idle thread costs no memory to speak
     * of (its stack is not touched, its store connection opens on first use). */
    s->threads = 4;
    s->max_connections = 4096;
    s->max_wait = 120;
    s->max_per_address = 64;
    s->handshake_timeout = 5;
    s->unauth_idle_timeout = 10;
    s->idle_timeout = 60;
    set_copy(s->ca_key_type, sizeof s->ca_key_type, "ed25519");
    s->host_cert_ttl = 30 * 86400;
    s->retention = 30 * 86400;
}

/* --web-listen: the same syntax as --listen, into the web fields. */
static int parse_web_listen(const char *v, struct cp_settings *s)
{
    char addr[sizeof s->listen_addr];
    uint16_t port = s->port;
    int rc;

    memcpy(addr, s->listen_addr, sizeof addr);
    rc = parse_listen(v, s);
    if (rc == PC_OK) {
        memcpy(s->web_listen_addr, s->listen_addr, sizeof addr);
        s->web_port = s->port;
    }
    memcpy(s->listen_addr, addr, sizeof addr);
    s->port = port;
    return rc;
}

/* --web-origin https://HOST[:PORT]: a DNS name, not an IP address (WebAuthn refuses those as
 * RP IDs; "localhost" is allowed), lower case, nothing after the port. */
static int parse_web_origin(const char *v, struct cp_settings *s)
{
    const char *h = v + 8;
    size_t hlen;

    if (validate_public_url(v) != PC_OK || strchr(h, '[') || strchr(h, ']'))
        return PC_ERR_INVAL;
    hlen = strcspn(h, ":");
    if (hlen == 0 || hlen >= sizeof s->web_rp_id || h[0] == '.' || h[0] == '-')
        return PC_ERR_INVAL;
    for (size_t i = 0; i < hlen; i++)
        if (h[i] >= 'A' && h[i] <= 'Z')
            return PC_ERR_INVAL;
    if (strspn(h, "0123456789.") >= hlen) /* an IPv4 address: no RP ID */
        return PC_ERR_INVAL;
    if (h[hlen] == ':') {
        uint64_t port;
        if (pc_parse_uint(h + hlen + 1, 1, 65535, &port) != PC_OK)
            return PC_ERR_INVAL;
    }
    memcpy(s->web_rp_id, h, hlen);
    s->web_rp_id[hlen] = '\0';
    return set_copy(s->web_origin, sizeof s->web_origin, v);
}

static int parse_ca_type(const char *v, struct cp_settings *s)
{
    if (strcmp(v, "ed25519") != 0 && strcmp(v, "ecdsa") != 0 && strcmp(v, "rsa") != 0)
        return PC_ERR_INVAL;
    return set_copy(s->ca_key_type, sizeof s->ca_key_type, v);
}

static int add_metrics_allow(const char *v, struct cp_settings *s)
{
    struct cp_cidr c;

    if (s->n_metrics_allow >= CP_METRICS_ALLOW_MAX || cp_cidr_parse(v, &c) != PC_OK)
        return PC_ERR_INVAL;
    return set_copy(s->metrics_allow[s->n_metrics_allow++], sizeof s->metrics_allow[0], v);
}

static int is_store_url(const char *v)
{
    if (strncmp(v, "postgresql://", 13) != 0 && strncmp(v, "postgres://", 11) != 0)
        return 0;
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return 0;
    return 1;
}

/* --store URL. The value is never echoed: a mistyped URL still holds its password. */
static int set_store(struct cp_settings *s, const char *v, const char *from, char *err,
                     size_t errsz)
{
    if (s->store[0]) {
        snprintf(err, errsz, "--store and --store-file: give one of them, once");
        return PC_ERR_INVAL;
    }
    if (!is_store_url(v)) {
        snprintf(err, errsz,
                 "%s is not a PostgreSQL URL: it must start with postgresql:// or postgres:// "
                 "and hold no spaces or control characters (without --store the store is "
                 "DIR/portcullis.db)",
                 from ? from : "the value of --store");
        return PC_ERR_INVAL;
    }
    if (strlen(v) >= sizeof s->store) {
        snprintf(err, errsz, "%s: the URL is too long (at most %zu bytes)", from ? from : "--store",
                 sizeof s->store - 1);
        return PC_ERR_INVAL;
    }
    memcpy(s->store, v, strlen(v) + 1);
    return PC_OK;
}

/* --store-file FILE: the URL on its first line. FILE must be a regular file that neither group
 * nor others may read or write (it holds a password; whoever could write it would choose the
 * database this server trusts). Trailing spaces and the line end are trimmed. */
static int read_store_file(struct cp_settings *s, const char *path, char *err, size_t errsz)
{
    char buf[sizeof s->store + 2];
    struct stat sb;
    ssize_t n;
    size_t len = 0;
    int fd, rc;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        snprintf(err, errsz, "--store-file %.300s: cannot open: %s", path, strerror(errno));
        return PC_ERR_IO;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        snprintf(err, errsz, "--store-file %.300s: not a regular file", path);
        close(fd);
        return PC_ERR_INVAL;
    }
    if (sb.st_mode & 077) {
        snprintf(err, errsz,
                 "--store-file %.300s: group or others may access it (mode %03o); it holds the "
                 "database password: chmod 600 it",
                 path, (unsigned)(sb.st_mode & 0777));
        close(fd);
        return PC_ERR_INVAL;
    }
    while (len < sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - len)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            snprintf(err, errsz, "--store-file %.300s: cannot read: %s", path, strerror(errno));
            close(fd);
            pc_wipe(buf, sizeof buf);
            return PC_ERR_IO;
        }
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    len = strcspn(buf, "\n");
    buf[len] = '\0';
    while (len && (buf[len - 1] == ' ' || buf[len - 1] == '\t' || buf[len - 1] == '\r'))
        buf[--len] = '\0';
    if (!len) {
        snprintf(err, errsz,
                 "--store-file %.300s: the first line is empty (expected a "
                 "postgresql:// URL)",
                 path);
        rc = PC_ERR_INVAL;
    } else {
        char from[360];
        snprintf(from, sizeof from, "--store-file %.300s: the first line", path);
        rc = set_store(s, buf, from, err, errsz);
    }
    pc_wipe(buf, sizeof buf);
    return rc;
}

int cp_settings_parse(int argc, char **argv, struct cp_settings *s, char *err, size_t errsz)
{
    enum {
        O_DATA = 256,
        O_LISTEN,
        O_PIN,
        O_WINDOW,
        O_PUSHTTL,
        O_TXTTL,
        O_LTHRESH,
        O_LBASE,
        O_LMAX,
        O_HOOK,
        O_HOOKFMT,
        O_EXEMPT,
        O_THREADS,
        O_MAXCONN,
        O_LOG,
        O_HELP,
        O_VERSION,
        O_CATYPE,
        O_HOSTTTL,
        O_PUBURL,
        O_RETENTION,
        O_LFLEET,
        O_AUTHRATE,
        O_METRICS_ALLOW,
        O_BACKUP,
        O_FORCE,
        O_MAXUNAUTH,
        O_PERADDR,
        O_HSTIMEOUT,
        O_UIDLE,
        O_IDLE,
        O_WEBLISTEN,
        O_WEBORIGIN,
        O_WEBCERT,
        O_WEBKEY,
        O_WPCONTACT,
        O_STORE,
        O_STOREFILE,
        O_MIGRATE
    };
    static const struct option opts[] = {
        { "data-dir", required_argument, NULL, O_DATA },
        { "listen", required_argument, NULL, O_LISTEN },
        { "print-pin", no_argument, NULL, O_PIN },
        { "backup", required_argument, NULL, O_BACKUP },
        { "force", no_argument, NULL, O_FORCE },
        { "store", required_argument, NULL, O_STORE },
        { "store-file", required_argument, NULL, O_STOREFILE },
        { "migrate-only", no_argument, NULL, O_MIGRATE },
        { "totp-window", required_argument, NULL, O_WINDOW },
        { "push-ttl", required_argument, NULL, O_PUSHTTL },
        { "tx-ttl", required_argument, NULL, O_TXTTL },
        { "lockout-threshold", required_argument, NULL, O_LTHRESH },
        { "lockout-base", required_argument, NULL, O_LBASE },
        { "lockout-max", required_argument, NULL, O_LMAX },
        { "lockout-fleet-threshold", required_argument, NULL, O_LFLEET },
        { "auth-rate", required_argument, NULL, O_AUTHRATE },
        { "webhook-url", required_argument, NULL, O_HOOK },
        { "webhook-format", required_argument, NULL, O_HOOKFMT },
        { "webpush-contact", required_argument, NULL, O_WPCONTACT },
        { "exempt-group", required_argument, NULL, O_EXEMPT },
        { "ca-key-type", required_argument, NULL, O_CATYPE },
        { "host-cert-ttl", required_argument, NULL, O_HOSTTTL },
        { "public-url", required_argument, NULL, O_PUBURL },
        { "retention", required_argument, NULL, O_RETENTION },
        { "metrics-allow", required_argument, NULL, O_METRICS_ALLOW },
        { "threads", required_argument, NULL, O_THREADS },
        { "max-connections", required_argument, NULL, O_MAXCONN },
        { "max-unauthenticated", required_argument, NULL, O_MAXUNAUTH },
        { "max-per-address", required_argument, NULL, O_PERADDR },
        { "handshake-timeout", required_argument, NULL, O_HSTIMEOUT },
        { "unauth-idle-timeout", required_argument, NULL, O_UIDLE },
        { "idle-timeout", required_argument, NULL, O_IDLE },
        { "log-level", required_argument, NULL, O_LOG },
        { "web-listen", required_argument, NULL, O_WEBLISTEN },
        { "web-origin", required_argument, NULL, O_WEBORIGIN },
        { "web-cert", required_argument, NULL, O_WEBCERT },
        { "web-key", required_argument, NULL, O_WEBKEY },
        { "help", no_argument, NULL, O_HELP },
        { "version", no_argument, NULL, O_VERSION },
        { NULL, 0, NULL, 0 },
    };
    int c, have_listen = 0, idx = -1;

    set_defaults(s);
    opterr = 0;
    optind = 1;
    while ((idx = -1, c = getopt_long(argc, argv, "", opts, &idx)) != -1) {
        int rc = PC_OK;
        char name[48];
        if (idx >= 0)
            snprintf(name, sizeof name, "--%s", opts[idx].name);
        else
            snprintf(name, sizeof name, "%.40s",
                     optind > 0 && optind <= argc ? argv[optind - 1] : "?");
        switch (c) {
        case O_DATA: rc = set_copy(s->data_dir, sizeof s->data_dir, optarg); break;
        case O_LISTEN:
            rc = parse_listen(optarg, s);
            have_listen = 1;
            break;
        case O_PIN: s->print_pin = 1; break;
        case O_BACKUP:
            rc = *optarg ? set_copy(s->backup_file, sizeof s->backup_file, optarg) : PC_ERR_INVAL;
            break;
        case O_FORCE: s->backup_force = 1; break;
        case O_STORE:
        case O_STOREFILE:
            /* their own messages: the invalid-value one below would echo a password */
            if ((c == O_STORE ? set_store(s, optarg, NULL, err, errsz)
                              : read_store_file(s, optarg, err, errsz)) != PC_OK) {
                pc_wipe(s->store, sizeof s->store);
                return PC_ERR_INVAL;
            }
            break;
        case O_MIGRATE: s->migrate_only = 1; break;
        case O_WINDOW: rc = parse_uint_into(optarg, 0, 10, &s->totp_window); break;
        case O_PUSHTTL: rc = pc_parse_duration(optarg, 1, 600, &s->push_ttl); break;
        case O_TXTTL: rc = pc_parse_duration(optarg, 30, 1800, &s->tx_ttl); break;
        case O_LTHRESH: rc = parse_uint_into(optarg, 1, 100, &s->lockout_threshold); break;
        case O_LBASE: rc = pc_parse_duration(optarg, 1, 3600, &s->lockout_base); break;
        case O_LMAX: rc = pc_parse_duration(optarg, 1, 86400, &s->lockout_max); break;
        case O_LFLEET: rc = parse_uint_into(optarg, 2, 1000, &s->lockout_fleet_threshold); break;
        case O_AUTHRATE: rc = parse_uint_into(optarg, 1, 100000, &s->auth_rate); break;
        case O_HOOK:
            rc = validate_url(optarg);
            if (rc == PC_OK)
                rc = set_copy(s->webhook_url, sizeof s->webhook_url, optarg);
            break;
        case O_HOOKFMT:
            rc = strcmp(optarg, "json") == 0    ? (s->webhook_slack = 0, PC_OK)
                 : strcmp(optarg, "slack") == 0 ? (s->webhook_slack = 1, PC_OK)
                                                : PC_ERR_INVAL;
            break;
        case O_WPCONTACT:
            rc = pc_webpush_contact_valid(optarg)
                     ? set_copy(s->webpush_contact, sizeof s->webpush_contact, optarg)
                     : PC_ERR_INVAL;
            break;
        case O_EXEMPT:
            rc = *optarg ? set_copy(s->exempt_group, sizeof s->exempt_group, optarg) : PC_ERR_INVAL;
            break;
        case O_CATYPE: rc = parse_ca_type(optarg, s); break;
        case O_HOSTTTL: rc = pc_parse_duration(optarg, 3600, 365 * 86400, &s->host_cert_ttl); break;
        case O_PUBURL:
            rc = validate_public_url(optarg);
            if (rc == PC_OK)
                rc = set_copy(s->public_url, sizeof s->public_url, optarg);
            break;
        case O_RETENTION: rc = pc_parse_duration(optarg, 3600, 3650 * 86400, &s->retention); break;
        case O_METRICS_ALLOW: rc = add_metrics_allow(optarg, s); break;
        case O_THREADS: rc = parse_uint_into(optarg, 1, 64, &s->threads); break;
        case O_MAXCONN: rc = parse_uint_into(optarg, 16, 65536, &s->max_connections); break;
        case O_MAXUNAUTH: rc = parse_uint_into(optarg, 1, 65536, &s->max_unauth); break;
        case O_PERADDR: rc = parse_uint_into(optarg, 1, 65536, &s->max_per_address); break;
        case O_HSTIMEOUT: rc = pc_parse_duration(optarg, 1, 60, &s->handshake_timeout); break;
        case O_UIDLE: rc = pc_parse_duration(optarg, 1, 600, &s->unauth_idle_timeout); break;
        case O_IDLE: rc = pc_parse_duration(optarg, 1, 3600, &s->idle_timeout); break;
        case O_LOG: rc = parse_log_level(optarg, &s->log_level); break;
        case O_WEBLISTEN: rc = parse_web_listen(optarg, s); break;
        case O_WEBORIGIN: rc = parse_web_origin(optarg, s); break;
        case O_WEBCERT:
            rc = *optarg ? set_copy(s->web_cert, sizeof s->web_cert, optarg) : PC_ERR_INVAL;
            break;
        case O_WEBKEY:
            rc = *optarg ? set_copy(s->web_key, sizeof s->web_key, optarg) : PC_ERR_INVAL;
            break;
        case O_HELP: cp_settings_usage(stdout); return 1;
        case O_VERSION: printf("portcullisd %s\n", PC_VERSION); return 1;
        case '?':
        default:
            snprintf(err, errsz, "unknown or incomplete option '%s' (see --help)", name);
            return PC_ERR_INVAL;
        }
        if (rc != PC_OK) {
            snprintf(err, errsz, "invalid value '%.200s' for %s (see --help)", optarg ? optarg : "",
                     name);
            return PC_ERR_INVAL;
        }
    }
    if (optind < argc) {
        snprintf(err, errsz, "unexpected argument '%.200s' (see --help)", argv[optind]);
        return PC_ERR_INVAL;
    }
    if (s->backup_force && !s->backup_file[0]) {
        snprintf(err, errsz, "--force is only for --backup FILE (see --help)");
        return PC_ERR_INVAL;
    }
    if (s->store[0] && s->backup_file[0]) {
        snprintf(err, errsz,
                 "--backup copies the SQLite store; a PostgreSQL store is backed up with "
                 "pg_dump (see docs/HA.md)");
        return PC_ERR_INVAL;
    }
    if (s->migrate_only && (s->print_pin || s->backup_file[0])) {
        snprintf(err, errsz, "--migrate-only goes with neither --print-pin nor --backup");
        return PC_ERR_INVAL;
    }
    if (!s->print_pin && !s->backup_file[0] && !s->migrate_only && !have_listen) {
        snprintf(err, errsz, "--listen ADDR:PORT is required (see --help)");
        return PC_ERR_INVAL;
    }
    if (s->max_unauth == 0)
        s->max_unauth = s->max_connections / 4;
    if (s->max_unauth >= s->max_connections) {
        /* at or above it, unauthenticated clients could take every slot from the hosts */
        snprintf(err, errsz, "--max-unauthenticated (%u) must be less than --max-connections (%u)",
                 s->max_unauth, s->max_connections);
        return PC_ERR_INVAL;
    }
    if (s->web_port && (!s->web_origin[0] || !s->web_cert[0] || !s->web_key[0])) {
        snprintf(err, errsz, "--web-listen needs --web-origin, --web-cert and --web-key");
        return PC_ERR_INVAL;
    }
    if (!s->web_port && (s->web_origin[0] || s->web_cert[0] || s->web_key[0])) {
        snprintf(err, errsz, "--web-origin, --web-cert and --web-key need --web-listen");
        return PC_ERR_INVAL;
    }
    if (s->lockout_fleet_threshold <= s->lockout_threshold) {
        /* one host counts at most --lockout-threshold: at or below it, one host alone could
         * lock a person everywhere */
        snprintf(err, errsz,
                 "--lockout-fleet-threshold (%u) must be more than --lockout-threshold"
                 " (%u)",
                 s->lockout_fleet_threshold, s->lockout_threshold);
        return PC_ERR_INVAL;
    }
    return PC_OK;
}
