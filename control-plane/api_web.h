/* SPDX-License-Identifier: BSD-2-Clause */
/* The approval web app's endpoints (/app/api/ on the web listener, cp_web.c) and the admin's
 * invite and passkey endpoints (/v1/users/NAME/invite, …/passkeys on the pinned listener):
 * sessions, invites and passkeys in api_web_session.c, the pushes' approval in
 * api_web_approve.c. */
#ifndef API_WEB_H
#define API_WEB_H
#include "cp_request.h"
#include "cp_web.h"

/* Fills w->user from a valid, unexpired session cookie (else leaves it empty). */
void api_web_identify(const char *cookie, struct cp_web_ctx *w);

void api_web_me(struct cp_call *c, struct cp_resp *r, struct cp_web_ctx *w);
void api_web_invite_begin(struct cp_call *c, struct cp_resp *r, struct cp_web_ctx *w);
void api_web_invite_finish(struct cp_call *c, struct cp_resp *r, struct cp_web_ctx *w);
void api_web_signin_begin(struct cp_call *c, struct cp_resp *r, struct cp_web_ctx *w);
void api_web_signin_finish(struct cp_call *c, struct cp_resp *r, struct cp_web_ctx *w);
void api_web_signout(struct cp_call *c, struct cp_resp *r, struct cp_web_ctx *w);
void api_web_pushes(struct cp_call *c, struct cp_resp *r, struct cp_web_ctx *w);
void api_web_push_begin(struct cp_call *c, struct cp_resp *r, struct cp_web_ctx *w);
void api_web_push_approve(struct cp_call *c, struct cp_resp *r, struct cp_web_ctx *w);
void api_web_push_deny(struct cp_call *c, struct cp_resp *r, struct cp_web_ctx *w);

/* Web Push for the cookie session (api_webpush.c, the same parsing and store as /v1/webpush):
 * GET webpush/vapid-public-key, GET/POST webpush/subscriptions, DELETE webpush/subscriptions/ID. */
void api_web_webpush_key(struct cp_call *c, struct cp_resp *r, struct cp_web_ctx *w);
void api_web_webpush_list(struct cp_call *c, struct cp_resp *r, struct cp_web_ctx *w);
void api_web_webpush_subscribe(struct cp_call *c, struct cp_resp *r, struct cp_web_ctx *w);
void api_web_webpush_unsubscribe(struct cp_call *c, struct cp_resp *r, struct cp_web_ctx *w);

/* Admin (pinned listener): POST users/NAME/invite, GET users/NAME/passkeys,
 * DELETE users/NAME/passkeys/ID. */
void api_user_invite(struct cp_call *c, struct cp_resp *r);
void api_user_passkeys(struct cp_call *c, struct cp_resp *r);
void api_user_passkey_delete(struct cp_call *c, struct cp_resp *r);

#endif
