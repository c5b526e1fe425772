/* SPDX-License-Identifier: BSD-2-Clause */
/* Connecting to the agent's socket within a deadline (see pc_agent_proto.h). */
#include "config.h"
#include "pc_agent_proto.h"
#include "pc_err.h"
#include "pc_time.h"
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int pc_agent_wait(int fd, short events, int64_t deadline_ms)
{
    for (;;) {
        struct pollfd p = { .fd = fd, .events = events };
        int64_t left = deadline_ms - pc_now_ms();
        int r;

        if (left <= 0)
            return PC_ERR_TIMEOUT;
        r = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return PC_ERR_IO;
        if (r > 0)
            return (p.revents & (events | POLLHUP | POLLERR)) ? PC_OK : PC_ERR_IO;
    }
}

int pc_agent_connect(const char *path, int64_t deadline_ms, int *fd)
{
    struct sockaddr_un sa;
    size_t n = strlen(path);
    int s, rc;

    *fd = -1;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (n >= sizeof sa.sun_path)
        return PC_ERR_INVAL;
    memcpy(sa.sun_path, path, n + 1);
    s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0)
        return PC_ERR_NOMEM;
    for (;;) {
        if (connect(s, (struct sockaddr *)&sa, sizeof sa) == 0) {
            rc = PC_OK;
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno == EINPROGRESS) { /* not usual for AF_UNIX, but bounded anyway */
            int err = 0;
            socklen_t len = sizeof err;
            rc = pc_agent_wait(s, POLLOUT, deadline_ms) == PC_OK &&
                         getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0
                     ? PC_OK
                     : PC_ERR_TIMEOUT;
        } else if (errno == EAGAIN) { /* backlog full: retry briefly, within the deadline */
            struct timespec ts = { 0, PC_AGENT_RETRY_MS * 1000L * 1000L };
            if (pc_now_ms() + PC_AGENT_RETRY_MS < deadline_ms) {
                nanosleep(&ts, NULL);
                continue;
            }
            rc = PC_ERR_STATE; /* alive, but its backlog stays full: capacity, not absence */
        } else if (errno == ENOENT) {
            rc = PC_ERR_NOTFOUND;
        } else if (errno == ECONNREFUSED) {
            rc = PC_ERR_NET;
        } else {
            rc = PC_ERR_IO;
        }
        break;
    }
    if (rc != PC_OK)
        close(s);
    else
        *fd = s;
    return rc;
}
