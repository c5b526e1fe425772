/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests for lib/pc_config: the `key = value` grammar and the value parsers. */
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

#include "pc_config.h"
#include "pc_err.h"

#define assert_contains(hay, needle) \
    do { \
        if (!strstr((hay), (needle))) \
            fail_msg("\"%s\" does not contain \"%s\"", (hay), (needle)); \
    } while (0)

#define assert_starts_with(s, prefix) \
    do { \
        if (strncmp((s), (prefix), strlen(prefix)) != 0) \
            fail_msg("\"%s\" does not start with \"%s\"", (s), (prefix)); \
    } while (0)

/* ---- a recording callback ------------------------------------------------------------ */

#define MAX_SEEN 300

struct seen {
    int n;
    char key[MAX_SEEN][64];
    char value[MAX_SEEN][4096];
    const char *fail_key; /* return fail_rc when this key is seen */
    int fail_rc;
    const char *fail_msg; /* written into err (NULL: write nothing) */
};

static int record(void *ctx, const char *key, const char *value, char *err, size_t errsz)
{
    struct seen *s = ctx;

    if (s->n < MAX_SEEN) {
        snprintf(s->key[s->n], sizeof s->key[s->n], "%s", key);
        snprintf(s->value[s->n], sizeof s->value[s->n], "%s", value);
    }
    s->n++;
    if (s->fail_key && strcmp(key, s->fail_key) == 0) {
        if (s->fail_msg)
            snprintf(err, errsz, "%s", s->fail_msg);
        return s->fail_rc;
    }
    return PC_OK;
}

static struct seen *seen_new(void)
{
    struct seen *s = calloc(1, sizeof *s);
    assert_non_null(s);
    return s;
}

static int parse_str(const char *text, struct seen *s, char *err, size_t errsz)
{
    return pc_config_parse_buffer("t.conf", text, strlen(text), record, s, err, errsz);
}

/* ---- temp dir -------------------------------------------------------------------------- */

static char tmpdir[64];

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pc-test-config.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

static int rm_rf(const char *path)
{
    return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int group_teardown(void **state)
{
    (void)state;
    return tmpdir[0] ? rm_rf(tmpdir) : 0;
}

static void write_file(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
}

/* ---- grammar --------------------------------------------------------------------------- */

static void test_basic_grammar(void **state)
{
    struct seen *s = seen_new();
    char err[256] = "untouched";
    const char *text = "# a comment\n"
                       "\n"
                       "   # an indented comment = with an equals sign\n"
                       "listen = 0.0.0.0:8443\n"
                       "  \t  \n"
                       "\t spaced_key \t=\t  a value with  inner  spaces \t \n"
                       "k9_x=v\n"
                       "url = https://x/?a=b&c=d\n"
                       "hash = abc # not a comment\n"
                       "last = no newline";
    (void)state;

    assert_int_equal(parse_str(text, s, err, sizeof err), PC_OK);
    assert_string_equal(err, "untouched");
    assert_int_equal(s->n, 6);
    assert_string_equal(s->key[0], "listen");
    assert_string_equal(s->value[0], "0.0.0.0:8443");
    assert_string_equal(s->key[1], "spaced_key");
    assert_string_equal(s->value[1], "a value with  inner  spaces");
    assert_string_equal(s->key[2], "k9_x");
    assert_string_equal(s->value[2], "v");
    assert_string_equal(s->key[3], "url");
    assert_string_equal(s->value[3], "https://x/?a=b&c=d");
    assert_string_equal(s->key[4], "hash");
    assert_string_equal(s->value[4], "abc # not a comment");
    assert_string_equal(s->key[5], "last");
    assert_string_equal(s->value[5], "no newline");
    free(s);
}

static void test_empty_input(void **state)
{
    struct seen *s = seen_new();
    char err[64] = "untouched";
    (void)state;

    assert_int_equal(pc_config_parse_buffer("t.conf", "", 0, record, s, err, sizeof err), PC_OK);
    assert_int_equal(parse_str("\n\n# only comments\n   \n", s, err, sizeof err), PC_OK);
    assert_int_equal(s->n, 0);
    assert_string_equal(err, "untouched");
    free(s);
}

static void test_crlf(void **state)
{
    struct seen *s = seen_new();
    char err[256] = "";
    (void)state;

    assert_int_equal(parse_str("# c\r\n\r\na = 1\r\nb = two words \r\nc =\r\n", s, err, sizeof err),
                     PC_OK);
    assert_int_equal(s->n, 3);
    assert_string_equal(s->key[0], "a");
    assert_string_equal(s->value[0], "1");
    assert_string_equal(s->key[1], "b");
    assert_string_equal(s->value[1], "two words");
    assert_string_equal(s->key[2], "c");
    assert_string_equal(s->value[2], "");
    free(s);
}

static void test_empty_value(void **state)
{
    struct seen *s = seen_new();
    char err[256] = "";
    (void)state;

    assert_int_equal(parse_str("a =\nb =    \t\nc=\n", s, err, sizeof err), PC_OK);
    assert_int_equal(s->n, 3);
    assert_string_equal(s->value[0], "");
    assert_string_equal(s->value[1], "");
    assert_string_equal(s->value[2], "");
    free(s);
}

static void test_missing_equals(void **state)
{
    struct seen *s = seen_new();
    char err[256] = "";
    (void)state;

    assert_int_equal(parse_str("a = 1\n\njust some words\nb = 2\n", s, err, sizeof err),
                     PC_ERR_PARSE);
    assert_string_equal(err, "t.conf:3: expected 'key = value'");
    assert_int_equal(s->n, 1); /* stops at the error */
    free(s);
}

static void test_invalid_keys(void **state)
{
    static const char *bad[] = {
        "A = 1", "Key = 1", "a-b = 1",      "a b = 1",  "a.b = 1",
        " = 1",  "=",       "\xc3\xa4 = 1", "a\tb = 1", "[section] = 1",
    };
    (void)state;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct seen *s = seen_new();
        char err[256] = "";
        int rc = parse_str(bad[i], s, err, sizeof err);
        if (rc != PC_ERR_PARSE)
            fail_msg("'%s' gave %d, expected PC_ERR_PARSE", bad[i], rc);
        assert_starts_with(err, "t.conf:1: invalid key '");
        assert_int_equal(s->n, 0);
        free(s);
    }
}

static void test_duplicate_key(void **state)
{
    struct seen *s = seen_new();
    char err[256] = "";
    (void)state;

    assert_int_equal(parse_str("a = 1\nb = 2\na = 3\n", s, err, sizeof err), PC_ERR_PARSE);
    assert_string_equal(err, "t.conf:3: 'a' is set twice");
    assert_int_equal(s->n, 2);
    free(s);

    /* Comments and blank lines still count as lines; spacing does not make a new key. */
    s = seen_new();
    assert_int_equal(parse_str("# head\n\nport = 1\n\n# again\n  port=1\n", s, err, sizeof err),
                     PC_ERR_PARSE);
    assert_string_equal(err, "t.conf:6: 'port' is set twice");
    assert_int_equal(s->n, 1);
    free(s);
}

static void test_line_length(void **state)
{
    size_t vlen = PC_CONFIG_MAX_LINE - 4; /* "k = " + value = exactly 4095 bytes */
    size_t total = 6 + PC_CONFIG_MAX_LINE + 1 + PC_CONFIG_MAX_LINE + 2 + 1;
    char *buf = malloc(total);
    struct seen *s = seen_new();
    char err[256] = "";
    size_t n = 0;
    (void)state;

    assert_non_null(buf);
    /* line 1: "a = 1"; line 2: exactly 4095 bytes (accepted) */
    memcpy(buf, "a = 1\n", 6);
    n = 6;
    memcpy(buf + n, "k = ", 4);
    n += 4;
    memset(buf + n, 'x', vlen);
    n += vlen;
    buf[n++] = '\n';
    assert_int_equal(pc_config_parse_buffer("t.conf", buf, n, record, s, err, sizeof err), PC_OK);
    assert_int_equal(s->n, 2);
    assert_int_equal(strlen(s->value[1]), vlen);
    free(s);

    /* line 3: 4096 bytes (refused, with the right line number) */
    s = seen_new();
    memcpy(buf + n, "z = ", 4);
    memset(buf + n + 4, 'y', PC_CONFIG_MAX_LINE + 1 - 4);
    n += PC_CONFIG_MAX_LINE + 1;
    buf[n++] = '\n';
    assert_true(n <= total);
    assert_int_equal(pc_config_parse_buffer("t.conf", buf, n, record, s, err, sizeof err),
                     PC_ERR_PARSE);
    assert_string_equal(err, "t.conf:3: line longer than 4095 bytes");
    assert_int_equal(s->n, 2);
    free(s);

    /* The same overlong line without a final newline. */
    s = seen_new();
    assert_int_equal(pc_config_parse_buffer("t.conf", buf, n - 1, record, s, err, sizeof err),
                     PC_ERR_PARSE);
    assert_string_equal(err, "t.conf:3: line longer than 4095 bytes");
    free(s);
    free(buf);
}

static void test_nul_byte(void **state)
{
    static const char text[] = "a = 1\nb = x\0y\nc = 3\n";
    static const char comment[] = "# com\0ment\n";
    struct seen *s = seen_new();
    char err[256] = "";
    (void)state;

    assert_int_equal(pc_config_parse_buffer("t.conf", text, sizeof text - 1, record, s, err,
                                            sizeof err),
                     PC_ERR_PARSE);
    assert_string_equal(err, "t.conf:2: NUL byte in file");
    assert_int_equal(s->n, 1);
    free(s);

    s = seen_new();
    assert_int_equal(pc_config_parse_buffer("t.conf", comment, sizeof comment - 1, record, s, err,
                                            sizeof err),
                     PC_ERR_PARSE);
    assert_string_equal(err, "t.conf:1: NUL byte in file");
    free(s);
}

static void test_callback_error(void **state)
{
    struct seen *s = seen_new();
    char err[256] = "";
    (void)state;

    s->fail_key = "port";
    s->fail_rc = PC_ERR_INVAL;
    s->fail_msg = "port: expected a number in 1..65535";
    assert_int_equal(parse_str("a = 1\n# x\nport = http\nc = 3\n", s, err, sizeof err),
                     PC_ERR_INVAL);
    assert_string_equal(err, "t.conf:3: port: expected a number in 1..65535");
    assert_int_equal(s->n, 2); /* c never reached */
    assert_string_equal(s->key[1], "port");
    assert_string_equal(s->value[1], "http");
    free(s);

    /* A callback that fails without a message still gets a prefixed one. */
    s = seen_new();
    s->fail_key = "a";
    s->fail_rc = PC_ERR_INVAL;
    assert_int_equal(parse_str("\na = 1\n", s, err, sizeof err), PC_ERR_INVAL);
    assert_string_equal(err, "t.conf:2: invalid value");
    free(s);
}

static void test_too_many_settings(void **state)
{
    char *buf = malloc(257 * 16);
    struct seen *s = seen_new();
    char err[256] = "";
    size_t n = 0;
    (void)state;

    assert_non_null(buf);
    for (int i = 0; i < 256; i++)
        n += (size_t)snprintf(buf + n, 257 * 16 - n, "k%d = %d\n", i, i);
    assert_int_equal(pc_config_parse_buffer("t.conf", buf, n, record, s, err, sizeof err), PC_OK);
    assert_int_equal(s->n, 256);
    free(s);

    s = seen_new();
    n += (size_t)snprintf(buf + n, 257 * 16 - n, "k256 = 256\n");
    assert_int_equal(pc_config_parse_buffer("t.conf", buf, n, record, s, err, sizeof err),
                     PC_ERR_PARSE);
    assert_string_equal(err, "t.conf:257: too many settings");
    free(s);
    free(buf);
}

/* A buffer of exactly `size` bytes of comment lines. */
static char *comment_buffer(size_t size)
{
    char *buf = malloc(size);
    assert_non_null(buf);
    memset(buf, '#', size);
    for (size_t i = 999; i < size; i += 1000)
        buf[i] = '\n';
    return buf;
}

static void test_buffer_size_limit(void **state)
{
    char *buf = comment_buffer(PC_CONFIG_MAX_BYTES + 1);
    struct seen *s = seen_new();
    char err[256] = "";
    (void)state;

    assert_int_equal(pc_config_parse_buffer("t.conf", buf, PC_CONFIG_MAX_BYTES, record, s, err,
                                            sizeof err),
                     PC_OK);
    assert_int_equal(pc_config_parse_buffer("t.conf", buf, PC_CONFIG_MAX_BYTES + 1, record, s, err,
                                            sizeof err),
                     PC_ERR_TOOBIG);
    assert_string_equal(err, "t.conf:0: file is larger than 1048576 bytes");
    assert_int_equal(s->n, 0);
    free(s);
    free(buf);
}

static void test_small_err_buffer(void **state)
{
    struct seen *s = seen_new();
    char err[12];
    (void)state;

    memset(err, 'Z', sizeof err);
    assert_int_equal(parse_str("a = 1\na = 2\n", s, err, 8), PC_ERR_PARSE);
    assert_string_equal(err, "t.conf:"); /* truncated to 7 + NUL */
    assert_int_equal(err[8], 'Z');       /* nothing written past errsz */
    free(s);
}

/* ---- files ----------------------------------------------------------------------------- */

static void test_file_ok(void **state)
{
    char path[128], err[512] = "untouched";
    struct seen *s = seen_new();
    const char *text = "# portcullisd.conf\nlisten = 127.0.0.1:8443\r\ndb = /var/lib/x.db\n";
    (void)state;

    snprintf(path, sizeof path, "%s/ok.conf", tmpdir);
    write_file(path, text, strlen(text));
    assert_int_equal(pc_config_parse_file(path, record, s, err, sizeof err), PC_OK);
    assert_string_equal(err, "untouched");
    assert_int_equal(s->n, 2);
    assert_string_equal(s->key[0], "listen");
    assert_string_equal(s->value[0], "127.0.0.1:8443");
    assert_string_equal(s->key[1], "db");
    assert_string_equal(s->value[1], "/var/lib/x.db");
    free(s);
}

static void test_file_error_names_path(void **state)
{
    char path[128], want[256], err[512] = "";
    struct seen *s = seen_new();
    const char *text = "x = 1\nx = 2\n";
    (void)state;

    snprintf(path, sizeof path, "%s/dup.conf", tmpdir);
    write_file(path, text, strlen(text));
    assert_int_equal(pc_config_parse_file(path, record, s, err, sizeof err), PC_ERR_PARSE);
    snprintf(want, sizeof want, "%s:2: 'x' is set twice", path);
    assert_string_equal(err, want);
    free(s);
}

static void test_file_missing(void **state)
{
    char path[128], want[256], err[512] = "";
    struct seen *s = seen_new();
    (void)state;

    snprintf(path, sizeof path, "%s/does-not-exist.conf", tmpdir);
    assert_int_equal(pc_config_parse_file(path, record, s, err, sizeof err), PC_ERR_IO);
    snprintf(want, sizeof want, "%s:0: cannot open: %s", path, strerror(ENOENT));
    assert_string_equal(err, want);
    assert_int_equal(s->n, 0);
    free(s);
}

static void test_file_directory(void **state)
{
    char want[256], err[512] = "";
    struct seen *s = seen_new();
    (void)state;

    assert_int_equal(pc_config_parse_file(tmpdir, record, s, err, sizeof err), PC_ERR_IO);
    snprintf(want, sizeof want, "%s:0: not a regular file", tmpdir);
    assert_string_equal(err, want);
    assert_int_equal(s->n, 0);
    free(s);
}

static void test_file_too_big(void **state)
{
    char path[128], want[256], err[512] = "";
    struct seen *s = seen_new();
    char *buf = comment_buffer(PC_CONFIG_MAX_BYTES + 1);
    (void)state;

    /* Exactly 1 MiB is accepted ... */
    snprintf(path, sizeof path, "%s/exact.conf", tmpdir);
    write_file(path, buf, PC_CONFIG_MAX_BYTES);
    assert_int_equal(pc_config_parse_file(path, record, s, err, sizeof err), PC_OK);

    /* ... one byte more is not, and nothing is applied. */
    snprintf(path, sizeof path, "%s/big.conf", tmpdir);
    memcpy(buf, "a = 1\n", 6);
    write_file(path, buf, PC_CONFIG_MAX_BYTES + 1);
    assert_int_equal(pc_config_parse_file(path, record, s, err, sizeof err), PC_ERR_TOOBIG);
    snprintf(want, sizeof want, "%s:0: file is larger than 1048576 bytes", path);
    assert_string_equal(err, want);
    assert_int_equal(s->n, 0);
    free(buf);
    free(s);
}

/* ---- value parsers --------------------------------------------------------------------- */

static void test_parse_uint(void **state)
{
    static const char *bad[] = {
        "",
        "+1",
        "-1",
        " 1",
        "1 ",
        "1a",
        "a1",
        "0x10",
        "1.0",
        "1e3",
        "١",
        "99999999999999999999",
        "18446744073709551616",
        "184467440737095516150",
    };
    uint64_t v = 0;
    (void)state;

    assert_int_equal(pc_parse_uint("0", 0, 10, &v), PC_OK);
    assert_int_equal(v, 0);
    assert_int_equal(pc_parse_uint("42", 0, 100, &v), PC_OK);
    assert_int_equal(v, 42);
    assert_int_equal(pc_parse_uint("007", 0, 100, &v), PC_OK);
    assert_int_equal(v, 7);
    assert_int_equal(pc_parse_uint("9999999999999999999", 0, UINT64_MAX, &v), PC_OK);
    assert_true(v == UINT64_C(9999999999999999999));

    /* bounds are inclusive */
    assert_int_equal(pc_parse_uint("1", 1, 65535, &v), PC_OK);
    assert_int_equal(v, 1);
    assert_int_equal(pc_parse_uint("65535", 1, 65535, &v), PC_OK);
    assert_int_equal(v, 65535);
    v = 777;
    assert_int_equal(pc_parse_uint("0", 1, 65535, &v), PC_ERR_INVAL);
    assert_int_equal(pc_parse_uint("65536", 1, 65535, &v), PC_ERR_INVAL);
    assert_int_equal(v, 777); /* untouched on failure */

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = pc_parse_uint(bad[i], 0, UINT64_MAX, &v);
        if (rc != PC_ERR_INVAL)
            fail_msg("pc_parse_uint(\"%s\") gave %d", bad[i], rc);
    }
    assert_int_equal(pc_parse_uint(NULL, 0, 10, &v), PC_ERR_INVAL);
    assert_int_equal(v, 777);
}

static void test_parse_bool(void **state)
{
    static const char *yes[] = { "yes", "true", "on", "1" };
    static const char *no[] = { "no", "false", "off", "0" };
    static const char *bad[] = { "",     "y",    "n",  "2",      "01", " yes",
                                 "yes ", "yess", "of", "enable", "-1", "truefalse" };
    int b;
    (void)state;

    for (size_t i = 0; i < 4; i++) {
        b = -1;
        assert_int_equal(pc_parse_bool(yes[i], &b), PC_OK);
        assert_int_equal(b, 1);
        b = -1;
        assert_int_equal(pc_parse_bool(no[i], &b), PC_OK);
        assert_int_equal(b, 0);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b = -1;
        if (pc_parse_bool(bad[i], &b) != PC_ERR_INVAL)
            fail_msg("pc_parse_bool(\"%s\") accepted", bad[i]);
        assert_int_equal(b, -1);
    }
    assert_int_equal(pc_parse_bool(NULL, &b), PC_ERR_INVAL);
}

static void test_parse_duration(void **state)
{
    static const struct {
        const char *s;
        int64_t want;
    } good[] = {
        { "0", 0 },       { "90", 90 },    { "90s", 90 }, { "5m", 300 },    { "2h", 7200 },
        { "7d", 604800 }, { "1d", 86400 }, { "0s", 0 },   { "3600", 3600 },
    };
    static const char *bad[] = {
        "",
        "m",
        "s",
        "h",
        "d",
        "1x",
        "-1",
        "-5m",
        "+5m",
        "1.5h",
        " 5m",
        "5m ",
        "5 m",
        "5M",
        "5H",
        "5mm",
        "5sm",
        "1h30m",
        "m5",
        "0x10",
        "5w",
        "99999999999999999999",
        "999999999999999999d", /* would overflow int64 once multiplied */
    };
    int64_t v;
    (void)state;

    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        v = -1;
        if (pc_parse_duration(good[i].s, 0, INT64_MAX, &v) != PC_OK)
            fail_msg("pc_parse_duration(\"%s\") refused", good[i].s);
        assert_int_equal(v, good[i].want);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = -1;
        if (pc_parse_duration(bad[i], 0, INT64_MAX, &v) != PC_ERR_INVAL)
            fail_msg("pc_parse_duration(\"%s\") accepted (%lld)", bad[i], (long long)v);
        assert_int_equal(v, -1);
    }
    assert_int_equal(pc_parse_duration(NULL, 0, 10, &v), PC_ERR_INVAL);

    /* bounds apply to the value in seconds, inclusive */
    assert_int_equal(pc_parse_duration("1m", 60, 3600, &v), PC_OK);
    assert_int_equal(v, 60);
    assert_int_equal(pc_parse_duration("1h", 60, 3600, &v), PC_OK);
    assert_int_equal(v, 3600);
    assert_int_equal(pc_parse_duration("3600s", 60, 3600, &v), PC_OK);
    v = -1;
    assert_int_equal(pc_parse_duration("59", 60, 3600, &v), PC_ERR_INVAL);
    assert_int_equal(pc_parse_duration("59s", 60, 3600, &v), PC_ERR_INVAL);
    assert_int_equal(pc_parse_duration("3601", 60, 3600, &v), PC_ERR_INVAL);
    assert_int_equal(pc_parse_duration("61m", 60, 3600, &v), PC_ERR_INVAL);
    assert_int_equal(pc_parse_duration("2h", 60, 3600, &v), PC_ERR_INVAL);
    assert_int_equal(pc_parse_duration("1d", 60, 3600, &v), PC_ERR_INVAL);
    assert_int_equal(v, -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_grammar),
        cmocka_unit_test(test_empty_input),
        cmocka_unit_test(test_crlf),
        cmocka_unit_test(test_empty_value),
        cmocka_unit_test(test_missing_equals),
        cmocka_unit_test(test_invalid_keys),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_line_length),
        cmocka_unit_test(test_nul_byte),
        cmocka_unit_test(test_callback_error),
        cmocka_unit_test(test_too_many_settings),
        cmocka_unit_test(test_buffer_size_limit),
        cmocka_unit_test(test_small_err_buffer),
        cmocka_unit_test(test_file_ok),
        cmocka_unit_test(test_file_error_names_path),
        cmocka_unit_test(test_file_missing),
        cmocka_unit_test(test_file_directory),
        cmocka_unit_test(test_file_too_big),
        cmocka_unit_test(test_parse_uint),
        cmocka_unit_test(test_parse_bool),
        cmocka_unit_test(test_parse_duration),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
