/* SPDX-License-Identifier: BSD-2-Clause */
/* `portcullis login`: proof of key possession (SSHSIG over a server challenge) plus a second
 * factor → a short-lived user certificate and a session token. Sessions live here too. */
#ifndef CP_CERT_LOGIN_H
#define CP_CERT_LOGIN_H
#include "cp_ca.h"
#include "cp_push.h"
#include "pc_rand.h"
#include <stdint.h>

#define CP_CERT_LOGIN_TTL 300
#define CP_SESSION_TTL 28800

struct cp_cert_login_start_res {
    char login_id[33];
    char *challenge; /* base64 of 32 random bytes, malloc'ed */
    int64_t expires_at;
    int push; /* the user may log in by push */
};

/* PC_ERR_AUTH for an unknown or disabled user or an unregistered key (audited). */
int cp_cert_login_start(const char *source, const char *user, const struct pc_sshkey *key,
                        int64_t ttl, struct cp_cert_login_start_res *res);

/* The answer of a login call that did not wait (the _then forms below): rc and res as the
 * waiting form returns them. It runs on the store's writer after the commit (cp_store_write_then:
 * quick, no waiting for the store), or on the caller's thread when the answer needed no write. */
typedef void (*cp_cert_login_then_fn)(void *ctx, int rc);
/* cp_cert_login_start without waiting: PC_OK when done(ctx, rc) will run exactly once; else
 * an error, and done never runs. source and user must live until done has run. */
int cp_cert_login_start_then(const char *source, const char *user, const struct pc_sshkey *key,
                             int64_t ttl, struct cp_cert_login_start_res *res,
                             cp_cert_login_then_fn done, void *ctx);

struct cp_cert_login_finish_res {
    unsigned status;    /* 200, 202 (push sent), or the error status */
    const char *error;  /* error code when status >= 400 */
    const char *reason; /* for 401s: "wrong_code", "bad_signature" … */
    char message[160];
    struct cp_issued cert;
    char session[PC_TOKEN_HEX_LEN + 1];
    int64_t session_expires_at;
    struct cp_push_new push; /* when status is 202 */
};

/* PC_OK with res->status set (200, 202 or an error the caller reports), or a store error.
 * push: ask for a push approval instead of checking code (the login's txid is its id). */
int cp_cert_login_finish(const char *source, const char *login_id, const char *signature,
                         const char *code, int push, struct cp_cert_login_finish_res *res);
/* cp_cert_login_finish without waiting, as cp_cert_login_start_then; done may already have run
 * when it returns (an unknown login is answered without a write). The strings must live until
 * done has run. */
int cp_cert_login_finish_then(const char *source, const char *login_id, const char *signature,
                              const char *code, int push, struct cp_cert_login_finish_res *res,
                              cp_cert_login_then_fn done, void *ctx);
void cp_cert_login_finish_res_wipe(struct cp_cert_login_finish_res *res);

struct cp_cert_login_poll_res {
    /* "pending", "approved" (certificate in fin, once), "done" (a push login whose certificate
     * was delivered), "denied" or "expired". A TOTP login is "approved" once finished. */
    char state[16];
    int64_t expires_at;
    char push_id[CP_PUSH_ID_LEN + 1];    /* "" for a login without a push */
    struct cp_cert_login_finish_res fin; /* fin.status 200: the certificate and session */
};

/* The state of a login. With collect, an approved push is turned into the certificate and the
 * session (exactly once), and a denied or expired push ends the login, each audited
 * login.finish; without it nothing is written. PC_ERR_NOTFOUND for an unknown login. */
int cp_cert_login_poll(const char *source, const char *login_id, int collect,
                       struct cp_cert_login_poll_res *res);

#endif
