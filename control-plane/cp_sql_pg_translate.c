/* SPDX-License-Identifier: BSD-2-Clause */
/* The store's PostgreSQL layer (cp_sql_pg.c): SQLite's '?'/'?N' parameters turned into
 * PostgreSQL's $N, and which of them a statement names. */
#include "config.h"
#include "cp_sql_pg_int.h"
#include "pc_err.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG_MAX_PARAMS 65535 /* the protocol's limit */
#define PG_SQL_MAX (1u << 20)

/* SQLite's parameters to PostgreSQL's: '?' is one more than the largest number used so far,
 * '?N' is $N; text in '…' and identifiers in "…" are copied as they are. */
int cp_pg_translate(const char *sql, char **out, size_t *outlen, int *nparams)
{
    size_t len = strlen(sql), o = 0;
    int max = 0;
    char *t;

    if (len > PG_SQL_MAX)
        return PC_ERR_INVAL;
    t = malloc(len * 6 + 1); /* '?' (1 byte) becomes at most "$65535" (6) */
    if (!t)
        return PC_ERR_NOMEM;
    for (size_t i = 0; i < len;) {
        char c = sql[i];
        if (c == '\'' || c == '"') {
            size_t j = i + 1;
            while (j < len && sql[j] != c)
                j++;
            if (j < len)
                j++; /* the closing quote; a doubled one just opens the next run */
            memcpy(t + o, sql + i, j - i);
            o += j - i;
            i = j;
        } else if (c == '?') {
            long n;
            size_t j = i + 1;
            if (j < len && sql[j] >= '0' && sql[j] <= '9') {
                n = 0;
                while (j < len && sql[j] >= '0' && sql[j] <= '9' && n <= PG_MAX_PARAMS)
                    n = n * 10 + (sql[j++] - '0');
                if (n < 1 || n > PG_MAX_PARAMS)
                    goto bad;
            } else {
                n = max + 1L;
                if (n > PG_MAX_PARAMS)
                    goto bad;
            }
            if (n > max)
                max = (int)n;
            o += (size_t)snprintf(t + o, 7, "$%ld", n);
            i = j;
        } else {
            t[o++] = c;
            i++;
        }
    }
    t[o] = '\0';
    *out = t;
    *outlen = o;
    *nparams = max;
    return PC_OK;
bad:
    free(t);
    return PC_ERR_INVAL;
}

/* Which $N the translated SQL names (outside '…' and "…"). */
void cp_pg_mark_used(cp_stmt *st)
{
    const char *q = st->sql;

    while (*q) {
        if (*q == '\'' || *q == '"') {
            const char *e = strchr(q + 1, *q);
            q = e ? e + 1 : q + strlen(q);
        } else if (*q == '$' && q[1] >= '1' && q[1] <= '9') {
            char *end;
            long n = strtol(q + 1, &end, 10);
            if (n >= 1 && n <= st->nparams)
                st->used[n - 1] = 1;
            q = end;
        } else {
            q++;
        }
    }
}
