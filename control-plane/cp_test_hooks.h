/* SPDX-License-Identifier: BSD-2-Clause */
/* Test builds (--enable-test-hooks): a pause a test asks for through the environment, to hold
 * the daemon in a moment it must handle (a burst meeting in one batch, a poll parking while the
 * server stops). Compiled only into test builds; a release build has no such variable. */
#ifndef CP_TEST_HOOKS_H
#define CP_TEST_HOOKS_H
#ifdef PC_TEST_HOOKS
#include "pc_config.h"
#include "pc_err.h"
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/* The milliseconds (1..max) the variable name asks for, or 0 when unset or out of range. */
static inline uint64_t cp_test_hook_ms(const char *name, uint64_t max)
{
    const char *v = getenv(name);
    uint64_t ms;

    return v && pc_parse_uint(v, 1, max, &ms) == PC_OK ? ms : 0;
}

static inline void cp_test_hook_sleep(uint64_t ms)
{
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}
#endif
#endif
