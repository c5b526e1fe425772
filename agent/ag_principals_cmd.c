/* SPDX-License-Identifier: BSD-2-Clause */
/* sshd's AuthorizedPrincipalsCommand (see ag_principals.h): `portcullis-principals` and the
 * older spelling `portcullis-agent principals`, one code path. Only the agent's unix socket,
 * one request, a hard deadline, and nothing printed unless the daemon answered with a
 * well-formed list. sshd starts it once per certificate login, so it links only this file, the
 * frame/protocol code and json-c (Makefile.am: no libcurl, no TLS library, no agent config code)
 * and reads nothing from agent.conf but `socket`. */
#include "config.h"
#include "ag_principals_cmd.h"
#include "pc_agent_proto.h"
#include "pc_config.h"
#include "pc_err.h"
#include "pc_frame.h"
#include "pc_keyopts.h"
#include "pc_time.h"
#include "pc_valid.h"
#include <getopt.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

/* After "Usage: PROG" */
static const char usage[] =
    " [--config FILE] [--socket PATH] ACCOUNT KEY_ID SERIAL FINGERPRINT\n"
    "\n"
    "For sshd_config:\n"
    "  AuthorizedPrincipalsCommand /usr/sbin/portcullis-principals %u %i %s %f\n"
    "  AuthorizedPrincipalsCommandUser portcullis-principals\n"
    "\n"
    "Asks the running agent (over its unix socket only) which principals of the certificate\n"
    "with key id KEY_ID and serial SERIAL may log in as ACCOUNT, and prints them one per line,\n"
    "each after the key options of the rule that matched on this host, e.g.\n"
    "  restrict,pty,port-forwarding alice\n"
    "Answers within 2 seconds; on any error it prints nothing (sshd then refuses the key).\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE  the agent's configuration file, read for 'socket' only\n"
    "                     (default " AG_PRINCIPALS_CONFIG ")\n"
    "  -s, --socket PATH  the agent's socket (overrides the configuration file)\n"
    "  -h, --help         show this help\n"
    "\n"
    "Exit status: 0 answered (possibly with no principals), 1 error, 2 usage error.\n";

/* The reply's principals, checked, as lines "KEY-OPTIONS PRINCIPAL" into out: the options are
 * built here from the reply's "options" (only the fixed set of pc_keyopts), never copied. */
static int take_reply(json_object *reply, char *out, size_t outsz)
{
    json_object *ok = NULL, *arr = NULL, *opts = NULL;
    char line[PC_KEYOPTS_LINE_MAX] = "";
    size_t n, pos = 0, olen;

    *out = '\0';
    if (!json_object_object_get_ex(reply, "ok", &ok) ||
        !json_object_is_type(ok, json_type_boolean) || !json_object_get_boolean(ok) ||
        !json_object_object_get_ex(reply, "principals", &arr) ||
        !json_object_is_type(arr, json_type_array))
        return PC_ERR_PARSE;
    n = json_object_array_length(arr);
    if (n > 0 && (!json_object_object_get_ex(reply, "options", &opts) ||
                  pc_keyopts_build(opts, line, sizeof line) != PC_OK))
        return PC_ERR_PARSE;
    olen = strlen(line);
    for (size_t i = 0; i < n; i++) {
        json_object *s = json_object_array_get_idx(arr, i);
        const char *p;
        size_t len;
        if (!json_object_is_type(s, json_type_string))
            return PC_ERR_PARSE;
        p = json_object_get_string(s);
        len = (size_t)json_object_get_string_len(s);
        if (strlen(p) != len || !pc_valid_principal(p, len) || pos + olen + len + 3 > outsz)
            return PC_ERR_PARSE;
        memcpy(out + pos, line, olen);
        pos += olen;
        out[pos++] = ' ';
        memcpy(out + pos, p, len);
        pos += len;
        out[pos++] = '\n';
        out[pos] = '\0';
    }
    return PC_OK;
}

static int ask(const char *sock, char **args, char *out, size_t outsz, const char **why)
{
    int64_t deadline = pc_now_ms() + AG_PRINCIPALS_DEADLINE_MS;
    json_object *req = json_object_new_object(), *reply = NULL;
    int fd, rc = PC_ERR_IO;

    json_object_object_add(req, "op", json_object_new_string(PC_AGENT_OP_PRINCIPALS));
    json_object_object_add(req, "account", json_object_new_string(args[0]));
    json_object_object_add(req, "key_id", json_object_new_string(args[1]));
    json_object_object_add(req, "serial", json_object_new_string(args[2]));
    json_object_object_add(req, "fingerprint", json_object_new_string(args[3]));
    if (pc_agent_connect(sock, deadline, &fd) != PC_OK) {
        *why = "cannot connect to the agent";
        goto out;
    }
    if ((rc = pc_frame_write(fd, req, deadline)) != PC_OK) {
        *why = rc == PC_ERR_TIMEOUT ? "the agent did not take the request in time"
                                    : "cannot send to the agent";
    } else if ((rc = pc_frame_read(fd, deadline, &reply)) != PC_OK) {
        *why = rc == PC_ERR_TIMEOUT ? "the agent did not answer in time"
                                    : "no valid answer from the agent";
    } else if ((rc = take_reply(reply, out, outsz)) != PC_OK) {
        json_object *e = NULL;
        *why = json_object_object_get_ex(reply, "error", &e) &&
                       json_object_is_type(e, json_type_string)
                   ? json_object_get_string(e)
                   : "a malformed answer from the agent";
    }
    if (rc != PC_OK && reply && *why) {
        static char copy[64];
        snprintf(copy, sizeof copy, "%s", *why); /* outlives the reply */
        *why = copy;
    }
    close(fd);
out:
    json_object_put(reply);
    json_object_put(req);
    return rc;
}

/* agent.conf's `socket` (the first one; PC_ERR_INVAL if it is not an absolute path that fits a
 * sockaddr_un). Every other key is accepted unread: the agent checks its own configuration and
 * refuses every request while it does not load. */
struct sock_ctx {
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int have;
};

static int on_setting(void *ctx, const char *key, const char *v, char *err, size_t errsz)
{
    struct sock_ctx *sc = ctx;

    if (strcmp(key, "socket") != 0)
        return PC_OK;
    if (v[0] != '/' || strlen(v) >= sizeof sc->path) {
        snprintf(err, errsz, "socket must be an absolute path shorter than %zu bytes",
                 sizeof sc->path);
        return PC_ERR_INVAL;
    }
    snprintf(sc->path, sizeof sc->path, "%s", v);
    sc->have = 1;
    return PC_OK;
}

/* A parse error names FILE:LINE only: the parser's message may quote the line (a token pasted
 * into the wrong place), and sshd logs what this program says. FILE:0 messages (open, read,
 * size) quote nothing of the content and stay whole. */
static void where_only(const char *path, char *err, size_t errsz)
{
    size_t n = strlen(path), d = 0;

    if (strncmp(err, path, n) != 0 || err[n] != ':')
        return;
    while (err[n + 1 + d] >= '0' && err[n + 1 + d] <= '9')
        d++;
    if (d == 0 || err[n + 1 + d] != ':' || (d == 1 && err[n + 1] == '0'))
        return;
    snprintf(err + n + 1 + d, errsz - (n + 1 + d), ": not a valid configuration line");
}

int ag_principals_cmd(int argc, char **argv)
{
    static const struct option opts[] = { { "config", required_argument, NULL, 'c' },
                                          { "socket", required_argument, NULL, 's' },
                                          { "help", no_argument, NULL, 'h' },
                                          { NULL, 0, NULL, 0 } };
    const char *path = AG_PRINCIPALS_CONFIG, *sock = NULL, *why = NULL;
    const char *prog = argc > 0 && strcmp(argv[0], "principals") == 0
                           ? "portcullis-agent principals"
                           : "portcullis-principals";
    char out[16384], err[1024] = "";
    struct sock_ctx sc = { .have = 0 };
    int c, nopt;

    /* The backstop: whatever happens below, sshd gets its answer (nothing) within 2 s. */
    signal(SIGALRM, SIG_DFL);
    alarm(AG_PRINCIPALS_ALARM_S);
    signal(SIGPIPE, SIG_IGN);
    /* The last four arguments are always ACCOUNT KEY_ID SERIAL FINGERPRINT, even when one of
     * them starts with '-' (a key id is the certificate's): options only come before them. */
    nopt = argc > 4 ? argc - 4 : argc;
    while ((c = getopt_long(nopt, argv, "+c:s:h", opts, NULL)) != -1) {
        if (c == 'c')
            path = optarg;
        else if (c == 's')
            sock = optarg;
        else if (c == 'h')
            return printf("Usage: %s%s", prog, usage) < 0 ? 1 : 0;
        else
            return fprintf(stderr, "%s: invalid option (see --help)\n", prog), 2;
    }
    if (optind != nopt || argc - nopt != 4) {
        fprintf(stderr,
                "%s: expected ACCOUNT KEY_ID SERIAL FINGERPRINT "
                "(sshd: %%u %%i %%s %%f)\n",
                prog);
        return 2;
    }
    if (!sock) {
        /* The whole file must read and parse (a file that does not is no answer), but only
         * `socket` is taken from it. */
        if (pc_config_parse_file(path, on_setting, &sc, err, sizeof err) != PC_OK) {
            where_only(path, err, sizeof err);
            fprintf(stderr, "%s: %s: no principals\n", prog, err);
            return 1;
        }
        sock = sc.have ? sc.path : PC_AGENT_SOCKET_DEFAULT;
    }
    if (ask(sock, argv + nopt, out, sizeof out, &why) != PC_OK) {
        fprintf(stderr, "%s: %s: no principals\n", prog, why ? why : "error");
        return 1;
    }
    /* One write of everything, only now that all of it checked out. */
    if (fputs(out, stdout) < 0 || fflush(stdout) != 0)
        return 1;
    return 0;
}
