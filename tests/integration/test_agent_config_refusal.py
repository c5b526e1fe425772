# SPDX-License-Identifier: BSD-2-Clause
"""portcullis-agent run on an agent.conf that does not load: it must fail closed, not exit.
An agent that exits is "agent down" for pam_portcullis.so, and failmode=safe then admits
everyone without a second factor. So `run` binds its socket anyway (the file's `socket` if that
line is valid, else the built-in default; systemd's socket when activated), answers every
request with the error "config" (no secret in it), logs FILE:LINE loudly but rate-limited,
idles without spinning, and stops on SIGTERM (exit 1). `principals` against it prints nothing
and exits 1. SIGHUP never applies a file: a broken one leaves a running agent as it is."""
import os
import re
import resource
import signal
import socket
import stat
import subprocess
import time

import harness
import test_agent
from test_agent import AGENT_BIN, NOBODY, RefusingRun, call, fresh_dir, in_child, write_conf

TEST_TIMEOUT = 120


def setup_module():
    test_agent.setup_module()


def teardown_module():
    test_agent.teardown_module()


def _token():
    return test_agent.HOST_TOKEN


def _base(sock):
    D = test_agent.D
    return ["# agent under test", "url = %s" % D.url, "pin = %s" % D.pin,
            "host_token_file = %s" % test_agent.TOKEN_FILE, "socket = %s" % sock]


def _principals(*opts):
    r = subprocess.run([AGENT_BIN, "principals"] + list(opts) +
                       ["ubuntu", "alice", "7", "SHA256:abc"], capture_output=True, timeout=20)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def _cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _assert_no_secret(text, what):
    assert _token() not in text, "the host token appears in %s" % what
    assert test_agent.D.admin_token not in text, "the admin token appears in %s" % what


# --------------------------------------------------------------------------------------------

def test_syntax_error_binds_and_refuses_every_request():
    d = fresh_dir("refuse-syntax-")
    sock = os.path.join(d, "run", "agent.sock")  # run/ made by the agent, as usual
    lines = _base(sock) + ["timeout 10", "max_clients = 4"]   # line 6: no '='
    conf = write_conf(os.path.join(d, "agent.conf"), lines)
    a = RefusingRun(conf, sock)
    where = "%s:6" % conf
    st = os.stat(sock)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)
    # every op, with a well-formed request or not, gets "config"; one reply, then closed
    for req in ({"op": "begin", "user": "alice", "service": "sshd"},
                {"op": "totp", "txid": "ab", "code": "123456"},
                {"op": "push", "txid": "ab"}, {"op": "push_wait", "push_id": "ab", "wait": 1},
                {"op": "principals", "account": "ubuntu", "key_id": "alice", "serial": "7",
                 "fingerprint": "SHA256:abc"},
                {"op": "status"}, {"op": "frobnicate"}, {"no": "op"}):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(15)
        s.connect(sock)
        with s:
            r = call(s, req)
            assert r.get("ok") is False and r.get("error") == "config", (req, r)
            assert where in r.get("message", ""), r
            assert set(r) == {"ok", "error", "message"}, r
            _assert_no_secret(r["message"], "a reply")
            assert "expected" not in r["message"], "the reply carries the error text: %r" % r
            assert s.recv(1) == b"", "the connection stayed open after the config error"
    log = a.log()
    assert re.search(r"^error portcullis-agent: event=config_error file=%s " % re.escape(where),
                     log, re.M), log
    assert "event=start mode=refusing" in log and "expected 'key = value'" in log, log
    assert "event=request_refused error=config" in log, log
    # no token read, no control plane called, no background work
    assert "event=enrolled" not in log and "not_enrolled" not in log, log
    assert "krl" not in log.lower() and "event=begin" not in log, log
    _assert_no_secret(log, "the agent's log")
    assert a.proc.poll() is None, "the agent exited while refusing"
    assert a.stop() == 1, a.log()
    assert not os.path.exists(sock), "the socket file was left behind"
    assert "event=stop drained=yes mode=refusing" in a.log(), a.log()


def test_bad_value_token_redacted_group_kept_principals_refused():
    """timeout = <the host token> (pasted into the wrong line): the log names FILE:LINE but
    never the token; socket_group is still applied, so a socket_group member reaches the
    agent and is refused too; the principals helper prints nothing and exits 1."""
    d = fresh_dir("refuse-value-")
    sock = os.path.join(d, "run", "agent.sock")
    conf = write_conf(os.path.join(d, "agent.conf"),
                      _base(sock) + ["socket_group = nogroup", "timeout = %s" % _token()])
    rc, _, err = test_agent.run_agent("run", "--check-config", "--config", conf)
    assert rc == 1 and "%s:7:" % conf in err and "[redacted]" in err, (rc, err)
    _assert_no_secret(err, "--check-config's message")
    rc, out, err = test_agent.run_agent("status", "--config", conf)
    assert rc == 1 and "%s:7:" % conf in err, (rc, out, err)
    _assert_no_secret(out + err, "status' output")
    a = RefusingRun(conf, sock)
    st = os.stat(sock)
    assert st.st_gid == NOBODY and stat.S_IMODE(st.st_mode) == 0o660, (st.st_gid, oct(st.st_mode))

    def member_asks():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(15)
        s.connect(sock)
        with s:
            return call(s, {"op": "status"})
    res = in_child(member_asks, groups=(NOBODY,))
    assert res.get("result", {}).get("error") == "config", res
    # sshd's helper, through the socket and through the broken file: nothing, exit 1
    rc, out, err = _principals("--socket", sock)
    assert rc == 1 and out == "" and "config" in err, (rc, out, err)
    rc, out, err = _principals("--config", conf)
    assert rc == 1 and out == "", (rc, out, err)
    log = a.log()
    assert "%s:7: timeout: '[redacted]'" % conf in log, log
    _assert_no_secret(log, "the agent's log")
    assert a.stop() == 1


def test_missing_url_and_pin_refuse():
    d = fresh_dir("refuse-nourl-")
    sock = os.path.join(d, "run", "agent.sock")
    conf = write_conf(os.path.join(d, "agent.conf"),
                      ["host_token_file = %s" % test_agent.TOKEN_FILE, "socket = %s" % sock])
    a = RefusingRun(conf, sock)
    r = a.ask({"op": "begin", "user": "alice"})
    assert r.get("error") == "config" and conf in r.get("message", ""), r
    assert "'url' is not set" in a.log(), a.log()
    assert a.stop() == 1


def test_refusals_logged_rate_limited_and_no_spin():
    d = fresh_dir("refuse-rate-")
    sock = os.path.join(d, "agent.sock")
    conf = write_conf(os.path.join(d, "agent.conf"), _base(sock) + ["colour = blue"])
    a = RefusingRun(conf, sock)
    for _ in range(40):
        assert a.ask({"op": "begin", "user": "alice"}).get("error") == "config"
    lines = [l for l in a.log().splitlines() if "event=request_refused" in l]
    assert len(lines) == 1 and "refused=1" in lines[0], lines
    assert "%s:6: unknown key 'colour'" % conf in lines[0], lines
    # idle: blocked in poll(), no CPU
    cpu0 = _cpu_seconds(a.proc.pid)
    time.sleep(2)
    used = _cpu_seconds(a.proc.pid) - cpu0
    assert used < 0.2, "the refusing agent used %.2f s of CPU in 2 s idle" % used
    # after the quiet period the next refusal is logged with the ones held back
    time.sleep(8.5)
    assert a.ask({"op": "status"}).get("error") == "config"
    lines = [l for l in a.log().splitlines() if "event=request_refused" in l]
    assert len(lines) == 2 and "refused=40" in lines[1] and "op=status" in lines[1], lines
    assert a.stop() == 1


def _default_socket():
    rc, out, _ = test_agent.run_agent("run", "--help")
    m = re.search(r"\(default (/\S+)\)", out)
    assert rc == 0 and m, out
    return m.group(1)


def test_unreadable_config_binds_the_default_socket():
    """No socket line can be read (the file is missing, or a FIFO that would block an open):
    the built-in default socket. Run in a private mount namespace with an overlay over the
    default's nearest existing ancestor, so nothing on the machine is touched."""
    sock = _default_socket()
    parent = os.path.dirname(os.path.dirname(sock))
    anc = parent
    while not os.path.isdir(anc):
        anc = os.path.dirname(anc)
    if anc == "/" or not harness_which("unshare"):
        raise harness.Skip("needs unshare and a default socket not directly under /")
    dir_before = os.path.exists(os.path.dirname(sock))
    d = fresh_dir("refuse-default-")
    fifo = os.path.join(d, "agent.fifo")
    os.mkfifo(fifo)
    for conf in (os.path.join(d, "missing.conf"), fifo):
        ov = os.path.join(d, "ov")
        os.makedirs(ov, exist_ok=True)
        script = ('mount -t tmpfs pc-test "$1" && mkdir "$1/u" "$1/w" && '
                  'mount -t overlay pc-test -o "lowerdir=$2,upperdir=$1/u,workdir=$1/w" "$2" && '
                  'mkdir -p "$3" && exec "$4" run --config "$5"')
        cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
               ov, anc, parent, AGENT_BIN, conf]
        log_path = os.path.join(d, "agent-%s.log" % os.path.basename(conf))
        with open(log_path, "wb") as lf:
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=lf, stderr=lf)
        seen = "/proc/%d/root%s" % (p.pid, sock)  # the socket as the agent's namespace has it

        def log():
            with open(log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        try:
            def ready():
                if p.poll() is not None:
                    if "overlay" in log() or "mount" in log():
                        raise harness.Skip("no overlay mount here: %s" % log().strip())
                    raise AssertionError("run exited %s; log:\n%s" % (p.returncode, log()))
                return "event=start mode=refusing" in log()
            harness.wait_until(ready, timeout=15, what="refusing agent on the default socket")
            assert "socket_source=default" in log() and "socket=%s " % sock in log(), log()
            assert "%s:0:" % conf in log(), log()
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(15)
            s.connect(seen)
            with s:
                r = call(s, {"op": "begin", "user": "alice"})
            assert r.get("error") == "config" and conf in r.get("message", ""), r
        finally:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
            rc = p.wait(timeout=15)
        assert rc == 1, (rc, log())
        assert os.path.exists(os.path.dirname(sock)) == dir_before, \
            "the namespace leaked: %s appeared on the machine" % os.path.dirname(sock)


def harness_which(name):
    return any(os.access(os.path.join(p, name), os.X_OK)
               for p in os.environ.get("PATH", "/usr/bin:/bin").split(":"))


def test_socket_activation_refusing_takes_the_passed_socket():
    """systemd passed a socket; the file is broken before its socket line: the agent serves
    refusals on systemd's socket (it cannot know the configured path), fixing its mode."""
    import test_agent_socket_activation as sa
    d = fresh_dir("refuse-activated-")
    os.mkdir(os.path.join(d, "run"), 0o755)
    sock = os.path.join(d, "run", "agent.sock")
    conf = write_conf(os.path.join(d, "agent.conf"), ["url = nonsense", "socket = %s" % sock])
    lsock = sa._listener(sock)  # mode 0666, as a careless SocketMode= would leave it
    log = os.path.join(d, "agent.log")
    p = sa._spawn(conf, lsock.fileno(), log)
    try:
        harness.wait_until(lambda: p.poll() is not None or "mode=refusing" in sa._read(log),
                           timeout=15, what="refusing agent start")
        assert p.poll() is None, sa._read(log)
        text = sa._read(log)
        # "url = nonsense" is line 1 and the socket line is fine: not a guess here
        assert "event=socket_activated socket=%s" % sock in text, text
        assert "%s:1:" % conf in text, text
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o660, oct(os.stat(sock).st_mode)
        r = sa._status(sock)
        assert r.get("error") == "config", r
        assert sa._stop(p, log) == 1
        assert os.path.exists(sock), "the agent unlinked systemd's socket"
    finally:
        if p.poll() is None:
            p.kill()
    # the same with no socket line at all: the default is a guess, systemd's socket wins
    conf2 = write_conf(os.path.join(d, "agent2.conf"), ["url = nonsense"])
    log2 = os.path.join(d, "agent2.log")
    p = sa._spawn(conf2, lsock.fileno(), log2)
    try:
        harness.wait_until(lambda: p.poll() is not None or "mode=refusing" in sa._read(log2),
                           timeout=15, what="refusing agent start")
        assert p.poll() is None, sa._read(log2)
        text = sa._read(log2)
        assert "event=socket_activated_other_path socket=%s" % sock in text, text
        assert sa._status(sock).get("error") == "config"
        assert sa._stop(p, log2) == 1
    finally:
        if p.poll() is None:
            p.kill()
    lsock.close()


def test_sighup_never_drops_a_working_configuration():
    """SIGHUP re-reads the file and only logs: a broken file leaves a running agent serving
    with what it started with (and a refusing agent refusing); SIGHUP no longer kills it."""
    a = test_agent.Agent().start()
    with open(a.conf) as f:
        good = f.read()
    with open(a.conf, "a") as f:
        f.write("timeout = soon\n")
    lineno = good.count("\n") + 1
    a.proc.send_signal(signal.SIGHUP)
    harness.wait_until(lambda: "event=reload result=invalid" in a.log(), timeout=10,
                       what="reload check logged")
    assert a.proc.poll() is None, "SIGHUP ended the agent:\n" + a.log()
    assert "%s:%d: timeout" % (a.conf, lineno) in a.log(), a.log()
    with a.connect() as s:
        r = call(s, {"op": "status"})
    assert r.get("ok") is True, r
    with a.connect() as s:
        r = call(s, {"op": "begin", "user": "nosuchuser-hup"})
    assert r.get("ok") is True and r.get("action") == "deny", r
    with open(a.conf, "w") as f:
        f.write(good)
    a.proc.send_signal(signal.SIGHUP)
    harness.wait_until(lambda: "event=reload result=valid" in a.log(), timeout=10,
                       what="reload check logged")
    assert a.proc.poll() is None
    assert a.stop() == 0
    # a refusing agent: SIGHUP with the file still broken, then fixed: it keeps refusing
    d = fresh_dir("refuse-hup-")
    sock = os.path.join(d, "agent.sock")
    conf = write_conf(os.path.join(d, "agent.conf"), _base(sock) + ["colour = blue"])
    r = RefusingRun(conf, sock)
    r.proc.send_signal(signal.SIGHUP)
    harness.wait_until(lambda: "still refusing every request" in r.log(), timeout=10,
                       what="reload check logged")
    write_conf(conf, _base(sock))
    r.proc.send_signal(signal.SIGHUP)
    harness.wait_until(lambda: "event=reload result=valid" in r.log(), timeout=10,
                       what="reload check logged")
    assert r.proc.poll() is None
    assert r.ask({"op": "status"}).get("error") == "config"
    assert r.stop() == 1
