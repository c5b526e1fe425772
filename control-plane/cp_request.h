/* SPDX-License-Identifier: BSD-2-Clause */
/* One HTTP request as the handlers see it, and the helpers that build replies. */
#ifndef CP_REQUEST_H
#define CP_REQUEST_H
#include "cp_tokens.h"
#include "cp_waiters.h"
#include "pc_json.h"
#include "pc_sshbuf.h"
#include <json-c/json.h>
#include <microhttpd.h>
#include <stddef.h>

#define CP_MAX_BODY (64 * 1024)
#define CP_MAX_SEGS 64 /* URL-unescaped fingerprints may hold several '/' */

/* Per-connection state kept by libmicrohttpd between callbacks. */
struct cp_resp;

struct cp_req {
    struct pc_sshbuf body; /* secret (codes, tokens), at most CP_MAX_BODY bytes */
    int too_large;
    int64_t wait_deadline_ms; /* long-poll: set on the first pass, kept across resumes */
    struct cp_wait wait;
    int deferred;          /* cp_defer.h, under its lock: 1 running on the pool, 2 reply ready */
    struct cp_resp *dresp; /* that reply (cp_defer_take) */
};

struct cp_call {
    struct MHD_Connection *conn;
    struct cp_req *req;
    const char *method;
    const char *seg[CP_MAX_SEGS]; /* path segments after "/v1" … e.g. {"users","alice","totp"} */
    int nseg;
    char pathbuf[512];
    struct cp_identity id;
    char source[64];
    json_object *body; /* parsed JSON object for POST/PATCH, else NULL */
    const char *url;   /* the whole (unescaped) path, "/v1/…" */
};

struct cp_resp {
    unsigned status;
    json_object *body;  /* owned; NULL → "{}" */
    int suspended;      /* the handler suspended the connection: send nothing now */
    int detached;       /* it left libmicrohttpd (cp_parked.h): drop libmicrohttpd's side */
    unsigned char *raw; /* owned, malloc'ed: a non-JSON body (sent instead of body) */
    size_t raw_len;
    const char *raw_type;                   /* its Content-Type (static) */
    char header_name[32], header_value[64]; /* one extra response header, if name is set */
};

/* One piece of a request's body, as libmicrohttpd's access handler gets it (upload_data,
 * *upload_data_size non-zero): stored in req->body up to its bound; past that the rest is read
 * and dropped and req->too_large set, so that the handler answers 413. MHD_YES with *size
 * zeroed, or MHD_NO (out of memory: close the connection). */
enum MHD_Result cp_req_body_piece(struct cp_req *req, const char *data, size_t *size);

void cp_resp_json(struct cp_resp *r, unsigned status, json_object *body);
/* A binary reply: takes ownership of data (malloc'ed). */
void cp_resp_raw(struct cp_resp *r, unsigned status, const char *type, unsigned char *data,
                 size_t len);
void cp_resp_error(struct cp_resp *r, unsigned status, const char *code, const char *message);
/* Maps a PC_ERR_* from the store layer to a status and error code; what names the resource. */
void cp_resp_from_err(struct cp_resp *r, int err, const char *what);
/* 400 from a JSON validation failure. */
void cp_resp_jerr(struct cp_resp *r, const struct pc_jerr *e);
/* Checks the body's fields against allowed; on failure fills r and returns nonzero. */
int cp_body_check(struct cp_call *c, struct cp_resp *r, const char *const *allowed);

#endif
