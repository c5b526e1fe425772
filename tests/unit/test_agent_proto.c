/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests for lib/pc_agent_proto: the agent protocol's names, and connecting to a unix
 * socket before a deadline (nothing there, nobody listening, a listener, a full backlog). */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "pc_agent_proto.h"
#include "pc_err.h"
#include "pc_frame.h"
#include "pc_time.h"

static char dir[64];
static char path[128];

static int setup_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/pc-agent-proto-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/agent.sock", dir);
    return 0;
}

static int teardown_dir(void **state)
{
    (void)state;
    unlink(path);
    rmdir(dir);
    return 0;
}

/* A unix socket bound to path; listening with backlog when backlog >= 0. */
static int bound(int backlog)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    unlink(path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    if (backlog >= 0)
        assert_int_equal(listen(fd, backlog), 0);
    return fd;
}

static void test_default_socket_path(void **state)
{
    struct sockaddr_un sa;
    (void)state;
    assert_true(strlen(PC_AGENT_SOCKET_DEFAULT) < sizeof sa.sun_path);
    assert_int_equal(strncmp(PC_AGENT_SOCKET_DEFAULT, PC_RUNSTATEDIR "/",
                             strlen(PC_RUNSTATEDIR) + 1),
                     0);
    assert_string_equal(PC_AGENT_SOCKET_DEFAULT + strlen(PC_RUNSTATEDIR), "/agent.sock");
}

static void test_names_distinct_and_plain(void **state)
{
    static const char *const names[] = {
        PC_AGENT_E_UNREACHABLE,  PC_AGENT_E_TIMEOUT,      PC_AGENT_E_GARBAGE,
        PC_AGENT_E_SERVER,       PC_AGENT_E_BUSY,         PC_AGENT_E_TLS,
        PC_AGENT_E_NOT_ENROLLED, PC_AGENT_E_REJECTED,     PC_AGENT_E_BAD_REQUEST,
        PC_AGENT_E_FORBIDDEN,    PC_AGENT_E_INTERNAL,     PC_AGENT_E_CONFIG,
        PC_AGENT_E_PUSH_BUSY,    PC_AGENT_E_RATE_LIMITED,
    };
    static const char *const ops[] = {
        PC_AGENT_OP_BEGIN,     PC_AGENT_OP_TOTP,       PC_AGENT_OP_PUSH,
        PC_AGENT_OP_PUSH_WAIT, PC_AGENT_OP_PRINCIPALS, PC_AGENT_OP_STATUS,
    };
    size_t n = sizeof names / sizeof names[0], m = sizeof ops / sizeof ops[0];
    (void)state;
    for (size_t i = 0; i < n; i++) {
        assert_true(strlen(names[i]) > 0 &&
                    strspn(names[i], "abcdefghijklmnopqrstuvwxyz_") == strlen(names[i]));
        for (size_t j = i + 1; j < n; j++)
            assert_string_not_equal(names[i], names[j]);
    }
    for (size_t i = 0; i < m; i++) {
        assert_true(strlen(ops[i]) > 0 && strlen(ops[i]) <= 16); /* the agent reads at most 16 */
        for (size_t j = i + 1; j < m; j++)
            assert_string_not_equal(ops[i], ops[j]);
    }
}

static void test_connect_nothing_there(void **state)
{
    int fd = 123;
    int64_t t0 = pc_now_ms();
    (void)state;
    unlink(path);
    assert_int_equal(pc_agent_connect(path, t0 + 2000, &fd), PC_ERR_NOTFOUND);
    assert_int_equal(fd, -1);
    assert_true(pc_now_ms() - t0 < 1000); /* at once, not at the deadline */
}

static void test_connect_nobody_listening(void **state)
{
    int fd = 123, s = bound(-1);
    (void)state;
    assert_int_equal(pc_agent_connect(path, pc_now_ms() + 2000, &fd), PC_ERR_NET);
    assert_int_equal(fd, -1);
    close(s);
}

static void test_connect_path_too_long(void **state)
{
    char longp[200];
    int fd = 123;
    (void)state;
    memset(longp, 'a', sizeof longp - 1);
    longp[0] = '/';
    longp[sizeof longp - 1] = '\0';
    assert_int_equal(pc_agent_connect(longp, pc_now_ms() + 2000, &fd), PC_ERR_INVAL);
    assert_int_equal(fd, -1);
}

/* A listener: connected, non-blocking and close-on-exec, and the constants go through the
 * frame and come back as the same strings. */
static void test_connect_listening_round_trip(void **state)
{
    int fd = -1, peer, s = bound(4);
    json_object *req = json_object_new_object(), *got = NULL, *v = NULL;
    int64_t deadline = pc_now_ms() + 2000;
    (void)state;

    assert_int_equal(pc_agent_connect(path, deadline, &fd), PC_OK);
    assert_true(fd >= 0);
    assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    peer = accept(s, NULL, NULL);
    assert_true(peer >= 0);
    assert_int_equal(pc_agent_wait(fd, POLLOUT, deadline), PC_OK);
    json_object_object_add(req, "op", json_object_new_string(PC_AGENT_OP_PUSH_WAIT));
    json_object_object_add(req, "error", json_object_new_string(PC_AGENT_E_PUSH_BUSY));
    assert_int_equal(pc_frame_write(fd, req, deadline), PC_OK);
    assert_int_equal(pc_frame_read(peer, deadline, &got), PC_OK);
    assert_true(json_object_object_get_ex(got, "op", &v));
    assert_string_equal(json_object_get_string(v), "push_wait");
    assert_true(json_object_object_get_ex(got, "error", &v));
    assert_string_equal(json_object_get_string(v), "push_busy");
    json_object_put(got);
    json_object_put(req);
    close(peer);
    close(fd);
    close(s);
}

/* A listener that never accepts: once its backlog is full, connecting waits for room until
 * the deadline and then reports the agent busy (PC_ERR_STATE), not absent. */
static void test_connect_backlog_full(void **state)
{
    int s = bound(0), fds[16], n = 0, rc = PC_OK;
    int64_t t0 = 0;
    (void)state;

    while (n < 16) {
        int fd = -1;
        t0 = pc_now_ms();
        rc = pc_agent_connect(path, t0 + 300, &fd);
        if (rc != PC_OK)
            break;
        fds[n++] = fd;
    }
    assert_int_equal(rc, PC_ERR_STATE);
    assert_true(pc_now_ms() - t0 >= 300 - PC_AGENT_RETRY_MS); /* it did wait */
    assert_true(pc_now_ms() - t0 < 2000);                     /* and not past the deadline */
    while (n > 0)
        close(fds[--n]);
    close(s);
}

static void test_wait_deadline(void **state)
{
    int sv[2];
    int64_t t0 = pc_now_ms();
    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(pc_agent_wait(sv[0], POLLOUT, t0 + 1000), PC_OK);
    assert_int_equal(pc_agent_wait(sv[0], POLLIN, t0 - 1), PC_ERR_TIMEOUT); /* passed already */
    assert_int_equal(pc_agent_wait(sv[0], POLLIN, pc_now_ms() + 100), PC_ERR_TIMEOUT);
    assert_true(pc_now_ms() - t0 >= 100);
    close(sv[1]); /* hung up: ready, and the read tells */
    assert_int_equal(pc_agent_wait(sv[0], POLLIN, pc_now_ms() + 1000), PC_OK);
    close(sv[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_socket_path),
        cmocka_unit_test(test_names_distinct_and_plain),
        cmocka_unit_test(test_connect_nothing_there),
        cmocka_unit_test(test_connect_nobody_listening),
        cmocka_unit_test(test_connect_path_too_long),
        cmocka_unit_test(test_connect_listening_round_trip),
        cmocka_unit_test(test_connect_backlog_full),
        cmocka_unit_test(test_wait_deadline),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
