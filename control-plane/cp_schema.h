/* SPDX-License-Identifier: BSD-2-Clause */
/* Schema migrations of the store (cp_schema.c), run by cp_store_open. */
#ifndef CP_SCHEMA_H
#define CP_SCHEMA_H
#include <sqlite3.h>
#include <stddef.h>

/* Migrates db to the newest schema, each step in its own transaction. */
int cp_schema_migrate(sqlite3 *db, char *err, size_t errsz);

#endif
