/* SPDX-License-Identifier: BSD-2-Clause */
/* The KRL reader (pc_krl_check in lib/pc_krl.c): what the agent checks in the KRL it fetches
 * before installing it for sshd's RevokedKeys. */
#include "config.h"
#include "fuzz.h"
#include "pc_err.h"
#include "pc_krl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t version = 0;

    (void)pc_krl_check(data, size, &version);
    return 0;
}
