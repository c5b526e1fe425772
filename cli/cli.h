/* SPDX-License-Identifier: BSD-2-Clause */
/* The `portcullis` admin CLI: shared state, the server connection, error reporting and output
 * helpers. Commands return PC_OK or a negative PC_ERR_* after printing their own message;
 * CLI_EUSAGE (a bad command line) makes main exit 2, every other error exits 1. */
#ifndef PC_CLI_H
#define PC_CLI_H
#include "pc_err.h"
#include "pc_http.h"
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>

#define CLI_EUSAGE PC_ERR_INVAL

struct cli {
    /* Global options (command line, else environment); NULL if not given. */
    const char *url; /* checked https://HOST[:PORT], no trailing '/' (in url_buf) */
    const char *pin;
    const char *cafile;
    const char *token_file;
    int json; /* --json: machine-readable output on stdout */
    char url_buf[1024];
    pc_http *http;     /* opened by cli_connect */
    int no_token;      /* the command needs no token (login, ssh-config) */
    int session_ok;    /* without --token-file, the saved session may be used */
    int using_session; /* set by cli_connect when it took the session */
    char session_path[4096];
};

/* ---- cli.c: messages, connection, requests ---- */

/* Prints "portcullis: MESSAGE" on stderr and returns rc. */
int cli_err(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A usage error: prints the message and a pointer to --help; returns CLI_EUSAGE. */
int cli_usage_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Checks url / pin / cafile / token file and opens the HTTPS client (once). */
int cli_connect(struct cli *c);
/* One request. Transport failures (TLS, network, timeout, bad reply) are reported here and
 * returned; any HTTP status comes back as PC_OK with *status set. *reply may be NULL. */
int cli_request(struct cli *c, const char *method, const char *path, json_object *body,
                long *status, json_object **reply);
/* Reports a non-2xx status (401: the token; others: the server's message, then hint if not
 * NULL) and returns a PC_ERR_*; returns PC_OK for 2xx. */
int cli_check(struct cli *c, long status, json_object *reply, const char *hint);
/* cli_request + cli_check; on success *reply is a JSON object (never NULL). */
int cli_call(struct cli *c, const char *method, const char *path, json_object *body,
             json_object **reply, const char *hint);

/* Path and query parts are built only from values checked by these, which need no escaping. */
/* User names as the API accepts them: [a-z_][a-z0-9_.-]{0,31}. */
/* GET path and find the array reply[key]. With --json it prints the reply instead; with an
 * empty list it prints `empty` (if not NULL). *list is set only when the caller should print
 * rows. The caller puts *reply in every case. */
int cli_get_list(struct cli *c, const char *path, const char *key, const char *empty,
                 json_object **reply, json_object **list);
int cli_valid_user(const char *name);

/* ~/.config/portcullis/session (or $XDG_CONFIG_HOME/portcullis/session); 0 or PC_ERR_*. */
int cli_session_path(char *out, size_t outsz);

/* ---- cli.c: output ---- */

/* Prints obj compactly on stdout followed by a newline. */
void cli_print_json(json_object *obj);
/* A field as display text: strings as-is, numbers, true/false -> yes/no, null/absent -> "-".
 * The text lives in buf or in obj. Control characters are replaced (terminal safety). */
const char *cli_field(json_object *obj, const char *key, char *buf, size_t bufsz);
/* An EPOCH field as "YYYY-MM-DDTHH:MM:SSZ" (UTC); 0/absent -> "-". */
const char *cli_field_time(json_object *obj, const char *key, char *buf, size_t bufsz);
/* Copies s for the terminal (lib/pc_term.h): controls become '?', format characters (bidi
 * overrides, zero-width characters) are dropped. Everything the CLI prints that came from the
 * server goes through this or cli_print_json. */
void cli_sanitize(char *dst, size_t dstsz, const char *s);

/* ---- cli_table.c: the list commands' tables ---- */

/* Formats row[key] as display text in buf (or returns a constant); cli_field, cli_field_time. */
typedef const char *cli_format_fn(json_object *row, const char *key, char *buf, size_t bufsz);
/* One column: its title, the key of the row objects it shows, its formatter (NULL: cli_field)
 * and the size of the cell's buffer with its NUL (0 or too large: 2048): longer text is cut. */
struct cli_column {
    const char *title;
    const char *json_key;
    cli_format_fn *format;
    size_t size;
};
/* Prints the objects of array as a plain text table: the titles, then a row per object;
 * columns sized to fit (1 to 16 columns). Every cell is passed through cli_sanitize. Returns
 * PC_OK, or an error it reported (out of memory). */
int cli_print_table(FILE *out, json_object *array, const struct cli_column *cols, size_t n);
/* A list command's whole output: cli_get_list, then the list as cli_print_table on stdout. */
int cli_list(struct cli *c, const char *path, const char *key, const char *empty,
             const struct cli_column *cols, size_t n);

/* ---- cli_qr.c ---- */
/* Prints text as a QR code (ECLEVEL_M) with Unicode half blocks, light modules drawn, so it
 * scans on a dark terminal; quiet zone of 2 modules. */
int cli_qr_print(FILE *out, const char *text);

/* ---- cmd_userkey.c: helpers shared by the CA commands ---- */
/* The first line of a public key file (FILE, or FILE.pub if FILE is a private key), without
 * the newline; *line is malloc'ed. Reports its own errors. */
int cli_read_pubkey(const char *path, char **line);
/* Percent-escapes everything but [A-Za-z0-9._~-] (for fingerprints in paths). */
void cli_url_escape(char *dst, size_t dstsz, const char *s);

/* ---- cmd_login.c ---- */
/* A TOTP code of who: from code_file (not NULL), else the terminal with echo off, else a line of
 * stdin. Reports its own errors. */
int cli_read_code(const char *code_file, const char *who, char *code, size_t n);

/* ---- commands (argv[0] is the command word) ---- */
int cmd_user(struct cli *c, int argc, char **argv);
int cmd_totp(struct cli *c, int argc, char **argv);
int cmd_host(struct cli *c, int argc, char **argv);
int cmd_approvals(struct cli *c, int argc, char **argv);
int cmd_approve(struct cli *c, int argc, char **argv);
int cmd_deny(struct cli *c, int argc, char **argv);
int cmd_audit(struct cli *c, int argc, char **argv);
/* cmd_explain.c */
int cmd_explain(struct cli *c, int argc, char **argv);
int cli_explain_last_denial(struct cli *c, const char *user);
int cmd_user_key(struct cli *c, int argc, char **argv); /* argv[0] = "key" */
int cmd_policy(struct cli *c, int argc, char **argv);
int cmd_cert(struct cli *c, int argc, char **argv);
int cmd_ssh_config(struct cli *c, int argc, char **argv);
int cmd_login(struct cli *c, int argc, char **argv);
int cmd_ca(struct cli *c, int argc, char **argv);       /* CA rotation */
int cmd_request(struct cli *c, int argc, char **argv);  /* request …, access on request */
int cmd_requests(struct cli *c, int argc, char **argv); /* requests */

/* ---- cli_args.c: the commands' arguments ---- */
/* If argv[*i] is the option name ("--name V" or "--name=V"): *val = V, *i moves past it,
 * returns 1. Returns 0 if it is not that option, CLI_EUSAGE (reported) if V is missing. */
int cli_opt(int argc, char **argv, int *i, const char *name, const char **val);
/* Reports an argument that starts with '-' but is no option of cmd; returns CLI_EUSAGE. */
int cli_bad_opt(const char *cmd, const char *arg);
/* Prints a DURATION-checked value or reports the usage error. */
int cli_parse_duration(const char *opt, const char *v, int64_t min, int64_t max, int64_t *out);

/* ---- main.c: the command line ---- */
void cli_print_usage(FILE *out);

#endif
