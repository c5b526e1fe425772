/* SPDX-License-Identifier: BSD-2-Clause */
/* Secure memory helpers: wipe before free, for anything that held a secret. */
#ifndef PC_MEM_H
#define PC_MEM_H
#include <stddef.h>

void pc_wipe(void *p, size_t n);        /* explicit_bzero, never optimised away */
void pc_free_secret(void *p, size_t n); /* wipe n bytes, then free; NULL is fine */
void pc_free_secret_str(char *s);       /* wipe strlen(s) bytes, then free */

#endif
