/* SPDX-License-Identifier: BSD-2-Clause */
/* OpenSSH public keys, CA private keys and SSH signatures, on OpenSSL 3.
 *
 * Supported key types (wire names): ssh-ed25519, ecdsa-sha2-nistp256, ecdsa-sha2-nistp384,
 * ecdsa-sha2-nistp521, ssh-rsa (modulus 2048..16384 bits). DSA, FIDO (sk-*) and certificate
 * types are refused here (certificates live in pc_cert.h).
 *
 * Public key blob layouts: RFC 4253 6.6 (ssh-rsa: string type, mpint e, mpint n),
 * RFC 5656 3.1 (ecdsa: string type, string curve id, string Q uncompressed), RFC 8709
 * (ssh-ed25519: string type, string 32-byte key). Signature blobs: string algorithm,
 * string signature; for ECDSA the inner string holds mpint r, mpint s (RFC 5656 3.1.2).
 *
 * Signing: Ed25519 → "ssh-ed25519"; ECDSA → "ecdsa-sha2-nistpNNN" with SHA-256/384/512 for
 * P-256/384/521; RSA → "rsa-sha2-512" always (never the SHA-1 "ssh-rsa").
 * Verifying: the same, and "rsa-sha2-256"; "ssh-rsa" (SHA-1) is refused. */
#ifndef PC_SSHKEY_H
#define PC_SSHKEY_H
#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

struct pc_sshbuf;

enum pc_keytype {
    PC_KEY_UNKNOWN = 0,
    PC_KEY_ED25519,
    PC_KEY_ECDSA_P256,
    PC_KEY_ECDSA_P384,
    PC_KEY_ECDSA_P521,
    PC_KEY_RSA,
};

#define PC_RSA_MIN_BITS 2048
#define PC_RSA_MAX_BITS 16384
#define PC_RSA_CA_BITS 3072
#define PC_SSHKEY_BLOB_MAX 4096  /* largest public key blob we accept */
#define PC_SSHKEY_LINE_MAX 16384 /* largest "TYPE BASE64 comment" line we accept */
/* "SHA256:" + 43 unpadded base64 characters + NUL */
#define PC_SSHKEY_FP_SIZE 51

struct pc_sshkey {
    enum pc_keytype type;
    EVP_PKEY *pkey;  /* owned; public, or private for CA keys */
    int has_private; /* pkey holds private material (generated or loaded) */
};

/* Wire name of a key type ("ssh-ed25519" …), NULL for PC_KEY_UNKNOWN. */
const char *pc_sshkey_type_name(enum pc_keytype t);
/* ECDSA curve identifier ("nistp256" …), NULL for other types. */
const char *pc_sshkey_curve_name(enum pc_keytype t);
/* Type from a wire name (exact match, n bytes); PC_KEY_UNKNOWN if not supported. */
enum pc_keytype pc_sshkey_type_from_name(const char *name, size_t n);
/* Short name as ssh-keygen prints it: "ED25519", "ECDSA", "RSA". */
const char *pc_sshkey_type_label(enum pc_keytype t);
/* Signature algorithm name this library uses when signing with a key of type t. */
const char *pc_sshkey_sig_alg(enum pc_keytype t);

void pc_sshkey_free(struct pc_sshkey *k);

/* ---- public keys ---------------------------------------------------------------------- */
/* A whole public key blob; trailing bytes, unknown types, bad points, short RSA refused
 * (PC_ERR_PARSE for malformed, PC_ERR_INVAL for a well-formed but refused key). */
int pc_sshkey_from_blob(const unsigned char *blob, size_t len, struct pc_sshkey **out);
/* The key material that follows the type name, for type t, read from b (used by
 * pc_cert, whose blobs carry the key fields after a nonce). Does not check for the end. */
int pc_sshkey_read_fields(struct pc_sshbuf *b, enum pc_keytype t, struct pc_sshkey **out);
/* "TYPE BASE64 [comment]" (one line; leading/trailing whitespace ignored; the type word must
 * match the type inside the blob). *comment (optional, may be NULL) gets a malloc'ed copy of
 * the comment or NULL when there is none. */
int pc_sshkey_parse_line(const char *line, struct pc_sshkey **out, char **comment);
/* The generic part of line parsing, shared with pc_cert: splits "TYPE BASE64 [comment]",
 * decodes the base64 and checks that the blob starts with the string TYPE. *type, *blob and
 * *comment (optional; NULL when absent) are malloc'ed. Types are not checked here. */
int pc_sshkey_decode_line(const char *line, char **type, unsigned char **blob, size_t *len,
                          char **comment);

/* Appends the key material fields (no type name) to b. */
int pc_sshkey_put_fields(const struct pc_sshkey *k, struct pc_sshbuf *b);
/* Appends the whole public blob as raw bytes (type name + fields) to b. */
int pc_sshkey_put_blob(const struct pc_sshkey *k, struct pc_sshbuf *b);
/* The public blob, malloc'ed. */
int pc_sshkey_to_blob(const struct pc_sshkey *k, unsigned char **blob, size_t *len);
/* "TYPE BASE64" or "TYPE BASE64 comment" (comment may be NULL; no newline), malloc'ed. */
int pc_sshkey_to_line(const struct pc_sshkey *k, const char *comment, char **line);
/* SHA256 fingerprint as `ssh-keygen -lf` prints it: "SHA256:" + unpadded base64. */
int pc_sshkey_fingerprint(const struct pc_sshkey *k, char out[PC_SSHKEY_FP_SIZE]);
int pc_sshkey_fingerprint_blob(const unsigned char *blob, size_t len, char out[PC_SSHKEY_FP_SIZE]);
/* Raw SHA-256 of the public blob (the KRL's key hash). */
int pc_sshkey_sha256(const struct pc_sshkey *k, unsigned char out[32]);
/* 1 if both are the same public key (blob comparison), 0 if not or on error. */
int pc_sshkey_equal(const struct pc_sshkey *a, const struct pc_sshkey *b);
/* Modulus size for RSA keys, curve size for ECDSA, 256 for Ed25519. */
int pc_sshkey_bits(const struct pc_sshkey *k);

/* ---- CA private keys -------------------------------------------------------------------- */
/* Generates a key: PC_KEY_ED25519 (the default CA type), PC_KEY_ECDSA_P256/384/521 or
 * PC_KEY_RSA (PC_RSA_CA_BITS bits). */
int pc_sshkey_generate(enum pc_keytype t, struct pc_sshkey **out);
int pc_sshkey_has_private(const struct pc_sshkey *k);
/* Writes the private key as unencrypted PEM PKCS#8 ("BEGIN PRIVATE KEY"), atomically, mode
 * 0600. The in-memory PEM text is wiped. */
int pc_sshkey_save_private(const struct pc_sshkey *k, const char *path);
/* Loads a PEM private key written by pc_sshkey_save_private (any PEM OpenSSL reads
 * unencrypted). Refuses (PC_ERR_INVAL) a file readable or writable by group or others, an
 * unsupported key type or an RSA key below PC_RSA_MIN_BITS. */
int pc_sshkey_load_private(const char *path, struct pc_sshkey **out);
/* The public half as a fresh key (no private material). */
int pc_sshkey_public_dup(const struct pc_sshkey *k, struct pc_sshkey **out);

/* ---- signatures (implemented in pc_sshsig.c) ------------------------------------------------ */
/* Signs data with a private key; *sig is a malloc'ed SSH signature blob. */
int pc_sshkey_sign(const struct pc_sshkey *k, const void *data, size_t len, unsigned char **sig,
                   size_t *siglen);
/* Appends the signature blob as an SSH string to b (what certificates need). */
int pc_sshkey_sign_to_buf(const struct pc_sshkey *k, const void *data, size_t len,
                          struct pc_sshbuf *b);
/* Verifies an SSH signature blob over data with public key k. Returns 0 if valid;
 * PC_ERR_PARSE for a malformed blob; PC_ERR_INVAL for an algorithm not allowed for the key
 * (including "ssh-rsa" SHA-1); PC_ERR_CRYPTO for a signature that does not verify.
 * *alg_out (optional) receives the algorithm name as a static string. */
int pc_sshkey_verify(const struct pc_sshkey *k, const unsigned char *sig, size_t siglen,
                     const void *data, size_t len, const char **alg_out);

#endif
