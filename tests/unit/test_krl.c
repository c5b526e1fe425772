/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests for lib/pc_krl: a KRL we encode is read by `ssh-keygen -Q` — certificates revoked
 * by serial, serial range and key id are REVOKED, others are ok; plain keys revoked by hash;
 * the byte layout is the one PROTOCOL.krl describes and deterministic. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pc_cert.h"
#include "pc_err.h"
#include "pc_krl.h"
#include "pc_sshbuf.h"
#include "pc_sshkey.h"
#include "pc_time.h"
#include "ssh_tool.h"

static char dir[ST_PATH_MAX];
static struct pc_sshkey *ca, *subject, *plain_revoked, *plain_ok;

static struct pc_sshkey *keygen_pub(const char *name)
{
    char p[ST_PATH_MAX], pub[ST_PATH_MAX];
    struct pc_sshkey *k = NULL;
    char *line;
    if (st_keygen(st_path(p, dir, name), "ed25519", 0) != 0)
        return NULL;
    snprintf(pub, sizeof pub, "%s.pub", p);
    line = st_read(pub, NULL);
    if (!line || pc_sshkey_parse_line(line, &k, NULL) != 0)
        k = NULL;
    free(line);
    return k;
}

static int group_setup(void **state)
{
    (void)state;
    if (st_mkdtemp("krl", dir) != 0 || pc_sshkey_generate(PC_KEY_ED25519, &ca) != 0)
        return -1;
    subject = keygen_pub("user");
    plain_revoked = keygen_pub("lost");
    plain_ok = keygen_pub("kept");
    return subject && plain_revoked && plain_ok ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    pc_sshkey_free(ca);
    pc_sshkey_free(subject);
    pc_sshkey_free(plain_revoked);
    pc_sshkey_free(plain_ok);
    return st_rmtree(dir);
}

/* Signs a user cert with our CA and writes it to DIR/name; returns the path in out. */
static void write_cert(uint64_t serial, const char *key_id, const char *name, char *out)
{
    static const char *const principals[] = { "alice" };
    struct pc_cert_req req = {
        .type = PC_CERT_USER, .subject = subject, .serial = serial, .key_id = key_id,
        .principals = principals, .n_principals = 1,
    };
    char *line = NULL;
    assert_int_equal(pc_cert_validity(pc_now(), -1, 3600, &req.valid_after, &req.valid_before), 0);
    assert_int_equal(pc_cert_sign_line(&req, ca, NULL, &line), 0);
    assert_int_equal(st_write(st_path(out, dir, name), line, strlen(line)), 0);
    free(line);
}

static const uint64_t revoked_serials[] = { 7, 1, 5, 6, 5 }; /* unsorted, with a duplicate */
static const char *const revoked_ids[] = { "bob" };

static void make_spec(struct pc_krl_spec *spec, struct pc_krl_certs *certs,
                      const struct pc_sshkey **keys)
{
    memset(certs, 0, sizeof *certs);
    certs->ca = ca;
    certs->serials = revoked_serials;
    certs->n_serials = sizeof revoked_serials / sizeof revoked_serials[0];
    certs->key_ids = revoked_ids;
    certs->n_key_ids = 1;
    keys[0] = plain_revoked;
    memset(spec, 0, sizeof *spec);
    spec->krl_version = 3;
    spec->generated_date = 1893456000;
    spec->comment = "portcullis test";
    spec->certs = certs;
    spec->n_certs = 1;
    spec->keys = keys;
    spec->n_keys = 1;
}

/* ssh-keygen -Q -f KRL FILE: exit status and output. */
static int query(const char *krl, const char *file, char **out)
{
    const char *argv[] = { "ssh-keygen", "-Q", "-f", krl, file, NULL };
    struct st_result r;
    int status;
    assert_int_equal(st_run(argv, NULL, &r), 0);
    status = r.status;
    *out = r.out;
    r.out = NULL;
    st_result_free(&r);
    return status;
}

static void expect_query(const char *krl, const char *file, int revoked)
{
    char *out = NULL;
    int status = query(krl, file, &out);
    if (revoked) {
        assert_int_equal(status, 1);
        assert_true(st_contains(out, ": REVOKED"));
    } else {
        assert_int_equal(status, 0);
        assert_true(st_contains(out, ": ok"));
    }
    free(out);
}

static void test_keygen_query(void **state)
{
    struct pc_krl_spec spec;
    struct pc_krl_certs certs;
    const struct pc_sshkey *keys[1];
    char krl[ST_PATH_MAX], c5[ST_PATH_MAX], c2[ST_PATH_MAX], cbob[ST_PATH_MAX], c1[ST_PATH_MAX];
    char c8[ST_PATH_MAX], c4[ST_PATH_MAX], p[ST_PATH_MAX];
    struct stat st;
    (void)state;
    make_spec(&spec, &certs, keys);
    st_path(krl, dir, "revoked.krl");
    assert_int_equal(pc_krl_write_file(&spec, krl), 0);
    assert_int_equal(stat(krl, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    write_cert(5, "carol", "c5-cert.pub", c5);
    write_cert(2, "dave", "c2-cert.pub", c2);
    write_cert(9, "bob", "cbob-cert.pub", cbob);
    write_cert(1, "erin", "c1-cert.pub", c1);
    write_cert(8, "frank", "c8-cert.pub", c8);
    write_cert(4, "grace", "c4-cert.pub", c4);
    expect_query(krl, c5, 1);   /* inside the range 5-7 */
    expect_query(krl, c2, 0);
    expect_query(krl, cbob, 1); /* by key id */
    expect_query(krl, c1, 1);   /* in the serial list */
    expect_query(krl, c8, 0);   /* just past the range */
    expect_query(krl, c4, 0);   /* just before it */
    expect_query(krl, st_path(p, dir, "lost.pub"), 1); /* plain key by SHA-256 hash */
    expect_query(krl, st_path(p, dir, "kept.pub"), 0);
    expect_query(krl, st_path(p, dir, "user.pub"), 0); /* the subject key itself is not revoked */
}

static void test_keygen_listing(void **state)
{
    struct pc_krl_spec spec;
    struct pc_krl_certs certs;
    const struct pc_sshkey *keys[1];
    char krl[ST_PATH_MAX], fp[PC_SSHKEY_FP_SIZE], want[256];
    struct st_result r;
    const char *argv[] = { "ssh-keygen", "-Q", "-l", "-f", krl, NULL };
    (void)state;
    make_spec(&spec, &certs, keys);
    assert_int_equal(pc_krl_write_file(&spec, st_path(krl, dir, "list.krl")), 0);
    assert_int_equal(st_run(argv, NULL, &r), 0);
    assert_int_equal(r.status, 0);
    assert_true(st_contains(r.out, "# KRL version 3\n"));
    assert_true(st_contains(r.out, "# Generated at 20300101T000000\n"));
    assert_true(st_contains(r.out, "# Comment: portcullis test\n"));
    assert_int_equal(pc_sshkey_fingerprint(ca, fp), 0);
    snprintf(want, sizeof want, "# CA key ssh-ed25519 %s\nserial: 1\nserial: 5-7\nid: bob\n", fp);
    assert_true(st_contains(r.out, want));
    assert_true(st_contains(r.out, "hash: SHA256:"));
    st_result_free(&r);
}

/* The exact layout PROTOCOL.krl describes, read back with the wire buffer. */
static void test_layout(void **state)
{
    struct pc_krl_spec spec;
    struct pc_krl_certs certs;
    const struct pc_sshkey *keys[1];
    unsigned char *krl = NULL, *cablob = NULL, magic[8], hash[32];
    const unsigned char *p = NULL;
    size_t len = 0, cablen = 0, n = 0;
    struct pc_sshbuf b, sec, sub;
    uint32_t fmt = 0;
    uint64_t v = 0, a = 0, z = 0;
    uint8_t type = 0;
    char *comment = NULL, *id = NULL;
    (void)state;
    make_spec(&spec, &certs, keys);
    assert_int_equal(pc_krl_encode(&spec, &krl, &len), 0);
    pc_sshbuf_init_reader(&b, krl, len);
    pc_sshbuf_get_raw(&b, magic, 8);
    assert_memory_equal(magic, "SSHKRL\n\0", 8);
    pc_sshbuf_get_u32(&b, &fmt);
    assert_int_equal(fmt, 1);
    pc_sshbuf_get_u64(&b, &v);
    assert_true(v == 3);
    pc_sshbuf_get_u64(&b, &v);
    assert_true(v == 1893456000);
    pc_sshbuf_get_u64(&b, &v);
    assert_true(v == 0);                                  /* flags */
    assert_int_equal(pc_sshbuf_get_expect_cstring(&b, ""), 0); /* reserved */
    assert_int_equal(pc_sshbuf_get_cstring(&b, &comment), 0);
    assert_string_equal(comment, "portcullis test");
    /* Certificates section. */
    pc_sshbuf_get_u8(&b, &type);
    assert_int_equal(type, 1);
    assert_int_equal(pc_sshbuf_get_sub(&b, &sec), 0);
    assert_int_equal(pc_sshbuf_get_string(&sec, &p, &n), 0);
    assert_int_equal(pc_sshkey_to_blob(ca, &cablob, &cablen), 0);
    assert_int_equal(n, cablen);
    assert_memory_equal(p, cablob, n);
    assert_int_equal(pc_sshbuf_get_expect_cstring(&sec, ""), 0);
    /* Serial list: just 1. */
    pc_sshbuf_get_u8(&sec, &type);
    assert_int_equal(type, 0x20);
    pc_sshbuf_get_sub(&sec, &sub);
    pc_sshbuf_get_u64(&sub, &a);
    assert_int_equal(pc_sshbuf_expect_end(&sub), 0);
    assert_true(a == 1);
    /* Range 5..7. */
    pc_sshbuf_get_u8(&sec, &type);
    assert_int_equal(type, 0x21);
    pc_sshbuf_get_sub(&sec, &sub);
    pc_sshbuf_get_u64(&sub, &a);
    pc_sshbuf_get_u64(&sub, &z);
    assert_int_equal(pc_sshbuf_expect_end(&sub), 0);
    assert_true(a == 5 && z == 7);
    /* Key ids. */
    pc_sshbuf_get_u8(&sec, &type);
    assert_int_equal(type, 0x23);
    pc_sshbuf_get_sub(&sec, &sub);
    assert_int_equal(pc_sshbuf_get_cstring(&sub, &id), 0);
    assert_string_equal(id, "bob");
    assert_int_equal(pc_sshbuf_expect_end(&sub), 0);
    assert_int_equal(pc_sshbuf_expect_end(&sec), 0);
    /* SHA-256 key hashes. */
    pc_sshbuf_get_u8(&b, &type);
    assert_int_equal(type, 5);
    pc_sshbuf_get_sub(&b, &sec);
    assert_int_equal(pc_sshbuf_get_string(&sec, &p, &n), 0);
    assert_int_equal(n, 32);
    assert_int_equal(pc_sshkey_sha256(plain_revoked, hash), 0);
    assert_memory_equal(p, hash, 32);
    assert_int_equal(pc_sshbuf_expect_end(&sec), 0);
    assert_int_equal(pc_sshbuf_expect_end(&b), 0);
    free(comment);
    free(id);
    free(cablob);
    free(krl);
}

static void test_deterministic(void **state)
{
    struct pc_krl_spec spec;
    struct pc_krl_certs certs;
    const struct pc_sshkey *keys[2];
    unsigned char *k1 = NULL, *k2 = NULL, *k3 = NULL, *k4 = NULL;
    size_t l1 = 0, l2 = 0, l3 = 0, l4 = 0;
    static const uint64_t other_order[] = { 6, 5, 1, 7, 7, 1 };
    static const char *const ids2[] = { "bob", "bob" };
    (void)state;
    make_spec(&spec, &certs, keys);
    assert_int_equal(pc_krl_encode(&spec, &k1, &l1), 0);
    assert_int_equal(pc_krl_encode(&spec, &k2, &l2), 0);
    assert_int_equal(l1, l2);
    assert_memory_equal(k1, k2, l1);
    /* Same set in another order, with duplicates: same bytes. */
    certs.serials = other_order;
    certs.n_serials = sizeof other_order / sizeof other_order[0];
    certs.key_ids = ids2;
    certs.n_key_ids = 2;
    assert_int_equal(pc_krl_encode(&spec, &k3, &l3), 0);
    assert_int_equal(l1, l3);
    assert_memory_equal(k1, k3, l1);
    /* Two keys given in either order: same bytes. */
    keys[0] = plain_ok;
    keys[1] = plain_revoked;
    spec.n_keys = 2;
    assert_int_equal(pc_krl_encode(&spec, &k4, &l4), 0);
    free(k3);
    keys[0] = plain_revoked;
    keys[1] = plain_ok;
    assert_int_equal(pc_krl_encode(&spec, &k3, &l3), 0);
    assert_int_equal(l3, l4);
    assert_memory_equal(k3, k4, l3);
    free(k1);
    free(k2);
    free(k3);
    free(k4);
}

static void test_refusals_and_any_ca(void **state)
{
    struct pc_krl_spec spec;
    struct pc_krl_certs certs;
    const struct pc_sshkey *keys[1];
    unsigned char *out = NULL;
    size_t len = 0;
    static const uint64_t with_zero[] = { 3, 0 };
    static const char *const empty_id[] = { "" };
    static const char *const eve[] = { "eve" };
    char kca[ST_PATH_MAX], krl[ST_PATH_MAX], key[ST_PATH_MAX], cert[ST_PATH_MAX];
    struct st_result r;
    (void)state;
    make_spec(&spec, &certs, keys);
    certs.serials = with_zero;
    certs.n_serials = 2;
    assert_int_equal(pc_krl_encode(&spec, &out, &len), PC_ERR_INVAL); /* serial 0 */
    make_spec(&spec, &certs, keys);
    certs.key_ids = empty_id;
    assert_int_equal(pc_krl_encode(&spec, &out, &len), PC_ERR_INVAL);
    make_spec(&spec, &certs, keys);
    certs.ca = NULL; /* serials need a CA */
    assert_int_equal(pc_krl_encode(&spec, &out, &len), PC_ERR_INVAL);
    make_spec(&spec, &certs, keys);
    certs.n_serials = 0;
    certs.n_key_ids = 0;
    assert_int_equal(pc_krl_encode(&spec, &out, &len), PC_ERR_INVAL); /* empty section */
    assert_null(out);

    /* A key-id section for any CA revokes "eve" even from a CA ssh-keygen made. */
    memset(&certs, 0, sizeof certs);
    certs.key_ids = eve;
    certs.n_key_ids = 1;
    memset(&spec, 0, sizeof spec);
    spec.certs = &certs;
    spec.n_certs = 1;
    assert_int_equal(pc_krl_write_file(&spec, st_path(krl, dir, "any.krl")), 0);
    assert_int_equal(st_keygen(st_path(kca, dir, "kca"), "ed25519", 0), 0);
    st_path(key, dir, "user.pub");
    {
        const char *argv[] = { "ssh-keygen", "-q", "-s", kca, "-I", "eve", "-n", "eve", "-z", "3",
                               key, NULL };
        assert_int_equal(st_run(argv, NULL, &r), 0);
        assert_int_equal(r.status, 0);
        st_result_free(&r);
    }
    expect_query(krl, st_path(cert, dir, "user-cert.pub"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keygen_query),
        cmocka_unit_test(test_keygen_listing),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_refusals_and_any_ca),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
