# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end test of the CA rotation (issue 15) in e2e_ca's environment (its control plane,
agent with krl_interval 1 s, real sshd that trusts only the agent's user_ca.pub and serves the
agent's host-cert.pub, real ssh under expect), through every phase, driven by the real CLI:

  stable    alice's certificate A (old user CA); a client known_hosts K0 from ssh-config
  rotate    `portcullis ca rotate user|host --overlap 0`: the agent installs both user CA keys;
            A still logs in (sshd trusts the old key, auth/begin takes the key id); a new
            certificate B is signed by the new key and logs in; ssh-config prints both host CAs
            (K1), which accepts the host before and after `portcullis-agent renew` (the new host
            CA signs), while K0 (old host CA only) no longer does after the renewal
  finish    `portcullis ca finish user|host`: the agent's user_ca.pub holds only the new key;
            A is refused, B and a fresh C log in; after another renew, a known_hosts from the
            new ssh-config (one line) with the host KRL accepts the host, and the certificate
            sshd serves is the renewed one from the new host CA, not the old one.

Runs before e2e_ca's last test (which deletes the host): see e2e_ca.register()."""
import os
import shutil
import subprocess
import time

import pcenv
from pcenv import harness

import e2e_ca
import test_agent_ca as ca


def _cli(*args):
    c = e2e_ca.env()
    r = subprocess.run([c.paths["cli"], "--url", c.d.url, "--pin", c.pin, "--token-file",
                        c.d.path("admin.token")] + list(args), capture_output=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, "portcullis %s → %d\n%s%s" % (" ".join(args), r.returncode, out,
                                                            r.stderr.decode(errors="replace"))
    return out


def _bare(line):
    return " ".join(line.split()[:2])


def _file_keys(path):
    with open(path) as f:
        return [_bare(l) for l in f.read().splitlines() if l.strip() and not l.startswith("#")]


def _served_key_keys(kind):
    st, b = e2e_ca.env().d.api("GET", "/v1/ca/%s.pub" % kind)
    assert st == 200, (st, b)
    return [_bare(k) for k in b["public_keys"]]


def _known_hosts(name):
    """known_hosts from `portcullis ssh-config --domain` (every @cert-authority line it prints)
    and an ssh_config using it (no KRL: the overlap phase); returns (conf, lines)."""
    c = e2e_ca.env()
    d = os.path.join(c.dir, "client-rot")
    os.makedirs(d, exist_ok=True)
    out = subprocess.run([c.paths["cli"], "--url", c.d.url, "--pin", c.pin, "ssh-config",
                          "--domain", e2e_ca.DOMAIN], capture_output=True, timeout=60,
                         stdin=subprocess.DEVNULL).stdout.decode()
    lines = [l for l in out.splitlines() if l.startswith("@cert-authority ")]
    kh = os.path.join(d, name)
    pcenv.write_file(kh, "".join(l + "\n" for l in lines), 0o644)
    conf = os.path.join(d, name + ".ssh_config")
    pcenv.write_file(conf, "\n".join([
        "Host *", "  UserKnownHostsFile %s" % kh, "  GlobalKnownHostsFile /dev/null",
        "  StrictHostKeyChecking yes", "  HostKeyAlias %s" % e2e_ca.DOMAIN_NAME,
        "  BatchMode yes", "  IdentitiesOnly yes", "  IdentityFile /dev/null",
        "  PreferredAuthentications publickey", "  ConnectTimeout 20", ""]), 0o644)
    return conf, lines


def _renew_and_reload():
    c = e2e_ca.env()
    off = c.sshd.proc.log_size()
    r = subprocess.run([c.paths["agent"], "renew", "--config", c.agent.config],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    harness.wait_until(lambda: "Received SIGHUP" in c.sshd.proc.log_since(off), timeout=10,
                       what="sshd to be reloaded by reload_command")
    pcenv.wait_port(c.sshd.port, banner=b"SSH-2.0-")


def _login_known_hosts(keys):
    """The environment's own known_hosts (what c.login uses), refreshed as a client would."""
    c = e2e_ca.env()
    pcenv.write_file(c.known_hosts, "".join("@cert-authority [127.0.0.1]:%d %s\n"
                                            % (c.sshd.port, k) for k in keys))


def _served_host_cert():
    c = e2e_ca.env()
    r = subprocess.run(["ssh-keyscan", "-c", "-p", str(c.sshd.port), "127.0.0.1"],
                       capture_output=True, timeout=30)
    served = [l.split()[-1] for l in r.stdout.decode().splitlines() if "-cert-v01" in l]
    assert len(served) == 1, r.stdout.decode()
    return served[0]


def _signing_fp(cert_path):
    for l in ca.cert_info(cert_path).splitlines():
        if "Signing CA:" in l:
            return l.split()[3]
    raise AssertionError(ca.cert_info(cert_path))


def _fp(line, tag):
    c = e2e_ca.env()
    p = os.path.join(c.dir, "fp-%s.pub" % tag)
    pcenv.write_file(p, line + "\n", 0o644)
    return ca.fingerprint(p)


def _keep(key, tag):
    """A copy of key and its certificate as key-TAG (so a later login does not replace it)."""
    dst = key + "-" + tag
    for suffix in ("", ".pub", "-cert.pub"):
        shutil.copy2(key + suffix, dst + suffix)
    return dst


def ca_rotation_through_every_phase():
    c = e2e_ca.env()
    R = e2e_ca.R
    t0 = time.time()
    user_ca = os.path.join(c.ssh_dir, "user_ca.pub")
    host_cert = os.path.join(c.ssh_dir, "host-cert.pub")
    u0, h0 = _served_key_keys("user"), _served_key_keys("host")
    assert len(u0) == 1 and len(h0) == 1, (u0, h0)
    # ---- stable: certificate A from the old user CA, known_hosts K0 with the old host CA
    e2e_ca.cert_for("alice")
    key_a = _keep(c.keyfile["alice"], "oldca")
    assert _signing_fp(key_a + "-cert.pub") == _fp(u0[0], "u0")
    k0, lines0 = _known_hosts("k0")
    assert len(lines0) == 1, lines0
    verdict, err = e2e_ca._host_key_verdict(k0)
    assert verdict == "accepted", err
    old_host_cert = _served_host_cert()
    # ---- rotate both CAs
    out = _cli("ca", "rotate", "user", "--overlap", "0")
    assert "user CA: overlap" in out, out
    out = _cli("ca", "rotate", "host", "--overlap", "0")
    assert "host CA: overlap" in out, out
    u1, h1 = _served_key_keys("user"), _served_key_keys("host")
    assert u1[1:] == u0 and h1[1:] == h0 and u1[0] != u0[0] and h1[0] != h0[0], (u1, h1)
    harness.wait_until(lambda: sorted(_file_keys(user_ca)) == sorted(u1), timeout=10,
                       what="the agent to install both user CA keys")
    # the old certificate still logs in (TOTP too: auth/begin takes alice from its key id)
    l = c.login("ubuntu", key_a, codes=[c.next_code("alice")])
    R.assert_in(l, " (certificate of the old user CA during the overlap)")
    # a new certificate is signed by the new key and logs in
    e2e_ca.cert_for("alice")
    key_b = _keep(c.keyfile["alice"], "newca")
    assert _signing_fp(key_b + "-cert.pub") == _fp(u1[0], "u1")
    l = c.login("ubuntu", key_b, codes=[c.next_code("alice")])
    R.assert_in(l, " (certificate of the new user CA during the overlap)")
    # the host: ssh-config prints both host CAs; K1 accepts before and after the renewal
    k1, lines1 = _known_hosts("k1")
    assert [_bare(l.split(None, 2)[2]) for l in lines1] == h1, lines1
    verdict, err = e2e_ca._host_key_verdict(k1)
    assert verdict == "accepted", "K1 before the renewal: " + err
    _renew_and_reload()
    assert _signing_fp(host_cert) == _fp(h1[0], "h1"), ca.cert_info(host_cert)
    assert sorted(_file_keys(os.path.join(c.ssh_dir, "host_ca.pub"))) == sorted(h1)
    verdict, err = e2e_ca._host_key_verdict(k1)
    assert verdict == "accepted", "K1 after the renewal: " + err
    verdict, err = e2e_ca._host_key_verdict(k0)
    assert verdict == "refused", "K0 (old host CA only) accepted the new host CA: " + err
    _login_known_hosts(h1)
    # ---- finish both
    out = _cli("ca", "finish", "user")
    assert "user CA: stable" in out, out
    out = _cli("ca", "finish", "host")
    assert "host CA: stable" in out, out
    assert _served_key_keys("user") == [u1[0]] and _served_key_keys("host") == [h1[0]]
    harness.wait_until(lambda: _file_keys(user_ca) == [u1[0]], timeout=10,
                       what="the agent to rewrite user_ca.pub to the new key alone")
    _login_known_hosts(_served_key_keys("host"))
    l = c.login("ubuntu", key_a)
    R.assert_refused(l, " (certificate of the removed user CA)")
    assert not l.prompts, l.describe()
    l = c.login("ubuntu", key_b, codes=[c.next_code("alice")])
    R.assert_in(l, " (certificate of the new user CA after finish)")
    e2e_ca.cert_for("alice")
    l = c.login_ok("ubuntu", "alice")
    R.assert_in(l, " (a fresh certificate after finish)")
    # the host after finish + renew: the new ssh-config (one line) with the host KRL accepts,
    # and sshd serves the renewed certificate of the new host CA, never the old one
    _renew_and_reload()
    assert _file_keys(os.path.join(c.ssh_dir, "host_ca.pub")) == [h1[0]]
    verdict, err = e2e_ca._host_key_verdict(e2e_ca._client_config())
    assert verdict == "accepted", "new ssh-config after finish: " + err
    served = _served_host_cert()
    with open(host_cert) as f:
        assert served == f.read().split()[1] and served != old_host_cert
    assert _signing_fp(host_cert) == _fp(h1[0], "h1b")
    rows = [r["action"] for r in c.d.audit(since=t0 - 1) if r["action"].startswith("ca.")]
    assert rows == ["ca.rotate", "ca.rotate", "ca.finish", "ca.finish"], rows


TESTS = [ca_rotation_through_every_phase]
