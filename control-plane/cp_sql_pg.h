/* SPDX-License-Identifier: BSD-2-Clause */
/* The PostgreSQL side of the store's SQL layer (cp_sql.h): cp_sql.c calls these when the
 * process's store is PostgreSQL. Same contracts as the cp_* call of the same name. */
#ifndef CP_SQL_PG_H
#define CP_SQL_PG_H
#include "cp_sql.h"

/* Opens a connection for conninfo (a postgresql:// URL); err never holds the URL. */
int cp_pg_connect(const char *conninfo, cp_conn **out, char *err, size_t errsz);
void cp_pg_close(cp_conn *db);
int cp_pg_tx_begin(cp_conn *db);
int cp_pg_exec(cp_conn *db, const char *sql);
int cp_pg_autocommit(cp_conn *db);
const char *cp_pg_errmsg(cp_conn *db);
int64_t cp_pg_changes(cp_conn *db);
cp_stmt *cp_pg_prepare(cp_conn *db, const char *sql);
int cp_pg_bind_int64(cp_stmt *st, int idx, int64_t v);
int cp_pg_bind_text(cp_stmt *st, int idx, const char *s);
int cp_pg_bind_blob(cp_stmt *st, int idx, const void *p, int n);
int cp_pg_bind_null(cp_stmt *st, int idx);
int cp_pg_step(cp_stmt *st);
int cp_pg_reset(cp_stmt *st);
void cp_pg_finalize(cp_stmt *st);
int64_t cp_pg_col_int64(cp_stmt *st, int col);
const char *cp_pg_col_text(cp_stmt *st, int col);
const void *cp_pg_col_blob(cp_stmt *st, int col);
int cp_pg_col_bytes(cp_stmt *st, int col);
int cp_pg_col_is_null(cp_stmt *st, int col);

#endif
