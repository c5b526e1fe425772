/* SPDX-License-Identifier: BSD-2-Clause */
/* pam_portcullis.so: the second factor for sshd and sudo. Asks the local portcullis-agent over
 * its unix socket (no TLS, no HTTP in here), prompts, and returns a PAM code. Exports only the
 * pam_sm_* entry points (the build uses -fvisibility=hidden). See pam_portcullis(8). */
#include "config.h"
#include <security/pam_appl.h>
#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "pc_time.h"
#include "pm_flow.h"
#include "pm_log.h"
#include "pm_options.h"

#define PM_EXPORT __attribute__((visibility("default")))

static const char *item_str(pam_handle_t *pamh, int item)
{
    const void *v = NULL;

    if (pam_get_item(pamh, item, &v) != PAM_SUCCESS || !v)
        return NULL;
    return (const char *)v;
}

PM_EXPORT int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
    struct pm_options opt;
    struct pm_ctx c;
    char err[160];
    const char *user = NULL;
    int rc;

    (void)flags;
    memset(&c, 0, sizeof c);
    c.pamh = pamh;
    c.opt = &opt;
    c.start_ms = pc_now_ms();
    /* Configuration first, all of it: any error denies, before anything else happens. */
    if (pm_options_parse(argc, argv, &opt, err, sizeof err) != 0) {
        pm_log_error(pamh, "configuration error: %s; denying (fix the pam.d line)", err);
        return PAM_AUTH_ERR;
    }
    rc = pam_get_user(pamh, &user, NULL);
    if (rc == PAM_CONV_AGAIN)
        return PAM_INCOMPLETE;
    if (rc != PAM_SUCCESS || !user || !*user) {
        pm_log_error(pamh, "result=deny reason=no_user");
        return PAM_AUTH_ERR;
    }
    c.user = user;
    c.rhost = item_str(pamh, PAM_RHOST);
    c.service = item_str(pamh, PAM_SERVICE);
    c.tty = item_str(pamh, PAM_TTY);
    c.auth_info = pam_getenv(pamh, "SSH_AUTH_INFO_0");
    c.deadline_ms = c.start_ms + pm_options_deadline_ms(&opt, 0);
    pm_log_debug(&c, "socket=%s failmode=%s tries=%d push=%s timeout=%d auth_info=%s", opt.socket,
                 opt.failmode_safe ? "safe" : "secure", opt.tries, opt.push ? "auto" : "off",
                 opt.timeout_s, c.auth_info ? "present" : "absent");
    return pm_flow_run(&c);
}

PM_EXPORT int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
    (void)pamh;
    (void)flags;
    (void)argc;
    (void)argv;
    return PAM_SUCCESS;
}
