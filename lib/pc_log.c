/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "pc_log.h"
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

static const char *log_ident = "portcullis";
static enum pc_log_level log_min = PC_LOG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void pc_log_init(const char *ident, enum pc_log_level min_level)
{
    log_ident = ident;
    log_min = min_level;
}

void pc_log(enum pc_log_level level, const char *fmt, ...)
{
    static const char *names[] = { "debug", "info", "warning", "error" };
    char line[2048];
    va_list ap;

    if (level < log_min)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap); /* truncates long lines; never overflows */
    va_end(ap);
    /* One write per line so lines from different threads never interleave. */
    pthread_mutex_lock(&log_lock);
    fprintf(stderr, "%s %s: %s\n", names[level], log_ident, line);
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
}
