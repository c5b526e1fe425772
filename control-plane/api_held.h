/* SPDX-License-Identifier: BSD-2-Clause */
/* A request answered later from another thread without a pool thread waiting for it: the
 * login endpoints queue their write with a continuation (cp_store_write_then) and the store's
 * writer answers them after the commit. What such a request keeps until then: its connection
 * held (cp_defer_hold), who sent it, and its body, into which its parsed fields point. */
#ifndef API_HELD_H
#define API_HELD_H
#include "cp_defer.h"
#include "cp_request.h"
#include <stdint.h>

struct api_held {
    struct cp_defer_hold *hold;
    struct cp_identity id;
    char source[sizeof((struct cp_call *)0)->source];
    json_object *body; /* taken from the call: the fields parsed from it stay valid */
    int64_t t0;        /* when the call was held (ms), for the latency metrics */
};

/* Holds c: its connection suspended, its body taken over (c->body is NULL after). 0, or -1
 * when it cannot be held (stopping, out of memory): the handler answers now, on its thread. */
int api_held_init(struct api_held *h, struct cp_call *c);
/* Sends the held call's reply (r on the heap, NULL: out of memory, answered 500) and releases
 * its body; h itself is the caller's to free. Exactly once per held call, from any thread. */
void api_held_answer(struct api_held *h, struct cp_resp *r);
/* A reply on the heap for api_held_answer (NULL when out of memory). */
struct cp_resp *api_held_resp(void);

#endif
