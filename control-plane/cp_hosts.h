/* SPDX-License-Identifier: BSD-2-Clause */
/* Host certificates (enrollment, renewal), the principals decision for sshd's
 * AuthorizedPrincipalsCommand, and host labels. */
#ifndef CP_HOSTS_H
#define CP_HOSTS_H
#include "cp_ca.h"
#include "cp_tokens.h"
#include <json-c/json.h>
#include "cp_sql.h"
#include <stdint.h>

#define CP_HOST_MAX_PRINCIPALS 64

void cp_hosts_configure(int64_t host_cert_ttl);
/* A principal a host certificate may carry: a host name or address. */
/* In the caller's transaction: records key (and, with set_principals, hostname + extra as the
 * host's principals), then issues a host certificate (key id "host:<hostname>"). */
int cp_host_cert_issue(cp_conn *db, int64_t host_id, const char *hostname,
                       const struct pc_sshkey *key, json_object *extra, int set_principals,
                       const char *actor, const char *source, struct cp_issued *out);
/* POST /v1/hosts/self/renew. */
int cp_host_renew(const struct cp_identity *host, const char *source, const struct pc_sshkey *key,
                  struct cp_issued *out);
/* GET /v1/hosts/self/principals: *options (the caller's) is set if certificate serial (key
 * id, fingerprint fp unless NULL) is ours, unrevoked, its user enabled, and a rule lets key_id
 * in as account: the key options of the matching rules (cp_policy_host_options); else NULL. */
/* *grant_until > 0: only an access request's grant let key_id in, until then (the login is
 * audited as grant.login in its chain). */
int cp_host_principals(const struct cp_identity *host, const char *account, const char *key_id,
                       int64_t serial, const char *fp, json_object **options, int64_t *grant_until);
/* PATCH /v1/hosts/{id}: replaces the labels; *out is the host. */
int cp_host_set_labels(const struct cp_who *who, int64_t id, json_object *labels,
                       json_object **out);
/* DELETE /v1/hosts/{id}: the host is deleted (its name free again), its host token removed and
 * its host certificates revoked (KRL bumped); audited host.delete. *out: host_id, hostname and
 * the revoked serials. PC_ERR_NOTFOUND for no such (or an already deleted) host. */
int cp_host_delete(const struct cp_who *who, int64_t id, json_object **out);

#endif
