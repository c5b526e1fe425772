/* SPDX-License-Identifier: BSD-2-Clause */
/* OpenSSH certificates (PROTOCOL.certkeys): signing user and host certificates with a CA key,
 * and parsing/verifying certificates (ours, ssh-keygen's, or what sshd puts in SSH_AUTH_INFO_0).
 *
 * Certificate types by subject key: ssh-ed25519-cert-v01@openssh.com,
 * ecdsa-sha2-nistp{256,384,521}-cert-v01@openssh.com, ssh-rsa-cert-v01@openssh.com (the RSA cert
 * type keeps that name; an RSA CA still signs with rsa-sha2-512). Any supported key type may be
 * the CA for any subject type.
 *
 * Rules we enforce when signing (and why):
 * - serial: 1 <= serial < PC_CERT_SERIAL_LIMIT (10^15). Serial 0 cannot be revoked in a KRL;
 *   sshd before 8.1 cut serials above 15 digits in %s.
 * - principals: 1..PC_CERT_MAX_PRINCIPALS entries (an empty list would mean "any principal"),
 *   each 1..PC_CERT_NAME_MAX bytes of [A-Za-z0-9._@+$:-], not starting with '-'. So no NUL,
 *   comma (sshd's lists are comma-separated), whitespace, quotes or pattern characters (* ? !).
 *   Duplicates are refused.
 * - key id: 1..PC_CERT_NAME_MAX bytes of printable ASCII (0x20..0x7e); it reaches logs and %i.
 * - valid_after < valid_before; see pc_cert_validity() for back-dating against clock skew.
 * - critical options and extensions: names 1..PC_CERT_NAME_MAX bytes of printable ASCII without
 *   space, unique; we sort them by name (byte order). A NULL value is a flag (empty data, e.g.
 *   permit-pty); a non-NULL value is written string-wrapped (data = string(value), e.g.
 *   force-command, source-address). No check that a name is one OpenSSH knows: sshd refuses a
 *   certificate with an unknown critical option, so callers should only use known ones.
 * - nonce: 32 random bytes; reserved: empty. */
#ifndef PC_CERT_H
#define PC_CERT_H
#include <stddef.h>
#include <stdint.h>
#include "pc_sshkey.h"

#define PC_CERT_SERIAL_LIMIT 1000000000000000ULL /* 10^15, exclusive */
#define PC_CERT_MAX_PRINCIPALS 256
#define PC_CERT_NAME_MAX 255
#define PC_CERT_MAX_OPTIONS 64
#define PC_CERT_BACKDATE_DEFAULT 300 /* seconds valid_after is moved into the past */
#define PC_CERT_BLOB_MAX (64 * 1024)
#define PC_CERT_NONCE_LEN 32

enum pc_cert_type { PC_CERT_USER = 1, PC_CERT_HOST = 2 };

/* One critical option or extension. value NULL: flag (empty data). */
struct pc_cert_opt {
    const char *name;
    const char *value;
};

/* The five extensions `ssh-keygen -s` gives a user certificate by default. */
extern const struct pc_cert_opt pc_cert_default_user_extensions[];
extern const size_t pc_cert_default_user_extensions_count;

struct pc_cert_req {
    enum pc_cert_type type;
    const struct pc_sshkey *subject; /* public key being certified */
    uint64_t serial;
    const char *key_id;
    const char *const *principals;
    size_t n_principals;
    uint64_t valid_after;  /* seconds since the epoch, inclusive */
    uint64_t valid_before; /* exclusive; UINT64_MAX means forever */
    const struct pc_cert_opt *critical;
    size_t n_critical;
    const struct pc_cert_opt *extensions;
    size_t n_extensions;
};

/* valid_after = now - backdate, valid_before = now + ttl (backdate < 0: the default).
 * PC_ERR_INVAL for ttl <= 0, now < backdate, or overflow. */
int pc_cert_validity(int64_t now, int64_t backdate, int64_t ttl, uint64_t *valid_after,
                     uint64_t *valid_before);

/* Validates req (rules above), builds and signs the certificate with the CA private key.
 * *blob is the malloc'ed certificate blob. */
int pc_cert_sign(const struct pc_cert_req *req, const struct pc_sshkey *ca, unsigned char **blob,
                 size_t *len);
/* Same, as the one-line "TYPE BASE64 [comment]" text (no newline) of a -cert.pub file. */
int pc_cert_sign_line(const struct pc_cert_req *req, const struct pc_sshkey *ca,
                      const char *comment, char **line);

/* Certificate type name ("ssh-ed25519-cert-v01@openssh.com" …) for a subject key type. */
const char *pc_cert_type_name(enum pc_keytype t);

/* ---- parsing ------------------------------------------------------------------------------ */

struct pc_cert_parsed_opt {
    char *name;
    unsigned char *data; /* raw data field (NUL-terminated for convenience) */
    size_t data_len;
    char *value; /* data decoded as string(value) without NULs, or NULL (flag / other data) */
};

struct pc_cert {
    enum pc_cert_type type;
    enum pc_keytype key_type;  /* subject key type */
    struct pc_sshkey *subject; /* subject public key */
    struct pc_sshkey *ca;      /* signature key (the CA) */
    char ca_fingerprint[PC_SSHKEY_FP_SIZE];
    const char *sig_alg; /* static: "ssh-ed25519", "rsa-sha2-512" … */
    uint64_t serial;
    char *key_id;
    char **principals;
    size_t n_principals;
    uint64_t valid_after, valid_before;
    struct pc_cert_parsed_opt *critical;
    size_t n_critical;
    struct pc_cert_parsed_opt *extensions;
    size_t n_extensions;
    unsigned char *blob; /* the whole certificate */
    size_t blob_len;
};

/* Parses a certificate blob and verifies its CA signature. Refuses trailing data, unknown or
 * mismatched types, a certificate as CA key, unsorted/duplicate options, a key id or principal
 * containing NUL, a CA signature that does not verify (PC_ERR_CRYPTO), "ssh-rsa" SHA-1
 * (PC_ERR_INVAL). It does NOT check the validity window or trust in the CA: the caller compares
 * cert->ca with its trusted CA (pc_sshkey_equal) and uses pc_cert_valid_at(). */
int pc_cert_parse(const unsigned char *blob, size_t len, struct pc_cert **out);
/* "TYPE BASE64 [comment]" (a -cert.pub line). */
int pc_cert_parse_line(const char *line, struct pc_cert **out);
/* sshd's SSH_AUTH_INFO_0: one method per line; takes the first line
 * "publickey TYPE BASE64" whose TYPE is a certificate type. PC_ERR_NOTFOUND if none. */
int pc_cert_parse_auth_info(const char *info, struct pc_cert **out);
void pc_cert_free(struct pc_cert *c);

/* 1 if valid_after <= now < valid_before. */
int pc_cert_valid_at(const struct pc_cert *c, int64_t now);
/* 1 if name is one of the principals. */
int pc_cert_has_principal(const struct pc_cert *c, const char *name);

/* ---- the second factor a certificate carries (issue 13) ---------------------------------- */

/* Our extension on `portcullis login` certificates: the value (string-wrapped, like
 * force-command) is "time=UNIX,method=totp|push", when and how the second factor was passed.
 * An extension, not a critical option: sshd ignores it, so the certificate works on any host. */
#define PC_CERT_EXT_2FA "2fa@portcullis"
#define PC_CERT_2FA_VALUE_MAX 64
/* Formats the extension's value into buf (PC_CERT_2FA_VALUE_MAX bytes). method: "totp"/"push". */
int pc_cert_2fa_format(int64_t at, const char *method, char *buf, size_t n);
/* Reads our extension: PC_ERR_NOTFOUND without it, PC_ERR_PARSE if its value is not exactly
 * the format above (time 1..2^62, a known method). *at and method (16 bytes) on success. */
int pc_cert_2fa(const struct pc_cert *c, int64_t *at, char method[16]);

#endif
