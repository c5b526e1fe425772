/* SPDX-License-Identifier: BSD-2-Clause */
/* The key proof of a certificate login: the SSHSIG over the login's challenge, checked before
 * the write on the caller's thread (cp_login_proof_check) and taken or redone inside it
 * (cp_login_check_proof). See struct cp_login_proof. */
#include "config.h"
#include "cp_cert_login_int.h"
#include "cp_userkeys.h"
#include "cp_users.h"
#include "pc_err.h"
#include "pc_mem.h"
#include <stdio.h>
#include <string.h>

int cp_login_proof_fits(const struct cp_login_proof *p, const struct cp_login_row *l)
{
    return p && p->checked && strcmp(p->fp, l->fp) == 0 &&
           memcmp(p->chal, l->chal, sizeof p->chal) == 0;
}

static void verify(const struct cp_login_row *l, const char *sig, const struct pc_sshkey *key,
                   enum pc_sshsig_result *why)
{
    *why = PC_SSHSIG_MALFORMED;
    if (pc_sshsig_verify(sig, strlen(sig), l->chal, sizeof l->chal, key, PC_SSHSIG_NAMESPACE_LOGIN,
                         why) == PC_OK)
        *why = PC_SSHSIG_OK;
    else if (*why == PC_SSHSIG_OK) /* failed without saying why: not a proof */
        *why = PC_SSHSIG_MALFORMED;
}

/* Outside the transaction (a read on the caller's connection): what the writer may take. */
void cp_login_proof_check(cp_conn *db, const struct cp_login_row *l, const char *sig,
                          struct cp_login_proof *p)
{
    struct cp_user_rec u;

    memset(p, 0, sizeof *p);
    if (cp_user_load(db, l->user, &u) != PC_OK)
        return;
    if (u.enabled && cp_userkey_find(db, u.id, l->fp, &p->key) == PC_OK) {
        verify(l, sig, p->key, &p->why);
        snprintf(p->fp, sizeof p->fp, "%s", l->fp);
        memcpy(p->chal, l->chal, sizeof p->chal);
        p->checked = 1;
    }
    pc_wipe(&u, sizeof u);
}

void cp_login_proof_free(struct cp_login_proof *p)
{
    pc_sshkey_free(p->key);
    pc_wipe(p, sizeof *p);
}

/* The key proof: the user is enabled, the key still registered, the signature right (sig
 * NULL: only the first two, when an approved push is collected). p: the signature as checked
 * before the transaction (NULL: none). */
void cp_login_check_proof(cp_conn *db, const struct cp_login_row *l, const char *sig,
                          const struct cp_login_proof *p, struct cp_cert_login_finish_res *res)
{
    struct cp_user_rec u;
    struct pc_sshkey *key = NULL;
    enum pc_sshsig_result why = PC_SSHSIG_OK;
    static const char *const names[] = { "ok", "malformed_signature", "wrong_key",
                                         "wrong_namespace", "bad_signature" };

    if (cp_user_load(db, l->user, &u) != PC_OK || !u.enabled)
        cp_login_refuse(res, 401, "unauthorized", "disabled", "the user is unknown or disabled");
    else if (cp_userkey_find(db, u.id, l->fp, sig && !cp_login_proof_fits(p, l) ? &key : NULL) !=
             PC_OK)
        cp_login_refuse(res, 401, "unauthorized", "unregistered_key",
                        "the key is no longer registered");
    else if (sig && cp_login_proof_fits(p, l))
        why = p->why;
    else if (sig)
        verify(l, sig, key, &why);
    if (why != PC_SSHSIG_OK)
        cp_login_refuse(
            res, 401, "unauthorized", names[why <= PC_SSHSIG_BAD_SIGNATURE ? why : 1],
            "the signature does not prove possession of the registered key for this login");
    pc_sshkey_free(key);
    pc_wipe(&u, sizeof u);
}
