/* SPDX-License-Identifier: BSD-2-Clause */
/* The daemon's background work, one thread beside the socket server:
 *  - every krl_interval: GET /v1/krl into ssh_dir/revoked.krl (ag_krl.h), GET /v1/ca/user.pub
 *    into ssh_dir/user_ca.pub (exactly the user CA's trusted keys beside other keys there) and
 *    GET /v1/ca/host.pub into ssh_dir/host_ca.pub; only once ssh_dir/user_ca.pub exists
 *    (enroll writes it), so a host that does not use the CA is left alone;
 *  - the host certificate (ssh_dir/host-cert.pub, when it exists and host_key is set) is renewed
 *    at 2/3 of its lifetime, minus a random jitter of up to 1/20 of it; failures are retried
 *    with backoff (1 min doubling to 1 h), a success is not repeated within AG_RENEW_MIN_GAP_S;
 *    after a changed certificate, reload_command runs. A certificate whose CA key is no longer
 *    in host_ca.pub (a finished host CA rotation) is renewed at once. */
#ifndef AG_MAINT_H
#define AG_MAINT_H
#include "ag_config.h"

#define AG_RENEW_MIN_GAP_S 60
#define AG_RENEW_RETRY_MIN_S 60
#define AG_RENEW_RETRY_MAX_S 3600

struct ag_maint;

int ag_maint_start(const struct ag_config *cfg, struct ag_maint **out);
/* Stops the thread (waits for a call in flight to end) and frees m. */
void ag_maint_stop(struct ag_maint *m);

/* One renewal now (the `renew` command and the thread): syncs user_ca.pub and host_ca.pub,
 * renews, writes host-cert.pub, runs
 * reload_command if the certificate changed and reload is set. Prints nothing; logs. */
int ag_maint_renew_once(const struct ag_config *cfg, int reload, int64_t *serial, char *err,
                        size_t errsz);

/* user_ca.pub and host_ca.pub (where they exist) to the control plane's current CA key sets
 * (both keys during a rotation's overlap); logs a failure and leaves the files. */
int ag_maint_sync_cas(const struct ag_config *cfg);

#endif
