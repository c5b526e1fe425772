/* SPDX-License-Identifier: BSD-2-Clause */
/* Long-poll waiters. A waiting request holds no thread: its connection is suspended in
 * libmicrohttpd and listed here; a state change (cp_waiters_notify) or its deadline resumes it.
 * One background thread checks deadlines and runs the caller's housekeeping (portcullisd:
 * expiring overdue pushes, which notifies their waiters) about once a second. It also watches
 * the waiting sockets for a hang-up (EPOLLRDHUP; libmicrohttpd does not read a suspended
 * connection) and resumes such a waiter with gone set, so its connection is closed within a
 * tick instead of sitting in CLOSE-WAIT until its deadline. */
#ifndef CP_WAITERS_H
#define CP_WAITERS_H
#include <microhttpd.h>
#include <stdint.h>

struct cp_parked;

struct cp_wait {
    struct MHD_Connection *conn; /* NULL for a parked waiter */
    /* A parked waiter (cp_parked.h): its connection has left libmicrohttpd; when resumed (state
     * change, deadline, hang-up, stop), on_ready runs on the background thread, outside the
     * lock, and either answers through parked or parks w again. */
    struct cp_parked *parked;
    void (*on_ready)(struct cp_wait *w);
    struct cp_wait *ready_next;
    char push_id[40];
    int64_t deadline_ms; /* pc_now_ms() clock */
    int listed;
    int fd;
    int watched; /* its socket is in the hang-up watch (see cp_waiters.c) */
    int gone;    /* the client hung up while it waited: close, do not answer */
    struct cp_wait *prev, *next;
};

/* housekeeping (may be NULL) runs on the background thread about once a second, without the
 * waiters' lock (it may call cp_waiters_notify). */
int cp_waiters_start(void (*housekeeping)(void));
/* Resumes every waiter (their requests answer with the current state) and stops the thread. */
void cp_waiters_stop(void);
/* Lists w and suspends its connection; called from inside the access handler. */
void cp_waiters_suspend(struct cp_wait *w);
/* A parked waiter's slot: 1 if fewer than limit are parked (the slot is then taken), else 0 (the
 * caller holds the connection in libmicrohttpd as before). Each parked poll keeps a descriptor
 * outside libmicrohttpd's connection limit; this is its limit. */
int cp_waiters_park_reserve(unsigned limit);
/* Gives back a slot of cp_waiters_park_reserve (the parked poll ended). */
void cp_waiters_park_release(void);
/* Lists a parked waiter (w->parked, w->on_ready, push_id, deadline_ms set) and watches its
 * socket: anything the client sends, or its hang-up, resumes it with gone set. Once a stop has
 * ended the waiters' thread, on_ready runs here, before this returns. */
void cp_waiters_park(struct cp_wait *w);
/* Resumes every waiter of push_id. */
void cp_waiters_notify(const char *push_id);
/* Resumes every waiter: each answers with its push's current state, or, if still pending,
 * waits again (the API's long-polls re-list; cp_notify.h calls this after a lost connection). */
void cp_waiters_notify_all(void);
/* Unlists w if still listed (connection ended). */
void cp_waiters_forget(struct cp_wait *w);
/* Number of waiting requests (for logs and /metrics), and how many of them are parked. */
unsigned cp_waiters_count(void);
unsigned cp_waiters_parked_count(void);
int cp_waiters_stopping(void);

#endif
