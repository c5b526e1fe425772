/* SPDX-License-Identifier: BSD-2-Clause */
/* Wake-ups across instances: PostgreSQL LISTEN/NOTIFY (see cp_notify.h). */
#include "config.h"
#include "cp_notify.h"
#include "cp_ca_keys.h"
#include "cp_waiters.h"
#include "pc_err.h"
#include "pc_log.h"
#include "pc_mem.h"
#include "pc_valid.h"
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define IDLE_PING_MS 30000 /* a quiet connection is checked with a round trip */
#define PUSH_PREFIX "p:"
#define CA_PAYLOAD "ca"

static char *conninfo;
static PGconn *conn;
static pthread_t listener;
static int started, stop_pipe[2] = { -1, -1 };

static int notify(cp_conn *db, const char *payload)
{
    cp_stmt *st;

    if (!cp_sql_is_pg())
        return PC_OK;
    if (!(st = cp_prepare(db, "SELECT pg_notify('" CP_NOTIFY_CHANNEL "', ?)")))
        return PC_ERR_STORE;
    cp_bind_text(st, 1, payload);
    if (cp_step(st) != CP_ROW) {
        cp_finalize(st);
        return PC_ERR_STORE;
    }
    cp_finalize(st);
    return PC_OK;
}

int cp_notify_push(cp_conn *db, const char *push_id)
{
    char payload[64];

    if ((size_t)snprintf(payload, sizeof payload, PUSH_PREFIX "%s", push_id) >= sizeof payload)
        return PC_ERR_INVAL;
    return notify(db, payload);
}

int cp_notify_ca(cp_conn *db)
{
    return notify(db, CA_PAYLOAD);
}

/* A connection that LISTENs, or NULL (err filled). The URL is never logged: it may hold a
 * password. */
static PGconn *listen_conn(char *err, size_t errsz)
{
    const char *const keys[] = { "dbname", "application_name", NULL };
    const char *const vals[] = { conninfo, "portcullisd-listen", NULL };
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    PGresult *r;

    if (!c || PQstatus(c) != CONNECTION_OK) {
        snprintf(err, errsz, "cannot connect to PostgreSQL to LISTEN: %s",
                 c ? PQerrorMessage(c) : "out of memory");
        PQfinish(c);
        return NULL;
    }
    r = PQexec(c, "LISTEN " CP_NOTIFY_CHANNEL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        snprintf(err, errsz, "LISTEN failed: %s", PQerrorMessage(c));
        PQclear(r);
        PQfinish(c);
        return NULL;
    }
    PQclear(r);
    return c;
}

static void dispatch(const char *payload)
{
    const char *id;

    if (strcmp(payload, CA_PAYLOAD) == 0) {
        cp_ca_reload();
        return;
    }
    if (strncmp(payload, PUSH_PREFIX, strlen(PUSH_PREFIX)) != 0)
        return;
    id = payload + strlen(PUSH_PREFIX);
    if (pc_valid_hex(id, 1, 39)) /* struct cp_wait's push_id[40] */
        cp_waiters_notify(id);
}

/* 1 when stop was asked (within ms). */
static int stop_within(int ms)
{
    struct pollfd p = { .fd = stop_pipe[0], .events = POLLIN };
    return poll(&p, 1, ms) > 0;
}

/* Reads the notices of a connection until it fails (0) or stop is asked (1). */
static int serve(void)
{
    for (;;) {
        struct pollfd p[2] = { { .fd = stop_pipe[0], .events = POLLIN },
                               { .fd = PQsocket(conn), .events = POLLIN } };
        PGnotify *n;
        int k = poll(p, 2, IDLE_PING_MS);

        if (k < 0 && errno != EINTR)
            return 0;
        if (p[0].revents)
            return 1;
        if (k == 0) { /* quiet for a while: is the server still there? */
            PGresult *r = PQexec(conn, "SELECT 1");
            int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
            PQclear(r);
            if (!ok)
                return 0;
        } else if (p[1].revents && PQconsumeInput(conn) != 1) {
            return 0;
        }
        while ((n = PQnotifies(conn)) != NULL) {
            if (n->extra)
                dispatch(n->extra);
            PQfreemem(n);
        }
        if (PQstatus(conn) != CONNECTION_OK)
            return 0;
    }
}

static void *run(void *arg)
{
    char err[512];
    int backoff = BACKOFF_MIN_MS;

    (void)arg;
    for (;;) {
        if (serve())
            break;
        pc_log(PC_LOG_WARN, "event=notify_lost error=\"%s\"", PQerrorMessage(conn));
        PQfinish(conn);
        conn = NULL;
        while (!conn) {
            if (stop_within(backoff))
                return NULL;
            if (!(conn = listen_conn(err, sizeof err))) {
                pc_log(PC_LOG_WARN, "event=notify_reconnect error=\"%s\" retry_ms=%d", err,
                       backoff);
                backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
            }
        }
        backoff = BACKOFF_MIN_MS;
        pc_log(PC_LOG_INFO, "event=notify_reconnected");
        /* Notices sent while the connection was down are gone: every waiter looks again. */
        cp_waiters_notify_all();
        cp_ca_reload();
    }
    return NULL;
}

int cp_notify_start(const char *info, char *err, size_t errsz)
{
    if (!cp_sql_is_pg())
        return PC_OK;
    if (!(conninfo = strdup(info)))
        return PC_ERR_NOMEM;
    if (!(conn = listen_conn(err, errsz))) {
        cp_notify_stop();
        return PC_ERR_STORE;
    }
    if (pipe2(stop_pipe, O_CLOEXEC) != 0 || pthread_create(&listener, NULL, run, NULL) != 0) {
        snprintf(err, errsz, "cannot start the LISTEN thread");
        cp_notify_stop();
        return PC_ERR_NOMEM;
    }
    started = 1;
    return PC_OK;
}

void cp_notify_stop(void)
{
    if (started) {
        (void)!write(stop_pipe[1], "x", 1);
        pthread_join(listener, NULL);
        started = 0;
    }
    for (int i = 0; i < 2; i++)
        if (stop_pipe[i] >= 0) {
            close(stop_pipe[i]);
            stop_pipe[i] = -1;
        }
    PQfinish(conn);
    conn = NULL;
    if (conninfo)
        pc_free_secret_str(conninfo);
    conninfo = NULL;
}
