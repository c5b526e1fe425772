/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests for lib/pc_webpush: RFC 8291 encryption (its Appendix A vector byte for byte),
 * VAPID headers (verified with OpenSSL as a push service would), hostile inputs. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pc_err.h"
#include "pc_webpush.h"

/* RFC 8291 Appendix A */
#define RFC_PLAIN "When I grow up, I want to be a watermelon"
#define RFC_AS_PRIV "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
#define RFC_AS_PUB \
    "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
#define RFC_UA_PRIV "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
#define RFC_UA_PUB \
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
#define RFC_AUTH "BTBZMqHH6r4Tts7J_aSIgg"
#define RFC_SALT "DGv6ra1nlYgDCS1FRnbzlw"
#define RFC_BODY \
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS" \
    "6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_" \
    "Qulcy4a-fN"

static void dec(const char *b64, unsigned char *out, size_t want)
{
    size_t n = 0;
    assert_int_equal(pc_b64url_decode(b64, out, want, &n), PC_OK);
    assert_int_equal(n, want);
}

struct rfc {
    unsigned char as_priv[32], as_pub[65], ua_priv[32], ua_pub[65], auth[16], salt[16];
};

static void rfc_load(struct rfc *v)
{
    dec(RFC_AS_PRIV, v->as_priv, 32);
    dec(RFC_AS_PUB, v->as_pub, 65);
    dec(RFC_UA_PRIV, v->ua_priv, 32);
    dec(RFC_UA_PUB, v->ua_pub, 65);
    dec(RFC_AUTH, v->auth, 16);
    dec(RFC_SALT, v->salt, 16);
}

static void test_rfc8291_vector_encrypts(void **state)
{
    struct rfc v;
    unsigned char out[PC_WEBPUSH_BODY_MAX], pub[65];
    char b64[8192];
    size_t n = 0;
    (void)state;

    rfc_load(&v);
    assert_int_equal(pc_webpush_public(v.as_priv, pub), PC_OK);
    assert_memory_equal(pub, v.as_pub, 65);
    assert_int_equal(pc_webpush_public(v.ua_priv, pub), PC_OK);
    assert_memory_equal(pub, v.ua_pub, 65);
    assert_int_equal(pc_webpush_encrypt_with(v.ua_pub, v.auth, v.as_priv, v.salt,
                                             (const unsigned char *)RFC_PLAIN, strlen(RFC_PLAIN),
                                             out, sizeof out, &n),
                     PC_OK);
    assert_int_equal(n, 86 + strlen(RFC_PLAIN) + 17);
    assert_int_equal(pc_b64url_encode(out, n, b64, sizeof b64), PC_OK);
    assert_string_equal(b64, RFC_BODY);
}

static void test_rfc8291_vector_decrypts(void **state)
{
    struct rfc v;
    unsigned char body[PC_WEBPUSH_BODY_MAX], plain[PC_WEBPUSH_BODY_MAX];
    size_t n = 0, pn = 0;
    (void)state;

    rfc_load(&v);
    assert_int_equal(pc_b64url_decode(RFC_BODY, body, sizeof body, &n), PC_OK);
    assert_int_equal(pc_webpush_decrypt(v.ua_priv, v.auth, body, n, plain, sizeof plain, &pn),
                     PC_OK);
    assert_int_equal(pn, strlen(RFC_PLAIN));
    assert_memory_equal(plain, RFC_PLAIN, pn);
    /* every flipped byte (header, key id, ciphertext, tag) is refused */
    for (size_t i = 0; i < n; i++) {
        if (i >= 16 && i < 20)
            continue; /* rs: any value >= the record still opens */
        body[i] ^= 0x01;
        assert_int_not_equal(pc_webpush_decrypt(v.ua_priv, v.auth, body, n, plain, sizeof plain,
                                                &pn),
                             PC_OK);
        body[i] ^= 0x01;
    }
    /* the wrong auth secret */
    v.auth[0] ^= 1;
    assert_int_equal(pc_webpush_decrypt(v.ua_priv, v.auth, body, n, plain, sizeof plain, &pn),
                     PC_ERR_CRYPTO);
}

static void test_round_trip_fresh_keys(void **state)
{
    unsigned char ua_priv[32], ua_pub[65], auth[16] = "0123456789abcdef";
    unsigned char a[PC_WEBPUSH_BODY_MAX], b[PC_WEBPUSH_BODY_MAX], plain[PC_WEBPUSH_BODY_MAX];
    static unsigned char big[PC_WEBPUSH_PLAIN_MAX];
    size_t na = 0, nb = 0, pn = 0;
    (void)state;

    assert_int_equal(pc_webpush_keygen(ua_priv, ua_pub), PC_OK);
    assert_true(pc_webpush_point_valid(ua_pub));
    assert_int_equal(pc_webpush_encrypt(ua_pub, auth, (const unsigned char *)"hi", 2, a, sizeof a,
                                        &na),
                     PC_OK);
    assert_int_equal(pc_webpush_encrypt(ua_pub, auth, (const unsigned char *)"hi", 2, b, sizeof b,
                                        &nb),
                     PC_OK);
    /* fresh salt and sender key every time */
    assert_int_equal(na, nb);
    assert_memory_not_equal(a, b, 16);
    assert_memory_not_equal(a + 21, b + 21, 65);
    assert_int_equal(pc_webpush_decrypt(ua_priv, auth, a, na, plain, sizeof plain, &pn), PC_OK);
    assert_int_equal(pn, 2);
    assert_memory_equal(plain, "hi", 2);
    /* the largest payload fits in 4096 bytes of body */
    memset(big, 'x', sizeof big);
    assert_int_equal(pc_webpush_encrypt(ua_pub, auth, big, sizeof big, a, sizeof a, &na), PC_OK);
    assert_int_equal(na, PC_WEBPUSH_BODY_MAX);
    assert_int_equal(pc_webpush_decrypt(ua_priv, auth, a, na, plain, sizeof plain, &pn), PC_OK);
    assert_int_equal(pn, sizeof big);
}

static void test_hostile_inputs(void **state)
{
    struct rfc v;
    unsigned char out[PC_WEBPUSH_BODY_MAX + 64], bad[65], zero[32] = { 0 };
    static unsigned char big[PC_WEBPUSH_PLAIN_MAX + 1];
    unsigned char buf[64];
    size_t n = 0;
    (void)state;

    rfc_load(&v);
    /* oversized payload */
    assert_int_equal(pc_webpush_encrypt(v.ua_pub, v.auth, big, sizeof big, out, sizeof out, &n),
                     PC_ERR_TOOBIG);
    /* output too small */
    assert_int_equal(pc_webpush_encrypt(v.ua_pub, v.auth, (const unsigned char *)"x", 1, out, 50,
                                        &n),
                     PC_ERR_TOOBIG);
    /* a point not on the curve, a compressed point, the all-zero point */
    memcpy(bad, v.ua_pub, 65);
    bad[64] ^= 1;
    assert_false(pc_webpush_point_valid(bad));
    assert_int_equal(pc_webpush_encrypt(bad, v.auth, (const unsigned char *)"x", 1, out, sizeof out,
                                        &n),
                     PC_ERR_CRYPTO);
    memcpy(bad, v.ua_pub, 65);
    bad[0] = 0x02;
    assert_false(pc_webpush_point_valid(bad));
    memset(bad, 0, sizeof bad);
    bad[0] = 0x04;
    assert_false(pc_webpush_point_valid(bad));
    /* a private scalar of 0 or above the order */
    assert_int_equal(pc_webpush_public(zero, bad), PC_ERR_CRYPTO);
    memset(buf, 0xff, 32);
    assert_int_equal(pc_webpush_public(buf, bad), PC_ERR_CRYPTO);
    /* a short auth secret never gets here (the caller decodes to exactly 16): the decoder
     * reports the length it found, and refuses what does not fit */
    assert_int_equal(pc_b64url_decode("BTBZMqHH6r4Tts7J", buf, 16, &n), PC_OK);
    assert_int_equal(n, 12);
    assert_int_equal(pc_b64url_decode(RFC_UA_PUB, buf, 16, &n), PC_ERR_TOOBIG);
    /* bad base64url */
    assert_int_equal(pc_b64url_decode("ab+/", buf, sizeof buf, &n), PC_ERR_PARSE);
    assert_int_equal(pc_b64url_decode("a", buf, sizeof buf, &n), PC_ERR_PARSE);
    assert_int_equal(pc_b64url_decode("ab cd", buf, sizeof buf, &n), PC_ERR_PARSE);
    assert_int_equal(pc_b64url_decode("AB", buf, sizeof buf, &n), PC_ERR_PARSE); /* bits left */
    /* short and malformed bodies */
    assert_int_equal(pc_webpush_decrypt(v.ua_priv, v.auth, out, 10, buf, sizeof buf, &n),
                     PC_ERR_PARSE);
}

/* A failed decryption leaves nothing of the plaintext behind in the caller's buffer, and a
 * failed encryption leaves no partial body. */
static void test_no_partial_output(void **state)
{
    struct rfc v;
    unsigned char body[PC_WEBPUSH_BODY_MAX], out[PC_WEBPUSH_BODY_MAX], bad[65];
    size_t n = 0, pn = 0;
    (void)state;

    rfc_load(&v);
    assert_int_equal(pc_b64url_decode(RFC_BODY, body, sizeof body, &n), PC_OK);
    body[n - 1] ^= 0x80; /* the tag */
    memset(out, 0xAA, sizeof out);
    assert_int_equal(pc_webpush_decrypt(v.ua_priv, v.auth, body, n, out, sizeof out, &pn),
                     PC_ERR_CRYPTO);
    for (size_t i = 0; i < sizeof out; i++)
        assert_int_equal(out[i], 0xAA);
    /* the sender's key of 0 is refused before anything is written */
    memset(bad, 0, 32);
    memset(out, 0xAA, sizeof out);
    assert_int_equal(pc_webpush_encrypt_with(v.ua_pub, v.auth, bad, v.salt,
                                             (const unsigned char *)RFC_PLAIN, strlen(RFC_PLAIN),
                                             out, sizeof out, &n),
                     PC_ERR_CRYPTO);
    for (size_t i = 0; i < 86 + strlen(RFC_PLAIN) + 17; i++)
        assert_true(out[i] == 0xAA || out[i] == 0);
}

static void test_endpoints(void **state)
{
    char origin[PC_WEBPUSH_ENDPOINT_MAX + 1], *huge;
    (void)state;

    assert_true(pc_webpush_endpoint_valid("https://fcm.googleapis.com/fcm/send/abc:def"));
    assert_true(pc_webpush_endpoint_valid("https://127.0.0.1:8443/push/x?y=1"));
    assert_true(pc_webpush_endpoint_valid("https://[::1]:8443/p"));
    assert_true(pc_webpush_endpoint_valid("https://push.example"));
    assert_false(pc_webpush_endpoint_valid("http://push.example/x"));
    assert_false(pc_webpush_endpoint_valid("file:///etc/passwd"));
    assert_false(pc_webpush_endpoint_valid("gopher://push.example/x"));
    assert_false(pc_webpush_endpoint_valid("HTTPS://push.example/x"));
    assert_false(pc_webpush_endpoint_valid("https:///x"));
    assert_false(pc_webpush_endpoint_valid("https://user:pw@push.example/x"));
    assert_false(pc_webpush_endpoint_valid("https://push.example:0/x"));
    assert_false(pc_webpush_endpoint_valid("https://push.example:65536/x"));
    assert_false(pc_webpush_endpoint_valid("https://push.example:/x"));
    assert_false(pc_webpush_endpoint_valid("https://push.example/x y"));
    assert_false(pc_webpush_endpoint_valid("https://push.example/x\r\nHost: evil"));
    assert_false(pc_webpush_endpoint_valid("https://push.example/x#frag"));
    assert_false(pc_webpush_endpoint_valid("https://push.example/\"x"));
    assert_false(pc_webpush_endpoint_valid("https://[]/x"));
    assert_false(pc_webpush_endpoint_valid(""));
    assert_false(pc_webpush_endpoint_valid(NULL));
    huge = malloc(PC_WEBPUSH_ENDPOINT_MAX + 2);
    assert_non_null(huge);
    memset(huge, 'a', PC_WEBPUSH_ENDPOINT_MAX + 1);
    memcpy(huge, "https://h/", 10);
    huge[PC_WEBPUSH_ENDPOINT_MAX + 1] = '\0';
    assert_false(pc_webpush_endpoint_valid(huge));
    huge[PC_WEBPUSH_ENDPOINT_MAX] = '\0';
    assert_true(pc_webpush_endpoint_valid(huge));
    free(huge);

    assert_int_equal(pc_webpush_origin("https://fcm.googleapis.com/fcm/send/x", origin,
                                       sizeof origin),
                     PC_OK);
    assert_string_equal(origin, "https://fcm.googleapis.com");
    assert_int_equal(pc_webpush_origin("https://h.example:443/x", origin, sizeof origin), PC_OK);
    assert_string_equal(origin, "https://h.example");
    assert_int_equal(pc_webpush_origin("https://127.0.0.1:8443?x", origin, sizeof origin), PC_OK);
    assert_string_equal(origin, "https://127.0.0.1:8443");
    assert_int_equal(pc_webpush_origin("http://h/x", origin, sizeof origin), PC_ERR_INVAL);

    assert_true(pc_webpush_contact_valid("mailto:ops@example.net"));
    assert_true(pc_webpush_contact_valid("https://example.net/contact"));
    assert_false(pc_webpush_contact_valid("ops@example.net"));
    assert_false(pc_webpush_contact_valid("mailto:a\"b@x"));
    assert_false(pc_webpush_contact_valid("mailto:a b@x"));
}

/* The JWT's parts, as a push service reads them. */
static void verify_jwt(const char *header, const unsigned char pub[65], const char *want_claims)
{
    const char *t = strstr(header, "t="), *k = strstr(header, ", k=");
    char jwt[PC_WEBPUSH_AUTH_HEADER_MAX], kb[100], *dot1, *dot2;
    unsigned char claims[1024], sig[64], der[80], *p = der, kpub[65];
    size_t n = 0, sn = 0, kn = 0;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = NULL, *s = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params;
    EVP_PKEY_CTX *kctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *key = NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int derlen;

    assert_non_null(t);
    assert_non_null(k);
    assert_int_equal(strncmp(header, "vapid t=", 8), 0);
    snprintf(jwt, sizeof jwt, "%.*s", (int)(k - t - 2), t + 2);
    snprintf(kb, sizeof kb, "%s", k + 4);
    assert_int_equal(pc_b64url_decode(kb, kpub, sizeof kpub, &kn), PC_OK);
    assert_int_equal(kn, 65);
    assert_memory_equal(kpub, pub, 65);
    dot1 = strchr(jwt, '.');
    assert_non_null(dot1);
    dot2 = strchr(dot1 + 1, '.');
    assert_non_null(dot2);
    *dot2 = '\0';
    assert_int_equal(pc_b64url_decode(dot1 + 1, claims, sizeof claims - 1, &n), PC_OK);
    claims[n] = '\0';
    assert_string_equal((char *)claims, want_claims);
    assert_int_equal(pc_b64url_decode(dot2 + 1, sig, sizeof sig, &sn), PC_OK);
    assert_int_equal(sn, 64);
    r = BN_bin2bn(sig, 32, NULL);
    s = BN_bin2bn(sig + 32, 32, NULL);
    assert_int_equal(ECDSA_SIG_set0(es, r, s), 1);
    derlen = i2d_ECDSA_SIG(es, &p);
    assert_true(derlen > 0);
    assert_true(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0));
    assert_true(OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, 65));
    params = OSSL_PARAM_BLD_to_param(bld);
    assert_int_equal(EVP_PKEY_fromdata_init(kctx), 1);
    assert_int_equal(EVP_PKEY_fromdata(kctx, &key, EVP_PKEY_PUBLIC_KEY, params), 1);
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key), 1);
    assert_int_equal(EVP_DigestVerify(md, der, (size_t)derlen, (unsigned char *)jwt, strlen(jwt)),
                     1);
    /* a changed claim does not verify */
    jwt[strlen(jwt) - 1] ^= 1;
    assert_int_not_equal(EVP_DigestVerify(md, der, (size_t)derlen, (unsigned char *)jwt,
                                          strlen(jwt)),
                         1);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    EVP_PKEY_CTX_free(kctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    ECDSA_SIG_free(es);
}

static void test_vapid_header(void **state)
{
    unsigned char priv[32], pub[65];
    char h[PC_WEBPUSH_AUTH_HEADER_MAX];
    (void)state;

    assert_int_equal(pc_webpush_keygen(priv, pub), PC_OK);
    assert_int_equal(pc_webpush_vapid_header(priv, "https://push.example:8443/a/b", "mailto:o@x.y",
                                             1700000000, 43200, h, sizeof h),
                     PC_OK);
    verify_jwt(
        h, pub,
        "{\"aud\":\"https://push.example:8443\",\"exp\":1700043200,\"sub\":\"mailto:o@x.y\"}");
    assert_int_equal(pc_webpush_vapid_header(priv, "https://push.example/a", NULL, 100, 60, h,
                                             sizeof h),
                     PC_OK);
    verify_jwt(h, pub, "{\"aud\":\"https://push.example\",\"exp\":160}");
    /* exp more than 24 h ahead, a bad contact, a bad endpoint, a small buffer */
    assert_int_equal(pc_webpush_vapid_header(priv, "https://p.example/a", NULL, 100, 86401, h,
                                             sizeof h),
                     PC_ERR_INVAL);
    assert_int_equal(pc_webpush_vapid_header(priv, "https://p.example/a", "x\",\"aud\":\"evil", 100,
                                             60, h, sizeof h),
                     PC_ERR_INVAL);
    assert_int_equal(pc_webpush_vapid_header(priv, "http://p.example/a", NULL, 100, 60, h,
                                             sizeof h),
                     PC_ERR_INVAL);
    assert_int_equal(pc_webpush_vapid_header(priv, "https://p.example/a", NULL, 100, 60, h, 40),
                     PC_ERR_TOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc8291_vector_encrypts),
        cmocka_unit_test(test_rfc8291_vector_decrypts),
        cmocka_unit_test(test_round_trip_fresh_keys),
        cmocka_unit_test(test_hostile_inputs),
        cmocka_unit_test(test_no_partial_output),
        cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_vapid_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
