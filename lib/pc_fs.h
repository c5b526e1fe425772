/* SPDX-License-Identifier: BSD-2-Clause */
/* Files written so that a crash never leaves half of one: temp file in the same directory,
 * fsync, rename, fsync of the directory. */
#ifndef PC_FS_H
#define PC_FS_H
#include <stddef.h>
#include <sys/types.h>

int pc_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* Reads a whole regular file of at most max bytes; *out is NUL-terminated (not counted in *len). */
int pc_read_file(const char *path, size_t max, char **out, size_t *len);
/* mkdir with mode if missing; an existing directory gets chmod'ed to mode. */
int pc_mkdir_mode(const char *path, mode_t mode);

#endif
