# SPDX-License-Identifier: BSD-2-Clause
"""Web Push (docs/API.md "Web Push"): a real portcullisd sends RFC 8291-encrypted, VAPID-signed
notices to a loopback push receiver this test owns (HTTPS with a test CA that the test build
trusts through PC_TEST_WEBPUSH_CA). The test decrypts each body with the subscription's own
private key and auth secret, verifies the VAPID JWT with the served public key, and checks
that 404/410 remove a subscription, that a hanging receiver never holds up a login, that a
full queue drops (and logs) without blocking, and /v1/webpush for every kind of caller and
hostile input."""
import base64
import datetime
import http.server
import ipaddress
import json
import os
import secrets
import shutil
import ssl
import struct
import subprocess
import tempfile
import threading
import time

import harness
import test_ca
from harness import Daemon

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    from cryptography.x509.oid import NameOID
except ImportError:  # pragma: no cover - python3-cryptography is in scripts/install-deps.sh
    x509 = None

D = None
RECV = None
HOST = None
TMP = None
GARBAGE = "f" * 64


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# ---- the push receiver: HTTPS on loopback with a certificate from a test CA ---------------------

def make_ca_and_cert(d):
    """A test CA (its PEM written to d/ca.pem) and a server certificate for 127.0.0.1."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "webpush test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = {n: os.path.join(d, n) for n in ("ca.pem", "cert.pem", "key.pem")}
    with open(paths["ca.pem"], "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(paths["cert.pem"], "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(paths["key.pem"], "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return paths


class _Handler(http.server.BaseHTTPRequestHandler):
    """/ok/… → 201, /gone/… → 410, /missing/… → 404, /fail/… → 500,
    /hang/… → holds the request (until the receiver is released or 8 s) and then 201."""

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if 0 <= n <= 65536 else b""
        rec = {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
               "body": body, "done": threading.Event()}
        with RECV.lock:
            RECV.requests.append(rec)
        kind = self.path.split("/")[1]
        try:
            if kind == "hang":
                RECV.release.wait(8)
            status = {"ok": 201, "gone": 410, "missing": 404, "fail": 500}.get(kind, 201)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
        except OSError:
            pass
        finally:
            rec["done"].set()

    def log_message(self, *a):
        pass


class Receiver:
    def __init__(self, d):
        self.lock = threading.Lock()
        self.requests = []
        self.release = threading.Event()
        self.paths = make_ca_and_cert(d)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.paths["cert.pem"], self.paths["key.pem"])
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def endpoint(self, kind):
        return "https://127.0.0.1:%d/%s/%s" % (self.port, kind, secrets.token_urlsafe(24))

    def to(self, endpoint, timeout=15):
        path = endpoint.split(str(self.port), 1)[1]

        def look():
            with self.lock:
                got = [r for r in self.requests if r["path"] == path]
            return got or None
        return harness.wait_until(look, timeout=timeout, what="a POST to %s" % path)

    def count(self, endpoint):
        path = endpoint.split(str(self.port), 1)[1]
        with self.lock:
            return len([r for r in self.requests if r["path"] == path])

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


class Subscription:
    """What a browser makes: a P-256 key pair and a 16-byte auth secret, for one endpoint."""

    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.pub = self.key.public_key().public_bytes(serialization.Encoding.X962,
                                                      serialization.PublicFormat.UncompressedPoint)
        self.auth = secrets.token_bytes(16)

    def json(self):
        return {"endpoint": self.endpoint, "keys": {"p256dh": b64u(self.pub),
                                                    "auth": b64u(self.auth)}}

    def decrypt(self, body):
        """RFC 8291 / RFC 8188 aes128gcm, the user agent's side, written from the RFCs."""
        salt, rs, idlen = body[:16], struct.unpack(">I", body[16:20])[0], body[20]
        assert idlen == 65 and rs == 4096, (idlen, rs)
        as_pub, ct = body[21:21 + idlen], body[21 + idlen:]
        assert len(ct) <= rs, "more than one record"
        peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), as_pub)
        secret = self.key.exchange(ec.ECDH(), peer)
        ikm = HKDF(hashes.SHA256(), 32, self.auth,
                   b"WebPush: info\0" + self.pub + as_pub).derive(secret)
        cek = HKDF(hashes.SHA256(), 16, salt, b"Content-Encoding: aes128gcm\0").derive(ikm)
        nonce = HKDF(hashes.SHA256(), 12, salt, b"Content-Encoding: nonce\0").derive(ikm)
        rec = AESGCM(cek).decrypt(nonce, ct, None).rstrip(b"\0")
        assert rec.endswith(b"\x02"), "last record delimiter missing"
        return json.loads(rec[:-1])


def verify_vapid(auth_header, vapid_pub_b64, endpoint):
    """Checks "vapid t=JWT, k=KEY" as a push service does; returns the claims."""
    assert auth_header.startswith("vapid t="), auth_header
    t, k = auth_header[len("vapid t="):].split(", k=")
    assert k == vapid_pub_b64, "k= is not the served VAPID key"
    h64, c64, s64 = t.split(".")
    assert json.loads(unb64u(h64)) == {"typ": "JWT", "alg": "ES256"}
    claims = json.loads(unb64u(c64))
    sig = unb64u(s64)
    assert len(sig) == 64
    pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64u(vapid_pub_b64))
    pub.verify(encode_dss_signature(int.from_bytes(sig[:32], "big"),
                                    int.from_bytes(sig[32:], "big")),
               (h64 + "." + c64).encode(), ec.ECDSA(hashes.SHA256()))
    origin = "https://" + endpoint.split("/")[2]
    assert claims["aud"] == origin, (claims, origin)
    now = time.time()
    assert now < claims["exp"] <= now + 86400 + 5, claims
    return claims


# ---- module set-up ---------------------------------------------------------------------------

def setup_module():
    global D, RECV, HOST, TMP
    if x509 is None:
        raise harness.Skip("python3-cryptography not installed")
    if not shutil.which("ssh-keygen"):
        raise harness.Skip("ssh-keygen not installed")
    TMP = tempfile.mkdtemp(prefix="pc-webpush-")
    harness._TMP_ROOTS.append(TMP)
    RECV = Receiver(TMP)
    D = Daemon(args=["--webpush-contact", "mailto:ops@example.net"],
               env={"PC_TEST_WEBPUSH_CA": RECV.paths["ca.pem"]}).start()
    test_ca.D = D
    test_ca.TMP = TMP
    # letters only: a random hex name held the push's two-digit number now and then ("wp-d42189"
    # beside match "42"), and the number-matching check below searches the notice's text for it
    _, HOST = D.enroll_host(hostname="wp-" + "".join(secrets.choice("abcdefghjk")
                                                     for _ in range(6)))


def teardown_module():
    if D:
        D.kill()
    if RECV:
        RECV.close()


def person():
    """A user with push, a policy that lets them log in, and a session from `portcullis login`."""
    p = test_ca.Person()
    test_ca.add_policy(users=[p.name], accounts=["$user"])
    p.session = p.login_ok()["session_token"]
    return p


def subscribe(p, kind="ok", d=None):
    s = Subscription(RECV.endpoint(kind))
    st, b = (d or D).api("POST", "/v1/webpush/subscriptions", s.json(), token=p.session)
    assert st == 201, (st, b)
    assert b["endpoint"] == s.endpoint and isinstance(b["id"], int), b
    s.id = b["id"]
    return s


def vapid_key(d=None):
    st, b = (d or D).api("GET", "/v1/webpush/vapid-public-key")
    assert st == 200, (st, b)
    return b["public_key"]


def listed(p, d=None):
    st, b = (d or D).api("GET", "/v1/webpush/subscriptions", token=p.session)
    assert st == 200, (st, b)
    return {x["id"]: x["endpoint"] for x in b["subscriptions"]}


# ---- delivery --------------------------------------------------------------------------------

def test_push_notice_decrypts_to_the_push_and_vapid_verifies():
    p = person()
    s1, s2 = subscribe(p), subscribe(p)
    other = person()
    s_other = subscribe(other)
    txid, push = D.create_push(HOST, p.name, rhost="192.0.2.7", service="sshd")
    key = vapid_key()
    for s in (s1, s2):
        r = RECV.to(s.endpoint)[0]
        h = r["headers"]
        assert h["content-encoding"] == "aes128gcm", h
        assert h["urgency"] == "high", h
        ttl = int(h["ttl"])
        assert 0 < ttl <= 60, h
        claims = verify_vapid(h["authorization"], key, s.endpoint)
        assert claims["sub"] == "mailto:ops@example.net", claims
        msg = s.decrypt(r["body"])
        assert msg["push_id"] == push["push_id"], msg
        assert msg["rhost"] == "192.0.2.7" and msg["service"] == "sshd", msg
        assert msg["host"] and msg["type"] == "push", msg
        assert "url" not in msg, "no --web-origin: the notice must not name an app URL"
        # number matching: the number is typed from the SSH prompt, never pushed
        assert "match" not in msg and push["match"] not in json.dumps(
            {k: v for k, v in msg.items() if k not in ("push_id", "expires_at", "rhost")}), msg
        # the plaintext never travels: the body is ciphertext only
        assert push["push_id"].encode() not in r["body"]
    # another user's subscription gets nothing for p's push
    time.sleep(1)
    assert RECV.count(s_other.endpoint) == 0
    # the wrong auth secret does not open it
    bad = Subscription(s1.endpoint)
    bad.key, bad.pub = s1.key, s1.pub
    try:
        bad.decrypt(RECV.to(s1.endpoint)[0]["body"])
        raise AssertionError("decrypted with the wrong auth secret")
    except Exception as e:  # cryptography's InvalidTag
        assert "InvalidTag" in type(e).__name__, e


def test_login_push_is_notified_too():
    p = person()
    s = subscribe(p)
    st, st0 = p.start()
    assert st == 200, st0
    sig = test_ca.sshsig(p.priv, base64.b64decode(st0["challenge"]))
    st, b = D.api("POST", "/v1/login/finish", {"login_id": st0["login_id"], "signature": sig,
                                               "push": True})
    assert st == 202 and "push_id" in b, (st, b)
    msg = s.decrypt(RECV.to(s.endpoint)[0]["body"])
    assert msg["push_id"] == b["push_id"] and msg["host"] == "", msg


def test_gone_and_missing_endpoints_are_removed_others_kept():
    p = person()
    gone, missing, fail, ok = (subscribe(p, k) for k in ("gone", "missing", "fail", "ok"))
    assert set(listed(p)) == {gone.id, missing.id, fail.id, ok.id}
    D.create_push(HOST, p.name)
    for s in (gone, missing, fail, ok):
        RECV.to(s.endpoint)
    harness.wait_until(lambda: set(listed(p)) == {fail.id, ok.id}, timeout=10,
                       what="410/404 subscriptions removed")
    log = D.log()
    assert "event=webpush_gone" in log and "event=webpush_failed" in log, log[-2000:]
    # secrets never reach the log: no endpoint path, no key, no auth secret
    for s in (gone, missing, fail, ok):
        path = s.endpoint.split("/", 3)[3]
        assert path not in log, "endpoint path logged"
        assert b64u(s.auth) not in log and b64u(s.pub) not in log
    # the next push reaches only what is left
    D.create_push(HOST, p.name)
    harness.wait_until(lambda: RECV.count(ok.endpoint) == 2, what="second notice")
    assert RECV.count(gone.endpoint) == 1 and RECV.count(missing.endpoint) == 1


def test_hanging_receiver_never_holds_up_a_login():
    p = person()
    s = subscribe(p, "hang")
    RECV.release.clear()
    try:
        _, first = D.create_push(HOST, p.name)
        held = RECV.to(s.endpoint)[0]
        assert not held["done"].is_set()
        # while the receiver holds the worker's request: logins begin, pushes are created,
        # polled and approved, and that login goes through
        _, second = D.create_push(HOST, p.name)
        st, b = D.poll_push(HOST, second["push_id"])
        assert st == 200 and b["state"] == "pending", (st, b)
        st, b = D.admin("POST", "/v1/approvals/%s/approve" % second["push_id"],
                        {"match": second["match"]})
        assert st == 200, (st, b)
        st, b = D.poll_push(HOST, second["push_id"])
        assert st == 200 and b["state"] == "approved", (st, b)
        D.begin_txid(HOST, p.name)
        assert not held["done"].is_set(), "the receiver let go before the logins were done"
    finally:
        RECV.release.set()
    # the worker goes on: the second notice arrives after the first gives up
    harness.wait_until(lambda: RECV.count(s.endpoint) >= 2, timeout=20, what="second notice")


def test_full_queue_drops_without_blocking():
    d = Daemon(env={"PC_TEST_WEBPUSH_CA": RECV.paths["ca.pem"],
                    "PC_TEST_WEBPUSH_QUEUE": "1"}).start()
    try:
        test_ca.D = d
        p = person()
        s = subscribe(p, "hang", d=d)
        _, host = d.enroll_host(hostname="wpq-" + secrets.token_hex(3))
        RECV.release.clear()
        _, first = d.create_push(host, p.name)
        held = RECV.to(s.endpoint)[0]          # the worker is busy with the first
        _, second = d.create_push(host, p.name)  # queued (the queue holds 1)
        _, third = d.create_push(host, p.name)   # dropped
        assert not held["done"].is_set(), "the receiver let go before the pushes were created"
        harness.wait_until(lambda: "event=webpush_dropped" in d.log(), what="drop logged")
        log = d.log()
        assert "push_id=%s" % third["push_id"] in log, log[-2000:]
        assert "push_id=%s" % second["push_id"] not in [
            line.split("webpush_dropped", 1)[1] for line in log.splitlines()
            if "webpush_dropped" in line][0], "the queued push was dropped"
        st, info = d.admin("GET", "/v1/info")
        assert st == 200 and info["webpush_dropped"] == 1, (st, info)
        RECV.release.set()
        harness.wait_until(lambda: RECV.count(s.endpoint) >= 2, timeout=20, what="second notice")
        got = [s.decrypt(r["body"])["push_id"] for r in RECV.to(s.endpoint)]
        assert second["push_id"] in got and third["push_id"] not in got, got
    finally:
        RECV.release.set()
        test_ca.D = D
        d.kill()


def test_vapid_key_is_sealed_and_survives_a_restart():
    key = vapid_key()
    st, info = D.admin("GET", "/v1/info")
    assert st == 200 and info["webpush_dropped"] == 0, (st, info)
    assert len(unb64u(key)) == 65 and unb64u(key)[0] == 4, key
    st, b = D.api("GET", "/v1/webpush/vapid-public-key", token=GARBAGE)
    assert st == 200 and b["public_key"] == key
    # the private scalar is not in the database in the clear
    sealed, pub = harness.db_query(D, "SELECT sealed, public_key FROM webpush_vapid")[0]
    assert pub == key and len(sealed) == 32 + 29, len(sealed)
    D.restart(env={"PC_TEST_WEBPUSH_CA": RECV.paths["ca.pem"]},
              args=["--webpush-contact", "mailto:ops@example.net"])
    assert vapid_key() == key, "the VAPID key changed across a restart"


def test_wrong_master_key_refuses_to_start():
    d = Daemon().start()
    try:
        d.stop()
        path = d.path("master.key")
        with open(path, "wb") as f:
            f.write(secrets.token_bytes(32))
        os.chmod(path, 0o600)
        try:
            d.start()
            raise AssertionError("started with a master key that does not open the VAPID key")
        except AssertionError as e:
            if harness.is_pg():  # the server secrets are checked first (cp_secrets.h)
                assert path in str(e) and "master key" in str(e), e
            else:
                assert "VAPID" in str(e) or "Web Push" in str(e), e
    finally:
        d.kill()


def test_webpush_contact_is_checked():
    for bad in ("ops@example.net", "mailto:a b@x", 'mailto:a"b@x', "http://example.net",
                "https://" + "a" * 300):
        r = subprocess.run([harness.DAEMON_BIN, "--webpush-contact", bad, "--data-dir",
                            os.path.join(TMP, "never")], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 2 and "--webpush-contact" in r.stderr, (bad, r.returncode, r.stderr)
    r = subprocess.run([harness.DAEMON_BIN, "--help"], capture_output=True, text=True, timeout=30)
    assert "--webpush-contact" in r.stdout + r.stderr


# ---- /v1/webpush for every kind of caller ------------------------------------------------------

def test_callers_of_the_subscription_endpoints():
    p, other = person(), person()
    s = Subscription(RECV.endpoint("ok"))
    admin = D.admin_token
    for token, want in ((None, 401), (GARBAGE, 401), (HOST, 403), (admin, 403)):
        st, b = D.api("POST", "/v1/webpush/subscriptions", s.json(), token=token)
        assert st == want, ("POST", token, st, b)
        st, b = D.api("GET", "/v1/webpush/subscriptions", token=token)
        assert st == want, ("GET", token, st, b)
        st, b = D.api("DELETE", "/v1/webpush/subscriptions/1", token=token)
        assert st == want, ("DELETE", token, st, b)
    assert listed(p) == {}
    mine = subscribe(p)
    theirs = subscribe(other)
    assert listed(p) == {mine.id: mine.endpoint}
    assert listed(other) == {theirs.id: theirs.endpoint}
    # another user's session can neither see nor delete p's subscription
    st, b = D.api("DELETE", "/v1/webpush/subscriptions/%d" % mine.id, token=other.session)
    assert st == 404, (st, b)
    assert mine.id in listed(p)
    # the same endpoint again updates the keys, it does not add a row
    again = Subscription(mine.endpoint)
    st, b = D.api("POST", "/v1/webpush/subscriptions",
                  dict(again.json(), expirationTime=None), token=p.session)
    assert st == 201 and b["id"] == mine.id, (st, b)
    D.create_push(HOST, p.name)
    assert again.decrypt(RECV.to(mine.endpoint)[0]["body"])["type"] == "push"
    # own session deletes; a second delete is 404
    st, b = D.api("DELETE", "/v1/webpush/subscriptions/%d" % mine.id, token=p.session)
    assert st == 200 and b["deleted"] == mine.id, (st, b)
    st, b = D.api("DELETE", "/v1/webpush/subscriptions/%d" % mine.id, token=p.session)
    assert st == 404, (st, b)
    for bad in ("0", "-1", "x", "9" * 30):
        st, b = D.api("DELETE", "/v1/webpush/subscriptions/" + bad, token=p.session)
        assert st == 404, (bad, st, b)
    actions = [r["action"] for r in D.audit(user=p.name)]
    assert "webpush.subscribe" in actions and "webpush.unsubscribe" in actions, actions
    # the vapid key: anyone
    key = vapid_key()
    for token in (None, GARBAGE, HOST, admin, p.session):
        st, b = D.api("GET", "/v1/webpush/vapid-public-key", token=token)
        assert st == 200 and b["public_key"] == key, (token, st, b)


def hostile_subscriptions(s, port):
    """(body, the field its 400 names) for Subscription s; port: the receiver's (tests/webapp
    posts the same bodies to the web app's endpoint)."""
    good = s.json()
    off_curve = bytearray(s.pub)
    off_curve[64] ^= 1

    def body(**kw):
        b = json.loads(json.dumps(good))
        keys = kw.pop("keys", None)
        if keys:
            b["keys"].update(keys)
        b.update(kw)
        return b

    cases = [
        (body(endpoint="http://127.0.0.1:%d/ok/x" % port), "endpoint"),
        (body(endpoint="ftp://127.0.0.1/x"), "endpoint"),
        (body(endpoint="file:///etc/passwd"), "endpoint"),
        (body(endpoint="https://user:pw@127.0.0.1/x"), "endpoint"),
        (body(endpoint="https://127.0.0.1:99999/x"), "endpoint"),
        (body(endpoint="https://127.0.0.1/x#frag"), "endpoint"),
        (body(endpoint="https://h/" + "a" * 2100), "endpoint"),
        (body(endpoint="https://127.0.0.1/x y"), "endpoint"),
        (body(endpoint=""), "endpoint"),
        (body(keys={"p256dh": "not base64!"}), "p256dh"),
        (body(keys={"p256dh": b64u(s.pub[:33])}), "p256dh"),
        (body(keys={"p256dh": b64u(bytes(off_curve))}), "p256dh"),
        (body(keys={"p256dh": b64u(b"\x04" + bytes(64))}), "p256dh"),
        (body(keys={"p256dh": "A" * 5000}), "p256dh"),
        (body(keys={"auth": b64u(b"short")}), "auth"),
        (body(keys={"auth": b64u(bytes(17))}), "auth"),
        (body(keys={"auth": "%%%"}), "auth"),
        (body(keys={"auth": 16}), "auth"),
        (body(endpoint=None), "endpoint"),
        (body(extra="x"), "extra"),
        (body(keys={"other": "x"}), "other"),
        (dict(endpoint=good["endpoint"]), "keys"),
        (body(keys=None, endpoint=good["endpoint"]) | {"keys": "x"}, "keys"),
    ]
    return cases


def test_hostile_subscriptions_refused():
    p = person()
    s = Subscription(RECV.endpoint("ok"))
    cases = hostile_subscriptions(s, RECV.port)
    for b, field in cases:
        st, r = D.api("POST", "/v1/webpush/subscriptions", b, token=p.session)
        assert st == 400, (b, st, r)
        assert field in r.get("message", ""), (field, r)
    st, r = D.api("POST", "/v1/webpush/subscriptions", raw=b"{not json", token=p.session)
    assert st == 400, (st, r)
    st, r = D.api("POST", "/v1/webpush/subscriptions", raw=b"x" * 70000, token=p.session)
    assert st == 413, (st, r)
    assert listed(p) == {}, "a refused subscription was stored"
    # at most 10 per user
    for _ in range(10):
        subscribe(p)
    st, r = D.api("POST", "/v1/webpush/subscriptions",
                  Subscription(RECV.endpoint("ok")).json(), token=p.session)
    assert st == 409 and r["error"] == "too_many", (st, r)
    assert len(listed(p)) == 10


def test_deleted_user_loses_subscriptions():
    p = person()
    s = subscribe(p)
    st, b = D.admin("DELETE", "/v1/users/%s" % p.name)
    assert st in (200, 204), (st, b)
    n = harness.db_query(D, "SELECT COUNT(*) FROM webpush_subscriptions WHERE endpoint = ?",
                         (s.endpoint,))[0][0]
    assert n == 0, "subscription outlived its user"


def test_internal_addresses_are_never_contacted():
    """Any session may add a subscription: without the test build's receiver CA (which lets
    loopback through) an endpoint on loopback, or a name that resolves to it, is never
    contacted, and the refusal is logged."""
    d = Daemon().start()
    try:
        test_ca.D = d
        p = person()
        _, host = d.enroll_host(hostname="wpi-" + secrets.token_hex(3))
        direct = subscribe(p, d=d)
        by_name = Subscription("https://localhost:%d/ok/%s" % (RECV.port, secrets.token_hex(8)))
        st, b = d.api("POST", "/v1/webpush/subscriptions", by_name.json(), token=p.session)
        assert st == 201, (st, b)
        d.create_push(host, p.name)
        harness.wait_until(lambda: d.log().count("internal address") >= 2,
                           what="both refusals logged")
        time.sleep(0.5)
        assert RECV.count(direct.endpoint) == 0
        with RECV.lock:
            assert not [r for r in RECV.requests if by_name.endpoint.split("/", 3)[3] in r["path"]]
        assert len(listed(p, d=d)) == 2, "a refused endpoint is not a gone one"
    finally:
        test_ca.D = D
        d.kill()
