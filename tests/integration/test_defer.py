# SPDX-License-Identifier: BSD-2-Clause
"""Login requests that wait for the store run off their libmicrohttpd worker (cp_defer.h): the
worker serves its other connections meanwhile; a client that hangs up while its request waits,
and a shutdown while requests wait, are handled. auth/begin and auth/totp are held by the worker
and answered by the store's writer (cp_defer_hold, api_auth.c), and so are login/start and
login/finish (api_login.c); auth/push runs on cp_defer's pool: both ways are shown. With one worker (--threads 1) and the
store's write lock held from outside (harness.hold_write_lock), so the login cannot finish
until the test lets it."""
import json
import signal
import socket
import threading
import time

import harness
from harness import Daemon

TEST_TIMEOUT = 180


def _one_worker():
    d = Daemon(args=["--threads", "1"]).start()
    _, host = d.enroll_host()
    user, secret = d.user_with_totp()
    return d, host, user, secret


def _in_thread(fn):
    out = {}

    def run():
        try:
            out["reply"] = fn()
        except Exception as e:  # noqa: BLE001 - reported by the test's assertion
            out["error"] = repr(e)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def _wait_queued(t, seconds=1.0):
    """Gives the request time to reach the store's queue; it must still be waiting then."""
    time.sleep(seconds)
    assert t.is_alive(), "the login did not wait for the held write lock"


def test_a_login_waiting_for_the_store_leaves_its_worker_free():
    d, host, user, secret = _one_worker()
    try:
        with harness.hold_write_lock(d):
            t, out = _in_thread(lambda: d.begin(host, user))
            _wait_queued(t)
            # The only worker answers another connection while the begin waits: before, it sat in
            # the begin's handler and this request waited for the lock too (then both failed).
            st, b = d.api("GET", "/v1/health")
            assert st == 200, (st, b)
            st, b = d.admin("GET", "/v1/users/%s" % user)
            assert st == 200 and b["name"] == user, (st, b)
            assert t.is_alive(), "the begin finished while the write lock was held: %r" % out
        t.join(30)
        st, b = out.get("reply", (None, out))
        assert st == 200 and b["action"] == "challenge", (st, b)
        # the code's verification waits the same way, and its answer is the usual one
        with harness.hold_write_lock(d):
            t, out = _in_thread(lambda: d.submit_totp(host, b["txid"], harness.totp_code(secret)))
            _wait_queued(t)
            st, h = d.api("GET", "/v1/health")
            assert st == 200 and t.is_alive(), (st, h, out)
        t.join(30)
        st, r = out.get("reply", (None, out))
        assert st == 200 and r["result"] == "allow", (st, r)
        assert [x["action"] for x in d.audit(user=user)][-2:] in (
            ["auth.begin", "auth.totp"], ["auth.totp", "auth.begin"]), d.audit(user=user)
    finally:
        d.kill()


def test_a_push_waiting_for_the_store_leaves_its_worker_free():
    """auth/push runs on cp_defer's pool (not held for the writer as begin and totp are): the
    only worker answers others while it waits, and its answer is the usual one."""
    d, host, _, _ = _one_worker()
    try:
        user, _ = d.user_with_totp(push=True)
        txid = d.begin_txid(host, user)
        with harness.hold_write_lock(d):
            t, out = _in_thread(lambda: d.api("POST", "/v1/auth/push", {"txid": txid},
                                              token=host))
            _wait_queued(t)
            st, b = d.api("GET", "/v1/health")
            assert st == 200, (st, b)
            assert t.is_alive(), "the push finished while the write lock was held: %r" % out
        t.join(30)
        st, b = out.get("reply", (None, out))
        assert st == 200 and b.get("push_id") and b.get("match"), (st, b)
    finally:
        d.kill()


def test_a_certificate_login_waiting_for_the_store_leaves_its_worker_free():
    """login/start and login/finish (answered by the writer, their signature checked by the
    worker before the write): the only worker answers others while each waits, and the answers
    are the usual ones: a challenge, then a certificate; a wrong signature is refused the same
    way and ends the login."""
    import base64
    import tempfile
    import test_ca
    d, _, _, _ = _one_worker()
    test_ca.D, test_ca.TMP = d, tempfile.mkdtemp(prefix="pc-defer-")
    harness._TMP_ROOTS.append(test_ca.TMP)
    try:
        p = test_ca.Person()
        test_ca.add_policy(users=[p.name], accounts=["$user"])
        other_priv, _ = test_ca.keygen()
        for priv, want in ((other_priv, 401), (p.priv, 200)):
            with harness.hold_write_lock(d):
                t, out = _in_thread(p.start)
                _wait_queued(t)
                st, b = d.api("GET", "/v1/health")
                assert st == 200 and t.is_alive(), (st, b, out)
            t.join(30)
            st, s = out.get("reply", (None, out))
            assert st == 200 and s.get("challenge"), (st, s)
            sig = test_ca.sshsig(priv, base64.b64decode(s["challenge"]))
            body = {"login_id": s["login_id"], "signature": sig,
                    "code": harness.totp_code(p.secret)}
            with harness.hold_write_lock(d):
                t, out = _in_thread(lambda: d.api("POST", "/v1/login/finish", body))
                _wait_queued(t)
                st, b = d.api("GET", "/v1/health")
                assert st == 200 and t.is_alive(), (st, b, out)
            t.join(30)
            st, b = out.get("reply", (None, out))
            assert st == want, (st, b)
            if want == 200:
                assert b["certificate"].startswith("ssh-ed25519-cert-v01@openssh.com "), b
            else:
                assert b.get("reason") == "wrong_key", b
                st, b = d.api("GET", "/v1/login/%s" % s["login_id"])
                assert st == 200 and b["state"] == "denied", (st, b)
        # an unknown login is answered without the write lock
        with harness.hold_write_lock(d):
            st, b = d.api("POST", "/v1/login/finish", {"login_id": "0" * 32, "signature": "x",
                                                        "code": "123456"})
            assert st == 404, (st, b)
    finally:
        d.kill()


def test_client_gone_while_its_login_waits():
    """The client hangs up while its begin waits for the store: the begin still runs (its
    transaction is written), the reply goes nowhere, and the daemon serves on."""
    d, host, user, _ = _one_worker()
    try:
        body = json.dumps({"user": user, "rhost": "127.0.0.1"}).encode()
        with harness.hold_write_lock(d):
            s = d.ssl_context().wrap_socket(socket.create_connection(("127.0.0.1", d.port)),
                                            server_hostname="127.0.0.1")
            s.sendall(b"POST /v1/auth/begin HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Authorization: Bearer " + host.encode() + b"\r\n"
                      b"Content-Type: application/json\r\nContent-Length: " +
                      str(len(body)).encode() + b"\r\n\r\n" + body)
            time.sleep(1.0)
            s.close()
            time.sleep(0.5)
        harness.wait_until(lambda: "auth.begin" in [x["action"] for x in d.audit(user=user)],
                           timeout=30, what="the begin of the client that hung up")
        assert d.alive()
        st, b = d.begin(host, user)
        assert st == 200 and b["action"] == "challenge", (st, b)
    finally:
        d.kill()


def test_shutdown_while_a_login_waits():
    """SIGTERM while a begin waits for the store: the daemon waits for it (it does not exit
    while the lock is held), then exits 0 (libmicrohttpd must find no connection suspended at
    its stop, or it aborts). The reply itself may be cut by the stop: the client then retries
    on another instance, as after any restart."""
    d, host, user, _ = _one_worker()
    try:
        lock = harness.hold_write_lock(d)
        lock.__enter__()
        try:
            t, out = _in_thread(lambda: d.begin(host, user))
            _wait_queued(t)
            d.proc.send_signal(signal.SIGTERM)
            time.sleep(1.0)
            assert d.alive(), "portcullisd exited with a login waiting"
        finally:
            lock.__exit__(None, None, None)
        assert d.stop(timeout=30) == 0
        t.join(30)
        if "reply" in out:
            st, b = out["reply"]
            assert st == 200 and b["action"] == "challenge", (st, b)
    finally:
        d.kill()
