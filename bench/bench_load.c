/* SPDX-License-Identifier: BSD-2-Clause */
/* The load generator of bench/run-all.sh, in C so that it is not the bottleneck on 2 cores.
 * Every request is checked (HTTP 200 and the field it needs).
 *
 *   bench_load keys N                      N Ed25519 keys: "PUBLIC-LINE\tPRIVATE-HEX" lines
 *   bench_load MODE URL PIN CONNS SECONDS USERS TOKENS
 *     MODE   pairs  auth/begin + auth/totp with a fresh right code (one pair per request slot)
 *            begin  auth/begin only
 *            certs  login/start + SSHSIG + login/finish with a fresh code (USERS carry keys)
 *            pushes auth/begin + auth/push, prints "push ID" lines (SECONDS is the count; it
 *                   stops after PUSHES_MAX_S seconds in any case, to keep the suite bounded)
 *            polls  GET /v1/auth/push/ID?wait=W for every ID of USERS (a file of push ids),
 *                   (CONNS is W), opened POLL_RAMP handshakes at a time; prints "sent n=N …"
 *                   once every one is open
 *     USERS  lines "NAME SECRET-HEX [PRIVATE-HEX PUBLIC-LINE]"; codes are computed for the
 *            time steps now-9 … now+10 in order (portcullisd --totp-window 10): each user gives
 *            20 fresh codes (one step boundary may pass), the users are taken round-robin
 *     TOKENS host tokens, one a line; connection i uses token i % n (per-host rate limits)
 * Result line: "MODE ok=N failed=N seconds=S per_sec=R p50_ms=X p99_ms=Y ran_out=0|1" (1: the
 * users' fresh codes were all spent before SECONDS were up: S is shorter, and its last moments
 * had fewer connections busy — give it more users).
 *
 * pairs, begin, certs and pushes run one thread per connection, each with the agent's own
 * HTTPS client (lib/pc_http.c: OpenSSL, keep-alive, one write per request, reads ahead). They
 * ran on libcurl's multi interface in one thread before, at ~75 µs of CPU per request (a URL
 * parsed, a handle removed and added again, a poll over every socket per step), CPU taken from
 * the two cores this program shares with the daemon it measures; the anchor, wrk, spends far
 * less. polls, which holds 10,000 connections at once, stays on libcurl's multi interface. */
#include "config.h"
#include "pc_http.h"
#include "pc_sshkey.h"
#include "pc_sshsig.h"
#include "pc_totp.h"
#include <curl/curl.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_USERS 200000
#define WINDOW 10
#define MAX_LAT 4000000
#define PUSHES_MAX_S 60.0

struct user {
    char name[64];
    unsigned char secret[64];
    size_t slen;
    long long next_step;
    int busy; /* a unit of this user is in flight: its next code must wait (replay order) */
    char codes[2 * WINDOW + 2][8]; /* by step from now-WINDOW, computed on first use */
    struct pc_sshkey *key;
    char *pub;
};

struct slot { /* a long-poll's transfer */
    CURL *h;
    struct curl_slist *hdr;
    char *body;
    size_t len, cap;
};

static struct user *users;
static size_t nusers, cursor;
static long long now_step;
static const char *url, *pin;
static double lat[MAX_LAT];
static size_t nlat;
static long ok, failed;
static int ran_out;     /* a timed run ended early: every user's fresh codes were spent */
static int consume = 1; /* begin and pushes use no code: the steps stay fresh */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static size_t unhex(const char *s, unsigned char *out, size_t max)
{
    size_t n = 0;
    while (s[0] && s[1] && n < max && hexval(s[0]) >= 0 && hexval(s[1]) >= 0) {
        out[n++] = (unsigned char)(hexval(s[0]) * 16 + hexval(s[1]));
        s += 2;
    }
    return n;
}

static size_t on_data(char *p, size_t sz, size_t n, void *ctx)
{
    struct slot *s = ctx;
    size_t k = sz * n;
    if (s->len + k + 1 > s->cap) {
        size_t cap = (s->len + k + 1) * 2;
        char *b = realloc(s->body, cap);
        if (!b)
            return 0;
        s->body = b;
        s->cap = cap;
    }
    memcpy(s->body + s->len, p, k);
    s->len += k;
    s->body[s->len] = '\0';
    return k;
}

/* The codes of the steps portcullisd may try (the window around now, one boundary later
 * included), computed once: the client's HMACs must not take CPU from the server it measures. */
#define NSTEPS (2 * WINDOW + 2)
static const char *code_of(struct user *u, long long s)
{
    long long i = s - (now_step - WINDOW);

    if (i < 0 || i >= NSTEPS)
        return NULL;
    if (!u->codes[i][0])
        pc_totp_code(u->secret, u->slen, s * 30, u->codes[i], sizeof u->codes[i]);
    return u->codes[i];
}

/* 1 when the code of step s is also the code of another of those steps. liboath tries now,
 * now±1, now±2 …: a code of step now-9 that equals the code of now+5 (about one in 50,000
 * codes here) marks now+5 as used, and this user's next codes would be refused as replays. A
 * real TOTP collision, not what is measured: such steps are skipped. */
static int collides(struct user *u, long long s)
{
    const char *code = code_of(u, s);

    for (long long t = now_step - WINDOW; t < now_step - WINDOW + NSTEPS; t++)
        if (t != s && strcmp(code_of(u, t), code) == 0)
            return 1;
    return 0;
}

/* The next user with a fresh step left, and its code; NULL when all are used up. */
static struct user *next_user(char code[8])
{
    for (size_t tries = 0; tries < nusers; tries++) {
        struct user *u = &users[cursor++ % nusers];
        while (!u->busy && u->next_step <= now_step + WINDOW) {
            if (consume && collides(u, u->next_step)) {
                u->next_step++;
                continue;
            }
            snprintf(code, 8, "%s", code_of(u, u->next_step));
            u->busy = 1;
            u->next_step += consume;
            return u;
        }
    }
    return NULL;
}

static json_object *obj2(const char *k1, const char *v1, const char *k2, const char *v2)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, k1, json_object_new_string(v1));
    if (k2)
        json_object_object_add(o, k2, json_object_new_string(v2));
    return o;
}

static const char *get(json_object *o, const char *k)
{
    json_object *v;
    return o && json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

/* ---- pairs, begin, certs, pushes: a thread per connection ---- */

struct conn {
    pthread_t t;
    pc_http *h;
    const char *mode;
    double until;   /* no unit starts after this */
    long max_units; /* pushes: the count; else -1 */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; /* users, the counts, lat, stdout */
static long inflight, reported;

static void report(const char *mode, const char *path, const char *what)
{
    pthread_mutex_lock(&mu);
    if (reported++ < 5)
        fprintf(stderr, "bench_load: %s %s: %.200s\n", mode, path, what);
    pthread_mutex_unlock(&mu);
}

/* POSTs body (put here) and returns the reply when it is a 200 with the string field want. */
static json_object *call(struct conn *c, const char *path, json_object *body, const char *want)
{
    json_object *reply = NULL;
    long st = 0;
    char err[256], what[64];
    int rc = pc_http_call(c->h, "POST", path, body, 0, &st, &reply, err, sizeof err);

    json_object_put(body);
    if (rc == 0 && st == 200 && get(reply, want))
        return reply;
    snprintf(what, sizeof what, "HTTP %ld", st);
    report(c->mode, path, rc ? err : reply ? json_object_to_json_string(reply) : what);
    json_object_put(reply);
    return NULL;
}

/* The login's proof: SSHSIG over the challenge of a login/start reply (NULL on error). */
static char *sign_challenge(struct user *u, json_object *start)
{
    const char *ch = get(start, "challenge"), *ns = get(start, "namespace");
    unsigned char msg[512];
    char *sig = NULL;
    int n;

    if (!ns || strlen(ch) > 600 ||
        (n = EVP_DecodeBlock(msg, (const unsigned char *)ch, (int)strlen(ch))) <= 0)
        return NULL;
    /* EVP_DecodeBlock counts the padding's zero bytes: take them off */
    for (size_t k = strlen(ch); k > 0 && ch[k - 1] == '='; k--)
        n--;
    return pc_sshsig_sign(u->key, ns, msg, (size_t)n, &sig) == 0 ? sig : NULL;
}

/* One unit of the connection's mode for user u (code: its fresh code): 1 when every answer
 * was the expected one. */
static int unit(struct conn *c, struct user *u, const char *code)
{
    json_object *r, *r2 = NULL, *o;
    const char *v;
    int good = 0;

    if (strcmp(c->mode, "certs") == 0) {
        char *sig;
        if (!(r = call(c, "/v1/login/start", obj2("user", u->name, "public_key", u->pub),
                       "challenge")))
            return 0;
        if ((sig = sign_challenge(u, r)) && (v = get(r, "login_id"))) {
            o = obj2("login_id", v, "signature", sig);
            json_object_object_add(o, "code", json_object_new_string(code));
            good = (r2 = call(c, "/v1/login/finish", o, "certificate")) != NULL;
        }
        free(sig);
    } else {
        if (!(r = call(c, "/v1/auth/begin", obj2("user", u->name, NULL, NULL), "txid")))
            return 0;
        v = get(r, "txid");
        if (strcmp(c->mode, "begin") == 0) {
            good = 1;
        } else if (strcmp(c->mode, "pushes") == 0) {
            if ((r2 = call(c, "/v1/auth/push", obj2("txid", v, NULL, NULL), "push_id"))) {
                pthread_mutex_lock(&mu);
                printf("push %s\n", get(r2, "push_id"));
                pthread_mutex_unlock(&mu);
                good = 1;
            }
        } else if ((r2 = call(c, "/v1/auth/totp", obj2("txid", v, "code", code), "result"))) {
            good = strcmp(get(r2, "result"), "allow") == 0;
            if (!good)
                report(c->mode, "/v1/auth/totp", json_object_to_json_string(r2));
        }
    }
    json_object_put(r);
    json_object_put(r2);
    return good;
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    char code[8];

    for (;;) {
        struct user *u = NULL;
        double t0;
        int good;

        pthread_mutex_lock(&mu);
        if (now_s() < c->until && (c->max_units < 0 || ok + inflight < c->max_units)) {
            if ((u = next_user(code)))
                inflight++;
            else if (!inflight && c->max_units < 0)
                ran_out = 1;
        }
        pthread_mutex_unlock(&mu);
        if (!u)
            return NULL;
        t0 = now_s();
        good = unit(c, u, code);
        pthread_mutex_lock(&mu);
        inflight--;
        u->busy = 0;
        if (good && nlat < MAX_LAT)
            lat[nlat++] = now_s() - t0;
        good ? ok++ : failed++;
        pthread_mutex_unlock(&mu);
    }
}

/* conns threads until secs (pushes: secs units, at most PUSHES_MAX_S seconds). */
static int run_units(const char *mode, long conns, long secs, char **tokens, size_t nt)
{
    struct conn *c = calloc((size_t)conns, sizeof *c);
    int pushes = strcmp(mode, "pushes") == 0;
    double t0 = now_s();
    char err[256];

    if (!c)
        return 1;
    for (long i = 0; i < conns; i++) {
        struct pc_http_opts o = {
            .base_url = url, .pin = pin, .token = tokens[(size_t)i % nt], .timeout_ms = 120000
        };
        if (pc_http_new(&o, &c[i].h, err, sizeof err) != 0)
            return fprintf(stderr, "bench_load: %s\n", err), 1;
        c[i].mode = mode;
        c[i].until = t0 + (pushes ? PUSHES_MAX_S : (double)secs);
        c[i].max_units = pushes ? secs : -1;
    }
    for (long i = 0; i < conns; i++)
        if (pthread_create(&c[i].t, NULL, conn_main, &c[i]) != 0)
            return fprintf(stderr, "bench_load: no thread\n"), 1;
    for (long i = 0; i < conns; i++) {
        pthread_join(c[i].t, NULL);
        pc_http_free(c[i].h);
    }
    free(c);
    return 0;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static CURL *easy(struct slot *s, const char *token)
{
    char auth[1024];
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(h, CURLOPT_PINNEDPUBLICKEY, pin);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
    /* Without it libcurl sets and restores SIGPIPE's action around every transfer step: two
     * sigaction calls each time, ~5 % of this generator's CPU, which it shares with the daemon
     * it measures. SIGPIPE is ignored once for the process instead (main). */
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    s->hdr = curl_slist_append(NULL, "Content-Type: application/json");
    if (token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        s->hdr = curl_slist_append(s->hdr, auth);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, s->hdr);
    s->h = h;
    return h;
}

static char **read_lines(const char *path, size_t *n)
{
    FILE *f = fopen(path, "r");
    char *line = NULL, **v = NULL;
    size_t cap = 0, k = 0;
    ssize_t len;
    if (!f)
        return NULL;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] == '\n')
            line[len - 1] = '\0';
        char **nv = realloc(v, (k + 1) * sizeof *v);
        if (!nv)
            break;
        v = nv;
        v[k++] = strdup(line);
    }
    free(line);
    fclose(f);
    *n = k;
    return v;
}

static int keys(long n)
{
    for (long i = 0; i < n; i++) {
        struct pc_sshkey *k = NULL;
        unsigned char raw[32];
        size_t rl = sizeof raw;
        char *line = NULL;
        if (pc_sshkey_generate(PC_KEY_ED25519, &k) != 0 ||
            EVP_PKEY_get_raw_private_key(k->pkey, raw, &rl) != 1 ||
            pc_sshkey_to_line(k, "bench", &line) != 0)
            return 1;
        for (size_t j = 0; j < rl; j++)
            printf("%02x", raw[j]);
        printf("\t%s\n", line);
        free(line);
        pc_sshkey_free(k);
    }
    return 0;
}

/* The long-polls: added while at most POLL_RAMP TLS handshakes are under way (10,000 at once
 * overran the server's handshakes), each on its own connection. */
#define POLL_RAMP 200
static int polls(char **ids, size_t n, long wait, const char *token)
{
    CURLM *m = curl_multi_init();
    struct slot *s = calloc(n, sizeof *s);
    char *done = calloc(n, 1);
    int running = 0, sent = 0;
    size_t added = 0, first_open = 0;
    double t0 = now_s();
    char u[512];

    if (!s || !done)
        return 1;
    curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, 0L);
    for (size_t i = 0; i < n; i++) {
        CURL *h = easy(&s[i], token);
        snprintf(u, sizeof u, "%s/v1/auth/push/%s?wait=%ld", url, ids[i] + 5, wait);
        curl_easy_setopt(h, CURLOPT_URL, u);
        curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
        curl_easy_setopt(h, CURLOPT_PRIVATE, (void *)&done[i]);
    }
    do {
        CURLMsg *msg;
        int left;
        size_t handshaking = 0;
        for (size_t i = first_open; i < added; i++) {
            curl_off_t tls = 0;
            if (done[i])
                continue;
            curl_easy_getinfo(s[i].h, CURLINFO_APPCONNECT_TIME_T, &tls);
            if (tls == 0)
                handshaking++;
        }
        while (first_open < added && done[first_open])
            first_open++;
        while (added < n && handshaking < POLL_RAMP) {
            curl_multi_add_handle(m, s[added++].h);
            handshaking++;
        }
        if (!sent && added == n && handshaking == 0) {
            printf("sent n=%zu done=%ld failed=%ld seconds=%.2f\n", n, ok + failed, failed,
                   now_s() - t0);
            fflush(stdout);
            sent = 1;
        }
        curl_multi_perform(m, &running);
        curl_multi_poll(m, NULL, 0, 50, NULL);
        while ((msg = curl_multi_info_read(m, &left)))
            if (msg->msg == CURLMSG_DONE) {
                long st = 0;
                char *d = NULL;
                curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &st);
                curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &d);
                if (d)
                    *d = 1;
                if (st == 200)
                    ok++;
                else if (failed++ < 3)
                    fprintf(stderr, "bench_load: polls: HTTP %ld (curl %d)\n", st,
                            (int)msg->data.result);
            }
    } while (running || added < n);
    printf("polls ok=%ld failed=%ld seconds=%.2f\n", ok, failed, now_s() - t0);
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode;
    long conns, secs;
    char **ul, **tl;
    size_t nu = 0, nt = 0;
    double t0, dt;

    if (argc == 3 && strcmp(argv[1], "keys") == 0)
        return keys(atol(argv[2]));
    if (argc != 8) {
        fprintf(stderr, "usage: see bench/bench_load.c\n");
        return 2;
    }
    mode = argv[1];
    url = argv[2];
    pin = argv[3];
    conns = atol(argv[4]);
    secs = atol(argv[5]);
    /* SIGPIPE ignored (CURLOPT_NOSIGNAL, pc_http: a peer that hangs up is an error) */
    if (pc_totp_init() != 0 || pc_http_global_init() != 0 ||
        curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        return 1;
    if (!(ul = read_lines(argv[6], &nu)) || !(tl = read_lines(argv[7], &nt)) || !nu || !nt)
        return fprintf(stderr, "bench_load: cannot read %s or %s\n", argv[6], argv[7]), 1;
    if (strcmp(mode, "polls") == 0)
        return polls(ul, nu, conns, tl[0]);
    if (conns < 1 || conns > 64 || nu > MAX_USERS)
        return 2;
    consume = strcmp(mode, "begin") != 0 && strcmp(mode, "pushes") != 0;
    users = calloc(nu, sizeof *users);
    now_step = (long long)(time(NULL) / 30);
    for (size_t i = 0; i < nu; i++) {
        char *save = NULL, *name = strtok_r(ul[i], " ", &save), *sec = strtok_r(NULL, " ", &save),
             *priv = strtok_r(NULL, " ", &save), *pub = strtok_r(NULL, "", &save);
        if (!name || !sec)
            return 1;
        snprintf(users[i].name, sizeof users[i].name, "%s", name);
        users[i].slen = unhex(sec, users[i].secret, sizeof users[i].secret);
        users[i].next_step = now_step - WINDOW + 1; /* one step boundary may pass */
        if (priv && pub) {
            unsigned char raw[32];
            users[i].key = calloc(1, sizeof *users[i].key);
            unhex(priv, raw, sizeof raw);
            users[i].key->type = PC_KEY_ED25519;
            users[i].key->pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw,
                                                              sizeof raw);
            users[i].key->has_private = 1;
            users[i].pub = pub;
        }
    }
    nusers = nu;
    t0 = now_s();
    if (run_units(mode, conns, secs, tl, nt) != 0)
        return 1;
    dt = now_s() - t0;
    qsort(lat, nlat, sizeof *lat, cmp_d);
    printf("%s ok=%ld failed=%ld seconds=%.3f per_sec=%.1f p50_ms=%.2f p99_ms=%.2f ran_out=%d\n",
           mode, ok, failed, dt, (double)ok / dt, nlat ? lat[nlat / 2] * 1e3 : 0.0,
           nlat ? lat[nlat * 99 / 100] * 1e3 : 0.0, ran_out);
    return failed && !ok ? 1 : 0;
}
