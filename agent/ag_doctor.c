/* SPDX-License-Identifier: BSD-2-Clause */
/* portcullis-agent doctor (see ag_doctor.h). Reuses configure's sshd -T check (agc_*) and the
 * status probe; every check adds one result with a code from the table below. */
#include "config.h"
#include "ag_doctor.h"
#include "ag_config.h"
#include "ag_hostca.h"
#include "ag_status.h"
#include "configure/agc.h"
#include "pc_agent_proto.h"
#include "pc_cert.h"
#include "pc_err.h"
#include "pc_frame.h"
#include "pc_fs.h"
#include "pc_http.h"
#include "pc_json.h"
#include "pc_krl.h"
#include "pc_time.h"
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DOCTOR_PAM_FILE "/etc/pam.d/sshd"
#define DOCTOR_SKEW_MAX 60
#define DOCTOR_CERT_MIN 86400
#define DOCTOR_SSHD_OUT (256 * 1024)

/* Every problem doctor can report: code, and the fix printed with it. */
static const struct problem {
    const char *code, *fix;
} problems[] = {
    { "sshd_config_invalid", "run 'sshd -t' and fix the line it names" },
    { "sshd_directive", "run 'portcullis-agent configure' (or fix the file that sets it first)" },
    { "principals_command_missing", "install portcullis-agent at that path, or run "
                                    "'portcullis-agent configure' again" },
    { "principals_command_unsafe", "make the file and every directory above it owned by root "
                                   "and not writable by group or others (chown root; chmod go-w)" },
    { "pam_module_missing", "run 'portcullis-agent configure' to add pam_portcullis.so to "
                            "/etc/pam.d/sshd" },
    { "pam_order", "move the pam_portcullis.so auth line above the password stack, or run "
                   "'portcullis-agent configure' again" },
    { "config_invalid", "fix the file and line named, then restart the agent" },
    { "not_enrolled", "run 'portcullis-agent enroll' with a token from 'portcullis host add'" },
    { "agent_down", "start the agent: systemctl start portcullis-agent" },
    { "control_plane_unreachable", "check the url in agent.conf, the network and portcullisd" },
    { "pin_mismatch",
      "the server's TLS key changed: put 'portcullisd --print-pin' into agent.conf's "
      "pin, or re-enroll" },
    { "clock_skew", "synchronise the clock (chrony or systemd-timesyncd) here or on the control "
                    "plane" },
    { "host_cert_missing", "run 'portcullis-agent renew'" },
    { "host_cert_expiring", "run 'portcullis-agent renew'; check that the agent runs (it renews "
                            "at 2/3 of the validity)" },
    { "krl_missing", "start the agent (it fetches the KRL every krl_interval)" },
    { "krl_stale", "the agent has not fetched the newest KRL: check that it runs and reaches "
                   "the control plane" },
};

struct result {
    const char *code; /* NULL: passed */
    const char *check;
    char detail[600];
};

struct doctor {
    struct result r[32];
    size_t n;
    struct ag_config cfg;
    pc_http *http;
    uint64_t server_krl_version;
};

static const char *fix_of(const char *code)
{
    for (size_t i = 0; i < sizeof problems / sizeof problems[0]; i++)
        if (strcmp(problems[i].code, code) == 0)
            return problems[i].fix;
    return "";
}

static void add(struct doctor *d, const char *check, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add(struct doctor *d, const char *check, const char *code, const char *fmt, ...)
{
    struct result *r;
    va_list ap;

    if (d->n == sizeof d->r / sizeof d->r[0])
        return;
    r = &d->r[d->n++];
    r->check = check;
    r->code = code;
    va_start(ap, fmt);
    vsnprintf(r->detail, sizeof r->detail, fmt, ap);
    va_end(ap);
}

/* sshd accepts the principals command only if it and every directory above it are owned by
 * root and writable by nobody else (OpenSSH's safe_path). */
static void check_principals_path(struct doctor *d, const char *cmd)
{
    char path[PATH_MAX];
    size_t l = strcspn(cmd, " \t");
    struct stat st;

    if (l == 0 || l >= sizeof path || cmd[0] != '/') {
        add(d, "principals", "principals_command_missing",
            "AuthorizedPrincipalsCommand '%.200s' is not an absolute path", cmd);
        return;
    }
    memcpy(path, cmd, l);
    path[l] = '\0';
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || access(path, X_OK) != 0) {
        add(d, "principals", "principals_command_missing",
            "%s (the AuthorizedPrincipalsCommand) is not an executable file", path);
        return;
    }
    for (;;) {
        char *slash;
        if (stat(path, &st) != 0 || st.st_uid != 0 || (st.st_mode & 022)) {
            add(d, "principals", "principals_command_unsafe",
                "%s is %s: sshd refuses the principals command (\"bad ownership or modes\")", path,
                st.st_uid != 0 ? "not owned by root" : "writable by group or others");
            return;
        }
        if (strcmp(path, "/") == 0)
            break;
        slash = strrchr(path, '/');
        if (slash == path)
            slash[1] = '\0';
        else
            *slash = '\0';
    }
    add(d, "principals", NULL, "%.*s and its directories are root-owned, not group/world-writable",
        (int)l, cmd);
}

static void check_sshd(struct doctor *d, const char *sshd)
{
    struct agc_opts o;
    struct agc_plan p;
    char err[1024] = "", *out = malloc(DOCTOR_SSHD_OUT);
    const char *line;

    memset(&o, 0, sizeof o);
    memset(&p, 0, sizeof p);
    o.sshd = sshd;
    if (!out)
        return;
    if (agc_sshd_effective(&o, out, DOCTOR_SSHD_OUT, err, sizeof err) != PC_OK) {
        add(d, "sshd", "sshd_config_invalid", "%s", err);
        free(out);
        return;
    }
    /* the values configure writes: our principals command as sshd -T shows it */
    line = strstr(out, "\nauthorizedprincipalscommand ");
    if (line) {
        size_t l = strcspn(line + 29, "\n");
        char cmd[PATH_MAX + 64];
        snprintf(cmd, sizeof cmd, "%.*s", (int)l, line + 29);
        snprintf(o.agent_path, sizeof o.agent_path, "%.*s", (int)strcspn(cmd, " "), cmd);
        line = strstr(out, "\nauthorizedprincipalscommanduser ");
        if (line)
            snprintf(o.principals_user, sizeof o.principals_user, "%.*s",
                     (int)strcspn(line + 33, "\n"), line + 33);
    }
    if (!o.agent_path[0] || agc_check_effective(&p, &o, out, err, sizeof err) != PC_OK) {
        if (!o.agent_path[0])
            snprintf(err, sizeof err, "sshd -T: no authorizedprincipalscommand");
        add(d, "sshd", "sshd_directive", "%s", err);
    } else {
        add(d, "sshd", NULL, "sshd -T has every Portcullis directive in effect");
    }
    if (o.agent_path[0])
        check_principals_path(d, o.agent_path);
    free(out);
}

/* The auth stack of /etc/pam.d/sshd: ours present, and no password stack before it. */
static void check_pam(struct doctor *d)
{
    char *text = NULL;
    size_t len = 0;
    int ours = 0, before = 0;
    unsigned lineno = 0, bad_line = 0;

    if (pc_read_file(DOCTOR_PAM_FILE, 1024 * 1024, &text, &len) != PC_OK) {
        add(d, "pam", "pam_module_missing", "%s cannot be read", DOCTOR_PAM_FILE);
        return;
    }
    for (char *s = text, *e; s && *s; s = e ? e + 1 : NULL) {
        char line[1024];
        e = strchr(s, '\n');
        snprintf(line, sizeof line, "%.*s", (int)(e ? (size_t)(e - s) : strlen(s)), s);
        lineno++;
        if (line[strspn(line, " \t")] == '#')
            continue;
        if (strstr(line, "pam_portcullis.so") &&
            strncmp(line + strspn(line, " \t-"), "auth", 4) == 0) {
            ours = 1;
            break;
        }
        if ((strstr(line, "@include common-auth") || strstr(line, "password-auth") ||
             strstr(line, "system-auth") ||
             (strncmp(line + strspn(line, " \t-"), "auth", 4) == 0 &&
              strstr(line, "pam_unix.so"))) &&
            !before) {
            before = 1;
            bad_line = lineno;
        }
    }
    free(text);
    if (!ours)
        add(d, "pam", "pam_module_missing", "%s has no auth line with pam_portcullis.so",
            DOCTOR_PAM_FILE);
    else if (before)
        add(d, "pam", "pam_order",
            "%s:%u asks for a password before pam_portcullis.so (sshd would prompt for it)",
            DOCTOR_PAM_FILE, bad_line);
    else
        add(d, "pam", NULL, "%s calls pam_portcullis.so first in its auth stack", DOCTOR_PAM_FILE);
}

static void check_agent(struct doctor *d)
{
    int64_t deadline = pc_now_ms() + 3000;
    json_object *req = json_object_new_object(), *reply = NULL, *v;
    int fd = -1;

    json_object_object_add(req, "op", json_object_new_string(PC_AGENT_OP_STATUS));
    if (pc_agent_connect(d->cfg.socket, deadline, &fd) != PC_OK ||
        pc_frame_write(fd, req, deadline) != PC_OK || pc_frame_read(fd, deadline, &reply) != PC_OK)
        add(d, "agent", "agent_down", "nothing answers on %s", d->cfg.socket);
    else if (!json_object_object_get_ex(reply, "ok", &v) || !json_object_get_boolean(v))
        add(d, "agent",
            json_object_object_get_ex(reply, "error", &v) &&
                    strcmp(json_object_get_string(v), PC_AGENT_E_CONFIG) == 0
                ? "config_invalid"
                : "agent_down",
            "the agent on %s answered %s", d->cfg.socket, pc_json_dump(reply));
    else
        add(d, "agent", NULL, "the agent answers on %s", d->cfg.socket);
    if (fd >= 0)
        close(fd);
    json_object_put(reply);
    json_object_put(req);
}

/* The control plane through the pin, its clock (GET /v1/health's time) and its KRL version. */
static void check_control_plane(struct doctor *d)
{
    struct ag_probe pr;
    struct pc_http_opts o = { .base_url = d->cfg.url,
                              .pin = d->cfg.pin,
                              .cafile = d->cfg.cafile,
                              .connect_timeout_ms = d->cfg.connect_timeout_ms,
                              .timeout_ms = d->cfg.timeout_ms };
    char err[512] = "";
    json_object *reply = NULL, *t;
    unsigned char *krl = NULL;
    size_t len = 0;
    long status = 0;

    ag_status_probe(&d->cfg, &pr);
    if (!pr.enrolled)
        add(d, "enrollment", "not_enrolled", "%s", pr.enroll_detail);
    else
        add(d, "enrollment", NULL, "host token in %s", d->cfg.host_token_file);
    if (!pr.reachable) {
        add(d, "control_plane", pr.pin_mismatch ? "pin_mismatch" : "control_plane_unreachable",
            "%s: %s", d->cfg.url, pr.detail);
        return;
    }
    add(d, "control_plane", NULL, "%s answers through the pinned key", d->cfg.url);
    if (pc_http_new(&o, &d->http, err, sizeof err) != PC_OK)
        return;
    if (pc_http_call(d->http, "GET", "/v1/health", NULL, 0, &status, &reply, err, sizeof err) ==
            PC_OK &&
        status == 200 && reply && json_object_object_get_ex(reply, "time", &t)) {
        int64_t skew = pc_now() - json_object_get_int64(t);
        if (skew > DOCTOR_SKEW_MAX || skew < -DOCTOR_SKEW_MAX)
            add(d, "clock", "clock_skew",
                "this clock is %lld s %s the control plane's (more than %d s: certificates and "
                "codes fail)",
                (long long)(skew < 0 ? -skew : skew), skew < 0 ? "behind" : "ahead of",
                DOCTOR_SKEW_MAX);
        else
            add(d, "clock", NULL, "within %lld s of the control plane's",
                (long long)(skew < 0 ? -skew : skew));
    }
    json_object_put(reply);
    if (pc_http_get(d->http, "/v1/krl", PC_KRL_MAX_BYTES, 0, &status, &krl, &len, err,
                    sizeof err) == PC_OK &&
        status == 200)
        pc_krl_check(krl, len, &d->server_krl_version);
    free(krl);
}

static void check_files(struct doctor *d)
{
    char path[PATH_MAX], *text = NULL;
    size_t len = 0;
    struct pc_cert *cert = NULL;
    uint64_t version = 0;

    if (ag_hostca_path(&d->cfg, AG_HOST_CERT_FILE, path, sizeof path) == PC_OK &&
        pc_read_file(path, 64 * 1024, &text, &len) == PC_OK &&
        pc_cert_parse_line(text, &cert) == PC_OK) {
        int64_t left = (int64_t)cert->valid_before - pc_now();
        if (left < DOCTOR_CERT_MIN)
            add(d, "host_cert", "host_cert_expiring", "%s %s", path,
                left <= 0 ? "has expired" : "expires in less than a day");
        else
            add(d, "host_cert", NULL, "%s is valid for %lld more days", path,
                (long long)(left / 86400));
    } else {
        add(d, "host_cert", "host_cert_missing", "%s is missing or not a certificate", path);
    }
    pc_cert_free(cert);
    free(text);
    text = NULL;
    if (ag_hostca_path(&d->cfg, AG_KRL_FILE, path, sizeof path) != PC_OK ||
        pc_read_file(path, PC_KRL_MAX_BYTES, &text, &len) != PC_OK ||
        pc_krl_check((unsigned char *)text, len, &version) != PC_OK)
        add(d, "krl", "krl_missing", "%s is missing or not a KRL (sshd refuses every key then)",
            path);
    else if (d->server_krl_version && version < d->server_krl_version)
        add(d, "krl", "krl_stale", "%s is version %llu; the control plane's is %llu", path,
            (unsigned long long)version, (unsigned long long)d->server_krl_version);
    else
        add(d, "krl", NULL, "%s is version %llu, the newest", path, (unsigned long long)version);
    free(text);
}

static int report(const struct doctor *d, int json)
{
    int bad = 0;
    json_object *arr = json_object_new_array(), *o;

    for (size_t i = 0; i < d->n; i++) {
        const struct result *r = &d->r[i];
        bad |= r->code != NULL;
        if (json) {
            o = json_object_new_object();
            json_object_object_add(o, "check", json_object_new_string(r->check));
            json_object_object_add(o, "ok", json_object_new_boolean(r->code == NULL));
            json_object_object_add(o, "code", r->code ? json_object_new_string(r->code) : NULL);
            json_object_object_add(o, "detail", json_object_new_string(r->detail));
            if (r->code)
                json_object_object_add(o, "fix", json_object_new_string(fix_of(r->code)));
            json_object_array_add(arr, o);
        } else if (r->code) {
            printf("FAIL %-13s %s: %s\n     fix: %s\n", r->check, r->code, r->detail,
                   fix_of(r->code));
        } else {
            printf("ok   %-13s %s\n", r->check, r->detail);
        }
    }
    if (json) {
        o = json_object_new_object();
        json_object_object_add(o, "ok", json_object_new_boolean(!bad));
        json_object_object_add(o, "checks", arr);
        printf("%s\n", pc_json_dump(o));
        json_object_put(o);
    } else {
        json_object_put(arr);
    }
    return bad ? 1 : 0;
}

int ag_doctor_main(int argc, char **argv)
{
    static const struct option opts[] = { { "config", required_argument, NULL, 'c' },
                                          { "sshd", required_argument, NULL, 's' },
                                          { "json", no_argument, NULL, 'j' },
                                          { "help", no_argument, NULL, 'h' },
                                          { NULL, 0, NULL, 0 } };
    struct doctor *d = calloc(1, sizeof *d);
    const char *path = AG_DEFAULT_CONFIG, *sshd = NULL;
    char err[1024] = "";
    int c, json = 0, rc = 1;

    if (!d)
        return 1;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+c:s:jh", opts, NULL)) != -1) {
        if (c == 'c')
            path = optarg;
        else if (c == 's')
            sshd = optarg;
        else if (c == 'j')
            json = 1;
        else if (c == 'h') {
            printf("Usage: portcullis-agent doctor [--config FILE] [--sshd PATH] [--json]\n"
                   "Checks sshd's effective configuration, the principals command's path, the\n"
                   "PAM stack, the agent, the control plane and its pin, the clock, the host\n"
                   "certificate and the KRL. Exit status 0 only when every check passes.\n");
            free(d);
            return 0;
        } else {
            fprintf(stderr, "portcullis-agent doctor: invalid option (see --help)\n");
            free(d);
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "portcullis-agent doctor: takes no arguments (see --help)\n");
        free(d);
        return 2;
    }
    check_sshd(d, sshd);
    check_pam(d);
    if (ag_config_init(&d->cfg) == PC_OK) {
        if (ag_config_load(&d->cfg, path, 0, err, sizeof err) != PC_OK ||
            ag_config_require_server(&d->cfg, err, sizeof err) != PC_OK) {
            add(d, "config", "config_invalid", "%s", err);
        } else if (pc_http_global_init() == PC_OK) {
            add(d, "config", NULL, "%s loads", path);
            check_agent(d);
            check_control_plane(d);
            check_files(d);
            pc_http_free(d->http);
            pc_http_global_cleanup();
        }
        ag_config_free(&d->cfg);
    }
    rc = report(d, json);
    free(d);
    return rc;
}
