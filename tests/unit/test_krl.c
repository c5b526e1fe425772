/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests for lib/pc_krl: a KRL we encode is read by `ssh-keygen -Q` — certificates revoked
 * by serial, serial range and key id are REVOKED, others are ok; plain keys revoked by hash;
 * the byte layout is the one PROTOCOL.krl describes and deterministic. pc_krl_check reads back
 * what we write and what ssh-keygen writes, and refuses truncated KRLs, a bad magic or format
 * version, unknown or signature sections and KRLs over the bound. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
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
        .type = PC_CERT_USER,
        .subject = subject,
        .serial = serial,
        .key_id = key_id,
        .principals = principals,
        .n_principals = 1,
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
    expect_query(krl, c5, 1); /* inside the range 5-7 */
    expect_query(krl, c2, 0);
    expect_query(krl, cbob, 1);                        /* by key id */
    expect_query(krl, c1, 1);                          /* in the serial list */
    expect_query(krl, c8, 0);                          /* just past the range */
    expect_query(krl, c4, 0);                          /* just before it */
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
    assert_true(v == 0);                                       /* flags */
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
        const char *argv[] = { "ssh-keygen", "-q",  "-s", kca, "-I", "eve",
                               "-n",         "eve", "-z", "3", key,  NULL };
        assert_int_equal(st_run(argv, NULL, &r), 0);
        assert_int_equal(r.status, 0);
        st_result_free(&r);
    }
    expect_query(krl, st_path(cert, dir, "user-cert.pub"), 1);
}

/* ---- pc_krl_check ------------------------------------------------------------------------ */

static void check_ok(const unsigned char *krl, size_t len, uint64_t want_version)
{
    uint64_t v = ~want_version;
    assert_int_equal(pc_krl_check(krl, len, &v), 0);
    assert_true(v == want_version);
}

static void check_refused(const unsigned char *krl, size_t len)
{
    uint64_t v = 0;
    assert_int_equal(pc_krl_check(krl, len, &v), PC_ERR_PARSE);
}

/* The header pc_krl_encode writes, by hand: magic, format, version, date, flags, reserved,
 * comment. */
static void put_header(struct pc_sshbuf *b, uint32_t format, uint64_t version)
{
    pc_sshbuf_put_raw(b, "SSHKRL\n\0", 8);
    pc_sshbuf_put_u32(b, format);
    pc_sshbuf_put_u64(b, version);
    pc_sshbuf_put_u64(b, 1893456000);
    pc_sshbuf_put_u64(b, 0);
    pc_sshbuf_put_string(b, NULL, 0);
    pc_sshbuf_put_cstring(b, "hand-made");
}

/* What the writer makes, the reader takes: serial lists and ranges, key ids, any-CA sections,
 * key hashes, no sections at all; every krl_version comes back. */
static void test_check_roundtrip(void **state)
{
    static const uint64_t ranges[] = {
        1,         2, 3, 10, 11, 12, 13, 14, 15, 100, 200, 201, 202, UINT64_MAX - 2, UINT64_MAX - 1,
        UINT64_MAX
    };
    static const uint64_t versions[] = { 0, 1, 3, (uint64_t)1 << 63, UINT64_MAX };
    static const char *const eve[] = { "eve" };
    struct pc_krl_spec spec;
    struct pc_krl_certs certs[2];
    const struct pc_sshkey *keys[2];
    unsigned char *krl = NULL;
    size_t len = 0;
    (void)state;
    make_spec(&spec, &certs[0], keys);
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        spec.krl_version = versions[i];
        assert_int_equal(pc_krl_encode(&spec, &krl, &len), 0);
        check_ok(krl, len, versions[i]);
        free(krl);
    }
    /* Several runs and loose serials, up to the largest serial; a second, any-CA section. */
    certs[0].serials = ranges;
    certs[0].n_serials = sizeof ranges / sizeof ranges[0];
    memset(&certs[1], 0, sizeof certs[1]);
    certs[1].key_ids = eve;
    certs[1].n_key_ids = 1;
    spec.n_certs = 2;
    keys[1] = plain_ok;
    spec.n_keys = 2;
    spec.comment = NULL;
    spec.krl_version = 42;
    assert_int_equal(pc_krl_encode(&spec, &krl, &len), 0);
    check_ok(krl, len, 42);
    free(krl);
    /* Nothing revoked: the header alone is a KRL. */
    memset(&spec, 0, sizeof spec);
    spec.krl_version = 7;
    assert_int_equal(pc_krl_encode(&spec, &krl, &len), 0);
    check_ok(krl, len, 7);
    free(krl);
}

/* The reverse: a KRL ssh-keygen writes (serial ranges, key ids, explicit keys) checks out. */
static void test_check_reads_ssh_keygen(void **state)
{
    static const char spec_text[] = "serial: 5-100\nserial: 7\nserial: 200\nid: mallory\n";
    char kca[ST_PATH_MAX], spec[ST_PATH_MAX], krl[ST_PATH_MAX], lost[ST_PATH_MAX];
    unsigned char *data = NULL;
    size_t len = 0;
    struct st_result r;
    (void)state;
    assert_int_equal(st_keygen(st_path(kca, dir, "kgca"), "ed25519", 0), 0);
    assert_true(strlen(kca) + sizeof ".pub" <= sizeof kca);
    memcpy(kca + strlen(kca), ".pub", sizeof ".pub");
    assert_int_equal(st_write(st_path(spec, dir, "kgspec"), spec_text, strlen(spec_text)), 0);
    st_path(krl, dir, "kg.krl");
    st_path(lost, dir, "lost.pub");
    {
        const char *argv[] = { "ssh-keygen", "-k", "-f", krl, "-z", "1234", "-s", kca, spec, NULL };
        assert_int_equal(st_run(argv, NULL, &r), 0);
        assert_int_equal(r.status, 0);
        st_result_free(&r);
    }
    {
        const char *argv[] = { "ssh-keygen", "-k", "-u", "-f", krl, "-z", "1235", lost, NULL };
        assert_int_equal(st_run(argv, NULL, &r), 0);
        assert_int_equal(r.status, 0);
        st_result_free(&r);
    }
    data = (unsigned char *)st_read(krl, &len);
    assert_non_null(data);
    check_ok(data, len, 1235);
    free(data);
}

/* Every prefix of a KRL is refused, except those that end exactly where a section ends (they
 * are KRLs with fewer sections). */
static void test_check_truncated(void **state)
{
    struct pc_krl_spec spec;
    struct pc_krl_certs certs;
    const struct pc_sshkey *keys[1];
    unsigned char *krl = NULL;
    size_t len = 0, end, boundaries = 0;
    (void)state;
    make_spec(&spec, &certs, keys);
    assert_int_equal(pc_krl_encode(&spec, &krl, &len), 0);
    end = 8 + 4 + 8 + 8 + 8 + 4 + 4 + strlen("portcullis test"); /* the header */
    for (size_t cut = 0; cut < len; cut++) {
        if (cut == end) {
            check_ok(krl, cut, 3);
            boundaries++;
            /* type byte, then a uint32 length and that many bytes */
            end += 1 + 4 +
                   ((size_t)krl[end + 1] << 24 | (size_t)krl[end + 2] << 16 |
                    (size_t)krl[end + 3] << 8 | krl[end + 4]);
        } else {
            check_refused(krl, cut);
        }
    }
    assert_int_equal(end, len);
    assert_int_equal(boundaries, 2); /* the header; the certificates section */
    check_ok(krl, len, 3);
    free(krl);
    check_refused(NULL, 0);
}

static void test_check_bad_header(void **state)
{
    struct pc_krl_spec spec;
    struct pc_krl_certs certs;
    const struct pc_sshkey *keys[1];
    unsigned char *krl = NULL;
    size_t len = 0;
    struct pc_sshbuf b;
    (void)state;
    make_spec(&spec, &certs, keys);
    assert_int_equal(pc_krl_encode(&spec, &krl, &len), 0);
    for (size_t i = 0; i < 8; i++) { /* each byte of the magic */
        krl[i] ^= 0x20;
        check_refused(krl, len);
        krl[i] ^= 0x20;
    }
    check_ok(krl, len, 3);
    free(krl);
    for (uint32_t format = 0; format < 4; format++) {
        pc_sshbuf_init(&b, 0);
        put_header(&b, format, 9);
        assert_int_equal(pc_sshbuf_error(&b), 0);
        if (format == 1)
            check_ok(pc_sshbuf_ptr(&b), pc_sshbuf_len(&b), 9);
        else
            check_refused(pc_sshbuf_ptr(&b), pc_sshbuf_len(&b));
        pc_sshbuf_free(&b);
    }
}

/* Known section types are taken whatever their body (it is not parsed); a signature section,
 * an unknown type, a stray byte or a section longer than the KRL is refused. */
static void test_check_sections(void **state)
{
    static const struct {
        uint8_t type;
        int ok;
    } cases[] = {
        { 0, 0 }, { 1, 1 },    { 2, 1 },    { 3, 1 },    { 4, 0 },    { 5, 1 },
        { 6, 0 }, { 0x20, 0 }, { 0x21, 0 }, { 0x23, 0 }, { 0xff, 0 },
    };
    struct pc_sshbuf b;
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pc_sshbuf_init(&b, 0);
        put_header(&b, 1, 11);
        pc_sshbuf_put_u8(&b, 1);
        pc_sshbuf_put_string(&b, "x", 1);
        pc_sshbuf_put_u8(&b, cases[i].type);
        pc_sshbuf_put_string(&b, "body", 4);
        assert_int_equal(pc_sshbuf_error(&b), 0);
        if (cases[i].ok)
            check_ok(pc_sshbuf_ptr(&b), pc_sshbuf_len(&b), 11);
        else
            check_refused(pc_sshbuf_ptr(&b), pc_sshbuf_len(&b));
        pc_sshbuf_free(&b);
    }
    /* A type byte with nothing after it. */
    pc_sshbuf_init(&b, 0);
    put_header(&b, 1, 11);
    pc_sshbuf_put_u8(&b, 5);
    check_refused(pc_sshbuf_ptr(&b), pc_sshbuf_len(&b));
    pc_sshbuf_free(&b);
    /* A section whose length runs past the end. */
    pc_sshbuf_init(&b, 0);
    put_header(&b, 1, 11);
    pc_sshbuf_put_u8(&b, 5);
    pc_sshbuf_put_u32(&b, UINT32_MAX);
    pc_sshbuf_put_raw(&b, "abcd", 4);
    check_refused(pc_sshbuf_ptr(&b), pc_sshbuf_len(&b));
    pc_sshbuf_free(&b);
}

/* Up to PC_KRL_MAX_BYTES, not a byte more, even when well-formed. */
static void test_check_size_bound(void **state)
{
    struct pc_sshbuf hdr;
    unsigned char *big;
    size_t h, body;
    (void)state;
    pc_sshbuf_init(&hdr, 0);
    put_header(&hdr, 1, 12);
    h = pc_sshbuf_len(&hdr);
    big = calloc(1, (size_t)PC_KRL_MAX_BYTES + 1);
    assert_non_null(big);
    memcpy(big, pc_sshbuf_ptr(&hdr), h);
    for (size_t total = PC_KRL_MAX_BYTES; total <= (size_t)PC_KRL_MAX_BYTES + 1; total++) {
        body = total - h - 5; /* one explicit-keys section filling the rest */
        big[h] = 2;
        big[h + 1] = (unsigned char)(body >> 24);
        big[h + 2] = (unsigned char)(body >> 16);
        big[h + 3] = (unsigned char)(body >> 8);
        big[h + 4] = (unsigned char)body;
        if (total == PC_KRL_MAX_BYTES)
            check_ok(big, total, 12);
        else
            check_refused(big, total);
    }
    free(big);
    pc_sshbuf_free(&hdr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keygen_query),
        cmocka_unit_test(test_keygen_listing),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_refusals_and_any_ca),
        cmocka_unit_test(test_check_roundtrip),
        cmocka_unit_test(test_check_reads_ssh_keygen),
        cmocka_unit_test(test_check_truncated),
        cmocka_unit_test(test_check_bad_header),
        cmocka_unit_test(test_check_sections),
        cmocka_unit_test(test_check_size_bound),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
