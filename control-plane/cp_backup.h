/* SPDX-License-Identifier: BSD-2-Clause */
/* portcullisd --backup FILE: copies DIR/portcullis.db with SQLite's online backup API, so the
 * copy is consistent even while a daemon on DIR runs and writes. Written to a temporary file
 * next to FILE (0600), fsynced, renamed over FILE only with force. The copy holds no secret in
 * the clear that the store does not: TOTP seeds stay sealed with DIR/secrets.key, which is
 * not in it (see docs/HA.md for what a restore needs). */
#ifndef CP_BACKUP_H
#define CP_BACKUP_H
#include <stddef.h>

/* PC_OK, or an error with err naming the file. */
int cp_backup_run(const char *data_dir, const char *file, int force, char *err, size_t errsz);

#endif
