/* SPDX-License-Identifier: BSD-2-Clause */
/* GET /v1/login/{id}: the state of a certificate login, and the certificate of an approved
 * push login, collected exactly once. */
#include "config.h"
#include "cp_cert_login_int.h"
#include "cp_store.h"
#include "pc_err.h"
#include "pc_mem.h"
#include "pc_time.h"
#include <stdio.h>
#include <string.h>

/* An open login whose push has ended (collect mode, in the caller's transaction): the
 * certificate once approved and still allowed, else the end of the login. Audited. */
static int conclude(cp_conn *db, const char *id, const struct cp_login_row *l, const char *pstate,
                    int64_t approver, const char *source, struct cp_cert_login_poll_res *res)
{
    struct cp_cert_login_finish_res *f = &res->fin;
    struct cp_login_terms t;
    int rc = PC_OK;

    if (strcmp(pstate, "approved") != 0)
        cp_login_refuse(f, 401, "unauthorized",
                        strcmp(pstate, "expired") == 0 ? "push_expired" : "push_denied",
                        strcmp(pstate, "expired") == 0 ? "the push expired"
                                                       : "the push was denied");
    else if (l->expires_at <= pc_now())
        cp_login_refuse(f, 410, "gone", "expired",
                        "the login expired before the certificate was fetched");
    else if (approver > 0 && approver <= pc_now()) /* nothing may outlive the approver */
        cp_login_refuse(
            f, 401, "unauthorized", "approver_expired",
            "the credential that approved the push expired before the certificate was fetched");
    else
        cp_login_check_proof(db, l, NULL, NULL, f); /* the user and key may have changed since */
    if (!f->status)
        rc = cp_login_check_policy(db, l, &t, f);
    if (rc == PC_OK && !f->status) {
        f->status = 200;
        f->reason = "push_approved";
        if ((rc = cp_login_issue(db, l, &t, approver, "push", source, NULL, f)) == PC_OK)
            rc = cp_login_set_state(db, id, "done");
    } else if (rc == PC_OK) {
        rc = cp_login_set_state(db, id, "failed");
    }
    if (rc == PC_OK)
        rc = cp_login_audit(db, "login.finish", l->user, f->status == 200 ? "allow" : "deny",
                            f->reason, id, source);
    snprintf(res->state, sizeof res->state, "%s",
             f->status == 200                                     ? "approved"
             : strcmp(pstate, "expired") == 0 || f->status == 410 ? "expired"
                                                                  : "denied");
    return rc;
}

int cp_cert_login_poll(const char *source, const char *login_id, int collect,
                       struct cp_cert_login_poll_res *res)
{
    cp_conn *db = cp_db();
    struct cp_login_row l;
    char pstate[16] = "";
    int64_t pexp = 0, approver = 0, now = pc_now();
    int rc;

    memset(res, 0, sizeof *res);
    if (db && cp_login_known(db, login_id) == 0)
        return PC_ERR_NOTFOUND; /* as load_login would say, without the write lock */
    if (!db || cp_tx_begin(db) != PC_OK)
        return PC_ERR_STORE;
    if ((rc = cp_login_load(db, login_id, &l)) != PC_OK)
        goto out;
    res->expires_at = l.expires_at;
    rc = cp_login_load_push(db, login_id, res->push_id, pstate, &pexp, &approver);
    if (rc != PC_OK && rc != PC_ERR_NOTFOUND)
        goto out;
    if (rc == PC_ERR_NOTFOUND) /* a TOTP login, or one not finished yet */
        snprintf(res->state, sizeof res->state, "%s",
                 strcmp(l.state, "done") == 0     ? "approved"
                 : strcmp(l.state, "failed") == 0 ? "denied"
                 : l.expires_at <= now            ? "expired"
                                                  : "pending");
    else if (strcmp(l.state, "done") == 0)
        snprintf(res->state, sizeof res->state, "done");
    else if (strcmp(l.state, "failed") == 0)
        snprintf(res->state, sizeof res->state, "%s",
                 strcmp(pstate, "expired") == 0 ? "expired" : "denied");
    else if (strcmp(pstate, "pending") == 0)
        snprintf(res->state, sizeof res->state, "%s",
                 pexp <= now || l.expires_at <= now ? "expired" : "pending");
    else if (!collect)
        snprintf(res->state, sizeof res->state, "%s", pstate);
    else if ((rc = conclude(db, login_id, &l, pstate, approver, source, res)) == PC_OK)
        rc = cp_tx_commit(db);
    rc = rc == PC_ERR_NOTFOUND ? PC_OK : rc;
out:
    if (cp_autocommit(db) == 0)
        cp_tx_rollback(db);
    if (rc != PC_OK)
        cp_cert_login_finish_res_wipe(&res->fin);
    pc_wipe(&l, sizeof l);
    return rc;
}
