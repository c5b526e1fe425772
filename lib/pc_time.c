/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "pc_time.h"
#include <stdlib.h>
#include <errno.h>
#include <time.h>

int64_t pc_now(void)
{
    int64_t real = (int64_t)time(NULL);
#ifdef PC_TEST_HOOKS
    const char *fake = getenv("PC_FAKE_NOW");
    if (fake && *fake) {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(fake, &end, 10);
        if (errno == 0 && end && *end == '\0')
            return (fake[0] == '+' || fake[0] == '-') ? real + v : (int64_t)v;
    }
#endif
    return real;
}

int64_t pc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
