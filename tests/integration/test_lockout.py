# SPDX-License-Identifier: BSD-2-Clause
"""Lockout and rate limits per host (issue 11, finding 4): wrong codes sent from one host lock
the person on that host only; only failures from several hosts (portcullisd's
--lockout-fleet-threshold, counting at most --lockout-threshold per host) lock everywhere; a
host alone can never reach the fleet-wide lock however long it keeps trying; auth/begin and
auth/totp are rate-limited per host (429 rate_limited with Retry-After) without touching other
hosts; the audit rows say which lock applied; every kind of caller on auth/begin and auth/totp."""
import time

import harness
from harness import Daemon, totp_code, wrong_code

D = None      # default settings: 5 per (person, host), 20 fleet-wide
DF = None     # small numbers and 1 s locks: 3 per (person, host), 9 fleet-wide
DR = None     # --auth-rate 10


def setup_module():
    global D, DF, DR
    D = Daemon().start()
    DF = Daemon(args=["--lockout-threshold", "3", "--lockout-fleet-threshold", "9",
                      "--lockout-base", "1s", "--lockout-max", "1s"]).start()
    DR = Daemon(args=["--auth-rate", "10"]).start()


def teardown_module():
    for d in (D, DF, DR):
        if d:
            d.kill()


def hosts(d, n):
    return [d.enroll_host()[1] for _ in range(n)]


def fail(d, host, name, sec, n, want="wrong_code"):
    for i in range(n):
        r = d.login_totp(host, name, wrong_code(sec))
        assert r["result"] == "deny" and r["reason"] == want, "attempt %d: %r" % (i + 1, r)


def totp_rows(d, name):
    return [r for r in d.audit(user=name) if r["action"] == "auth.totp"]


def test_wrong_codes_on_one_host_lock_that_host_only():
    a, b = hosts(D, 2)
    name, sec = D.user_with_totp()
    fail(D, a, name, sec, 5)
    # the right code on host A: locked there
    r = D.login_totp(a, name, totp_code(sec))
    assert r == {"result": "deny", "reason": "locked"}, "right code on the locked host → %r" % r
    # the same person on host B: the right code still works
    r = D.login_totp(b, name, totp_code(sec))
    assert r["result"] == "allow", "host A's wrong codes locked the person on host B: %r" % r
    # and host A stays locked (a success elsewhere does not reset A's count)
    r = D.login_totp(a, name, totp_code(sec, offset=1))
    assert r == {"result": "deny", "reason": "locked"}, r
    rows = totp_rows(D, name)
    assert [x["reason"] for x in rows] == ["wrong_code"] * 5 + ["locked", "totp_ok", "locked"], rows
    u = D.get_user(name)
    assert u["locked_until"] > time.time() + 10, "the admin does not see the lock on A: %r" % u


def test_fleet_wide_threshold_locks_everywhere():
    """The documented defaults: 5 per (person, host); 20 (four hosts' worth) fleet-wide."""
    hs = hosts(D, 5)
    name, sec = D.user_with_totp()
    for h in hs[:3]:
        fail(D, h, name, sec, 5)
    # 15 failures from three hosts: the fifth host is not locked
    harness.step_with_time_left(10)  # the previous step's code is good only within this step
    r = D.login_totp(hs[4], name, totp_code(sec, offset=-1))
    assert r["result"] == "allow", "locked fleet-wide below the fleet threshold: %r" % r
    fail(D, hs[3], name, sec, 5)
    # 20 from four hosts: locked everywhere, also on a host that never failed
    r = D.login_totp(hs[4], name, totp_code(sec, offset=1))
    assert r == {"result": "deny", "reason": "locked_fleet"}, "fleet threshold reached → %r" % r
    fresh = D.enroll_host()[1]
    r = D.login_totp(fresh, name, totp_code(sec, offset=1))
    assert r == {"result": "deny", "reason": "locked_fleet"}, r
    u = D.get_user(name)
    assert u["failures"] >= 20 and u["locked_until"] > time.time() + 10, u
    rows = totp_rows(D, name)
    assert [x["reason"] for x in rows[-2:]] == ["locked_fleet"] * 2, rows
    # another person is not affected
    other, osec = D.user_with_totp()
    assert D.login_totp(hs[0], other, totp_code(osec))["result"] == "allow"


def test_one_host_alone_never_locks_fleet_wide():
    """However long one host keeps guessing, it counts at most its own threshold toward the
    fleet-wide lock: the person still logs in on other hosts."""
    a, b = hosts(DF, 2)
    name, sec = DF.user_with_totp()
    fail(DF, a, name, sec, 3)
    for _ in range(9):          # 12 failures from A, more than the fleet threshold (9)
        harness.wait_until(lambda: DF.login_totp(a, name, wrong_code(sec))["reason"] != "locked",
                           timeout=10, interval=0.3, what="host A's lock to expire")
    reasons = [x["reason"] for x in totp_rows(DF, name)]
    assert reasons.count("wrong_code") >= 12 and "locked_fleet" not in reasons, reasons
    r = DF.login_totp(b, name, totp_code(sec))
    assert r["result"] == "allow", "one host's failures locked the person fleet-wide: %r" % r


def test_fleet_lock_from_three_hosts_then_expires():
    # its own daemon with 6 s locks: with DF's 1 s lock, a loaded machine (a sanitizer build)
    # could take longer than the lock between the ninth failure and the login that must meet it
    d = Daemon(args=["--lockout-threshold", "3", "--lockout-fleet-threshold", "9",
                     "--lockout-base", "6s", "--lockout-max", "6s"]).start()
    try:
        hs = hosts(d, 4)
        name, sec = d.user_with_totp()
        for h in hs[:3]:
            fail(d, h, name, sec, 3)
        r = d.login_totp(hs[3], name, totp_code(sec))
        assert r == {"result": "deny", "reason": "locked_fleet"}, r
        # the lock is the back-off (6 s here), not forever
        step = harness.totp_step()
        harness.wait_until(lambda: d.get_user(name)["locked_until"] < time.time() - 0.5,
                           timeout=30, what="the fleet lock to expire")
        r = d.login_totp(hs[3], name, totp_code(sec, step=max(step, harness.totp_step()) + 1))
        assert r["result"] == "allow", r
    finally:
        d.kill()


def test_rate_limit_per_host():
    a, b = hosts(DR, 2)
    name, sec = DR.user_with_totp()
    seen = []
    for _ in range(12):
        st, body, hdrs, _ = DR.request("POST", "/v1/auth/begin", {"user": name}, token=a)
        seen.append(st)
        if st == 429:
            break
    assert seen[-1] == 429, "no 429 after %d requests from one host: %r" % (len(seen), seen)
    assert len(seen) >= 10 and set(seen[:-1]) == {200}, seen
    assert body.get("error") == "rate_limited", body
    assert int(hdrs.get("retry-after", "0")) >= 1, hdrs
    # auth/totp of the same host shares the bucket, before the body is even read
    st, body, hdrs, _ = DR.request("POST", "/v1/auth/totp", {"txid": "0" * 32, "code": "1"},
                                   token=a)
    assert st == 429 and body.get("error") == "rate_limited", (st, body)
    st, body = DR.api("POST", "/v1/auth/totp", raw=b"garbage", token=a)
    assert st == 429, (st, body)
    # another host is not affected
    r = DR.login_totp(b, name, totp_code(sec))
    assert r["result"] == "allow", r
    # the refill: 10 a minute is one every 6 s
    time.sleep(6.5)
    st, body = DR.begin(a, name)
    assert st == 200 and body["action"] == "challenge", (st, body)


def test_auth_callers():
    """Who may call auth/begin and auth/totp (sessions: tests/integration/test_ca.py)."""
    a, b = hosts(D, 2)
    name, sec = D.user_with_totp()
    txid = D.begin_txid(a, name)
    for path, body in (("/v1/auth/begin", {"user": name}),
                       ("/v1/auth/totp", {"txid": txid, "code": totp_code(sec)})):
        for who, tok, want in (("none", None, 401), ("garbage", "zz" * 32, 401),
                               ("unknown", "ab" * 32, 401), ("admin", D.admin_token, 403)):
            st, r = D.api("POST", path, body, token=tok)
            assert st == want, "%s as %s → %s %r" % (path, who, st, r)
    # the other host cannot use (or learn about) host A's transaction
    st, r = D.submit_totp(b, txid, totp_code(sec))
    assert st == 404 and r["error"] == "not_found", (st, r)
    # ... nor does its attempt count as a failure of A or lock anything
    st, r = D.submit_totp(a, txid, totp_code(sec))
    assert st == 200 and r["result"] == "allow", (st, r)


def test_fleet_threshold_must_exceed_host_threshold():
    """At or below --lockout-threshold one host alone could lock a person everywhere."""
    import subprocess
    import tempfile
    for args in (["--lockout-threshold", "5", "--lockout-fleet-threshold", "5"],
                 ["--lockout-fleet-threshold", "3"], ["--auth-rate", "0"],
                 ["--lockout-fleet-threshold", "1001"]):
        with tempfile.TemporaryDirectory() as tmp:
            p = subprocess.run([harness.DAEMON_BIN, "--data-dir", tmp + "/d", "--listen",
                                "127.0.0.1:%d" % harness.free_port()] + args,
                               capture_output=True, text=True, timeout=30)
        assert p.returncode == 2 and args[-2] in p.stderr, (args, p.returncode, p.stderr)
