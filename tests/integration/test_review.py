# SPDX-License-Identifier: BSD-2-Clause
"""An attacker's review of the features merged on 2026-12-05 (access requests, offline
decisions): each test is one hole found, asserted on what the control plane answers or writes
(the audit log, the offline document a host is given)."""
import secrets
import shutil
import tempfile
import time

import harness
import test_ca
import test_push
from harness import Daemon

D = None
HOOK = None
HOSTS = {}          # name -> (host_id, token, hostname)
EVENTS = "/v1/hosts/self/offline/events"


def setup_module():
    global D, HOOK
    if not shutil.which("ssh-keygen"):
        raise harness.Skip("ssh-keygen not installed")
    HOOK = test_push._Hook()
    test_push.HOOK = HOOK
    D = Daemon(args=["--webhook-url", "http://127.0.0.1:%d/hook" % HOOK.port]).start()
    test_ca.D = D
    test_ca.TMP = tempfile.mkdtemp(prefix="pc-review-")
    harness._TMP_ROOTS.append(test_ca.TMP)
    for name, labels in (("prod", {"env": "prod"}), ("stage", {"env": "staging"})):
        hn = "rv-%s-%s" % (name, secrets.token_hex(3))
        hid, tok = D.enroll_host(hostname=hn, labels=labels)
        HOSTS[name] = (hid, tok, hn)


def teardown_module():
    if D:
        D.kill()
    if HOOK:
        HOOK.close()


def _event(person, **kw):
    ev = {"id": secrets.token_hex(16), "at": int(time.time()) - 60, "user": "ubuntu",
          "person": person, "action": "allow", "reason": "certificate_2fa_offline"}
    ev.update(kw)
    return ev


def _rows(txid):
    return [a for a in D.audit(since=time.time() - 3600) if a.get("txid") == txid]


def _offline_people(host):
    st, b = D.api("GET", "/v1/hosts/self/offline", token=HOSTS[host][1])
    assert st == 200, (st, b)
    return {(e["person"], e["account"]) for e in b["per_certificate"]}


def test_offline_events_cannot_forge_logins_of_people_the_host_has_no_rule_for():
    """A host (its root, or anyone with its token) uploads offline events: it may only report
    decisions it could have made — for a (person, account) its offline document holds. Before:
    any person, even one allowed only on other hosts or none at all, got an audit row
    auth.offline allow on this host (a forged login in the record)."""
    here, elsewhere = test_ca.Person(), test_ca.Person()
    test_ca.add_policy(users=[here.name], accounts=["ubuntu"], hosts={"env": "prod"},
                       second_factor="per-certificate")
    test_ca.add_policy(users=[elsewhere.name], accounts=["ubuntu"], hosts={"env": "staging"},
                       second_factor="per-certificate")
    assert (here.name, "ubuntu") in _offline_people("prod")
    ok = _event(here.name)
    forged = [_event(elsewhere.name), _event("nobody" + secrets.token_hex(3)),
              _event(here.name, user="root")]
    st, b = D.api("POST", EVENTS, {"events": [ok] + forged}, token=HOSTS["prod"][1])
    assert st == 200, (st, b)
    rows = _rows(ok["id"])
    assert len(rows) == 1 and rows[0]["result"] == "allow", rows
    assert rows[0]["user"] == here.name and rows[0]["host"] == HOSTS["prod"][2], rows
    for ev in forged:
        rows = _rows(ev["id"])
        allows = [r for r in rows if r["action"] == "auth.offline" and r["result"] == "allow"]
        assert not allows, "a host forged an offline login of %s as %s: %r" % (
            ev["person"], ev["user"], rows)
    # the person's own audit trail shows no login on prod
    assert not [r for r in D.audit(user=elsewhere.name)
                if r["action"] == "auth.offline" and r["result"] == "allow"]


def _approvers():
    g = "g" + secrets.token_hex(4)
    test_ca.add_policy(groups=[g], accounts=["nobody"], hosts={"env": "none"})
    return g


def test_offline_document_never_outlives_a_grant():
    """A per-certificate rule that requires a request: while the grant runs, the pair must not
    reach a host's offline document, which carries no end and is used for as long as the KRL
    is fresh (24 h by default). Before: the pair was listed; after the grant was revoked (or
    ended) an agent that cannot reach the control plane still allowed the person's
    certificate — valid for its own max_ttl when the person has a standing rule anywhere."""
    dev, appr = "g" + secrets.token_hex(4), _approvers()
    test_ca.add_policy(groups=[dev], accounts=["ubuntu"], hosts={"env": "prod"},
                       second_factor="per-certificate", requires_request=True,
                       approver_group=appr, max_duration=3600)
    # a standing rule elsewhere: login certificates are not capped at the grant's end
    test_ca.add_policy(groups=[dev], accounts=["ubuntu"], hosts={"env": "staging"},
                       max_ttl=86400)
    alice, bob = test_ca.Person(groups=[dev]), test_ca.Person(groups=[appr])
    a_sess = alice.login_ok()["session_token"]
    b_sess = bob.login_ok()["session_token"]
    assert (alice.name, "ubuntu") not in _offline_people("prod")
    st, req = D.api("POST", "/v1/requests", {"account": "ubuntu", "duration": 600,
                                             "reason": "incident"}, token=a_sess)
    assert st == 201, (st, req)
    st, b = D.api("POST", "/v1/requests/%s/approve" % req["id"],
                  {"code": harness.totp_code(bob.secret, t=time.time() + 30)}, token=b_sess)
    assert st == 200 and b["state"] == "active", (st, b)
    assert (alice.name, "ubuntu") not in _offline_people("prod"), \
        "a grant's access reached the offline document, which outlives the grant"
    st, b = D.api("POST", "/v1/requests/%s/revoke" % req["id"], {}, token=a_sess)
    assert st == 200, (st, b)
    assert (alice.name, "ubuntu") not in _offline_people("prod")


def test_a_user_session_does_not_lift_its_address_past_the_connection_caps():
    """Connection admission: an address that proved itself recently is 'known' and may hold up
    to --max-unauthenticated unproven connections, past the per-address limit and the overall
    cap. A user session (anyone with an account and a `portcullis login`) made its address
    known: from it a person then held every unauthenticated slot and each new address (a new
    host enrolling, the admin's laptop, another person's first call) was refused at accept.
    Only a host's or the admin's token makes an address known; a session still proves its own
    connection."""
    import test_starvation as ts
    d = Daemon(args=["--max-connections", "32", "--max-unauthenticated", "6",
                     "--max-per-address", "2", "--handshake-timeout", "60s"]).start()
    held = []
    saved = test_ca.D, test_ca.TMP
    try:
        test_ca.D, test_ca.TMP = d, tempfile.mkdtemp(prefix="pc-review-adm-")
        harness._TMP_ROOTS.append(test_ca.TMP)
        p = test_ca.Person()
        test_ca.add_policy(users=[p.name], accounts=["nobody"], hosts={"env": "none"})
        session = p.login_ok()["session_token"]
        user_addr, fresh = "127.0.0.31", "127.0.0.32"
        st, b = d.api("GET", "/v1/requests", token=session, source=user_addr)
        assert st == 200, (st, b)
        for _ in range(6):
            held.append(ts.half_open(d, user_addr))
        time.sleep(0.3)
        assert not ts.refused(d, fresh), \
            "one person's session let their address take every unauthenticated slot"
    finally:
        test_ca.D, test_ca.TMP = saved
        for s in held:
            s.close()
        d.kill()


def test_metrics_bad_tokens_are_counted_and_throttled_like_the_api():
    """GET /metrics checks a bearer token (the admin's) for addresses outside --metrics-allow.
    Before: its 401s were not counted as refusals, so one address could guess tokens there
    without end (every other endpoint answers 429 past the refusal limit) and the refusal
    summary never showed it."""
    src = "127.0.0.41"
    statuses = [D.api("GET", "/metrics", token=secrets.token_hex(32), source=src)[0]
                for _ in range(130)]
    assert statuses[0] == 401, statuses[:3]
    assert statuses[-1] == 429, "token guessing at /metrics is never throttled: %r" % (
        sorted(set(statuses)),)
    # and the address is throttled on the API as well, while the admin token still works
    st, _ = D.api("GET", "/v1/hosts", token=secrets.token_hex(32), source=src)
    assert st == 429, st
    st, body = D.api("GET", "/metrics", token=D.admin_token, source=src)
    assert st == 200, (st, body)


def test_no_self_approval_through_a_second_account_holding_the_same_key():
    """Nobody approves their own request: a person who holds a second account in the approver
    group (a separate admin account is common) with the same registered SSH key is the same
    holder. Before: that second account approved the request (200, grant active)."""
    dev, appr = "g" + secrets.token_hex(4), _approvers()
    test_ca.add_policy(groups=[dev], accounts=["ubuntu"], hosts={"env": "prod"},
                       requires_request=True, approver_group=appr, max_duration=3600)
    alice, alice_adm = test_ca.Person(groups=[dev]), test_ca.Person(groups=[appr])
    st, b = D.admin("POST", "/v1/users/%s/keys" % alice_adm.name, {"public_key": alice.pub})
    assert st == 201, (st, b)
    a_sess = alice.login_ok()["session_token"]
    adm_sess = alice_adm.login_ok()["session_token"]
    st, req = D.api("POST", "/v1/requests", {"account": "ubuntu", "duration": 600,
                                             "reason": "me again"}, token=a_sess)
    assert st == 201, (st, req)
    st, b = D.api("POST", "/v1/requests/%s/approve" % req["id"],
                  {"code": harness.totp_code(alice_adm.secret, t=time.time() + 30)},
                  token=adm_sess)
    assert st == 403 and b.get("error") == "self_approval", \
        "a second account with the requester's own key approved the request: %s %r" % (st, b)
    st, b = D.admin("GET", "/v1/requests")
    mine = [r for r in b["requests"] if r["id"] == req["id"]]
    assert mine and mine[0]["state"] == "pending", mine
