/* SPDX-License-Identifier: BSD-2-Clause */
/* PAM decisions in-process, for bench/run-all.sh: pam_start_confdir (a private configuration
 * directory, nothing under /etc/pam.d) + pam_authenticate + pam_end, N times, a fresh right
 * TOTP code per call from the users' secrets (time steps now-9 … now+10 in order, one per call
 * and user; the modules are set up to accept that window).
 *   bench_pam SERVICE CONFDIR USERS N
 *     USERS: lines "NAME SECRET-HEX"
 * Result line: "pam SERVICE ok=N failed=N seconds=S per_sec=R us_per_call=U start_us=A
 * authenticate_us=B end_us=C" (A, B, C: the mean time in pam_start_confdir, pam_authenticate and
 * pam_end, where a module's cost lies). */
#include "config.h"
#include "pc_totp.h"
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct user {
    char name[64];
    unsigned char secret[64];
    size_t slen;
    long long next_step;
};

static char code[8];
/* time in pam_start_confdir, pam_authenticate, pam_end: where a module's cost lies */
static double t_start, t_auth, t_end;

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *ctx)
{
    struct pam_response *r = calloc((size_t)n, sizeof *r);
    (void)ctx;
    if (!r)
        return PAM_BUF_ERR;
    for (int i = 0; i < n; i++)
        if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF || msg[i]->msg_style == PAM_PROMPT_ECHO_ON)
            r[i].resp = strdup(code);
    *resp = r;
    return PAM_SUCCESS;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    struct pam_conv pc = { conv, NULL };
    struct user *u = NULL;
    size_t nu = 0, cap = 0;
    long n, ok = 0, failed = 0;
    char line[512];
    long long step0 = (long long)(time(NULL) / 30);
    FILE *f;
    double t0, dt, calls;

    if (argc != 5 || (n = atol(argv[4])) <= 0 || !(f = fopen(argv[3], "r")))
        return fprintf(stderr, "usage: bench_pam SERVICE CONFDIR USERS N\n"), 2;
    if (pc_totp_init() != 0) {
        fclose(f);
        return 1;
    }
    while (fgets(line, sizeof line, f)) {
        char *save = NULL, *name = strtok_r(line, " \n", &save),
             *hex = strtok_r(NULL, " \n", &save);
        if (!name || !hex)
            continue;
        if (nu == cap) {
            struct user *nuv = realloc(u, (cap = cap ? cap * 2 : 64) * sizeof *u);
            if (!nuv) {
                free(u);
                fclose(f);
                return 1;
            }
            u = nuv;
        }
        snprintf(u[nu].name, sizeof u[nu].name, "%s", name);
        u[nu].slen = 0;
        for (; hex[0] && hex[1] && u[nu].slen < sizeof u[nu].secret; hex += 2) {
            unsigned v;
            if (sscanf(hex, "%2x", &v) != 1)
                break;
            u[nu].secret[u[nu].slen++] = (unsigned char)v;
        }
        u[nu].next_step = step0 - 9; /* one step boundary may pass during the run */
        nu++;
    }
    fclose(f);
    if (!nu)
        return 1;
    t0 = now_s();
    for (long i = 0; i < n; i++) {
        struct user *x = &u[(size_t)i % nu];
        pam_handle_t *h = NULL;
        double a0, a1, a2, a3;
        int rc;
        if (x->next_step > step0 + 10)
            break; /* every fresh code used */
        pc_totp_code(x->secret, x->slen, x->next_step++ * 30, code, sizeof code);
        a0 = now_s();
        if ((rc = pam_start_confdir(argv[1], x->name, &pc, argv[2], &h)) != PAM_SUCCESS)
            return fprintf(stderr, "pam_start_confdir: %d\n", rc), 1;
        a1 = now_s();
        rc = pam_authenticate(h, PAM_SILENT);
        a2 = now_s();
        if (rc == PAM_SUCCESS)
            ok++;
        else if (failed++ < 3)
            fprintf(stderr, "bench_pam %s %s: %s\n", argv[1], x->name, pam_strerror(h, rc));
        pam_end(h, rc);
        a3 = now_s();
        t_start += a1 - a0;
        t_auth += a2 - a1;
        t_end += a3 - a2;
    }
    dt = now_s() - t0;
    calls = (double)((ok + failed) ? (ok + failed) : 1);
    printf("pam %s ok=%ld failed=%ld seconds=%.3f per_sec=%.1f us_per_call=%.1f start_us=%.1f"
           " authenticate_us=%.1f end_us=%.1f\n",
           argv[1], ok, failed, dt, (double)(ok + failed) / dt, dt * 1e6 / calls,
           t_start * 1e6 / calls, t_auth * 1e6 / calls, t_end * 1e6 / calls);
    return failed && !ok ? 1 : 0;
}
