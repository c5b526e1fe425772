/* SPDX-License-Identifier: BSD-2-Clause */
/* Wake-ups across instances on one PostgreSQL database (LISTEN/NOTIFY; nothing polls a table).
 *
 * Whoever changes a push's state calls cp_notify_push inside the same write transaction: the
 * notice goes out when that transaction commits, and never if it rolls back. One thread per
 * instance holds a connection of its own that LISTENs on the channel and resumes the local
 * waiters of the push named (cp_waiters_notify). A CA rotation sends cp_notify_ca: each
 * instance then reloads its CA keys from the database (cp_ca_reload).
 *
 * If the listening connection drops, the thread reconnects with a backoff (0.1 s doubling to
 * 5 s); after every (re)connection it resumes every local waiter once (each re-reads its push)
 * and reloads the CA keys, so a notice sent while it was away is never missed. On SQLite (one
 * instance) every call is a no-op: cp_waiters_notify after the commit is all it takes. */
#ifndef CP_NOTIFY_H
#define CP_NOTIFY_H
#include "cp_sql.h"

#define CP_NOTIFY_CHANNEL "portcullis_events"

/* Inside a write transaction: tells every instance that push_id changed state. */
int cp_notify_push(cp_conn *db, const char *push_id);
/* Inside a write transaction: tells every instance that the CA keys changed. */
int cp_notify_ca(cp_conn *db);

/* Starts the listening thread for conninfo (PostgreSQL only; a no-op otherwise). The first
 * connection is made before this returns, so a failure is reported at start. */
int cp_notify_start(const char *conninfo, char *err, size_t errsz);
void cp_notify_stop(void);

#endif
