# SPDX-License-Identifier: BSD-2-Clause
"""The HTTPS client of the CLI and the agent (lib/pc_http.c: HTTP/1.1 over OpenSSL) against a
server the test scripts byte by byte, for what the real control plane never sends: every
framing HTTP/1.1 allows gives the same answer as portcullisd's own; hostile framing (bad status
lines, smuggling headers, oversized heads and bodies, cut replies, a second reply appended, a
reply dribbled forever) is refused with a sentence and never mistaken for an answer; a kept-alive
connection the server closed is replaced; the request carries what it must; and with a CA file
the chain and the host name are checked (with or without a pin).

The scripted server speaks TLS with portcullisd's own key, so the client's pin matches and only
the HTTP is wrong."""
import json
import os
import socket
import ssl
import subprocess
import threading
import time

import harness
from harness import run_cli
import test_agent as ta

TEST_TIMEOUT = 240
D = None


def setup_module():
    global D
    ta.setup_module()
    D = ta.D


def teardown_module():
    ta.teardown_module()


class Scripted:
    """A TLS server on host:0 whose answers come from script(conn_no, req_no, head, body): a
    list of actions, each bytes (sent), ("sleep", s), ("drip", bytes, s) (one byte every s
    seconds) or "close". It records every request as (conn_no, req_no, head, body) and, per
    connection, when the client went away (closed)."""

    def __init__(self, script, host="127.0.0.1"):
        self.script = script
        self.requests = []
        self.closed_at = {}
        self.lock = threading.Lock()
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(D.path("tls.crt"), D.path("tls.key"))
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.url = "https://%s:%d" % ("[%s]" % host if ":" in host else host,
                                      self.sock.getsockname()[1])
        self.conns = 0
        self.stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                n = self.conns
                self.conns += 1
            threading.Thread(target=self._serve, args=(c, n), daemon=True).start()

    def _serve(self, raw, n):
        try:
            raw.settimeout(30)
            c = self.ctx.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            raw.close()
            return
        buf = b""
        req = 0
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        length = int(v.strip())
                while len(buf) < length:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                body, buf = buf[:length], buf[length:]
                with self.lock:
                    self.requests.append((n, req, head.decode("latin-1"), body))
                for a in self.script(n, req, head, body):
                    if a == "close":
                        return
                    if isinstance(a, bytes):
                        c.sendall(a)
                    elif a[0] == "sleep":
                        time.sleep(a[1])
                    elif a[0] == "drip":
                        for i in range(len(a[1])):
                            c.sendall(a[1][i:i + 1])
                            time.sleep(a[2])
                req += 1
        except (OSError, ssl.SSLError):
            pass
        finally:
            with self.lock:
                self.closed_at[n] = time.monotonic()
            try:
                c.close()
            except OSError:
                pass

    def close(self):
        """Stops listening: new connections are refused (shutdown wakes the blocked accept;
        close alone would leave the port open until it returned)."""
        self.stop = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def response(body, status="200 OK", extra=b"", version=b"HTTP/1.1"):
    return (version + b" " + status.encode() + b"\r\nContent-Type: application/json\r\n" +
            b"Content-Length: %d\r\n" % len(body) + extra + b"\r\n" + body)


def chunked(body, sizes, ext=b"", trailer=b""):
    out, i = b"", 0
    for n in sizes:
        out += b"%x%s\r\n%s\r\n" % (n, ext, body[i:i + n])
        i += n
    if i < len(body):
        out += b"%x\r\n%s\r\n" % (len(body) - i, body[i:])
    return out + b"0\r\n" + trailer + b"\r\n"


def reference():
    """portcullisd's own reply to GET /v1/users and what `portcullis user list` prints for it."""
    st, body = D.admin("GET", "/v1/users")
    assert st == 200, (st, body)
    raw = json.dumps(body).encode()
    rc, out, err = run_cli(D, "user", "list")
    assert rc == 0, err
    return raw, out


def test_every_framing_gives_the_same_answer():
    for name in ("alice", "bob"):
        D.admin("POST", "/v1/users", {"name": harness.unique_name(name)})
    raw, want = reference()
    framings = {
        "content-length": response(raw),
        "chunked, extensions and a trailer": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
        b"\r\n" + chunked(raw, [5, 1, 17], ext=b";x=y", trailer=b"X-T: 1\r\n"),
        "one byte per chunk": b"HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n" +
        chunked(raw, [1] * len(raw)),
        "HTTP/1.0 ended by the close": b"HTTP/1.0 200 OK\r\n\r\n" + raw,
        "100 Continue first": b"HTTP/1.1 100 Continue\r\n\r\n" + response(raw),
        "bare LF line ends": (b"HTTP/1.1 200 OK\ncontent-length: %d\n\n" % len(raw)) + raw,
        "Connection: close": response(raw, extra=b"Connection: close\r\n"),
        "the same length twice": response(raw, extra=b"Content-Length: %d\r\n" % len(raw)),
    }
    for name, answer in framings.items():
        closes = name.startswith("HTTP/1.0")
        s = Scripted(lambda n, r, h, b, a=answer, c=closes: [a] + (["close"] if c else []))
        try:
            rc, out, err = run_cli(D, "user", "list", url=s.url)
            assert rc == 0 and out == want, (name, rc, out, err)
        finally:
            s.close()


def test_hostile_replies_are_refused_with_a_sentence():
    big = b"x" * (1024 * 1024 + 1)
    cases = [
        ("status not HTTP", b"ICY 200 OK\r\n\r\n{}", "not valid HTTP"),
        ("status not a number", b"HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\n{}", "not valid HTTP"),
        ("HTTP/2 status line", b"HTTP/2 200\r\ncontent-length: 2\r\n\r\n{}", "not valid HTTP"),
        ("101 switching", b"HTTP/1.1 101 Switching Protocols\r\n\r\n", "not valid HTTP"),
        ("length and chunked (smuggling)", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
         b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", "not valid HTTP"),
        ("two lengths", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
         "not valid HTTP"),
        ("negative length", b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}", "not valid HTTP"),
        ("gzip coding", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n{}", "not valid HTTP"),
        ("bad chunk size", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n",
         "not valid HTTP"),
        ("folded header", b"HTTP/1.1 200 OK\r\nX-A: 1\r\n  2\r\nContent-Length: 2\r\n\r\n{}",
         "not valid HTTP"),
        ("NUL in a header", b"HTTP/1.1 200 OK\r\nX-A: \x00\r\nContent-Length: 2\r\n\r\n{}",
         "not valid HTTP"),
        ("a header line of 100 KB", b"HTTP/1.1 200 OK\r\nX-A: " + b"a" * 100000 + b"\r\n\r\n",
         "header is too long"),
        ("announced body over 1 MiB", b"HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n{}",
         "larger than 1048576 bytes"),
        ("chunked body over 1 MiB", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
         chunked(big, [65536] * 17), "larger than 1048576 bytes"),
        ("body until close over 1 MiB", b"HTTP/1.0 200 OK\r\n\r\n" + big,
         "larger than 1048576 bytes"),
        ("cut short of its length", b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{}",
         "closed before the reply was complete"),
        ("nothing at all", b"", "closed without a reply"),
    ]
    for name, answer, want in cases:
        s = Scripted(lambda n, r, h, b, a=answer: [a, "close"])
        try:
            rc, out, err = run_cli(D, "user", "list", url=s.url)
            assert rc == 1 and want in err, (name, rc, out, err)
            assert s.url.split("//")[1] in err, ("the message names the server", name, err)
            assert D.admin_token not in out + err
        finally:
            s.close()


def test_request_carries_host_token_and_length():
    s = Scripted(lambda n, r, h, b: [response(b'{"users":[]}') if r == 0 else b"", "close"])
    try:
        rc, out, err = run_cli(D, "user", "list", url=s.url)
        assert rc == 0, err
        name = harness.unique_name("req")
        run_cli(D, "user", "add", name, url=s.url)
        (_, _, get, _), (_, _, post, body) = s.requests[:2]
        lines = get.split("\r\n")
        assert lines[0] == "GET /v1/users HTTP/1.1", lines
        hdrs = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
        assert hdrs["host"] == s.url.split("//")[1], hdrs
        assert hdrs["authorization"] == "Bearer " + D.admin_token
        assert "expect" not in hdrs and "content-length" not in hdrs, hdrs
        lines = post.split("\r\n")
        assert lines[0] == "POST /v1/users HTTP/1.1", lines
        hdrs = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
        assert hdrs["content-type"] == "application/json"
        assert int(hdrs["content-length"]) == len(body) and json.loads(body)["name"] == name
    finally:
        s.close()


BEGIN = {"op": "begin", "user": "root"}


def begin_reply(txid):
    return response(b'{"txid":"%s","action":"allow","factors":[],"reason":"ok"}' % txid)


def test_kept_alive_connection_closed_by_the_server_is_replaced():
    """The second request on every connection is read and the connection closed without an
    answer (the server's idle timeout racing the request): each call still succeeds, on a new
    connection, instead of failing over or being refused."""
    count = [0]

    def script(n, r, head, body):
        if r == 1:
            return ["close"]
        count[0] += 1
        if head.startswith(b"GET /v1/health"):
            return [response(b'{"status":"ok"}')]
        return [begin_reply(b"ab%04d" % count[0])]
    s = Scripted(script)
    a = None
    try:
        a = ta.Agent(url=s.url, pin=D.pin, extra=["timeout = 5s"]).start()
        for _ in range(5):
            r = a.call(BEGIN)
            assert r.get("ok") is True and r["action"] == "allow", (r, a.log())
        assert any(r == 1 for _, r, _, _ in s.requests), "no request met a closed connection"
    finally:
        if a:
            a.kill()
        s.close()


def test_a_reply_appended_to_the_reply_is_never_taken_for_the_next():
    """A second reply right behind the first (same write), or arriving while the connection is
    idle: the connection is dropped, and the next call gets its own answer on a new one. (Bytes
    that arrive after the next request was sent cannot be told from its answer: HTTP/1.1 has no
    request ids; the pin makes sure they come from the control plane.)"""
    count = [0]

    def script(n, r, head, body):
        count[0] += 1
        if head.startswith(b"GET /v1/health"):
            return [response(b'{"status":"ok"}')]
        if count[0] % 2:
            return [begin_reply(b"ab%04d" % count[0]) + begin_reply(b"ee" * 16)]
        return [begin_reply(b"ab%04d" % count[0]), ("sleep", 0.05), begin_reply(b"ee" * 16)]
    s = Scripted(script)
    a = None
    try:
        a = ta.Agent(url=s.url, pin=D.pin, extra=["timeout = 5s"]).start()
        for _ in range(6):
            r = a.call(BEGIN)
            assert r.get("ok") is True and r["txid"].startswith("ab"), (r, a.log())
            time.sleep(0.5)
    finally:
        if a:
            a.kill()
        s.close()


def test_a_reply_dribbled_forever_ends_at_the_deadline():
    """One header byte every 0.2 s, forever: the agent gives up at its timeout (2 s) and
    closes the connection; bytes that keep coming do not extend the deadline."""
    started = {}

    def script(n, r, head, body):
        if head.startswith(b"GET /v1/health"):
            return [response(b'{"status":"ok"}')]
        started[n] = time.monotonic()
        return [("drip", b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"a" * 4000, 0.2)]
    s = Scripted(script)
    a = None
    try:
        a = ta.Agent(url=s.url, pin=D.pin, extra=["timeout = 2s"]).start()
        r = a.call(BEGIN)
        assert r.get("ok") is False, r
        harness.wait_until(lambda: all(n in s.closed_at for n in started), timeout=30,
                           what="the agent closed the dribbling connection")
        for n, t in started.items():
            # 4,000 bytes take 800 s to dribble: only the deadline can have ended it.
            assert s.closed_at[n] - t < 30, (n, s.closed_at[n] - t)
    finally:
        if a:
            a.kill()
        s.close()


def _other_cert(path):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=other",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", path + ".key",
                    "-out", path], check=True, capture_output=True)
    return path


def test_ca_file_checks_the_chain_and_the_name():
    ca = D.path("tls.crt")  # portcullisd's certificate names localhost, 127.0.0.1 and ::1
    port = D.url.rsplit(":", 1)[1]
    raw, want = reference()
    for url in (D.url, "https://localhost:%s" % port):
        rc, out, err = run_cli(D, "--cafile", ca, "user", "list", url=url, pin="")
        assert rc == 0 and out == want, (url, rc, err)
    # both: the chain and the pin must hold
    rc, out, err = run_cli(D, "--cafile", ca, "user", "list")
    assert rc == 0 and out == want, err
    rc, out, err = run_cli(D, "--cafile", ca, "user", "list", pin=ta.wrong_pin())
    assert rc == 1 and "does not match the pin" in err, err
    # a CA that did not sign it
    other = _other_cert(os.path.join(ta.ROOT, "other-ca.crt"))
    rc, out, err = run_cli(D, "--cafile", other, "user", "list", pin="")
    assert rc == 1 and "certificate" in err and D.admin_token not in err, err
    # the right CA, a name the certificate does not hold (127.0.0.2)
    s = Scripted(lambda n, r, h, b: [response(raw)], host="127.0.0.2")
    try:
        rc, out, err = run_cli(D, "--cafile", ca, "user", "list", url=s.url, pin="")
        assert rc == 1 and "certificate" in err, err
        assert not s.requests, "a request went to a server whose name did not match"
        rc, out, err = run_cli(D, "user", "list", url=s.url)  # the pin alone trusts the key
        assert rc == 0 and out == want, err
    finally:
        s.close()
    rc, out, err = run_cli(D, "--cafile", "/nonexistent/ca.pem", "user", "list", pin="")
    assert rc == 1 and "/nonexistent/ca.pem" in err, err


def test_ipv6_literal_and_bad_urls():
    """https://[::1]:PORT connects to ::1 and sends Host: [::1]:PORT; URLs with a user, a
    query, a bad port or no host are refused before any connection."""
    s = Scripted(lambda n, r, h, b: [response(b'{"users":[]}'), "close"], host="::1")
    try:
        rc, out, err = run_cli(D, "user", "list", url=s.url)
        assert rc == 0, err
        a = s.requests[0][2]
        assert a.startswith("GET /v1/users HTTP/1.1\r\n"), a
        assert "\r\nHost: %s\r\n" % s.url.split("//")[1] in a, a
    finally:
        s.close()
    for bad in ("https://user@127.0.0.1:1", "https://127.0.0.1:1/?q", "https://127.0.0.1:0",
                "https://127.0.0.1:65536", "https://[::1:1", "https://:443", "https://a b"):
        rc, out, err = run_cli(D, "user", "list", url=bad)
        assert rc != 0 and "URL" in err, (bad, rc, err)


def test_a_code_lost_with_its_instance_fails_over_marked_resend():
    """A totp read by instance A, which then dies (its connection closed without an answer, its
    port closed): the client's one retry on a new connection is refused. The request was sent,
    so the agent must send it to B marked "resend": true (B answers allow only if that code
    already allowed that transaction), never as a new verification."""
    dropped = []
    seen_b = []

    def script_a(n, r, head, body):
        if head.startswith(b"GET /v1/health"):
            return [response(b'{"status":"ok"}')]
        if head.startswith(b"POST /v1/auth/totp") and not dropped:
            dropped.append(json.loads(body))
            a.close()  # the instance is gone: the retry's connect is refused
            return ["close"]
        return [begin_reply(b"aa" * 16)]

    def script_b(n, r, head, body):
        if head.startswith(b"GET /v1/health"):
            return [response(b'{"status":"ok"}')]
        if head.startswith(b"POST /v1/auth/totp"):
            seen_b.append(json.loads(body))
            return [response(b'{"result":"allow","reason":"totp_ok"}')]
        return [begin_reply(b"bb" * 16)]
    a, b = Scripted(script_a), Scripted(script_b)
    agent = None
    try:
        agent = ta.Agent(url="%s, %s" % (a.url, b.url), pin=D.pin,
                         extra=["timeout = 5s"]).start()
        for i in range(6):
            with agent.connect() as s:
                if i % 2:  # calls go round robin: shift which instance gets the totp
                    ta.call(s, BEGIN)
                bg = ta.call(s, BEGIN)
                assert bg.get("ok") is True, (bg, agent.log())
                n_b = len(seen_b)
                r = ta.call(s, {"op": "totp", "txid": bg["txid"], "code": "123456"})
            if dropped:
                break
            assert r.get("ok") is True and r["result"] == "allow", r
        assert dropped, "no totp reached instance A"
        assert r.get("ok") is True and r["result"] == "allow", (r, agent.log())
        assert len(seen_b) == n_b + 1, seen_b
        assert seen_b[-1].get("resend") is True, ("sent again as new", seen_b[-1], dropped)
        assert seen_b[-1]["txid"] == dropped[0]["txid"]
    finally:
        if agent:
            agent.kill()
        a.close()
        b.close()
