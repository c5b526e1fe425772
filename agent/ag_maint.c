/* SPDX-License-Identifier: BSD-2-Clause */
/* The daemon's background thread: KRL and CA key set sync, host certificate renewal (see
 * ag_maint.h). */
#include "config.h"
#include "ag_maint.h"
#include "ag_metrics.h"
#include "ag_enroll.h"
#include "ag_ops.h"
#include "ag_hostca.h"
#include "ag_krl.h"
#include "ag_offline.h"
#include "pc_err.h"
#include "pc_http.h"
#include "pc_json.h"
#include "pc_log.h"
#include "pc_rand.h"
#include "pc_sshkey.h"
#include "pc_time.h"
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define ERRSZ 512
#define TICK_MS 1000

struct ag_maint {
    const struct ag_config *cfg;
    pthread_t tid;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stop;
    int64_t next_sync_ms; /* monotonic */
    int64_t not_before;   /* wall clock (pc_now): no renewal attempt before this */
    int64_t retry_s;      /* current backoff after a failed renewal */
    uint64_t jitter_for;  /* valid_before the jitter was drawn for */
    int64_t jitter_s;
};

static int sync_cas(const struct ag_config *c, pc_http *h);

int ag_maint_sync_cas(const struct ag_config *cfg)
{
    return sync_cas(cfg, NULL);
}

int ag_maint_renew_once(const struct ag_config *cfg, int reload, int64_t *serial, char *err,
                        size_t errsz)
{
    char rerr[ERRSZ] = "";
    pc_http *h = NULL;
    int rc, changed = 0;

    *serial = 0;
    if ((rc = ag_enroll_http(cfg, &h, err, errsz)) != PC_OK)
        return rc;
    if ((rc = ag_hostca_mkdir(cfg, err, errsz)) == PC_OK) {
        /* the CA sets first: a certificate from a new host CA must find it in host_ca.pub;
         * a failed sync leaves the old files and the renewal says why if it matters */
        sync_cas(cfg, h);
        rc = ag_hostca_renew(cfg, h, &changed, serial, err, errsz);
    }
    pc_http_free(h);
    if (rc != PC_OK) {
        pc_log(PC_LOG_WARN, "event=host_cert_renew result=error detail=\"%s\"", err);
        return rc;
    }
    pc_log(PC_LOG_INFO, "event=host_cert_renew result=ok serial=%lld changed=%s",
           (long long)*serial, changed ? "yes" : "no");
    if (changed && reload && cfg->reload_command) {
        if (ag_hostca_reload(cfg, rerr, sizeof rerr) == PC_OK) {
            pc_log(PC_LOG_INFO, "event=sshd_reload result=ok");
        } else {
            pc_log(PC_LOG_WARN, "event=sshd_reload result=error detail=\"%s\"", rerr);
            snprintf(err, errsz, "the certificate was renewed but the reload failed: %s", rerr);
            return PC_ERR_STATE;
        }
    }
    return PC_OK;
}

static int have_file(const struct ag_config *c, const char *name)
{
    char path[PATH_MAX];
    struct stat st;
    return ag_hostca_path(c, name, path, sizeof path) == PC_OK && stat(path, &st) == 0;
}

/* GET path: the CA's trusted keys (public_keys, current first; public_key alone from a
 * control plane without rotation) into lines[] (pointers into *reply). */
static int fetch_ca_set(pc_http *h, const char *path, json_object **reply,
                        const char *lines[AG_CA_SET_MAX], size_t *n, char *err, size_t errsz)
{
    struct pc_jerr je = { 0 };
    json_object *arr = NULL;
    long status = 0;
    int rc;

    *n = 0;
    *reply = NULL;
    if ((rc = pc_http_call(h, "GET", path, NULL, 0, &status, reply, err, errsz)) != PC_OK)
        return rc;
    if (status != 200 || !*reply) {
        snprintf(err, errsz, "GET %s answered HTTP %ld", path, status);
        return PC_ERR_PARSE;
    }
    if (json_object_object_get_ex(*reply, "public_keys", &arr)) {
        size_t len = json_object_is_type(arr, json_type_array) ? json_object_array_length(arr) : 0;
        if (len < 1 || len > AG_CA_SET_MAX) {
            snprintf(err, errsz, "GET %s: public_keys is not 1 to %d keys", path, AG_CA_SET_MAX);
            return PC_ERR_PARSE;
        }
        for (size_t i = 0; i < len; i++) {
            json_object *k = json_object_array_get_idx(arr, i);
            if (!json_object_is_type(k, json_type_string) ||
                json_object_get_string_len(k) > PC_SSHKEY_LINE_MAX) {
                snprintf(err, errsz, "GET %s: public_keys holds a non-key", path);
                return PC_ERR_PARSE;
            }
            lines[(*n)++] = json_object_get_string(k);
        }
        return PC_OK;
    }
    if (pc_json_get_str(*reply, "public_key", 1, PC_SSHKEY_LINE_MAX, &lines[0], &je) != PC_OK) {
        snprintf(err, errsz, "GET %s answered without a key", path);
        return PC_ERR_PARSE;
    }
    *n = 1;
    return PC_OK;
}

/* One CA file: user_ca.pub (user) or host_ca.pub (host), only where it exists already. */
static int sync_one_ca(const struct ag_config *c, pc_http *h, int user)
{
    const char *path = user ? "/v1/ca/user.pub" : "/v1/ca/host.pub";
    const char *lines[AG_CA_SET_MAX] = { NULL };
    char err[ERRSZ] = "";
    json_object *reply = NULL;
    size_t n = 0;
    int changed = 0, rc;

    if (!have_file(c, user ? AG_USER_CA_FILE : AG_HOST_CA_FILE))
        return PC_OK;
    if ((rc = fetch_ca_set(h, path, &reply, lines, &n, err, sizeof err)) == PC_OK)
        rc = user ? ag_hostca_set_user_cas(c, lines, n, &changed, err, sizeof err)
                  : ag_hostca_write_host_cas(c, lines, n, &changed, err, sizeof err);
    if (rc != PC_OK)
        pc_log(PC_LOG_WARN, "event=%s_ca_sync result=error detail=\"%s\" (the old file stays)",
               user ? "user" : "host", err);
    else if (changed)
        pc_log(PC_LOG_INFO, "event=%s_ca_sync result=updated keys=%zu", user ? "user" : "host", n);
    json_object_put(reply);
    return rc;
}

/* user_ca.pub and host_ca.pub to the control plane's current sets (CA rotation). h: a client
 * to use, or NULL for a fresh one without a token (the keys are public). */
static int sync_cas(const struct ag_config *c, pc_http *h)
{
    struct pc_http_opts o = { .base_url = c->url,
                              .pin = c->pin,
                              .cafile = c->cafile,
                              .connect_timeout_ms = c->connect_timeout_ms,
                              .timeout_ms = c->timeout_ms };
    char err[ERRSZ] = "";
    pc_http *own = NULL;
    int rc, rc2;

    if (!h) {
        if ((rc = pc_http_new(&o, &own, err, sizeof err)) != PC_OK) {
            pc_log(PC_LOG_WARN, "event=ca_sync result=error detail=\"%s\"", err);
            return rc;
        }
        h = own;
    }
    rc = sync_one_ca(c, h, 1);
    rc2 = sync_one_ca(c, h, 0);
    pc_http_free(own);
    return rc != PC_OK ? rc : rc2;
}

/* The class of a failed KRL sync, for its log line: the transport classes (tls, timeout,
 * unreachable, garbage, internal) are the agent protocol's, ag_ops_code_for; the rest are
 * the KRL's own. */
static const char *krl_error_code(int rc)
{
    switch (rc) {
    case PC_ERR_TOOBIG: return "too_big";    /* over AG_KRL_MAX */
    case PC_ERR_STATE: return "http_status"; /* an answer other than 200 */
    case PC_ERR_IO: return "io";             /* ssh_dir or the file could not be written */
    default: return ag_ops_code_for(rc, 0);
    }
}

static void sync_krl(const struct ag_config *c)
{
    char err[ERRSZ] = "";
    uint64_t version = 0;
    int changed = 0, rc;

    if ((rc = ag_krl_sync(c, &changed, &version, err, sizeof err)) != PC_OK)
        pc_log(PC_LOG_WARN,
               "event=krl_sync result=error error=%s detail=\"%s\" (the old KRL "
               "stays)",
               krl_error_code(rc), err);
    else
        pc_log(changed ? PC_LOG_INFO : PC_LOG_DEBUG, "event=krl_sync result=%s version=%llu",
               changed ? "updated" : "unchanged", (unsigned long long)version);
    if (rc == PC_OK) {
        ag_metrics_krl_synced();
        ag_offline_krl_verified(c); /* issue 13: the KRL's age for offline decisions */
    }
}

/* Renews the host certificate when it is due (see ag_maint.h). */
static void maybe_renew(struct ag_maint *m)
{
    const struct ag_config *c = m->cfg;
    char err[ERRSZ] = "";
    uint64_t va = 0, vb = 0;
    int64_t now = pc_now(), due, serial = 0;

    if (!c->host_key || now < m->not_before)
        return;
    if (ag_hostca_cert_window(c, &va, &vb) != PC_OK) {
        if (!have_file(c, AG_HOST_CERT_FILE))
            return; /* this host has no host certificate: nothing to renew */
        due = now;  /* unreadable: replace it */
    } else {
        int64_t life = vb > va ? (int64_t)(vb - va) : 0;
        if (vb == UINT64_MAX)
            return; /* "forever": nothing to renew */
        if (m->jitter_for != vb) {
            unsigned r = 0;
            unsigned bound = (unsigned)(life / 20 > 0 && life / 20 < 0x7fffffff ? life / 20 : 1);
            pc_random_uniform(bound, &r);
            m->jitter_for = vb;
            m->jitter_s = r;
        }
        due = (int64_t)va + life / 3 * 2 - m->jitter_s;
        /* Signed by a host CA key that is no longer in host_ca.pub (the host missed a whole
         * rotation, or it was finished early): clients no longer trust it, renew at once. */
        if (ag_hostca_cert_ca_trusted(c) == 0)
            due = now;
    }
    if (now < due)
        return;
    if (ag_maint_renew_once(c, 1, &serial, err, sizeof err) == PC_OK) {
        m->retry_s = 0;
        m->not_before = now + AG_RENEW_MIN_GAP_S;
        return;
    }
    m->retry_s = m->retry_s ? m->retry_s * 2 : AG_RENEW_RETRY_MIN_S;
    if (m->retry_s > AG_RENEW_RETRY_MAX_S)
        m->retry_s = AG_RENEW_RETRY_MAX_S;
    m->not_before = now + m->retry_s;
    pc_log(PC_LOG_WARN, "event=host_cert_renew retry_in_s=%lld", (long long)m->retry_s);
}

static void *maint_main(void *arg)
{
    struct ag_maint *m = arg;

    pthread_mutex_lock(&m->lock);
    while (!m->stop) {
        struct timespec ts;
        int64_t now = pc_now_ms();

        pthread_mutex_unlock(&m->lock);
        if (now >= m->next_sync_ms) {
            if (have_file(m->cfg, AG_USER_CA_FILE)) {
                /* the CA set first: a KRL that revokes a retired CA key must never find
                 * that key the only one this host trusts */
                sync_cas(m->cfg, NULL);
                sync_krl(m->cfg);
                ag_offline_sync(m->cfg); /* issue 13 */
            }
            /* a no-op without queued events; failmode reports (issue 18) are queued on hosts
             * without CA files too */
            ag_offline_upload(m->cfg);
            m->next_sync_ms = pc_now_ms() + m->cfg->krl_interval_ms;
            /* a sync parses JSON and KRL replies, then frees them: give the freed pages back
             * (once per sync interval, so its cost does not matter) */
            malloc_trim(0);
        }
        maybe_renew(m);
        pthread_mutex_lock(&m->lock);
        if (m->stop)
            break;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += TICK_MS * 1000000L;
        while (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&m->wake, &m->lock, &ts);
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

int ag_maint_start(const struct ag_config *cfg, struct ag_maint **out)
{
    struct ag_maint *m = calloc(1, sizeof *m);
    pthread_condattr_t ca;

    *out = NULL;
    if (!m)
        return PC_ERR_NOMEM;
    m->cfg = cfg;
    m->next_sync_ms = pc_now_ms();
    pthread_mutex_init(&m->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&m->tid, NULL, maint_main, m) != 0) {
        pthread_cond_destroy(&m->wake);
        pthread_mutex_destroy(&m->lock);
        free(m);
        return PC_ERR_NOMEM;
    }
    *out = m;
    return PC_OK;
}

void ag_maint_stop(struct ag_maint *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    m->stop = 1;
    pthread_cond_broadcast(&m->wake);
    pthread_mutex_unlock(&m->lock);
    pthread_join(m->tid, NULL);
    pthread_cond_destroy(&m->wake);
    pthread_mutex_destroy(&m->lock);
    free(m);
}
