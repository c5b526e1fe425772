/* SPDX-License-Identifier: BSD-2-Clause */
/* The KRL sync: GET /v1/krl (binary) into ssh_dir/revoked.krl, which sshd reads as RevokedKeys.
 * An unreadable KRL makes sshd refuse every key, so the file is only ever replaced whole
 * (temp file, fsync, rename) by a KRL whose structure checked out (pc_krl_check); when the
 * fetch or the check fails the old file stays. */
#ifndef AG_KRL_H
#define AG_KRL_H
#include "ag_config.h"
#include "pc_krl.h"
#include <stddef.h>
#include <stdint.h>

#define AG_KRL_MAX PC_KRL_MAX_BYTES /* 32 MiB: what pc_krl_check() takes */

/* Fetches the KRL and replaces revoked.krl if it differs. *changed says whether it did;
 * *version is the KRL's version. */
int ag_krl_sync(const struct ag_config *c, int *changed, uint64_t *version, char *err,
                size_t errsz);

#endif
