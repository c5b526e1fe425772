/* SPDX-License-Identifier: BSD-2-Clause */
/* The login conversation: begin → allow / deny / ignore / challenge (push and/or TOTP),
 * mapped onto PAM return codes, with the failure table applied in one place. */
#ifndef PM_FLOW_H
#define PM_FLOW_H
#include "pm_agent.h"
#include "pm_log.h"

/* Time an agent call needs at least; with less left of the deadline the login is over. */
#define PM_MIN_CALL_MS 2000
/* Longest single push_wait (the agent long-polls the control plane for this long). */
#define PM_PUSH_WAIT_MAX_S 10
/* Longest answer read from the conversation (codes are 6-8 digits). */
#define PM_ANSWER_MAX 64

/* Connects to the agent, runs the whole login and logs the decision. Returns PAM_SUCCESS,
 * PAM_AUTH_ERR, PAM_IGNORE, PAM_MAXTRIES or PAM_CONV_ERR. */
int pm_flow_run(struct pm_ctx *c);

/* The PAM code for an agent failure: failmode=safe admits (logged loudly), else deny. Once the
 * user has been shown a prompt (c->prompted) every failure denies, whatever failmode says
 * (reason agent_error_after_prompt). */
int pm_flow_fail(struct pm_ctx *c, int outcome, const char *reason);

#endif
