# SPDX-License-Identifier: BSD-2-Clause
"""Parked long-polls (control-plane/cp_parked.c): a waiting GET /v1/auth/push/ID?wait=N on a
TLS 1.3 connection leaves libmicrohttpd and its TLS session; its answer is sealed by portcullisd
itself as one TLS 1.3 record. What a client sees must not change: a whole, authentic reply
(here read by OpenSSL through curl, for each TLS 1.3 cipher suite, and by Python's ssl), now
with "Connection: close". TLS 1.2 connections wait inside libmicrohttpd as before. Anything a
client sends to a parked poll ends it; at most --max-connections polls are parked; a stopping
server answers them."""
import os
import signal
import socket
import ssl
import subprocess
import threading
import time

import harness
from harness import Daemon

D = None
HOST = None

SUITES = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")


def setup_module():
    global D, HOST
    D = Daemon(args=["--push-ttl", "2m"]).start()
    _, HOST = D.enroll_host()


def teardown_module():
    if D:
        D.kill()


def _push(d=None, host=None):
    d = d or D
    user = d.create_user(push=True)
    _, p = d.create_push(host or HOST, user)
    return p


def _approve(p, d=None):
    st, b = (d or D).admin("POST", "/v1/approvals/%s/approve" % p["push_id"],
                           {"match": p["match"]})
    assert st == 200 and b["state"] == "approved", (st, b)


def _curl_poll(p, wait, tls, d=None, host=None):
    """curl (OpenSSL) long-polls the push; tls: extra TLS flags. The process, its output a file
    of the reply's head and body."""
    d = d or D
    url = "https://127.0.0.1:%d/v1/auth/push/%s?wait=%d" % (d.port, p["push_id"], wait)
    # -k: the records are what is tested here, not the pinning (tests of it: test_agent_pin).
    return subprocess.Popen(["curl", "-sS", "-k", "-i", "--max-time", str(wait + 30), "-H",
                             "Authorization: Bearer %s" % (host or HOST)] + tls + [url],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _reply(proc):
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, "curl failed (%d): %s" % (proc.returncode, err.strip())
    head, _, body = out.replace("\r\n", "\n").partition("\n\n")
    lines = head.split("\n")
    hdrs = {k.strip().lower(): v.strip() for k, v in
            (l.split(":", 1) for l in lines[1:] if ":" in l)}
    return int(lines[0].split()[1]), hdrs, body


def _still_waiting(proc, secs=1.0):
    time.sleep(secs)
    assert proc.poll() is None, "the long-poll returned before anything happened: %r" % (
        proc.communicate(timeout=5),)


def test_parked_poll_is_answered_whole_with_each_tls13_cipher_suite():
    for suite in SUITES:
        p = _push()
        proc = _curl_poll(p, 20, ["--tlsv1.3", "--tls13-ciphers", suite])
        _still_waiting(proc)
        _approve(p)
        st, hdrs, body = _reply(proc)
        assert st == 200 and '"state":"approved"' in body.replace(" ", ""), (suite, st, body)
        assert hdrs.get("connection", "").lower() == "close", (suite, hdrs)
        assert hdrs.get("content-length") == str(len(body.encode())), (suite, hdrs, body)


def test_a_client_that_asked_for_a_key_update_gets_one_before_the_parked_reply():
    """RFC 8446 4.6.3: a KeyUpdate with update_requested must be answered by a KeyUpdate before
    the next application data. GnuTLS keeps that answer for its next record, which a parked
    session never sends: the server sends its own KeyUpdate when it parks the poll, and seals
    the reply with the new keys. OpenSSL's s_client sends the request ("K"), then the poll;
    it must see the server's KeyUpdate, then the whole reply, then close_notify."""
    p = _push()
    req = ("GET /v1/auth/push/%s?wait=20 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           "Authorization: Bearer %s\r\n\r\n" % (p["push_id"], HOST))
    proc = subprocess.Popen(["openssl", "s_client", "-connect", "127.0.0.1:%d" % D.port,
                             "-tls1_3", "-msg"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, b"")),
                              daemon=True)
    reader.start()
    try:
        harness.wait_until(lambda: any(b"Verify return code" in l for l in lines),
                           what="s_client's handshake")
        proc.stdin.write(b"K\n")              # s_client's command: KeyUpdate, update_requested
        proc.stdin.flush()
        harness.wait_until(lambda: any(b"KEYUPDATE" in l for l in lines),
                           what="s_client's KeyUpdate")
        proc.stdin.write(req.encode())
        proc.stdin.flush()
        # Waiting, parked or held: once, under TSan in CI, this poll was not parked but waited
        # held (not diagnosed; likely the KeyUpdate and the request read together, GnuTLS's own
        # answer still pending, so ours could not be sent). Held, GnuTLS sends its KeyUpdate
        # before the reply itself: the order asserted below holds either way.
        harness.wait_until(lambda: _gauges(D).get("portcullis_long_polls_held") == 1,
                           what="the poll waiting")  # held counts parked ones too
        _approve(p)
        harness.wait_until(lambda: any(b"close_notify" in l for l in lines), 30,
                           what="the reply and close_notify")
    finally:
        proc.kill()
        proc.wait(10)
        reader.join(10)
    out = b"".join(lines)
    text = out.decode(errors="replace")
    sent = text.find(">>> TLS 1.3, Handshake [length 0005], KeyUpdate")
    got = text.find("<<< TLS 1.3, Handshake [length 0005], KeyUpdate")
    reply = text.find("HTTP/1.1 200 OK")
    assert sent >= 0, "s_client sent no KeyUpdate:\n%s" % text[-3000:]
    assert got > sent, "the server sent no KeyUpdate after the client's request:\n%s" % \
        text[-3000:]
    assert reply > got, "the reply came before the server's KeyUpdate, or not at all:\n%s" % \
        text[-3000:]
    assert '"state":"approved"' in text[reply:], text[reply:]
    assert "Connection: close" in text[reply:], text[reply:]
    assert "<<< TLS 1.3, Alert [length 0002], warning close_notify" in text[reply:], text[reply:]


def test_tls12_poll_waits_in_the_server_as_before_and_keeps_its_connection():
    p = _push()
    proc = _curl_poll(p, 20, ["--tls-max", "1.2"])
    _still_waiting(proc)
    _approve(p)
    st, hdrs, body = _reply(proc)
    assert st == 200 and '"state":"approved"' in body.replace(" ", ""), (st, body)
    assert hdrs.get("connection", "").lower() != "close", hdrs


def test_parked_poll_answers_pending_at_its_deadline_and_the_next_request_reconnects():
    p = _push()
    t0 = time.time()
    st, b, hdrs, _ = D.request("GET", "/v1/auth/push/%s?wait=2" % p["push_id"], token=HOST)
    assert st == 200 and b["state"] == "pending", (st, b)
    assert 1.5 <= time.time() - t0 < 10, time.time() - t0
    assert hdrs.get("connection", "").lower() == "close", hdrs
    # The same host's next requests work (a new connection each): nothing of the parked one
    # lingers in the server's view of the host.
    for _ in range(3):
        st, b = D.poll_push(HOST, p["push_id"], wait=0)
        assert st == 200 and b["state"] == "pending", (st, b)


def _raw_poll(p, wait):
    """A TLS 1.3 connection that sent the long-poll request and reads nothing yet."""
    ctx = ssl.create_default_context(cafile=D.path("tls.crt"))
    ctx.check_hostname = False
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", D.port), timeout=15))
    s.sendall(("GET /v1/auth/push/%s?wait=%d HTTP/1.1\r\nHost: x\r\n"
               "Authorization: Bearer %s\r\n\r\n" % (p["push_id"], wait, HOST)).encode())
    return s


def _read_all(s):
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ssl.SSLError, ConnectionError, socket.timeout) as e:
        return data, e
    return data, None


def test_anything_the_client_sends_ends_a_parked_poll_without_a_reply():
    p = _push()
    s = _raw_poll(p, 60)
    time.sleep(1.0)
    # a second (pipelined) request: a parked poll reads nothing, so it ends the poll
    s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
    t0 = time.time()
    data, err = _read_all(s)
    s.close()
    assert data == b"", "a parked poll answered after its client sent more: %r" % data[:200]
    assert time.time() - t0 < 10, "the parked poll was not ended (%.1f s)" % (time.time() - t0)
    # nothing is owed to it later, and the server goes on
    _approve(p)
    assert D.health()


def test_hung_up_parked_poll_leaves_no_socket_on_the_server():
    p = _push()
    s = _raw_poll(p, 60)
    port = s.getsockname()[1]
    time.sleep(1.0)
    s.close()

    def server_side_gone():
        out = subprocess.run(["ss", "-tanH", "dst", "127.0.0.1:%d" % port], capture_output=True,
                             text=True).stdout
        return ":%d" % D.port not in out
    harness.wait_until(server_side_gone, timeout=10, what="the server closed the parked socket")
    _approve(p)
    assert D.health()


def _gauges(d):
    st, _, _, raw = d.request("GET", "/metrics", token=d.admin_token)
    assert st == 200, st
    g = {}
    for line in raw.decode().splitlines():
        if line.startswith("portcullis_long_polls_"):
            k, v = line.split()
            g[k] = float(v)
    return g


def test_parked_polls_are_counted_apart_in_the_metrics():
    p = _push()
    proc = _curl_poll(p, 20, ["--tlsv1.3"])
    harness.wait_until(lambda: _gauges(D).get("portcullis_long_polls_parked") == 1,
                       what="one parked poll in /metrics")
    proc12 = _curl_poll(p, 20, ["--tls-max", "1.2"])
    harness.wait_until(lambda: _gauges(D) == {"portcullis_long_polls_held": 2,
                                              "portcullis_long_polls_parked": 1},
                       what="two waiting polls, one of them parked")
    _approve(p)
    for pr in (proc, proc12):
        assert _reply(pr)[0] == 200
    harness.wait_until(lambda: _gauges(D) == {"portcullis_long_polls_held": 0,
                                              "portcullis_long_polls_parked": 0},
                       what="no waiting poll left")


def test_no_more_than_max_connections_polls_are_parked():
    d = Daemon(args=["--push-ttl", "2m", "--max-connections", "16"]).start()
    try:
        _, host = d.enroll_host()
        p = _push(d, host)
        # the 17th finds every parked slot taken: it waits suspended, in a connection slot
        procs = [_curl_poll(p, 60, ["--tlsv1.3"], d=d, host=host) for _ in range(17)]
        harness.wait_until(lambda: _gauges(d).get("portcullis_long_polls_held") == 17,
                           timeout=30, what="17 waiting polls")
        assert _gauges(d)["portcullis_long_polls_parked"] == 16, _gauges(d)
        _approve(p, d)
        closes = []
        for proc in procs:
            st, hdrs, body = _reply(proc)
            assert st == 200 and '"state":"approved"' in body.replace(" ", ""), (st, body)
            closes.append(hdrs.get("connection", "").lower() == "close")
        assert sorted(closes) == [False] + [True] * 16, closes
        # the slots came back: the next poll is parked again
        p2 = _push(d, host)
        proc = _curl_poll(p2, 20, ["--tlsv1.3"], d=d, host=host)
        _still_waiting(proc)
        _approve(p2, d)
        st, hdrs, _ = _reply(proc)
        assert st == 200 and hdrs.get("connection", "").lower() == "close", (st, hdrs)
    finally:
        d.kill()


def test_a_stopping_server_answers_its_parked_polls():
    d = Daemon(args=["--push-ttl", "2m"]).start()
    try:
        _, host = d.enroll_host()
        p = _push(d, host)
        proc = _curl_poll(p, 60, ["--tlsv1.3"], d=d, host=host)
        _still_waiting(proc)
        d.stop(sig=signal.SIGTERM)
        st, hdrs, body = _reply(proc)
        assert st == 200 and '"state":"pending"' in body.replace(" ", ""), (st, body)
    finally:
        d.kill()


def test_a_poll_parked_while_the_server_stops_is_still_answered():
    """A poll that took its parked slot before SIGTERM but is listed only after the waiters'
    thread has ended (PC_TEST_PARK_DELAY_MS holds it in between) is answered all the same,
    "pending", by the thread that parks it; before, its socket stayed open and silent until the
    process exited."""
    d = Daemon(args=["--push-ttl", "2m"], env={"PC_TEST_PARK_DELAY_MS": "3000"}).start()
    try:
        _, host = d.enroll_host()
        p = _push(d, host)
        proc = _curl_poll(p, 60, ["--tlsv1.3"], d=d, host=host)
        time.sleep(1.0)                      # its request read, it waits to be listed
        assert proc.poll() is None, proc.communicate(timeout=5)
        assert d.stop(sig=signal.SIGTERM) == 0
        st, hdrs, body = _reply(proc)
        assert st == 200 and '"state":"pending"' in body.replace(" ", ""), (st, body)
        assert hdrs.get("connection") == "close", hdrs
    finally:
        d.kill()


def test_the_open_file_limit_covers_connections_parked_polls_and_threads():
    """Each parked poll keeps a descriptor outside libmicrohttpd's --max-connections, and each
    thread a store connection: started with a soft limit of 256, portcullisd raises its own to
    2 x --max-connections + 4 per thread + 64, as far as the hard limit allows."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 2 * 300 + 4 * 4 + 64
    if hard != resource.RLIM_INFINITY and hard < want:
        raise harness.Skip("RLIMIT_NOFILE hard limit %d < %d" % (hard, want))
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        d = Daemon(args=["--max-connections", "300", "--threads", "4"]).start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        with open("/proc/%d/limits" % d.pid) as f:
            line = [l for l in f if l.startswith("Max open files")][0]
        assert int(line.split()[3]) >= want, line
    finally:
        d.kill()


def test_a_host_deleted_while_its_poll_waits_gets_401_not_the_state():
    """A held poll's request is judged again when it resumes; a parked one's credential too."""
    name = "parked-del-" + harness.unique_name("h").replace("_", "-")
    _, host = D.enroll_host(hostname=name)
    p = _push(host=host)
    parked = _curl_poll(p, 4, ["--tlsv1.3"], host=host)
    held = _curl_poll(p, 4, ["--tls-max", "1.2"], host=host)
    harness.wait_until(lambda: _gauges(D).get("portcullis_long_polls_parked", 0) >= 1,
                       what="the TLS 1.3 poll parked")
    _still_waiting(held, 0.5)
    D.delete_host(name)
    _approve(p)   # a decision wakes both; neither may learn it
    for proc, what in ((parked, "parked"), (held, "held")):
        st, _, body = _reply(proc)
        assert st == 401 and "approved" not in body, (what, st, body)
