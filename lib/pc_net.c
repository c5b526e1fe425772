/* SPDX-License-Identifier: BSD-2-Clause */
/* TCP connect with a deadline (see pc_net.h). getaddrinfo has no timeout of its own, so a name
 * (not a literal) is looked up on a detached thread; the caller waits for it until the deadline
 * and then walks away, leaving the thread to free what it made when the lookup ends. */
#include "config.h"
#include "pc_net.h"
#include "pc_agent_proto.h"
#include "pc_err.h"
#include "pc_time.h"
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* One lookup, shared by the caller and its thread; the last of the two to let go frees it. */
struct lookup {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    int done;
    int gai_rc;
    struct addrinfo *res;
    char *host;
    char *port;
};

static void lookup_release(struct lookup *l)
{
    int last;

    pthread_mutex_lock(&l->mu);
    last = --l->refs == 0;
    pthread_mutex_unlock(&l->mu);
    if (!last)
        return;
    if (l->res)
        freeaddrinfo(l->res);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    free(l->host);
    free(l->port);
    free(l);
}

static void *lookup_thread(void *arg)
{
    struct lookup *l = arg;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(l->host, l->port, &hints, &res);

    pthread_mutex_lock(&l->mu);
    l->gai_rc = rc;
    l->res = res;
    l->done = 1;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    lookup_release(l);
    return NULL;
}

/* *res: the addresses (the caller frees them), or the error. */
static int resolve(const char *host, const char *port, int64_t deadline_ms, struct addrinfo **res,
                   char *err, size_t errsz)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC,
                              .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
    struct lookup *l;
    pthread_attr_t attr;
    pthread_condattr_t ca;
    pthread_t t;
    int rc = PC_OK;

    *res = NULL;
    if (getaddrinfo(host, port, &hints, res) == 0)
        return PC_OK; /* a literal: nothing to wait for */
    l = calloc(1, sizeof *l);
    if (!l)
        return pc_errf(err, errsz, PC_ERR_NOMEM, "out of memory");
    l->host = strdup(host);
    l->port = strdup(port);
    l->refs = 2;
    if (!l->host || !l->port) {
        free(l->host);
        free(l->port);
        free(l);
        return pc_errf(err, errsz, PC_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* pc_now_ms's clock */
    pthread_cond_init(&l->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, lookup_thread, l) != 0) {
        pthread_attr_destroy(&attr);
        l->refs = 1;
        lookup_release(l);
        return pc_errf(err, errsz, PC_ERR_NOMEM, "cannot start the name lookup for %s", host);
    }
    pthread_attr_destroy(&attr);

    pthread_mutex_lock(&l->mu);
    while (!l->done) {
        int64_t ms = deadline_ms;
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

        if (pc_now_ms() >= deadline_ms)
            break;
        pthread_cond_timedwait(&l->cv, &l->mu, &ts);
    }
    if (!l->done)
        rc = pc_errf(err, errsz, PC_ERR_TIMEOUT, "looking up %s took too long", host);
    else if (l->gai_rc != 0)
        rc = pc_errf(err, errsz, PC_ERR_NET, "cannot resolve %s (%s)", host,
                     gai_strerror(l->gai_rc));
    else {
        *res = l->res; /* ours now */
        l->res = NULL;
    }
    pthread_mutex_unlock(&l->mu);
    lookup_release(l);
    return rc;
}

/* One address: a non-blocking connect, waited for until the deadline. */
static int connect_one(const struct addrinfo *ai, int64_t deadline_ms, int *fd, int *eno)
{
    int s = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    int one = 1, rc;
    socklen_t len = sizeof *eno;

    if (s < 0) {
        *eno = errno;
        return PC_ERR_NET;
    }
    /* Requests are small and answered at once: no Nagle delay on the last segment. */
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    if (connect(s, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            *eno = errno;
            close(s);
            return PC_ERR_NET;
        }
        rc = pc_agent_wait(s, POLLOUT, deadline_ms);
        if (rc != PC_OK) {
            *eno = rc == PC_ERR_TIMEOUT ? ETIMEDOUT : errno;
            close(s);
            return rc == PC_ERR_TIMEOUT ? PC_ERR_TIMEOUT : PC_ERR_NET;
        }
        if (getsockopt(s, SOL_SOCKET, SO_ERROR, eno, &len) != 0 || *eno != 0) {
            if (*eno == 0)
                *eno = errno;
            close(s);
            return PC_ERR_NET;
        }
    }
    *fd = s;
    return PC_OK;
}

int pc_net_connect(const char *host, const char *port, int64_t deadline_ms, int *fd, char *err,
                   size_t errsz)
{
    struct addrinfo *res = NULL;
    int rc, eno = 0;

    *fd = -1;
    rc = resolve(host, port, deadline_ms, &res, err, errsz);
    if (rc != PC_OK)
        return rc;
    rc = PC_ERR_NET;
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        rc = connect_one(ai, deadline_ms, fd, &eno);
        if (rc == PC_OK || rc == PC_ERR_TIMEOUT)
            break;
    }
    freeaddrinfo(res);
    if (rc == PC_ERR_TIMEOUT)
        return pc_errf(err, errsz, rc, "connecting to %s port %s took too long", host, port);
    if (rc != PC_OK)
        return pc_errf(err, errsz, rc, "cannot connect to %s port %s (%s)", host, port,
                       eno ? strerror(eno) : "no address");
    return PC_OK;
}
