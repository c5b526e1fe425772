/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests for lib/pc_offcode: the offline code hash is scrypt(code, salt || step BE64,
 * N=2^11, r=8, p=1, 16 bytes) — the vector below is Python's hashlib.scrypt of the same input,
 * which tests/integration/test_offcodes.py also checks against the control plane's document;
 * one step or salt byte changes it; anything but 6 digits is refused. Prints the time per hash
 * (the cost stated in the man pages), not asserted. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pc_err.h"
#include "pc_offcode.h"

static void vector(void **state)
{
    static const unsigned char want[PC_OFFCODE_HASH] = { 0xa0, 0xea, 0x80, 0x4d, 0xb5, 0xe4,
                                                         0x54, 0xe6, 0xbd, 0x6f, 0x02, 0xf0,
                                                         0x82, 0xc2, 0xcd, 0x02 };
    unsigned char salt[PC_OFFCODE_SALT], h[PC_OFFCODE_HASH], h2[PC_OFFCODE_HASH];
    (void)state;
    for (int i = 0; i < PC_OFFCODE_SALT; i++)
        salt[i] = (unsigned char)i;
    assert_int_equal(pc_offcode_hash("123456", salt, 56000000, h), PC_OK);
    assert_memory_equal(h, want, sizeof want);
    assert_int_equal(pc_offcode_hash("123456", salt, 56000001, h2), PC_OK);
    assert_memory_not_equal(h, h2, sizeof h);
    salt[0] ^= 1;
    assert_int_equal(pc_offcode_hash("123456", salt, 56000000, h2), PC_OK);
    assert_memory_not_equal(h, h2, sizeof h);
}

static void refuses_non_codes(void **state)
{
    unsigned char salt[PC_OFFCODE_SALT] = { 0 }, h[PC_OFFCODE_HASH];
    const char *bad[] = { "", "12345", "1234567", "12345a", "12 456", "-12345", NULL };
    (void)state;
    for (size_t i = 0; bad[i]; i++)
        assert_int_equal(pc_offcode_hash(bad[i], salt, 1, h), PC_ERR_INVAL);
    assert_int_equal(pc_offcode_hash(NULL, salt, 1, h), PC_ERR_INVAL);
}

static void cost(void **state)
{
    unsigned char salt[PC_OFFCODE_SALT] = { 0 }, h[PC_OFFCODE_HASH];
    struct timespec a, b;
    char code[8];
    const int n = 20;
    (void)state;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < n; i++) {
        snprintf(code, sizeof code, "%06d", i);
        assert_int_equal(pc_offcode_hash(code, salt, (uint64_t)i, h), PC_OK);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("# offline code hash: %.2f ms each (one check: at most 3)\n",
           ((double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6) / n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(vector),
        cmocka_unit_test(refuses_non_codes),
        cmocka_unit_test(cost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
