# SPDX-License-Identifier: BSD-2-Clause
"""Push approvals: creation (idempotent), match number, approvals list, approve/deny, final
states, expiry, long-poll, webhook, audit, isolation between hosts."""
import http.server
import json
import re
import threading
import time

import harness
from harness import Daemon

D = None
DTTL = None           # --push-ttl 2s, started on first use
HOST = None
HOSTNAME = "push-host-1"
HOOK = None


class _HookHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        with HOOK.lock:
            HOOK.requests.append({"path": self.path, "headers": dict(self.headers),
                                  "body": body})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *a):
        pass


class _Hook:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HookHandler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def find(self, push_id, timeout=15):
        def look():
            with self.lock:
                for r in self.requests:
                    try:
                        j = json.loads(r["body"])
                    except ValueError:
                        continue
                    if isinstance(j, dict) and j.get("push_id") == push_id:
                        return r, j
            return None
        return harness.wait_until(look, timeout=timeout, what="webhook POST for %s" % push_id)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def setup_module():
    global D, HOST, HOOK
    HOOK = _Hook()
    D = Daemon(args=["--webhook-url", "http://127.0.0.1:%d/hook" % HOOK.port]).start()
    _, HOST = D.enroll_host(hostname=HOSTNAME)


def teardown_module():
    for d in (D, DTTL):
        if d:
            d.kill()
    if HOOK:
        HOOK.close()


def ttl_daemon():
    global DTTL
    if DTTL is None:
        DTTL = Daemon(args=["--push-ttl", "2s"]).start()
        DTTL.host = DTTL.enroll_host()[1]
    return DTTL


def _push_user():
    return D.create_user(push=True)


def _actions(d, user):
    return [r["action"] for r in d.audit(user=user)]


def test_push_create_idempotent_and_match():
    user = _push_user()
    txid = D.begin_txid(HOST, user, rhost="127.0.0.9", service="sshd")
    t0 = time.time()
    st, p1 = D.api("POST", "/v1/auth/push", {"txid": txid}, token=HOST)
    assert st == 200, (st, p1)
    assert re.fullmatch(r"[0-9a-f]{32}", p1["push_id"]), "push_id not 32 hex: %r" % p1
    assert isinstance(p1["match"], str) and re.fullmatch(r"[1-9][0-9]", p1["match"]), \
        "match is not two digits 10-99: %r" % p1["match"]
    assert isinstance(p1["expires_at"], int) and t0 + 30 < p1["expires_at"] <= t0 + 62, \
        "expires_at %r not ~60 s ahead" % p1["expires_at"]
    st, p2 = D.api("POST", "/v1/auth/push", {"txid": txid}, token=HOST)
    assert st == 200, (st, p2)
    assert p2["push_id"] == p1["push_id"] and p2["match"] == p1["match"], (p1, p2)
    st, a = D.admin("GET", "/v1/approvals")
    mine = [x for x in a["approvals"] if x["push_id"] == p1["push_id"]]
    assert len(mine) == 1, "push listed %d times: %r" % (len(mine), a)
    creates = [r for r in D.audit(user=user) if r["action"] == "push.create"]
    assert len(creates) == 1, "idempotent create wrote %d push.create rows" % len(creates)


def test_push_for_user_without_push_refused():
    user = D.create_user(push=False)
    D.enroll_totp(user)
    txid = D.begin_txid(HOST, user)
    st, b = D.api("POST", "/v1/auth/push", {"txid": txid}, token=HOST)
    assert st == 409 and b.get("error") == "conflict", \
        "push for a user with push=false → %s %r (want 409)" % (st, b)
    st, a = D.admin("GET", "/v1/approvals")
    assert not [x for x in a["approvals"] if x["user"] == user], a
    assert not [r for r in D.audit(user=user) if r["action"] == "push.create" and
                r["result"] == "allow"], "a refused push was audited as created"


def test_match_numbers_vary():
    # 2-digit match numbers 10-99 drawn at random: 30 pushes give more than a handful of values
    user = _push_user()
    seen = set()
    for _ in range(30):
        _, p = D.create_push(HOST, user)
        assert 10 <= int(p["match"]) <= 99, p
        seen.add(p["match"])
        D.admin("POST", "/v1/approvals/%s/deny" % p["push_id"], {})
    assert len(seen) >= 8, "match numbers barely vary: %r" % sorted(seen)


def test_info_reports_push_ttl():
    st, b = D.admin("GET", "/v1/info")
    assert st == 200, (st, b)
    assert b.get("push_ttl") == 60, "default push_ttl: %r" % b
    assert b.get("pin") == D.pin and isinstance(b.get("version"), str), b
    d = ttl_daemon()
    st, b = d.admin("GET", "/v1/info")
    assert st == 200 and b.get("push_ttl") == 2, "--push-ttl 2s: /v1/info says %r" % b


def test_approvals_list_hides_match():
    user = _push_user()
    txid, p = D.create_push(HOST, user, rhost="127.0.0.7", service="sshd")
    st, b, _, raw = D.request("GET", "/v1/approvals", token=D.admin_token)
    assert st == 200, (st, b)
    mine = [x for x in b["approvals"] if x["push_id"] == p["push_id"]]
    assert len(mine) == 1, b
    a = mine[0]
    for k in ("push_id", "user", "host", "rhost", "service", "created_at", "expires_at"):
        assert k in a, "approval lacks %s: %r" % (k, a)
    assert a["user"] == user and a["host"] == HOSTNAME, a
    assert a["rhost"] == "127.0.0.7" and a["service"] == "sshd", a
    assert a["expires_at"] == p["expires_at"], a
    assert "match" not in a, "approval shows the match number: %r" % a
    assert b'"match"' not in raw, "approvals reply contains a match field"
    for k, v in a.items():
        assert v != p["match"], "field %s equals the match number" % k
    # and GET /v1/auth/push/{id} (host side) does not reveal it either
    st, s, _, raw = D.request("GET", "/v1/auth/push/%s" % p["push_id"], token=HOST)
    assert st == 200 and s["state"] == "pending" and s["push_id"] == p["push_id"], s
    assert isinstance(s["expires_at"], int), s


def test_approve_right_match():
    user = _push_user()
    D.enroll_totp(user)
    txid, p = D.create_push(HOST, user)
    st, b = D.admin("POST", "/v1/approvals/%s/approve" % p["push_id"], {"match": p["match"]})
    assert st == 200 and b.get("state") == "approved" and b.get("push_id") == p["push_id"], (st, b)
    st, s = D.poll_push(HOST, p["push_id"])
    assert st == 200 and s["state"] == "approved", (st, s)
    st, a = D.admin("GET", "/v1/approvals")
    assert not [x for x in a["approvals"] if x["push_id"] == p["push_id"]], \
        "approved push still pending in the list"
    # the transaction is finished (allowed): no further factor on it
    st, r = D.submit_totp(HOST, txid, "000000")
    assert st == 410 and r.get("error") == "gone", "TOTP on an approved tx → %s %r" % (st, r)
    # final: a second approve or a deny is 409 and the state stays approved
    for path, body in (("approve", {"match": p["match"]}), ("deny", {})):
        st, b = D.admin("POST", "/v1/approvals/%s/%s" % (p["push_id"], path), body)
        assert st == 409 and b.get("error") == "conflict", "%s on approved → %s %r" % (path, st, b)
    st, s = D.poll_push(HOST, p["push_id"])
    assert s["state"] == "approved", s
    rows = [r for r in D.audit(user=user) if r["action"] == "push.approve"]
    assert len(rows) == 1 and rows[0]["txid"] == txid, rows


def test_approve_wrong_match_denies_and_is_final():
    user = _push_user()
    txid, p = D.create_push(HOST, user)
    wrong = harness.wrong_match(p["match"])
    st, b = D.admin("POST", "/v1/approvals/%s/approve" % p["push_id"], {"match": wrong})
    assert st == 200 and b.get("state") == "denied", "wrong match → %s %r" % (st, b)
    st, s = D.poll_push(HOST, p["push_id"])
    assert s["state"] == "denied", s
    st, b = D.admin("POST", "/v1/approvals/%s/approve" % p["push_id"], {"match": p["match"]})
    assert st == 409 and b.get("error") == "conflict", "right match after denial → %s %r" % (st, b)
    st, s = D.poll_push(HOST, p["push_id"])
    assert s["state"] == "denied", "final state changed: %r" % s
    for bad in ("1", "123", "ab", ""):
        st, b = D.admin("POST", "/v1/approvals/%s/approve" % p["push_id"], {"match": bad})
        assert st in (400, 409), "match %r → %s %r" % (bad, st, b)


def test_deny():
    user = _push_user()
    txid, p = D.create_push(HOST, user)
    st, b = D.admin("POST", "/v1/approvals/%s/deny" % p["push_id"], {})
    assert st == 200 and b.get("state") == "denied" and b.get("push_id") == p["push_id"], (st, b)
    st, s = D.poll_push(HOST, p["push_id"])
    assert s["state"] == "denied", s
    st, b = D.admin("POST", "/v1/approvals/%s/approve" % p["push_id"], {"match": p["match"]})
    assert st == 409, (st, b)
    st, b = D.admin("POST", "/v1/approvals/%s/deny" % p["push_id"], {})
    assert st == 409, (st, b)
    acts = _actions(D, user)
    assert "push.create" in acts and "push.deny" in acts, acts
    rows = [r for r in D.audit(user=user) if r["action"] == "push.deny"]
    assert len(rows) == 1 and rows[0]["txid"] == txid, rows


def test_push_audit_actions():
    user = _push_user()
    t1, p1 = D.create_push(HOST, user)
    D.admin("POST", "/v1/approvals/%s/approve" % p1["push_id"], {"match": p1["match"]})
    t2, p2 = D.create_push(HOST, user)
    D.admin("POST", "/v1/approvals/%s/deny" % p2["push_id"], {})
    t3, p3 = D.create_push(HOST, user)
    wrong = harness.wrong_match(p3["match"], 1)
    D.admin("POST", "/v1/approvals/%s/approve" % p3["push_id"], {"match": wrong})
    rows = [r for r in D.audit(user=user) if r["action"].startswith("push.")]
    by_tx = {}
    for r in rows:
        assert r["user"] == user and r["host"] == HOSTNAME, r
        by_tx.setdefault(r["txid"], []).append(r)
    assert [r["action"] for r in by_tx.get(t1, [])] == ["push.create", "push.approve"], by_tx.get(t1)
    assert [r["action"] for r in by_tx.get(t2, [])] == ["push.create", "push.deny"], by_tx.get(t2)
    a3 = by_tx.get(t3, [])
    assert len(a3) == 2 and a3[0]["action"] == "push.create", a3
    ok_row = by_tx[t1][1]
    assert (a3[1]["action"], a3[1]["result"]) != (ok_row["action"], ok_row["result"]), \
        "a wrong-number approve is audited like a successful one: %r vs %r" % (a3[1], ok_row)
    for r in rows:
        assert "match" not in r, r


def test_expiry():
    d = ttl_daemon()
    user = d.create_user(push=True)
    t0 = time.time()
    txid, p = d.create_push(d.host, user)
    assert p["expires_at"] <= t0 + 4, "expires_at %r ignores --push-ttl 2s" % p["expires_at"]
    harness.wait_until(lambda: time.time() > p["expires_at"] + 1.5, timeout=10, what="expiry")
    st, s = d.poll_push(d.host, p["push_id"])
    assert st == 200 and s["state"] == "expired", (st, s)
    st, b = d.admin("POST", "/v1/approvals/%s/approve" % p["push_id"], {"match": p["match"]})
    assert st in (409, 410), "approve after expiry → %s %r" % (st, b)
    st, s = d.poll_push(d.host, p["push_id"])
    assert s["state"] == "expired", s
    st, a = d.admin("GET", "/v1/approvals")
    assert not [x for x in a["approvals"] if x["push_id"] == p["push_id"]], a
    harness.wait_until(lambda: "push.expire" in _actions(d, user), timeout=10,
                       what="push.expire audit row")


def test_expiry_reported_by_longpoll():
    d = ttl_daemon()
    user = d.create_user(push=True)
    _, p = d.create_push(d.host, user)
    t0 = time.time()
    st, s = d.poll_push(d.host, p["push_id"], wait=30)
    assert st == 200 and s["state"] == "expired", "long-poll past expiry → %s %r" % (st, s)
    assert time.time() - t0 < 25, "long-poll did not end at expiry but ran to the wait"


def test_expired_without_poll_leaves_list():
    d = ttl_daemon()
    user = d.create_user(push=True)
    _, p = d.create_push(d.host, user)
    harness.wait_until(lambda: time.time() > p["expires_at"] + 1.5, timeout=10, what="expiry")
    st, a = d.admin("GET", "/v1/approvals")
    assert not [x for x in a["approvals"] if x["push_id"] == p["push_id"]], \
        "expired push still listed as pending: %r" % a


def test_longpoll_returns_on_approval():
    user = _push_user()
    _, p = D.create_push(HOST, user)
    result = {}

    def poll():
        result["start"] = time.time()
        result["reply"] = D.poll_push(HOST, p["push_id"], wait=20)
        result["end"] = time.time()

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    time.sleep(1.0)
    assert "end" not in result, "long-poll returned before the approval: %r" % result.get("reply")
    t_approve = time.time()
    st, b = D.admin("POST", "/v1/approvals/%s/approve" % p["push_id"], {"match": p["match"]})
    assert st == 200 and b["state"] == "approved", (st, b)
    t.join(30)
    assert "end" in result, "long-poll did not return"
    st, s = result["reply"]
    assert st == 200 and s["state"] == "approved", (st, s)
    assert result["end"] >= t_approve, "long-poll returned before the approval was sent"
    assert result["end"] - result["start"] < 18, \
        "long-poll ran to its wait (%.1fs) instead of returning on approval" % (
            result["end"] - result["start"])


def test_longpoll_returns_on_deny():
    user = _push_user()
    _, p = D.create_push(HOST, user)
    result = {}

    def poll():
        result["reply"] = D.poll_push(HOST, p["push_id"], wait=20)
        result["end"] = time.time()

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    time.sleep(1.0)
    t_deny = time.time()
    st, b = D.admin("POST", "/v1/approvals/%s/deny" % p["push_id"], {})
    assert st == 200
    t.join(30)
    st, s = result["reply"]
    assert st == 200 and s["state"] == "denied", (st, s)
    assert t_deny <= result["end"] < t_deny + 17, result


def test_longpoll_wait_elapses_pending():
    user = _push_user()
    _, p = D.create_push(HOST, user)
    t0 = time.time()
    st, s = D.poll_push(HOST, p["push_id"], wait=2)
    el = time.time() - t0
    assert st == 200 and s["state"] == "pending", (st, s)
    assert el >= 1.5, "wait=2 returned pending after %.2fs (did not wait)" % el
    st, s = D.poll_push(HOST, p["push_id"], wait=0)
    assert st == 200 and s["state"] == "pending", (st, s)


def test_longpoll_wait_bounds():
    user = _push_user()
    _, p = D.create_push(HOST, user)
    for bad in ("121", "-1", "abc", "1e3"):
        st, b = D.api("GET", "/v1/auth/push/%s?wait=%s" % (p["push_id"], bad), token=HOST)
        assert st == 400 and b.get("error") == "bad_field" and "wait" in b.get("message", ""), \
            "wait=%s → %s %r" % (bad, st, b)


def test_many_longpolls_same_push():
    user = _push_user()
    _, p = D.create_push(HOST, user)
    replies = []
    lock = threading.Lock()

    def poll():
        r = D.poll_push(HOST, p["push_id"], wait=30)
        with lock:
            replies.append(r)

    ts = [threading.Thread(target=poll, daemon=True) for _ in range(10)]
    for t in ts:
        t.start()
    time.sleep(1.0)
    D.admin("POST", "/v1/approvals/%s/approve" % p["push_id"], {"match": p["match"]})
    for t in ts:
        t.join(30)
    assert len(replies) == 10 and all(r[0] == 200 and r[1]["state"] == "approved" for r in replies), replies


def test_webhook():
    user = _push_user()
    txid, p = D.create_push(HOST, user, rhost="127.0.0.5", service="sshd")
    req, j = HOOK.find(p["push_id"])
    assert req["path"] == "/hook", req["path"]
    ctype = {k.lower(): v for k, v in req["headers"].items()}.get("content-type", "")
    assert "application/json" in ctype, "webhook Content-Type %r" % ctype
    for k in ("push_id", "user", "host", "rhost", "service", "expires_at"):
        assert k in j, "webhook body lacks %s: %r" % (k, j)
    assert j["user"] == user and j["host"] == HOSTNAME, j
    assert j["rhost"] == "127.0.0.5" and j["service"] == "sshd", j
    assert j["expires_at"] == p["expires_at"], j
    assert "match" not in j, "webhook carries the match number field: %r" % j
    assert b"match" not in req["body"], "webhook body mentions match: %r" % req["body"]
    for k, v in j.items():
        assert v != p["match"], "webhook field %s equals the match" % k
    # one webhook per push, also for the idempotent re-create
    st, b = D.api("POST", "/v1/auth/push", {"txid": txid}, token=HOST)
    assert st == 200 and b["push_id"] == p["push_id"], (st, b)
    time.sleep(1.0)
    with HOOK.lock:
        n = sum(1 for r in HOOK.requests if json.loads(r["body"]).get("push_id") == p["push_id"])
    assert n == 1, "%d webhook POSTs for one push" % n


def test_webhook_failure_does_not_block_push():
    hookless = Daemon(args=["--webhook-url", "http://127.0.0.1:%d/x" % harness.free_port()]).start()
    try:
        _, host = hookless.enroll_host()
        user = hookless.create_user(push=True)
        t0 = time.time()
        _, p = hookless.create_push(host, user)
        assert time.time() - t0 < 20, "push creation waited on a dead webhook"
        st, b = hookless.admin("POST", "/v1/approvals/%s/approve" % p["push_id"],
                               {"match": p["match"]})
        assert st == 200 and b["state"] == "approved", (st, b)
        assert hookless.alive()
    finally:
        hookless.kill()


def test_other_host_cannot_poll():
    user = _push_user()
    txid, p = D.create_push(HOST, user)
    _, other = D.enroll_host(hostname="push-host-2")
    st, b = D.poll_push(other, p["push_id"])
    assert st == 404 and b.get("error") == "not_found", "other host polled → %s %r" % (st, b)
    st, b = D.api("POST", "/v1/auth/push", {"txid": txid}, token=other)
    assert st == 404 and b.get("error") == "not_found", "other host pushed on txid → %s %r" % (st, b)
    st, s = D.poll_push(HOST, p["push_id"])
    assert st == 200 and s["state"] == "pending", (st, s)


# --------------------------------------------------------------------------------------------
# begin with "push": true (the PAM module's one round trip for a login with push)

def test_begin_with_push_makes_the_push():
    user = _push_user()
    D.enroll_totp(user)
    t0 = time.time()
    st, b = D.begin(HOST, user, rhost="127.0.0.7", service="sshd", push=True)
    assert st == 200 and b["action"] == "challenge", (st, b)
    assert sorted(b["factors"]) == ["push", "totp"], b
    assert re.fullmatch(r"[0-9a-f]{32}", b["push_id"]), b
    assert re.fullmatch(r"[1-9][0-9]", b["match"]), b
    assert t0 + 30 < b["expires_at"] <= t0 + 62, b
    # listed for approval once, audited once, announced once
    st, a = D.admin("GET", "/v1/approvals")
    mine = [x for x in a["approvals"] if x["push_id"] == b["push_id"]]
    assert len(mine) == 1 and mine[0]["user"] == user, a
    assert _actions(D, user).count("push.create") == 1, _actions(D, user)
    _, j = HOOK.find(b["push_id"])
    assert j["rhost"] == "127.0.0.7" and j["service"] == "sshd", j
    # POST /v1/auth/push on that transaction (an older module) answers the same push
    st, p = D.api("POST", "/v1/auth/push", {"txid": b["txid"]}, token=HOST)
    assert st == 200 and (p["push_id"], p["match"]) == (b["push_id"], b["match"]), (st, p)
    assert _actions(D, user).count("push.create") == 1, _actions(D, user)
    # approving it with its number approves the login the host polls
    st, r = D.admin("POST", "/v1/approvals/%s/approve" % b["push_id"], {"match": b["match"]})
    assert st == 200 and r["state"] == "approved", (st, r)
    st, s = D.poll_push(HOST, b["push_id"])
    assert st == 200 and s["state"] == "approved", (st, s)


def test_begin_with_push_only_for_a_challenge_with_push():
    totp_only = D.create_user(push=False)
    D.enroll_totp(totp_only)
    disabled = _push_user()
    D.enroll_totp(disabled)
    st, b = D.admin("PATCH", "/v1/users/%s" % disabled, {"enabled": False})
    assert st == 200, (st, b)
    for user, action in ((totp_only, "challenge"), (disabled, "deny"),
                         (harness.unique_name("nobody"), "deny")):
        st, b = D.begin(HOST, user, push=True)
        assert st == 200 and b["action"] == action, (user, st, b)
        assert not {"push_id", "match", "expires_at"} & set(b), "%s got a push: %r" % (user, b)
        # the same reply's shape as without push: nothing tells who has push
        st, b0 = D.begin(HOST, user)
        assert sorted(b0) == sorted(b), (b0, b)
        assert "push.create" not in _actions(D, user), _actions(D, user)
    st, b = D.begin(HOST, _push_user(), push=False)
    assert st == 200 and "push_id" not in b, b


def test_begin_push_field_hostile_values():
    user = _push_user()
    for bad in ("yes", 1, 0, None, [], {}, "true"):
        st, b = D.begin(HOST, user, push=bad)
        assert st == 400 and isinstance(b.get("message"), str), (bad, st, b)
    assert "push.create" not in _actions(D, user), _actions(D, user)


def test_begin_with_push_other_host_cannot_use_it():
    user = _push_user()
    st, b = D.begin(HOST, user, push=True)
    assert st == 200 and "push_id" in b, (st, b)
    _, other = D.enroll_host(hostname="push-host-3")
    st, r = D.poll_push(other, b["push_id"])
    assert st == 404 and r.get("error") == "not_found", (st, r)
    st, r = D.api("POST", "/v1/auth/push", {"txid": b["txid"]}, token=other)
    assert st == 404 and r.get("error") == "not_found", (st, r)
    st, r = D.api("POST", "/v1/auth/totp", {"txid": b["txid"], "code": "123456"}, token=other)
    assert st == 404, (st, r)
