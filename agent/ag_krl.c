/* SPDX-License-Identifier: BSD-2-Clause */
/* KRL fetch, check (lib/pc_krl) and atomic replacement (see ag_krl.h). The KRL is binary: it is
 * fetched with pc_http_get, bounded by AG_KRL_MAX. */
#include "config.h"
#include "ag_krl.h"
#include "ag_hostca.h"
#include "pc_err.h"
#include "pc_fs.h"
#include "pc_http.h"
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GET path (public: no token is sent) into *data, at most AG_KRL_MAX bytes, with a handle of
 * its own set up like every control-plane call (lib/pc_http: pin or CA file, https only, no
 * redirects, no proxy from the environment, TLS 1.2+, the configured timeouts). */
static int fetch(const struct ag_config *c, const char *path, unsigned char **data, size_t *len,
                 long *status, char *err, size_t errsz)
{
    struct pc_http_opts o = { .base_url = c->url,
                              .pin = c->pin,
                              .cafile = c->cafile,
                              .connect_timeout_ms = c->connect_timeout_ms,
                              .timeout_ms = c->timeout_ms };
    char herr[512] = "";
    pc_http *h = NULL;
    int rc;

    rc = pc_http_new(&o, &h, herr, sizeof herr);
    if (rc == PC_OK)
        rc = pc_http_get(h, path, AG_KRL_MAX, 0, status, data, len, herr, sizeof herr);
    pc_http_free(h);
    if (rc != PC_OK)
        snprintf(err, errsz, "GET %s failed: %s", path, herr);
    return rc;
}

int ag_krl_sync(const struct ag_config *c, int *changed, uint64_t *version, char *err, size_t errsz)
{
    char path[PATH_MAX], *old = NULL;
    unsigned char *krl = NULL;
    size_t len = 0, oldlen = 0;
    long status = 0;
    int rc;

    *changed = 0;
    *version = 0;
    if (ag_hostca_path(c, AG_KRL_FILE, path, sizeof path) != PC_OK) {
        snprintf(err, errsz, "ssh_dir is too long");
        return PC_ERR_INVAL;
    }
    if ((rc = fetch(c, "/v1/krl", &krl, &len, &status, err, errsz)) != PC_OK)
        goto out;
    if (status != 200) {
        snprintf(err, errsz, "GET /v1/krl answered HTTP %ld", status);
        rc = PC_ERR_STATE;
        goto out;
    }
    if ((rc = pc_krl_check(krl, len, version)) != PC_OK) {
        snprintf(err, errsz,
                 "GET /v1/krl returned %zu bytes that are not an OpenSSH KRL: "
                 "keeping %s",
                 len, path);
        goto out;
    }
    if (pc_read_file(path, AG_KRL_MAX, &old, &oldlen) == PC_OK && oldlen == len &&
        memcmp(old, krl, len) == 0)
        goto out;
    if ((rc = ag_hostca_mkdir(c, err, errsz)) != PC_OK)
        goto out;
    if ((rc = pc_write_file_atomic(path, krl, len, 0644)) != PC_OK) {
        snprintf(err, errsz, "cannot replace %s: %s", path, strerror(errno));
        goto out;
    }
    *changed = 1;
out:
    free(old);
    free(krl);
    return rc;
}
