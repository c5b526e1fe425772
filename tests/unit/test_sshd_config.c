/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests for lib/pc_sshd_config: the sshd_config reader behind `portcullis-agent
 * configure`. Every test writes files below a temporary root and loads ROOT/etc/ssh/sshd_config. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pc_err.h"
#include "pc_sshd_config.h"

static char root[64];
static char err[1024];

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    char d[128];
    (void)state;
    snprintf(root, sizeof root, "/tmp/pc-test-sshdcfg.XXXXXX");
    if (!mkdtemp(root))
        return -1;
    snprintf(d, sizeof d, "%s/etc", root);
    mkdir(d, 0755);
    snprintf(d, sizeof d, "%s/etc/ssh", root);
    mkdir(d, 0755);
    snprintf(d, sizeof d, "%s/etc/ssh/sshd_config.d", root);
    mkdir(d, 0755);
    err[0] = '\0';
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void put_n(const char *rel, const char *data, size_t len)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof path, "%s%s", root, rel);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void put(const char *rel, const char *data)
{
    put_n(rel, data, strlen(data));
}

static int load(struct pc_sshd_config *c)
{
    err[0] = '\0';
    return pc_sshd_config_load(c, root, "/etc/ssh/sshd_config", err, sizeof err);
}

static const char *global(const struct pc_sshd_config *c, const char *kw)
{
    static char v[1024];
    const struct pc_sshd_directive *d = pc_sshd_config_global(c, kw);
    if (!d || pc_sshd_directive_value(d, v, sizeof v) != PC_OK)
        return NULL;
    return v;
}

static void test_keywords_forms_quotes_comments(void **state)
{
    struct pc_sshd_config c;
    (void)state;
    put("/etc/ssh/sshd_config", "# a comment\n"
                                "   \n"
                                "PORT 2222\n"
                                "usepam=yes\n"
                                "PasswordAuthentication = no\n"
                                "\tBanner \"/etc/my banner\"   \n"
                                "AcceptEnv LANG 'LC_*' # trailing comment\n"
                                "ChallengeResponseAuthentication no\n"
                                "Subsystem sftp /usr/lib/sftp\\ server\r\n");
    assert_int_equal(load(&c), PC_OK);
    assert_string_equal(global(&c, "port"), "2222");
    assert_string_equal(global(&c, "usepam"), "yes");
    assert_string_equal(global(&c, "passwordauthentication"), "no");
    assert_string_equal(pc_sshd_config_global(&c, "banner")->argv[0], "/etc/my banner");
    assert_int_equal(pc_sshd_config_global(&c, "acceptenv")->argc, 2);
    assert_string_equal(global(&c, "acceptenv"), "LANG LC_*");
    /* the old name is an alias of KbdInteractiveAuthentication */
    assert_string_equal(global(&c, "kbdinteractiveauthentication"), "no");
    assert_string_equal(pc_sshd_config_global(&c, "subsystem")->argv[1], "/usr/lib/sftp server");
    assert_int_equal(pc_sshd_config_global(&c, "port")->line, 3);
    pc_sshd_config_free(&c);
}

static void test_first_value_wins(void **state)
{
    struct pc_sshd_config c;
    (void)state;
    put("/etc/ssh/sshd_config", "PasswordAuthentication no\nPasswordAuthentication yes\n");
    assert_int_equal(load(&c), PC_OK);
    assert_string_equal(global(&c, "passwordauthentication"), "no");
    pc_sshd_config_free(&c);
}

static void test_include_glob_sorted_relative(void **state)
{
    struct pc_sshd_config c;
    const struct pc_sshd_directive *d;
    (void)state;
    put("/etc/ssh/sshd_config",
        "Include sshd_config.d/*.conf\nPasswordAuthentication no\nInclude /etc/ssh/none/*.conf\n");
    put("/etc/ssh/sshd_config.d/50-cloud-init.conf", "PasswordAuthentication yes\n");
    put("/etc/ssh/sshd_config.d/10-first.conf", "X11Forwarding no\nPasswordAuthentication maybe\n");
    put("/etc/ssh/sshd_config.d/ignored.txt", "PasswordAuthentication never\n");
    assert_int_equal(load(&c), PC_OK);
    /* drop-ins are read where the Include stands, in sorted order: 10- before 50- */
    assert_string_equal(global(&c, "passwordauthentication"), "maybe");
    d = pc_sshd_config_global(&c, "passwordauthentication");
    assert_string_equal(d->file, "/etc/ssh/sshd_config.d/10-first.conf");
    assert_int_equal(d->line, 2);
    assert_int_equal(d->depth, 1);
    assert_int_equal(c.nfiles, 3);
    assert_string_equal(c.files[1], "/etc/ssh/sshd_config.d/10-first.conf");
    assert_string_equal(c.files[2], "/etc/ssh/sshd_config.d/50-cloud-init.conf");
    pc_sshd_config_free(&c);
}

/* An Include whose first file adds enough directives to move the directive array
 * (realloc) must still read its remaining matches and arguments: found by the sshd_config
 * fuzz target (tests/fuzz/corpus/sshd_config/regress-include-realloc), a use after free. */
static void test_include_after_array_grows(void **state)
{
    struct pc_sshd_config c;
    const struct pc_sshd_directive *d;
    char big[8192];
    size_t off = 0;
    (void)state;
    for (int i = 0; i < 300; i++)
        off += (size_t)snprintf(big + off, sizeof big - off, "SetEnv V%d=x\n", i);
    put("/etc/ssh/sshd_config", "Include sshd_config.d/*.conf extra.conf\nUsePAM yes\n");
    put("/etc/ssh/sshd_config.d/10-big.conf", big);
    put("/etc/ssh/sshd_config.d/20-late.conf", "PasswordAuthentication no\n");
    put("/etc/ssh/extra.conf", "KbdInteractiveAuthentication yes\n");
    assert_int_equal(load(&c), PC_OK);
    assert_int_equal(c.nfiles, 4);
    assert_string_equal(c.files[2], "/etc/ssh/sshd_config.d/20-late.conf");
    assert_string_equal(c.files[3], "/etc/ssh/extra.conf");
    d = pc_sshd_config_global(&c, "passwordauthentication");
    assert_non_null(d);
    assert_string_equal(d->file, "/etc/ssh/sshd_config.d/20-late.conf");
    assert_int_equal(d->depth, 1);
    d = pc_sshd_config_global(&c, "kbdinteractiveauthentication");
    assert_non_null(d);
    assert_string_equal(d->file, "/etc/ssh/extra.conf");
    assert_int_equal(d->depth, 1);
    assert_int_equal(c.n, 1 + 300 + 1 + 1 + 1);
    assert_string_equal(global(&c, "usepam"), "yes");
    pc_sshd_config_free(&c);
}

static void test_match_scope(void **state)
{
    struct pc_sshd_config c;
    size_t pos = 0;
    const struct pc_sshd_directive *d;
    (void)state;
    put("/etc/ssh/sshd_config", "Include sshd_config.d/*.conf\n"
                                "match User bob\n"
                                "  AuthenticationMethods publickey\n"
                                "Match all\n"
                                "  X11Forwarding yes\n");
    /* a Match in an included file ends with that file */
    put("/etc/ssh/sshd_config.d/10.conf", "Match Group admins\n  PermitTTY no\n");
    put("/etc/ssh/sshd_config.d/20.conf", "PermitTTY yes\n");
    assert_int_equal(load(&c), PC_OK);
    assert_null(global(&c, "authenticationmethods"));
    assert_null(global(&c, "x11forwarding"));
    assert_string_equal(global(&c, "permittty"), "yes");
    d = pc_sshd_config_next(&c, "authenticationmethods", &pos);
    assert_non_null(d);
    assert_string_equal(d->match, "User bob");
    d = pc_sshd_config_next(&c, "permittty", &(size_t){ 0 });
    assert_string_equal(d->match, "Group admins");
    pc_sshd_config_free(&c);
}

static void test_file_ends_inside_match(void **state)
{
    struct pc_sshd_config c;
    (void)state;
    put("/etc/ssh/sshd_config",
        "UsePAM yes\nMatch Address 10.0.0.0/8\n  PasswordAuthentication yes");
    assert_int_equal(load(&c), PC_OK);
    assert_string_equal(global(&c, "usepam"), "yes");
    assert_null(global(&c, "passwordauthentication"));
    assert_int_equal(c.n, 3);
    assert_string_equal(c.d[2].match, "Address 10.0.0.0/8");
    pc_sshd_config_free(&c);
}

static void test_include_inside_match_inherits(void **state)
{
    struct pc_sshd_config c;
    (void)state;
    put("/etc/ssh/sshd_config", "Match User carol\nInclude /etc/ssh/sshd_config.d/x.conf\n");
    put("/etc/ssh/sshd_config.d/x.conf", "Banner none\n");
    assert_int_equal(load(&c), PC_OK);
    assert_null(global(&c, "banner"));
    assert_string_equal(c.d[2].match, "User carol");
    pc_sshd_config_free(&c);
}

static void test_recursion_limit(void **state)
{
    struct pc_sshd_config c;
    (void)state;
    put("/etc/ssh/sshd_config", "Port 22\nInclude /etc/ssh/sshd_config\n");
    assert_int_equal(load(&c), PC_ERR_TOOBIG);
    assert_non_null(strstr(err, "/etc/ssh/sshd_config:2: too many nested Include"));
}

static void test_deep_includes(void **state)
{
    struct pc_sshd_config c;
    char name[64], body[128];
    (void)state;
    put("/etc/ssh/sshd_config", "Include sshd_config.d/d0.conf\n");
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof name, "/etc/ssh/sshd_config.d/d%d.conf", i);
        snprintf(body, sizeof body, "Include sshd_config.d/d%d.conf\n", i + 1);
        put(name, body);
    }
    assert_int_equal(load(&c), PC_ERR_TOOBIG);
    assert_non_null(strstr(err, "/etc/ssh/sshd_config.d/d15.conf:1: too many nested Include"));
}

static void test_hostile_long_line(void **state)
{
    struct pc_sshd_config c;
    size_t n = PC_SSHD_MAX_LINE + 10;
    char *buf = malloc(n + 32);
    (void)state;
    assert_non_null(buf);
    memcpy(buf, "Port 22\nBanner ", 15);
    memset(buf + 15, 'a', n);
    buf[15 + n] = '\n';
    put_n("/etc/ssh/sshd_config", buf, 16 + n);
    free(buf);
    assert_int_equal(load(&c), PC_ERR_TOOBIG);
    assert_non_null(strstr(err, "/etc/ssh/sshd_config:2: line too long"));
}

static void test_hostile_nul(void **state)
{
    struct pc_sshd_config c;
    static const char data[] = "Port 22\nUsePAM yes\nBanner a\0b\n";
    (void)state;
    put_n("/etc/ssh/sshd_config", data, sizeof data - 1);
    assert_int_equal(load(&c), PC_ERR_PARSE);
    assert_non_null(strstr(err, "/etc/ssh/sshd_config:3: NUL byte"));
}

static void test_bad_quotes_and_missing_argument(void **state)
{
    struct pc_sshd_config c;
    (void)state;
    put("/etc/ssh/sshd_config.d/q.conf", "Banner \"/etc/unterminated\n");
    put("/etc/ssh/sshd_config", "Include sshd_config.d/q.conf\n");
    assert_int_equal(load(&c), PC_ERR_PARSE);
    assert_non_null(strstr(err, "/etc/ssh/sshd_config.d/q.conf:1: invalid quotes"));
    put("/etc/ssh/sshd_config", "Port 22\nUsePAM\n");
    assert_int_equal(load(&c), PC_ERR_PARSE);
    assert_non_null(strstr(err, "/etc/ssh/sshd_config:2: no argument after keyword"));
    put("/etc/ssh/sshd_config", "Port=\n");
    assert_int_equal(load(&c), PC_ERR_PARSE);
}

static void test_missing_and_directory(void **state)
{
    struct pc_sshd_config c;
    (void)state;
    assert_int_equal(load(&c), PC_ERR_NOTFOUND);
    assert_non_null(strstr(err, "/etc/ssh/sshd_config: no such file"));
    put("/etc/ssh/sshd_config", "Include sshd_config.d\n");
    assert_int_not_equal(load(&c), PC_OK);
    assert_non_null(strstr(err, "/etc/ssh/sshd_config.d: cannot read"));
}

static void test_split_args_and_version(void **state)
{
    char **argv;
    size_t argc;
    int ma, mi;
    (void)state;
    assert_int_equal(pc_sshd_split_args("a \"b c\" d\\\"e '#x' #rest", &argv, &argc), PC_OK);
    assert_int_equal(argc, 4);
    assert_string_equal(argv[1], "b c");
    assert_string_equal(argv[2], "d\"e");
    assert_string_equal(argv[3], "#x");
    pc_sshd_free_args(argv, argc);
    assert_int_equal(pc_sshd_split_args("'open", &argv, &argc), PC_ERR_PARSE);
    assert_int_equal(pc_sshd_parse_version("OpenSSH_9.2p1 Debian-2+deb12u3, OpenSSL 3.0", &ma, &mi),
                     PC_OK);
    assert_int_equal(ma, 9);
    assert_int_equal(mi, 2);
    assert_int_equal(pc_sshd_parse_version("OpenSSH_7.4p1", &ma, &mi), PC_OK);
    assert_int_equal(mi, 4);
    assert_int_equal(pc_sshd_parse_version("sshd: unknown option", &ma, &mi), PC_ERR_PARSE);
}

static void test_root_prefix_and_outside_include(void **state)
{
    struct pc_sshd_config c;
    char d[128];
    (void)state;
    snprintf(d, sizeof d, "%s/etc/crypto-policies", root);
    mkdir(d, 0755);
    put("/etc/crypto-policies/opensshserver.config", "Ciphers aes256-gcm@openssh.com\n");
    put("/etc/ssh/sshd_config", "Include /etc/crypto-policies/opensshserver.config\n");
    assert_int_equal(load(&c), PC_OK);
    assert_string_equal(global(&c, "ciphers"), "aes256-gcm@openssh.com");
    assert_string_equal(pc_sshd_config_global(&c, "ciphers")->file,
                        "/etc/crypto-policies/opensshserver.config");
    pc_sshd_config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_keywords_forms_quotes_comments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_value_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_include_glob_sorted_relative, setup, teardown),
        cmocka_unit_test_setup_teardown(test_include_after_array_grows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_match_scope, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_ends_inside_match, setup, teardown),
        cmocka_unit_test_setup_teardown(test_include_inside_match_inherits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recursion_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deep_includes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_long_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_nul, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_quotes_and_missing_argument, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_and_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_args_and_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_prefix_and_outside_include, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
