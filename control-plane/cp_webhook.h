/* SPDX-License-Identifier: BSD-2-Clause */
/* Outgoing webhook: a JSON POST when a push is created, so a chat bot or phone app can ask the
 * user. Sent by one worker thread from a bounded queue; a slow receiver never delays a login.
 * The body never holds the match number: the approver must read it off the login prompt. */
#ifndef CP_WEBHOOK_H
#define CP_WEBHOOK_H
#include <stdint.h>

/* libcurl loaded (dlopen, cp_curl.c) and initialised, once, on first use (the webhook and Web
 * Push threads, before their first curl handle): a daemon that sends neither never maps it.
 * PC_OK, or an error (logged: the library is missing, or its initialisation failed), the
 * same result for every caller. cp_curl_global_cleanup after every user stopped. */
int cp_curl_global_init(void);
void cp_curl_global_cleanup(void);

int cp_webhook_start(const char *url); /* url "" → disabled */
void cp_webhook_stop(void);
void cp_webhook_push_created(const char *push_id, const char *user, const char *host,
                             const char *rhost, const char *service, int64_t expires_at);

/* Access on request (cp_access.h): request.create, request.approve, request.deny,
 * request.expire, grant.login, grant.revoke, grant.expire … with the request's id, user and
 * account, who did it (actor) and the grant's end (0: not shown). */
void cp_webhook_request_event(const char *event, const char *request_id, const char *user,
                              const char *account, const char *actor, int64_t ends_at,
                              const char *detail);
/* 1: every body is Slack's incoming-webhook payload {"text": "…"} instead of the event JSON. */
void cp_webhook_set_format(int slack);

#endif
