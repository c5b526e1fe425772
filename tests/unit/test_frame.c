/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests for lib/pc_frame: the agent socket's framing (4-byte big-endian length + one JSON
 * object), over a socketpair, with deadlines. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pc_err.h"
#include "pc_frame.h"
#include "pc_time.h"

static int setup_pair(void **state)
{
    int *sv = malloc(2 * sizeof *sv);

    if (!sv || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        free(sv);
        return -1;
    }
    *state = sv;
    return 0;
}

static int teardown_pair(void **state)
{
    int *sv = *state;

    if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    free(sv);
    return 0;
}

static void write_raw(int fd, const void *p, size_t n)
{
    assert_int_equal(write(fd, p, n), (ssize_t)n);
}

static void write_header(int fd, uint32_t n)
{
    unsigned char h[4] = { (unsigned char)(n >> 24), (unsigned char)(n >> 16),
                           (unsigned char)(n >> 8), (unsigned char)n };
    write_raw(fd, h, 4);
}

static void test_round_trip(void **state)
{
    int *sv = *state;
    json_object *msg = json_object_new_object(), *got = NULL, *v = NULL;
    int64_t deadline = pc_now_ms() + 2000;

    json_object_object_add(msg, "op", json_object_new_string("begin"));
    json_object_object_add(msg, "user", json_object_new_string("alice"));
    json_object_object_add(msg, "n", json_object_new_int(42));
    assert_int_equal(pc_frame_write(sv[0], msg, deadline), PC_OK);
    /* two frames back to back: the reader must not over-read the first */
    assert_int_equal(pc_frame_write(sv[0], msg, deadline), PC_OK);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pc_frame_read(sv[1], deadline, &got), PC_OK);
        assert_non_null(got);
        assert_true(json_object_object_get_ex(got, "user", &v));
        assert_string_equal(json_object_get_string(v), "alice");
        assert_true(json_object_object_get_ex(got, "n", &v));
        assert_int_equal(json_object_get_int(v), 42);
        json_object_put(got);
    }
    /* and the other direction */
    assert_int_equal(pc_frame_write(sv[1], msg, deadline), PC_OK);
    assert_int_equal(pc_frame_read(sv[0], deadline, &got), PC_OK);
    json_object_put(got);
    json_object_put(msg);
}

static void test_wire_format(void **state)
{
    int *sv = *state;
    json_object *msg = json_object_new_object();
    unsigned char buf[64];

    json_object_object_add(msg, "ok", json_object_new_boolean(1));
    assert_int_equal(pc_frame_write(sv[0], msg, pc_now_ms() + 2000), PC_OK);
    assert_int_equal(read(sv[1], buf, sizeof buf), 4 + 11);
    assert_memory_equal(buf, "\0\0\0\x0b{\"ok\":true}", 15);
    json_object_put(msg);
}

static void test_oversize_header(void **state)
{
    int *sv = *state;
    json_object *got = (json_object *)1;

    write_header(sv[0], PC_FRAME_MAX + 1);
    assert_int_equal(pc_frame_read(sv[1], pc_now_ms() + 2000, &got), PC_ERR_TOOBIG);
    assert_null(got);
    write_header(sv[0], 0xffffffffu);
    assert_int_equal(pc_frame_read(sv[1], pc_now_ms() + 2000, &got), PC_ERR_TOOBIG);
}

static void test_oversize_write(void **state)
{
    int *sv = *state;
    size_t n = PC_FRAME_MAX + 16;
    char *big = malloc(n + 1);
    json_object *msg = json_object_new_object();

    assert_non_null(big);
    memset(big, 'a', n);
    big[n] = '\0';
    json_object_object_add(msg, "x", json_object_new_string(big));
    assert_int_equal(pc_frame_write(sv[0], msg, pc_now_ms() + 2000), PC_ERR_TOOBIG);
    json_object_put(msg);
    free(big);
}

static void test_max_size_accepted(void **state)
{
    int *sv = *state;
    /* {"x":"aaa…"} of exactly PC_FRAME_MAX bytes; written from a child since it exceeds the
     * socket buffer. */
    size_t n = PC_FRAME_MAX - 8;
    char *big = malloc(n + 1);
    json_object *msg = json_object_new_object(), *got = NULL;
    pid_t pid;
    int status;

    assert_non_null(big);
    memset(big, 'a', n);
    big[n] = '\0';
    json_object_object_add(msg, "x", json_object_new_string(big));
    assert_int_equal(strlen(json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN)),
                     PC_FRAME_MAX);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(pc_frame_write(sv[0], msg, pc_now_ms() + 5000) == PC_OK ? 0 : 1);
    assert_int_equal(pc_frame_read(sv[1], pc_now_ms() + 5000, &got), PC_OK);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    json_object_put(got);
    json_object_put(msg);
    free(big);
}

static void test_truncated_then_close(void **state)
{
    int *sv = *state;
    json_object *got = NULL;

    write_header(sv[0], 20);
    write_raw(sv[0], "{\"op\":", 6);
    close(sv[0]);
    sv[0] = -1;
    assert_int_equal(pc_frame_read(sv[1], pc_now_ms() + 2000, &got), PC_ERR_IO);
    assert_null(got);
}

static void test_truncated_header_then_close(void **state)
{
    int *sv = *state;
    json_object *got = NULL;

    write_raw(sv[0], "\0\0", 2);
    close(sv[0]);
    sv[0] = -1;
    assert_int_equal(pc_frame_read(sv[1], pc_now_ms() + 2000, &got), PC_ERR_IO);
}

static void test_peer_closed_write(void **state)
{
    int *sv = *state;
    json_object *msg = json_object_new_object();

    close(sv[1]);
    sv[1] = -1;
    assert_int_equal(pc_frame_write(sv[0], msg, pc_now_ms() + 2000), PC_ERR_IO);
    json_object_put(msg);
}

static void test_timeout(void **state)
{
    int *sv = *state;
    json_object *got = NULL;
    int64_t t0 = pc_now_ms(), dt;

    assert_int_equal(pc_frame_read(sv[1], t0 + 300, &got), PC_ERR_TIMEOUT);
    dt = pc_now_ms() - t0;
    assert_true(dt >= 290 && dt < 2000);
    /* a header, then silence: still bounded by the deadline */
    write_header(sv[0], 10);
    t0 = pc_now_ms();
    assert_int_equal(pc_frame_read(sv[1], t0 + 300, &got), PC_ERR_TIMEOUT);
    dt = pc_now_ms() - t0;
    assert_true(dt >= 290 && dt < 2000);
    /* a deadline already past */
    assert_int_equal(pc_frame_read(sv[1], pc_now_ms() - 1, &got), PC_ERR_TIMEOUT);
}

/* Writes: a deadline already past fails even on a writable socket, and a peer that never
 * reads (its buffer full) bounds the write by the deadline, not forever. */
static void test_write_timeout(void **state)
{
    int *sv = *state;
    size_t n = PC_FRAME_MAX - 8;
    char *big = malloc(n + 1);
    json_object *msg = json_object_new_object(), *small = json_object_new_object();
    int64_t t0, dt;

    assert_non_null(big);
    assert_int_equal(pc_frame_write(sv[0], small, pc_now_ms() - 1), PC_ERR_TIMEOUT);
    memset(big, 'a', n);
    big[n] = '\0';
    json_object_object_add(msg, "x", json_object_new_string(big));
    /* a small send buffer: the frame cannot all go while nobody reads */
    assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &(int){ 4096 }, sizeof(int)), 0);
    t0 = pc_now_ms();
    assert_int_equal(pc_frame_write(sv[0], msg, t0 + 300), PC_ERR_TIMEOUT);
    dt = pc_now_ms() - t0;
    assert_true(dt >= 290 && dt < 2000);
    json_object_put(small);
    json_object_put(msg);
    free(big);
}

static void send_body(int fd, const char *body)
{
    write_header(fd, (uint32_t)strlen(body));
    write_raw(fd, body, strlen(body));
}

static void test_not_an_object(void **state)
{
    int *sv = *state;
    static const char *const bad[] = {
        "[1,2]", "\"str\"", "42", "null", "{\"a\":", "{}x", "{\"a\":1}{\"b\":2}", "\xff\xfe"
    };
    json_object *got = NULL;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        send_body(sv[0], bad[i]);
        assert_int_equal(pc_frame_read(sv[1], pc_now_ms() + 2000, &got), PC_ERR_PARSE);
        assert_null(got);
    }
    /* the stream stays in step after a parse error */
    send_body(sv[0], "{\"ok\":false}");
    assert_int_equal(pc_frame_read(sv[1], pc_now_ms() + 2000, &got), PC_OK);
    json_object_put(got);
}

static void test_zero_length(void **state)
{
    int *sv = *state;
    json_object *got = NULL;

    /* an empty frame is not a JSON object: refused, never an empty success */
    write_header(sv[0], 0);
    assert_int_not_equal(pc_frame_read(sv[1], pc_now_ms() + 2000, &got), PC_OK);
    assert_null(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_wire_format, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_oversize_header, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_oversize_write, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_max_size_accepted, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_truncated_then_close, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_truncated_header_then_close, setup_pair,
                                        teardown_pair),
        cmocka_unit_test_setup_teardown(test_peer_closed_write, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_timeout, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_write_timeout, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_not_an_object, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_zero_length, setup_pair, teardown_pair),
    };
    return cmocka_run_group_tests_name("frame", tests, NULL, NULL);
}
