/* SPDX-License-Identifier: BSD-2-Clause */
/* Cost of wipe on free (lib/pc_wipefree): malloc/free of 64..4096-byte blocks, freed with
 * pc_wipefree's free (linked in, as in the daemons) and with glibc's own __libc_free.
 * Usage: bench_wipefree [N]   (default 5000000 malloc/free pairs per variant).
 * Output, one line, machine-readable:
 *   wipefree n=N glibc_ns_per_op=A wipe_ns_per_op=B ratio=B/A
 * Each block is written before it is freed (a buffer is freed after use), in both variants.
 * A live set of 64 blocks is kept, so frees and mallocs do not just ping-pong one chunk. */
#include "config.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pc_wipefree.h"

#ifndef PC_WIPEFREE_ACTIVE
int main(void)
{
    printf("wipefree: compiled out in this build (sanitizer or --disable-wipe-free), no bench\n");
    return 0;
}
#else
extern void __libc_free(void *p);

#define SLOTS 64

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void barrier(void *p)
{
    __asm__ __volatile__("" : : "r"(p) : "memory");
}

/* n malloc/free pairs, sizes 64..4096 from a fixed xorshift sequence; returns seconds. */
static double run(long n, void (*release)(void *))
{
    void *slot[SLOTS] = { 0 };
    unsigned x = 2463534242u;
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        size_t sz;
        void *p;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        sz = 64 + x % (4096 - 64 + 1);
        release(slot[i % SLOTS]);
        if (!(p = malloc(sz))) {
            fprintf(stderr, "malloc failed\n");
            exit(1);
        }
        memset(p, 0x5a, sz);
        barrier(p);
        slot[i % SLOTS] = p;
    }
    for (int i = 0; i < SLOTS; i++)
        release(slot[i]);
    return now_s() - t0;
}

int main(int argc, char **argv)
{
    long n = 5000000;
    double plain, wipe;

    if (argc > 1) {
        char *end = NULL;
        n = strtol(argv[1], &end, 10);
        if (!end || *end || n <= 0) {
            fprintf(stderr, "usage: %s [N]\n", argv[0]);
            return 2;
        }
    }
    run(n / 10, __libc_free); /* warm-up: heap grown, pages faulted in */
    plain = run(n, __libc_free);
    wipe = run(n, free);
    printf("wipefree n=%ld glibc_ns_per_op=%.1f wipe_ns_per_op=%.1f ratio=%.2f\n", n,
           plain * 1e9 / (double)n, wipe * 1e9 / (double)n, wipe / plain);
    return 0;
}
#endif
