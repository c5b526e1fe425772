/* SPDX-License-Identifier: BSD-2-Clause */
/* The load generator of bench/run-all.sh: libcurl multi, one thread, C, so that it is not the
 * bottleneck on 2 cores. Every request is checked (HTTP 200 and the field it needs).
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
 * Result line: "MODE ok=N failed=N seconds=S per_sec=R p50_ms=X p99_ms=Y". */
#include "config.h"
#include "pc_sshkey.h"
#include "pc_sshsig.h"
#include "pc_totp.h"
#include <curl/curl.h>
#include <json-c/json.h>
#include <openssl/evp.h>
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

struct slot {
    CURL *h;
    struct curl_slist *hdr;
    char *body;
    size_t len, cap;
    int state; /* 0 first request of the unit, 1 second */
    double t0;
    struct user *u;
    char txid[128], login_id[128];
};

static struct user *users;
static size_t nusers, cursor;
static long long now_step;
static const char *url, *pin;
static double lat[MAX_LAT];
static size_t nlat;
static long ok, failed;
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

static void post(struct slot *s, const char *path, json_object *o)
{
    char u[512];
    snprintf(u, sizeof u, "%s%s", url, path);
    curl_easy_setopt(s->h, CURLOPT_URL, u);
    curl_easy_setopt(s->h, CURLOPT_COPYPOSTFIELDS, json_object_to_json_string(o));
    json_object_put(o);
    s->len = 0;
}

static json_object *obj2(const char *k1, const char *v1, const char *k2, const char *v2)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, k1, json_object_new_string(v1));
    if (k2)
        json_object_object_add(o, k2, json_object_new_string(v2));
    return o;
}

static char codes[64][8]; /* the code of each slot's current unit */

/* Starts the slot's next unit; 0 when there is nothing left to do. */
static int start_unit(struct slot *s, int idx, const char *mode)
{
    s->u = next_user(codes[idx]);
    if (!s->u)
        return 0;
    s->state = 0;
    s->t0 = now_s();
    if (strcmp(mode, "certs") == 0)
        post(s, "/v1/login/start", obj2("user", s->u->name, "public_key", s->u->pub));
    else
        post(s, "/v1/auth/begin", obj2("user", s->u->name, NULL, NULL));
    return 1;
}

static const char *get(json_object *o, const char *k)
{
    json_object *v;
    return o && json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

/* A request of the slot finished with status st: 1 when the slot has a next request set up. */
static int step(struct slot *s, int idx, const char *mode, long st)
{
    json_object *r = st == 200 ? json_tokener_parse(s->body) : NULL;
    const char *v;
    int more = 0;

    if (!r)
        goto fail;
    if (s->state == 0 && strcmp(mode, "begin") == 0) {
        if (!get(r, "txid"))
            goto fail;
        ok++;
    } else if (s->state == 0 && strcmp(mode, "certs") == 0) {
        const char *ch = get(r, "challenge"), *ns = get(r, "namespace"), *id = get(r, "login_id");
        unsigned char msg[512];
        char *sig = NULL;
        int n;
        if (!ch || !ns || !id || strlen(id) >= sizeof s->login_id ||
            (n = EVP_DecodeBlock(msg, (const unsigned char *)ch, (int)strlen(ch))) <= 0)
            goto fail;
        /* EVP_DecodeBlock counts the padding's zero bytes: take them off */
        for (size_t k = strlen(ch); k > 0 && ch[k - 1] == '='; k--)
            n--;
        if (pc_sshsig_sign(s->u->key, ns, msg, (size_t)n, &sig) != 0)
            goto fail;
        json_object *o = obj2("login_id", id, "signature", sig);
        json_object_object_add(o, "code", json_object_new_string(codes[idx]));
        free(sig);
        post(s, "/v1/login/finish", o);
        s->state = 1;
        more = 1;
    } else if (s->state == 0) { /* pairs, pushes: the txid */
        if (!(v = get(r, "txid")) || strlen(v) >= sizeof s->txid)
            goto fail;
        snprintf(s->txid, sizeof s->txid, "%s", v);
        if (strcmp(mode, "pushes") == 0)
            post(s, "/v1/auth/push", obj2("txid", s->txid, NULL, NULL));
        else
            post(s, "/v1/auth/totp", obj2("txid", s->txid, "code", codes[idx]));
        s->state = 1;
        more = 1;
    } else if (strcmp(mode, "pushes") == 0) {
        if (!(v = get(r, "push_id")))
            goto fail;
        printf("push %s\n", v);
        ok++;
    } else if (strcmp(mode, "certs") == 0) {
        if (!get(r, "certificate"))
            goto fail;
        ok++;
    } else {
        if (!(v = get(r, "result")) || strcmp(v, "allow") != 0)
            goto fail;
        ok++;
    }
    if (!more && nlat < MAX_LAT)
        lat[nlat++] = now_s() - s->t0;
    if (!more)
        s->u->busy = 0;
    json_object_put(r);
    return more;
fail:
    s->u->busy = 0;
    if (failed++ < 5)
        fprintf(stderr, "bench_load: %s: HTTP %ld %.200s\n", mode, st, s->body ? s->body : "");
    json_object_put(r);
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
    CURLM *m;
    struct slot *s;
    int running = 0, active = 0;

    if (argc == 3 && strcmp(argv[1], "keys") == 0)
        return keys(atol(argv[2]));
    if (argc != 8) {
        fprintf(stderr, "usage: see bench/bench_load.c\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* CURLOPT_NOSIGNAL: a peer that hangs up is an error, not a kill */
    mode = argv[1];
    url = argv[2];
    pin = argv[3];
    conns = atol(argv[4]);
    secs = atol(argv[5]);
    if (pc_totp_init() != 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
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
    m = curl_multi_init();
    s = calloc((size_t)conns, sizeof *s);
    t0 = now_s();
    for (long i = 0; i < conns; i++) {
        easy(&s[i], tl[(size_t)i % nt]);
        curl_easy_setopt(s[i].h, CURLOPT_PRIVATE, (void *)&s[i]);
        if (start_unit(&s[i], (int)i, mode)) {
            curl_multi_add_handle(m, s[i].h);
            active++;
        }
    }
    while (active) {
        CURLMsg *msg;
        int left;
        /* Read the finished transfers right after perform has moved them, before waiting:
         * waiting first would leave an answer unnoticed until some other socket (or the
         * 100 ms timeout) woke the poll, and measure that wait instead of portcullisd. */
        curl_multi_perform(m, &running);
        while ((msg = curl_multi_info_read(m, &left))) {
            struct slot *sl = NULL;
            long st = 0;
            int idx, more;
            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&sl);
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &st);
            idx = (int)(sl - s);
            curl_multi_remove_handle(m, sl->h);
            more = msg->data.result == CURLE_OK ? step(sl, idx, mode, st) : (failed++, 0);
            dt = now_s() - t0;
            if (more ||
                (dt < (strcmp(mode, "pushes") == 0 ? 1e9 : (double)secs) &&
                 (strcmp(mode, "pushes") != 0 || ok + active <= secs) && start_unit(sl, idx, mode)))
                curl_multi_add_handle(m, sl->h);
            else
                active--;
        }
        if (active) /* a handle just added makes libcurl's timeout 0: no wait for it */
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    dt = now_s() - t0;
    qsort(lat, nlat, sizeof *lat, cmp_d);
    printf("%s ok=%ld failed=%ld seconds=%.3f per_sec=%.1f p50_ms=%.2f p99_ms=%.2f\n", mode, ok,
           failed, dt, (double)ok / dt, nlat ? lat[nlat / 2] * 1e3 : 0.0,
           nlat ? lat[nlat * 99 / 100] * 1e3 : 0.0);
    return failed && !ok ? 1 : 0;
}
