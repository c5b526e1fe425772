/* SPDX-License-Identifier: BSD-2-Clause */
/* OpenSSH certificates: see pc_cert.h. */
#include "config.h"
#include "pc_cert.h"
#include "pc_err.h"
#include "pc_rand.h"
#include "pc_sshbuf.h"
#include "pc_valid.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPT_VALUE_MAX 8192
#define PARSE_MAX_PRINCIPALS 4096

static const struct {
    enum pc_keytype key;
    const char *name;
} cert_types[] = {
    { PC_KEY_ED25519, "ssh-ed25519-cert-v01@openssh.com" },
    { PC_KEY_ECDSA_P256, "ecdsa-sha2-nistp256-cert-v01@openssh.com" },
    { PC_KEY_ECDSA_P384, "ecdsa-sha2-nistp384-cert-v01@openssh.com" },
    { PC_KEY_ECDSA_P521, "ecdsa-sha2-nistp521-cert-v01@openssh.com" },
    { PC_KEY_RSA, "ssh-rsa-cert-v01@openssh.com" },
};
#define N_CERT_TYPES (sizeof cert_types / sizeof cert_types[0])

const struct pc_cert_opt pc_cert_default_user_extensions[] = {
    { "permit-X11-forwarding", NULL },  { "permit-agent-forwarding", NULL },
    { "permit-port-forwarding", NULL }, { "permit-pty", NULL },
    { "permit-user-rc", NULL },
};
const size_t pc_cert_default_user_extensions_count = sizeof pc_cert_default_user_extensions /
                                                     sizeof pc_cert_default_user_extensions[0];

const char *pc_cert_type_name(enum pc_keytype t)
{
    for (size_t i = 0; i < N_CERT_TYPES; i++)
        if (cert_types[i].key == t)
            return cert_types[i].name;
    return NULL;
}

static enum pc_keytype cert_key_type(const unsigned char *name, size_t n)
{
    for (size_t i = 0; i < N_CERT_TYPES; i++)
        if (strlen(cert_types[i].name) == n && memcmp(cert_types[i].name, name, n) == 0)
            return cert_types[i].key;
    return PC_KEY_UNKNOWN;
}

int pc_cert_validity(int64_t now, int64_t backdate, int64_t ttl, uint64_t *valid_after,
                     uint64_t *valid_before)
{
    if (backdate < 0)
        backdate = PC_CERT_BACKDATE_DEFAULT;
    if (ttl <= 0 || now < backdate || now > INT64_MAX - ttl)
        return PC_ERR_INVAL;
    *valid_after = (uint64_t)(now - backdate);
    *valid_before = (uint64_t)(now + ttl);
    return PC_OK;
}

/* ---- validation ---------------------------------------------------------------------------- */

/* Printable ASCII, lo..0x7e. */
static int printable_ok(const char *s, unsigned char lo)
{
    size_t n = strlen(s);
    if (n == 0 || n > PC_CERT_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < lo || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

static int cmp_opt(const void *a, const void *b)
{
    const struct pc_cert_opt *x = *(const struct pc_cert_opt *const *)a;
    const struct pc_cert_opt *y = *(const struct pc_cert_opt *const *)b;
    return strcmp(x->name, y->name);
}

/* Sorted, validated options as the string-wrapped field body in out. */
static int put_options(struct pc_sshbuf *out, const struct pc_cert_opt *opts, size_t n)
{
    const struct pc_cert_opt **sorted = NULL;
    struct pc_sshbuf val;
    int rc = PC_ERR_INVAL;

    pc_sshbuf_init(&val, 0);
    if (n > PC_CERT_MAX_OPTIONS || (n && !opts))
        return PC_ERR_INVAL;
    if (n == 0)
        return pc_sshbuf_put_string(out, NULL, 0);
    if (!(sorted = calloc(n, sizeof *sorted)))
        return PC_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        if (!opts[i].name || !printable_ok(opts[i].name, 0x21) ||
            (opts[i].value && strlen(opts[i].value) > OPT_VALUE_MAX))
            goto out;
        sorted[i] = &opts[i];
    }
    qsort(sorted, n, sizeof *sorted, cmp_opt);
    for (size_t i = 1; i < n; i++)
        if (strcmp(sorted[i - 1]->name, sorted[i]->name) == 0)
            goto out; /* each name once */
    for (size_t i = 0; i < n; i++) {
        pc_sshbuf_put_cstring(&val, sorted[i]->name);
        if (sorted[i]->value) {
            struct pc_sshbuf data;
            pc_sshbuf_init(&data, 0);
            pc_sshbuf_put_cstring(&data, sorted[i]->value);
            pc_sshbuf_put_buf(&val, &data);
            pc_sshbuf_free(&data);
        } else {
            pc_sshbuf_put_string(&val, NULL, 0); /* flag: empty data */
        }
    }
    rc = pc_sshbuf_put_buf(out, &val);
out:
    free(sorted);
    pc_sshbuf_free(&val);
    return rc;
}

static int check_req(const struct pc_cert_req *req, const struct pc_sshkey *ca)
{
    if (!req || !ca || !req->subject || !pc_sshkey_has_private(ca) ||
        !pc_cert_type_name(req->subject->type) || !pc_sshkey_type_name(ca->type))
        return PC_ERR_INVAL;
    if (req->type != PC_CERT_USER && req->type != PC_CERT_HOST)
        return PC_ERR_INVAL;
    if (req->serial == 0 || req->serial >= PC_CERT_SERIAL_LIMIT)
        return PC_ERR_INVAL;
    if (!req->key_id || !printable_ok(req->key_id, 0x20))
        return PC_ERR_INVAL;
    if (req->n_principals == 0 || req->n_principals > PC_CERT_MAX_PRINCIPALS || !req->principals)
        return PC_ERR_INVAL;
    for (size_t i = 0; i < req->n_principals; i++) {
        if (!req->principals[i] ||
            !pc_valid_principal(req->principals[i], strlen(req->principals[i])))
            return PC_ERR_INVAL;
        for (size_t j = 0; j < i; j++)
            if (strcmp(req->principals[i], req->principals[j]) == 0)
                return PC_ERR_INVAL;
    }
    if (req->valid_after >= req->valid_before)
        return PC_ERR_INVAL;
    return PC_OK;
}

/* ---- signing ------------------------------------------------------------------------------- */

int pc_cert_sign(const struct pc_cert_req *req, const struct pc_sshkey *ca, unsigned char **blob,
                 size_t *len)
{
    unsigned char nonce[PC_CERT_NONCE_LEN];
    struct pc_sshbuf b, princ, cak;
    int rc;

    if ((rc = check_req(req, ca)) != 0)
        return rc;
    if ((rc = pc_random_bytes(nonce, sizeof nonce)) != 0)
        return rc;
    pc_sshbuf_init(&b, PC_CERT_BLOB_MAX);
    pc_sshbuf_init(&princ, 0);
    pc_sshbuf_init(&cak, PC_SSHKEY_BLOB_MAX);
    pc_sshbuf_put_cstring(&b, pc_cert_type_name(req->subject->type));
    pc_sshbuf_put_string(&b, nonce, sizeof nonce);
    if ((rc = pc_sshkey_put_fields(req->subject, &b)) != 0)
        goto out;
    pc_sshbuf_put_u64(&b, req->serial);
    pc_sshbuf_put_u32(&b, (uint32_t)req->type);
    pc_sshbuf_put_cstring(&b, req->key_id);
    for (size_t i = 0; i < req->n_principals; i++)
        pc_sshbuf_put_cstring(&princ, req->principals[i]);
    pc_sshbuf_put_buf(&b, &princ);
    pc_sshbuf_put_u64(&b, req->valid_after);
    pc_sshbuf_put_u64(&b, req->valid_before);
    if ((rc = put_options(&b, req->critical, req->n_critical)) != 0 ||
        (rc = put_options(&b, req->extensions, req->n_extensions)) != 0)
        goto out;
    pc_sshbuf_put_string(&b, NULL, 0); /* reserved */
    if ((rc = pc_sshkey_put_blob(ca, &cak)) != 0 || (rc = pc_sshbuf_put_buf(&b, &cak)) != 0)
        goto out;
    /* The signature covers every field up to and including the signature key. */
    if ((rc = pc_sshkey_sign_to_buf(ca, pc_sshbuf_ptr(&b), pc_sshbuf_len(&b), &b)) != 0)
        goto out;
    rc = pc_sshbuf_steal(&b, blob, len);
out:
    pc_sshbuf_free(&b);
    pc_sshbuf_free(&princ);
    pc_sshbuf_free(&cak);
    return rc;
}

int pc_cert_sign_line(const struct pc_cert_req *req, const struct pc_sshkey *ca,
                      const char *comment, char **line)
{
    unsigned char *blob = NULL;
    size_t len = 0, n;
    char *b64 = NULL, *s;
    const char *type;
    int rc;

    if ((rc = pc_cert_sign(req, ca, &blob, &len)) != 0)
        return rc;
    type = pc_cert_type_name(req->subject->type);
    if ((rc = pc_base64_encode(blob, len, &b64)) != 0)
        goto out;
    n = strlen(type) + 1 + strlen(b64) + (comment ? 1 + strlen(comment) : 0) + 1;
    if (!(s = malloc(n))) {
        rc = PC_ERR_NOMEM;
        goto out;
    }
    snprintf(s, n, "%s %s%s%s", type, b64, comment ? " " : "", comment ? comment : "");
    *line = s;
out:
    free(blob);
    free(b64);
    return rc;
}

/* ---- parsing ------------------------------------------------------------------------------- */

static void free_opts(struct pc_cert_parsed_opt *o, size_t n)
{
    for (size_t i = 0; o && i < n; i++) {
        free(o[i].name);
        free(o[i].data);
        free(o[i].value);
    }
    free(o);
}

void pc_cert_free(struct pc_cert *c)
{
    if (!c)
        return;
    pc_sshkey_free(c->subject);
    pc_sshkey_free(c->ca);
    free(c->key_id);
    for (size_t i = 0; c->principals && i < c->n_principals; i++)
        free(c->principals[i]);
    free(c->principals);
    free_opts(c->critical, c->n_critical);
    free_opts(c->extensions, c->n_extensions);
    free(c->blob);
    free(c);
}

static int parse_principals(struct pc_sshbuf *b, struct pc_cert *c)
{
    struct pc_sshbuf sub;
    char **list;
    int rc;

    if ((rc = pc_sshbuf_get_sub(b, &sub)) != 0)
        return rc;
    while (pc_sshbuf_remaining(&sub) > 0) {
        if (c->n_principals >= PARSE_MAX_PRINCIPALS)
            return PC_ERR_TOOBIG;
        list = realloc(c->principals, (c->n_principals + 1) * sizeof *list);
        if (!list)
            return PC_ERR_NOMEM;
        c->principals = list;
        if ((rc = pc_sshbuf_get_cstring(&sub, &list[c->n_principals])) != 0)
            return rc;
        c->n_principals++;
    }
    return PC_OK;
}

static int parse_opts(struct pc_sshbuf *b, struct pc_cert_parsed_opt **out, size_t *count)
{
    struct pc_sshbuf sub, data;
    struct pc_cert_parsed_opt *o, *list;
    char *v = NULL;
    int rc;

    if ((rc = pc_sshbuf_get_sub(b, &sub)) != 0)
        return rc;
    while (pc_sshbuf_remaining(&sub) > 0) {
        if (*count >= PC_CERT_MAX_OPTIONS)
            return PC_ERR_TOOBIG;
        if (!(list = realloc(*out, (*count + 1) * sizeof *list)))
            return PC_ERR_NOMEM;
        *out = list;
        o = &list[*count];
        memset(o, 0, sizeof *o);
        (*count)++;
        if ((rc = pc_sshbuf_get_cstring(&sub, &o->name)) != 0 ||
            (rc = pc_sshbuf_get_string_dup(&sub, &o->data, &o->data_len)) != 0)
            return rc;
        if (*count > 1 && strcmp(list[*count - 2].name, o->name) >= 0)
            return PC_ERR_PARSE; /* names must be unique and lexically ordered */
        pc_sshbuf_init_reader(&data, o->data, o->data_len);
        if (o->data_len > 0 && pc_sshbuf_get_cstring(&data, &v) == 0) {
            if (pc_sshbuf_expect_end(&data) == 0)
                o->value = v;
            else
                free(v);
            v = NULL;
        }
    }
    return PC_OK;
}

int pc_cert_parse(const unsigned char *blob, size_t len, struct pc_cert **out)
{
    struct pc_sshbuf b;
    const unsigned char *name = NULL, *nonce = NULL, *reserved = NULL, *cab = NULL, *sig = NULL;
    size_t nlen = 0, nonce_len = 0, rlen = 0, cablen = 0, siglen = 0, signed_len;
    uint32_t type = 0;
    struct pc_cert *c = NULL;
    int rc;

    if (len > PC_CERT_BLOB_MAX)
        return PC_ERR_TOOBIG;
    if (!(c = calloc(1, sizeof *c)))
        return PC_ERR_NOMEM;
    pc_sshbuf_init_reader(&b, blob, len);
    if ((rc = pc_sshbuf_get_string(&b, &name, &nlen)) != 0)
        goto out;
    if ((c->key_type = cert_key_type(name, nlen)) == PC_KEY_UNKNOWN) {
        rc = PC_ERR_INVAL;
        goto out;
    }
    if ((rc = pc_sshbuf_get_string(&b, &nonce, &nonce_len)) != 0 ||
        (rc = pc_sshkey_read_fields(&b, c->key_type, &c->subject)) != 0)
        goto out;
    pc_sshbuf_get_u64(&b, &c->serial);
    pc_sshbuf_get_u32(&b, &type);
    if ((rc = pc_sshbuf_get_cstring(&b, &c->key_id)) != 0 || (rc = parse_principals(&b, c)) != 0)
        goto out;
    pc_sshbuf_get_u64(&b, &c->valid_after);
    pc_sshbuf_get_u64(&b, &c->valid_before);
    if ((rc = pc_sshbuf_error(&b)) != 0 ||
        (rc = parse_opts(&b, &c->critical, &c->n_critical)) != 0 ||
        (rc = parse_opts(&b, &c->extensions, &c->n_extensions)) != 0)
        goto out;
    pc_sshbuf_get_string(&b, &reserved, &rlen); /* ignored, as the spec says */
    if ((rc = pc_sshbuf_get_string(&b, &cab, &cablen)) != 0)
        goto out;
    signed_len = len - pc_sshbuf_remaining(&b);
    pc_sshbuf_get_string(&b, &sig, &siglen);
    if ((rc = pc_sshbuf_expect_end(&b)) != 0)
        goto out;
    if (type != PC_CERT_USER && type != PC_CERT_HOST) {
        rc = PC_ERR_PARSE;
        goto out;
    }
    c->type = (enum pc_cert_type)type;
    /* A certificate as signature key is refused here: its type is not a plain key type. */
    if ((rc = pc_sshkey_from_blob(cab, cablen, &c->ca)) != 0 ||
        (rc = pc_sshkey_fingerprint_blob(cab, cablen, c->ca_fingerprint)) != 0 ||
        (rc = pc_sshkey_verify(c->ca, sig, siglen, blob, signed_len, &c->sig_alg)) != 0)
        goto out;
    if (!(c->blob = malloc(len))) {
        rc = PC_ERR_NOMEM;
        goto out;
    }
    memcpy(c->blob, blob, len);
    c->blob_len = len;
    *out = c;
    c = NULL;
out:
    pc_cert_free(c);
    return rc;
}

int pc_cert_parse_line(const char *line, struct pc_cert **out)
{
    char *type = NULL;
    unsigned char *blob = NULL;
    size_t len = 0;
    int rc;

    if ((rc = pc_sshkey_decode_line(line, &type, &blob, &len, NULL)) != 0)
        return rc;
    rc = pc_cert_parse(blob, len, out);
    free(type);
    free(blob);
    return rc;
}

int pc_cert_parse_auth_info(const char *info, struct pc_cert **out)
{
    const char *p = info, *nl, *type;
    static const char prefix[] = "publickey ";
    size_t n;
    char *line;
    int rc;

    while (p && *p) {
        nl = strchr(p, '\n');
        n = nl ? (size_t)(nl - p) : strlen(p);
        type = p + strlen(prefix);
        if (n > strlen(prefix) && strncmp(p, prefix, strlen(prefix)) == 0 &&
            cert_key_type((const unsigned char *)type, strcspn(type, " \t\n")) != PC_KEY_UNKNOWN) {
            if (!(line = strndup(type, n - strlen(prefix))))
                return PC_ERR_NOMEM;
            rc = pc_cert_parse_line(line, out);
            free(line);
            return rc;
        }
        p = nl ? nl + 1 : NULL;
    }
    return PC_ERR_NOTFOUND;
}

int pc_cert_valid_at(const struct pc_cert *c, int64_t now)
{
    return now >= 0 && c->valid_after <= (uint64_t)now && (uint64_t)now < c->valid_before;
}

int pc_cert_has_principal(const struct pc_cert *c, const char *name)
{
    for (size_t i = 0; i < c->n_principals; i++)
        if (strcmp(c->principals[i], name) == 0)
            return 1;
    return 0;
}

/* ---- the second factor a certificate carries ---------------------------------------------- */

static int method_known(const char *m)
{
    return strcmp(m, "totp") == 0 || strcmp(m, "push") == 0;
}

int pc_cert_2fa_format(int64_t at, const char *method, char *buf, size_t n)
{
    int len;

    if (at <= 0 || !method || !method_known(method))
        return PC_ERR_INVAL;
    len = snprintf(buf, n, "time=%lld,method=%s", (long long)at, method);
    return len > 0 && (size_t)len < n ? PC_OK : PC_ERR_TOOBIG;
}

int pc_cert_2fa(const struct pc_cert *c, int64_t *at, char method[16])
{
    const struct pc_cert_parsed_opt *o = NULL;
    const char *v, *m;
    char digits[24];
    size_t nd;

    for (size_t i = 0; i < c->n_extensions; i++)
        if (strcmp(c->extensions[i].name, PC_CERT_EXT_2FA) == 0)
            o = &c->extensions[i];
    if (!o)
        return PC_ERR_NOTFOUND;
    v = o->value;
    if (!v || strncmp(v, "time=", 5) != 0)
        return PC_ERR_PARSE;
    v += 5;
    nd = strspn(v, "0123456789");
    if (nd == 0 || nd > 18 || v[0] == '0' || strncmp(v + nd, ",method=", 8) != 0)
        return PC_ERR_PARSE;
    memcpy(digits, v, nd);
    digits[nd] = '\0';
    m = v + nd + 8;
    if (!method_known(m))
        return PC_ERR_PARSE;
    *at = strtoll(digits, NULL, 10);
    snprintf(method, 16, "%s", m);
    return PC_OK;
}
