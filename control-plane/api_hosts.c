/* SPDX-License-Identifier: BSD-2-Clause */
/* Host endpoints of the CA (principals decision, host certificate renewal) and host labels. */
#include "config.h"
#include "api.h"
#include "cp_access.h"
#include "cp_hosts.h"
#include "cp_offline.h"
#include "cp_userkeys.h"
#include "pc_config.h"
#include "pc_err.h"
#include "pc_log.h"
#include "pc_time.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PRINCIPALS_CACHE_TTL 300

static const char *arg(struct cp_call *c, const char *name)
{
    return MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* GET /v1/hosts/self/principals?account=A&key_id=K&serial=N&fingerprint=FP */
void api_host_principals(struct cp_call *c, struct cp_resp *r)
{
    const char *account = arg(c, "account"), *key_id = arg(c, "key_id"),
               *serial_s = arg(c, "serial");
    const char *fp_arg = arg(c, "fingerprint");
    char fp[PC_SSHKEY_FP_SIZE + 8] = "";
    uint64_t serial = 0;
    int64_t grant_until = 0, cache_ttl = PRINCIPALS_CACHE_TTL;
    json_object *o, *arr, *options = NULL;
    int rc = PC_OK;

    if (!account || !key_id || !serial_s) {
        cp_resp_error(r, 400, "missing_field", "account, key_id and serial are required");
        return;
    }
    if (pc_parse_uint(serial_s, 0, UINT64_C(999999999999999), &serial) != PC_OK) {
        cp_resp_error(r, 400, "bad_field", "serial must be a decimal number below 10^15");
        return;
    }
    /* An unescaped '+' of the base64 fingerprint may arrive as a space. */
    if (fp_arg && strlen(fp_arg) < sizeof fp) {
        for (size_t i = 0; i <= strlen(fp_arg); i++)
            fp[i] = fp_arg[i] == ' ' ? '+' : fp_arg[i];
    } else if (fp_arg) {
        serial = 0; /* no fingerprint is that long: not one of ours */
    }
    /* Names no rule could hold are simply not allowed. */
    if (serial > 0 && cp_user_name_valid(account) && cp_user_name_valid(key_id))
        rc = cp_host_principals(&c->id, account, key_id, (int64_t)serial, fp[0] ? fp : NULL,
                                &options, &grant_until);
    if (rc != PC_OK) {
        cp_resp_error(r, 500, "internal", "cannot decide");
        return;
    }
    pc_log(PC_LOG_DEBUG, "event=principals host=%lld account=%s serial=%llu allowed=%d",
           (long long)c->id.host_id, cp_user_name_valid(account) ? account : "-",
           (unsigned long long)serial, options != NULL);
    o = json_object_new_object();
    arr = json_object_new_array();
    if (options)
        json_object_array_add(arr, json_object_new_string(key_id));
    json_object_object_add(o, "principals", arr);
    if (options)
        json_object_object_add(o, "options", options); /* the reply owns it now */
    /* A grant's answer is cached at most CP_ACCESS_CACHE_TTL and never past the grant's end. */
    if (grant_until > 0) {
        int64_t left = grant_until - pc_now();
        cache_ttl = left < CP_ACCESS_CACHE_TTL ? (left > 0 ? left : 0) : CP_ACCESS_CACHE_TTL;
    }
    json_object_object_add(o, "cache_ttl", json_object_new_int64(cache_ttl));
    cp_resp_json(r, 200, o);
}

void api_host_renew(struct cp_call *c, struct cp_resp *r)
{
    static const char *const fields[] = { "host_key", NULL };
    struct pc_jerr e = { 0 };
    const char *line = NULL;
    struct pc_sshkey *key = NULL;
    struct cp_issued is;
    json_object *o;
    int rc;

    if (cp_body_check(c, r, fields))
        return;
    if (pc_json_get_str(c->body, "host_key", 1, PC_SSHKEY_LINE_MAX, &line, &e) != PC_OK) {
        cp_resp_jerr(r, &e);
        return;
    }
    if (cp_userkey_parse(line, &key, NULL) != PC_OK) {
        cp_resp_error(r, 400, "bad_field", "field 'host_key' must be an OpenSSH public key line");
        return;
    }
    rc = cp_host_renew(&c->id, c->source, key, &is);
    pc_sshkey_free(key);
    if (rc == PC_ERR_STATE) {
        cp_resp_error(r, 403, "forbidden",
                      "this is not the host key enrolled for this host: "
                      "a new host key needs a new enrollment token");
        return;
    }
    if (rc != PC_OK) {
        cp_resp_from_err(r, rc, "host certificate");
        return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "host_certificate", json_object_new_string(is.line));
    json_object_object_add(o, "serial", json_object_new_int64((int64_t)is.serial));
    json_object_object_add(o, "valid_before", json_object_new_int64(is.valid_before));
    cp_issued_free(&is);
    cp_resp_json(r, 200, o);
}

void api_host_patch(struct cp_call *c, struct cp_resp *r)
{
    static const char *const fields[] = { "labels", NULL };
    struct cp_who who = { "admin", c->source };
    json_object *labels = NULL, *out = NULL;
    uint64_t id = 0;
    int rc;

    if (cp_body_check(c, r, fields))
        return;
    if (pc_parse_uint(c->seg[1], 1, UINT64_C(1) << 62, &id) != PC_OK) {
        cp_resp_error(r, 404, "not_found", "host not found");
        return;
    }
    if (!json_object_object_get_ex(c->body, "labels", &labels)) {
        cp_resp_error(r, 400, "missing_field", "field 'labels' is required");
        return;
    }
    if (!json_object_is_type(labels, json_type_object) || !api_labels_valid(labels)) {
        cp_resp_error(r, 400, "bad_field",
                      "field 'labels' must be an object of at most 32 string values");
        return;
    }
    if ((rc = cp_host_set_labels(&who, (int64_t)id, labels, &out)) != PC_OK) {
        cp_resp_from_err(r, rc, "host");
        return;
    }
    cp_resp_json(r, 200, out);
}

void api_host_delete(struct cp_call *c, struct cp_resp *r)
{
    struct cp_who who = { "admin", c->source };
    json_object *out = NULL;
    uint64_t id = 0;
    int rc;

    if (pc_parse_uint(c->seg[1], 1, UINT64_C(1) << 62, &id) != PC_OK) {
        cp_resp_error(r, 404, "not_found", "host not found");
        return;
    }
    if ((rc = cp_host_delete(&who, (int64_t)id, &out)) != PC_OK) {
        cp_resp_from_err(r, rc, "host");
        return;
    }
    cp_resp_json(r, 200, out);
}

/* POST /v1/hosts/self/offline/events (issue 13): {"events":[…]} → {"added":N,"duplicates":M} */
void api_host_offline_events(struct cp_call *c, struct cp_resp *r)
{
    static const char *const fields[] = { "events", NULL };
    struct pc_jerr e = { 0 };
    json_object *events = NULL, *o;
    int added = 0, dups = 0, rejected = 0;

    if (cp_body_check(c, r, fields))
        return;
    if (!json_object_object_get_ex(c->body, "events", &events) ||
        cp_offline_events_ok(events, &e) != PC_OK) {
        if (!e.code) {
            e.code = "bad_field";
            snprintf(e.message, sizeof e.message, "field 'events' is required");
        }
        cp_resp_jerr(r, &e);
        return;
    }
    if (cp_offline_events_add(&c->id, events, &added, &dups, &rejected) != PC_OK) {
        cp_resp_error(r, 500, "internal", "cannot store the events");
        return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "added", json_object_new_int(added));
    json_object_object_add(o, "duplicates", json_object_new_int(dups));
    json_object_object_add(o, "rejected", json_object_new_int(rejected));
    cp_resp_json(r, 200, o);
}

/* GET /v1/hosts/self/offline (issue 13): what this host may decide while the control plane is
 * unreachable; only about people allowed on this host. */
void api_host_offline(struct cp_call *c, struct cp_resp *r)
{
    json_object *o = NULL;
    int rc = cp_offline_host_rules(&c->id, &o);

    if (rc == PC_ERR_TOOBIG) {
        cp_resp_error(r, 500, "internal", "too many people for one host's offline document");
        return;
    }
    if (rc != PC_OK) {
        cp_resp_error(r, 500, "internal", "cannot build the offline document");
        return;
    }
    cp_resp_json(r, 200, o);
}
