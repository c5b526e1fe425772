/* SPDX-License-Identifier: BSD-2-Clause */
/* The daemon's op "principals" and its cache of allows (see ag_principals.h). */
#include "config.h"
#include "ag_principals.h"
#include "ag_metrics.h"
#include "ag_offline.h"
#include "pc_agent_proto.h"
#include "pc_cert.h"
#include "pc_config.h"
#include "pc_err.h"
#include "pc_json.h"
#include "pc_keyopts.h"
#include "pc_log.h"
#include "pc_time.h"
#include "pc_valid.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pentry {
    char *key;        /* account \n key_id \n serial \n fingerprint */
    char *principals; /* joined with \n */
    char *options;    /* the control plane's "options" (JSON text) */
    int64_t stored_ms, expires_ms;
};

struct ag_pcache {
    pthread_mutex_t lock;
    unsigned max, n;
    struct pentry *e;
};

int ag_pcache_new(unsigned max, struct ag_pcache **out)
{
    struct ag_pcache *c = calloc(1, sizeof *c);

    *out = NULL;
    if (!c || !(c->e = calloc(max, sizeof *c->e))) {
        free(c);
        return PC_ERR_NOMEM;
    }
    c->max = max;
    pthread_mutex_init(&c->lock, NULL);
    *out = c;
    return PC_OK;
}

static void entry_clear(struct pentry *e)
{
    free(e->key);
    free(e->principals);
    free(e->options);
    memset(e, 0, sizeof *e);
}

void ag_pcache_free(struct ag_pcache *c)
{
    if (!c)
        return;
    for (unsigned i = 0; i < c->n; i++)
        entry_clear(&c->e[i]);
    pthread_mutex_destroy(&c->lock);
    free(c->e);
    free(c);
}

/* Index of key, or -1. Called with the lock held. */
static int find(struct ag_pcache *c, const char *key)
{
    for (unsigned i = 0; i < c->n; i++)
        if (strcmp(c->e[i].key, key) == 0)
            return (int)i;
    return -1;
}

static void remove_at(struct ag_pcache *c, unsigned i)
{
    entry_clear(&c->e[i]);
    c->e[i] = c->e[--c->n];
    memset(&c->e[c->n], 0, sizeof c->e[c->n]);
}

static void pcache_put(struct ag_pcache *c, const char *key, const char *principals,
                       const char *options, int64_t ttl_ms)
{
    int64_t now = pc_now_ms();
    char *k = strdup(key), *p = strdup(principals), *o = strdup(options);
    int i;

    if (!k || !p || !o) {
        free(k);
        free(p);
        free(o);
        return;
    }
    pthread_mutex_lock(&c->lock);
    if ((i = find(c, key)) >= 0)
        remove_at(c, (unsigned)i);
    if (c->n == c->max) {
        unsigned oldest = 0;
        for (unsigned j = 1; j < c->n; j++)
            if (c->e[j].stored_ms < c->e[oldest].stored_ms)
                oldest = j;
        remove_at(c, oldest);
    }
    c->e[c->n++] = (struct pentry){
        .key = k, .principals = p, .options = o, .stored_ms = now, .expires_ms = now + ttl_ms
    };
    pthread_mutex_unlock(&c->lock);
}

static void pcache_drop(struct ag_pcache *c, const char *key)
{
    int i;
    pthread_mutex_lock(&c->lock);
    if ((i = find(c, key)) >= 0)
        remove_at(c, (unsigned)i);
    pthread_mutex_unlock(&c->lock);
}

/* A fresh entry's principals (malloc'ed), its options (*options, malloc'ed) and its age, or
 * NULL. Expired entries are removed. */
static char *pcache_get(struct ag_pcache *c, const char *key, char **options, int64_t *age_ms)
{
    int64_t now = pc_now_ms();
    char *p = NULL;
    int i;

    pthread_mutex_lock(&c->lock);
    if ((i = find(c, key)) >= 0) {
        if (now >= c->e[i].expires_ms) {
            remove_at(c, (unsigned)i);
        } else {
            p = strdup(c->e[i].principals);
            *options = strdup(c->e[i].options);
            *age_ms = now - c->e[i].stored_ms;
            if (!p || !*options) {
                free(p);
                free(*options);
                p = *options = NULL;
            }
        }
    }
    pthread_mutex_unlock(&c->lock);
    return p;
}

/* ---- the op ------------------------------------------------------------------------------ */

static int account_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || s[0] == '-')
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("._-@$", *s)))
            return 0;
    return 1;
}

/* Printable ASCII without spaces (space allowed with spaces). */
static int printable(const char *s, size_t max, int spaces)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (; *s; s++)
        if (*s < 0x20 + !spaces || *s > 0x7e)
            return 0;
    return 1;
}

/* Appends s percent-encoded (everything but RFC 3986 unreserved characters). */
static void put_escaped(char *out, size_t outsz, size_t *pos, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s && *pos + 4 < outsz; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            out[(*pos)++] = (char)ch;
        } else {
            out[(*pos)++] = '%';
            out[(*pos)++] = hex[ch >> 4];
            out[(*pos)++] = hex[ch & 15];
        }
    }
    out[*pos] = '\0';
}

static json_object *reply_ok(const char *joined, const char *options, int cached)
{
    json_object *o = json_object_new_object(), *arr = json_object_new_array();
    const char *p = joined;

    while (p && *p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        json_object_array_add(arr, json_object_new_string_len(p, (int)n));
        p += n + (nl ? 1 : 0);
    }
    json_object_object_add(o, "ok", json_object_new_boolean(1));
    json_object_object_add(o, "principals", arr);
    if (*joined)
        json_object_object_add(o, "options", json_tokener_parse(options));
    json_object_object_add(o, "cached", json_object_new_boolean(cached));
    return o;
}

/* The control plane's principals, checked and joined with '\n' into out ("" for none), and
 * with any principal their key options (checked by building them), as JSON text into opts. */
static int take_principals(json_object *cp, char *out, size_t outsz, char *opts, size_t optssz,
                           int64_t *cache_ttl)
{
    char line[PC_KEYOPTS_LINE_MAX];
    json_object *arr = NULL, *o = NULL;
    struct pc_jerr je = { 0 };
    size_t n, pos = 0;

    *out = *opts = '\0';
    if (pc_json_get_str_array(cp, "principals", 1, PC_CERT_MAX_PRINCIPALS, PC_CERT_NAME_MAX, &arr,
                              &je) != PC_OK ||
        pc_json_get_int(cp, "cache_ttl", 0, 0, 7 * 86400, cache_ttl, &je) != PC_OK)
        return PC_ERR_PARSE;
    n = json_object_array_length(arr);
    for (size_t i = 0; i < n; i++) {
        const char *s = json_object_get_string(json_object_array_get_idx(arr, i));
        size_t len = strlen(s);
        if (!pc_valid_principal(s, len) || pos + len + 2 > outsz)
            return PC_ERR_PARSE;
        if (pos)
            out[pos++] = '\n';
        memcpy(out + pos, s, len + 1);
        pos += len;
    }
    if (n > 0) {
        const char *txt;
        if (!json_object_object_get_ex(cp, "options", &o) ||
            pc_keyopts_build(o, line, sizeof line) != PC_OK)
            return PC_ERR_PARSE;
        txt = pc_json_dump(o);
        if (strlen(txt) >= optssz)
            return PC_ERR_PARSE;
        memcpy(opts, txt, strlen(txt) + 1);
    }
    return PC_OK;
}

json_object *ag_principals_op(struct ag_ctx *x, json_object *req)
{
    static const char *const fields[] = {
        "op", "account", "key_id", "serial", "fingerprint", NULL
    };
    const char *account = NULL, *key_id = NULL, *serial = NULL, *fp = NULL, *code = NULL;
    char path[2048], key[1024], joined[PC_CERT_MAX_PRINCIPALS * 32], sa[72], sk[72];
    char opts[4 * PC_KEYOPTS_LINE_MAX]; /* JSON text: escaping may double a value */
    json_object *cp = NULL, *out = NULL, *errobj = NULL;
    int64_t ttl = -1, age = 0;
    long budget = x->cfg->timeout_ms < AG_PRINCIPALS_CP_MS ? x->cfg->timeout_ms
                                                           : AG_PRINCIPALS_CP_MS;
    struct pc_jerr je = { 0 };
    uint64_t sn;
    size_t pos;
    char *hit, *hit_opts = NULL;

    if (pc_json_only_fields(req, fields, &je) != PC_OK ||
        pc_json_get_str(req, "account", 1, 64, &account, &je) != PC_OK ||
        pc_json_get_str(req, "key_id", 1, 255, &key_id, &je) != PC_OK ||
        pc_json_get_str(req, "serial", 1, 20, &serial, &je) != PC_OK ||
        pc_json_get_str(req, "fingerprint", 1, 128, &fp, &je) != PC_OK) {
        pc_log(PC_LOG_WARN, "event=request_refused op=principals message=\"%s\"", je.message);
        return ag_ops_error(PC_AGENT_E_BAD_REQUEST, je.message);
    }
    if (!account_ok(account) || !printable(key_id, 255, 1) ||
        pc_parse_uint(serial, 0, UINT64_MAX, &sn) != PC_OK || !printable(fp, 128, 0)) {
        pc_log(PC_LOG_WARN, "event=request_refused op=principals message=\"bad field\"");
        return ag_ops_error(PC_AGENT_E_BAD_REQUEST,
                            "account, key_id, serial or fingerprint is malformed");
    }
    ag_ops_log_safe(account, sa, sizeof sa);
    ag_ops_log_safe(key_id, sk, sizeof sk);
    snprintf(key, sizeof key, "%s\n%s\n%s\n%s", account, key_id, serial, fp);
    pos = (size_t)snprintf(path, sizeof path, "/v1/hosts/self/principals?account=");
    put_escaped(path, sizeof path, &pos, account);
    pos += (size_t)snprintf(path + pos, sizeof path - pos, "&key_id=");
    put_escaped(path, sizeof path, &pos, key_id);
    pos += (size_t)snprintf(path + pos, sizeof path - pos, "&serial=%s&fingerprint=", serial);
    put_escaped(path, sizeof path, &pos, fp);

    errobj = ag_ops_cp_call(x, "principals", "GET", path, NULL, budget - x->cfg->timeout_ms,
                            AG_CALL_IDEMPOTENT, &cp);
    if (!errobj) {
        if (take_principals(cp, joined, sizeof joined, opts, sizeof opts, &ttl) != PC_OK) {
            out = ag_ops_error(PC_AGENT_E_GARBAGE,
                               "the control plane's reply is not what was expected "
                               "(principals)");
            goto out;
        }
        if (!*joined) {
            pcache_drop(x->pcache, key);
        } else {
            int64_t keep = x->cfg->principals_stale_ms;
            if (ttl >= 0 && ttl * 1000 < keep)
                keep = ttl * 1000;
            if (keep > 0)
                pcache_put(x->pcache, key, joined, opts, keep);
        }
        pc_log(PC_LOG_INFO,
               "event=principals account=%s key_id=%s serial=%s result=%s source=control_plane", sa,
               sk, serial, *joined ? "allow" : "deny");
        out = reply_ok(joined, opts, 0);
        goto out;
    }
    {
        json_object *c = NULL;
        if (json_object_object_get_ex(errobj, "error", &c))
            code = json_object_get_string(c);
    }
    if (code &&
        (strcmp(code, PC_AGENT_E_UNREACHABLE) == 0 || strcmp(code, PC_AGENT_E_TIMEOUT) == 0) &&
        (hit = pcache_get(x->pcache, key, &hit_opts, &age)) != NULL) {
        pc_metric_inc(&ag_m_principals_cache, "hit", NULL, NULL);
        pc_log(PC_LOG_WARN,
               "event=principals account=%s key_id=%s serial=%s result=allow "
               "source=cache age_ms=%lld error=%s",
               sa, sk, serial, (long long)age, code);
        out = reply_ok(hit, hit_opts, 1);
        free(hit);
        free(hit_opts);
        goto out;
    }
    if (code &&
        (strcmp(code, PC_AGENT_E_UNREACHABLE) == 0 || strcmp(code, PC_AGENT_E_TIMEOUT) == 0))
        pc_metric_inc(&ag_m_principals_cache, "miss", NULL, NULL);
    /* issue 13: a per-certificate pair of the offline document (the KRL fresh) */
    if (code &&
        (strcmp(code, PC_AGENT_E_UNREACHABLE) == 0 || strcmp(code, PC_AGENT_E_TIMEOUT) == 0) &&
        ag_offline_principals(x->cfg, account, key_id, fp, &hit_opts) == PC_OK) {
        pc_log(PC_LOG_WARN,
               "event=principals account=%s key_id=%s serial=%s result=allow source=offline "
               "error=%s",
               sa, sk, serial, code);
        out = reply_ok(key_id, hit_opts, 1);
        free(hit_opts);
        goto out;
    }
    pc_log(PC_LOG_WARN, "event=principals account=%s key_id=%s serial=%s result=error error=%s", sa,
           sk, serial, code ? code : "?");
    out = errobj;
    errobj = NULL;
out:
    json_object_put(errobj);
    json_object_put(cp);
    return out;
}
