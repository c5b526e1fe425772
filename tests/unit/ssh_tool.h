/* SPDX-License-Identifier: BSD-2-Clause */
/* Test helpers shared by the SSH unit tests: temp directories, files, and running ssh-keygen
 * (fork/exec, no shell) with its output captured. Tests use ssh-keygen only to check what
 * lib/ produces, never to produce it. */
#ifndef SSH_TOOL_H
#define SSH_TOOL_H
#include <stddef.h>

#define ST_PATH_MAX 512

struct st_result {
    int status; /* exit status, or 128 + signal number */
    char *out;  /* stdout, NUL-terminated, malloc'ed */
    char *err;  /* stderr, NUL-terminated, malloc'ed */
};

/* Creates a fresh directory /tmp/pc-<tag>.XXXXXX into dir (size ST_PATH_MAX). 0 or -1. */
int st_mkdtemp(const char *tag, char *dir);
/* Removes a tree (as created by st_mkdtemp). */
int st_rmtree(const char *dir);
/* snprintf(out, ST_PATH_MAX, "%s/%s", dir, name); returns out. */
char *st_path(char *out, const char *dir, const char *name);

/* Runs argv[0] (searched in PATH) with argv, optional stdin data, TZ=UTC, LC_ALL=C.
 * Returns 0 if it ran (see r->status), -1 if it could not. Free with st_result_free(). */
int st_run(const char *const argv[], const char *stdin_data, struct st_result *r);
void st_result_free(struct st_result *r);

/* ssh-keygen -q -t type [-b bits] -N "" -C comment -f path. bits 0: default. 0 or -1. */
int st_keygen(const char *path, const char *type, int bits);

/* Whole file, NUL-terminated, malloc'ed (NULL on error); *len optional. */
char *st_read(const char *path, size_t *len);
/* Creates/truncates path with data. 0 or -1. */
int st_write(const char *path, const void *data, size_t len);

/* 1 if haystack contains needle. */
int st_contains(const char *haystack, const char *needle);

#endif
