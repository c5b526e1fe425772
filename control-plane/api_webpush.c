/* SPDX-License-Identifier: BSD-2-Clause */
/* /v1/webpush: the VAPID public key (anyone) and a session's own push subscriptions. The web
 * app (/app/, its cookie session) calls the same store functions (cp_webpush.h). */
#include "config.h"
#include "api.h"
#include "api_web.h"
#include "cp_webpush.h"
#include "pc_config.h"
#include "pc_err.h"
#include "pc_webpush.h"
#include <string.h>

void api_webpush_vapid_key(struct cp_call *c, struct cp_resp *r)
{
    json_object *o = json_object_new_object();
    (void)c;
    json_object_object_add(o, "public_key", json_object_new_string(cp_webpush_public_key()));
    cp_resp_json(r, 200, o);
}

/* Body: PushSubscription.toJSON(): {"endpoint", "keys": {"p256dh", "auth"}} (an
 * "expirationTime" as the browser sends it is accepted and ignored). For user: the CLI session's
 * or the web app's cookie session's. */
static void subscribe_as(struct cp_call *c, struct cp_resp *r, const char *user)
{
    static const char *const fields[] = { "endpoint", "keys", "expirationTime", NULL };
    static const char *const key_fields[] = { "p256dh", "auth", NULL };
    const char *endpoint = NULL, *p256dh = NULL, *auth = NULL, *bad = NULL;
    struct pc_jerr e = { 0 };
    json_object *keys = NULL, *out = NULL;
    char msg[128];
    int rc;

    if (cp_body_check(c, r, fields))
        return;
    if (!json_object_object_get_ex(c->body, "keys", &keys) ||
        !json_object_is_type(keys, json_type_object)) {
        cp_resp_error(r, 400, "bad_field", "field 'keys' must be an object {p256dh, auth}");
        return;
    }
    if (pc_json_only_fields(keys, key_fields, &e) != PC_OK ||
        pc_json_get_str(c->body, "endpoint", 1, PC_WEBPUSH_ENDPOINT_MAX, &endpoint, &e) != PC_OK ||
        pc_json_get_str(keys, "p256dh", 1, 100, &p256dh, &e) != PC_OK ||
        pc_json_get_str(keys, "auth", 1, 40, &auth, &e) != PC_OK) {
        cp_resp_jerr(r, &e);
        return;
    }
    rc = cp_webpush_subscribe(user, c->source, endpoint, p256dh, auth, &bad, &out);
    if (rc == PC_ERR_INVAL && bad) {
        snprintf(msg, sizeof msg, "field '%s' is not %s", bad,
                 strcmp(bad, "endpoint") == 0 ? "an https:// push endpoint"
                 : strcmp(bad, "p256dh") == 0 ? "a base64url P-256 public key (65 bytes)"
                                              : "a base64url 16-byte secret");
        cp_resp_error(r, 400, "bad_field", msg);
    } else if (rc == PC_ERR_TOOBIG) {
        cp_resp_error(r, 409, "too_many",
                      "this user has the most push subscriptions allowed; delete one first");
    } else if (rc != PC_OK) {
        cp_resp_from_err(r, rc, "user");
    } else {
        cp_resp_json(r, 201, out);
    }
}

static void list_as(struct cp_call *c, struct cp_resp *r, const char *user)
{
    json_object *out = NULL;
    int rc = cp_webpush_list(user, &out);
    (void)c;
    if (rc != PC_OK)
        cp_resp_from_err(r, rc, "subscriptions");
    else
        cp_resp_json(r, 200, out);
}

/* c->seg[2] is the id in both /v1/webpush/subscriptions/ID and /app/api/webpush/subscriptions/ID. */
static void unsubscribe_as(struct cp_call *c, struct cp_resp *r, const char *user)
{
    uint64_t id = 0;
    json_object *o;
    int rc;

    if (pc_parse_uint(c->seg[2], 1, UINT64_C(1) << 62, &id) != PC_OK) {
        cp_resp_error(r, 404, "not_found", "subscription not found");
        return;
    }
    if ((rc = cp_webpush_unsubscribe(user, c->source, (int64_t)id)) != PC_OK) {
        cp_resp_from_err(r, rc, "subscription");
        return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "deleted", json_object_new_int64((int64_t)id));
    cp_resp_json(r, 200, o);
}

void api_webpush_subscribe(struct cp_call *c, struct cp_resp *r)
{
    subscribe_as(c, r, c->id.user);
}

void api_webpush_list(struct cp_call *c, struct cp_resp *r)
{
    list_as(c, r, c->id.user);
}

void api_webpush_unsubscribe(struct cp_call *c, struct cp_resp *r)
{
    unsubscribe_as(c, r, c->id.user);
}

/* The web app (cp_web.c's routes, the cookie session's user in w->user; Origin checked there). */
void api_web_webpush_key(struct cp_call *c, struct cp_resp *r, struct cp_web_ctx *w)
{
    (void)w;
    api_webpush_vapid_key(c, r);
}

void api_web_webpush_list(struct cp_call *c, struct cp_resp *r, struct cp_web_ctx *w)
{
    list_as(c, r, w->user);
}

void api_web_webpush_subscribe(struct cp_call *c, struct cp_resp *r, struct cp_web_ctx *w)
{
    subscribe_as(c, r, w->user);
}

void api_web_webpush_unsubscribe(struct cp_call *c, struct cp_resp *r, struct cp_web_ctx *w)
{
    unsubscribe_as(c, r, w->user);
}
