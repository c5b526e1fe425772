/* SPDX-License-Identifier: BSD-2-Clause */
/* Certificate parsing (lib/pc_cert.c): the input as a certificate blob, as a -cert.pub line
 * and as sshd's SSH_AUTH_INFO_0 text (what the agent receives from PAM). */
#include "config.h"
#include "fuzz.h"
#include "pc_cert.h"
#include "pc_err.h"

static void use(struct pc_cert *c)
{
    if (!c)
        return;
    (void)pc_cert_valid_at(c, 1700000000);
    (void)pc_cert_has_principal(c, "root");
    for (size_t i = 0; i < c->n_principals; i++)
        (void)pc_cert_has_principal(c, c->principals[i]);
    pc_cert_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pc_cert *c = NULL;
    char *s = fuzz_cstr(data, size);

    if (pc_cert_parse(data, size, &c) == PC_OK)
        use(c);
    c = NULL;
    if (pc_cert_parse_line(s, &c) == PC_OK)
        use(c);
    c = NULL;
    if (pc_cert_parse_auth_info(s, &c) == PC_OK)
        use(c);
    free(s);
    return 0;
}
