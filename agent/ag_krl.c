/* KRL fetch, check and atomic replacement (see ag_krl.h). The KRL is binary, so it is fetched
 * with its own libcurl handle set up like lib/pc_http.c's (pinned key or CA file, https only,
 * no redirects, no proxy from the environment, TLS 1.2+). */
#include "config.h"
#include "ag_krl.h"
#include "ag_hostca.h"
#include "pc_err.h"
#include "pc_fs.h"
#include "pc_sshbuf.h"
#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char krl_magic[8] = { 'S', 'S', 'H', 'K', 'R', 'L', '\n', 0 };

int ag_krl_check(const unsigned char *data, size_t len, uint64_t *version)
{
    struct pc_sshbuf b;
    unsigned char magic[8];
    uint32_t fmt;
    uint64_t date, flags;
    const unsigned char *p;
    size_t n;

    if (len < sizeof magic || len > AG_KRL_MAX)
        return PC_ERR_PARSE;
    pc_sshbuf_init_reader(&b, data, len);
    if (pc_sshbuf_get_raw(&b, magic, sizeof magic) != PC_OK ||
        memcmp(magic, krl_magic, sizeof magic) != 0 || pc_sshbuf_get_u32(&b, &fmt) != PC_OK ||
        fmt != 1 || pc_sshbuf_get_u64(&b, version) != PC_OK ||
        pc_sshbuf_get_u64(&b, &date) != PC_OK || pc_sshbuf_get_u64(&b, &flags) != PC_OK ||
        pc_sshbuf_get_string(&b, &p, &n) != PC_OK || pc_sshbuf_get_string(&b, &p, &n) != PC_OK)
        return PC_ERR_PARSE;
    while (pc_sshbuf_remaining(&b) > 0) {
        uint8_t type;
        if (pc_sshbuf_get_u8(&b, &type) != PC_OK || pc_sshbuf_get_string(&b, &p, &n) != PC_OK)
            return PC_ERR_PARSE;
        /* 1 certificates, 2 explicit keys, 3 SHA-1 fingerprints, 5 SHA-256 fingerprints;
         * 4 (signature) is refused by OpenSSH >= 9.4. */
        if (type != 1 && type != 2 && type != 3 && type != 5)
            return PC_ERR_PARSE;
    }
    return PC_OK;
}

struct body {
    unsigned char *data;
    size_t len, cap;
    int too_big;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct body *b = ud;
    size_t n = size * nmemb;

    if (n > AG_KRL_MAX - b->len) {
        b->too_big = 1;
        return 0;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        unsigned char *nd;
        while (cap < b->len + n)
            cap *= 2;
        if (!(nd = realloc(b->data, cap)))
            return 0;
        b->data = nd;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    return n;
}

/* GET url+path into *b; *status is the HTTP status. */
static int fetch(const struct ag_config *c, const char *path, struct body *b, long *status,
                 char *err, size_t errsz)
{
    char url[2048], cerr[CURL_ERROR_SIZE] = "";
    CURL *h = curl_easy_init();
    CURLcode rc = CURLE_OK;

    *status = 0;
    if (!h) {
        snprintf(err, errsz, "out of memory");
        return PC_ERR_NOMEM;
    }
    snprintf(url, sizeof url, "%s%s", c->url, path);
#define SET(opt, val) do { if (rc == CURLE_OK) rc = curl_easy_setopt(h, opt, val); } while (0)
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_URL, url);
    SET(CURLOPT_PROTOCOLS_STR, "https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_PROXY, "");
    SET(CURLOPT_NETRC, (long)CURL_NETRC_IGNORED);
    SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    SET(CURLOPT_SSL_CIPHER_LIST, "HIGH:!aNULL:!eNULL:!kRSA:!PSK:!SRP:!MD5:!RC4:!3DES");
    SET(CURLOPT_SSL_SESSIONID_CACHE, 0L);
    SET(CURLOPT_ERRORBUFFER, cerr);
    SET(CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    SET(CURLOPT_TIMEOUT_MS, c->timeout_ms);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)AG_KRL_MAX);
    SET(CURLOPT_USERAGENT, "portcullis-agent/" PC_VERSION);
    if (c->pin)
        SET(CURLOPT_PINNEDPUBLICKEY, c->pin);
    if (c->cafile) {
        SET(CURLOPT_SSL_VERIFYPEER, 1L);
        SET(CURLOPT_SSL_VERIFYHOST, 2L);
        SET(CURLOPT_CAINFO, c->cafile);
        SET(CURLOPT_CAPATH, (char *)NULL);
    } else {
        SET(CURLOPT_SSL_VERIFYPEER, 0L);
        SET(CURLOPT_SSL_VERIFYHOST, 0L);
    }
    SET(CURLOPT_WRITEFUNCTION, on_data);
    SET(CURLOPT_WRITEDATA, b);
#undef SET
    if (rc == CURLE_OK)
        rc = curl_easy_perform(h);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(h);
    if (rc == CURLE_OK)
        return PC_OK;
    snprintf(err, errsz, "GET %s failed: %s", path,
             b->too_big ? "the KRL is too large" : cerr[0] ? cerr : curl_easy_strerror(rc));
    return rc == CURLE_OPERATION_TIMEDOUT ? PC_ERR_TIMEOUT :
           rc == CURLE_SSL_PINNEDPUBKEYNOTMATCH ? PC_ERR_TLS : PC_ERR_NET;
}

int ag_krl_sync(const struct ag_config *c, int *changed, uint64_t *version, char *err,
                size_t errsz)
{
    char path[PATH_MAX], *old = NULL;
    struct body b = { 0 };
    size_t oldlen = 0;
    long status = 0;
    int rc;

    *changed = 0;
    *version = 0;
    if (ag_hostca_path(c, AG_KRL_FILE, path, sizeof path) != PC_OK) {
        snprintf(err, errsz, "ssh_dir is too long");
        return PC_ERR_INVAL;
    }
    if ((rc = fetch(c, "/v1/krl", &b, &status, err, errsz)) != PC_OK)
        goto out;
    if (status != 200) {
        snprintf(err, errsz, "GET /v1/krl answered HTTP %ld", status);
        rc = PC_ERR_STATE;
        goto out;
    }
    if ((rc = ag_krl_check(b.data, b.len, version)) != PC_OK) {
        snprintf(err, errsz, "GET /v1/krl returned %zu bytes that are not an OpenSSH KRL: "
                 "keeping %s", b.len, path);
        goto out;
    }
    if (pc_read_file(path, AG_KRL_MAX, &old, &oldlen) == PC_OK && oldlen == b.len &&
        memcmp(old, b.data, b.len) == 0)
        goto out;
    if ((rc = ag_hostca_mkdir(c, err, errsz)) != PC_OK)
        goto out;
    if ((rc = pc_write_file_atomic(path, b.data, b.len, 0644)) != PC_OK) {
        snprintf(err, errsz, "cannot replace %s: %s", path, strerror(errno));
        goto out;
    }
    *changed = 1;
out:
    free(old);
    free(b.data);
    return rc;
}
