/* SPDX-License-Identifier: BSD-2-Clause */
/* Requests that wait for the store, run off the libmicrohttpd worker. A worker serves many
 * keep-alive connections; while it sat in a handler waiting for its group commit
 * (cp_store_write), it served none of the others, so the requests that could share one commit
 * were at most one per worker (and a busy host's connection stalled unrelated hosts that
 * happened to share its worker). cp_defer suspends the connection and runs the handler on a
 * small pool of threads made on demand; the worker goes back to its other connections, and
 * the reply is sent when the pool resumes the connection. */
#ifndef CP_DEFER_H
#define CP_DEFER_H
#include "api.h"

/* At most max_threads pool threads, made when a request finds none idle (none at start-up:
 * an idle daemon has none). */
void cp_defer_start(unsigned max_threads);
/* Refuses new deferrals (cp_defer then returns 0: the caller runs the handler itself) and
 * waits until every deferred request has its reply and its connection is resumed; joins the
 * threads. Before MHD_stop_daemon, which must find no connection suspended. */
void cp_defer_stop(void);
/* Inside the access handler, for a handler that neither parks its connection nor touches it:
 * suspends c->conn and queues h with a copy of c (c->body moves to the copy; c->body is NULL
 * after). 1 when deferred: the caller sends nothing now, and when libmicrohttpd calls it again
 * for this request, cp_defer_take gives the reply. 0 when not (stopping, or no thread could
 * be made): the caller runs h itself. */
int cp_defer(cp_handler h, struct cp_call *c);
/* The reply of a deferred request once it is ready: 1 and *r filled (the caller owns its
 * body and raw), else 0 (not deferred). */
int cp_defer_take(struct cp_req *req, struct cp_resp *r);

/* For a handler that answers from another thread without occupying a pool thread (the login
 * endpoints answer from the store's writer, cp_store_write_then): suspends c->conn, which then
 * waits for cp_defer_answer; cp_defer_stop waits for that answer too. NULL when not (stopping,
 * out of memory): the handler answers now, as a handler that is not deferred does. */
struct cp_defer_hold;
struct cp_defer_hold *cp_defer_hold(struct cp_call *c);
/* The held request's reply (r on the heap, NULL: out of memory, answered 500; r becomes
 * cp_defer_take's): resumes the connection, frees h. From any thread, exactly once per hold. */
void cp_defer_answer(struct cp_defer_hold *h, struct cp_resp *r);

#endif
