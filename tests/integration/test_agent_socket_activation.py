# SPDX-License-Identifier: BSD-2-Clause
"""portcullis-agent under socket activation (systemd's LISTEN_PID/LISTEN_FDS protocol, fd 3), as
portcullis-agent.socket starts it: the agent serves the socket it is given instead of binding its
own, applies the configured mode/group to it, never unlinks it, and a client that connects while
the agent is down is queued and answered by the next agent. A socket for another path, more than
one socket, or something that is not a listening unix socket stops the start; LISTEN_PID of
another process is ignored (the agent binds its own socket)."""
import os
import signal
import socket
import stat
import subprocess
import tempfile

import harness
from harness import Daemon
import test_agent
from test_agent import AGENT_BIN, call, write_conf

TEST_TIMEOUT = 120

D = None
ROOT = None
TOKEN_FILE = None
PROCS = []


def setup_module():
    global D, ROOT, TOKEN_FILE
    if not os.path.exists(AGENT_BIN):
        raise AssertionError("agent binary not built: %s (set PC_BUILD_DIR)" % AGENT_BIN)
    ROOT = tempfile.mkdtemp(prefix="pc-agent-sa-")
    harness._TMP_ROOTS.append(ROOT)
    os.chmod(ROOT, 0o755)
    D = Daemon().start()
    _, token = D.enroll_host(hostname="agent-socket-activation")
    TOKEN_FILE = os.path.join(ROOT, "host.token")
    with open(TOKEN_FILE, "w") as f:
        f.write(token + "\n")
    os.chmod(TOKEN_FILE, 0o600)


def teardown_module():
    for p in PROCS:
        if p.poll() is None:
            p.kill()
            p.wait()
    if D:
        D.kill()


def _setup(name, extra=()):
    d = tempfile.mkdtemp(prefix=name + "-", dir=ROOT)
    os.chmod(d, 0o755)
    run = os.path.join(d, "run")
    os.mkdir(run, 0o755)
    sock = os.path.join(run, "agent.sock")
    conf = write_conf(os.path.join(d, "agent.conf"), [
        "url = %s" % D.url, "pin = %s" % D.pin, "host_token_file = %s" % TOKEN_FILE,
        "socket = %s" % sock] + list(extra))
    return d, sock, conf


def _listener(path):
    """What systemd does for ListenStream=path (SocketMode=0666 so we see the agent fix it)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    os.chmod(path, 0o666)
    s.listen(16)
    return s


def _spawn(conf, fd, log_path, nfds="1", pid_of_self=True):
    """Starts the agent with `fd` as its fd 3 and LISTEN_PID set to the agent's own pid (bash
    execs it, keeping $$)."""
    pid = "$$" if pid_of_self else "1"
    script = ('export LISTEN_PID=%s LISTEN_FDS=%s LISTEN_FDNAMES=agent; '
              'exec "$0" run --config "$1" 3<&%d %d<&-' % (pid, nfds, fd, fd))
    log = open(log_path, "wb")
    p = subprocess.Popen(["bash", "-c", script, AGENT_BIN, conf], stdin=subprocess.DEVNULL,
                         stdout=log, stderr=log, pass_fds=(fd,))
    log.close()
    PROCS.append(p)
    return p


def _read(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def _status(sock_path, timeout=15):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock_path)
    with s:
        return call(s, {"op": "status"})


def _stop(p, log_path):
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise AssertionError("agent ignored SIGTERM; log:\n%s" % _read(log_path))
    return rc


def test_serves_passed_socket_and_survives_restart():
    d, sock, conf = _setup("ok", ["socket_group = nogroup"])
    lsock = _listener(sock)
    ino = os.stat(sock).st_ino
    log1 = os.path.join(d, "agent1.log")
    p = _spawn(conf, lsock.fileno(), log1)

    def ready():
        if p.poll() is not None:
            raise AssertionError("agent exited %s; log:\n%s" % (p.returncode, _read(log1)))
        return "event=start" in _read(log1)
    harness.wait_until(ready, timeout=15, what="agent start")
    assert "event=socket_activated" in _read(log1), _read(log1)
    r = _status(sock)
    assert r.get("ok") is True, r
    st = os.stat(sock)
    assert st.st_ino == ino, "the agent replaced the socket file it was given"
    assert stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)
    assert st.st_uid == 0 and st.st_gid == 65534, (st.st_uid, st.st_gid)
    assert _stop(p, log1) == 0
    # Stopped: the file stays (systemd owns it) and a login that arrives now is queued ...
    assert os.path.exists(sock) and os.stat(sock).st_ino == ino, "the agent unlinked the socket"
    waiting = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    waiting.settimeout(20)
    waiting.connect(sock)
    test_agent.send_frame(waiting, {"op": "status"})
    # ... and answered by the next agent started on the same socket.
    log2 = os.path.join(d, "agent2.log")
    p2 = _spawn(conf, lsock.fileno(), log2)
    with waiting:
        r = test_agent.recv_frame(waiting)
    assert r.get("ok") is True, (r, _read(log2))
    assert _stop(p2, log2) == 0
    assert os.path.exists(sock)
    lsock.close()


def test_socket_for_another_path_refused():
    d, sock, conf = _setup("other")
    other = os.path.join(d, "run", "other.sock")
    lsock = _listener(other)
    log = os.path.join(d, "agent.log")
    p = _spawn(conf, lsock.fileno(), log)
    assert p.wait(timeout=15) == 1
    text = _read(log)
    assert "socket activation" in text and other in text and sock in text, text
    assert not os.path.exists(sock)
    lsock.close()


def test_two_sockets_refused():
    d, sock, conf = _setup("two")
    lsock = _listener(sock)
    log = os.path.join(d, "agent.log")
    p = _spawn(conf, lsock.fileno(), log, nfds="2")
    assert p.wait(timeout=15) == 1
    assert "exactly one" in _read(log), _read(log)
    lsock.close()


def test_not_a_listening_socket_refused():
    d, sock, conf = _setup("notlisten")
    path = os.path.join(d, "plain")
    with open(path, "w") as f:
        f.write("x")
    fd = os.open(path, os.O_RDONLY)
    log = os.path.join(d, "agent.log")
    p = _spawn(conf, fd, log)
    assert p.wait(timeout=15) == 1
    os.close(fd)
    assert "not a listening unix stream socket" in _read(log), _read(log)


def test_listen_pid_of_another_process_ignored():
    d, sock, conf = _setup("otherpid")
    other = os.path.join(d, "run", "other.sock")
    lsock = _listener(other)
    log = os.path.join(d, "agent.log")
    p = _spawn(conf, lsock.fileno(), log, pid_of_self=False)
    harness.wait_until(lambda: os.path.exists(sock) or p.poll() is not None, timeout=15,
                       what="agent's own socket")
    assert p.poll() is None, _read(log)
    assert "event=socket_activated" not in _read(log)
    assert _status(sock).get("ok") is True
    assert _stop(p, log) == 0
    assert not os.path.exists(sock), "the agent's own socket is removed on stop"
    lsock.close()
