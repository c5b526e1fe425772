/* SPDX-License-Identifier: BSD-2-Clause */
/* Web Push (lib/pc_webpush.c): the bytes as an aes128gcm body for pc_webpush_decrypt (with the
 * RFC 8291 Appendix A subscription's keys, so the seed reaches the whole derivation), and as
 * the text fields of a subscription: the endpoint (pc_webpush_endpoint_valid, pc_webpush_origin,
 * a VAPID header for it) and p256dh/auth (pc_b64url_decode, pc_webpush_point_valid). An accepted
 * endpoint's origin must itself be an accepted endpoint; a decrypted body must fit. */
#include "config.h"
#include "fuzz.h"
#include "pc_err.h"
#include "pc_webpush.h"

/* RFC 8291 Appendix A: the user agent's private key and auth secret */
static const char ua_priv64[] = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
static const char auth64[] = "BTBZMqHH6r4Tts7J_aSIgg";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned char plain[PC_WEBPUSH_BODY_MAX], key[PC_WEBPUSH_PUB_LEN + 8];
    static char origin[PC_WEBPUSH_ENDPOINT_MAX + 1], header[PC_WEBPUSH_AUTH_HEADER_MAX];
    unsigned char ua_priv[PC_WEBPUSH_PRIV_LEN], auth[PC_WEBPUSH_AUTH_LEN];
    size_t n = 0, pn = 0;
    char *s;

    if (pc_b64url_decode(ua_priv64, ua_priv, sizeof ua_priv, &n) != PC_OK || n != 32 ||
        pc_b64url_decode(auth64, auth, sizeof auth, &n) != PC_OK || n != 16)
        abort();
    if (pc_webpush_decrypt(ua_priv, auth, data, size, plain, sizeof plain, &pn) == PC_OK &&
        (pn > PC_WEBPUSH_PLAIN_MAX || pn + PC_WEBPUSH_HEADER_LEN + 17 > size))
        abort();
    s = fuzz_cstr(data, size);
    if (pc_webpush_endpoint_valid(s)) {
        if (pc_webpush_origin(s, origin, sizeof origin) != PC_OK ||
            !pc_webpush_endpoint_valid(origin))
            abort();
        if (pc_webpush_vapid_header(ua_priv, s, "mailto:fuzz@example.net", 1700000000, 3600, header,
                                    sizeof header) != PC_OK)
            abort();
    } else if (pc_webpush_origin(s, origin, sizeof origin) == PC_OK) {
        abort(); /* an origin only for an accepted endpoint */
    }
    if (pc_b64url_decode(s, key, sizeof key, &n) == PC_OK && n == PC_WEBPUSH_PUB_LEN)
        (void)pc_webpush_point_valid(key);
    (void)pc_webpush_contact_valid(s);
    free(s);
    return 0;
}
