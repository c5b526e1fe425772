/* SPDX-License-Identifier: BSD-2-Clause */
/* A VFS over SQLite's default one that writes each commit to the write-ahead log in one
 * write, not two per page (why, and why that is safe: cp_sql_walbuf.c). */
#ifndef CP_SQL_WALBUF_H
#define CP_SQL_WALBUF_H

/* Makes it SQLite's default VFS, once, before the first connection is opened. PC_OK, or
 * PC_ERR_STORE (SQLite keeps its own default then: correct, only slower). */
int cp_sql_walbuf_register(void);

#endif
