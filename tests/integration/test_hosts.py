# SPDX-License-Identifier: BSD-2-Clause
"""Host enrollment: single-use tokens, expiry (with PC_FAKE_NOW), host tokens, hashed storage,
labels, audit."""
import re
import secrets
import time

import harness
from harness import Daemon

D = None


def setup_module():
    global D
    D = Daemon().start()


def teardown_module():
    if D:
        D.kill()


def test_token_create_reply():
    t0 = time.time()
    st, b = D.admin("POST", "/v1/tokens", {"hostname": "reply-1", "labels": {"env": "prod"},
                                           "ttl": 600})
    assert st == 201, (st, b)
    assert re.fullmatch(r"[0-9a-f]{64}", b["token"]), "token is not 256-bit hex: %r" % b["token"]
    assert abs(b["expires_at"] - (t0 + 600)) <= 5, "expires_at %r not now+600" % b["expires_at"]
    st, b = D.admin("POST", "/v1/tokens", {"hostname": "reply-2"})
    assert st == 201, (st, b)
    assert abs(b["expires_at"] - (time.time() + 3600)) <= 5, "default ttl is not 3600: %r" % b
    st, b = D.admin("POST", "/v1/tokens", {"hostname": "reply-3", "ttl": 60})
    assert st == 201, (st, b)
    st, b = D.admin("POST", "/v1/tokens", {"hostname": "reply-4", "ttl": 2592000})
    assert st == 201, (st, b)
    tokens = set()
    for _ in range(5):
        tokens.add(D.create_token())
    assert len(tokens) == 5, "tokens repeat"


def test_enroll_single_use():
    tok = D.create_token(hostname="single-1")
    st, b = D.api("POST", "/v1/enroll", {"token": tok, "hostname": "single-1"})
    assert st == 200, (st, b)
    assert isinstance(b["host_id"], int) and re.fullmatch(r"[0-9a-f]{64}", b["host_token"]), b
    st, b2 = D.api("POST", "/v1/enroll", {"token": tok, "hostname": "single-2"})
    assert st == 401 and b2.get("error") == "unauthorized", "second enroll → %s %r" % (st, b2)
    st, h = D.admin("GET", "/v1/hosts")
    names = [x["hostname"] for x in h["hosts"]]
    assert "single-1" in names and "single-2" not in names, names


def test_enroll_concurrent_single_use():
    import threading
    tok = D.create_token(hostname="race")
    n = 10
    barrier = threading.Barrier(n)
    res = [None] * n

    def w(i):
        barrier.wait(30)
        res[i] = D.api("POST", "/v1/enroll", {"token": tok, "hostname": "race"})

    ts = [threading.Thread(target=w, args=(i,), daemon=True) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    ok = [r for r in res if r and r[0] == 200]
    assert len(ok) == 1, "one token enrolled %d hosts: %r" % (len(ok), res)
    assert all(r[0] == 401 for r in res if r and r[0] != 200), res


def test_enroll_bad_token_401():
    for tok in ("00" * 32, "zz", ""):
        st, b = D.api("POST", "/v1/enroll", {"token": tok, "hostname": "h"})
        assert st == 401 and b.get("error") == "unauthorized", (tok, st, b)


def test_expired_token_with_fake_clock():
    d = Daemon(env={"PC_FAKE_NOW": "+0"}).start()
    try:
        short = d.create_token(ttl=60, hostname="late")
        longer = d.create_token(ttl=3600, hostname="ontime")
        d.restart(env={"PC_FAKE_NOW": "+120"})
        st, b = d.api("POST", "/v1/enroll", {"token": short, "hostname": "late"})
        assert st == 401 and b.get("error") == "unauthorized", "expired token → %s %r" % (st, b)
        st, b = d.api("POST", "/v1/enroll", {"token": longer, "hostname": "ontime"})
        assert st == 200, "unexpired token after restart → %s %r" % (st, b)
        st, h = d.admin("GET", "/v1/hosts")
        names = [x["hostname"] for x in h["hosts"]]
        assert "late" not in names and "ontime" in names, names
    finally:
        d.kill()


def test_host_token_works_for_begin():
    host_id, tok = D.enroll_host(hostname="begin-host")
    user = D.create_user(push=True)
    st, b = D.begin(tok, user, rhost="127.0.0.1", service="sshd")
    assert st == 200 and b["action"] == "challenge", (st, b)
    rows = [r for r in D.audit(user=user) if r["action"] == "auth.begin"]
    assert rows and rows[-1]["host"] == "begin-host", rows


def test_tokens_stored_hashed():
    tok = D.create_token(hostname="hashed")
    unused = D.create_token()
    st, b = D.api("POST", "/v1/enroll", {"token": tok, "hostname": "hashed"})
    assert st == 200
    host_token = b["host_token"]
    blob = harness.read_db_bytes(D.data_dir)
    for name, t in (("enrollment token", tok), ("unused enrollment token", unused),
                    ("host token", host_token), ("admin token", D.admin_token)):
        assert t.encode() not in blob, "%s in plain text in the database" % name
        assert t.upper().encode() not in blob, "%s (upper case) in the database" % name
        assert bytes.fromhex(t) not in blob, "%s raw bytes in the database" % name


def test_labels_and_hosts_list():
    labels = {"env": "prod", "role": "bastion", "dc": "fra-1"}
    t0 = int(time.time())
    host_id, _ = D.enroll_host(hostname="labelled", labels=labels)
    st, b = D.admin("GET", "/v1/hosts")
    assert st == 200, (st, b)
    mine = [h for h in b["hosts"] if h["host_id"] == host_id]
    assert len(mine) == 1, b
    h = mine[0]
    assert h["hostname"] == "labelled", h
    assert h["labels"] == labels, "labels %r, want %r" % (h["labels"], labels)
    assert t0 - 2 <= h["enrolled_at"] <= time.time() + 2, h
    _, other = D.enroll_host(hostname="nolabels")
    st, b = D.admin("GET", "/v1/hosts")
    nl = [h for h in b["hosts"] if h["hostname"] == "nolabels"]
    assert nl and nl[0]["labels"] == {}, nl


def test_enroll_audit_rows():
    since = int(time.time()) - 1
    st, tb = D.admin("POST", "/v1/tokens", {"hostname": "audited", "labels": {"k": "v"},
                                            "ttl": 600})
    assert st == 201
    st, eb = D.api("POST", "/v1/enroll", {"token": tb["token"], "hostname": "audited"})
    assert st == 200
    st, bad = D.api("POST", "/v1/enroll", {"token": tb["token"], "hostname": "audited-2"})
    assert st == 401
    rows = D.audit(since=since)
    creates = [r for r in rows if r["action"] == "token.create"]
    enrolls = [r for r in rows if r["action"] == "host.enroll"]
    assert creates, "no token.create row: %r" % rows
    assert "admin" in (creates[-1]["actor"] or "").lower(), creates[-1]
    assert enrolls, "no host.enroll row: %r" % rows
    ok = [r for r in enrolls if r["host"] == "audited"]
    assert ok, "host.enroll row does not name the host: %r" % enrolls
    assert "127.0.0.1" in (ok[0]["source"] or ""), ok[0]
    for r in rows:
        for v in r.values():
            if isinstance(v, str):
                assert tb["token"] not in v and eb["host_token"] not in v, "token in audit: %r" % r


def test_largest_token_labels_reach_the_host_whole():
    """A token may carry 32 labels of 64-byte keys and 256-byte values (api_labels_valid); the
    enrolled host must get all of them. json-c writes '/' as '\\/', so such labels are ~20 KB of
    JSON: enrollment once copied them into 4 KiB and cut them to invalid JSON, which the host
    then read as no labels at all (every label-scoped rule silently stopped matching)."""
    labels = {("k%02d" % i) + "x" * 61: "/" * 256 for i in range(32)}
    name = "biglabels-" + secrets.token_hex(3)
    tok = D.create_token(hostname=name, labels=labels)
    st, b = D.api("POST", "/v1/enroll", {"token": tok})
    assert st == 200, (st, b)
    st, hosts = D.admin("GET", "/v1/hosts")
    got = [h["labels"] for h in hosts["hosts"] if h["hostname"] == name]
    assert got == [labels], "labels of %s: %d of 32 came through" % (name, len(got[0]) if got else 0)
