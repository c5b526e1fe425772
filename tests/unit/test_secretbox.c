/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests for lib/pc_secretbox: AES-256-GCM sealing and the key file. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pc_err.h"
#include "pc_rand.h"
#include "pc_secretbox.h"

#define assert_contains(hay, needle) \
    do { \
        if (!strstr((hay), (needle))) \
            fail_msg("\"%s\" does not contain \"%s\"", (hay), (needle)); \
    } while (0)

#define VERSION_OFF 0
#define NONCE_OFF 1
#define NONCE_LEN 12
#define CT_OFF (NONCE_OFF + NONCE_LEN)
#define TAG_LEN 16

static char tmpdir[64];
static unsigned char key[PC_SECRETBOX_KEY_BYTES];
static const unsigned char seed[20] = "12345678901234567890";

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pc-test-secretbox.XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    return pc_random_bytes(key, sizeof key) == PC_OK ? 0 : -1;
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

static int group_teardown(void **state)
{
    (void)state;
    return tmpdir[0] ? nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS) : 0;
}

static int all_bytes(const unsigned char *p, size_t n, unsigned char v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != v)
            return 0;
    return 1;
}

static size_t seal_seed(const char *ad, unsigned char *sealed, size_t cap)
{
    size_t outlen = 0;
    assert_int_equal(pc_secretbox_seal(key, ad, seed, sizeof seed, sealed, cap, &outlen), PC_OK);
    assert_int_equal(outlen, sizeof seed + PC_SECRETBOX_OVERHEAD);
    return outlen;
}

/* Opening must fail with PC_ERR_CRYPTO, leave *outlen alone and the output all zero. */
static void open_fails_wiped(const unsigned char *k, const char *ad, const unsigned char *sealed,
                             size_t len)
{
    unsigned char out[64];
    size_t outlen = 999;

    memset(out, 0xA5, sizeof out);
    assert_int_equal(pc_secretbox_open(k, ad, sealed, len, out, sizeof out, &outlen),
                     PC_ERR_CRYPTO);
    assert_int_equal(outlen, 999);
    if (!all_bytes(out, sizeof out, 0))
        fail_msg("output not wiped after a failed open");
}

/* ---- seal / open ----------------------------------------------------------------------- */

static void test_round_trip(void **state)
{
    unsigned char sealed[128], out[64];
    size_t len, outlen = 0;
    (void)state;

    len = seal_seed("totp:alice", sealed, sizeof sealed);
    assert_int_equal(sealed[VERSION_OFF], 0x01);
    assert_null(memmem(sealed, len, seed, 8)); /* no plaintext visible */
    memset(out, 0, sizeof out);
    assert_int_equal(pc_secretbox_open(key, "totp:alice", sealed, len, out, sizeof out, &outlen),
                     PC_OK);
    assert_int_equal(outlen, sizeof seed);
    assert_memory_equal(out, seed, sizeof seed);

    /* output exactly the size needed, both ways */
    assert_int_equal(pc_secretbox_seal(key, "x", seed, sizeof seed, sealed,
                                       sizeof seed + PC_SECRETBOX_OVERHEAD, &len),
                     PC_OK);
    assert_int_equal(pc_secretbox_open(key, "x", sealed, len, out, sizeof seed, &outlen), PC_OK);
    assert_memory_equal(out, seed, sizeof seed);
}

static void test_round_trip_sizes(void **state)
{
    static const size_t sizes[] = { 0, 1, 15, 16, 17, 1000, 70000 };
    (void)state;

    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i], len = 0, outlen = 99;
        unsigned char *plain = malloc(n + 1), *sealed = malloc(n + PC_SECRETBOX_OVERHEAD);
        unsigned char *out = malloc(n + 1);
        assert_non_null(plain);
        assert_non_null(sealed);
        assert_non_null(out);
        for (size_t j = 0; j < n; j++)
            plain[j] = (unsigned char)(j * 7 + 3);
        assert_int_equal(pc_secretbox_seal(key, "k", plain, n, sealed, n + PC_SECRETBOX_OVERHEAD,
                                           &len),
                         PC_OK);
        assert_int_equal(len, n + PC_SECRETBOX_OVERHEAD);
        assert_int_equal(pc_secretbox_open(key, "k", sealed, len, out, n, &outlen), PC_OK);
        assert_int_equal(outlen, n);
        if (n)
            assert_memory_equal(out, plain, n);
        free(plain);
        free(sealed);
        free(out);
    }
}

static void test_null_ad(void **state)
{
    unsigned char sealed[128], out[64];
    size_t len = 0, outlen = 0;
    (void)state;

    assert_int_equal(pc_secretbox_seal(key, NULL, seed, sizeof seed, sealed, sizeof sealed, &len),
                     PC_OK);
    assert_int_equal(pc_secretbox_open(key, NULL, sealed, len, out, sizeof out, &outlen), PC_OK);
    assert_memory_equal(out, seed, sizeof seed);
    open_fails_wiped(key, "totp:alice", sealed, len);
}

static void test_fresh_nonce(void **state)
{
    unsigned char a[128], b[128];
    size_t la, lb;
    (void)state;

    la = seal_seed("totp:alice", a, sizeof a);
    lb = seal_seed("totp:alice", b, sizeof b);
    assert_int_equal(la, lb);
    assert_memory_not_equal(a + NONCE_OFF, b + NONCE_OFF, NONCE_LEN);
    assert_memory_not_equal(a + CT_OFF, b + CT_OFF, sizeof seed);
    assert_memory_not_equal(a + CT_OFF + sizeof seed, b + CT_OFF + sizeof seed, TAG_LEN);
}

static void test_tamper_each_region(void **state)
{
    static const struct {
        /* cppcheck-suppress unusedStructMember ; name: a label for the reader */
        const char *name;
        size_t off;
    } regions[] = {
        { "nonce first", NONCE_OFF },          { "nonce last", NONCE_OFF + NONCE_LEN - 1 },
        { "ciphertext first", CT_OFF },        { "ciphertext last", CT_OFF + sizeof seed - 1 },
        { "tag first", CT_OFF + sizeof seed }, { "tag last", CT_OFF + sizeof seed + TAG_LEN - 1 },
    };
    unsigned char sealed[128], copy[128], out[64];
    size_t len, outlen;
    (void)state;

    len = seal_seed("totp:alice", sealed, sizeof sealed);
    assert_int_equal(len, CT_OFF + sizeof seed + TAG_LEN);

    /* The version byte is checked before anything is decrypted: refused, and out wiped
     * (it holds no plaintext, stale or new). */
    memcpy(copy, sealed, len);
    copy[VERSION_OFF] ^= 0x01;
    memset(out, 0xA5, sizeof out);
    outlen = 999;
    assert_int_equal(pc_secretbox_open(key, "totp:alice", copy, len, out, sizeof out, &outlen),
                     PC_ERR_CRYPTO);
    assert_true(all_bytes(out, sizeof out, 0x00));
    assert_int_equal(outlen, 999);
    copy[VERSION_OFF] = 0x02;
    assert_int_equal(pc_secretbox_open(key, "totp:alice", copy, len, out, sizeof out, &outlen),
                     PC_ERR_CRYPTO);

    /* Nonce, ciphertext, tag: the GCM tag fails, the plaintext written so far is wiped. */
    for (size_t r = 0; r < sizeof regions / sizeof regions[0]; r++) {
        for (int bit = 0; bit < 8; bit += 7) {
            memcpy(copy, sealed, len);
            copy[regions[r].off] ^= (unsigned char)(1u << bit);
            open_fails_wiped(key, "totp:alice", copy, len);
        }
    }

    /* Every single-bit flip anywhere is caught. */
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            int rc;
            memcpy(copy, sealed, len);
            copy[i] ^= (unsigned char)(1u << bit);
            rc = pc_secretbox_open(key, "totp:alice", copy, len, out, sizeof out, &outlen);
            if (rc != PC_ERR_CRYPTO)
                fail_msg("flip of byte %zu bit %d gave %d", i, bit, rc);
        }
    }

    /* the untouched original still opens */
    assert_int_equal(pc_secretbox_open(key, "totp:alice", sealed, len, out, sizeof out, &outlen),
                     PC_OK);
    assert_memory_equal(out, seed, sizeof seed);
}

static void test_wrong_key(void **state)
{
    unsigned char sealed[128], other[PC_SECRETBOX_KEY_BYTES];
    size_t len;
    (void)state;

    len = seal_seed("totp:alice", sealed, sizeof sealed);
    memcpy(other, key, sizeof other);
    other[31] ^= 0x80;
    open_fails_wiped(other, "totp:alice", sealed, len);
    assert_int_equal(pc_random_bytes(other, sizeof other), PC_OK);
    open_fails_wiped(other, "totp:alice", sealed, len);
}

static void test_wrong_ad(void **state)
{
    unsigned char sealed[128];
    size_t len;
    (void)state;

    len = seal_seed("totp:alice", sealed, sizeof sealed);
    open_fails_wiped(key, "totp:bob", sealed, len);
    open_fails_wiped(key, "totp:alice ", sealed, len);
    open_fails_wiped(key, "totp:alic", sealed, len);
    open_fails_wiped(key, "", sealed, len);
    open_fails_wiped(key, NULL, sealed, len);
}

static void test_truncated_and_extended(void **state)
{
    unsigned char sealed[128], out[64];
    size_t len, outlen = 999;
    (void)state;

    len = seal_seed("totp:alice", sealed, sizeof sealed);
    /* shorter than the overhead: refused before any decryption */
    for (size_t n = 0; n < PC_SECRETBOX_OVERHEAD; n++)
        assert_int_equal(pc_secretbox_open(key, "totp:alice", sealed, n, out, sizeof out, &outlen),
                         PC_ERR_CRYPTO);
    assert_int_equal(outlen, 999);
    /* long enough to parse, but cut: the tag is wrong */
    for (size_t n = PC_SECRETBOX_OVERHEAD; n < len; n++)
        open_fails_wiped(key, "totp:alice", sealed, n);
    /* an extra byte at the end */
    sealed[len] = 0;
    open_fails_wiped(key, "totp:alice", sealed, len + 1);
}

static void test_output_too_small(void **state)
{
    unsigned char sealed[128], out[64];
    size_t len = 999, outlen = 999;
    (void)state;

    assert_int_equal(pc_secretbox_seal(key, "a", seed, sizeof seed, sealed,
                                       sizeof seed + PC_SECRETBOX_OVERHEAD - 1, &len),
                     PC_ERR_TOOBIG);
    assert_int_equal(len, 999);
    assert_int_equal(pc_secretbox_seal(key, "a", seed, sizeof seed, sealed, 0, &len),
                     PC_ERR_TOOBIG);
    assert_int_equal(len, 999);

    len = seal_seed("a", sealed, sizeof sealed);
    assert_int_equal(pc_secretbox_open(key, "a", sealed, len, out, sizeof seed - 1, &outlen),
                     PC_ERR_TOOBIG);
    assert_int_equal(outlen, 999);
}

/* ---- key file -------------------------------------------------------------------------- */

static void key_path(char *buf, size_t sz, const char *name)
{
    snprintf(buf, sz, "%s/%s", tmpdir, name);
}

static void write_raw(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(close(fd), 0);
}

static void test_load_key_create_and_reload(void **state)
{
    char path[128], err[256] = "untouched";
    unsigned char k1[PC_SECRETBOX_KEY_BYTES], k2[PC_SECRETBOX_KEY_BYTES], zero[32] = { 0 };
    unsigned char filebuf[64];
    struct stat st;
    int fd;
    ssize_t got;
    mode_t old_umask = umask(0);
    (void)state;

    key_path(path, sizeof path, "created.key");
    assert_int_equal(pc_secretbox_load_key(path, 1, k1, err, sizeof err), PC_OK);
    umask(old_umask);
    assert_string_equal(err, "untouched");
    assert_memory_not_equal(k1, zero, sizeof k1);

    /* 0600 exactly, 32 bytes, the key itself */
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_size, PC_SECRETBOX_KEY_BYTES);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    got = read(fd, filebuf, sizeof filebuf);
    close(fd);
    assert_int_equal(got, PC_SECRETBOX_KEY_BYTES);
    assert_memory_equal(filebuf, k1, sizeof k1);

    /* loading it back (with or without create) gives the same key; create never overwrites */
    memset(k2, 0, sizeof k2);
    assert_int_equal(pc_secretbox_load_key(path, 0, k2, err, sizeof err), PC_OK);
    assert_memory_equal(k1, k2, sizeof k1);
    memset(k2, 0, sizeof k2);
    assert_int_equal(pc_secretbox_load_key(path, 1, k2, err, sizeof err), PC_OK);
    assert_memory_equal(k1, k2, sizeof k1);
    assert_string_equal(err, "untouched");

    /* two new key files get different keys */
    key_path(path, sizeof path, "created2.key");
    assert_int_equal(pc_secretbox_load_key(path, 1, k2, err, sizeof err), PC_OK);
    assert_memory_not_equal(k1, k2, sizeof k1);
}

static void test_load_key_refuses_open_mode(void **state)
{
    static const mode_t modes[] = { 0644, 0640, 0604, 0660, 0601, 0610, 0666 };
    char path[128], err[512];
    unsigned char k[PC_SECRETBOX_KEY_BYTES];
    (void)state;

    key_path(path, sizeof path, "open.key");
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        char want[300];
        write_raw(path, key, sizeof key, modes[i]);
        memset(k, 0, sizeof k);
        err[0] = '\0';
        assert_int_equal(pc_secretbox_load_key(path, 1, k, err, sizeof err), PC_ERR_INVAL);
        snprintf(want, sizeof want, "%s: mode %03o is too open; it must be 0600", path,
                 (unsigned)modes[i]);
        assert_string_equal(err, want);
        assert_true(all_bytes(k, sizeof k, 0));
    }
    /* 0400 is not wider than 0600: fine */
    write_raw(path, key, sizeof key, 0400);
    assert_int_equal(pc_secretbox_load_key(path, 0, k, err, sizeof err), PC_OK);
    assert_memory_equal(k, key, sizeof k);
}

static void test_load_key_wrong_size(void **state)
{
    static const size_t sizes[] = { 0, 16, 31, 33, 64 };
    unsigned char big[64], k[PC_SECRETBOX_KEY_BYTES];
    char path[128], err[512];
    (void)state;

    memset(big, 0x42, sizeof big);
    key_path(path, sizeof path, "size.key");
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char want[300];
        write_raw(path, big, sizes[i], 0600);
        memset(k, 0, sizeof k);
        assert_int_equal(pc_secretbox_load_key(path, 1, k, err, sizeof err), PC_ERR_INVAL);
        snprintf(want, sizeof want, "%s: expected 32 bytes, found %zu", path, sizes[i]);
        assert_string_equal(err, want);
        assert_true(all_bytes(k, sizeof k, 0));
    }
}

static void test_load_key_missing(void **state)
{
    char path[128], want[300], err[512];
    unsigned char k[PC_SECRETBOX_KEY_BYTES];
    struct stat st;
    (void)state;

    key_path(path, sizeof path, "missing.key");
    assert_int_equal(pc_secretbox_load_key(path, 0, k, err, sizeof err), PC_ERR_IO);
    snprintf(want, sizeof want, "%s: %s", path, strerror(ENOENT));
    assert_string_equal(err, want);
    assert_int_equal(stat(path, &st), -1); /* not created */

    /* create=1, but the directory does not exist */
    key_path(path, sizeof path, "no-such-dir/new.key");
    assert_int_equal(pc_secretbox_load_key(path, 1, k, err, sizeof err), PC_ERR_IO);
    assert_contains(err, path);
}

static void test_load_key_directory(void **state)
{
    char path[128], err[512];
    unsigned char k[PC_SECRETBOX_KEY_BYTES];
    (void)state;

    key_path(path, sizeof path, "dir.key");
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(pc_secretbox_load_key(path, 1, k, err, sizeof err), PC_ERR_IO);
    assert_contains(err, path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_round_trip_sizes),
        cmocka_unit_test(test_null_ad),
        cmocka_unit_test(test_fresh_nonce),
        cmocka_unit_test(test_tamper_each_region),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_wrong_ad),
        cmocka_unit_test(test_truncated_and_extended),
        cmocka_unit_test(test_output_too_small),
        cmocka_unit_test(test_load_key_create_and_reload),
        cmocka_unit_test(test_load_key_refuses_open_mode),
        cmocka_unit_test(test_load_key_wrong_size),
        cmocka_unit_test(test_load_key_missing),
        cmocka_unit_test(test_load_key_directory),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
