/* SPDX-License-Identifier: BSD-2-Clause */
/* Running pam_portcullis.so under pam_wrapper with a scripted conversation, and a fake agent
 * (an in-process unix-socket server speaking lib/pc_frame) for the failure table. */
#include "config.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <libpamtest.h>

#include "pc_frame.h"
#include "pc_time.h"
#include "pt.h"

struct pt_libpam P;
static int service_counter;

/* ---- the conversation ------------------------------------------------------------------ */

static void *pt_approver(void *arg)
{
    struct pt_conv *cv = arg;
    char path[256], body[64];

    pt_sleep_ms(700); /* let the module start waiting */
    for (int i = 0; i < 50; i++) {
        json_object *r = NULL, *list = NULL;
        const char *id = NULL;
        pt_api("GET", "/v1/approvals", NULL, 1, &r);
        if (r && json_object_object_get_ex(r, "approvals", &list))
            for (size_t k = 0; k < json_object_array_length(list); k++) {
                json_object *a = json_object_array_get_idx(list, k);
                const char *u = pt_jstr(a, "user");
                if (u && strcmp(u, cv->user->name) == 0)
                    id = pt_jstr(a, "push_id");
            }
        if (id) {
            if (cv->push == PT_PUSH_DENY) {
                snprintf(path, sizeof path, "/v1/approvals/%s/deny", id);
                cv->approve_status = pt_api("POST", path, "{}", 1, NULL);
            } else {
                snprintf(path, sizeof path, "/v1/approvals/%s/approve", id);
                snprintf(body, sizeof body, "{\"match\":\"%s\"}",
                         cv->push == PT_PUSH_APPROVE ? cv->match
                                                     : (strcmp(cv->match, "11") ? "11" : "12"));
                cv->approve_status = pt_api("POST", path, body, 1, NULL);
            }
            json_object_put(r);
            return NULL;
        }
        json_object_put(r);
        pt_sleep_ms(200);
    }
    return NULL;
}

/* "… Enter 47 on your device …" → "47" */
static void pt_parse_match(struct pt_conv *cv, const char *prompt)
{
    const char *p = strstr(prompt, "Enter ");
    size_t n = 0;

    if (!p)
        return;
    p += 6;
    while (p[n] >= '0' && p[n] <= '9' && n < sizeof cv->match - 1)
        n++;
    if (n == 0 || strncmp(p + n, " on your device", 15) != 0)
        return;
    memcpy(cv->match, p, n);
    cv->match[n] = '\0';
}

static char *pt_answer(struct pt_conv *cv)
{
    const char *a;
    char buf[12];

    if (cv->idx >= cv->nanswers)
        return NULL;
    a = cv->answers[cv->idx++];
    if (strcmp(a, "@code") == 0 || strcmp(a, "@wrong") == 0) {
        if (a[1] == 'c')
            pt_code(cv->user, 0, buf);
        else
            pt_wrong_code(cv->user, buf);
        snprintf(cv->last, sizeof cv->last, "%s", buf);
        if (pt_ntyped < 256)
            snprintf(pt_typed[pt_ntyped++], 12, "%s", buf);
        return strdup(buf);
    }
    if (strcmp(a, "@last") == 0)
        return strdup(cv->last);
    return strdup(a);
}

static int pt_conv_fn(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
    struct pt_conv *cv = data;
    struct pam_response *r = calloc((size_t)n, sizeof *r);

    if (!r)
        return PAM_BUF_ERR;
    for (int i = 0; i < n; i++) {
        int style = msg[i]->msg_style;
        if (style == PAM_PROMPT_ECHO_OFF || style == PAM_PROMPT_ECHO_ON) {
            if (style == PAM_PROMPT_ECHO_ON)
                cv->echo_on++;
            if (cv->nprompts < 10)
                snprintf(cv->prompts[cv->nprompts++], 256, "%s", msg[i]->msg);
            pt_parse_match(cv, msg[i]->msg);
            if (cv->match[0] && cv->push != PT_PUSH_NONE && !cv->approver_started) {
                cv->approver_started = 1;
                pthread_create(&cv->approver, NULL, pt_approver, cv);
            }
            if (cv->think_ms > 0) {
                struct timespec ts = { cv->think_ms / 1000, (cv->think_ms % 1000) * 1000000L };
                nanosleep(&ts, NULL);
            }
            r[i].resp = pt_answer(cv);
            if (!r[i].resp) {
                for (int k = 0; k < i; k++)
                    free(r[k].resp);
                free(r);
                return PAM_CONV_ERR;
            }
        } else {
            cv->info++;
        }
    }
    *resp = r;
    return PAM_SUCCESS;
}

void pt_libpam_load(void)
{
    *(void **)&P.start = dlsym(RTLD_DEFAULT, "pam_start");
    *(void **)&P.set_item = dlsym(RTLD_DEFAULT, "pam_set_item");
    *(void **)&P.putenv = dlsym(RTLD_DEFAULT, "pam_putenv");
    *(void **)&P.authenticate = dlsym(RTLD_DEFAULT, "pam_authenticate");
    *(void **)&P.end = dlsym(RTLD_DEFAULT, "pam_end");
    *(void **)&P.strerror = dlsym(RTLD_DEFAULT, "pam_strerror");
    if (!P.start || !P.set_item || !P.putenv || !P.authenticate || !P.end || !P.strerror) {
        fprintf(stderr, "test_pam: libpam symbols not found\n");
        exit(2);
    }
}

/* ---- one PAM run ----------------------------------------------------------------------- */

void pt_result_free(struct pt_result *r)
{
    free(r->log);
    r->log = NULL;
}

typedef int (*pt_sm_fn)(pam_handle_t *, int, int, const char **);

static int pt_call_module(pam_handle_t *ph, const char *args)
{
    static void *lib;
    static pt_sm_fn fn;
    char buf[2 * PT_PATH], *save = NULL, *tok;
    const char *argv[32];
    int argc = 0;

    if (!lib && !(lib = dlopen(E.module, RTLD_NOW | RTLD_LOCAL)))
        return -1;
    if (!fn && !(*(void **)&fn = dlsym(lib, "pam_sm_authenticate")))
        return -1;
    snprintf(buf, sizeof buf, "%s", args ? args : "");
    for (tok = strtok_r(buf, " ", &save); tok && argc < 32; tok = strtok_r(NULL, " ", &save))
        argv[argc++] = tok;
    return fn(ph, 0, argc, argv);
}

/* pam_authenticate for user with "auth required pam_portcullis.so ARGS". With items, the
 * handle is driven directly (pam_start under pam_wrapper) to set PAM_RHOST/PAM_TTY and
 * SSH_AUTH_INFO_0 first; otherwise through libpamtest. */
struct pt_result pt_pam_items(const char *user, const char *args, struct pt_conv *cv,
                              const struct pt_items *items)
{
    struct pt_result res = { .rc = -1 };
    char svc[64], svcpath[PT_PATH], line[2 * PT_PATH], logf[PT_PATH];
    struct pt_conv dummy = { 0 };
    int saved, fd;
    long t0;

    if (!cv)
        cv = &dummy;
    snprintf(svc, sizeof svc, "pctest%d", ++service_counter);
    snprintf(svcpath, sizeof svcpath, "%s/%s", E.pwrap_dir, svc);
    snprintf(line, sizeof line, "auth required %s %s\n", E.module, args ? args : "");
    if (pt_write_file(svcpath, line, 0644) != 0)
        pt_die("service file");
    snprintf(logf, sizeof logf, "%s/pam-%s.log", E.root, svc);
    fflush(stderr);
    saved = dup(2);
    fd = open(logf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (saved < 0 || fd < 0)
        pt_die("log capture");
    /* cppcheck-suppress invalidFunctionArg ; pt_die is _Noreturn, which cppcheck does not see */
    dup2(fd, 2);
    /* cppcheck-suppress invalidFunctionArg ; as above */
    close(fd);
    t0 = pt_now_ms();
    if (items) {
        struct pam_conv conv = { pt_conv_fn, cv };
        pam_handle_t *ph = NULL;
        char env[4096];
        if (P.start(svc, user, &conv, &ph) == PAM_SUCCESS) {
            if (items->rhost)
                P.set_item(ph, PAM_RHOST, items->rhost);
            if (items->tty)
                P.set_item(ph, PAM_TTY, items->tty);
            if (items->auth_info) {
                snprintf(env, sizeof env, "SSH_AUTH_INFO_0=%s", items->auth_info);
                P.putenv(ph, env);
            }
            res.rc = items->direct ? pt_call_module(ph, args) : P.authenticate(ph, 0);
            P.end(ph, res.rc);
        }
    } else {
        struct pam_testcase tc[] = { pam_test(PAMTEST_AUTHENTICATE, PAM_SUCCESS) };
        enum pamtest_err perr = _pamtest_conv(svc, user, pt_conv_fn, cv, tc, 1, NULL);
        if (perr == PAMTEST_ERR_OK || perr == PAMTEST_ERR_CASE)
            res.rc = tc[0].op_rv;
    }
    res.ms = pt_now_ms() - t0;
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    if (cv->approver_started) {
        pthread_join(cv->approver, NULL);
        cv->approver_started = 0;
    }
    res.log = pt_read_file(logf, NULL);
    if (!res.log)
        res.log = strdup("");
    {
        FILE *all = fopen(E.log_all, "a");
        if (all) {
            fprintf(all, "==== %s user=%s args=%s rc=%d\n%s", svc, user, args ? args : "", res.rc,
                    res.log);
            fclose(all);
        }
    }
    return res;
}

struct pt_result pt_pam(const char *user, const char *args, struct pt_conv *cv)
{
    return pt_pam_items(user, args, cv, NULL);
}

/* ---- a fake agent ---------------------------------------------------------------------- */

static void fa_send_raw(int fd, uint32_t n, const char *body, size_t len)
{
    unsigned char h[4] = { (unsigned char)(n >> 24), (unsigned char)(n >> 16),
                           (unsigned char)(n >> 8), (unsigned char)n };
    if (write(fd, h, 4) != 4 || (len && write(fd, body, len) != (ssize_t)len))
        return;
}

static void fa_serve(struct fake_agent *fa, int fd)
{
    for (;;) {
        json_object *req = NULL, *rep;
        if (fa->mode == FA_CLOSE && fa->after > 0 && fa->nreqs >= fa->after)
            return; /* the idle connection ends before the next request */
        if (pc_frame_read(fd, pc_now_ms() + 20000, &req) != 0)
            return;
        if (fa->nreqs < 16)
            fa->reqs[fa->nreqs++] = req;
        else
            json_object_put(req);
        enum fa_mode mode = fa->nreqs - 1 < fa->after ? FA_REPLY : fa->mode;
        switch (mode) {
        case FA_HANG:
            while (!fa->stop) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                char b[64];
                if (poll(&p, 1, 100) > 0 && read(fd, b, sizeof b) <= 0)
                    return;
            }
            return;
        case FA_CLOSE: return;
        case FA_GARBAGE: fa_send_raw(fd, 12, "hello world!", 12); continue;
        case FA_TOOBIG: fa_send_raw(fd, 0x7fffffffu, NULL, 0); continue;
        case FA_NOTOBJ: fa_send_raw(fd, 5, "[1,2]", 5); continue;
        case FA_SLOW:
            if (fa->nreqs > 1) {
                struct timespec ts = { fa->slow_ms / 1000, (fa->slow_ms % 1000) * 1000000L };
                nanosleep(&ts, NULL);
            }
            break;
        case FA_REPLY: break;
        }
        int i = fa->nreqs - 1 < fa->nreplies - 1 ? fa->nreqs - 1 : fa->nreplies - 1;
        rep = json_tokener_parse(fa->replies[i]);
        if (!rep || pc_frame_write(fd, rep, pc_now_ms() + 5000) != 0) {
            json_object_put(rep);
            return;
        }
        json_object_put(rep);
    }
}

static void *fa_thread(void *arg)
{
    struct fake_agent *fa = arg;

    while (!fa->stop) {
        struct pollfd p = { .fd = fa->lfd, .events = POLLIN };
        if (poll(&p, 1, 100) <= 0)
            continue;
        int fd = accept(fa->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        fa_serve(fa, fd);
        close(fd);
    }
    return NULL;
}

void fa_start(struct fake_agent *fa, enum fa_mode mode)
{
    static int counter;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };

    fa->mode = mode;
    snprintf(fa->path, sizeof fa->path, "%s/fake-%d.sock", E.root, ++counter);
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", fa->path);
    fa->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fa->lfd < 0 || bind(fa->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(fa->lfd, 8) != 0)
        pt_die("fake agent");
    pthread_create(&fa->th, NULL, fa_thread, fa);
}

void fa_stop(struct fake_agent *fa)
{
    fa->stop = 1;
    pthread_join(fa->th, NULL);
    close(fa->lfd);
    unlink(fa->path);
    for (int i = 0; i < fa->nreqs; i++)
        json_object_put(fa->reqs[i]);
    fa->nreqs = 0;
}

/* The op of the i-th request the fake agent received, or "". */
const char *fa_op(const struct fake_agent *fa, int i)
{
    const char *s = i < fa->nreqs ? pt_jstr(fa->reqs[i], "op") : NULL;
    return s ? s : "";
}
