# SPDX-License-Identifier: BSD-2-Clause
"""TOTP: enrollment URI, re-enrollment, login outcomes, replay (also concurrent), lockout and
its back-off, seeds encrypted at rest, audit rows for every attempt."""
import re
import threading
import time
import urllib.parse

import harness
from harness import Daemon, totp_code, wrong_code

D = None          # default settings (lockout threshold 5, base 30 s)
DFAST = None      # --lockout-base 3s, started on first use
HOST = None
FAST_BASE = 3


def setup_module():
    global D, HOST
    D = Daemon().start()
    _, HOST = D.enroll_host()


def teardown_module():
    for d in (D, DFAST):
        if d:
            d.kill()


def fast():
    global DFAST
    if DFAST is None:
        DFAST = Daemon(args=["--lockout-base", "%ds" % FAST_BASE]).start()
        DFAST.host = DFAST.enroll_host()[1]
    return DFAST


URI_RE = re.compile(r"otpauth://totp/Portcullis:([^?]+)\?secret=([A-Z2-7]+)&issuer=Portcullis"
                    r"&algorithm=SHA1&digits=6&period=30")


def test_enroll_uri_format():
    name = D.create_user()
    st, b = D.admin("POST", "/v1/users/%s/totp" % name, {"force": False})
    assert st == 201, (st, b)
    uri = b["uri"]
    m = URI_RE.fullmatch(uri)
    assert m, "URI not in the documented format: %r" % uri
    assert urllib.parse.unquote(m.group(1)) == name
    secret = m.group(2)
    assert len(harness.b32decode_loose(secret)) >= 20, "seed shorter than 160 bits"
    assert D.get_user(name)["totp"] is True
    # user names may contain '.', '-' and '_': the label must still round-trip
    odd = "a.b-c_" + harness.unique_name("x")[:20]
    D.create_user(odd)
    st, b = D.admin("POST", "/v1/users/%s/totp" % odd, {})
    assert st == 201, (st, b)
    m = URI_RE.fullmatch(b["uri"])
    assert m and urllib.parse.unquote(m.group(1)) == odd, b["uri"]


def test_enroll_unknown_user_404():
    st, b = D.admin("POST", "/v1/users/no_such_user_x/totp", {"force": True})
    assert st == 404 and b.get("error") == "not_found", (st, b)


def test_reenroll_conflict_and_force():
    name, old = D.user_with_totp()
    for body in ({"force": False}, {}):
        st, b = D.admin("POST", "/v1/users/%s/totp" % name, body)
        assert st == 409 and b.get("error") == "conflict", "re-enroll %r → %s %r" % (body, st, b)
    # the 409 did not replace the seed (the previous step's code is good only within this step)
    harness.step_with_time_left(10)
    r = D.login_totp(HOST, name, totp_code(old, offset=-1))
    assert r["result"] == "allow", "old seed stopped working after a refused re-enroll: %r" % r
    st, b = D.admin("POST", "/v1/users/%s/totp" % name, {"force": True})
    assert st == 201, (st, b)
    new = harness.parse_otpauth(b["uri"])[1]["secret"]
    assert new != old, "force re-enroll returned the same secret"
    # old seed's (unused) codes are refused, the new seed's accepted
    r = D.login_totp(HOST, name, totp_code(old, offset=1))
    assert r == {"result": "deny", "reason": "wrong_code"} or (
        r["result"] == "deny" and r["reason"] == "wrong_code"), "old seed still works: %r" % r
    r = D.login_totp(HOST, name, totp_code(new, offset=1))
    assert r["result"] == "allow", "new seed refused: %r" % r


def test_begin_challenge_factors():
    n_totp = D.create_user(push=False)
    D.enroll_totp(n_totp)
    n_both = D.create_user(push=True)
    D.enroll_totp(n_both)
    n_push = D.create_user(push=True)
    for name, want in ((n_totp, {"totp"}), (n_both, {"totp", "push"}), (n_push, {"push"})):
        st, b = D.begin(HOST, name, rhost="127.0.0.1", service="sshd", tty="/dev/pts/1",
                        auth_info="test")
        assert st == 200, (st, b)
        assert b["action"] == "challenge", "%s: %r" % (name, b)
        assert set(b["factors"]) == want, "%s: factors %r, want %r" % (name, b["factors"], want)
        assert re.fullmatch(r"[0-9a-f]{16,}", b["txid"]), "txid not hex: %r" % b["txid"]


def test_begin_deny_reasons():
    st, b = D.begin(HOST, "no_such_user_q")
    assert st == 200 and b["action"] == "deny" and b["reason"] == "unknown_user", (st, b)
    name, _ = D.user_with_totp()
    st, b = D.admin("PATCH", "/v1/users/%s" % name, {"enabled": False})
    assert st == 200 and b["enabled"] is False, (st, b)
    st, b = D.begin(HOST, name)
    assert st == 200 and b["action"] == "deny" and b["reason"] == "disabled", (st, b)
    nofactor = D.create_user(push=False)
    st, b = D.begin(HOST, nofactor)
    assert st == 200 and b["action"] == "deny" and b["reason"] == "no_factor", (st, b)
    # re-enabled → challenge again
    st, b = D.admin("PATCH", "/v1/users/%s" % name, {"enabled": True})
    assert st == 200 and b["enabled"] is True
    st, b = D.begin(HOST, name)
    assert st == 200 and b["action"] == "challenge", (st, b)


def test_disabled_mid_transaction_denied():
    name, sec = D.user_with_totp()
    txid = D.begin_txid(HOST, name)
    st, b = D.admin("PATCH", "/v1/users/%s" % name, {"enabled": False})
    assert st == 200
    st, b = D.submit_totp(HOST, txid, totp_code(sec))
    assert not (st == 200 and b.get("result") == "allow"), \
        "a user disabled after begin still got allow: %s %r" % (st, b)


def test_right_code_allows_wrong_denies():
    name, sec = D.user_with_totp()
    r = D.login_totp(HOST, name, wrong_code(sec))
    assert r["result"] == "deny" and r["reason"] == "wrong_code", r
    r = D.login_totp(HOST, name, totp_code(sec))
    assert r["result"] == "allow", r
    # malformed codes are denied or rejected, never allowed
    for bad in ("12345", "1234567", "abcdef", "", " 12345"):
        txid = D.begin_txid(HOST, name)
        st, b = D.submit_totp(HOST, txid, bad)
        assert (st == 400 and b.get("error") == "bad_field") or (
            st == 200 and b.get("result") == "deny"), "code %r → %s %r" % (bad, st, b)


def test_finished_transaction_410_and_unknown_404():
    name, sec = D.user_with_totp()
    txid = D.begin_txid(HOST, name)
    harness.step_with_time_left(10)  # the previous step's code is good only within this step
    st, b = D.submit_totp(HOST, txid, totp_code(sec, offset=-1))
    assert st == 200 and b["result"] == "allow", (st, b)
    st, b = D.submit_totp(HOST, txid, totp_code(sec, offset=1))
    assert st == 410 and b.get("error") == "gone", "second code on a finished tx → %s %r" % (st, b)
    st, b = D.submit_totp(HOST, "0" * 32, totp_code(sec))
    assert st == 404 and b.get("error") == "not_found", (st, b)


def test_other_host_cannot_use_txid():
    name, sec = D.user_with_totp()
    txid = D.begin_txid(HOST, name)
    _, other = D.enroll_host()
    st, b = D.submit_totp(other, txid, totp_code(sec))
    assert st == 404 and b.get("error") == "not_found", "other host's txid → %s %r" % (st, b)
    r = D.submit_totp(HOST, txid, totp_code(sec))
    assert r[0] == 200 and r[1]["result"] == "allow", r


def test_no_totp_reason():
    name = D.create_user(push=True)            # push only, no TOTP
    txid = D.begin_txid(HOST, name)
    st, b = D.submit_totp(HOST, txid, "123456")
    assert st == 200 and b["result"] == "deny" and b["reason"] == "no_totp", (st, b)


def test_replay_same_code_new_txid():
    name, sec = D.user_with_totp()
    code = totp_code(sec)
    r = D.login_totp(HOST, name, code)
    assert r["result"] == "allow", r
    r = D.login_totp(HOST, name, code)
    assert r["result"] == "deny" and r["reason"] == "replayed", "replay → %r" % r
    # an older step than the last accepted one is a replay too
    r = D.login_totp(HOST, name, totp_code(sec, step=harness.step_with_time_left(5) - 1))
    assert r["result"] == "deny" and r["reason"] in ("replayed",), "older step → %r" % r


def test_concurrent_replay_exactly_one_allow():
    name, sec = D.user_with_totp()
    n = 20
    txids = [D.begin_txid(HOST, name) for _ in range(n)]
    code = totp_code(sec)
    barrier = threading.Barrier(n)
    results = [None] * n

    def worker(i):
        try:
            barrier.wait(timeout=30)
            results[i] = D.submit_totp(HOST, txids[i], code)
        except Exception as e:                       # recorded, asserted below
            results[i] = ("exception", repr(e))

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(r is not None for r in results), "some submissions did not finish: %r" % results
    bad = [r for r in results if r[0] != 200]
    assert not bad, "non-200 replies: %r" % bad
    allows = [r for r in results if r[1]["result"] == "allow"]
    assert len(allows) == 1, "%d allows for one code (want exactly 1): %r" % (len(allows), results)
    others = [r[1] for r in results if r[1]["result"] != "allow"]
    # the losers are replays; replays count as failures, so once the threshold is reached the
    # remaining ones may see the lock instead
    assert all(o["result"] == "deny" and o["reason"] in ("replayed", "locked") for o in others), others
    assert any(o["reason"] == "replayed" for o in others), others
    assert D.alive()


def test_lockout_after_threshold():
    name, sec = D.user_with_totp()
    for i in range(5):
        r = D.login_totp(HOST, name, wrong_code(sec))
        assert r["result"] == "deny" and r["reason"] == "wrong_code", "attempt %d: %r" % (i + 1, r)
    r = D.login_totp(HOST, name, totp_code(sec))
    assert r["result"] == "deny" and r["reason"] == "locked", "right code while locked → %r" % r
    u = D.get_user(name)
    assert u["failures"] >= 5, u
    assert u["locked_until"] > time.time() + 10, "locked_until %r not ~30 s ahead" % u["locked_until"]
    assert u["locked_until"] <= time.time() + 3600 + 5, u
    # a different user is not affected
    other, osec = D.user_with_totp()
    r = D.login_totp(HOST, other, totp_code(osec))
    assert r["result"] == "allow", r
    # begin still answers (lockout is a deny at the factor, not an error)
    st, b = D.begin(HOST, name)
    assert st == 200, (st, b)


def test_lock_expires_and_fresh_code_works():
    d = fast()
    name, sec = d.user_with_totp()
    for _ in range(5):
        r = d.login_totp(d.host, name, wrong_code(sec))
        assert r["result"] == "deny" and r["reason"] == "wrong_code", r
    locked_code_step = harness.totp_step()
    r = d.login_totp(d.host, name, totp_code(sec, step=locked_code_step))
    assert r["result"] == "deny" and r["reason"] == "locked", r
    u = d.get_user(name)
    assert u["locked_until"] > 0, u
    harness.wait_until(lambda: time.time() > u["locked_until"] + 1.5, timeout=FAST_BASE * 4,
                       what="lock to expire")
    fresh = totp_code(sec, step=max(harness.totp_step(), locked_code_step) + 1)
    r = d.login_totp(d.host, name, fresh)
    assert r["result"] == "allow", "fresh right code after the lock expired → %r" % r
    u = d.get_user(name)
    assert u["locked_until"] <= time.time(), u


def test_backoff_grows():
    d = fast()
    name, sec = d.user_with_totp()
    for _ in range(5):
        r = d.login_totp(d.host, name, wrong_code(sec))
        assert r["result"] == "deny" and r["reason"] == "wrong_code", r
    t1 = time.time()
    u1 = d.get_user(name)
    assert u1["locked_until"] > 0 and u1["failures"] >= 5, u1
    dur1 = u1["locked_until"] - t1
    harness.wait_until(lambda: time.time() > u1["locked_until"] + 1.5, timeout=FAST_BASE * 4,
                       what="first lock to expire")
    r = d.login_totp(d.host, name, wrong_code(sec))
    assert r["result"] == "deny" and r["reason"] == "wrong_code", r
    t2 = time.time()
    u2 = d.get_user(name)
    assert u2["failures"] > u1["failures"], (u1, u2)
    assert u2["locked_until"] > u1["locked_until"], (u1, u2)
    dur2 = u2["locked_until"] - t2
    assert dur2 > dur1 + 1, "back-off did not grow: first lock %.1fs, second %.1fs" % (dur1, dur2)
    r = d.login_totp(d.host, name, totp_code(sec))
    assert r["result"] == "deny" and r["reason"] == "locked", r
    # success after expiry resets the counter
    harness.wait_until(lambda: time.time() > u2["locked_until"] + 1.5, timeout=FAST_BASE * 8,
                       what="second lock to expire")
    r = d.login_totp(d.host, name, totp_code(sec, offset=1))
    assert r["result"] == "allow", r
    u3 = d.get_user(name)
    assert u3["failures"] == 0 and u3["locked_until"] == 0, "success did not reset: %r" % u3


def test_seeds_encrypted_at_rest():
    names = []
    seeds = []
    for _ in range(3):
        n, s = D.user_with_totp()
        names.append(n)
        seeds.append(s)
    # and a forced re-enroll
    s2, _ = D.enroll_totp(names[0], force=True)
    seeds.append(s2)
    blob = harness.read_db_bytes(D.data_dir)
    assert blob, "no database bytes read"
    for s in seeds:
        raw = harness.b32decode_loose(s)
        assert s.encode() not in blob, "base32 seed found in the database files"
        assert s.lower().encode() not in blob, "base32 seed (lowercase) found in the database"
        assert raw not in blob, "raw seed bytes found in the database files"
        assert raw.hex().encode() not in blob, "hex seed found in the database files"
    with open(D.path("master.key"), "rb") as f:
        key = f.read()
    assert key not in blob, "master.key found in the database"


def test_audit_row_per_attempt():
    name, sec = D.user_with_totp()
    since = int(time.time()) - 1
    good = totp_code(sec)
    outcomes = []
    for code, want in ((wrong_code(sec), ("deny", "wrong_code")), (good, ("allow", None)),
                       (good, ("deny", "replayed"))):
        txid = D.begin_txid(HOST, name)
        st, b = D.submit_totp(HOST, txid, code)
        assert st == 200 and b["result"] == want[0], (st, b, want)
        outcomes.append((txid, want))
    rows = [r for r in D.audit(user=name, since=since) if r["action"] == "auth.totp"]
    assert len(rows) == len(outcomes), "want %d auth.totp rows, got %r" % (len(outcomes), rows)
    for row, (txid, (result, reason)) in zip(rows, outcomes):
        assert row["user"] == name, row
        assert row["txid"] == txid, "row txid %r != %r" % (row["txid"], txid)
        assert row["result"] == result, row
        if reason:
            assert row["reason"] == reason, row
        assert row["host"], "auth.totp row without host: %r" % row
    begins = [r for r in D.audit(user=name, since=since) if r["action"] == "auth.begin"]
    assert len(begins) == 3, "want 3 auth.begin rows: %r" % begins
    # the rows never carry the code
    for r in D.audit(user=name):
        for v in r.values():
            assert not (isinstance(v, str) and re.search(r"(?<!\d)%s(?!\d)" % good, v)), \
                "TOTP code in audit row %r" % r


def test_locked_attempts_are_audited():
    name, sec = D.user_with_totp()
    for _ in range(5):
        D.login_totp(HOST, name, wrong_code(sec))
    D.login_totp(HOST, name, totp_code(sec))
    rows = [r for r in D.audit(user=name) if r["action"] == "auth.totp"]
    assert len(rows) == 6, rows
    assert rows[-1]["result"] == "deny" and rows[-1]["reason"] == "locked", rows[-1]
    assert all(r["reason"] == "wrong_code" for r in rows[:5]), rows
