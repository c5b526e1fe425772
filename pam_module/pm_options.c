/* SPDX-License-Identifier: BSD-2-Clause */
/* Strict parsing of the module arguments: unknown options, bad values and duplicates are
 * errors, reported with the option's name; the caller denies on any of them. */
#include "config.h"
#include "pm_options.h"
#include "pc_agent_proto.h"
#include "pc_err.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof PC_AGENT_SOCKET_DEFAULT <= PM_SOCKET_MAX + 1,
               "the configured runstatedir makes the default socket path too long");

_Static_assert(PC_AGENT_LOGIN_IDLE_MS > PC_AGENT_LOGIN_MAX_S * 1000L,
               "the agent would close a login's connection before the longest timeout= ends");

enum { OPT_SOCKET, OPT_FAILMODE, OPT_TRIES, OPT_PUSH, OPT_TIMEOUT, OPT_DEBUG, OPT_COUNT };
static const char *const opt_names[OPT_COUNT] = { "socket", "failmode", "tries",
                                                  "push",   "timeout",  "debug" };

static int parse_int(const char *s, long min, long max, int *out)
{
    char *end = NULL;
    long v;

    if (!s || *s < '0' || *s > '9')
        return PC_ERR_INVAL;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || !end || *end != '\0' || v < min || v > max)
        return PC_ERR_INVAL;
    *out = (int)v;
    return PC_OK;
}

static int set_value(struct pm_options *o, int which, const char *val)
{
    size_t n;

    switch (which) {
    case OPT_SOCKET:
        n = strlen(val);
        if (val[0] != '/' || n > PM_SOCKET_MAX)
            return PC_ERR_INVAL;
        memcpy(o->socket, val, n + 1);
        return PC_OK;
    case OPT_FAILMODE:
        if (strcmp(val, "secure") == 0)
            o->failmode_safe = 0;
        else if (strcmp(val, "safe") == 0)
            o->failmode_safe = 1;
        else
            return PC_ERR_INVAL;
        return PC_OK;
    case OPT_TRIES: return parse_int(val, 1, 10, &o->tries);
    case OPT_PUSH:
        if (strcmp(val, "auto") == 0)
            o->push = 1;
        else if (strcmp(val, "off") == 0)
            o->push = 0;
        else
            return PC_ERR_INVAL;
        return PC_OK;
    case OPT_TIMEOUT:
        /* never longer than the agent keeps a login's connection (PC_AGENT_LOGIN_IDLE_MS) */
        return parse_int(val, 1, PC_AGENT_LOGIN_MAX_S, &o->timeout_s);
    default: return PC_ERR_INVAL;
    }
}

int pm_options_parse(int argc, const char **argv, struct pm_options *o, char *err, size_t errsz)
{
    int seen[OPT_COUNT] = { 0 };

    memset(o, 0, sizeof *o);
    memcpy(o->socket, PC_AGENT_SOCKET_DEFAULT, sizeof PC_AGENT_SOCKET_DEFAULT);
    o->tries = 3;
    o->push = 1;
    err[0] = '\0';
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i] ? argv[i] : "";
        const char *eq = strchr(arg, '=');
        size_t klen = eq ? (size_t)(eq - arg) : strlen(arg);
        int which = -1;

        for (int k = 0; k < OPT_COUNT; k++)
            if (strlen(opt_names[k]) == klen && strncmp(arg, opt_names[k], klen) == 0)
                which = k;
        if (which < 0) {
            snprintf(err, errsz, "unknown option '%.64s'", arg);
            return PC_ERR_INVAL;
        }
        if (seen[which]++) {
            snprintf(err, errsz, "option '%s' given twice", opt_names[which]);
            return PC_ERR_INVAL;
        }
        if (which == OPT_DEBUG) {
            if (eq) {
                snprintf(err, errsz, "option 'debug' takes no value");
                return PC_ERR_INVAL;
            }
            o->debug = 1;
            continue;
        }
        if (!eq || set_value(o, which, eq + 1) != PC_OK) {
            snprintf(err, errsz, "bad value for option '%s' in '%.64s'", opt_names[which], arg);
            return PC_ERR_INVAL;
        }
    }
    return PC_OK;
}

long pm_options_deadline_ms(const struct pm_options *o, int push)
{
    if (o->timeout_s > 0)
        return (long)o->timeout_s * 1000L;
    return (push ? PM_DEFAULT_TIMEOUT_PUSH : PM_DEFAULT_TIMEOUT_CODE) * 1000L;
}
