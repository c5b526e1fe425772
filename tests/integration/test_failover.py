# SPDX-License-Identifier: BSD-2-Clause
"""Agent failover (issue 12, item 3): `url` in agent.conf lists several instances of one
control plane; two real portcullisd share one SQLite data dir (WAL; same TLS key, CA and
secrets key). kill -9 of one instance while 50 logins run through the agent: every right code
is allowed. One URL dead from the start, all dead (unreachable, as failmode decides), the fault
proxy in front of one instance (slow, garbage, wrong TLS key: calls go to the other; the wrong
key is never trusted, and with no other instance the error is "tls", never "unreachable").
A TOTP submit that may have been applied is resent marked "resend": the control plane answers
allow only for the same code on a transaction it already allowed (never a second verification,
never a replay refusal of a right code). Config errors for the URL list name FILE:LINE;
`status` shows each instance."""
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time

import harness
from harness import Daemon
from test_agent import AGENT_BIN, call, login_totp, run_agent, write_conf

TEST_TIMEOUT = 240
FAULTPROXY = os.path.join(harness.SRC_DIR, "tests", "faultproxy.py")

ROOT = None
PROCS = []
AGENTS = []
purl_mode = {}   # proxy URL → its mode file


def setup_module():
    global ROOT
    if not os.path.exists(AGENT_BIN):
        raise AssertionError("agent binary not built: %s (set PC_BUILD_DIR)" % AGENT_BIN)
    ROOT = tempfile.mkdtemp(prefix="pc-failover-")
    harness._TMP_ROOTS.append(ROOT)
    os.chmod(ROOT, 0o755)


def teardown_module():
    for a in AGENTS:
        a.kill()
    for p in PROCS:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def fresh_dir(prefix):
    d = tempfile.mkdtemp(prefix=prefix, dir=ROOT)
    os.chmod(d, 0o755)
    return d


def pair():
    """Two portcullisd on one data dir: the first creates it, the second loads it."""
    a = Daemon().start()
    b = Daemon(data_dir=a.data_dir).start()
    assert a.pin == b.pin
    return a, b


def host_token_file(d, name):
    _, token = d.enroll_host(hostname=harness.unique_name(name))
    path = os.path.join(fresh_dir("tok-"), "host.token")
    with open(path, "w") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)
    return token, path


def dead_url():
    return "https://127.0.0.1:%d" % harness.free_port()   # nobody listens there


class Agent:
    def __init__(self, urls, pin, token_file, extra=()):
        self.dir = fresh_dir("agent-")
        self.socket = os.path.join(self.dir, "run", "agent.sock")
        self.conf = write_conf(os.path.join(self.dir, "agent.conf"), [
            "url = %s" % ", ".join(urls),
            "pin = %s" % pin,
            "host_token_file = %s" % token_file,
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
            assert self.proc.poll() is None, "agent exited; log:\n" + self.log()
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.connect(self.socket)
                return True
            except OSError:
                return False
        harness.wait_until(ready, timeout=15, what="agent socket")
        return self

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def connect(self, timeout=90):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.socket)
        return s

    def call(self, obj, timeout=90):
        with self.connect(timeout) as s:
            return call(s, obj)

    def pool(self):
        r = self.call({"op": "status"})
        assert r.get("ok") is True and isinstance(r.get("pool"), list), r
        return {e["url"]: e for e in r["pool"]}

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(15)
        return self.proc.returncode

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def start_proxy(upstream, mode):
    pdir = fresh_dir("proxy-")
    mode_file = os.path.join(pdir, "mode")
    with open(mode_file, "w") as f:
        f.write(mode + "\n")
    port = harness.free_port()
    log = open(os.path.join(pdir, "proxy.log"), "wb")
    p = subprocess.Popen(["/usr/bin/python3", FAULTPROXY, "--port", str(port), "--upstream",
                          "127.0.0.1:%d" % upstream.port, "--mode-file", mode_file,
                          "--workdir", pdir, "--cert", upstream.path("tls.crt"), "--key",
                          upstream.path("tls.key")], stdout=log, stderr=log)
    PROCS.append(p)

    def up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    harness.wait_until(up, timeout=15, what="faultproxy")
    purl_mode["https://127.0.0.1:%d" % port] = mode_file
    return p, "https://127.0.0.1:%d" % port


def logins(agent, d, n, parallel=True):
    users = [d.user_with_totp() for _ in range(n)]
    results = [None] * n

    def one(i):
        user, secret = users[i]
        try:
            results[i] = login_totp(agent, user, harness.totp_code(secret))[1]
        except Exception as e:  # noqa: BLE001
            results[i] = {"exception": repr(e)}
    if parallel:
        ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(150)
    else:
        for i in range(n):
            one(i)
    return users, results


def not_allowed(users, results):
    return [(users[i][0], r) for i, r in enumerate(results) if not r or r.get("result") != "allow"]


# --------------------------------------------------------------------------------------------

def test_kill_one_of_two_instances_while_50_logins_run():
    """The issue's test: kill -9 one of two instances while 50 logins run concurrently through
    the agent; every login with a right code succeeds. Each login pauses between begin and
    totp, so the kill lands while begins and totps are in flight on the killed instance."""
    a, b = pair()
    _, tok = host_token_file(a, "fo-kill")
    agent = Agent([a.url, b.url], a.pin, tok, extra=["max_connections = 8"]).start()
    users = [a.user_with_totp() for _ in range(50)]
    results = [None] * 50
    go = threading.Event()

    def one(i):
        user, secret = users[i]
        try:
            with agent.connect() as s:
                go.wait(30)
                time.sleep((i % 10) * 0.05)
                bg = call(s, {"op": "begin", "user": user, "rhost": "127.0.0.1",
                              "service": "sshd", "tty": "ssh"})
                assert bg.get("ok") is True and bg["action"] == "challenge", bg
                time.sleep((i % 7) * 0.07)
                results[i] = call(s, {"op": "totp", "txid": bg["txid"],
                                      "code": harness.totp_code(secret)})
        except Exception as e:  # noqa: BLE001
            results[i] = {"exception": repr(e)}
    # both instances are in use before the kill (round robin)
    users0, res0 = logins(agent, a, 4, parallel=False)
    assert not not_allowed(users0, res0), res0
    pool = agent.pool()
    assert pool[a.url]["state"] == "healthy" and pool[b.url]["state"] == "healthy", pool
    assert pool[a.url]["last_success"] > 0 and pool[b.url]["last_success"] > 0, pool
    ts = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for t in ts:
        t.start()
    go.set()
    time.sleep(0.25)
    os.kill(a.pid, signal.SIGKILL)
    for t in ts:
        t.join(150)
    a.kill()
    bad = not_allowed(users, results)
    assert not bad, "not allowed: %r\nagent log:\n%s" % (bad[:5], agent.log()[-4000:])
    pool = agent.pool()
    assert pool[a.url]["state"] == "unhealthy" and pool[a.url]["last_error"], pool
    assert pool[b.url]["state"] == "healthy", pool
    # calls met the dead instance and went on to the other inside their deadline
    assert re.search(r"event=failover method=\w+ to=%s" % re.escape(b.url), agent.log()), \
        agent.log()[-3000:]
    # every code was verified exactly once (no replay refusal, no double allow)
    for user, _ in users:
        rows = [r for r in b.audit(user=user) if r.get("action") == "auth.totp"]
        assert [r["reason"] for r in rows if r["reason"] == "totp_ok"] == ["totp_ok"], rows
        assert all(r["result"] == "allow" for r in rows), rows
    assert agent.stop() == 0
    b.kill()


def test_totp_resend_after_a_lost_answer_is_allowed_not_replayed():
    """A totp that the instance applied but whose answer was lost (the fault proxy's mode mute
    forwards the request on the agent's warm connection and drops the answer) goes to the other
    instance marked "resend": the right code is allowed, verified once, and the audit shows the
    resend. Sent again as a new verification it would have been refused as a replay."""
    a, b = pair()
    _, tok = host_token_file(a, "fo-resend")
    _, purl = start_proxy(a, "pass")
    # url order + round robin: begin goes to b, totp to the proxy (then fails over to b)
    agent = Agent([b.url, purl], a.pin, tok, extra=["timeout = 4s"]).start()
    harness.wait_until(lambda: agent.pool()[purl]["connections"] >= 1 and
                       agent.pool()[purl]["last_success"] > 0, timeout=15,
                       what="the warm connection through the proxy")
    user, secret = a.user_with_totp()
    with agent.connect() as s:
        bg = call(s, {"op": "begin", "user": user, "rhost": "127.0.0.1", "service": "sshd"})
        assert bg.get("ok") is True and bg["action"] == "challenge", bg
        with open(os.path.join(os.path.dirname(purl_mode[purl]), "mode.tmp"), "w") as f:
            f.write("mute\n")
        os.rename(os.path.join(os.path.dirname(purl_mode[purl]), "mode.tmp"), purl_mode[purl])
        time.sleep(0.6)
        t = call(s, {"op": "totp", "txid": bg["txid"], "code": harness.totp_code(secret)})
    assert t.get("result") == "allow", (t, agent.log()[-3000:])
    assert re.search(r"event=failover method=POST to=%s resend=1" % re.escape(b.url),
                     agent.log()), agent.log()[-3000:]
    rows = [r for r in b.audit(user=user) if r.get("action") == "auth.totp"]
    assert [r["reason"] for r in rows] == ["totp_ok", "totp_ok_resend"], rows
    assert agent.stop() == 0
    a.kill()
    b.kill()


def test_resend_field_on_the_api():
    """POST /v1/auth/totp with "resend": true: allow again only for the same code on a
    transaction it allowed; a different code, a transaction never allowed by a code, another
    host's transaction, or no resend flag: refused as before. Hostile values: 400."""
    d = Daemon().start()
    _, host = d.enroll_host(hostname=harness.unique_name("rs"))
    _, other = d.enroll_host(hostname=harness.unique_name("rs2"))
    user, secret = d.user_with_totp()
    txid = d.begin_txid(host, user)
    code = harness.totp_code(secret)
    st, r = d.api("POST", "/v1/auth/totp", {"txid": txid, "code": code}, token=host)
    assert st == 200 and r["result"] == "allow", (st, r)
    st, r = d.api("POST", "/v1/auth/totp", {"txid": txid, "code": code}, token=host)
    assert st == 410, (st, r)                       # no flag: finished, as before
    st, r = d.api("POST", "/v1/auth/totp", {"txid": txid, "code": code, "resend": True},
                  token=host)
    assert st == 200 and r == {"result": "allow", "reason": "totp_ok"}, (st, r)
    wrong = harness.wrong_code(secret)
    st, r = d.api("POST", "/v1/auth/totp", {"txid": txid, "code": wrong, "resend": True},
                  token=host)
    assert st == 410, (st, r)                       # another code never rides on the allow
    st, r = d.api("POST", "/v1/auth/totp", {"txid": txid, "code": code, "resend": True},
                  token=other)
    assert st == 404, (st, r)                       # another host's transaction
    st, r = d.api("POST", "/v1/auth/totp", {"txid": txid, "code": code, "resend": True})
    assert st == 401, (st, r)                       # no credential
    st, r = d.api("POST", "/v1/auth/totp", {"txid": txid, "code": code, "resend": True},
                  token=d.admin_token)
    assert st in (401, 403), (st, r)                # the admin is not a host
    for bad in ("yes", 1, None, [], {}):
        st, r = d.api("POST", "/v1/auth/totp", {"txid": txid, "code": code, "resend": bad},
                      token=host)
        assert st == 400, (bad, st, r)
    # a resend on an open transaction is an ordinary verification (and a wrong code counts)
    user2, secret2 = d.user_with_totp()
    tx2 = d.begin_txid(host, user2)
    st, r = d.api("POST", "/v1/auth/totp", {"txid": tx2, "code": harness.wrong_code(secret2),
                                            "resend": True}, token=host)
    assert st == 200 and r["result"] == "deny", (st, r)
    # the same code of user2 on a new transaction after an allow: replay, resend or not
    code2 = harness.totp_code(secret2)
    st, r = d.api("POST", "/v1/auth/totp", {"txid": tx2, "code": code2}, token=host)
    assert st == 200 and r["result"] == "allow", (st, r)
    tx3 = d.begin_txid(host, user2)
    st, r = d.api("POST", "/v1/auth/totp", {"txid": tx3, "code": code2, "resend": True},
                  token=host)
    assert st == 200 and r["result"] == "deny" and r["reason"] == "replayed", (st, r)
    rows = [x for x in d.audit(user=user) if x.get("action") == "auth.totp"]
    assert [x["reason"] for x in rows] == ["totp_ok", "totp_ok_resend"], rows
    d.kill()


def test_same_code_on_two_instances_at_once_one_allow():
    """Two instances on one data dir verify the same code at the same moment (two logins of one
    person, one on each instance): exactly one allow; the other is a replay refusal."""
    a, b = pair()
    _, host = a.enroll_host(hostname=harness.unique_name("fo-race"))
    for _ in range(20):
        out = harness.same_code_on_two_at_once(a, b, host)
        verdicts = sorted([out["a"][1]["result"], out["b"][1]["result"]])
        assert out["a"][0] == 200 and out["b"][0] == 200, out
        assert verdicts == ["allow", "deny"], out
        assert "replayed" in (out["a"][1]["reason"], out["b"][1]["reason"]), out
    a.kill()
    b.kill()


def test_one_url_dead_from_the_start():
    """The first URL refuses connections from the start: logins go to the other; the dead
    one is found once (one failover), not per login, and stays marked unhealthy."""
    d = Daemon().start()
    _, tok = host_token_file(d, "fo-dead")
    dead = dead_url()
    agent = Agent([dead, d.url], d.pin, tok).start()
    users, results = logins(agent, d, 10, parallel=False)
    assert not not_allowed(users, results), (results, agent.log()[-3000:])
    assert len(re.findall(r"event=failover", agent.log())) <= 1, agent.log()
    pool = agent.pool()
    assert pool[dead]["state"] == "unhealthy" and "cannot reach" in pool[dead]["last_error"], pool
    assert pool[d.url]["state"] == "healthy" and pool[d.url]["last_success"] > 0, pool
    # and status shows each instance
    rc, out, err = run_agent("status", "--config", agent.conf, timeout=30)
    assert rc == 0, (out, err)
    assert re.search(r"instance:\s+%s unhealthy: unreachable" % re.escape(dead), out), out
    assert re.search(r"instance:\s+%s healthy \(\d+ ms\)" % re.escape(d.url), out), out
    assert re.search(r"agent:\s+%s healthy, last success \d{4}-" % re.escape(d.url), out), out
    assert re.search(r"agent:\s+%s unhealthy, last success never .*last error \d{4}-.*: "
                     "cannot reach" % re.escape(dead), out), out
    rc, out, _ = run_agent("status", "--json", "--config", agent.conf, timeout=30)
    j = json.loads(out)
    assert j["reachable"] is True and [u["reachable"] for u in j["urls"]] == [False, True], j
    assert {e["url"]: e["state"] for e in j["pool"]} == {dead: "unhealthy",
                                                         d.url: "healthy"}, j
    assert agent.stop() == 0
    d.kill()


def test_all_urls_dead_is_unreachable():
    """Every instance down: the error is "unreachable" (the module applies failmode), as with
    one URL; when one of them comes back, logins work again without restarting the agent."""
    d = Daemon().start()
    _, tok = host_token_file(d, "fo-all")
    d2 = Daemon(data_dir=d.data_dir)                 # not started yet
    agent = Agent([dead_url(), d2.url], d.pin, tok).start()
    user, secret = d.user_with_totp()
    r = agent.call({"op": "begin", "user": user, "rhost": "127.0.0.1", "service": "sshd"})
    assert r.get("ok") is False and r.get("error") == "unreachable", r
    d2.start()

    def works():
        r = agent.call({"op": "begin", "user": user, "rhost": "127.0.0.1", "service": "sshd"})
        return r.get("ok") is True
    harness.wait_until(works, timeout=40, what="the agent to find the instance that came back")
    _, t = login_totp(agent, user, harness.totp_code(secret))
    assert t.get("result") == "allow", t
    assert agent.stop() == 0
    d.kill()
    d2.kill()


def test_fault_proxy_in_front_of_one_instance():
    """slow, garbage, wrong TLS key in front of one instance: logins go to the other. The
    wrong-key instance is never trusted: it stays unhealthy with a pin error, and when it is
    the only one left the error is "tls" (never "unreachable", which failmode could bypass)."""
    a, b = pair()
    _, tok = host_token_file(a, "fo-proxy")
    for mode in ("slow 6", "garbage", "wrongkey", "hang", "reset"):
        _, purl = start_proxy(a, mode)
        agent = Agent([purl, b.url], a.pin, tok, extra=["timeout = 4s"]).start()
        users, results = logins(agent, a, 6)
        assert not not_allowed(users, results), (mode, results, agent.log()[-3000:])
        pool = agent.pool()
        assert pool[purl]["state"] == "unhealthy", (mode, pool)
        if mode == "wrongkey":
            assert "pin" in pool[purl]["last_error"], pool
            rc, out, _ = run_agent("status", "--json", "--config", agent.conf, timeout=30)
            j = json.loads(out)
            assert j["urls"][0]["pin_mismatch"] is True and j["urls"][1]["reachable"], j
        assert agent.stop() == 0
    # wrong key + the other instance down: tls, not unreachable
    _, purl = start_proxy(a, "wrongkey")
    agent = Agent([purl, dead_url()], a.pin, tok).start()
    user, _ = a.user_with_totp()
    r = agent.call({"op": "begin", "user": user, "rhost": "127.0.0.1", "service": "sshd"})
    assert r.get("ok") is False and r.get("error") == "tls", r
    agent = Agent([dead_url(), purl], a.pin, tok).start()
    r = agent.call({"op": "begin", "user": user, "rhost": "127.0.0.1", "service": "sshd"})
    assert r.get("ok") is False and r.get("error") == "tls", r
    a.kill()
    b.kill()


def test_url_list_config_errors_name_file_and_line():
    d = fresh_dir("conf-")
    pin = "sha256//" + "A" * 43 + "="
    u = ["https://127.0.0.1:%d" % (20000 + i) for i in range(9)]
    cases = [
        (["url = %s, http://x:1" % u[0]], "URL 2"),
        (["url = %s %s" % (u[0], u[0].upper().replace("HTTPS", "https"))], "listed twice"),
        (["url = %s" % ", ".join(u)], "more than 8"),
        (["url = %s,, ,%s?x" % (u[0], u[1])], "URL 2"),
        (["url = ,"], "no URL"),
    ]
    for i, (lines, word) in enumerate(cases):
        path = write_conf(os.path.join(d, "bad%d.conf" % i),
                          ["# list", "pin = %s" % pin] + lines)
        for cmd in (["status"], ["run", "--check-config"]):
            rc, _, err = run_agent(*cmd, "--config", path, timeout=20)
            assert rc == 1 and ("%s:3:" % path) in err and word in err, (cmd, lines, err)
    ok = write_conf(os.path.join(d, "ok.conf"),
                    ["pin = %s" % pin, "url = %s" % " , ".join(u[:8])])
    rc, _, err = run_agent("run", "--check-config", "--config", ok, timeout=20)
    assert rc == 0, err
