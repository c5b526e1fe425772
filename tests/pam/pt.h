/* SPDX-License-Identifier: BSD-2-Clause */
/* The test harness of pam_portcullis.so (tests/unit/test_pam.c: main, the built object, the
 * options), one compilation unit per part:
 *   pt_harness.c  the real chain (portcullisd, tests/faultproxy.py, portcullis-agent), the
 *                 admin API through curl, TOTP codes, pam_wrapper's set-up and re-execution
 *   pt_pam.c      one PAM run under pam_wrapper with a scripted conversation; a fake agent
 *   pt_cases.c    the failure table against the fake agent
 *   pt_real.c     the real chain, then the audit of everything the module logged */
#ifndef PT_H
#define PT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <string.h>
#include <sys/types.h>

#include <json-c/json.h>
#include <security/pam_appl.h>

#define PT_PATH 1024

/* ---- pt_harness.c ------------------------------------------------------------------------ */

struct pt_env {
    char root[PT_PATH];   /* temp dir of this run */
    char build[PT_PATH];  /* PC_BUILD_DIR */
    char src[PT_PATH];    /* PC_SRC_DIR */
    char module[PT_PATH]; /* the built pam_portcullis.so */
    char data[PT_PATH];   /* portcullisd data dir */
    char pin[128];
    char admin_hdr[PT_PATH]; /* file with "Authorization: Bearer …" (curl -H @file) */
    char cp_url[128];        /* https://127.0.0.1:CP */
    char mode_file[PT_PATH]; /* faultproxy mode */
    char agent_sock[PT_PATH];
    char log_all[PT_PATH]; /* everything the module logged during the run */
    char host_token[128];
    pid_t cp_pid, proxy_pid, agent_pid;
    int have_agent; /* the whole real chain is up */
    char why_no_agent[256];
    char pwrap_dir[PT_PATH]; /* pam_wrapper's private copy of the service dir (live) */
};
extern struct pt_env E;

struct pt_user {
    char name[40];
    unsigned char secret[64];
    size_t secret_len;
};

/* Every code the tests typed, to prove none reached a log. */
extern char pt_typed[256][12];
extern int pt_ntyped;

_Noreturn void pt_die(const char *what);
int pt_path(char *out, const char *a, const char *b);
char *pt_read_file(const char *path, size_t *len);
int pt_write_file(const char *path, const char *text, mode_t mode);
void pt_sleep_ms(long ms);
long pt_now_ms(void);
pid_t pt_spawn(char *const argv[], const char *logfile);
void pt_stop(pid_t *pid);
int pt_alive(pid_t pid);
int pt_wait_file(const char *path, long ms);
int pt_api(const char *method, const char *path, const char *body, int auth, json_object **out);
const char *pt_jstr(json_object *o, const char *key);
int pt_user_create(struct pt_user *u, const char *prefix, const char *groups, int push, int totp);
void pt_code(const struct pt_user *u, long offset_steps, char out[12]);
void pt_wrong_code(const struct pt_user *u, char out[12]);
void pt_set_mode(const char *mode);
int pt_group_setup(void **state);
int pt_group_teardown(void **state);
void pt_prepare(char **argv);

/* ---- pt_pam.c ---------------------------------------------------------------------------- */

enum pt_push_action { PT_PUSH_NONE, PT_PUSH_APPROVE, PT_PUSH_WRONG_MATCH, PT_PUSH_DENY };

struct pt_conv {
    const struct pt_user *user;
    const char *answers[10]; /* "@code" (current code), "@wrong", "@last" (previous answer), text */
    int nanswers, idx;
    char prompts[10][256];
    int nprompts;
    int echo_on; /* prompts with echo on (must stay 0) */
    int info;    /* PAM_TEXT_INFO / PAM_ERROR_MSG seen */
    enum pt_push_action push;
    char match[16];
    char last[12];
    pthread_t approver;
    int approver_started;
    int approve_status; /* HTTP status of the approve/deny call */
    int think_ms;       /* the user waits this long before each answer */
};

/* libpam's own entry points, looked up at run time (libpamtest loads libpam; the Makefile does
 * not link the test against -lpam directly). Under LD_PRELOAD these are pam_wrapper's. */
struct pt_libpam {
    int (*start)(const char *, const char *, const struct pam_conv *, pam_handle_t **);
    int (*set_item)(pam_handle_t *, int, const void *);
    int (*putenv)(pam_handle_t *, const char *);
    int (*authenticate)(pam_handle_t *, int);
    int (*end)(pam_handle_t *, int);
    const char *(*strerror)(pam_handle_t *, int);
};
extern struct pt_libpam P;

struct pt_result {
    int rc; /* what pam_authenticate returned */
    long ms;
    char *log; /* what the module logged during the run (pam_wrapper → stderr) */
};

struct pt_items {
    const char *rhost, *tty, *auth_info;
    int direct; /* call the module's pam_sm_authenticate itself: its exact return code, which
                   the stack would turn into PAM_PERM_DENIED for a lone PAM_IGNORE */
};

/* FA_SLOW: the first request is answered at once, later ones after slow_ms. */
enum fa_mode { FA_REPLY, FA_HANG, FA_CLOSE, FA_GARBAGE, FA_TOOBIG, FA_NOTOBJ, FA_SLOW };

struct fake_agent {
    char path[PT_PATH];
    int lfd;
    pthread_t th;
    enum fa_mode mode;
    const char *replies[10]; /* reply to the i-th request; the last one repeats */
    int nreplies;
    json_object *reqs[16];
    int nreqs;
    int slow_ms;
    int after; /* the fault mode starts at this request (0: the first); before it
                                FA_REPLY. FA_CLOSE with after > 0 closes once the reply to
                                request after-1 is sent, as an agent ending an idle connection */
    volatile int stop;
};

void pt_libpam_load(void);
struct pt_result pt_pam_items(const char *user, const char *args, struct pt_conv *cv,
                              const struct pt_items *items);
struct pt_result pt_pam(const char *user, const char *args, struct pt_conv *cv);
void pt_result_free(struct pt_result *r);
void fa_start(struct fake_agent *fa, enum fa_mode mode);
void fa_stop(struct fake_agent *fa);
const char *fa_op(const struct fake_agent *fa, int i);

#define assert_log_has(res, text) \
    do { \
        if (!strstr((res).log, (text))) \
            fail_msg("log lacks \"%s\"; it was:\n%s", (text), (res).log); \
    } while (0)

#define assert_rc(res, expected) \
    do { \
        if ((res).rc != (expected)) \
            fail_msg("pam_authenticate returned %d (%s), expected %d (%s); log:\n%s", (res).rc, \
                     P.strerror(NULL, (res).rc), (expected), P.strerror(NULL, (expected)), \
                     (res).log); \
    } while (0)

/* ---- pt_cases.c: the fake agent ---------------------------------------------------------- */

void test_fake_begin_fields(void **state);
void test_fake_actions(void **state);
void test_fake_failmode_report(void **state);
void test_fake_error_table(void **state);
void test_fake_tls_midflow_denies(void **state);
void test_fake_malformed_frames(void **state);
void test_fake_user_spent_the_deadline_denies(void **state);
void test_fake_hang_timeout_option(void **state);
void test_socket_missing_and_refused(void **state);
void test_fake_totp_retries(void **state);
void test_fake_malformed_code_not_sent(void **state);
void test_fake_push_flows(void **state);
void test_fake_push_off_uses_code(void **state);
void test_fake_push_with_begin(void **state);
void test_fake_push_old_agent(void **state);
void test_fake_push_with_begin_malformed(void **state);
void test_fake_push_deadline(void **state);
void test_fake_failure_after_prompt_denies(void **state);
void test_fake_failure_before_prompt_is_failmode(void **state);

/* ---- pt_real.c: the real chain; test_no_secret_in_logs runs last ------------------------ */

void test_real_right_code(void **state);
void test_real_wrong_codes_maxtries(void **state);
void test_real_wrong_then_right(void **state);
void test_real_replay_refused(void **state);
void test_real_exempt_ignore(void **state);
void test_real_unknown_and_disabled(void **state);
void test_real_push(void **state);
void test_real_push_off(void **state);
void test_real_failure_table(void **state);
void test_real_reset_is_failmode(void **state);
void test_real_timeout_option(void **state);
void test_real_broken_agent_conf_denies(void **state);
void test_real_agent_idle_covers_module_timeout(void **state);
void test_no_secret_in_logs(void **state);

#endif
