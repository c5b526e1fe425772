/* SPDX-License-Identifier: BSD-2-Clause */
/* The agent's request handlers: one PAM request object in, one reply object out
 * (docs/AGENT-PROTOCOL.md). Every control-plane reply is validated strictly before anything
 * of it reaches the reply: a reply that is not what we expect is "garbage", never "allow". */
#ifndef AG_OPS_H
#define AG_OPS_H
#include "ag_ops_call.h"
#include <json-c/json.h>
#include <sys/types.h>

#define AG_PUSH_WAIT_MAX 60    /* push_wait's wait is capped at this many seconds */
#define AG_CONFIG_LOG_MS 10000 /* a refusing agent logs refused requests at most this often */

/* Reads the host token if present (a missing token is not an error: login requests get
 * "not_enrolled" until it appears). */
int ag_ctx_init(struct ag_ctx *x, const struct ag_config *cfg, char *err, size_t errsz);
/* Frees the pool and wipes the token. Only when no request is in flight. */
void ag_ctx_free(struct ag_ctx *x);

/* SIGHUP: reads agent.conf again and logs whether it is valid. Nothing is applied (the agent
 * does not reload): a valid file is used from the next start, and a broken one never replaces
 * the configuration in force. */
void ag_ops_recheck_config(const struct ag_ctx *x);

/* Handles one request from a peer with uid peer_uid. Returns the reply (never NULL unless out
 * of memory); *close_after is set when the connection must be closed after the reply. */
json_object *ag_ops_handle(struct ag_ctx *x, json_object *req, uid_t peer_uid, int *close_after);

#endif
