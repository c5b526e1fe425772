/* SPDX-License-Identifier: BSD-2-Clause */
/* Per-host rate limit of the login endpoints (auth/begin, auth/totp): a token bucket per host
 * id, so one enrolled host can neither brute-force codes nor spray people, and never slows
 * another host down. */
#ifndef CP_RATELIMIT_H
#define CP_RATELIMIT_H
#include <stdint.h>

/* per_minute requests a minute, bursts up to per_minute. Call once before serving. */
void cp_ratelimit_configure(unsigned per_minute);
/* 1 when host_id may make one more request now (and takes it); 0 when over its rate, with
 * *retry_after the whole seconds until the next request will be allowed. */
int cp_ratelimit_take(int64_t host_id, int64_t *retry_after);

#endif
