/* SPDX-License-Identifier: BSD-2-Clause */
/* Wipe on free, for portcullisd and portcullis-agent only.
 *
 * Why: our own buffers that held a secret are wiped before they are freed (lib/pc_mem), but the
 * libraries we hand secrets to free their copies as they are: json-c (the tokener's and
 * printbuf's buffers, grown with realloc), libcurl (request and response buffers) and OpenSSL
 * (TLS buffers holding decrypted records). One-time codes, TOTP seeds and the
 * otpauth:// URI returned at enrollment would then sit in freed heap until the allocator hands
 * the chunk out again — readable in a core dump or by anything that can read the process.
 *
 * What: this file interposes free and realloc in the executable. The linker exports a function
 * the executable defines and a shared library it links against uses, so every such library
 * (json-c, libcurl, libcrypto, libmicrohttpd, sqlite, ...) binds its free/realloc to these.
 *   free(p)       wipes malloc_usable_size(p) bytes (explicit_bzero), then glibc's __libc_free.
 *   realloc(p,n)  p == NULL: malloc(n); n == 0: free(p), NULL; n <= usable size: p, unchanged;
 *                 else a new block: malloc(n), copy the old usable bytes, free(p) (wiping).
 *                 glibc's realloc would move or shrink the block without wiping the old bytes.
 * Nothing else is replaced: malloc, calloc, memalign, posix_memalign and aligned_alloc stay
 * glibc's, and __libc_free accepts every chunk they return.
 *
 * Not covered:
 *   - memory glibc releases internally without going through the free/realloc symbols:
 *     reallocarray() calls glibc's own realloc, so a block it moves is not wiped (checked on
 *     glibc 2.36), and likewise any other internal path that calls __libc_free directly;
 *   - memory that is never freed (live buffers, stacks, stdio's buffers of stdin/stdout) and
 *     copies outside the heap (kernel socket buffers, registers);
 *   - pages swapped out while a secret was in them: locking memory (mlock) is out of scope.
 * Cost: a memset of each freed block, and realloc growth always copies (glibc can often grow
 * in place); `make bench` measures malloc/free with and without.
 *
 * Never in the PAM module (a PAM module must not replace sshd's allocator) nor in the CLI.
 * Compiled out under sanitizers that intercept malloc/free (lib/pc_wipefree.h) and with
 * ./configure --disable-wipe-free: then this file is empty and glibc's free/realloc are used. */
#include "config.h"
#include "pc_wipefree.h"

#ifdef PC_WIPEFREE_ACTIVE
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

/* glibc's own free (free is an alias of it in libc.so.6). */
extern void __libc_free(void *p);

void free(void *p)
{
    if (!p)
        return;
    explicit_bzero(p, malloc_usable_size(p));
    __libc_free(p);
}

void *realloc(void *p, size_t n)
{
    size_t have;
    void *q;

    if (!p)
        return malloc(n);
    if (n == 0) {
        free(p);
        return NULL;
    }
    have = malloc_usable_size(p);
    if (n <= have)
        return p; /* shrinking (or growing within the chunk): keep it in place */
    q = malloc(n);
    if (!q) {
        errno = ENOMEM; /* p stays valid and untouched, as realloc promises */
        return NULL;
    }
    memcpy(q, p, have);
    free(p);
    return q;
}
#endif
