/* SPDX-License-Identifier: BSD-2-Clause */
/* The approval web app's listener (--web-listen): a second libmicrohttpd daemon with the
 * organisation's certificate (--web-cert/--web-key, reloaded on SIGHUP). It serves /app/ (the
 * static app compiled in) and /app/api/ (api_web_*.c) and nothing else; the /v1 API stays on the
 * pinned listener. Every answer carries a strict Content-Security-Policy and no-framing headers;
 * every POST must carry Origin equal to --web-origin. */
#ifndef CP_WEB_H
#define CP_WEB_H
#include "cp_request.h"
#include "cp_settings.h"
#include <stddef.h>

#define CP_WEB_COOKIE "__Host-pcweb"
#define CP_WEB_SESSION_TTL 900  /* seconds: a web session is short */
#define CP_WEB_CONNECTIONS 1024 /* the web listener's connections in all */

/* What the web dispatcher knows about the caller, and what a handler asks it to send. */
struct cp_web_ctx {
    char user[64];         /* the signed-in user ("" without a valid session cookie) */
    char session_hash[65]; /* SHA-256 hex of the cookie's token */
    char set_cookie[256];  /* a Set-Cookie header to send, if not empty */
};

int cp_web_start(const struct cp_settings *s, char *err, size_t errsz);
/* SIGHUP: reads --web-cert/--web-key again and serves them to new connections; on any error
 * keeps the running certificate (and logs why). */
void cp_web_reload(void);
void cp_web_stop(void);

#endif
