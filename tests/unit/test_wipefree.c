/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests for lib/pc_wipefree (wipe on free: free/realloc interposed in the executable).
 *
 * The wipe is observed through glibc's tcache: a freed 200-byte chunk is the next one malloc
 * hands out for the same size, so its old contents can be read back. tcache writes its own
 * metadata (next pointer, key) into the first 16 bytes; everything after them must be zero.
 * If malloc hands out another chunk (tcache disabled by GLIBC_TUNABLES, say) there is nothing
 * to look at and the test skips. In builds where the interposer is compiled out (sanitizers,
 * --disable-wipe-free) every test skips with the reason. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "pc_wipefree.h"

#define SZ 200  /* a tcache size: the chunk comes back on the next malloc(SZ) */
#define META 16 /* tcache's next pointer and key */
#define PAT 0xA5

/* Keeps the compiler from dropping stores into a block that is then freed (dead stores before
 * free) and from assuming anything about a block's contents after malloc. */
static void barrier(void *p)
{
    __asm__ __volatile__("" : : "r"(p) : "memory");
}

static void skip_if_compiled_out(void)
{
#ifndef PC_WIPEFREE_ACTIVE
#ifdef PC_WIPEFREE_SANITIZER
    print_message("wipe on free is compiled out in sanitizer builds (the sanitizer owns "
                  "malloc/free): nothing to test\n");
#else
    print_message("wipe on free is disabled (./configure --disable-wipe-free): nothing to test\n");
#endif
    skip();
#endif
}

static unsigned char *filled(size_t n)
{
    unsigned char *p = malloc(n);
    assert_non_null(p);
    memset(p, PAT, n);
    barrier(p);
    return p;
}

static size_t count_pattern(const unsigned char *p, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += p[i] == PAT;
    return k;
}

/* Skips (after freeing q) unless malloc handed back the chunk that was at `was`. */
static void need_same_chunk(void *q, uintptr_t was)
{
    if ((uintptr_t)q != was) {
        free(q);
        print_message("malloc(%d) did not hand back the chunk just freed (tcache off?): "
                      "cannot observe the wipe\n",
                      SZ);
        skip();
    }
}

/* The executable's free is the one the process uses: dlsym finds it first, ahead of glibc's
 * (RTLD_NEXT), so shared libraries (cmocka here; json-c, libcurl, OpenSSL in the daemons) bind
 * to it too. */
static void test_free_is_interposed(void **state)
{
    static const char *const names[] = { "free", "realloc" };
    void (*ours_free)(void *) = free;
    void *(*ours_realloc)(void *, size_t) = realloc;
    void *ours[2];

    (void)state;
    skip_if_compiled_out();
    memcpy(&ours[0], &ours_free, sizeof ours[0]);
    memcpy(&ours[1], &ours_realloc, sizeof ours[1]);
    for (int i = 0; i < 2; i++) {
        void *first = dlsym(RTLD_DEFAULT, names[i]), *glibc = dlsym(RTLD_NEXT, names[i]);
        assert_non_null(first);
        assert_non_null(glibc);
        assert_ptr_equal(first, ours[i]);
        assert_ptr_not_equal(first, glibc);
    }
}

static void test_free_wipes(void **state)
{
    (void)state;
    skip_if_compiled_out();
    unsigned char *p = filled(SZ);
    uintptr_t was = (uintptr_t)p;
    assert_int_equal(count_pattern(p, SZ), SZ);
    free(p);
    unsigned char *q = malloc(SZ); /* nothing may allocate in between */
    barrier(q);
    need_same_chunk(q, was);
    size_t left = count_pattern(q + META, SZ - META);
    free(q);
    assert_int_equal(left, 0);
}

/* Growth moves the block; the old one is wiped once the contents are copied. */
static void test_realloc_growth_wipes_old_block(void **state)
{
    (void)state;
    skip_if_compiled_out();
    unsigned char *p = filled(SZ);
    uintptr_t was = (uintptr_t)p;
    unsigned char *q = realloc(p, 4096);
    unsigned char *r = malloc(SZ); /* the old chunk, if tcache hands it back */
    barrier(r);
    assert_non_null(q);
    assert_true((uintptr_t)q != was);
    assert_int_equal(count_pattern(q, SZ), SZ); /* contents moved */
    need_same_chunk(r, was);
    size_t left = count_pattern(r + META, SZ - META);
    free(r);
    free(q);
    assert_int_equal(left, 0);
}

/* Shrinking keeps the block (same pointer, contents kept): nothing is left behind. */
static void test_realloc_shrink_keeps_block(void **state)
{
    (void)state;
    skip_if_compiled_out();
    unsigned char *p = filled(SZ);
    uintptr_t was = (uintptr_t)p;
    unsigned char *q = realloc(p, 100);
    assert_non_null(q);
    assert_true((uintptr_t)q == was);
    assert_int_equal(count_pattern(q, 100), 100);
    /* growing again within the chunk's usable size keeps it too */
    size_t usable = malloc_usable_size(q);
    assert_true(usable >= SZ);
    /* cppcheck-suppress memleakOnRealloc ; a test: q must come back unchanged */
    q = realloc(q, usable);
    assert_true((uintptr_t)q == was);
    assert_int_equal(count_pattern(q, 100), 100);
    free(q);
}

static void test_realloc_edge_cases(void **state)
{
    (void)state;
    skip_if_compiled_out();
    unsigned char *p = realloc(NULL, 32); /* NULL: malloc */
    assert_non_null(p);
    memset(p, PAT, 32);
    assert_null(realloc(p, 0)); /* 0: free, NULL */
    free(NULL);
    /* A request malloc cannot satisfy: NULL, and the old block untouched. (Called through a
     * volatile pointer: GCC's -Wuse-after-free does not know p survives a failed realloc.) */
    void *(*volatile realloc_fn)(void *, size_t) = realloc;
    p = filled(SZ);
    assert_null(realloc_fn(p, SIZE_MAX / 2));
    assert_int_equal(count_pattern(p, SZ), SZ);
    free(p);
}

/* free takes every kind of glibc chunk: calloc, aligned, and big (mmap'ed) ones. */
static void test_free_accepts_all_chunks(void **state)
{
    (void)state;
    skip_if_compiled_out();
    void *a = calloc(10, 30), *b = NULL, *c = aligned_alloc(64, 256), *d = filled(1 << 20);
    assert_non_null(a);
    assert_int_equal(posix_memalign(&b, 4096, 300), 0);
    assert_non_null(c);
    memset(b, PAT, 300);
    memset(c, PAT, 256);
    barrier(b);
    barrier(c);
    free(a);
    free(b);
    free(c);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_free_is_interposed),
        cmocka_unit_test(test_free_wipes),
        cmocka_unit_test(test_realloc_growth_wipes_old_block),
        cmocka_unit_test(test_realloc_shrink_keeps_block),
        cmocka_unit_test(test_realloc_edge_cases),
        cmocka_unit_test(test_free_accepts_all_chunks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
