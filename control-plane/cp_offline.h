/* SPDX-License-Identifier: BSD-2-Clause */
/* Issue 13: what a host needs to decide logins while the control plane is unreachable. */
#ifndef CP_OFFLINE_H
#define CP_OFFLINE_H
#include "cp_tokens.h"
#include "pc_json.h"
#include <json-c/json.h>

#define CP_OFFLINE_MAX_ENTRIES 4096 /* (person, account) pairs per host */

/* GET /v1/hosts/self/offline for host: {"generated_at": N, "per_certificate": [{"person",
 * "account", "options"}…]} — one entry per (person, account) that a rule lets log in on THIS
 * host where every matching rule says second_factor per-certificate; enabled people only, not
 * revoked by key id; the options are those the principals command prints for it. Only people
 * allowed on this host appear (a host learns only what its logins need). */
int cp_offline_host_rules(const struct cp_identity *host, json_object **out);
/* Adds to accounts (an object used as a set) every account some rule names ("$user": the
 * person's own). */
int cp_offline_accounts_named(json_object *rules, json_object *accounts);

/* POST /v1/hosts/self/offline/events. cp_offline_events_ok checks the batch's shape (an array
 * of at most CP_OFFLINE_EVENTS_MAX); cp_offline_events_add checks each event: a valid one with a
 * new id becomes an audit row (action auth.offline or auth.failmode, the host's name), an id
 * already stored is skipped, and an invalid event is not recorded as a decision but as an
 * audit row with result "rejected" and why — never a refusal of the whole batch, which the agent
 * would resend forever (one bad event would hold every later one back). *added, *dups and
 * *rejected count them. One transaction. */
#define CP_OFFLINE_EVENTS_MAX 200 /* ~40 KB: below the 64 KiB body limit */
int cp_offline_events_ok(json_object *events, struct pc_jerr *e);
int cp_offline_events_add(const struct cp_identity *host, json_object *events, int *added,
                          int *dups, int *rejected);

#endif
