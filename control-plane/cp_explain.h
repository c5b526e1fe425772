/* SPDX-License-Identifier: BSD-2-Clause */
/* `portcullis explain TXID`: the decision path of one login as the control plane saw it, from
 * its transaction, the audit rows with its txid, what auth/begin noted (the account and the
 * rules that matched) and the lock state now, in sentences an admin can paste into a ticket. */
#ifndef CP_EXPLAIN_H
#define CP_EXPLAIN_H
#include <json-c/json.h>
#include "cp_sql.h"
#include <stdint.h>

/* In auth/begin's transaction: records account and the rules matching (person, account,
 * host) now (rules: cp_policy_matching's array, evaluated once by begin). */
int cp_explain_note_begin(cp_conn *db, const char *txid, const char *account, json_object *rules);
/* {"txid","user","account","host","rhost","service","started_at","state","rules":[…],
 *  "audit":[ROW…],"lock":{…},"explanation":[LINE…]}; PC_ERR_NOTFOUND for an unknown txid. */
int cp_explain_tx(const char *txid, json_object **out);

#endif
