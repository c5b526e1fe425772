/* SPDX-License-Identifier: BSD-2-Clause */
/* Retention: login transactions, pushes, `portcullis login` logins and sessions whose expiry
 * lies more than --retention in the past are deleted (by then each is finished: denied,
 * allowed, expired or used). Audit rows are never deleted. */
#ifndef CP_RETENTION_H
#define CP_RETENTION_H
#include <stdint.h>

#define CP_RETENTION_BATCH 500  /* rows per DELETE: the write lock is held briefly */
#define CP_RETENTION_BATCHES 20 /* DELETEs per table and run */

void cp_retention_configure(int64_t seconds);
/* One run over every table (housekeeping thread, about once a minute). */
void cp_retention_prune(void);

#endif
