/* SPDX-License-Identifier: BSD-2-Clause */
/* The agent's unix socket: creation (mode 0660, root:socket_group), the accept loop, one
 * detached thread per client bounded by max_clients, SO_PEERCRED, per-connection deadlines,
 * and a clean stop on SIGTERM/SIGINT. */
#ifndef AG_SERVER_H
#define AG_SERVER_H
#include "ag_config.h"
#include "ag_ops.h"
#include "pc_agent_proto.h"
#include <stddef.h>

/* Root's clients (logins) must send their next request within this: never shorter than the
 * longest login the module allows (lib/pc_agent_proto.h). */
#define AG_CLIENT_IDLE_MS PC_AGENT_LOGIN_IDLE_MS
/* Callers other than root (socket_group members: monitoring, the principals helper) get a
 * small quota of their own, a short idle time and one request per connection, so they can
 * never hold the slots that root's logins need. */
#define AG_NONROOT_IDLE_MS 2000
#define AG_NONROOT_MAX 8
#define AG_CLIENT_WRITE_MS 10000      /* a reply must be taken within this */
#define AG_DRAIN_MS 5000              /* on stop, wait this long for requests in flight */
#define AG_CLIENT_STACK (1024 * 1024) /* each client thread's stack */
#define AG_WARM_STACKS 4              /* slots whose stack is kept between clients (ag_server.c) */
#define AG_PARK_MS 30000              /* a warm slot's thread waits this long for its next client */

struct ag_listener {
    int fd;
    char *path;
    dev_t dev; /* identity of the socket file we created, so stop */
    ino_t ino; /* unlinks ours and not a successor's */
};

/* Creates the socket directory (0755) if missing, replaces a stale socket file (refuses if
 * another agent answers on it), binds and listens; or takes systemd's socket. refusing: the
 * configuration did not load (cfg holds what could be salvaged; see take_activated). */
int ag_listener_open(const struct ag_config *cfg, int refusing, struct ag_listener *l, char *err,
                     size_t errsz);
/* Closes the socket and removes its file. */
void ag_listener_close(struct ag_listener *l);

/* Serves clients until SIGTERM or SIGINT arrives on sig_fd (a signalfd; SIGHUP rechecks the
 * configuration file and goes on, see ag_ops_recheck_config). Returns 1 if every client
 * finished within AG_DRAIN_MS (so ctx may be freed), 0 if some are still running. */
int ag_server_run(const struct ag_config *cfg, struct ag_ctx *ctx, struct ag_listener *l,
                  int sig_fd);

#endif
