/* SPDX-License-Identifier: BSD-2-Clause */
/* What configure writes into /etc/pam.d/sshd (and /etc/pam.d/sudo with --sudo).
 *
 * sshd: the password include of the auth section (Debian "@include common-auth", RHEL
 * "auth substack password-auth" / "auth include system-auth") is replaced by
 *     auth [success=done ignore=ignore default=die] pam_portcullis.so
 *     auth required pam_permit.so
 * so a key + 2FA user sees one prompt (ours) and no password prompt; a user exempt by policy
 * (PAM_IGNORE) passes through pam_permit (a stack whose only module ignores fails); any
 * error of ours ends the stack with a failure.
 *
 * sudo: the password stays and our factor follows it; the include becomes a substack so that
 * a "sufficient" pam_unix inside it (RHEL) cannot end the stack before us:
 *     auth substack common-auth
 *     auth [success=ok ignore=ignore default=die] pam_portcullis.so */
#include "config.h"
#include "agc.h"
#include "pc_err.h"
#include <stdio.h>
#include <string.h>

#define PAM_BEGIN "# BEGIN portcullis (was: %.*s)\n"
#define PAM_END "# END portcullis\n"

static const char *const password_stacks[] = { "common-auth", "password-auth", "system-auth" };

/* If line is the password include of the auth section, stores the stack's name. */
static int is_password_include(const char *line, size_t len, char *name, size_t namesz)
{
    char buf[512], *tok[4] = { 0 }, *save = NULL;
    size_t n = 0;

    if (len >= sizeof buf)
        return 0;
    memcpy(buf, line, len);
    buf[len] = '\0';
    for (char *t = strtok_r(buf, " \t", &save); t && n < 4; t = strtok_r(NULL, " \t", &save))
        tok[n++] = t;
    if (n == 0 || tok[0][0] == '#')
        return 0;
    const char *stack = NULL;
    if (n == 2 && strcmp(tok[0], "@include") == 0)
        stack = tok[1];
    else if (n == 3 && strcmp(tok[0], "auth") == 0 &&
             (strcmp(tok[1], "include") == 0 || strcmp(tok[1], "substack") == 0))
        stack = tok[2];
    for (size_t i = 0; stack && i < sizeof password_stacks / sizeof password_stacks[0]; i++)
        if (strcmp(stack, password_stacks[i]) == 0) {
            snprintf(name, namesz, "%s", stack);
            return 1;
        }
    return 0;
}

static int has_module(const char *text)
{
    for (const char *s = text; *s;) {
        size_t l = strcspn(s, "\n"), sp = strspn(s, " \t");
        const char *hit = strstr(s, "pam_portcullis.so");
        if (hit && hit < s + l && s[sp] != '#')
            return 1;
        s += l + (s[l] == '\n');
    }
    return 0;
}

static int replacement(struct pc_sshbuf *b, const char *line, size_t len, const char *stack,
                       int sudo)
{
    int rc = pc_sshbuf_putf(b, PAM_BEGIN, (int)len, line);

    if (rc != PC_OK)
        return rc;
    if (sudo)
        rc = pc_sshbuf_putf(b,
                            "auth substack %s\n"
                            "auth [success=ok ignore=ignore default=die] pam_portcullis.so\n",
                            stack);
    else
        rc = pc_sshbuf_putf(b, "auth [success=done ignore=ignore default=die] pam_portcullis.so\n"
                               "auth required pam_permit.so\n");
    return rc == PC_OK ? pc_sshbuf_put_raw(b, PAM_END, strlen(PAM_END)) : rc;
}

static int plan_one(struct agc_plan *p, const struct agc_opts *o, const char *path, int sudo,
                    char *err, size_t errsz)
{
    struct agc_file *f = agc_plan_file(p, o, path, err, errsz);
    char stack[64];
    int done = 0, rc = PC_OK;

    if (!f)
        return PC_ERR_IO;
    if (!f->existed) {
        snprintf(err, errsz, "%s%s: no such file (is PAM installed?)", o->root, path);
        return PC_ERR_NOTFOUND;
    }
    if (has_module(f->old)) {
        snprintf(err, errsz,
                 "%s%s already uses pam_portcullis.so; remove it or run "
                 "'portcullis-agent unconfigure'",
                 o->root, path);
        return PC_ERR_EXISTS;
    }
    for (const char *s = f->old; *s && rc == PC_OK;) {
        size_t l = strcspn(s, "\n");
        if (is_password_include(s, l, stack, sizeof stack)) {
            if (!done)
                rc = replacement(&f->new, s, l, stack, sudo);
            else if (!sudo) /* a second password stack would bring the prompt back */
                rc = pc_sshbuf_putf(&f->new, "# portcullis: disabled: %.*s\n", (int)l, s);
            else
                rc = pc_sshbuf_put_raw(&f->new, s, l + (s[l] == '\n'));
            done = 1;
        } else {
            rc = pc_sshbuf_put_raw(&f->new, s, l + (s[l] == '\n'));
        }
        s += l + (s[l] == '\n');
    }
    if (rc == PC_OK && !done) {
        snprintf(err, errsz,
                 "%s%s: found no '@include common-auth' or 'auth substack|include "
                 "password-auth|system-auth' line to replace; add pam_portcullis.so by hand "
                 "(see pam_portcullis(8))",
                 o->root, path);
        return PC_ERR_NOTFOUND;
    }
    return rc;
}

int agc_plan_pam(struct agc_plan *p, const struct agc_opts *o, char *err, size_t errsz)
{
    int rc = plan_one(p, o, "/etc/pam.d/sshd", 0, err, errsz);

    if (rc == PC_OK && o->sudo)
        rc = plan_one(p, o, "/etc/pam.d/sudo", 1, err, errsz);
    return rc;
}
