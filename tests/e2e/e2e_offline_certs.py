# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end tests of issue 13's per-certificate acceptance cases that e2e_offline.py does not
cover, through the real sshd and ssh of e2e_ca's environment (control plane stopped in the middle
where the case says offline):
- an expired `portcullis login` certificate (the CLI's shortest --ttl, 60 s, then waited out):
  logs in without a prompt while valid; refused after, online (no auth.* audit row) and with
  the control plane stopped (no offline decision queued);
- a certificate of our user CA without 2fa@portcullis (the test signs it with the control
  plane's CA key file, converted for ssh-keygen): online it prompts for the code (audit
  challenge, then totp allow); offline it is not the agent's to decide, so failmode applies:
  secure → refused, safe → admitted (no offline decision either way).
Revoked in the local KRL and a KRL older than offline_krl_max_age are e2e_offline.py's
(off_revoked_certificate_refused_offline, off_control_plane_stopped_...).
Hooked into run_e2e.py's TESTS by register(), right after e2e_offline's tests."""
import base64
import hashlib
import os
import re
import shutil
import struct
import subprocess
import time

import e2e_ca
import e2e_offline as off
from pcenv import harness
import pcenv
import test_agent_ca as ca      # tests/integration: ssh-keygen helpers

R = None                         # the run_e2e module
WHO = "pcoff-erin"               # a person of these tests only, rule per-certificate


def _valid_to(cert):
    info = ca.cert_info(cert)
    m = re.search(r"Valid: from \S+ to (\S+)", info)
    assert m, info
    # ssh-keygen -L prints local time
    return time.mktime(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))


def _krl_synced_since(c, t):
    try:
        return os.stat(os.path.join(c.ssh_dir, "revoked.krl")).st_mtime >= t
    except FileNotFoundError:
        return False


def _down(c):
    """Stops the control plane right after a KRL sync (the offline window is
    offline_krl_max_age from there)."""
    t = time.time()
    harness.wait_until(lambda: _krl_synced_since(c, t), timeout=15, what="a KRL sync")
    off._control_plane_down(c)


def _offline_decisions(c, since):
    """The agent's offline PAM-step decisions (event=begin … source=offline) logged since."""
    log = c.agent_log_since(since)
    return [l for l in log.splitlines() if "event=begin" in l and "source=offline" in l]


def _queue_empty(c):
    """Waits until the agent has uploaded its queued offline decisions (online)."""
    harness.wait_until(lambda: off._queued(c) == 0, timeout=20,
                       what="the agent to upload its queued offline decisions")


# ---- the user CA key for ssh-keygen -s --------------------------------------------------------

def _ssh_str(b):
    return struct.pack(">I", len(b)) + b


def _fingerprint(blob):
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _ca_key_for_ssh_keygen(c, signed_by, out):
    """The control plane's user CA key file (ca_user.key, the key that signed `signed_by`, a
    certificate it just issued) in a form ssh-keygen -s reads. An ECDSA/RSA PEM file is used as
    it is; an Ed25519 PKCS#8 PEM file (the default, which ssh-keygen cannot read) is rewritten as
    an unencrypted openssh-key-v1 file: its 32-byte seed from the PKCS#8 DER, its public key the
    line of the agent's user_ca.pub whose fingerprint is the certificate's signing CA."""
    src = c.d.path("ca_user.key")
    with open(src) as f:
        pem = f.read()
    der = base64.b64decode("".join(l for l in pem.splitlines() if not l.startswith("-----")))
    prefix = bytes.fromhex("302e020100300506032b657004220420")   # PKCS#8 Ed25519, no public
    if not (pem.startswith("-----BEGIN PRIVATE KEY-----") and der.startswith(prefix)
            and len(der) == len(prefix) + 32):
        return src
    seed = der[len(prefix):]
    m = re.search(r"Signing CA: ED25519 (SHA256:\S+)", ca.cert_info(signed_by))
    assert m, ca.cert_info(signed_by)
    with open(os.path.join(c.ssh_dir, "user_ca.pub")) as f:
        blobs = [base64.b64decode(l.split()[1]) for l in f if l.startswith("ssh-ed25519 ")]
    blobs = [b for b in blobs if _fingerprint(b) == m.group(1)]
    assert len(blobs) == 1, "the signing CA %s is not in user_ca.pub" % m.group(1)
    pub = blobs[0][4 + 11 + 4:]                  # string "ssh-ed25519", string pub
    assert len(pub) == 32
    check = os.urandom(4)
    priv = (check + check + _ssh_str(b"ssh-ed25519") + _ssh_str(pub) + _ssh_str(seed + pub)
            + _ssh_str(b"portcullis-user-ca"))
    priv += bytes(range(1, 1 + (-len(priv)) % 8))
    body = (b"openssh-key-v1\0" + _ssh_str(b"none") + _ssh_str(b"none") + _ssh_str(b"")
            + struct.pack(">I", 1) + _ssh_str(blobs[0]) + _ssh_str(priv))
    b64 = base64.b64encode(body).decode()
    text = "-----BEGIN OPENSSH PRIVATE KEY-----\n%s\n-----END OPENSSH PRIVATE KEY-----\n" % \
        "\n".join(b64[i:i + 70] for i in range(0, len(b64), 70))
    pcenv.write_file(out, text, 0o600)
    return out


def _cert_without_extension(c, who, key, cert, serial):
    """A copy of who's key (KEY-noext) with a certificate of our user CA for it: key id and
    principal who, the serial of who's live certificate `cert`, valid -5m:+1h, the ordinary
    permit-* extensions but not 2fa@portcullis. Returns the key path."""
    nkey = key + "-noext"
    shutil.copy2(key, nkey)
    shutil.copy2(key + ".pub", nkey + ".pub")
    os.chmod(nkey, 0o600)
    cakey = _ca_key_for_ssh_keygen(c, cert, os.path.join(c.keys, "ca_user.openssh"))
    try:
        r = subprocess.run(["ssh-keygen", "-q", "-s", cakey, "-I", who, "-n", who, "-z",
                            str(serial), "-V", "-5m:+1h", nkey + ".pub"],
                           capture_output=True, text=True, stdin=subprocess.DEVNULL)
    finally:
        if cakey != c.d.path("ca_user.key"):
            os.unlink(cakey)
    assert r.returncode == 0, r.stderr
    info = ca.cert_info(nkey + "-cert.pub")
    assert "2fa@portcullis" not in info and 'Key ID: "%s"' % who in info, info
    return nkey


# ---- the tests --------------------------------------------------------------------------------

def offc_expired_certificate_refused_online_and_offline():
    """`portcullis login --ttl 60` (the CLI's shortest): while valid the certificate logs in
    without a prompt; once expired sshd refuses it, online and with the control plane stopped.
    The certificate is issued by the control plane running BACK seconds in the past
    (PC_FAKE_NOW, a test build's clock offset), so it expires BACK seconds sooner: the test
    waits 60 - BACK seconds for it, not a whole minute."""
    back = 40
    c = e2e_ca.env()
    who = off._person(c, WHO)
    off._rule(c, who, "per-certificate")
    harness.wait_until(lambda: off._offline_doc_has(c, who), timeout=15,
                       what="the agent's offline document to name %s" % who)
    c.d.restart(env={"PC_FAKE_NOW": "-%d" % back})
    try:
        rc, out, cert = c.cli_login(who, fake_offset=-back, ttl="60s")
    finally:
        c.d.restart(env={})
    assert rc == 0, out
    key = c.keyfile[who]
    until = _valid_to(cert)
    assert until <= time.time() + 61 - back, ca.cert_info(cert)
    assert until > time.time() + 5, "expired before it could be used: %s" % ca.cert_info(cert)
    l = c.login("ubuntu", key)
    R.assert_in(l, " (the 60 s certificate while valid)")
    assert not l.prompts, l.describe()
    time.sleep(max(0, until + 2 - time.time()))
    # online: sshd refuses the certificate before the PAM step, so no auth.* row
    t0 = e2e_ca.audit_mark()
    l = c.login("ubuntu", key)
    R.assert_refused(l, " (expired certificate, online)")
    assert not l.prompts, l.describe()
    assert not e2e_ca.audit(who, t0, "auth."), R.fmt_rows(e2e_ca.audit(who, t0))
    sshd_off = c.sshd.proc.log_size()
    agent_off = c.agent.proc.log_size()
    _queue_empty(c)
    _down(c)
    try:
        l = c.login("ubuntu", key)
        R.assert_refused(l, " (expired certificate, control plane stopped)")
        assert not l.prompts, l.describe()
        assert not _offline_decisions(c, agent_off), c.agent_log_since(agent_off)
        assert off._queued(c) == 0, "an offline decision was queued"
        assert re.search(r"expired|not yet valid|invalid", c.sshd.proc.log_since(sshd_off),
                         re.I), R.tail(c.sshd.proc.log_since(sshd_off))
    finally:
        off._control_plane_up(c)


def offc_certificate_without_extension_prompts_online_failmode_offline():
    """A certificate of our user CA without 2fa@portcullis, for a person whose rule says
    per-certificate: online the code prompt (audit challenge + totp allow), while the same
    person's `portcullis login` certificate needs none; with the control plane stopped the
    agent does not decide it: failmode secure refuses it (the real certificate, same window,
    is admitted), failmode safe admits it."""
    c = e2e_ca.env()
    who = off._person(c, WHO)
    off._rule(c, who, "per-certificate")
    key, cert, serial = e2e_ca.cert_for(who)
    nkey = _cert_without_extension(c, who, key, cert, serial)
    harness.wait_until(lambda: off._offline_doc_has(c, who), timeout=15,
                       what="the agent's offline document to name %s" % who)
    # online
    t0 = e2e_ca.audit_mark()
    l = c.login("ubuntu", key)
    R.assert_in(l, " (portcullis login certificate, online)")
    assert not l.prompts, l.describe()
    R.expect_rows(e2e_ca.audit(who, t0, "auth."), [("auth.begin", "allow", "certificate_2fa")])
    t0 = e2e_ca.audit_mark()
    l = c.login("ubuntu", nkey, codes=[c.next_code(who)])
    R.assert_in(l, " (no extension, online, with the code)")
    assert l.prompts and "code" in l.prompts[0].lower(), \
        "no code prompt for a certificate without 2fa@portcullis:\n%s" % l.describe()
    a = e2e_ca.audit(who, t0, "auth.")
    R.expect_rows(a, [("auth.begin", "challenge", None), ("auth.totp", "allow", None)])
    assert not R.rows(a, "auth.begin", "allow"), R.fmt_rows(a)
    # offline, failmode secure (the environment's)
    _queue_empty(c)
    agent_off = c.agent.proc.log_size()
    _down(c)
    try:
        l = c.login("ubuntu", nkey, codes=["000000"])
        R.assert_refused(l, " (no extension, control plane stopped, failmode secure)")
        assert not _offline_decisions(c, agent_off), c.agent_log_since(agent_off)
        assert off._queued(c) == 0, "an offline decision was queued"
        l = c.login("ubuntu", key)
        R.assert_in(l, " (portcullis login certificate, control plane stopped)")
        assert not l.prompts, l.describe()
        assert off._queued(c) == 1
    finally:
        off._control_plane_up(c)
    # offline, failmode safe
    c.pam("safe")
    try:
        _queue_empty(c)
        agent_off = c.agent.proc.log_size()
        _down(c)
        l = c.login("ubuntu", nkey, codes=["000000"])
        R.assert_in(l, " (no extension, control plane stopped, failmode safe)")
        assert not _offline_decisions(c, agent_off), c.agent_log_since(agent_off)
        assert off._queued(c) == 0, "an offline decision was queued"
    finally:
        off._control_plane_up(c)
        c.pam("secure")


TESTS = [offc_expired_certificate_refused_online_and_offline,
         offc_certificate_without_extension_prompts_online_failmode_offline]


def register(run_e2e_module):
    """Called by run_e2e.py: returns the tests to append to its TESTS."""
    global R
    R = run_e2e_module
    return list(TESTS)
