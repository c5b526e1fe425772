/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests for lib/pc_sshsig: signatures made by `ssh-keygen -Y sign` for Ed25519, ECDSA and
 * RSA keys verify; a tampered message, another namespace, another key and broken armor are
 * each told apart. Our own signer is checked with `ssh-keygen -Y check-novalidate`. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pc_err.h"
#include "pc_sshbuf.h"
#include "pc_sshkey.h"
#include "pc_sshsig.h"
#include "ssh_tool.h"

static char dir[ST_PATH_MAX];
static const char message[] = "challenge 8f14e45fceea167a5a36dedd4bea2543 for alice\n";

static const struct {
    const char *name, *type;
    int bits;
} kinds[] = { { "ed", "ed25519", 0 }, { "ec", "ecdsa", 384 }, { "rsa", "rsa", 2048 } };
#define N_KINDS (sizeof kinds / sizeof kinds[0])
static struct pc_sshkey *keys[N_KINDS];
static char *sigs[N_KINDS];

/* ssh-keygen -Y sign -n ns -f key [-O hashalg=…] msgfile → contents of msgfile.sig */
static char *keygen_sign(const char *key, const char *ns, const char *hashalg)
{
    char msg[ST_PATH_MAX], sig[ST_PATH_MAX], opt[64];
    const char *argv[12];
    int n = 0;
    struct st_result r;
    char *text;

    st_path(msg, dir, "msg");
    snprintf(sig, sizeof sig, "%s.sig", msg);
    remove(sig);
    if (st_write(msg, message, strlen(message)) != 0)
        return NULL;
    argv[n++] = "ssh-keygen";
    argv[n++] = "-q";
    argv[n++] = "-Y";
    argv[n++] = "sign";
    argv[n++] = "-n";
    argv[n++] = ns;
    argv[n++] = "-f";
    argv[n++] = key;
    if (hashalg) {
        snprintf(opt, sizeof opt, "hashalg=%s", hashalg);
        argv[n++] = "-O";
        argv[n++] = opt;
    }
    argv[n++] = msg;
    argv[n] = NULL;
    if (st_run(argv, NULL, &r) != 0 || r.status != 0) {
        fprintf(stderr, "ssh-keygen -Y sign: %s\n", r.err);
        st_result_free(&r);
        return NULL;
    }
    st_result_free(&r);
    text = st_read(sig, NULL);
    return text;
}

static int group_setup(void **state)
{
    char p[ST_PATH_MAX], pub[ST_PATH_MAX];
    (void)state;
    if (st_mkdtemp("sshsig", dir) != 0)
        return -1;
    for (size_t i = 0; i < N_KINDS; i++) {
        char *line;
        if (st_keygen(st_path(p, dir, kinds[i].name), kinds[i].type, kinds[i].bits) != 0)
            return -1;
        snprintf(pub, sizeof pub, "%s.pub", p);
        if (!(line = st_read(pub, NULL)) || pc_sshkey_parse_line(line, &keys[i], NULL) != 0)
            return -1;
        free(line);
        if (!(sigs[i] = keygen_sign(p, PC_SSHSIG_NAMESPACE_LOGIN, NULL)))
            return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_KINDS; i++) {
        pc_sshkey_free(keys[i]);
        free(sigs[i]);
    }
    return st_rmtree(dir);
}

static int verify(const char *sig, const char *msg, const struct pc_sshkey *k, const char *ns,
                  enum pc_sshsig_result *why)
{
    return pc_sshsig_verify(sig, strlen(sig), msg, strlen(msg), k, ns, why);
}

static void test_good_signatures(void **state)
{
    enum pc_sshsig_result why = PC_SSHSIG_MALFORMED;
    (void)state;
    for (size_t i = 0; i < N_KINDS; i++) {
        assert_true(st_contains(sigs[i], "-----BEGIN SSH SIGNATURE-----\n"));
        assert_int_equal(verify(sigs[i], message, keys[i], PC_SSHSIG_NAMESPACE_LOGIN, &why), 0);
        assert_int_equal(why, PC_SSHSIG_OK);
    }
}

static void test_sha256_signature(void **state)
{
    char p[ST_PATH_MAX];
    char *sig = keygen_sign(st_path(p, dir, "ed"), PC_SSHSIG_NAMESPACE_LOGIN, "sha256");
    (void)state;
    assert_non_null(sig);
    assert_int_equal(verify(sig, message, keys[0], PC_SSHSIG_NAMESPACE_LOGIN, NULL), 0);
    free(sig);
}

static void test_tampered_message(void **state)
{
    enum pc_sshsig_result why = PC_SSHSIG_OK;
    char other[sizeof message];
    (void)state;
    memcpy(other, message, sizeof message);
    other[10] ^= 1;
    for (size_t i = 0; i < N_KINDS; i++) {
        assert_int_equal(verify(sigs[i], other, keys[i], PC_SSHSIG_NAMESPACE_LOGIN, &why),
                         PC_ERR_CRYPTO);
        assert_int_equal(why, PC_SSHSIG_BAD_SIGNATURE);
    }
}

static void test_wrong_namespace(void **state)
{
    enum pc_sshsig_result why = PC_SSHSIG_OK;
    char p[ST_PATH_MAX];
    char *file_sig = keygen_sign(st_path(p, dir, "ed"), "file", NULL);
    (void)state;
    assert_int_equal(verify(sigs[0], message, keys[0], "portcullis-logi", &why), PC_ERR_INVAL);
    assert_int_equal(why, PC_SSHSIG_WRONG_NAMESPACE);
    assert_int_equal(verify(sigs[0], message, keys[0], "portcullis-login2", &why), PC_ERR_INVAL);
    assert_non_null(file_sig);
    assert_int_equal(verify(file_sig, message, keys[0], PC_SSHSIG_NAMESPACE_LOGIN, &why),
                     PC_ERR_INVAL);
    assert_int_equal(why, PC_SSHSIG_WRONG_NAMESPACE);
    free(file_sig);
}

static void test_wrong_key(void **state)
{
    enum pc_sshsig_result why = PC_SSHSIG_OK;
    struct pc_sshkey *other = NULL;
    (void)state;
    assert_int_equal(verify(sigs[0], message, keys[1], PC_SSHSIG_NAMESPACE_LOGIN, &why),
                     PC_ERR_AUTH);
    assert_int_equal(why, PC_SSHSIG_WRONG_KEY);
    assert_int_equal(pc_sshkey_generate(PC_KEY_ED25519, &other), 0);
    assert_int_equal(verify(sigs[0], message, other, PC_SSHSIG_NAMESPACE_LOGIN, &why), PC_ERR_AUTH);
    assert_int_equal(why, PC_SSHSIG_WRONG_KEY);
    pc_sshkey_free(other);
}

static void expect_malformed(const char *text)
{
    enum pc_sshsig_result why = PC_SSHSIG_OK;
    assert_int_equal(verify(text, message, keys[0], PC_SSHSIG_NAMESPACE_LOGIN, &why), PC_ERR_PARSE);
    assert_int_equal(why, PC_SSHSIG_MALFORMED);
}

static void test_broken_armor(void **state)
{
    char buf[4096];
    const char *sig = sigs[0], *foot = strstr(sig, "-----END");
    size_t n = strlen(sig);
    (void)state;
    assert_non_null(foot);
    expect_malformed("");
    expect_malformed("garbage");
    /* No footer. */
    snprintf(buf, sizeof buf, "%.*s", (int)(foot - sig), sig);
    expect_malformed(buf);
    /* Cut in the middle of the base64. */
    snprintf(buf, sizeof buf, "%.*s\n-----END SSH SIGNATURE-----\n", (int)(n / 2), sig);
    expect_malformed(buf);
    /* Whole, but with the last 4 base64 characters removed (still a multiple of 4). */
    snprintf(buf, sizeof buf, "%.*s\n-----END SSH SIGNATURE-----\n", (int)(foot - sig - 5), sig);
    expect_malformed(buf);
    /* Leading text before the header. */
    snprintf(buf, sizeof buf, "x%s", sig);
    expect_malformed(buf);
    /* Text after the footer. */
    snprintf(buf, sizeof buf, "%sjunk\n", sig);
    expect_malformed(buf);
    /* A non-base64 character inside. */
    snprintf(buf, sizeof buf, "%s", sig);
    buf[strlen("-----BEGIN SSH SIGNATURE-----\n") + 3] = '#';
    expect_malformed(buf);
    /* CRLF line endings are fine. */
    {
        size_t o = 0;
        for (const char *p = sig; *p && o + 2 < sizeof buf; p++) {
            if (*p == '\n')
                buf[o++] = '\r';
            buf[o++] = *p;
        }
        buf[o] = 0;
        assert_int_equal(verify(buf, message, keys[0], PC_SSHSIG_NAMESPACE_LOGIN, NULL), 0);
    }
}

/* Re-armors a blob after mutating it with fn. */
static char *rearmor(const unsigned char *blob, size_t len)
{
    char *b64 = NULL, *out;
    size_t n;
    assert_int_equal(pc_base64_encode(blob, len, &b64), 0);
    n = strlen(b64) + 128;
    out = malloc(n);
    snprintf(out, n, "-----BEGIN SSH SIGNATURE-----\n%s\n-----END SSH SIGNATURE-----\n", b64);
    free(b64);
    return out;
}

static void test_blob_fields(void **state)
{
    unsigned char *blob = NULL;
    size_t len = 0;
    char *text;
    enum pc_sshsig_result why = PC_SSHSIG_OK;
    (void)state;
    assert_int_equal(pc_sshsig_dearmor(sigs[0], strlen(sigs[0]), &blob, &len), 0);
    assert_memory_equal(blob, "SSHSIG\0\0\0\1", 10);
    /* Version 2. */
    blob[9] = 2;
    text = rearmor(blob, len);
    expect_malformed(text);
    free(text);
    blob[9] = 1;
    /* Bad magic. */
    blob[0] = 'X';
    text = rearmor(blob, len);
    expect_malformed(text);
    free(text);
    blob[0] = 'S';
    /* Last signature byte flipped: bad signature. */
    blob[len - 1] ^= 0x10;
    text = rearmor(blob, len);
    assert_int_equal(verify(text, message, keys[0], PC_SSHSIG_NAMESPACE_LOGIN, &why),
                     PC_ERR_CRYPTO);
    assert_int_equal(why, PC_SSHSIG_BAD_SIGNATURE);
    free(text);
    blob[len - 1] ^= 0x10;
    /* Trailing byte. */
    {
        unsigned char *longer = malloc(len + 1);
        memcpy(longer, blob, len);
        longer[len] = 0;
        text = rearmor(longer, len + 1);
        expect_malformed(text);
        free(text);
        free(longer);
    }
    /* A non-empty reserved field is ignored (OpenSSH signs over an empty one). */
    {
        struct pc_sshbuf rd, w;
        const unsigned char *pk, *ns, *res, *hash, *sig;
        size_t pkl, nsl, resl, hl, sl;
        uint32_t ver = 0;
        unsigned char magic[6];
        pc_sshbuf_init_reader(&rd, blob, len);
        pc_sshbuf_get_raw(&rd, magic, 6);
        pc_sshbuf_get_u32(&rd, &ver);
        pc_sshbuf_get_string(&rd, &pk, &pkl);
        pc_sshbuf_get_string(&rd, &ns, &nsl);
        pc_sshbuf_get_string(&rd, &res, &resl);
        pc_sshbuf_get_string(&rd, &hash, &hl);
        pc_sshbuf_get_string(&rd, &sig, &sl);
        assert_int_equal(pc_sshbuf_expect_end(&rd), 0);
        assert_int_equal(resl, 0);
        pc_sshbuf_init(&w, 0);
        pc_sshbuf_put_raw(&w, magic, 6);
        pc_sshbuf_put_u32(&w, ver);
        pc_sshbuf_put_string(&w, pk, pkl);
        pc_sshbuf_put_string(&w, ns, nsl);
        pc_sshbuf_put_string(&w, "future", 6);
        pc_sshbuf_put_string(&w, hash, hl);
        pc_sshbuf_put_string(&w, sig, sl);
        assert_int_equal(pc_sshbuf_error(&w), 0);
        text = rearmor(pc_sshbuf_ptr(&w), pc_sshbuf_len(&w));
        assert_int_equal(verify(text, message, keys[0], PC_SSHSIG_NAMESPACE_LOGIN, NULL), 0);
        free(text);
        pc_sshbuf_free(&w);
    }
    /* Unchanged it verifies. */
    text = rearmor(blob, len);
    assert_int_equal(verify(text, message, keys[0], PC_SSHSIG_NAMESPACE_LOGIN, NULL), 0);
    free(text);
    free(blob);
}

static void test_our_signer_checked_by_keygen(void **state)
{
    static const enum pc_keytype types[] = { PC_KEY_ED25519, PC_KEY_ECDSA_P256, PC_KEY_RSA };
    char sigpath[ST_PATH_MAX];
    (void)state;
    st_path(sigpath, dir, "ours.sig");
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        struct pc_sshkey *k = NULL;
        char *text = NULL;
        struct st_result r;
        const char *argv[] = {
            "ssh-keygen", "-Y", "check-novalidate", "-n", PC_SSHSIG_NAMESPACE_LOGIN, "-s",
            sigpath,      NULL
        };
        assert_int_equal(pc_sshkey_generate(types[i], &k), 0);
        assert_int_equal(pc_sshsig_sign(k, PC_SSHSIG_NAMESPACE_LOGIN, message, strlen(message),
                                        &text),
                         0);
        assert_int_equal(verify(text, message, k, PC_SSHSIG_NAMESPACE_LOGIN, NULL), 0);
        assert_int_equal(st_write(sigpath, text, strlen(text)), 0);
        assert_int_equal(st_run(argv, message, &r), 0);
        if (r.status != 0)
            fprintf(stderr, "check-novalidate: %s%s\n", r.out, r.err);
        assert_int_equal(r.status, 0);
        st_result_free(&r);
        /* And ssh-keygen notices a different message. */
        assert_int_equal(st_run(argv, "another message\n", &r), 0);
        assert_int_not_equal(r.status, 0);
        st_result_free(&r);
        free(text);
        pc_sshkey_free(k);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_signatures),
        cmocka_unit_test(test_sha256_signature),
        cmocka_unit_test(test_tampered_message),
        cmocka_unit_test(test_wrong_namespace),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_broken_armor),
        cmocka_unit_test(test_blob_fields),
        cmocka_unit_test(test_our_signer_checked_by_keygen),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
