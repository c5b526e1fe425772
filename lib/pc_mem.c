/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "pc_mem.h"
#include <stdlib.h>
#include <string.h>

void pc_wipe(void *p, size_t n)
{
    if (p && n)
        explicit_bzero(p, n);
}

void pc_free_secret(void *p, size_t n)
{
    if (!p)
        return;
    pc_wipe(p, n);
    free(p);
}

void pc_free_secret_str(char *s)
{
    if (s)
        pc_free_secret(s, strlen(s));
}
