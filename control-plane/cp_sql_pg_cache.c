/* SPDX-License-Identifier: BSD-2-Clause */
/* The store's PostgreSQL layer (cp_sql_pg.c): each connection's cache of server-side prepared
 * statements, up to PG_CACHE_MAX, keyed by the SQL and the bound types, so that a statement the
 * store runs again is parsed and planned once per connection. */
#include "config.h"
#include "cp_sql_pg_int.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cp_pg_cache_clear(cp_conn *db)
{
    for (int b = 0; b < PG_CACHE_BUCKETS; b++)
        while (db->cache[b]) {
            struct pg_prepared *e = db->cache[b];
            db->cache[b] = e->next;
            free(e->key);
            free(e);
        }
    db->n_prepared = 0;
}

static unsigned hash_key(const char *k, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * 16777619u;
    return h % PG_CACHE_BUCKETS;
}

/* The name of a server-side prepared statement for st's SQL and bound types, preparing it on
 * first use; NULL (run it unnamed) when the cache is full. Should PREPARE fail, *failed holds
 * its result (its error is the statement's: inside a transaction it also aborted that). */
const char *cp_pg_prepared_name(cp_stmt *st, PGresult **failed)
{
    cp_conn *db = st->db;
    size_t klen = st->sqllen + 1 + (size_t)st->nparams;
    struct pg_prepared *e;
    unsigned b;
    char *key;
    PGresult *res;

    key = malloc(klen);
    if (!key)
        return NULL;
    memcpy(key, st->sql, st->sqllen + 1);
    memcpy(key + st->sqllen + 1, st->kinds, (size_t)st->nparams);
    b = hash_key(key, klen);
    for (e = db->cache[b]; e; e = e->next)
        if (e->keylen == klen && !memcmp(e->key, key, klen)) {
            free(key);
            return e->name;
        }
    /* outside a transaction only: a failed PREPARE inside one would abort it */
    if (db->n_prepared >= PG_CACHE_MAX || PQtransactionStatus(db->pg) == PQTRANS_INERROR ||
        !(e = calloc(1, sizeof *e))) {
        free(key);
        return NULL;
    }
    snprintf(e->name, sizeof e->name, "cp_%u", db->next_name++);
    res = PQprepare(db->pg, e->name, st->sql, st->nparams, (const Oid *)st->types);
    if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
        *failed = res;
        free(e);
        free(key);
        return NULL;
    }
    PQclear(res);
    e->key = key;
    e->keylen = klen;
    e->next = db->cache[b];
    db->cache[b] = e;
    db->n_prepared++;
    return e->name;
}
