/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests for lib/pc_fs (atomic writes, bounded reads, mkdir), lib/pc_rand, lib/pc_time
 * and lib/pc_mem. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pc_err.h"
#include "pc_fs.h"
#include "pc_mem.h"
#include "pc_rand.h"
#include "pc_time.h"

static char tmpdir[64];

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pc-test-fs.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
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

static void path_in(char *buf, size_t sz, const char *name)
{
    snprintf(buf, sz, "%s/%s", tmpdir, name);
}

/* Reads a file with plain POSIX calls, to check pc_write_file_atomic independently. */
static size_t slurp(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;
    assert_true(fd >= 0);
    n = read(fd, buf, cap);
    close(fd);
    assert_true(n >= 0);
    return (size_t)n;
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

/* How many entries of dir have names containing needle. */
static int count_entries(const char *dir, const char *needle)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (strstr(de->d_name, needle))
            n++;
    }
    closedir(d);
    return n;
}

static void make_subdir(char *buf, size_t sz, const char *name)
{
    path_in(buf, sz, name);
    assert_int_equal(mkdir(buf, 0700), 0);
}

/* ---- pc_write_file_atomic -------------------------------------------------------------- */

static void test_write_content_and_mode(void **state)
{
    static const struct {
        const char *name;
        mode_t mode;
    } files[] = {
        { "a", 0600 }, { "b", 0640 }, { "c", 0644 }, { "d", 0400 }, { "e", 0755 },
    };
    static const char data[] = "line one\nline\0two\n";
    char dir[128], path[192], buf[64];
    mode_t old = umask(077); /* the mode must not depend on the umask */
    (void)state;

    make_subdir(dir, sizeof dir, "write");
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
        assert_int_equal(pc_write_file_atomic(path, data, sizeof data - 1, files[i].mode), PC_OK);
        assert_int_equal(slurp(path, buf, sizeof buf), sizeof data - 1);
        assert_memory_equal(buf, data, sizeof data - 1);
        assert_int_equal(mode_of(path), files[i].mode);
    }
    umask(old);
    assert_int_equal(count_entries(dir, ""), 5);
    assert_int_equal(count_entries(dir, ".tmp."), 0);
}

static void test_write_empty(void **state)
{
    char path[128];
    struct stat st;
    (void)state;

    path_in(path, sizeof path, "empty");
    assert_int_equal(pc_write_file_atomic(path, "", 0, 0600), PC_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 0);
}

static void test_write_replaces(void **state)
{
    char dir[128], path[192], buf[128];
    struct stat before, after;
    (void)state;

    make_subdir(dir, sizeof dir, "replace");
    snprintf(path, sizeof path, "%s/settings", dir);
    assert_int_equal(pc_write_file_atomic(path, "a much longer old content\n", 26, 0644), PC_OK);
    assert_int_equal(stat(path, &before), 0);

    assert_int_equal(pc_write_file_atomic(path, "new", 3, 0600), PC_OK);
    assert_int_equal(stat(path, &after), 0);
    assert_int_equal(slurp(path, buf, sizeof buf), 3); /* no old tail left */
    assert_memory_equal(buf, "new", 3);
    assert_int_equal(after.st_mode & 07777, 0600);
    /* replaced by rename, not rewritten in place */
    assert_true(before.st_ino != after.st_ino);

    for (int i = 0; i < 5; i++)
        assert_int_equal(pc_write_file_atomic(path, "x", 1, 0600), PC_OK);
    assert_int_equal(count_entries(dir, ""), 1);
    assert_int_equal(count_entries(dir, ".tmp."), 0);
}

static void test_write_failures_leave_nothing(void **state)
{
    char dir[128], path[PATH_MAX + 64];
    (void)state;

    make_subdir(dir, sizeof dir, "fail");
    /* parent missing */
    snprintf(path, sizeof path, "%s/no-such-dir/f", dir);
    assert_int_equal(pc_write_file_atomic(path, "x", 1, 0600), PC_ERR_IO);
    /* target is a directory: the rename fails, the temp file is removed */
    snprintf(path, sizeof path, "%s/sub", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(pc_write_file_atomic(path, "x", 1, 0600), PC_ERR_IO);
    assert_int_equal(count_entries(dir, ""), 1);
    assert_int_equal(count_entries(dir, ".tmp."), 0);
    /* path too long for the temp name */
    memset(path, 'a', PATH_MAX);
    path[0] = '/';
    path[PATH_MAX] = '\0';
    assert_int_equal(pc_write_file_atomic(path, "x", 1, 0600), PC_ERR_INVAL);
}

/* ---- pc_read_file ---------------------------------------------------------------------- */

static void test_read_file(void **state)
{
    static const char data[] = "abc\0def";
    char path[128], *out = NULL;
    size_t len = 999;
    (void)state;

    path_in(path, sizeof path, "read");
    assert_int_equal(pc_write_file_atomic(path, data, 7, 0600), PC_OK);

    assert_int_equal(pc_read_file(path, 1024, &out, &len), PC_OK);
    assert_non_null(out);
    assert_int_equal(len, 7);
    assert_memory_equal(out, data, 7);
    assert_int_equal(out[7], '\0'); /* NUL-terminated, not counted */
    free(out);

    /* the bound is inclusive */
    out = NULL;
    assert_int_equal(pc_read_file(path, 7, &out, &len), PC_OK);
    assert_int_equal(len, 7);
    free(out);
    out = (char *)"sentinel";
    len = 999;
    assert_int_equal(pc_read_file(path, 6, &out, &len), PC_ERR_TOOBIG);
    assert_null(out);
    assert_int_equal(len, 0);
    out = (char *)"sentinel";
    assert_int_equal(pc_read_file(path, 0, &out, &len), PC_ERR_TOOBIG);
    assert_null(out);
}

static void test_read_empty_file(void **state)
{
    char path[128], *out = NULL;
    size_t len = 999;
    (void)state;

    path_in(path, sizeof path, "read-empty");
    assert_int_equal(pc_write_file_atomic(path, "", 0, 0600), PC_OK);
    assert_int_equal(pc_read_file(path, 0, &out, &len), PC_OK);
    assert_non_null(out);
    assert_int_equal(len, 0);
    assert_string_equal(out, "");
    free(out);
}

static void test_read_missing_and_not_regular(void **state)
{
    char path[128], *out = (char *)"sentinel";
    size_t len = 999;
    (void)state;

    path_in(path, sizeof path, "no-such-file");
    assert_int_equal(pc_read_file(path, 1024, &out, &len), PC_ERR_NOTFOUND);
    assert_null(out);
    assert_int_equal(len, 0);

    out = (char *)"sentinel";
    assert_int_equal(pc_read_file(tmpdir, 1024, &out, &len), PC_ERR_IO);
    assert_null(out);
}

/* ---- pc_mkdir_mode --------------------------------------------------------------------- */

static void test_mkdir_mode(void **state)
{
    char path[128], file[128], sub[192];
    struct stat st;
    mode_t old = umask(077);
    (void)state;

    /* new: exactly the mode asked for, whatever the umask */
    path_in(path, sizeof path, "mk");
    assert_int_equal(pc_mkdir_mode(path, 0755), PC_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0755);
    umask(old);

    /* existing: chmod'ed, tighter and looser */
    assert_int_equal(pc_mkdir_mode(path, 0700), PC_OK);
    assert_int_equal(mode_of(path), 0700);
    assert_int_equal(pc_mkdir_mode(path, 0750), PC_OK);
    assert_int_equal(mode_of(path), 0750);

    /* the parent must exist */
    snprintf(sub, sizeof sub, "%s/missing/child", path);
    assert_int_equal(pc_mkdir_mode(sub, 0700), PC_ERR_IO);

    /* an existing non-directory is an error, and is left alone */
    path_in(file, sizeof file, "mk-file");
    assert_int_equal(pc_write_file_atomic(file, "x", 1, 0600), PC_OK);
    assert_int_equal(pc_mkdir_mode(file, 0755), PC_ERR_IO);
    assert_int_equal(mode_of(file), 0600);
}

/* ---- pc_rand --------------------------------------------------------------------------- */

static int is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static void test_token_new(void **state)
{
    char a[PC_TOKEN_HEX_LEN + 1], b[PC_TOKEN_HEX_LEN + 1];
    (void)state;

    assert_int_equal(PC_TOKEN_HEX_LEN, 64);
    assert_int_equal(pc_token_new(a), PC_OK);
    assert_int_equal(pc_token_new(b), PC_OK);
    assert_int_equal(strlen(a), 64);
    assert_int_equal(strlen(b), 64);
    assert_true(is_lower_hex(a, 64));
    assert_true(is_lower_hex(b, 64));
    assert_string_not_equal(a, b);
}

static void test_random_hex(void **state)
{
    char buf[130];
    (void)state;

    memset(buf, 'Z', sizeof buf);
    assert_int_equal(pc_random_hex(buf, 17, 8), PC_OK);
    assert_int_equal(strlen(buf), 16);
    assert_true(is_lower_hex(buf, 16));
    assert_int_equal(buf[17], 'Z');

    assert_int_equal(pc_random_hex(buf, 16, 8), PC_ERR_INVAL); /* no room for the NUL */
    assert_int_equal(pc_random_hex(buf, sizeof buf, 64), PC_OK);
    assert_int_equal(strlen(buf), 128);
    assert_int_equal(pc_random_hex(buf, sizeof buf, 65), PC_ERR_INVAL);
    assert_int_equal(pc_random_hex(buf, 1, 0), PC_OK);
    assert_string_equal(buf, "");
}

static void test_ordered_id(void **state)
{
    char a[33], b[33], prev[33] = "";
    struct timespec ts;
    unsigned long long ms = 0;
    (void)state;

    clock_gettime(CLOCK_REALTIME, &ts);
    assert_int_equal(pc_ordered_id(a, sizeof a, 16), PC_OK);
    assert_int_equal(strlen(a), 32);
    assert_true(is_lower_hex(a, 32));
    /* the first 12 digits are the clock in milliseconds */
    assert_int_equal(sscanf(a, "%12llx", &ms), 1);
    assert_true(ms >= (unsigned long long)ts.tv_sec * 1000ull &&
                ms <= (unsigned long long)ts.tv_sec * 1000ull + 5000ull);
    /* one after another: never descending, and the random part differs */
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(pc_ordered_id(b, sizeof b, 16), PC_OK);
        assert_true(strncmp(prev, b, 12) <= 0);
        assert_string_not_equal(b + 12, a + 12);
        memcpy(prev, b, sizeof prev);
    }
    assert_int_equal(pc_ordered_id(a, 32, 16), PC_ERR_INVAL); /* no NUL room */
    assert_int_equal(pc_ordered_id(a, sizeof a, PC_ORDERED_ID_MIN - 1),
                     PC_ERR_INVAL); /* too short */
    assert_int_equal(pc_ordered_id(a, sizeof a, PC_ORDERED_ID_MIN), PC_OK);
    assert_int_equal(strlen(a), 2 * PC_ORDERED_ID_MIN);
}

static void test_sha256_hex(void **state)
{
    char out[PC_SHA256_HEX_LEN + 1];
    (void)state;

    assert_int_equal(pc_sha256_hex("abc", 3, out), PC_OK);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(pc_sha256_hex("", 0, out), PC_OK);
    assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_int_equal(pc_sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
                                   out),
                     PC_OK);
    assert_string_equal(out, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_random_uniform(void **state)
{
    unsigned v = 12345, seen[10] = { 0 };
    (void)state;

    assert_int_equal(pc_random_uniform(0, &v), PC_ERR_INVAL);
    assert_int_equal(v, 12345);

    for (int i = 0; i < 100; i++) {
        assert_int_equal(pc_random_uniform(1, &v), PC_OK);
        assert_int_equal(v, 0);
    }
    for (int i = 0; i < 2000; i++) {
        assert_int_equal(pc_random_uniform(10, &v), PC_OK);
        assert_true(v < 10);
        seen[v]++;
    }
    for (int i = 0; i < 10; i++) /* P(some value never drawn) < 1e-90 */
        assert_true(seen[i] > 0);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(pc_random_uniform(3, &v), PC_OK);
        assert_true(v < 3);
        assert_int_equal(pc_random_uniform(UINT_MAX, &v), PC_OK);
        assert_true(v < UINT_MAX);
        assert_int_equal(pc_random_uniform(0x80000001u, &v), PC_OK);
        assert_true(v < 0x80000001u);
    }
}

static void test_ct_equal(void **state)
{
    (void)state;
    assert_int_equal(pc_ct_equal("abcdef", "abcdef", 6), 1);
    assert_int_equal(pc_ct_equal("abcdef", "abcdeg", 6), 0);
    assert_int_equal(pc_ct_equal("xbcdef", "abcdef", 6), 0);
    assert_int_equal(pc_ct_equal("abcdef", "abcdeg", 5), 1);
    assert_int_equal(pc_ct_equal("a", "b", 0), 1);
}

/* ---- pc_time --------------------------------------------------------------------------- */

static void test_fake_now(void **state)
{
#ifdef PC_TEST_HOOKS
    int64_t t0, t1, v;
    (void)state;

    assert_int_equal(setenv("PC_FAKE_NOW", "1000", 1), 0);
    assert_int_equal(pc_now(), 1000);
    assert_int_equal(setenv("PC_FAKE_NOW", "0", 1), 0);
    assert_int_equal(pc_now(), 0);
    assert_int_equal(setenv("PC_FAKE_NOW", "20000000000", 1), 0);
    assert_true(pc_now() == INT64_C(20000000000));

    /* "+N" / "-N" are offsets from the real clock */
    assert_int_equal(setenv("PC_FAKE_NOW", "+5", 1), 0);
    t0 = (int64_t)time(NULL);
    v = pc_now();
    t1 = (int64_t)time(NULL);
    assert_in_range(v, t0 + 5, t1 + 5);
    assert_int_equal(setenv("PC_FAKE_NOW", "-3600", 1), 0);
    t0 = (int64_t)time(NULL);
    v = pc_now();
    t1 = (int64_t)time(NULL);
    assert_in_range(v, t0 - 3600, t1 - 3600);

    /* garbage or empty: the real clock */
    assert_int_equal(setenv("PC_FAKE_NOW", "1000x", 1), 0);
    t0 = (int64_t)time(NULL);
    v = pc_now();
    t1 = (int64_t)time(NULL);
    assert_in_range(v, t0, t1);
    assert_int_equal(setenv("PC_FAKE_NOW", "", 1), 0);
    t0 = (int64_t)time(NULL);
    v = pc_now();
    t1 = (int64_t)time(NULL);
    assert_in_range(v, t0, t1);

    assert_int_equal(unsetenv("PC_FAKE_NOW"), 0);
    t0 = (int64_t)time(NULL);
    v = pc_now();
    t1 = (int64_t)time(NULL);
    assert_in_range(v, t0, t1);
#else
    (void)state;
    skip(); /* built without --enable-test-hooks */
#endif
}

static void test_now_ms_monotonic(void **state)
{
    int64_t a, b;
    struct timespec ts = { 0, 20 * 1000000 };
    (void)state;

    assert_int_equal(setenv("PC_FAKE_NOW", "1000", 1), 0); /* never faked */
    a = pc_now_ms();
    nanosleep(&ts, NULL);
    b = pc_now_ms();
    assert_int_equal(unsetenv("PC_FAKE_NOW"), 0);
    assert_true(a > 0);
    assert_in_range(b - a, 20, 5000);
}

/* ---- pc_mem, pc_err -------------------------------------------------------------------- */

static void test_mem(void **state)
{
    unsigned char buf[16];
    char *s;
    (void)state;

    memset(buf, 0xAB, sizeof buf);
    pc_wipe(buf + 4, 8);
    for (size_t i = 0; i < sizeof buf; i++)
        assert_int_equal(buf[i], (i >= 4 && i < 12) ? 0 : 0xAB);
    pc_wipe(NULL, 8);
    pc_free_secret(NULL, 8);
    pc_free_secret_str(NULL);
    s = strdup("secret");
    assert_non_null(s);
    pc_free_secret_str(s);
    s = malloc(32);
    assert_non_null(s);
    pc_free_secret(s, 32);
}

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(pc_strerror(PC_OK), "ok");
    assert_string_equal(pc_strerror(PC_ERR_TOOBIG), "input too large");
    assert_string_equal(pc_strerror(1), "unknown error");
    for (int e = PC_ERR_TOOBIG; e < 0; e++)
        assert_string_not_equal(pc_strerror(e), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_content_and_mode),
        cmocka_unit_test(test_write_empty),
        cmocka_unit_test(test_write_replaces),
        cmocka_unit_test(test_write_failures_leave_nothing),
        cmocka_unit_test(test_read_file),
        cmocka_unit_test(test_read_empty_file),
        cmocka_unit_test(test_read_missing_and_not_regular),
        cmocka_unit_test(test_mkdir_mode),
        cmocka_unit_test(test_token_new),
        cmocka_unit_test(test_random_hex),
        cmocka_unit_test(test_ordered_id),
        cmocka_unit_test(test_sha256_hex),
        cmocka_unit_test(test_random_uniform),
        cmocka_unit_test(test_ct_equal),
        cmocka_unit_test(test_fake_now),
        cmocka_unit_test(test_now_ms_monotonic),
        cmocka_unit_test(test_mem),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
