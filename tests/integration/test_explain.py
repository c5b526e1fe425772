# SPDX-License-Identifier: BSD-2-Clause
"""`portcullis explain TXID` and `portcullis audit --user U --last-denial` (issue 18): the
decision path of one login as the control plane saw it, in sentences — the rule that matched or
why none did, the second factor's outcome, the lockout state, failmode — for an allowed, a
wrong-code, a locked, a no-rule, a failmode (safe and secure) and an offline login;
GET /v1/audit/explain/{txid} for each kind of caller and hostile txids."""
import json
import os
import re
import secrets
import socket
import tempfile
import time

import harness
from harness import Daemon, run_cli, totp_code, wrong_code
import test_agent
import test_agent_ca
import test_ca

D = None
HOST = None        # (host_id, token) labelled env=prod
HOSTNAME = None


def setup_module():
    global D, HOST, HOSTNAME
    D = Daemon(args=["--lockout-threshold", "2"]).start()
    HOSTNAME = "web-" + harness.unique_name("x").replace("_", "-")
    HOST = D.enroll_host(hostname=HOSTNAME, labels={"env": "prod"})
    test_ca.D = D


def teardown_module():
    if D:
        D.kill()


def rule(person, accounts, hosts=None, no_2fa=False):
    body = {"users": [person], "accounts": accounts}
    if hosts is not None:
        body["hosts"] = hosts
    if no_2fa:
        body["require_2fa"] = False
    return test_ca.add_policy(**body)["name"]


def begin(person, account=None):
    st, b = D.begin(HOST[1], account or person)
    assert st == 200, (st, b)
    return b


def explain(txid):
    rc, out, err = run_cli(D, "explain", txid)
    assert rc == 0, (rc, out, err)
    st, b = D.admin("GET", "/v1/audit/explain/" + txid)
    assert st == 200, (st, b)
    assert out.splitlines() == b["explanation"], (out, b)
    return out, b


def test_allowed_login():
    person, sec = D.user_with_totp()
    name = rule(person, ["$user"], {"env": "prod"})
    b = begin(person)
    st, t = D.submit_totp(HOST[1], b["txid"], totp_code(sec))
    assert t["result"] == "allow", t
    out, j = explain(b["txid"])
    assert j["user"] == person and j["account"] == person and j["host"] == HOSTNAME, j
    assert j["rules"] == [{"name": name, "require_2fa": True}], j
    assert j["state"] == "allowed"
    assert "may log in as '%s' on %s by the rule '%s'" % (person, HOSTNAME, name) in out, out
    assert "asked for a second factor" in out
    assert "the TOTP code was right: allowed" in out
    assert "Outcome: allowed." in out
    assert "Lockout now: not locked" in out
    assert "Failmode/offline: not used" in out


def test_wrong_code_login():
    person, sec = D.user_with_totp()
    rule(person, ["$user"])
    b = begin(person)
    D.submit_totp(HOST[1], b["txid"], wrong_code(sec))
    out, j = explain(b["txid"])
    assert "a wrong TOTP code was entered: denied" in out, out
    assert "Outcome: denied (the last answer was a refusal" in out, out
    assert "(1 failed codes counted on %s)" % HOSTNAME in out, out
    # the same login found from the person's name
    rc, out2, err = run_cli(D, "audit", "--user", person, "--last-denial")
    assert rc == 0 and out2 == out, (rc, out2, err)


def test_locked_login():
    person, sec = D.user_with_totp()
    rule(person, ["$user"])
    for _ in range(2):                       # --lockout-threshold 2
        D.login_totp(HOST[1], person, wrong_code(sec))
    b = begin(person)
    st, t = D.submit_totp(HOST[1], b["txid"], totp_code(sec))
    assert t == {"result": "deny", "reason": "locked"}, t
    out, _ = explain(b["txid"])
    assert "is locked on this host after too many wrong codes" in out, out
    assert "Lockout now: locked on %s until" % HOSTNAME in out, out
    rc, out2, _ = run_cli(D, "audit", "--user", person, "--last-denial")
    assert rc == 0 and out2 == out


def test_no_rule_login():
    person, sec = D.user_with_totp()
    rule(person, ["deploy"])                          # names the person, not this account
    rule(person, ["$user"], {"env": "staging"})       # this account, not this host
    b = begin(person)
    assert b["action"] == "challenge", b              # auth/begin itself does not check rules
    out, j = explain(b["txid"])
    assert j["account"] == person and j["rules"] == [], j
    assert "no rule lets %s log in as '%s' on %s" % (person, person, HOSTNAME) in out, out
    assert "principals command" in out


def test_unknown_user_and_no_2fa_rule():
    ghost = "ghost_" + harness.unique_name()
    b = begin(ghost)
    out, _ = explain(b["txid"])
    assert "denied at once: %s is not a user of the control plane" % ghost in out, out
    assert "Lockout now: %s is not a user of the control plane now." % ghost in out
    person, _ = D.user_with_totp()
    name = rule(person, ["$user"], no_2fa=True)
    b = begin(person)
    assert b["action"] == "ignore", b
    out, _ = explain(b["txid"])
    assert "'%s' (no second factor)" % name in out, out
    assert "every matching rule says require_2fa false" in out


def _host_rows(d, txid):
    return [a for a in d.audit(since=time.time() - 3600) if a.get("txid") == txid]


def test_failmode_logins_are_explained():
    """A host that cannot reach the control plane: the agent answers begin with unreachable and
    a failmode_id, the PAM module follows its failmode and reports what it decided (op
    failmode), the agent queues that, and once the control plane is back the decision is one
    audit row auth.failmode: `explain ID` and `audit --user U --last-denial` tell the story."""
    test_agent_ca.ROOT = tempfile.mkdtemp(prefix="pc-explain-")
    harness._TMP_ROOTS.append(test_agent_ca.ROOT)
    os.chmod(test_agent_ca.ROOT, 0o755)
    d = Daemon().start()
    h = test_agent_ca.Host(d, extra=["krl_interval = 1"])
    try:
        h.enroll()
        h.start()
        admitted, _ = d.user_with_totp()
        refused, _ = d.user_with_totp()
        d.stop()
        ids = {}
        for user, mode in ((admitted, "safe"), (refused, "secure")):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(30)
                s.connect(h.socket)
                r = test_agent.call(s, {"op": "begin", "user": user, "rhost": "192.0.2.7",
                                        "service": "sshd", "tty": "ssh"})
                assert r["ok"] is False and r["error"] == "unreachable", r
                assert re.fullmatch("[0-9a-f]{32}", r.get("failmode_id", "")), r
                ids[user] = r["failmode_id"]
                # the module's report: only its failmode; everything else is the agent's own
                assert test_agent.call(s, {"op": "failmode", "id": ids[user],
                                           "failmode": mode}) == {"ok": True}
                # once: the same id again is refused (nothing more is queued)
                r = test_agent.call(s, {"op": "failmode", "id": ids[user], "failmode": mode})
                assert r["ok"] is False and r["error"] == "bad_request", r
        # reports the agent never handed out, or malformed: refused
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(30)
            s.connect(h.socket)
            # a name the control plane would refuse (its upload would be refused whole): no id
            for odd in ("Mallory", "m" * 33, "-mallory", "9lives"):
                r = test_agent.call(s, {"op": "begin", "user": odd})
                assert r["ok"] is False and "failmode_id" not in r, (odd, r)
            r = test_agent.call(s, {"op": "begin", "user": "mallory"})
            fid = r["failmode_id"]
            for bad in ({"op": "failmode", "id": "0" * 32, "failmode": "safe"},
                        {"op": "failmode", "id": fid, "failmode": "maybe"},
                        {"op": "failmode", "id": fid, "failmode": "safe", "user": admitted},
                        {"op": "failmode", "id": fid},
                        {"op": "failmode", "id": fid.upper(), "failmode": "safe"},
                        {"op": "failmode", "id": 5, "failmode": "safe"}):
                r = test_agent.call(s, bad)
                assert r["ok"] is False and r["error"] == "bad_request", (bad, r)
        # on disk: the queue, or the copy a sync moved aside to send (offline-events.sending)
        queued = []
        for name in ("offline-events.sending", "offline-events.jsonl"):
            if os.path.exists(h.path(name)):
                with open(h.path(name)) as f:
                    queued += [json.loads(line) for line in f if line.strip()]
        assert [(e["user"], e["action"], e["failmode"], e["error"]) for e in queued] == [
            (admitted, "allow", "safe", "unreachable"),
            (refused, "deny", "secure", "unreachable")], queued
        assert queued[0]["rhost"] == "192.0.2.7" and queued[0]["service"] == "sshd", queued
        d.start()
        harness.wait_until(lambda: all(_host_rows(d, i) for i in ids.values()), timeout=30,
                           what="the failmode reports in the audit log")
        time.sleep(2.5)          # later syncs must not add them again
        for user, i in ids.items():
            rows = _host_rows(d, i)
            assert len(rows) == 1, rows
            assert rows[0]["action"] == "auth.failmode" and rows[0]["user"] == user, rows
            assert rows[0]["host"] == h.hostname and rows[0]["source"] == "failmode", rows
        assert not _host_rows(d, fid)          # mallory's login was never reported
        row = _host_rows(d, ids[admitted])[0]
        assert row["result"] == "allow", row
        assert row["reason"].startswith("failmode=safe error=unreachable service=sshd "
                                        "rhost=192.0.2.7 at="), row
        rc, out, err = run_cli(d, "explain", ids[admitted])
        assert rc == 0, (rc, out, err)
        assert "Login %s: %s on %s from 192.0.2.7 (sshd)" % (ids[admitted], admitted,
                                                              h.hostname) in out, out
        assert "The control plane was unreachable from host %s at " % h.hostname in out, out
        assert "failmode=safe admitted %s without a second factor" % admitted in out, out
        assert "Outcome: allowed without a second factor (failmode=safe)." in out, out
        assert "Failmode/offline: used" in out, out
        st, j = d.admin("GET", "/v1/audit/explain/" + ids[admitted])
        assert st == 200 and out.splitlines() == j["explanation"], (st, j)
        assert j["source"] == "failmode" and j["failmode"] == "safe" and j["state"] == "allowed"
        rc, out, err = run_cli(d, "audit", "--user", refused, "--last-denial")
        assert rc == 0, (rc, out, err)
        assert "Login %s: %s on %s" % (ids[refused], refused, h.hostname) in out, out
        assert "failmode=secure refused %s" % refused in out, out
        assert "Outcome: denied (failmode=secure)." in out, out
    finally:
        h.stop()
        d.kill()


def _event(**kw):
    ev = {"id": secrets.token_hex(16), "at": int(time.time()) - 60, "kind": "failmode",
          "user": "ubuntu", "action": "allow", "failmode": "safe", "error": "timeout",
          "service": "sshd", "rhost": "2001:db8::7"}
    ev.update(kw)
    return {k: v for k, v in ev.items() if v is not None}


def test_failmode_reports_callers_and_hostile_input():
    path = "/v1/hosts/self/offline/events"
    good = _event()
    p = test_ca.Person()
    rule(p.name, ["$user"])
    session = p.login_ok()["session_token"]
    for who, tok in (("none", None), ("garbage", "0" * 64), ("session", session),
                     ("admin", D.admin_token)):
        st, b = D.api("POST", path, {"events": [good]}, token=tok)
        assert st in (401, 403), (who, st, b)
    assert not _host_rows(D, good["id"])
    for bad in (_event(kind="other"), _event(kind=1), _event(action="deny"),
                _event(failmode="secure"), _event(failmode="open"), _event(error="tls"),
                _event(error="rejected"), _event(rhost="a b"), _event(rhost="x" * 65),
                _event(service="ss\nhd"), _event(user="../etc"), _event(person="dora"),
                _event(reason="certificate_2fa_offline"), _event(id="A" * 32),
                _event(at=int(time.time()) + 3600), _event(failmode=None), _event(error=None)):
        # an invalid event is rejected on the record, never a failmode report or decision
        st, b = D.api("POST", path, {"events": [bad]}, token=HOST[1])
        assert st == 200 and b == {"added": 0, "duplicates": 0, "rejected": 1}, (bad, st, b)
        assert all(r["result"] == "rejected" and r["action"] == "auth.offline"
                   for r in _host_rows(D, bad["id"])), bad
    st, b = D.api("POST", path, {"events": [good, _event(service=None, rhost=None,
                                                         action="deny", failmode="secure")]},
                  token=HOST[1])
    assert st == 200 and b == {"added": 2, "duplicates": 0, "rejected": 0}, (st, b)
    st, b = D.api("POST", path, {"events": [good]}, token=HOST[1])
    assert st == 200 and b == {"added": 0, "duplicates": 1, "rejected": 0}, (st, b)
    rows = _host_rows(D, good["id"])
    assert len(rows) == 1 and rows[0]["host"] == HOSTNAME, rows
    out, j = explain(good["id"])
    assert "The control plane did not answer in time from host %s" % HOSTNAME in out, out
    assert "from 2001:db8::7 (sshd)" in out, out


def test_offline_decisions_are_explained():
    """Issue 13's offline decisions (auth.offline, reported by the host) read as what happened:
    an allow from the offline document, a refusal for a stale KRL."""
    # a pair of the host's offline document: a host reports only decisions it could make (an
    # event for anyone else is recorded as the host's claim, test_review)
    person = test_ca.Person().name
    test_ca.add_policy(users=[person], accounts=["ubuntu"], hosts={"env": "prod"},
                       second_factor="per-certificate")
    path = "/v1/hosts/self/offline/events"
    allow = {"id": secrets.token_hex(16), "at": int(time.time()) - 120, "user": "ubuntu",
             "person": person, "action": "allow", "reason": "certificate_2fa_offline"}
    deny = dict(allow, id=secrets.token_hex(16), at=int(time.time()) - 60, action="deny",
                reason="offline_krl_stale")
    st, b = D.api("POST", path, {"events": [allow, deny]}, token=HOST[1])
    assert st == 200 and b["added"] == 2, (st, b)
    out, j = explain(allow["id"])
    assert "Login %s: %s as 'ubuntu' on %s" % (allow["id"], person, HOSTNAME) in out, out
    assert "decided alone from its offline document" in out and "per-certificate" in out, out
    assert "Outcome: allowed (offline)." in out, out
    assert j["source"] == "offline" and j["account"] == "ubuntu" and j["state"] == "allowed", j
    rc, out, err = run_cli(D, "audit", "--user", person, "--last-denial")
    assert rc == 0, (rc, out, err)
    assert "Login %s:" % deny["id"] in out, out
    assert "KRL (revoked certificates) was older than offline_krl_max_age" in out, out
    assert "Outcome: denied (offline)." in out, out


def test_explain_callers_and_hostile_txids():
    person, sec = D.user_with_totp()
    b = begin(person)
    path = "/v1/audit/explain/" + b["txid"]
    assert D.api("GET", path)[0] == 401
    assert D.api("GET", path, token="garbage")[0] == 401
    st, r = D.api("GET", path, token=HOST[1])
    assert st == 403 and r["error"] == "forbidden", (st, r)
    # a host never reads another's (or its own) decision path; a session neither
    p = test_ca.Person()
    rule(p.name, ["$user"])
    session = p.login_ok()["session_token"]
    assert D.api("GET", path, token=session)[0] == 403
    assert D.admin("GET", path)[0] == 200
    for bad in ("0" * 32, "zz" * 16, "a" * 31, "a" * 33, "..%2f..%2fusers", "A" * 32):
        st, r = D.admin("GET", "/v1/audit/explain/" + bad)
        assert st == 404 and r["error"] == "not_found", (bad, st, r)
    assert D.admin("POST", path, {})[0] == 405
    rc, _, err = run_cli(D, "explain", "nothex")
    assert rc == 2 and "txid" in err, (rc, err)
    rc, _, err = run_cli(D, "explain", "0" * 32)
    assert rc == 1 and "no login with this txid" in err, (rc, err)
    rc, _, err = run_cli(D, "audit", "--last-denial")
    assert rc == 2, (rc, err)


def test_host_claims_and_offline_codes_are_explained():
    """An offline event the host could not have decided (no offline rule for the pair there) reads
    as the host's claim, never as a login; an offline code's allow and refusals say what the
    agent checked."""
    path = "/v1/hosts/self/offline/events"
    nobody = "p" + secrets.token_hex(4)
    claim = {"id": secrets.token_hex(16), "at": int(time.time()) - 60, "user": "ubuntu",
             "person": nobody, "action": "allow", "reason": "certificate_2fa_offline"}
    coder = test_ca.Person().name
    test_ca.add_policy(users=[coder], accounts=["ubuntu"], hosts={"env": "prod"},
                       offline_codes=3600)
    code_ok = dict(claim, id=secrets.token_hex(16), person=coder, reason="offline_code")
    code_bad = dict(code_ok, id=secrets.token_hex(16), action="deny",
                    reason="offline_code_replayed")
    st, b = D.api("POST", path, {"events": [claim, code_ok, code_bad]}, token=HOST[1])
    assert st == 200 and b["added"] == 3, (st, b)
    out, j = explain(claim["id"])
    assert "kept as the host's claim only" in out, out
    assert "Outcome: not counted (the host's claim only)." in out, out
    assert "allowed" not in out, out
    out, j = explain(code_ok["id"])
    assert "hashed offline codes" in out and "Outcome: allowed (offline)." in out, out
    out, j = explain(code_bad["id"])
    assert "was already used" in out and "Outcome: denied (offline)." in out, out
