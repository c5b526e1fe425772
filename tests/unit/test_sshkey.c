/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests for lib/pc_sshkey (and the signature primitives in pc_sshsig.c): public keys made
 * by ssh-keygen, fingerprints as `ssh-keygen -lf` prints them, refusals, CA key generation,
 * PEM save/load and sign/verify. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pc_err.h"
#include "pc_sshbuf.h"
#include "pc_sshkey.h"
#include "ssh_tool.h"

static char dir[ST_PATH_MAX];

static const struct {
    const char *file, *type;
    int bits;
    enum pc_keytype want;
} kinds[] = {
    { "ed", "ed25519", 0, PC_KEY_ED25519 },      { "p256", "ecdsa", 256, PC_KEY_ECDSA_P256 },
    { "p384", "ecdsa", 384, PC_KEY_ECDSA_P384 }, { "p521", "ecdsa", 521, PC_KEY_ECDSA_P521 },
    { "rsa", "rsa", 3072, PC_KEY_RSA },          { "rsa1k", "rsa", 1024, PC_KEY_RSA },
};
#define N_KINDS (sizeof kinds / sizeof kinds[0])

static int group_setup(void **state)
{
    char p[ST_PATH_MAX];
    (void)state;
    if (st_mkdtemp("sshkey", dir) != 0)
        return -1;
    for (size_t i = 0; i < N_KINDS; i++)
        if (st_keygen(st_path(p, dir, kinds[i].file), kinds[i].type, kinds[i].bits) != 0)
            return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return st_rmtree(dir);
}

static char *read_pub(const char *name)
{
    char p[ST_PATH_MAX], n[ST_PATH_MAX];
    char *s;
    snprintf(n, sizeof n, "%s.pub", name);
    s = st_read(st_path(p, dir, n), NULL);
    assert_non_null(s);
    return s;
}

/* The fingerprint field of `ssh-keygen -lf FILE`. */
static void keygen_fingerprint(const char *file, char out[PC_SSHKEY_FP_SIZE])
{
    const char *argv[] = { "ssh-keygen", "-l", "-E", "sha256", "-f", file, NULL };
    struct st_result r;
    char bits[16], fp[128];
    assert_int_equal(st_run(argv, NULL, &r), 0);
    assert_int_equal(r.status, 0);
    assert_int_equal(sscanf(r.out, "%15s %127s", bits, fp), 2);
    assert_true(strlen(fp) < PC_SSHKEY_FP_SIZE);
    snprintf(out, PC_SSHKEY_FP_SIZE, "%s", fp);
    st_result_free(&r);
}

static void test_parse_keygen_keys(void **state)
{
    char p[ST_PATH_MAX], n[ST_PATH_MAX], fp[PC_SSHKEY_FP_SIZE], want_fp[PC_SSHKEY_FP_SIZE];
    (void)state;
    for (size_t i = 0; i < N_KINDS; i++) {
        struct pc_sshkey *k = NULL;
        char *line = read_pub(kinds[i].file), *comment = NULL, *back = NULL;
        if (kinds[i].bits == 1024) {
            free(line);
            continue;
        }
        assert_int_equal(pc_sshkey_parse_line(line, &k, &comment), 0);
        assert_int_equal(k->type, kinds[i].want);
        assert_string_equal(comment, "test@portcullis");
        assert_int_equal(pc_sshkey_has_private(k), 0);
        /* Fingerprint exactly as ssh-keygen -lf prints it. */
        snprintf(n, sizeof n, "%s.pub", kinds[i].file);
        keygen_fingerprint(st_path(p, dir, n), want_fp);
        assert_int_equal(pc_sshkey_fingerprint(k, fp), 0);
        assert_string_equal(fp, want_fp);
        /* Serialised back, the line is byte-identical to ssh-keygen's. */
        assert_int_equal(pc_sshkey_to_line(k, comment, &back), 0);
        line[strcspn(line, "\n")] = 0;
        assert_string_equal(back, line);
        if (kinds[i].want == PC_KEY_RSA)
            assert_int_equal(pc_sshkey_bits(k), 3072);
        free(back);
        free(comment);
        free(line);
        pc_sshkey_free(k);
    }
}

static void test_refuse_small_rsa(void **state)
{
    struct pc_sshkey *k = NULL;
    char *line = read_pub("rsa1k");
    (void)state;
    assert_int_equal(pc_sshkey_parse_line(line, &k, NULL), PC_ERR_INVAL);
    assert_null(k);
    free(line);
}

/* Decodes the base64 field of a .pub line into a blob. */
static unsigned char *pub_blob(const char *name, size_t *len)
{
    char *line = read_pub(name), *type = NULL;
    unsigned char *blob = NULL;
    assert_int_equal(pc_sshkey_decode_line(line, &type, &blob, len, NULL), 0);
    free(type);
    free(line);
    return blob;
}

static void test_refuse_garbage(void **state)
{
    struct pc_sshkey *k = NULL;
    char *line = read_pub("ed"), *b64 = NULL, buf[2048];
    unsigned char *blob;
    size_t len = 0;
    struct pc_sshbuf w;
    (void)state;
    assert_int_equal(pc_sshkey_parse_line("", &k, NULL), PC_ERR_PARSE);
    assert_int_equal(pc_sshkey_parse_line("ssh-ed25519", &k, NULL), PC_ERR_PARSE);
    assert_int_equal(pc_sshkey_parse_line("ssh-ed25519 !!!!", &k, NULL), PC_ERR_PARSE);
    assert_int_equal(pc_sshkey_parse_line("ssh-ed25519 AAAA", &k, NULL), PC_ERR_PARSE);
    /* The type word must name the blob's own type. */
    snprintf(buf, sizeof buf, "ssh-rsa%s", strchr(line, ' '));
    assert_int_equal(pc_sshkey_parse_line(buf, &k, NULL), PC_ERR_PARSE);
    /* Truncated base64 (still a multiple of 4): the blob ends early. */
    snprintf(buf, sizeof buf, "%.*s", (int)(strlen("ssh-ed25519 ") + 40), line);
    assert_int_equal(pc_sshkey_parse_line(buf, &k, NULL), PC_ERR_PARSE);
    /* Two lines are not one key. */
    snprintf(buf, sizeof buf, "%s\n%s", line, line);
    assert_int_equal(pc_sshkey_parse_line(buf, &k, NULL), PC_ERR_PARSE);
    free(line);

    /* Trailing data after a valid blob. */
    blob = pub_blob("ed", &len);
    pc_sshbuf_init(&w, 0);
    pc_sshbuf_put_raw(&w, blob, len);
    pc_sshbuf_put_u8(&w, 0);
    assert_int_equal(pc_sshkey_from_blob(pc_sshbuf_ptr(&w), pc_sshbuf_len(&w), &k), PC_ERR_PARSE);
    assert_int_equal(pc_sshkey_from_blob(blob, len - 1, &k), PC_ERR_PARSE);
    assert_int_equal(pc_sshkey_from_blob(blob, len, &k), 0);
    pc_sshkey_free(k);
    free(blob);

    /* Unknown / unsupported types. */
    pc_sshbuf_reset(&w);
    pc_sshbuf_put_cstring(&w, "ssh-dss");
    pc_sshbuf_put_string(&w, "xxxx", 4);
    assert_int_equal(pc_sshkey_from_blob(pc_sshbuf_ptr(&w), pc_sshbuf_len(&w), &k), PC_ERR_INVAL);
    pc_sshbuf_reset(&w);
    pc_sshbuf_put_cstring(&w, "ssh-ed25519-cert-v01@openssh.com");
    assert_int_equal(pc_sshkey_from_blob(pc_sshbuf_ptr(&w), pc_sshbuf_len(&w), &k), PC_ERR_INVAL);
    assert_int_equal(pc_base64_encode(pc_sshbuf_ptr(&w), pc_sshbuf_len(&w), &b64), 0);
    snprintf(buf, sizeof buf, "ssh-ed25519-cert-v01@openssh.com %s", b64);
    assert_int_equal(pc_sshkey_parse_line(buf, &k, NULL), PC_ERR_INVAL);
    free(b64);
    /* Ed25519 key of the wrong length. */
    pc_sshbuf_reset(&w);
    pc_sshbuf_put_cstring(&w, "ssh-ed25519");
    pc_sshbuf_put_string(&w, "0123456789abcdef0123456789abcde", 31);
    assert_int_equal(pc_sshkey_from_blob(pc_sshbuf_ptr(&w), pc_sshbuf_len(&w), &k), PC_ERR_PARSE);
    pc_sshbuf_free(&w);
}

static void test_refuse_bad_curve_points(void **state)
{
    struct pc_sshkey *k = NULL;
    size_t len = 0;
    unsigned char *blob = pub_blob("p256", &len);
    (void)state;
    assert_int_equal(pc_sshkey_from_blob(blob, len, &k), 0);
    pc_sshkey_free(k);
    k = NULL;
    /* Last byte of Y changed: no longer on the curve. */
    blob[len - 1] ^= 0x01;
    assert_int_equal(pc_sshkey_from_blob(blob, len, &k), PC_ERR_INVAL);
    blob[len - 1] ^= 0x01;
    /* Compressed-point prefix with an uncompressed length. */
    blob[len - 65] = 0x02;
    assert_int_equal(pc_sshkey_from_blob(blob, len, &k), PC_ERR_PARSE);
    blob[len - 65] = 0x04;
    /* Curve id that does not match the type name: "nistp256" → "nistp384". */
    blob[4 + 19 + 4 + 5] = '3';
    blob[4 + 19 + 4 + 6] = '8';
    blob[4 + 19 + 4 + 7] = '4';
    assert_int_equal(pc_sshkey_from_blob(blob, len, &k), PC_ERR_PARSE);
    assert_null(k);
    free(blob);
}

static const enum pc_keytype ca_types[] = { PC_KEY_ED25519, PC_KEY_ECDSA_P256, PC_KEY_RSA };

static void test_ca_keygen_save_load(void **state)
{
    char p[ST_PATH_MAX], pub[ST_PATH_MAX], fp[PC_SSHKEY_FP_SIZE], want[PC_SSHKEY_FP_SIZE];
    (void)state;
    for (size_t i = 0; i < sizeof ca_types / sizeof ca_types[0]; i++) {
        struct pc_sshkey *ca = NULL, *back = NULL;
        struct stat st;
        char *line = NULL, *pem;
        assert_int_equal(pc_sshkey_generate(ca_types[i], &ca), 0);
        assert_int_equal(ca->type, ca_types[i]);
        assert_true(pc_sshkey_has_private(ca));
        if (ca_types[i] == PC_KEY_RSA)
            assert_int_equal(pc_sshkey_bits(ca), PC_RSA_CA_BITS);
        st_path(p, dir, "ca.pem");
        assert_int_equal(pc_sshkey_save_private(ca, p), 0);
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        pem = st_read(p, NULL);
        assert_true(st_contains(pem, "-----BEGIN PRIVATE KEY-----"));
        free(pem);
        assert_int_equal(pc_sshkey_load_private(p, &back), 0);
        assert_int_equal(back->type, ca_types[i]);
        assert_true(pc_sshkey_has_private(back));
        assert_true(pc_sshkey_equal(ca, back));
        /* The public line we write is one ssh-keygen reads, with the same fingerprint. */
        assert_int_equal(pc_sshkey_to_line(ca, "ca", &line), 0);
        assert_int_equal(st_write(st_path(pub, dir, "ca.pub"), line, strlen(line)), 0);
        keygen_fingerprint(pub, want);
        assert_int_equal(pc_sshkey_fingerprint(back, fp), 0);
        assert_string_equal(fp, want);
        /* A key file others can read is refused. */
        assert_int_equal(chmod(p, 0644), 0);
        pc_sshkey_free(back);
        back = NULL;
        assert_int_equal(pc_sshkey_load_private(p, &back), PC_ERR_INVAL);
        assert_null(back);
        free(line);
        pc_sshkey_free(ca);
    }
    assert_int_equal(pc_sshkey_load_private("/nonexistent/ca.pem", &(struct pc_sshkey *){ NULL }),
                     PC_ERR_IO);
}

static void test_sign_verify_roundtrip(void **state)
{
    static const char msg[] = "the quick brown fox";
    (void)state;
    for (size_t i = 0; i < sizeof ca_types / sizeof ca_types[0]; i++) {
        struct pc_sshkey *ca = NULL, *pub = NULL;
        unsigned char *sig = NULL;
        size_t siglen = 0;
        const char *alg = NULL;
        struct pc_sshbuf r;
        const unsigned char *name = NULL;
        size_t nlen = 0;
        assert_int_equal(pc_sshkey_generate(ca_types[i], &ca), 0);
        assert_int_equal(pc_sshkey_public_dup(ca, &pub), 0);
        assert_false(pc_sshkey_has_private(pub));
        assert_int_equal(pc_sshkey_sign(ca, msg, strlen(msg), &sig, &siglen), 0);
        pc_sshbuf_init_reader(&r, sig, siglen);
        assert_int_equal(pc_sshbuf_get_string(&r, &name, &nlen), 0);
        assert_int_equal(nlen, strlen(pc_sshkey_sig_alg(ca_types[i])));
        assert_memory_equal(name, pc_sshkey_sig_alg(ca_types[i]), nlen);
        assert_int_equal(pc_sshkey_verify(pub, sig, siglen, msg, strlen(msg), &alg), 0);
        assert_string_equal(alg, ca_types[i] == PC_KEY_RSA       ? "rsa-sha2-512"
                                 : ca_types[i] == PC_KEY_ED25519 ? "ssh-ed25519"
                                                                 : "ecdsa-sha2-nistp256");
        /* Other message. */
        assert_int_equal(pc_sshkey_verify(pub, sig, siglen, msg, strlen(msg) - 1, NULL),
                         PC_ERR_CRYPTO);
        /* Tampered signature byte (the last one is inside the signature value). */
        sig[siglen - 1] ^= 0x40;
        assert_int_equal(pc_sshkey_verify(pub, sig, siglen, msg, strlen(msg), NULL), PC_ERR_CRYPTO);
        sig[siglen - 1] ^= 0x40;
        /* Truncated blob, trailing data. */
        assert_int_equal(pc_sshkey_verify(pub, sig, siglen - 1, msg, strlen(msg), NULL),
                         PC_ERR_PARSE);
        /* A public key cannot sign. */
        free(sig);
        sig = NULL;
        assert_int_equal(pc_sshkey_sign(pub, msg, strlen(msg), &sig, &siglen), PC_ERR_INVAL);
        pc_sshkey_free(pub);
        pc_sshkey_free(ca);
    }
}

/* RSA signature blob made directly with OpenSSL for a given digest and SSH name. */
static void rsa_blob(const struct pc_sshkey *k, const EVP_MD *md, const char *name, const char *msg,
                     struct pc_sshbuf *out)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char sig[1024];
    size_t n = sizeof sig;
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, md, NULL, k->pkey), 1);
    assert_int_equal(EVP_DigestSign(ctx, sig, &n, (const unsigned char *)msg, strlen(msg)), 1);
    EVP_MD_CTX_free(ctx);
    pc_sshbuf_reset(out);
    pc_sshbuf_put_cstring(out, name);
    pc_sshbuf_put_string(out, sig, n);
    assert_int_equal(pc_sshbuf_error(out), 0);
}

static void test_rsa_algorithms(void **state)
{
    struct pc_sshkey *ca = NULL, *ed = NULL;
    struct pc_sshbuf b;
    const char *msg = "hello", *alg = NULL;
    unsigned char *sig = NULL;
    size_t siglen = 0;
    (void)state;
    pc_sshbuf_init(&b, 0);
    assert_int_equal(pc_sshkey_generate(PC_KEY_RSA, &ca), 0);
    rsa_blob(ca, EVP_sha256(), "rsa-sha2-256", msg, &b);
    assert_int_equal(pc_sshkey_verify(ca, pc_sshbuf_ptr(&b), pc_sshbuf_len(&b), msg, 5, &alg), 0);
    assert_string_equal(alg, "rsa-sha2-256");
    /* SHA-1 "ssh-rsa" is refused even though the signature itself is valid. */
    rsa_blob(ca, EVP_sha1(), "ssh-rsa", msg, &b);
    assert_int_equal(pc_sshkey_verify(ca, pc_sshbuf_ptr(&b), pc_sshbuf_len(&b), msg, 5, NULL),
                     PC_ERR_INVAL);
    /* A SHA-256 signature labelled rsa-sha2-512 does not verify. */
    rsa_blob(ca, EVP_sha256(), "rsa-sha2-512", msg, &b);
    assert_int_equal(pc_sshkey_verify(ca, pc_sshbuf_ptr(&b), pc_sshbuf_len(&b), msg, 5, NULL),
                     PC_ERR_CRYPTO);
    /* An Ed25519 signature presented for an RSA key: algorithm mismatch. */
    assert_int_equal(pc_sshkey_generate(PC_KEY_ED25519, &ed), 0);
    assert_int_equal(pc_sshkey_sign(ed, msg, 5, &sig, &siglen), 0);
    assert_int_equal(pc_sshkey_verify(ca, sig, siglen, msg, 5, NULL), PC_ERR_INVAL);
    free(sig);
    pc_sshkey_free(ed);
    pc_sshkey_free(ca);
    pc_sshbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_keygen_keys),   cmocka_unit_test(test_refuse_small_rsa),
        cmocka_unit_test(test_refuse_garbage),      cmocka_unit_test(test_refuse_bad_curve_points),
        cmocka_unit_test(test_ca_keygen_save_load), cmocka_unit_test(test_sign_verify_roundtrip),
        cmocka_unit_test(test_rsa_algorithms),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
