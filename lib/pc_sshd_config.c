/* SPDX-License-Identifier: BSD-2-Clause */
/* sshd_config reader: see pc_sshd_config.h. Follows OpenSSH's servconf.c (strdelim for the
 * keyword, argv_split for the arguments, Include via glob, Match scope per file). */
#include "config.h"
#include "pc_sshd_config.h"
#include "pc_err.h"
#include "pc_fs.h"
#include <ctype.h>
#include <glob.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct parse_ctx {
    struct pc_sshd_config *c;
    const char *root; /* "" for the real system */
    char *err;
    size_t errsz;
};

static const struct {
    const char *alias, *name;
} aliases[] = {
    { "challengeresponseauthentication", "kbdinteractiveauthentication" },
    { "pubkeyacceptedkeytypes", "pubkeyacceptedalgorithms" },
    { "hostbasedacceptedkeytypes", "hostbasedacceptedalgorithms" },
};

static void set_err(struct parse_ctx *p, const char *file, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void set_err(struct parse_ctx *p, const char *file, unsigned line, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (!p->err || p->errsz == 0)
        return;
    n = line ? snprintf(p->err, p->errsz, "%s:%u: ", file, line)
             : snprintf(p->err, p->errsz, "%s: ", file);
    if (n < 0 || (size_t)n >= p->errsz)
        return;
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errsz - (size_t)n, fmt, ap);
    va_end(ap);
}

void pc_sshd_free_args(char **argv, size_t argc)
{
    for (size_t i = 0; argv && i < argc; i++)
        free(argv[i]);
    free(argv);
}

/* Copies one word starting at s[*i] into arg (removing quotes and escapes), like argv_split. */
static int split_word(const char *s, size_t *i, char *arg)
{
    size_t j = 0;
    char quote = 0;

    for (; s[*i] != '\0'; (*i)++) {
        char ch = s[*i], nx = s[*i + 1];
        if (ch == '\\') {
            if (nx == '\'' || nx == '"' || nx == '\\' || (quote == 0 && nx == ' '))
                (*i)++;
            arg[j++] = s[*i];
        } else if (quote == 0 && (ch == ' ' || ch == '\t')) {
            break;
        } else if (quote == 0 && (ch == '"' || ch == '\'')) {
            quote = ch;
        } else if (quote != 0 && ch == quote) {
            quote = 0;
        } else {
            arg[j++] = ch;
        }
    }
    arg[j] = '\0';
    return quote != 0 ? PC_ERR_PARSE : PC_OK;
}

int pc_sshd_split_args(const char *s, char ***argv_out, size_t *argc_out)
{
    char **argv = NULL;
    size_t argc = 0, len = strlen(s);
    int rc = PC_OK;

    for (size_t i = 0; i < len; i++) {
        char **nv, *arg;
        if (s[i] == ' ' || s[i] == '\t')
            continue;
        if (s[i] == '#')
            break;
        if (argc >= PC_SSHD_MAX_ARGS) {
            rc = PC_ERR_TOOBIG;
            break;
        }
        nv = realloc(argv, (argc + 1) * sizeof *argv);
        arg = nv ? malloc(len - i + 1) : NULL;
        if (nv)
            argv = nv;
        if (!arg) {
            rc = PC_ERR_NOMEM;
            break;
        }
        argv[argc++] = arg;
        rc = split_word(s, &i, arg);
        if (rc != PC_OK || s[i] == '\0')
            break;
    }
    if (rc != PC_OK) {
        pc_sshd_free_args(argv, argc);
        return rc;
    }
    *argv_out = argv;
    *argc_out = argc;
    return PC_OK;
}

static int add_file(struct pc_sshd_config *c, const char *name)
{
    if (c->nfiles == c->files_cap) {
        size_t cap = c->files_cap ? c->files_cap * 2 : 16;
        char **nf = realloc(c->files, cap * sizeof *nf);
        if (!nf)
            return PC_ERR_NOMEM;
        c->files = nf;
        c->files_cap = cap;
    }
    if (!(c->files[c->nfiles] = strdup(name)))
        return PC_ERR_NOMEM;
    c->nfiles++;
    return PC_OK;
}

static void free_directive(struct pc_sshd_directive *d)
{
    free(d->keyword);
    pc_sshd_free_args(d->argv, d->argc);
    free(d->file);
    free(d->match);
}

static char *join_args(char **argv, size_t argc)
{
    size_t len = 1;
    char *s;

    for (size_t i = 0; i < argc; i++)
        len += strlen(argv[i]) + 1;
    if (!(s = malloc(len)))
        return NULL;
    s[0] = '\0';
    for (size_t i = 0, off = 0; i < argc; i++) {
        size_t l = strlen(argv[i]);
        if (i)
            s[off++] = ' ';
        memcpy(s + off, argv[i], l + 1);
        off += l;
    }
    return s;
}

/* Appends a directive; takes ownership of kw and argv (freed on failure). */
static int add_directive(struct pc_sshd_config *c, char *kw, char **argv, size_t argc,
                         const char *file, unsigned line, const char *match, unsigned depth)
{
    struct pc_sshd_directive *d;

    if (c->n >= PC_SSHD_MAX_DIRECTIVES)
        goto fail;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        struct pc_sshd_directive *nd = realloc(c->d, cap * sizeof *nd);
        if (!nd)
            goto fail;
        c->d = nd;
        c->cap = cap;
    }
    d = &c->d[c->n];
    memset(d, 0, sizeof *d);
    d->keyword = kw;
    d->argv = argv;
    d->argc = argc;
    d->line = line;
    d->depth = depth;
    d->file = strdup(file);
    d->match = strcmp(kw, "match") == 0 ? join_args(argv, argc) : match ? strdup(match) : NULL;
    if (!d->file || ((strcmp(kw, "match") == 0 || match) && !d->match)) {
        free_directive(d);
        return PC_ERR_NOMEM;
    }
    c->n++;
    return PC_OK;
fail:
    free(kw);
    pc_sshd_free_args(argv, argc);
    return c->n >= PC_SSHD_MAX_DIRECTIVES ? PC_ERR_TOOBIG : PC_ERR_NOMEM;
}

static int parse_file(struct parse_ctx *p, const char *name, unsigned depth, const char *match,
                      const char *from, unsigned from_line);

/* Include: each argument is a glob, relative to /etc/ssh; matches are read in sorted order.
 * The included files add directives, and add_directive() may move p->c->d, so the Include
 * directive is copied first: its strings are separate blocks and stay where they are. */
static int do_include(struct parse_ctx *p, const struct pc_sshd_directive *dp, const char *match)
{
    const struct pc_sshd_directive inc = *dp, *d = &inc;
    char pat[4096];
    size_t rootlen = strlen(p->root);
    int rc = PC_OK;

    for (size_t i = 0; i < d->argc && rc == PC_OK; i++) {
        glob_t g;
        const char *a = d->argv[i];
        int n = a[0] == '/' ? snprintf(pat, sizeof pat, "%s%s", p->root, a)
                            : snprintf(pat, sizeof pat, "%s/etc/ssh/%s", p->root, a);
        if (n < 0 || (size_t)n >= sizeof pat) {
            set_err(p, d->file, d->line, "Include path too long");
            return PC_ERR_TOOBIG;
        }
        n = glob(pat, 0, NULL, &g);
        if (n == GLOB_NOMATCH)
            continue;
        if (n != 0) {
            set_err(p, d->file, d->line, "Include %s: glob failed", a);
            return PC_ERR_IO;
        }
        for (size_t k = 0; k < g.gl_pathc && rc == PC_OK; k++)
            rc = parse_file(p, g.gl_pathv[k] + rootlen, d->depth + 1, match, d->file, d->line);
        globfree(&g);
    }
    return rc;
}

static const char *canonical_keyword(char *kw)
{
    for (char *q = kw; *q; q++)
        *q = (char)tolower((unsigned char)*q);
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(kw, aliases[i].alias) == 0)
            return aliases[i].name;
    return kw;
}

/* Parses one line (already NUL-free, trailing whitespace stripped). *match is the current
 * Match criteria of this file (updated by a Match line). */
static int parse_line(struct parse_ctx *p, char *s, const char *name, unsigned lineno,
                      unsigned depth, const char **match)
{
    char *kw, **argv = NULL;
    const char *canon;
    size_t klen, argc = 0;
    int rc;

    s += strspn(s, " \t");
    if (*s == '\0' || *s == '#')
        return PC_OK;
    klen = strcspn(s, " \t=");
    if (!(kw = strndup(s, klen)))
        return PC_ERR_NOMEM;
    s += klen;
    s += strspn(s, " \t");
    if (*s == '=')
        s += 1 + strspn(s + 1, " \t");
    rc = pc_sshd_split_args(s, &argv, &argc);
    if (rc != PC_OK || argc == 0) {
        if (rc == PC_OK)
            set_err(p, name, lineno, "no argument after keyword \"%s\"", kw);
        else
            set_err(p, name, lineno, "%s",
                    rc == PC_ERR_PARSE    ? "invalid quotes"
                    : rc == PC_ERR_TOOBIG ? "too many arguments"
                                          : "out of memory");
        free(kw);
        return rc == PC_OK ? PC_ERR_PARSE : rc;
    }
    canon = canonical_keyword(kw);
    if (canon != kw) {
        free(kw);
        if (!(kw = strdup(canon))) {
            pc_sshd_free_args(argv, argc);
            return PC_ERR_NOMEM;
        }
    }
    rc = add_directive(p->c, kw, argv, argc, name, lineno, *match, depth);
    if (rc != PC_OK) {
        set_err(p, name, lineno, rc == PC_ERR_TOOBIG ? "too many directives" : "out of memory");
        return rc;
    }
    if (strcmp(kw, "match") == 0)
        *match = p->c->d[p->c->n - 1].match;
    else if (strcmp(kw, "include") == 0)
        rc = do_include(p, &p->c->d[p->c->n - 1], *match);
    return rc;
}

/* Splits buf into lines and parses each; refuses NUL bytes and over-long lines. */
static int parse_buf(struct parse_ctx *p, char *buf, size_t len, const char *name, unsigned depth,
                     const char *match)
{
    char line[PC_SSHD_MAX_LINE];
    size_t off = 0;
    unsigned lineno = 0;
    int rc = PC_OK;

    while (off < len && rc == PC_OK) {
        char *nl = memchr(buf + off, '\n', len - off);
        size_t l = nl ? (size_t)(nl - (buf + off)) : len - off;
        lineno++;
        if (l >= sizeof line) {
            set_err(p, name, lineno, "line too long (limit %d bytes)", PC_SSHD_MAX_LINE - 1);
            return PC_ERR_TOOBIG;
        }
        if (memchr(buf + off, '\0', l)) {
            set_err(p, name, lineno, "NUL byte in line");
            return PC_ERR_PARSE;
        }
        memcpy(line, buf + off, l);
        while (l > 0 && strchr(" \t\r\n\f", line[l - 1]))
            l--;
        line[l] = '\0';
        off += (nl ? (size_t)(nl - (buf + off)) + 1 : len - off);
        rc = parse_line(p, line, name, lineno, depth, &match);
    }
    return rc;
}

static int parse_file(struct parse_ctx *p, const char *name, unsigned depth, const char *match,
                      const char *from, unsigned from_line)
{
    char path[4096], *buf = NULL;
    size_t len;
    int rc;

    if (depth > PC_SSHD_MAX_DEPTH) {
        set_err(p, from, from_line, "too many nested Include (limit %d)", PC_SSHD_MAX_DEPTH);
        return PC_ERR_TOOBIG;
    }
    if (p->c->nfiles >= PC_SSHD_MAX_FILES) {
        set_err(p, from, from_line, "too many included files (limit %d)", PC_SSHD_MAX_FILES);
        return PC_ERR_TOOBIG;
    }
    if (snprintf(path, sizeof path, "%s%s", p->root, name) >= (int)sizeof path) {
        set_err(p, name, 0, "path too long");
        return PC_ERR_TOOBIG;
    }
    rc = pc_read_file(path, PC_SSHD_MAX_FILE, &buf, &len);
    if (rc != PC_OK) {
        set_err(p, name, 0, "%s",
                rc == PC_ERR_TOOBIG     ? "file too large (limit 1 MiB)"
                : rc == PC_ERR_NOTFOUND ? "no such file"
                                        : "cannot read (not a regular file?)");
        return rc;
    }
    rc = add_file(p->c, name);
    if (rc == PC_OK)
        rc = parse_buf(p, buf, len, name, depth, match);
    free(buf);
    return rc;
}

int pc_sshd_config_load(struct pc_sshd_config *c, const char *root, const char *path, char *err,
                        size_t errsz)
{
    struct parse_ctx p = { .c = c, .root = root ? root : "", .err = err, .errsz = errsz };
    int rc;

    memset(c, 0, sizeof *c);
    if (strcmp(p.root, "/") == 0)
        p.root = "";
    if (strpbrk(p.root, "*?[\\")) {
        set_err(&p, p.root, 0, "root directory name must not contain glob characters");
        return PC_ERR_INVAL;
    }
    rc = parse_file(&p, path, 0, NULL, path, 0);
    if (rc != PC_OK)
        pc_sshd_config_free(c);
    return rc;
}

void pc_sshd_config_free(struct pc_sshd_config *c)
{
    for (size_t i = 0; i < c->n; i++)
        free_directive(&c->d[i]);
    for (size_t i = 0; i < c->nfiles; i++)
        free(c->files[i]);
    free(c->d);
    free(c->files);
    memset(c, 0, sizeof *c);
}

const struct pc_sshd_directive *pc_sshd_config_global(const struct pc_sshd_config *c,
                                                      const char *keyword)
{
    for (size_t i = 0; i < c->n; i++)
        if (!c->d[i].match && strcmp(c->d[i].keyword, keyword) == 0)
            return &c->d[i];
    return NULL;
}

const struct pc_sshd_directive *pc_sshd_config_next(const struct pc_sshd_config *c,
                                                    const char *keyword, size_t *pos)
{
    for (; *pos < c->n; (*pos)++)
        if (strcmp(c->d[*pos].keyword, keyword) == 0)
            return &c->d[(*pos)++];
    return NULL;
}

int pc_sshd_directive_value(const struct pc_sshd_directive *d, char *buf, size_t bufsz)
{
    char *s = join_args(d->argv, d->argc);
    int rc = PC_OK;

    if (!s)
        return PC_ERR_NOMEM;
    if (strlen(s) >= bufsz)
        rc = PC_ERR_TOOBIG;
    else
        memcpy(buf, s, strlen(s) + 1);
    free(s);
    return rc;
}

int pc_sshd_parse_version(const char *text, int *major, int *minor)
{
    const char *s = strstr(text, "OpenSSH_");
    char *end;
    long ma, mi;

    if (!s)
        return PC_ERR_PARSE;
    s += 8;
    if (!isdigit((unsigned char)*s))
        return PC_ERR_PARSE;
    ma = strtol(s, &end, 10);
    if (*end != '.' || !isdigit((unsigned char)end[1]))
        return PC_ERR_PARSE;
    mi = strtol(end + 1, &end, 10);
    if (ma < 1 || ma > 99 || mi < 0 || mi > 99)
        return PC_ERR_PARSE;
    *major = (int)ma;
    *minor = (int)mi;
    return PC_OK;
}
