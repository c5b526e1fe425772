/* SPDX-License-Identifier: BSD-2-Clause */
/* Tests for pam_portcullis.so, driven through pam_wrapper + libpamtest (no /etc/pam.d edits).
 *
 * Group setup starts the real chain: portcullisd (temp data dir, loopback, --exempt-group
 * exempt) ← tests/faultproxy.py ← portcullis-agent (enrolled through the API) ← the module.
 * A fake agent (tests/pam/pt_pam.c) covers the failure table frame by frame.
 *
 * Environment: PC_BUILD_DIR (default: derived from this program's path), PC_SRC_DIR (default:
 * abs_top_srcdir of the build's Makefile). The program re-executes itself with
 * LD_PRELOAD=libpam_wrapper.so PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR=TMP/services and
 * PAM_WRAPPER_DEBUGLEVEL=4, which makes pam_wrapper print the module's pam_syslog lines on
 * stderr, where each run captures them (that is how "no code in the log" is checked). */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../pam/pt.h"

/* ---- the built object ------------------------------------------------------------------ */

static void test_exports_only_pam_sm(void **state)
{
    char cmd[PT_PATH + 64], line[512];
    int n = 0, auth = 0;
    FILE *p;

    (void)state;
    snprintf(cmd, sizeof cmd, "env -u LD_PRELOAD nm -D --defined-only '%s'", E.module);
    p = popen(cmd, "r");
    assert_non_null(p);
    while (fgets(line, sizeof line, p)) {
        char *sym = strrchr(line, ' ');
        sym = sym ? sym + 1 : line;
        sym[strcspn(sym, "\n")] = '\0';
        if (strncmp(sym, "pam_sm_", 7) != 0)
            fail_msg("exported symbol that is not pam_sm_*: %s", sym);
        auth += strcmp(sym, "pam_sm_authenticate") == 0 || strcmp(sym, "pam_sm_setcred") == 0;
        n++;
    }
    assert_int_equal(pclose(p), 0);
    assert_int_equal(auth, 2);
    assert_int_equal(n, 2);
}

static void test_links_no_tls_http_db(void **state)
{
    /* The sanitizer runtimes appear only in the ASan/UBSan build of the module. json-c is linked
     * in when configure found its static archive (PC_PAM_STATIC_JSONC): then the module must not
     * need the shared one, which every login's pam_start would load beside it. */
    static const char *const allowed[] = { "libpam.so.",    "libc.so.",
#ifndef PC_PAM_STATIC_JSONC
                                           "libjson-c.so.",
#endif
                                           "ld-linux",      "libasan.so.", "libubsan.so.", NULL };
    char cmd[PT_PATH + 64], line[512];
    int n = 0;
    FILE *p;

    (void)state;
    snprintf(cmd, sizeof cmd, "env -u LD_PRELOAD readelf -d '%s'", E.module);
    p = popen(cmd, "r");
    assert_non_null(p);
    while (fgets(line, sizeof line, p)) {
        char *lib = strstr(line, "Shared library: [");
        int ok = 0;
        if (!lib)
            continue;
        lib += 17;
        lib[strcspn(lib, "]")] = '\0';
        for (int i = 0; allowed[i]; i++)
            ok |= strncmp(lib, allowed[i], strlen(allowed[i])) == 0;
        if (!ok || strstr(lib, "ssl") || strstr(lib, "crypto") || strstr(lib, "curl") ||
            strstr(lib, "sqlite") || strstr(lib, "oath"))
            fail_msg("pam_portcullis.so needs %s", lib);
        n++;
    }
    assert_int_equal(pclose(p), 0);
    assert_true(n >= 2);
}

/* ---- options ----------------------------------------------------------------------------- */

static void test_bad_options_deny(void **state)
{
    static const char *const bad[] = {
        "bogus",
        "failmode=open",
        "failmode=",
        "failmode",
        "tries=0",
        "tries=11",
        "tries=3x",
        "tries=-1",
        "tries= 3",
        "push=on",
        "timeout=0",
        "timeout=601",
        "timeout=abc",
        "socket=relative/x.sock",
        "debug=1",
        "tries=3 tries=3",
        "socket=",
        "Timeout=5",
        "socket=/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock",
    };
    char args[1024];

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        /* failmode=safe and a missing agent: a config error must still deny, never admit */
        snprintf(args, sizeof args, "failmode=safe socket=%s/none.sock %s", E.root, bad[i]);
        struct pt_result r = pt_pam("alice", args, NULL);
        if (r.rc != PAM_AUTH_ERR)
            fail_msg("option '%s' gave %d, not PAM_AUTH_ERR; log:\n%s", bad[i], r.rc, r.log);
        assert_log_has(r, "configuration error");
        pt_result_free(&r);
        /* and the bad option first: all options are parsed before anything happens */
        snprintf(args, sizeof args, "%s failmode=safe socket=%s/none.sock", bad[i], E.root);
        r = pt_pam("alice", args, NULL);
        if (r.rc != PAM_AUTH_ERR)
            fail_msg("option '%s' (first) gave %d; log:\n%s", bad[i], r.rc, r.log);
        pt_result_free(&r);
    }
}

static void test_good_options_accepted(void **state)
{
    struct fake_agent fa = { .nreplies = 1,
                             .replies = { "{\"ok\":true,\"txid\":\"t1\","
                                          "\"action\":\"allow\",\"factors\":[]}" } };
    static const char *const good[] = { "",
                                        "failmode=secure",
                                        "failmode=safe",
                                        "tries=1",
                                        "tries=10",
                                        "push=auto",
                                        "push=off",
                                        "timeout=1",
                                        "timeout=600",
                                        "debug",
                                        "failmode=safe tries=2 push=off timeout=5 debug" };
    char args[1024];

    (void)state;
    fa_start(&fa, FA_REPLY);
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        snprintf(args, sizeof args, "socket=%s %s", fa.path, good[i]);
        struct pt_result r = pt_pam("alice", args, NULL);
        if (r.rc != PAM_SUCCESS)
            fail_msg("options '%s' gave %d; log:\n%s", good[i], r.rc, r.log);
        pt_result_free(&r);
    }
    fa_stop(&fa);
}

static void test_debug_option_logs_more(void **state)
{
    struct fake_agent fa = { .nreplies = 1,
                             .replies = { "{\"ok\":true,\"txid\":\"t1\","
                                          "\"action\":\"allow\",\"factors\":[]}" } };
    char args[1024];
    struct pt_result r;

    (void)state;
    fa_start(&fa, FA_REPLY);
    snprintf(args, sizeof args, "socket=%s", fa.path);
    r = pt_pam("alice", args, NULL);
    assert_rc(r, PAM_SUCCESS);
    assert_null(strstr(r.log, "debug:"));
    assert_log_has(r, "user=alice");
    assert_log_has(r, "result=allow");
    pt_result_free(&r);
    snprintf(args, sizeof args, "socket=%s debug", fa.path);
    r = pt_pam("alice", args, NULL);
    assert_rc(r, PAM_SUCCESS);
    assert_log_has(r, "debug: socket=");
    assert_log_has(r, "debug: begin action=allow");
    pt_result_free(&r);
    fa_stop(&fa);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exports_only_pam_sm),
        cmocka_unit_test(test_links_no_tls_http_db),
        cmocka_unit_test(test_bad_options_deny),
        cmocka_unit_test(test_good_options_accepted),
        cmocka_unit_test(test_debug_option_logs_more),
        /* tests/pam/pt_cases.c: the fake agent */
        cmocka_unit_test(test_fake_begin_fields),
        cmocka_unit_test(test_fake_actions),
        cmocka_unit_test(test_fake_failmode_report),
        cmocka_unit_test(test_fake_error_table),
        cmocka_unit_test(test_fake_tls_midflow_denies),
        cmocka_unit_test(test_fake_malformed_frames),
        cmocka_unit_test(test_fake_hang_timeout_option),
        cmocka_unit_test(test_fake_user_spent_the_deadline_denies),
        cmocka_unit_test(test_socket_missing_and_refused),
        cmocka_unit_test(test_fake_totp_retries),
        cmocka_unit_test(test_fake_malformed_code_not_sent),
        cmocka_unit_test(test_fake_push_flows),
        cmocka_unit_test(test_fake_push_off_uses_code),
        cmocka_unit_test(test_fake_push_with_begin),
        cmocka_unit_test(test_fake_push_old_agent),
        cmocka_unit_test(test_fake_push_with_begin_malformed),
        cmocka_unit_test(test_fake_push_deadline),
        cmocka_unit_test(test_fake_failure_after_prompt_denies),
        cmocka_unit_test(test_fake_failure_before_prompt_is_failmode),
        /* tests/pam/pt_real.c: the real chain */
        cmocka_unit_test(test_real_right_code),
        cmocka_unit_test(test_real_wrong_codes_maxtries),
        cmocka_unit_test(test_real_wrong_then_right),
        cmocka_unit_test(test_real_replay_refused),
        cmocka_unit_test(test_real_exempt_ignore),
        cmocka_unit_test(test_real_unknown_and_disabled),
        cmocka_unit_test(test_real_push),
        cmocka_unit_test(test_real_push_off),
        cmocka_unit_test(test_real_failure_table),
        cmocka_unit_test(test_real_reset_is_failmode),
        cmocka_unit_test(test_real_timeout_option),
        cmocka_unit_test(test_real_broken_agent_conf_denies),
        cmocka_unit_test(test_real_agent_idle_covers_module_timeout),
        /* last: audits everything the module logged during the run */
        cmocka_unit_test(test_no_secret_in_logs),
    };

    (void)argc;
    pt_prepare(argv);
    pt_libpam_load();
    return cmocka_run_group_tests_name("pam_portcullis", tests, pt_group_setup, pt_group_teardown);
}
