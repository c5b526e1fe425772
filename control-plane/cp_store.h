/* SPDX-License-Identifier: BSD-2-Clause */
/* The SQLite store: one database file in WAL mode, one connection per thread (opened lazily),
 * schema migrations recorded in schema_version. Every state change runs in one
 * BEGIN IMMEDIATE … COMMIT, so a request is applied whole or not at all. */
#ifndef CP_STORE_H
#define CP_STORE_H
#include "cp_sql.h" /* every user of the store runs its SQL with these */
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

/* Opens (creating if needed) the database and migrates it to the newest schema. */
int cp_store_open(const char *path, char *err, size_t errsz);
/* The calling thread's connection (NULL on failure, logged). */
sqlite3 *cp_db(void);
void cp_store_close_all(void);

#endif
