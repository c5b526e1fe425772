/* SPDX-License-Identifier: BSD-2-Clause */
/* Outgoing webhook: a JSON POST when a push is created, so a chat bot or phone app can ask the
 * user. Sent by one worker thread from a bounded queue; a slow receiver never delays a login.
 * The body never holds the match number: the approver must read it off the login prompt. */
#ifndef CP_WEBHOOK_H
#define CP_WEBHOOK_H
#include <stdint.h>

int cp_webhook_start(const char *url); /* url "" → disabled */
void cp_webhook_stop(void);
void cp_webhook_push_created(const char *push_id, const char *user, const char *host,
                             const char *rhost, const char *service, int64_t expires_at);

#endif
