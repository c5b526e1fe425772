/* SPDX-License-Identifier: BSD-2-Clause */
/* Private to the store's PostgreSQL layer: the connection and statement that cp_sql_pg.c (the
 * calls), cp_sql_pg_translate.c (SQLite's parameters to PostgreSQL's) and cp_sql_pg_cache.c
 * (the prepared-statement cache) share. */
#ifndef CP_SQL_PG_INT_H
#define CP_SQL_PG_INT_H
#include "cp_sql.h"
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#define PG_CACHE_MAX 256
#define PG_CACHE_BUCKETS 64

_Static_assert(sizeof(Oid) == sizeof(unsigned), "types[] is passed to libpq as Oid[]");

struct pg_prepared {
    char *key; /* SQL, '\0', the bound types ("i", "t", "b", "n" per parameter) */
    size_t keylen;
    char name[24];
    struct pg_prepared *next;
};

struct cp_conn {
    PGconn *pg;
    int64_t changes; /* rows changed by the last INSERT/UPDATE/DELETE */
    int in_tx;       /* a transaction was begun and not yet ended by COMMIT/ROLLBACK */
    unsigned n_prepared, next_name;
    struct pg_prepared *cache[PG_CACHE_BUCKETS];
    char err[512];
};

struct pg_blob { /* a decoded bytea column of the current row */
    unsigned char *p;
    size_t n;
    int ok;
};

struct cp_stmt {
    cp_conn *db;
    char *sql; /* with $N parameters */
    size_t sqllen;
    int nparams;
    char **vals; /* copies of the bound values (NULL = SQL NULL) */
    int *lens, *fmts;
    unsigned *types;     /* Oid: 0 (inferred), INT8OID or BYTEAOID */
    char *kinds;         /* 'n', 'i', 't', 'b': the cache key's type part */
    unsigned char *used; /* used[i]: $(i+1) appears in the SQL (SQLite allows gaps) */
    PGresult *res;
    int ran, row, nrows, ncols;
    struct pg_blob *blobs; /* ncols entries, filled on demand, emptied at each step */
};

/* cp_sql_pg_translate.c: SQLite's parameters to PostgreSQL's: '?' is one more than the largest
 * number used so far, '?N' is $N; *out (malloc'd) gets the SQL, *nparams the largest N. */
int cp_pg_translate(const char *sql, char **out, size_t *outlen, int *nparams);
/* Which $N st's translated SQL names: st->used. */
void cp_pg_mark_used(cp_stmt *st);

/* cp_sql_pg_cache.c: forgets db's prepared statements (a new session has none of them). */
void cp_pg_cache_clear(cp_conn *db);
/* The name of a server-side prepared statement for st's SQL and bound types, preparing it on
 * first use; NULL (run it unnamed) when the cache is full. Should PREPARE fail, *failed holds
 * its result. */
const char *cp_pg_prepared_name(cp_stmt *st, PGresult **failed);

#endif
