/* SPDX-License-Identifier: BSD-2-Clause */
/* Access policy: rules naming people (users, groups), local accounts and host labels.
 * Default deny: with no matching rule nobody gets principals or a certificate. */
#ifndef CP_POLICY_H
#define CP_POLICY_H
#include "cp_users.h"
#include "pc_json.h"
#include <json-c/json.h>
#include "cp_sql.h"
#include <stdint.h>

#define CP_POLICY_EXT_MAX 5

/* Checks a POST /v1/policies body and builds the canonical policy (defaults filled in).
 * PC_OK, or an error with e set for a 400. */
int cp_policy_validate(json_object *body, json_object **canon, struct pc_jerr *e);
/* Stores a canonical policy; *out gets it with "id". PC_ERR_EXISTS for a taken name. */
int cp_policy_add(const struct cp_who *who, json_object *canon, json_object **out);
int cp_policy_list(json_object **out);
int cp_policy_delete(const struct cp_who *who, int64_t id);

/* Evaluation, inside the caller's transaction. person may be unknown to the store (then only
 * "users" can name it). */
/* *allowed = 1 if a rule lets person log in as account on host_id. */
int cp_policy_allows(cp_conn *db, const char *person, const char *account, int64_t host_id,
                     int *allowed);
/* *ignore = 1 if at least one rule matches (person, account, host) and all of them say
 * require_2fa false. */
int cp_policy_no_2fa(cp_conn *db, const char *person, const char *account, int64_t host_id,
                     int *ignore);
/* Issue 13: *per_cert = 1 if at least one rule matches (person, account, host) and every one of
 * them says second_factor per-certificate (the stricter rule wins: one every-login prompts). */
int cp_policy_per_certificate(cp_conn *db, const char *person, const char *account, int64_t host_id,
                              int *per_cert);
/* Issue 13 step 2(b): *secs = the offline code window of (person, account, host): the shortest
 * offline_codes of the matching rules, 0 if none matches or any matching rule has none. */
int cp_policy_offline_codes(cp_conn *db, const char *person, const char *account, int64_t host_id,
                            int64_t *secs);

/* What a login as account on host_id may do, for the key options of sshd's principals line:
 * *opts = {"extensions": [permit-…], "source_address"?, "force_command"?} from the rules that
 * match (person, account, host) — the union of their extensions; the two values only when every
 * one of them sets the same (else, or when none matches, *opts = NULL: no principal). */
int cp_policy_host_options(cp_conn *db, const char *person, const char *account, int64_t host_id,
                           json_object **opts);
/* Access on request: when only grants (rules with requires_request) let person in here,
 * until = the latest end of those grants and request_id the grant's request; both 0/"" when a
 * standing rule matches too. */
struct cp_policy_grant {
    int64_t until;
    char request_id[33];
};
/* cp_policy_host_options, and *g (if not NULL, zeroed by the caller) as above. */
int cp_policy_host_grant_options(cp_conn *db, const char *person, const char *account,
                                 int64_t host_id, json_object **opts, struct cp_policy_grant *g);

/* What a login certificate may carry, from every rule that names person. */
struct cp_login_terms {
    int named;                          /* some rule names the person */
    int64_t max_ttl;                    /* the largest max_ttl */
    const char *ext[CP_POLICY_EXT_MAX]; /* union of extensions (static strings), sorted */
    size_t n_ext;
    char source_address[1025]; /* the value every rule naming the person sets ("" = none) */
    char force_command[1025];
    const char *conflict; /* non-NULL: rules disagree on this option; issue nothing */
    int64_t grant_until;  /* > 0: only grants let the person in; no certificate outlives this */
};
int cp_policy_login_terms(cp_conn *db, const char *person, struct cp_login_terms *t);

/* The first rule (lowest id) with requires_request that names person, holds account (or $user
 * for the person's own name) and whose hosts agree with the selector sel (a labels object) on
 * every label both name. *rule (a reference) or PC_ERR_NOTFOUND. */
int cp_policy_request_rule(cp_conn *db, const char *person, const char *account, json_object *sel,
                           json_object **rule);

/* The rules that let person log in as account on host_id: a JSON array of
 * {"name", "require_2fa"} (empty when none does). */
int cp_policy_matching(cp_conn *db, const char *person, const char *account, int64_t host_id,
                       json_object **rules);
/* cp_policy_no_2fa's answer from cp_policy_matching's array (auth/begin evaluates the rules
 * once for both). */
int cp_policy_rules_no_2fa(json_object *rules);

#endif
