/* SPDX-License-Identifier: BSD-2-Clause */
/* SSHSIG armor and verification (lib/pc_sshsig.c): what `portcullis login` sends as
 * "signature". The input is the armored text. It is verified against the public key it
 * carries (so the checks after the key comparison are reached: namespace, hash name, the
 * signature blob itself) and against a fixed key (the wrong-key path), over a fixed message. */
#include "config.h"
#include "fuzz.h"
#include "pc_err.h"
#include "pc_sshbuf.h"
#include "pc_sshsig.h"

/* The key that signed corpus/sshsig/ed25519 (its private half was not kept). */
static const char fixed_key[] =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ9xT08pBGnXFso7iZJj9nj1PuiJwc6xDCPKK01OnBmx";
static const char msg[] = "portcullis fuzz challenge";

/* The public key inside the SSHSIG blob, if it parses. */
static struct pc_sshkey *embedded_key(const unsigned char *blob, size_t len)
{
    struct pc_sshbuf b;
    unsigned char magic[6];
    uint32_t version;
    const unsigned char *pk = NULL;
    size_t pklen = 0;
    struct pc_sshkey *k = NULL;

    pc_sshbuf_init_reader(&b, blob, len);
    if (pc_sshbuf_get_raw(&b, magic, sizeof magic) != PC_OK ||
        pc_sshbuf_get_u32(&b, &version) != PC_OK ||
        pc_sshbuf_get_string(&b, &pk, &pklen) != PC_OK ||
        pc_sshkey_from_blob(pk, pklen, &k) != PC_OK)
        return NULL;
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct pc_sshkey *fixed;
    const char *armored = (const char *)data;
    enum pc_sshsig_result why;
    unsigned char *blob = NULL;
    size_t bloblen = 0;
    struct pc_sshkey *k;

    if (!fixed && pc_sshkey_parse_line(fixed_key, &fixed, NULL) != PC_OK)
        abort();
    (void)pc_sshsig_verify(armored, size, msg, sizeof msg - 1, fixed, PC_SSHSIG_NAMESPACE_LOGIN,
                           &why);
    if (pc_sshsig_dearmor(armored, size, &blob, &bloblen) != PC_OK)
        return 0;
    if ((k = embedded_key(blob, bloblen)) != NULL) {
        (void)pc_sshsig_verify(armored, size, msg, sizeof msg - 1, k, PC_SSHSIG_NAMESPACE_LOGIN,
                               &why);
        (void)pc_sshsig_verify(armored, size, "", 0, k, "file", NULL);
        pc_sshkey_free(k);
    }
    free(blob);
    return 0;
}
