/* SPDX-License-Identifier: BSD-2-Clause */
/* Logging for pam_portcullis: pam_syslog (facility LOG_AUTHPRIV), one key=value line per
 * decision: user, rhost, service, txid, result, reason, ms. Values are sanitised (quoted,
 * control characters replaced). Nothing a user typed is ever passed here: no code, no token. */
#ifndef PM_LOG_H
#define PM_LOG_H
#include <security/pam_modules.h>
#include <stdint.h>

#include "pm_options.h"

/* One login, as the module sees it. Strings belong to PAM (or are static). */
struct pm_ctx {
    pam_handle_t *pamh;
    const struct pm_options *opt;
    const char *user, *rhost, *service, *tty, *auth_info;
    char txid[80];
    int64_t start_ms;    /* pc_now_ms() at entry */
    int64_t deadline_ms; /* the one deadline of this login */
    int prompted;        /* the user has been shown a prompt: failmode no longer applies */
};

/* The decision line: "user=U rhost=R service=S txid=X result=RESULT reason=REASON ms=N". */
void pm_log_result(const struct pm_ctx *c, int prio, const char *result, const char *reason);
/* failmode=safe admitted the user: LOG_ERR, loud, says why. */
void pm_log_failmode_admit(const struct pm_ctx *c, const char *reason);
/* Free text at LOG_ERR (configuration errors); never secrets. */
void pm_log_error(pam_handle_t *pamh, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* LOG_DEBUG, only with the debug option. */
void pm_log_debug(const struct pm_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
