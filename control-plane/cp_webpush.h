/* SPDX-License-Identifier: BSD-2-Clause */
/* Web Push (RFC 8030/8291/8292): the VAPID key, the users' push subscriptions and delivery.
 *
 * The VAPID key (P-256, ES256) is made once and kept in the database sealed with the master key
 * (secrets.key, lib/pc_secretbox), like the TOTP seeds, so every instance on one database signs
 * with the same key. Subscriptions belong to a user (deleted with them); the store functions
 * below are what both the session endpoints (/v1/webpush/subscriptions, api_webpush.c) and the
 * web app (its cookie session) call. When a push is created, cp_webpush_push_created queues one
 * job per push on a bounded queue; one worker thread reads that user's subscriptions and POSTs
 * an encrypted notice to each (TTL, Urgency: high, Content-Encoding: aes128gcm, VAPID). A full
 * queue drops the notice and counts it; nothing on a login's path waits for a push service.
 * Subscriptions answered with 404 or 410 are removed. The notice never holds the match number:
 * the approver must read it off the login prompt. */
#ifndef CP_WEBPUSH_H
#define CP_WEBPUSH_H
#include "pc_secretbox.h"
#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#define CP_WEBPUSH_MAX_PER_USER 10 /* subscriptions per user (browsers, phones) */
#define CP_WEBPUSH_QUEUE_MAX 256   /* pushes waiting for the worker */

/* Loads the VAPID key (the database must be open), making it on a first start, and starts the
 * worker. contact: the VAPID sub ("" = none), checked by the caller. */
int cp_webpush_start(const unsigned char master[PC_SECRETBOX_KEY_BYTES], const char *contact,
                     char *err, size_t errsz);
void cp_webpush_stop(void);
/* The web app's origin (--web-origin, "https://approve.example.net"): notices then carry
 * "url": ORIGIN "/app/" for the service worker to open. NULL or "" leaves it out. */
void cp_webpush_set_app_origin(const char *origin);
/* The applicationServerKey: the VAPID public key, base64url (87 characters). */
const char *cp_webpush_public_key(void);
/* Notices dropped because the queue was full, since start. */
uint64_t cp_webpush_dropped(void);

/* Adds (or, for an endpoint the user already has, updates the keys of) a subscription. endpoint:
 * pc_webpush_endpoint_valid; p256dh: base64url of a P-256 point; auth: base64url of 16 bytes.
 * PC_ERR_INVAL with *bad_field set ("endpoint", "p256dh", "auth") on hostile input;
 * PC_ERR_TOOBIG when the user has CP_WEBPUSH_MAX_PER_USER already; PC_ERR_NOTFOUND for an
 * unknown or disabled user. *out: {"id","endpoint","created_at"}. Audited webpush.subscribe. */
int cp_webpush_subscribe(const char *user, const char *source, const char *endpoint,
                         const char *p256dh, const char *auth, const char **bad_field,
                         json_object **out);
/* Removes the user's subscription id; PC_ERR_NOTFOUND if it is not theirs. Audited. */
int cp_webpush_unsubscribe(const char *user, const char *source, int64_t id);
/* {"subscriptions": [{"id","endpoint","created_at"}]} of the user. */
int cp_webpush_list(const char *user, json_object **out);

/* After the commit of a new push: queues its notice (never blocks). host NULL or "": a
 * `portcullis login` push. */
void cp_webpush_push_created(const char *push_id, const char *user, const char *host,
                             const char *rhost, const char *service, int64_t expires_at);

#endif
