/* SPDX-License-Identifier: BSD-2-Clause */
/* Signs N user certificates with an in-process Ed25519 CA and prints the rate.
 * Usage: bench_cert_sign [N]   (default 20000). Output, one line, machine-readable:
 *   portcullis_cert_sign n=N seconds=S certs_per_sec=R */
#include "config.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "pc_cert.h"
#include "pc_err.h"
#include "pc_sshkey.h"
#include "pc_time.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    static const char *const principals[] = { "alice" };
    struct pc_sshkey *ca = NULL, *user = NULL;
    struct pc_cert_req req = { 0 };
    long n = 20000;
    double t0, dt;
    int rc;

    if (argc > 1) {
        char *end = NULL;
        n = strtol(argv[1], &end, 10);
        if (!end || *end || n <= 0) {
            fprintf(stderr, "usage: %s [N]\n", argv[0]);
            return 2;
        }
    }
    if ((rc = pc_sshkey_generate(PC_KEY_ED25519, &ca)) != 0 ||
        (rc = pc_sshkey_generate(PC_KEY_ED25519, &user)) != 0) {
        fprintf(stderr, "keygen: %s\n", pc_strerror(rc));
        return 1;
    }
    req.type = PC_CERT_USER;
    req.subject = user;
    req.key_id = "alice";
    req.principals = principals;
    req.n_principals = 1;
    req.extensions = pc_cert_default_user_extensions;
    req.n_extensions = pc_cert_default_user_extensions_count;
    t0 = now_s();
    for (long i = 0; i < n; i++) {
        char *line = NULL;
        req.serial = (uint64_t)i + 1;
        if ((rc = pc_cert_validity(pc_now(), -1, 3600, &req.valid_after, &req.valid_before)) != 0 ||
            (rc = pc_cert_sign_line(&req, ca, NULL, &line)) != 0) {
            fprintf(stderr, "sign: %s\n", pc_strerror(rc));
            return 1;
        }
        free(line);
    }
    dt = now_s() - t0;
    printf("portcullis_cert_sign n=%ld seconds=%.3f certs_per_sec=%.0f\n", n, dt, (double)n / dt);
    pc_sshkey_free(ca);
    pc_sshkey_free(user);
    return 0;
}
