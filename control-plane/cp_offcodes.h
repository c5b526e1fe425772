/* SPDX-License-Identifier: BSD-2-Clause */
/* Issue 13 step 2(b): offline codes. For each (person, host) that rules with offline_codes
 * cover, a background job keeps in the store the slow hashes (pc_offcode.h) of the person's
 * codes for the window [now - 1 step, now + offline_codes], keyed by step: it computes only the
 * steps missing as the window slides (a 72 h window is 8,640 hashes once, then one per 30 s),
 * never in a request. The host's offline document carries its own people's hashes only. */
#ifndef CP_OFFCODES_H
#define CP_OFFCODES_H
#include <json-c/json.h>
#include "cp_sql.h"
#include <stdint.h>

#define CP_OFFCODES_BUDGET 64 /* hashes per round of the job before it looks again */

/* Starts / stops the background job (one thread, its own store connection). */
int cp_offcodes_start(void);
void cp_offcodes_stop(void);
/* One round: at most budget new hashes; *done = how many were computed. */
int cp_offcodes_fill(int budget, int *done);
/* The offline_codes array of host_id's offline document: per person covered there now, the salt,
 * the hashes by step, the registered key fingerprints, and the accounts (of the set accounts,
 * cp_offline_accounts_named) whose matching rules all have offline_codes, each with its window
 * end and key options (for principals offline). */
int cp_offcodes_document(cp_conn *db, int64_t host_id, json_object *accounts, json_object **out);
/* An offline code accepted on host_id at step: the person's replay guard moves to step (only if
 * that host holds the person's codes, and never past the current step + 1). */
int cp_offcodes_mark_used(cp_conn *db, int64_t host_id, const char *person, int64_t step);

#endif
