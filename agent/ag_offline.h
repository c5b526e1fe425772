/* SPDX-License-Identifier: BSD-2-Clause */
/* Issue 13: decisions while the control plane is unreachable (see portcullis-agent(8),
 * "When the control plane is unreachable").
 *
 * While online, the maintenance thread keeps ssh_dir/offline.json (0600, replaced atomically)
 * from GET /v1/hosts/self/offline: our user CA key(s) and the (person, account, options) pairs
 * whose rules on this host say second_factor per-certificate. A successful KRL sync (changed or
 * not) sets revoked.krl's mtime: its age is the KRL's age.
 *
 * Used ONLY when the call to the control plane failed as unreachable or timed out (never on a
 * TLS failure or on any answer):
 *  - principals: a pair in the document, for a key (sshd's %f) registered to that person →
 *    that principal with the document's options, if the KRL is not older than
 *    offline_krl_max_age;
 *  - begin: the certificate sshd verified (SSH_AUTH_INFO_0) from our user CA, valid now, with
 *    2fa@portcullis, its key id and the PAM user a pair of the document, the KRL fresh → allow
 *    (certificate_2fa_offline); the KRL too old → deny (offline_krl_stale); anything else is
 *    not decided here (the module's failmode applies, as before).
 * Revocation by serial and key id is sshd's check (RevokedKeys, before the PAM step); the agent
 * refuses when the KRL sshd uses is older than the limit. */
#ifndef AG_OFFLINE_H
#define AG_OFFLINE_H
#include "ag_config.h"
#include "pc_sshkey.h"
#include <json-c/json.h>

#define AG_OFFLINE_FILE "offline.json"
#define AG_OFFLINE_MAX \
    (32u * 1024u * 1024u) /* bytes of the document (offline codes: ~400 KB \
                                                 a person at 72 h) */

/* Fetches and stores the document (maintenance thread). Logs its own errors. */
int ag_offline_sync(const struct ag_config *c);
/* After a successful KRL sync: revoked.krl's mtime becomes now. */
void ag_offline_krl_verified(const struct ag_config *c);
/* The KRL's age in seconds, or -1 if there is none. */
int64_t ag_offline_krl_age(const struct ag_config *c);

/* begin without the control plane: 1 decided (*action "allow"/"deny", *reason static, txid the
 * event's id, 33 bytes), 0 not. A decision is appended to the event queue and fsync'ed before
 * this returns; if that fails, nothing is decided (failmode applies). */
int ag_offline_begin(const struct ag_config *c, const char *user, const char *auth_info,
                     const char **action, const char **reason, char txid[33]);

/* The event queue: ssh_dir/offline-events.jsonl (0600, one JSON object a line, appended and
 * fsync'ed per decision). Upload (maintenance thread, while online): the queue is renamed to
 * offline-events.sending (unless that is still there from a failed or interrupted upload), POSTed
 * to /v1/hosts/self/offline/events, and removed once the control plane answered 200; the
 * control plane keeps each event id once, so a repeated upload is harmless. */
#define AG_OFFLINE_QUEUE "offline-events.jsonl"
#define AG_OFFLINE_SENDING "offline-events.sending"
int ag_offline_upload(const struct ag_config *c);
/* Appends one event (an object, one line) to the queue and fsyncs it; PC_OK or PC_ERR_IO /
 * PC_ERR_INVAL (logged). queue_append's offline decisions and ag_failmode.h's failmode reports
 * (issue 18) both go through it. */
int ag_offline_enqueue(const struct ag_config *c, json_object *ev);
/* Queued events not yet uploaded (both files), for `status`. */
int64_t ag_offline_queued(const struct ag_config *c);
/* principals without the control plane: PC_OK with *opts (malloc'ed JSON text of the options)
 * if the pair is in the document and the KRL is fresh; PC_ERR_NOTFOUND otherwise. */
int ag_offline_principals(const struct ag_config *c, const char *account, const char *key_id,
                          const char *fp, char **opts);

/* For `status`: the document's age in seconds (-1: none) and its number of people. */
void ag_offline_summary(const struct ag_config *c, int64_t *doc_age, int64_t *people,
                        int64_t *krl_age);

/* Shared with ag_offcodes.c: the stored document (checked) or NULL; one event appended to the
 * queue with fsync (step >= 0: the time step of an offline code). */
json_object *ag_offline_doc_load(const struct ag_config *c);
int ag_offline_queue_append(const struct ag_config *c, const char *id, const char *user,
                            const char *person, const char *action, const char *reason,
                            int64_t step);

/* 1 if auth_info holds a user certificate of the document's user CA, valid now, whose key id (a
 * name, also a principal) goes into person, its key's fingerprint into fp. */
int ag_offline_cert_person(json_object *doc, const char *auth_info, char *person, size_t psz,
                           char fp[PC_SSHKEY_FP_SIZE]);

/* ---- issue 13 step 2(b): offline codes (ag_offcodes.c) ---- */
/* The key options of (person, account) for a key with fingerprint fp if person's offline codes
 * cover account now (a login then still needs a code), or NULL. */
json_object *ag_offcodes_options(json_object *doc, const char *person, const char *account,
                                 const char *fp);
/* spent steps and failures, per person */
#define AG_OFFCODES_STATE "offline-codes-state.json"
#define AG_OFFCODES_LOCK_AFTER 5 /* wrong codes before a local lock */
/* 1 if the document's optional "offline_codes" array is well formed. */
int ag_offcodes_ok(json_object *doc);
/* Offline begin for user: 1 (and a fresh txid) if the document holds user's codes for now and
 * user is not locked here: the PAM module then prompts for a code as online. */
int ag_offcodes_begin(const struct ag_config *c, const char *user, const char *auth_info,
                      char txid[33]);
/* 1 if txid is an offline code challenge of this agent (ag_offcodes_begin, not expired). */
int ag_offcodes_pending(const char *txid);
/* Verifies code for the pending txid against the cached hashes of the steps now±1 (at most 3
 * slow hashes); spends the step (and all earlier ones) or counts the failure in the state file,
 * fsync'ed, then queues the decision; only then the reply. PC_OK with result and reason set;
 * an error: no decision (the caller refuses). */
int ag_offcodes_verify(const struct ag_config *c, const char *txid, const char *code,
                       const char **result, const char **reason);
/* people covered now, and the latest window end (unix time) among them; -1 without document */
void ag_offcodes_summary(const struct ag_config *c, int64_t *people, int64_t *until);

#endif
