/* SPDX-License-Identifier: BSD-2-Clause */
/* Login transactions: begin (decide allow / deny / challenge) and TOTP verification with
 * atomic replay protection and lockout. */
#ifndef CP_AUTHTX_H
#define CP_AUTHTX_H
#include "cp_tokens.h"
#include "cp_sql.h"
#include <stdint.h>

struct cp_begin_req {
    const char *user, *rhost, *service, *tty, *auth_info;
    int push; /* the host asks for the push in the same call, should a challenge offer one */
};

struct cp_begin_res {
    char txid[33];
    const char *action; /* "challenge", "allow", "deny", "ignore" (exempt from 2FA) */
    int totp, push;     /* factors offered */
    const char *reason;
    int pushed; /* req->push and a challenge with push: the push below was created */
    char push_id[33], match[3];
    int64_t push_expires_at;
};

struct cp_authtx_limits {
    unsigned totp_window;
    int64_t tx_ttl;
    unsigned lockout_threshold;
    int64_t lockout_base, lockout_max;
    const char *exempt_group;         /* "" or NULL: nobody */
    unsigned lockout_fleet_threshold; /* failures over all hosts, each counting at most
                                       * lockout_threshold, before a lock on every host */
};

void cp_authtx_configure(const struct cp_authtx_limits *lim);

int cp_authtx_begin(const struct cp_identity *host, const char *source,
                    const struct cp_begin_req *req, struct cp_begin_res *res);
/* PC_OK with *result "allow"/"deny" and *reason; PC_ERR_NOTFOUND for an unknown txid (or one
 * of another host); PC_ERR_STATE when the transaction is finished or expired. With resend (the
 * agent failed over after a copy that may have been applied): a transaction this same code
 * already allowed answers allow again (audited with detail "resend"); nothing else changes. */
int cp_authtx_totp(const struct cp_identity *host, const char *source, const char *txid,
                   const char *code, int resend, const char **result, const char **reason);

/* The same two without waiting (the libmicrohttpd worker calls them and serves its other
 * connections meanwhile): done(ctx, rc) runs on the store's writer once the transaction is
 * committed (rc and *res, or *result and *reason, as the waiting forms give them). Everything
 * passed in must live until done has run. PC_OK when queued (done runs exactly once); an error
 * otherwise (done never runs, nothing was written). */
typedef void (*cp_authtx_then_fn)(void *ctx, int rc);
int cp_authtx_begin_then(const struct cp_identity *host, const char *source,
                         const struct cp_begin_req *req, struct cp_begin_res *res,
                         cp_authtx_then_fn done, void *ctx);
int cp_authtx_totp_then(const struct cp_identity *host, const char *source, const char *txid,
                        const char *code, int resend, const char **result, const char **reason,
                        cp_authtx_then_fn done, void *ctx);

/* The verdict for one TOTP code of user, inside the caller's (IMMEDIATE) transaction: checks
 * enabled / enrolled / locked, verifies, records the step (replay guard) or counts the failure
 * against (user, host_id) and fleet-wide. Shared by sshd logins (auth/totp, the host's id) and
 * `portcullis login` (login/finish, host_id 0). *result is "allow" or "deny"; *reason as for
 * cp_authtx_totp: "locked" is the lock on this host, "locked_fleet" the lock on every host. */
int cp_totp_judge(cp_conn *db, const char *user, int64_t host_id, const char *code,
                  const char **result, const char **reason);

/* Shared with the push path: loads an open transaction of this host, in the caller's
 * transaction. user gets the user name. */
int cp_authtx_load_open(cp_conn *db, int64_t host_id, const char *txid, char *user, size_t usersz);
int cp_authtx_set_state(cp_conn *db, const char *txid, const char *state);

#endif
