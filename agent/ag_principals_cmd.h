/* SPDX-License-Identifier: BSD-2-Clause */
/* The AuthorizedPrincipalsCommand helper (agent/ag_principals_cmd.c): what both
 * `portcullis-principals` and `portcullis-agent principals` run. Kept apart from ag_principals.h
 * (the daemon's half) so the small binary includes no agent header. */
#ifndef AG_PRINCIPALS_CMD_H
#define AG_PRINCIPALS_CMD_H

#define AG_PRINCIPALS_CP_MS 1200       /* the daemon's budget for the control plane */
#define AG_PRINCIPALS_DEADLINE_MS 1800 /* the helper's deadline for connect+write+read */
#define AG_PRINCIPALS_ALARM_S 2        /* the helper's backstop */
/* agent.conf, read for `socket` only (the same file as the agent's AG_DEFAULT_CONFIG) */
#define AG_PRINCIPALS_CONFIG PC_SYSCONFDIR "/agent.conf"

/* The helper. argv[0] is "principals" (as `portcullis-agent principals`) or the program's
 * name; the last four arguments are ACCOUNT KEY_ID SERIAL FINGERPRINT. Returns the exit
 * status: 0 answered (perhaps with no principals), 1 error (nothing printed), 2 usage. */
int ag_principals_cmd(int argc, char **argv);

#endif
