# SPDX-License-Identifier: BSD-2-Clause
"""portcullis-agent against a real portcullisd: enroll (0600 token, no overwrite without
--force, url/pin recorded), config errors with FILE:LINE, status (enrolled/reachable/pin, exit
codes, pin mismatch), the unix-socket protocol end to end (begin, totp, push, push_wait),
SO_PEERCRED and socket permissions, 50 concurrent logins over a bounded connection pool,
push long-polls bounded by max_push_waits (the rest of the pool stays for logins), failure
mapping (unreachable, tls, garbage, server, rejected, not_enrolled, busy, push_busy), SIGTERM."""
import base64
import errno
import http.server
import json
import os
import re
import signal
import socket
import ssl
import stat
import struct
import subprocess
import tempfile
import threading
import time

import harness
from harness import Daemon

TEST_TIMEOUT = 180
AGENT_BIN = os.path.join(harness.BUILD_DIR, "agent", "portcullis-agent")
NOBODY = 65534

D = None              # the shared control plane
HOST_TOKEN = None     # a host token of D, written into TOKEN_FILE
ROOT = None           # temp dir for this module (0755 so uid 65534 can reach sockets in it)
TOKEN_FILE = None
AGENTS = []


# --------------------------------------------------------------------------------------------
# helpers

def setup_module():
    global D, HOST_TOKEN, ROOT, TOKEN_FILE
    if not os.path.exists(AGENT_BIN):
        raise AssertionError("agent binary not built: %s (set PC_BUILD_DIR)" % AGENT_BIN)
    ROOT = tempfile.mkdtemp(prefix="pc-agent-")
    harness._TMP_ROOTS.append(ROOT)
    os.chmod(ROOT, 0o755)
    D = Daemon().start()
    _, HOST_TOKEN = D.enroll_host(hostname="agent-shared")
    TOKEN_FILE = os.path.join(ROOT, "shared.token")
    with open(TOKEN_FILE, "w") as f:
        f.write(HOST_TOKEN + "\n")
    os.chmod(TOKEN_FILE, 0o600)


def teardown_module():
    for a in AGENTS:
        a.kill()
    if D:
        D.kill()


def fresh_dir(prefix):
    d = tempfile.mkdtemp(prefix=prefix, dir=ROOT)
    os.chmod(d, 0o755)
    return d


def write_conf(path, lines):
    # Never the machine's /etc/ssh: enrollment sends the default host key and writes the host
    # certificate, CA keys and KRL into ssh_dir, so every test config gets a private one.
    if not any(l.split("=")[0].strip() in ("ssh_dir", "host_key") for l in lines if "=" in l):
        lines = list(lines) + ["ssh_dir = %s" % os.path.join(os.path.dirname(path), "ssh"),
                               "host_key = none"]
    with open(path, "w") as f:
        f.write("".join(l + "\n" for l in lines))
    return path


def run_agent(*args, timeout=60, stdin=None):
    r = subprocess.run([AGENT_BIN] + list(args), capture_output=True, timeout=timeout,
                       input=stdin)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def wrong_pin():
    return "sha256//" + base64.b64encode(os.urandom(32)).decode()


class Agent:
    """One `portcullis-agent run` with its own config, socket and log."""

    def __init__(self, daemon=None, url=None, pin=None, token_file=None, extra=()):
        daemon = daemon or D
        self.dir = fresh_dir("agent-")
        self.socket = os.path.join(self.dir, "run", "agent.sock")  # run/ made by the agent
        self.conf = write_conf(os.path.join(self.dir, "agent.conf"), [
            "# test agent",
            "url = %s" % (url or daemon.url),
            "pin = %s" % (pin or daemon.pin),
            "host_token_file = %s" % (token_file or TOKEN_FILE),
            "socket = %s" % self.socket,
        ] + list(extra))
        self.log_path = os.path.join(self.dir, "agent.log")
        self.proc = None
        AGENTS.append(self)

    def start(self):
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([AGENT_BIN, "run", "--config", self.conf],
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=self._log, close_fds=True)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("agent exited %s; log:\n%s" % (self.proc.returncode,
                                                                    self.log()))
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.socket)
                s.close()
                return True
            except OSError:
                return False
        harness.wait_until(ready, timeout=15, what="agent socket %s" % self.socket)
        return self

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("agent ignored SIGTERM; log:\n%s" % self.log())
        self._log.close()
        return rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def connect(self, timeout=90):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.socket)
        return s

    def call(self, obj, timeout=90):
        with self.connect(timeout) as s:
            return call(s, obj)

    def tcp_conns_to(self, port):
        """ESTABLISHED TCP connections of the agent process to 127.0.0.1:port."""
        inodes = set()
        fd_dir = "/proc/%d/fd" % self.proc.pid
        for fd in os.listdir(fd_dir):
            try:
                target = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            m = re.match(r"socket:\[(\d+)\]", target)
            if m:
                inodes.add(m.group(1))
        n = 0
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(table) as f:
                    rows = f.readlines()[1:]
            except OSError:
                continue
            for row in rows:
                cols = row.split()
                rport = int(cols[2].split(":")[1], 16)
                if cols[3] == "01" and rport == port and cols[9] in inodes:
                    n += 1
        return n


def send_frame(s, obj):
    data = json.dumps(obj).encode()
    s.sendall(struct.pack(">I", len(data)) + data)


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("agent closed the connection after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def recv_frame(s):
    (n,) = struct.unpack(">I", recv_exact(s, 4))
    assert 0 < n <= 65536, "bad frame length %d" % n
    obj = json.loads(recv_exact(s, n).decode())
    assert isinstance(obj, dict), obj
    return obj


def call(s, obj):
    send_frame(s, obj)
    return recv_frame(s)


def login_totp(agent, user, code):
    """begin + totp on one connection, as pam_portcullis does; returns (begin, totp) replies."""
    with agent.connect() as s:
        # auth_info exactly as sshd puts SSH_AUTH_INFO_0 in the PAM environment: one method per
        # line, ending in a newline (the agent must accept multi-line text here).
        b = call(s, {"op": "begin", "user": user, "rhost": "127.0.0.1", "service": "sshd",
                     "tty": "ssh", "auth_info": "publickey ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE\n"})
        assert b.get("ok") is True and b["action"] == "challenge", b
        t = call(s, {"op": "totp", "txid": b["txid"], "code": code})
        return b, t


def in_child(fn, uid=NOBODY, gid=NOBODY, groups=()):
    """Runs fn() in a forked child with dropped privileges; returns what fn returned (JSON)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups(list(groups))
            os.setgid(gid)
            os.setuid(uid)
            try:
                out = {"result": fn()}
            except OSError as e:
                out = {"errno": e.errno, "error": str(e)}
            except Exception as e:  # noqa: BLE001
                out = {"error": repr(e)}
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data.decode())


_SHARED = None


def shared_agent():
    """One agent on D with the shared host token, started on first use."""
    global _SHARED
    if _SHARED is None or _SHARED.proc.poll() is not None:
        _SHARED = Agent().start()
    return _SHARED


# --------------------------------------------------------------------------------------------
# command line: help, config errors, enroll, status

def test_help_for_every_command():
    rc, out, _ = run_agent("--help")
    assert rc == 0 and "run" in out and "enroll" in out and "status" in out, out
    for cmd, words in (("run", ["--config", "--check-config"]),
                       ("enroll", ["--url", "--pin", "--token", "--hostname", "--force",
                                   "--config", "--cafile"]),
                       ("status", ["--config", "--json"])):
        rc, out, err = run_agent(cmd, "--help")
        assert rc == 0, (cmd, rc, err)
        for w in words:
            assert w in out, "%s --help lacks %s:\n%s" % (cmd, w, out)
    rc, _, err = run_agent("frobnicate")
    assert rc == 2 and "unknown command" in err, (rc, err)
    rc, _, err = run_agent("run", "--bogus")
    assert rc == 2, (rc, err)


def test_usage_lists_every_command_of_the_table():
    """agent/main.c's usage, dispatch and missing/unknown-command errors come from one table:
    the usage lists every command of the table in its order, each of them runs (its --help
    exits 0), and both errors name exactly the same commands."""
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "agent", "main.c")
    with open(src) as f:
        table = re.search(r"\} commands\[\] = \{(.*?)\n\};", f.read(), re.S)
    assert table, "no command table in %s" % src
    names = re.findall(r'\{ "([a-z-]+)",', table.group(1))
    assert set(names) >= {"run", "enroll", "renew", "principals", "status", "configure",
                          "unconfigure"}, names
    rc, out, err = run_agent("--help")
    assert rc == 0, (rc, err)
    section = out.split("Commands:\n", 1)[1].split("\n\n", 1)[0]
    listed = [line.split()[0] for line in section.splitlines()]
    assert listed == names, (listed, names)
    for cmd in names:
        rc, hout, err = run_agent(cmd, "--help")
        assert rc == 0 and hout.startswith("Usage: portcullis-agent " + cmd), (cmd, rc, err)
    for args, what in (((), "missing command"), (("frobnicate",), "unknown command")):
        rc, _, err = run_agent(*args)
        m = re.search(what + r" \(([^)]*)\)", err)
        assert rc == 2 and m and m.group(1).split(", ") == names, (args, rc, err)


class RefusingRun:
    """`portcullis-agent run` on a configuration that does not load: it must not exit (an agent
    that is gone looks "down" to pam_portcullis, and failmode=safe then admits everyone without
    a second factor) but bind `sock` and answer every request with the error "config"."""

    def __init__(self, conf, sock, log_path=None, argv_prefix=(), env=None):
        self.conf, self.sock = conf, sock
        self.log_path = log_path or conf + ".log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(list(argv_prefix) + [AGENT_BIN, "run", "--config", conf],
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=self._log, close_fds=True, env=env)
        AGENTS.append(self)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("run exited %s on a bad config instead of refusing; log:\n%s"
                                     % (self.proc.returncode, self.log()))
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.sock)
                s.close()
                return True
            except OSError:
                return False
        harness.wait_until(ready, timeout=15, what="refusing agent socket %s" % sock)

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def ask(self, req):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(15)
        s.connect(self.sock)
        with s:
            return call(s, req)

    def stop(self):
        """SIGTERM; returns the exit status (1: it never served a configuration)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("refusing agent ignored SIGTERM; log:\n%s" % self.log())
        self._log.close()
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def test_config_errors_name_file_and_line():
    """Every configuration error names FILE:LINE, and `status` and `run --check-config` exit 1
    with it. `run` itself does not exit on one any more (it used to, which turned an admin's
    typo into "agent down", i.e. no second factor under failmode=safe): it binds its socket,
    answers every request with the error "config" and logs FILE:LINE."""
    d = fresh_dir("conf-")
    sock = os.path.join(d, "s.sock")
    base = ["url = %s" % D.url, "host_token_file = %s" % TOKEN_FILE, "socket = %s" % sock]
    cases = [
        (base + ["pin = %s" % D.pin, "colour = blue"], 5, "unknown key"),
        (base + ["pin = %s" % D.pin, "timeout = soon"], 5, "timeout"),
        (base + ["pin = %s" % D.pin, "max_connections = 0"], 5, "max_connections"),
        (base + ["pin = %s" % D.pin, "max_push_waits = 0"], 5, "max_push_waits"),
        (base + ["pin = %s" % D.pin, "max_push_waits = many"], 5, "max_push_waits"),
        # above the pool: named at its own line whichever of the two keys comes first, and
        # against the default pool (16) when max_connections is not set
        (base + ["pin = %s" % D.pin, "max_connections = 4", "max_push_waits = 5"], 6,
         "max_push_waits"),
        (base + ["pin = %s" % D.pin, "max_push_waits = 5", "max_connections = 4"], 5,
         "max_push_waits"),
        (base + ["pin = %s" % D.pin, "max_push_waits = 17"], 5, "max_push_waits"),
        (base + ["pin = %s" % D.pin, "log_level = loud"], 5, "log_level"),
        (base + ["pin = %s" % D.pin, "socket_group = no-such-group-xyz"], 5, "socket_group"),
        (["pin = %s" % D.pin, "cafile = /etc/ssl/certs/ca-certificates.crt"] + base, 2, "pin"),
        (base + ["pin = notapin"], 4, "pin"),
        (["url = http://127.0.0.1:1"], 1, "https"),
    ]
    for i, (lines, lineno, word) in enumerate(cases):
        path = write_conf(os.path.join(d, "bad%d.conf" % i), lines)
        where = "%s:%d:" % (path, lineno)
        for cmd in (["status"], ["run", "--check-config"]):
            rc, out, err = run_agent(*cmd, "--config", path, timeout=20)
            assert rc == 1, "%s exited %d on %r" % (cmd, rc, lines)
            assert where in err, "%s: want %s in %r" % (cmd, where, err)
            assert word in err, (word, err)
        assert not os.path.exists(sock), "--check-config bound the socket"
        if "socket = %s" % sock not in lines:
            continue  # run would bind the built-in default socket: not here
        a = RefusingRun(path, sock)
        r = a.ask({"op": "status"})
        assert r.get("ok") is False and r.get("error") == "config", r
        assert where in a.log(), (where, a.log())
        assert a.stop() == 1, a.log()
        assert not os.path.exists(sock), "the socket file was left behind"
    # neither pin nor cafile: named; run refuses on the socket
    path = write_conf(os.path.join(d, "nopin.conf"), base)
    rc, _, err = run_agent("run", "--check-config", "--config", path, timeout=20)
    assert rc == 1 and path in err and "pin" in err, (rc, err)
    a = RefusingRun(path, sock)
    assert a.ask({"op": "status"}).get("error") == "config"
    assert "pin" in a.log() and path in a.log(), a.log()
    assert a.stop() == 1
    rc, _, err = run_agent("run", "--check-config", "--config", os.path.join(d, "missing.conf"),
                           timeout=20)
    assert rc == 1 and "missing.conf:0:" in err, (rc, err)
    # and a valid file passes the check, binding nothing
    ok = write_conf(os.path.join(d, "ok.conf"), base + ["pin = %s" % D.pin])
    rc, out, err = run_agent("run", "--check-config", "--config", ok, timeout=20)
    assert rc == 0 and "valid" in out, (rc, out, err)
    assert not os.path.exists(sock)
    # max_push_waits may be the whole pool (the reserve given up on purpose), in either order
    for lines in (["max_push_waits = 4", "max_connections = 4"],
                  ["max_connections = 1", "max_push_waits = 1"]):
        ok = write_conf(os.path.join(d, "ok-pw.conf"), base + ["pin = %s" % D.pin] + lines)
        rc, out, err = run_agent("run", "--check-config", "--config", ok, timeout=20)
        assert rc == 0 and "valid" in out, (lines, rc, out, err)


def test_enroll_writes_0600_token_and_refuses_overwrite():
    d = fresh_dir("enroll-")
    conf = write_conf(os.path.join(d, "agent.conf"), [
        "# kept", "host_token_file = %s" % os.path.join(d, "host.token"), "log_level = info"])
    before = open(conf).read()
    tok = D.create_token(hostname="enroll-test-1")
    rc, out, err = run_agent("enroll", "--config", conf, "--url", D.url, "--pin", D.pin,
                             "--token", tok, "--hostname", "enroll-test-1")
    assert rc == 0, (rc, out, err)
    tf = os.path.join(d, "host.token")
    assert harness.file_mode(tf) == 0o600, oct(harness.file_mode(tf))
    token = open(tf).read().strip()
    assert re.fullmatch(r"[0-9a-f]{32,}", token), token
    assert tok not in out + err and token not in out + err
    # the host token works against the API
    st, _ = D.api("POST", "/v1/auth/begin", {"user": "nobody-here"}, token=token)
    assert st == 200, st
    # url and pin were appended; the old lines are kept
    after = open(conf).read()
    assert after.startswith(before), after
    assert "url = %s\n" % D.url in after and "pin = %s\n" % D.pin in after, after
    st, hosts = D.admin("GET", "/v1/hosts")
    assert any(h["hostname"] == "enroll-test-1" for h in hosts["hosts"]), hosts
    # second enrollment without --force: refused, token untouched, new token not spent
    tok2 = D.create_token(hostname="enroll-test-2")
    rc, out, err = run_agent("enroll", "--config", conf, "--token", tok2,
                             "--hostname", "enroll-test-2")
    assert rc == 1, (rc, out, err)
    assert "already enrolled" in err and "--force" in err, err
    assert open(tf).read().strip() == token
    # with --force (url/pin now from the config): replaced
    rc, out, err = run_agent("enroll", "--config", conf, "--token", tok2, "--force",
                             "--hostname", "enroll-test-2")
    assert rc == 0, (rc, out, err)
    token2 = open(tf).read().strip()
    assert token2 != token and harness.file_mode(tf) == 0o600
    assert open(conf).read() == after, "config rewritten although url/pin were already set"
    # --url that contradicts the config is refused
    rc, _, err = run_agent("enroll", "--config", conf, "--token", D.create_token(), "--force",
                           "--url", "https://127.0.0.1:1")
    assert rc == 1 and "--url" in err, err


def test_enroll_refused_token_and_stdin_token():
    d = fresh_dir("enroll-bad-")
    conf = write_conf(os.path.join(d, "agent.conf"),
                      ["host_token_file = %s" % os.path.join(d, "host.token")])
    rc, out, err = run_agent("enroll", "--config", conf, "--url", D.url, "--pin", D.pin,
                             "--token", "ab" * 32)
    assert rc == 1 and "refused" in err, (rc, out, err)
    assert not os.path.exists(os.path.join(d, "host.token"))
    rc, _, err = run_agent("enroll", "--config", conf, "--url", D.url, "--pin", wrong_pin(),
                           "--token", D.create_token())
    assert rc == 1 and "pin" in err, err
    # token from stdin. (Every config here sets host_token_file: the built-in default is a
    # system path that a test must never write.)
    conf2 = write_conf(os.path.join(d, "new.conf"),
                       ["host_token_file = %s" % os.path.join(d, "stdin.token")])
    rc, out, err = run_agent("enroll", "--config", conf2, "--url", D.url, "--pin", D.pin,
                             "--token", "-", "--hostname", "stdin-host",
                             stdin=(D.create_token(hostname="stdin-host") + "\n").encode())
    assert rc == 0, (rc, out, err)
    text = open(conf2).read()
    assert "url = %s" % D.url in text and "pin = %s" % D.pin in text, text
    assert harness.file_mode(os.path.join(d, "stdin.token")) == 0o600


def status_conf(pin=None, token_file=None):
    d = fresh_dir("status-")
    return write_conf(os.path.join(d, "agent.conf"), [
        "url = %s" % D.url, "pin = %s" % (pin or D.pin),
        "host_token_file = %s" % (token_file or TOKEN_FILE), "timeout = 5s"])


def test_status_enrolled_and_reachable():
    conf = status_conf()
    rc, out, err = run_agent("status", "--config", conf)
    assert rc == 0, (rc, out, err)
    assert re.search(r"enrolled:\s+yes", out) and re.search(r"reachable:\s+yes", out), out
    assert D.pin in out and D.url in out, out
    rc, out, _ = run_agent("status", "--config", conf, "--json")
    j = json.loads(out)
    assert rc == 0 and j["enrolled"] is True and j["reachable"] is True, j
    assert j["pin"] == D.pin and j["url"] == D.url, j
    assert HOST_TOKEN not in out


def test_status_pin_mismatch_and_not_enrolled():
    rc, out, err = run_agent("status", "--config", status_conf(pin=wrong_pin()))
    assert rc == 1, (rc, out, err)
    assert "TLS pin mismatch" in out, out
    rc, out, _ = run_agent("status", "--config", status_conf(pin=wrong_pin()), "--json")
    j = json.loads(out)
    assert rc == 1 and j["reachable"] is False and j["error"] == "tls" and j["pin_mismatch"], j
    missing = os.path.join(ROOT, "no-such.token")
    rc, out, _ = run_agent("status", "--config", status_conf(token_file=missing))
    assert rc == 1 and re.search(r"enrolled:\s+no", out) and re.search(r"reachable:\s+yes", out), out


def test_upper_case_host_token_is_not_a_host_token():
    """Host tokens are lower-case hex (portcullisd makes them so and accepts no other): a token
    file in upper case is refused by the agent itself, as "not enrolled", with the reason."""
    up = os.path.join(fresh_dir("upper-"), "host.token")
    with open(up, "w") as f:
        f.write(HOST_TOKEN.upper() + "\n")
    os.chmod(up, 0o600)
    rc, out, _ = run_agent("status", "--config", status_conf(token_file=up))
    assert rc == 1 and re.search(r"enrolled:\s+no", out), out
    assert "does not hold a host token" in out and HOST_TOKEN.upper() not in out, out


# --------------------------------------------------------------------------------------------
# the socket

def test_socket_mode_owner_and_nonroot_cannot_connect():
    a = shared_agent()
    st = os.stat(a.socket)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)
    assert st.st_uid == 0 and st.st_gid == 0, (st.st_uid, st.st_gid)
    assert stat.S_IMODE(os.stat(os.path.dirname(a.socket)).st_mode) == 0o755

    def try_connect():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(a.socket)
        return "connected"
    res = in_child(try_connect)
    assert res.get("errno") == errno.EACCES, res


def test_socket_directory_others_can_write_is_refused():
    """A socket directory that others can write would let them swap the socket for a symlink
    between bind and chown: the agent refuses to start, naming the directory."""
    d = fresh_dir("sockdir-")
    sockdir = os.path.join(d, "shared")
    os.mkdir(sockdir)
    os.chmod(sockdir, 0o1777)
    conf = write_conf(os.path.join(d, "agent.conf"), [
        "url = %s" % D.url, "pin = %s" % D.pin, "host_token_file = %s" % TOKEN_FILE,
        "socket = %s" % os.path.join(sockdir, "agent.sock")])
    rc, out, err = run_agent("run", "--config", conf, timeout=30)
    assert rc != 0, "agent started with its socket in a world-writable directory"
    assert sockdir in err, err
    assert not os.path.exists(os.path.join(sockdir, "agent.sock"))


def test_socket_group_member_gets_forbidden_for_login_ops():
    a = Agent(extra=["socket_group = nogroup"]).start()
    st = os.stat(a.socket)
    assert st.st_gid == NOBODY and stat.S_IMODE(st.st_mode) == 0o660, (st.st_gid, oct(st.st_mode))

    def as_member():
        out = {}
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(a.socket)
        out["status"] = call(s, {"op": "status"})
        s.close()
        # non-root callers get one request per connection: begin on a fresh one
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(a.socket)
        out["begin"] = call(s, {"op": "begin", "user": "root"})
        try:
            out["after"] = recv_exact(s, 1).decode()
        except (EOFError, OSError) as e:
            out["after"] = "closed: %s" % e
        for op in ({"op": "totp", "txid": "00" * 16, "code": "123456"},
                   {"op": "push", "txid": "00" * 16},
                   {"op": "push_wait", "push_id": "00" * 16, "wait": 0},
                   {"op": "failmode", "id": "00" * 16, "failmode": "safe"}):
            s2 = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s2.settimeout(30)
            s2.connect(a.socket)
            out[op["op"]] = call(s2, op)
            s2.close()
        s.close()
        return out
    res = in_child(as_member, groups=[NOBODY])
    assert "result" in res, res
    r = res["result"]
    assert r["status"]["ok"] is True and r["status"]["enrolled"] is True, r
    assert r["status"]["reachable"] is True and r["status"]["pin"] == D.pin, r
    for op in ("begin", "totp", "push", "push_wait", "failmode"):
        assert r[op] == {"ok": False, "error": "forbidden", "message": r[op].get("message")}, r
    assert r["after"].startswith("closed"), r
    assert a.stop() == 0


def test_login_totp_allow_and_deny():
    a = shared_agent()
    user, secret = D.user_with_totp()
    code = harness.totp_code(secret)
    b, t = login_totp(a, user, code)
    assert b["factors"] == ["totp"] and re.fullmatch(r"[0-9a-f]+", b["txid"]), b
    assert t == {"ok": True, "result": "allow", "reason": t["reason"]}, t
    bad = harness.wrong_code(secret)
    b, t = login_totp(a, user, bad)
    assert t["ok"] is True and t["result"] == "deny" and t["reason"] == "wrong_code", t
    # the same code again is a replay: deny
    b, t = login_totp(a, user, code)
    assert t["result"] == "deny", t
    # unknown user: begin answers deny
    r = a.call({"op": "begin", "user": "no_such_user_x"})
    assert r["ok"] is True and r["action"] == "deny" and r["reason"] == "unknown_user", r
    # no secrets in the agent's log
    log = a.log()
    for secret_text in (code, bad, HOST_TOKEN, secret):
        assert secret_text not in log, "secret in agent log"
    assert "event=begin" in log and "event=totp" in log, log


def test_bad_requests():
    a = shared_agent()
    with a.connect() as s:
        r = call(s, {"op": "dance"})
        assert r["ok"] is False and r["error"] == "bad_request", r
        r = call(s, {"op": "begin"})
        assert r["error"] == "bad_request", r
        r = call(s, {"op": "begin", "user": "x", "extra": 1})
        assert r["error"] == "bad_request", r
        r = call(s, {"op": "totp", "txid": "../../v1/users", "code": "123456"})
        assert r["error"] == "bad_request", r
        r = call(s, {"op": "push_wait", "push_id": "zz/..", "wait": 1})
        assert r["error"] == "bad_request", r
        r = call(s, {"op": "push_wait", "push_id": "ab", "wait": -1})
        assert r["error"] == "bad_request", r
        # an unknown transaction: the control plane's 404 → bad_request
        r = call(s, {"op": "totp", "txid": "0" * 32, "code": "123456"})
        assert r["ok"] is False and r["error"] == "bad_request", r
    # a frame that is not JSON: bad_request, then closed
    with a.connect() as s:
        s.sendall(struct.pack(">I", 5) + b"hello")
        r = recv_frame(s)
        assert r["error"] == "bad_request", r


def test_begin_with_push_returns_the_push():
    a = shared_agent()
    user, _ = D.user_with_totp(push=True)
    with a.connect() as s:
        b = call(s, {"op": "begin", "user": user, "rhost": "127.0.0.1", "push": True})
        assert b["ok"] is True and b["action"] == "challenge", b
        assert re.fullmatch(r"[0-9a-f]{32}", b["push_id"]) and re.fullmatch(r"\d\d", b["match"]), b
        assert b["expires_at"] > time.time(), b
        w = call(s, {"op": "push_wait", "push_id": b["push_id"], "wait": 0})
        assert w == {"ok": True, "state": "pending"}, w
        # the op push of an older module answers the same push
        p = call(s, {"op": "push", "txid": b["txid"]})
        assert (p["push_id"], p["match"]) == (b["push_id"], b["match"]), (p, b)
        # a user without push: a plain challenge
        other, _ = D.user_with_totp(push=False)
        b2 = call(s, {"op": "begin", "user": other, "push": True})
        assert b2["action"] == "challenge" and "push_id" not in b2, b2
        for bad in ("yes", 1, None):
            r = call(s, {"op": "begin", "user": user, "push": bad})
            assert r["ok"] is False and r["error"] == "bad_request", (bad, r)
    creates = [r for r in D.audit(user=user) if r["action"] == "push.create"]
    assert len(creates) == 1, creates


def test_begin_with_push_against_an_older_control_plane():
    """A control plane before begin's "push" answers 400 unknown_field: the agent asks again
    without it (the module then asks for the push itself), and stops sending it."""
    d = Daemon(env={"PC_TEST_BEGIN_WITHOUT_PUSH": "1"}).start()
    try:
        _, tok = d.enroll_host()
        tf = os.path.join(fresh_dir("old-cp-"), "host.token")
        with open(tf, "w") as f:
            f.write(tok + "\n")
        a = Agent(daemon=d, token_file=tf).start()
        user, _ = d.user_with_totp(push=True)
        with a.connect() as s:
            for _ in range(2):
                b = call(s, {"op": "begin", "user": user, "push": True})
                assert b["ok"] is True and b["action"] == "challenge", b
                assert "push_id" not in b, b
            p = call(s, {"op": "push", "txid": b["txid"]})
            assert p["ok"] is True and re.fullmatch(r"\d\d", p["match"]), p
        log = a.log()
        assert log.count("takes no push with begin") == 1, log
        assert log.count("http_status=400") == 1, log
    finally:
        d.kill()


def test_push_approved_through_api():
    a = shared_agent()
    user, _ = D.user_with_totp(push=True)
    with a.connect() as s:
        b = call(s, {"op": "begin", "user": user, "rhost": "127.0.0.1", "service": "sshd"})
        assert b["action"] == "challenge" and "push" in b["factors"], b
        p = call(s, {"op": "push", "txid": b["txid"]})
        assert p["ok"] is True and re.fullmatch(r"\d\d", p["match"]), p
        assert p["expires_at"] > time.time(), p
        # idempotent: the same push again
        p2 = call(s, {"op": "push", "txid": b["txid"]})
        assert p2["push_id"] == p["push_id"] and p2["match"] == p["match"], p2
        w = call(s, {"op": "push_wait", "push_id": p["push_id"], "wait": 0})
        assert w == {"ok": True, "state": "pending"}, w

        def approve():
            time.sleep(1.0)
            st, body = D.admin("POST", "/v1/approvals/%s/approve" % p["push_id"],
                               {"match": p["match"]})
            assert st == 200, (st, body)
        t = threading.Thread(target=approve)
        t.start()
        t0 = time.time()
        w = call(s, {"op": "push_wait", "push_id": p["push_id"], "wait": 30})
        t.join()
        assert w == {"ok": True, "state": "approved"}, w
        assert time.time() - t0 < 15, "push_wait did not return when approved"


def test_push_wait_is_capped_and_long_polls():
    """wait above 60 is capped (not refused); a pending push waits and then says pending."""
    d = Daemon(args=["--push-ttl", "10s"]).start()
    _, tok = d.enroll_host()
    tf = os.path.join(fresh_dir("pw-"), "host.token")
    with open(tf, "w") as f:
        f.write(tok + "\n")
    a = Agent(daemon=d, token_file=tf, extra=["timeout = 3s"]).start()
    user, _ = d.user_with_totp(push=True)
    with a.connect() as s:
        b = call(s, {"op": "begin", "user": user})
        p = call(s, {"op": "push", "txid": b["txid"]})
        t0 = time.time()
        w = call(s, {"op": "push_wait", "push_id": p["push_id"], "wait": 2})
        assert w == {"ok": True, "state": "pending"}, w
        assert 1.5 <= time.time() - t0 < 3, time.time() - t0   # waited, within wait+timeout
        w = call(s, {"op": "push_wait", "push_id": p["push_id"], "wait": 1000})
        assert w["ok"] is True and w["state"] == "expired", w
    assert a.stop() == 0
    d.kill()


def test_50_concurrent_logins_few_connections():
    a = Agent(extra=["max_connections = 8"]).start()
    users = [D.user_with_totp() for _ in range(50)]
    results = [None] * 50

    def one(i):
        user, secret = users[i]
        try:
            results[i] = login_totp(a, user, harness.totp_code(secret))[1]
        except Exception as e:  # noqa: BLE001
            results[i] = {"exception": repr(e)}
    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    bad = [(users[i][0], r) for i, r in enumerate(results) if not r or r.get("result") != "allow"]
    assert not bad, "not allowed: %r\nagent log:\n%s" % (bad[:5], a.log()[-3000:])
    assert time.time() - t0 < 60
    time.sleep(0.5)
    n = a.tcp_conns_to(D.port)
    assert 1 <= n <= 8, "agent holds %d connections to portcullisd (max_connections = 8)" % n
    # and they are reused: another round opens none beyond the pool
    user, secret = D.user_with_totp()
    assert login_totp(a, user, harness.totp_code(secret))[1]["result"] == "allow"
    assert a.tcp_conns_to(D.port) <= 8
    assert a.stop() == 0


def _pending_pushes(a, n):
    """n users with a push sent through agent a; returns [(socket, push_id, match)] with each
    login's connection still open (push_wait goes on it, as pam_portcullis does)."""
    out = []
    for _ in range(n):
        user, _ = D.user_with_totp(push=True)
        s = a.connect()
        b = call(s, {"op": "begin", "user": user, "rhost": "127.0.0.1", "service": "sshd"})
        assert b.get("ok") is True and "push" in b["factors"], b
        p = call(s, {"op": "push", "txid": b["txid"]})
        assert p.get("ok") is True, p
        out.append((s, p["push_id"], p["match"]))
    return out


class _LongPolls:
    """A push_wait of wait seconds on each of pushes, each in its own thread, kept going until
    all of them are admitted by the agent: fill() returns once a push_wait on `extra` is refused
    with push_busy (then every admitted long-poll is one of ours). A long-poll of ours that
    lost the race to the probe (refused itself) is started again."""

    def __init__(self, pushes, wait):
        self.pushes, self.wait = pushes, wait
        self.results = [None] * len(pushes)
        self.threads = [None] * len(pushes)
        for i in range(len(pushes)):
            self._start(i)

    def _start(self, i):
        def one():
            s, push_id, _ = self.pushes[i]
            try:
                self.results[i] = call(s, {"op": "push_wait", "push_id": push_id,
                                           "wait": self.wait})
            except Exception as e:  # noqa: BLE001
                self.results[i] = {"exception": repr(e)}
        self.results[i] = None
        self.threads[i] = threading.Thread(target=one)
        self.threads[i].start()

    def fill(self, extra, timeout=15):
        """Returns the refusal of extra's push_wait (wait=0, answered at once when admitted)."""
        s, push_id, _ = extra
        deadline = time.time() + timeout
        while True:
            restarted = False
            for i, r in enumerate(self.results):
                if r is not None and r.get("error") == "push_busy":
                    self.threads[i].join()
                    self._start(i)
                    restarted = True
            if restarted:
                time.sleep(0.2)
            r = call(s, {"op": "push_wait", "push_id": push_id, "wait": 0})
            if r.get("error") == "push_busy":
                assert all(x is None for x in self.results), self.results
                return r
            assert r == {"ok": True, "state": "pending"}, r
            assert time.time() < deadline, "long-polls not all admitted: %r" % self.results
            time.sleep(0.05)

    def approve_all(self):
        for _, push_id, match in self.pushes:
            st, body = D.admin("POST", "/v1/approvals/%s/approve" % push_id, {"match": match})
            assert st == 200, (st, body)
        for t in self.threads:
            t.join(30)
        assert self.results == [{"ok": True, "state": "approved"}] * len(self.pushes), \
            self.results


def test_push_waits_cannot_starve_other_logins():
    """Long-polls (push_wait, held open by the control plane while nobody answers the push) get
    at most max_push_waits of the pool: with them all in flight, a TOTP login and a principals
    request are still served at once, and one push_wait more is refused with push_busy (a deny
    for the module) without waiting. Without the reserve (max_push_waits = max_connections)
    the same long-polls starve the login into "busy"."""
    a = Agent(extra=["max_connections = 3", "max_push_waits = 2", "timeout = 3s"]).start()
    # the start line may follow the socket by a moment (seen under TSan): wait for it
    harness.wait_until(lambda: "max_connections=3 max_push_waits=2" in a.log(), timeout=10,
                       what="the agent's start line with its limits")
    pushes = _pending_pushes(a, 3)
    polls = _LongPolls(pushes[:2], 30)
    refused = polls.fill(pushes[2])
    assert refused["ok"] is False and "max_push_waits = 2" in refused["message"], refused
    extra_s, extra_id, _ = pushes[2]
    t0 = time.time()
    r = call(extra_s, {"op": "push_wait", "push_id": extra_id, "wait": 30})
    assert r["ok"] is False and r["error"] == "push_busy", r
    assert time.time() - t0 < 1.0, "a refused push_wait waited %.1fs" % (time.time() - t0)
    # the reserve: ordinary calls are served while both long-polls hold their connections
    user, secret = D.user_with_totp()
    t0 = time.time()
    b, t = login_totp(a, user, harness.totp_code(secret))
    assert t.get("ok") is True and t["result"] == "allow", (t, a.log()[-2000:])
    r = a.call({"op": "principals", "account": "ubuntu", "key_id": user, "serial": "7",
                "fingerprint": "SHA256:abc"})
    assert r.get("ok") is True and r["principals"] == [], r
    assert time.time() - t0 < 2.5, "served in %.1fs" % (time.time() - t0)
    assert polls.results == [None, None], "a long-poll ended early: %r" % polls.results
    assert "event=push_wait result=refused error=push_busy in_flight=2 max_push_waits=2" in a.log()
    # approved: the long-polls end, their lane is free again
    polls.approve_all()
    r = call(extra_s, {"op": "push_wait", "push_id": extra_id, "wait": 0})
    assert r == {"ok": True, "state": "pending"}, r
    for s, _, _ in pushes:
        s.close()
    assert a.stop() == 0

    # the control: long-polls allowed the whole pool starve the next login into "busy"
    a = Agent(extra=["max_connections = 2", "max_push_waits = 2", "timeout = 2s"]).start()
    pushes = _pending_pushes(a, 3)
    polls = _LongPolls(pushes[:2], 30)
    polls.fill(pushes[2])
    time.sleep(0.5)          # admitted, and now holding their connections
    r = a.call({"op": "begin", "user": user})
    assert r["ok"] is False and r["error"] == "busy", r
    polls.approve_all()
    for s, _, _ in pushes:
        s.close()
    assert a.stop() == 0


def test_nonroot_callers_cannot_starve_root():
    """A socket-group member holding idle connections takes at most its small quota; root's
    logins still get served, and the member's idle connections are closed (security review:
    under failmode=safe a starved agent used to admit without a second factor)."""
    a = Agent(extra=["socket_group = nogroup", "max_clients = 8"]).start()   # quota: 2
    time.sleep(0.3)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r)
            os.setgroups([NOBODY])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            held, replies = [], []
            for _ in range(5):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(10)
                s.connect(a.socket)
                held.append(s)
            time.sleep(0.3)
            for s in held[2:]:            # beyond the quota: answered "busy" and closed
                try:
                    replies.append(recv_frame(s).get("error"))
                except (EOFError, OSError) as e:
                    replies.append("closed: %s" % e)
            os.write(w, json.dumps({"busy": replies}).encode() + b"\n")
            # the two admitted ones send nothing: the agent must close them on its own
            closed = 0
            for s in held[:2]:
                try:
                    closed += 1 if s.recv(1) == b"" else 0
                except OSError:
                    pass
            os.write(w, json.dumps({"closed": closed}).encode() + b"\n")
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    f = os.fdopen(r)
    first = json.loads(f.readline())
    assert first["busy"] == ["busy", "busy", "busy"], first
    # while the member holds its quota, root is served
    for _ in range(3):
        assert a.call({"op": "status"}, timeout=10)["ok"] is True
    second = json.loads(f.readline())
    f.close()
    os.waitpid(pid, 0)
    assert second["closed"] == 2, "idle non-root connections were not closed: %r" % second
    assert a.stop() == 0


def test_busy_beyond_max_clients():
    a = Agent(extra=["max_clients = 2"]).start()
    time.sleep(0.3)          # let the readiness probe's connection end
    held = [a.connect(), a.connect()]
    time.sleep(0.2)
    with a.connect() as s:
        r = recv_frame(s)
        assert r["ok"] is False and r["error"] == "busy", r
    for h in held:
        h.close()
    time.sleep(0.3)
    assert a.call({"op": "status"})["ok"] is True
    assert a.stop() == 0


# --------------------------------------------------------------------------------------------
# failures: unreachable, tls, garbage, server, rejected, not_enrolled

def test_control_plane_stopped_is_unreachable_and_recovers():
    d = Daemon().start()
    _, tok = d.enroll_host()
    tf = os.path.join(fresh_dir("down-"), "host.token")
    with open(tf, "w") as f:
        f.write(tok + "\n")
    a = Agent(daemon=d, token_file=tf).start()
    user, secret = d.user_with_totp()
    r = a.call({"op": "begin", "user": user})
    assert r["ok"] is True and r["action"] == "challenge", r
    assert d.stop() == 0
    for op in ({"op": "begin", "user": user}, {"op": "push_wait", "push_id": "ab" * 16, "wait": 0}):
        r = a.call(op)
        assert r["ok"] is False and r["error"] == "unreachable", r
    r = a.call({"op": "status"})
    assert r["ok"] is True and r["reachable"] is False and r["error"] == "unreachable", r
    d.start()
    b, t = login_totp(a, user, harness.totp_code(secret))
    assert t["result"] == "allow", t
    assert a.stop() == 0
    d.kill()


def test_wrong_pin_is_tls():
    a = Agent(pin=wrong_pin()).start()
    for op in ({"op": "begin", "user": "root"},
               {"op": "totp", "txid": "ab" * 16, "code": "123456"},
               {"op": "push", "txid": "ab" * 16},
               {"op": "push_wait", "push_id": "ab" * 16, "wait": 1}):
        r = a.call(op)
        assert r["ok"] is False and r["error"] == "tls", (op, r)
    r = a.call({"op": "status"})
    assert r["reachable"] is False and r["error"] == "tls" and r["pin_mismatch"] is True, r
    assert a.stop() == 0


def test_not_enrolled_then_enrolled_without_restart():
    tf = os.path.join(fresh_dir("ne-"), "host.token")
    a = Agent(token_file=tf).start()
    r = a.call({"op": "begin", "user": "root"})
    assert r["ok"] is False and r["error"] == "not_enrolled", r
    r = a.call({"op": "status"})
    assert r["ok"] is True and r["enrolled"] is False and r["reachable"] is True, r
    _, tok = D.enroll_host()
    with open(tf, "w") as f:
        f.write(tok + "\n")
    user, secret = D.user_with_totp()
    assert login_totp(a, user, harness.totp_code(secret))[1]["result"] == "allow"
    assert a.stop() == 0


def test_revoked_token_is_rejected():
    tf = os.path.join(fresh_dir("rej-"), "host.token")
    with open(tf, "w") as f:
        f.write("ab" * 32 + "\n")                  # well-formed, unknown to the server
    a = Agent(token_file=tf).start()
    r = a.call({"op": "begin", "user": "root"})
    assert r["ok"] is False and r["error"] == "rejected", r
    assert a.stop() == 0


class _FakeCP:
    """A TLS server with portcullisd's own key (so the pin matches) that answers every request
    with a scripted (status, body) — for replies the real control plane never sends."""

    def __init__(self, daemon):
        self.answer = (200, b"{}")
        fake = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _reply(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                st, body = fake.answer
                self.send_response(st)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            do_GET = do_POST = _reply

            def log_message(self, *a):
                pass
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(daemon.path("tls.crt"), daemon.path("tls.key"))
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_garbage_server_and_status_mapping():
    fake = _FakeCP(D)
    try:
        a = Agent(url="https://127.0.0.1:%d" % fake.port, extra=["timeout = 5s"]).start()
        begin = {"op": "begin", "user": "root"}
        totp = {"op": "totp", "txid": "ab" * 16, "code": "123456"}
        push = {"op": "push", "txid": "ab" * 16}
        wait = {"op": "push_wait", "push_id": "ab" * 16, "wait": 0}
        cases = [
            (begin, 200, b"not json", "garbage"),
            (begin, 200, b'{"txid":"ab","action":"allow"}', "garbage"),            # fields missing
            (begin, 200, b'{"txid":"ab","action":"permit","factors":[],"reason":""}', "garbage"),
            (begin, 200, b'{"txid":7,"action":"allow","factors":[],"reason":""}', "garbage"),
            (begin, 200, b'{"txid":"ab","action":"challenge","factors":[],"reason":""}', "garbage"),
            (begin, 200, b'{"txid":"ab","action":"allow","factors":["sms"],"reason":""}', "garbage"),
            (begin, 200, b'[1,2]', "garbage"),
            (begin, 200, b'', "garbage"),
            (totp, 200, b'{"result":"allow"}', "garbage"),
            (totp, 200, b'{"result":true,"reason":"ok"}', "garbage"),
            (totp, 200, b'{"result":"ALLOW","reason":"ok"}', "garbage"),
            (push, 200, b'{"push_id":"ab","match":"7","expires_at":1}', "garbage"),
            (push, 200, b'{"push_id":"ab","match":"7a","expires_at":1}', "garbage"),
            (push, 200, b'{"push_id":"ab","match":"07","expires_at":"1"}', "garbage"),
            (wait, 200, b'{"state":"approved!"}', "garbage"),
            (wait, 200, b'{"state":"approved","push_id":"cd"}', "garbage"),
            (begin, 500, b'{"error":"internal","message":"x"}', "server"),
            (totp, 503, b'<html>', "garbage"),
            (begin, 401, b'{"error":"unauthorized","message":"x"}', "rejected"),
            (totp, 403, b'{"error":"forbidden","message":"x"}', "rejected"),
            (totp, 404, b'{"error":"not_found","message":"x"}', "bad_request"),
            (totp, 410, b'{"error":"gone","message":"x"}', "bad_request"),
            # a host over its rate: named, so the module denies with a clear reason
            (begin, 429, b'{"error":"rate_limited","message":"x"}', "rate_limited"),
            (totp, 429, b'{"error":"rate_limited","message":"x"}', "rate_limited"),
            (begin, 302, b'{}', "garbage"),
        ]
        for req, st, body, want in cases:
            fake.answer = (st, body)
            r = a.call(req)
            assert r["ok"] is False and r["error"] == want, (req["op"], st, body, r)
        # and well-formed answers pass through, rebuilt field by field
        fake.answer = (200, b'{"txid":"ab12","action":"allow","factors":[],"reason":"x","extra":1}')
        r = a.call(begin)
        assert r == {"ok": True, "txid": "ab12", "action": "allow", "factors": [], "reason": "x"}, r
        fake.answer = (200, b'{"push_id":"ab","match":"07","expires_at":99}')
        assert a.call(push) == {"ok": True, "push_id": "ab", "match": "07", "expires_at": 99}
        assert a.stop() == 0
    finally:
        fake.close()


def test_timeout():
    """A control plane that accepts but never answers: "timeout" within the agent's timeout."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    try:
        a = Agent(url="https://127.0.0.1:%d" % lsock.getsockname()[1],
                  extra=["timeout = 2s", "connect_timeout = 1s"]).start()
        t0 = time.time()
        r = a.call({"op": "begin", "user": "root"})
        assert r["ok"] is False and r["error"] == "timeout", r
        assert time.time() - t0 < 5, time.time() - t0
        assert a.stop() == 0
    finally:
        lsock.close()


def _client_tids(pid):
    """The agent's client threads (named agent-client): the others (the control plane's
    connection pool, background syncs) come and go on their own."""
    out = set()
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                if f.read().strip() == "agent-client":
                    out.add(tid)
        except FileNotFoundError:
            pass  # exited meanwhile
    return out


def test_a_parked_thread_serves_the_next_client_and_a_stop_does_not_wait_for_it():
    """A client's thread stays (parked, AG_PARK_MS) for the next client instead of exiting: one
    login after another is served by the same thread, no thread is made per login (the agent's
    client thread, seen while each client is connected, is the same one; a new thread would
    have a new id). A stop does not wait for the park to time out (30 s)."""
    a = Agent().start()
    try:
        user, secret = D.user_with_totp()
        # first, every thread the agent makes once (the control plane's connection pool …)
        login_totp(a, user, harness.totp_code(secret))
        with a.connect() as s:
            assert call(s, {"op": "status"}).get("ok") is True
        time.sleep(0.5)
        seen = []
        for i in range(6):
            with a.connect() as s:
                if i % 2:
                    b = call(s, {"op": "begin", "user": user, "rhost": "127.0.0.1",
                                 "service": "sshd"})
                    assert b.get("ok") is True and b["action"] == "challenge", b
                    t = call(s, {"op": "totp", "txid": b["txid"],
                                 "code": harness.totp_code(secret)})
                    assert t.get("ok") is True, t  # allow, or deny as a replay: served
                else:
                    assert call(s, {"op": "status"}).get("ok") is True
                seen.append(_client_tids(a.proc.pid))  # while this client is connected
            time.sleep(0.05)  # its thread parks (a client that comes first takes the next slot)
        every = set().union(*seen)
        # without parking: six threads, one per client; with it one, or two when a client came
        # before the previous one's thread had parked
        assert 1 <= len(every) <= 2, \
            "a new thread served each later client: %r" % [sorted(x) for x in seen]
        t0 = time.monotonic()
        assert a.stop() == 0
        assert time.monotonic() - t0 < 10, "the stop waited for the parked thread's timeout"
    finally:
        a.stop()


def test_sigterm_stops_and_removes_socket():
    a = Agent().start()
    held = a.connect()       # an idle client must not keep it running
    assert a.stop() == 0
    assert not os.path.exists(a.socket)
    held.close()
    assert "event=stop" in a.log()
