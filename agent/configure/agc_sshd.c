/* SPDX-License-Identifier: BSD-2-Clause */
/* What configure writes into sshd's configuration, and the checks that it is in effect.
 * Our directives go into a drop-in that sorts first (00-portcullis.conf) when the main file
 * includes that folder before any Match; otherwise into a marked block at the top of the main
 * file. sshd takes the first value of a keyword, so written first we win at global scope. */
#include "config.h"
#include "agc.h"
#include "pc_err.h"
#include "pc_fs.h"
#include "pc_sshd_config.h"
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define BLOCK_BEGIN "# BEGIN portcullis\n"
#define BLOCK_END "# END portcullis\n"

static const char *const default_hostkeys[] = {
    "/etc/ssh/ssh_host_rsa_key",
    "/etc/ssh/ssh_host_ecdsa_key",
    "/etc/ssh/ssh_host_ed25519_key",
};
#define CERTIFIED_HOSTKEY "/etc/ssh/ssh_host_ed25519_key" /* agent's default host_key */

struct expect {
    const char *kw, *val;
};

void agc_principals_command(const struct agc_opts *o, char *buf, size_t bufsz)
{
    if (o->principals_path[0])
        snprintf(buf, bufsz, "%s %%u %%i %%s %%f", o->principals_path);
    else
        snprintf(buf, bufsz, "%s principals %%u %%i %%s %%f", o->agent_path);
}

/* Our first-wins directives and their values (cmd is the principals command buffer). */
static size_t expected(const struct agc_opts *o, char *cmd, size_t cmdsz, struct expect *e)
{
    agc_principals_command(o, cmd, cmdsz);
    e[0] = (struct expect){ "trustedusercakeys", AGC_USER_CA };
    e[1] = (struct expect){ "authorizedprincipalscommand", cmd };
    e[2] = (struct expect){ "authorizedprincipalscommanduser", o->principals_user };
    e[3] = (struct expect){ "revokedkeys", AGC_KRL };
    e[4] = (struct expect){ "usepam", "yes" };
    e[5] = (struct expect){ "kbdinteractiveauthentication", "yes" };
    e[6] = (struct expect){ "authenticationmethods", AGC_AUTH_METHODS };
    return 7;
}

static int value_of(const struct pc_sshd_directive *d, char *buf, size_t bufsz)
{
    if (pc_sshd_directive_value(d, buf, bufsz) != PC_OK) {
        snprintf(buf, bufsz, "(too long)");
        return PC_ERR_TOOBIG;
    }
    return PC_OK;
}

/* Existing settings we must not override silently. */
static int check_existing(const struct pc_sshd_config *c, const struct agc_opts *o, char *err,
                          size_t errsz)
{
    struct expect e[8];
    char cmd[PATH_MAX + 32], v[1024];
    const struct pc_sshd_directive *w;
    size_t ne = expected(o, cmd, sizeof cmd, e);

    if ((w = pc_sshd_config_global(c, "authenticationmethods")) && value_of(w, v, sizeof v) == 0 &&
        strcmp(v, AGC_AUTH_METHODS) != 0 && strcasecmp(v, "any") != 0) {
        if (!o->replace_authmethods) {
            snprintf(err, errsz,
                     "%s:%u: AuthenticationMethods %s is set; Portcullis needs %s "
                     "there. Rerun with --replace-authmethods to let ours take precedence, or "
                     "remove that line",
                     w->file, w->line, v, AGC_AUTH_METHODS);
            return PC_ERR_EXISTS;
        }
        fprintf(stderr,
                "portcullis-agent: %s:%u: AuthenticationMethods %s is overridden by "
                "ours (--replace-authmethods)\n",
                w->file, w->line, v);
    }
    if ((w = pc_sshd_config_global(c, "revokedkeys")) && value_of(w, v, sizeof v) == 0 &&
        strcmp(v, AGC_KRL) != 0 && strcasecmp(v, "none") != 0) {
        snprintf(err, errsz,
                 "%s:%u: RevokedKeys %s is set and sshd reads only one file; merge "
                 "it into %s or remove that line, then rerun",
                 w->file, w->line, v, AGC_KRL);
        return PC_ERR_EXISTS;
    }
    if ((w = pc_sshd_config_global(c, "authorizedprincipalscommand")) &&
        value_of(w, v, sizeof v) == 0 && strcmp(v, cmd) != 0 && strcasecmp(v, "none") != 0)
        fprintf(stderr,
                "portcullis-agent: warning: %s:%u: AuthorizedPrincipalsCommand %s is "
                "replaced by ours\n",
                w->file, w->line, v);
    for (size_t i = 0; i < c->n; i++)
        for (size_t k = 0; k < ne && c->d[i].match; k++)
            if (strcmp(c->d[i].keyword, e[k].kw) == 0)
                fprintf(stderr,
                        "portcullis-agent: warning: %s:%u: %s inside 'Match %s' "
                        "overrides Portcullis for the connections it matches\n",
                        c->d[i].file, c->d[i].line, c->d[i].keyword, c->d[i].match);
    return PC_OK;
}

static int add_hostkey(struct agc_plan *p, const char *path)
{
    for (size_t i = 0; i < p->nhostkeys; i++)
        if (strcmp(p->hostkeys[i], path) == 0)
            return PC_OK;
    if (p->nhostkeys >= AGC_MAX_HOSTKEYS || strlen(path) >= PATH_MAX)
        return PC_ERR_TOOBIG;
    memcpy(p->hostkeys[p->nhostkeys++], path, strlen(path) + 1);
    return PC_OK;
}

static int exists_in_root(const struct agc_opts *o, const char *path)
{
    char real[PATH_MAX];
    return agc_path(o, path, real, sizeof real) == PC_OK && access(real, F_OK) == 0;
}

/* The host keys sshd uses today (explicit HostKey lines, else its defaults that exist), plus
 * the key our host certificate is for. Lines for those not configured explicitly go into d. */
static int plan_hostkeys(struct agc_plan *p, const struct agc_opts *o,
                         const struct pc_sshd_config *c, struct pc_sshbuf *d)
{
    const struct pc_sshd_directive *h;
    size_t pos = 0, explicit_n;
    int rc = PC_OK;

    while ((h = pc_sshd_config_next(c, "hostkey", &pos)) && rc == PC_OK)
        rc = add_hostkey(p, h->argv[0]);
    explicit_n = p->nhostkeys;
    for (size_t i = 0; explicit_n == 0 && i < 3 && rc == PC_OK; i++)
        if (exists_in_root(o, default_hostkeys[i]))
            rc = add_hostkey(p, default_hostkeys[i]);
    if (rc == PC_OK && exists_in_root(o, CERTIFIED_HOSTKEY))
        rc = add_hostkey(p, CERTIFIED_HOSTKEY);
    for (size_t i = explicit_n; i < p->nhostkeys && rc == PC_OK; i++)
        rc = pc_sshbuf_putf(d, "HostKey %s\n", p->hostkeys[i]);
    return rc;
}

/* Whether b is empty or its text ends with a newline. */
static int ends_line(const struct pc_sshbuf *b)
{
    size_t n = pc_sshbuf_len(b);
    return n == 0 || pc_sshbuf_ptr(b)[n - 1] == '\n';
}

/* Appends the lines of src not already in dst (our CA file keeps every key it trusted). */
static int merge_lines(struct pc_sshbuf *dst, const char *src)
{
    const char *s = src;
    int rc = PC_OK;

    while (*s && rc == PC_OK) {
        size_t l = strcspn(s, "\n"), t = l;
        while (t > 0 && (s[t - 1] == '\r' || s[t - 1] == ' ' || s[t - 1] == '\t'))
            t--;
        if (t > 0 && s[0] != '#') {
            int found = 0;
            for (const char *q = pc_sshbuf_cstr(dst); *q && !found;) {
                size_t ql = strcspn(q, "\n");
                found = ql == t && memcmp(q, s, t) == 0;
                q += ql + (q[ql] == '\n');
            }
            if (!found && !ends_line(dst))
                rc = pc_sshbuf_put_raw(dst, "\n", 1);
            if (!found && rc == PC_OK && (rc = pc_sshbuf_put_raw(dst, s, t)) == PC_OK)
                rc = pc_sshbuf_put_raw(dst, "\n", 1);
        }
        s += l + (s[l] == '\n');
    }
    return rc;
}

static int keep_or_create(struct agc_plan *p, const struct agc_opts *o, const char *path,
                          struct agc_file **out, char *err, size_t errsz)
{
    struct agc_file *f = agc_plan_file(p, o, path, err, errsz);
    if (!f)
        return PC_ERR_IO;
    *out = f;
    return f->existed ? pc_sshbuf_put_raw(&f->new, f->old, f->old_len) : PC_OK;
}

/* Our CA file, with the keys of an existing TrustedUserCAKeys file merged in; the KRL. */
static int plan_ca_files(struct agc_plan *p, const struct agc_opts *o,
                         const struct pc_sshd_config *c, char *err, size_t errsz)
{
    const struct pc_sshd_directive *w = pc_sshd_config_global(c, "trustedusercakeys");
    struct agc_file *ca, *krl;
    char real[PATH_MAX], *keys = NULL;
    size_t len;
    int rc;

    if ((rc = keep_or_create(p, o, AGC_USER_CA, &ca, err, errsz)) != PC_OK ||
        (rc = keep_or_create(p, o, AGC_KRL, &krl, err, errsz)) != PC_OK)
        return rc;
    if (!w || strcmp(w->argv[0], AGC_USER_CA) == 0 || strcasecmp(w->argv[0], "none") == 0)
        return PC_OK;
    for (size_t i = 0; i < w->argc && rc == PC_OK; i++) {
        if (agc_path(o, w->argv[i], real, sizeof real) != PC_OK ||
            pc_read_file(real, 1024 * 1024, &keys, &len) != PC_OK) {
            snprintf(err, errsz,
                     "%s:%u: TrustedUserCAKeys %s: cannot read it to merge its "
                     "keys into %s",
                     w->file, w->line, w->argv[i], AGC_USER_CA);
            return PC_ERR_IO;
        }
        rc = merge_lines(&ca->new, keys);
        free(keys);
    }
    fprintf(stderr,
            "portcullis-agent: %s:%u: the keys of TrustedUserCAKeys %s are merged into "
            "%s\n",
            w->file, w->line, w->argv[0], AGC_USER_CA);
    return rc;
}

/* Does the main file include our drop-in's folder before any Match? */
static int dropin_included(const struct pc_sshd_config *c)
{
    char pat[PATH_MAX];

    for (size_t i = 0; i < c->n; i++) {
        const struct pc_sshd_directive *d = &c->d[i];
        if (d->depth != 0)
            continue;
        if (strcmp(d->keyword, "match") == 0)
            return 0;
        if (strcmp(d->keyword, "include") != 0)
            continue;
        for (size_t k = 0; k < d->argc; k++) {
            int n = snprintf(pat, sizeof pat, "%s%s", d->argv[k][0] == '/' ? "" : "/etc/ssh/",
                             d->argv[k]);
            if (n > 0 && (size_t)n < sizeof pat && fnmatch(pat, AGC_DROPIN, FNM_PATHNAME) == 0)
                return 1;
        }
    }
    return 0;
}

static int directives_text(struct agc_plan *p, const struct agc_opts *o,
                           const struct pc_sshd_config *c, struct pc_sshbuf *d)
{
    char cmd[PATH_MAX + 32];
    int rc;

    agc_principals_command(o, cmd, sizeof cmd);
    rc = pc_sshbuf_putf(d,
                        "# Written by portcullis-agent configure; undone by "
                        "portcullis-agent unconfigure.\nTrustedUserCAKeys %s\n",
                        AGC_USER_CA);
    if (rc == PC_OK)
        rc = plan_hostkeys(p, o, c, d);
    if (rc == PC_OK)
        rc = pc_sshbuf_putf(d,
                            "HostCertificate %s\nAuthorizedPrincipalsCommand %s\n"
                            "AuthorizedPrincipalsCommandUser %s\nRevokedKeys %s\nUsePAM yes\n"
                            "KbdInteractiveAuthentication yes\nAuthenticationMethods %s\n",
                            AGC_HOST_CERT, cmd, o->principals_user, AGC_KRL, AGC_AUTH_METHODS);
    return rc;
}

static int plan_main(struct agc_plan *p, const struct agc_opts *o, struct pc_sshbuf *d, char *err,
                     size_t errsz)
{
    struct agc_file *m = agc_plan_file(p, o, AGC_SSHD_CONFIG, err, errsz), *f;
    int rc = PC_OK;

    if (!m)
        return PC_ERR_IO;
    if (m->old && strstr(m->old, BLOCK_BEGIN)) {
        snprintf(err, errsz,
                 "%s already holds a '# BEGIN portcullis' block (from an earlier "
                 "run?); remove it, or run 'portcullis-agent unconfigure'",
                 AGC_SSHD_CONFIG);
        return PC_ERR_EXISTS;
    }
    if (p->dropin) {
        if (!(f = agc_plan_file(p, o, AGC_DROPIN, err, errsz)))
            return PC_ERR_IO;
        rc = pc_sshbuf_put_raw(&f->new, pc_sshbuf_ptr(d), pc_sshbuf_len(d));
    } else if ((rc = pc_sshbuf_put_raw(&m->new, BLOCK_BEGIN, strlen(BLOCK_BEGIN))) == PC_OK &&
               (rc = pc_sshbuf_put_raw(&m->new, pc_sshbuf_ptr(d), pc_sshbuf_len(d))) == PC_OK) {
        rc = pc_sshbuf_put_raw(&m->new, BLOCK_END, strlen(BLOCK_END));
    }
    if (rc == PC_OK && m->old)
        rc = pc_sshbuf_put_raw(&m->new, m->old, m->old_len);
    if (rc == PC_OK && o->breakglass_group) {
        if (!ends_line(&m->new))
            rc = pc_sshbuf_put_raw(&m->new, "\n", 1);
        if (rc == PC_OK)
            rc = pc_sshbuf_putf(&m->new,
                                "# BEGIN portcullis break-glass\nMatch Group %s\n"
                                "\tAuthenticationMethods publickey\n# END portcullis break-glass\n",
                                o->breakglass_group);
    }
    return rc;
}

int agc_plan_sshd(struct agc_plan *p, const struct agc_opts *o, int force_block, char *err,
                  size_t errsz)
{
    struct pc_sshd_config c;
    struct pc_sshbuf d;
    char perr[1024] = "";
    int rc;

    pc_sshbuf_init(&d, AGC_MAX_TEXT);
    if ((rc = pc_sshd_config_load(&c, o->root, AGC_SSHD_CONFIG, perr, sizeof perr)) != PC_OK) {
        snprintf(err, errsz, "cannot read the sshd configuration: %s", perr);
        return rc;
    }
    rc = check_existing(&c, o, err, errsz);
    p->dropin = !force_block && (p->major > 8 || (p->major == 8 && p->minor >= 2)) &&
                dropin_included(&c);
    if (rc == PC_OK && (rc = directives_text(p, o, &c, &d)) != PC_OK)
        snprintf(err, errsz, "cannot build the sshd directives: %s", pc_strerror(rc));
    if (rc == PC_OK)
        rc = plan_main(p, o, &d, err, errsz);
    if (rc == PC_OK)
        rc = plan_ca_files(p, o, &c, err, errsz);
    if (rc == PC_OK) {
        memcpy(p->dirs[p->ndirs++], AGC_SSH_DIR, sizeof AGC_SSH_DIR);
        if (p->dropin)
            memcpy(p->dirs[p->ndirs++], AGC_DROPIN_DIR, sizeof AGC_DROPIN_DIR);
    }
    pc_sshbuf_free(&d);
    pc_sshd_config_free(&c);
    return rc;
}

int agc_check_parsed(const struct agc_plan *p, const struct agc_opts *o, char *err, size_t errsz)
{
    struct pc_sshd_config c;
    struct expect e[8];
    char cmd[PATH_MAX + 32], v[1024], perr[1024] = "";
    size_t ne = expected(o, cmd, sizeof cmd, e);
    int rc;

    (void)p;
    if ((rc = pc_sshd_config_load(&c, o->root, AGC_SSHD_CONFIG, perr, sizeof perr)) != PC_OK) {
        snprintf(err, errsz, "cannot read the new sshd configuration: %s", perr);
        return rc;
    }
    for (size_t i = 0; i < ne && rc == PC_OK; i++) {
        const struct pc_sshd_directive *w = pc_sshd_config_global(&c, e[i].kw);
        if (!w || value_of(w, v, sizeof v) != PC_OK || strcasecmp(v, e[i].val) != 0) {
            snprintf(err, errsz, "%s: the value in effect is '%s' (%s:%u), not ours (%s)", e[i].kw,
                     w ? v : "unset", w ? w->file : "-", w ? w->line : 0, e[i].val);
            rc = PC_ERR_STATE;
        }
    }
    pc_sshd_config_free(&c);
    return rc;
}

/* Is "kw value" a line of the sshd -T output? */
static int has_line(const char *out, const char *kw, const char *val)
{
    size_t kl = strlen(kw), vl = strlen(val);

    for (const char *s = out; *s;) {
        size_t l = strcspn(s, "\n");
        if (l == kl + 1 + vl && strncmp(s, kw, kl) == 0 && s[kl] == ' ' &&
            strncasecmp(s + kl + 1, val, vl) == 0)
            return 1;
        s += l + (s[l] == '\n');
    }
    return 0;
}

/* Why kw is not val in sshd -T (issue 18, for doctor's message): no file sets it (sshd's
 * default applies), or a file read first sets another value (the first one wins), or, when the
 * files cannot tell (a Match block, an unreadable file), "another file overrides it". */
static void not_in_effect(const struct agc_opts *o, const char *kw, const char *val, char *err,
                          size_t errsz)
{
    struct pc_sshd_config c;
    const struct pc_sshd_directive *w = NULL;
    char v[1024], perr[256];
    int loaded = pc_sshd_config_load(&c, o->root, AGC_SSHD_CONFIG, perr, sizeof perr) == PC_OK;

    if (loaded)
        w = pc_sshd_config_global(&c, kw);
    if (loaded && !w)
        snprintf(err, errsz,
                 "sshd -T: %s is not '%s': it is missing (no file of sshd's configuration sets "
                 "it, so sshd uses its default)",
                 kw, val);
    else if (w && value_of(w, v, sizeof v) == PC_OK && strcasecmp(v, val) != 0)
        snprintf(err, errsz,
                 "sshd -T: %s is not '%s': overridden by %s:%u, which sets '%s' and is read "
                 "first (sshd uses the first value)",
                 kw, val, w->file, w->line, v);
    else
        snprintf(err, errsz, "sshd -T: %s is not '%s' (another file overrides it)", kw, val);
    if (loaded)
        pc_sshd_config_free(&c);
}

int agc_check_effective(const struct agc_plan *p, const struct agc_opts *o, const char *out,
                        char *err, size_t errsz)
{
    struct expect e[8];
    char cmd[PATH_MAX + 32];
    size_t ne = expected(o, cmd, sizeof cmd, e);

    for (size_t i = 0; i < ne; i++)
        if (!has_line(out, e[i].kw, e[i].val)) {
            not_in_effect(o, e[i].kw, e[i].val, err, errsz);
            return PC_ERR_STATE;
        }
    if (!has_line(out, "hostcertificate", AGC_HOST_CERT)) {
        snprintf(err, errsz, "sshd -T: hostcertificate %s missing", AGC_HOST_CERT);
        return PC_ERR_STATE;
    }
    for (size_t i = 0; i < p->nhostkeys; i++)
        if (!has_line(out, "hostkey", p->hostkeys[i])) {
            snprintf(err, errsz, "sshd -T: host key %s would no longer be used", p->hostkeys[i]);
            return PC_ERR_STATE;
        }
    return PC_OK;
}
