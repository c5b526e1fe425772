/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "cp_retention.h"
#include "cp_store.h"
#include "pc_err.h"
#include "pc_log.h"
#include "pc_time.h"

static int64_t retention = 30 * 86400;

void cp_retention_configure(int64_t seconds)
{
    retention = seconds;
}

/* Pushes before transactions: a push belongs to its transaction (and would go with it). */
static const char *const prune_sql[] = {
    "DELETE FROM pushes WHERE id IN"
    " (SELECT id FROM pushes WHERE expires_at < ?1 LIMIT ?2)",
    "DELETE FROM transactions WHERE txid IN"
    " (SELECT txid FROM transactions WHERE expires_at < ?1 LIMIT ?2)",
    "DELETE FROM logins WHERE id IN"
    " (SELECT id FROM logins WHERE expires_at < ?1 LIMIT ?2)",
    "DELETE FROM sessions WHERE hash IN"
    " (SELECT hash FROM sessions WHERE expires_at < ?1 LIMIT ?2)",
    /* the approval web app's sessions and invites (api_web_session.c) */
    "DELETE FROM web_sessions WHERE hash IN"
    " (SELECT hash FROM web_sessions WHERE expires_at < ?1 LIMIT ?2)",
    "DELETE FROM web_invites WHERE hash IN"
    " (SELECT hash FROM web_invites WHERE expires_at < ?1 LIMIT ?2)",
};

/* Each DELETE is its own short write transaction; at most CP_RETENTION_BATCHES per table a run,
 * the rest is left for the next run. */
void cp_retention_prune(void)
{
    cp_conn *db = cp_db();
    int64_t cutoff = pc_now() - retention;
    long long total = 0;

    if (!db)
        return;
    for (size_t t = 0; t < sizeof prune_sql / sizeof prune_sql[0]; t++) {
        for (int b = 0; b < CP_RETENTION_BATCHES; b++) {
            cp_stmt *st = cp_prepare(db, prune_sql[t]);
            int64_t n;
            if (!st)
                return;
            cp_bind_int64(st, 1, cutoff);
            cp_bind_int(st, 2, CP_RETENTION_BATCH);
            if (cp_exec_stmt(st) != PC_OK) {
                pc_log(PC_LOG_ERR, "event=prune_failed error=\"%s\"", cp_errmsg(db));
                return;
            }
            n = cp_changes(db);
            total += n;
            if (n < CP_RETENTION_BATCH)
                break;
        }
    }
    if (total)
        pc_log(PC_LOG_INFO, "event=pruned rows=%lld older_than=%lld", total, (long long)cutoff);
}
