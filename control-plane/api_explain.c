/* SPDX-License-Identifier: BSD-2-Clause */
/* GET /v1/audit/explain/{txid} (admin): the decision path of one login (cp_explain.h). */
#include "config.h"
#include "api.h"
#include "cp_explain.h"
#include "pc_err.h"
#include "pc_valid.h"

void api_audit_explain(struct cp_call *c, struct cp_resp *r)
{
    const char *txid = c->seg[2];
    json_object *o = NULL;
    int rc;

    if (!pc_valid_hex(txid, 32, 32)) {
        cp_resp_error(r, 404, "not_found", "no login with this txid (32 hex digits)");
        return;
    }
    if ((rc = cp_explain_tx(txid, &o)) == PC_ERR_NOTFOUND) {
        cp_resp_error(r, 404, "not_found",
                      "no login with this txid (unknown, or deleted after --retention)");
        return;
    }
    if (rc != PC_OK) {
        cp_resp_from_err(r, rc, "login");
        return;
    }
    cp_resp_json(r, 200, o);
}
