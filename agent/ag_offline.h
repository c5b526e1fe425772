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
#include <json-c/json.h>

#define AG_OFFLINE_FILE "offline.json"
#define AG_OFFLINE_MAX (4u * 1024u * 1024u) /* bytes of the document */

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

#endif
