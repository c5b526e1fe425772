/* SPDX-License-Identifier: BSD-2-Clause */
/* portcullis-agent configure / unconfigure: command line and the two flows.
 * configure: recover an interrupted run → plan (sshd, PAM) → journal + backups → atomic writes
 * → our parser agrees → sshd -t → sshd -T shows every directive in effect → reload → commit.
 * Any failure undoes every file from the backups; sshd is only reloaded after validation. */
#include "config.h"
#include "agc.h"
#include "pc_err.h"
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXIT_USAGE 2
#define ERRSZ 2048

static const char usage_configure[] =
    "Usage: portcullis-agent configure [--root DIR] [--dry-run] [--no-reload]\n"
    "         [--breakglass-group NAME] [--sudo] [--agent-path PATH] [--principals-user NAME]\n"
    "         [--principals-path PATH] [--replace-authmethods] [--state-dir DIR] [--sshd PATH]\n"
    "       portcullis-agent configure --status [--root DIR] [--state-dir DIR]\n"
    "\n"
    "Writes sshd's configuration (user CA, host certificate, principals command, KRL,\n"
    "publickey + keyboard-interactive:pam) and the PAM stack of sshd, as one transaction:\n"
    "every file is backed up, written atomically, checked with sshd -t and sshd -T, and\n"
    "restored if anything fails. sshd is reloaded only after the checks pass.\n"
    "\n"
    "Options:\n"
    "      --root DIR              edit the files under DIR (sshd runs in a private mount\n"
    "                              namespace to validate them; sshd is not reloaded)\n"
    "  -n, --dry-run               print the unified diff; change nothing\n"
    "      --no-reload             do not reload sshd\n"
    "      --breakglass-group NAME members log in with a public key alone\n"
    "      --sudo                  also require the second factor for sudo (after the password)\n"
    "      --agent-path PATH       this program's installed path (default: its own path)\n"
    "      --principals-path PATH  AuthorizedPrincipalsCommand helper (default:\n"
    "                              portcullis-principals beside the agent if it is there,\n"
    "                              root-owned and not group/world writable; else\n"
    "                              'AGENT principals')\n"
    "      --principals-user NAME  AuthorizedPrincipalsCommandUser (default:\n"
    "                              portcullis-principals if it exists, else nobody)\n"
    "      --replace-authmethods   let ours win over an existing AuthenticationMethods\n"
    "      --state-dir DIR         journal and backups (default ROOT" PC_LOCALSTATEDIR
    "/configure)\n"
    "      --sshd PATH             the sshd binary (default: sshd in PATH, /usr/sbin/sshd)\n"
    "      --status                change nothing; say whether configure has run (exit 0)\n"
    "                              or not (exit 1; also after an interrupted run)\n"
    "  -h, --help                  show this help\n"
    "\n"
    "Exit status: 0 configured (or the dry run printed), 1 failure (every file restored),\n"
    "2 usage error.\n";

static int want_status; /* configure --status */

static const char usage_unconfigure[] =
    "Usage: portcullis-agent unconfigure [--root DIR] [--dry-run] [--no-reload]\n"
    "         [--state-dir DIR] [--sshd PATH]\n"
    "\n"
    "Restores every file configure changed, byte for byte, removes the files it created,\n"
    "and reloads sshd. Also finishes the undo of an interrupted configure.\n"
    "\n"
    "Exit status: 0 restored (or nothing to do), 1 failure, 2 usage error.\n";

static int usage_error(const char *cmd, const char *msg)
{
    fprintf(stderr, "portcullis-agent: %s\nRun 'portcullis-agent %s --help' for usage.\n", msg,
            cmd);
    return EXIT_USAGE;
}

static int safe_word(const char *s, int path)
{
    if (!s || !s[0] || s[0] == '-' || strlen(s) >= (path ? PATH_MAX : 64))
        return 0;
    for (const char *p = s; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+", *p) &&
            !(path && *p == '/'))
            return 0;
    return !path || s[0] == '/';
}

/* Fills the defaults; returns 0 or a usage message. */
/* A principals helper sshd will run: a regular file, executable, owned by root and writable by
 * nobody else (sshd refuses the command otherwise; it checks the parent directories too). */
static int usable_helper(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == 0 &&
           (st.st_mode & (S_IWGRP | S_IWOTH)) == 0 && (st.st_mode & S_IXUSR);
}

/* The principals command: --principals-path, else portcullis-principals beside the agent if
 * it is there (under --root) and usable, else the agent's own `principals` subcommand. */
static const char *finish_principals(struct agc_opts *o, const char *principals)
{
    char sib[PATH_MAX], at[2 * PATH_MAX];
    const char *slash = strrchr(o->agent_path, '/');
    int n;

    if (principals) {
        if (!safe_word(principals, 1))
            return "--principals-path: an absolute path of letters, digits and ./_-+ is needed";
        snprintf(o->principals_path, sizeof o->principals_path, "%s", principals);
        return NULL;
    }
    if (!slash)
        return NULL;
    n = snprintf(sib, sizeof sib, "%.*s/" AGC_PRINCIPALS_HELPER, (int)(slash - o->agent_path),
                 o->agent_path);
    if (n < 0 || (size_t)n >= sizeof sib)
        return NULL;
    n = snprintf(at, sizeof at, "%s%s", o->root, sib);
    if (n > 0 && (size_t)n < sizeof at && usable_helper(at))
        snprintf(o->principals_path, sizeof o->principals_path, "%s", sib);
    return NULL;
}

static const char *finish_opts(struct agc_opts *o, const char *root, const char *state,
                               const char *agent, const char *user, const char *principals)
{
    char real[PATH_MAX];
    const char *msg;
    ssize_t n;

    if (root && strcmp(root, "/") != 0) {
        if (!realpath(root, real) || strlen(real) >= sizeof o->root)
            return "--root: no such directory";
        snprintf(o->root, sizeof o->root, "%s", strcmp(real, "/") == 0 ? "" : real);
    }
    if (state)
        snprintf(o->state_dir, sizeof o->state_dir, "%s", state);
    else
        snprintf(o->state_dir, sizeof o->state_dir, "%s%s/configure", o->root, PC_LOCALSTATEDIR);
    if (agent)
        snprintf(o->agent_path, sizeof o->agent_path, "%s", agent);
    else if ((n = readlink("/proc/self/exe", o->agent_path, sizeof o->agent_path - 1)) > 0)
        o->agent_path[n] = '\0';
    if (!safe_word(o->agent_path, 1))
        return "--agent-path: an absolute path of letters, digits and ./_-+ is needed";
    if ((msg = finish_principals(o, principals)))
        return msg;
    if (!user) /* configure is single-threaded: getpwnam's static buffer is fine */
        /* cppcheck-suppress getpwnamCalled */
        user = getpwnam("portcullis-principals") ? "portcullis-principals" : "nobody";
    if (!safe_word(user, 0))
        return "--principals-user: not a valid user name";
    snprintf(o->principals_user, sizeof o->principals_user, "%s", user);
    if (o->breakglass_group && !safe_word(o->breakglass_group, 0))
        return "--breakglass-group: not a valid group name";
    return NULL;
}

static int parse_opts(int argc, char **argv, int configure, struct agc_opts *o)
{
    static const struct option opts[] = { { "root", required_argument, NULL, 'r' },
                                          { "dry-run", no_argument, NULL, 'n' },
                                          { "no-reload", no_argument, NULL, 'N' },
                                          { "breakglass-group", required_argument, NULL, 'b' },
                                          { "sudo", no_argument, NULL, 's' },
                                          { "agent-path", required_argument, NULL, 'a' },
                                          { "principals-user", required_argument, NULL, 'u' },
                                          { "principals-path", required_argument, NULL, 'P' },
                                          { "replace-authmethods", no_argument, NULL, 'R' },
                                          { "state-dir", required_argument, NULL, 'S' },
                                          { "sshd", required_argument, NULL, 'D' },
                                          { "status", no_argument, NULL, 'T' },
                                          { "help", no_argument, NULL, 'h' },
                                          { NULL, 0, NULL, 0 } };
    const char *cmd = configure ? "configure" : "unconfigure", *root = NULL, *state = NULL,
               *agent = NULL, *user = NULL, *principals = NULL, *msg;
    int c;

    memset(o, 0, sizeof *o);
    while ((c = getopt_long(argc, argv, "+nh", opts, NULL)) != -1) {
        if (!configure && strchr("bsauPRT", c))
            return usage_error(cmd, "option not accepted by unconfigure");
        switch (c) {
        case 'r': root = optarg; break;
        case 'n': o->dry_run = 1; break;
        case 'N': o->no_reload = 1; break;
        case 'b': o->breakglass_group = optarg; break;
        case 's': o->sudo = 1; break;
        case 'a': agent = optarg; break;
        case 'u': user = optarg; break;
        case 'P': principals = optarg; break;
        case 'R': o->replace_authmethods = 1; break;
        case 'S': state = optarg; break;
        case 'D': o->sshd = optarg; break;
        case 'T': want_status = 1; break;
        case 'h': fputs(configure ? usage_configure : usage_unconfigure, stdout); return -1;
        default: return usage_error(cmd, "invalid option");
        }
    }
    if (optind != argc)
        return usage_error(cmd, "no arguments expected");
    if ((msg = finish_opts(o, root, state, agent, user, principals)))
        return usage_error(cmd, msg);
    return 0;
}

static void fail(const char *what, const char *err)
{
    fprintf(stderr, "portcullis-agent: %s: %s\n", what, err);
}

/* Undoes the list (journal or manifest), reloads sshd on the restored files, forgets.
 * strict (unconfigure): when the restored files fail sshd -t, the running sshd cannot be
 * reloaded and still uses Portcullis (its principals command, CA, PAM method), so this is an
 * error and the manifest stays: unconfigure can be rerun once the admin has fixed sshd's
 * configuration, and a package removal that depends on it refuses instead of locking people
 * out. Not strict (recovering an interrupted run, whose changes sshd never loaded): a warning. */
static int undo_all(const struct agc_opts *o, const char *list, int strict, char *err, size_t errsz)
{
    int n = 0, rc = agc_tx_undo(o, list, &n, err, errsz);
    char terr[ERRSZ] = "";

    if (rc != PC_OK)
        return rc;
    printf("restored %d file%s\n", n, n == 1 ? "" : "s");
    if (agc_sshd_test(o, terr, sizeof terr) != PC_OK) {
        if (strict) {
            snprintf(err, errsz,
                     "the restored files are back, but they do not pass sshd -t, so "
                     "sshd was not reloaded and still runs with Portcullis: %s; fix sshd's "
                     "configuration and run 'portcullis-agent unconfigure' again",
                     terr);
            return PC_ERR_STATE;
        }
        fprintf(stderr,
                "portcullis-agent: warning: the restored configuration does not pass "
                "sshd -t, so sshd is not reloaded: %s\n",
                terr);
    } else if ((rc = agc_reload(o, err, errsz)) != PC_OK) {
        return rc;
    }
    agc_step("reloaded after undo");
    return agc_tx_forget(o, list, err, errsz);
}

static int recover(const struct agc_opts *o, char *err, size_t errsz)
{
    char journal[PATH_MAX], manifest[PATH_MAX], backup[PATH_MAX];

    agc_state_paths(o, journal, manifest, backup);
    if (access(journal, F_OK) != 0)
        return PC_OK;
    if (o->dry_run) {
        snprintf(err, errsz,
                 "an interrupted run left %s; run configure or unconfigure without "
                 "--dry-run to restore the files first",
                 journal);
        return PC_ERR_STATE;
    }
    fprintf(stderr,
            "portcullis-agent: an earlier run was interrupted: restoring the files it "
            "changed (%s)\n",
            journal);
    return undo_all(o, journal, 0, err, errsz);
}

static int changed(const struct agc_file *f)
{
    return !f->existed || pc_sshbuf_len(&f->new) != f->old_len ||
           (f->old_len && memcmp(pc_sshbuf_ptr(&f->new), f->old, f->old_len) != 0);
}

static int print_plan(const struct agc_plan *p, const struct agc_opts *o)
{
    int rc = PC_OK;

    printf("# portcullis-agent configure --dry-run: %s\n",
           p->dropin ? "drop-in " AGC_DROPIN : "marked block at the top of " AGC_SSHD_CONFIG);
    for (size_t i = 0; i < p->ndirs; i++) {
        char real[PATH_MAX];
        struct stat st;
        if (agc_path(o, p->dirs[i], real, sizeof real) == PC_OK && stat(real, &st) != 0)
            printf("mkdir %s\n", p->dirs[i]);
    }
    for (size_t i = 0; i < p->nfiles && rc == PC_OK; i++)
        if (changed(&p->files[i]))
            rc = agc_print_diff(p->files[i].path, p->files[i].old, p->files[i].old_len,
                                pc_sshbuf_cstr(&p->files[i].new), pc_sshbuf_len(&p->files[i].new));
    return rc;
}

/* Writes the plan and validates it; the caller undoes the journal on failure. */
static int apply(struct agc_tx *t, const struct agc_plan *p, const struct agc_opts *o, char *err,
                 size_t errsz)
{
    static char out[256 * 1024];
    int rc = PC_OK;

    for (size_t i = 0; i < p->ndirs && rc == PC_OK; i++)
        rc = agc_tx_mkdir(t, p->dirs[i], err, errsz);
    for (size_t i = 0; i < p->nfiles && rc == PC_OK; i++)
        if (changed(&p->files[i]))
            rc = agc_tx_write(t, &p->files[i], err, errsz);
    if (rc == PC_OK)
        rc = agc_check_parsed(p, o, err, errsz);
    if (rc == PC_OK && (rc = agc_sshd_test(o, err, errsz)) == PC_OK)
        agc_step("sshd -t passed");
    if (rc == PC_OK && (rc = agc_sshd_effective(o, out, sizeof out, err, errsz)) == PC_OK &&
        (rc = agc_check_effective(p, o, out, err, errsz)) == PC_OK)
        agc_step("sshd -T checked");
    return rc;
}

/* One try: plan, write, validate, reload, commit. PC_ERR_STATE from a drop-in plan means
 * "overridden": the caller retries with the marked block. */
static int attempt(const struct agc_opts *o, int major, int minor, int force_block, int *dropin,
                   char *err, size_t errsz)
{
    struct agc_plan p;
    struct agc_tx t;
    char uerr[ERRSZ] = "";
    int rc;

    memset(&p, 0, sizeof p);
    p.major = major;
    p.minor = minor;
    rc = agc_plan_sshd(&p, o, force_block, err, errsz);
    if (rc == PC_OK)
        rc = agc_plan_pam(&p, o, err, errsz);
    *dropin = p.dropin;
    if (rc == PC_OK && o->dry_run) {
        rc = print_plan(&p, o);
        agc_plan_free(&p);
        return rc;
    }
    if (rc != PC_OK) {
        agc_plan_free(&p);
        return rc;
    }
    rc = agc_tx_begin(&t, o, err, errsz);
    if (rc == PC_OK)
        rc = apply(&t, &p, o, err, errsz);
    if (rc == PC_OK && (rc = agc_reload(o, err, errsz)) == PC_OK)
        agc_step("reloaded");
    if (rc == PC_OK)
        rc = agc_tx_commit(&t, err, errsz);
    if (rc != PC_OK && access(t.journal, F_OK) == 0 && undo_all(o, t.journal, 0, uerr, sizeof uerr))
        fprintf(stderr,
                "portcullis-agent: restoring failed too: %s (the journal %s stays; "
                "rerun to retry)\n",
                uerr, t.journal);
    agc_tx_free(&t);
    agc_plan_free(&p);
    return rc;
}

static int configure(const struct agc_opts *o, char *err, size_t errsz)
{
    char journal[PATH_MAX], manifest[PATH_MAX], backup[PATH_MAX];
    int major, minor, dropin = 0, rc;

    if ((rc = recover(o, err, errsz)) != PC_OK)
        return rc;
    agc_state_paths(o, journal, manifest, backup);
    if (access(manifest, F_OK) == 0) {
        snprintf(err, errsz,
                 "already configured (%s exists); run 'portcullis-agent "
                 "unconfigure' first",
                 manifest);
        return PC_ERR_EXISTS;
    }
    if (agc_sshd_version(o, &major, &minor) != PC_OK)
        fprintf(stderr, "portcullis-agent: warning: cannot tell the OpenSSH version (sshd -V, "
                        "ssh -V); not relying on Include\n");
    rc = attempt(o, major, minor, 0, &dropin, err, errsz);
    if (rc == PC_ERR_STATE && dropin) {
        fprintf(stderr,
                "portcullis-agent: %s\nportcullis-agent: the drop-in does not win; "
                "writing a marked block at the top of %s instead\n",
                err, AGC_SSHD_CONFIG);
        rc = attempt(o, major, minor, 1, &dropin, err, errsz);
    }
    if (rc == PC_OK && !o->dry_run)
        printf("configured: %s%s\n", o->root, dropin ? AGC_DROPIN : AGC_SSHD_CONFIG);
    return rc;
}

/* configure --status: 0 when the manifest of a finished configure exists, else 1. */
static int status(const struct agc_opts *o)
{
    char journal[PATH_MAX], manifest[PATH_MAX], backup[PATH_MAX];

    agc_state_paths(o, journal, manifest, backup);
    if (access(journal, F_OK) == 0) {
        printf("interrupted: %s exists; the next configure or unconfigure restores the files "
               "first\n",
               journal);
        return 1;
    }
    if (access(manifest, F_OK) == 0) {
        printf("configured: %s\n", manifest);
        return 0;
    }
    printf("not configured\n");
    return 1;
}

int ag_configure_main(int argc, char **argv)
{
    struct agc_opts o;
    char err[ERRSZ] = "";
    int rc = parse_opts(argc, argv, 1, &o);

    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (want_status)
        return status(&o);
    if (configure(&o, err, sizeof err) != PC_OK) {
        fail(o.dry_run ? "configure --dry-run" : "configure failed, nothing changed", err);
        return 1;
    }
    return 0;
}

int ag_unconfigure_main(int argc, char **argv)
{
    struct agc_opts o;
    char journal[PATH_MAX], manifest[PATH_MAX], backup[PATH_MAX], err[ERRSZ] = "";
    int rc = parse_opts(argc, argv, 0, &o);

    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (recover(&o, err, sizeof err) != PC_OK) {
        fail("unconfigure", err);
        return 1;
    }
    agc_state_paths(&o, journal, manifest, backup);
    if (access(manifest, F_OK) != 0) {
        printf("not configured: nothing to undo\n");
        return 0;
    }
    rc = o.dry_run ? agc_tx_diff_undo(&o, manifest, err, sizeof err)
                   : undo_all(&o, manifest, 1, err, sizeof err);
    if (rc != PC_OK) {
        fail("unconfigure", err);
        return 1;
    }
    if (!o.dry_run)
        printf("unconfigured\n");
    return 0;
}
