/* SPDX-License-Identifier: BSD-2-Clause */
/* Issue 18: failmode decisions reach the control plane's audit log (portcullis explain).
 *
 * When begin fails for want of the control plane (unreachable, timeout, garbage, server), the
 * PAM module applies its own failmode (a PAM option the agent cannot see). So the agent
 * remembers what it answered: ag_failmode_note() keeps (user, rhost, service, error) under a
 * fresh random id for AG_FAILMODE_TTL_MS and the error reply carries it as "failmode_id". The
 * module, having decided, sends {"op":"failmode","id":ID,"failmode":"safe"|"secure"} (root
 * only, like every login op). ag_failmode_op() takes the note (once: a second report with the
 * same id is refused) and appends an event to the offline queue (ag_offline_enqueue), which
 * the maintenance thread uploads like an offline decision; the control plane writes one audit
 * row auth.failmode with that id as its txid. The module supplies only its failmode: the user,
 * address, service and error come from the agent's own begin, so a caller cannot report about
 * a login the agent did not fail. */
#ifndef AG_FAILMODE_H
#define AG_FAILMODE_H
#include "ag_ops_call.h"
#include <json-c/json.h>

#define AG_FAILMODE_TTL_MS 60000 /* how long a note waits for the module's report */
#define AG_FAILMODE_SLOTS 256    /* notes kept at once; the oldest gives way */

/* If err (a begin error reply) follows failmode, notes the login and adds "failmode_id". */
void ag_failmode_note(json_object *err, const char *user, const char *rhost, const char *service);
/* op "failmode" (root only: ag_ops_handle checks the caller). */
json_object *ag_failmode_op(struct ag_ctx *x, json_object *req);

#endif
