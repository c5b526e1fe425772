/* SPDX-License-Identifier: BSD-2-Clause */
/* portcullisd: the Portcullis control plane. Thin: set up, serve, shut down cleanly. */
#include "config.h"
#include "api.h"
#include "cp_backup.h"
#include "cp_ca.h"
#include "cp_hosts.h"
#include "cp_notify.h"
#include "cp_secrets.h"
#include "cp_authtx.h"
#include "cp_push.h"
#include "cp_refusals.h"
#include "cp_retention.h"
#include "cp_ratelimit.h"
#include "cp_server.h"
#include "cp_settings.h"
#include "cp_store.h"
#include "cp_offcodes.h"
#include "cp_tls.h"
#include "cp_tokens.h"
#include "cp_users.h"
#include "cp_waiters.h"
#include "cp_access.h"
#include "cp_web.h"
#include "cp_webhook.h"
#include "cp_webpush.h"
#include "pc_err.h"
#include "pc_fs.h"
#include "pc_log.h"
#include "pc_mem.h"
#include "pc_secretbox.h"
#include "pc_totp.h"
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

struct cp_runtime cp_rt;

/* the most malloc arenas: see main */
#define CP_MALLOC_ARENAS 2
#define CP_MALLOC_TRIM_THRESHOLD (1024 * 1024)

static int path_in(const char *dir, const char *name, char *out, size_t n)
{
    return snprintf(out, n, "%s/%s", dir, name) < (int)n ? PC_OK : PC_ERR_INVAL;
}

/* Connections and parked long-polls hold a descriptor each: want (and 64 more for the rest:
 * the database, logs, libcurl's sockets), as far as the hard limit permits. */
static void raise_fd_limit(unsigned want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < want + 64) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want + 64 ? want + 64
                                                                              : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int store_path(const struct cp_settings *s, char *out, size_t n);

/* PostgreSQL: the instances' shared TLS identity is the database's (cp_secrets.h); copy it into
 * DIR first. An empty database has none yet: the key made below is stored at the first start. */
static int pull_from_store(const struct cp_settings *s, char *err, size_t errsz)
{
    char path[PATH_MAX];
    unsigned char skey[PC_SECRETBOX_KEY_BYTES];
    cp_conn *db;
    int rc;

    if ((rc = cp_secrets_master_path(s->data_dir, path, sizeof path)) != PC_OK ||
        (rc = pc_secretbox_load_key(path, 1, skey, err, errsz)) != PC_OK)
        return rc;
    cp_secrets_set_master(skey, path);
    pc_wipe(skey, sizeof skey);
    if ((rc = store_path(s, path, sizeof path)) == PC_OK &&
        (rc = cp_store_open(path, err, errsz)) == PC_OK) {
        rc = (db = cp_db()) ? cp_secrets_pull(db, s->data_dir, err, errsz) : PC_ERR_STORE;
        if (!db)
            snprintf(err, errsz, "cannot open the database");
    }
    pc_wipe(path, sizeof path);
    cp_store_close_all();
    cp_secrets_wipe();
    return rc;
}

static int print_pin(const struct cp_settings *s)
{
    char *key = NULL, *cert = NULL, pin[CP_PIN_MAX], err[1024];
    int rc;

    umask(077);
    if (pc_mkdir_mode(s->data_dir, 0700) != PC_OK) {
        fprintf(stderr, "portcullisd: %s: cannot create the data directory\n", s->data_dir);
        return 1;
    }
    rc = s->store[0] ? pull_from_store(s, err, sizeof err) : PC_OK;
    if (rc == PC_OK)
        rc = cp_tls_load_or_create(s->data_dir, &key, &cert, err, sizeof err);
    if (rc == PC_OK)
        rc = cp_tls_pin(cert, pin, err, sizeof err);
    if (key)
        pc_free_secret_str(key);
    free(cert);
    if (rc != PC_OK) {
        fprintf(stderr, "portcullisd: %s\n", err);
        return 1;
    }
    printf("%s\n", pin);
    return 0;
}

/* The TLS identity, the admin token and the CA keys. On PostgreSQL all in one write
 * transaction (its lock makes instances that start together take turns): the database's copies
 * first, then whatever is still missing is made and stored (cp_secrets.h). */
static int load_secrets(const struct cp_settings *s, char **key, char **cert, char *err,
                        size_t errsz)
{
    cp_conn *db = cp_db();
    int rc, pg = cp_sql_is_pg(), changed = 0;

    if (!db) {
        snprintf(err, errsz, "cannot open the database");
        return PC_ERR_STORE;
    }
    if (pg && cp_tx_begin(db) != PC_OK) {
        snprintf(err, errsz, "cannot begin a transaction: %s", cp_errmsg(db));
        return PC_ERR_STORE;
    }
    if ((rc = cp_secrets_pull(db, s->data_dir, err, errsz)) != PC_OK ||
        (rc = cp_tls_load_or_create(s->data_dir, key, cert, err, errsz)) != PC_OK ||
        (rc = cp_admin_token_ensure(s->data_dir, err, errsz)) != PC_OK ||
        (rc = cp_ca_init(s->data_dir, s->ca_key_type, err, errsz)) != PC_OK ||
        (rc = cp_secrets_push(db, s->data_dir, &changed, err, errsz)) != PC_OK)
        goto out;
    if (changed) { /* another instance stored its secrets first: use those */
        pc_log(PC_LOG_WARN, "event=secrets_reloaded note=\"another instance stored them first\"");
        pc_free_secret_str(*key);
        free(*cert);
        *key = *cert = NULL;
        cp_ca_free();
        if ((rc = cp_tls_load_or_create(s->data_dir, key, cert, err, errsz)) != PC_OK ||
            (rc = cp_admin_token_ensure(s->data_dir, err, errsz)) != PC_OK ||
            (rc = cp_ca_init(s->data_dir, s->ca_key_type, err, errsz)) != PC_OK)
            goto out;
    }
    if (pg && (rc = cp_tx_commit(db)) != PC_OK)
        snprintf(err, errsz, "cannot store the server secrets: %s", cp_errmsg(db));
out:
    if (rc != PC_OK && pg)
        cp_tx_rollback(db);
    return rc;
}

/* The store: --store's PostgreSQL URL, else DIR/portcullis.db. */
static int store_path(const struct cp_settings *s, char *out, size_t n)
{
    if (!s->store[0])
        return path_in(s->data_dir, "portcullis.db", out, n);
    return snprintf(out, n, "%s", s->store) < (int)n ? PC_OK : PC_ERR_INVAL;
}

/* The store's kind for messages; never the URL: it may hold a password. */
static const char *store_kind(void)
{
    return cp_sql_is_pg() ? "postgresql" : "sqlite";
}

/* --migrate-only: open the store (SQLite: creating DIR and the file if needed), migrate it to
 * the newest schema, say what was done, exit. No listener, no TLS, CA or secrets key: for a
 * rolling upgrade, before the new daemons start. */
static int migrate_only(struct cp_settings *s)
{
    char path[PATH_MAX > sizeof s->store ? PATH_MAX : sizeof s->store], err[1024];
    int before, after, rc;

    umask(077);
    if (!s->store[0] && pc_mkdir_mode(s->data_dir, 0700) != PC_OK) {
        fprintf(stderr, "portcullisd: %s: cannot create the data directory (0700): %s\n",
                s->data_dir, strerror(errno));
        return 1;
    }
    if ((rc = store_path(s, path, sizeof path)) == PC_OK)
        rc = cp_store_open(path, err, sizeof err);
    else
        snprintf(err, sizeof err, "%s: path too long", s->data_dir);
    pc_wipe(path, sizeof path);
    pc_wipe(s->store, sizeof s->store);
    cp_store_versions(&before, &after);
    cp_store_close_all();
    if (rc != PC_OK) {
        fprintf(stderr, "portcullisd: %s\n", err);
        return 1;
    }
    if (before == after)
        printf("store=%s schema version %d: already the newest, nothing to do\n", store_kind(),
               after);
    else
        printf("store=%s schema migrated from version %d to %d (%d step%s)\n", store_kind(), before,
               after, after - before, after - before == 1 ? "" : "s");
    return 0;
}

static int setup(const struct cp_settings *s, char **key, char **cert, char *err, size_t errsz)
{
    char path[PATH_MAX];
    unsigned char skey[PC_SECRETBOX_KEY_BYTES];
    struct cp_authtx_limits lim = {
        s->totp_window, s->tx_ttl,       s->lockout_threshold,      s->lockout_base,
        s->lockout_max, s->exempt_group, s->lockout_fleet_threshold
    };
    int rc;

    umask(077);
    if (pc_mkdir_mode(s->data_dir, 0700) != PC_OK) {
        snprintf(
            err, errsz,
            "%s: cannot create the data directory (0700): %s; choose another with --data-dir DIR",
            s->data_dir, strerror(errno));
        return PC_ERR_IO;
    }
    if ((rc = cp_secrets_master_path(s->data_dir, path, sizeof path)) != PC_OK ||
        (rc = pc_secretbox_load_key(path, 1, skey, err, errsz)) != PC_OK)
        return rc;
    cp_users_set_key(skey);
    cp_secrets_set_master(skey, path);
    if ((rc = store_path(s, path, sizeof path)) != PC_OK ||
        (rc = cp_store_open(path, err, errsz)) != PC_OK ||
        (rc = load_secrets(s, key, cert, err, errsz)) != PC_OK ||
        (rc = cp_tls_pin(*cert, cp_rt.pin, err, errsz)) != PC_OK ||
        (rc = cp_webpush_start(skey, s->webpush_contact, err, errsz)) != PC_OK ||
        (rc = cp_notify_start(path, err, errsz)) != PC_OK) {
        pc_wipe(skey, sizeof skey);
        pc_wipe(path, sizeof path); /* the store's URL may hold a password */
        return rc;
    }
    pc_wipe(skey, sizeof skey);
    pc_wipe(path, sizeof path);
    cp_webpush_set_app_origin(s->web_origin); /* "" without --web-listen: no url in notices */
    cp_hosts_configure(s->host_cert_ttl);
    cp_authtx_configure(&lim);
    cp_ratelimit_configure(s->auth_rate);
    cp_push_configure(s->push_ttl);
    cp_retention_configure(s->retention);
    return PC_OK;
}

/* About once a second on the waiters' thread: overdue pushes, the summaries of closed refusal
 * windows, and once a minute (first at start) the pruning of old rows. */
static void housekeeping(void)
{
    static unsigned tick;

    cp_push_expire_due();
    cp_access_expire_due();
    cp_refusal_flush();
    if (tick++ % 60 == 0)
        cp_retention_prune();
}

int main(int argc, char **argv)
{
    struct cp_settings s;
    char err[1024] = "", *key = NULL, *cert = NULL;
    sigset_t sigs;
    int rc, sig = 0;

    rc = cp_settings_parse(argc, argv, &s, err, sizeof err);
    if (rc == 1)
        return 0;
    if (rc != PC_OK) {
        fprintf(stderr, "portcullisd: %s\n", err);
        return 2;
    }
    if (s.print_pin)
        return print_pin(&s);
    if (s.migrate_only) {
        pc_log_init("portcullisd", (enum pc_log_level)s.log_level);
        return migrate_only(&s);
    }
    if (s.backup_file[0]) {
        if (cp_backup_run(s.data_dir, s.backup_file, s.backup_force, err, sizeof err) != PC_OK) {
            fprintf(stderr, "portcullisd: %s\n", err);
            return 1;
        }
        return 0;
    }
    pc_log_init("portcullisd", (enum pc_log_level)s.log_level);
    cp_rt.settings = &s;
    /* Block the stop signals in every thread; main collects them with sigwait. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP); /* reloads the web app's certificate */
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* At most CP_MALLOC_ARENAS malloc arenas (glibc's default: 8 per CPU, a new one for each
     * thread until then): each of the ~9 threads otherwise keeps an arena of its own, ~100 KB of
     * it touched at start-up (0.7 MB idle RSS in all). The request threads take most of their
     * small allocations from glibc's per-thread cache (tcache), without the arena's lock.
     * MALLOC_ARENA_MAX in the environment still decides when it is set. */
    if (!getenv("MALLOC_ARENA_MAX"))
        mallopt(M_ARENA_MAX, CP_MALLOC_ARENAS);
    /* glibc gives the free top of a thread's heap back (madvise) once it passes the trim
     * threshold: with the default 128 KB the store writer's heap shrank and grew again for
     * each batch (SQLite's savepoint journal), and every madvise is a TLB shoot-down on every
     * CPU: 8 % of all CPU time under a login burst (perf, bench pairs). Freed heap is still
     * given back: the explicit malloc_trim calls (start-up, released long-polls) ignore this. */
    if (!getenv("MALLOC_TRIM_THRESHOLD_"))
        mallopt(M_TRIM_THRESHOLD, CP_MALLOC_TRIM_THRESHOLD);
    /* the API's connections and as many parked polls, the web listener's connections, and a
     * store connection and an event descriptor or two per thread (within raise_fd_limit's 64) */
    raise_fd_limit(2 * s.max_connections + (s.web_listen_addr[0] ? CP_WEB_CONNECTIONS : 0) +
                   4 * s.threads);
    /* libcurl is initialised on first use (cp_curl_global_init): webhook, Web Push */
    if (pc_totp_init() != PC_OK) {
        fprintf(stderr, "portcullisd: cannot initialise liboath\n");
        return 1;
    }
    rc = setup(&s, &key, &cert, err, sizeof err);
    if (rc == PC_OK && (rc = cp_waiters_start(housekeeping)) != PC_OK)
        snprintf(err, sizeof err, "cannot start the long-poll thread");
    cp_webhook_set_format(s.webhook_slack);
    if (rc == PC_OK && (rc = cp_webhook_start(s.webhook_url)) != PC_OK)
        snprintf(err, sizeof err, "cannot start the webhook thread");
    if (rc == PC_OK && (rc = cp_offcodes_start()) != PC_OK) /* issue 13: offline codes */
        snprintf(err, sizeof err, "cannot start the offline codes thread");
    if (rc == PC_OK)
        rc = cp_server_start(&s, key, cert, err, sizeof err);
    if (rc == PC_OK && (rc = cp_web_start(&s, err, sizeof err)) != PC_OK)
        cp_server_stop();
    if (key)
        pc_free_secret_str(key); /* libmicrohttpd keeps its own parsed copy */
    key = NULL;
    free(cert);
    if (rc != PC_OK) {
        pc_log(PC_LOG_ERR, "event=start_failed error=\"%s\"", err);
        cp_notify_stop();
        cp_waiters_stop();
        cp_webhook_stop();
        cp_webpush_stop();
        cp_offcodes_stop();
        cp_store_close_all();
        cp_ca_free();
        cp_secrets_wipe();
        return 1;
    }
    pc_wipe(s.store, sizeof s.store); /* cp_store keeps its own copy */
    cp_store_close_mine();            /* main's connection would sit idle from now on */
    malloc_trim(0); /* what start-up (migrations, key and certificate parsing) freed */
    pc_log(PC_LOG_INFO, "event=started listen=%s port=%u data_dir=%s pin=%s threads=%u store=%s",
           s.listen_addr, (unsigned)s.port, s.data_dir, cp_rt.pin, s.threads, store_kind());
    while (sigwait(&sigs, &sig) == 0 && sig != SIGTERM && sig != SIGINT)
        if (sig == SIGHUP)
            cp_web_reload();
    pc_log(PC_LOG_INFO, "event=stopping signal=%d waiting=%u", sig, cp_waiters_count());
    cp_notify_stop();
    cp_waiters_stop();
    cp_web_stop();
    cp_server_stop();
    cp_webhook_stop();
    cp_webpush_stop();
    cp_offcodes_stop();
    cp_store_close_all();
    cp_ca_free();
    cp_secrets_wipe();
    cp_curl_global_cleanup();
    pc_log(PC_LOG_INFO, "event=stopped");
    return 0;
}
