/* SPDX-License-Identifier: BSD-2-Clause */
/* portcullis-agent: the host agent. Its commands are the table `commands` at the end of this
 * file (name, function, one line of help): the usage, the dispatch and the error for a missing
 * or unknown command all come from it. See portcullis-agent(8). */
#include "config.h"
#include "ag_config.h"
#include "configure/agc.h"
#include "ag_doctor.h"
#include "ag_enroll.h"
#include "ag_maint.h"
#include "ag_principals.h"
#include "ag_ops.h"
#include "ag_server.h"
#include "ag_status.h"
#include "ag_metrics.h"
#include "pc_agent_proto.h"
#include "pc_err.h"
#include "pc_http.h"
#include "pc_log.h"
#include "pc_mem.h"
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define EXIT_USAGE 2

/* The main usage is usage_head, the table's commands, usage_tail (print_usage). */
static const char usage_head[] =
    "Usage: portcullis-agent COMMAND [OPTIONS]\n"
    "\n"
    "The Portcullis host agent: answers pam_portcullis.so on a unix socket and talks to the\n"
    "control plane (portcullisd) over one pinned, persistent TLS connection pool.\n"
    "\n"
    "Commands:\n";

static const char usage_tail[] =
    "\n"
    "Options:\n"
    "  -h, --help     show this help (COMMAND --help shows a command's options)\n"
    "  -V, --version  show the version\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 usage error. See portcullis-agent(8).\n";

static const char usage_run[] =
    "Usage: portcullis-agent run [--config FILE] [--check-config]\n"
    "\n"
    "Serves the agent socket (default " PC_AGENT_SOCKET_DEFAULT ") in the foreground, logging to\n"
    "stderr. Login requests (begin, totp, push, push_wait) are accepted from root only;\n"
    "principals from root and principals_user; status from anyone who can connect. In the\n"
    "background it keeps ssh_dir's revoked.krl, user_ca.pub and host_ca.pub in sync (every\n"
    "krl_interval; the CA files hold exactly the CA keys trusted now, two during a rotation)\n"
    "and renews host-cert.pub at 2/3 of its lifetime, or at once when its CA key is no longer\n"
    "trusted, then runs reload_command.\n"
    "SIGTERM or SIGINT stops it (exit 0); SIGHUP only checks the file again and logs the\n"
    "result (a changed configuration is used after a restart).\n"
    "\n"
    "When the configuration does not load (a syntax error, a bad value, a missing url or\n"
    "pin, an unreadable file) run does not exit: it logs FILE:LINE, binds the socket anyway\n"
    "(the file's 'socket' if that line is valid, else the default; systemd's socket when\n"
    "activated) and answers every request with the error \"config\", which pam_portcullis\n"
    "treats as a deny under every failmode. An agent that exited would look \"down\", and\n"
    "failmode=safe would then admit users without a second factor.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE   configuration file (default " AG_DEFAULT_CONFIG ")\n"
    "  -t, --check-config  only check the configuration: exit 0 if it loads, else print\n"
    "                      FILE:LINE and the error and exit 1\n"
    "  -h, --help          show this help\n"
    "\n"
    "Exit status: 0 after SIGTERM/SIGINT; 1 on a start-up error (the socket cannot be\n"
    "bound), after SIGTERM/SIGINT when the configuration did not load, and for\n"
    "--check-config on an invalid configuration; 2 on a usage error.\n";

static const char usage_enroll[] =
    "Usage: portcullis-agent enroll --token TOKEN [--url URL] [--pin PIN | --cafile FILE]\n"
    "                               [--hostname NAME] [--force] [--config FILE]\n"
    "\n"
    "Trades a one-time enrollment token (from 'portcullis host token') for this host's token\n"
    "(POST /v1/enroll) and writes it, mode 0600, to the config's host_token_file. Refuses to\n"
    "replace an existing host token unless --force is given. If the config file does not set\n"
    "url, or sets neither pin nor cafile, the values used are appended to it (the file is\n"
    "created if missing).\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE    configuration file (default " AG_DEFAULT_CONFIG ")\n"
    "  -u, --url URL        control plane, https://HOST[:PORT] (default: url from the config)\n"
    "  -p, --pin PIN        server key pin, sha256//BASE64 (default: pin from the config)\n"
    "      --cafile FILE    trust this CA file instead of a pin\n"
    "  -t, --token TOKEN    the enrollment token; '-' reads it from standard input\n"
    "  -n, --hostname NAME  the token's host name, to check (default: the token's)\n"
    "  -f, --force          enroll again, replacing the existing host token\n"
    "  -h, --help           show this help\n"
    "\n"
    "Exit status: 0 enrolled, 1 failure (already enrolled, token refused, network, files),\n"
    "2 usage error.\n";

static const char usage_status[] =
    "Usage: portcullis-agent status [--config FILE] [--json | --metrics]\n"
    "\n"
    "Reports whether this host is enrolled (host token file present and readable) and\n"
    "whether the control plane answers GET /v1/health through the configured pin or CA file\n"
    "(a wrong pin is reported as \"TLS pin mismatch\"), with the URL and pin in use.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE  configuration file (default " AG_DEFAULT_CONFIG ")\n"
    "  -j, --json         print one JSON object instead of text\n"
    "  -m, --metrics      print the running agent's metrics (Prometheus text, from its\n"
    "                     socket; root only); exit 0 when the agent answered\n"
    "  -h, --help         show this help\n"
    "\n"
    "Exit status: 0 enrolled and reachable, 1 otherwise (also on a configuration error),\n"
    "2 usage error.\n";

static const char usage_renew[] =
    "Usage: portcullis-agent renew [--config FILE] [--no-reload]\n"
    "\n"
    "Brings ssh_dir's user_ca.pub and host_ca.pub to the control plane's CA keys, renews this\n"
    "host's certificate now (POST /v1/hosts/self/renew with the key in host_key; after a host\n"
    "CA rotation it comes from the new key), writes it to ssh_dir/host-cert.pub and, if it\n"
    "changed, runs reload_command.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE  configuration file (default " AG_DEFAULT_CONFIG ")\n"
    "  -n, --no-reload    do not run reload_command\n"
    "  -h, --help         show this help\n"
    "\n"
    "Exit status: 0 renewed, 1 failure, 2 usage error.\n";

static int usage_error(const char *cmd, const char *msg)
{
    fprintf(stderr, "portcullis-agent: %s\nRun 'portcullis-agent %s--help' for usage.\n", msg, cmd);
    return EXIT_USAGE;
}

/* The daemon. config_error NULL: cfg loaded and is served. Otherwise agent.conf did not load
 * (config_error is the scrubbed message, config_where its FILE:LINE) and cfg holds only what
 * could be salvaged (socket, socket_group): the socket is still bound, so that the PAM module
 * finds an agent, and every request is answered with the error "config", which denies under
 * every failmode. An agent that exits instead would look "down" and failmode=safe would admit
 * everyone without a second factor. Nothing else runs: no token is read, no control plane call
 * is made, no background work. Returns the exit status: 0 after SIGTERM/SIGINT, 1 on a start-up
 * error, and 1 after SIGTERM/SIGINT when refusing (it never served its configuration). */
static int serve(const struct ag_config *cfg, const char *config_error, const char *config_where)
{
    struct ag_listener l = { .fd = -1 };
    struct ag_ctx ctx;
    struct ag_maint *maint = NULL;
    char err[512] = "", *token = NULL;
    sigset_t set;
    int sig_fd = -1, rc = 1, drained = 0, http = 0;

    /* One malloc arena for every thread (unless MALLOC_ARENA_MAX says otherwise): the agent's
     * threads (the connection probe, the background sync, one per PAM/sshd client) each got an
     * arena of their own otherwise, most of it touched once and kept. They spend their time in
     * network round trips, not in malloc. */
    if (!getenv("MALLOC_ARENA_MAX"))
        mallopt(M_ARENA_MAX, 1);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    /* Blocked in every thread (threads inherit the mask); read through a signalfd. */
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0 ||
        (sig_fd = signalfd(-1, &set, SFD_CLOEXEC)) < 0) {
        pc_log(PC_LOG_ERR, "event=fatal error=\"cannot set up signal handling\"");
        return 1;
    }
    if (!config_error) {
        if (pc_http_global_init() != PC_OK) {
            pc_log(PC_LOG_ERR, "event=fatal error=\"cannot initialise OpenSSL\"");
            goto out;
        }
        http = 1;
    }
    if (ag_ctx_init(&ctx, cfg, err, sizeof err) != PC_OK) {
        pc_log(PC_LOG_ERR, "event=fatal error=\"%s\"", err);
        goto out;
    }
    ctx.config_error = config_error;
    ctx.config_where = config_where;
    if (ag_listener_open(cfg, config_error != NULL, &l, err, sizeof err) != PC_OK) {
        pc_log(PC_LOG_ERR, "event=fatal error=\"%s\"", err);
        ag_ctx_free(&ctx);
        goto out;
    }
    if (config_error) {
        pc_log(PC_LOG_ERR,
               "event=start mode=refusing version=%s socket=%s config_error=\"%s\" "
               "detail=\"the configuration did not load: every request (logins, principals, "
               "status) is answered with error config, a deny, until %s is fixed and the agent "
               "restarted\"",
               PC_VERSION, cfg->socket, config_error, cfg->path);
    } else {
        if (ag_enroll_read_token(cfg->host_token_file, &token, err, sizeof err) != PC_OK)
            pc_log(PC_LOG_WARN, "event=not_enrolled detail=\"%s\"", err);
        else
            ag_ops_pool_start(&ctx); /* connections warm before the first login */
        pc_free_secret_str(token);
        pc_log(PC_LOG_INFO,
               "event=start version=%s socket=%s url=%s trust=%s max_connections=%u "
               "max_push_waits=%u max_clients=%u timeout_ms=%ld connect_timeout_ms=%ld",
               PC_VERSION, cfg->socket, cfg->url, cfg->pin ? cfg->pin : cfg->cafile,
               cfg->max_connections, cfg->max_push_waits, cfg->max_clients, cfg->timeout_ms,
               cfg->connect_timeout_ms);
        if (ag_maint_start(cfg, &maint) != PC_OK)
            pc_log(PC_LOG_ERR, "event=maint_failed error=\"cannot start the background thread: "
                               "no KRL sync, no host certificate renewal\"");
    }
    drained = ag_server_run(cfg, &ctx, &l, sig_fd);
    ag_maint_stop(maint);
    if (drained) {
        ag_ctx_free(&ctx); /* frees the pool: the host token is wiped */
        if (http)
            pc_http_global_cleanup();
    }
    http = 0;
    pc_log(PC_LOG_INFO, "event=stop drained=%s%s", drained ? "yes" : "no",
           config_error ? " mode=refusing" : "");
    rc = config_error ? 1 : 0;
out:
    if (http)
        pc_http_global_cleanup();
    close(sig_fd);
    return rc;
}

/* run with a configuration that did not load: see serve(). */
static int serve_refusing(const char *path, char *err)
{
    struct ag_config cfg;
    char where[512];
    int got, rc;

    ag_config_scrub(err);
    if (ag_config_init(&cfg) != PC_OK) {
        fprintf(stderr, "portcullis-agent: %s\n", err);
        return 1;
    }
    got = ag_config_salvage(&cfg, path);
    ag_config_error_where(path, err, where, sizeof where);
    pc_log(PC_LOG_ERR,
           "event=config_error file=%s error=\"%s\" socket=%s socket_source=%s "
           "socket_group=%s",
           where, err, cfg.socket, (got & AG_SALVAGED_SOCKET) ? "config" : "default",
           (got & AG_SALVAGED_GROUP) ? cfg.socket_group : "-");
    rc = serve(&cfg, err, where);
    ag_config_free(&cfg);
    return rc;
}

static int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = { { "config", required_argument, NULL, 'c' },
                                          { "check-config", no_argument, NULL, 't' },
                                          { "help", no_argument, NULL, 'h' },
                                          { NULL, 0, NULL, 0 } };
    const char *path = AG_DEFAULT_CONFIG;
    struct ag_config cfg;
    char err[1024] = "";
    int c, rc = 1, check = 0;

    while ((c = getopt_long(argc, argv, "+c:th", opts, NULL)) != -1) {
        if (c == 'c')
            path = optarg;
        else if (c == 't')
            check = 1;
        else if (c == 'h')
            return fputs(usage_run, stdout), 0;
        else
            return usage_error("run ", "invalid option");
    }
    if (optind != argc)
        return usage_error("run ", "run takes no arguments");
    if (ag_config_init(&cfg) != PC_OK)
        return 1;
    if (ag_config_load(&cfg, path, 0, err, sizeof err) != PC_OK ||
        ag_config_require_server(&cfg, err, sizeof err) != PC_OK) {
        ag_config_free(&cfg);
        if (check) {
            ag_config_scrub(err);
            fprintf(stderr, "portcullis-agent: %s\n", err);
            return 1;
        }
        return serve_refusing(path, err);
    }
    if (check) {
        printf("%s: the configuration is valid\n", path);
        rc = 0;
    } else {
        pc_log_init("portcullis-agent", cfg.log_level);
        rc = serve(&cfg, NULL, NULL);
    }
    ag_config_free(&cfg);
    return rc;
}

/* Reads the enrollment token from stdin (one line). */
static char *read_token_stdin(void)
{
    char buf[1100];
    size_t n;
    char *t;

    if (!fgets(buf, sizeof buf, stdin))
        return NULL;
    n = strcspn(buf, "\r\n");
    buf[n] = '\0';
    t = strdup(buf);
    pc_wipe(buf, sizeof buf);
    return t;
}

static int cmd_enroll(int argc, char **argv)
{
    static const struct option opts[] = { { "config", required_argument, NULL, 'c' },
                                          { "url", required_argument, NULL, 'u' },
                                          { "pin", required_argument, NULL, 'p' },
                                          { "cafile", required_argument, NULL, 'C' },
                                          { "token", required_argument, NULL, 't' },
                                          { "hostname", required_argument, NULL, 'n' },
                                          { "force", no_argument, NULL, 'f' },
                                          { "help", no_argument, NULL, 'h' },
                                          { NULL, 0, NULL, 0 } };
    struct ag_enroll_args a = { .config = AG_DEFAULT_CONFIG };
    char *token = NULL;
    int c, rc = EXIT_USAGE;

    while ((c = getopt_long(argc, argv, "+c:u:p:t:n:fh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': a.config = optarg; break;
        case 'u': a.url = optarg; break;
        case 'p': a.pin = optarg; break;
        case 'C': a.cafile = optarg; break;
        case 'n': a.hostname = optarg; break;
        case 'f': a.force = 1; break;
        case 't':
            pc_free_secret_str(token);
            token = strcmp(optarg, "-") == 0 ? read_token_stdin() : strdup(optarg);
            pc_wipe(optarg, strlen(optarg)); /* out of /proc/PID/cmdline */
            if (!token) {
                rc = usage_error("enroll ", "cannot read the enrollment token");
                goto out;
            }
            break;
        case 'h':
            fputs(usage_enroll, stdout);
            rc = 0;
            goto out;
        default: rc = usage_error("enroll ", "invalid option"); goto out;
        }
    }
    if (optind != argc) {
        rc = usage_error("enroll ", "enroll takes no arguments");
        goto out;
    }
    if (!token) {
        rc = usage_error("enroll ", "--token is required");
        goto out;
    }
    if (a.pin && a.cafile) {
        rc = usage_error("enroll ", "give --pin or --cafile, not both");
        goto out;
    }
    a.token = token;
    rc = ag_enroll_run(&a) == PC_OK ? 0 : 1;
out:
    pc_free_secret_str(token);
    return rc;
}

static int cmd_status(int argc, char **argv)
{
    static const struct option opts[] = { { "config", required_argument, NULL, 'c' },
                                          { "json", no_argument, NULL, 'j' },
                                          { "metrics", no_argument, NULL, 'm' },
                                          { "help", no_argument, NULL, 'h' },
                                          { NULL, 0, NULL, 0 } };
    const char *path = AG_DEFAULT_CONFIG;
    int c, json = 0, metrics = 0, rc;

    while ((c = getopt_long(argc, argv, "+c:jmh", opts, NULL)) != -1) {
        if (c == 'c')
            path = optarg;
        else if (c == 'j')
            json = 1;
        else if (c == 'm')
            metrics = 1;
        else if (c == 'h')
            return fputs(usage_status, stdout), 0;
        else
            return usage_error("status ", "invalid option");
    }
    if (optind != argc)
        return usage_error("status ", "status takes no arguments");
    if (metrics && json)
        return usage_error("status ", "--metrics and --json do not go together");
    if (metrics)
        return ag_metrics_cmd(path);
    if (pc_http_global_init() != PC_OK)
        return 1;
    rc = ag_status_run(path, json);
    pc_http_global_cleanup();
    return rc;
}

static int cmd_renew(int argc, char **argv)
{
    static const struct option opts[] = { { "config", required_argument, NULL, 'c' },
                                          { "no-reload", no_argument, NULL, 'n' },
                                          { "help", no_argument, NULL, 'h' },
                                          { NULL, 0, NULL, 0 } };
    const char *path = AG_DEFAULT_CONFIG;
    struct ag_config cfg;
    char err[1024] = "";
    int64_t serial = 0;
    int c, reload = 1, rc = 1;

    while ((c = getopt_long(argc, argv, "+c:nh", opts, NULL)) != -1) {
        if (c == 'c')
            path = optarg;
        else if (c == 'n')
            reload = 0;
        else if (c == 'h')
            return fputs(usage_renew, stdout), 0;
        else
            return usage_error("renew ", "invalid option");
    }
    if (optind != argc)
        return usage_error("renew ", "renew takes no arguments");
    if (ag_config_init(&cfg) != PC_OK)
        return 1;
    if (ag_config_load(&cfg, path, 0, err, sizeof err) != PC_OK ||
        ag_config_require_server(&cfg, err, sizeof err) != PC_OK) {
        fprintf(stderr, "portcullis-agent: %s\n", err);
        goto out;
    }
    if (!cfg.host_key) {
        fprintf(stderr, "portcullis-agent: %s: host_key is none: nothing to renew\n", path);
        goto out;
    }
    pc_log_init("portcullis-agent", cfg.log_level);
    if (pc_http_global_init() != PC_OK)
        goto out;
    if (ag_maint_renew_once(&cfg, reload, &serial, err, sizeof err) == PC_OK) {
        printf("renewed the host certificate (serial %lld) in %s/host-cert.pub\n",
               (long long)serial, cfg.ssh_dir);
        rc = 0;
    } else {
        fprintf(stderr, "portcullis-agent: %s\n", err);
    }
    pc_http_global_cleanup();
out:
    ag_config_free(&cfg);
    return rc;
}

/* The commands, in the order the usage lists them. Each parses its own options, with its name
 * as argv[0], and returns the exit status. */
static const struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help; /* one line in the usage */
} commands[] = {
    { "run", cmd_run, "serve the agent socket (the daemon; runs in the foreground)" },
    { "enroll", cmd_enroll,
      "enroll this host with an enrollment token: host token, host certificate" },
    { "renew", cmd_renew, "renew the host certificate once and exit" },
    { "principals", ag_principals_cmd,
      "sshd's AuthorizedPrincipalsCommand (asks the running agent)" },
    { "status", cmd_status,
      "show whether this host is enrolled and the control plane is reachable" },
    { "configure", ag_configure_main,
      "write sshd's and PAM's configuration (one checked, undoable transaction)" },
    { "unconfigure", ag_unconfigure_main, "restore every file configure changed" },
    { "doctor", ag_doctor_main,
      "check sshd, PAM, the agent, the control plane, clock, host certificate and KRL" },
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void print_usage(FILE *out)
{
    fputs(usage_head, out);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-11s %s\n", commands[i].name, commands[i].help);
    fputs(usage_tail, out);
}

/* "what (run, enroll, …)" as a usage error. */
static int command_error(const char *what)
{
    char msg[256];
    size_t n = (size_t)snprintf(msg, sizeof msg, "%s (", what);

    for (size_t i = 0; i < NCOMMANDS && n < sizeof msg; i++)
        n += (size_t)snprintf(msg + n, sizeof msg - n, "%s%s", i ? ", " : "", commands[i].name);
    if (n < sizeof msg)
        snprintf(msg + n, sizeof msg - n, ")");
    return usage_error("", msg);
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : NULL;

    pc_log_init("portcullis-agent", PC_LOG_INFO);
    if (!cmd)
        return command_error("missing command");
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0)
        return print_usage(stdout), 0;
    if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0)
        return printf("portcullis-agent %s\n", PC_VERSION), 0;
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    return command_error("unknown command");
}
