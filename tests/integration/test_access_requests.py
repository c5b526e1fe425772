# SPDX-License-Identifier: BSD-2-Clause
"""Access on request (docs/API.md "Access requests"): rules with requires_request allow nothing
without a grant; /v1/requests for every kind of caller and hostile input; approval with the
approver's own TOTP, never by the requester; the principals decision during and after a grant
(and never on another host); certificates capped at the grant's end; expiry, revoke; the audit
chain (?request=) and the webhook events, in JSON and Slack form."""
import json
import os
import secrets
import shutil
import tempfile
import time
import urllib.parse

import harness
import test_ca
import test_push
from harness import Daemon, run_cli

D = None
HOOK = None
HOSTS = {}          # name -> (host_id, token, hostname)
RULE = None         # ops: group dev as ubuntu on env=prod, approvers "approvers", max 1h
GARBAGE = "f" * 64


def setup_module():
    global D, HOOK
    if not shutil.which("ssh-keygen"):
        raise harness.Skip("ssh-keygen not installed")
    HOOK = test_push._Hook()
    test_push.HOOK = HOOK
    D = Daemon(args=["--webhook-url", "http://127.0.0.1:%d/hook" % HOOK.port]).start()
    test_ca.D = D
    test_ca.TMP = tempfile.mkdtemp(prefix="pc-req-")
    harness._TMP_ROOTS.append(test_ca.TMP)
    for name, labels in (("proddb", {"env": "prod", "role": "db"}),
                         ("prodweb", {"env": "prod", "role": "web"}),
                         ("stagedb", {"env": "staging", "role": "db"})):
        hn = "%s-%s" % (name, secrets.token_hex(3))
        hid, tok = D.enroll_host(hostname=hn, labels=labels)
        HOSTS[name] = (hid, tok, hn)


def teardown_module():
    if D:
        D.kill()
    if HOOK:
        HOOK.close()


# ---- helpers ----------------------------------------------------------------------------------

def group():
    return "g" + secrets.token_hex(4)


def approvers(d=None):
    """An approver group whose members may `portcullis login` (a login needs a rule naming the
    person: this one allows them nothing on the test hosts)."""
    g = group()
    st, b = (d or D).admin("POST", "/v1/policies", {
        "name": "p-" + secrets.token_hex(4), "groups": [g], "accounts": ["nobody"],
        "hosts": {"env": "none"}})
    assert st == 201, (st, b)
    return g


def rule(groups, approvers, hosts=None, max_duration=3600, accounts=("ubuntu",), **kw):
    body = {"groups": list(groups), "accounts": list(accounts), "requires_request": True,
            "approver_group": approvers, "max_duration": max_duration}
    if hosts is not None:
        body["hosts"] = hosts
    body.update(kw)
    return test_ca.add_policy(**body)


class Person(test_ca.Person):
    def __init__(self, groups=None):
        super().__init__(groups=groups)
        self.cert = None
        b = self.login_ok()
        self.session = b["session_token"]
        self.serial = b["serial"]
        self.cert = b["certificate"]

    def relogin(self):
        b = self.login_ok()
        self.serial, self.cert = b["serial"], b["certificate"]
        return b

    def code(self, offset=0):
        return harness.totp_code(self.secret, t=time.time() + offset)

    def api(self, method, path, body=None):
        return D.api(method, path, body, token=self.session)


def ask(p, account="ubuntu", hosts=None, duration=600, reason="deploy fix #42"):
    body = {"account": account, "duration": duration, "reason": reason}
    if hosts is not None:
        body["hosts"] = hosts
    return p.api("POST", "/v1/requests", body)


def ask_ok(p, **kw):
    st, b = ask(p, **kw)
    assert st == 201, (st, b)
    assert b["state"] == "pending" and len(b["id"]) == 32, b
    return b


def approve(approver, rid, code=None):
    """With the approver's code of the next time step: the current one was spent by their
    `portcullis login` (the replay guard takes one code per step)."""
    return approver.api("POST", "/v1/requests/%s/approve" % rid,
                        {"code": code or approver.code(30)})


def wait_next_step():
    """The replay guard takes one code per 30 s step: wait for a fresh step."""
    time.sleep(30.5 - time.time() % 30)


def who_may(host, person, account="ubuntu"):
    q = {"account": account, "key_id": person.name, "serial": str(person.serial)}
    st, b = D.api("GET", "/v1/hosts/self/principals?" + urllib.parse.urlencode(q),
                  token=HOSTS[host][1])
    assert st == 200, (st, b)
    return b


def chain(rid):
    st, b = D.admin("GET", "/v1/audit?request=" + rid)
    assert st == 200, (st, b)
    return [r["action"] for r in b["audit"]]


def setting():
    """A requester, an approver, an outsider, each with a session; a rule for them."""
    dev, appr = group(), approvers()
    r = rule([dev], appr, hosts={"env": "prod"})
    return r, Person(groups=[dev]), Person(groups=[appr]), Person(groups=[dev])


# ---- the rule ---------------------------------------------------------------------------------

def test_policy_request_fields_are_validated():
    g = group()
    base = {"name": "p-" + secrets.token_hex(4), "groups": [g], "accounts": ["ubuntu"]}
    for extra, field in (({"approver_group": "x"}, "approver_group"),
                         ({"max_duration": 600}, "approver_group"),
                         ({"requires_request": True}, "approver_group"),
                         ({"requires_request": True, "approver_group": "a b"}, "approver_group"),
                         ({"requires_request": True, "approver_group": "a",
                           "max_duration": 59}, "max_duration"),
                         ({"requires_request": True, "approver_group": "a",
                           "max_duration": 604801}, "max_duration"),
                         ({"requires_request": True, "approver_group": "a",
                           "max_duration": "1h"}, "max_duration"),
                         ({"requires_request": "yes", "approver_group": "a"}, "requires_request")):
        body = dict(base, **extra)
        st, b = D.admin("POST", "/v1/policies", body)
        assert st == 400 and field in b.get("message", ""), (extra, st, b)
    r = rule([g], "appr")
    assert r["requires_request"] is True and r["approver_group"] == "appr", r
    assert r["max_duration"] == 3600, r


def test_rule_that_requires_a_request_allows_nothing_without_a_grant():
    _, alice, _, _ = setting()
    for h in HOSTS:
        assert who_may(h, alice)["principals"] == [], h


# ---- callers ----------------------------------------------------------------------------------

def test_every_request_endpoint_for_every_kind_of_caller():
    _, alice, bob, dave = setting()
    rid = ask_ok(alice)["id"]
    admin = D.admin_token
    endpoints = (("GET", "/v1/requests", None),
                 ("POST", "/v1/requests", {"account": "ubuntu", "duration": 600, "reason": "x"}),
                 ("POST", "/v1/requests/%s/approve" % rid, {"code": "123456"}),
                 ("POST", "/v1/requests/%s/deny" % rid, {"reason": "no"}),
                 ("POST", "/v1/requests/%s/revoke" % rid, {}))
    for method, path, body in endpoints:
        assert D.api(method, path, body)[0] == 401, (method, path)
        assert D.api(method, path, body, token=GARBAGE)[0] == 401, (method, path)
        st, b = D.api(method, path, body, token=HOSTS["proddb"][1])
        assert st == 403 and b["error"] == "forbidden", (method, path, st, b)
    # the admin token has no person: it neither asks nor approves
    for method, path, body in endpoints[1:3]:
        st, b = D.api(method, path, body, token=admin)
        assert st == 403, (method, path, st, b)
    # another person's session: does not see, deny or revoke alice's request
    st, b = dave.api("GET", "/v1/requests")
    assert st == 200 and rid not in [x["id"] for x in b["requests"]], b
    st, b = dave.api("POST", "/v1/requests/%s/deny" % rid, {"reason": "no"})
    assert st == 403, (st, b)
    st, b = dave.api("POST", "/v1/requests/%s/revoke" % rid, {})
    assert st == 404, (st, b)
    st, b = dave.api("POST", "/v1/requests/%s/approve" % rid, {"code": dave.code()})
    assert st == 403 and b["error"] == "not_an_approver", (st, b)
    # own session sees it; the approver sees it waiting; the admin sees it pending
    for who in (alice, bob):
        st, b = who.api("GET", "/v1/requests")
        assert st == 200 and rid in [x["id"] for x in b["requests"]], (who.name, b)
    st, b = D.admin("GET", "/v1/requests")
    assert st == 200 and rid in [x["id"] for x in b["requests"]], b
    # a session may not read the audit log
    assert alice.api("GET", "/v1/audit?request=" + rid)[0] == 403
    # unknown / malformed ids
    for bad in ("0" * 32, "zz", "A" * 32, "0" * 33):
        st, b = bob.api("POST", "/v1/requests/%s/approve" % bad, {"code": "123456"})
        assert st == 404, (bad, st, b)
    assert D.admin("GET", "/v1/audit?request=zz")[0] == 400


def test_create_refuses_hostile_input():
    _, alice, _, _ = setting()
    good = {"account": "ubuntu", "duration": 600, "reason": "fix"}
    cases = [
        dict(good, reason="x" * 513),
        dict(good, reason=""),
        dict(good, reason="line\nbreak"),
        dict(good, reason="esc\x1b[31m"),
        {k: v for k, v in good.items() if k != "reason"},
        dict(good, duration=0), dict(good, duration=-5), dict(good, duration=59),
        dict(good, duration=604801), dict(good, duration=10 ** 12), dict(good, duration="1h"),
        dict(good, duration=60.5), dict(good, duration=None),
        {k: v for k, v in good.items() if k != "duration"},
        dict(good, account="../root"), dict(good, account=""), dict(good, account="a" * 65),
        dict(good, hosts=["env=prod"]), dict(good, hosts={"env": 1}),
        dict(good, hosts={"k%d" % i: "v" for i in range(33)}),
        dict(good, hosts={"env": "x" * 257}),
        dict(good, extra=1),
    ]
    for body in cases:
        st, b = alice.api("POST", "/v1/requests", body)
        assert st == 400, (body, st, b)
    st, b = D.api("POST", "/v1/requests", raw=b"{not json", token=alice.session)
    assert st == 400, (st, b)
    st, b = D.api("POST", "/v1/requests", raw=b"x" * (70 * 1024), token=alice.session)
    assert st == 413, (st, b)
    # a selector that contradicts the rule's hosts, an account or person no rule names
    for kw in ({"hosts": {"env": "staging"}}, {"account": "root"}):
        st, b = ask(alice, **kw)
        assert st == 403 and b["error"] == "no_rule", (kw, st, b)
    assert alice.api("GET", "/v1/requests")[1]["requests"] == []


def test_pending_requests_are_bounded_per_person():
    _, alice, _, _ = setting()
    for _ in range(10):
        ask_ok(alice)
    st, b = ask(alice)
    assert st == 429, (st, b)


def test_duration_is_capped_by_the_rules_maximum():
    _, alice, _, _ = setting()
    b = ask_ok(alice, duration=7 * 86400)
    assert b["duration"] == 3600, b


# ---- approval ---------------------------------------------------------------------------------

def test_approval_needs_an_approver_of_the_group_and_their_own_code():
    r, alice, bob, dave = setting()
    rid = ask_ok(alice)["id"]
    # the requester never approves, not even with a valid code of their own
    st, b = approve(alice, rid)
    assert st == 403 and b["error"] == "self_approval", (st, b)
    # an approver of another group (who is in the rule's people) is no approver
    st, b = approve(dave, rid)
    assert st == 403 and b["error"] == "not_an_approver", (st, b)
    # the session alone is not enough: a code is required, and a wrong one refuses
    st, b = bob.api("POST", "/v1/requests/%s/approve" % rid, {})
    assert st == 400, (st, b)
    st, b = approve(bob, rid, code=harness.wrong_code(bob.secret))
    assert st == 403 and b["error"] == "second_factor", (st, b)
    # the requester's code in the approver's request: refused too
    st, b = approve(bob, rid, code=alice.code())
    assert st == 403, (st, b)
    assert who_may("proddb", alice)["principals"] == []
    st, b = approve(bob, rid)
    assert st == 200 and b["state"] == "active", (st, b)
    now = time.time()
    assert b["decided_by"] == bob.name and now + 540 < b["ends_at"] <= now + 601, b
    # approving twice, denying an approved request
    st, b = approve(bob, rid, code=bob.code(-30))
    assert st == 409, (st, b)
    st, b = bob.api("POST", "/v1/requests/%s/deny" % rid, {"reason": "late"})
    assert st == 409, (st, b)
    acts = chain(rid)
    assert acts[0] == "request.create" and acts.count("request.approve") == 5, acts


def test_a_grant_allows_exactly_its_person_account_and_hosts():
    dev, appr = group(), approvers()
    rule([dev], appr, hosts={"env": "prod"})
    alice, bob, dave = Person(groups=[dev]), Person(groups=[appr]), Person(groups=[dev])
    # the selector narrows the rule: role=db within env=prod
    rid = ask_ok(alice, hosts={"role": "db"})["id"]
    assert approve(bob, rid)[0] == 200
    b = who_may("proddb", alice)
    assert b["principals"] == [alice.name], b
    assert 0 < b["cache_ttl"] <= 60, b
    # never another host (neither the rule's other host nor the selector's other env)
    assert who_may("prodweb", alice)["principals"] == []
    assert who_may("stagedb", alice)["principals"] == []
    # never another account, never another person of the rule
    assert who_may("proddb", alice, account="root")["principals"] == []
    assert who_may("proddb", dave)["principals"] == []
    assert "grant.login" in chain(rid)


def test_a_selector_that_widens_is_refused_and_never_widens():
    dev, appr = group(), approvers()
    rule([dev], appr, hosts={"env": "prod", "role": "db"})
    alice, bob = Person(groups=[dev]), Person(groups=[appr])
    # asking for the whole env=prod (fewer labels) still only gets role=db
    rid = ask_ok(alice, hosts={"env": "prod"})["id"]
    assert approve(bob, rid)[0] == 200
    assert who_may("proddb", alice)["principals"] == [alice.name]
    assert who_may("prodweb", alice)["principals"] == []
    st, b = ask(alice, hosts={"role": "web"})
    assert st == 403 and b["error"] == "no_rule", (st, b)


def test_standing_rule_answers_keep_their_cache_ttl():
    g = group()
    test_ca.add_policy(groups=[g], accounts=["ubuntu"], hosts={"env": "prod"})
    p = Person(groups=[g])
    b = who_may("proddb", p)
    assert b["principals"] == [p.name] and b["cache_ttl"] == 300, b


def test_deny_and_revoke():
    _, alice, bob, _ = setting()
    rid = ask_ok(alice)["id"]
    st, b = bob.api("POST", "/v1/requests/%s/deny" % rid, {})
    assert st == 400, (st, b)
    st, b = alice.api("POST", "/v1/requests/%s/deny" % rid, {"reason": "mine"})
    assert st == 403, (st, b)
    st, b = bob.api("POST", "/v1/requests/%s/deny" % rid, {"reason": "not today"})
    assert st == 200 and b["state"] == "denied" and b["decision_reason"] == "not today", (st, b)
    st, b = approve(bob, rid)
    assert st == 409, (st, b)
    # revoke a grant: refused at once
    rid = ask_ok(alice)["id"]
    assert approve(bob, rid)[0] == 200
    assert who_may("proddb", alice)["principals"] == [alice.name]
    st, b = alice.api("POST", "/v1/requests/%s/revoke" % rid, {})
    assert st == 200 and b["state"] == "revoked", (st, b)
    assert who_may("proddb", alice)["principals"] == []
    assert alice.api("POST", "/v1/requests/%s/revoke" % rid, {})[0] == 409
    assert chain(rid) == ["request.create", "request.approve", "grant.login", "grant.revoke"]
    # the admin denies and revokes too
    rid = ask_ok(alice)["id"]
    st, b = D.admin("POST", "/v1/requests/%s/deny" % rid, {"reason": "freeze"})
    assert st == 200 and b["state"] == "denied", (st, b)


def test_certificate_issued_during_a_grant_ends_with_it():
    _, alice, bob, _ = setting()
    rid = ask_ok(alice, duration=300)["id"]
    st, g = approve(bob, rid)
    assert st == 200, (st, g)
    wait_next_step()
    b = alice.relogin()
    listing = test_ca.keygen_L(b["certificate"])
    _, valid_to = test_ca.parse_valid(listing)
    assert valid_to <= g["ends_at"] + 1, (valid_to, g["ends_at"])


def test_expiry_of_requests_and_grants():
    """A daemon of its own, moved forward with PC_FAKE_NOW."""
    d = Daemon().start()
    old_d = test_ca.D
    test_ca.D = d
    try:
        hid, tok = d.enroll_host(hostname="exp-" + secrets.token_hex(3), labels={"env": "prod"})
        dev, appr = group(), approvers(d)
        st, b = d.admin("POST", "/v1/policies", {
            "name": "p-exp", "groups": [dev], "accounts": ["ubuntu"], "requires_request": True,
            "approver_group": appr, "max_duration": 3600})
        assert st == 201, (st, b)
        alice, bob = test_ca.Person(groups=[dev]), test_ca.Person(groups=[appr])
        sa = alice.login_ok()
        sb = bob.login_ok()["session_token"]
        body = {"account": "ubuntu", "duration": 120, "reason": "r"}
        st, old = d.api("POST", "/v1/requests", body, token=sa["session_token"])
        assert st == 201, (st, old)
        st, gr = d.api("POST", "/v1/requests", body, token=sa["session_token"])
        st, b = d.api("POST", "/v1/requests/%s/approve" % gr["id"],
                      {"code": harness.totp_code(bob.secret, t=time.time() + 30)}, token=sb)
        assert st == 200, (st, b)
        q = {"account": "ubuntu", "key_id": alice.name, "serial": str(sa["serial"])}
        path = "/v1/hosts/self/principals?" + urllib.parse.urlencode(q)
        assert d.api("GET", path, token=tok)[1]["principals"] == [alice.name]
        d.restart(env={"PC_FAKE_NOW": "+3700"})
        harness.wait_until(lambda: "grant.expire" in [
            r["action"] for r in d.admin("GET", "/v1/audit?request=" + gr["id"])[1]["audit"]],
            what="grant.expire")
        assert d.api("GET", path, token=tok)[1]["principals"] == []
        acts = [r["action"] for r in d.admin("GET", "/v1/audit?request=" + old["id"])[1]["audit"]]
        assert acts == ["request.create", "request.expire"], acts
        # approving an expired request (the session lives 8 h: still valid at +3700)
        st, b = d.api("POST", "/v1/requests/%s/approve" % old["id"],
                      {"code": harness.totp_code(bob.secret, t=time.time() + 3700)}, token=sb)
        assert st == 409, (st, b)
        acts = [r["action"] for r in d.admin("GET", "/v1/audit?request=" + gr["id"])[1]["audit"]]
        assert acts == ["request.create", "request.approve", "grant.login", "grant.expire"], acts
    finally:
        test_ca.D = old_d
        d.kill()


# ---- audit and webhooks -----------------------------------------------------------------------

def hook_events(rid):
    out = []
    with HOOK.lock:
        for r in HOOK.requests:
            try:
                j = json.loads(r["body"])
            except ValueError:
                continue
            if isinstance(j, dict) and j.get("request_id") == rid:
                out.append(j["event"])
    return out


def test_webhook_event_for_each_step():
    _, alice, bob, _ = setting()
    rid = ask_ok(alice)["id"]
    assert approve(bob, rid)[0] == 200
    who_may("proddb", alice)
    assert alice.api("POST", "/v1/requests/%s/revoke" % rid, {})[0] == 200
    want = ["request.create", "request.approve", "grant.login", "grant.revoke"]
    harness.wait_until(lambda: hook_events(rid) == want, what="webhooks %r" % want)


def test_webhook_format_slack():
    d = Daemon(args=["--webhook-url", "http://127.0.0.1:%d/slack" % HOOK.port,
                     "--webhook-format", "slack"]).start()
    old_d = test_ca.D
    test_ca.D = d
    try:
        dev, appr = group(), approvers(d)
        st, _ = d.admin("POST", "/v1/policies", {
            "name": "p-s", "groups": [dev], "accounts": ["ubuntu"], "requires_request": True,
            "approver_group": appr})
        assert st == 201
        alice = test_ca.Person(groups=[dev])
        tok = alice.login_ok()["session_token"]
        st, b = d.api("POST", "/v1/requests",
                      {"account": "ubuntu", "duration": 600, "reason": "hotfix <!channel> & co"},
                      token=tok)
        assert st == 201, (st, b)

        def look():
            with HOOK.lock:
                for r in HOOK.requests:
                    if r["path"] == "/slack" and b["id"].encode() in r["body"]:
                        return json.loads(r["body"])
            return None
        j = harness.wait_until(look, what="slack webhook")
        assert list(j) == ["text"] and "request.create" in j["text"], j
        assert alice.name in j["text"] and "hotfix &lt;!channel&gt; &amp; co" in j["text"], j
        assert "<" not in j["text"], j     # a reason never becomes Slack markup
    finally:
        test_ca.D = old_d
        d.kill()
    bad = Daemon(args=["--webhook-format", "xml"])
    bad.start(wait=False)
    assert bad.proc.wait(timeout=10) != 0


# ---- CLI --------------------------------------------------------------------------------------

def test_cli_policy_request_and_audit_usage():
    j = harness.cli_json(D, "policy", "add", "p-" + secrets.token_hex(3), "--group", "x",
                         "--account", "ubuntu", "--requires-request", "--approver-group", "ap",
                         "--max-duration", "2h")
    assert j["requires_request"] and j["max_duration"] == 7200, j
    for args in (("request", "--account", "u"), ("request", "approve"),
                 ("request", "deny", "0" * 32), ("request", "approve", "zz"),
                 ("audit", "--request", "zz"), ("request", "--account", "u", "--for", "1x",
                                                "--reason", "r")):
        rc, _, err = run_cli(D, *args)
        assert rc == 2, (args, rc, err)


def session_home(p):
    """A HOME whose ~/.config/portcullis/session is p's session (as `portcullis login` leaves)."""
    home = tempfile.mkdtemp(dir=test_ca.TMP)
    os.makedirs(os.path.join(home, ".config", "portcullis"))
    path = os.path.join(home, ".config", "portcullis", "session")
    with open(path, "w") as f:
        f.write(p.session + "\n")
    os.chmod(path, 0o600)
    return home


def test_cli_request_requests_approve_revoke_and_audit():
    _, alice, bob, _ = setting()
    ha, hb = session_home(alice), session_home(bob)
    rc, out, err = run_cli(D, "request", "--account", "ubuntu", "--host", "role=db", "--for", "10m",
                           "--reason", "INC-7", token_file="", env={"HOME": ha})
    assert rc == 0 and len(out.strip()) == 32, (rc, out, err)
    rid = out.strip()
    rc, out, err = run_cli(D, "requests", token_file="", env={"HOME": hb})
    assert rc == 0 and rid in out and "pending" in out and "INC-7" in out, (out, err)
    code = os.path.join(test_ca.TMP, "code-" + alice.name)
    with open(code, "w") as f:
        f.write(alice.code(30) + "\n")
    rc, out, err = run_cli(D, "request", "approve", rid, "--code-file", code, token_file="",
                           env={"HOME": ha})
    assert rc == 1 and "own request" in err, (rc, out, err)
    with open(code, "w") as f:
        f.write(bob.code(30) + "\n")
    rc, out, err = run_cli(D, "request", "approve", rid, "--code-file", code, token_file="",
                           env={"HOME": hb})
    assert rc == 0 and "active until" in out, (rc, out, err)
    assert who_may("proddb", alice)["principals"] == [alice.name]
    rc, out, err = run_cli(D, "request", "revoke", rid, token_file="", env={"HOME": ha})
    assert rc == 0 and "revoked" in out, (rc, out, err)
    assert who_may("proddb", alice)["principals"] == []
    j = harness.cli_json(D, "audit", "--request", rid)
    assert [(r["action"], r["result"]) for r in j["audit"]] == [
        ("request.create", "ok"), ("request.approve", "deny"), ("request.approve", "allow"),
        ("grant.login", "allow"), ("grant.revoke", "ok")], j
