/* SPDX-License-Identifier: BSD-2-Clause */
/* Shared by the libFuzzer targets in tests/fuzz/ (see README.md there). */
#ifndef PC_FUZZ_H
#define PC_FUZZ_H
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input as a NUL-terminated string (the parsers of text lines take C strings; a NUL in
 * the input just ends the string early). abort() on no memory: a fuzzer has nothing to go on. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
