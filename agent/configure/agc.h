/* SPDX-License-Identifier: BSD-2-Clause */
/* portcullis-agent configure / unconfigure: writes sshd's and PAM's configuration for
 * Portcullis as one transaction (backup, journal, atomic writes, sshd -t, sshd -T, reload,
 * rollback on any failure), and undoes it byte for byte. See portcullis-agent(8), CONFIGURE.
 *
 * The pieces:
 *   agc_configure.c    command line, the configure and unconfigure flows
 *   agc_tx.c           journal, backups, restore, crash-test hook
 *   agc_sshd.c         what to write into sshd_config (drop-in or marked block)
 *   agc_pam.c          what to write into /etc/pam.d/sshd (and sudo)
 *   agc_run.c          running sshd -V/-t/-T (in a mount namespace under --root), reload,
 *                      diff */
#ifndef AGC_H
#define AGC_H
#include "pc_sshbuf.h"
#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

/* Entry points for main.c: argv[0] is the command name. Return the exit status. */
int ag_configure_main(int argc, char **argv);
int ag_unconfigure_main(int argc, char **argv);

/* ---- shared by the agc_*.c files ---- */
#define AGC_SSHD_CONFIG "/etc/ssh/sshd_config"
#define AGC_DROPIN_DIR "/etc/ssh/sshd_config.d"
#define AGC_DROPIN "/etc/ssh/sshd_config.d/00-portcullis.conf"
#define AGC_SSH_DIR "/etc/ssh/portcullis"
#define AGC_USER_CA "/etc/ssh/portcullis/user_ca.pub"
#define AGC_HOST_CERT "/etc/ssh/portcullis/host-cert.pub"
#define AGC_KRL "/etc/ssh/portcullis/revoked.krl"
#define AGC_PRINCIPALS_HELPER "portcullis-principals" /* beside the agent */
#define AGC_AUTH_METHODS "publickey,keyboard-interactive:pam"
#define AGC_MAX_FILES 8
#define AGC_MAX_DIRS 4
#define AGC_MAX_HOSTKEYS 16

struct agc_opts {
    char root[PATH_MAX];      /* "" for the real system, else a directory without trailing / */
    char state_dir[PATH_MAX]; /* journal, manifest and backups (real path, root included) */
    char agent_path[PATH_MAX];
    char principals_path[PATH_MAX]; /* "" → "AGENT_PATH principals" (hosts without the helper) */
    char principals_user[64];
    const char *breakglass_group;
    const char *sshd; /* sshd binary; NULL: "sshd" from PATH, then /usr/sbin/sshd */
    int dry_run, no_reload, sudo, replace_authmethods;
};

/* Texts (new file contents, the journal) are pc_sshbuf writers bounded by AGC_MAX_TEXT. */
#define AGC_MAX_TEXT PC_SSHBUF_HARD_MAX

/* One file of the change set. Paths are as sshd names them (no root prefix). A symlink is
 * written through: path is the file it leads to (within the root), link the name it was asked
 * for by, so the link itself is never replaced and the journal backs up its target. */
struct agc_file {
    char path[PATH_MAX];
    char link[PATH_MAX]; /* "" unless path was reached through a symlink */
    int existed;
    mode_t mode;
    char *old; /* current content (NULL if it does not exist) */
    size_t old_len;
    struct pc_sshbuf new; /* new content */
};

struct agc_plan {
    struct agc_file files[AGC_MAX_FILES];
    size_t nfiles;
    char dirs[AGC_MAX_DIRS][PATH_MAX]; /* directories to create, parents first */
    size_t ndirs;
    int dropin; /* 1: 00-portcullis.conf; 0: marked block in the main file */
    char hostkeys[AGC_MAX_HOSTKEYS][PATH_MAX];
    size_t nhostkeys;
    int major, minor; /* OpenSSH version; 0.0 if unknown */
};

/* Joins the root and an sshd path into buf. */
int agc_path(const struct agc_opts *o, const char *path, char *buf, size_t bufsz);
/* Adds a file to the plan with its current content; returns the entry or NULL (err set). */
struct agc_file *agc_plan_file(struct agc_plan *p, const struct agc_opts *o, const char *path,
                               char *err, size_t errsz);
void agc_plan_free(struct agc_plan *p);

/* agc_sshd.c */
int agc_plan_sshd(struct agc_plan *p, const struct agc_opts *o, int force_block, char *err,
                  size_t errsz);
/* After writing: does our own parser see every directive of ours winning? */
int agc_check_parsed(const struct agc_plan *p, const struct agc_opts *o, char *err, size_t errsz);
/* Checks `sshd -T` output (keyword value lines). */
int agc_check_effective(const struct agc_plan *p, const struct agc_opts *o, const char *out,
                        char *err, size_t errsz);
void agc_principals_command(const struct agc_opts *o, char *buf, size_t bufsz);

/* agc_pam.c */
int agc_plan_pam(struct agc_plan *p, const struct agc_opts *o, char *err, size_t errsz);

/* agc_tx.c */
struct agc_tx {
    const struct agc_opts *o;
    char journal[PATH_MAX], manifest[PATH_MAX], backup[PATH_MAX];
    struct pc_sshbuf text; /* journal content */
};
void agc_step(const char *what); /* PC_CONFIGURE_CRASH_AT hook (test builds) */
int agc_tx_begin(struct agc_tx *t, const struct agc_opts *o, char *err, size_t errsz);
int agc_tx_mkdir(struct agc_tx *t, const char *path, char *err, size_t errsz);
int agc_tx_write(struct agc_tx *t, const struct agc_file *f, char *err, size_t errsz);
int agc_tx_commit(struct agc_tx *t, char *err, size_t errsz);
void agc_tx_free(struct agc_tx *t);
/* Restores every entry of the journal (or manifest) file at list (idempotent: a file that
 * already holds its backup's bytes is left alone). *count gets the number of entries undone. */
int agc_tx_undo(const struct agc_opts *o, const char *list, int *count, char *err, size_t errsz);
/* Removes the list and the backups: the end of an undo. */
int agc_tx_forget(const struct agc_opts *o, const char *list, char *err, size_t errsz);
/* Prints, for dry-run unconfigure, the diff of every entry of the manifest. */
int agc_tx_diff_undo(const struct agc_opts *o, const char *list, char *err, size_t errsz);
void agc_state_paths(const struct agc_opts *o, char *journal, char *manifest, char *backup);

/* agc_run.c */
/* Runs argv (argv[0] looked up in PATH); with ns_root set, inside a private mount namespace
 * with ns_root/etc/ssh bind-mounted over /etc/ssh. With out, stdout (and stderr if
 * with_stderr) is captured there (NUL-terminated, truncated); else both are inherited. */
int agc_spawn(char *const argv[], const char *ns_root, char *out, size_t outsz, int with_stderr,
              int *status);
int agc_sshd_version(const struct agc_opts *o, int *major, int *minor);
int agc_sshd_test(const struct agc_opts *o, char *err, size_t errsz);
int agc_sshd_effective(const struct agc_opts *o, char *out, size_t outsz, char *err, size_t errsz);
int agc_reload(const struct agc_opts *o, char *err, size_t errsz);
int agc_print_diff(const char *path, const char *old, size_t old_len, const char *new_,
                   size_t new_len);

#endif
