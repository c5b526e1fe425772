/* SPDX-License-Identifier: BSD-2-Clause */
/* The agent socket's frame reader (lib/pc_frame.c): the input is the byte stream a peer
 * sends (4-byte big-endian length, JSON object, repeated), written into a socketpair whose far
 * end is then closed; frames are read until the reader stops (end of stream or an error). */
#include "config.h"
#include "fuzz.h"
#include "pc_err.h"
#include "pc_frame.h"
#include "pc_time.h"
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int sv[2];
    size_t off = 0;

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        abort();
    /* What fits into the socket buffer without blocking; the rest is cut (the reader then sees
     * a short frame and end of stream, which is one of the cases anyway). */
    while (off < size) {
        ssize_t w = send(sv[1], data + off, size - off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    close(sv[1]);
    for (int i = 0; i < 1000; i++) {
        json_object *msg = NULL;
        int rc = pc_frame_read(sv[0], pc_now_ms() + 5000, &msg);
        if (rc != PC_OK)
            break;
        if (!msg || !json_object_is_type(msg, json_type_object))
            abort(); /* PC_OK promises an object */
        json_object_put(msg);
    }
    close(sv[0]);
    return 0;
}
