/* SPDX-License-Identifier: BSD-2-Clause */
/* Helpers on one SQLite connection, for the store (cp_store.h, which includes this header) and
 * its migrations (cp_schema.c): transactions, statements with logging, NULL-safe text. */
#ifndef CP_SQL_H
#define CP_SQL_H
#include <sqlite3.h>

int cp_tx_begin(sqlite3 *db); /* BEGIN IMMEDIATE: takes the write lock up front */
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

#endif
