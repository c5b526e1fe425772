#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""Tests of `portcullis-agent doctor` (issue 18): one case per broken setup it claims to detect,
each against a real sshd (`sshd -T`), a real agent and a real portcullisd, and each in its own
private mount namespace (unshare --mount --propagation private) with a temp directory
bind-mounted over /etc/ssh and /etc/pam.d: the machine's files are never touched. Each case
asserts the exit status and that the set of failing codes is exactly the one expected.

Usage: PC_BUILD_DIR=BUILD tests/doctor/run.sh [CASE...]   (root; under the system-tests flock)
Output: "PASS name" / "FAIL name: why" lines, then "N passed, N failed"."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402
from harness import Daemon  # noqa: E402

BUILD = os.path.abspath(os.environ.get("PC_BUILD_DIR") or os.path.join(HERE, "..", "..", "build"))
AGENT_BUILT = os.path.join(BUILD, "agent", "portcullis-agent")
SSHD = "/usr/sbin/sshd"
FIX = None        # the fixture, built once (outside the namespaces)


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path], check=True)
    with open(path + ".pub") as f:
        return f.read().strip()


class Fixture:
    """A control plane with one enrolled host whose key is certified; the agent binary in a
    root-owned 0755 directory (sshd's rule for the principals command); the files of a
    configured server, copied into each case's /etc/ssh."""

    def __init__(self):
        self.bin_dir = tempfile.mkdtemp(prefix="pc-doctor-", dir="/opt")
        os.chmod(self.bin_dir, 0o755)
        self.agent = os.path.join(self.bin_dir, "portcullis-agent")
        shutil.copy2(AGENT_BUILT, self.agent)
        os.chmod(self.agent, 0o755)
        self.work = tempfile.mkdtemp(prefix="pc-doctor-work-")
        os.chmod(self.work, 0o755)
        self.d = Daemon().start()
        self.d2 = Daemon(args=["--host-cert-ttl", "1h"]).start()   # certificates of 1 hour
        self.keys = os.path.join(self.work, "keys")
        os.mkdir(self.keys)
        self.hostpub = keygen(os.path.join(self.keys, "ssh_host_ed25519_key"))
        self.token, self.cert = self.enroll(self.d)
        _, self.short_cert = self.enroll(self.d2)
        st, b = self.d.api("GET", "/v1/ca/user.pub")
        assert st == 200, (st, b)
        self.user_ca = b["public_key"]

    def enroll(self, d):
        hn = "doc-" + harness.unique_name("d").replace("_", "-")
        tok = d.create_token(hostname=hn)
        st, b = d.api("POST", "/v1/enroll", {"token": tok, "host_key": self.hostpub})
        assert st == 200, (st, b)
        return b["host_token"], b["host_certificate"]

    def krl(self):
        st, _, _, raw = self.d.request("GET", "/v1/krl")
        assert st == 200
        return raw

    def close(self):
        for d in (self.d, self.d2):
            d.kill()
        shutil.rmtree(self.bin_dir, ignore_errors=True)
        shutil.rmtree(self.work, ignore_errors=True)


SSHD_CONFIG = """\
# a configured server (what `portcullis-agent configure` writes), as doctor expects it
{include}HostKey /etc/ssh/ssh_host_ed25519_key
HostCertificate /etc/ssh/portcullis/host-cert.pub
TrustedUserCAKeys /etc/ssh/portcullis/user_ca.pub
AuthorizedPrincipalsCommand {agent} principals %u %i %s %f
AuthorizedPrincipalsCommandUser nobody
RevokedKeys /etc/ssh/portcullis/revoked.krl
UsePAM yes
KbdInteractiveAuthentication yes
AuthenticationMethods publickey,keyboard-interactive:pam
{extra}"""

PAM_SSHD = """\
# PAM configuration for the Secure Shell service, with Portcullis
auth required pam_portcullis.so
account include common-account
session include common-session
"""


class Case:
    """One server's files, mounted over /etc/ssh and /etc/pam.d in this namespace, and its
    agent. Knobs change one thing each."""

    def __init__(self, name):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="case-", dir=FIX.work)
        os.chmod(self.dir, 0o755)
        self.ssh = os.path.join(self.dir, "ssh")
        self.pam = os.path.join(self.dir, "pam.d")
        self.conf = os.path.join(self.dir, "agent.conf")
        self.socket = os.path.join(self.dir, "run", "agent.sock")
        self.token_file = os.path.join(self.dir, "host.token")
        self.proc = None

    def build(self, sshd_include="", sshd_extra="", agent_path=None, pam=PAM_SSHD, cert=None,
              token=True, url=None, pin=None, agent_conf_extra=()):
        os.makedirs(os.path.join(self.ssh, "portcullis"))
        os.makedirs(os.path.join(self.ssh, "sshd_config.d"))
        for k in os.listdir(FIX.keys):
            shutil.copy2(os.path.join(FIX.keys, k), self.ssh)
        with open(os.path.join(self.ssh, "sshd_config"), "w") as f:
            f.write(SSHD_CONFIG.format(include=sshd_include, agent=agent_path or FIX.agent,
                                       extra=sshd_extra))
        pc = os.path.join(self.ssh, "portcullis")
        with open(os.path.join(pc, "host-cert.pub"), "w") as f:
            f.write((cert or FIX.cert) + "\n")
        with open(os.path.join(pc, "user_ca.pub"), "w") as f:
            f.write(FIX.user_ca + "\n")
        with open(os.path.join(pc, "revoked.krl"), "wb") as f:
            f.write(FIX.krl())
        shutil.copytree("/etc/pam.d", self.pam)
        with open(os.path.join(self.pam, "sshd"), "w") as f:
            f.write(pam)
        if token:
            with open(self.token_file, "w") as f:
                f.write(FIX.token + "\n")
            os.chmod(self.token_file, 0o600)
        self.write_conf(self.conf, url=url, pin=pin, extra=agent_conf_extra)
        # this namespace only: the case's files over the real paths
        for src, dst in ((self.ssh, "/etc/ssh"), (self.pam, "/etc/pam.d")):
            subprocess.run(["mount", "--bind", src, dst], check=True)
        return self

    def write_conf(self, path, url=None, pin=None, extra=()):
        lines = ["url = %s" % (url or FIX.d.url), "pin = %s" % (pin or FIX.d.pin),
                 "host_token_file = %s" % self.token_file, "socket = %s" % self.socket,
                 "ssh_dir = /etc/ssh/portcullis", "host_key = none",
                 "krl_interval = 86400"] + list(extra)
        with open(path, "w") as f:
            f.write("".join(l + "\n" for l in lines))
        return path

    def start_agent(self):
        self.log = open(os.path.join(self.dir, "agent.log"), "wb")
        self.proc = subprocess.Popen([FIX.agent, "run", "--config", self.conf],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.socket)
                s.close()
                return self
            except OSError:
                time.sleep(0.1)
        raise Fail("the agent did not come up")

    def stop_agent(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)

    def doctor(self, conf=None, env=None, sshd=SSHD):
        full = dict(os.environ)
        full.update(env or {})
        p = subprocess.run([FIX.agent, "doctor", "--json", "--config", conf or self.conf,
                            "--sshd", sshd], capture_output=True, text=True, env=full,
                           timeout=60)
        try:
            out = json.loads(p.stdout)
        except ValueError:
            raise Fail("doctor --json printed no JSON (exit %d): %r %r" % (p.returncode,
                                                                           p.stdout, p.stderr))
        return p.returncode, out

    def expect(self, codes, **kw):
        rc, out = self.doctor(**kw)
        failing = {c["code"] for c in out["checks"] if not c["ok"]}
        check(failing == set(codes),
              "failing codes %s, expected %s: %s" % (sorted(failing), sorted(codes),
                                                     json.dumps(out["checks"], indent=1)))
        check(rc == (1 if codes else 0) and out["ok"] is (not codes), "exit %d ok %r" %
              (rc, out["ok"]))
        for c in out["checks"]:
            if not c["ok"]:
                check(c["detail"] and c["fix"], "no detail or fix: %r" % c)
        return out


# ---- the cases: each one breaks one thing ---------------------------------------------------

def case_all_pass(c):
    c.build().start_agent()
    out = c.expect([])
    checks = {x["check"] for x in out["checks"]}
    check({"sshd", "principals", "pam", "config", "agent", "enrollment", "control_plane",
           "clock", "host_cert", "krl"} <= checks, "checks missing: %s" % checks)
    # and the text form: every line "ok", exit 0
    p = subprocess.run([FIX.agent, "doctor", "--config", c.conf, "--sshd", SSHD],
                       capture_output=True, text=True, timeout=60)
    check(p.returncode == 0 and all(l.startswith("ok ") for l in p.stdout.splitlines()),
          "text form: %d %r" % (p.returncode, p.stdout))


def case_sshd_config_invalid(c):
    c.build(sshd_extra="NoSuchKeyword yes\n").start_agent()
    c.expect(["sshd_config_invalid"])


def case_sshd_directive_overridden(c):
    # cloud-init's lesson: a drop-in read first sets the value, and the first one wins
    c.build(sshd_include="Include /etc/ssh/sshd_config.d/*.conf\n")
    with open("/etc/ssh/sshd_config.d/50-cloud-init.conf", "w") as f:
        f.write("AuthenticationMethods publickey\n")
    c.start_agent()
    out = c.expect(["sshd_directive"])
    check(any("authenticationmethods" in x["detail"] for x in out["checks"]), out)
    # the message names the file that wins, and does not call it missing
    detail = [x["detail"] for x in out["checks"] if x["code"] == "sshd_directive"][0]
    check("overridden by /etc/ssh/sshd_config.d/50-cloud-init.conf:1" in detail and
          "'publickey'" in detail and "missing" not in detail, detail)


def case_sshd_directive_missing(c):
    # no file sets AuthenticationMethods: sshd's default (any) is in effect
    c.build()
    with open("/etc/ssh/sshd_config") as f:
        lines = f.read().splitlines(True)
    with open("/etc/ssh/sshd_config", "w") as f:
        f.write("".join(l for l in lines if not l.startswith("AuthenticationMethods ")))
    c.start_agent()
    out = c.expect(["sshd_directive"])
    detail = [x["detail"] for x in out["checks"] if x["code"] == "sshd_directive"][0]
    check("authenticationmethods" in detail and "missing" in detail and
          "overrides" not in detail and "overridden" not in detail, detail)


def case_principals_command_missing(c):
    c.build(agent_path="/usr/local/sbin/no-such-portcullis-agent").start_agent()
    c.expect(["principals_command_missing"])


def case_principals_command_unsafe(c):
    c.build().start_agent()
    os.chmod(FIX.bin_dir, 0o775)        # group-writable: sshd refuses the command
    try:
        out = c.expect(["principals_command_unsafe"])
        check(any(FIX.bin_dir in x["detail"] for x in out["checks"]), out)
    finally:
        os.chmod(FIX.bin_dir, 0o755)


def case_pam_module_missing(c):
    c.build(pam="auth include common-auth\naccount include common-account\n").start_agent()
    c.expect(["pam_module_missing"])


def case_pam_order(c):
    c.build(pam="@include common-auth\nauth required pam_portcullis.so\n").start_agent()
    c.expect(["pam_order"])


def case_agent_down(c):
    c.build()
    c.expect(["agent_down"])


def case_config_invalid(c):
    c.build().start_agent()
    bad = os.path.join(c.dir, "bad.conf")
    with open(bad, "w") as f:
        f.write("url = %s\npin = %s\nno_such_option = 1\n" % (FIX.d.url, FIX.d.pin))
    c.expect(["config_invalid"], conf=bad)


def case_not_enrolled(c):
    c.build(token=False).start_agent()
    c.expect(["not_enrolled"])


def case_control_plane_unreachable(c):
    c.build().start_agent()
    conf = c.write_conf(os.path.join(c.dir, "down.conf"),
                        url="https://127.0.0.1:%d" % harness.free_port())
    c.expect(["control_plane_unreachable"], conf=conf)


def case_pin_mismatch(c):
    c.build().start_agent()
    import base64
    conf = c.write_conf(os.path.join(c.dir, "pin.conf"),
                        pin="sha256//" + base64.b64encode(os.urandom(32)).decode())
    c.expect(["pin_mismatch"], conf=conf)


def case_clock_skew(c):
    c.build().start_agent()
    c.expect(["clock_skew"], env={"PC_FAKE_NOW": "+600"})
    c.expect([], env={"PC_FAKE_NOW": "+30"})         # within 60 s passes


def case_host_cert_expiring(c):
    c.build(cert=FIX.short_cert).start_agent()
    out = c.expect(["host_cert_expiring"])
    check(any("less than a day" in x["detail"] for x in out["checks"]), out)


def case_host_cert_missing(c):
    c.build().start_agent()
    os.unlink("/etc/ssh/portcullis/host-cert.pub")
    c.expect(["host_cert_missing"])


def case_krl_missing(c):
    c.build().start_agent()
    time.sleep(1)                                     # the agent's sync at start is over
    os.unlink("/etc/ssh/portcullis/revoked.krl")
    c.expect(["krl_missing"])


def case_krl_stale(c):
    c.build().start_agent()
    time.sleep(1)
    st, b = FIX.d.admin("POST", "/v1/certs/revoke", {"key_id": "gone-" + harness.unique_name()})
    check(st == 200, "revoke: %s %r" % (st, b))
    out = c.expect(["krl_stale"])
    check(any("the control plane's is" in x["detail"] for x in out["checks"]), out)


CASES = [n[5:] for n in sorted(globals()) if n.startswith("case_")]


def run_case(name):
    """In the namespace: one case; prints PASS/FAIL."""
    c = Case(name)
    try:
        globals()["case_" + name](c)
        print("PASS %s" % name, flush=True)
        return 0
    except (Fail, AssertionError, subprocess.SubprocessError, OSError) as e:
        print("FAIL %s: %s" % (name, e), flush=True)
        return 1
    finally:
        c.stop_agent()


def main():
    global FIX
    if os.geteuid() != 0:
        print("SKIP doctor: needs root (mount namespaces)")
        print("0 passed, 0 failed, 1 skipped")
        return 0
    if len(sys.argv) == 3 and sys.argv[1] == "--case":
        with open(os.environ["PC_DOCTOR_FIXTURE"]) as f:
            FIX = Fixture.__new__(Fixture)
            state = json.load(f)
            FIX.__dict__.update({k: v for k, v in state.items() if k not in ("d", "d2")})
            FIX.d = Daemon.__new__(Daemon)
            FIX.d.__dict__.update(state["d"])
            FIX.d._ctx = None
        return run_case(sys.argv[2])
    want = sys.argv[1:]
    FIX = Fixture()
    passed = failed = 0
    try:
        state = {k: v for k, v in FIX.__dict__.items() if k not in ("d", "d2")}
        state["d"] = {"port": FIX.d.port, "data_dir": FIX.d.data_dir, "root": FIX.d.root,
                      "_admin_token": FIX.d.admin_token, "args": [], "env": {},
                      "proc": None, "log_level": None}
        fx = os.path.join(FIX.work, "fixture.json")
        with open(fx, "w") as f:
            json.dump(state, f)
        for name in CASES:
            if want and not any(w in name for w in want):
                continue
            p = subprocess.run(["unshare", "--mount", "--propagation", "private",
                                sys.executable, os.path.abspath(__file__), "--case", name],
                               env=dict(os.environ, PC_DOCTOR_FIXTURE=fx), capture_output=True,
                               text=True, timeout=300)
            sys.stdout.write(p.stdout)
            if p.returncode == 0 and ("PASS %s" % name) in p.stdout:
                passed += 1
            else:
                failed += 1
                if ("FAIL %s" % name) not in p.stdout:
                    print("FAIL %s: exit %d: %s" % (name, p.returncode, p.stderr[-800:]))
            sys.stdout.flush()
    finally:
        FIX.close()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
