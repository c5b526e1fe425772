# SPDX-License-Identifier: BSD-2-Clause
"""The certificate authority half of the control plane (docs/API-CA.md): CA keys, policy,
user SSH keys, `portcullis login` (SSHSIG + TOTP → certificate + session), host certificates,
the principals decision, revocation and the KRL, sessions, the authorization matrix of the new
endpoints, audit rows, and the CLI commands. Checked against the real ssh-keygen."""
import base64
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.parse

import harness
from harness import Daemon, run_cli

D = None
TMP = None
HOST_PROD = None     # (host_id, token, hostname) labels env=prod
HOST_STAGE = None    # labels env=staging


def setup_module():
    global D, TMP, HOST_PROD, HOST_STAGE
    if not shutil.which("ssh-keygen"):
        raise harness.Skip("ssh-keygen not installed")
    D = Daemon().start()
    TMP = tempfile.mkdtemp(prefix="pc-ca-")
    harness._TMP_ROOTS.append(TMP)
    for name, labels in (("prod", {"env": "prod"}), ("stage", {"env": "staging"})):
        hn = "web-%s-%s" % (name, secrets.token_hex(3))
        hid, tok = D.enroll_host(hostname=hn, labels=labels)
        if name == "prod":
            HOST_PROD = (hid, tok, hn)
        else:
            HOST_STAGE = (hid, tok, hn)


def teardown_module():
    if D:
        D.kill()


# ---- helpers ----------------------------------------------------------------------------------

def keygen(kind="ed25519"):
    """A fresh key pair; returns (private key path, public key line)."""
    d = tempfile.mkdtemp(dir=TMP)
    path = os.path.join(d, "id_" + kind)
    args = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "test@example", "-f", path]
    if kind == "rsa":
        args[4:4] = ["-b", "2048"]
    subprocess.run(args, check=True, stdin=subprocess.DEVNULL)
    with open(path + ".pub") as f:
        return path, f.read().strip()


def sshsig(priv, data, ns="portcullis-login"):
    d = tempfile.mkdtemp(dir=TMP)
    p = os.path.join(d, "msg")
    with open(p, "wb") as f:
        f.write(data)
    subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-n", ns, "-f", priv, p], check=True,
                   stdin=subprocess.DEVNULL, capture_output=True)
    with open(p + ".sig") as f:
        return f.read()


def keygen_L(text):
    d = tempfile.mkdtemp(dir=TMP)
    p = os.path.join(d, "x-cert.pub")
    with open(p, "w") as f:
        f.write(text.strip() + "\n")
    r = subprocess.run(["ssh-keygen", "-L", "-f", p], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def cert_field(listing, name):
    m = re.search(r"^\s*%s: (.*)$" % re.escape(name), listing, re.M)
    return m.group(1).strip() if m else None


def cert_block(listing, name):
    """The indented lines under 'Principals:' / 'Extensions:' / 'Critical Options:'."""
    lines = listing.splitlines()
    for i, l in enumerate(lines):
        if l.strip().startswith(name + ":"):
            rest = l.split(":", 1)[1].strip()
            if rest:
                return [] if rest == "(none)" else [rest]
            out = []
            for m in lines[i + 1:]:
                if m.startswith("                "):
                    out.append(m.strip())
                else:
                    break
            return out
    return None


def permit_extensions(listing):
    """The Extensions block without our 2fa@portcullis (issue 13: every login certificate
    carries it, ssh-keygen lists it as an unknown option; test_offline checks its value)."""
    ext = cert_block(listing, "Extensions")
    ours = [e for e in ext if e.startswith("2fa@portcullis ")]
    assert len(ours) == 1, listing
    return [e for e in ext if e not in ours]


def parse_valid(listing):
    v = cert_field(listing, "Valid")
    m = re.match(r"from (\S+) to (\S+)", v)
    conv = lambda s: int(time.mktime(time.strptime(s, "%Y-%m-%dT%H:%M:%S")))
    return conv(m.group(1)), conv(m.group(2))


def add_policy(**kw):
    body = {"name": "p-" + secrets.token_hex(4)}
    body.update(kw)
    st, b = D.admin("POST", "/v1/policies", body)
    assert st == 201, "POST /v1/policies %r → %s %r" % (body, st, b)
    return b


class Person:
    """A user with a registered key and TOTP."""

    def __init__(self, groups=None, kind="ed25519", push=True):
        self.name = D.create_user(groups=groups, push=push)
        self.secret, _ = D.enroll_totp(self.name)
        self.priv, self.pub = keygen(kind)
        st, b = D.admin("POST", "/v1/users/%s/keys" % self.name, {"public_key": self.pub})
        assert st == 201, (st, b)
        self.fp = b["fingerprint"]

    def start(self, ttl=None, pub=None):
        body = {"user": self.name, "public_key": pub or self.pub}
        if ttl is not None:
            body["ttl"] = ttl
        return D.api("POST", "/v1/login/start", body)

    def login(self, ttl=None, code=None):
        st, s = self.start(ttl)
        assert st == 200, (st, s)
        sig = sshsig(self.priv, base64.b64decode(s["challenge"]))
        return D.api("POST", "/v1/login/finish", {
            "login_id": s["login_id"], "signature": sig,
            "code": code or harness.totp_code(self.secret)})

    def login_ok(self, **kw):
        st, b = self.login(**kw)
        assert st == 200, "login of %s → %s %r" % (self.name, st, b)
        return b


def principals(host, account, key_id, serial, fp=None):
    q = {"account": account, "key_id": key_id, "serial": str(serial)}
    if fp:
        q["fingerprint"] = fp
    st, b = D.api("GET", "/v1/hosts/self/principals?" + urllib.parse.urlencode(q), token=host[1])
    assert st == 200, (st, b)
    assert b.get("cache_ttl") == 300, b
    return b["principals"]


def krl_check(cert_lines, path="/v1/krl"):
    """Fetches the KRL at path and returns ({line: revoked?}, version)."""
    st, _, hdrs, raw = D.request("GET", path)
    assert st == 200 and hdrs.get("content-type") == "application/octet-stream", (st, hdrs)
    assert raw.startswith(b"SSHKRL\n\0"), raw[:16]
    d = tempfile.mkdtemp(dir=TMP)
    krl = os.path.join(d, "krl")
    with open(krl, "wb") as f:
        f.write(raw)
    out = {}
    for i, line in enumerate(cert_lines):
        p = os.path.join(d, "c%d-cert.pub" % i)
        with open(p, "w") as f:
            f.write(line + "\n")
        r = subprocess.run(["ssh-keygen", "-Q", "-f", krl, p], capture_output=True, text=True)
        assert ("REVOKED" in r.stdout) == (r.returncode != 0), (r.returncode, r.stdout, r.stderr)
        out[line] = "REVOKED" in r.stdout
    return out, int(hdrs["x-krl-version"])


def audit_actions(user=None):
    return [(r["action"], r["result"], r["reason"]) for r in D.audit(user=user)]


# ---- CA public keys --------------------------------------------------------------------------

def test_ca_public_keys_files_and_restart():
    got = {}
    for which in ("user", "host"):
        st, b = D.api("GET", "/v1/ca/%s.pub" % which)
        assert st == 200, (st, b)
        line = b["public_key"]
        assert line.startswith("ssh-ed25519 ") and line.endswith(" portcullis-%s-ca" % which), line
        p = os.path.join(tempfile.mkdtemp(dir=TMP), "ca.pub")
        with open(p, "w") as f:
            f.write(line + "\n")
        r = subprocess.run(["ssh-keygen", "-l", "-f", p], capture_output=True, text=True)
        assert r.returncode == 0 and "ED25519" in r.stdout, r
        assert harness.file_mode(D.path("ca_%s.key" % which)) == 0o600
        got[which] = line
    assert got["user"] != got["host"]
    D.restart()
    for which in ("user", "host"):
        assert D.api("GET", "/v1/ca/%s.pub" % which)[1]["public_key"] == got[which]


def test_ca_key_type_ecdsa_and_rsa_and_bad():
    for kind, prefix in (("ecdsa", "ecdsa-sha2-nistp256 "), ("rsa", "ssh-rsa ")):
        d = Daemon(args=["--ca-key-type", kind]).start()
        st, b = d.api("GET", "/v1/ca/user.pub")
        assert st == 200 and b["public_key"].startswith(prefix), b
        d.kill()
    r = subprocess.run([harness.DAEMON_BIN, "--ca-key-type", "dsa", "--listen", "127.0.0.1:1"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--ca-key-type" in r.stderr, r
    r = subprocess.run([harness.DAEMON_BIN, "--help"], capture_output=True, text=True)
    assert "--ca-key-type" in r.stdout and "--host-cert-ttl" in r.stdout


# ---- policy ----------------------------------------------------------------------------------

def test_policy_crud_validation_and_audit():
    p = add_policy(users=["alice"], accounts=["ubuntu"])
    assert p["require_2fa"] is True and p["max_ttl"] == 28800 and p["hosts"] == {}
    assert p["extensions"] == ["permit-pty", "permit-user-rc"], p
    assert isinstance(p["id"], int)
    st, b = D.admin("GET", "/v1/policies")
    assert st == 200 and any(x["id"] == p["id"] and x["name"] == p["name"] for x in b["policies"])
    st, b = D.admin("POST", "/v1/policies", {"name": p["name"], "users": ["bob"], "accounts": ["x"]})
    assert st == 409 and b["error"] == "conflict", (st, b)
    base = {"name": "v-" + secrets.token_hex(3), "users": ["bob"], "accounts": ["ubuntu"]}
    bad = [
        ({"users": [], "groups": []}, "bad_field"),
        ({"accounts": []}, "bad_field"),
        ({"accounts": ["Bad Name"]}, "bad_field"),
        ({"extensions": ["permit-everything"]}, "bad_field"),
        ({"max_ttl": 100}, "bad_field"),
        ({"max_ttl": 604801}, "bad_field"),
        ({"source_address": "10.0.0.0/33"}, "bad_field"),
        ({"source_address": "not-an-address"}, "bad_field"),
        ({"hosts": {"env": 1}}, "bad_field"),
        ({"hosts": ["env"]}, "bad_field"),
        ({"require_2fa": "no"}, "bad_field"),
        ({"name": "bad name"}, "bad_field"),
        ({"colour": "blue"}, "unknown_field"),
    ]
    for change, code in bad:
        body = dict(base)
        body.update(change)
        st, b = D.admin("POST", "/v1/policies", body)
        assert st == 400 and b["error"] == code, (change, st, b)
    body = dict(base)
    del body["accounts"]
    st, b = D.admin("POST", "/v1/policies", body)
    assert st == 400 and b["error"] == "missing_field", (st, b)
    st, b = D.admin("DELETE", "/v1/policies/%d" % p["id"])
    assert st == 200 and b == {"deleted": p["id"]}, (st, b)
    st, b = D.admin("DELETE", "/v1/policies/%d" % p["id"])
    assert st == 404, (st, b)
    assert D.admin("DELETE", "/v1/policies/abc")[0] == 404
    acts = [(a, r) for a, r, _ in audit_actions()]
    assert ("policy.add", "ok") in acts and ("policy.delete", "ok") in acts


# ---- user SSH keys ---------------------------------------------------------------------------

def test_user_keys_api():
    name = D.create_user()
    priv, pub = keygen("ed25519")
    _, pub2 = keygen("ecdsa")
    st, b = D.admin("POST", "/v1/users/%s/keys" % name, {"public_key": pub})
    assert st == 201 and b["type"] == "ssh-ed25519" and b["fingerprint"].startswith("SHA256:"), b
    fp = b["fingerprint"]
    r = subprocess.run(["ssh-keygen", "-l", "-f", priv + ".pub"], capture_output=True, text=True)
    assert fp in r.stdout, (fp, r.stdout)
    assert D.admin("POST", "/v1/users/%s/keys" % name, {"public_key": pub})[0] == 409
    assert D.admin("POST", "/v1/users/%s/keys" % name, {"public_key": "ssh-ed25519 AAAA"})[0] == 400
    assert D.admin("POST", "/v1/users/%s/keys" % name, {"public_key": pub2})[0] == 201
    assert D.admin("POST", "/v1/users/nobody_here/keys", {"public_key": pub})[0] == 404
    st, b = D.admin("GET", "/v1/users/%s/keys" % name)
    assert st == 200 and len(b["keys"]) == 2 and b["keys"][0]["comment"] == "test@example", b
    assert set(b["keys"][0]) >= {"fingerprint", "type", "comment", "added_at"}
    st, b = D.admin("DELETE", "/v1/users/%s/keys/%s" % (name, urllib.parse.quote(fp, safe="")))
    assert st == 200 and b == {"deleted": fp}, (st, b)
    st, _ = D.admin("DELETE", "/v1/users/%s/keys/%s" % (name, urllib.parse.quote(fp, safe="")))
    assert st == 404
    # POST /v1/users with ssh_keys
    n2 = harness.unique_name()
    st, b = D.admin("POST", "/v1/users", {"name": n2, "ssh_keys": [pub, pub2]})
    assert st == 201, (st, b)
    assert len(D.admin("GET", "/v1/users/%s/keys" % n2)[1]["keys"]) == 2
    st, b = D.admin("POST", "/v1/users", {"name": harness.unique_name(), "ssh_keys": ["nope"]})
    assert st == 400 and b["error"] == "bad_field", (st, b)


# ---- login -----------------------------------------------------------------------------------

def test_login_certificate_with_policy_terms():
    p = Person()
    add_policy(users=[p.name], accounts=["$user"], max_ttl=3600,
               extensions=["permit-pty", "permit-port-forwarding"])
    add_policy(users=[p.name], accounts=["ubuntu"], max_ttl=1800, extensions=["permit-pty"])
    t0 = int(time.time())
    b = p.login_ok(ttl=86400)
    assert b["serial"] >= 1 and re.fullmatch(r"[0-9a-f]{64}", b["session_token"]), b
    listing = keygen_L(b["certificate"])
    assert "user certificate" in listing, listing
    assert cert_field(listing, "Key ID") == '"%s"' % p.name
    assert cert_field(listing, "Serial") == str(b["serial"])
    assert cert_block(listing, "Principals") == [p.name]
    assert sorted(permit_extensions(listing)) == ["permit-port-forwarding", "permit-pty"]
    assert cert_block(listing, "Critical Options") == []
    va, vb = parse_valid(listing)
    assert abs(va - (t0 - 300)) <= 5, (va, t0)
    assert abs(vb - (t0 + 3600)) <= 5, (vb, t0)          # capped by the largest max_ttl
    assert b["valid_before"] == vb or abs(b["valid_before"] - vb) <= 1
    st, s = D.api("GET", "/v1/session", token=b["session_token"])
    assert st == 200 and s["user"] == p.name and s["expires_at"] == b["session_expires_at"], s
    # requested ttl below the cap is kept
    b2 = p.login_ok(ttl=600, code=harness.totp_code(p.secret, offset=1))
    va, vb = parse_valid(keygen_L(b2["certificate"]))
    assert 590 <= vb - int(time.time()) <= 605 and b2["serial"] > b["serial"]


def test_login_critical_options_only_when_all_rules_agree():
    p = Person(groups=["ops"])
    add_policy(groups=["ops"], accounts=["deploy"], source_address="127.0.0.1,10.0.0.0/8",
               force_command="/usr/bin/true")
    listing = keygen_L(p.login_ok()["certificate"])
    crit = cert_block(listing, "Critical Options")
    assert any(c.startswith("force-command") and "/usr/bin/true" in c for c in crit), listing
    assert any(c.startswith("source-address") and "10.0.0.0/8" in c for c in crit), listing
    # A second rule without the restrictions: the rules now disagree. Dropping the options
    # would hand out a shell and any source address that the first rule never allowed, so no
    # certificate is issued (and the code is not spent on a refusal).
    add_policy(users=[p.name], accounts=["other"])
    code = harness.totp_code(p.secret, offset=1)
    st, b = p.login(code=code)
    assert st == 403 and b.get("reason") == "policy_conflict", (st, b)
    assert "force_command" in b["message"] or "source_address" in b["message"], b


def test_login_refusals():
    p = Person()
    add_policy(users=[p.name], accounts=["$user"])
    other_priv, other_pub = keygen()
    # start: unknown user, unregistered key, bad key line
    assert D.api("POST", "/v1/login/start", {"user": "no_such_user", "public_key": p.pub})[0] == 401
    assert p.start(pub=other_pub)[0] == 401
    st, b = p.start(pub="ssh-ed25519 garbage")
    assert st == 400 and b["error"] == "bad_field"

    def finish_with(sig_fn, code=None):
        st, s = p.start()
        assert st == 200 and s["namespace"] == "portcullis-login" and "totp" in s["factors"], s
        assert re.fullmatch(r"[0-9a-f]{32}", s["login_id"])
        assert len(base64.b64decode(s["challenge"])) == 32
        sig = sig_fn(base64.b64decode(s["challenge"]))
        return s, D.api("POST", "/v1/login/finish", {"login_id": s["login_id"], "signature": sig,
                                                     "code": code or harness.totp_code(p.secret)})
    for name, fn, why in (
            ("namespace", lambda c: sshsig(p.priv, c, ns="file"), "wrong_namespace"),
            ("other key", lambda c: sshsig(other_priv, c), "wrong_key"),
            ("other data", lambda c: sshsig(p.priv, c + b"x"), "bad_signature"),
            ("garbage", lambda c: "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n",
             "malformed_signature")):
        s, (st, b) = finish_with(fn)
        assert st == 401 and b["error"] == "unauthorized" and b.get("reason") == why, \
            (name, st, b)
        # a failed proof ends the login
        st, b = D.api("GET", "/v1/login/%s" % s["login_id"])
        assert st == 200 and b["state"] == "denied", (name, b)
    # none of those consumed the code: a good login now works, the same code again is a replay
    code = harness.totp_code(p.secret)
    _, (st, b) = finish_with(lambda c: sshsig(p.priv, c), code=code)
    assert st == 200, (st, b)
    _, (st, b) = finish_with(lambda c: sshsig(p.priv, c), code=code)
    assert st == 401 and b.get("reason") == "replayed", (st, b)
    _, (st, b) = finish_with(lambda c: sshsig(p.priv, c), code=harness.wrong_code(p.secret))
    assert st == 401 and b.get("reason") == "wrong_code", (st, b)
    # unknown login id, missing code (push login: test_login_push.py)
    assert D.api("POST", "/v1/login/finish", {"login_id": "0" * 32, "signature": "x",
                                              "code": "123456"})[0] == 404
    st, s = p.start()
    st, b = D.api("POST", "/v1/login/finish", {"login_id": s["login_id"], "signature": "x"})
    assert st == 400 and b["error"] == "missing_field", (st, b)
    # the key deleted, or the user disabled, between start and finish: a right signature and a
    # right code get no certificate
    priv2, pub2 = keygen()
    st, k2 = D.admin("POST", "/v1/users/%s/keys" % p.name, {"public_key": pub2})
    assert st == 201, (st, k2)
    st, s = p.start(pub=pub2)
    assert st == 200, (st, s)
    fp2 = urllib.parse.quote(k2["fingerprint"], safe="")
    assert D.admin("DELETE", "/v1/users/%s/keys/%s" % (p.name, fp2))[0] == 200
    st, b = D.api("POST", "/v1/login/finish", {
        "login_id": s["login_id"], "signature": sshsig(priv2, base64.b64decode(s["challenge"])),
        "code": harness.totp_code(p.secret)})
    assert st == 401 and b.get("reason") == "unregistered_key" and "certificate" not in b, \
        (st, b)
    st, s = p.start()
    assert st == 200, (st, s)
    D.admin("PATCH", "/v1/users/%s" % p.name, {"enabled": False})
    st, b = D.api("POST", "/v1/login/finish", {
        "login_id": s["login_id"], "signature": sshsig(p.priv, base64.b64decode(s["challenge"])),
        "code": harness.totp_code(p.secret)})
    assert st == 401 and b.get("reason") == "disabled" and "certificate" not in b, (st, b)
    # disabled user
    assert p.start()[0] == 401


def test_login_without_any_rule_is_403():
    p = Person()
    st, b = p.login()
    assert st == 403 and b["error"] == "forbidden", (st, b)
    assert "no policy allows %s" % p.name in b["message"], b
    # the code was not used up by the refusal
    add_policy(users=[p.name], accounts=["$user"])
    assert p.login()[0] == 200


def test_login_rsa_and_ecdsa_keys():
    for kind in ("rsa", "ecdsa"):
        p = Person(kind=kind)
        add_policy(users=[p.name], accounts=["$user"])
        listing = keygen_L(p.login_ok()["certificate"])
        assert cert_field(listing, "Key ID") == '"%s"' % p.name, listing


# ---- principals ------------------------------------------------------------------------------

def test_principals_decisions():
    p = Person()
    add_policy(users=[p.name], accounts=["ubuntu"], hosts={"env": "prod"})
    b = p.login_ok()
    serial = b["serial"]
    assert principals(HOST_PROD, "ubuntu", p.name, serial) == [p.name]
    assert principals(HOST_PROD, "ubuntu", p.name, serial, fp=p.fp) == [p.name]
    assert principals(HOST_PROD, "ubuntu", p.name, serial, fp="SHA256:" + "A" * 43) == []
    assert principals(HOST_PROD, "root", p.name, serial) == []           # other account
    assert principals(HOST_STAGE, "ubuntu", p.name, serial) == []        # other host labels
    assert principals(HOST_PROD, "ubuntu", p.name, serial + 100000) == []  # unknown serial
    assert principals(HOST_PROD, "ubuntu", "someone_else", serial) == []  # other key id
    # $user: the person's own account
    add_policy(users=[p.name], accounts=["$user"])
    assert principals(HOST_STAGE, p.name, p.name, serial) == [p.name]
    # PATCH host labels changes the decision
    st, h = D.admin("PATCH", "/v1/hosts/%d" % HOST_STAGE[0], {"labels": {"env": "prod"}})
    assert st == 200 and h["labels"] == {"env": "prod"}, (st, h)
    assert principals(HOST_STAGE, "ubuntu", p.name, serial) == [p.name]
    D.admin("PATCH", "/v1/hosts/%d" % HOST_STAGE[0], {"labels": {"env": "staging"}})
    assert principals(HOST_STAGE, "ubuntu", p.name, serial) == []
    assert D.admin("PATCH", "/v1/hosts/999999", {"labels": {}})[0] == 404
    assert D.admin("PATCH", "/v1/hosts/%d" % HOST_STAGE[0], {"labels": {"a": 1}})[0] == 400
    # revoked serial
    assert D.admin("POST", "/v1/certs/revoke", {"serial": serial}) == (200, {"revoked": [serial]})
    assert principals(HOST_PROD, "ubuntu", p.name, serial) == []
    # disabled user
    b = p.login_ok(code=harness.totp_code(p.secret, offset=1))
    assert principals(HOST_PROD, "ubuntu", p.name, b["serial"]) == [p.name]
    D.admin("PATCH", "/v1/users/%s" % p.name, {"enabled": False})
    assert principals(HOST_PROD, "ubuntu", p.name, b["serial"]) == []
    # group rules
    g = Person(groups=["web-admins"])
    add_policy(groups=["web-admins"], accounts=["www"])
    gs = g.login_ok()["serial"]
    assert principals(HOST_STAGE, "www", g.name, gs) == [g.name]
    st, b = D.api("GET", "/v1/hosts/self/principals?account=www", token=HOST_PROD[1])
    assert st == 400


def principals_reply(host, account, key_id, serial):
    q = {"account": account, "key_id": key_id, "serial": str(serial)}
    st, b = D.api("GET", "/v1/hosts/self/principals?" + urllib.parse.urlencode(q), token=host[1])
    assert st == 200, (st, b)
    return b


def test_principals_options_are_the_rules_of_this_host():
    """The certificate carries the union of the person's extensions (sshd ANDs it with the
    principals line), so what a login may do on a host must come from the rules that match
    this host: prod's rule (pty only) never gets dev's port forwarding."""
    p = Person()
    add_policy(users=[p.name], accounts=["ubuntu"], hosts={"env": "staging"},
               extensions=["permit-pty", "permit-port-forwarding", "permit-agent-forwarding"])
    add_policy(users=[p.name], accounts=["ubuntu"], hosts={"env": "prod"},
               extensions=["permit-pty"])
    add_policy(users=[p.name], accounts=["backup"], hosts={"env": "prod"}, extensions=[])
    b = p.login_ok()
    listing = keygen_L(b["certificate"])
    assert sorted(permit_extensions(listing)) == [
        "permit-agent-forwarding", "permit-port-forwarding", "permit-pty"], listing
    prod = principals_reply(HOST_PROD, "ubuntu", p.name, b["serial"])
    assert prod["principals"] == [p.name], prod
    assert prod["options"] == {"extensions": ["permit-pty"]}, prod
    stage = principals_reply(HOST_STAGE, "ubuntu", p.name, b["serial"])
    assert stage["options"] == {"extensions": ["permit-agent-forwarding",
                                               "permit-port-forwarding", "permit-pty"]}, stage
    # the account decides too: the backup rule on prod allows nothing at all
    bk = principals_reply(HOST_PROD, "backup", p.name, b["serial"])
    assert bk["principals"] == [p.name] and bk["options"] == {"extensions": []}, bk
    # no principal, no options
    none = principals_reply(HOST_PROD, "root", p.name, b["serial"])
    assert none["principals"] == [] and "options" not in none, none


def test_principals_options_source_address_and_force_command():
    p = Person()
    add_policy(users=[p.name], accounts=["deploy"], hosts={"env": "prod"},
               source_address="127.0.0.1,10.0.0.0/8", force_command="/usr/bin/rsync --server",
               extensions=["permit-port-forwarding"])
    b = p.login_ok()
    r = principals_reply(HOST_PROD, "deploy", p.name, b["serial"])
    assert r["principals"] == [p.name], r
    assert r["options"] == {"extensions": ["permit-port-forwarding"],
                            "source_address": "127.0.0.1,10.0.0.0/8",
                            "force_command": "/usr/bin/rsync --server"}, r
    # two rules of this host that disagree on the forced command: no principal (the line can
    # carry one command only, and picking either would widen the other)
    add_policy(users=[p.name], accounts=["deploy"], hosts={"env": "prod"},
               source_address="127.0.0.1,10.0.0.0/8", force_command="/bin/sh")
    r = principals_reply(HOST_PROD, "deploy", p.name, b["serial"])
    assert r["principals"] == [] and "options" not in r, r


def test_policy_force_command_cannot_break_out_of_its_quotes():
    """force_command ends up inside command="…" of a principals line: a quote, a backslash
    (it escapes the closing quote), a '#' (sshd cuts the line there, quotes or not: every login
    under the rule would be refused) or a control character is refused when the rule is made."""
    for cmd in ('/bin/echo "x"', '/bin/true",permitopen="*:*', "/bin/true\\", '/bin/a\\"b',
                "/usr/local/bin/wrap --tag=#ops", "#",
                "/bin/true\nx", "/bin/true\tx", "/bin/\u00e9", "\x7f", ""):
        body = {"name": "p-" + secrets.token_hex(4), "users": ["nobody-x"],
                "accounts": ["ubuntu"], "force_command": cmd}
        st, b = D.admin("POST", "/v1/policies", body)
        assert st == 400 and b.get("error") == "bad_field" and "force_command" in b["message"], \
            (cmd, st, b)
    add_policy(users=["nobody-x"], accounts=["ubuntu"], force_command="/usr/bin/env -i LC=x y 'a b'")


# ---- hosts -----------------------------------------------------------------------------------

def test_host_enroll_certificate_and_renew():
    _, hpub = keygen()
    hn = "db-" + secrets.token_hex(3)
    tok = D.create_token(labels={"env": "prod"}, hostname=hn,
                         principals=[hn + ".example.com", "127.0.0.1"])
    st, b = D.api("POST", "/v1/enroll", {"token": tok, "hostname": hn, "host_key": hpub,
                                         "principals": [hn + ".example.com", "127.0.0.1"]})
    assert st == 200, (st, b)
    assert b["user_ca"] == D.api("GET", "/v1/ca/user.pub")[1]["public_key"]
    assert b["host_ca"] == D.api("GET", "/v1/ca/host.pub")[1]["public_key"]
    listing = keygen_L(b["host_certificate"])
    assert "host certificate" in listing, listing
    assert cert_field(listing, "Key ID") == '"host:%s"' % hn
    assert cert_block(listing, "Principals") == [hn, hn + ".example.com", "127.0.0.1"], listing
    va, vb = parse_valid(listing)
    assert abs((vb - int(time.time())) - 30 * 86400) <= 10
    serial = int(cert_field(listing, "Serial"))
    # renew (same principals) the enrolled key; another key is refused (it needs a new token)
    _, hpub2 = keygen()
    st, r = D.api("POST", "/v1/hosts/self/renew", {"host_key": hpub2}, token=b["host_token"])
    assert st == 403 and r["error"] == "forbidden", (st, r)
    st, r = D.api("POST", "/v1/hosts/self/renew", {"host_key": hpub}, token=b["host_token"])
    assert st == 200 and r["serial"] > serial, (st, r)
    listing = keygen_L(r["host_certificate"])
    assert cert_block(listing, "Principals") == [hn, hn + ".example.com", "127.0.0.1"]
    assert D.api("POST", "/v1/hosts/self/renew", {"host_key": "x"}, token=b["host_token"])[0] == 400
    # without host_key: as before
    st, b2 = D.api("POST", "/v1/enroll", {"token": D.create_token(hostname="plain"),
                                          "hostname": "plain"})
    assert st == 200 and "host_certificate" not in b2 and \
        set(b2) == {"host_id", "host_token", "hostname"}, b2
    # bad inputs are refused before the token is used
    tok = D.create_token(hostname="h")
    assert D.api("POST", "/v1/enroll", {"token": tok, "hostname": "h", "host_key": "nope"})[0] == 400
    assert D.api("POST", "/v1/enroll", {"token": tok, "hostname": "h", "host_key": hpub,
                                        "principals": ["a b"]})[0] == 400
    assert D.api("POST", "/v1/enroll", {"token": tok, "hostname": "h", "host_key": hpub})[0] == 200
    st, c = D.admin("GET", "/v1/certs")
    assert any(x["kind"] == "host" and x["key_id"] == "host:" + hn for x in c["certs"])


# ---- a host is what its enrollment token says (issue 11, finding 1) ---------------------------

def _session():
    p = Person()
    add_policy(users=[p.name], accounts=["$user"])
    return p.login_ok()["session_token"]


def _enroll_with_key(hostname, **token_kw):
    priv, pub = keygen()
    tok = D.create_token(hostname=hostname, **token_kw)
    st, b = D.api("POST", "/v1/enroll", {"token": tok, "host_key": pub})
    assert st == 200, (st, b)
    return priv, pub, b


def test_token_names_the_host_and_its_principals():
    # the token carries the name: POST /v1/tokens requires a valid hostname and principals
    st, b = D.admin("POST", "/v1/tokens", {"labels": {"env": "prod"}})
    assert st == 400 and b["error"] == "missing_field" and "hostname" in b["message"], (st, b)
    for bad in ({"hostname": "a b"}, {"hostname": ""}, {"hostname": "x/y"},
                {"hostname": "ok1", "principals": ["a b"]}, {"hostname": "ok1", "principals": "x"},
                {"hostname": "ok1", "principals": ["x"] * 64}):
        st, b = D.admin("POST", "/v1/tokens", bad)
        assert st == 400 and b["error"] in ("bad_field", "missing_field"), (bad, st, b)
    # default principals: NAME and its first label; the request may leave the name out
    hn = "db1-%s.prod.example.net" % secrets.token_hex(2)
    _, _, b = _enroll_with_key(hn)
    assert b["hostname"] == hn, b
    listing = keygen_L(b["host_certificate"])
    assert cert_block(listing, "Principals") == [hn, hn.split(".")[0]], listing
    assert cert_field(listing, "Key ID") == '"host:%s"' % hn
    # --principal: NAME and the given ones (no first label added)
    hn2 = "web-" + secrets.token_hex(2) + ".example.net"
    _, _, b = _enroll_with_key(hn2, principals=["www.example.net", "10.0.0.7"])
    assert cert_block(keygen_L(b["host_certificate"]), "Principals") == \
        [hn2, "www.example.net", "10.0.0.7"]


def test_enroll_cannot_choose_another_name_or_principals():
    hn = "named-" + secrets.token_hex(3)
    _, hpub = keygen()
    tok = D.create_token(hostname=hn)
    since = int(time.time()) - 1
    for body in ({"hostname": "github.com"}, {"hostname": "db1.prod.example.net"},
                 {"hostname": hn, "host_key": hpub, "principals": ["github.com"]},
                 {"host_key": hpub, "principals": [hn, "db1.prod.example.net"]}):
        body["token"] = tok
        st, b = D.api("POST", "/v1/enroll", body)
        assert st == 403 and b["error"] == "forbidden", (body, st, b)
    rows = [r for r in D.audit(since=since) if r["action"] == "host.enroll" and
            r["host"] in (None, hn, "github.com", "db1.prod.example.net")]
    assert len(rows) == 4 and all(r["result"] == "deny" for r in rows), rows
    assert {r["reason"] for r in rows} == {"hostname_mismatch", "principal_mismatch"}, rows
    st, h = D.admin("GET", "/v1/hosts")
    assert not [x for x in h["hosts"] if x["hostname"] in ("github.com", "db1.prod.example.net")]
    # the refusals did not spend the token: it still enrolls the host it names
    st, b = D.api("POST", "/v1/enroll", {"token": tok, "hostname": hn, "host_key": hpub,
                                         "principals": [hn]})
    assert st == 200 and b["hostname"] == hn, (st, b)
    assert cert_block(keygen_L(b["host_certificate"]), "Principals") == [hn]


def test_active_hostname_is_unique_until_deleted():
    hn = "uniq-" + secrets.token_hex(3)
    t1, t2 = D.create_token(hostname=hn), D.create_token(hostname=hn)
    st, b1 = D.api("POST", "/v1/enroll", {"token": t1})
    assert st == 200, (st, b1)
    # a second host by that name: refused at enrollment (the earlier token) and at token creation
    st, b = D.api("POST", "/v1/enroll", {"token": t2})
    assert st == 409 and b["error"] == "conflict", (st, b)
    st, b = D.admin("POST", "/v1/tokens", {"hostname": hn})
    assert st == 409 and b["error"] == "conflict", (st, b)
    st, h = D.admin("GET", "/v1/hosts")
    assert [x["hostname"] for x in h["hosts"]].count(hn) == 1, h
    # deleted: the name is free again (t2 was not spent by the 409)
    D.delete_host(hn)
    st, b2 = D.api("POST", "/v1/enroll", {"token": t2})
    assert st == 200 and b2["host_id"] != b1["host_id"], (st, b2)


def test_renew_signs_only_the_enrolled_host_key():
    _, pub, b = _enroll_with_key("renew-" + secrets.token_hex(3))
    _, _, other = _enroll_with_key("renew-" + secrets.token_hex(3))
    _, pub2 = keygen()
    sess = _session()
    serial = int(cert_field(keygen_L(b["host_certificate"]), "Serial"))
    # another key (a fresh one, or the other host's enrolled key): 403, nothing issued
    n_certs = len(D.admin("GET", "/v1/certs")[1]["certs"])
    since = int(time.time()) - 1
    for key, tok in ((pub2, b["host_token"]), (pub, other["host_token"])):
        st, r = D.api("POST", "/v1/hosts/self/renew", {"host_key": key}, token=tok)
        assert st == 403 and r["error"] == "forbidden", (st, r)
    assert len(D.admin("GET", "/v1/certs")[1]["certs"]) == n_certs
    # each refusal is in the audit log: the event the rule exists for
    mine = {b["hostname"], other["hostname"]}
    rows = [x for x in D.audit(since=since) if x["action"] == "host.renew" and x["host"] in mine]
    assert [(x["result"], x["reason"]) for x in rows] == [("deny", "not_enrolled_key")] * 2, rows
    assert {x["host"] for x in rows} == mine, rows
    # callers that are not the host
    for tok, want in ((None, 401), (secrets.token_hex(32), 401), ("zz", 401),
                      (D.admin_token, 403), (sess, 403)):
        st, r = D.api("POST", "/v1/hosts/self/renew", {"host_key": pub}, token=tok)
        assert st == want, (tok and tok[:8], st, r)
    # the host with its own enrolled key
    st, r = D.api("POST", "/v1/hosts/self/renew", {"host_key": pub}, token=b["host_token"])
    assert st == 200 and r["serial"] > serial, (st, r)
    # revoking a serial is not undone by renewing: the key stays the enrolled one, and the
    # old serial stays in the KRL
    st, _ = D.admin("POST", "/v1/certs/revoke", {"serial": serial})
    assert st == 200
    res, _ = krl_check([b["host_certificate"], r["host_certificate"]], "/v1/krl/host")
    assert res == {b["host_certificate"]: True, r["host_certificate"]: False}, res
    # a host enrolled without a host key cannot get a certificate for any key by renewing
    tok = D.create_token(hostname="nokey-" + secrets.token_hex(3))
    st, nk = D.api("POST", "/v1/enroll", {"token": tok})
    assert st == 200 and "host_certificate" not in nk
    st, r = D.api("POST", "/v1/hosts/self/renew", {"host_key": pub2}, token=nk["host_token"])
    assert st == 403 and r["error"] == "forbidden", (st, r)


def test_host_delete_revokes_token_and_certificates():
    hn = "gone-" + secrets.token_hex(3)
    _, pub, b = _enroll_with_key(hn)
    st, r = D.api("POST", "/v1/hosts/self/renew", {"host_key": pub}, token=b["host_token"])
    assert st == 200
    _, _, keep = _enroll_with_key("kept-" + secrets.token_hex(3))
    sess = _session()
    st, hosts = D.admin("GET", "/v1/hosts")
    hid = [x["host_id"] for x in hosts["hosts"] if x["hostname"] == hn][0]
    path = "/v1/hosts/%d" % hid
    # only the admin may delete; others change nothing
    for tok, want in ((None, 401), (secrets.token_hex(32), 401), ("garbage", 401),
                      (b["host_token"], 403), (keep["host_token"], 403), (sess, 403)):
        st, x = D.api("DELETE", path, token=tok)
        assert st == want, (tok and tok[:8], st, x)
    assert D.begin(b["host_token"], "nobody_here")[0] == 200
    res, v0 = krl_check([b["host_certificate"], r["host_certificate"]], "/v1/krl/host")
    assert not any(res.values()), res
    since = int(time.time()) - 1
    st, x = D.admin("DELETE", path)
    assert st == 200 and x["hostname"] == hn and x["host_id"] == hid, (st, x)
    assert sorted(x["revoked"]) == sorted(int(cert_field(keygen_L(c), "Serial"))
                                          for c in (b["host_certificate"], r["host_certificate"]))
    # its host token is dead, its certificates are in the host KRL (and the full KRL)
    assert D.begin(b["host_token"], "nobody_here")[0] == 401
    assert D.api("POST", "/v1/hosts/self/renew", {"host_key": pub}, token=b["host_token"])[0] == 401
    for p in ("/v1/krl/host", "/v1/krl"):
        res, v1 = krl_check([b["host_certificate"], r["host_certificate"],
                             keep["host_certificate"]], p)
        assert res == {b["host_certificate"]: True, r["host_certificate"]: True,
                       keep["host_certificate"]: False}, (p, res)
        assert v1 > v0
    assert D.begin(keep["host_token"], "nobody_here")[0] == 200
    rows = [row for row in D.audit(since=since) if row["action"] == "host.delete" and
            row["host"] == hn]
    assert len(rows) == 1 and rows[0]["host"] == hn and rows[0]["result"] == "ok" and \
        rows[0]["actor"] == "admin" and "certs_revoked=2" in rows[0]["reason"], rows
    st, hosts = D.admin("GET", "/v1/hosts")
    assert hn not in [h["hostname"] for h in hosts["hosts"]]
    # gone: deleting again, unknown or malformed ids, and labels of a deleted host → 404
    for p in (path, "/v1/hosts/999999", "/v1/hosts/self", "/v1/hosts/-1", "/v1/hosts/0x1"):
        assert D.admin("DELETE", p)[0] == 404, p
    assert D.admin("PATCH", path, {"labels": {}})[0] == 404


def test_host_krl_holds_only_host_certificates():
    p = Person()
    add_policy(users=[p.name], accounts=["$user"])
    uc = p.login_ok()["certificate"]
    _, _, b = _enroll_with_key("hkrl-" + secrets.token_hex(3))
    for c in (uc, b["host_certificate"]):
        assert D.admin("POST", "/v1/certs/revoke",
                       {"serial": int(cert_field(keygen_L(c), "Serial"))})[0] == 200
    res, _ = krl_check([uc, b["host_certificate"]], "/v1/krl/host")
    assert res == {uc: False, b["host_certificate"]: True}, res
    res, _ = krl_check([uc, b["host_certificate"]], "/v1/krl")
    assert res == {uc: True, b["host_certificate"]: True}, res
    # public, like /v1/krl: every caller gets the same bytes
    sess = _session()
    bodies = set()
    for tok in (None, secrets.token_hex(32), b["host_token"], D.admin_token, sess):
        st, _, hdrs, raw = D.request("GET", "/v1/krl/host", token=tok)
        assert st == 200 and hdrs.get("content-type") == "application/octet-stream", st
        bodies.add(raw)
    assert len(bodies) == 1


def test_cli_host_token_delete_and_ssh_config():
    rc, out, err = run_cli(D, "host", "token", "--label", "env=prod", "--ttl", "1h")
    assert rc == 2 and "--hostname" in err, (rc, out, err)
    rc, out, err = run_cli(D, "host", "token", "--hostname", "a b")
    assert rc == 2, (rc, out, err)
    hn = "cli-" + secrets.token_hex(3) + ".example.net"
    rc, out, err = run_cli(D, "host", "token", "--hostname", hn, "--principal", "alias.example.net",
                           "--label", "env=prod", "--ttl", "1h", json_out=True)
    assert rc == 0, (rc, out, err)
    tok = json.loads(out)["token"]
    _, hpub = keygen()
    st, b = D.api("POST", "/v1/enroll", {"token": tok, "host_key": hpub})
    assert st == 200 and b["hostname"] == hn, (st, b)
    assert cert_block(keygen_L(b["host_certificate"]), "Principals") == [hn, "alias.example.net"]
    rc, out, err = run_cli(D, "host", "token", "--hostname", hn)
    assert rc != 0 and "enrolled" in err, (rc, out, err)
    # ssh-config: scoped to the domain, with the host KRL written for RevokedHostKeys
    d = tempfile.mkdtemp(dir=TMP)
    krl = os.path.join(d, "host.krl")
    rc, out, err = run_cli(D, "ssh-config", "--domain", "example.net", "--krl-file", krl)
    assert rc == 0, (rc, out, err)
    ca = D.api("GET", "/v1/ca/host.pub")[1]["public_key"]
    assert "@cert-authority *.example.net %s\n" % ca in out, out
    assert "RevokedHostKeys %s\n" % krl in out and "warning" not in err, (out, err)
    with open(krl, "rb") as f:
        assert f.read() == D.request("GET", "/v1/krl/host")[3]
    rc, out, err = run_cli(D, "ssh-config")
    assert rc == 0 and "@cert-authority * " in out and "warning" in err and "--domain" in err
    for bad in (["--domain", "*.x"], ["--domain", "a b"], ["--krl-file", "a b"], ["extra"]):
        rc, out, err = run_cli(D, "ssh-config", *bad)
        assert rc == 2, (bad, rc, out, err)
    # host delete NAME: the certificate goes into the KRL that ssh-config writes
    rc, out, err = run_cli(D, "host", "delete", hn)
    assert rc == 0 and "deleted" in out, (rc, out, err)
    rc, out, err = run_cli(D, "host", "delete", hn)
    assert rc != 0 and "no enrolled host" in err, (rc, out, err)
    rc, out, err = run_cli(D, "ssh-config", "--domain", "example.net", "--krl-file", krl)
    assert rc == 0, (rc, out, err)
    cert = os.path.join(d, "h-cert.pub")
    with open(cert, "w") as f:
        f.write(b["host_certificate"] + "\n")
    r = subprocess.run(["ssh-keygen", "-Q", "-f", krl, cert], capture_output=True, text=True)
    assert "REVOKED" in r.stdout, (r.stdout, r.stderr)


def test_host_cert_ttl_option():
    d = Daemon(args=["--host-cert-ttl", "2h"]).start()
    _, hpub = keygen()
    st, b = d.api("POST", "/v1/enroll", {"token": d.create_token(hostname="h1"), "hostname": "h1",
                                         "host_key": hpub})
    assert st == 200, b
    va, vb = parse_valid(keygen_L(b["host_certificate"]))
    assert abs(vb - int(time.time()) - 7200) <= 10
    d.kill()


# ---- revocation and the KRL ------------------------------------------------------------------

def test_revoke_and_krl():
    a, b_, c = Person(), Person(), Person()
    for p in (a, b_, c):
        add_policy(users=[p.name], accounts=["$user"])
    ca = a.login_ok()["certificate"]
    cb = b_.login_ok()["certificate"]
    cc = c.login_ok()["certificate"]
    res, v0 = krl_check([ca, cb, cc])
    assert not any(res.values()), res
    sa = int(cert_field(keygen_L(ca), "Serial"))
    st, r = D.admin("POST", "/v1/certs/revoke", {"serial": sa})
    assert st == 200 and r == {"revoked": [sa]}
    st, r = D.admin("POST", "/v1/certs/revoke", {"key_id": b_.name})
    assert st == 200 and len(r["revoked"]) == 1, r
    res, v1 = krl_check([ca, cb, cc])
    assert res == {ca: True, cb: True, cc: False}, res
    assert v1 > v0
    # The same revocations give the same bytes: agents compare the KRL with the file they have
    # and rewrite (and make sshd re-read) it only when it changed.
    st, _, _, k1 = D.request("GET", "/v1/krl")
    time.sleep(1.1)
    st2, _, _, k2 = D.request("GET", "/v1/krl")
    assert st == st2 == 200 and k1 == k2, "the KRL changes without a revocation"
    st, certs = D.admin("GET", "/v1/certs?user=%s" % a.name)
    assert st == 200 and [x["revoked"] for x in certs["certs"]] == [True]
    assert set(certs["certs"][0]) >= {"serial", "kind", "key_id", "principals", "valid_after",
                                      "valid_before", "revoked"}
    # a key id revoked stays revoked: no new certificate for it
    st, bb = b_.login(code=harness.totp_code(b_.secret, offset=1))
    assert st == 403, (st, bb)
    # bad requests
    assert D.admin("POST", "/v1/certs/revoke", {"serial": 99999999})[0] == 404
    assert D.admin("POST", "/v1/certs/revoke", {})[0] == 400
    assert D.admin("POST", "/v1/certs/revoke", {"serial": 1, "key_id": "x"})[0] == 400
    assert D.admin("POST", "/v1/certs/revoke", {"serial": 0})[0] == 400
    assert D.admin("GET", "/v1/certs?user=Bad%20Name")[0] == 400
    acts = [(x, y) for x, y, _ in audit_actions()]
    assert ("cert.revoke", "ok") in acts


def test_disable_and_delete_revoke_certificates_and_sessions():
    p = Person()
    add_policy(users=[p.name], accounts=["$user"])
    b = p.login_ok()
    assert D.api("GET", "/v1/session", token=b["session_token"])[0] == 200
    D.admin("PATCH", "/v1/users/%s" % p.name, {"enabled": False})
    assert D.api("GET", "/v1/session", token=b["session_token"])[0] == 401
    res, _ = krl_check([b["certificate"]])
    assert res[b["certificate"]]
    st, c = D.admin("GET", "/v1/certs?user=%s" % p.name)
    assert all(x["revoked"] for x in c["certs"])
    D.admin("PATCH", "/v1/users/%s" % p.name, {"enabled": True})
    res, _ = krl_check([b["certificate"]])
    assert res[b["certificate"]], "re-enabling must not un-revoke old serials"
    b2 = p.login_ok(code=harness.totp_code(p.secret, offset=1))
    res, _ = krl_check([b2["certificate"]])
    assert not res[b2["certificate"]]
    assert D.admin("DELETE", "/v1/users/%s" % p.name)[0] == 200
    res, _ = krl_check([b2["certificate"]])
    assert res[b2["certificate"]]
    assert D.api("GET", "/v1/session", token=b2["session_token"])[0] == 401


def test_key_delete_revokes_its_certificates_and_ends_its_sessions():
    """Issue 11, finding 7: deleting a user's SSH key revokes every certificate issued for that
    key (its serials go into the KRL hosts fetch) and ends the sessions created with it; the
    user's other keys, and other users with the same key, keep theirs."""
    p = Person()
    add_policy(users=[p.name], accounts=["$user"])
    priv2, pub2 = keygen()
    st, k2 = D.admin("POST", "/v1/users/%s/keys" % p.name, {"public_key": pub2})
    assert st == 201, (st, k2)
    # another user who registered the very same key as p's first one
    q = Person()
    add_policy(users=[q.name], accounts=["$user"])
    assert D.admin("POST", "/v1/users/%s/keys" % q.name, {"public_key": p.pub})[0] == 201
    # one TOTP step per login (the replay guard): -1, 0, +1, all within this step
    harness.step_with_time_left(15)
    a1 = p.login_ok(code=harness.totp_code(p.secret, offset=-1))
    a2 = p.login_ok()
    st, s = D.api("POST", "/v1/login/start", {"user": p.name, "public_key": pub2})
    sig = sshsig(priv2, base64.b64decode(s["challenge"]))
    st, b2 = D.api("POST", "/v1/login/finish", {"login_id": s["login_id"], "signature": sig,
                                                "code": harness.totp_code(p.secret, offset=1)})
    assert st == 200, (st, b2)
    st, s = D.api("POST", "/v1/login/start", {"user": q.name, "public_key": p.pub})
    sig = sshsig(p.priv, base64.b64decode(s["challenge"]))
    st, bq = D.api("POST", "/v1/login/finish", {"login_id": s["login_id"], "signature": sig,
                                                "code": harness.totp_code(q.secret)})
    assert st == 200, (st, bq)
    lines = [a1["certificate"], a2["certificate"], b2["certificate"], bq["certificate"]]
    res, v0 = krl_check(lines)
    assert not any(res.values()), res
    for b in (a1, a2, b2, bq):
        assert D.api("GET", "/v1/session", token=b["session_token"])[0] == 200
    # the deletion, through the CLI
    rc, out, err = _cli("user", "key", "delete", p.name, p.fp)
    assert rc == 0 and p.fp in out, (out, err)
    res, v1 = krl_check(lines)
    assert v1 > v0, (v0, v1)
    assert res[a1["certificate"]] and res[a2["certificate"]], "the deleted key's certificates"
    assert not res[b2["certificate"]], "the user's other key keeps its certificate"
    assert not res[bq["certificate"]], "another user's registration of the same key is untouched"
    certs = {c["serial"]: c for c in D.admin("GET", "/v1/certs?user=%s" % p.name)[1]["certs"]}
    assert certs[a1["serial"]]["revoked"] and certs[a2["serial"]]["revoked"], certs
    assert not certs[b2["serial"]]["revoked"], certs
    # the sessions created with the deleted key are refused; the others live on
    for b in (a1, a2):
        st, r = D.api("GET", "/v1/session", token=b["session_token"])
        assert st == 401 and r["error"] == "unauthorized", (st, r)
        st, r = D.api("GET", "/v1/approvals", token=b["session_token"])
        assert st == 401, (st, r)
    assert D.api("GET", "/v1/session", token=b2["session_token"])[0] == 200
    assert D.api("GET", "/v1/session", token=bq["session_token"])[0] == 200
    # the revocation is audited with the serials
    rows = [r for r in D.audit(user=p.name) if r["action"] == "cert.revoke"]
    assert rows and p.fp in rows[-1]["reason"], rows
    for serial in (a1["serial"], a2["serial"]):
        assert re.search(r"\b%d\b" % serial, rows[-1]["reason"]), rows
    # the key can no longer log in
    st, s = p.start()
    assert st == 401, (st, s)


# ---- auth/begin with policy ------------------------------------------------------------------

def test_begin_uses_certificate_key_id_and_no_2fa_rules():
    p = Person()
    add_policy(users=[p.name], accounts=["ubuntu"], hosts={"env": "prod"}, require_2fa=False)
    add_policy(users=[p.name], accounts=["$user"])
    b = p.login_ok()
    info = "publickey %s\n" % b["certificate"].rsplit(" ", 1)[0]
    st, r = D.begin(HOST_PROD[1], "ubuntu", auth_info=info)
    assert st == 200 and r["action"] == "ignore", r
    # the rule for $user needs 2FA: challenge for the person
    st, r = D.begin(HOST_PROD[1], p.name, auth_info=info)
    assert st == 200 and r["action"] == "challenge", r
    # other host: no no-2fa rule matches → as before; the transaction is the person's
    st, r = D.begin(HOST_STAGE[1], "ubuntu", auth_info=info)
    assert st == 200 and r["action"] == "challenge", r
    st, t = D.submit_totp(HOST_STAGE[1], r["txid"], harness.totp_code(p.secret, offset=1))
    assert st == 200 and t["result"] == "allow", t
    # without a certificate the PAM user is the person: unknown → deny as before
    st, r = D.begin(HOST_PROD[1], "ubuntu")
    assert st == 200 and r["action"] == "deny" and r["reason"] == "unknown_user", r
    # mixed rules (one needs 2FA) → challenge
    add_policy(users=[p.name], accounts=["ubuntu"], require_2fa=True)
    st, r = D.begin(HOST_PROD[1], "ubuntu", auth_info=info)
    assert st == 200 and r["action"] == "challenge", r


# ---- sessions --------------------------------------------------------------------------------

def test_sessions_decide_only_their_own_pushes():
    a, b_ = Person(push=True), Person(push=True)
    for p in (a, b_):
        add_policy(users=[p.name], accounts=["$user"])
    sess = a.login_ok()["session_token"]
    _, pa = D.create_push(HOST_PROD[1], a.name)
    _, pb = D.create_push(HOST_PROD[1], b_.name)
    st, lst = D.api("GET", "/v1/approvals", token=sess)
    assert st == 200 and [x["push_id"] for x in lst["approvals"]] == [pa["push_id"]], lst
    st, r = D.api("POST", "/v1/approvals/%s/approve" % pb["push_id"], {"match": pb["match"]}, token=sess)
    assert st == 404, (st, r)
    st, r = D.api("POST", "/v1/approvals/%s/deny" % pb["push_id"], {}, token=sess)
    assert st == 404, (st, r)
    assert D.poll_push(HOST_PROD[1], pb["push_id"])[1]["state"] == "pending"
    st, r = D.api("POST", "/v1/approvals/%s/approve" % pa["push_id"], {"match": pa["match"]}, token=sess)
    assert st == 200 and r["state"] == "approved", (st, r)
    st, lst = D.admin("GET", "/v1/approvals")
    assert pb["push_id"] in [x["push_id"] for x in lst["approvals"]]
    rows = [r for r in D.audit(user=a.name) if r["action"] == "push.approve"]
    assert rows and rows[-1]["actor"] == "session:%s" % a.name, rows


# ---- authorization matrix --------------------------------------------------------------------

def test_authorization_matrix_for_ca_endpoints():
    p = Person()
    add_policy(users=[p.name], accounts=["$user"])
    sess = p.login_ok()["session_token"]
    host = HOST_PROD[1]
    bad = secrets.token_hex(32)
    q = "account=x&key_id=y&serial=1"
    # (method, path, body, {caller: status}); callers none, bad, host, admin, session
    pub = {"none": 200, "bad": 200, "host": 200, "admin": 200, "session": 200}
    adm = lambda ok: {"none": 401, "bad": 401, "host": 403, "admin": ok, "session": 403}
    hst = lambda ok: {"none": 401, "bad": 401, "host": ok, "admin": 403, "session": 403}
    ses = lambda ok: {"none": 401, "bad": 401, "host": 403, "admin": ok, "session": ok}
    rows = [
        ("GET", "/v1/ca/user.pub", None, pub),
        ("GET", "/v1/ca/host.pub", None, pub),
        ("GET", "/v1/krl", None, pub),
        ("GET", "/v1/certs", None, adm(200)),
        ("POST", "/v1/certs/revoke", {"serial": 999999999}, adm(404)),
        ("GET", "/v1/policies", None, adm(200)),
        ("POST", "/v1/policies", {"name": "m", "accounts": []}, adm(400)),
        ("DELETE", "/v1/policies/999999", None, adm(404)),
        ("GET", "/v1/users/%s/keys" % p.name, None, adm(200)),
        ("POST", "/v1/users/%s/keys" % p.name, {"public_key": p.pub}, adm(409)),
        ("DELETE", "/v1/users/%s/keys/SHA256%%3Anone" % p.name, None, adm(404)),
        ("PATCH", "/v1/hosts/999999", {"labels": {}}, adm(404)),
        ("GET", "/v1/hosts/self/principals?" + q, None, hst(200)),
        ("POST", "/v1/hosts/self/renew", {"host_key": "x"}, hst(400)),
        ("GET", "/v1/session", None, {"none": 401, "bad": 401, "host": 403, "admin": 403,
                                      "session": 200}),
        ("GET", "/v1/approvals", None, ses(200)),
        ("POST", "/v1/approvals/%s/approve" % ("0" * 32), {"match": "11"}, ses(404)),
        ("POST", "/v1/approvals/%s/deny" % ("0" * 32), {}, ses(404)),
        ("GET", "/v1/users", None, adm(200)),
        ("POST", "/v1/tokens", {"hostname": "ca-authz-" + secrets.token_hex(3)}, adm(201)),
        ("POST", "/v1/auth/begin", {"user": "x"}, hst(200)),
        ("POST", "/v1/auth/totp", {"txid": "0" * 32, "code": "123456"}, hst(404)),
        ("POST", "/v1/login/start", {"user": "no_such", "public_key": p.pub},
         {k: 401 for k in ("none", "bad", "host", "admin", "session")}),
        ("GET", "/v1/login/%s" % ("0" * 32), None, {k: 404 for k in ("none", "bad", "host",
                                                                    "admin", "session")}),
    ]
    tokens = {"none": None, "bad": bad, "host": host, "admin": D.admin_token, "session": sess}
    for method, path, body, want in rows:
        for who, tok in tokens.items():
            st, b = D.api(method, path, body=body, token=tok)
            assert st == want[who], "%s %s as %s → %s %r (want %s)" % (method, path, who, st, b,
                                                                     want[who])
            if st in (401, 403):
                assert b["error"] == {401: "unauthorized", 403: "forbidden"}[st], b


# ---- audit -----------------------------------------------------------------------------------

def test_audit_rows_for_login_and_certificates():
    p = Person()
    add_policy(users=[p.name], accounts=["$user"])
    b = p.login_ok()
    # From an address of its own: refusals are audited in full only for the first few of an
    # address per minute (later ones are summed up), and this module refuses many from 127.0.0.1.
    D.api("POST", "/v1/login/start", {"user": p.name, "public_key": keygen()[1]},
          source="127.0.0.%d" % (100 + secrets.randbelow(100)))
    rows = D.audit(user=p.name)
    acts = [(r["action"], r["result"]) for r in rows]
    for want in [("login.start", "ok"), ("login.finish", "allow"), ("cert.issue", "ok"),
                 ("login.start", "deny"), ("key.add", "ok")]:
        assert want in acts, (want, acts)
    issue = [r for r in rows if r["action"] == "cert.issue"][0]
    assert "serial=%d" % b["serial"] in issue["reason"], issue
    # nothing secret in the audit log or the daemon log
    text = json.dumps(rows) + D.log()
    assert b["session_token"] not in text and harness.totp_code(p.secret) not in json.dumps(rows)


# ---- CLI -------------------------------------------------------------------------------------

def _cli(*args, env=None, json_out=False, token_file=None):
    return run_cli(D, *args, env=env, json_out=json_out, token_file=token_file)


def test_cli_keys_policy_certs_login_and_session():
    name = harness.unique_name()
    priv, pub = keygen()
    rc, out, err = _cli("user", "add", name, "--ssh-key", priv + ".pub")
    assert rc == 0, err
    secret, _ = D.enroll_totp(name)
    _, pub2 = keygen("ecdsa")
    with open(os.path.join(TMP, "k2.pub"), "w") as f:
        f.write(pub2 + "\n")
    assert _cli("user", "key", "add", name, os.path.join(TMP, "k2.pub"))[0] == 0
    rc, out, err = _cli("user", "key", "list", name)
    assert rc == 0 and "ssh-ed25519" in out and "ecdsa-sha2-nistp256" in out, out
    keys = D.admin("GET", "/v1/users/%s/keys" % name)[1]["keys"]
    ecfp = [k["fingerprint"] for k in keys if k["type"].startswith("ecdsa")][0]
    rc, out, err = _cli("user", "key", "delete", name, ecfp)
    assert rc == 0 and ecfp in out, (out, err)
    # policy
    pname = "cli-" + secrets.token_hex(3)
    rc, out, err = _cli("policy", "add", pname, "--user", name, "--account", "$user",
                        "--account", "ubuntu", "--host", "env=prod", "--max-ttl", "2h",
                        "--extension", "permit-pty", json_out=True)
    assert rc == 0, err
    pol = json.loads(out)
    assert pol["max_ttl"] == 7200 and pol["hosts"] == {"env": "prod"} and pol["extensions"] == ["permit-pty"]
    rc, out, err = _cli("policy", "list")
    assert rc == 0 and pname in out, out
    assert _cli("policy", "add", "x", "--user", name)[0] == 2   # no --account
    assert _cli("policy", "add", "y", "--account", "a", "--max-ttl", "1s")[0] == 2
    # login (no admin token; code from a file; session into HOME)
    home = tempfile.mkdtemp(dir=TMP)
    codef = os.path.join(TMP, "code-" + name)
    with open(codef, "w") as f:
        f.write(harness.totp_code(secret) + "\n")
    env = {"HOME": home, "XDG_CONFIG_HOME": ""}
    rc, out, err = run_cli(D, "login", "--user", name, "--key", priv, "--ttl", "8h",
                           "--code-file", codef, token_file="", env=env)
    assert rc == 0, (out, err)
    assert harness.file_mode(priv + "-cert.pub") == 0o644
    with open(priv + "-cert.pub") as f:
        listing = keygen_L(f.read())
    assert cert_field(listing, "Key ID") == '"%s"' % name
    va, vb = parse_valid(listing)
    assert abs(vb - int(time.time()) - 7200) <= 10           # 8h capped at the policy's 2h
    sess = os.path.join(home, ".config", "portcullis", "session")
    assert harness.file_mode(sess) == 0o600
    # the session drives approvals
    _, push = D.create_push(HOST_PROD[1], name)
    rc, out, err = run_cli(D, "approvals", token_file="", env=env)
    assert rc == 0 and push["push_id"] in out, (out, err)
    rc, out, err = run_cli(D, "approve", push["push_id"], "--match", push["match"], token_file="", env=env)
    assert rc == 0 and "approved" in out, (out, err)
    rc, out, err = run_cli(D, "user", "list", token_file="", env=env)
    assert rc != 0   # a session is no admin token
    # replayed code via CLI → refused
    rc, out, err = run_cli(D, "login", "--user", name, "--key", priv, "--code-file", codef,
                           token_file="", env=env)
    assert rc == 1 and "replayed" in err, (rc, out, err)
    # certificates
    rc, out, err = _cli("cert", "list", "--user", name)
    assert rc == 0 and name in out, out
    serial = D.admin("GET", "/v1/certs?user=%s" % name)[1]["certs"][0]["serial"]
    rc, out, err = _cli("cert", "revoke", "--serial", str(serial))
    assert rc == 0 and str(serial) in out, (out, err)
    assert _cli("cert", "revoke")[0] == 2
    assert _cli("policy", "delete", str(pol["id"]))[0] == 0
    # ssh-config needs no token
    rc, out, err = run_cli(D, "ssh-config", token_file="")
    host_ca = D.api("GET", "/v1/ca/host.pub")[1]["public_key"]
    assert rc == 0 and "@cert-authority * %s" % host_ca in out, (out, err)
    rc, out, err = run_cli(D, "--help", global_opts=False)
    for word in ("policy add", "cert revoke", "login --user", "ssh-config", "user key add"):
        assert word in out, word
