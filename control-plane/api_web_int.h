/* SPDX-License-Identifier: BSD-2-Clause */
/* Private to the approval web app's endpoints: the passkey ceremony and helpers that
 * api_web_session.c (sign-in), api_web_passkeys.c (invites, registration) and
 * api_web_approve.c (a push's approval) share. Defined in api_web_session.c. */
#ifndef API_WEB_INT_H
#define API_WEB_INT_H
#include "api_web.h"
#include "cp_sql.h"
#include "cp_webauthn.h"
#include "pc_rand.h"
#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#define API_WEB_CHAL_TTL 120 /* sign-in and registration ceremonies */
#define API_WEB_CDJ_MAX 4096 /* a ceremony's client data JSON */
#define API_WEB_AD_MAX 1024  /* its authenticator data */

/* A stored passkey (api_web_verify_assertion loads it). */
struct api_web_passkey {
    int64_t id;
    char user[64];
    int alg;
    unsigned char pk[CP_WA_PK_MAX];
    size_t pklen;
    int64_t count;
};

/* A base64url field of the body, decoded; 400 on absence, garbage or more than max bytes. */
int api_web_get_b64(struct cp_call *c, struct cp_resp *r, const char *key, unsigned char *out,
                    size_t max, size_t *len);
/* SHA-256 hex of a token of PC_TOKEN_HEX_LEN hex digits; PC_ERR_INVAL for anything else. */
int api_web_hash_token(const char *tok, char out[PC_SHA256_HEX_LEN + 1]);
/* An audit row inside the caller's transaction. */
void api_web_audit(cp_conn *db, const char *actor, const char *action, const char *user,
                   const char *result, const char *reason, const char *source);
/* Inside the caller's transaction: a new web session for user; its cookie goes into w. */
int api_web_session_new(cp_conn *db, const char *user, struct cp_web_ctx *w);

/* A refusal worth an audit row, in its own transaction. */
void api_web_audit_refusal(const char *action, const char *user, const char *reason,
                           const char *source);

/* A new single-use challenge of kind (for user and bound to bound, when given) open for ttl
 * seconds; PC_ERR_TOOBIG when too many of its kind and user are open. */
int api_web_challenge_new(const char *kind, const char *user, const char *bound, int64_t ttl,
                          char out[CP_WA_CHAL_B64 + 1]);

/* Inside the caller's transaction: consumes the challenge if it is open, of this kind, and
 * (when given) of this user and bound to this value. PC_ERR_AUTH otherwise. */
int api_web_challenge_take(cp_conn *db, const char *chal, const char *kind, const char *user,
                           const char *bound, char user_out[64]);

/* Checks the body's passkey assertion (of only_user's passkey, if given); out: the passkey, the
 * challenge the client data names and the new signature count. On failure r is filled. */
int api_web_verify_assertion(struct cp_call *c, struct cp_resp *r, const char *only_user,
                             struct api_web_passkey *k, char chal[CP_WA_CHAL_B64 + 1],
                             uint32_t *count);

/* Inside the caller's transaction: the passkey's new signature count and last use. */
int api_web_passkey_touch(cp_conn *db, int64_t id, uint32_t count);

/* The credential IDs of user's passkeys, as a JSON array (empty on error). */
json_object *api_web_user_cred_ids(const char *user);

#endif
