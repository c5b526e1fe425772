/* SPDX-License-Identifier: BSD-2-Clause */
/* portcullis: the admin CLI of the Portcullis control plane. This file: the command line
 * (global options anywhere, environment fallbacks, usage) and the dispatch to commands. */
#include "config.h"
#include "cli.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_ARGS 256

void cli_print_usage(FILE *out)
{
    fputs(
        "Usage: portcullis [OPTIONS] COMMAND [ARGUMENTS]\n"
        "\n"
        "Administers a Portcullis control plane (portcullisd): users, TOTP, SSH keys, host\n"
        "enrollment, push approvals, policy, certificates and the audit log; and logs users in.\n"
        "\n"
        "Options (before or after the command):\n"
        "  --url URL          the control plane, https://HOST:PORT        [PORTCULLIS_URL]\n"
        "  --pin PIN          the server's key pin, sha256//BASE64         [PORTCULLIS_PIN]\n"
        "                     (portcullisd --print-pin prints it)\n"
        "  --cafile FILE      verify the server with this CA instead       [PORTCULLIS_CAFILE]\n"
        "  --token-file FILE  file holding the admin token (hex)           [PORTCULLIS_TOKEN_FILE]\n"
        "  --json             print JSON on stdout instead of text\n"
        "  -h, --help         print this help and exit\n"
        "  --version          print the version and exit\n"
        "\n"
        "Commands:\n"
        "  user add NAME [--group G]... [--no-push]\n"
        "                     create a user (push approval allowed unless --no-push)\n"
        "  user list          list users\n"
        "  user show NAME     show one user\n"
        "  user disable NAME  refuse the user's logins\n"
        "  user enable NAME   allow the user's logins again\n"
        "  user delete NAME   delete the user\n"
        "  user groups NAME G... | --none\n"
        "                     replace the user's groups (--none: no groups)\n"
        "  user push NAME on|off\n"
        "                     allow or forbid push approval for the user\n"
        "  user invite NAME [--ttl DURATION]\n"
        "                     print a one-time link and QR code that creates a passkey for the\n"
        "                     approval web app on the user's phone (valid 24h, once)\n"
        "  user passkeys NAME | user passkey delete NAME ID\n"
        "                     list or delete the user's passkeys\n"
        "  user add NAME --ssh-key FILE ...\n"
        "                     also register SSH public keys (repeatable) for 'portcullis login'\n"
        "  user key add NAME FILE | user key list NAME | user key delete NAME FINGERPRINT\n"
        "                     manage a user's registered SSH public keys (delete also revokes\n"
        "                     the key's certificates and ends its sessions)\n"
        "  totp enroll NAME [--force]\n"
        "                     new TOTP secret: prints a QR code and the otpauth URI;\n"
        "                     --force replaces an existing one\n"
        "  host token --hostname NAME [--principal P]... [--label KEY=VALUE]... [--ttl DURATION]\n"
        "                     single-use host enrollment token (ttl 60s..30d, default 1h) for\n"
        "                     host NAME (its certificate names NAME and the P's, or NAME and its\n"
        "                     first label) and the command line that installs the agent on it\n"
        "  host list          list enrolled hosts\n"
        "  host delete NAME   delete a host: its host token and host certificates are revoked\n"
        "  approvals          list pending push approvals\n"
        "  approve ID --match NN\n"
        "                     approve a push; NN is the number shown to the user (a session\n"
        "                     approves no 'portcullis login --push': an admin does)\n"
        "  deny ID            deny a push\n"
        "  audit [--user NAME] [--since DURATION] [--limit N]\n"
        "                     read the audit log, newest last\n"
        "  audit --request ID the chain of one access request (create, approve, logins, end)\n"
        "  audit --user NAME --last-denial\n"
        "                     explain the newest denied login of NAME (as explain does)\n"
        "  explain TXID       the decision path of one login: the rules that matched or why\n"
        "                     none did, the second factor, lockout, failmode\n"
        "  policy add NAME (--user U | --group G)... --account A... [--host KEY=VALUE]...\n"
        "         [--no-2fa] [--max-ttl DURATION] [--extension permit-...]...\n"
        "         [--source-address CIDRS] [--force-command CMD]\n"
        "         [--requires-request --approver-group G [--max-duration DURATION]]\n"
        "         [--second-factor every-login|per-certificate]\n"
        "                     let people log in as local accounts on hosts with these labels\n"
        "                     (account $user: the person's own name); nobody may log in without one;\n"
        "                     with --requires-request only during an approved request's grant\n"
        "  policy list | policy delete ID\n"
        "  cert list [--user NAME]\n"
        "                     certificates issued by the CA\n"
        "  cert revoke --serial N | --key-id ID\n"
        "                     revoke one certificate, or every certificate with a key id\n"
        "  ca rotate user|host [--overlap DURATION]\n"
        "                     a new CA key signs from now on; the old one stays trusted until\n"
        "                     'ca finish' (finish before the overlap, default 1d, needs --now)\n"
        "  ca finish user|host [--now]\n"
        "                     stop trusting the old key everywhere (the KRL revokes it)\n"
        "  ca status          each CA's phase, keys, fingerprints and overlap end\n"
        "\n"
        "Access on request (a user's session; approvers and the admin list what waits for them):\n"
        "  request --account A [--host KEY=VALUE]... --for DURATION --reason TEXT\n"
        "                     ask for account A on hosts with these labels, under a rule added\n"
        "                     with --requires-request; prints the request id\n"
        "  requests           list my requests and those waiting for my approval\n"
        "  request approve ID [--code-file FILE]\n"
        "                     approve with your own TOTP code (never your own request)\n"
        "  request deny ID --reason TEXT | request revoke ID\n"
        "                     refuse a request; end a grant (or withdraw a request) now\n"
        "\n"
        "User commands (no admin token):\n"
        "  login --user NAME [--key FILE] [--ttl DURATION] [--code-file FILE | --push]\n"
        "                     sign the server's challenge with ssh-keygen -Y sign (default key\n"
        "                     ~/.ssh/id_ed25519), enter the TOTP code, receive FILE-cert.pub and a\n"
        "                     session in ~/.config/portcullis/session that approvals, approve and\n"
        "                     deny use when no --token-file is given\n"
        "  ssh-config [--domain DOMAIN] [--krl-file FILE]\n"
        "                     print the @cert-authority line for ~/.ssh/known_hosts (for\n"
        "                     *.DOMAIN; without --domain for every host); --krl-file writes the\n"
        "                     host KRL to FILE and prints the RevokedHostKeys line for ssh_config\n"
        "\n"
        "DURATION is a number of seconds, or a number followed by s, m, h or d (90s, 5m, 2h, 7d).\n"
        "An option given on the command line overrides its environment variable; --pin or --cafile\n"
        "on the command line overrides both PORTCULLIS_PIN and PORTCULLIS_CAFILE.\n"
        "Exit status: 0 success, 1 failure, 2 usage error. See portcullis(1).\n",
        out);
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* https://HOST[:PORT] with an optional trailing '/', in characters that are also safe inside
 * the single-quoted installer command line. Sets c->url. */
static int check_url(struct cli *c, const char *url)
{
    size_t n = strlen(url);

    if (strncasecmp(url, "https://", 8) != 0)
        return cli_err(PC_ERR_PARSE,
                       "the server URL '%.200s' does not start with https://: "
                       "pass --url https://HOST:PORT",
                       url);
    while (n > 8 && url[n - 1] == '/')
        n--;
    if (n == 8 || n >= sizeof c->url_buf)
        return cli_err(PC_ERR_PARSE,
                       "the server URL is empty or too long: pass --url https://HOST:PORT");
    for (const char *p = url + 8; p < url + n; p++) {
        if (strchr("/?#@", *p))
            return cli_err(PC_ERR_PARSE,
                           "the server URL '%.200s' has a path or user part: "
                           "pass just https://HOST:PORT",
                           url);
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr(".-_:[]%", *p)))
            return cli_err(PC_ERR_PARSE, "the server URL contains a character that is not "
                                         "allowed: pass --url https://HOST:PORT");
    }
    memcpy(c->url_buf, url, n);
    c->url_buf[n] = '\0';
    c->url = c->url_buf;
    return PC_OK;
}

struct globals {
    const char *url, *pin, *cafile, *token_file;
    int help, version;
};

/* Takes the global options out of argv, wherever they are (up to a "--"); the rest, in order,
 * goes to rest[]. */
static int parse_globals(int argc, char **argv, struct cli *c, struct globals *g, char **rest,
                         int *nrest)
{
    int dashdash = 0, r;

    *nrest = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!dashdash) {
            if (strcmp(a, "--") == 0)
                dashdash = 1;
            else if (strcmp(a, "--json") == 0) {
                c->json = 1;
                continue;
            } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
                g->help = 1;
                continue;
            } else if (strcmp(a, "--version") == 0) {
                g->version = 1;
                continue;
            } else if ((r = cli_opt(argc, argv, &i, "--url", &g->url)) != 0 ||
                       (r = cli_opt(argc, argv, &i, "--pin", &g->pin)) != 0 ||
                       (r = cli_opt(argc, argv, &i, "--cafile", &g->cafile)) != 0 ||
                       (r = cli_opt(argc, argv, &i, "--token-file", &g->token_file)) != 0) {
                if (r < 0)
                    return r;
                continue;
            }
        }
        if (*nrest >= MAX_ARGS)
            return cli_usage_err("too many arguments");
        rest[(*nrest)++] = argv[i];
    }
    return PC_OK;
}

static const struct {
    const char *name;
    int (*fn)(struct cli *, int, char **);
} commands[] = {
    { "user", cmd_user },       { "totp", cmd_totp },
    { "host", cmd_host },       { "approvals", cmd_approvals },
    { "approve", cmd_approve }, { "deny", cmd_deny },
    { "audit", cmd_audit },     { "policy", cmd_policy },
    { "cert", cmd_cert },       { "ssh-config", cmd_ssh_config },
    { "login", cmd_login },     { "ca", cmd_ca }, /* CA rotation */
    { "request", cmd_request }, { "requests", cmd_requests },
    { "explain", cmd_explain },
};

static int run(int argc, char **argv, struct cli *c)
{
    struct globals g = { 0 };
    char *rest[MAX_ARGS + 1];
    int nrest, rc;

    if ((rc = parse_globals(argc, argv, c, &g, rest, &nrest)) != PC_OK)
        return rc;
    rest[nrest] = NULL;
    if (g.help || (nrest > 0 && strcmp(rest[0], "help") == 0)) {
        cli_print_usage(stdout);
        return PC_OK;
    }
    if (g.version) {
        puts("portcullis " PC_VERSION);
        return PC_OK;
    }
    if (nrest == 0)
        return cli_usage_err("no command given");
    if (strcmp(rest[0], "--") == 0 && nrest > 1)
        return cli_usage_err("'--' must follow the command, not precede it");

    if (!g.url)
        g.url = env("PORTCULLIS_URL");
    if (!g.pin && !g.cafile) {
        g.pin = env("PORTCULLIS_PIN");
        g.cafile = env("PORTCULLIS_CAFILE");
    }
    c->pin = g.pin;
    c->cafile = g.cafile;
    c->token_file = g.token_file ? g.token_file : env("PORTCULLIS_TOKEN_FILE");

    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(rest[0], commands[i].name) == 0) {
            if (g.url && (rc = check_url(c, g.url)) != PC_OK)
                return rc;
            /* Approvals work with a user's session from 'portcullis login' too. */
            c->session_ok = strncmp(rest[0], "approv", 6) == 0 || strcmp(rest[0], "deny") == 0 ||
                            strncmp(rest[0], "request", 7) == 0;
            return commands[i].fn(c, nrest, rest);
        }
    }
    if (rest[0][0] == '-')
        return cli_usage_err("unknown option '%.100s'", rest[0]);
    return cli_usage_err("unknown command '%.100s'", rest[0]);
}

int main(int argc, char **argv)
{
    struct cli c = { 0 };
    int rc, status;

    if (pc_http_global_init() != PC_OK) {
        fputs("portcullis: cannot initialise OpenSSL: reinstall libssl3\n", stderr);
        return 1;
    }
    rc = run(argc, argv, &c);
    pc_http_free(c.http);
    pc_http_global_cleanup();
    status = rc == PC_OK ? 0 : rc == CLI_EUSAGE ? 2 : 1;
    if (fflush(stdout) != 0 || ferror(stdout)) {
        if (errno != EPIPE)
            fprintf(stderr, "portcullis: cannot write the output (%s)\n", strerror(errno));
        status = 1;
    }
    return status;
}
