/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "pc_frame.h"
#include "pc_agent_proto.h"
#include "pc_err.h"
#include "pc_json.h"
#include "pc_mem.h"
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int write_all(int fd, const unsigned char *p, size_t n, int64_t deadline_ms)
{
    while (n > 0) {
        ssize_t w;
        int rc = pc_agent_wait(fd, POLLOUT, deadline_ms);
        if (rc != PC_OK)
            return rc;
        w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (w <= 0)
            return PC_ERR_IO;
        p += w;
        n -= (size_t)w;
    }
    return PC_OK;
}

static int read_all(int fd, unsigned char *p, size_t n, int64_t deadline_ms)
{
    while (n > 0) {
        ssize_t r;
        int rc = pc_agent_wait(fd, POLLIN, deadline_ms);
        if (rc != PC_OK)
            return rc;
        r = recv(fd, p, n, MSG_DONTWAIT);
        if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
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
    size_t n = strlen(text);
    unsigned char hdr[4];
    int rc;

    if (n > PC_FRAME_MAX)
        return PC_ERR_TOOBIG;
    hdr[0] = (unsigned char)(n >> 24);
    hdr[1] = (unsigned char)(n >> 16);
    hdr[2] = (unsigned char)(n >> 8);
    hdr[3] = (unsigned char)n;
    rc = write_all(fd, hdr, 4, deadline_ms);
    if (rc == PC_OK)
        rc = write_all(fd, (const unsigned char *)text, n, deadline_ms);
    return rc;
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
