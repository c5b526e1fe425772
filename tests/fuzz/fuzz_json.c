/* SPDX-License-Identifier: BSD-2-Clause */
/* Strict JSON (lib/pc_json_strict.c, lib/pc_json.c): the grammar check at several nesting
 * limits, then the whole request-body parser. A body the parser accepts must come out of
 * pc_json_dump as a body the parser accepts again. */
#include "config.h"
#include "fuzz.h"
#include "pc_err.h"
#include "pc_json.h"
#include "pc_json_strict.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data, *why = NULL;
    json_object *o = NULL, *again = NULL;
    struct pc_jerr e = { 0 };
    int ok_deep;

    ok_deep = pc_json_validate(buf, size, 64, &why) == PC_OK;
    if (pc_json_validate(buf, size, 1, &why) == PC_OK && !ok_deep)
        abort(); /* a deeper limit can only accept more */
    if (pc_json_validate(buf, size, PC_JSON_MAX_DEPTH, &why) == PC_OK && !ok_deep)
        abort();
    if (pc_json_parse_object(buf, size, &o, &e) != PC_OK)
        return 0;
    if (!ok_deep)
        abort(); /* the parser runs the grammar check first */
    {
        const char *out = pc_json_dump(o);
        if (pc_json_parse_object(out, strlen(out), &again, &e) != PC_OK)
            abort(); /* what we would send back is not JSON we accept */
    }
    json_object_put(again);
    json_object_put(o);
    return 0;
}
