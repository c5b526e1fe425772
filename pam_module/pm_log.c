/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "pm_log.h"
#include "pc_time.h"
#include <security/pam_ext.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#define PM_VALUE_MAX 96

static int plain_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           strchr("._-:@/+,[]%", ch) != NULL;
}

/* v as a log value: "-" when absent, bare when plain, else quoted with '"', '\' and anything
 * non-printable replaced by '?'. At most PM_VALUE_MAX bytes of v. */
static void log_value(char *out, size_t outsz, const char *v)
{
    size_t n, o = 0;
    int quote = 0;

    if (!v || !*v) {
        snprintf(out, outsz, "-");
        return;
    }
    n = strnlen(v, PM_VALUE_MAX);
    for (size_t i = 0; i < n; i++)
        if (!plain_char((unsigned char)v[i]))
            quote = 1;
    if (quote && o + 1 < outsz)
        out[o++] = '"';
    for (size_t i = 0; i < n && o + 2 < outsz; i++) {
        unsigned char ch = (unsigned char)v[i];
        out[o++] = (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\') ? '?' : (char)ch;
    }
    if (quote && o + 1 < outsz)
        out[o++] = '"';
    out[o] = '\0';
}

void pm_log_result(const struct pm_ctx *c, int prio, const char *result, const char *reason)
{
    char u[PM_VALUE_MAX + 3], h[PM_VALUE_MAX + 3], s[PM_VALUE_MAX + 3], t[PM_VALUE_MAX + 3];
    char r[PM_VALUE_MAX + 3];

    log_value(u, sizeof u, c->user);
    log_value(h, sizeof h, c->rhost);
    log_value(s, sizeof s, c->service);
    log_value(t, sizeof t, c->txid);
    log_value(r, sizeof r, reason);
    pam_syslog(c->pamh, prio, "user=%s rhost=%s service=%s txid=%s result=%s reason=%s ms=%lld", u,
               h, s, t, result, r, (long long)(pc_now_ms() - c->start_ms));
}

void pm_log_failmode_admit(const struct pm_ctx *c, const char *reason)
{
    char u[PM_VALUE_MAX + 3], r[PM_VALUE_MAX + 3];

    log_value(u, sizeof u, c->user);
    log_value(r, sizeof r, reason);
    pam_syslog(c->pamh, LOG_ERR, "failmode=safe: admitting %s without a second factor because %s",
               u, r);
    pm_log_result(c, LOG_WARNING, "allow_failmode", reason);
}

void pm_log_error(pam_handle_t *pamh, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    pam_syslog(pamh, LOG_ERR, "%s", line);
}

void pm_log_debug(const struct pm_ctx *c, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    if (!c->opt || !c->opt->debug)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    pam_syslog(c->pamh, LOG_DEBUG, "debug: %s", line);
}
