# SPDX-License-Identifier: BSD-2-Clause
"""Issue 13: logins that survive the control plane. Step 1: `portcullis login` certificates
carry their second factor (extension 2fa@portcullis), and a rule saying
second_factor per-certificate lets auth/begin answer allow (reason certificate_2fa) for such a
certificate — only for the certificate sshd put in SSH_AUTH_INFO_0, from our user CA, valid,
not revoked, issued by us to that person."""
import base64
import os
import secrets
import struct
import subprocess
import tempfile
import time

import json
import re
import socket

import harness
import test_agent
import test_agent_ca
import test_ca
from harness import Daemon

D = None
TMP = None
PROD = None    # (host_id, token, hostname), labels env=prod
STAGE = None   # labels env=staging
EXT = "2fa@portcullis"


def setup_module():
    global D, TMP, PROD, STAGE
    if not test_ca.shutil.which("ssh-keygen"):
        raise harness.Skip("ssh-keygen not installed")
    # ECDSA: ssh-keygen reads its PEM key file (not an Ed25519 one), so tests can sign with it
    D = Daemon(args=["--ca-key-type", "ecdsa"]).start()
    TMP = tempfile.mkdtemp(prefix="pc-offline-")
    harness._TMP_ROOTS.append(TMP)
    # test_ca's helpers (Person, keygen, add_policy) work on its module globals
    test_ca.D, test_ca.TMP = D, TMP
    for name, labels in (("prod", {"env": "prod"}), ("stage", {"env": "staging"})):
        hn = "off-%s-%s" % (name, secrets.token_hex(3))
        hid, tok = D.enroll_host(hostname=hn, labels=labels)
        if name == "prod":
            PROD = (hid, tok, hn)
        else:
            STAGE = (hid, tok, hn)


def teardown_module():
    for a in test_agent_ca.AGENTS:
        try:
            a.stop()
        except Exception:
            pass
    if D:
        D.kill()


# ---- a reader for the certificate's fields (ed25519 subject keys) -----------------------------

def _str(b, o):
    (n,) = struct.unpack(">I", b[o:o + 4])
    return b[o + 4:o + 4 + n], o + 4 + n


def cert_fields(line):
    blob = base64.b64decode(line.split()[1])
    t, o = _str(blob, 0)
    assert t == b"ssh-ed25519-cert-v01@openssh.com", t
    _, o = _str(blob, o)          # nonce
    _, o = _str(blob, o)          # public key
    serial, ctype = struct.unpack(">QI", blob[o:o + 12])
    o += 12
    key_id, o = _str(blob, o)
    _, o = _str(blob, o)          # principals
    va, vb = struct.unpack(">QQ", blob[o:o + 16])
    o += 16
    _, o = _str(blob, o)          # critical options
    exts_raw, o = _str(blob, o)
    exts, p = {}, 0
    while p < len(exts_raw):
        name, p = _str(exts_raw, p)
        data, p = _str(exts_raw, p)
        exts[name.decode()] = _str(data, 0)[0].decode() if data else None
    return {"serial": serial, "key_id": key_id.decode(), "valid": (va, vb), "extensions": exts}


def auth_info(cert_line):
    """SSH_AUTH_INFO_0 as sshd writes it after a certificate login."""
    return "publickey %s\n" % " ".join(cert_line.split()[:2])


def begin(host, user, cert_line=None):
    extra = {"auth_info": auth_info(cert_line)} if cert_line else {}
    st, r = D.begin(host[1], user, **extra)
    assert st == 200, (st, r)
    return r


def sign_with_our_ca(pub_line, key_id, serial, validity, ext=None):
    """A certificate signed with the control plane's user CA key file by ssh-keygen."""
    d = tempfile.mkdtemp(dir=TMP)
    pub = os.path.join(d, "k.pub")
    with open(pub, "w") as f:
        f.write(pub_line + "\n")
    args = ["ssh-keygen", "-q", "-s", D.path("ca_user.key"), "-I", key_id, "-n", key_id,
            "-z", str(serial), "-V", validity]
    if ext:
        args += ["-O", "extension:%s=%s" % (EXT, ext)]
    r = subprocess.run(args + [pub], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    with open(os.path.join(d, "k-cert.pub")) as f:
        return f.read().strip()


# ---- the extension -------------------------------------------------------------------------

def test_login_certificate_carries_time_and_method_of_its_second_factor():
    p = test_ca.Person()
    test_ca.add_policy(users=[p.name], accounts=["$user"], extensions=["permit-pty"])
    t0 = int(time.time())
    b = p.login_ok()
    f = cert_fields(b["certificate"])
    assert f["serial"] == b["serial"] and f["key_id"] == p.name, f
    assert set(f["extensions"]) == {"permit-pty", EXT}, f
    v = f["extensions"][EXT]
    assert v.startswith("time=") and v.endswith(",method=totp"), v
    at = int(v[5:v.index(",")])
    assert t0 - 5 <= at <= int(time.time()) + 5, (at, t0)


def test_second_factor_option_is_validated_and_listed():
    for bad in ("per-login", "", "PER-CERTIFICATE", 1, None, ["per-certificate"]):
        st, b = D.admin("POST", "/v1/policies", {"name": "sf-" + secrets.token_hex(3),
                                                 "users": ["x"], "accounts": ["x"],
                                                 "second_factor": bad})
        assert st == 400 and b["error"] == "bad_field", (bad, st, b)
    a = test_ca.add_policy(users=["x"], accounts=["x"])
    assert a["second_factor"] == "every-login", a
    c = test_ca.add_policy(users=["x"], accounts=["x"], second_factor="per-certificate")
    assert c["second_factor"] == "per-certificate", c
    st, lst = D.admin("GET", "/v1/policies")
    got = {p["id"]: p.get("second_factor") for p in lst["policies"]}
    assert got[a["id"]] == "every-login" and got[c["id"]] == "per-certificate", got


# ---- auth/begin with a per-certificate rule ---------------------------------------------------

def test_per_certificate_rule_allows_the_certificate_without_a_prompt():
    p = test_ca.Person()
    test_ca.add_policy(users=[p.name], accounts=["ubuntu"], hosts={"env": "prod"},
                       second_factor="per-certificate")
    test_ca.add_policy(users=[p.name], accounts=["ubuntu"], hosts={"env": "staging"})
    b = p.login_ok()
    r = begin(PROD, "ubuntu", b["certificate"])
    assert r["action"] == "allow" and r["reason"] == "certificate_2fa", r
    rows = [a for a in D.audit(user=p.name) if a["action"] == "auth.begin"]
    assert rows and rows[-1]["result"] == "allow" and rows[-1]["reason"] == "certificate_2fa", rows
    assert rows[-1]["host"] == PROD[2], rows[-1]
    # every-login (the default) on the other host: the prompt as today
    r = begin(STAGE, "ubuntu", b["certificate"])
    assert r["action"] == "challenge", r
    # an account no per-certificate rule covers: no allow (here: no rule at all → challenge)
    r = begin(PROD, "root", b["certificate"])
    assert r["action"] != "allow", r
    # no certificate at all: the PAM user is the person (unknown) → deny, as before
    r = begin(PROD, "ubuntu")
    assert r["action"] == "deny", r


def test_one_every_login_rule_among_the_matching_ones_prompts():
    p = test_ca.Person()
    test_ca.add_policy(users=[p.name], accounts=["ubuntu"], second_factor="per-certificate")
    b = p.login_ok()
    assert begin(PROD, "ubuntu", b["certificate"])["action"] == "allow"
    test_ca.add_policy(users=[p.name], accounts=["ubuntu"], hosts={"env": "prod"},
                       second_factor="every-login")
    assert begin(PROD, "ubuntu", b["certificate"])["action"] == "challenge"
    assert begin(STAGE, "ubuntu", b["certificate"])["action"] == "allow"


def test_revoked_certificate_or_user_prompts_again():
    p, q = test_ca.Person(), test_ca.Person()
    for x in (p, q):
        test_ca.add_policy(users=[x.name], accounts=["ubuntu"], second_factor="per-certificate")
    b = p.login_ok()
    assert begin(PROD, "ubuntu", b["certificate"])["action"] == "allow"
    st, r = D.admin("POST", "/v1/certs/revoke", {"serial": b["serial"]})
    assert st == 200, (st, r)
    r = begin(PROD, "ubuntu", b["certificate"])
    assert r["action"] == "challenge", r
    # revocation by key id (disabling the user): deny, never allow
    bq = q.login_ok()
    assert begin(PROD, "ubuntu", bq["certificate"])["action"] == "allow"
    st, r = D.admin("PATCH", "/v1/users/%s" % q.name, {"enabled": False})
    assert st == 200, (st, r)
    r = begin(PROD, "ubuntu", bq["certificate"])
    assert r["action"] == "deny", r


def test_certificates_that_do_not_prove_the_second_factor_prompt():
    p = test_ca.Person()
    test_ca.add_policy(users=[p.name], accounts=["ubuntu"], second_factor="per-certificate")
    b = p.login_ok()
    now = int(time.time())
    ext = "time=%d,method=totp" % (now - 60)
    good = sign_with_our_ca(p.pub, p.name, b["serial"], "-5m:+1h", ext)
    # the same serial/key id re-signed by the CA key with our extension: accepted (the check
    # is of the certificate, not of its bytes)
    assert begin(PROD, "ubuntu", good)["action"] == "allow"
    cases = {
        "no extension": sign_with_our_ca(p.pub, p.name, b["serial"], "-5m:+1h"),
        "expired": sign_with_our_ca(p.pub, p.name, b["serial"], "-2h:-1h", ext),
        "not yet valid": sign_with_our_ca(p.pub, p.name, b["serial"], "+1h:+2h", ext),
        "serial never issued": sign_with_our_ca(p.pub, p.name, 999999999, "-5m:+1h", ext),
        "time in the future": sign_with_our_ca(p.pub, p.name, b["serial"], "-5m:+1h",
                                               "time=%d,method=totp" % (now + 3600)),
        "garbage value": sign_with_our_ca(p.pub, p.name, b["serial"], "-5m:+1h", "yes"),
        "unknown method": sign_with_our_ca(p.pub, p.name, b["serial"], "-5m:+1h",
                                           "time=%d,method=sms" % now),
    }
    for why, cert in cases.items():
        r = begin(PROD, "ubuntu", cert)
        assert r["action"] == "challenge", (why, r)
    # another CA (ssh-keygen's own) with our extension: not ours, no allow
    d = tempfile.mkdtemp(dir=TMP)
    ca = os.path.join(d, "ca")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", ca], check=True)
    pub = os.path.join(d, "k.pub")
    with open(pub, "w") as f:
        f.write(p.pub + "\n")
    subprocess.run(["ssh-keygen", "-q", "-s", ca, "-I", p.name, "-n", p.name, "-z",
                    str(b["serial"]), "-O", "extension:%s=%s" % (EXT, ext), pub], check=True,
                   capture_output=True)
    with open(os.path.join(d, "k-cert.pub")) as f:
        foreign = f.read().strip()
    r = begin(PROD, "ubuntu", foreign)
    assert r["action"] != "allow", r


def test_a_certificate_proves_only_its_own_person():
    """Bob's valid certificate with a per-certificate rule for bob never lets anyone else in:
    the person is the certificate's key id, and the account must be one bob's rule allows."""
    alice, bob = test_ca.Person(), test_ca.Person()
    test_ca.add_policy(users=[bob.name], accounts=["bobacct"], second_factor="per-certificate")
    test_ca.add_policy(users=[alice.name], accounts=["ubuntu"], second_factor="per-certificate")
    bb = bob.login_ok()
    r = begin(PROD, "ubuntu", bb["certificate"])
    assert r["action"] != "allow", r
    r = begin(PROD, "bobacct", bb["certificate"])
    assert r["action"] == "allow", r
    rows = [a for a in D.audit(user=alice.name) if a["action"] == "auth.begin"]
    assert not rows, rows


# ---- GET /v1/hosts/self/offline --------------------------------------------------------------

def offline_doc(host):
    st, b = D.api("GET", "/v1/hosts/self/offline", token=host[1])
    assert st == 200, (st, b)
    return b


def test_offline_document_holds_only_this_hosts_per_certificate_people():
    p, q, r_, dis = (test_ca.Person() for _ in range(4))
    test_ca.add_policy(users=[p.name], accounts=["ubuntu", "$user"], hosts={"env": "prod"},
                       second_factor="per-certificate", extensions=["permit-pty"])
    test_ca.add_policy(users=[q.name], accounts=["ubuntu"], hosts={"env": "staging"},
                       second_factor="per-certificate")
    test_ca.add_policy(users=[r_.name], accounts=["ubuntu"], hosts={"env": "prod"})  # every-login
    test_ca.add_policy(users=[dis.name], accounts=["ubuntu"], second_factor="per-certificate")
    st, b = D.admin("PATCH", "/v1/users/%s" % dis.name, {"enabled": False})
    assert st == 200, (st, b)
    t0 = int(time.time())
    doc = offline_doc(PROD)
    assert abs(doc["generated_at"] - t0) <= 5, doc
    mine = {(e["person"], e["account"]): e["options"] for e in doc["per_certificate"]}
    assert mine.get((p.name, "ubuntu")) == {"extensions": ["permit-pty"]}, doc
    assert (p.name, p.name) in mine, doc
    fps = [e["fingerprints"] for e in doc["per_certificate"] if e["person"] == p.name]
    assert fps and all(f == [p.fp] for f in fps), doc     # a certificate's key must be one
    people = {e["person"] for e in doc["per_certificate"]}
    assert q.name not in people, "a staging-only person reached the prod host: %r" % doc
    assert r_.name not in people, "an every-login person is in the offline document: %r" % doc
    assert dis.name not in people, "a disabled person is in the offline document: %r" % doc
    stage = {e["person"] for e in offline_doc(STAGE)["per_certificate"]}
    assert q.name in stage and p.name not in stage, stage


def test_offline_document_callers():
    """Each kind of caller: only a host token reads it, and only its own document."""
    p = test_ca.Person()
    test_ca.add_policy(users=[p.name], accounts=["ubuntu"], hosts={"env": "prod"},
                       second_factor="per-certificate")
    session = p.login_ok()["session_token"]
    path = "/v1/hosts/self/offline"
    st, b = D.api("GET", path)
    assert st == 401, ("no credential", st, b)
    for garbage in ("x", "0" * 64, "Bearer", "\u00e9" * 10, "a" * 3000):
        st, b = D.api("GET", path, token=garbage)
        assert st in (400, 401), ("garbage token", garbage[:10], st, b)
    st, b = D.api("GET", path, token=session)
    assert st in (401, 403), ("user session", st, b)
    st, b = D.admin("GET", path)
    assert st in (401, 403), ("admin", st, b)
    # another host: its own document, never prod's people
    other = {e["person"] for e in offline_doc(STAGE)["per_certificate"]}
    assert p.name not in other, other
    assert p.name in {e["person"] for e in offline_doc(PROD)["per_certificate"]}
    # a deleted host's token reads nothing
    hn = "off-gone-" + secrets.token_hex(3)
    hid, tok = D.enroll_host(hostname=hn, labels={"env": "prod"})
    assert p.name in {e["person"] for e in offline_doc((hid, tok, hn))["per_certificate"]}
    D.delete_host(hn)
    st, b = D.api("GET", path, token=tok)
    assert st == 401, ("deleted host", st, b)
    # other methods are not routes
    st, b = D.api("POST", path, {}, token=PROD[1])
    assert st in (404, 405), ("POST", st, b)


# ---- POST /v1/hosts/self/offline/events ------------------------------------------------------

def _event(**kw):
    ev = {"id": secrets.token_hex(16), "at": int(time.time()) - 60, "user": "ubuntu",
          "person": "dora", "action": "allow", "reason": "certificate_2fa_offline"}
    ev.update(kw)
    return ev


def _offline_rows(txid):
    return [a for a in D.audit(since=time.time() - 3600) if a.get("txid") == txid]


def test_offline_events_land_in_the_audit_once():
    # a pair of PROD's offline document: a host reports only decisions it could make
    p = test_ca.Person()
    test_ca.add_policy(users=[p.name], accounts=["ubuntu"], hosts={"env": "prod"},
                       second_factor="per-certificate")
    ev = _event(person=p.name)
    path = "/v1/hosts/self/offline/events"
    st, b = D.api("POST", path, {"events": [ev]}, token=PROD[1])
    assert st == 200 and b == {"added": 1, "duplicates": 0, "rejected": 0}, (st, b)
    rows = _offline_rows(ev["id"])
    assert len(rows) == 1, rows
    r = rows[0]
    assert r["action"] == "auth.offline" and r["result"] == "allow" and r["user"] == p.name, r
    assert r["host"] == PROD[2] and r["source"] == "offline", r
    assert r["reason"].startswith("certificate_2fa_offline account=ubuntu"), r
    # the same upload again (a lost reply, a crash before the queue was removed): kept once
    st, b = D.api("POST", path, {"events": [ev, _event(person=p.name, action="deny",
                                                       reason="offline_krl_stale")]},
                  token=PROD[1])
    assert st == 200 and b == {"added": 1, "duplicates": 1, "rejected": 0}, (st, b)
    assert len(_offline_rows(ev["id"])) == 1
    # another host sending that id: still once (ids are global)
    st, b = D.api("POST", path, {"events": [ev]}, token=STAGE[1])
    assert st == 200 and b == {"added": 0, "duplicates": 1, "rejected": 0}, (st, b)


def test_offline_events_callers_and_hostile_input():
    p = test_ca.Person()
    test_ca.add_policy(users=[p.name], accounts=["$user"])
    session = p.login_ok()["session_token"]
    path = "/v1/hosts/self/offline/events"
    body = {"events": [_event()]}
    for who, tok in (("none", None), ("garbage", "0" * 64), ("session", session),
                     ("admin", D.admin_token)):
        st, b = D.api("POST", path, body, token=tok)
        assert st in (401, 403), (who, st, b)
        assert not _offline_rows(body["events"][0]["id"]), who
    # the batch's shape: refused whole, nothing stored
    bad_batches = [
        {"events": "x"}, {}, {"events": [_event() for _ in range(201)]}, {"events": [], "more": 1},
    ]
    for b_ in bad_batches:
        st, b = D.api("POST", path, b_, token=PROD[1])
        assert st == 400, (str(b_)[:80], st, b)
    st, b = D.api("POST", path, {"events": [_event() for _ in range(1000)]}, token=PROD[1])
    assert st == 413, (st, b)
    st, b = D.api("POST", path, raw=b"{not json", token=PROD[1])
    assert st == 400, (st, b)
    # one bad event among good ones: the bad one is rejected on the record (an audit row with
    # result "rejected", never a decision), the good one lands — the agent's queue never sticks
    # on it (before, one bad event refused the upload and the agent resent it forever)
    bad_events = [
        1, _event(id="zz"), _event(id="A" * 31), _event(at=int(time.time()) + 3600),
        _event(at=1), _event(user="../etc"), _event(person=""), _event(action="ignore"),
        _event(reason="totp_ok"), _event(extra=1), _event(action="maybe"),
    ]
    def rejected_rows():
        return {a["id"]: a for a in D.audit(since=time.time() - 3600)
                if a.get("action") == "auth.offline" and a.get("result") == "rejected"
                and a.get("host") == PROD[2]}

    for ev in bad_events:
        good = _event(person=p.name, user=p.name)
        before = rejected_rows()
        st, b = D.api("POST", path, {"events": [good, ev]}, token=PROD[1])
        assert st == 200 and b == {"added": 1, "duplicates": 0, "rejected": 1}, \
            (str(ev)[:80], st, b)
        assert len(_offline_rows(good["id"])) == 1, str(ev)[:80]
        rows = [a for i, a in rejected_rows().items() if i not in before]
        assert len(rows) == 1 and re.match(r"^[a-z_]+: \S", rows[0]["reason"]), (str(ev)[:80], rows)
        if isinstance(ev, dict) and len(ev.get("id", "")) == 32:
            assert rows[0]["txid"] == ev["id"], rows
            # never an allow or deny of anyone by it
            assert [a["result"] for a in _offline_rows(ev["id"])] == ["rejected"], ev
    st, b = D.api("POST", path, {"events": []}, token=PROD[1])
    assert st == 200 and b == {"added": 0, "duplicates": 0, "rejected": 0}, (st, b)


# ---- the agent's offline decisions, at its socket (as pam_portcullis asks) ------------------

def _agent_begin(h, user, cert_line):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(h.socket)
        return test_agent.call(s, {"op": "begin", "user": user, "rhost": "127.0.0.1",
                                   "service": "sshd", "tty": "ssh",
                                   "auth_info": auth_info(cert_line)})


def _doc_names(h, person):
    try:
        with open(h.path("offline.json")) as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return False
    return any(e["person"] == person for e in doc["per_certificate"])


def test_agent_decides_offline_only_for_proven_per_certificate_logins():
    """The control plane stopped: the agent allows a per-certificate certificate of ours for a
    pair of its document; a certificate without our extension, expired, from another CA, or for
    an account the rule does not name is not decided (the module's failmode applies); the
    allow is queued on disk and reaches the audit log once when the control plane is back."""
    test_agent_ca.ROOT = TMP
    os.chmod(TMP, 0o755)
    h = test_agent_ca.Host(D, labels={"env": "prod"}, extra=["krl_interval = 1"])
    h.enroll()
    h.start()
    p = test_ca.Person()
    test_ca.add_policy(users=[p.name], accounts=["ubuntu"], hosts={"env": "prod"},
                       second_factor="per-certificate")
    b = p.login_ok()
    now = int(time.time())
    ext = "time=%d,method=totp" % (now - 60)
    no_ext = sign_with_our_ca(p.pub, p.name, b["serial"], "-5m:+1h")
    expired = sign_with_our_ca(p.pub, p.name, b["serial"], "-2h:-1h", ext)
    d = tempfile.mkdtemp(dir=TMP)
    ca = os.path.join(d, "ca")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", ca], check=True)
    pub = os.path.join(d, "k.pub")
    with open(pub, "w") as f:
        f.write(p.pub + "\n")
    subprocess.run(["ssh-keygen", "-q", "-s", ca, "-I", p.name, "-n", p.name, "-O",
                    "extension:%s=%s" % (EXT, ext), pub], check=True, capture_output=True)
    with open(os.path.join(d, "k-cert.pub")) as f:
        foreign = f.read().strip()
    harness.wait_until(lambda: _doc_names(h, p.name), timeout=20, what="the offline document")
    assert os.stat(h.path("offline.json")).st_mode & 0o077 == 0
    t_mark = max([a["id"] for a in D.audit(since=time.time() - 3600)] or [0])
    D.stop()
    try:
        r = _agent_begin(h, "ubuntu", b["certificate"])
        assert r.get("ok") is True and r["action"] == "allow", r
        assert r["reason"] == "certificate_2fa_offline", r
        for why, cert, user in (("no extension", no_ext, "ubuntu"),
                                ("expired", expired, "ubuntu"),
                                ("another CA", foreign, "ubuntu"),
                                ("an account no rule names", b["certificate"], "root")):
            r = _agent_begin(h, user, cert)
            assert r.get("ok") is False and r.get("error") in ("unreachable", "timeout"), (why, r)
        # principals offline: only for a key registered to the person (a certificate from
        # another CA sshd may trust, for some other key, with the person's key id: nothing)
        rc, out, err, _ = h.principals("ubuntu", p.name, b["serial"], p.fp)
        assert rc == 0 and out.split()[-1:] == [p.name], (rc, out, err)
        other_fp = "SHA256:" + base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        rc, out, err, _ = h.principals("ubuntu", p.name, b["serial"], other_fp)
        assert out.strip() == "", (rc, out, err)
        rc, out, err, _ = h.principals("root", p.name, b["serial"], p.fp)
        assert out.strip() == "", (rc, out, err)
        # on disk: the queue, or the copy being sent (each sync, krl_interval = 1 here, moves
        # the queue to offline-events.sending before it tries the control plane)
        queued = []
        for name in ("offline-events.sending", "offline-events.jsonl"):
            if os.path.exists(h.path(name)):
                with open(h.path(name)) as f:
                    queued += [json.loads(line) for line in f if line.strip()]
        assert len(queued) == 1 and queued[0]["person"] == p.name, queued
        assert queued[0]["user"] == "ubuntu" and queued[0]["action"] == "allow", queued
        # status shows the offline state: cache age, people covered, KRL age, queued events
        rc, out, err = test_agent_ca.run_agent("status", "--config", h.conf, "--json")
        st = json.loads(out)["offline"]
        assert st["people"] >= 1 and 0 <= st["cache_age"] < 60, st
        assert 0 <= st["krl_age"] < 60 and st["krl_max_age"] == 86400, st
        assert st["queued_events"] == 1, st
        rc, out, err = test_agent_ca.run_agent("status", "--config", h.conf)
        assert "offline:" in out and "queued:    1 " in out and "krl:" in out, out
    finally:
        D.start()

    def uploaded():
        return [a for a in D.audit(since=time.time() - 3600)
                if a["id"] > t_mark and a["action"] == "auth.offline"]
    harness.wait_until(uploaded, timeout=30, what="the queued decision in the audit log")
    time.sleep(2.5)              # later syncs must not add it again
    rows = uploaded()
    assert len(rows) == 1 and rows[0]["user"] == p.name and rows[0]["host"] == h.hostname, rows
    assert rows[0]["source"] == "offline" and rows[0]["txid"] == queued[0]["id"], rows
    assert not os.path.exists(h.path("offline-events.jsonl"))
    assert not os.path.exists(h.path("offline-events.sending"))
    rc, out, err = test_agent_ca.run_agent("status", "--config", h.conf, "--json")
    assert json.loads(out)["offline"]["queued_events"] == 0, out


def test_status_counts_each_queued_decision_once_while_a_sync_moves_the_queue():
    """`portcullis-agent status` counts the queue (offline-events.jsonl) and the copy being sent
    (.sending) in its own process, while the daemon's sync may rename the one to the other
    between the two reads: the decisions are still counted once (it counted them twice; seen
    under load in CI). The test plays the sync in the pause a test build offers there."""
    h = test_agent_ca.Host(D)
    h.enroll()  # not started: no sync of its own
    queue, sending = h.path("offline-events.jsonl"), h.path("offline-events.sending")
    with open(queue, "w") as f:
        for i in range(3):
            f.write(json.dumps({"id": "%032x" % i, "person": "nobody", "user": "ubuntu",
                                "action": "allow"}) + "\n")
    os.chmod(queue, 0o600)
    pause = os.path.join(h.dir, "count-pause")
    p = subprocess.Popen([test_agent_ca.AGENT_BIN, "status", "--config", h.conf, "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=dict(os.environ, PC_TEST_QUEUE_COUNT_PAUSE=pause))
    try:
        harness.wait_until(lambda: os.path.exists(pause), timeout=30,
                           what="status to pause between the queue and .sending")
        os.rename(queue, sending)  # what a sync does
        os.unlink(pause)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert json.loads(out)["offline"]["queued_events"] == 3, out + err
    rc, out, err = test_agent_ca.run_agent("status", "--config", h.conf)
    assert "queued:    3 " in out, out + err
