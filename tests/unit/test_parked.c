/* SPDX-License-Identifier: BSD-2-Clause */
/* Tests of a parked poll's record sealing (control-plane/cp_parked.c): a record opens with the
 * key and the nonce RFC 8446 section 5.3 gives (the IV XOR the sequence number) and carries its
 * content type inside; each record takes the next sequence number; what does not fit, or would
 * reuse a nonce, is refused. Real clients reading sealed replies, each cipher suite:
 * tests/integration/test_parked_polls.py. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <gnutls/gnutls.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cp_parked.h"

static void fill(struct cp_parked *p, int cipher, size_t key_len)
{
    memset(p, 0, sizeof *p);
    p->fd = -1;
    p->cipher = cipher;
    p->key_len = key_len;
    for (size_t i = 0; i < key_len; i++)
        p->key[i] = (unsigned char)(0x40 + i);
    for (size_t i = 0; i < sizeof p->iv; i++)
        p->iv[i] = (unsigned char)(0xa0 + i);
    p->seq = 5;
}

/* Opens rec independently (the header as AAD, nonce = IV XOR seq): the inner plaintext's length,
 * or -1 if it does not authenticate. */
static int open_record(const EVP_CIPHER *aead, const struct cp_parked *p, uint64_t seq,
                       const unsigned char *rec, size_t n, unsigned char *out)
{
    unsigned char nonce[12];
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int len = 0, fin = 0, ok;

    memcpy(nonce, p->iv, sizeof nonce);
    for (int i = 0; i < 8; i++)
        nonce[11 - i] ^= (unsigned char)(seq >> (8 * i));
    ok = ctx && EVP_DecryptInit_ex(ctx, aead, NULL, NULL, NULL) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) == 1 &&
         EVP_DecryptInit_ex(ctx, NULL, NULL, p->key, nonce) == 1 &&
         EVP_DecryptUpdate(ctx, NULL, &len, rec, 5) == 1 &&
         EVP_DecryptUpdate(ctx, out, &len, rec + 5, (int)(n - 5 - 16)) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, (void *)(rec + n - 16)) == 1 &&
         EVP_DecryptFinal_ex(ctx, out + len, &fin) == 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? len + fin : -1;
}

static void seals_one_suite(int cipher, size_t key_len, const EVP_CIPHER *aead)
{
    struct cp_parked p, copy;
    unsigned char rec[128], rec2[128], plain[128];
    const char *msg = "HTTP/1.1 200 OK\r\n\r\n{}";
    size_t n, n2;

    fill(&p, cipher, key_len);
    copy = p;
    n = cp_parked_seal(&p, 23, (const unsigned char *)msg, strlen(msg), rec, sizeof rec);
    assert_int_equal(n, 5 + strlen(msg) + 1 + 16);
    assert_int_equal(p.seq, 6);
    /* header: application data, legacy version 3.3, the length of what follows */
    assert_int_equal(rec[0], 23);
    assert_int_equal(rec[1], 3);
    assert_int_equal(rec[2], 3);
    assert_int_equal((rec[3] << 8) | rec[4], n - 5);
    assert_int_equal(open_record(aead, &copy, 5, rec, n, plain), (int)strlen(msg) + 1);
    assert_memory_equal(plain, msg, strlen(msg));
    assert_int_equal(plain[strlen(msg)], 23); /* the real content type, inside */
    /* the wrong sequence number does not open it */
    assert_int_equal(open_record(aead, &copy, 6, rec, n, plain), -1);
    /* the same plaintext again: the next nonce, another ciphertext, and an alert's type */
    n2 = cp_parked_seal(&p, 21, (const unsigned char *)msg, strlen(msg), rec2, sizeof rec2);
    assert_int_equal(n2, n);
    assert_memory_not_equal(rec + 5, rec2 + 5, n - 5);
    assert_int_equal(open_record(aead, &copy, 6, rec2, n2, plain), (int)strlen(msg) + 1);
    assert_int_equal(plain[strlen(msg)], 21);
    /* a flipped bit anywhere, header included, fails */
    rec[3] ^= 1;
    assert_int_equal(open_record(aead, &copy, 5, rec, n, plain), -1);
}

static void test_aes_128_gcm(void **state)
{
    (void)state;
    seals_one_suite(GNUTLS_CIPHER_AES_128_GCM, 16, EVP_aes_128_gcm());
}

static void test_aes_256_gcm(void **state)
{
    (void)state;
    seals_one_suite(GNUTLS_CIPHER_AES_256_GCM, 32, EVP_aes_256_gcm());
}

static void test_chacha20_poly1305(void **state)
{
    (void)state;
    seals_one_suite(GNUTLS_CIPHER_CHACHA20_POLY1305, 32, EVP_chacha20_poly1305());
}

static void test_refuses_what_does_not_fit_or_is_unknown(void **state)
{
    static unsigned char big[16385], out[16384 + 5 + 1 + 16 + 1];
    struct cp_parked p;
    (void)state;

    fill(&p, GNUTLS_CIPHER_AES_128_GCM, 16);
    /* more than a record's 16,384 bytes */
    assert_int_equal(cp_parked_seal(&p, 23, big, sizeof big, out, sizeof out), 0);
    /* exactly 16,384 fits, into exactly its room */
    assert_int_equal(cp_parked_seal(&p, 23, big, 16384, out, 16384 + 22), 16384 + 22);
    /* one byte too little room */
    assert_int_equal(cp_parked_seal(&p, 23, big, 10, out, 10 + 21), 0);
    /* a key of the wrong length for its cipher, a cipher not supported (CBC) */
    fill(&p, GNUTLS_CIPHER_AES_256_GCM, 16);
    assert_int_equal(cp_parked_seal(&p, 23, big, 10, out, sizeof out), 0);
    fill(&p, GNUTLS_CIPHER_AES_128_CBC, 16);
    assert_int_equal(cp_parked_seal(&p, 23, big, 10, out, sizeof out), 0);
    /* the last sequence number is never used: a nonce would repeat after it */
    fill(&p, GNUTLS_CIPHER_AES_128_GCM, 16);
    p.seq = UINT64_MAX - 1;
    assert_int_not_equal(cp_parked_seal(&p, 23, big, 10, out, sizeof out), 0);
    assert_int_equal(cp_parked_seal(&p, 23, big, 10, out, sizeof out), 0);
    assert_int_equal(p.seq, UINT64_MAX);
}

static void test_drop_wipes_the_keys(void **state)
{
    struct cp_parked p;
    static const unsigned char zero[32];
    (void)state;

    fill(&p, GNUTLS_CIPHER_AES_256_GCM, 32);
    cp_parked_drop(&p);
    assert_int_equal(p.fd, -1);
    assert_memory_equal(p.key, zero, sizeof p.key);
    assert_memory_equal(p.iv, zero, sizeof p.iv);
}

/* A whole answer on a socket: the HTTP reply in records of at most 511 content bytes (any
 * record_size_limit GnuTLS accepts), each with the next sequence number, then close_notify,
 * then the end of the stream; the socket is closed and the keys wiped. */
static void test_answer_in_small_records_then_close_notify(void **state)
{
    struct cp_parked p, copy;
    static unsigned char wire[16384], plain[1024];
    char json[2001], reply[4096];
    size_t got = 0, off = 0, rlen = 0;
    uint64_t seq = 5;
    int sv[2], records = 0, closed = 0;
    ssize_t n;
    (void)state;

    memset(json, 'a', sizeof json - 1);
    json[0] = '"';
    json[sizeof json - 2] = '"';
    json[sizeof json - 1] = '\0';
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fill(&p, GNUTLS_CIPHER_AES_128_GCM, 16);
    p.fd = sv[0];
    copy = p;
    cp_parked_answer(&p, 200, json);
    assert_int_equal(p.fd, -1);
    assert_int_equal(p.key[0], 0);
    while ((n = read(sv[1], wire + got, sizeof wire - got)) > 0)
        got += (size_t)n;
    assert_int_equal(n, 0); /* the stream ended */
    close(sv[1]);
    while (off < got) {
        size_t len;
        int inner;
        assert_true(got - off >= 5);
        assert_int_equal(wire[off], 23);
        len = (size_t)(wire[off + 3] << 8 | wire[off + 4]);
        assert_true(off + 5 + len <= got);
        inner = open_record(EVP_aes_128_gcm(), &copy, seq++, wire + off, 5 + len, plain);
        assert_true(inner >= 1 && inner <= 512);
        assert_false(closed); /* nothing after close_notify */
        if (plain[inner - 1] == 21) {
            assert_int_equal(inner, 3);
            assert_int_equal(plain[0], 1);
            assert_int_equal(plain[1], 0);
            closed = 1;
        } else {
            assert_int_equal(plain[inner - 1], 23);
            assert_true(rlen + (size_t)inner - 1 < sizeof reply);
            memcpy(reply + rlen, plain, (size_t)inner - 1);
            rlen += (size_t)inner - 1;
            records++;
        }
        off += 5 + len;
    }
    assert_true(closed);
    assert_true(records >= 4); /* over 2,000 bytes in records of 511 */
    reply[rlen] = '\0';
    assert_true(strncmp(reply, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_non_null(strstr(reply, "Content-Length: 2000\r\n"));
    assert_non_null(strstr(reply, "Connection: close\r\n"));
    assert_true(rlen > 2000 && memcmp(reply + rlen - 2000, json, 2000) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aes_128_gcm),
        cmocka_unit_test(test_aes_256_gcm),
        cmocka_unit_test(test_chacha20_poly1305),
        cmocka_unit_test(test_refuses_what_does_not_fit_or_is_unknown),
        cmocka_unit_test(test_drop_wipes_the_keys),
        cmocka_unit_test(test_answer_in_small_records_then_close_notify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
