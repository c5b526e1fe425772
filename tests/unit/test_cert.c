/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests for lib/pc_cert: certificates we sign are read back by `ssh-keygen -L` (which also
 * verifies the CA signature) for every subject type × CA type × user/host; our parser reads our
 * certificates and ssh-keygen's; refusals. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pc_cert.h"
#include "pc_err.h"
#include "pc_sshbuf.h"
#include "pc_sshkey.h"
#include "pc_time.h"
#include "ssh_tool.h"

static char dir[ST_PATH_MAX];

static const struct {
    const char *file, *type;
    int bits;
} subjects[] = {
    { "ed", "ed25519", 0 },   { "p256", "ecdsa", 256 }, { "p384", "ecdsa", 384 },
    { "p521", "ecdsa", 521 }, { "rsa", "rsa", 2048 },
};
#define N_SUBJECTS (sizeof subjects / sizeof subjects[0])
static struct pc_sshkey *subject_keys[N_SUBJECTS];

static const enum pc_keytype ca_types[] = { PC_KEY_ED25519, PC_KEY_ECDSA_P256, PC_KEY_RSA };
#define N_CAS (sizeof ca_types / sizeof ca_types[0])
static struct pc_sshkey *cas[N_CAS];

static int group_setup(void **state)
{
    char p[ST_PATH_MAX], n[ST_PATH_MAX];
    (void)state;
    if (st_mkdtemp("cert", dir) != 0)
        return -1;
    for (size_t i = 0; i < N_SUBJECTS; i++) {
        char *line;
        if (st_keygen(st_path(p, dir, subjects[i].file), subjects[i].type, subjects[i].bits))
            return -1;
        snprintf(n, sizeof n, "%s.pub", subjects[i].file);
        line = st_read(st_path(p, dir, n), NULL);
        if (!line || pc_sshkey_parse_line(line, &subject_keys[i], NULL) != 0)
            return -1;
        free(line);
    }
    for (size_t i = 0; i < N_CAS; i++)
        if (pc_sshkey_generate(ca_types[i], &cas[i]) != 0)
            return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_SUBJECTS; i++)
        pc_sshkey_free(subject_keys[i]);
    for (size_t i = 0; i < N_CAS; i++)
        pc_sshkey_free(cas[i]);
    return st_rmtree(dir);
}

static const char *const user_principals[] = { "alice", "root" };
static const char *const host_principals[] = { "web1.example.com", "10.0.0.1" };
static const struct pc_cert_opt user_critical[] = {
    { "source-address", "10.0.0.0/8,192.168.1.1" },
    { "force-command", "/usr/bin/true" },
};
/* Given unsorted on purpose; a custom one with a string value. */
static const struct pc_cert_opt user_extensions[] = {
    { "permit-pty", NULL },
    { "permit-user-rc", NULL },
    { "permit-agent-forwarding", NULL },
    { "login@portcullis.dev", "val" },
    { "permit-X11-forwarding", NULL },
    { "permit-port-forwarding", NULL },
};

static void fill_req(struct pc_cert_req *req, enum pc_cert_type type, const struct pc_sshkey *subj,
                     uint64_t serial)
{
    memset(req, 0, sizeof *req);
    req->type = type;
    req->subject = subj;
    req->serial = serial;
    if (type == PC_CERT_USER) {
        req->key_id = "alice@portcullis";
        req->principals = user_principals;
        req->n_principals = 2;
        req->critical = user_critical;
        req->n_critical = 2;
        req->extensions = user_extensions;
        req->n_extensions = sizeof user_extensions / sizeof user_extensions[0];
    } else {
        req->key_id = "host web1";
        req->principals = host_principals;
        req->n_principals = 2;
    }
    assert_int_equal(pc_cert_validity(pc_now(), -1, 3600, &req->valid_after, &req->valid_before),
                     0);
}

static void fmt_time(uint64_t t, char *out, size_t n)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
}

static void check_keygen_listing(const char *text, const struct pc_cert_req *req,
                                 const struct pc_sshkey *ca)
{
    char want[512], a[32], b[32], fp[PC_SSHKEY_FP_SIZE];
    snprintf(want, sizeof want, "Type: %s %s certificate", pc_cert_type_name(req->subject->type),
             req->type == PC_CERT_USER ? "user" : "host");
    assert_true(st_contains(text, want));
    assert_int_equal(pc_sshkey_fingerprint(ca, fp), 0);
    snprintf(want, sizeof want, "Signing CA: %s %s (using %s)", pc_sshkey_type_label(ca->type), fp,
             pc_sshkey_sig_alg(ca->type));
    assert_true(st_contains(text, want));
    if (ca->type == PC_KEY_RSA)
        assert_true(st_contains(text, "(using rsa-sha2-512)"));
    snprintf(want, sizeof want, "Key ID: \"%s\"", req->key_id);
    assert_true(st_contains(text, want));
    snprintf(want, sizeof want, "Serial: %llu\n", (unsigned long long)req->serial);
    assert_true(st_contains(text, want));
    fmt_time(req->valid_after, a, sizeof a);
    fmt_time(req->valid_before, b, sizeof b);
    snprintf(want, sizeof want, "Valid: from %s to %s", a, b);
    assert_true(st_contains(text, want));
    for (size_t i = 0; i < req->n_principals; i++) {
        snprintf(want, sizeof want, "\n                %s\n", req->principals[i]);
        assert_true(st_contains(text, want));
    }
    if (req->type == PC_CERT_USER) {
        assert_true(st_contains(text, "Critical Options: \n"
                                      "                force-command /usr/bin/true\n"
                                      "                source-address 10.0.0.0/8,192.168.1.1\n"));
        /* Sorted bytewise ('X' < 'a'), the custom value string-wrapped like ssh-keygen does. */
        assert_true(st_contains(text, "Extensions: \n"
                                      "                login@portcullis.dev UNKNOWN OPTION: "
                                      "0000000376616c (len 7)\n"
                                      "                permit-X11-forwarding\n"
                                      "                permit-agent-forwarding\n"
                                      "                permit-port-forwarding\n"
                                      "                permit-pty\n"
                                      "                permit-user-rc\n"));
    } else {
        assert_true(st_contains(text, "Critical Options: (none)"));
        assert_true(st_contains(text, "Extensions: (none)"));
    }
}

static void check_parsed(const struct pc_cert *c, const struct pc_cert_req *req,
                         const struct pc_sshkey *ca)
{
    char fp[PC_SSHKEY_FP_SIZE];
    assert_int_equal(c->type, req->type);
    assert_int_equal(c->key_type, req->subject->type);
    assert_true(pc_sshkey_equal(c->subject, req->subject));
    assert_true(pc_sshkey_equal(c->ca, ca));
    assert_int_equal(pc_sshkey_fingerprint(ca, fp), 0);
    assert_string_equal(c->ca_fingerprint, fp);
    assert_string_equal(c->sig_alg, pc_sshkey_sig_alg(ca->type));
    assert_true(c->serial == req->serial);
    assert_string_equal(c->key_id, req->key_id);
    assert_int_equal(c->n_principals, req->n_principals);
    for (size_t i = 0; i < req->n_principals; i++)
        assert_string_equal(c->principals[i], req->principals[i]);
    assert_true(c->valid_after == req->valid_after && c->valid_before == req->valid_before);
    assert_true(pc_cert_valid_at(c, pc_now()));
    assert_false(pc_cert_valid_at(c, (int64_t)req->valid_before));
    assert_int_equal(c->n_critical, req->n_critical);
    assert_int_equal(c->n_extensions, req->n_extensions);
    if (req->type == PC_CERT_USER) {
        assert_string_equal(c->critical[0].name, "force-command");
        assert_string_equal(c->critical[0].value, "/usr/bin/true");
        assert_string_equal(c->extensions[0].name, "login@portcullis.dev");
        assert_string_equal(c->extensions[0].value, "val");
        assert_string_equal(c->extensions[1].name, "permit-X11-forwarding");
        assert_null(c->extensions[1].value);
        assert_int_equal(c->extensions[1].data_len, 0);
    }
}

static void test_sign_matrix_checked_by_keygen(void **state)
{
    char path[ST_PATH_MAX];
    uint64_t serial = 100;
    (void)state;
    st_path(path, dir, "c-cert.pub");
    for (size_t s = 0; s < N_SUBJECTS; s++)
        for (size_t c = 0; c < N_CAS; c++)
            for (int t = PC_CERT_USER; t <= PC_CERT_HOST; t++) {
                struct pc_cert_req req;
                struct pc_cert *parsed = NULL;
                char *line = NULL;
                const char *argv[] = { "ssh-keygen", "-L", "-f", path, NULL };
                struct st_result r;
                fill_req(&req, (enum pc_cert_type)t, subject_keys[s], serial++);
                assert_int_equal(pc_cert_sign_line(&req, cas[c], "alice@laptop", &line), 0);
                assert_int_equal(strncmp(line, pc_cert_type_name(subject_keys[s]->type),
                                         strlen(pc_cert_type_name(subject_keys[s]->type))),
                                 0);
                assert_int_equal(st_write(path, line, strlen(line)), 0);
                assert_int_equal(st_run(argv, NULL, &r), 0);
                if (r.status != 0)
                    fprintf(stderr, "ssh-keygen -L: %s\n", r.err);
                assert_int_equal(r.status, 0);
                check_keygen_listing(r.out, &req, cas[c]);
                st_result_free(&r);
                assert_int_equal(pc_cert_parse_line(line, &parsed), 0);
                check_parsed(parsed, &req, cas[c]);
                pc_cert_free(parsed);
                free(line);
            }
}

static void test_refusals(void **state)
{
    struct pc_cert_req req;
    struct pc_sshkey *pub = NULL, bogus = { PC_KEY_UNKNOWN, NULL, 0 };
    unsigned char *blob = NULL;
    size_t len = 0;
    static const char *const bad_principals[] = { "a,b", "a b", "a\tb", "*",     "ro?t",
                                                  "-x",  "",    "a\"b", "!root", "alice\n" };
    static const char *const dup[] = { "alice", "alice" };
    static const struct pc_cert_opt dup_opts[] = { { "permit-pty", NULL }, { "permit-pty", NULL } };
    static const struct pc_cert_opt bad_opt[] = { { "permit pty", NULL } };
    (void)state;
#define EXPECT_REFUSED(mutation) \
    do { \
        fill_req(&req, PC_CERT_USER, subject_keys[0], 5); \
        mutation; \
        assert_int_equal(pc_cert_sign(&req, cas[0], &blob, &len), PC_ERR_INVAL); \
    } while (0)
    EXPECT_REFUSED(req.serial = 0);
    EXPECT_REFUSED(req.serial = PC_CERT_SERIAL_LIMIT);
    EXPECT_REFUSED(req.n_principals = 0);
    EXPECT_REFUSED(req.principals = NULL);
    for (size_t i = 0; i < sizeof bad_principals / sizeof bad_principals[0]; i++)
        EXPECT_REFUSED((req.principals = &bad_principals[i], req.n_principals = 1));
    EXPECT_REFUSED((req.principals = dup, req.n_principals = 2));
    EXPECT_REFUSED(req.key_id = "");
    EXPECT_REFUSED(req.key_id = "bad\nid");
    EXPECT_REFUSED(req.key_id = NULL);
    EXPECT_REFUSED(req.valid_before = req.valid_after);
    EXPECT_REFUSED((req.extensions = dup_opts, req.n_extensions = 2));
    EXPECT_REFUSED((req.extensions = bad_opt, req.n_extensions = 1));
    EXPECT_REFUSED(req.type = (enum pc_cert_type)3);
    EXPECT_REFUSED(req.subject = &bogus); /* a subject that is no supported key */
    EXPECT_REFUSED(req.subject = NULL);
    /* A CA without its private half cannot sign. */
    assert_int_equal(pc_sshkey_public_dup(cas[0], &pub), 0);
    fill_req(&req, PC_CERT_USER, subject_keys[0], 5);
    assert_int_equal(pc_cert_sign(&req, pub, &blob, &len), PC_ERR_INVAL);
    pc_sshkey_free(pub);
    /* The largest allowed serial works. */
    fill_req(&req, PC_CERT_USER, subject_keys[0], PC_CERT_SERIAL_LIMIT - 1);
    assert_int_equal(pc_cert_sign(&req, cas[0], &blob, &len), 0);
    free(blob);
    /* A bad subject blob never becomes a subject key. */
    assert_int_equal(pc_sshkey_from_blob((const unsigned char *)"\0\0\0\x0bssh-ed25519\0\0\0\x01x",
                                         20, &pub),
                     PC_ERR_PARSE);
#undef EXPECT_REFUSED
}

static void test_validity_helper(void **state)
{
    uint64_t a = 0, b = 0;
    (void)state;
    assert_int_equal(pc_cert_validity(1000000, -1, 3600, &a, &b), 0);
    assert_true(a == 1000000 - PC_CERT_BACKDATE_DEFAULT && b == 1003600);
    assert_int_equal(pc_cert_validity(1000000, 0, 60, &a, &b), 0);
    assert_true(a == 1000000 && b == 1000060);
    assert_int_equal(pc_cert_validity(1000000, 300, 0, &a, &b), PC_ERR_INVAL);
    assert_int_equal(pc_cert_validity(100, 300, 60, &a, &b), PC_ERR_INVAL);
    assert_int_equal(pc_cert_validity(INT64_MAX - 10, 300, 60, &a, &b), PC_ERR_INVAL);
}

static void test_tampered_and_truncated(void **state)
{
    struct pc_cert_req req;
    struct pc_cert *c = NULL;
    unsigned char *blob = NULL, *big;
    size_t len = 0;
    (void)state;
    fill_req(&req, PC_CERT_USER, subject_keys[0], 9);
    assert_int_equal(pc_cert_sign(&req, cas[0], &blob, &len), 0);
    assert_int_equal(pc_cert_parse(blob, len, &c), 0);
    pc_cert_free(c);
    c = NULL;
    /* One byte of the nonce changed: the CA signature no longer verifies. */
    blob[4 + 32 + 4 + 3] ^= 1;
    assert_int_equal(pc_cert_parse(blob, len, &c), PC_ERR_CRYPTO);
    blob[4 + 32 + 4 + 3] ^= 1;
    assert_int_equal(pc_cert_parse(blob, len - 1, &c), PC_ERR_PARSE);
    big = malloc(len + 1);
    memcpy(big, blob, len);
    big[len] = 0;
    assert_int_equal(pc_cert_parse(big, len + 1, &c), PC_ERR_PARSE);
    assert_null(c);
    free(big);
    /* A plain key is not a certificate. */
    free(blob);
    assert_int_equal(pc_sshkey_to_blob(subject_keys[0], &blob, &len), 0);
    assert_int_equal(pc_cert_parse(blob, len, &c), PC_ERR_INVAL);
    free(blob);
}

static void test_parse_keygen_signed(void **state)
{
    char ca[ST_PATH_MAX], rca[ST_PATH_MAX], cap[ST_PATH_MAX], key[ST_PATH_MAX], cert[ST_PATH_MAX];
    char fp[PC_SSHKEY_FP_SIZE], *line, *pub;
    struct pc_cert *c = NULL;
    struct pc_sshkey *cakey = NULL;
    struct st_result r;
    (void)state;
    st_path(ca, dir, "kca");
    st_path(rca, dir, "krca");
    st_path(key, dir, "ed.pub");
    st_path(cert, dir, "ed-cert.pub");
    assert_int_equal(st_keygen(ca, "ed25519", 0), 0);
    {
        const char *argv[] = { "ssh-keygen", "-q",
                               "-s",         ca,
                               "-I",         "bob",
                               "-n",         "alice,root",
                               "-z",         "42",
                               "-V",         "20300101:20300201",
                               "-O",         "force-command=ls",
                               key,          NULL };
        assert_int_equal(st_run(argv, NULL, &r), 0);
        assert_int_equal(r.status, 0);
        st_result_free(&r);
    }
    line = st_read(cert, NULL);
    assert_int_equal(pc_cert_parse_line(line, &c), 0);
    assert_int_equal(c->type, PC_CERT_USER);
    assert_int_equal(c->key_type, PC_KEY_ED25519);
    assert_string_equal(c->key_id, "bob");
    assert_true(c->serial == 42);
    assert_int_equal(c->n_principals, 2);
    assert_string_equal(c->principals[0], "alice");
    assert_string_equal(c->principals[1], "root");
    assert_true(c->valid_after == 1893456000ULL && c->valid_before == 1896134400ULL);
    assert_int_equal(c->n_critical, 1);
    assert_string_equal(c->critical[0].value, "ls");
    assert_int_equal(c->n_extensions, 5);
    assert_string_equal(c->extensions[0].name, "permit-X11-forwarding");
    assert_string_equal(c->sig_alg, "ssh-ed25519");
    assert_true(pc_sshkey_equal(c->subject, subject_keys[0]));
    snprintf(cap, sizeof cap, "%s.pub", ca);
    pub = st_read(cap, NULL);
    assert_int_equal(pc_sshkey_parse_line(pub, &cakey, NULL), 0);
    assert_int_equal(pc_sshkey_fingerprint(cakey, fp), 0);
    assert_string_equal(c->ca_fingerprint, fp);
    assert_true(pc_sshkey_equal(c->ca, cakey));
    pc_cert_free(c);
    c = NULL;
    pc_sshkey_free(cakey);
    free(pub);
    free(line);

    /* An RSA CA: rsa-sha2-512 by default is accepted; -t ssh-rsa (SHA-1) is refused. */
    assert_int_equal(st_keygen(rca, "rsa", 2048), 0);
    for (int sha1 = 0; sha1 <= 1; sha1++) {
        const char *argv[] = { "ssh-keygen", "-q",   "-s",
                               rca,          "-t",   sha1 ? "ssh-rsa" : "rsa-sha2-512",
                               "-h",         "-I",   "web1",
                               "-n",         "web1", "-z",
                               "7",          key,    NULL };
        assert_int_equal(st_run(argv, NULL, &r), 0);
        assert_int_equal(r.status, 0);
        st_result_free(&r);
        line = st_read(cert, NULL);
        if (sha1) {
            assert_int_equal(pc_cert_parse_line(line, &c), PC_ERR_INVAL);
        } else {
            assert_int_equal(pc_cert_parse_line(line, &c), 0);
            assert_int_equal(c->type, PC_CERT_HOST);
            assert_string_equal(c->sig_alg, "rsa-sha2-512");
            assert_true(c->valid_before == UINT64_MAX);
            pc_cert_free(c);
            c = NULL;
        }
        free(line);
    }
}

static void test_auth_info(void **state)
{
    struct pc_cert_req req;
    struct pc_cert *c = NULL;
    char *line = NULL, info[8192];
    (void)state;
    fill_req(&req, PC_CERT_USER, subject_keys[1], 77);
    assert_int_equal(pc_cert_sign_line(&req, cas[0], NULL, &line), 0);
    /* sshd's format after publickey,keyboard-interactive: "publickey TYPE BASE64". */
    snprintf(info, sizeof info, "publickey %s\n", line);
    assert_int_equal(pc_cert_parse_auth_info(info, &c), 0);
    assert_true(c->serial == 77);
    pc_cert_free(c);
    c = NULL;
    snprintf(info, sizeof info, "password\npublickey %s", line);
    assert_int_equal(pc_cert_parse_auth_info(info, &c), 0);
    pc_cert_free(c);
    c = NULL;
    assert_int_equal(pc_cert_parse_auth_info("keyboard-interactive\n", &c), PC_ERR_NOTFOUND);
    assert_int_equal(pc_cert_parse_auth_info("publickey ssh-ed25519 AAAA\n", &c), PC_ERR_NOTFOUND);
    assert_int_equal(pc_cert_parse_auth_info("", &c), PC_ERR_NOTFOUND);
    assert_null(c);
    free(line);
}

/* Issue 13: our second-factor extension, formatted and read back through a signed
 * certificate; every malformed value is PC_ERR_PARSE, its absence PC_ERR_NOTFOUND. */
static void test_second_factor_extension(void **state)
{
    static const char *const bad[] = { "",
                                       "time=,method=totp",
                                       "time=0,method=totp",
                                       "time=012,method=totp",
                                       "time=12,method=sms",
                                       "time=12,method=totp ",
                                       "time=12;method=totp",
                                       "time=-5,method=totp",
                                       "time=1234567890123456789,method=push",
                                       "method=totp,time=12",
                                       NULL };
    struct pc_cert_req req;
    struct pc_cert_opt ext[1];
    struct pc_cert *c = NULL;
    unsigned char *blob = NULL;
    size_t len = 0;
    char val[PC_CERT_2FA_VALUE_MAX], method[16];
    int64_t at = 0;
    (void)state;

    assert_int_equal(pc_cert_2fa_format(1700000000, "push", val, sizeof val), 0);
    assert_string_equal(val, "time=1700000000,method=push");
    assert_int_equal(pc_cert_2fa_format(1700000000, "sms", val, sizeof val), PC_ERR_INVAL);
    assert_int_equal(pc_cert_2fa_format(0, "totp", val, sizeof val), PC_ERR_INVAL);
    assert_int_equal(pc_cert_2fa_format(1700000000, "totp", val, 8), PC_ERR_TOOBIG);
    fill_req(&req, PC_CERT_USER, subject_keys[0], 5);
    req.extensions = ext;
    req.n_extensions = 1;
    ext[0] = (struct pc_cert_opt){ PC_CERT_EXT_2FA, "time=1700000000,method=totp" };
    assert_int_equal(pc_cert_sign(&req, cas[0], &blob, &len), 0);
    assert_int_equal(pc_cert_parse(blob, len, &c), 0);
    assert_int_equal(pc_cert_2fa(c, &at, method), 0);
    assert_true(at == 1700000000);
    assert_string_equal(method, "totp");
    pc_cert_free(c);
    free(blob);
    for (size_t i = 0; bad[i]; i++) {
        c = NULL;
        blob = NULL;
        ext[0].value = bad[i];
        assert_int_equal(pc_cert_sign(&req, cas[0], &blob, &len), 0);
        assert_int_equal(pc_cert_parse(blob, len, &c), 0);
        assert_int_equal(pc_cert_2fa(c, &at, method), PC_ERR_PARSE);
        pc_cert_free(c);
        free(blob);
    }
    /* cppcheck-suppress unreadVariable ; req.extensions points to ext */
    ext[0] = (struct pc_cert_opt){ PC_CERT_EXT_2FA, NULL }; /* a flag: no value */
    blob = NULL;
    c = NULL;
    assert_int_equal(pc_cert_sign(&req, cas[0], &blob, &len), 0);
    assert_int_equal(pc_cert_parse(blob, len, &c), 0);
    assert_int_equal(pc_cert_2fa(c, &at, method), PC_ERR_PARSE);
    pc_cert_free(c);
    free(blob);
    req.n_extensions = 0;
    blob = NULL;
    c = NULL;
    assert_int_equal(pc_cert_sign(&req, cas[0], &blob, &len), 0);
    assert_int_equal(pc_cert_parse(blob, len, &c), 0);
    assert_int_equal(pc_cert_2fa(c, &at, method), PC_ERR_NOTFOUND);
    pc_cert_free(c);
    free(blob);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_matrix_checked_by_keygen),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_validity_helper),
        cmocka_unit_test(test_tampered_and_truncated),
        cmocka_unit_test(test_parse_keygen_signed),
        cmocka_unit_test(test_auth_info),
        cmocka_unit_test(test_second_factor_extension),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
