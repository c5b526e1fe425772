/* SPDX-License-Identifier: BSD-2-Clause */
/* Push approvals with number matching. pending → approved | denied | expired; final states
 * never change. One push per login transaction. */
#ifndef CP_PUSH_H
#define CP_PUSH_H
#include "cp_tokens.h"
#include "cp_users.h"
#include <json-c/json.h>
#include "cp_sql.h"
#include <stdint.h>

#define CP_PUSH_ID_LEN 32

void cp_push_configure(int64_t ttl);

struct cp_push_new {
    char id[CP_PUSH_ID_LEN + 1];
    char match[3];
    int64_t expires_at;
    char rhost[256], service[64]; /* of the transaction, for the webhook */
};

/* Inside the caller's transaction: a push for the open transaction txid of user, on host_id
 * (0: the control plane's own `portcullis login`, stored as NULL), audited push.create by
 * actor. PC_ERR_AUTH when the user is disabled or may not use push. After the commit the
 * caller sends the webhook with cp_push_announce. */
int cp_push_insert(cp_conn *db, const char *txid, const char *user, int64_t host_id,
                   const char *host, const char *actor, const char *source,
                   struct cp_push_new *out);
void cp_push_announce(const struct cp_push_new *p, const char *user, const char *host);

/* Idempotent per txid. PC_ERR_NOTFOUND (unknown txid), PC_ERR_STATE (transaction finished),
 * PC_ERR_AUTH (push not enabled for this user). */
int cp_push_create(const struct cp_identity *host, const char *source, const char *txid,
                   char push_id[CP_PUSH_ID_LEN + 1], char match[3], int64_t *expires_at);
/* State of a push of this host ("pending", "approved", "denied", "expired"). */
int cp_push_status(const struct cp_identity *host, const char *push_id, char state[16],
                   int64_t *expires_at);
/* Approve (with the match number) or deny. A wrong number denies. PC_ERR_STATE if final.
 * only_user (a session's user) or NULL (admin): another user's push is PC_ERR_NOTFOUND, and
 * a session approving a `portcullis login` push (no host) is PC_ERR_AUTH, audited, the push
 * left pending: a session never vouches for a new session. approver_expires_at (0: never) is
 * stored with an approval; the login it approves yields nothing that outlives it. */
int cp_push_decide(const struct cp_who *who, const char *only_user, const char *push_id,
                   int approve, const char *match, int64_t approver_expires_at, char state[16]);
/* The web app (api_web_approve.c): a decision by user's fresh passkey assertion bound to this push.
 * Like cp_push_decide for that user's session, except that a `portcullis login` push may be
 * approved too: the assertion is a new second factor, not a session vouching for itself. */
int cp_push_decide_passkey(const struct cp_who *who, const char *user, const char *push_id,
                           int approve, const char *match, char state[16]);
/* Pending pushes, of only_user when not NULL. */
int cp_push_list_pending(const char *only_user, json_object **out);
/* Marks every overdue pending push expired (audited) and wakes its waiters. */
void cp_push_expire_due(void);

#endif
