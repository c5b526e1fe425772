/* SPDX-License-Identifier: BSD-2-Clause */
/* The unix-socket server (see ag_server.h). */
#include "config.h"
#include "ag_server.h"
#include "ag_metrics.h"
#include "pc_agent_proto.h"
#include "pc_err.h"
#include "pc_frame.h"
#include "pc_log.h"
#include "pc_time.h"
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stddef.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct server {
    pthread_mutex_t lock;
    pthread_cond_t idle; /* signalled when a client ends */
    struct ag_ctx *ctx;
    unsigned max, active;
    unsigned nonroot_active; /* of active: callers whose uid is not 0 */
    int *fds;                /* fds of active clients (-1 = free slot), max of them */
    /* Client threads are joinable, one per slot: a slot's previous thread is joined when the
     * slot is reused, and every one at a drained stop, so no thread (nor the TLS library's
     * per-thread state, freed when a thread exits) outlives ag_server_run. */
    pthread_t *tids;
    unsigned char *joinable; /* tids[i] holds a thread not yet joined */
    /* The first AG_WARM_STACKS slots keep their thread stack (mapped on first use, with a guard
     * page, unmapped at a drained stop): a slot is reused only after its previous thread was
     * joined, so the stack is free then. glibc's own stacks are trimmed (madvise) when their
     * thread exits, and every login paid for that, the TLB shootdown it sends to the other
     * CPUs and the page faults of the next thread (issue 16). Slots are taken lowest first,
     * so sequential logins always get a warm one; the rest use glibc's stacks, so that a burst
     * of clients does not leave its stacks resident. */
    void *stacks[AG_WARM_STACKS];
    /* A warm slot's thread does not exit when its client ends: it parks for AG_PARK_MS, and the
     * next client of that slot is handed to it (handoff, wake) instead of to a new thread. A
     * login then costs no thread creation and exit, no join, and no per-thread state of the TLS
     * library made and freed (issue 16). Freeing the slot and parking happen under one hold of
     * the lock, so a free slot whose thread is not parked has a thread that is exiting. */
    pthread_cond_t wake[AG_WARM_STACKS];
    struct client *handoff[AG_WARM_STACKS];
    unsigned char parked[AG_WARM_STACKS];
    int stopping; /* drain has begun: no thread parks, the parked ones leave */
};

struct client {
    struct server *s;
    unsigned slot;
    int fd;
    uid_t uid;
    pid_t pid;
};

static int make_addr(const char *path, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa->sun_path)
        return PC_ERR_INVAL;
    memcpy(sa->sun_path, path, strlen(path) + 1);
    return PC_OK;
}

/* A socket file already there: remove it if nobody answers on it. */
static int clear_stale(const char *path, const struct sockaddr_un *sa, char *err, size_t errsz)
{
    struct stat st;
    int fd, live;

    if (lstat(path, &st) != 0)
        return errno == ENOENT ? PC_OK : PC_ERR_IO;
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errsz, "%s exists and is not a socket: remove it or change 'socket'", path);
        return PC_ERR_EXISTS;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return PC_ERR_IO;
    live = connect(fd, (const struct sockaddr *)sa, sizeof *sa) == 0;
    close(fd);
    if (live) {
        snprintf(err, errsz, "another agent is already listening on %s", path);
        return PC_ERR_EXISTS;
    }
    if (unlink(path) != 0) {
        snprintf(err, errsz, "cannot remove the stale socket %s: %s", path, strerror(errno));
        return PC_ERR_IO;
    }
    return PC_OK;
}

static int make_dir(const char *path, char *err, size_t errsz)
{
    char copy[PATH_MAX];
    const char *dir;
    struct stat st;

    if (strlen(path) >= sizeof copy)
        return PC_ERR_INVAL;
    memcpy(copy, path, strlen(path) + 1);
    dir = dirname(copy);
    if (lstat(dir, &st) != 0) {
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
            snprintf(err, errsz, "cannot create the socket directory %s: %s", dir, strerror(errno));
            return PC_ERR_IO;
        }
        chmod(dir, 0755); /* ours, just made: not subject to the umask */
        if (lstat(dir, &st) != 0)
            return PC_ERR_IO;
    }
    /* We bind, chown and chmod by path: if anyone else could write the directory, they could
     * swap the socket for a symlink in between and have root chown a file of their choice. */
    if (!S_ISDIR(st.st_mode) || (st.st_mode & 022) != 0 || st.st_uid != geteuid()) {
        snprintf(err, errsz,
                 "the socket directory %s must be a directory owned by uid %u and "
                 "writable by nobody else (mode %03o, owner %u)",
                 dir, (unsigned)geteuid(), (unsigned)(st.st_mode & 0777), (unsigned)st.st_uid);
        return PC_ERR_INVAL;
    }
    return PC_OK;
}

/* Socket activation (systemd's sd_listen_fds protocol, by hand): when LISTEN_PID is our pid
 * and LISTEN_FDS is 1, fd 3 is a listening socket that systemd bound (portcullis-agent.socket).
 * It must be a listening AF_UNIX stream socket bound to the configured path. Returns 1 and
 * fills l when one was passed, 0 when none was, or an error (PC_ERR_*, negative). The socket
 * file belongs to systemd: l->path stays NULL, so a stop never unlinks it and logins queue on
 * it while the agent restarts. The LISTEN_* variables are removed, so no child inherits them.
 * A refusing agent (its configuration did not load, so "socket" may be a guess) takes the
 * socket whatever path it is bound to: the logins are waiting on that one. */
#define AG_LISTEN_FDS_START 3
static int take_activated(const struct ag_config *cfg, int refusing, struct ag_listener *l,
                          char *err, size_t errsz)
{
    const char *e_pid = getenv("LISTEN_PID"), *e_fds = getenv("LISTEN_FDS");
    const int fd = AG_LISTEN_FDS_START;
    struct sockaddr_un bound;
    socklen_t len = sizeof bound, olen;
    struct stat st;
    char path[sizeof bound.sun_path + 1];
    char *end;
    long pid, n;
    int val, rc;

    if (!e_pid || !e_fds)
        return 0;
    errno = 0;
    pid = strtol(e_pid, &end, 10);
    if (errno || *end || end == e_pid || pid != (long)getpid())
        return 0; /* meant for another process (we were exec'd by the one it was for) */
    n = strtol(e_fds, &end, 10);
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    if (*end || end == e_fds || n < 0) {
        snprintf(err, errsz, "socket activation: bad LISTEN_FDS");
        return PC_ERR_INVAL;
    }
    if (n == 0)
        return 0;
    if (n != 1) {
        snprintf(err, errsz,
                 "socket activation: systemd passed %ld sockets, the agent takes "
                 "exactly one (ListenStream=%s)",
                 n, cfg->socket);
        return PC_ERR_INVAL;
    }
    olen = sizeof val;
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode) ||
        getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &val, &olen) != 0 || val != AF_UNIX ||
        (olen = sizeof val, getsockopt(fd, SOL_SOCKET, SO_TYPE, &val, &olen)) != 0 ||
        val != SOCK_STREAM ||
        (olen = sizeof val, getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &val, &olen)) != 0 || !val) {
        snprintf(err, errsz, "socket activation: fd 3 is not a listening unix stream socket");
        return PC_ERR_INVAL;
    }
    memset(&bound, 0, sizeof bound);
    memset(path, 0, sizeof path);
    if (getsockname(fd, (struct sockaddr *)&bound, &len) == 0 &&
        len > offsetof(struct sockaddr_un, sun_path))
        memcpy(path, bound.sun_path, sizeof bound.sun_path); /* path[] stays NUL-terminated */
    if (strcmp(path, cfg->socket) != 0) {
        if (!refusing || path[0] != '/') {
            snprintf(err, errsz,
                     "socket activation: systemd passed a socket bound to %.108s, "
                     "but the configuration says socket = %s: make ListenStream= and 'socket' "
                     "agree",
                     path[0] ? path : "(nothing)", cfg->socket);
            return PC_ERR_INVAL;
        }
        pc_log(PC_LOG_WARN, "event=socket_activated_other_path socket=%s guessed=%s", path,
               cfg->socket);
    }
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
        snprintf(err, errsz, "socket activation: fcntl: %s", strerror(errno));
        return PC_ERR_IO;
    }
    /* The configuration stays the truth for owner, group and mode (as without systemd). A
     * refusing agent that could not read socket_group leaves systemd's owner and group. */
    if ((rc = make_dir(path, err, errsz)) != PC_OK)
        return rc;
    if ((refusing ? cfg->socket_group != NULL : (geteuid() == 0 || cfg->socket_group)) &&
        chown(path, geteuid() == 0 ? 0 : (uid_t)-1, cfg->socket_gid) != 0) {
        snprintf(err, errsz, "cannot chown %s: %s", path, strerror(errno));
        return PC_ERR_IO;
    }
    if (chmod(path, 0660) != 0) {
        snprintf(err, errsz, "cannot chmod %s: %s", path, strerror(errno));
        return PC_ERR_IO;
    }
    l->fd = fd;
    l->path = NULL;
    pc_log(PC_LOG_INFO, "event=socket_activated socket=%s", path);
    return 1;
}

int ag_listener_open(const struct ag_config *cfg, int refusing, struct ag_listener *l, char *err,
                     size_t errsz)
{
    struct sockaddr_un sa;
    struct stat st;
    mode_t old_umask;
    int rc, fd = -1;

    memset(l, 0, sizeof *l);
    l->fd = -1;
    if (make_addr(cfg->socket, &sa) != PC_OK) {
        snprintf(err, errsz, "socket path %s is too long", cfg->socket);
        return PC_ERR_INVAL;
    }
    rc = take_activated(cfg, refusing, l, err, errsz);
    if (rc == 1)
        return PC_OK;
    if (rc != 0)
        return rc;
    if ((rc = make_dir(cfg->socket, err, errsz)) != PC_OK ||
        (rc = clear_stale(cfg->socket, &sa, err, errsz)) != PC_OK)
        goto out;
    rc = PC_ERR_IO;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errsz, "socket: %s", strerror(errno));
        goto out;
    }
    old_umask = umask(0177); /* the file is never more open than 0600 before the chmod */
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        umask(old_umask);
        snprintf(err, errsz, "cannot bind %s: %s", cfg->socket, strerror(errno));
        goto out;
    }
    umask(old_umask);
    if ((geteuid() == 0 || cfg->socket_group) &&
        chown(cfg->socket, geteuid() == 0 ? 0 : (uid_t)-1, cfg->socket_gid) != 0) {
        snprintf(err, errsz, "cannot chown %s: %s", cfg->socket, strerror(errno));
        goto unlink_out;
    }
    if (chmod(cfg->socket, 0660) != 0 || stat(cfg->socket, &st) != 0) {
        snprintf(err, errsz, "cannot chmod %s: %s", cfg->socket, strerror(errno));
        goto unlink_out;
    }
    if (listen(fd, 128) != 0) {
        snprintf(err, errsz, "listen on %s: %s", cfg->socket, strerror(errno));
        goto unlink_out;
    }
    l->path = strdup(cfg->socket);
    if (!l->path) {
        snprintf(err, errsz, "out of memory");
        rc = PC_ERR_NOMEM;
        goto unlink_out;
    }
    l->fd = fd;
    l->dev = st.st_dev;
    l->ino = st.st_ino;
    return PC_OK;
unlink_out:
    unlink(cfg->socket);
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

void ag_listener_close(struct ag_listener *l)
{
    struct stat st;

    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    if (l->path && lstat(l->path, &st) == 0 && st.st_dev == l->dev && st.st_ino == l->ino)
        unlink(l->path);
    free(l->path);
    l->path = NULL;
}

static void reply_and_forget(int fd, json_object *reply, int64_t ms)
{
    if (reply) {
        pc_frame_write(fd, reply, pc_now_ms() + ms);
        json_object_put(reply);
    }
}

/* Ends c's conversation and frees its slot. With park (c's own thread), for a warm slot, the
 * thread then parks: the next client handed to it (NULL: it timed out or the agent stops, and
 * the thread exits). */
static struct client *client_end(struct client *c, int park)
{
    struct server *s = c->s;
    unsigned slot = c->slot;
    struct client *next = NULL;

    close(c->fd);
    pthread_mutex_lock(&s->lock);
    s->fds[slot] = -1;
    s->active--;
    if (c->uid != 0)
        s->nonroot_active--;
    pthread_cond_broadcast(&s->idle);
    free(c);
    if (park && slot < AG_WARM_STACKS && !s->stopping) {
        struct timespec ts;
        int64_t until = pc_now_ms() + AG_PARK_MS;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += AG_PARK_MS / 1000;
        s->parked[slot] = 1;
        while (!s->handoff[slot] && !s->stopping && pc_now_ms() < until)
            pthread_cond_timedwait(&s->wake[slot], &s->lock, &ts);
        next = s->handoff[slot];
        s->handoff[slot] = NULL;
        s->parked[slot] = 0;
    }
    pthread_mutex_unlock(&s->lock);
    return next;
}

/* One client's conversation: requests until it closes, idles or errs. */
static void serve(struct client *c)
{
    int close_after = 0;

    while (!close_after) {
        json_object *req = NULL, *reply;
        int rc = pc_frame_read(c->fd,
                               pc_now_ms() + (c->uid == 0 ? AG_CLIENT_IDLE_MS : AG_NONROOT_IDLE_MS),
                               &req);

        if (rc == PC_ERR_IO)
            break; /* the peer closed: the normal end of a conversation */
        if (rc == PC_ERR_TIMEOUT) {
            pc_log(PC_LOG_DEBUG, "event=client_idle pid=%ld", (long)c->pid);
            break;
        }
        if (rc != PC_OK) {
            pc_log(PC_LOG_WARN, "event=bad_frame pid=%ld uid=%u error=\"%s\"", (long)c->pid,
                   (unsigned)c->uid, pc_strerror(rc));
            reply_and_forget(c->fd, ag_ops_error(PC_AGENT_E_BAD_REQUEST, "malformed frame"),
                             AG_CLIENT_WRITE_MS);
            break;
        }
        reply = ag_ops_handle(c->s->ctx, req, c->uid, &close_after);
        ag_metrics_call(req, reply);
        json_object_put(req);
        if (c->uid != 0)
            close_after = 1; /* one request per connection for non-root callers */
        if (!reply)
            break;
        rc = pc_frame_write(c->fd, reply, pc_now_ms() + AG_CLIENT_WRITE_MS);
        json_object_put(reply);
        if (rc != PC_OK)
            break;
    }
}

static void *client_main(void *arg)
{
    struct client *c = arg;

    /* A name for `top -H` and ps, and for the test that shows one thread serving client after
     * client (tests/integration/test_agent.py). */
    pthread_setname_np(pthread_self(), "agent-client");
    do
        serve(c);
    while ((c = client_end(c, 1)));
    return NULL;
}

/* Non-root callers may hold at most a quarter of the slots (at least 1, at most
 * AG_NONROOT_MAX): the rest is always there for root's logins. */
static unsigned nonroot_quota(unsigned max)
{
    unsigned q = max / 4;
    if (q > AG_NONROOT_MAX)
        q = AG_NONROOT_MAX;
    return q ? q : 1;
}

/* The lowest page of a warm stack is the guard (PROT_NONE): an overflow faults. */
static size_t page_size(void)
{
    long ps = sysconf(_SC_PAGESIZE);
    return ps > 0 ? (size_t)ps : 4096;
}

/* Sets attr to slot's warm stack, mapping it on first use; 0 when the slot has none (glibc
 * allocates one then). Called from the accept loop only. */
static int warm_stack(struct server *s, unsigned slot, pthread_attr_t *attr)
{
    size_t guard = page_size();

    if (slot >= AG_WARM_STACKS)
        return 0;
    if (!s->stacks[slot]) {
        int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK;
        /* cppcheck-suppress invalidFunctionArg ; fd -1 is what MAP_ANONYMOUS asks for */
        void *m = mmap(NULL, AG_CLIENT_STACK + guard, PROT_READ | PROT_WRITE, flags, -1, 0);
        if (m == MAP_FAILED)
            return 0;
        if (mprotect(m, guard, PROT_NONE) != 0) {
            munmap(m, AG_CLIENT_STACK + guard);
            return 0;
        }
        s->stacks[slot] = m;
    }
    return pthread_attr_setstack(attr, (char *)s->stacks[slot] + guard, AG_CLIENT_STACK) == 0;
}

/* Takes a new connection: a thread for it, or "busy". */
static void admit(struct server *s, int fd)
{
    struct ucred cred;
    socklen_t len = sizeof cred;
    struct client *c = NULL;
    pthread_attr_t attr;
    pthread_t tid;
    unsigned slot = 0;
    int e;

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred) {
        pc_log(PC_LOG_WARN, "event=no_peercred error=\"%s\"", strerror(errno));
        close(fd);
        return;
    }
    pthread_mutex_lock(&s->lock);
    if (s->active < s->max && (cred.uid == 0 || s->nonroot_active < nonroot_quota(s->max))) {
        while (s->fds[slot] >= 0)
            slot++;
        c = calloc(1, sizeof *c);
        if (c && slot < AG_WARM_STACKS && s->parked[slot]) { /* its thread takes this client */
            *c =
                (struct client){ .s = s, .slot = slot, .fd = fd, .uid = cred.uid, .pid = cred.pid };
            s->handoff[slot] = c;
            s->parked[slot] = 0;
            s->fds[slot] = fd;
            s->active++;
            if (cred.uid != 0)
                s->nonroot_active++;
            pthread_cond_signal(&s->wake[slot]);
            pthread_mutex_unlock(&s->lock);
            return;
        }
        if (c) {
            if (s->joinable[slot]) { /* that client has ended (client_end); its thread is exiting */
                pthread_join(s->tids[slot], NULL);
                s->joinable[slot] = 0;
            }
            s->fds[slot] = fd;
            s->active++;
            if (cred.uid != 0)
                s->nonroot_active++;
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (!c) {
        pc_log(PC_LOG_WARN, "event=busy pid=%ld uid=%u max_clients=%u", (long)cred.pid,
               (unsigned)cred.uid, s->max);
        reply_and_forget(
            fd, ag_ops_error(PC_AGENT_E_BUSY, "the agent is serving its maximum of clients"), 200);
        close(fd);
        return;
    }
    *c = (struct client){ .s = s, .slot = slot, .fd = fd, .uid = cred.uid, .pid = cred.pid };
    pthread_attr_init(&attr);
    if (!warm_stack(s, slot, &attr))
        pthread_attr_setstacksize(&attr, AG_CLIENT_STACK);
    /* under the lock: the slot is ours (fds[slot] >= 0) until client_end, and only this
     * thread (the accept loop) and drain touch tids/joinable */
    pthread_mutex_lock(&s->lock);
    if ((e = pthread_create(&tid, &attr, client_main, c)) == 0) {
        s->tids[slot] = tid;
        s->joinable[slot] = 1;
    }
    pthread_mutex_unlock(&s->lock);
    if (e != 0) {
        pc_log(PC_LOG_ERR, "event=thread_failed error=\"%s\"", strerror(e));
        reply_and_forget(fd, ag_ops_error(PC_AGENT_E_BUSY, "the agent cannot start a thread"), 200);
        client_end(c, 0);
    }
    pthread_attr_destroy(&attr);
}

/* Stops reading from every client (requests in flight still get their reply), then waits. */
static int drain(struct server *s)
{
    int64_t deadline = pc_now_ms() + AG_DRAIN_MS;
    int drained;

    pthread_mutex_lock(&s->lock);
    s->stopping = 1; /* the parked threads leave, no other one parks */
    for (unsigned i = 0; i < AG_WARM_STACKS; i++)
        pthread_cond_signal(&s->wake[i]);
    for (unsigned i = 0; i < s->max; i++)
        if (s->fds[i] >= 0)
            shutdown(s->fds[i], SHUT_RD);
    while (s->active > 0 && pc_now_ms() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->idle, &s->lock, &ts);
    }
    drained = s->active == 0;
    if (!drained)
        pc_log(PC_LOG_WARN, "event=stop_inflight clients=%u", s->active);
    pthread_mutex_unlock(&s->lock);
    if (drained) /* every client has ended: their threads are exiting, wait for them */
        for (unsigned i = 0; i < s->max; i++)
            if (s->joinable[i]) {
                pthread_join(s->tids[i], NULL);
                s->joinable[i] = 0;
            }
    return drained;
}

int ag_server_run(const struct ag_config *cfg, struct ag_ctx *ctx, struct ag_listener *l,
                  int sig_fd)
{
    struct server *s = calloc(1, sizeof *s);
    int drained = 0;

    if (!s || !(s->fds = malloc(cfg->max_clients * sizeof *s->fds)) ||
        !(s->tids = calloc(cfg->max_clients, sizeof *s->tids)) ||
        !(s->joinable = calloc(cfg->max_clients, 1))) {
        pc_log(PC_LOG_ERR, "event=fatal error=\"out of memory\"");
        if (s) {
            free(s->fds);
            free(s->tids);
        }
        free(s);
        return 0;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->idle, NULL);
    for (unsigned i = 0; i < AG_WARM_STACKS; i++)
        pthread_cond_init(&s->wake[i], NULL);
    s->ctx = ctx;
    s->max = cfg->max_clients;
    for (unsigned i = 0; i < s->max; i++)
        s->fds[i] = -1;
    for (;;) {
        struct pollfd p[2] = { { .fd = l->fd, .events = POLLIN },
                               { .fd = sig_fd, .events = POLLIN } };
        int fd;

        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            pc_log(PC_LOG_ERR, "event=poll_failed error=\"%s\"", strerror(errno));
            break;
        }
        if (p[1].revents) {
            struct signalfd_siginfo si;
            if (read(sig_fd, &si, sizeof si) != (ssize_t)sizeof si)
                break; /* as for SIGTERM: never a loop on a signalfd that cannot be read */
            pc_log(PC_LOG_INFO, "event=signal signal=%u", si.ssi_signo);
            if (si.ssi_signo == SIGHUP) {
                ag_ops_recheck_config(ctx); /* checks and logs; never stops, never applies */
                continue;
            }
            break;
        }
        if (!(p[0].revents & POLLIN))
            continue;
        fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
                pc_log(PC_LOG_WARN, "event=accept_failed error=\"%s\"", strerror(errno));
            if (errno == EMFILE || errno == ENFILE)
                nanosleep(&(struct timespec){ .tv_nsec = 100 * 1000 * 1000 }, NULL);
            continue;
        }
        admit(s, fd);
    }
    ag_listener_close(l); /* stop accepting: new logins see "agent down" at once */
    drained = drain(s);
    if (drained) {
        for (unsigned i = 0; i < AG_WARM_STACKS; i++)
            if (s->stacks[i])
                munmap(s->stacks[i], AG_CLIENT_STACK + page_size());
        pthread_cond_destroy(&s->idle);
        for (unsigned i = 0; i < AG_WARM_STACKS; i++)
            pthread_cond_destroy(&s->wake[i]);
        pthread_mutex_destroy(&s->lock);
        free(s->fds);
        free(s->tids);
        free(s->joinable);
        free(s);
    }
    return drained;
}
