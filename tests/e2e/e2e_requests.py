# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end tests of access on request on the certificate authority's real sshd (e2e_ca.py's
environment: its control plane, agent, sshd and ssh client). The people and the requests go
through the real CLI (`portcullis login`, `request`, `request approve` with a TOTP code file,
`request revoke`, `audit --request`), each person with their own HOME (their own session).

dana may log in as ubuntu on env=prod only through a rule with requires_request, approved by
the group pcreq-approvers; erin is in that group (and has a standing rule elsewhere, so that
she can `portcullis login`). Hooked into run_e2e.py's TESTS by register()."""
import json
import os
import subprocess
import time

import pcenv
from pcenv import harness

import e2e_ca
import test_agent_ca as ca

R = None
PEOPLE = ("pcreq-dana", "pcreq-erin")
APPROVERS = "pcreq-approvers"
_ready = False


def env():
    """e2e_ca's environment plus dana, erin and the rules (once)."""
    global _ready
    c = e2e_ca.env()
    if not _ready:
        for who in PEOPLE:
            c.keyfile[who] = os.path.join(c.keys, who)
            _, c.secret[who] = ca.person_with_key(c.d, c.keyfile[who], name=who)
            pcenv.mkdir_root(os.path.join(c.keys, "home-" + who), 0o700)
        st, b = c.d.admin("PATCH", "/v1/users/pcreq-erin", {"groups": [APPROVERS]})
        assert st == 200, (st, b)
        ca.add_policy(c.d, "pcreq-ops", users=["pcreq-dana"], accounts=["ubuntu"],
                      hosts={"env": "prod"}, requires_request=True, approver_group=APPROVERS,
                      max_duration=3600)
        ca.add_policy(c.d, "pcreq-erin-elsewhere", users=["pcreq-erin"], accounts=["ubuntu"],
                      hosts={"env": "nowhere"})
        _ready = True
    return c


def cli(c, who, *args):
    """The real CLI as who (their HOME holds their session); returns (rc, stdout, stderr)."""
    r = subprocess.run([c.paths["cli"], "--url", c.d.url, "--pin", c.pin] + list(args),
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
                       env=dict(os.environ, HOME=os.path.join(c.keys, "home-" + who)))
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def code_file(c, who, fake_offset=0):
    f = os.path.join(c.keys, "code-" + who)
    pcenv.write_file(f, c.next_code(who, fake_offset) + "\n", 0o600)
    return f


def login(c, who):
    """`portcullis login` as who: a certificate next to their key and a session."""
    rc, out, err = cli(c, who, "login", "--user", who, "--key", c.keyfile[who], "--code-file",
                       code_file(c, who))
    assert rc == 0, "portcullis login %s → %d\n%s%s" % (who, rc, out, err)


def request(c, duration):
    rc, out, err = cli(c, "pcreq-dana", "request", "--account", "ubuntu", "--host", "env=prod",
                       "--for", duration, "--reason", "e2e: fix the database")
    assert rc == 0 and len(out.strip()) == 32, (rc, out, err)
    return out.strip()


def approve(c, who, rid, fake_offset=0):
    return cli(c, who, "request", "approve", rid, "--code-file", code_file(c, who, fake_offset))


def chain(c, rid):
    rc, out, err = cli(c, "pcreq-erin", "--token-file", c.d.path("admin.token"), "--json",
                       "audit", "--request", rid)
    assert rc == 0, (rc, out, err)
    return [(r["action"], r["result"]) for r in json.loads(out)["audit"]]


def dana_ssh(c, fake_offset=0):
    return c.login("ubuntu", c.keyfile["pcreq-dana"],
                   codes=[c.next_code("pcreq-dana", fake_offset)])


# --------------------------------------------------------------------------------------------
# the tests

def req_grant_then_expiry():
    """No grant: refused. Request, self-approval refused, approval with the approver's TOTP:
    in within 5 s. After the grant's end: refused. The audit chain is whole.

    A grant lasts at least 60 s. The request, its approval and the granted login happen while
    the control plane runs BACK seconds in the past (PC_FAKE_NOW, a test build's clock offset;
    the codes are for its time), so the grant ends BACK seconds sooner on the real clock: the
    test waits 60 - BACK seconds for it, not a whole minute. The refusal after the end is
    judged by the control plane back on the real clock."""
    back = 40
    c = env()
    login(c, "pcreq-dana")
    login(c, "pcreq-erin")
    l = dana_ssh(c)
    R.assert_refused(l, " (no grant yet)")
    assert not l.prompts, l.describe()
    c.d.restart(env={"PC_FAKE_NOW": "-%d" % back})
    try:
        rid = request(c, "60s")
        rc, out, err = approve(c, "pcreq-dana", rid, -back)
        assert rc == 1 and "own request" in err, (rc, out, err)
        rc, out, err = approve(c, "pcreq-erin", rid, -back)
        assert rc == 0 and "active" in out, (rc, out, err)
        t_approved = time.time()
        l = dana_ssh(c, -back)
        R.assert_in(l, " (granted)")
        assert time.time() - t_approved < 5, "in %.1fs after the approval" % (
            time.time() - t_approved)
        st, b = c.d.admin("GET", "/v1/requests")
        ends = [r["ends_at"] for r in b["requests"] if r["id"] == rid][0]
    finally:
        c.d.restart(env={})
    assert ends <= time.time() + 61 - back, "the grant ends at %d, now %d" % (ends, time.time())
    # the grant ends; the control plane answers every principals call (no cache while it is up)
    time.sleep(max(0, ends - time.time()) + 2)
    l = dana_ssh(c)
    R.assert_refused(l, " (after the grant's end)")
    assert not l.prompts, l.describe()
    harness.wait_until(lambda: ("grant.expire", "ok") in chain(c, rid), timeout=10,
                       what="grant.expire in the chain")
    got = chain(c, rid)
    want = [("request.create", "ok"), ("request.approve", "deny"), ("request.approve", "allow"),
            ("grant.login", "allow"), ("grant.expire", "ok")]
    assert got == want, "chain %r, want %r" % (got, want)


def req_revoke_refuses_at_once():
    c = env()
    login(c, "pcreq-dana")
    login(c, "pcreq-erin")
    rid = request(c, "10m")
    rc, out, err = approve(c, "pcreq-erin", rid)
    assert rc == 0, (rc, out, err)
    R.assert_in(dana_ssh(c), " (granted)")
    rc, out, err = cli(c, "pcreq-dana", "request", "revoke", rid)
    assert rc == 0 and "revoked" in out, (rc, out, err)
    l = dana_ssh(c)
    R.assert_refused(l, " (after revoke)")
    assert not l.prompts, l.describe()
    got = chain(c, rid)
    assert got == [("request.create", "ok"), ("request.approve", "allow"),
                   ("grant.login", "allow"), ("grant.revoke", "ok")], got


TESTS = [req_grant_then_expiry, req_revoke_refuses_at_once]


def register(run_e2e_module):
    """Called by run_e2e.py: returns the tests to append to its TESTS."""
    global R
    R = run_e2e_module
    return list(TESTS)
