/* SPDX-License-Identifier: BSD-2-Clause */
/* configure's transaction: every file is backed up and recorded in the journal before it is
 * changed, and written atomically. The journal is a text file in the state directory:
 *   portcullis-configure 1
 *   F MODE UID GID PATH   the file existed; its backup is STATE/backup/PATH
 *   N PATH                the file did not exist (created by us)
 *   D PATH                the directory did not exist (created by us)
 * Commit renames the journal to the manifest (what unconfigure undoes). A journal found at
 * start means a run was interrupted: it is undone first. */
#include "config.h"
#include "agc.h"
#include "pc_err.h"
#include "pc_fs.h"
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define JOURNAL_HEADER "portcullis-configure 1\n"
#define MAX_CONFIG_FILE (4 * 1024 * 1024)

int agc_path(const struct agc_opts *o, const char *path, char *buf, size_t bufsz)
{
    int n = snprintf(buf, bufsz, "%s%s", o->root, path);
    return n < 0 || (size_t)n >= bufsz ? PC_ERR_TOOBIG : PC_OK;
}

/* Follows path (as sshd names it) through symlinks to the file they lead to, within the root:
 * an absolute target is taken below o->root, a relative one from the link's directory, and
 * the directory part is resolved by the kernel (realpath) and must stay below the root. *out is
 * path itself when it is not a symlink (or does not exist). A dangling link, a loop, or a
 * target outside the root is an error: configure never creates a file a link merely names. */
static int follow_links(const struct agc_opts *o, const char *path, char *out, size_t outsz,
                        char *err, size_t errsz)
{
    char cur[PATH_MAX], real[PATH_MAX], target[PATH_MAX], next[PATH_MAX], rroot[PATH_MAX];
    char rdir[PATH_MAX], *slash;
    size_t rlen;
    struct stat st;
    ssize_t n;

    if (snprintf(cur, sizeof cur, "%s", path) >= (int)sizeof cur)
        return PC_ERR_TOOBIG;
    if (!realpath(o->root[0] ? o->root : "/", rroot)) {
        snprintf(err, errsz, "%s: %s", o->root, strerror(errno));
        return PC_ERR_IO;
    }
    rlen = strcmp(rroot, "/") == 0 ? 0 : strlen(rroot);
    for (int hops = 0;; hops++) {
        if (agc_path(o, cur, real, sizeof real) != PC_OK)
            return PC_ERR_TOOBIG;
        if (lstat(real, &st) != 0) {
            if (hops == 0)
                break; /* not there: a file configure creates */
            snprintf(err, errsz, "%s%s: a symlink to %s, which does not exist", o->root, path,
                     real);
            return PC_ERR_NOTFOUND;
        }
        if (!S_ISLNK(st.st_mode))
            break;
        if (hops >= 16 || (n = readlink(real, target, sizeof target - 1)) <= 0) {
            snprintf(err, errsz, "%s%s: too many symlinks, or one that cannot be read", o->root,
                     path);
            return PC_ERR_IO;
        }
        target[n] = '\0';
        slash = strrchr(cur, '/'); /* cur is absolute: there is one */
        if ((target[0] == '/' ? snprintf(next, sizeof next, "%s", target)
                              : snprintf(next, sizeof next, "%.*s/%s", (int)(slash - cur), cur,
                                         target)) >= (int)sizeof next)
            return PC_ERR_TOOBIG;
        /* the directory by the kernel, below the root; the last name as the link gives it */
        slash = strrchr(next, '/');
        *slash = '\0';
        if (snprintf(real, sizeof real, "%s%s", o->root, next[0] ? next : "/") >= (int)sizeof real)
            return PC_ERR_TOOBIG;
        if (!realpath(real, rdir)) {
            snprintf(err, errsz, "%s%s: a symlink into %s: %s", o->root, path, real,
                     strerror(errno));
            return PC_ERR_NOTFOUND;
        }
        if (strncmp(rdir, rroot, rlen) != 0 || (rdir[rlen] != '/' && rdir[rlen] != '\0') ||
            strcmp(slash + 1, ".") == 0 || strcmp(slash + 1, "..") == 0 || !slash[1]) {
            snprintf(err, errsz, "%s%s: a symlink to %s, outside %s or not a file", o->root, path,
                     target, o->root[0] ? o->root : "/");
            return PC_ERR_INVAL;
        }
        if (snprintf(cur, sizeof cur, "%s/%s", strcmp(rdir + rlen, "/") == 0 ? "" : rdir + rlen,
                     slash + 1) >= (int)sizeof cur)
            return PC_ERR_TOOBIG;
    }
    if (strlen(cur) >= outsz)
        return PC_ERR_TOOBIG;
    memcpy(out, cur, strlen(cur) + 1);
    return PC_OK;
}

struct agc_file *agc_plan_file(struct agc_plan *p, const struct agc_opts *o, const char *path,
                               char *err, size_t errsz)
{
    char real[PATH_MAX], to[PATH_MAX];
    struct agc_file *f;
    struct stat st;
    int rc;

    for (size_t i = 0; i < p->nfiles; i++)
        if (strcmp(p->files[i].path, path) == 0 || strcmp(p->files[i].link, path) == 0)
            return &p->files[i];
    if (p->nfiles >= AGC_MAX_FILES || strlen(path) >= sizeof f->path || strchr(path, '\n')) {
        snprintf(err, errsz, "%s: cannot add to the change set", path);
        return NULL;
    }
    if (follow_links(o, path, to, sizeof to, err, errsz) != PC_OK)
        return NULL;
    if (agc_path(o, to, real, sizeof real) != PC_OK || strchr(to, '\n')) {
        snprintf(err, errsz, "%s: cannot add to the change set", to);
        return NULL;
    }
    for (size_t i = 0; i < p->nfiles; i++)
        if (strcmp(p->files[i].path, to) == 0)
            return &p->files[i]; /* two names of one file */
    f = &p->files[p->nfiles];
    memset(f, 0, sizeof *f);
    memcpy(f->path, to, strlen(to) + 1);
    if (strcmp(to, path) != 0) {
        memcpy(f->link, path, strlen(path) + 1);
        printf("%s%s is a symlink: writing through it to %s%s (the link stays)\n", o->root, path,
               o->root, to);
    }
    pc_sshbuf_init(&f->new, AGC_MAX_TEXT);
    f->mode = 0644;
    rc = pc_read_file(real, MAX_CONFIG_FILE, &f->old, &f->old_len);
    if (rc == PC_OK && stat(real, &st) == 0) {
        f->existed = 1;
        f->mode = st.st_mode & 07777;
    } else if (rc != PC_ERR_NOTFOUND) {
        free(f->old);
        snprintf(err, errsz, "%s: cannot read: %s", real, pc_strerror(rc));
        return NULL;
    }
    p->nfiles++;
    return f;
}

void agc_plan_free(struct agc_plan *p)
{
    for (size_t i = 0; i < p->nfiles; i++) {
        free(p->files[i].old);
        pc_sshbuf_free(&p->files[i].new);
    }
    memset(p, 0, sizeof *p);
}

void agc_step(const char *what)
{
#ifdef PC_TEST_HOOKS
    static long n;
    const char *e = getenv("PC_CONFIGURE_CRASH_AT");
    n++;
    if (e && strtol(e, NULL, 10) == n) {
        fprintf(stderr, "portcullis-agent: test hook: crash after step %ld (%s)\n", n, what);
        abort();
    }
#else
    (void)what;
#endif
}

void agc_state_paths(const struct agc_opts *o, char *journal, char *manifest, char *backup)
{
    snprintf(journal, PATH_MAX, "%s/journal", o->state_dir);
    snprintf(manifest, PATH_MAX, "%s/manifest", o->state_dir);
    snprintf(backup, PATH_MAX, "%s/backup", o->state_dir);
}

/* mkdir -p with mode 0700 for the state directory and the backup tree. */
static int mkdir_p(const char *path, mode_t mode)
{
    char tmp[PATH_MAX];
    size_t len = strlen(path);

    if (len >= sizeof tmp)
        return PC_ERR_TOOBIG;
    memcpy(tmp, path, len + 1);
    for (char *s = tmp + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return PC_ERR_IO;
        *s = '/';
    }
    if (mkdir(tmp, mode) != 0 && errno != EEXIST)
        return PC_ERR_IO;
    return PC_OK;
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

static void remove_tree(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int journal_save(struct agc_tx *t, char *err, size_t errsz)
{
    if (pc_write_file_atomic(t->journal, pc_sshbuf_ptr(&t->text), pc_sshbuf_len(&t->text), 0600) !=
        PC_OK) {
        snprintf(err, errsz, "%s: cannot write the journal: %s", t->journal, strerror(errno));
        return PC_ERR_IO;
    }
    return PC_OK;
}

int agc_tx_begin(struct agc_tx *t, const struct agc_opts *o, char *err, size_t errsz)
{
    memset(t, 0, sizeof *t);
    pc_sshbuf_init(&t->text, AGC_MAX_TEXT);
    t->o = o;
    agc_state_paths(o, t->journal, t->manifest, t->backup);
    if (mkdir_p(o->state_dir, 0700) != PC_OK) {
        snprintf(err, errsz, "%s: cannot create the state directory: %s", o->state_dir,
                 strerror(errno));
        return PC_ERR_IO;
    }
    remove_tree(t->backup); /* left over from an unconfigure interrupted after its commit */
    if (pc_sshbuf_put_raw(&t->text, JOURNAL_HEADER, strlen(JOURNAL_HEADER)) != PC_OK)
        return PC_ERR_NOMEM;
    if (journal_save(t, err, errsz) != PC_OK)
        return PC_ERR_IO;
    agc_step("journal created");
    return PC_OK;
}

int agc_tx_mkdir(struct agc_tx *t, const char *path, char *err, size_t errsz)
{
    char real[PATH_MAX];
    struct stat st;

    if (agc_path(t->o, path, real, sizeof real) != PC_OK)
        return PC_ERR_TOOBIG;
    if (stat(real, &st) == 0 && S_ISDIR(st.st_mode))
        return PC_OK;
    if (pc_sshbuf_putf(&t->text, "D %s\n", path) != PC_OK || journal_save(t, err, errsz) != PC_OK)
        return PC_ERR_IO;
    agc_step("directory recorded");
    if (mkdir(real, 0755) != 0) {
        snprintf(err, errsz, "%s: cannot create the directory: %s", real, strerror(errno));
        return PC_ERR_IO;
    }
    agc_step("directory created");
    return PC_OK;
}

int agc_tx_write(struct agc_tx *t, const struct agc_file *f, char *err, size_t errsz)
{
    char real[PATH_MAX], bak[PATH_MAX], dir[PATH_MAX];
    struct stat st;
    int rc;

    if (agc_path(t->o, f->path, real, sizeof real) != PC_OK ||
        snprintf(bak, sizeof bak, "%s%s", t->backup, f->path) >= (int)sizeof bak)
        return PC_ERR_TOOBIG;
    if (f->existed) {
        memcpy(dir, bak, sizeof dir);
        *strrchr(dir, '/') = '\0';
        if (stat(real, &st) != 0 || mkdir_p(dir, 0700) != PC_OK ||
            pc_write_file_atomic(bak, f->old, f->old_len, 0600) != PC_OK) {
            snprintf(err, errsz, "%s: cannot back up to %s: %s", real, bak, strerror(errno));
            return PC_ERR_IO;
        }
        agc_step("backup written");
        rc = pc_sshbuf_putf(&t->text, "F %04o %u %u %s\n", (unsigned)(st.st_mode & 07777),
                            (unsigned)st.st_uid, (unsigned)st.st_gid, f->path);
    } else {
        rc = pc_sshbuf_putf(&t->text, "N %s\n", f->path);
    }
    if (rc != PC_OK || journal_save(t, err, errsz) != PC_OK)
        return PC_ERR_IO;
    agc_step("journal entry recorded");
    if (pc_write_file_atomic(real, pc_sshbuf_cstr(&f->new), pc_sshbuf_len(&f->new), f->mode) !=
        PC_OK) {
        snprintf(err, errsz, "%s: cannot write: %s", real, strerror(errno));
        return PC_ERR_IO;
    }
    if (f->existed && chown(real, st.st_uid, st.st_gid) != 0) {
        snprintf(err, errsz, "%s: cannot restore the owner: %s", real, strerror(errno));
        return PC_ERR_IO;
    }
    agc_step("file written");
    return PC_OK;
}

int agc_tx_commit(struct agc_tx *t, char *err, size_t errsz)
{
    if (rename(t->journal, t->manifest) != 0) {
        snprintf(err, errsz, "%s: cannot commit: %s", t->journal, strerror(errno));
        return PC_ERR_IO;
    }
    agc_step("committed");
    return PC_OK;
}

void agc_tx_free(struct agc_tx *t)
{
    pc_sshbuf_free(&t->text);
}

/* ---- undo: restore every entry of a journal or manifest ---------------------------------- */

struct entry {
    char kind; /* F, N or D */
    unsigned mode, uid, gid;
    const char *path; /* points into the list's text */
};

static int parse_entries(char *text, struct entry *e, size_t max, size_t *n)
{
    char *save = NULL, *line;

    *n = 0;
    if (strncmp(text, JOURNAL_HEADER, strlen(JOURNAL_HEADER)) != 0)
        return PC_ERR_PARSE;
    for (line = strtok_r(text + strlen(JOURNAL_HEADER), "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        int off = -1;
        struct entry x = { .kind = line[0] };
        if (x.kind == 'F')
            sscanf(line, "F %o %u %u %n", &x.mode, &x.uid, &x.gid, &off);
        else if (x.kind == 'N' || x.kind == 'D')
            off = line[1] == ' ' ? 2 : -1;
        if (off < 0 || line[off] != '/' || strstr(line + off, "/../") || x.mode > 07777)
            return PC_ERR_PARSE;
        if (*n >= max)
            return PC_ERR_TOOBIG;
        x.path = line + off;
        e[(*n)++] = x;
    }
    return PC_OK;
}

static int undo_file(const struct agc_opts *o, const struct entry *e, const char *backup, char *err,
                     size_t errsz)
{
    char real[PATH_MAX], bak[PATH_MAX], *data = NULL, *cur = NULL;
    size_t len = 0, cur_len = 0;
    struct stat st;
    int rc = PC_OK;

    if (agc_path(o, e->path, real, sizeof real) != PC_OK ||
        snprintf(bak, sizeof bak, "%s%s", backup, e->path) >= (int)sizeof bak)
        return PC_ERR_TOOBIG;
    if (e->kind == 'N') {
        if (unlink(real) != 0 && errno != ENOENT)
            rc = PC_ERR_IO;
    } else if (e->kind == 'D') {
        if (rmdir(real) != 0 && errno != ENOENT)
            fprintf(stderr, "portcullis-agent: warning: %s: not removed: %s\n", real,
                    strerror(errno));
    } else if (pc_read_file(bak, MAX_CONFIG_FILE, &data, &len) != PC_OK) {
        rc = PC_ERR_IO;
    } else if (pc_read_file(real, MAX_CONFIG_FILE, &cur, &cur_len) == PC_OK && cur_len == len &&
               memcmp(cur, data, len) == 0 && stat(real, &st) == 0 &&
               (st.st_mode & 07777) == e->mode && st.st_uid == e->uid && st.st_gid == e->gid) {
        rc = PC_OK; /* unchanged: nothing to write (it may be read-only) */
    } else if (pc_write_file_atomic(real, data, len, e->mode) != PC_OK ||
               chown(real, e->uid, e->gid) != 0) {
        rc = PC_ERR_IO;
    }
    if (rc != PC_OK && err[0] == '\0')
        snprintf(err, errsz, "%s: cannot restore: %s", real, strerror(errno));
    free(data);
    free(cur);
    return rc;
}

static int read_list(const char *list, char **text, char *err, size_t errsz)
{
    size_t len;
    int rc = pc_read_file(list, 1024 * 1024, text, &len);

    if (rc != PC_OK)
        snprintf(err, errsz, "%s: cannot read: %s", list, pc_strerror(rc));
    return rc;
}

int agc_tx_undo(const struct agc_opts *o, const char *list, int *count, char *err, size_t errsz)
{
    char journal[PATH_MAX], manifest[PATH_MAX], backup[PATH_MAX], *text = NULL;
    struct entry e[64];
    size_t n = 0;
    int rc, failed = 0;

    *count = 0;
    err[0] = '\0';
    agc_state_paths(o, journal, manifest, backup);
    if ((rc = read_list(list, &text, err, errsz)) != PC_OK)
        return rc;
    if (parse_entries(text, e, sizeof e / sizeof e[0], &n) != PC_OK) {
        snprintf(err, errsz, "%s: corrupt; restore by hand from %s", list, backup);
        free(text);
        return PC_ERR_PARSE;
    }
    for (size_t i = n; i-- > 0;) {
        if (undo_file(o, &e[i], backup, err, errsz) != PC_OK)
            failed++;
        else
            (*count)++;
        agc_step("file restored");
    }
    free(text);
    return failed ? PC_ERR_IO : PC_OK; /* the list and the backups stay until agc_tx_forget */
}

int agc_tx_forget(const struct agc_opts *o, const char *list, char *err, size_t errsz)
{
    char journal[PATH_MAX], manifest[PATH_MAX], backup[PATH_MAX];

    agc_state_paths(o, journal, manifest, backup);
    if (unlink(list) != 0 && errno != ENOENT) {
        snprintf(err, errsz, "%s: cannot remove: %s", list, strerror(errno));
        return PC_ERR_IO;
    }
    agc_step("list removed");
    remove_tree(backup);
    return PC_OK;
}

int agc_tx_diff_undo(const struct agc_opts *o, const char *list, char *err, size_t errsz)
{
    char journal[PATH_MAX], manifest[PATH_MAX], backup[PATH_MAX], *text = NULL;
    struct entry e[64];
    size_t n = 0;
    int rc;

    agc_state_paths(o, journal, manifest, backup);
    if ((rc = read_list(list, &text, err, errsz)) != PC_OK)
        return rc;
    if (parse_entries(text, e, sizeof e / sizeof e[0], &n) != PC_OK) {
        snprintf(err, errsz, "%s: corrupt", list);
        free(text);
        return PC_ERR_PARSE;
    }
    for (size_t i = 0; i < n && rc == PC_OK; i++) {
        char real[PATH_MAX], bak[PATH_MAX], *cur = NULL, *old = NULL;
        size_t cur_len = 0, old_len = 0;
        if (e[i].kind == 'D') {
            printf("rmdir %s\n", e[i].path);
            continue;
        }
        if (agc_path(o, e[i].path, real, sizeof real) != PC_OK ||
            snprintf(bak, sizeof bak, "%s%s", backup, e[i].path) >= (int)sizeof bak)
            rc = PC_ERR_TOOBIG;
        if (rc == PC_OK)
            pc_read_file(real, MAX_CONFIG_FILE, &cur, &cur_len);
        if (rc == PC_OK && e[i].kind == 'F' &&
            pc_read_file(bak, MAX_CONFIG_FILE, &old, &old_len) != PC_OK) {
            snprintf(err, errsz, "%s: backup missing", bak);
            rc = PC_ERR_IO;
        }
        if (rc == PC_OK)
            rc = agc_print_diff(e[i].path, cur, cur_len, old, old_len);
        free(cur);
        free(old);
    }
    free(text);
    return rc;
}
