/* SPDX-License-Identifier: BSD-2-Clause */
/* The PostgreSQL side of the store's SQL layer (cp_sql_pg.h). Not built yet: every call fails. */
#include "config.h"
#include "cp_sql_pg.h"
#include <stddef.h>

#include "pc_err.h"
#include <stdio.h>
int cp_pg_connect(const char *conninfo, cp_conn **out, char *err, size_t errsz)
{
    (void)conninfo;
    *out = NULL;
    snprintf(err, errsz, "PostgreSQL is not built in");
    return PC_ERR_STORE;
}
void cp_pg_close(cp_conn *db)
{
    (void)db;
}
int cp_pg_tx_begin(cp_conn *db)
{
    (void)db;
    return -1;
}
int cp_pg_exec(cp_conn *db, const char *sql)
{
    (void)db;
    (void)sql;
    return -1;
}
int cp_pg_autocommit(cp_conn *db)
{
    (void)db;
    return 1;
}
const char *cp_pg_errmsg(cp_conn *db)
{
    (void)db;
    return "PostgreSQL is not built in";
}
int64_t cp_pg_changes(cp_conn *db)
{
    (void)db;
    return 0;
}
cp_stmt *cp_pg_prepare(cp_conn *db, const char *sql)
{
    (void)db;
    (void)sql;
    return NULL;
}
int cp_pg_bind_int64(cp_stmt *st, int idx, int64_t v)
{
    (void)st;
    (void)idx;
    (void)v;
    return -1;
}
int cp_pg_bind_text(cp_stmt *st, int idx, const char *s)
{
    (void)st;
    (void)idx;
    (void)s;
    return -1;
}
int cp_pg_bind_blob(cp_stmt *st, int idx, const void *p, int n)
{
    (void)st;
    (void)idx;
    (void)p;
    (void)n;
    return -1;
}
int cp_pg_bind_null(cp_stmt *st, int idx)
{
    (void)st;
    (void)idx;
    return -1;
}
int cp_pg_step(cp_stmt *st)
{
    (void)st;
    return CP_ERROR;
}
int cp_pg_reset(cp_stmt *st)
{
    (void)st;
    return -1;
}
void cp_pg_finalize(cp_stmt *st)
{
    (void)st;
}
int64_t cp_pg_col_int64(cp_stmt *st, int col)
{
    (void)st;
    (void)col;
    return 0;
}
const char *cp_pg_col_text(cp_stmt *st, int col)
{
    (void)st;
    (void)col;
    return "";
}
const void *cp_pg_col_blob(cp_stmt *st, int col)
{
    (void)st;
    (void)col;
    return NULL;
}
int cp_pg_col_bytes(cp_stmt *st, int col)
{
    (void)st;
    (void)col;
    return 0;
}
int cp_pg_col_is_null(cp_stmt *st, int col)
{
    (void)st;
    (void)col;
    return 1;
}
