/* SPDX-License-Identifier: BSD-2-Clause */
/* Schema migrations of the store (cp_schema.c), run by cp_store_open. */
#ifndef CP_SCHEMA_H
#define CP_SCHEMA_H
#include "cp_sql.h"
#include <stddef.h>

/* Migrates db to the newest schema, each step in its own transaction. from/to (may be NULL):
 * the version found under the store's write lock, and the one left (for --migrate-only). */
int cp_schema_migrate(cp_conn *db, int *from, int *to, char *err, size_t errsz);
/* PostgreSQL's version of the same steps (cp_schema_pg.c); NULL unless it has exactly n. */
const char *const *cp_schema_pg_steps(int n);

#endif
