# SPDX-License-Identifier: BSD-2-Clause
"""portcullis-agent, certificate authority half, against a real portcullisd: enroll with a host
key (host-cert.pub / host_ca.pub / user_ca.pub / revoked.krl written with the right modes and
content, an organisation's own user CA keys kept), the CA config keys validated with FILE:LINE,
the KRL sync (replaced atomically; kept when the control plane is down, when it is over the
32 MiB bound (announced or not; exactly the bound is taken) and on a TLS failure, reset, hang or
garbage, each logged with its class), `principals`
(allowed / refused / forbidden peer / within 2 s when the daemon hangs or is absent / malformed
daemon reply), the principals cache (used only when the control plane is unreachable, never on
a TLS failure, gone after principals_stale), and `renew` (command and daemon at 2/3).

Helpers here (user_cert(), ...) are shared with tests/e2e/e2e_ca.py."""
import base64
import http.server
import json
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time

import harness
from harness import Daemon

TEST_TIMEOUT = 180
AGENT_BIN = os.path.join(harness.BUILD_DIR, "agent", "portcullis-agent")
FAULTPROXY = os.path.join(harness.SRC_DIR, "tests", "faultproxy.py")
NOBODY = 65534

D = None
ROOT = None
AGENTS = []
PROCS = []


# --------------------------------------------------------------------------------------------
# helpers (also used by tests/e2e/e2e_ca.py)

def sh(cmd, check=True, timeout=60, **kw):
    r = subprocess.run(cmd, capture_output=True, timeout=timeout, **kw)
    out = r.stdout.decode("utf-8", "replace")
    err = r.stderr.decode("utf-8", "replace")
    if check and r.returncode != 0:
        raise AssertionError("%s exited %d:\n%s%s" % (" ".join(cmd), r.returncode, out, err))
    return r.returncode, out, err


def keygen(path, comment="portcullis-test"):
    if not os.path.exists(path):
        sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path])
    with open(path + ".pub") as f:
        return f.read().strip()


def fingerprint(pub_path):
    _, out, _ = sh(["ssh-keygen", "-l", "-E", "sha256", "-f", pub_path])
    return out.split()[1]


def cert_info(path):
    """ssh-keygen -L -f path as text."""
    return sh(["ssh-keygen", "-L", "-f", path])[1]


def cert_serial(path):
    m = re.search(r"Serial: (\d+)", cert_info(path))
    assert m, cert_info(path)
    return int(m.group(1))


def krl_query(krl, pub_path):
    """(rc, text) of ssh-keygen -Q -f KRL FILE: rc 0 and 'ok' when not revoked."""
    rc, out, err = sh(["ssh-keygen", "-Q", "-f", krl, pub_path], check=False)
    return rc, out + err


def add_policy(d, name, users=(), groups=(), accounts=("$user",), hosts=None, **extra):
    body = {"name": name, "users": list(users), "groups": list(groups),
            "accounts": list(accounts), "hosts": hosts or {}}
    body.update(extra)
    st, b = d.admin("POST", "/v1/policies", body)
    assert st == 201, "POST /v1/policies %r → %s %r" % (body, st, b)
    return b


def person_with_key(d, key_path, name=None, push=False):
    """A Portcullis user with TOTP and the SSH key at key_path; returns (name, secret)."""
    pub = keygen(key_path)
    name = name or harness.unique_name("p")
    st, b = d.admin("POST", "/v1/users", {"name": name, "groups": [], "push": push,
                                          "ssh_keys": [pub]})
    assert st == 201, "POST /v1/users → %s %r" % (st, b)
    secret, _ = d.enroll_totp(name)
    return name, secret


def user_cert(d, name, secret, key_path, ttl=None, fake_offset=0):
    """The login flow as `portcullis login` does it (start, ssh-keygen -Y sign, finish with a
    TOTP code); writes KEY-cert.pub and returns the finish reply. fake_offset: the control
    plane's PC_FAKE_NOW offset (the code is computed for that time)."""
    with open(key_path + ".pub") as f:
        pub = f.read().strip()
    body = {"user": name, "public_key": pub}
    if ttl:
        body["ttl"] = ttl
    st, b = d.api("POST", "/v1/login/start", body)
    assert st == 200, "login/start → %s %r" % (st, b)
    chal = base64.b64decode(b["challenge"])
    tmp = tempfile.mkdtemp(prefix="pc-sig-", dir=ROOT or None)
    data = os.path.join(tmp, "challenge")
    with open(data, "wb") as f:
        f.write(chal)
    sh(["ssh-keygen", "-q", "-Y", "sign", "-n", b["namespace"], "-f", key_path, data])
    with open(data + ".sig") as f:
        sig = f.read()
    code = harness.totp_code(secret, t=time.time() + fake_offset)
    st, r = d.api("POST", "/v1/login/finish", {"login_id": b["login_id"], "signature": sig,
                                                "code": code})
    assert st == 200, "login/finish → %s %r" % (st, r)
    with open(key_path + "-cert.pub", "w") as f:
        f.write(r["certificate"].strip() + "\n")
    return r


def write_conf(path, lines):
    with open(path, "w") as f:
        f.write("".join(l + "\n" for l in lines))
    return path


def fresh_dir(prefix):
    d = tempfile.mkdtemp(prefix=prefix, dir=ROOT)
    os.chmod(d, 0o755)
    return d


def run_agent(*args, timeout=60, env=None, preexec=None):
    full = dict(os.environ)
    full.update(env or {})
    r = subprocess.run([AGENT_BIN] + list(args), capture_output=True, timeout=timeout, env=full,
                       preexec_fn=preexec)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


class Host:
    """An enrolled host: its own dir, host key, agent.conf, ssh_dir; `run` on demand."""

    def __init__(self, d, labels=None, extra=(), url=None, pin=None, hostname=None,
                 principals=None):
        self.token_principals = principals  # the host principals its enrollment token names
        self.d = d
        self.dir = fresh_dir("host-")
        self.hostname = hostname or ("h-" + harness.unique_name("h").replace("_", "-"))
        self.host_key = os.path.join(self.dir, "ssh_host_ed25519_key")
        keygen(self.host_key, "host")
        self.ssh_dir = os.path.join(self.dir, "ssh")
        self.socket = os.path.join(self.dir, "run", "agent.sock")
        self.token_file = os.path.join(self.dir, "host.token")
        self.reload_marker = os.path.join(self.dir, "reloaded")
        self.conf = write_conf(os.path.join(self.dir, "agent.conf"), [
            "url = %s" % (url or d.url), "pin = %s" % (pin or d.pin),
            "host_token_file = %s" % self.token_file, "socket = %s" % self.socket,
            "host_key = %s.pub" % self.host_key, "ssh_dir = %s" % self.ssh_dir,
            "reload_command = echo reload >> %s" % self.reload_marker,
            "log_level = debug"] + list(extra))
        self.labels = labels
        self.proc = None
        self.log_path = os.path.join(self.dir, "agent.log")
        AGENTS.append(self)

    def path(self, name):
        return os.path.join(self.ssh_dir, name)

    def enroll(self, force=False):
        if force:  # an enrolled name is taken until the admin deletes its host
            self.d.delete_host(self.hostname)
        tok = self.d.create_token(labels=self.labels or {}, hostname=self.hostname,
                                  principals=self.token_principals)
        args = ["enroll", "--config", self.conf, "--token", tok, "--hostname", self.hostname]
        if force:
            args.append("--force")
        rc, out, err = run_agent(*args)
        assert rc == 0, "enroll → %d\n%s%s" % (rc, out, err)
        return out

    def start(self, env=None):
        full = dict(os.environ)
        full.update(env or {})
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([AGENT_BIN, "run", "--config", self.conf],
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=self._log, env=full, close_fds=True)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("agent exited %s; log:\n%s" % (self.proc.returncode,
                                                                    self.log()))
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.connect(self.socket)
                return True
            except OSError:
                return False
        harness.wait_until(ready, timeout=15, what="agent socket")
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("agent ignored SIGTERM; log:\n%s" % self.log())
        self.proc = None

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def principals(self, account, key_id, serial, fp, preexec=None, sock=None):
        """(rc, stdout, stderr, seconds) of `portcullis-agent principals`."""
        args = ["principals"] + (["--socket", sock] if sock else ["--config", self.conf])
        t0 = time.time()
        rc, out, err = run_agent(*(args + [account, key_id, str(serial), fp]), timeout=20,
                                 preexec=preexec)
        return rc, out, err, time.time() - t0


def setup_module():
    global D, ROOT
    if not os.path.exists(AGENT_BIN):
        raise AssertionError("agent binary not built: %s (set PC_BUILD_DIR)" % AGENT_BIN)
    ROOT = tempfile.mkdtemp(prefix="pc-agentca-")
    harness._TMP_ROOTS.append(ROOT)
    os.chmod(ROOT, 0o755)
    D = Daemon().start()


def teardown_module():
    for a in AGENTS:
        try:
            a.stop()
        except Exception:
            pass
    for p in PROCS:
        if p.poll() is None:
            p.kill()
            p.wait()
    if D:
        D.kill()


def ca_key(d, kind):
    st, b = d.api("GET", "/v1/ca/%s.pub" % kind)
    assert st == 200, (st, b)
    return b["public_key"].split()[:2]


# --------------------------------------------------------------------------------------------
# enroll and config

def test_enroll_writes_host_cert_user_ca_host_ca_and_krl():
    h = Host(D, labels={"env": "prod"}, extra=["host_principals = web1.example, 127.0.0.1"],
             principals=["web1.example", "127.0.0.1"])
    out = h.enroll()
    assert os.path.isdir(h.ssh_dir) and harness.file_mode(h.ssh_dir) == 0o755, out
    for name in ("user_ca.pub", "host-cert.pub", "host_ca.pub", "revoked.krl"):
        assert os.path.exists(h.path(name)), "%s missing; enroll said:\n%s" % (name, out)
        assert harness.file_mode(h.path(name)) == 0o644, (name, oct(harness.file_mode(h.path(name))))
    info = cert_info(h.path("host-cert.pub"))
    assert "host certificate" in info, info
    for p in (h.hostname, "web1.example", "127.0.0.1"):
        assert re.search(r"^\s+%s$" % re.escape(p), info, re.M), (p, info)
    assert "Key ID: \"host:%s\"" % h.hostname in info, info
    # signed by the host CA we were given, for our host key
    with open(h.path("host_ca.pub")) as f:
        assert f.read().split()[:2] == ca_key(D, "host")
    fp_ca = fingerprint(h.path("host_ca.pub"))
    assert fp_ca in info, (fp_ca, info)
    assert fingerprint(h.host_key + ".pub") in info, info
    with open(h.path("user_ca.pub")) as f:
        lines = [l.split()[:2] for l in f.read().splitlines() if l.strip()]
    assert lines == [ca_key(D, "user")], lines
    with open(h.path("revoked.krl"), "rb") as f:
        assert f.read(8) == b"SSHKRL\n\0"
    rc, text = krl_query(h.path("revoked.krl"), h.host_key + ".pub")
    assert rc == 0 and "ok" in text, text
    # the token file as before
    assert harness.file_mode(h.token_file) == 0o600


def test_enroll_takes_the_tokens_name_and_refuses_another():
    h = Host(D)
    tok = D.create_token(hostname=h.hostname)
    # --hostname other than the token's: refused, nothing written, token not spent
    rc, out, err = run_agent("enroll", "--config", h.conf, "--token", tok, "--hostname",
                             "github.com")
    assert rc == 1 and "another host name" in err, (rc, out, err)
    assert not os.path.exists(h.token_file)
    # no --hostname (as setup.sh runs it): the host is the token's name
    rc, out, err = run_agent("enroll", "--config", h.conf, "--token", tok)
    assert rc == 0 and "(%s)" % h.hostname in out, (rc, out, err)
    assert "Key ID: \"host:%s\"" % h.hostname in cert_info(h.path("host-cert.pub"))
    # no second host with that name while this one is enrolled
    st, b = D.admin("POST", "/v1/tokens", {"hostname": h.hostname})
    assert st == 409, (st, b)


def test_enroll_merges_existing_user_ca_keys():
    h = Host(D)
    os.makedirs(h.ssh_dir, mode=0o755)
    org = keygen(os.path.join(h.dir, "org_ca"), "org-ca")
    old = "# our own CA\n%s\n" % org
    with open(h.path("user_ca.pub"), "w") as f:
        f.write(old)
    h.enroll()
    with open(h.path("user_ca.pub")) as f:
        text = f.read()
    assert text.startswith(old), "existing keys not kept byte for byte:\n%s" % text
    keys = [l.split()[:2] for l in text.splitlines() if l.strip() and not l.startswith("#")]
    assert keys == [org.split()[:2], ca_key(D, "user")], keys
    # again (re-enrollment): nothing added twice
    h.enroll(force=True)
    with open(h.path("user_ca.pub")) as f:
        assert f.read() == text


def test_enroll_refuses_missing_explicit_host_key_and_none_skips():
    h = Host(D)
    os.unlink(h.host_key + ".pub")
    tok = D.create_token(hostname=h.hostname)
    rc, out, err = run_agent("enroll", "--config", h.conf, "--token", tok, "--hostname", h.hostname)
    assert rc == 1 and h.host_key in err, (rc, out, err)
    assert not os.path.exists(h.token_file)
    # the token was not spent: host_key = none enrolls without a host certificate
    with open(h.conf, "a") as f:
        f.write("host_key = none\n")
    with open(h.conf) as f:
        text = f.read().replace("host_key = %s.pub\n" % h.host_key, "")
    with open(h.conf, "w") as f:
        f.write(text)
    rc, out, err = run_agent("enroll", "--config", h.conf, "--token", tok, "--hostname", h.hostname)
    assert rc == 0, (out, err)
    assert not os.path.exists(h.ssh_dir), os.listdir(h.ssh_dir)


def test_ca_config_errors_name_file_and_line():
    d = fresh_dir("conf-")
    cases = [
        ("host_principals = web1,,web2", "host_principals"),
        ("host_principals = -oProxyCommand", "host_principals"),
        ("host_principals = a b", "host_principals"),
        ("host_key = relative/key.pub", "host_key"),
        ("ssh_dir = ssh", "ssh_dir"),
        ("krl_interval = 0", "krl_interval"),
        ("krl_interval = soon", "krl_interval"),
        ("principals_stale = -1", "principals_stale"),
        ("principals_user = no-such-user-pc", "principals_user"),
    ]
    for line, key in cases:
        conf = write_conf(os.path.join(d, "agent.conf"), [
            "url = %s" % D.url, "pin = %s" % D.pin, "# comment", line])
        rc, out, err = run_agent("status", "--config", conf)
        assert rc == 1 and ("%s:4:" % conf) in err and key in err, (line, rc, err)
    # valid forms, including an empty reload_command (never reload)
    conf = write_conf(os.path.join(d, "ok.conf"), [
        "url = %s" % D.url, "pin = %s" % D.pin, "host_key = none", "ssh_dir = /tmp/x",
        "host_principals = a.example,10.0.0.1,::1", "krl_interval = 2m",
        "principals_stale = 0", "principals_user = nobody", "reload_command ="])
    rc, out, err = run_agent("status", "--config", conf)
    assert "ok.conf:" not in err and "enrolled:" in out, (rc, out, err)


# --------------------------------------------------------------------------------------------
# KRL sync

def enrolled_person(d, h, accounts=("ubuntu",), hosts=None):
    """A person allowed on h's labels, with a certificate; returns (name, key, finish reply)."""
    key = os.path.join(h.dir, harness.unique_name("k"))
    name, secret = person_with_key(d, key)
    add_policy(d, "pol-" + name, users=[name], accounts=accounts, hosts=hosts or {})
    r = user_cert(d, name, secret, key)
    return name, key, r


def test_krl_sync_replaces_atomically_and_keeps_old_when_down():
    d = Daemon().start()
    try:
        h = Host(d, extra=["krl_interval = 1"])
        h.enroll()
        krl = h.path("revoked.krl")
        name, key, r = enrolled_person(d, h)
        cert = key + "-cert.pub"
        assert krl_query(krl, cert)[0] == 0
        before = os.stat(krl)
        with open(krl, "rb") as f:
            old_bytes = f.read()
        h.start()
        # a reader that must never see a partial or empty KRL while the agent syncs
        bad = []
        stop = threading.Event()

        def reader():
            while not stop.is_set():
                try:
                    with open(krl, "rb") as f:
                        data = f.read()
                    if len(data) < 8 or data[:8] != b"SSHKRL\n\0":
                        bad.append(len(data))
                except OSError as e:
                    bad.append(repr(e))
        t = threading.Thread(target=reader, daemon=True)
        t.start()
        st, b = d.admin("POST", "/v1/certs/revoke", {"serial": r["serial"]})
        assert st == 200 and r["serial"] in b["revoked"], (st, b)
        harness.wait_until(lambda: krl_query(krl, cert)[0] != 0, timeout=10,
                           what="the agent to sync the KRL with serial %d" % r["serial"])
        rc, text = krl_query(krl, cert)
        assert "REVOKED" in text, text
        after = os.stat(krl)
        assert after.st_ino != before.st_ino, "the KRL was rewritten in place, not renamed"
        assert harness.file_mode(krl) == 0o644
        assert "event=krl_sync result=updated" in h.log(), h.log()
        # the control plane goes away: the file stays exactly as it is
        with open(krl, "rb") as f:
            synced = f.read()
        assert synced != old_bytes
        ino = os.stat(krl).st_ino
        d.stop()
        time.sleep(3.5)
        stop.set()
        t.join(5)
        with open(krl, "rb") as f:
            assert f.read() == synced
        assert os.stat(krl).st_ino == ino
        assert "event=krl_sync result=error" in h.log(), h.log()
        assert not bad, "a reader saw a partial KRL: %r" % bad[:5]
        assert not [n for n in os.listdir(h.ssh_dir) if ".tmp" in n], os.listdir(h.ssh_dir)
    finally:
        h.stop()
        d.kill()


KRL_MAX = 32 * 1024 * 1024      # agent/ag_krl.h AG_KRL_MAX


def krl_of_size(total, version=7):
    """A KRL of exactly total bytes that passes the agent's structural check: the header, then
    one certificate section whose blob fills the rest (its content is not the agent's concern)."""
    head = (b"SSHKRL\n\0" + struct.pack(">I", 1) + struct.pack(">QQQ", version, int(time.time()), 0)
            + struct.pack(">I", 0) + struct.pack(">I", 0))
    blob = total - len(head) - 1 - 4
    assert blob >= 0
    return head + b"\x01" + struct.pack(">I", blob) + bytes(blob)


class KrlServer:
    """TLS with the control plane's own key (the agent's pin matches) answering GET /v1/krl
    with self.krl, with a Content-Length or, when self.with_length is False, without one (the
    body ends when the connection closes); every other request gets a 404."""

    def __init__(self, d):
        self.krl = b""
        self.with_length = True
        srv = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self):
                if self.path != "/v1/krl":
                    body = b'{"error":"not_found","message":"not here"}'
                    self.send_response(404)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                data = memoryview(srv.krl)
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                if srv.with_length:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    for i in range(0, len(data), 1 << 20):
                        self.wfile.write(data[i:i + (1 << 20)])
                except OSError:      # the agent stopped reading: what a bound is for
                    pass

            def log_message(self, *a):
                pass
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(d.path("tls.crt"), d.path("tls.key"))
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.url = "https://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def run_until_logged(h, want, timeout=30):
    """Starts h's agent, waits for want in what it logs from now on, stops it; returns that."""
    off = len(h.log())
    h.start()
    try:
        harness.wait_until(lambda: want in h.log()[off:], timeout=timeout,
                           what="%r in the agent's log" % want)
    finally:
        h.stop()
    return h.log()[off:]


def test_krl_sync_refuses_an_oversized_krl_and_keeps_the_old_one():
    """The KRL is fetched with a bound (32 MiB): one byte more is refused whether the control
    plane announces it (Content-Length) or just keeps sending, and revoked.krl stays as it was;
    a KRL of exactly the bound is taken."""
    h = Host(D, extra=["krl_interval = 1"])
    h.enroll()
    krl = h.path("revoked.krl")
    with open(krl, "rb") as f:
        old = f.read()
    ino = os.stat(krl).st_ino
    fake = KrlServer(D)
    try:
        text = open(h.conf).read().replace("url = %s\n" % D.url, "url = %s\n" % fake.url)
        with open(h.conf, "w") as f:
            f.write(text)
        fake.krl = krl_of_size(KRL_MAX + 1)
        for with_length in (True, False):
            fake.with_length = with_length
            log = run_until_logged(h, "event=krl_sync result=error error=too_big")
            assert "larger than %d bytes" % KRL_MAX in log, log
            assert "result=updated" not in log, log
            with open(krl, "rb") as f:
                assert f.read() == old, "the KRL changed (with_length=%s)" % with_length
            assert os.stat(krl).st_ino == ino
            assert not [n for n in os.listdir(h.ssh_dir) if ".tmp" in n], os.listdir(h.ssh_dir)
        # exactly the bound, without a Content-Length: taken whole
        fake.krl = krl_of_size(KRL_MAX)
        log = run_until_logged(h, "event=krl_sync result=updated")
        with open(krl, "rb") as f:
            assert f.read() == fake.krl, "revoked.krl is not the KRL served"
        assert harness.file_mode(krl) == 0o644
    finally:
        h.stop()
        fake.close()


def test_krl_sync_failures_are_classified_and_keep_the_old_krl():
    """Through the fault proxy: a wrong key is a TLS failure (never anything softer), a reset
    is the network, a hang a timeout and a body that is no KRL garbage; the file stays each
    time, and the next good answer is taken again."""
    p, port, set_mode = start_proxy(D.port, D)
    h = None
    try:
        h = Host(D, url="https://127.0.0.1:%d" % port,
                 extra=["krl_interval = 1", "timeout = 2", "connect_timeout = 1"])
        h.enroll()
        krl = h.path("revoked.krl")
        h.start()
        # the control plane's KRL carries its generation time, so every good sync rewrites the
        # file: take the file as it is once the first fault is in place
        set_mode("wrongkey")
        harness.wait_until(lambda: "event=krl_sync result=error error=tls " in h.log(),
                           timeout=20, what="the first failed KRL sync")
        with open(krl, "rb") as f:
            old = f.read()
        ino = os.stat(krl).st_ino
        for mode, want, detail in (
                ("wrongkey", "error=tls", "does not match the pin"),
                ("reset", "error=unreachable", ""),
                ("hang", "error=timeout", ""),
                ("garbage", "error=garbage", "not an OpenSSH KRL")):
            off = len(h.log())
            set_mode(mode)
            harness.wait_until(lambda: "event=krl_sync result=error %s " % want in h.log()[off:],
                               timeout=20, what="krl_sync %s in mode %s" % (want, mode))
            log = h.log()[off:]
            assert detail in log, (mode, log)
            with open(krl, "rb") as f:
                assert f.read() == old, "the KRL changed in mode %s" % mode
            assert os.stat(krl).st_ino == ino
        off = len(h.log())
        set_mode("pass")
        harness.wait_until(lambda: re.search(r"event=krl_sync result=(updated|unchanged) ",
                                             h.log()[off:]),
                           timeout=20, what="a good KRL sync once the proxy passes again")
    finally:
        if h:
            h.stop()
        p.terminate()
        p.wait()


# --------------------------------------------------------------------------------------------
# principals

def test_principals_allowed_refused_and_forbidden_peer():
    h = Host(D, labels={"env": "prod"}, extra=["socket_group = nogroup"])
    h.enroll()
    h.start()
    name, key, r = enrolled_person(D, h, accounts=("ubuntu",), hosts={"env": "prod"})
    fp = fingerprint(key + ".pub")
    rc, out, err, _ = h.principals("ubuntu", name, r["serial"], fp)
    assert rc == 0 and out == "restrict,pty,user-rc %s\n" % name, (rc, out, err, h.log())
    # another account, an unknown serial, another key id: nothing
    for args in (("root", name, r["serial"]), ("ubuntu", name, r["serial"] + 1000),
                 ("ubuntu", "someone-else", r["serial"])):
        rc, out, err, _ = h.principals(args[0], args[1], args[2], fp)
        assert out == "", (args, out, err)
    # a peer that is neither root nor principals_user: forbidden, nothing printed

    def as_nobody():
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    rc, out, err, _ = h.principals("ubuntu", name, r["serial"], fp, preexec=as_nobody,
                                   sock=h.socket)
    assert rc == 1 and out == "" and "forbidden" in err, (rc, out, err)
    assert "event=forbidden op=principals uid=65534" in h.log()
    h.stop()
    with open(h.conf, "a") as f:
        f.write("principals_user = nobody\n")
    h.start()
    rc, out, err, _ = h.principals("ubuntu", name, r["serial"], fp, preexec=as_nobody,
                                   sock=h.socket)
    assert rc == 0 and out == "restrict,pty,user-rc %s\n" % name, (rc, out, err)
    # malformed arguments are refused by the daemon (nothing printed)
    rc, out, err, _ = h.principals("-bad", name, r["serial"], fp)
    assert out == "" and rc == 1, (out, err)
    rc, out, err, _ = h.principals("ubuntu", name, "12x", fp)
    assert out == "" and rc == 1, (out, err)
    # a key id that looks like an option is still the key id
    rc, out, err, _ = h.principals("ubuntu", "--socket=/nonexistent", r["serial"], fp)
    assert out == "" and rc == 0, (out, err)
    h.stop()


def test_principals_prints_this_hosts_key_options():
    """Each line is `restrict[,…] PRINCIPAL`: the key options of the rule that matched on this
    host, so the certificate's union of extensions never applies as a whole. The same host with
    its labels changed prints the other rule's options."""
    h = Host(D, labels={"env": "opt-a"})
    h.enroll()
    h.start()
    st, hosts = D.admin("GET", "/v1/hosts")
    hid = [x["host_id"] for x in hosts["hosts"] if x["hostname"] == h.hostname][0]
    key = os.path.join(h.dir, harness.unique_name("k"))
    name, secret = person_with_key(D, key)
    add_policy(D, "pa-" + name, users=[name], accounts=["ubuntu"], hosts={"env": "opt-a"},
               extensions=["permit-pty"])
    add_policy(D, "pb-" + name, users=[name], accounts=["ubuntu"], hosts={"env": "opt-b"},
               extensions=["permit-pty", "permit-port-forwarding", "permit-X11-forwarding",
                           "permit-agent-forwarding", "permit-user-rc"])
    r = user_cert(D, name, secret, key)
    fp = fingerprint(key + ".pub")
    rc, out, err, _ = h.principals("ubuntu", name, r["serial"], fp)
    assert rc == 0 and out == "restrict,pty %s\n" % name, (rc, out, err, h.log())
    assert D.admin("PATCH", "/v1/hosts/%d" % hid, {"labels": {"env": "opt-b"}})[0] == 200
    rc, out, err, _ = h.principals("ubuntu", name, r["serial"], fp)
    assert rc == 0 and out == ("restrict,X11-forwarding,agent-forwarding,port-forwarding,pty,"
                               "user-rc %s\n" % name), (rc, out, err)
    # from= and command= of the rule, in their quotes
    key2 = os.path.join(h.dir, harness.unique_name("k"))
    name2, secret2 = person_with_key(D, key2)
    add_policy(D, "pc-" + name2, users=[name2], accounts=["ubuntu"], hosts={"env": "opt-b"},
               extensions=[], source_address="127.0.0.1,::1/128",
               force_command="/usr/bin/id -u")
    r2 = user_cert(D, name2, secret2, key2)
    rc, out, err, _ = h.principals("ubuntu", name2, r2["serial"], fingerprint(key2 + ".pub"))
    assert rc == 0 and out == ('restrict,from="127.0.0.1,::1/128",command="/usr/bin/id -u" %s\n'
                               % name2), (rc, out, err)
    h.stop()


def test_principals_refuses_options_it_did_not_build():
    """A daemon reply whose options are missing, unknown, or would break out of their quotes
    prints nothing: only the fixed set of options, built by our code, reaches sshd."""
    d = fresh_dir("fake-")
    sock = os.path.join(d, "agent.sock")
    for opts in (None, "restrict,pty", {"extensions": ["permitopen"]},
                 {"extensions": ["permit-pty"], "force_command": '/bin/true",permitopen="*:*'},
                 {"extensions": ["permit-pty"], "force_command": "/bin/true\\"},
                 {"extensions": ["permit-pty"], "force_command": "/bin/true\nroot"},
                 {"extensions": [], "source_address": '10.0.0.1" ,pty'},
                 {"extensions": [], "source_address": "*"},
                 {"extensions": [], "other": "x"}):
        reply = {"ok": True, "principals": ["alice"]}
        if opts is not None:
            reply["options"] = opts
        rc, out, err = principals_from_fake(sock, reply)
        assert out == "" and rc == 1, (reply, rc, out, err)


def principals_from_fake(sock, reply):
    """(rc, stdout, stderr) of `portcullis-agent principals` against a daemon answering reply."""
    fake = FakeAgent(sock, "reply", reply)
    try:
        return run_timed_principals(sock)[:3]
    finally:
        fake.close()


class FakeAgent:
    """A unix socket server owned by the test: 'hang' accepts and never answers; 'reply'
    answers every request with a fixed object."""

    def __init__(self, path, mode="hang", reply=None):
        self.path = path
        self.mode = mode
        self.reply = reply
        self.conns = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(16)
        self.t = threading.Thread(target=self._loop, daemon=True)
        self.t.start()

    def _loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            if self.mode == "reply":
                try:
                    n = struct.unpack(">I", c.recv(4, socket.MSG_WAITALL))[0]
                    c.recv(n, socket.MSG_WAITALL)
                    data = json.dumps(self.reply).encode()
                    c.sendall(struct.pack(">I", len(data)) + data)
                except OSError:
                    pass

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()
        os.unlink(self.path)


def test_principals_answers_within_2s_when_daemon_hangs_or_is_absent():
    d = fresh_dir("fake-")
    sock = os.path.join(d, "agent.sock")
    fake = FakeAgent(sock, "hang")
    try:
        rc, out, err, secs = run_timed_principals(sock)
        assert out == "" and rc != 0 and secs < 2.5, (rc, out, err, secs)
        assert fake.conns, "the helper never connected"
    finally:
        fake.close()
    rc, out, err, secs = run_timed_principals(sock)        # nobody there
    assert out == "" and rc == 1 and secs < 1.0, (rc, out, err, secs)
    # a daemon that answers, but with a principal that would smuggle a second line
    for reply in ({"ok": True, "principals": ["alice\nroot"]}, {"ok": True, "principals": "alice"},
                  {"ok": False, "error": "unreachable"}, {"ok": True, "principals": ["a", 1]}):
        fake = FakeAgent(sock, "reply", reply)
        try:
            rc, out, err, secs = run_timed_principals(sock)
            assert out == "" and rc == 1, (reply, rc, out, err)
        finally:
            fake.close()
    fake = FakeAgent(sock, "reply", {"ok": True, "principals": ["alice", "ops@x"],
                                     "options": {"extensions": []}})
    try:
        rc, out, err, secs = run_timed_principals(sock)
        assert rc == 0 and out == "restrict alice\nrestrict ops@x\n", (rc, out, err)
    finally:
        fake.close()


def run_timed_principals(sock):
    t0 = time.time()
    rc, out, err = run_agent("principals", "--socket", sock, "ubuntu", "alice", "7",
                             "SHA256:abc", timeout=20)
    return rc, out, err, time.time() - t0


def start_proxy(upstream_port, d):
    pdir = fresh_dir("proxy-")
    mode_file = os.path.join(pdir, "mode")
    with open(mode_file, "w") as f:
        f.write("pass\n")
    port = harness.free_port()
    log = open(os.path.join(pdir, "proxy.log"), "wb")
    p = subprocess.Popen(["/usr/bin/python3", FAULTPROXY, "--port", str(port), "--upstream",
                          "127.0.0.1:%d" % upstream_port, "--mode-file", mode_file,
                          "--workdir", pdir, "--cert", d.path("tls.crt"), "--key",
                          d.path("tls.key")], stdout=log, stderr=log)
    PROCS.append(p)

    def up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    harness.wait_until(up, timeout=15, what="faultproxy")

    def set_mode(m):
        with open(mode_file + ".tmp", "w") as f:
            f.write(m + "\n")
        os.rename(mode_file + ".tmp", mode_file)
        time.sleep(0.6)        # the proxy polls the file every 0.1 s, then drops connections
    return p, port, set_mode


def test_principals_cache_only_when_unreachable_and_only_while_fresh():
    d = Daemon().start()
    p, port, set_mode = start_proxy(d.port, d)
    h = None
    try:
        h = Host(d, labels={"env": "prod"}, url="https://127.0.0.1:%d" % port, pin=d.pin,
                 extra=["principals_stale = 10s", "connect_timeout = 1", "timeout = 2"])
        h.enroll()
        h.start()
        name, key, r = enrolled_person(d, h, hosts={"env": "prod"})
        fp = fingerprint(key + ".pub")
        args = ("ubuntu", name, r["serial"], fp)
        rc, out, err, _ = h.principals(*args)
        assert out == "restrict,pty,user-rc %s\n" % name, (out, err, h.log())
        t_stored = time.time()
        # TLS failure (wrong key): never the cache
        set_mode("wrongkey")
        rc, out, err, secs = h.principals(*args)
        assert out == "" and rc == 1 and "tls" in err, (out, err, secs)
        # unreachable: the cached allow, within 2 s
        set_mode("dead")
        rc, out, err, secs = h.principals(*args)
        assert out == "restrict,pty,user-rc %s\n" % name and secs < 2.0, (out, err, secs, h.log())
        assert "source=cache" in h.log()
        # a hanging control plane: the cache too, still within 2 s
        set_mode("hang")
        rc, out, err, secs = h.principals(*args)
        assert out == "restrict,pty,user-rc %s\n" % name and secs < 2.0, (out, err, secs)
        # no cache for what was never allowed
        rc, out, err, _ = h.principals("root", name, r["serial"], fp)
        assert out == "", out
        # older than principals_stale: refused
        set_mode("dead")
        time.sleep(max(0, t_stored + 10.3 - time.time()))
        rc, out, err, _ = h.principals(*args)
        assert out == "" and rc == 1, (out, err)
        # back up: allowed again; revoked: the control plane's deny wins over the cache
        set_mode("pass")
        harness.wait_until(lambda: h.principals(*args)[1] == "restrict,pty,user-rc %s\n" % name,
                           timeout=10,
                           what="allow after the control plane is back")
        st, b = d.admin("POST", "/v1/certs/revoke", {"serial": r["serial"]})
        assert st == 200, (st, b)
        rc, out, err, _ = h.principals(*args)
        assert out == "", out
        set_mode("dead")
        rc, out, err, _ = h.principals(*args)
        assert out == "", "a deny must evict the cached allow: %r" % out
    finally:
        if h:
            h.stop()
        p.terminate()
        p.wait()
        d.kill()


# --------------------------------------------------------------------------------------------
# renew

def test_renew_command_and_daemon_renewal_at_two_thirds():
    h = Host(D)
    h.enroll()
    s0 = cert_serial(h.path("host-cert.pub"))
    rc, out, err = run_agent("renew", "--config", h.conf)
    assert rc == 0 and "renewed" in out, (rc, out, err)
    s1 = cert_serial(h.path("host-cert.pub"))
    assert s1 > s0, (s0, s1)
    assert "host certificate" in cert_info(h.path("host-cert.pub"))
    assert harness.file_mode(h.path("host-cert.pub")) == 0o644
    with open(h.reload_marker) as f:
        assert f.read() == "reload\n"
    rc, out, err = run_agent("renew", "--config", h.conf, "--no-reload")
    assert rc == 0 and cert_serial(h.path("host-cert.pub")) > s1, (out, err)
    with open(h.reload_marker) as f:
        assert f.read() == "reload\n", "--no-reload ran reload_command"
    # the daemon: nothing to do now; 21 days later (2/3 of 30 d) it renews once and reloads
    s2 = cert_serial(h.path("host-cert.pub"))
    h.start()
    time.sleep(2.5)
    assert cert_serial(h.path("host-cert.pub")) == s2, "renewed too early"
    h.stop()
    h.start(env={"PC_FAKE_NOW": "+%d" % (21 * 86400)})
    harness.wait_until(lambda: cert_serial(h.path("host-cert.pub")) > s2, timeout=15,
                       what="the daemon to renew the host certificate")
    time.sleep(3)
    log = h.log()
    assert log.count("event=host_cert_renew result=ok") == 1, log
    assert "event=sshd_reload result=ok" in log, log
    with open(h.reload_marker) as f:
        assert f.read() == "reload\nreload\n"
    h.stop()
    # a failing reload_command is reported by renew
    text = open(h.conf).read().replace("reload_command = echo reload >> %s" % h.reload_marker,
                                       "reload_command = exit 3")
    with open(h.conf, "w") as f:
        f.write(text)
    rc, out, err = run_agent("renew", "--config", h.conf)
    assert rc == 1 and "exited 3" in err, (rc, out, err)
