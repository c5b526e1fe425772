/* SPDX-License-Identifier: BSD-2-Clause */
/* Access on request: a person asks for an account on hosts (a label selector that only narrows
 * the rule) for a duration with a reason, under a policy rule with requires_request; an approver
 * of the rule's approver group, never the requester, approves with a fresh TOTP code of their
 * own; the approved request is a grant until its end. States: pending → active | denied |
 * expired | revoked; active → ended (its time is up) | revoked. Every step is audited with the
 * request id as the audit row's txid, so one query gives the chain. */
#ifndef CP_ACCESS_H
#define CP_ACCESS_H
#include "cp_tokens.h"
#include <json-c/json.h>
#include "cp_sql.h"
#include <stdint.h>

#define CP_ACCESS_ID_LEN 32
#define CP_ACCESS_PENDING_TTL 3600 /* an unanswered request expires after an hour */
#define CP_ACCESS_MIN_DURATION 60  /* a grant lasts 1 min .. 7 days */
#define CP_ACCESS_MAX_DURATION 604800
#define CP_ACCESS_DEFAULT_MAX 28800 /* a rule's max_duration unless it sets one */
#define CP_ACCESS_REASON_MAX 512
#define CP_ACCESS_PENDING_MAX 10 /* pending requests per person */
/* With a grant only, the principals answer may be cached this long at most (agents keep a
 * cache for when the control plane is unreachable); never past the grant's end. */
#define CP_ACCESS_CACHE_TTL 60

/* A decision for the HTTP layer: status 0 = success (out set, owned by the caller), else a
 * refusal with error code and message. Functions return PC_OK unless the store failed. */
struct cp_access_res {
    unsigned status;
    const char *error;
    char message[256];
    json_object *out;
};

/* POST /v1/requests by the session of user. sel: a checked labels object (may be empty). */
int cp_access_create(const char *user, const char *source, const char *account, json_object *sel,
                     int64_t duration, const char *reason, struct cp_access_res *res);
/* GET /v1/requests: a session sees its own requests and the pending ones it may approve; the
 * admin token the pending and active ones. */
int cp_access_list(const struct cp_identity *id, json_object **out);
/* POST /v1/requests/{id}/approve: approver's TOTP code is verified (and spent) in the same
 * transaction as the approval. approver_expires_at: the approver's session end (0: none); the
 * grant ends no later. */
int cp_access_approve(const char *approver, int64_t approver_expires_at, const char *source,
                      const char *id, const char *code, struct cp_access_res *res);
/* POST /v1/requests/{id}/deny (an approver or the admin) and /revoke (the requester, an
 * approver or the admin; a pending request is withdrawn, a grant ends now). */
int cp_access_deny(const struct cp_identity *who, const char *source, const char *id,
                   const char *reason, struct cp_access_res *res);
int cp_access_revoke(const struct cp_identity *who, const char *source, const char *id,
                     struct cp_access_res *res);
/* Housekeeping: pending requests past their hour expire, grants past their end end; audited
 * request.expire / grant.expire, webhooks sent. */
void cp_access_expire_due(void);

/* For policy evaluation, in the caller's transaction: *until = the end of the latest active
 * grant under rule policy_id for (person, account) whose selector labels match (0: none), and
 * its request id. */
int cp_access_grant_until(cp_conn *db, int64_t policy_id, const char *person, const char *account,
                          json_object *labels, int64_t *until, char req_id[CP_ACCESS_ID_LEN + 1]);
/* The latest end of the person's active grants under rule policy_id, any account (0: none). */
int cp_access_person_grant_until(cp_conn *db, int64_t policy_id, const char *person,
                                 int64_t *until);
/* A login the principals command let in through grant request_id: one grant.login row per
 * (request, account, serial). */
void cp_access_note_login(const struct cp_identity *host, const char *person, const char *account,
                          int64_t serial, const char *request_id);

#endif
