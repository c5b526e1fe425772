/* SPDX-License-Identifier: BSD-2-Clause */
/* OpenSSH KRL encoder and framing check: see pc_krl.h. */
#include "config.h"
#include "pc_krl.h"
#include "pc_err.h"
#include "pc_fs.h"
#include "pc_sshbuf.h"
#include <stdlib.h>
#include <string.h>

#define KRL_MAGIC "SSHKRL\n\0"
#define KRL_FORMAT_VERSION 1
#define KRL_SECTION_CERTIFICATES 1
#define KRL_SECTION_EXPLICIT_KEY 2
#define KRL_SECTION_FINGERPRINT_SHA1 3
#define KRL_SECTION_SIGNATURE 4
#define KRL_SECTION_FINGERPRINT_SHA256 5
#define KRL_SECTION_CERT_SERIAL_LIST 0x20
#define KRL_SECTION_CERT_SERIAL_RANGE 0x21
#define KRL_SECTION_CERT_KEY_ID 0x23

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_hash(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

/* byte type, string body. */
static int put_section(struct pc_sshbuf *out, uint8_t type, const struct pc_sshbuf *body)
{
    pc_sshbuf_put_u8(out, type);
    return pc_sshbuf_put_buf(out, body);
}

/* Length of the run of consecutive serials starting at s[i]. */
static size_t run_len(const uint64_t *s, size_t n, size_t i)
{
    size_t j = i;
    while (j + 1 < n && s[j + 1] == s[j] + 1)
        j++;
    return j - i + 1;
}

/* From sorted, de-duplicated serials: one list subsection with the serials outside runs, then
 * one range subsection per run of >= PC_KRL_RUN_MIN. */
static int put_serials(struct pc_sshbuf *sec, const uint64_t *s, size_t n)
{
    struct pc_sshbuf sub;
    size_t i, r;
    int rc;

    pc_sshbuf_init(&sub, PC_KRL_MAX_BYTES);
    for (i = 0; i < n; i += r)
        if ((r = run_len(s, n, i)) < PC_KRL_RUN_MIN)
            for (size_t k = i; k < i + r; k++)
                pc_sshbuf_put_u64(&sub, s[k]);
    if (pc_sshbuf_len(&sub) > 0)
        put_section(sec, KRL_SECTION_CERT_SERIAL_LIST, &sub);
    for (i = 0; i < n; i += r) {
        if ((r = run_len(s, n, i)) < PC_KRL_RUN_MIN)
            continue;
        pc_sshbuf_reset(&sub);
        pc_sshbuf_put_u64(&sub, s[i]);
        pc_sshbuf_put_u64(&sub, s[i + r - 1]);
        put_section(sec, KRL_SECTION_CERT_SERIAL_RANGE, &sub);
    }
    rc = pc_sshbuf_error(&sub) ? pc_sshbuf_error(&sub) : pc_sshbuf_error(sec);
    pc_sshbuf_free(&sub);
    return rc;
}

static int put_cert_section(struct pc_sshbuf *out, const struct pc_krl_certs *c)
{
    uint64_t *serials = NULL;
    const char **ids = NULL;
    size_t ns = 0, ni = 0;
    struct pc_sshbuf sec, sub, cak;
    int rc = PC_ERR_INVAL;

    pc_sshbuf_init(&sec, PC_KRL_MAX_BYTES);
    pc_sshbuf_init(&sub, PC_KRL_MAX_BYTES);
    pc_sshbuf_init(&cak, PC_SSHKEY_BLOB_MAX);
    if ((c->n_serials == 0 && c->n_key_ids == 0) || (!c->ca && c->n_serials > 0) ||
        (c->n_serials && !c->serials) || (c->n_key_ids && !c->key_ids))
        goto out;
    if ((c->n_serials && !(serials = malloc(c->n_serials * sizeof *serials))) ||
        (c->n_key_ids && !(ids = malloc(c->n_key_ids * sizeof *ids)))) {
        rc = PC_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < c->n_serials; i++) {
        if (c->serials[i] == 0)
            goto out; /* serial 0 means "no serial" and cannot be revoked */
        serials[i] = c->serials[i];
    }
    for (size_t i = 0; i < c->n_key_ids; i++) {
        if (!c->key_ids[i] || !c->key_ids[i][0])
            goto out;
        ids[i] = c->key_ids[i];
    }
    if (c->n_serials) {
        qsort(serials, c->n_serials, sizeof *serials, cmp_u64);
        for (size_t i = 0; i < c->n_serials; i++)
            if (ns == 0 || serials[ns - 1] != serials[i])
                serials[ns++] = serials[i];
    }
    if (c->n_key_ids) {
        qsort(ids, c->n_key_ids, sizeof *ids, cmp_str);
        for (size_t i = 0; i < c->n_key_ids; i++)
            if (ni == 0 || strcmp(ids[ni - 1], ids[i]) != 0)
                ids[ni++] = ids[i];
    }
    if (c->ca && (rc = pc_sshkey_put_blob(c->ca, &cak)) != 0)
        goto out;
    pc_sshbuf_put_buf(&sec, &cak);       /* ca_key; empty: any CA */
    pc_sshbuf_put_string(&sec, NULL, 0); /* reserved */
    if ((rc = put_serials(&sec, serials, ns)) != 0)
        goto out;
    if (ni > 0) {
        for (size_t i = 0; i < ni; i++)
            pc_sshbuf_put_cstring(&sub, ids[i]);
        put_section(&sec, KRL_SECTION_CERT_KEY_ID, &sub);
    }
    rc = put_section(out, KRL_SECTION_CERTIFICATES, &sec);
out:
    free(serials);
    free(ids);
    pc_sshbuf_free(&sec);
    pc_sshbuf_free(&sub);
    pc_sshbuf_free(&cak);
    return rc;
}

static int put_key_hashes(struct pc_sshbuf *out, const struct pc_sshkey *const *keys, size_t n)
{
    unsigned char(*h)[32] = NULL;
    struct pc_sshbuf sec;
    size_t m = 0;
    int rc = PC_OK;

    if (n == 0)
        return PC_OK;
    if (!keys)
        return PC_ERR_INVAL;
    if (!(h = calloc(n, sizeof *h)))
        return PC_ERR_NOMEM;
    pc_sshbuf_init(&sec, PC_KRL_MAX_BYTES);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = keys[i] ? pc_sshkey_sha256(keys[i], h[i]) : PC_ERR_INVAL;
    if (rc != 0)
        goto out;
    /* "Hashes in this section must appear in numeric order" (big-endian): memcmp order. */
    qsort(h, n, sizeof *h, cmp_hash);
    for (size_t i = 0; i < n; i++)
        if (m == 0 || memcmp(h[m - 1], h[i], 32) != 0)
            memmove(h[m++], h[i], 32);
    for (size_t i = 0; i < m; i++)
        pc_sshbuf_put_string(&sec, h[i], 32);
    rc = put_section(out, KRL_SECTION_FINGERPRINT_SHA256, &sec);
out:
    free(h);
    pc_sshbuf_free(&sec);
    return rc;
}

int pc_krl_encode(const struct pc_krl_spec *spec, unsigned char **out, size_t *len)
{
    struct pc_sshbuf b;
    int rc;

    if (!spec || (spec->n_certs && !spec->certs))
        return PC_ERR_INVAL;
    pc_sshbuf_init(&b, PC_KRL_MAX_BYTES);
    pc_sshbuf_put_raw(&b, KRL_MAGIC, 8);
    pc_sshbuf_put_u32(&b, KRL_FORMAT_VERSION);
    pc_sshbuf_put_u64(&b, spec->krl_version);
    pc_sshbuf_put_u64(&b, spec->generated_date);
    pc_sshbuf_put_u64(&b, 0);          /* flags: none defined */
    pc_sshbuf_put_string(&b, NULL, 0); /* reserved */
    pc_sshbuf_put_cstring(&b, spec->comment ? spec->comment : "");
    for (size_t i = 0; i < spec->n_certs; i++)
        if ((rc = put_cert_section(&b, &spec->certs[i])) != 0)
            goto out;
    if ((rc = put_key_hashes(&b, spec->keys, spec->n_keys)) != 0)
        goto out;
    rc = pc_sshbuf_steal(&b, out, len);
out:
    pc_sshbuf_free(&b);
    return rc;
}

int pc_krl_write_file(const struct pc_krl_spec *spec, const char *path)
{
    unsigned char *krl = NULL;
    size_t len = 0;
    int rc = pc_krl_encode(spec, &krl, &len);
    if (rc == 0)
        rc = pc_write_file_atomic(path, krl, len, 0644);
    free(krl);
    return rc;
}

int pc_krl_check(const unsigned char *data, size_t len, uint64_t *version)
{
    struct pc_sshbuf b;
    unsigned char magic[8];
    uint32_t fmt;
    uint64_t date, flags;
    const unsigned char *p;
    size_t n;

    if (len < sizeof magic || len > PC_KRL_MAX_BYTES)
        return PC_ERR_PARSE;
    pc_sshbuf_init_reader(&b, data, len);
    if (pc_sshbuf_get_raw(&b, magic, sizeof magic) != PC_OK ||
        memcmp(magic, KRL_MAGIC, sizeof magic) != 0 || pc_sshbuf_get_u32(&b, &fmt) != PC_OK ||
        fmt != KRL_FORMAT_VERSION || pc_sshbuf_get_u64(&b, version) != PC_OK ||
        pc_sshbuf_get_u64(&b, &date) != PC_OK || pc_sshbuf_get_u64(&b, &flags) != PC_OK ||
        pc_sshbuf_get_string(&b, &p, &n) != PC_OK || pc_sshbuf_get_string(&b, &p, &n) != PC_OK)
        return PC_ERR_PARSE;
    while (pc_sshbuf_remaining(&b) > 0) {
        uint8_t type;
        if (pc_sshbuf_get_u8(&b, &type) != PC_OK || pc_sshbuf_get_string(&b, &p, &n) != PC_OK)
            return PC_ERR_PARSE;
        /* KRL_SECTION_SIGNATURE is refused by OpenSSH >= 9.4. */
        if (type != KRL_SECTION_CERTIFICATES && type != KRL_SECTION_EXPLICIT_KEY &&
            type != KRL_SECTION_FINGERPRINT_SHA1 && type != KRL_SECTION_FINGERPRINT_SHA256)
            return PC_ERR_PARSE;
    }
    return PC_OK;
}
