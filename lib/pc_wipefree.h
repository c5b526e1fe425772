/* SPDX-License-Identifier: BSD-2-Clause */
/* Wipe on free: see lib/pc_wipefree.c. Linked into portcullisd and portcullis-agent only. */
#ifndef PC_WIPEFREE_H
#define PC_WIPEFREE_H

/* Sanitizers that intercept malloc/free (ASan, and TSan/MSan/HWASan, which do the same) must
 * keep their own free: with one of them the interposer compiles to nothing. GCC says so with
 * __SANITIZE_*__, clang with __has_feature(). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || defined(__SANITIZE_HWADDRESS__)
#define PC_WIPEFREE_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer) || __has_feature(hwaddress_sanitizer)
#define PC_WIPEFREE_SANITIZER 1
#endif
#endif

/* PC_WIPE_FREE: config.h, unless configured with --disable-wipe-free. */
#if defined(PC_WIPE_FREE) && !defined(PC_WIPEFREE_SANITIZER)
#define PC_WIPEFREE_ACTIVE 1
#endif

#endif
