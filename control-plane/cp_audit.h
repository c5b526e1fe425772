/* SPDX-License-Identifier: BSD-2-Clause */
/* The append-only audit log. Rows are written inside the transaction of the change they
 * describe, so a decision and its audit row are committed together or not at all. */
#ifndef CP_AUDIT_H
#define CP_AUDIT_H
#include <json-c/json.h>
#include "cp_sql.h"
#include <stdint.h>

struct cp_audit_row {
    const char *actor;  /* "admin", "host:<id>", "system" */
    const char *action; /* e.g. "auth.totp" */
    const char *user;
    const char *host;
    const char *result; /* "allow", "deny", "ok", "error", "challenge" … */
    const char *reason;
    const char *txid;
    const char *source; /* client address */
};

int cp_audit_add(cp_conn *db, const struct cp_audit_row *row);
/* Rows with time >= since (and user == user if given), oldest first, at most limit. */
int cp_audit_query(cp_conn *db, const char *user, int64_t since, int64_t limit, json_object **out);
/* The rows with this txid (a login transaction, or an access request's chain), oldest first. */
int cp_audit_query_txid(cp_conn *db, const char *txid, int64_t limit, json_object **out);

#endif
