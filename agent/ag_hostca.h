/* SPDX-License-Identifier: BSD-2-Clause */
/* The files sshd reads from the agent's ssh_dir (portcullis-agent.conf(5)):
 *   user_ca.pub    TrustedUserCAKeys: the user CA's trusted keys (two during a rotation's
 *                  overlap) beside whatever other keys are there already
 *   host-cert.pub  HostCertificate: the host certificate for host_key
 *   host_ca.pub    the host CA's trusted keys (for clients' @cert-authority lines)
 *   revoked.krl    RevokedKeys (ag_krl.h)
 * Every file is written whole (temp file, fsync, rename), mode 0644, and only when its content
 * changes; what the control plane sends is checked before it is written. Also the host
 * certificate renewal (POST /v1/hosts/self/renew) and the sshd reload after a new one. */
#ifndef AG_HOSTCA_H
#define AG_HOSTCA_H
#include "ag_config.h"
#include "pc_http.h"
#include "pc_sshkey.h"
#include <stddef.h>
#include <stdint.h>

#define AG_USER_CA_FILE "user_ca.pub"
#define AG_HOST_CERT_FILE "host-cert.pub"
#define AG_HOST_CA_FILE "host_ca.pub"
#define AG_KRL_FILE "revoked.krl"
#define AG_RELOAD_TIMEOUT_MS 60000
#define AG_CA_SET_MAX 4 /* most keys a CA set from the control plane may hold */

/* ssh_dir/name into out. */
int ag_hostca_path(const struct ag_config *c, const char *name, char *out, size_t outsz);
/* Creates ssh_dir (0755) if it is missing; an existing directory is left as it is. */
int ag_hostca_mkdir(const struct ag_config *c, char *err, size_t errsz);

/* Reads the host public key (config host_key): *line is its "TYPE BASE64" text (no comment).
 * PC_ERR_NOTFOUND when host_key is "none". */
int ag_hostca_read_host_key(const struct ag_config *c, char **line, char *err, size_t errsz);

/* Adds the CA key line to user_ca.pub unless that key is already in it; every other line is
 * kept byte for byte (an organisation's own CA keys are never dropped). */
int ag_hostca_merge_user_ca(const struct ag_config *c, const char *line, int *changed, char *err,
                            size_t errsz);
/* Replaces host_ca.pub with the CA key line (checked to be a public key). */
int ag_hostca_write_host_ca(const struct ag_config *c, const char *line, int *changed, char *err,
                            size_t errsz);
/* CA rotation. Rewrites user_ca.pub to hold exactly the user CA's current keys (lines, 1 to
 * AG_CA_SET_MAX public keys, checked): our lines (comment portcullis-user-ca) whose key left the
 * set are dropped, missing keys appended, every other line kept byte for byte. The file is
 * replaced whole (temp file, fsync, rename): sshd sees the old set or the new one, never an
 * empty or partial file. */
int ag_hostca_set_user_cas(const struct ag_config *c, const char *const *lines, size_t n,
                           int *changed, char *err, size_t errsz);
/* Replaces host_ca.pub with exactly these host CA keys (1 to AG_CA_SET_MAX, checked). */
int ag_hostca_write_host_cas(const struct ag_config *c, const char *const *lines, size_t n,
                             int *changed, char *err, size_t errsz);
/* 1 if host_ca.pub holds key ca, 0 if not, -1 if it cannot be read. */
int ag_hostca_host_ca_has(const struct ag_config *c, const struct pc_sshkey *ca);
/* Checks the certificate line (a host certificate whose signature verifies, for the key in
 * host_key, signed by one of the keys in host_ca.pub when that exists, valid now) and replaces
 * host-cert.pub with it. */
int ag_hostca_write_host_cert(const struct ag_config *c, const char *line, int *changed, char *err,
                              size_t errsz);
/* The validity window of host-cert.pub. PC_ERR_NOTFOUND if there is none. */
int ag_hostca_cert_window(const struct ag_config *c, uint64_t *valid_after, uint64_t *valid_before);

/* 1 if host-cert.pub is signed by a key in host_ca.pub, 0 if not, -1 if either is missing or
 * unreadable. */
int ag_hostca_cert_ca_trusted(const struct ag_config *c);

/* POST /v1/hosts/self/renew over h (which carries the host token) and writes host-cert.pub.
 * *serial gets the new certificate's serial. */
int ag_hostca_renew(const struct ag_config *c, pc_http *h, int *changed, int64_t *serial, char *err,
                    size_t errsz);

/* Runs reload_command with /bin/sh -c (nothing if it is unset), waits up to
 * AG_RELOAD_TIMEOUT_MS. PC_OK when it exited 0. Safe to call from a threaded process. */
int ag_hostca_reload(const struct ag_config *c, char *err, size_t errsz);

#endif
