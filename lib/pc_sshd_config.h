/* SPDX-License-Identifier: BSD-2-Clause */
/* Reads an sshd_config the way sshd(8) (OpenSSH 8.2 … 9.x) does: keywords case-insensitive,
 * "Key value" and "Key=value", double or single quotes, '#' comments (also at the start of a
 * later word), Include with globs (sorted, relative paths under /etc/ssh, depth limit 16),
 * Match blocks (a Match in an included file ends with that file). Every directive is kept in
 * file order with its file, line and enclosing Match, so callers can ask which value wins.
 * Hostile input (long lines, NUL bytes, huge files, deep includes) is refused as FILE:LINE. */
#ifndef PC_SSHD_CONFIG_H
#define PC_SSHD_CONFIG_H
#include <stddef.h>

#define PC_SSHD_MAX_DEPTH 16           /* sshd's SERVCONF_MAX_DEPTH */
#define PC_SSHD_MAX_LINE 8192          /* bytes per line, newline included */
#define PC_SSHD_MAX_FILE (1024 * 1024) /* bytes per file */
#define PC_SSHD_MAX_FILES 512          /* files per configuration */
#define PC_SSHD_MAX_DIRECTIVES 100000
#define PC_SSHD_MAX_ARGS 256 /* words per line */

struct pc_sshd_directive {
    char *keyword; /* lower case; the alias challengeresponseauthentication is resolved */
    char **argv;   /* arguments with quotes removed; argc >= 1 */
    size_t argc;
    char *file; /* the path as sshd names it (without the root prefix) */
    unsigned line;
    char *match;    /* criteria of the enclosing Match block; NULL at global scope.
                      * For a "match" directive: its own criteria. */
    unsigned depth; /* 0 = the main file, 1 = included from it, … */
};

struct pc_sshd_config {
    struct pc_sshd_directive *d;
    size_t n, cap;
    char **files; /* every file read, in the order read (sshd names) */
    size_t nfiles, files_cap;
};

/* Loads ROOT/PATH and everything it includes. root NULL, "" or "/" means the real system;
 * otherwise every absolute path in the configuration is read below root. */
int pc_sshd_config_load(struct pc_sshd_config *c, const char *root, const char *path, char *err,
                        size_t errsz);
void pc_sshd_config_free(struct pc_sshd_config *c);

/* The directive that wins for keyword (lower case) at global scope (first one outside any
 * Match block), or NULL. */
const struct pc_sshd_directive *pc_sshd_config_global(const struct pc_sshd_config *c,
                                                      const char *keyword);
/* Index of the next directive for keyword from index *pos on (any scope); NULL at the end. */
const struct pc_sshd_directive *pc_sshd_config_next(const struct pc_sshd_config *c,
                                                    const char *keyword, size_t *pos);
/* The arguments joined with single spaces, into buf. */
int pc_sshd_directive_value(const struct pc_sshd_directive *d, char *buf, size_t bufsz);

/* Splits the argument part of a line like sshd's argv_split(): quotes, backslash escapes,
 * a word starting with '#' ends the line. Returns 0 or PC_ERR_PARSE (unbalanced quotes). */
int pc_sshd_split_args(const char *s, char ***argv, size_t *argc);
void pc_sshd_free_args(char **argv, size_t argc);

/* "OpenSSH_9.2p1 …" → 9, 2. Returns 0 or PC_ERR_PARSE. */
int pc_sshd_parse_version(const char *text, int *major, int *minor);

#endif
