/* SPDX-License-Identifier: BSD-2-Clause */
/* The KRL sync: GET /v1/krl (binary) into ssh_dir/revoked.krl, which sshd reads as RevokedKeys.
 * An unreadable KRL makes sshd refuse every key, so the file is only ever replaced whole
 * (temp file, fsync, rename) by a KRL whose structure checked out; when the fetch or the check
 * fails the old file stays. */
#ifndef AG_KRL_H
#define AG_KRL_H
#include "ag_config.h"
#include <stddef.h>
#include <stdint.h>

#define AG_KRL_MAX (32u * 1024u * 1024u)

/* Checks an OpenSSH KRL's framing: magic, format version 1, header, then whole sections of
 * known types (certificates, explicit keys, SHA-1 and SHA-256 fingerprints; no signatures).
 * *version gets krl_version. */
int ag_krl_check(const unsigned char *data, size_t len, uint64_t *version);

/* Fetches the KRL and replaces revoked.krl if it differs. *changed says whether it did;
 * *version is the KRL's version. */
int ag_krl_sync(const struct ag_config *c, int *changed, uint64_t *version, char *err,
                size_t errsz);

#endif
