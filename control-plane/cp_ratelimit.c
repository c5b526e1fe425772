/* SPDX-License-Identifier: BSD-2-Clause */
/* The buckets live in this process: right for one portcullisd on SQLite. With several
 * instances on one PostgreSQL database each instance would allow the full rate; the PostgreSQL
 * issue moves the buckets into the store. */
#include "config.h"
#include "cp_ratelimit.h"
#include "pc_time.h"
#include <pthread.h>

/* Open addressing on the host id. A bucket that has refilled completely says nothing more than
 * a missing one, so when the table is full such a bucket is reused; if none is full (more than
 * SLOTS hosts over their rate at once) the host gets a fresh bucket: the limit then errs toward
 * serving logins, never toward refusing them. */
#define SLOTS 8192
#define PROBES 32

struct bucket {
    int64_t host_id; /* 0 = free */
    double tokens;
    int64_t at_ms; /* when tokens was computed */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct bucket table[SLOTS];
static double capacity = 300, per_ms = 300.0 / 60000.0;

void cp_ratelimit_configure(unsigned per_minute)
{
    pthread_mutex_lock(&lock);
    capacity = per_minute;
    per_ms = per_minute / 60000.0;
    /* only the used slots are written: at start-up the whole table is still untouched zero
     * pages, and writing every slot made all 192 KB of it resident */
    for (int i = 0; i < SLOTS; i++)
        if (table[i].host_id)
            table[i].host_id = 0;
    pthread_mutex_unlock(&lock);
}

static void refill(struct bucket *b, int64_t now)
{
    if (now > b->at_ms) {
        b->tokens += (double)(now - b->at_ms) * per_ms;
        if (b->tokens > capacity)
            b->tokens = capacity;
        b->at_ms = now;
    }
}

static struct bucket *find(int64_t host_id, int64_t now)
{
    uint64_t h = (uint64_t)host_id * 0x9E3779B97F4A7C15ull;
    struct bucket *spare = NULL;

    for (int i = 0; i < PROBES; i++) {
        struct bucket *b = &table[(h + (uint64_t)i) % SLOTS];
        if (b->host_id == host_id)
            return b;
        if (b->host_id == 0) {
            if (!spare)
                spare = b;
            break;
        }
        refill(b, now);
        if (!spare && b->tokens >= capacity)
            spare = b;
    }
    if (!spare) /* every probed host is over its rate: reuse the first slot (see above) */
        spare = &table[h % SLOTS];
    spare->host_id = host_id;
    spare->tokens = capacity;
    spare->at_ms = now;
    return spare;
}

int cp_ratelimit_take(int64_t host_id, int64_t *retry_after)
{
    int64_t now = pc_now_ms();
    struct bucket *b;
    int ok;

    pthread_mutex_lock(&lock);
    b = find(host_id, now);
    refill(b, now);
    ok = b->tokens >= 1.0;
    if (ok)
        b->tokens -= 1.0;
    else
        *retry_after = (int64_t)((1.0 - b->tokens) / per_ms / 1000.0) + 1;
    pthread_mutex_unlock(&lock);
    return ok;
}
