/* SPDX-License-Identifier: BSD-2-Clause */
/* Framing for the agent's unix socket: each message is a 4-byte big-endian length followed by
 * that many bytes of one JSON object. Both directions, every read and write bounded by a
 * deadline (pc_now_ms clock). Shared by pam_portcullis.so and portcullis-agent.
 *
 * The conversation (see docs/AGENT-PROTOCOL.md): PAM sends one request object, the agent sends
 * one reply object; a connection may carry several request/reply pairs (one login). */
#ifndef PC_FRAME_H
#define PC_FRAME_H
#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#define PC_FRAME_MAX (64 * 1024)

/* PC_OK, PC_ERR_TIMEOUT, PC_ERR_IO (peer closed / error), PC_ERR_TOOBIG. */
int pc_frame_write(int fd, json_object *msg, int64_t deadline_ms);
/* PC_OK with *msg (an object; caller puts), PC_ERR_TIMEOUT, PC_ERR_IO, PC_ERR_TOOBIG,
 * PC_ERR_PARSE (not a JSON object). The receive buffer is wiped: it may hold a code. */
int pc_frame_read(int fd, int64_t deadline_ms, json_object **msg);

#endif
