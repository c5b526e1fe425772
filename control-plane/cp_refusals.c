/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "cp_refusals.h"
#include "cp_audit.h"
#include "cp_store.h"
#include "pc_err.h"
#include "pc_log.h"
#include "pc_time.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX CP_REFUSAL_KEY_MAX
#define OTHERS "other addresses"

struct slot {
    char key[KEY_MAX]; /* "" = free */
    int64_t start_ms;  /* pc_now_ms() at the window's first refusal */
    unsigned refused;  /* refusals in the window, audited or not */
    unsigned counted;  /* refusals and 429s not audited in full: the summary's N */
};

/* The last slot is shared by every address that finds the table full. */
static struct slot slots[CP_REFUSAL_SLOTS + 1];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int64_t window_s(void)
{
#ifdef PC_TEST_HOOKS
    const char *v = getenv("PC_TEST_REFUSAL_WINDOW");
    if (v && *v) {
        long n = strtol(v, NULL, 10);
        if (n >= 1 && n <= 3600)
            return n;
    }
#endif
    return CP_REFUSAL_WINDOW;
}

/* The address as counted: IPv4 as is, IPv6 by its /64 (one machine usually holds all of it). */
static void source_key(const char *source, char key[KEY_MAX])
{
    struct in6_addr a6;

    if (inet_pton(AF_INET6, source, &a6) == 1 && !IN6_IS_ADDR_V4MAPPED(&a6)) {
        char buf[INET6_ADDRSTRLEN];
        memset(a6.s6_addr + 8, 0, 8);
        inet_ntop(AF_INET6, &a6, buf, sizeof buf);
        snprintf(key, KEY_MAX, "%s/64", buf);
    } else {
        snprintf(key, KEY_MAX, "%s", source && *source ? source : "unknown");
    }
}

static int window_open(const struct slot *s, int64_t now)
{
    return now - s->start_ms < window_s() * 1000;
}

/* The slot of key (locked): when the table is full, the shared one; with create, a new one
 * if none. A slot whose window closed with nothing to sum up starts afresh; one with a summary
 * still to write keeps counting until the housekeeping thread writes it (within a second). */
static struct slot *find(const char *key, int create, int64_t now)
{
    struct slot *s = NULL, *free_slot = NULL;

    for (size_t i = 0; i < CP_REFUSAL_SLOTS && !s; i++) {
        if (!slots[i].key[0]) {
            if (!free_slot)
                free_slot = &slots[i];
        } else if (strcmp(slots[i].key, key) == 0) {
            s = &slots[i];
        }
    }
    if (!s)
        s = free_slot ? free_slot : &slots[CP_REFUSAL_SLOTS];
    if (!s->key[0]) {
        if (!create)
            return NULL;
        snprintf(s->key, sizeof s->key, "%s", s == free_slot ? key : OTHERS);
        s->start_ms = now;
        s->refused = 0;
        s->counted = 0;
    } else if (!window_open(s, now) && s->counted == 0) {
        s->start_ms = now;
        s->refused = 0;
    }
    return s;
}

int cp_refusal_throttled(const char *source)
{
    char key[KEY_MAX];
    struct slot *s;
    int over = 0;

    source_key(source, key);
    pthread_mutex_lock(&lock);
    s = find(key, 0, pc_now_ms());
    /* Only an address with a slot of its own is throttled: the shared slot of a full table
     * bounds audit rows, but a 429 from it would lock out every address not yet seen. */
    if (s && s != &slots[CP_REFUSAL_SLOTS] && s->refused >= CP_REFUSAL_LIMIT) {
        s->counted++;
        over = 1;
    }
    pthread_mutex_unlock(&lock);
    return over;
}

int cp_refusal_note(const char *source)
{
    char key[KEY_MAX];
    struct slot *s;
    int audit;

    source_key(source, key);
    pthread_mutex_lock(&lock);
    s = find(key, 1, pc_now_ms());
    s->refused++;
    audit = s->refused <= CP_REFUSAL_AUDITED;
    if (!audit)
        s->counted++;
    pthread_mutex_unlock(&lock);
    return audit;
}

void cp_refusal_source_key(const char *source, char key[CP_REFUSAL_KEY_MAX])
{
    source_key(source, key);
}

void cp_refusal_count(const char *source)
{
    char key[KEY_MAX];
    struct slot *s;

    source_key(source, key);
    pthread_mutex_lock(&lock);
    s = find(key, 1, pc_now_ms());
    s->refused++;
    s->counted++;
    pthread_mutex_unlock(&lock);
}

struct summary {
    char key[KEY_MAX];
    unsigned n;
};

void cp_refusal_flush(void)
{
    static struct summary out[CP_REFUSAL_SLOTS + 1]; /* only the housekeeping thread flushes */
    int64_t now = pc_now_ms();
    size_t n = 0;
    cp_conn *db;

    pthread_mutex_lock(&lock);
    for (size_t i = 0; i <= CP_REFUSAL_SLOTS; i++) {
        struct slot *s = &slots[i];
        if (!s->key[0] || window_open(s, now))
            continue;
        if (s->counted) {
            memcpy(out[n].key, s->key, KEY_MAX);
            out[n++].n = s->counted;
        }
        memset(s, 0, sizeof *s);
    }
    pthread_mutex_unlock(&lock);
    if (n == 0)
        return;
    if (!(db = cp_db()) || cp_tx_begin(db) != PC_OK) {
        pc_log(PC_LOG_ERR, "event=refusal_summary_lost addresses=%zu", n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char reason[160];
        struct cp_audit_row row = { .actor = "system",
                                    .action = "refused.summary",
                                    .result = "deny",
                                    .reason = reason,
                                    .source = out[i].key };
        snprintf(reason, sizeof reason, "%u refused from %s in %llds", out[i].n, out[i].key,
                 (long long)window_s());
        if (cp_audit_add(db, &row) != PC_OK) {
            cp_tx_rollback(db);
            pc_log(PC_LOG_ERR, "event=refusal_summary_lost addresses=%zu", n);
            return;
        }
    }
    if (cp_tx_commit(db) != PC_OK) {
        cp_tx_rollback(db);
        pc_log(PC_LOG_ERR, "event=refusal_summary_lost addresses=%zu", n);
    }
}
