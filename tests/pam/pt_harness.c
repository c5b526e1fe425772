/* SPDX-License-Identifier: BSD-2-Clause */
/* Harness for tests/unit/test_pam.c (declared in tests/pam/pt.h). Starts the real components
 * — portcullisd, tests/faultproxy.py, portcullis-agent — drives the admin API with curl, makes
 * TOTP codes, and sets pam_wrapper up (tests/pam/pt_pam.c runs the module under it and captures
 * everything the module logs: pam_wrapper routes pam_syslog to stderr at
 * PAM_WRAPPER_DEBUGLEVEL=4; each PAM run's stderr goes to a file). */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <libpamtest.h>
#include <security/pam_appl.h>

#include "pc_totp.h"
#include "pt.h"

struct pt_env E;

void pt_die(const char *what)
{
    fprintf(stderr, "test_pam: %s: %s\n", what, strerror(errno));
    exit(2);
}

int pt_path(char *out, const char *a, const char *b)
{
    int n = snprintf(out, PT_PATH, "%s/%s", a, b);
    return (n < 0 || n >= PT_PATH) ? -1 : 0;
}

char *pt_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;

    if (!f)
        return NULL;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            char *nb = realloc(buf, cap = cap * 2 + 8192);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, 4096, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

int pt_write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    size_t n = strlen(text);

    if (fd < 0)
        return -1;
    if (write(fd, text, n) != (ssize_t)n) {
        close(fd);
        return -1;
    }
    return close(fd);
}

static int pt_free_port(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        pt_die("free port");
    port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

void pt_sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

long pt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Spawns argv with stdout+stderr to logfile, without pam_wrapper in its environment. */
pid_t pt_spawn(char *const argv[], const char *logfile)
{
    pid_t pid = fork();

    if (pid < 0)
        pt_die("fork");
    if (pid == 0) {
        int fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND, 0600);
        int nul = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (nul >= 0)
            dup2(nul, 0);
        unsetenv("LD_PRELOAD");
        unsetenv("PAM_WRAPPER");
        /* If the test dies (a crash, an abort under ASan), its daemons die with it. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

void pt_stop(pid_t *pid)
{
    if (*pid <= 0)
        return;
    kill(*pid, SIGTERM);
    for (int i = 0; i < 50; i++) {
        if (waitpid(*pid, NULL, WNOHANG) == *pid) {
            *pid = 0;
            return;
        }
        pt_sleep_ms(100);
    }
    kill(*pid, SIGKILL);
    waitpid(*pid, NULL, 0);
    *pid = 0;
}

int pt_alive(pid_t pid)
{
    return pid > 0 && waitpid(pid, NULL, WNOHANG) == 0;
}

/* ---- the admin API through curl ------------------------------------------------------- */

/* METHOD path with an optional JSON body; auth: 1 admin token, 0 none. Returns the HTTP status
 * (0 on failure) and the parsed body in *out (NULL if not JSON). */
int pt_api(const char *method, const char *path, const char *body, int auth, json_object **out)
{
    static int counter;
    int id = __atomic_add_fetch(&counter, 1, __ATOMIC_SEQ_CST);
    char bodyf[PT_PATH], outf[PT_PATH], cmd[4 * PT_PATH], status[16] = "";
    FILE *p;
    char *text;

    if (out)
        *out = NULL;
    snprintf(bodyf, sizeof bodyf, "%s/api-%d.req", E.root, id);
    snprintf(outf, sizeof outf, "%s/api-%d.out", E.root, id);
    if (body && pt_write_file(bodyf, body, 0600) != 0)
        return 0;
    snprintf(cmd, sizeof cmd,
             "env -u LD_PRELOAD curl -sS -k --pinnedpubkey '%s' -m 30 -X %s %s%s%s "
             "-H 'Content-Type: application/json' %s%s -o '%s' -w '%%{http_code}' '%s%s'",
             E.pin, method, auth ? "-H '@" : "", auth ? E.admin_hdr : "", auth ? "'" : "",
             body ? "--data-binary @" : "", body ? bodyf : "", outf, E.cp_url, path);
    p = popen(cmd, "r");
    if (!p)
        return 0;
    if (!fgets(status, sizeof status, p))
        status[0] = '\0';
    pclose(p);
    unlink(bodyf);
    text = pt_read_file(outf, NULL);
    unlink(outf);
    if (text && out)
        *out = json_tokener_parse(text);
    free(text);
    return (int)strtol(status, NULL, 10);
}

const char *pt_jstr(json_object *o, const char *key)
{
    json_object *v = NULL;
    return (o && json_object_object_get_ex(o, key, &v)) ? json_object_get_string(v) : NULL;
}

/* ---- TOTP secrets ------------------------------------------------------------------------ */

static int pt_b32_decode(const char *in, unsigned char *out, size_t outsz, size_t *outlen)
{
    unsigned buf = 0;
    int bits = 0;
    size_t n = 0;

    for (; *in && *in != '&'; in++) {
        const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", *pos;
        char ch = *in;
        if (ch == '=')
            break;
        if (ch >= 'a' && ch <= 'z')
            ch = (char)(ch - 'a' + 'A');
        pos = strchr(alpha, ch);
        if (!pos || !ch)
            return -1;
        buf = (buf << 5) | (unsigned)(pos - alpha);
        bits += 5;
        if (bits >= 8) {
            if (n >= outsz)
                return -1;
            out[n++] = (unsigned char)(buf >> (bits - 8));
            bits -= 8;
        }
    }
    *outlen = n;
    return 0;
}

/* Creates a fresh user (groups: a JSON array text), with TOTP unless totp == 0. */
int pt_user_create(struct pt_user *u, const char *prefix, const char *groups, int push, int totp)
{
    static int counter;
    char body[256], path[128];
    json_object *r = NULL;
    const char *uri, *sec;
    int st;

    memset(u, 0, sizeof *u);
    snprintf(u->name, sizeof u->name, "%s%d_%d", prefix, ++counter, (int)(getpid() % 1000));
    snprintf(body, sizeof body, "{\"name\":\"%s\",\"groups\":%s,\"push\":%s}", u->name,
             groups ? groups : "[]", push ? "true" : "false");
    st = pt_api("POST", "/v1/users", body, 1, &r);
    json_object_put(r);
    if (st != 201)
        return -1;
    if (!totp)
        return 0;
    snprintf(path, sizeof path, "/v1/users/%s/totp", u->name);
    st = pt_api("POST", path, "{}", 1, &r);
    uri = pt_jstr(r, "uri");
    sec = uri ? strstr(uri, "secret=") : NULL;
    if (st != 201 || !sec ||
        pt_b32_decode(sec + 7, u->secret, sizeof u->secret, &u->secret_len) != 0) {
        json_object_put(r);
        return -1;
    }
    json_object_put(r);
    return 0;
}

char pt_typed[256][12];
int pt_ntyped;

void pt_code(const struct pt_user *u, long offset_steps, char out[12])
{
    int64_t t = (int64_t)time(NULL) + offset_steps * PC_TOTP_PERIOD;
    if (pc_totp_code(u->secret, u->secret_len, t, out, 12) != 0)
        snprintf(out, 12, "ERROR");
}

/* A 6-digit code that matches none of the steps now-4..now+4. */
void pt_wrong_code(const struct pt_user *u, char out[12])
{
    for (int k = 0; k < 1000; k++) {
        int clash = 0;
        snprintf(out, 12, "%06d", (k * 7919 + 123457) % 1000000);
        for (int d = -4; d <= 4 && !clash; d++) {
            char c[12];
            pt_code(u, d, c);
            clash = strcmp(c, out) == 0;
        }
        if (!clash)
            return;
    }
}

/* ---- bringing the real chain up -------------------------------------------------------- */

int pt_wait_file(const char *path, long ms)
{
    struct stat st;
    for (long t = 0; t < ms; t += 100) {
        if (stat(path, &st) == 0)
            return 0;
        pt_sleep_ms(100);
    }
    return -1;
}

static int pt_start_cp(void)
{
    char listen[64], log[PT_PATH], cmd[2 * PT_PATH], tokf[PT_PATH], *tok;
    int port = pt_free_port();
    FILE *p;

    pt_path(E.data, E.root, "data");
    pt_path(log, E.root, "portcullisd.log");
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf(E.cp_url, sizeof E.cp_url, "https://%s", listen);
    {
        char bin[PT_PATH];
        pt_path(bin, E.build, "control-plane/portcullisd");
        char *argv[] = { bin,    "--data-dir",     E.data,   "--listen",
                         listen, "--exempt-group", "exempt", NULL };
        if (access(bin, X_OK) != 0)
            return -1;
        E.cp_pid = pt_spawn(argv, log);
        snprintf(cmd, sizeof cmd, "env -u LD_PRELOAD %s --data-dir %s --print-pin", bin, E.data);
    }
    pt_path(tokf, E.data, "tls.crt");
    if (pt_wait_file(tokf, 15000) != 0)
        return -1;
    p = popen(cmd, "r");
    if (!p || !fgets(E.pin, sizeof E.pin, p)) {
        if (p)
            pclose(p);
        return -1;
    }
    pclose(p);
    E.pin[strcspn(E.pin, "\r\n")] = '\0';
    pt_path(tokf, E.data, "admin.token");
    if (pt_wait_file(tokf, 5000) != 0 || !(tok = pt_read_file(tokf, NULL)))
        return -1;
    tok[strcspn(tok, "\r\n")] = '\0';
    pt_path(E.admin_hdr, E.root, "admin.hdr");
    snprintf(cmd, sizeof cmd, "Authorization: Bearer %s\n", tok);
    free(tok);
    if (pt_write_file(E.admin_hdr, cmd, 0600) != 0)
        return -1;
    for (int i = 0; i < 150; i++) {
        json_object *r = NULL;
        int st = pt_api("GET", "/v1/health", NULL, 0, &r);
        json_object_put(r);
        if (st == 200)
            return 0;
        pt_sleep_ms(100);
    }
    return -1;
}

void pt_set_mode(const char *mode)
{
    char tmp[PT_PATH + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", E.mode_file);
    if (pt_write_file(tmp, mode, 0600) != 0 || rename(tmp, E.mode_file) != 0)
        pt_die("mode file");
    pt_sleep_ms(400); /* the proxy notices within 100 ms and drops open connections */
}

static int pt_start_proxy(int *port)
{
    char py[PT_PATH], portf[PT_PATH], log[PT_PATH], upstream[64], crt[PT_PATH], key[PT_PATH];
    char *txt;

    pt_path(py, E.src, "tests/faultproxy.py");
    pt_path(portf, E.root, "faultproxy.port");
    pt_path(log, E.root, "faultproxy.log");
    pt_path(E.mode_file, E.root, "faultproxy.mode");
    pt_path(crt, E.data, "tls.crt");
    pt_path(key, E.data, "tls.key");
    snprintf(upstream, sizeof upstream, "%s", E.cp_url + strlen("https://"));
    pt_write_file(E.mode_file, "pass\n", 0600);
    char *argv[] = { "/usr/bin/python3", py,       "--mode-file", E.mode_file, "--upstream",
                     upstream,           "--cert", crt,           "--key",     key,
                     "--port-file",      portf,    "--workdir",   E.root,      NULL };
    if (access(py, R_OK) != 0)
        return -1;
    E.proxy_pid = pt_spawn(argv, log);
    if (pt_wait_file(portf, 15000) != 0 || !(txt = pt_read_file(portf, NULL)))
        return -1;
    *port = (int)strtol(txt, NULL, 10);
    free(txt);
    return *port > 0 ? 0 : -1;
}

static int pt_enroll_and_start_agent(int proxy_port)
{
    char bin[PT_PATH], conf[PT_PATH], tokf[PT_PATH], log[PT_PATH], text[4 * PT_PATH];
    json_object *r = NULL;
    const char *s;
    int st;

    pt_path(bin, E.build, "agent/portcullis-agent");
    if (access(bin, X_OK) != 0) {
        snprintf(E.why_no_agent, sizeof E.why_no_agent, "%s is not built", bin);
        return -1;
    }
    st = pt_api("POST", "/v1/tokens", "{\"ttl\":600,\"hostname\":\"pamtest\"}", 1, &r);
    s = pt_jstr(r, "token");
    snprintf(text, sizeof text, "{\"token\":\"%s\",\"hostname\":\"pamtest\"}", s ? s : "");
    json_object_put(r);
    if (st != 201 || pt_api("POST", "/v1/enroll", text, 0, &r) != 200 ||
        !(s = pt_jstr(r, "host_token"))) {
        json_object_put(r);
        snprintf(E.why_no_agent, sizeof E.why_no_agent, "enrollment through the API failed");
        return -1;
    }
    snprintf(E.host_token, sizeof E.host_token, "%s", s);
    json_object_put(r);
    pt_path(tokf, E.root, "host.token");
    snprintf(text, sizeof text, "%s\n", E.host_token);
    pt_write_file(tokf, text, 0600);
    pt_path(conf, E.root, "agent.conf");
    pt_path(E.agent_sock, E.root, "agent.sock");
    pt_path(log, E.root, "agent.log");
    snprintf(text, sizeof text,
             "url = https://127.0.0.1:%d\npin = %s\nhost_token_file = %s\nsocket = %s\n"
             "timeout = 3\nconnect_timeout = 2\nlog_level = debug\n"
             "ssh_dir = %s/ssh\nhost_key = none\n", /* never the machine's /etc/ssh */
             proxy_port, E.pin, tokf, E.agent_sock, E.root);
    pt_write_file(conf, text, 0600);
    char *argv[] = { bin, "run", "--config", conf, NULL };
    E.agent_pid = pt_spawn(argv, log);
    if (pt_wait_file(E.agent_sock, 15000) != 0 || !pt_alive(E.agent_pid)) {
        snprintf(E.why_no_agent, sizeof E.why_no_agent,
                 "portcullis-agent did not create its socket (see %s)", log);
        return -1;
    }
    return 0;
}

int pt_group_setup(void **state)
{
    int proxy_port = 0;

    (void)state;
    if (pc_totp_init() != 0)
        return -1;
    if (pt_start_cp() != 0) {
        snprintf(E.why_no_agent, sizeof E.why_no_agent, "portcullisd did not start");
        return 0; /* tests that need the chain skip; the others still run */
    }
    if (pt_start_proxy(&proxy_port) != 0) {
        snprintf(E.why_no_agent, sizeof E.why_no_agent, "faultproxy.py did not start");
        return 0;
    }
    E.have_agent = pt_enroll_and_start_agent(proxy_port) == 0;
    if (!E.have_agent)
        fprintf(stderr, "test_pam: real-agent tests will be skipped: %s\n", E.why_no_agent);
    return 0;
}

int pt_group_teardown(void **state)
{
    (void)state;
    pt_stop(&E.agent_pid);
    pt_stop(&E.proxy_pid);
    pt_stop(&E.cp_pid);
    if (!getenv("PT_KEEP") && strncmp(E.root, "/tmp/pc-pamtest-", 16) == 0) {
        char cmd[PT_PATH + 32];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", E.root);
        if (system(cmd) != 0)
            fprintf(stderr, "test_pam: could not remove %s\n", E.root);
    } else {
        fprintf(stderr, "test_pam: kept %s\n", E.root);
    }
    return 0;
}

/* pam_wrapper copies PAM_WRAPPER_SERVICE_DIR once, at start-up, into a directory of its own
 * (pam.X with a pid file) and points libpam there; service files are written into that copy. */
static void pt_find_pwrap_dir(void)
{
    const char *bases[] = { getenv("PAM_WRAPPER_RUNTIME_DIR"), "/tmp" };

    for (size_t b = 0; b < 2; b++) {
        DIR *d = bases[b] ? opendir(bases[b]) : NULL;
        struct dirent *de;
        while (d && (de = readdir(d))) {
            char pidf[PT_PATH + 300], *txt;
            if (strncmp(de->d_name, "pam.", 4) != 0)
                continue;
            snprintf(pidf, sizeof pidf, "%s/%s/pid", bases[b], de->d_name);
            txt = pt_read_file(pidf, NULL);
            if (txt && strtol(txt, NULL, 10) == (long)getpid()) {
                snprintf(E.pwrap_dir, sizeof E.pwrap_dir, "%s/%s", bases[b], de->d_name);
                free(txt);
                closedir(d);
                return;
            }
            free(txt);
        }
        if (d)
            closedir(d);
    }
    fprintf(stderr, "test_pam: cannot find pam_wrapper's config dir\n");
    exit(2);
}

/* Fills E from the environment; the first time, sets pam_wrapper up and re-executes. */
void pt_prepare(char **argv)
{
    const char *v;

    if (!getenv("PT_REEXEC")) {
        char exe[PT_PATH], root[] = "/tmp/pc-pamtest-XXXXXX", svc[PT_PATH], *mk;
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n <= 0)
            pt_die("readlink");
        exe[n] = '\0';
        if (!getenv("PC_BUILD_DIR")) { /* BUILD/tests/unit/test_pam */
            for (int i = 0; i < 3; i++) {
                char *s = strrchr(exe, '/');
                if (s)
                    *s = '\0';
            }
            setenv("PC_BUILD_DIR", exe, 1);
        }
        if (!getenv("PC_SRC_DIR")) {
            char mf[PT_PATH];
            pt_path(mf, getenv("PC_BUILD_DIR"), "Makefile");
            mk = pt_read_file(mf, NULL);
            char *s = mk ? strstr(mk, "\nabs_top_srcdir = ") : NULL;
            if (s) {
                s += strlen("\nabs_top_srcdir = ");
                s[strcspn(s, "\n")] = '\0';
                setenv("PC_SRC_DIR", s, 1);
            }
            free(mk);
        }
        if (!mkdtemp(root))
            pt_die("mkdtemp");
        pt_path(svc, root, "services");
        if (mkdir(svc, 0755) != 0)
            pt_die("mkdir services");
        setenv("PT_ROOT", root, 1);
        setenv("PT_REEXEC", "1", 1);
        setenv("PAM_WRAPPER", "1", 1);
        setenv("PAM_WRAPPER_SERVICE_DIR", svc, 1);
        setenv("PAM_WRAPPER_DEBUGLEVEL", "4", 1);
        setenv("LD_PRELOAD", "libpam_wrapper.so", 1);
#ifdef __SANITIZE_ADDRESS__
        {
            /* The sanitizer build: pam_wrapper is preloaded ahead of the ASan runtime that the
             * test links itself; tell ASan that this order is intended. */
            char opts[1024];
            const char *old_opts = getenv("ASAN_OPTIONS");
            snprintf(opts, sizeof opts, "%s%sverify_asan_link_order=0", old_opts ? old_opts : "",
                     old_opts && *old_opts ? ":" : "");
            setenv("ASAN_OPTIONS", opts, 1);
            /* pam_wrapper dlopens libpam with RTLD_DEEPBIND, which the sanitizer runtime
             * refuses; Debian's pam_wrapper 1.1.4 reads this (oddly named) switch to skip it. */
            setenv("UID_WRAPPER_DISABLE_DEEPBIND", "1", 1);
        }
#endif
        execv("/proc/self/exe", argv);
        pt_die("re-exec under pam_wrapper");
    }
    snprintf(E.root, sizeof E.root, "%s", getenv("PT_ROOT"));
    /* pam_wrapper is loaded now; children (curl, nm, the daemons) must not load it again */
    unsetenv("LD_PRELOAD");
    pt_find_pwrap_dir();
    snprintf(E.build, sizeof E.build, "%s", getenv("PC_BUILD_DIR"));
    v = getenv("PC_SRC_DIR");
    snprintf(E.src, sizeof E.src, "%s", v ? v : "");
    pt_path(E.module, E.build, "pam_module/.libs/pam_portcullis.so");
    pt_path(E.log_all, E.root, "module-all.log");
    snprintf(E.why_no_agent, sizeof E.why_no_agent, "real chain not started");
    if (access(E.module, R_OK) != 0) {
        fprintf(stderr, "test_pam: %s is not built\n", E.module);
        exit(1);
    }
}
