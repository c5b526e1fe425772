/* SPDX-License-Identifier: BSD-2-Clause */
/* The list commands' text tables: a header row, then one row per object of the server's list,
 * each cell formatted by its column; columns sized to fit. */
#include "config.h"
#include "cli.h"
#include <stdlib.h>
#include <string.h>

#define MAX_COLS 16
#define CELL_SIZE 2048 /* the largest cell buffer a column may ask for */

struct table {
    size_t ncols, ncells, cap;
    char **cells; /* row-major; row 0 holds the titles */
};

/* Appends a copy of s (sanitized: terminal safety, whatever formatted it) as the next cell. */
static int add_cell(struct table *t, const char *s)
{
    char *copy;

    if (!s)
        s = "-";
    if (t->ncells == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16 * t->ncols;
        char **nc = realloc(t->cells, cap * sizeof *nc);
        if (!nc)
            return PC_ERR_NOMEM;
        t->cells = nc;
        t->cap = cap;
    }
    if (!(copy = malloc(strlen(s) + 1)))
        return PC_ERR_NOMEM;
    cli_sanitize(copy, strlen(s) + 1, s);
    t->cells[t->ncells++] = copy;
    return PC_OK;
}

/* Terminal columns of a UTF-8 string, counting one per code point. */
static size_t width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            w++;
    return w;
}

static void print(const struct table *t, FILE *out)
{
    size_t w[MAX_COLS] = { 0 };

    for (size_t i = 0; i < t->ncells; i++)
        if (width(t->cells[i]) > w[i % t->ncols])
            w[i % t->ncols] = width(t->cells[i]);
    for (size_t i = 0; i < t->ncells; i++) {
        const char *s = t->cells[i];
        fputs(s, out);
        if ((i + 1) % t->ncols)
            fprintf(out, "%*s", (int)(w[i % t->ncols] - width(s) + 2), "");
        else
            fputc('\n', out);
    }
}

int cli_print_table(FILE *out, json_object *array, const struct cli_column *cols, size_t n)
{
    struct table t = { .ncols = n };
    char buf[CELL_SIZE];
    int rc = PC_OK;

    if (n < 1 || n > MAX_COLS || !json_object_is_type(array, json_type_array))
        return cli_err(PC_ERR_INVAL, "internal error: a table of %zu columns", n);
    for (size_t i = 0; rc == PC_OK && i < n; i++)
        rc = add_cell(&t, cols[i].title);
    for (size_t r = 0; rc == PC_OK && r < json_object_array_length(array); r++) {
        json_object *o = json_object_array_get_idx(array, r);
        for (size_t i = 0; rc == PC_OK && i < n; i++) {
            size_t sz = cols[i].size && cols[i].size < sizeof buf ? cols[i].size : sizeof buf;
            cli_format_fn *format = cols[i].format ? cols[i].format : cli_field;
            rc = add_cell(&t, format(o, cols[i].json_key, buf, sz));
        }
    }
    if (rc == PC_OK)
        print(&t, out);
    for (size_t i = 0; i < t.ncells; i++)
        free(t.cells[i]);
    free(t.cells);
    return rc == PC_OK ? PC_OK : cli_err(rc, "out of memory");
}

int cli_list(struct cli *c, const char *path, const char *key, const char *empty,
             const struct cli_column *cols, size_t n)
{
    json_object *reply, *list;
    int rc = cli_get_list(c, path, key, empty, &reply, &list);

    if (rc == PC_OK && list)
        rc = cli_print_table(stdout, list, cols, n);
    json_object_put(reply);
    return rc;
}
