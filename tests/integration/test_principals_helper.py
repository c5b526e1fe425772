# SPDX-License-Identifier: BSD-2-Clause
"""portcullis-principals, the small AuthorizedPrincipalsCommand binary (issue 16), against the
older `portcullis-agent principals`: the same answers from a real agent, and the same refusals
(nothing on stdout) for garbage or oversized arguments, a missing or hostile socket and a
configuration that does not parse. Also: it links no TLS or HTTP library."""
import os
import socket
import struct
import subprocess
import threading

import harness
import test_agent_ca as ca

TEST_TIMEOUT = 180
HELPER = os.path.join(harness.BUILD_DIR, "agent", "portcullis-principals")


def setup_module():
    if not os.path.exists(HELPER):
        raise AssertionError("not built: %s (set PC_BUILD_DIR)" % HELPER)
    ca.setup_module()


def teardown_module():
    ca.teardown_module()


def both(*args, config=None, sock=None):
    """{"new"|"old": (rc, stdout, stderr)} of the two spellings with the same arguments."""
    pre = (["--socket", sock] if sock else []) + (["--config", config] if config else [])
    res = {}
    for kind, argv in (("new", [HELPER]), ("old", [ca.AGENT_BIN, "principals"])):
        p = subprocess.run(argv + pre + list(args), capture_output=True, timeout=20)
        res[kind] = (p.returncode, p.stdout.decode("utf-8", "replace"),
                     p.stderr.decode("utf-8", "replace"))
    return res


def assert_refused(res, rc=1, what=""):
    for kind, (got_rc, out, err) in res.items():
        assert out == "" and got_rc == rc, (what, kind, got_rc, out, err)


def test_helper_links_no_tls_or_http_library():
    """Dynamically linked: json-c and libc only. Statically linked (configure's default when
    the toolchain can, PC_PRINCIPALS_LDFLAGS): no TLS or HTTP code inside, json-c's is."""
    out = subprocess.run(["ldd", HELPER], capture_output=True, text=True).stdout
    with open(os.path.join(harness.BUILD_DIR, "Makefile")) as f:
        flags = [l for l in f if l.startswith("PC_PRINCIPALS_LDFLAGS =")]
    static = "statically linked" in out or "not a dynamic executable" in out
    assert flags and static == ("-static" in flags[0]), (flags, out)
    if not static:
        for lib in ("libcurl", "libssl", "libcrypto", "libgnutls", "libkrb5", "liboath"):
            assert lib not in out, (lib, out)
        assert "libjson-c" in out, out
        return
    with open(HELPER, "rb") as f:
        image = f.read()
    for sym in (b"curl_easy_init", b"SSL_CTX_new", b"EVP_MD_CTX_new", b"gnutls_global_init",
                b"krb5_init_context", b"oath_init"):
        assert sym not in image, sym
    assert b"json_tokener_parse" in image


def _started_prod_host():
    """A started agent on an env=prod host, and a person with a certificate for ubuntu there:
    (host, name, signing reply, fingerprint of the person's key)."""
    h = ca.Host(ca.D, labels={"env": "prod"})
    h.enroll()
    h.start()
    try:
        name, key, r = ca.enrolled_person(ca.D, h, accounts=("ubuntu",), hosts={"env": "prod"})
    except BaseException:
        h.stop()
        raise
    return h, name, r, ca.fingerprint(key + ".pub")


def test_helper_answers_like_the_agent_subcommand():
    h, name, r, fp = _started_prod_host()
    try:
        for cfg in (dict(config=h.conf), dict(sock=h.socket)):
            res = both("ubuntu", name, str(r["serial"]), fp, **cfg)
            want = (0, "restrict,pty,user-rc %s\n" % name)
            assert res["new"][:2] == want and res["old"][:2] == want, (cfg, res, h.log())
            # another account: answered, nothing printed, by both
            res = both("root", name, str(r["serial"]), fp, **cfg)
            assert res["new"][:2] == (0, "") and res["old"][:2] == (0, ""), (cfg, res)
        # garbage and oversized arguments reach the real daemon, which refuses them
        big = "a" * 70000
        for args in (("-bad", name, str(r["serial"]), fp), ("ubuntu", name, "12x", fp),
                     ("ubuntu\nroot", name, str(r["serial"]), fp),
                     ("ubuntu", name + "\x01", str(r["serial"]), fp),
                     (big, name, str(r["serial"]), fp), ("ubuntu", big, str(r["serial"]), fp),
                     ("ubuntu", name, "9" * 40, fp), ("ubuntu", name, str(r["serial"]), big)):
            assert_refused(both(*args, sock=h.socket), what=args[:1] + (len(args[1]),))
        # wrong number of arguments: a usage error, nothing printed
        assert_refused(both("ubuntu", name, str(r["serial"]), sock=h.socket), rc=2)
        assert_refused(both("ubuntu", name, str(r["serial"]), fp, "x", sock=h.socket), rc=2)
        assert_refused(both(sock=h.socket), rc=2)
    finally:
        h.stop()


def test_helpers_at_once_and_in_turn_all_answered():
    """The agent keeps the stacks of its first client slots between clients (ag_server.c):
    helpers one after another (always a reused slot) and 16 at once (warm slots and glibc's),
    three times over, each get the whole right answer; the agent is still up after them."""
    h, name, r, fp = _started_prod_host()
    try:
        argv = [HELPER, "--socket", h.socket, "ubuntu", name, str(r["serial"]), fp]
        want = (0, "restrict,pty,user-rc %s\n" % name)
        for _ in range(20):
            p = subprocess.run(argv, capture_output=True, text=True, timeout=20)
            assert (p.returncode, p.stdout) == want, (p.returncode, p.stdout, p.stderr)
        for _ in range(3):
            ps = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True) for _ in range(16)]
            for p in ps:
                out, err = p.communicate(timeout=20)
                assert (p.returncode, out) == want, (p.returncode, out, err, h.log()[-2000:])
        assert h.proc.poll() is None, h.log()
        # another account after all that: answered, nothing printed
        p = subprocess.run([HELPER, "--socket", h.socket, "root", name, str(r["serial"]), fp],
                           capture_output=True, text=True, timeout=20)
        assert (p.returncode, p.stdout) == (0, ""), (p.returncode, p.stdout, p.stderr)
    finally:
        h.stop()


class Hostile:
    """A unix socket server owned by the test that answers every request with raw bytes."""

    def __init__(self, path, data):
        self.path, self.data = path, data
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                n = struct.unpack(">I", c.recv(4, socket.MSG_WAITALL))[0]
                c.recv(min(n, 1 << 20), socket.MSG_WAITALL)
                c.sendall(self.data)
            except OSError:
                pass
            c.close()

    def close(self):
        # Wake the accept loop and wait for it: a loop still running could take the fd
        # number of the next Hostile's socket and answer its clients with these bytes.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.thread.join(10)
        assert not self.thread.is_alive(), "the Hostile accept loop did not end"
        self.sock.close()
        os.unlink(self.path)


def test_helper_fails_closed_on_missing_or_hostile_socket_and_bad_config():
    d = ca.fresh_dir("ph-")
    args = ("ubuntu", "alice", "7", "SHA256:abc")
    sock = os.path.join(d, "agent.sock")
    assert_refused(both(*args, sock=sock), what="no socket")
    assert_refused(both(*args, sock=d), what="a directory")
    with open(os.path.join(d, "file"), "w") as f:
        f.write("x")
    assert_refused(both(*args, sock=os.path.join(d, "file")), what="a regular file")
    assert_refused(both(*args, sock="/" + "s" * 200), what="a path too long for sockaddr_un")
    ok = b'{"ok":true,"principals":["alice"],"options":{"extensions":[]}}'
    frame = struct.pack(">I", len(ok)) + ok
    many = b'{"ok":true,"options":{"extensions":[]},"principals":[' + \
        b",".join(b'"p%05d"' % i for i in range(4000)) + b"]}"
    for data in (b"", b"\x00\x00", b"\xff\xff\xff\xff" + b"x" * 64, struct.pack(">I", 5) + b"{}}}}",
                 struct.pack(">I", len(ok) + 10) + ok, struct.pack(">I", 0),
                 struct.pack(">I", len(many)) + many, b"HTTP/1.1 200 OK\r\n\r\n"):
        h = Hostile(sock, data)
        try:
            assert_refused(both(*args, sock=sock), what=data[:24])
        finally:
            h.close()
    h = Hostile(sock, frame)            # the same socket, well-formed: both answer
    try:
        res = both(*args, sock=sock)
        assert res["new"][:2] == (0, "restrict alice\n") == res["old"][:2], res
        # configuration files: missing, unparsable, a relative socket; nothing printed
        conf = os.path.join(d, "agent.conf")
        assert_refused(both(*args, config=conf), what="no config")
        for text in ("socket = %s\nthis is not a setting\n" % sock,
                     "socket = %s\nsocket = %s\n" % (sock, sock), "socket = agent.sock\n",
                     "socket = /%s\n" % ("s" * 200), "\x00socket = %s\n" % sock):
            with open(conf, "w") as f:
                f.write(text)
            assert_refused(both(*args, config=conf), what=text)
        # a secret pasted into the wrong place is not repeated (sshd logs what the helper says)
        secret = "ABCDEF0123456789ABCDEF0123456789"
        for text in ("socket = %s\n%s = x\n" % (sock, secret), "%s\n" % secret,
                     "socket = %s\nx = 1\nx = %s\n" % (sock, secret)):
            with open(conf, "w") as f:
                f.write(text)
            res = both(*args, config=conf)
            assert_refused(res, what=text)
            for kind, (_, _, err) in res.items():
                assert secret not in err and "%s:" % conf in err, (kind, text, err)
        with open(conf, "w") as f:
            f.write("# ok\nurl = https://127.0.0.1:1\nsocket = %s\n" % sock)
        res = both(*args, config=conf)
        assert res["new"][:2] == (0, "restrict alice\n") == res["old"][:2], res
    finally:
        h.close()
