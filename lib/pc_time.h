/* SPDX-License-Identifier: BSD-2-Clause */
/* The one clock every component reads. In builds configured with --enable-test-hooks,
 * the environment variable PC_FAKE_NOW (seconds since the epoch, optionally "+N"/"-N" as an
 * offset from the real clock) replaces it, so TOTP and validity windows are testable. */
#ifndef PC_TIME_H
#define PC_TIME_H
#include <stdint.h>

int64_t pc_now(void);    /* seconds since the epoch */
int64_t pc_now_ms(void); /* monotonic milliseconds, for deadlines (never faked) */

#endif
