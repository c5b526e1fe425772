/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "api_held.h"
#include "pc_time.h"
#include <stdlib.h>
#include <string.h>

int api_held_init(struct api_held *h, struct cp_call *c)
{
    if (!(h->hold = cp_defer_hold(c)))
        return -1;
    h->id = c->id;
    memcpy(h->source, c->source, sizeof h->source);
    h->body = c->body;
    c->body = NULL;
    h->t0 = pc_now_ms();
    return 0;
}

void api_held_answer(struct api_held *h, struct cp_resp *r)
{
    cp_defer_answer(h->hold, r);
    h->hold = NULL;
    json_object_put(h->body);
    h->body = NULL;
}

struct cp_resp *api_held_resp(void)
{
    return calloc(1, sizeof(struct cp_resp));
}
