# SPDX-License-Identifier: BSD-2-Clause
"""pam_portcullis.so in front of the real sudo.

sudo's PAM service is always "sudo", so the test never touches the machine's files: each run
happens in a private mount namespace (unshare --mount) where a temporary /etc/pam.d/sudo and
/etc/sudoers are bind-mounted over the real ones. A real control plane and agent (the same
set-up as tests/e2e) answer the module; expect types the codes at sudo's prompt.
Prints one line per test and ends with "N passed, N failed".
"""
import os
import shutil
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "e2e"))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))

import harness  # noqa: E402
import pcenv  # noqa: E402

BUILD = os.path.abspath(os.environ.get("PC_BUILD_DIR", os.path.join(SRC, "build-main")))
MODULE = os.path.join(BUILD, "pam_module", ".libs", "pam_portcullis.so")
AGENT = os.path.join(BUILD, "agent", "portcullis-agent")
BASE = "/usr/local/lib/portcullis-test"
USER = "pcsudo1"
MARK = "SUDO-RAN-AS-UID-"


class Env:
    def setup(self):
        for p in (MODULE, AGENT, "/usr/bin/sudo", "/usr/bin/expect"):
            if not os.path.exists(p):
                raise pcenv.SetupError("missing %s (build, or scripts/install-deps.sh)" % p)
        pcenv.mkdir_root(BASE)
        self.dir = os.path.join(BASE, "sudo-%d" % os.getpid())
        pcenv.mkdir_root(self.dir)
        self.d = harness.Daemon(log_level="debug").start()
        self.agent = pcenv.Agent(AGENT, self.dir, self.d.url, self.d.print_pin())
        self.agent.enroll(self.d.create_token(labels={"env": "sudo-test"}))
        self.agent.start()
        pcenv.ensure_user(USER)
        self.d.admin("DELETE", "/v1/users/%s" % USER)
        self.d.create_user(USER, push=False)
        self.secret, _ = self.d.enroll_totp(USER)
        # sudoers for the namespace: USER may run /usr/bin/id as root, asked every time.
        # passwd_tries=1: the module's own tries= counts the attempts (sudo would otherwise
        # run the whole PAM conversation up to 3 times, 3 prompts each).
        self.sudoers = os.path.join(self.dir, "sudoers")
        pcenv.write_file(self.sudoers, "Defaults !lecture, timestamp_timeout=0, passwd_tries=1\n"
                         "root ALL=(ALL:ALL) ALL\n%s ALL=(root) /usr/bin/id\n" % USER, 0o440)
        return self

    def write_pam(self, failmode="secure"):
        """The sudo PAM stack under test: our module is the only authentication."""
        path = os.path.join(self.dir, "pam-sudo")
        pcenv.write_file(path, "auth required %s socket=%s failmode=%s tries=3\n"
                         "account required pam_permit.so\n"
                         "session required pam_permit.so\n"
                         % (MODULE, self.agent.socket, failmode), 0o644)
        return path

    def sudo(self, codes, failmode="secure"):
        """Runs `sudo /usr/bin/id -u` as USER in a private namespace; returns (rc, output)."""
        pam = self.write_pam(failmode)
        codefile = os.path.join(self.dir, "codes")
        pcenv.write_file(codefile, "\n".join(codes) + "\n", 0o600)
        # setpriv (not su) keeps expect's terminal as the controlling tty sudo prompts on.
        inner = ("mount --bind %s /etc/pam.d/sudo && mount --bind %s /etc/sudoers && "
                 "exec setpriv --reuid=%s --regid=%s --init-groups "
                 "sh -c 'sudo -k; out=$(sudo /usr/bin/id -u) && echo %s$out'"
                 % (pam, self.sudoers, USER, USER, MARK))
        cmd = ["expect", os.path.join(HERE, "sudo.exp"), codefile, "--",
               "unshare", "--mount", "--propagation", "private", "sh", "-c", inner]
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=90)
        return r.returncode, (r.stdout + r.stderr).decode(errors="replace")

    def last_audit_id(self):
        rows = self.d.audit()
        return max([r["id"] for r in rows] or [0])

    def rows_after(self, after_id, action):
        return [r for r in self.d.audit(user=USER) if r["id"] > after_id and r.get("action") == action]

    def teardown(self):
        try:
            self.agent.stop()
        except Exception:
            pass
        harness.cleanup_all()
        pcenv.stop_all()
        shutil.rmtree(self.dir, ignore_errors=True)


def fresh_code(secret):
    if 30 - time.time() % 30 < 3:
        time.sleep(30 - time.time() % 30 + 0.2)
    return harness.totp_code(secret)


def test_right_code_runs_as_root(E):
    before = E.last_audit_id()
    rc, out = E.sudo([fresh_code(E.secret)])
    assert MARK + "0" in out, "sudo did not run id as root (rc %d):\n%s" % (rc, out)
    assert "UNEXPECTED-PASSWORD-PROMPT" not in out, out
    rows = E.rows_after(before, "auth.totp")
    assert [r["result"] for r in rows] == ["allow"], "want one auth.totp allow row: %r" % rows
    assert E.rows_after(before, "auth.begin"), "no auth.begin row"


def test_wrong_code_three_times_refused(E):
    before = E.last_audit_id()
    rc, out = E.sudo(["000000", "111111", "222222"])
    assert MARK not in out, "sudo ran the command with wrong codes:\n%s" % out
    assert rc != 0, "sudo exited 0 with wrong codes:\n%s" % out
    assert out.count("Verification code:") == 3, "expected 3 prompts:\n%s" % out
    rows = E.rows_after(before, "auth.totp")
    assert len([r for r in rows if r["reason"] == "wrong_code"]) == 3, rows
    assert not any(r["result"] == "allow" for r in rows), rows


def test_agent_down_secure_refused(E):
    E.agent.stop()
    try:
        rc, out = E.sudo([fresh_code(E.secret)], failmode="secure")
        assert MARK not in out, "sudo ran with the agent down under failmode=secure:\n%s" % out
    finally:
        E.agent.start()


def main():
    if os.geteuid() != 0:
        print("SKIP sudo: needs root (runs sudo in a private mount namespace)")
        print("0 passed, 0 failed, 1 skipped")
        return 0
    if os.path.exists(MODULE) and b"libasan.so" in open(MODULE, "rb").read():
        # sudo is set-uid: the loader ignores LD_PRELOAD for it, so an ASan-instrumented module
        # cannot be loaded into it. The plain build runs these tests against the real sudo.
        print("SKIP sudo: the sanitizer build's module cannot be loaded into set-uid sudo "
              "(LD_PRELOAD is ignored); the plain build runs these tests")
        print("0 passed, 0 failed, 3 skipped")
        return 0
    tests = [test_right_code_runs_as_root, test_wrong_code_three_times_refused,
             test_agent_down_secure_refused]
    passed = failed = 0
    E = Env()
    try:
        E.setup()
    except Exception:
        print("FAIL sudo_setup\n    " + traceback.format_exc().replace("\n", "\n    "))
        E.teardown()
        print("0 passed, %d failed" % len(tests))
        return 1
    try:
        for t in tests:
            try:
                t(E)
                print("PASS " + t.__name__)
                passed += 1
            except Exception:
                print("FAIL %s\n    %s" % (t.__name__, traceback.format_exc().replace("\n", "\n    ")))
                failed += 1
            sys.stdout.flush()
    finally:
        E.teardown()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
