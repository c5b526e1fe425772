/* SPDX-License-Identifier: BSD-2-Clause */
/* GET /v1/setup.sh: the installer (setup-scripts/setup.sh, compiled in as setup_script.h by a
 * Makefile rule) with this server's URL and pin filled in as its defaults.
 *
 * The script holds the lines  PORTCULLIS_URL_DEFAULT=''  and  PORTCULLIS_PIN_DEFAULT=''  ;
 * they are replaced by the server's values. The URL is --public-url, else https:// plus the
 * request's Host header. Both values go inside '…' in a shell script run as root, so they are
 * accepted only when made of characters that need no quoting; otherwise the default stays empty
 * and the script asks for --url. */
#include "config.h"
#include "api.h"
#include "setup_script.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define URL_LINE "PORTCULLIS_URL_DEFAULT=''\n"
#define PIN_LINE "PORTCULLIS_PIN_DEFAULT=''\n"

static int plain(const char *s, const char *allowed, size_t max)
{
    return s && *s && strlen(s) < max && strspn(s, allowed) == strlen(s);
}

/* The URL clients used: --public-url, else https://HOST[:PORT] from the Host header, else "". */
static void public_url(struct cp_call *c, char *buf, size_t bufsz)
{
    const char *host;

    buf[0] = '\0';
    if (cp_rt.settings->public_url[0]) {
        snprintf(buf, bufsz, "%s", cp_rt.settings->public_url);
        return;
    }
    host = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (plain(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]", 200) &&
        host[0] != '-')
        snprintf(buf, bufsz, "https://%s", host);
}

/* Appends n bytes at *out (the buffer was sized for the whole result). */
static void put(char **out, const char *p, size_t n)
{
    memcpy(*out, p, n);
    *out += n;
}

/* Copies text up to the line "NAME=''\n", writes NAME='value'\n instead; returns the rest. */
static const char *fill(char **out, const char *text, const char *line, const char *value)
{
    const char *at = strstr(text, line);
    size_t name = strlen(line) - 3; /* up to and with '=' */

    if (!at)
        return text;
    put(out, text, (size_t)(at - text));
    put(out, line, name);
    put(out, "'", 1);
    put(out, value, strlen(value));
    put(out, "'\n", 2);
    return at + strlen(line);
}

void api_setup_script(struct cp_call *c, struct cp_resp *r)
{
    char url[256];
    const char *pin = cp_rt.pin, *rest;
    size_t len;
    char *body, *out;

    public_url(c, url, sizeof url);
    if (!plain(pin, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/=", 200))
        pin = "";
    len = sizeof pc_setup_script + strlen(url) + strlen(pin);
    if (!(body = malloc(len))) {
        cp_resp_error(r, 500, "internal", "out of memory");
        return;
    }
    out = body;
    rest = fill(&out, pc_setup_script, URL_LINE, url);
    rest = fill(&out, rest, PIN_LINE, pin);
    put(&out, rest, strlen(rest));
    cp_resp_raw(r, 200, "text/x-shellscript; charset=utf-8", (unsigned char *)body,
                (size_t)(out - body));
}
