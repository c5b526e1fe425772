/* SPDX-License-Identifier: BSD-2-Clause */
/* Request handlers, one per route. Each fills a cp_resp; none blocks on the network. */
#ifndef CP_API_H
#define CP_API_H
#include "cp_request.h"
#include "cp_settings.h"
#include "cp_tls.h"

/* Process-wide facts the handlers need. */
struct cp_runtime {
    const struct cp_settings *settings;
    char pin[CP_PIN_MAX];
};
extern struct cp_runtime cp_rt;

typedef void (*cp_handler)(struct cp_call *c, struct cp_resp *r);

/* api_public.c */
void api_health(struct cp_call *c, struct cp_resp *r);
void api_enroll(struct cp_call *c, struct cp_resp *r);
/* api_auth.c: the /v1/auth endpoints, the agent's PAM login transactions */
void api_auth_begin(struct cp_call *c, struct cp_resp *r);
void api_auth_totp(struct cp_call *c, struct cp_resp *r);
void api_auth_push(struct cp_call *c, struct cp_resp *r);
void api_push_poll(struct cp_call *c, struct cp_resp *r);
/* The long-polls' ?wait=SECONDS (0 when absent); on a bad value answers 400 and fails. */
int api_wait_param(struct cp_call *c, struct cp_resp *r, uint64_t *wait);
/* 1 (with a 429 rate_limited and Retry-After in r) when the calling host is over its
 * --auth-rate; else 0, and the request is counted. */
int api_auth_over_rate(struct cp_call *c, struct cp_resp *r);
/* api_admin_users.c */
void api_users_list(struct cp_call *c, struct cp_resp *r);
void api_users_add(struct cp_call *c, struct cp_resp *r);
void api_user_get(struct cp_call *c, struct cp_resp *r);
void api_user_patch(struct cp_call *c, struct cp_resp *r);
void api_user_delete(struct cp_call *c, struct cp_resp *r);
void api_user_totp(struct cp_call *c, struct cp_resp *r);
/* api_admin_misc.c */
void api_info(struct cp_call *c, struct cp_resp *r);
void api_approvals_list(struct cp_call *c, struct cp_resp *r);
void api_approval_approve(struct cp_call *c, struct cp_resp *r);
void api_approval_deny(struct cp_call *c, struct cp_resp *r);
void api_tokens_create(struct cp_call *c, struct cp_resp *r);
void api_hosts_list(struct cp_call *c, struct cp_resp *r);
void api_audit(struct cp_call *c, struct cp_resp *r);
/* A labels object: at most 32 string values, clean keys and values. */
int api_labels_valid(json_object *labels);
/* api_ca.c: CA keys, KRL, certificates, policies */
void api_ca_user_pub(struct cp_call *c, struct cp_resp *r);
void api_ca_host_pub(struct cp_call *c, struct cp_resp *r);
/* CA rotation (admin): GET ca, POST ca/{user,host}/rotate, POST ca/{user,host}/finish */
void api_ca_status(struct cp_call *c, struct cp_resp *r);
void api_ca_rotate(struct cp_call *c, struct cp_resp *r);
void api_ca_finish(struct cp_call *c, struct cp_resp *r);
void api_krl(struct cp_call *c, struct cp_resp *r);
void api_krl_host(struct cp_call *c, struct cp_resp *r);
void api_certs_list(struct cp_call *c, struct cp_resp *r);
void api_certs_revoke(struct cp_call *c, struct cp_resp *r);
void api_policies_list(struct cp_call *c, struct cp_resp *r);
void api_policies_add(struct cp_call *c, struct cp_resp *r);
void api_policy_delete(struct cp_call *c, struct cp_resp *r);
/* api_login.c: user SSH keys, `portcullis login`, sessions */
void api_user_keys_list(struct cp_call *c, struct cp_resp *r);
void api_user_keys_add(struct cp_call *c, struct cp_resp *r);
void api_user_keys_delete(struct cp_call *c, struct cp_resp *r);
void api_login_start(struct cp_call *c, struct cp_resp *r);
void api_login_finish(struct cp_call *c, struct cp_resp *r);
void api_login_poll(struct cp_call *c, struct cp_resp *r);
void api_session(struct cp_call *c, struct cp_resp *r);
/* api_hosts.c: host certificates, principals, labels */
void api_host_principals(struct cp_call *c, struct cp_resp *r);
void api_host_renew(struct cp_call *c, struct cp_resp *r);
void api_host_offline(struct cp_call *c, struct cp_resp *r);        /* issue 13 */
void api_host_offline_events(struct cp_call *c, struct cp_resp *r); /* issue 13 */
void api_host_patch(struct cp_call *c, struct cp_resp *r);
void api_host_delete(struct cp_call *c, struct cp_resp *r);
/* api_access.c: access on request, /v1/requests */
void api_request_create(struct cp_call *c, struct cp_resp *r);
void api_requests_list(struct cp_call *c, struct cp_resp *r);
void api_request_approve(struct cp_call *c, struct cp_resp *r);
void api_request_deny(struct cp_call *c, struct cp_resp *r);
void api_request_revoke(struct cp_call *c, struct cp_resp *r);
/* api_webpush.c: Web Push, /v1/webpush (VAPID key; a session's own subscriptions) */
void api_webpush_vapid_key(struct cp_call *c, struct cp_resp *r);
void api_webpush_subscribe(struct cp_call *c, struct cp_resp *r);
void api_webpush_list(struct cp_call *c, struct cp_resp *r);
void api_webpush_unsubscribe(struct cp_call *c, struct cp_resp *r);
/* api_setup.c: GET /v1/setup.sh, the installer with this server's URL and pin */
void api_setup_script(struct cp_call *c, struct cp_resp *r);
/* api_metrics.c: GET /metrics (outside /v1), admin token or --metrics-allow */
void api_metrics(struct cp_call *c, struct cp_resp *r);
/* api_explain.c: GET /v1/audit/explain/{txid} */
void api_audit_explain(struct cp_call *c, struct cp_resp *r);

/* The reply to a push decision (approve/deny) of cp_push_decide*, for the API and the web app:
 * 409 when the push is no longer pending, the error of rc, else {"push_id","state"}
 * (api_admin_misc.c). */
void cp_resp_push_decided(struct cp_resp *r, int rc, const char *push_id, const char *state);

#endif
