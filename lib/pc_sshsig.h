/* SPDX-License-Identifier: BSD-2-Clause */
/* SSHSIG (OpenSSH PROTOCOL.sshsig): the detached, armored signatures `ssh-keygen -Y sign`
 * makes. `portcullis login` proves possession of a user's key with one: the server sends a
 * challenge, the user signs it with `ssh-keygen -Y sign -n portcullis-login -f KEY`, and the
 * control plane verifies it here against the key it has on record.
 *
 * pc_sshsig.c also implements the raw SSH signature primitives declared in pc_sshkey.h
 * (pc_sshkey_sign / pc_sshkey_verify), which SSHSIG, certificates and tests share. */
#ifndef PC_SSHSIG_H
#define PC_SSHSIG_H
#include <stddef.h>
#include "pc_sshkey.h"

#define PC_SSHSIG_NAMESPACE_LOGIN "portcullis-login"
#define PC_SSHSIG_ARMOR_MAX (64 * 1024)

/* Why a verification failed (the return code says it too, coarser). */
enum pc_sshsig_result {
    PC_SSHSIG_OK = 0,
    PC_SSHSIG_MALFORMED,       /* armor, base64, blob layout, version, hash name: PC_ERR_PARSE */
    PC_SSHSIG_WRONG_KEY,       /* signed by a key other than the expected one: PC_ERR_AUTH */
    PC_SSHSIG_WRONG_NAMESPACE, /* a signature made for another purpose: PC_ERR_INVAL */
    PC_SSHSIG_BAD_SIGNATURE, /* does not verify over this message, or ssh-rsa SHA-1: PC_ERR_CRYPTO */
};

/* Verifies an armored SSHSIG (text, len bytes; "-----BEGIN SSH SIGNATURE-----" … "-----END SSH
 * SIGNATURE-----", base64 lines of any width, LF or CRLF, trailing whitespace allowed) over msg.
 * Checks, in this order: MAGIC "SSHSIG", version 1, the embedded public key equals expected
 * (blob comparison), namespace equals ns exactly (non-empty), hash "sha512" or "sha256", and the
 * signature over "SSHSIG" || string ns || string "" || string hash || string H(msg): the blob's
 * reserved field is ignored, as the spec says and as OpenSSH does (its signed data always carries
 * an empty reserved string). Version must be exactly 1 (OpenSSH also takes 0; nobody writes it). Returns 0, or the code listed by the result above;
 * *why (optional) gets the detailed result. */
int pc_sshsig_verify(const char *armored, size_t len, const void *msg, size_t msglen,
                     const struct pc_sshkey *expected, const char *ns, enum pc_sshsig_result *why);

/* Makes an armored SSHSIG (sha512) with a private key, as `ssh-keygen -Y sign` would
 * (70-column base64 lines, trailing newline). For tests and tools; *out is malloc'ed. */
int pc_sshsig_sign(const struct pc_sshkey *key, const char *ns, const void *msg, size_t msglen,
                   char **out);

/* The binary blob inside an armor (malloc'ed); PC_ERR_PARSE on any armor defect. */
int pc_sshsig_dearmor(const char *armored, size_t len, unsigned char **blob, size_t *bloblen);

#endif
