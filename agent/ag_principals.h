/* SPDX-License-Identifier: BSD-2-Clause */
/* sshd's AuthorizedPrincipalsCommand, both halves:
 *  - the daemon's op "principals" (docs/AGENT-PROTOCOL.md): asks the control plane
 *    (GET /v1/hosts/self/principals) and keeps a cache of its allows, keyed by
 *    (account, key_id, serial, fingerprint). A cached allow is used ONLY when the control plane
 *    is unreachable or timed out (never on a TLS failure, never on any answer) and only while it
 *    is younger than principals_stale (and the control plane's cache_ttl). A deny evicts.
 *  - `portcullis-agent principals ACCOUNT KEY_ID SERIAL FINGERPRINT`: talks to the daemon's
 *    socket only (no network, no TLS), answers within AG_PRINCIPALS_DEADLINE_MS (alarm() as
 *    the backstop) and prints nothing on any error. */
#ifndef AG_PRINCIPALS_H
#define AG_PRINCIPALS_H
#include "ag_ops_call.h"
#include "ag_principals_cmd.h"
#include <json-c/json.h>

#define AG_PCACHE_MAX 4096 /* cached allows; the oldest goes first */

struct ag_pcache;

int ag_pcache_new(unsigned max, struct ag_pcache **out);
void ag_pcache_free(struct ag_pcache *c);

/* The op: {"op":"principals","account","key_id","serial","fingerprint"} →
 * {"ok":true,"principals":[…],"cached":BOOL} or an error reply. The caller has checked the
 * peer's uid. */
json_object *ag_principals_op(struct ag_ctx *x, json_object *req);

#endif
