/* SPDX-License-Identifier: BSD-2-Clause */
/* Issue 13: offline decisions (see ag_offline.h). */
#include "config.h"
#include "ag_offline.h"
#include "ag_enroll.h"
#include "ag_hostca.h"
#include "pc_cert.h"
#include "pc_err.h"
#include "pc_fs.h"
#include "pc_http.h"
#include "pc_json.h"
#include "pc_keyopts.h"
#include "pc_log.h"
#include "pc_rand.h"
#include "pc_sshkey.h"
#include "pc_time.h"
#include "pc_valid.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ERRSZ 512
#define MAX_CA_KEYS 8
/* events per POST: the control plane takes at most 200; 100 keeps a POST of the longest
 * failmode reports (issue 18, ~340 bytes each) below its 64 KiB body limit */
#define AG_OFFLINE_UPLOAD_CHUNK 100

/* Names as the control plane's users: 1-64 of [A-Za-z0-9._-]. */
static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || s[0] == '-')
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("._-", *s)))
            return 0;
    return 1;
}

static int fingerprints_ok(json_object *e)
{
    json_object *arr = NULL;
    struct pc_jerr je = { 0 };
    return pc_json_get_str_array(e, "fingerprints", 1, 64, PC_SSHKEY_FP_SIZE, &arr, &je) == PC_OK;
}

/* 1 if fp is one of the entry's registered key fingerprints. */
static int fp_registered(json_object *e, const char *fp)
{
    json_object *arr = json_object_object_get(e, "fingerprints");
    for (size_t i = 0; fp && i < json_object_array_length(arr); i++)
        if (strcmp(json_object_get_string(json_object_array_get_idx(arr, i)), fp) == 0)
            return 1;
    return 0;
}

/* Checks the document's shape: every field bounded, every name valid, every options object one
 * that builds a principals line, every CA key parses. */
static int doc_ok(json_object *doc)
{
    json_object *arr = NULL, *cas = NULL;
    struct pc_jerr je = { 0 };
    int64_t at = 0;
    char line[PC_KEYOPTS_LINE_MAX];

    if (pc_json_get_int(doc, "generated_at", 1, 1, INT64_MAX / 2, &at, &je) != PC_OK ||
        pc_json_get_str_array(doc, "user_ca", 1, MAX_CA_KEYS, PC_SSHKEY_LINE_MAX, &cas, &je) !=
            PC_OK ||
        !json_object_object_get_ex(doc, "per_certificate", &arr) ||
        !json_object_is_type(arr, json_type_array) || json_object_array_length(arr) > 4096)
        return 0;
    if (!ag_offcodes_ok(doc))
        return 0;
    for (size_t i = 0; i < json_object_array_length(cas); i++) {
        struct pc_sshkey *k = NULL;
        if (pc_sshkey_parse_line(json_object_get_string(json_object_array_get_idx(cas, i)), &k,
                                 NULL) != PC_OK)
            return 0;
        pc_sshkey_free(k);
    }
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *e = json_object_array_get_idx(arr, i), *o = NULL;
        const char *p = NULL, *a = NULL;
        if (!json_object_is_type(e, json_type_object) ||
            pc_json_get_str(e, "person", 1, 64, &p, &je) != PC_OK ||
            pc_json_get_str(e, "account", 1, 64, &a, &je) != PC_OK || !name_ok(p) || !name_ok(a) ||
            !fingerprints_ok(e) || !json_object_object_get_ex(e, "options", &o) ||
            pc_keyopts_build(o, line, sizeof line) != PC_OK)
            return 0;
    }
    return 1;
}

static int doc_path(const struct ag_config *c, char *path, size_t n)
{
    return ag_hostca_path(c, AG_OFFLINE_FILE, path, n);
}

int ag_offline_sync(const struct ag_config *c)
{
    char err[ERRSZ] = "", path[PATH_MAX];
    json_object *reply = NULL;
    pc_http *h = NULL;
    long status = 0;
    const char *txt;
    unsigned char *body = NULL;
    size_t blen = 0;
    int rc;

    if ((rc = doc_path(c, path, sizeof path)) != PC_OK)
        return rc;
    /* a plain GET bounded by AG_OFFLINE_MAX: with offline codes the document outgrows
     * pc_http_call's 1 MiB (a 72 h window is ~400 KB per person) */
    if ((rc = ag_enroll_http(c, &h, err, sizeof err)) == PC_OK &&
        (rc = pc_http_get(h, "/v1/hosts/self/offline", AG_OFFLINE_MAX, 0, &status, &body, &blen,
                          err, sizeof err)) == PC_OK) {
        json_tokener *tok = json_tokener_new_ex(64);
        if (tok && body && blen > 0 && blen <= INT_MAX) {
            reply = json_tokener_parse_ex(tok, (const char *)body, (int)blen);
            if (json_tokener_get_error(tok) != json_tokener_success ||
                json_tokener_get_parse_end(tok) != blen ||
                !json_object_is_type(reply, json_type_object)) {
                json_object_put(reply);
                reply = NULL;
            }
        }
        if (tok)
            json_tokener_free(tok);
        free(body);
        body = NULL;
        if (status != 200 || !reply || !doc_ok(reply)) {
            snprintf(err, sizeof err,
                     "GET /v1/hosts/self/offline answered HTTP %ld, not the "
                     "expected document",
                     status);
            rc = PC_ERR_PARSE;
        } else {
            txt = json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN);
            if ((rc = pc_write_file_atomic(path, txt, strlen(txt), 0600)) != PC_OK)
                snprintf(err, sizeof err, "%s: cannot write it", path);
        }
    }
    if (rc != PC_OK)
        pc_log(PC_LOG_WARN,
               "event=offline_sync result=error detail=\"%s\" (the old document "
               "stays)",
               err);
    else
        pc_log(PC_LOG_DEBUG, "event=offline_sync result=ok");
    json_object_put(reply);
    pc_http_free(h);
    return rc;
}

void ag_offline_krl_verified(const struct ag_config *c)
{
    char path[PATH_MAX];
    if (ag_hostca_path(c, AG_KRL_FILE, path, sizeof path) == PC_OK &&
        utimensat(AT_FDCWD, path, NULL, 0) != 0)
        pc_log(PC_LOG_WARN, "event=krl_verified result=error file=%s", path);
}

int64_t ag_offline_krl_age(const struct ag_config *c)
{
    char path[PATH_MAX];
    struct stat st;
    int64_t age;

    if (ag_hostca_path(c, AG_KRL_FILE, path, sizeof path) != PC_OK || stat(path, &st) != 0)
        return -1;
    age = pc_now() - (int64_t)st.st_mtime;
    return age < 0 ? 0 : age;
}

static int krl_fresh(const struct ag_config *c)
{
    int64_t age = ag_offline_krl_age(c);
    return age >= 0 && age * 1000 <= c->offline_krl_max_age_ms;
}

/* The stored document, checked, or NULL. */
json_object *ag_offline_doc_load(const struct ag_config *c)
{
    char path[PATH_MAX], *txt = NULL;
    size_t len = 0;
    json_object *doc = NULL;

    if (doc_path(c, path, sizeof path) != PC_OK ||
        pc_read_file(path, AG_OFFLINE_MAX, &txt, &len) != PC_OK)
        return NULL;
    doc = json_tokener_parse(txt);
    free(txt);
    if (doc && !doc_ok(doc)) {
        pc_log(PC_LOG_WARN, "event=offline_document result=invalid file=%s", path);
        json_object_put(doc);
        doc = NULL;
    }
    return doc;
}

/* The options of (person, account) in doc for a key with fingerprint fp (one of the person's
 * registered keys: a certificate from another CA that sshd also trusts, for another key, never
 * matches), or NULL. */
static json_object *pair_options(json_object *doc, const char *person, const char *account,
                                 const char *fp)
{
    json_object *arr = json_object_object_get(doc, "per_certificate");
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *e = json_object_array_get_idx(arr, i);
        if (strcmp(json_object_get_string(json_object_object_get(e, "person")), person) == 0 &&
            strcmp(json_object_get_string(json_object_object_get(e, "account")), account) == 0 &&
            fp_registered(e, fp))
            return json_object_object_get(e, "options");
    }
    return NULL;
}

/* 1 if the certificate's CA is one of the document's user CA keys. */
static int ca_is_ours(json_object *doc, const struct pc_cert *cert)
{
    json_object *cas = json_object_object_get(doc, "user_ca");
    int ours = 0;
    for (size_t i = 0; !ours && i < json_object_array_length(cas); i++) {
        struct pc_sshkey *k = NULL;
        if (pc_sshkey_parse_line(json_object_get_string(json_object_array_get_idx(cas, i)), &k,
                                 NULL) == PC_OK)
            ours = pc_sshkey_equal(k, cert->ca);
        pc_sshkey_free(k);
    }
    return ours;
}

int ag_offline_cert_person(json_object *doc, const char *auth_info, char *person, size_t psz,
                           char fp[PC_SSHKEY_FP_SIZE])
{
    struct pc_cert *cert = NULL;
    int ok;

    if (!auth_info || pc_cert_parse_auth_info(auth_info, &cert) != PC_OK)
        return 0;
    ok = cert->type == PC_CERT_USER && ca_is_ours(doc, cert) && cert->key_id &&
         name_ok(cert->key_id) && pc_cert_has_principal(cert, cert->key_id) &&
         pc_cert_valid_at(cert, pc_now()) && pc_sshkey_fingerprint(cert->subject, fp) == PC_OK &&
         (size_t)snprintf(person, psz, "%s", cert->key_id) < psz;
    pc_cert_free(cert);
    return ok;
}

int ag_offline_principals(const struct ag_config *c, const char *account, const char *key_id,
                          const char *fp, char **opts)
{
    json_object *doc, *o;
    int rc = PC_ERR_NOTFOUND;

    *opts = NULL;
    if (!name_ok(account) || !name_ok(key_id) || !krl_fresh(c) || !(doc = ag_offline_doc_load(c)))
        return PC_ERR_NOTFOUND;
    if ((o = pair_options(doc, key_id, account, fp)) != NULL ||
        (o = ag_offcodes_options(doc, key_id, account, fp)) != NULL) { /* PAM then asks a code */
        *opts = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        rc = *opts ? PC_OK : PC_ERR_NOMEM;
    }
    json_object_put(doc);
    return rc;
}

/* ---- the event queue ----------------------------------------------------------------------- */

static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;

int ag_offline_queue_append(const struct ag_config *c, const char *id, const char *user,
                            const char *person, const char *action, const char *reason,
                            int64_t step)
{
    json_object *ev = json_object_new_object();
    int rc;

    json_object_object_add(ev, "id", json_object_new_string(id));
    json_object_object_add(ev, "at", json_object_new_int64(pc_now()));
    json_object_object_add(ev, "user", json_object_new_string(user));
    json_object_object_add(ev, "person", json_object_new_string(person));
    json_object_object_add(ev, "action", json_object_new_string(action));
    json_object_object_add(ev, "reason", json_object_new_string(reason));
    if (step >= 0)
        json_object_object_add(ev, "step", json_object_new_int64(step));
    rc = ag_offline_enqueue(c, ev);
    json_object_put(ev);
    return rc;
}

int ag_offline_enqueue(const struct ag_config *c, json_object *ev)
{
    char path[PATH_MAX];
    const char *txt = json_object_to_json_string_ext(ev, JSON_C_TO_STRING_PLAIN);
    size_t len = strlen(txt), off = 0;
    int fd, rc = PC_OK;

    if (ag_hostca_path(c, AG_OFFLINE_QUEUE, path, sizeof path) != PC_OK)
        return PC_ERR_INVAL;
    pthread_mutex_lock(&queue_lock);
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        rc = PC_ERR_IO;
    } else {
        while (rc == PC_OK && off < len) {
            ssize_t n = write(fd, txt + off, len - off);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                rc = PC_ERR_IO;
            else
                off += (size_t)n;
        }
        if (rc == PC_OK && (write(fd, "\n", 1) != 1 || fsync(fd) != 0))
            rc = PC_ERR_IO;
        close(fd);
    }
    pthread_mutex_unlock(&queue_lock);
    if (rc != PC_OK)
        pc_log(PC_LOG_ERR, "event=offline_queue result=error file=%s (no offline decision)", path);
    return rc;
}

/* The lines of a queue file that parse as objects, or NULL. */
static json_object *queue_read(const char *path)
{
    char *txt = NULL, *line, *save = NULL;
    size_t len = 0;
    json_object *arr;

    if (pc_read_file(path, AG_OFFLINE_MAX, &txt, &len) != PC_OK)
        return NULL;
    arr = json_object_new_array();
    for (line = strtok_r(txt, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_object *ev = json_tokener_parse(line);
        if (ev && json_object_is_type(ev, json_type_object))
            json_object_array_add(arr, ev);
        else
            json_object_put(ev); /* a torn last line after a crash before fsync: never replied */
    }
    free(txt);
    return arr;
}

static int upload_once(const struct ag_config *c)
{
    char q[PATH_MAX], s[PATH_MAX], err[ERRSZ] = "";
    struct stat st;
    json_object *events = NULL, *body, *reply = NULL;
    pc_http *h = NULL;
    long status = 0;
    int rc;

    if (ag_hostca_path(c, AG_OFFLINE_QUEUE, q, sizeof q) != PC_OK ||
        ag_hostca_path(c, AG_OFFLINE_SENDING, s, sizeof s) != PC_OK)
        return PC_ERR_INVAL;
    pthread_mutex_lock(&queue_lock);
    if (stat(s, &st) != 0 && stat(q, &st) == 0 && rename(q, s) != 0)
        pc_log(PC_LOG_WARN, "event=offline_upload result=error detail=\"cannot rename %s\"", q);
    pthread_mutex_unlock(&queue_lock);
    if (stat(s, &st) != 0)
        return PC_OK; /* nothing queued */
    if (!(events = queue_read(s)))
        return PC_ERR_IO;
    rc = PC_OK;
    for (size_t i = 0; rc == PC_OK && i < json_object_array_length(events);
         i += AG_OFFLINE_UPLOAD_CHUNK) {
        json_object *chunk = json_object_new_array();
        for (size_t j = i; j < i + AG_OFFLINE_UPLOAD_CHUNK && j < json_object_array_length(events);
             j++)
            json_object_array_add(chunk, json_object_get(json_object_array_get_idx(events, j)));
        body = json_object_new_object();
        json_object_object_add(body, "events", chunk);
        if (!h)
            rc = ag_enroll_http(c, &h, err, sizeof err);
        if (rc == PC_OK)
            rc = pc_http_call(h, "POST", "/v1/hosts/self/offline/events", body, 0, &status, &reply,
                              err, sizeof err);
        if (rc == PC_OK && status != 200) {
            snprintf(err, sizeof err, "the control plane answered HTTP %ld", status);
            rc = PC_ERR_STATE;
        }
        json_object_put(reply);
        reply = NULL;
        json_object_put(body);
    }
    if (rc == PC_OK && unlink(s) != 0)
        rc = PC_ERR_IO;
    if (rc == PC_OK)
        pc_log(PC_LOG_INFO, "event=offline_upload result=ok events=%zu",
               json_object_array_length(events));
    else
        pc_log(PC_LOG_WARN,
               "event=offline_upload result=error detail=\"%s\" (kept for the next "
               "try)",
               err);
    json_object_put(events);
    pc_http_free(h);
    return rc;
}

int ag_offline_upload(const struct ag_config *c)
{
    char q[PATH_MAX];
    struct stat st;
    int rc = upload_once(c);

    /* A .sending left by an earlier failed try goes first; the queue behind it goes now too,
     * not one krl_interval later. */
    if (rc == PC_OK && ag_hostca_path(c, AG_OFFLINE_QUEUE, q, sizeof q) == PC_OK &&
        stat(q, &st) == 0)
        rc = upload_once(c);
    return rc;
}

/* What the two queue files are now (absent: st_ino 0), to see whether they changed. */
static void queue_files_state(const char paths[2][PATH_MAX], struct stat st[2])
{
    for (size_t i = 0; i < 2; i++)
        if (!paths[i][0] || stat(paths[i], &st[i]) != 0)
            memset(&st[i], 0, sizeof st[i]);
}

static int queue_files_same(const struct stat a[2], const struct stat b[2])
{
    for (size_t i = 0; i < 2; i++)
        if (a[i].st_ino != b[i].st_ino || a[i].st_size != b[i].st_size ||
            a[i].st_mtim.tv_sec != b[i].st_mtim.tv_sec ||
            a[i].st_mtim.tv_nsec != b[i].st_mtim.tv_nsec)
            return 0;
    return 1;
}

/* Test hook (a test build only): create the file PC_TEST_QUEUE_COUNT_PAUSE names and wait, up
 * to 30 s, until the test has moved the queue and removed it. */
static void test_pause_between_reads(void)
{
#ifdef PC_TEST_HOOKS
    const char *e = getenv("PC_TEST_QUEUE_COUNT_PAUSE");
    int fd;

    if (e && *e && (fd = open(e, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) >= 0) {
        close(fd);
        for (int w = 0; w < 3000 && access(e, F_OK) == 0; w++)
            usleep(10000);
    }
#endif
}

int64_t ag_offline_queued(const struct ag_config *c)
{
    const char *names[] = { AG_OFFLINE_QUEUE, AG_OFFLINE_SENDING };
    char paths[2][PATH_MAX];
    struct stat before[2], after[2];
    int64_t n = 0;

    for (size_t i = 0; i < 2; i++)
        if (ag_hostca_path(c, names[i], paths[i], sizeof paths[i]) != PC_OK)
            paths[i][0] = '\0';
    /* `portcullis-agent status` counts in its own process while the daemon's sync may move
     * the queue to .sending between the two reads (the same events counted twice) or append
     * to it: count again until neither file changed during a count. */
    for (int tries = 0; tries < 10; tries++) {
        queue_files_state(paths, before);
        n = 0;
        for (size_t i = 0; i < 2; i++) {
            json_object *arr;
            if (!paths[i][0])
                continue;
            if (i == 1 && tries == 0)
                test_pause_between_reads();
            pthread_mutex_lock(&queue_lock);
            arr = queue_read(paths[i]);
            pthread_mutex_unlock(&queue_lock);
            if (arr)
                n += (int64_t)json_object_array_length(arr);
            json_object_put(arr);
        }
        queue_files_state(paths, after);
        if (queue_files_same(before, after))
            break;
    }
    return n;
}

/* ---- decisions -------------------------------------------------------------------------------- */

int ag_offline_begin(const struct ag_config *c, const char *user, const char *auth_info,
                     const char **action, const char **reason, char txid[33])
{
    struct pc_cert *cert = NULL;
    json_object *doc = NULL;
    int64_t at = 0, now = pc_now();
    char method[16], fp[PC_SSHKEY_FP_SIZE];
    int decided = 0;

    if (!auth_info || pc_cert_parse_auth_info(auth_info, &cert) != PC_OK)
        return 0;
    if (!(doc = ag_offline_doc_load(c)))
        goto out;
    if (cert->type != PC_CERT_USER || !ca_is_ours(doc, cert) || !cert->key_id ||
        !name_ok(cert->key_id) || !pc_cert_has_principal(cert, cert->key_id) ||
        !pc_cert_valid_at(cert, now) || pc_cert_2fa(cert, &at, method) != PC_OK || at > now ||
        pc_sshkey_fingerprint(cert->subject, fp) != PC_OK ||
        !pair_options(doc, cert->key_id, user, fp))
        goto out;
    if (!krl_fresh(c)) {
        *action = "deny";
        *reason = "offline_krl_stale";
    } else {
        *action = "allow";
        *reason = "certificate_2fa_offline";
    }
    /* queued (fsync'ed) before the reply; the id lets the control plane keep it once */
    decided = name_ok(user) && pc_random_hex(txid, 33, 16) == PC_OK &&
              ag_offline_queue_append(c, txid, user, cert->key_id, *action, *reason, -1) == PC_OK;
out:
    json_object_put(doc);
    pc_cert_free(cert);
    return decided;
}

void ag_offline_summary(const struct ag_config *c, int64_t *doc_age, int64_t *people,
                        int64_t *krl_age)
{
    json_object *doc = ag_offline_doc_load(c), *arr;
    int64_t at;

    *doc_age = *people = -1;
    *krl_age = ag_offline_krl_age(c);
    if (!doc)
        return;
    at = json_object_get_int64(json_object_object_get(doc, "generated_at"));
    *doc_age = pc_now() - at;
    arr = json_object_object_get(doc, "per_certificate");
    *people = 0;
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        const char *p = json_object_get_string(
            json_object_object_get(json_object_array_get_idx(arr, i), "person"));
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(p, json_object_get_string(
                                 json_object_object_get(json_object_array_get_idx(arr, j),
                                                        "person"))) == 0;
        *people += !seen;
    }
    json_object_put(doc);
}
