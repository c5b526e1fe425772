/* SPDX-License-Identifier: BSD-2-Clause */
/* QR codes on the terminal: libqrencode, two modules per character row with Unicode half
 * blocks. Light modules (and the quiet zone) are drawn in the foreground colour and dark ones
 * left as the background, so the code reads correctly on the usual light-on-dark terminal. */
#include "config.h"
#include "cli.h"
#include <errno.h>
#include <qrencode.h>
#include <string.h>

#define QUIET 4 /* light modules around the symbol, as ISO/IEC 18004 asks */

/* 1 if the module at (x, y) of the padded image is dark; outside the image: not drawn (0 lit). */
static int dark(const QRcode *q, int x, int y)
{
    x -= QUIET;
    y -= QUIET;
    if (x < 0 || y < 0 || x >= q->width || y >= q->width)
        return 0;
    return q->data[y * q->width + x] & 1;
}

int cli_qr_print(FILE *out, const char *text)
{
    QRcode *q;
    int size;

    errno = 0;
    q = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (!q)
        return errno == ERANGE ? PC_ERR_TOOBIG : errno == ENOMEM ? PC_ERR_NOMEM : PC_ERR_INVAL;
    size = q->width + 2 * QUIET;
    for (int y = 0; y < size; y += 2) {
        for (int x = 0; x < size; x++) {
            int top_lit = !dark(q, x, y);
            /* The row below the last padded row is the terminal background (not lit). */
            int bot_lit = y + 1 < size && !dark(q, x, y + 1);
            fputs(top_lit && bot_lit ? "\u2588"
                  : top_lit          ? "\u2580"
                  : bot_lit          ? "\u2584"
                                     : " ",
                  out);
        }
        fputc('\n', out);
    }
    QRcode_free(q);
    return PC_OK;
}
