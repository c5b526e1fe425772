/* SPDX-License-Identifier: BSD-2-Clause */
/* libcurl for portcullisd, loaded on first use (cp_webhook.h: cp_curl_global_init). Only the
 * webhook and Web Push send HTTP, and most control planes configure neither; linked, libcurl
 * and its dependency tree (libssh2, nghttp2, librtmp, libpsl, libidn2, brotli, zstd …) were
 * mapped and relocated at every start, ~0.7 MB of an idle daemon's RSS. So portcullisd is
 * not linked with it: this file defines the libcurl functions that cp_webhook.c and
 * cp_webpush.c call, each forwarding to the real one that cp_curl_global_init found with
 * dlopen/dlsym. Every path that uses libcurl calls cp_curl_global_init first and stops if it
 * failed; the forwarders still answer an error (never crash) if called without it. */
#include "config.h"
#include "cp_webhook.h"
#include "pc_err.h"
#include "pc_log.h"
#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>

#define CP_LIBCURL "libcurl.so.4" /* the soname portcullisd is built against */

static struct {
    CURLcode (*global_init)(long);
    void (*global_cleanup)(void);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *);
    void (*easy_reset)(CURL *);
    CURLcode (*easy_perform)(CURL *);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    const char *(*easy_strerror)(CURLcode);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
} fn;
static int loaded;
static void *lib; /* the dlopen handle: kept, never closed, until the process ends */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_rc = PC_ERR_NOMEM; /* until curl_init_once ran */

static int load(void)
{
    void *h = dlopen(CP_LIBCURL, RTLD_NOW | RTLD_LOCAL);
    const char *why;

    if (!h) {
        why = dlerror();
        pc_log(PC_LOG_ERR, "event=curl_init_failed library=%s error=\"%s\"", CP_LIBCURL,
               why ? why : "?");
        return PC_ERR_NOTFOUND;
    }
    /* POSIX: a function pointer and void * convert through dlsym's result */
#define SYM(field, name) *(void **)(&fn.field) = dlsym(h, name)
    SYM(global_init, "curl_global_init");
    SYM(global_cleanup, "curl_global_cleanup");
    SYM(easy_init, "curl_easy_init");
    SYM(easy_cleanup, "curl_easy_cleanup");
    SYM(easy_reset, "curl_easy_reset");
    SYM(easy_perform, "curl_easy_perform");
    SYM(easy_setopt, "curl_easy_setopt");
    SYM(easy_getinfo, "curl_easy_getinfo");
    SYM(easy_strerror, "curl_easy_strerror");
    SYM(slist_append, "curl_slist_append");
    SYM(slist_free_all, "curl_slist_free_all");
#undef SYM
    if (!fn.global_init || !fn.global_cleanup || !fn.easy_init || !fn.easy_cleanup ||
        !fn.easy_reset || !fn.easy_perform || !fn.easy_setopt || !fn.easy_getinfo ||
        !fn.easy_strerror || !fn.slist_append || !fn.slist_free_all) {
        pc_log(PC_LOG_ERR, "event=curl_init_failed library=%s error=\"a function is missing\"",
               CP_LIBCURL);
        dlclose(h);
        return PC_ERR_NOTFOUND;
    }
    lib = h;
    loaded = 1;
    return PC_OK;
}

/* libcurl 7.84 and later (7.85 is the least this builds with: CURLOPT_PROTOCOLS_STR) make
 * curl_global_init thread-safe; pthread_once also keeps it to one call. */
static void curl_init_once(void)
{
    curl_rc = load();
    if (curl_rc == PC_OK)
        curl_rc = fn.global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? PC_OK : PC_ERR_NOMEM;
    if (curl_rc != PC_OK)
        pc_log(PC_LOG_ERR, "event=curl_init_failed detail=\"no webhook or Web Push is sent\"");
}

int cp_curl_global_init(void)
{
    pthread_once(&curl_once, curl_init_once);
    return curl_rc;
}

void cp_curl_global_cleanup(void)
{
    /* called after the threads that used libcurl were joined: curl_rc is theirs to read */
    if (curl_rc == PC_OK)
        fn.global_cleanup();
}

/* ---- the forwarders: libcurl's own names and prototypes (curl/curl.h) ---- */

CURL *curl_easy_init(void)
{
    return loaded ? fn.easy_init() : NULL;
}

void curl_easy_cleanup(CURL *c)
{
    if (loaded)
        fn.easy_cleanup(c);
}

void curl_easy_reset(CURL *c)
{
    if (loaded)
        fn.easy_reset(c);
}

CURLcode curl_easy_perform(CURL *c)
{
    return loaded ? fn.easy_perform(c) : CURLE_FAILED_INIT;
}

/* One argument follows the option; its type is given by the option's number range, as
 * curl/curl.h defines them (CURLOPTTYPE_*). */
CURLcode(curl_easy_setopt)(CURL *c, CURLoption opt, ...) /* (): curl.h makes it a macro */
{
    va_list ap;
    CURLcode rc;

    if (!loaded)
        return CURLE_FAILED_INIT;
    va_start(ap, opt);
    if (opt < CURLOPTTYPE_OBJECTPOINT)
        rc = fn.easy_setopt(c, opt, va_arg(ap, long));
    else if (opt >= CURLOPTTYPE_OFF_T && opt < CURLOPTTYPE_BLOB)
        rc = fn.easy_setopt(c, opt, va_arg(ap, curl_off_t));
    else /* object, string, list, callback data, function pointers, blobs */
        rc = fn.easy_setopt(c, opt, va_arg(ap, void *));
    va_end(ap);
    return rc;
}

CURLcode(curl_easy_getinfo)(CURL *c, CURLINFO info, ...)
{
    va_list ap;
    CURLcode rc;

    if (!loaded)
        return CURLE_FAILED_INIT;
    va_start(ap, info);
    rc = fn.easy_getinfo(c, info, va_arg(ap, void *)); /* always a pointer to the result */
    va_end(ap);
    return rc;
}

const char *curl_easy_strerror(CURLcode rc)
{
    return loaded ? fn.easy_strerror(rc) : "libcurl is not loaded";
}

struct curl_slist *curl_slist_append(struct curl_slist *l, const char *s)
{
    return loaded ? fn.slist_append(l, s) : NULL;
}

void curl_slist_free_all(struct curl_slist *l)
{
    if (loaded)
        fn.slist_free_all(l);
}
