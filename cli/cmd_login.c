/* SPDX-License-Identifier: BSD-2-Clause */
/* portcullis login: prove possession of an SSH key (ssh-keygen -Y sign over the server's
 * challenge), pass TOTP or a push approval, receive a user certificate (KEY-cert.pub) and a
 * session. */
#include "config.h"
#include "cli.h"
#include "pc_config.h"
#include "pc_fs.h"
#include "pc_mem.h"
#include "pc_sshbuf.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

struct largs {
    const char *user, *key, *code_file;
    int64_t ttl;
    int push;
    char keybuf[PATH_MAX];
};

static int parse(int argc, char **argv, struct largs *a)
{
    const char *v, *home = getenv("HOME");
    int r;

    for (int i = 1; i < argc; i++) {
        if ((r = cli_opt(argc, argv, &i, "--user", &a->user)) != 0 ||
            (r = cli_opt(argc, argv, &i, "--key", &a->key)) != 0 ||
            (r = cli_opt(argc, argv, &i, "--code-file", &a->code_file)) != 0) {
            if (r < 0)
                return r;
        } else if (strcmp(argv[i], "--push") == 0) {
            a->push = 1;
        } else if ((r = cli_opt(argc, argv, &i, "--ttl", &v)) != 0) {
            if (r < 0 || (r = cli_parse_duration("--ttl", v, 60, 604800, &a->ttl)) != PC_OK)
                return r;
        } else {
            return argv[i][0] == '-'
                       ? cli_bad_opt("login", argv[i])
                       : cli_usage_err("usage: portcullis login --user NAME [--key FILE] "
                                       "[--ttl DURATION] [--code-file FILE | --push]");
        }
    }
    if (a->push && a->code_file)
        return cli_usage_err("login takes --push or --code-file, not both");
    if (!a->user || !cli_valid_user(a->user))
        return cli_usage_err("login needs --user NAME (a valid user name)");
    if (!a->key) {
        if (!home || snprintf(a->keybuf, sizeof a->keybuf, "%s/.ssh/id_ed25519", home) >=
                         (int)sizeof a->keybuf)
            return cli_usage_err("HOME is not set: pass --key FILE");
        a->key = a->keybuf;
    }
    return PC_OK;
}

/* Runs ssh-keygen -Y sign over file; it talks to the terminal / ssh-agent itself. */
static int run_sign(const char *key, const char *file)
{
    int status = 0;
    pid_t pid;

    fflush(stdout);
    fflush(stderr);
    if ((pid = fork()) < 0)
        return cli_err(PC_ERR_IO, "cannot start ssh-keygen: %s", strerror(errno));
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0)
            dup2(fd, STDOUT_FILENO); /* stdin and stderr stay: passphrase prompts */
        execlp("ssh-keygen", "ssh-keygen", "-q", "-Y", "sign", "-n", "portcullis-login", "-f", key,
               file, (char *)NULL);
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return cli_err(PC_ERR_AUTH,
                       "ssh-keygen -Y sign failed (exit %d): check --key %s and its "
                       "passphrase",
                       WIFEXITED(status) ? WEXITSTATUS(status) : -1, key);
    return PC_OK;
}

/* Decodes the challenge, signs it in a private temp directory, returns the armored signature. */
static int sign_challenge(const char *key, const char *b64, char **sig)
{
    char dir[] = "/tmp/portcullis-login-XXXXXX", file[64], sigfile[72];
    unsigned char *chal = NULL;
    size_t len = 0, siglen = 0;
    int rc;

    if (pc_base64_decode(b64, strlen(b64), &chal, &len) != PC_OK || len < 16)
        return cli_err(PC_ERR_PARSE, "the server sent a malformed challenge");
    if (!mkdtemp(dir)) {
        free(chal);
        return cli_err(PC_ERR_IO, "cannot create a temporary directory: %s", strerror(errno));
    }
    snprintf(file, sizeof file, "%s/challenge", dir);
    snprintf(sigfile, sizeof sigfile, "%s.sig", file);
    rc = pc_write_file_atomic(file, chal, len, 0600);
    free(chal);
    if (rc != PC_OK)
        rc = cli_err(rc, "cannot write %s", file);
    else if ((rc = run_sign(key, file)) == PC_OK &&
             (rc = pc_read_file(sigfile, 65536, sig, &siglen)) != PC_OK)
        rc = cli_err(rc, "ssh-keygen wrote no signature %s", sigfile);
    unlink(sigfile);
    unlink(file);
    rmdir(dir);
    return rc;
}

static int read_code(const struct largs *a, char *code, size_t n)
{
    return cli_read_code(a->code_file, a->user, code, n);
}

int cli_read_code(const char *code_file, const char *who, char *code, size_t n)
{
    FILE *f = NULL;
    struct termios old, quiet;
    int tty = 0, ok;

    if (code_file)
        f = fopen(code_file, "r");
    else if (isatty(STDIN_FILENO) && (f = fopen("/dev/tty", "r+")))
        tty = 1;
    else
        f = stdin;
    if (!f)
        return cli_err(PC_ERR_IO, "cannot read the code from %s: %s", code_file, strerror(errno));
    if (tty) {
        fprintf(f, "TOTP code for %s: ", who);
        fflush(f);
        tcgetattr(fileno(f), &old);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(fileno(f), TCSAFLUSH, &quiet);
    }
    ok = fgets(code, (int)n, f) != NULL;
    if (tty) {
        tcsetattr(fileno(f), TCSAFLUSH, &old);
        fputc('\n', f);
    }
    if (f != stdin)
        fclose(f);
    code[ok ? strcspn(code, "\r\n") : 0] = '\0';
    if (!code[0] || strspn(code, "0123456789") != strlen(code) || strlen(code) > 10)
        return cli_err(PC_ERR_PARSE, "no valid code given (digits from your authenticator app)");
    return PC_OK;
}

/* Reports a refused login with the server's message and reason. */
static int refused(long status, json_object *reply)
{
    char msg[256], why[64];
    cli_field(reply, "message", msg, sizeof msg);
    cli_field(reply, "reason", why, sizeof why);
    if (status == 401 && why[0])
        return cli_err(PC_ERR_AUTH, "login refused: %s (%s)", msg, why);
    return cli_err(status == 403 ? PC_ERR_AUTH : PC_ERR_STATE, "login refused: %s", msg);
}

static int save(const struct largs *a, json_object *reply)
{
    char path[PATH_MAX + 16], dir[PATH_MAX], *slash, line[20000], tok[80], b[64];
    const char *home = getenv("HOME");
    int rc;

    cli_field(reply, "certificate", line, sizeof line);
    snprintf(path, sizeof path, "%s-cert.pub", a->key);
    if (strlen(line) + 1 < sizeof line)
        memcpy(line + strlen(line), "\n", 2);
    if ((rc = pc_write_file_atomic(path, line, strlen(line), 0644)) != PC_OK)
        return cli_err(rc, "cannot write the certificate %s", path);
    printf("certificate %s (serial %s), valid until %s\n", path,
           cli_field(reply, "serial", b, sizeof b),
           cli_field_time(reply, "valid_before", line, sizeof line));
    if (home && snprintf(dir, sizeof dir, "%s/.config", home) < (int)sizeof dir)
        mkdir(dir, 0700); /* an existing ~/.config keeps its mode */
    if (cli_session_path(dir, sizeof dir) != PC_OK || !(slash = strrchr(dir, '/')))
        return cli_err(PC_ERR_NOTFOUND, "HOME is not set: the session was not saved");
    *slash = '\0';
    if (pc_mkdir_mode(dir, 0700) != PC_OK)
        return cli_err(PC_ERR_IO, "cannot create %s", dir);
    *slash = '/';
    cli_field(reply, "session_token", tok, sizeof tok);
    if (strlen(tok) + 1 < sizeof tok)
        memcpy(tok + strlen(tok), "\n", 2);
    rc = pc_write_file_atomic(dir, tok, strlen(tok), 0600);
    pc_wipe(tok, sizeof tok);
    if (rc != PC_OK)
        return cli_err(rc, "cannot write the session %s", dir);
    printf("session saved in %s: 'portcullis approvals' and 'approve' now act for %s\n", dir,
           a->user);
    return PC_OK;
}

/* Shows the match number, then long-polls the login until the push is decided. */
static int await_push(struct cli *c, const struct largs *a, const char *login_id, json_object *sent,
                      json_object **reply)
{
    char path[96], match[8], state[16], t[64];
    long status = 0;
    int rc;

    cli_field(sent, "match", match, sizeof match);
    /* --json keeps stdout for the reply: the number goes to stderr then */
    fprintf(c->json ? stderr : stdout,
            "Push sent to %s: approve the request and enter %s on "
            "your device (until %s).\n",
            a->user, match, cli_field_time(sent, "expires_at", t, sizeof t));
    fflush(c->json ? stderr : stdout);
    snprintf(path, sizeof path, "/v1/login/%s?wait=20", login_id);
    for (;;) {
        json_object_put(*reply);
        *reply = NULL;
        if ((rc = cli_request(c, "GET", path, NULL, &status, reply)) != PC_OK ||
            (status != 200 && (rc = cli_check(c, status, *reply, NULL)) != PC_OK))
            return rc;
        cli_field(*reply, "state", state, sizeof state);
        if (strcmp(state, "pending") != 0)
            break;
    }
    if (strcmp(state, "approved") == 0 && json_object_object_get_ex(*reply, "certificate", NULL))
        return PC_OK;
    if (strcmp(state, "expired") == 0)
        return cli_err(PC_ERR_AUTH, "login refused: the push expired without an answer");
    if (strcmp(state, "denied") == 0)
        return cli_err(PC_ERR_AUTH, "login refused: the push was denied (%s)",
                       cli_field(*reply, "reason", t, sizeof t));
    return cli_err(PC_ERR_STATE, "login ended in state '%s' without a certificate", state);
}

static int finish(struct cli *c, const struct largs *a, const char *login_id, const char *sig)
{
    json_object *body = json_object_new_object(), *reply = NULL, *sent = NULL;
    char code[32] = "";
    long status = 0;
    int rc = a->push ? PC_OK : read_code(a, code, sizeof code);

    if (rc == PC_OK) {
        json_object_object_add(body, "login_id", json_object_new_string(login_id));
        json_object_object_add(body, "signature", json_object_new_string(sig));
        if (a->push)
            json_object_object_add(body, "push", json_object_new_boolean(1));
        else
            json_object_object_add(body, "code", json_object_new_string(code));
        rc = cli_request(c, "POST", "/v1/login/finish", body, &status, &reply);
    }
    pc_wipe(code, sizeof code);
    json_object_put(body);
    if (rc == PC_OK && status != (a->push ? 202 : 200))
        rc = status == 401 || status == 403 || status == 410 ? refused(status, reply)
                                                             : cli_check(c, status, reply, NULL);
    if (rc == PC_OK && a->push) {
        sent = reply;
        reply = NULL;
        rc = await_push(c, a, login_id, sent, &reply);
        json_object_put(sent);
    }
    if (rc == PC_OK && c->json)
        cli_print_json(reply);
    else if (rc == PC_OK)
        rc = save(a, reply);
    json_object_put(reply);
    return rc;
}

int cmd_login(struct cli *c, int argc, char **argv)
{
    struct largs a = { 0 };
    char pubpath[PATH_MAX + 8], id[64], chal[128];
    char *pub = NULL, *sig = NULL;
    json_object *body, *reply = NULL;
    long status = 0;
    int rc;

    if ((rc = parse(argc, argv, &a)) != PC_OK)
        return rc;
    c->no_token = 1;
    snprintf(pubpath, sizeof pubpath, "%s.pub", a.key);
    if ((rc = cli_read_pubkey(pubpath, &pub)) != PC_OK)
        return rc;
    body = json_object_new_object();
    json_object_object_add(body, "user", json_object_new_string(a.user));
    json_object_object_add(body, "public_key", json_object_new_string(pub));
    if (a.ttl)
        json_object_object_add(body, "ttl", json_object_new_int64(a.ttl));
    free(pub);
    rc = cli_request(c, "POST", "/v1/login/start", body, &status, &reply);
    json_object_put(body);
    if (rc == PC_OK && status != 200)
        rc = status == 401 ? refused(status, reply) : cli_check(c, status, reply, NULL);
    if (rc == PC_OK) {
        cli_field(reply, "login_id", id, sizeof id);
        cli_field(reply, "challenge", chal, sizeof chal);
        rc = sign_challenge(a.key, chal, &sig);
    }
    json_object_put(reply);
    if (rc == PC_OK)
        rc = finish(c, &a, id, sig);
    free(sig);
    return rc;
}
