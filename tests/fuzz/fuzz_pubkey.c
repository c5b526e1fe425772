/* SPDX-License-Identifier: BSD-2-Clause */
/* Public-key decoding (lib/pc_sshkey.c): the input as an authorized_keys-style line
 * ("TYPE BASE64 [comment]", what users and hosts send as public_key / host_key) and as a raw
 * key blob. A key that parses must survive a round trip through its own line. */
#include "config.h"
#include "fuzz.h"
#include "pc_err.h"
#include "pc_sshkey.h"

static void round_trip(const struct pc_sshkey *k, const char *comment)
{
    char fp[PC_SSHKEY_FP_SIZE], *line = NULL;
    struct pc_sshkey *again = NULL;

    if (pc_sshkey_fingerprint(k, fp) != PC_OK)
        abort();
    if (pc_sshkey_to_line(k, comment, &line) != PC_OK)
        abort();
    if (pc_sshkey_parse_line(line, &again, NULL) != PC_OK || !pc_sshkey_equal(k, again))
        abort(); /* a key we accepted must read back as itself */
    pc_sshkey_free(again);
    free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pc_sshkey *k = NULL;
    char *s = fuzz_cstr(data, size), *comment = NULL, *type = NULL;
    unsigned char *blob = NULL;
    size_t len = 0;

    if (pc_sshkey_parse_line(s, &k, &comment) == PC_OK) {
        round_trip(k, NULL);
        pc_sshkey_free(k);
        free(comment);
    }
    k = NULL;
    comment = NULL;
    if (pc_sshkey_decode_line(s, &type, &blob, &len, &comment) == PC_OK) {
        free(type);
        free(blob);
        free(comment);
    }
    if (pc_sshkey_from_blob(data, size, &k) == PC_OK) {
        round_trip(k, NULL);
        pc_sshkey_free(k);
    }
    free(s);
    return 0;
}
