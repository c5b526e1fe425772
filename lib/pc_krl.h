/* SPDX-License-Identifier: BSD-2-Clause */
/* OpenSSH binary key revocation lists (PROTOCOL.krl), as sshd reads with RevokedKeys.
 *
 * Layout written: header (magic "SSHKRL\n\0", format version 1, krl_version, generated_date,
 * flags 0, reserved "", comment); then one KRL_SECTION_CERTIFICATES per pc_krl_certs entry
 * (string ca_key, string reserved "", then subsections: one serial list (0x20) with the sorted
 * serials not in a run, one serial range (0x21) per run of >= PC_KRL_RUN_MIN consecutive serials,
 * one key-id list (0x23) sorted bytewise); then, if keys are given, one
 * KRL_SECTION_FINGERPRINT_SHA256 section with their SHA-256 blob hashes in ascending order.
 * Inputs are sorted and de-duplicated, so the same input always gives the same bytes.
 * KRL signatures (section 4) are not written: OpenSSH >= 9.4 refuses them.
 *
 * pc_krl_check() reads one back (what the agent does with the KRL it fetches) far enough to
 * know sshd will load it.
 *
 * An unreadable KRL makes sshd refuse every key: always publish with pc_krl_write_file()
 * (atomic rename), never by writing the file in place. */
#ifndef PC_KRL_H
#define PC_KRL_H
#include <stddef.h>
#include <stdint.h>
#include "pc_sshkey.h"

#define PC_KRL_RUN_MIN 3 /* a range (21 bytes) beats list entries (8 bytes each) from 3 on */
#define PC_KRL_MAX_BYTES (32u * 1024u * 1024u)

/* Certificates of one CA revoked by serial and/or key id. */
struct pc_krl_certs {
    const struct pc_sshkey *ca; /* NULL: the section applies to every CA (key ids only) */
    const uint64_t *serials;    /* any order, duplicates allowed; 0 is refused (PC_ERR_INVAL) */
    size_t n_serials;
    const char *const *key_ids; /* non-empty strings */
    size_t n_key_ids;
};

struct pc_krl_spec {
    uint64_t krl_version;    /* should increase with every change */
    uint64_t generated_date; /* seconds since the epoch: when the revocations last changed */
    const char *comment;     /* NULL: empty */
    const struct pc_krl_certs *certs;
    size_t n_certs;
    const struct pc_sshkey *const *keys; /* plain keys revoked by SHA-256 hash */
    size_t n_keys;
};

/* The KRL bytes (malloc'ed). PC_ERR_INVAL for serial 0, an empty key id, a section with a NULL
 * CA but serials, or a section with nothing in it. */
int pc_krl_encode(const struct pc_krl_spec *spec, unsigned char **out, size_t *len);
/* Encodes and replaces path atomically (temp file, fsync, rename), mode 0644. */
int pc_krl_write_file(const struct pc_krl_spec *spec, const char *path);

/* Checks an OpenSSH KRL's framing: at most PC_KRL_MAX_BYTES, magic, format version 1, the
 * header, then whole sections of known types (certificates, explicit keys, SHA-1 and SHA-256
 * fingerprints; no signatures). Section bodies are not parsed. *version gets krl_version.
 * PC_ERR_PARSE for anything else. */
int pc_krl_check(const unsigned char *data, size_t len, uint64_t *version);

#endif
