# SPDX-License-Identifier: BSD-2-Clause
"""`portcullis explain TXID` and `portcullis audit --user U --last-denial` (issue 18): the
decision path of one login as the control plane saw it, in sentences — the rule that matched or
why none did, the second factor's outcome, the lockout state, failmode — for an allowed, a
wrong-code, a locked, a no-rule and a failmode login; GET /v1/audit/explain/{txid} for each kind
of caller and hostile txids."""
import os

import harness
from harness import Daemon, run_cli, totp_code, wrong_code
import test_agent
import test_ca
from test_agent import Agent

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


def test_failmode_login_has_no_transaction_and_says_so():
    """A host that cannot reach the control plane: the agent answers unreachable, the PAM module
    follows failmode, and the control plane has no transaction. --last-denial says where to
    look instead of pretending, and exits 1."""
    test_agent.setup_module()
    try:
        d = Daemon().start()
        _, tok = d.enroll_host()
        tf = os.path.join(test_agent.fresh_dir("fm-"), "host.token")
        with open(tf, "w") as f:
            f.write(tok + "\n")
        os.chmod(tf, 0o600)
        a = Agent(daemon=d, token_file=tf).start()
        person, _ = d.user_with_totp()
        d.stop()
        r = a.call({"op": "begin", "user": person})
        assert r["ok"] is False and r["error"] == "unreachable", r
        d.start()
        rc, out, err = run_cli(d, "audit", "--user", person, "--last-denial")
        assert rc == 1 and out == "", (rc, out, err)
        assert "no denied login of %s" % person in err and "failmode" in err, err
        assert a.stop() == 0
        d.kill()
    finally:
        test_agent.teardown_module()


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
