/* SPDX-License-Identifier: BSD-2-Clause */
/* Private to certificate logins: the steps that login/start and login/finish
 * (cp_cert_login.c), the push-login poll (cp_cert_login_poll.c) and the key proof
 * (cp_cert_login_proof.c) share. Defined in cp_cert_login_steps.c unless said otherwise.
 * Every function taking a cp_conn runs inside the caller's transaction or read. */
#ifndef CP_CERT_LOGIN_INT_H
#define CP_CERT_LOGIN_INT_H
#include "cp_cert_login.h"
#include "cp_policy.h"
#include "cp_sql.h"
#include "pc_sshkey.h"
#include "pc_sshsig.h"
#include <stdint.h>

#define CP_LOGIN_CHALLENGE_BYTES 32

/* A row of the logins table. */
struct cp_login_row {
    char user[64];
    char fp[PC_SSHKEY_FP_SIZE];
    unsigned char chal[CP_LOGIN_CHALLENGE_BYTES];
    int64_t ttl, expires_at;
    char state[16];
};

/* A login's signature, checked before its write (cp_cert_login_proof.c). The check (an Ed25519
 * or RSA verify, and the key's parse) was the largest CPU cost of a finish, and the store's
 * writer is one thread for every write of the daemon: it runs on the calling thread, with a
 * plain read. The writer takes its result only for the same login, challenge and key (the
 * fingerprint is the key's hash), after it has seen in its own transaction that the user is
 * enabled and the key still registered; else it checks the signature itself. */
struct cp_login_proof {
    int checked;                /* 0: nothing below; the writer checks */
    char fp[PC_SSHKEY_FP_SIZE]; /* the key it was checked with */
    unsigned char chal[CP_LOGIN_CHALLENGE_BYTES];
    struct pc_sshkey *key;     /* that key, parsed: the certificate's subject */
    enum pc_sshsig_result why; /* PC_SSHSIG_OK: the signature is right */
};

/* An audit row of a login, with actor "user:NAME". */
int cp_login_audit(cp_conn *db, const char *action, const char *user, const char *result,
                   const char *reason, const char *login_id, const char *source);
/* PC_ERR_NOTFOUND for an unknown login (or a damaged row). */
int cp_login_load(cp_conn *db, const char *id, struct cp_login_row *l);
int cp_login_set_state(cp_conn *db, const char *id, const char *state);
/* A refusal in res: status, error code, reason and message. */
void cp_login_refuse(struct cp_cert_login_finish_res *res, unsigned status, const char *error,
                     const char *reason, const char *msg);
/* After the proof: revocation and policy. PC_OK with res->status set on a refusal. */
int cp_login_check_policy(cp_conn *db, const struct cp_login_row *l, struct cp_login_terms *t,
                          struct cp_cert_login_finish_res *res);
/* The certificate and the session (see the definition for until and subject). */
int cp_login_issue(cp_conn *db, const struct cp_login_row *l, const struct cp_login_terms *t,
                   int64_t until, const char *method, const char *source,
                   const struct pc_sshkey *subject, struct cp_cert_login_finish_res *res);
/* The push of a login (txid = login id): PC_ERR_NOTFOUND when it has none. */
int cp_login_load_push(cp_conn *db, const char *login_id, char id[CP_PUSH_ID_LEN + 1],
                       char state[16], int64_t *expires_at, int64_t *approver);
/* Whether a login of that id exists, by a plain read: 1 yes, 0 no, <0 error. */
int cp_login_known(cp_conn *db, const char *id);

/* cp_cert_login_proof.c: the proof before the transaction, and the proof in it. */
int cp_login_proof_fits(const struct cp_login_proof *p, const struct cp_login_row *l);
void cp_login_proof_check(cp_conn *db, const struct cp_login_row *l, const char *sig,
                          struct cp_login_proof *p);
void cp_login_proof_free(struct cp_login_proof *p);
void cp_login_check_proof(cp_conn *db, const struct cp_login_row *l, const char *sig,
                          const struct cp_login_proof *p, struct cp_cert_login_finish_res *res);

#endif
