/* SPDX-License-Identifier: BSD-2-Clause */
/* PAM module options (the arguments after pam_portcullis.so in /etc/pam.d/SERVICE).
 * All are parsed before anything else happens; any error denies (never fail open). */
#ifndef PM_OPTIONS_H
#define PM_OPTIONS_H
#include <stddef.h>

#define PM_SOCKET_MAX 107 /* sizeof(sockaddr_un.sun_path) - 1 */
#define PM_DEFAULT_TIMEOUT_CODE 30
#define PM_DEFAULT_TIMEOUT_PUSH 60

struct pm_options {
    char socket[PM_SOCKET_MAX + 1];
    int failmode_safe; /* failmode=safe: admit when the agent or control plane is down */
    int tries;         /* 1-10, default 3 */
    int push;          /* push=auto (1, default) or push=off (0) */
    int timeout_s;     /* timeout=SECONDS, 0 when not given */
    int debug;
};

/* PC_OK, or PC_ERR_INVAL with a one-line reason in err (names the option, never a secret). */
int pm_options_parse(int argc, const char **argv, struct pm_options *o, char *err, size_t errsz);
/* The whole-login budget in milliseconds, with or without a push being waited for. */
long pm_options_deadline_ms(const struct pm_options *o, int push);

#endif
