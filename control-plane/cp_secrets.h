/* SPDX-License-Identifier: BSD-2-Clause */
/* The master key and the server secrets that several instances on one database share.
 *
 * DIR/master.key (32 random bytes, 0600) seals every secret the database holds: TOTP seeds, the
 * VAPID key and, on PostgreSQL, the server secrets of table server_secrets — the TLS key and
 * certificate (one pin for all instances), the CA keys and a rotation's next key, the admin
 * token. Each is stored as the sealed bytes of its file in DIR under AD "secret:NAME".
 *
 * On PostgreSQL the database is the source of truth and DIR holds a copy: at start each
 * instance copies the database's secrets into DIR (cp_secrets_pull), lets the usual loaders
 * create what is still missing, and stores what the database does not have yet
 * (cp_secrets_push: ON CONFLICT DO NOTHING, then read back), all in one write transaction, so
 * two instances starting at once agree on one key. An existing data directory moving to
 * PostgreSQL thus keeps its pin and CA. On SQLite the files in DIR stay the only copy: the
 * database and the files live in one directory on one machine, and the CA rotation's crash
 * recovery works on them (cp_ca_keys.h); every call below is then a no-op. */
#ifndef CP_SECRETS_H
#define CP_SECRETS_H
#include "cp_sql.h"
#include "pc_secretbox.h"
#include <stddef.h>

/* The master key's file: DIR/master.key; an older data directory's DIR/secrets.key when only
 * that one exists (master.key wins when both do; a warning is logged). */
int cp_secrets_master_path(const char *dir, char *out, size_t n);
/* Keeps a copy of the master key and of its path (for messages). */
void cp_secrets_set_master(const unsigned char key[PC_SECRETBOX_KEY_BYTES], const char *path);
void cp_secrets_wipe(void);

/* PostgreSQL: writes each secret the database holds into DIR where the file differs, and
 * removes a local next CA key that the database does not hold. A secret that does not open
 * with the master key: PC_ERR_CRYPTO, err names the master key file. */
int cp_secrets_pull(cp_conn *db, const char *dir, char *err, size_t errsz);
/* PostgreSQL: stores every secret present in DIR but not in the database (a next CA key only
 * while the database holds no key of that CA yet: an import), then reads each back; a file that
 * lost to another instance's is rewritten and *changed set. */
int cp_secrets_push(cp_conn *db, const char *dir, int *changed, char *err, size_t errsz);
/* PostgreSQL, inside the caller's transaction: stores DIR/file as secret name (replacing). */
int cp_secret_put_file(cp_conn *db, const char *dir, const char *file, const char *name);
/* PostgreSQL, inside the caller's transaction: removes secret name. */
int cp_secret_delete(cp_conn *db, const char *name);

#endif
