# SPDX-License-Identifier: BSD-2-Clause
"""Issue 13 step 2(b): offline codes. A rule's offline_codes (seconds, at most 72 h) makes the
control plane keep, per (person, host) covered, a salt and the scrypt hashes of the person's
codes for the window, computed by a background job; GET /v1/hosts/self/offline carries only
that host's people, never a seed or a code; an uploaded offline_code event spends the step
online too."""
import base64
import hashlib
import secrets
import time

import harness
import test_ca
from harness import Daemon

D = None
PROD = None    # (host_id, token, hostname), labels env=prod
STAGE = None


def setup_module():
    global D, PROD, STAGE
    if not test_ca.shutil.which("ssh-keygen"):
        raise harness.Skip("ssh-keygen not installed")
    import tempfile
    D = Daemon().start()
    tmp = tempfile.mkdtemp(prefix="pc-offcodes-")
    harness._TMP_ROOTS.append(tmp)
    test_ca.D, test_ca.TMP = D, tmp
    for name, labels in (("prod", {"env": "prod"}), ("stage", {"env": "staging"})):
        hn = "oc-%s-%s" % (name, secrets.token_hex(3))
        hid, tok = D.enroll_host(hostname=hn, labels=labels)
        if name == "prod":
            PROD = (hid, tok, hn)
        else:
            STAGE = (hid, tok, hn)


def teardown_module():
    if D:
        D.kill()


def doc(host):
    st, b = D.api("GET", "/v1/hosts/self/offline", token=host[1])
    assert st == 200, (st, b)
    return b


def entry(host, person):
    for e in doc(host).get("offline_codes", []):
        if e["person"] == person:
            return e
    return None


def covered(host, person, secs):
    """person's entry on host once the job has hashed the whole window (now-1 .. now+secs)."""
    e = entry(host, person)
    if not e:
        return None
    now = harness.totp_step()
    want = {str(s) for s in range(now, now + secs // 30 + 1)}
    return e if want <= set(e["hashes"]) else None


def scrypt(code, salt_hex, step):
    return hashlib.scrypt(code.encode(), salt=bytes.fromhex(salt_hex) + step.to_bytes(8, "big"),
                          n=2048, r=8, p=1, dklen=16).hex()


def test_offline_codes_option_is_validated_and_listed():
    for bad in (-1, 0.5, 59, 259201, 10 ** 12, -10 ** 12, "72h", "", True, [300], {"s": 1}):
        st, b = D.admin("POST", "/v1/policies", {"name": "oc-" + secrets.token_hex(3),
                                                 "users": ["x"], "accounts": ["x"],
                                                 "offline_codes": bad})
        assert st == 400 and b["error"] == "bad_field", (bad, st, b)
    a = test_ca.add_policy(users=["x"], accounts=["x"], offline_codes=259200)
    assert a["offline_codes"] == 259200, a
    b_ = test_ca.add_policy(users=["x"], accounts=["x"])
    assert "offline_codes" not in b_, b_
    st, lst = D.admin("GET", "/v1/policies")
    got = {p["id"]: p.get("offline_codes") for p in lst["policies"]}
    assert got[a["id"]] == 259200 and got[b_["id"]] is None, got
    for p in (a, b_):
        D.admin("DELETE", "/v1/policies/%d" % p["id"])


def test_document_holds_hashes_of_this_hosts_people_never_a_code_or_seed():
    p, q, r_, both = (test_ca.Person() for _ in range(4))
    test_ca.add_policy(users=[p.name], accounts=["ubuntu"], hosts={"env": "prod"},
                       offline_codes=150, extensions=["permit-pty"])
    test_ca.add_policy(users=[q.name], accounts=["ubuntu"], hosts={"env": "staging"},
                       offline_codes=150)
    test_ca.add_policy(users=[r_.name], accounts=["ubuntu"], hosts={"env": "prod"})  # none
    test_ca.add_policy(users=[both.name], accounts=["$user"], offline_codes=90)
    e = harness.wait_until(lambda: covered(PROD, p.name, 150), timeout=60,
                           what="the job to hash p's window on prod")
    assert e["accounts"]["ubuntu"]["options"] == {"extensions": ["permit-pty"]}, e
    assert e["accounts"]["ubuntu"]["until"] >= time.time() + 140, e
    assert e["fingerprints"] == [p.fp], e
    assert entry(PROD, q.name) is None, "a staging-only person reached prod"
    assert entry(PROD, r_.name) is None, "a person without offline codes is in the document"
    assert entry(STAGE, p.name) is None, "a prod-only person reached staging"
    # the hashes are scrypt(code, salt || step): check one, and that the salt is per host
    now = harness.totp_step()
    assert e["hashes"][str(now)] == scrypt(harness.totp_code(p.secret, step=now), e["salt"], now)
    e2 = harness.wait_until(lambda: covered(STAGE, both.name, 90), timeout=60, what="both, stage")
    e1 = harness.wait_until(lambda: covered(PROD, both.name, 90), timeout=60, what="both, prod")
    assert e1["salt"] != e2["salt"] and e1["hashes"][str(now)] != e2["hashes"][str(now)]
    # never a code of the window, never the seed (raw, hex, base32)
    text = __import__("json").dumps(doc(PROD))
    for s in range(now - 1, now + 150 // 30 + 2):
        code = harness.totp_code(p.secret, step=s)
        assert '"%s"' % code not in text and ":%s," % code not in text, (s, code)
    seed = harness.b32decode_loose(p.secret)
    for form in (p.secret, p.secret.upper(), base64.b32encode(seed).decode(), seed.hex(),
                 base64.b64encode(seed).decode()):
        assert form not in text and form.lower() not in text


def test_offline_code_event_spends_the_step_online_once():
    p = test_ca.Person()
    test_ca.add_policy(users=[p.name], accounts=["ubuntu"], hosts={"env": "prod"},
                       offline_codes=120)
    harness.wait_until(lambda: covered(PROD, p.name, 120), timeout=60, what="p's window")
    # the online login below uses now-1, accepted only while the clock is still in step now
    now = harness.step_with_time_left(15)
    path = "/v1/hosts/self/offline/events"

    def ev(**kw):
        e = {"id": secrets.token_hex(16), "at": int(time.time()), "user": "ubuntu",
             "person": p.name, "action": "allow", "reason": "offline_code", "step": now}
        e.update(kw)
        return e
    # hostile steps: the event is rejected (an audit row "rejected"), never spends a step
    for bad in (-1, "x", 1.5, None, [now]):
        st, b = D.api("POST", path, {"events": [ev(step=bad)]}, token=PROD[1])
        assert st == 200 and b == {"added": 0, "duplicates": 0, "rejected": 1}, (bad, st, b)
    # another host (it holds no codes of p) cannot spend p's step
    st, b = D.api("POST", path, {"events": [ev()]}, token=STAGE[1])
    assert st == 200 and b["added"] == 1, (st, b)
    # a step far ahead (a host that would lock p out online) is not marked
    st, b = D.api("POST", path, {"events": [ev(step=now + 1000)]}, token=PROD[1])
    assert st == 200 and b["added"] == 1, (st, b)
    p.login_ok(code=harness.totp_code(p.secret, step=now - 1))   # still fresh: online works
    # the host that holds them: the step is spent, the same code is refused online
    good = ev(step=now)
    st, b = D.api("POST", path, {"events": [good]}, token=PROD[1])
    assert st == 200 and b == {"added": 1, "duplicates": 0, "rejected": 0}, (st, b)
    st, b = D.api("POST", path, {"events": [good]}, token=PROD[1])
    assert st == 200 and b == {"added": 0, "duplicates": 1, "rejected": 0}, (st, b)
    rows = [a for a in D.audit(since=time.time() - 60) if a.get("txid") == good["id"]]
    assert len(rows) == 1 and rows[0]["source"] == "offline", rows
    assert rows[0]["reason"].startswith("offline_code account=ubuntu"), rows
    st, b = p.login(code=harness.totp_code(p.secret, step=now))
    assert st != 200, ("the offline code was accepted online", st, b)


def test_offline_document_callers_see_no_codes():
    p = test_ca.Person()
    test_ca.add_policy(users=[p.name], accounts=["ubuntu"], hosts={"env": "prod"},
                       offline_codes=60)
    harness.wait_until(lambda: covered(PROD, p.name, 60), timeout=60, what="p's window")
    session = p.login_ok()["session_token"]
    path = "/v1/hosts/self/offline"
    for who, tok in (("none", None), ("garbage", "0" * 64), ("session", session),
                     ("admin", D.admin_token)):
        st, b = D.api("GET", path, token=tok)
        assert st in (401, 403) and "offline_codes" not in (b or {}), (who, st, b)
    assert entry(STAGE, p.name) is None


def _totp(h, txid, code):
    import socket
    import test_agent
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(h.socket)
        return test_agent.call(s, {"op": "totp", "txid": txid, "code": code})


def test_agent_checks_offline_codes_spends_them_and_locks_after_wrong_ones():
    """A real agent, the control plane stopped: begin for a person with offline codes answers a
    totp challenge; the right code → allow, again → deny (replayed), a code of an earlier step
    → deny; wrong codes count to a local lock (5); a person without offline codes: not decided
    (failmode); every decision is queued with its step; status shows the people covered and the
    window end."""
    import json
    import os
    import test_agent_ca
    import test_offline
    test_agent_ca.ROOT = test_ca.TMP
    os.chmod(test_ca.TMP, 0o755)
    h = test_agent_ca.Host(D, labels={"env": "prod"}, extra=["krl_interval = 1"])
    h.enroll()
    h.start()
    p, q = test_ca.Person(), test_ca.Person()
    test_ca.add_policy(users=[p.name], accounts=["ubuntu"], hosts={"env": "prod"},
                       offline_codes=120)
    test_ca.add_policy(users=[q.name], accounts=["ubuntu"], hosts={"env": "prod"})
    harness.step_with_time_left(10)  # the previous step's code is good only within this step
    b = p.login_ok(code=harness.totp_code(p.secret, offset=-1))
    bq = q.login_ok()

    def ready():
        try:
            with open(h.path("offline.json")) as f:
                d = json.load(f)
        except (OSError, ValueError):
            return False
        now = harness.totp_step()
        return any(e["person"] == p.name and str(now + 1) in e["hashes"]
                   for e in d.get("offline_codes", []))
    harness.wait_until(ready, timeout=60, what="the agent's offline codes")
    D.stop()
    try:
        r = test_offline._agent_begin(h, "ubuntu", bq["certificate"])
        assert r.get("ok") is False and r.get("error") in ("unreachable", "timeout"), r
        r = test_offline._agent_begin(h, "ubuntu", b["certificate"])
        assert r.get("ok") is True and r["action"] == "challenge" and r["factors"] == ["totp"], r
        tx = r["txid"]
        now = harness.totp_step()
        code = harness.totp_code(p.secret, step=now)
        r = _totp(h, tx, code)
        assert r.get("ok") is True and r["result"] == "allow", r
        r = _totp(h, tx, code)
        assert r["result"] == "deny" and r["reason"] == "offline_code_replayed", r
        r = _totp(h, tx, harness.totp_code(p.secret, step=now - 1))
        assert r["result"] == "deny" and r["reason"] == "offline_code_replayed", r
        with open(h.path("offline-codes-state.json")) as f:
            assert json.load(f)[p.name]["spent_step"] == now
        wrong = harness.wrong_code(p.secret)
        reasons = [_totp(h, tx, wrong)["reason"] for _ in range(4)]
        assert reasons[:3] == ["offline_code_wrong"] * 3, reasons   # failures 3..5: lock at 5
        assert reasons[3] == "offline_code_locked", reasons
        r = _totp(h, tx, harness.totp_code(p.secret, step=now + 1))
        assert r["result"] == "deny" and r["reason"] == "offline_code_locked", r
        r = test_offline._agent_begin(h, "ubuntu", b["certificate"])
        assert r.get("ok") is False, ("a locked person got a challenge", r)
        # the queue, oldest first: a failed upload attempt (krl_interval = 1, the control plane
        # stopped) leaves earlier events renamed to offline-events.sending
        q_ = []
        for name in ("offline-events.sending", "offline-events.jsonl"):
            if os.path.exists(h.path(name)):
                with open(h.path(name)) as f:
                    q_ += [json.loads(line) for line in f if line.strip()]
        assert [e["action"] for e in q_].count("allow") == 1 and len(q_) == 8, q_
        assert [e for e in q_ if e["action"] == "allow"][0]["step"] == now, q_
        rc, out, err = test_agent_ca.run_agent("status", "--config", h.conf, "--json")
        st = json.loads(out)["offline"]
        assert st["offline_codes_people"] >= 1, st        # p, and others of earlier tests
        assert time.time() < st["offline_codes_until"] <= time.time() + 259200 + 60, st
        rc, out, err = test_agent_ca.run_agent("status", "--config", h.conf)
        assert "codes:     offline codes of %d people here" % st["offline_codes_people"] in out, \
            out
    finally:
        h.stop()
        D.start()


def test_cli_policy_add_offline_codes():
    j = harness.cli_json(D, "policy", "add", "oc-" + secrets.token_hex(3), "--user", "x",
                         "--account", "ubuntu", "--offline-codes", "8h")
    assert j["offline_codes"] == 28800, j
    for bad in ("73h", "0", "-1h", "59s", "x", "99999999999999999999"):
        rc, _, err = harness.run_cli(D, "policy", "add", "oc-" + secrets.token_hex(3), "--user",
                                     "x", "--account", "ubuntu", "--offline-codes", bad)
        assert rc == 2, (bad, rc, err)
    rc, out, _ = harness.run_cli(D, "policy", "list")
    assert rc == 0 and "OFFLINE-CODES" in out and "28800" in out, out
    D.admin("DELETE", "/v1/policies/%d" % j["id"])
