/* SPDX-License-Identifier: BSD-2-Clause */
/* The SQLite store: one database file in WAL mode, one connection per thread (opened lazily),
 * schema migrations recorded in schema_version. Every state change runs in one
 * BEGIN IMMEDIATE … COMMIT, so a request is applied whole or not at all. */
#ifndef CP_STORE_H
#define CP_STORE_H
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

/* Opens (creating if needed) the database and migrates it to the newest schema. */
int cp_store_open(const char *path, char *err, size_t errsz);
/* The calling thread's connection (NULL on failure, logged). */
sqlite3 *cp_db(void);
void cp_store_close_all(void);

int cp_tx_begin(sqlite3 *db);           /* BEGIN IMMEDIATE: takes the write lock up front */
int cp_tx_commit(sqlite3 *db);
void cp_tx_rollback(sqlite3 *db);

/* Prepare with logging; returns NULL on error. */
sqlite3_stmt *cp_prepare(sqlite3 *db, const char *sql);
/* Binds a text that may be NULL (→ SQL NULL). */
int cp_bind_text(sqlite3_stmt *st, int idx, const char *s);
/* Runs a statement that returns no rows; finalizes it. 0 or PC_ERR_STORE. */
int cp_exec_stmt(sqlite3_stmt *st);
/* Column text as "" when NULL. */
const char *cp_col_text(sqlite3_stmt *st, int col);

/* Migrations, in cp_schema.c. */
int cp_schema_migrate(sqlite3 *db, char *err, size_t errsz);

#endif
