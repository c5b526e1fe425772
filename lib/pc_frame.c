/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "pc_frame.h"
#include "pc_agent_proto.h"
#include "pc_err.h"
#include "pc_json.h"
#include "pc_mem.h"
#include "pc_time.h"
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* Both loops try the socket first and poll only when it is not ready (EAGAIN): a frame that
 * can go or is already there costs one system call, not two. The deadline is checked before
 * every attempt, as pc_agent_wait checks it before every poll. */

/* Sends the two parts (header, body) as one sendmsg where the socket takes them: the peer
 * wakes once per frame instead of once for the header and once for the body. */
static int write_all(int fd, struct iovec *iov, int niov, int64_t deadline_ms)
{
    while (niov > 0) {
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)niov };
        ssize_t w;
        size_t left;

        if (pc_now_ms() >= deadline_ms)
            return PC_ERR_TIMEOUT;
        w = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = pc_agent_wait(fd, POLLOUT, deadline_ms);
            if (rc != PC_OK)
                return rc;
            continue;
        }
        if (w <= 0)
            return PC_ERR_IO;
        for (left = (size_t)w; niov > 0 && left >= iov->iov_len; iov++, niov--)
            left -= iov->iov_len;
        if (niov > 0) {
            iov->iov_base = (unsigned char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return PC_OK;
}

static int read_all(int fd, unsigned char *p, size_t n, int64_t deadline_ms)
{
    while (n > 0) {
        ssize_t r;

        if (pc_now_ms() >= deadline_ms)
            return PC_ERR_TIMEOUT;
        r = recv(fd, p, n, MSG_DONTWAIT);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = pc_agent_wait(fd, POLLIN, deadline_ms);
            if (rc != PC_OK)
                return rc;
            continue;
        }
        if (r <= 0)
            return PC_ERR_IO;
        p += r;
        n -= (size_t)r;
    }
    return PC_OK;
}

int pc_frame_write(int fd, json_object *msg, int64_t deadline_ms)
{
    const char *text = json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN);
    size_t n = text ? strlen(text) : 0;
    unsigned char hdr[4];
    struct iovec iov[2];

    if (!text) /* json-c out of memory */
        return PC_ERR_NOMEM;
    if (n > PC_FRAME_MAX)
        return PC_ERR_TOOBIG;
    hdr[0] = (unsigned char)(n >> 24);
    hdr[1] = (unsigned char)(n >> 16);
    hdr[2] = (unsigned char)(n >> 8);
    hdr[3] = (unsigned char)n;
    iov[0] = (struct iovec){ .iov_base = hdr, .iov_len = 4 };
    iov[1] = (struct iovec){ .iov_base = (void *)(uintptr_t)text, .iov_len = n };
    return write_all(fd, iov, n ? 2 : 1, deadline_ms);
}

int pc_frame_read(int fd, int64_t deadline_ms, json_object **msg)
{
    unsigned char hdr[4];
    unsigned char *buf;
    size_t n;
    int rc;

    *msg = NULL;
    if ((rc = read_all(fd, hdr, 4, deadline_ms)) != PC_OK)
        return rc;
    n = ((size_t)hdr[0] << 24) | ((size_t)hdr[1] << 16) | ((size_t)hdr[2] << 8) | hdr[3];
    if (n == 0 || n > PC_FRAME_MAX)
        return PC_ERR_TOOBIG;
    buf = malloc(n);
    if (!buf)
        return PC_ERR_NOMEM;
    rc = read_all(fd, buf, n, deadline_ms);
    if (rc == PC_OK)
        rc = pc_json_parse_object((const char *)buf, n, msg, NULL) == PC_OK ? PC_OK : PC_ERR_PARSE;
    pc_free_secret(buf, n);
    return rc;
}
