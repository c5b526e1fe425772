/* SPDX-License-Identifier: BSD-2-Clause */
/* The one bounds-checked buffer for SSH wire formats (RFC 4251 section 5): keys, signatures,
 * certificates (PROTOCOL.certkeys), SSHSIG (PROTOCOL.sshsig) and KRLs (PROTOCOL.krl).
 *
 * A buffer is either a writer (owns a growable array; puts append) or a reader (borrows
 * caller memory; gets advance a cursor). Errors are sticky: after the first failure every
 * later put/get fails with the same code and writes nothing to its out-parameters, so a
 * sequence of calls can be checked once at the end with pc_sshbuf_error().
 *
 *   struct pc_sshbuf b;
 *   pc_sshbuf_init(&b, 0);
 *   pc_sshbuf_put_cstring(&b, "ssh-ed25519");
 *   pc_sshbuf_put_string(&b, pk, 32);
 *   if ((rc = pc_sshbuf_error(&b)) != 0) goto out;
 *
 * Reads never run past the end: an underflow is PC_ERR_PARSE. Strings returned by
 * pc_sshbuf_get_string() point into the reader's memory (valid while it is).
 *
 * Text is written the same way (pc_sshbuf_putf, pc_sshbuf_put_raw): a writer keeps a NUL
 * after its contents (not counted in len or against max): pc_sshbuf_cstr() is the text, and
 * what pc_sshbuf_steal() hands over is a C string too (NULL if nothing was ever written). */
#ifndef PC_SSHBUF_H
#define PC_SSHBUF_H
#include <stddef.h>
#include <stdint.h>
#include <openssl/bn.h>

#define PC_SSHBUF_DEFAULT_MAX (1024u * 1024u)     /* writers: default size bound */
#define PC_SSHBUF_HARD_MAX (64u * 1024u * 1024u)  /* no buffer ever grows beyond this */
#define PC_SSHBUF_MPINT_MAX_BYTES (16384 / 8 + 1) /* 16384-bit magnitude plus the sign pad */

struct pc_sshbuf {
    unsigned char *data; /* writer: owned; reader: borrowed */
    size_t len;          /* bytes written (writer) / total bytes (reader) */
    size_t cap;          /* allocated bytes (writer) */
    size_t off;          /* read cursor (both kinds: a writer can be read back) */
    size_t max;          /* writer size bound */
    int err;             /* sticky error, 0 while healthy */
    unsigned owned : 1;  /* writer */
    unsigned secret : 1; /* wipe on grow and free */
};

/* A writer bounded by max bytes (0: PC_SSHBUF_DEFAULT_MAX; capped at PC_SSHBUF_HARD_MAX). */
void pc_sshbuf_init(struct pc_sshbuf *b, size_t max);
/* A writer for secret material: old storage is wiped on growth, contents wiped on free. */
void pc_sshbuf_init_secret(struct pc_sshbuf *b, size_t max);
/* A reader over len bytes at data (not copied, not freed). */
void pc_sshbuf_init_reader(struct pc_sshbuf *b, const void *data, size_t len);
/* Frees a writer (wiping if secret); a reader is just reset. Safe on a zeroed struct. */
void pc_sshbuf_free(struct pc_sshbuf *b);
/* Empties a writer (keeps storage, wipes if secret) and clears the sticky error. */
void pc_sshbuf_reset(struct pc_sshbuf *b);

int pc_sshbuf_error(const struct pc_sshbuf *b);
/* Whole contents of a writer / reader. */
const unsigned char *pc_sshbuf_ptr(const struct pc_sshbuf *b);
size_t pc_sshbuf_len(const struct pc_sshbuf *b);
/* A writer's contents as a C string: "" when empty (NULL for a reader). For text: an embedded
 * NUL ends the string early, pc_sshbuf_len() still counts past it. */
const char *pc_sshbuf_cstr(const struct pc_sshbuf *b);
/* Unread bytes and their start. */
size_t pc_sshbuf_remaining(const struct pc_sshbuf *b);
const unsigned char *pc_sshbuf_cursor(const struct pc_sshbuf *b);
/* PC_ERR_PARSE if unread bytes remain (trailing data), else the sticky error. */
int pc_sshbuf_expect_end(struct pc_sshbuf *b);
/* Hands the writer's storage to the caller (*out malloc'ed, may be NULL when empty);
 * the buffer is left empty. Fails with the sticky error, if any. */
int pc_sshbuf_steal(struct pc_sshbuf *b, unsigned char **out, size_t *len);

/* ---- writing ---------------------------------------------------------------------------- */
int pc_sshbuf_put_u8(struct pc_sshbuf *b, uint8_t v);
int pc_sshbuf_put_u32(struct pc_sshbuf *b, uint32_t v);
int pc_sshbuf_put_u64(struct pc_sshbuf *b, uint64_t v);
int pc_sshbuf_put_bool(struct pc_sshbuf *b, int v); /* 1 byte: 0 or 1 */
/* Raw bytes, no length prefix. */
int pc_sshbuf_put_raw(struct pc_sshbuf *b, const void *p, size_t n);
/* printf-style text, no length prefix and no NUL counted. Bounded by the writer's max like
 * every put: output that does not fit is PC_ERR_TOOBIG and leaves the contents unchanged
 * (the error is sticky). A format vsnprintf refuses is PC_ERR_INVAL. Put secret material
 * with pc_sshbuf_put_raw, not as a %s argument: vsnprintf's scratch space is not wiped. */
int pc_sshbuf_putf(struct pc_sshbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* uint32 length + bytes. Lengths above UINT32_MAX are PC_ERR_TOOBIG. */
int pc_sshbuf_put_string(struct pc_sshbuf *b, const void *p, size_t n);
/* A NUL-terminated C string as an SSH string (without the NUL). */
int pc_sshbuf_put_cstring(struct pc_sshbuf *b, const char *s);
/* The contents of another buffer as an SSH string ("string containing a buffer"). */
int pc_sshbuf_put_buf(struct pc_sshbuf *b, const struct pc_sshbuf *inner);
/* A non-negative integer given as big-endian magnitude bytes (leading zeros allowed):
 * written minimally, with a 0x00 pad when the top bit is set; zero is the empty string. */
int pc_sshbuf_put_mpint(struct pc_sshbuf *b, const unsigned char *mag, size_t n);
int pc_sshbuf_put_bignum(struct pc_sshbuf *b, const BIGNUM *bn); /* negative: PC_ERR_INVAL */

/* ---- reading ---------------------------------------------------------------------------- */
int pc_sshbuf_get_u8(struct pc_sshbuf *b, uint8_t *v);
int pc_sshbuf_get_u32(struct pc_sshbuf *b, uint32_t *v);
int pc_sshbuf_get_u64(struct pc_sshbuf *b, uint64_t *v);
/* Strict: a byte other than 0 or 1 is PC_ERR_PARSE. */
int pc_sshbuf_get_bool(struct pc_sshbuf *b, int *v);
/* Exactly n raw bytes copied to out. */
int pc_sshbuf_get_raw(struct pc_sshbuf *b, void *out, size_t n);
/* A string, returned in place: *p points into the reader (NULL allowed when *len is 0). */
int pc_sshbuf_get_string(struct pc_sshbuf *b, const unsigned char **p, size_t *len);
/* A string copied to malloc'ed memory (NUL-terminated for convenience, not counted). */
int pc_sshbuf_get_string_dup(struct pc_sshbuf *b, unsigned char **out, size_t *len);
/* A string that must not contain NUL, as a malloc'ed C string. */
int pc_sshbuf_get_cstring(struct pc_sshbuf *b, char **out);
/* A string that must equal the C string want exactly (else PC_ERR_PARSE). */
int pc_sshbuf_get_expect_cstring(struct pc_sshbuf *b, const char *want);
/* A string opened as a nested reader over the same memory. */
int pc_sshbuf_get_sub(struct pc_sshbuf *b, struct pc_sshbuf *sub);
/* An mpint that must be non-negative and minimally encoded; returns the magnitude in place
 * (without the sign pad; zero has *len == 0). At most PC_SSHBUF_MPINT_MAX_BYTES. */
int pc_sshbuf_get_mpint(struct pc_sshbuf *b, const unsigned char **mag, size_t *len);
int pc_sshbuf_get_bignum(struct pc_sshbuf *b, BIGNUM **out);

/* ---- base64 (standard alphabet, padded, no whitespace) ------------------------------------ */
/* *out is a malloc'ed NUL-terminated string. */
int pc_base64_encode(const void *data, size_t len, char **out);
/* Strict: length a multiple of 4, only alphabet characters, '=' only as final padding,
 * unused bits in the last symbol zero. *out is malloc'ed (may be NULL when *outlen is 0). */
int pc_base64_decode(const char *in, size_t inlen, unsigned char **out, size_t *outlen);

#endif
