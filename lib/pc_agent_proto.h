/* SPDX-License-Identifier: BSD-2-Clause */
/* The agent protocol's names, defined once for both ends (docs/AGENT-PROTOCOL.md), as
 * OpenSSH's authfd.h serves ssh and ssh-agent: the default socket path, the ops, the error
 * codes of {"ok":false,"error":CODE}, and connecting to the socket within a deadline. The
 * framing is lib/pc_frame.h. No network library: pam_portcullis.so links this file. */
#ifndef PC_AGENT_PROTO_H
#define PC_AGENT_PROTO_H
#include <stdint.h>

/* Where the agent listens and the module connects unless told otherwise (agent.conf
 * `socket`, the module's socket=): the configured runstatedir, /run unless configure was
 * given another. */
#define PC_AGENT_SOCKET_DEFAULT PC_RUNSTATEDIR "/agent.sock"

/* The request's "op". */
#define PC_AGENT_OP_BEGIN "begin"
#define PC_AGENT_OP_TOTP "totp"
#define PC_AGENT_OP_PUSH "push"
#define PC_AGENT_OP_PUSH_WAIT "push_wait"
#define PC_AGENT_OP_PRINCIPALS "principals"
#define PC_AGENT_OP_STATUS "status"
#define PC_AGENT_OP_METRICS "metrics" /* root only: the Prometheus text (ag_metrics.h) */
/* root only: the module's failmode decision after a begin error with "failmode_id" (issue 18,
 * agent/ag_failmode.h) */
#define PC_AGENT_OP_FAILMODE "failmode"

/* The reply's "error". What the module does with each: pam_module/pm_agent.c. */
#define PC_AGENT_E_UNREACHABLE "unreachable" /* the control plane cannot be reached */
#define PC_AGENT_E_TIMEOUT "timeout"         /* the control plane did not answer in time */
#define PC_AGENT_E_GARBAGE "garbage"         /* the control plane's reply is not what we expect */
#define PC_AGENT_E_SERVER "server"           /* the control plane answered HTTP 5xx */
#define PC_AGENT_E_BUSY "busy"               /* the agent is at its limit (clients, pool) */
#define PC_AGENT_E_TLS "tls"                 /* TLS failure or pin mismatch */
#define PC_AGENT_E_NOT_ENROLLED "not_enrolled"
#define PC_AGENT_E_REJECTED "rejected"       /* the control plane refused the host token */
#define PC_AGENT_E_BAD_REQUEST "bad_request" /* the request (or the control plane's 4xx) */
#define PC_AGENT_E_FORBIDDEN "forbidden"     /* the peer's uid may not ask this op */
#define PC_AGENT_E_INTERNAL "internal"       /* a local fault of the agent */
#define PC_AGENT_E_CONFIG "config"           /* agent.conf did not load: everything refused */
#define PC_AGENT_E_PUSH_BUSY "push_busy"     /* max_push_waits long-polls are in flight */
#define PC_AGENT_E_RATE_LIMITED \
    "rate_limited" /* this host is over portcullisd's --auth-rate (429) */

/* The longest login the module allows (its timeout= option, in seconds). */
#define PC_AGENT_LOGIN_MAX_S 600
/* How long the agent keeps a login's connection (root's) open between two requests: the
 * longest login plus a margin. A user may spend the whole login at a prompt; an agent that
 * closed the connection first made the next request fail, and failmode=safe admitted the
 * code typed after it (issue 11). The status reply reports it (login_idle_s). */
#define PC_AGENT_LOGIN_IDLE_MS ((PC_AGENT_LOGIN_MAX_S + 30) * 1000)

/* A full backlog (EAGAIN) is retried this often until the deadline. */
#define PC_AGENT_RETRY_MS 50

/* Waits until fd is ready for events (POLLIN/POLLOUT), or hung up or in error (the next
 * read, write or SO_ERROR tells which), before deadline_ms (pc_now_ms clock).
 * PC_OK, PC_ERR_TIMEOUT, PC_ERR_IO. */
int pc_agent_wait(int fd, short events, int64_t deadline_ms);

/* Connects a non-blocking, close-on-exec stream socket to the unix socket path before
 * deadline_ms; *fd is the socket (the caller closes it) or -1. Returns PC_OK or:
 * PC_ERR_INVAL    path does not fit a sockaddr_un
 * PC_ERR_NOMEM    no socket could be made (descriptors or memory exhausted)
 * PC_ERR_NOTFOUND no socket file at path
 * PC_ERR_NET      nobody listens there (refused)
 * PC_ERR_STATE    the listener's backlog stayed full until the deadline (the agent is busy)
 * PC_ERR_TIMEOUT  the connection did not complete before the deadline
 * PC_ERR_IO       any other failure (permissions, not a socket, …) */
int pc_agent_connect(const char *path, int64_t deadline_ms, int *fd);

#endif
