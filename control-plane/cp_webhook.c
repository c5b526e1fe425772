/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "cp_webhook.h"
#include "pc_err.h"
#include "pc_log.h"
#include <curl/curl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define QUEUE_MAX 256

static char *hook_url;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready = PTHREAD_COND_INITIALIZER;
static char *queue[QUEUE_MAX];
static unsigned q_head, q_len;
static int stopping, started;
static int slack_format; /* --webhook-format slack */
static pthread_t worker;
static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

static void post(CURL *c, const char *body)
{
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    long status = 0;
    CURLcode rc;

    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, hook_url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK || status < 200 || status >= 300)
        pc_log(PC_LOG_WARN, "event=webhook_failed status=%ld error=\"%s\"", status,
               rc != CURLE_OK ? curl_easy_strerror(rc) : "non-2xx reply");
    curl_slist_free_all(h);
}

static void *run(void *arg)
{
    CURL *c = cp_curl_global_init() == PC_OK ? curl_easy_init() : NULL;
    (void)arg;
    pthread_mutex_lock(&lock);
    for (;;) {
        char *body;
        while (q_len == 0 && !stopping)
            pthread_cond_wait(&ready, &lock);
        if (q_len == 0)
            break;
        body = queue[q_head];
        q_head = (q_head + 1) % QUEUE_MAX;
        q_len--;
        pthread_mutex_unlock(&lock);
        if (c)
            post(c, body);
        free(body);
        pthread_mutex_lock(&lock);
    }
    pthread_mutex_unlock(&lock);
    curl_easy_cleanup(c);
    return NULL;
}

int cp_webhook_start(const char *url)
{
    if (!url || !*url)
        return PC_OK;
    hook_url = strdup(url);
    if (!hook_url || pthread_create(&worker, NULL, run, NULL) != 0)
        return PC_ERR_NOMEM;
    started = 1;
    return PC_OK;
}

void cp_webhook_stop(void)
{
    if (!started)
        return;
    pthread_mutex_lock(&lock);
    stopping = 1;
    pthread_cond_broadcast(&ready);
    pthread_mutex_unlock(&lock);
    pthread_join(worker, NULL);
    started = 0;
    free(hook_url);
    hook_url = NULL;
}

/* Queues o (taken) as the body: as it is, or for Slack as {"text": summary}. */
static void enqueue(json_object *o, const char *summary, const char *what)
{
    char *body;

    if (slack_format) {
        /* Slack reads &, < and > as markup (<!channel> pings everyone): the text people chose
         * (a reason, a name) is escaped as Slack asks. */
        char esc[5 * 1024 + 8];
        size_t n = 0;
        for (const char *p = summary; *p && n + 6 < sizeof esc; p++) {
            const char *rep = *p == '&' ? "&amp;" : *p == '<' ? "&lt;" : *p == '>' ? "&gt;" : NULL;
            if (rep) {
                memcpy(esc + n, rep, strlen(rep));
                n += strlen(rep);
            } else {
                esc[n++] = *p;
            }
        }
        esc[n] = '\0';
        json_object_put(o);
        o = json_object_new_object();
        json_object_object_add(o, "text", json_object_new_string(esc));
    }
    body = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    if (!body)
        return;
    pthread_mutex_lock(&lock);
    if (q_len < QUEUE_MAX) {
        queue[(q_head + q_len) % QUEUE_MAX] = body;
        q_len++;
        body = NULL;
        pthread_cond_signal(&ready);
    }
    pthread_mutex_unlock(&lock);
    if (body) {
        pc_log(PC_LOG_WARN, "event=webhook_dropped reason=queue_full %s", what);
        free(body);
    }
}

void cp_webhook_push_created(const char *push_id, const char *user, const char *host,
                             const char *rhost, const char *service, int64_t expires_at)
{
    json_object *o;
    char summary[768], what[64];

    if (!started)
        return;
    o = json_object_new_object();
    json_object_object_add(o, "event", json_object_new_string("push.created"));
    json_object_object_add(o, "push_id", json_object_new_string(push_id));
    json_object_object_add(o, "user", json_object_new_string(user));
    json_object_object_add(o, "host", json_object_new_string(host));
    json_object_object_add(o, "rhost", json_object_new_string(rhost));
    json_object_object_add(o, "service", json_object_new_string(service));
    json_object_object_add(o, "expires_at", json_object_new_int64(expires_at));
    snprintf(summary, sizeof summary,
             "Portcullis: %.64s is logging in to %.256s (%.64s from %.256s): approve push %s", user,
             host, service, rhost, push_id);
    snprintf(what, sizeof what, "push_id=%.40s", push_id);
    enqueue(o, summary, what);
}

/* ---- access on request --------------------------------------------------------------------- */

void cp_webhook_set_format(int slack)
{
    slack_format = slack;
}

void cp_webhook_request_event(const char *event, const char *request_id, const char *user,
                              const char *account, const char *actor, int64_t ends_at,
                              const char *detail)
{
    json_object *o;
    char summary[1024], what[64];

    if (!started)
        return;
    o = json_object_new_object();
    json_object_object_add(o, "event", json_object_new_string(event));
    json_object_object_add(o, "request_id", json_object_new_string(request_id));
    json_object_object_add(o, "user", json_object_new_string(user));
    json_object_object_add(o, "account", json_object_new_string(account));
    json_object_object_add(o, "actor", json_object_new_string(actor));
    if (ends_at > 0)
        json_object_object_add(o, "ends_at", json_object_new_int64(ends_at));
    if (detail)
        json_object_object_add(o, "detail", json_object_new_string(detail));
    snprintf(summary, sizeof summary,
             "Portcullis %s: %.64s, account %.64s, request %s (by %.80s)%s%.512s", event, user,
             account, request_id, actor, detail ? ": " : "", detail ? detail : "");
    snprintf(what, sizeof what, "request_id=%.40s", request_id);
    enqueue(o, summary, what);
}
