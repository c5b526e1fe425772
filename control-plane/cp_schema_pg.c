/* SPDX-License-Identifier: BSD-2-Clause */
/* The schema migrations of cp_schema.c in PostgreSQL's dialect: step N here is step N there,
 * table for table and column for column (INTEGER → BIGINT, BLOB → BYTEA, triggers as
 * functions). Never edit a released step, append a new one — to both files. */
#include "config.h"
#include "cp_schema.h"
#include <stddef.h>

static const char *const steps[] = { NULL };

const char *const *cp_schema_pg_steps(int n)
{
    (void)steps;
    (void)n;
    return NULL; /* not written yet */
}
