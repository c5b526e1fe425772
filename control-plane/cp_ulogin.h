/* `portcullis login`: proof of key possession (SSHSIG over a server challenge) plus a second
 * factor → a short-lived user certificate and a session token. Sessions live here too. */
#ifndef CP_ULOGIN_H
#define CP_ULOGIN_H
#include "cp_ca.h"
#include "pc_rand.h"
#include <stdint.h>

#define CP_LOGIN_TTL 300
#define CP_SESSION_TTL 28800

struct cp_ulogin_start_res {
    char login_id[33];
    char *challenge;   /* base64 of 32 random bytes, malloc'ed */
    int64_t expires_at;
};

/* PC_ERR_AUTH for an unknown or disabled user or an unregistered key (audited). */
int cp_ulogin_start(const char *source, const char *user, const struct pc_sshkey *key,
                    int64_t ttl, struct cp_ulogin_start_res *res);

struct cp_ulogin_finish_res {
    unsigned status;          /* 200, or the error status */
    const char *error;        /* error code when status != 200 */
    const char *reason;       /* for 401s: "wrong_code", "bad_signature" … */
    char message[160];
    struct cp_issued cert;
    char session[PC_TOKEN_HEX_LEN + 1];
    int64_t session_expires_at;
};

/* PC_OK with res->status set (200 or an error the caller reports), or a store error. */
int cp_ulogin_finish(const char *source, const char *login_id, const char *signature,
                     const char *code, struct cp_ulogin_finish_res *res);
void cp_ulogin_finish_res_wipe(struct cp_ulogin_finish_res *res);
/* "pending" (open), "approved" (done), "denied" (failed) or "expired". */
int cp_ulogin_state(const char *login_id, char state[16], int64_t *expires_at);

#endif
