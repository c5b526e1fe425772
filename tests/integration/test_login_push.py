# SPDX-License-Identifier: BSD-2-Clause
"""`portcullis login` with a push approval instead of a TOTP code (docs/API-CA.md, "User login
→ certificate"): POST /v1/login/finish {"push":true} → 202 {push_id, match, expires_at}; the
approver enters the match number; GET /v1/login/ID?wait=N delivers the certificate and the
session exactly once. Checked against the real ssh-keygen and the real CLI."""
import base64
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time

import harness
from harness import Daemon, run_cli

D = None
TMP = None


def setup_module():
    global D, TMP
    if not shutil.which("ssh-keygen"):
        raise harness.Skip("ssh-keygen not installed")
    D = Daemon().start()
    TMP = tempfile.mkdtemp(prefix="pc-lpush-")
    harness._TMP_ROOTS.append(TMP)


def teardown_module():
    if D:
        D.kill()


# ---- helpers (small copies of test_ca's) -------------------------------------------------------

def keygen():
    d = tempfile.mkdtemp(dir=TMP)
    path = os.path.join(d, "id_ed25519")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "t@example", "-f", path],
                   check=True, stdin=subprocess.DEVNULL)
    with open(path + ".pub") as f:
        return path, f.read().strip()


def sshsig(priv, data):
    d = tempfile.mkdtemp(dir=TMP)
    p = os.path.join(d, "msg")
    with open(p, "wb") as f:
        f.write(data)
    subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-n", "portcullis-login", "-f", priv, p],
                   check=True, stdin=subprocess.DEVNULL, capture_output=True)
    with open(p + ".sig") as f:
        return f.read()


def keygen_L(text):
    p = os.path.join(tempfile.mkdtemp(dir=TMP), "x-cert.pub")
    with open(p, "w") as f:
        f.write(text.strip() + "\n")
    r = subprocess.run(["ssh-keygen", "-L", "-f", p], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


class Person:
    """A user with a registered key, a policy that lets them log in, and (optionally) TOTP."""

    def __init__(self, d, push=True, policy=True):
        self.d = d
        self.name = d.create_user(push=push)
        self.secret, _ = d.enroll_totp(self.name)
        self.priv, self.pub = keygen()
        st, b = d.admin("POST", "/v1/users/%s/keys" % self.name, {"public_key": self.pub})
        assert st == 201, (st, b)
        if policy:
            body = {"name": "p-" + secrets.token_hex(4), "users": [self.name], "accounts": ["$user"]}
            st, b = d.admin("POST", "/v1/policies", body)
            assert st == 201, (st, b)

    def push_login(self):
        """start + finish with push; returns (login_id, status, body)."""
        st, s = self.d.api("POST", "/v1/login/start", {"user": self.name, "public_key": self.pub})
        assert st == 200, (st, s)
        sig = sshsig(self.priv, base64.b64decode(s["challenge"]))
        st, b = self.d.api("POST", "/v1/login/finish",
                           {"login_id": s["login_id"], "signature": sig, "push": True})
        return s["login_id"], st, b

    def push_ok(self):
        lid, st, b = self.push_login()
        assert st == 202, (st, b)
        assert set(b) == {"push_id", "match", "expires_at"}, b
        assert re.fullmatch(r"[1-9][0-9]", b["match"]) and re.fullmatch(r"[0-9a-f]{32}", b["push_id"]), b
        return lid, b


def poll(d, lid, wait=0):
    st, b = d.api("GET", "/v1/login/%s?wait=%d" % (lid, wait), timeout=wait + 10)
    assert st == 200, (st, b)
    return b


def approve(d, push_id, match, token=None):
    if token:
        return d.api("POST", "/v1/approvals/%s/approve" % push_id, {"match": match}, token=token)
    return d.admin("POST", "/v1/approvals/%s/approve" % push_id, {"match": match})


def check_cert(b, name):
    listing = keygen_L(b["certificate"])
    assert re.search(r'Key ID: "%s"' % re.escape(name), listing), listing
    assert re.search(r"Serial: %d\b" % b["serial"], listing), listing
    assert re.fullmatch(r"[0-9a-f]{64}", b["session_token"]), b
    st, s = D.api("GET", "/v1/session", token=b["session_token"])
    assert st == 200 and s["user"] == name, (st, s)


# ---- tests ----------------------------------------------------------------------------------------

def test_start_offers_push_only_to_push_users():
    p, q = Person(D), Person(D, push=False)
    st, s = D.api("POST", "/v1/login/start", {"user": p.name, "public_key": p.pub})
    assert st == 200 and s["factors"] == ["totp", "push"], s
    st, s = D.api("POST", "/v1/login/start", {"user": q.name, "public_key": q.pub})
    assert st == 200 and s["factors"] == ["totp"], s
    # push refused for a user without push; the login stays open for a code
    lid, st, b = q.push_login()
    assert st == 401 and b.get("reason") == "no_push", (st, b)
    assert poll(D, lid)["state"] == "pending"


def test_push_approved_delivers_certificate_once():
    p = Person(D)
    lid, push = p.push_ok()
    b = poll(D, lid)
    assert b["state"] == "pending" and "certificate" not in b, b
    # the push is listed for approvers, without the match number
    st, a = D.admin("GET", "/v1/approvals")
    mine = [x for x in a["approvals"] if x["push_id"] == push["push_id"]]
    assert len(mine) == 1 and mine[0]["user"] == p.name and "match" not in mine[0], a
    assert mine[0]["service"] == "portcullis-login", mine
    # a second finish on the same login does not send a second push
    st, s = D.api("POST", "/v1/login/finish", {"login_id": lid, "signature": "x", "push": True})
    assert st == 410 and s["error"] == "gone", (st, s)
    st, r = approve(D, push["push_id"], push["match"])
    assert st == 200 and r["state"] == "approved", (st, r)
    b = poll(D, lid)
    assert b["state"] == "approved", b
    check_cert(b, p.name)
    # exactly once: afterwards "done", no certificate, no session
    for _ in range(2):
        b2 = poll(D, lid)
        assert b2["state"] == "done" and "certificate" not in b2 and "session_token" not in b2, b2
    st, certs = D.admin("GET", "/v1/certs?user=%s" % p.name)
    assert st == 200 and len(certs["certs"]) == 1, certs
    # audit: start, push.create, push.approve, cert.issue, login.finish allow — all on the login id
    rows = [r for r in D.audit(user=p.name) if r.get("txid") == lid or r["action"] == "cert.issue"]
    acts = [(r["action"], r["result"]) for r in rows]
    for want in [("login.start", "ok"), ("push.create", "pending"), ("push.approve", "allow"),
                 ("cert.issue", "ok"), ("login.finish", "allow")]:
        assert want in acts, (want, acts)
    fin = [r for r in rows if r["action"] == "login.finish"]
    assert len(fin) == 1 and fin[0]["reason"] == "push_approved", fin
    create = [r for r in rows if r["action"] == "push.create"][0]
    assert create["actor"] == "user:%s" % p.name, create


def test_long_poll_wakes_on_approval():
    p = Person(D)
    lid, push = p.push_ok()
    out = {}

    def waiter():
        t0 = time.time()
        out["b"] = poll(D, lid, wait=20)
        out["t"] = time.time() - t0
    th = threading.Thread(target=waiter)
    th.start()
    time.sleep(0.8)
    assert th.is_alive(), out
    approve(D, push["push_id"], push["match"])
    th.join(15)
    assert out["b"]["state"] == "approved" and out["t"] < 10, out
    check_cert(out["b"], p.name)
    # a short wait on a pending login answers pending after the wait
    lid2, _ = p.push_ok()
    t0 = time.time()
    assert poll(D, lid2, wait=1)["state"] == "pending" and time.time() - t0 >= 0.9
    assert D.api("GET", "/v1/login/%s?wait=100000" % lid2)[0] == 400


def test_concurrent_polls_deliver_once():
    p = Person(D)
    lid, push = p.push_ok()
    results = []

    def waiter():
        results.append(poll(D, lid, wait=15))
    threads = [threading.Thread(target=waiter) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    approve(D, push["push_id"], push["match"])
    for t in threads:
        t.join(20)
    assert len(results) == 4, results
    assert sorted(r["state"] for r in results) == ["approved", "done", "done", "done"], results
    assert sum(1 for r in results if "certificate" in r) == 1, results
    assert len(D.admin("GET", "/v1/certs?user=%s" % p.name)[1]["certs"]) == 1


def test_wrong_number_denies_without_certificate():
    p = Person(D)
    lid, push = p.push_ok()
    st, r = approve(D, push["push_id"], harness.wrong_match(push["match"]))
    assert st == 200 and r["state"] == "denied", (st, r)
    for _ in range(2):
        b = poll(D, lid)
        assert b["state"] == "denied" and "certificate" not in b, b
    assert D.admin("GET", "/v1/certs?user=%s" % p.name)[1]["certs"] == []
    acts = [(r["action"], r["result"], r["reason"]) for r in D.audit(user=p.name)]
    assert ("push.deny", "deny", "wrong_match") in acts, acts
    assert ("login.finish", "deny", "push_denied") in acts, acts
    # the finished login is gone for finish too
    st, b = D.api("POST", "/v1/login/finish", {"login_id": lid, "signature": "x", "push": True})
    assert st == 410, (st, b)


def test_explicit_deny():
    p = Person(D)
    lid, push = p.push_ok()
    st, r = D.admin("POST", "/v1/approvals/%s/deny" % push["push_id"], {})
    assert st == 200 and r["state"] == "denied", (st, r)
    assert poll(D, lid, wait=5)["state"] == "denied"


def test_expired_push():
    d = Daemon(args=["--push-ttl", "2s"]).start()
    try:
        p = Person(d)
        lid, push = p.push_ok()
        assert push["expires_at"] - time.time() <= 3, push
        t0 = time.time()
        st, b = d.api("GET", "/v1/login/%s?wait=20" % lid, timeout=30)
        assert st == 200 and b["state"] == "expired" and "certificate" not in b, (st, b)
        assert time.time() - t0 < 10
        # approving after expiry is refused and delivers nothing
        st, r = approve(d, push["push_id"], push["match"])
        assert st == 409, (st, r)
        harness.wait_until(lambda: poll(d, lid)["state"] == "expired", what="expired state")
        b = poll(d, lid)
        assert b["state"] == "expired" and "certificate" not in b, b
        acts = [(r["action"], r["reason"]) for r in d.audit(user=p.name)]
        assert ("push.expire", "timeout") in acts, acts
        assert ("login.finish", "push_expired") in acts, acts
        assert d.admin("GET", "/v1/certs?user=%s" % p.name)[1]["certs"] == []
    finally:
        d.kill()


def test_own_session_approves_other_session_404():
    p, other = Person(D), Person(D)
    st, b = p.d.api("POST", "/v1/login/start", {"user": other.name, "public_key": other.pub})
    sig = sshsig(other.priv, base64.b64decode(b["challenge"]))
    st, b = D.api("POST", "/v1/login/finish", {"login_id": b["login_id"], "signature": sig,
                                               "code": harness.totp_code(other.secret)})
    assert st == 200, (st, b)
    other_sess = b["session_token"]
    # p's first login by push (approved by admin) gives p a session
    lid, push = p.push_ok()
    approve(D, push["push_id"], push["match"])
    sess = poll(D, lid)["session_token"]
    # the second push login of p: another user's session cannot see or approve it
    lid, push = p.push_ok()
    st, lst = D.api("GET", "/v1/approvals", token=other_sess)
    assert st == 200 and push["push_id"] not in [x["push_id"] for x in lst["approvals"]], lst
    st, r = approve(D, push["push_id"], push["match"], token=other_sess)
    assert st == 404, (st, r)
    assert poll(D, lid)["state"] == "pending"
    # p's own session lists it but may not approve it (a session never renews itself: issue
    # 11); the admin does
    st, lst = D.api("GET", "/v1/approvals", token=sess)
    assert push["push_id"] in [x["push_id"] for x in lst["approvals"]], lst
    st, r = approve(D, push["push_id"], push["match"], token=sess)
    assert st == 403, (st, r)
    assert poll(D, lid)["state"] == "pending"
    rows = [r for r in D.audit(user=p.name) if r["action"] == "push.approve"]
    assert rows[-1]["actor"] == "session:%s" % p.name and rows[-1]["result"] == "deny", rows
    st, r = approve(D, push["push_id"], push["match"])
    assert st == 200 and r["state"] == "approved", (st, r)
    b = poll(D, lid)
    assert b["state"] == "approved", b
    check_cert(b, p.name)


def test_policy_checked_before_push_and_again_at_delivery():
    q = Person(D, policy=False)
    lid, st, b = q.push_login()
    assert st == 403 and b["reason"] == "no_policy", (st, b)
    assert D.admin("GET", "/v1/approvals")[1]["approvals"] == [] or \
        q.name not in [x["user"] for x in D.admin("GET", "/v1/approvals")[1]["approvals"]]
    # revoked between the approval and the delivery: no certificate
    p = Person(D)
    lid, push = p.push_ok()
    approve(D, push["push_id"], push["match"])
    st, r = D.admin("POST", "/v1/certs/revoke", {"key_id": p.name})
    assert st == 200, (st, r)
    b = poll(D, lid)
    assert b["state"] == "denied" and b.get("reason") == "revoked" and "certificate" not in b, b


def test_bad_requests():
    p = Person(D)
    st, s = D.api("POST", "/v1/login/start", {"user": p.name, "public_key": p.pub})
    sig = sshsig(p.priv, base64.b64decode(s["challenge"]))
    st, b = D.api("POST", "/v1/login/finish", {"login_id": s["login_id"], "signature": sig,
                                               "push": True, "code": "123456"})
    assert st == 400 and b["error"] == "bad_field", (st, b)
    # a bad signature with push: 401, the login ends, no push
    st, b = D.api("POST", "/v1/login/finish", {"login_id": s["login_id"], "signature": "x", "push": True})
    assert st == 401 and b["error"] == "unauthorized", (st, b)
    assert poll(D, s["login_id"])["state"] == "denied"
    assert D.api("GET", "/v1/login/%s" % ("0" * 32))[0] == 404
    assert D.api("GET", "/v1/login/xyz")[0] == 404


def test_cli_login_push():
    p = Person(D)
    home = tempfile.mkdtemp(dir=TMP)
    env = {"HOME": home, "XDG_CONFIG_HOME": ""}
    assert run_cli(D, "login", "--user", p.name, "--key", p.priv, "--push", "--code-file", "/x",
                   token_file="", env=env)[0] == 2
    cmd = [harness.CLI_BIN, "--url", D.url, "--pin", D.pin, "login", "--user", p.name, "--key",
           p.priv, "--push"]
    full_env = dict(os.environ)
    full_env.update(env)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=full_env)
    try:
        line = proc.stdout.readline()
        m = re.search(r"enter (\d\d) on your device", line)
        assert m, line
        st, a = D.admin("GET", "/v1/approvals")
        mine = [x for x in a["approvals"] if x["user"] == p.name]
        assert len(mine) == 1, a
        st, r = approve(D, mine[0]["push_id"], m.group(1))
        assert st == 200 and r["state"] == "approved", (st, r)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, (line, out, err)
    with open(p.priv + "-cert.pub") as f:
        listing = keygen_L(f.read())
    assert re.search(r'Key ID: "%s"' % p.name, listing), listing
    sess = os.path.join(home, ".config", "portcullis", "session")
    assert harness.file_mode(sess) == 0o600
    rc, out, err = run_cli(D, "approvals", token_file="", env=env)
    assert rc == 0, (out, err)
    # a denied push through the CLI: exit 1, no new certificate
    os.unlink(p.priv + "-cert.pub")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=full_env)
    try:
        line = proc.stdout.readline()
        m = re.search(r"enter (\d\d) on your device", line)
        assert m, line
        mine = [x for x in D.admin("GET", "/v1/approvals")[1]["approvals"] if x["user"] == p.name]
        approve(D, mine[0]["push_id"], harness.wrong_match(m.group(1)))
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1 and "denied" in err, (out, err)
    assert not os.path.exists(p.priv + "-cert.pub")


# ---- who may approve a `portcullis login --push` (issue 11, finding 2) ----------------------------

def session_of(p):
    """A session of p from a TOTP login."""
    st, s = D.api("POST", "/v1/login/start", {"user": p.name, "public_key": p.pub})
    assert st == 200, (st, s)
    sig = sshsig(p.priv, base64.b64decode(s["challenge"]))
    st, b = D.api("POST", "/v1/login/finish", {"login_id": s["login_id"], "signature": sig,
                                               "code": harness.totp_code(p.secret)})
    assert st == 200, (st, b)
    return b["session_token"]


def test_session_never_approves_its_own_login_push():
    """A session approving its own user's login push would renew itself forever without a
    second factor: refused (403), the login stays pending, and the admin can still approve."""
    p = Person(D)
    sess = session_of(p)
    lid, push = p.push_ok()
    st, r = approve(D, push["push_id"], push["match"], token=sess)
    assert st == 403 and r["error"] == "forbidden", (st, r)
    assert "admin" in r["message"], r
    b = poll(D, lid)
    assert b["state"] == "pending" and "certificate" not in b and "session_token" not in b, b
    n_certs = len(D.admin("GET", "/v1/certs?user=%s" % p.name)[1]["certs"])
    assert n_certs == 1, n_certs  # only the TOTP login's
    # the refusal is audited and the push is untouched
    rows = [r for r in D.audit(user=p.name) if r["action"] == "push.approve"]
    assert rows and rows[-1]["result"] == "deny" and rows[-1]["actor"] == "session:%s" % p.name, rows
    assert rows[-1]["reason"] == "login_push_needs_admin", rows
    # the admin's approval still works and delivers the certificate once
    st, r = approve(D, push["push_id"], push["match"])
    assert st == 200 and r["state"] == "approved", (st, r)
    b = poll(D, lid)
    assert b["state"] == "approved", b
    check_cert(b, p.name)
    assert len(D.admin("GET", "/v1/certs?user=%s" % p.name)[1]["certs"]) == n_certs + 1
    # the new session cannot approve the next login push either
    lid2, push2 = p.push_ok()
    st, r = approve(D, push2["push_id"], push2["match"], token=b["session_token"])
    assert st == 403, (st, r)
    assert poll(D, lid2)["state"] == "pending"
    # denying its own login push stays allowed: it extends nothing
    st, r = D.api("POST", "/v1/approvals/%s/deny" % push2["push_id"], {}, token=sess)
    assert st == 200 and r["state"] == "denied", (st, r)
    assert poll(D, lid2)["state"] == "denied"


def test_approve_login_push_each_caller():
    """POST /v1/approvals/ID/approve on a login push, for every kind of caller: only the admin
    approves; nobody else changes the push."""
    p, other = Person(D), Person(D)
    own, others = session_of(p), session_of(other)
    hid, host_tok = D.enroll_host()
    lid, push = p.push_ok()
    path = "/v1/approvals/%s/approve" % push["push_id"]
    body = {"match": push["match"]}
    for who, tok, want in (("none", None, 401), ("garbage", secrets.token_hex(32), 401),
                           ("garbage-short", "xyz", 401), ("host", host_tok, 403),
                           ("own session", own, 403), ("other user's session", others, 404)):
        st, r = D.api("POST", path, body, token=tok)
        assert st == want, "%s → %s %r (want %s)" % (who, st, r, want)
        assert r["error"] == {401: "unauthorized", 403: "forbidden", 404: "not_found"}[st], (who, r)
        b = poll(D, lid)
        assert b["state"] == "pending" and "certificate" not in b, (who, b)
    # hostile ids and bodies from the own session change nothing either
    for bad_body in ({"match": push["match"], "extra": 1}, {}, {"match": "x" * 100}):
        st, r = D.api("POST", path, bad_body, token=own)
        assert st in (400, 403), (bad_body, st, r)
    assert poll(D, lid)["state"] == "pending"
    st, r = D.admin("POST", path, body)
    assert st == 200 and r["state"] == "approved", (st, r)
    b = poll(D, lid)
    assert b["state"] == "approved", b
    check_cert(b, p.name)


def _set_admin_expiry(d, when):
    n = len(harness.db_query(d, "UPDATE tokens SET expires_at = ? WHERE kind = 'admin' RETURNING 1",
                             (when,)))
    assert n == 1, n


def test_approval_never_outlives_the_approver():
    """Whatever approves a login push, the certificate and the session it yields end no later
    than the approving credential (here an admin token that expires); an approver that expired
    before the certificate was fetched yields nothing."""
    d = Daemon().start()
    try:
        p = Person(d)
        until = int(time.time()) + 120
        _set_admin_expiry(d, until)
        lid, push = p.push_ok()
        st, r = approve(d, push["push_id"], push["match"])
        assert st == 200 and r["state"] == "approved", (st, r)
        b = poll(d, lid)
        assert b["state"] == "approved", b
        assert b["valid_before"] <= until and b["session_expires_at"] <= until, (until, b)
        assert b["valid_before"] >= until - 5, (until, b)
        st, s = d.api("GET", "/v1/session", token=b["session_token"])
        assert st == 200 and s["expires_at"] <= until, (st, s)
        valid = [l for l in keygen_L(b["certificate"]).splitlines() if "Valid:" in l][0]
        to = time.mktime(time.strptime(valid.split(" to ")[1].strip(), "%Y-%m-%dT%H:%M:%S"))
        assert to <= until, (valid, until)
        # the approver expires between the approval and the fetch: denied, nothing issued
        until = int(time.time()) + 3
        _set_admin_expiry(d, until)
        lid, push = p.push_ok()
        st, r = approve(d, push["push_id"], push["match"])
        assert st == 200 and r["state"] == "approved", (st, r)
        harness.wait_until(lambda: time.time() > until + 1, timeout=10, what="approver expiry")
        b = poll(d, lid)
        assert b["state"] == "denied" and "certificate" not in b and "session_token" not in b, b
        assert b.get("reason") == "approver_expired", b
        _set_admin_expiry(d, 0)
        certs = d.admin("GET", "/v1/certs?user=%s" % p.name)[1]["certs"]
        assert len(certs) == 1, certs
    finally:
        d.kill()
