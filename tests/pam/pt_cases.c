/* SPDX-License-Identifier: BSD-2-Clause */
/* Test cases of tests/unit/test_pam.c: the failure table against a fake agent
 * (tests/pam/pt_pam.c). The real chain and the log audit are in pt_real.c. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "pt.h"

#define CH_TOTP "{\"ok\":true,\"txid\":\"tx1\",\"action\":\"challenge\",\"factors\":[\"totp\"]}"
#define CH_BOTH \
    "{\"ok\":true,\"txid\":\"tx1\",\"action\":\"challenge\",\"factors\":[\"totp\",\"push\"]}"
#define CH_PUSH "{\"ok\":true,\"txid\":\"tx1\",\"action\":\"challenge\",\"factors\":[\"push\"]}"
#define PUSH_47 "{\"ok\":true,\"push_id\":\"p1\",\"match\":\"47\",\"expires_at\":0}"
#define ALLOW "{\"ok\":true,\"txid\":\"tx1\",\"action\":\"allow\",\"factors\":[]}"
#define STATE(s) "{\"ok\":true,\"state\":\"" s "\"}"
#define TOTP(r, why) "{\"ok\":true,\"result\":\"" r "\",\"reason\":\"" why "\"}"

static char fargs[2 * PT_PATH];

static const char *fake(const struct fake_agent *fa, const char *extra)
{
    snprintf(fargs, sizeof fargs, "socket=%s %s", fa->path, extra ? extra : "");
    return fargs;
}

/* Runs one login against a fresh fake agent; the caller stops it. */
static struct pt_result fake_run(struct fake_agent *fa, enum fa_mode mode, const char *extra,
                                 struct pt_conv *cv)
{
    fa_start(fa, mode);
    return pt_pam("alice", fake(fa, extra), cv);
}

static void expect_failmode(enum fa_mode mode, const char *reply, const char *reason)
{
    for (int safe = 0; safe <= 1; safe++) {
        struct fake_agent fa = { .nreplies = 1, .replies = { reply } };
        struct pt_result r = fake_run(&fa, mode, safe ? "failmode=safe timeout=3" : "timeout=3",
                                      NULL);
        fa_stop(&fa);
        assert_rc(r, safe ? PAM_SUCCESS : PAM_AUTH_ERR);
        if (safe) {
            assert_log_has(r, "failmode=safe: admitting alice without a second factor because");
            assert_log_has(r, reason);
        } else {
            assert_log_has(r, "result=deny");
        }
        pt_result_free(&r);
    }
}

void test_fake_begin_fields(void **state)
{
    struct fake_agent fa = { .nreplies = 1, .replies = { ALLOW } };
    struct pt_items it = { .rhost = "192.0.2.7",
                           .tty = "ssh",
                           .auth_info = "publickey ssh-ed25519-cert-v01@openssh.com AAAAC3Nz" };
    struct pt_result r;

    (void)state;
    fa_start(&fa, FA_REPLY);
    r = pt_pam_items("alice", fake(&fa, NULL), NULL, &it);
    assert_rc(r, PAM_SUCCESS);
    assert_log_has(r, "rhost=192.0.2.7");
    assert_log_has(r, "txid=tx1");
    assert_log_has(r, "ms=");
    assert_string_equal(fa_op(&fa, 0), "begin");
    assert_string_equal(pt_jstr(fa.reqs[0], "user"), "alice");
    assert_string_equal(pt_jstr(fa.reqs[0], "rhost"), "192.0.2.7");
    assert_string_equal(pt_jstr(fa.reqs[0], "tty"), "ssh");
    assert_string_equal(pt_jstr(fa.reqs[0], "auth_info"), it.auth_info);
    assert_int_equal(strncmp(pt_jstr(fa.reqs[0], "service"), "pctest", 6), 0);
    pt_result_free(&r);
    /* sudo-like: no rhost, no tty, no SSH_AUTH_INFO_0 → fields absent, still fine */
    r = pt_pam("alice", fake(&fa, NULL), NULL);
    assert_rc(r, PAM_SUCCESS);
    assert_int_equal(fa.nreqs, 2);
    assert_null(pt_jstr(fa.reqs[1], "rhost"));
    assert_null(pt_jstr(fa.reqs[1], "tty"));
    assert_null(pt_jstr(fa.reqs[1], "auth_info"));
    assert_log_has(r, "rhost=-");
    pt_result_free(&r);
    fa_stop(&fa);
}

void test_fake_actions(void **state)
{
    static const struct {
        const char *reply;
        int secure, safe;
    } t[] = {
        { "{\"ok\":true,\"txid\":\"a\",\"action\":\"ignore\",\"reason\":\"exempt\"}", PAM_IGNORE,
          PAM_IGNORE },
        { "{\"ok\":true,\"txid\":\"a\",\"action\":\"deny\",\"reason\":\"unknown_user\"}",
          PAM_AUTH_ERR, PAM_AUTH_ERR },
        { "{\"ok\":true,\"txid\":\"a\",\"action\":\"maybe\"}", PAM_AUTH_ERR, PAM_SUCCESS },
        { "{\"ok\":true,\"action\":\"challenge\",\"factors\":[\"totp\"]}", PAM_AUTH_ERR,
          PAM_SUCCESS }, /* no txid: malformed */
    };

    (void)state;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        for (int safe = 0; safe <= 1; safe++) {
            struct fake_agent fa = { .nreplies = 1, .replies = { t[i].reply } };
            struct pt_items direct = { .direct = 1 };
            fa_start(&fa, FA_REPLY);
            struct pt_result r = pt_pam_items("alice", fake(&fa, safe ? "failmode=safe" : ""), NULL,
                                              &direct);
            if (r.rc != (safe ? t[i].safe : t[i].secure))
                fail_msg("reply %s safe=%d gave %d; log:\n%s", t[i].reply, safe, r.rc, r.log);
            pt_result_free(&r);
            /* through the stack too: a lone PAM_IGNORE becomes PAM_PERM_DENIED, never success */
            r = pt_pam("alice", fake(&fa, safe ? "failmode=safe" : ""), NULL);
            fa_stop(&fa);
            if (t[i].secure == PAM_IGNORE)
                assert_rc(r, PAM_PERM_DENIED);
            pt_result_free(&r);
        }
}

void test_fake_error_table(void **state)
{
    static const char *const failmode[] = { "unreachable", "timeout", "garbage", "server" };
    /* busy: the agent is up and answering, only at its limit; that is not "down" */
    /* config: the agent is up, refusing everything because its agent.conf did not load */
    static const char *const deny[] = { "tls",          "not_enrolled", "rejected", "bad_request",
                                        "forbidden",    "busy",         "config",   "push_busy",
                                        "rate_limited", "no_such_code" };
    char reply[160];

    (void)state;
    for (size_t i = 0; i < sizeof failmode / sizeof failmode[0]; i++) {
        snprintf(reply, sizeof reply, "{\"ok\":false,\"error\":\"%s\",\"message\":\"m\"}",
                 failmode[i]);
        expect_failmode(FA_REPLY, reply, failmode[i]);
    }
    for (size_t i = 0; i < sizeof deny / sizeof deny[0]; i++)
        for (int safe = 0; safe <= 1; safe++) {
            struct fake_agent fa = { .nreplies = 1, .replies = { reply } };
            snprintf(reply, sizeof reply, "{\"ok\":false,\"error\":\"%s\"}", deny[i]);
            struct pt_result r = fake_run(&fa, FA_REPLY, safe ? "failmode=safe" : "", NULL);
            fa_stop(&fa);
            if (r.rc != PAM_AUTH_ERR)
                fail_msg("error %s safe=%d gave %d; log:\n%s", deny[i], safe, r.rc, r.log);
            assert_null(strstr(r.log, "admitting"));
            if (strcmp(deny[i], "config") == 0) {
                assert_log_has(r, "result=deny reason=config");
                assert_log_has(r, "configuration (agent.conf) is invalid");
            }
            if (strcmp(deny[i], "push_busy") == 0) /* named, not agent_unknown_error */
                assert_log_has(r, "reason=push_busy");
            if (strcmp(deny[i], "rate_limited") == 0) /* a host over its auth rate */
                assert_log_has(r, "reason=rate_limited");
            pt_result_free(&r);
        }
}

void test_fake_tls_midflow_denies(void **state)
{
    struct fake_agent fa = { .nreplies = 2,
                             .replies = { CH_TOTP, "{\"ok\":false,\"error\":\"tls\"}" } };
    struct pt_conv cv = { .answers = { "135790" }, .nanswers = 1 };
    struct pt_result r;

    (void)state;
    snprintf(pt_typed[pt_ntyped++], 12, "135790");
    r = fake_run(&fa, FA_REPLY, "failmode=safe", &cv);
    fa_stop(&fa);
    assert_rc(r, PAM_AUTH_ERR);
    pt_result_free(&r);
}

void test_fake_malformed_frames(void **state)
{
    (void)state;
    expect_failmode(FA_GARBAGE, ALLOW, "agent_malformed");
    expect_failmode(FA_NOTOBJ, ALLOW, "agent_malformed");
    expect_failmode(FA_TOOBIG, ALLOW, "agent_malformed");
    expect_failmode(FA_CLOSE, ALLOW, "agent_closed");
    expect_failmode(FA_REPLY, "{\"hello\":1}", "agent_malformed");
    expect_failmode(FA_REPLY, "{\"ok\":\"yes\"}", "agent_malformed");
}

/* The user dawdles at the prompt until little of the login's time is left, and the agent is
 * slow to judge the code: running out of the user's time must deny, never admit under
 * failmode=safe (found in review: a wrong code could otherwise be admitted). */
void test_fake_user_spent_the_deadline_denies(void **state)
{
    struct fake_agent fa = { .nreplies = 2,
                             .replies = { CH_TOTP, TOTP("deny", "wrong_code") },
                             .slow_ms = 6000 };
    /* 4 of the 6 s spent typing: well past the agent's fair half (see pm_agent_call) */
    struct pt_conv cv = { .answers = { "000000" }, .nanswers = 1, .think_ms = 4000 };
    struct pt_result r;

    (void)state;
    r = fake_run(&fa, FA_SLOW, "failmode=safe timeout=6", &cv);
    fa_stop(&fa);
    assert_rc(r, PAM_AUTH_ERR);
    assert_log_has(r, "deadline");
    if (strstr(r.log, "admitting"))
        fail_msg("admitted after the user spent the deadline:\n%s", r.log);
    pt_result_free(&r);
}

void test_fake_hang_timeout_option(void **state)
{
    for (int safe = 0; safe <= 1; safe++) {
        struct fake_agent fa = { .nreplies = 1, .replies = { ALLOW } };
        struct pt_result r = fake_run(&fa, FA_HANG, safe ? "timeout=2 failmode=safe" : "timeout=2",
                                      NULL);
        fa_stop(&fa);
        (void)state;
        assert_rc(r, safe ? PAM_SUCCESS : PAM_AUTH_ERR);
        if (r.ms < 1800 || r.ms > 4000)
            fail_msg("timeout=2 took %ld ms", r.ms);
        assert_log_has(r, "agent_timeout");
        pt_result_free(&r);
    }
}

void test_socket_missing_and_refused(void **state)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char path[PT_PATH], args[2 * PT_PATH];
    int fd;

    (void)state;
    snprintf(path, sizeof path, "%s/refusing.sock", E.root);
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    fd = socket(AF_UNIX, SOCK_STREAM, 0); /* bound, never listening: ECONNREFUSED */
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    for (int which = 0; which < 2; which++)
        for (int safe = 0; safe <= 1; safe++) {
            snprintf(args, sizeof args, "socket=%s%s", which ? path : "/nonexistent/agent.sock",
                     safe ? " failmode=safe" : "");
            struct pt_result r = pt_pam("alice", args, NULL);
            assert_rc(r, safe ? PAM_SUCCESS : PAM_AUTH_ERR);
            assert_log_has(r, which ? "agent_refused" : "agent_socket_missing");
            if (safe)
                assert_log_has(r, "failmode=safe: admitting alice without a second factor");
            pt_result_free(&r);
        }
    close(fd);
    unlink(path);
}

void test_fake_totp_retries(void **state)
{
    (void)state;
    for (int tries = 2; tries <= 3; tries++) {
        struct fake_agent fa = { .nreplies = 4,
                                 .replies = { CH_TOTP, TOTP("deny", "wrong_code"),
                                              TOTP("deny", "replayed"), TOTP("allow", "ok") } };
        struct pt_conv cv = { .answers = { "123456", "234567", "34567890" }, .nanswers = 3 };
        char args[32];
        snprintf(args, sizeof args, "tries=%d", tries);
        for (int i = 0; i < 3; i++)
            snprintf(pt_typed[pt_ntyped++], 12, "%s", cv.answers[i]);
        struct pt_result r = fake_run(&fa, FA_REPLY, args, &cv);
        assert_rc(r, tries == 3 ? PAM_SUCCESS : PAM_MAXTRIES);
        assert_int_equal(cv.nprompts, tries);
        assert_int_equal(cv.echo_on, 0);
        assert_string_equal(cv.prompts[0], "Verification code: ");
        for (int i = 1; i <= tries; i++) {
            assert_string_equal(fa_op(&fa, i), "totp");
            assert_string_equal(pt_jstr(fa.reqs[i], "code"), cv.answers[i - 1]);
            assert_string_equal(pt_jstr(fa.reqs[i], "txid"), "tx1");
        }
        fa_stop(&fa);
        pt_result_free(&r);
    }
}

void test_fake_malformed_code_not_sent(void **state)
{
    struct fake_agent fa = { .nreplies = 2, .replies = { CH_TOTP, TOTP("allow", "ok") } };
    struct pt_conv cv = { .answers = { "abcdef", "12345", "" }, .nanswers = 3 };
    struct pt_result r;

    (void)state;
    r = fake_run(&fa, FA_REPLY, NULL, &cv);
    assert_rc(r, PAM_MAXTRIES);
    assert_int_equal(fa.nreqs, 1);
    fa_stop(&fa);
    pt_result_free(&r);
}

void test_fake_push_flows(void **state)
{
    static const struct {
        const char *extra, *r0, *r3, *answer;
        int rc, push_sent;
    } t[] = {
        { "", CH_BOTH, STATE("approved"), "", PAM_SUCCESS, 1 },
        { "", CH_BOTH, STATE("denied"), "", PAM_AUTH_ERR, 1 },
        { "", CH_BOTH, STATE("expired"), "", PAM_AUTH_ERR, 1 },
        { "", CH_PUSH, STATE("approved"), "anything", PAM_SUCCESS, 1 },
        { "push=off", CH_PUSH, STATE("approved"), "", PAM_AUTH_ERR, 0 },
        { "", CH_BOTH, STATE("bogus"), "", PAM_AUTH_ERR, 1 },
    };

    (void)state;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct fake_agent fa = { .nreplies = 4,
                                 .replies = { t[i].r0, PUSH_47, STATE("pending"), t[i].r3 } };
        struct pt_conv cv = { .answers = { t[i].answer }, .nanswers = 1 };
        struct pt_result r = fake_run(&fa, FA_REPLY, t[i].extra, &cv);
        if (r.rc != t[i].rc)
            fail_msg("case %zu gave %d; log:\n%s", i, r.rc, r.log);
        if (t[i].push_sent) {
            assert_int_equal(cv.nprompts, 1);
            assert_int_equal(cv.echo_on, 0);
            assert_string_equal(cv.match, "47");
            assert_non_null(strstr(cv.prompts[0], "Push sent. Enter 47 on your device"));
            assert_true((strstr(cv.prompts[0], "or type a code") != NULL) ==
                        (strcmp(t[i].r0, CH_BOTH) == 0));
            assert_string_equal(fa_op(&fa, 1), "push");
            assert_string_equal(fa_op(&fa, 2), "push_wait");
            assert_string_equal(pt_jstr(fa.reqs[2], "push_id"), "p1");
            int w = json_object_get_int(json_object_object_get(fa.reqs[2], "wait"));
            assert_true(w >= 1 && w <= 10);
            assert_int_equal(fa.nreqs, 4);
        } else {
            assert_int_equal(cv.nprompts, 0);
            assert_int_equal(fa.nreqs, 1);
        }
        fa_stop(&fa);
        pt_result_free(&r);
    }
}

/* The push comes with begin's reply: no "push" request, the prompt shows its number, and
 * push_wait polls that push. */
#define CH_BOTH_PUSHED \
    "{\"ok\":true,\"txid\":\"tx1\",\"action\":\"challenge\",\"factors\":[\"totp\",\"push\"]," \
    "\"push_id\":\"p9\",\"match\":\"58\",\"expires_at\":0}"
void test_fake_push_with_begin(void **state)
{
    struct fake_agent fa = { .nreplies = 3,
                             .replies = { CH_BOTH_PUSHED, STATE("pending"), STATE("approved") } };
    struct pt_conv cv = { .answers = { "" }, .nanswers = 1 };
    struct pt_result r;

    (void)state;
    r = fake_run(&fa, FA_REPLY, "", &cv);
    assert_rc(r, PAM_SUCCESS);
    assert_true(json_object_get_boolean(json_object_object_get(fa.reqs[0], "push")));
    assert_non_null(strstr(cv.prompts[0], "Push sent. Enter 58 on your device"));
    assert_string_equal(fa_op(&fa, 1), "push_wait");
    assert_string_equal(pt_jstr(fa.reqs[1], "push_id"), "p9");
    assert_int_equal(fa.nreqs, 3);
    fa_stop(&fa);
    pt_result_free(&r);

    /* push=off: begin does not ask for one */
    struct fake_agent off = { .nreplies = 2, .replies = { CH_BOTH, TOTP("allow", "ok") } };
    struct pt_conv cv2 = { .answers = { "246802" }, .nanswers = 1 };
    snprintf(pt_typed[pt_ntyped++], 12, "246802");
    r = fake_run(&off, FA_REPLY, "push=off", &cv2);
    assert_rc(r, PAM_SUCCESS);
    assert_null(json_object_object_get(off.reqs[0], "push"));
    fa_stop(&off);
    pt_result_free(&r);
}

/* An agent older than begin's "push" refuses the field (bad_request): the module asks again
 * without it, then for the push in its own request, and the login works. */
void test_fake_push_old_agent(void **state)
{
    struct fake_agent
        fa = { .nreplies = 4,
               .replies = {
                   "{\"ok\":false,\"error\":\"bad_request\",\"message\":\"unknown field 'push'\"}",
                   CH_BOTH, PUSH_47, STATE("approved") } };
    struct pt_conv cv = { .answers = { "" }, .nanswers = 1 };
    struct pt_result r;

    (void)state;
    r = fake_run(&fa, FA_REPLY, "", &cv);
    assert_rc(r, PAM_SUCCESS);
    assert_string_equal(fa_op(&fa, 0), "begin");
    assert_non_null(json_object_object_get(fa.reqs[0], "push"));
    assert_string_equal(fa_op(&fa, 1), "begin");
    assert_null(json_object_object_get(fa.reqs[1], "push"));
    assert_string_equal(fa_op(&fa, 2), "push");
    assert_non_null(strstr(cv.prompts[0], "Push sent. Enter 47 on your device"));
    assert_int_equal(fa.nreqs, 4);
    fa_stop(&fa);
    pt_result_free(&r);
}

/* begin's push with a match that is not two digits: the agent's reply is malformed, never a
 * prompt with a number the phone does not show. */
void test_fake_push_with_begin_malformed(void **state)
{
    struct fake_agent fa = {
        .nreplies = 1,
        .replies = { "{\"ok\":true,\"txid\":\"tx1\",\"action\":\"challenge\",\"factors\":"
                     "[\"push\"],\"push_id\":\"p9\",\"match\":\"5x\",\"expires_at\":0}" }
    };
    struct pt_conv cv = { .answers = { "" }, .nanswers = 1 };
    struct pt_result r;

    (void)state;
    r = fake_run(&fa, FA_REPLY, "", &cv);
    assert_rc(r, PAM_AUTH_ERR);
    assert_int_equal(cv.nprompts, 0);
    assert_log_has(r, "agent_malformed");
    fa_stop(&fa);
    pt_result_free(&r);
}

void test_fake_push_off_uses_code(void **state)
{
    struct fake_agent fa = { .nreplies = 2, .replies = { CH_BOTH, TOTP("allow", "ok") } };
    struct pt_conv cv = { .answers = { "246801" }, .nanswers = 1 };
    struct pt_result r;

    (void)state;
    snprintf(pt_typed[pt_ntyped++], 12, "246801");
    r = fake_run(&fa, FA_REPLY, "push=off debug", &cv);
    assert_rc(r, PAM_SUCCESS);
    assert_string_equal(cv.prompts[0], "Verification code: ");
    assert_string_equal(fa_op(&fa, 1), "totp");
    fa_stop(&fa);
    pt_result_free(&r);
}

void test_fake_push_deadline(void **state)
{
    struct fake_agent fa = { .nreplies = 3, .replies = { CH_PUSH, PUSH_47, STATE("pending") } };
    struct pt_conv cv = { .answers = { "" }, .nanswers = 1 };
    struct pt_result r;

    (void)state;
    r = fake_run(&fa, FA_REPLY, "timeout=3 failmode=safe", &cv);
    fa_stop(&fa);
    assert_rc(r, PAM_AUTH_ERR); /* a push nobody approved is not an outage */
    assert_true(r.ms < 4500);
    assert_log_has(r, "push_timeout");
    pt_result_free(&r);
}

/* Issue 11, finding 3: once the user has been shown a prompt, failmode no longer applies. The
 * agent ends a root connection that stays idle too long; a user who typed a wrong code after a
 * long prompt found the connection closed, and failmode=safe admitted the wrong code. Every
 * agent failure after the first prompt denies, under every failmode. */
void test_fake_failure_after_prompt_denies(void **state)
{
    static const struct {
        const char *name;
        enum fa_mode mode;
        int after;
        const char *r0, *r1, *r2, *answer;
    } t[] = {
        /* the agent closed the idle connection before the code was sent */
        { "idle close", FA_CLOSE, 1, CH_TOTP, NULL, NULL, "111111" },
        { "frame too big", FA_TOOBIG, 1, CH_TOTP, NULL, NULL, "111111" },
        { "garbage", FA_GARBAGE, 1, CH_TOTP, NULL, NULL, "111111" },
        { "not an object", FA_NOTOBJ, 1, CH_TOTP, NULL, NULL, "111111" },
        { "hang", FA_HANG, 1, CH_TOTP, NULL, NULL, "111111" },
        { "unreachable", FA_REPLY, 0, CH_TOTP, "{\"ok\":false,\"error\":\"unreachable\"}", NULL,
          "111111" },
        { "server", FA_REPLY, 0, CH_TOTP, "{\"ok\":false,\"error\":\"server\"}", NULL, "111111" },
        { "malformed result", FA_REPLY, 0, CH_TOTP, TOTP("maybe", "x"), NULL, "111111" },
        /* a push: the prompt is shown, then push_wait fails */
        { "push_wait close", FA_CLOSE, 2, CH_PUSH, PUSH_47, NULL, "" },
        { "push_wait unreachable", FA_REPLY, 0, CH_PUSH, PUSH_47,
          "{\"ok\":false,\"error\":\"unreachable\"}", "" },
        { "push_wait malformed", FA_REPLY, 0, CH_PUSH, PUSH_47, STATE("bogus"), "" },
    };

    (void)state;
    snprintf(pt_typed[pt_ntyped++], 12, "111111");
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        for (int safe = 1; safe >= 0; safe--) {
            struct fake_agent fa = { .after = t[i].after };
            struct pt_conv cv = { .answers = { t[i].answer }, .nanswers = 1 };
            struct pt_result r;
            fa.replies[fa.nreplies++] = t[i].r0;
            if (t[i].r1)
                fa.replies[fa.nreplies++] = t[i].r1;
            if (t[i].r2)
                fa.replies[fa.nreplies++] = t[i].r2;
            r = fake_run(&fa, t[i].mode, safe ? "failmode=safe timeout=3" : "timeout=3", &cv);
            fa_stop(&fa);
            if (r.rc != PAM_AUTH_ERR || strstr(r.log, "admitting"))
                fail_msg("%s after the prompt, safe=%d: pam_authenticate gave %d; log:\n%s",
                         t[i].name, safe, r.rc, r.log);
            assert_int_equal(cv.nprompts, 1);
            assert_log_has(r, "result=deny reason=agent_error_after_prompt");
            pt_result_free(&r);
        }
}

/* Before any prompt an agent failure is still the failmode's to decide (unchanged): the begin
 * request, and a push request that fails before the push prompt is shown. */
void test_fake_failure_before_prompt_is_failmode(void **state)
{
    static const struct {
        const char *name;
        enum fa_mode mode;
        int after;
        const char *r0, *r1, *reason;
    } t[] = {
        { "begin close", FA_CLOSE, 0, ALLOW, NULL, "agent_closed" },
        { "begin unreachable", FA_REPLY, 0, "{\"ok\":false,\"error\":\"unreachable\"}", NULL,
          "unreachable" },
        { "push close", FA_CLOSE, 1, CH_PUSH, NULL, "agent_closed" },
        { "push garbage", FA_GARBAGE, 1, CH_BOTH, NULL, "agent_malformed" },
        { "push unreachable", FA_REPLY, 0, CH_PUSH, "{\"ok\":false,\"error\":\"unreachable\"}",
          "unreachable" },
    };

    (void)state;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        for (int safe = 0; safe <= 1; safe++) {
            struct fake_agent fa = { .after = t[i].after };
            struct pt_conv cv = { .answers = { "" }, .nanswers = 1 };
            struct pt_result r;
            fa.replies[fa.nreplies++] = t[i].r0;
            if (t[i].r1)
                fa.replies[fa.nreplies++] = t[i].r1;
            r = fake_run(&fa, t[i].mode, safe ? "failmode=safe timeout=3" : "timeout=3", &cv);
            fa_stop(&fa);
            if (r.rc != (safe ? PAM_SUCCESS : PAM_AUTH_ERR))
                fail_msg("%s before any prompt, safe=%d: pam_authenticate gave %d; log:\n%s",
                         t[i].name, safe, r.rc, r.log);
            assert_int_equal(cv.nprompts, 0);
            assert_log_has(r, t[i].reason);
            if (safe)
                assert_log_has(r, "failmode=safe: admitting alice without a second factor");
            assert_null(strstr(r.log, "agent_error_after_prompt"));
            pt_result_free(&r);
        }
}

/* Issue 18: after a begin error that follows failmode and carries failmode_id, the module tells
 * the agent what its failmode decided (op failmode, same connection); the syslog line names the
 * id as txid; the report's answer changes nothing; no report for other errors or a bad id. */
void test_fake_failmode_report(void **state)
{
#define FM_ID "a1b2c3d4e5f6a7b8c9d0a1b2c3d4e5f6"
    static const char *const report_replies[] = { "{\"ok\":true}",
                                                  "{\"ok\":false,\"error\":\"bad_request\"}" };
    static const char *const no_report[] = {
        "{\"ok\":false,\"error\":\"tls\",\"failmode_id\":\"" FM_ID "\"}",
        "{\"ok\":false,\"error\":\"unreachable\",\"failmode_id\":\"A1B2C3D4E5F6A7B8C9D0A1B2C3D4E5F6\"}",
        "{\"ok\":false,\"error\":\"unreachable\",\"failmode_id\":\"a1b2\"}",
        "{\"ok\":false,\"error\":\"unreachable\",\"failmode_id\":7}",
        "{\"ok\":false,\"error\":\"unreachable\"}",
    };

    (void)state;
    for (int safe = 0; safe <= 1; safe++)
        for (size_t k = 0; k < 2; k++) {
            struct fake_agent fa = {
                .nreplies = 2,
                .replies = { "{\"ok\":false,\"error\":\"unreachable\",\"message\":\"x\","
                             "\"failmode_id\":\"" FM_ID "\"}",
                             report_replies[k] }
            };
            struct pt_result r = fake_run(&fa, FA_REPLY, safe ? "failmode=safe" : "", NULL);
            assert_rc(r, safe ? PAM_SUCCESS : PAM_AUTH_ERR);
            assert_int_equal(fa.nreqs, 2);
            assert_string_equal(fa_op(&fa, 1), "failmode");
            assert_string_equal(pt_jstr(fa.reqs[1], "id"), FM_ID);
            assert_string_equal(pt_jstr(fa.reqs[1], "failmode"), safe ? "safe" : "secure");
            assert_log_has(r, "txid=" FM_ID);
            fa_stop(&fa);
            pt_result_free(&r);
        }
    for (size_t i = 0; i < sizeof no_report / sizeof no_report[0]; i++) {
        struct fake_agent fa = { .nreplies = 2, .replies = { no_report[i], "{\"ok\":true}" } };
        struct pt_result r = fake_run(&fa, FA_REPLY, "failmode=safe", NULL);
        assert_int_equal(fa.nreqs, 1);
        fa_stop(&fa);
        pt_result_free(&r);
    }
#undef FM_ID
}
