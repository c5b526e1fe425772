/* SPDX-License-Identifier: BSD-2-Clause */
/* Web Push: the VAPID key and delivery (see cp_webpush.h); subscriptions: cp_webpush_subs.c. */
#include "config.h"
#include "cp_webpush.h"
#include "cp_store.h"
#include "cp_webhook.h" /* cp_curl_global_init */
#include "pc_config.h"
#include "pc_err.h"
#include "pc_log.h"
#include "pc_mem.h"
#include "pc_time.h"
#include "pc_webpush.h"
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VAPID_AD "webpush:vapid"
#define JWT_TTL (12 * 3600) /* RFC 8292 allows up to 24 h */

static unsigned char vapid_priv[PC_WEBPUSH_PRIV_LEN];
static char vapid_pub64[100];
static char contact[PC_WEBPUSH_CONTACT_MAX + 1];
static char app_url[600];

struct job {
    char user[64];
    char *payload; /* JSON, at most PC_WEBPUSH_PLAIN_MAX */
    int64_t expires_at;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready = PTHREAD_COND_INITIALIZER;
static struct job queue[CP_WEBPUSH_QUEUE_MAX];
static unsigned q_head, q_len, q_max = CP_WEBPUSH_QUEUE_MAX;
static uint64_t dropped;
static int stopping, started;
static pthread_t worker;
static char test_ca[512];  /* test builds: PC_TEST_WEBPUSH_CA, the receivers' CA file */
static int allow_loopback; /* test builds with PC_TEST_WEBPUSH_CA: the receiver is local */

/* ---- the VAPID key ------------------------------------------------------------------------ */

/* Reads the sealed key; PC_ERR_NOTFOUND when there is none yet. */
static int vapid_load(cp_conn *db, const unsigned char master[PC_SECRETBOX_KEY_BYTES])
{
    cp_stmt *st = cp_prepare(db, "SELECT sealed FROM webpush_vapid WHERE id = 1");
    unsigned char pub[PC_WEBPUSH_PUB_LEN];
    size_t n = 0;
    int rc;

    if (!st)
        return PC_ERR_STORE;
    rc = cp_step(st);
    if (rc == CP_ROW) {
        const void *blob = cp_col_blob(st, 0);
        int len = cp_col_bytes(st, 0);
        rc = blob && len > 0 ? pc_secretbox_open(master, VAPID_AD, blob, (size_t)len, vapid_priv,
                                                 sizeof vapid_priv, &n)
                             : PC_ERR_CRYPTO;
        if (rc == PC_OK && n != sizeof vapid_priv)
            rc = PC_ERR_CRYPTO;
    } else {
        rc = rc == CP_DONE ? PC_ERR_NOTFOUND : PC_ERR_STORE;
    }
    cp_finalize(st);
    if (rc == PC_OK && (rc = pc_webpush_public(vapid_priv, pub)) == PC_OK)
        rc = pc_b64url_encode(pub, sizeof pub, vapid_pub64, sizeof vapid_pub64);
    if (rc != PC_OK && rc != PC_ERR_NOTFOUND)
        pc_wipe(vapid_priv, sizeof vapid_priv);
    return rc;
}

/* Makes and stores a key; another instance on the same database may win the race (IGNORE). */
static int vapid_create(cp_conn *db, const unsigned char master[PC_SECRETBOX_KEY_BYTES])
{
    unsigned char priv[PC_WEBPUSH_PRIV_LEN], pub[PC_WEBPUSH_PUB_LEN];
    unsigned char sealed[PC_WEBPUSH_PRIV_LEN + PC_SECRETBOX_OVERHEAD];
    char pub64[100];
    size_t sl = 0;
    cp_stmt *st;
    int rc;

    if ((rc = pc_webpush_keygen(priv, pub)) != PC_OK ||
        (rc = pc_secretbox_seal(master, VAPID_AD, priv, sizeof priv, sealed, sizeof sealed, &sl)) !=
            PC_OK ||
        (rc = pc_b64url_encode(pub, sizeof pub, pub64, sizeof pub64)) != PC_OK)
        goto out;
    st = cp_prepare(db, "INSERT INTO webpush_vapid(id, sealed, public_key, created_at)"
                        " VALUES (1, ?, ?, ?) ON CONFLICT DO NOTHING");
    if (!st) {
        rc = PC_ERR_STORE;
        goto out;
    }
    cp_bind_blob(st, 1, sealed, (int)sl);
    cp_bind_text(st, 2, pub64);
    cp_bind_int64(st, 3, pc_now());
    rc = cp_exec_stmt(st);
    if (rc == PC_OK)
        pc_log(PC_LOG_INFO, "event=webpush_vapid_key public_key=%s", pub64);
out:
    pc_wipe(priv, sizeof priv);
    return rc;
}

/* ---- delivery ----------------------------------------------------------------------------- */

struct sub {
    int64_t id;
    char endpoint[PC_WEBPUSH_ENDPOINT_MAX + 1];
    unsigned char p256dh[PC_WEBPUSH_PUB_LEN], auth[PC_WEBPUSH_AUTH_LEN];
};

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

/* 1 for an address no public push service has: loopback, private, link-local, CGNAT,
 * unspecified, multicast, ULA (and IPv4 in any of these mapped into IPv6). */
static int address_internal(const struct sockaddr *sa)
{
    uint32_t a;

    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *v6 = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        const unsigned char *b = v6->s6_addr;
        if (IN6_IS_ADDR_V4MAPPED(v6)) {
            a = (uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 | b[15];
            goto v4;
        }
        if (IN6_IS_ADDR_LOOPBACK(v6))
            return allow_loopback ? 0 : 1;
        return IN6_IS_ADDR_UNSPECIFIED(v6) || IN6_IS_ADDR_LINKLOCAL(v6) ||
               IN6_IS_ADDR_MULTICAST(v6) || IN6_IS_ADDR_SITELOCAL(v6) || (b[0] & 0xfe) == 0xfc;
    }
    if (sa->sa_family != AF_INET)
        return 1;
    a = ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr);
v4:
    if ((a >> 24) == 127)
        return allow_loopback ? 0 : 1;
    return (a >> 24) == 0 || (a >> 24) == 10 || (a >> 16) == 0xa9fe /* 169.254/16 */ ||
           (a >> 20) == 0xac1 /* 172.16/12 */ || (a >> 16) == 0xc0a8 /* 192.168/16 */ ||
           (a >> 22) == 0x191 /* 100.64/10 */ || (a >> 28) >= 0xe /* multicast, reserved */;
}

/* curl's socket opener: refuses internal addresses after name resolution, so a subscription
 * (any session may add one) cannot make portcullisd knock on internal services, also not
 * through a name that resolves to one. */
static curl_socket_t open_checked(void *ud, curlsocktype purpose, struct curl_sockaddr *addr)
{
    int *refused = ud;
    (void)purpose;
    if (address_internal(&addr->addr)) {
        *refused = 1;
        return CURL_SOCKET_BAD;
    }
    return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

static void remove_sub(int64_t id)
{
    cp_conn *db = cp_db();
    cp_stmt *st = db ? cp_prepare(db, "DELETE FROM webpush_subscriptions WHERE id = ?") : NULL;
    if (st) {
        cp_bind_int64(st, 1, id);
        cp_exec_stmt(st);
    }
}

/* One POST. The endpoint's path is a capability: only its origin is ever logged. */
static void send_one(CURL *c, const struct sub *s, const struct job *j)
{
    unsigned char body[PC_WEBPUSH_BODY_MAX];
    char auth_h[PC_WEBPUSH_AUTH_HEADER_MAX + 32], ttl_h[48], origin[PC_WEBPUSH_ENDPOINT_MAX + 1];
    struct curl_slist *h = NULL;
    int64_t now = pc_now(), ttl = j->expires_at > now ? j->expires_at - now : 0;
    size_t blen = 0;
    long status = 0;
    CURLcode cc;
    int rc, refused = 0;

    if (pc_webpush_origin(s->endpoint, origin, sizeof origin) != PC_OK)
        snprintf(origin, sizeof origin, "?");
    memcpy(auth_h, "Authorization: ", 15);
    if ((rc = pc_webpush_encrypt(s->p256dh, s->auth, (const unsigned char *)j->payload,
                                 strlen(j->payload), body, sizeof body, &blen)) != PC_OK ||
        (rc = pc_webpush_vapid_header(vapid_priv, s->endpoint, contact, now, JWT_TTL, auth_h + 15,
                                      sizeof auth_h - 15)) != PC_OK) {
        pc_log(PC_LOG_WARN, "event=webpush_failed subscription=%lld origin=%s error=\"%s\"",
               (long long)s->id, origin, pc_strerror(rc));
        return;
    }
    snprintf(ttl_h, sizeof ttl_h, "TTL: %lld", (long long)ttl);
    h = curl_slist_append(h, auth_h);
    h = curl_slist_append(h, ttl_h);
    h = curl_slist_append(h, "Urgency: high");
    h = curl_slist_append(h, "Content-Encoding: aes128gcm");
    h = curl_slist_append(h, "Content-Type: application/octet-stream");
    h = curl_slist_append(h, "Expect:");
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, s->endpoint);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROXY, ""); /* straight to the push service, checked below */
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_checked);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &refused);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)blen);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    if (test_ca[0])
        curl_easy_setopt(c, CURLOPT_CAINFO, test_ca);
    cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (cc == CURLE_OK && (status == 404 || status == 410)) {
        remove_sub(s->id);
        pc_log(PC_LOG_INFO, "event=webpush_gone subscription=%lld origin=%s status=%ld",
               (long long)s->id, origin, status);
    } else if (cc != CURLE_OK || status < 200 || status >= 300) {
        pc_log(PC_LOG_WARN,
               "event=webpush_failed subscription=%lld origin=%s status=%ld error=\"%s\"",
               (long long)s->id, origin, status,
               refused          ? "refused: the endpoint resolves to an internal address"
               : cc != CURLE_OK ? curl_easy_strerror(cc)
                                : "non-2xx reply");
    } else {
        pc_log(PC_LOG_DEBUG, "event=webpush_sent subscription=%lld origin=%s status=%ld",
               (long long)s->id, origin, status);
    }
    curl_slist_free_all(h);
    pc_wipe(auth_h, sizeof auth_h);
}

/* The user's subscriptions (at most CP_WEBPUSH_MAX_PER_USER), read before any network I/O. */
static size_t load_subs(const char *user, struct sub *subs)
{
    cp_conn *db = cp_db();
    cp_stmt *st =
        db ? cp_prepare(db, "SELECT s.id, s.endpoint, s.p256dh, s.auth FROM webpush_subscriptions s"
                            " JOIN users u ON u.id = s.user_id WHERE u.name = ? AND u.enabled = 1"
                            " ORDER BY s.id LIMIT ?")
           : NULL;
    size_t n = 0;

    if (!st)
        return 0;
    cp_bind_text(st, 1, user);
    cp_bind_int(st, 2, CP_WEBPUSH_MAX_PER_USER);
    while (n < CP_WEBPUSH_MAX_PER_USER && cp_step(st) == CP_ROW) {
        struct sub *s = &subs[n];
        if (cp_col_bytes(st, 2) != PC_WEBPUSH_PUB_LEN || cp_col_bytes(st, 3) != PC_WEBPUSH_AUTH_LEN)
            continue;
        s->id = cp_col_int64(st, 0);
        snprintf(s->endpoint, sizeof s->endpoint, "%s", cp_col_text(st, 1));
        memcpy(s->p256dh, cp_col_blob(st, 2), PC_WEBPUSH_PUB_LEN);
        memcpy(s->auth, cp_col_blob(st, 3), PC_WEBPUSH_AUTH_LEN);
        n++;
    }
    cp_finalize(st);
    return n;
}

static void *run(void *arg)
{
    static struct sub subs[CP_WEBPUSH_MAX_PER_USER]; /* this thread's only */
    CURL *c = NULL; /* made with the first job: libcurl is initialised on first use */
    (void)arg;
    pthread_mutex_lock(&lock);
    for (;;) {
        struct job j;
        size_t n;
        while (q_len == 0 && !stopping)
            pthread_cond_wait(&ready, &lock);
        if (q_len == 0 || stopping)
            break;
        j = queue[q_head];
        q_head = (q_head + 1) % CP_WEBPUSH_QUEUE_MAX;
        q_len--;
        pthread_mutex_unlock(&lock);
        if (!c && cp_curl_global_init() == PC_OK)
            c = curl_easy_init();
        n = c ? load_subs(j.user, subs) : 0;
        for (size_t i = 0; i < n; i++) {
            int stop;
            pthread_mutex_lock(&lock);
            stop = stopping; /* a stop waits for one POST at most, not for a user's ten */
            pthread_mutex_unlock(&lock);
            if (stop)
                break;
            send_one(c, &subs[i], &j);
        }
        pc_wipe(subs, sizeof subs);
        free(j.payload);
        pthread_mutex_lock(&lock);
    }
    /* stopping: the notices still queued are dropped (their pushes are about to be moot) */
    while (q_len > 0) {
        free(queue[q_head].payload);
        q_head = (q_head + 1) % CP_WEBPUSH_QUEUE_MAX;
        q_len--;
    }
    pthread_mutex_unlock(&lock);
    curl_easy_cleanup(c);
    return NULL;
}

static void test_hooks(void)
{
#ifdef PC_TEST_HOOKS
    const char *ca = getenv("PC_TEST_WEBPUSH_CA"), *qm = getenv("PC_TEST_WEBPUSH_QUEUE");
    uint64_t n;

    if (ca && *ca) {
        snprintf(test_ca, sizeof test_ca, "%s", ca);
        allow_loopback = 1;
    }
    if (qm && pc_parse_uint(qm, 1, CP_WEBPUSH_QUEUE_MAX, &n) == PC_OK)
        q_max = (unsigned)n;
#endif
}

int cp_webpush_start(const unsigned char master[PC_SECRETBOX_KEY_BYTES], const char *contact_in,
                     char *err, size_t errsz)
{
    cp_conn *db = cp_db();
    int rc;

    if (!db)
        return PC_ERR_STORE;
    snprintf(contact, sizeof contact, "%s", contact_in ? contact_in : "");
    rc = vapid_load(db, master);
    if (rc == PC_ERR_NOTFOUND && (rc = vapid_create(db, master)) == PC_OK)
        rc = vapid_load(db, master);
    if (rc != PC_OK) {
        snprintf(err, errsz,
                 "cannot load the Web Push (VAPID) key from the database: %s (it is sealed with "
                 "the master key, DIR/master.key or an older DIR/secrets.key: is this the "
                 "database's own key?)",
                 pc_strerror(rc));
        return rc;
    }
    test_hooks();
    stopping = 0;
    if (pthread_create(&worker, NULL, run, NULL) != 0) {
        snprintf(err, errsz, "cannot start the Web Push thread");
        return PC_ERR_NOMEM;
    }
    started = 1;
    return PC_OK;
}

void cp_webpush_stop(void)
{
    if (started) {
        pthread_mutex_lock(&lock);
        stopping = 1;
        pthread_cond_broadcast(&ready);
        pthread_mutex_unlock(&lock);
        pthread_join(worker, NULL);
        started = 0;
    }
    pc_wipe(vapid_priv, sizeof vapid_priv);
}

void cp_webpush_set_app_origin(const char *origin)
{
    if (origin && *origin)
        snprintf(app_url, sizeof app_url, "%.580s/app/", origin);
    else
        app_url[0] = '\0';
}

const char *cp_webpush_public_key(void)
{
    return vapid_pub64;
}

uint64_t cp_webpush_dropped(void)
{
    uint64_t n;
    pthread_mutex_lock(&lock);
    n = dropped;
    pthread_mutex_unlock(&lock);
    return n;
}

void cp_webpush_push_created(const char *push_id, const char *user, const char *host,
                             const char *rhost, const char *service, int64_t expires_at)
{
    json_object *o;
    const char *text;
    char *payload = NULL;
    uint64_t nd = 0;
    int queued = 0;

    if (!started)
        return;
    /* Every field is bounded (id 32, host 255, rhost 255, service 63, url 600): far below
     * PC_WEBPUSH_PLAIN_MAX even when every character is escaped. */
    o = json_object_new_object();
    json_object_object_add(o, "type", json_object_new_string("push"));
    json_object_object_add(o, "push_id", json_object_new_string(push_id));
    json_object_object_add(o, "host", json_object_new_string(host ? host : ""));
    json_object_object_add(o, "service", json_object_new_string(service ? service : ""));
    json_object_object_add(o, "rhost", json_object_new_string(rhost ? rhost : ""));
    json_object_object_add(o, "expires_at", json_object_new_int64(expires_at));
    if (app_url[0])
        json_object_object_add(o, "url", json_object_new_string(app_url));
    text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    if (text && strlen(text) <= PC_WEBPUSH_PLAIN_MAX)
        payload = strdup(text);
    json_object_put(o);
    if (!payload)
        return;
    pthread_mutex_lock(&lock);
    if (q_len < q_max) {
        struct job *j = &queue[(q_head + q_len) % CP_WEBPUSH_QUEUE_MAX];
        snprintf(j->user, sizeof j->user, "%s", user);
        j->payload = payload;
        j->expires_at = expires_at;
        q_len++;
        queued = 1;
        pthread_cond_signal(&ready);
    } else {
        nd = ++dropped;
    }
    pthread_mutex_unlock(&lock);
    if (!queued) {
        pc_log(PC_LOG_WARN, "event=webpush_dropped reason=queue_full push_id=%.40s dropped=%llu",
               push_id, (unsigned long long)nd);
        free(payload);
    }
}
