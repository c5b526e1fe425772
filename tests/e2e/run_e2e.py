#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end tests: a real sshd (Debian's, via a symlink so its PAM service is ours), the real
pam_portcullis.so, the real portcullis-agent, tests/faultproxy.py and portcullisd, driven by a
real `ssh` client under expect (tests/e2e/login.exp). Run through tests/e2e/run.sh as root.

    PC_BUILD_DIR=BUILD tests/e2e/run.sh [FILTER...]

Output: one line per test with its seconds (`PASS name (1.2s)`, `FAIL name (1.2s)` + indented
details, `SKIP name: reason (0.0s)`), a `time:` line (set-up, tests, teardown), then
`N passed, N failed[, N skipped]`. Exit 0 iff nothing failed.
Each test has a hard timeout (PC_E2E_TIMEOUT, default 150 s). PC_KEEP_TMP=1 keeps the run dir.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import pcenv  # noqa: E402
from pcenv import harness  # noqa: E402

BUILD_DIR = os.path.abspath(os.environ.get("PC_BUILD_DIR", os.path.join(pcenv.SRC_DIR, "build-main")))
harness.BUILD_DIR = BUILD_DIR
harness.DAEMON_BIN = os.path.join(BUILD_DIR, "control-plane", "portcullisd")
harness.CLI_BIN = os.path.join(BUILD_DIR, "cli", "portcullis")
PATHS = pcenv.build_paths(BUILD_DIR)

TEST_TIMEOUT = int(os.environ.get("PC_E2E_TIMEOUT", "150"))
BASE = "/usr/local/lib/portcullis-test"
SERVICE = "portcullis-test-sshd"
USERS = ["pctest%d" % i for i in range(1, 10)]
MODULE_TIMEOUT = 10          # timeout= of the module in the hang test
AGENT_SHORT_TIMEOUT = "1"    # agent timeout in the hang test (its minimum)


class TestTimeout(BaseException):
    pass


class Skip(Exception):
    pass


def _on_alarm(signum, frame):
    raise TestTimeout("hard timeout: test ran longer than %d s" % TEST_TIMEOUT)


def indent(text):
    return "".join("    " + l + "\n" for l in text.rstrip("\n").splitlines())


def tail(text, n=40):
    lines = text.rstrip("\n").splitlines()
    return "\n".join(lines[-n:])


# --------------------------------------------------------------------------------------------
# the environment (one per run)

class Env:
    def __init__(self):
        self.run_dir = None
        self.syslog = None
        self.d = None
        self.proxy = None
        self.agent = None
        self.sshd = None
        self.asan_seen = 0
        self.store_seen = set()

    def setup(self):
        for k, p in PATHS.items():
            if k != "cli" and not os.path.exists(p):
                raise pcenv.SetupError("%s not built: %s (set PC_BUILD_DIR)" % (k, p))
        pcenv.mkdir_root(BASE)
        # stale run dirs of earlier runs that died without cleaning up
        for name in os.listdir(BASE):
            if name.startswith("run-"):
                try:
                    pid = int(name.split("-")[1])
                except (IndexError, ValueError):
                    continue
                if not pcenv.pid_alive(pid):
                    stale = os.path.join(BASE, name)
                    for pf in ("sshd.proc.pid", "agent/agent.pid"):
                        pcenv.stop_pidfile(os.path.join(stale, pf), must_mention=stale)
                    shutil.rmtree(stale, ignore_errors=True)
        self.run_dir = os.path.join(BASE, "run-%d" % os.getpid())
        pcenv.mkdir_root(self.run_dir)
        self.syslog = pcenv.SyslogSink(self.run_dir)
        # the control plane (harness: temp data dir, killed at exit)
        self.d = harness.Daemon(log_level="debug").start()
        self.pin = self.d.print_pin()
        # the fault proxy in pass mode in front of it
        self.proxy = pcenv.FaultProxy(self.run_dir, self.d.port, data_dir=self.d.data_dir).start()
        # the agent, enrolled through the proxy
        tok = self.d.create_token(labels={"env": "e2e"})
        self.agent = pcenv.Agent(PATHS["agent"], self.run_dir, self.proxy.url, self.pin)
        self.agent.enroll(tok)
        self.agent.start()
        st, hosts = self.d.admin("GET", "/v1/hosts")
        self.hostnames = [h["hostname"] for h in hosts.get("hosts", [])] if st == 200 else []
        # sshd and its users
        self.sshd = pcenv.Sshd(BASE, SERVICE, self.run_dir, syslog=self.syslog).setup()
        for u in USERS:
            self.sshd.add_user(u)
        self.sshd.write_config()
        self.pam(failmode="secure")
        self.sshd.start(module=PATHS["module"])

    def pam(self, failmode="secure", extra=""):
        opts = "tries=3"
        if extra:
            opts += " " + extra
        self.sshd.write_pam(PATHS["module"], self.agent.socket, failmode=failmode, extra_opts=opts)

    def teardown(self):
        for part in (self.sshd, self.agent, self.proxy):
            if part is not None:
                try:
                    part.stop()
                except Exception:
                    pass
        if self.sshd is not None:
            self.sshd.remove_pam()
        harness.cleanup_all()
        pcenv.stop_all()
        if self.syslog is not None:
            self.syslog.close()
        if self.run_dir and os.path.isdir(self.run_dir):
            if os.environ.get("PC_KEEP_TMP"):
                sys.stderr.write("run_e2e: kept %s\n" % self.run_dir)
            else:
                shutil.rmtree(self.run_dir, ignore_errors=True)
                if self.sshd is not None:
                    self.sshd.remove_link()

    # ---- per-test helpers ------------------------------------------------------------------
    def fresh_user(self, name, push=False):
        """(Re)creates the Portcullis user with a new TOTP secret; returns the secret."""
        st, _ = self.d.admin("DELETE", "/v1/users/%s" % name)
        assert st in (200, 404), "DELETE /v1/users/%s → %s" % (name, st)
        self.d.create_user(name, push=push)
        secret, _ = self.d.enroll_totp(name)
        return secret

    def audit(self, user, since, reports=False):
        """The login rows (auth.*, push.*) of user since the epoch time since. A host's failmode
        reports (auth.failmode, issue 18) are uploaded when the agent reaches the control plane
        again, maybe into the next test's window: only with reports=True (failmode_reports)."""
        return [r for r in self.d.audit(user=user, since=since - 1)
                if r.get("action", "").startswith(("auth.", "push.")) and
                (reports or r.get("action") != "auth.failmode")]


E = Env()


# --------------------------------------------------------------------------------------------
# one login

class Login:
    def __init__(self, user, out, rc, elapsed, match=None, started=None):
        self.user = user
        self.out = out
        self.rc = rc
        self.elapsed = elapsed
        self.match = match
        self.started = started          # epoch time the ssh client was started
        self.ended = started + elapsed if started is not None else None

    @property
    def marker(self):
        return "E2E-OK-%s" % self.user in self.out

    @property
    def denied(self):
        return "Permission denied" in self.out

    @property
    def prompts(self):
        return [l.split(": ", 1)[1] if ": " in l else l
                for l in self.out.splitlines() if l.startswith("E2E-PROMPT ")]

    def describe(self):
        return "ssh/expect rc=%s after %.1fs; output:\n%s" % (self.rc, self.elapsed,
                                                            indent(self.out.strip()))


def login(user, codes=(), on_prompt=None, timeout=60, secret=None):
    """Runs login.exp → ssh user@127.0.0.1 'echo E2E-OK-$USER'. on_prompt(number_or_None) is
    called at the first prompt and returns what to do: "enter", "code:DIGITS", "next", "close"."""
    tmp = tempfile.mkdtemp(prefix="pc-e2e-login-")
    pushfile = os.path.join(tmp, "prompt")
    gofile = os.path.join(tmp, "go")
    cmd = ["expect", pcenv.LOGIN_EXP, "-timeout", str(timeout)]
    for c in codes:
        cmd += ["-code", c]
    if secret:
        cmd += ["-secret", secret]
    if on_prompt is not None:
        cmd += ["-pushfile", pushfile, "-gofile", gofile]
    cmd += ["--"] + E.sshd.ssh_cmd(user) + ["echo E2E-OK-$USER"]
    outpath = os.path.join(tmp, "out")
    t0 = time.time()
    match = None
    with open(outpath, "wb") as of:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=of, stderr=subprocess.STDOUT,
                             start_new_session=True)
    try:
        handled = False
        while p.poll() is None:
            if on_prompt is not None and not handled and os.path.exists(pushfile):
                with open(pushfile) as f:
                    word = f.read().strip()
                match = None if word == "none" else word
                handled = True
                go = on_prompt(match)
                with open(gofile + ".tmp", "w") as f:
                    f.write(go + "\n")
                os.rename(gofile + ".tmp", gofile)
            if time.time() - t0 > timeout + 15:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                break
            time.sleep(0.05)
    finally:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
    with open(outpath, "rb") as f:
        out = f.read().decode("utf-8", "replace").replace("\r", "")
    shutil.rmtree(tmp, ignore_errors=True)
    return Login(user, out, p.returncode, time.time() - t0, match, started=t0)


def mark_logs():
    """Remembers where the logs stand, so a failure shows only what its test produced."""
    E.marks = (E.sshd.proc.log_size() if E.sshd and E.sshd.proc else 0,
               E.agent.proc.log_size() if E.agent and E.agent.proc else 0,
               E.syslog.mark() if E.syslog else 0)


def context(extra=""):
    """Logs (of the current test) to attach to a failure."""
    so, ao, sm = getattr(E, "marks", (0, 0, 0))
    parts = [extra] if extra else []
    if E.sshd and E.sshd.proc:
        parts.append("sshd log:\n" + indent(tail(E.sshd.proc.log_since(so), 30)))
    if E.agent and E.agent.proc:
        parts.append("agent log:\n" + indent(tail(E.agent.proc.log_since(ao), 30)))
    if E.syslog:
        lines = [repr(r) for r in E.syslog.since(sm) if "portcullis" in r.text]
        parts.append("syslog (pam_portcullis):\n" + indent(tail("\n".join(lines), 30)))
    return "\n".join(parts)


def assert_in(l, what=""):
    if not (l.marker and l.rc == 0):
        raise AssertionError("expected the login to succeed and print E2E-OK-%s%s; %s"
                             % (l.user, what, l.describe()))


def assert_refused(l, what=""):
    if l.marker:
        raise AssertionError("expected the login to be refused%s, but the command ran; %s"
                             % (what, l.describe()))
    if not l.denied:
        raise AssertionError("expected 'Permission denied'%s; %s" % (what, l.describe()))
    if l.rc == 0:
        raise AssertionError("ssh exited 0 although refused%s; %s" % (what, l.describe()))


def rows(audit, action=None, result=None):
    return [r for r in audit if (action is None or r.get("action") == action)
            and (result is None or r.get("result") == result)]


def fmt_rows(audit):
    return indent("\n".join("%s %s user=%s host=%s result=%s reason=%s txid=%s" % (
        r.get("id"), r.get("action"), r.get("user"), r.get("host"), r.get("result"),
        r.get("reason"), r.get("txid")) for r in audit) or "(no rows)")


def expect_rows(audit, want):
    """want: list of (action, result, reason-or-None), in order, as a subsequence of audit."""
    i = 0
    for r in audit:
        if i < len(want):
            a, res, reason = want[i]
            if r.get("action") == a and r.get("result") == res and \
                    (reason is None or r.get("reason") == reason):
                i += 1
    if i < len(want):
        raise AssertionError("audit: expected rows %r in this order, missing from %r on; got:\n%s"
                             % (want, want[i], fmt_rows(audit)))


def assert_no_allow(audit):
    bad = [r for r in audit if r.get("result") == "allow"]
    if bad:
        raise AssertionError("audit: expected no allow row, got:\n%s" % fmt_rows(audit))


def assert_host(audit):
    for r in audit:
        if r.get("action", "").startswith(("auth.", "push.create")) and \
                E.hostnames and r.get("host") not in E.hostnames:
            raise AssertionError("audit row names host %r, enrolled: %r\n%s"
                                 % (r.get("host"), E.hostnames, fmt_rows(audit)))


def module_results(user, mark, timeout=3):
    """The module's result lines (user=U … result=R reason=X) for user since mark."""
    def pred(r):
        return "pam_portcullis" in r.text and "user=%s " % user in r.text and " result=" in r.text
    return E.syslog.wait_for(pred, mark=mark, timeout=timeout)


def assert_module_reason(user, mark, want):
    hits = module_results(user, mark)
    if not any(want in r.text for r in hits):
        raise AssertionError("expected a pam_portcullis line for %s with %r, got:\n%s"
                             % (user, want, indent("\n".join(repr(r) for r in hits) or "(none)")))


def failmode_lines(user, mark):
    def pred(r):
        return "failmode=safe" in r.text and "admitting %s" % user in r.text and r.severity <= 4
    return E.syslog.wait_for(pred, mark=mark, timeout=3)


def any_failmode_line(mark):
    return [r for r in E.syslog.since(mark) if "failmode=safe" in r.text or "allow_failmode" in r.text]


def fresh_code(secret):
    """The current code. No waiting: the control plane accepts the steps now-1..now+1
    (--totp-window 1), so a code of the current step stays valid for at least 30 s (well past
    a login, and past the second login of the replay test, which must see "replayed", not
    "wrong_code"). Every test that enters a code works on a user enrolled afresh by
    fresh_user(), whose replay history is empty, so no test waits for a new time step."""
    return harness.totp_code(secret)


# --------------------------------------------------------------------------------------------
# the tests

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


@test
def totp_right_code_logs_in():
    u = "pctest1"
    secret = E.fresh_user(u)
    t0 = time.time()
    code = fresh_code(secret)
    l = login(u, codes=[code])
    assert_in(l)
    assert l.prompts and "code" in l.prompts[0].lower(), \
        "expected a code prompt, got prompts %r" % l.prompts
    audit = E.audit(u, t0)
    expect_rows(audit, [("auth.begin", "challenge", None), ("auth.totp", "allow", None)])
    assert_host(audit)
    if code in l.out.replace("E2E-PROMPT", ""):
        raise AssertionError("the code was echoed to the terminal:\n%s" % l.describe())


@test
def totp_wrong_code_three_times_refused():
    u = "pctest2"
    secret = E.fresh_user(u)
    t0 = time.time()
    wrong = [harness.wrong_code(secret) for _ in range(3)]
    l = login(u, codes=wrong)
    assert_refused(l)
    if len(l.prompts) != 3:
        raise AssertionError("expected exactly 3 code prompts (tries=3), got %d: %r\n%s"
                             % (len(l.prompts), l.prompts, l.describe()))
    audit = E.audit(u, t0)
    expect_rows(audit, [("auth.begin", "challenge", None)] +
                [("auth.totp", "deny", "wrong_code")] * 3)
    assert_no_allow(audit)


@test
def totp_used_code_refused():
    u = "pctest3"
    secret = E.fresh_user(u)
    t0 = time.time()
    code = fresh_code(secret)
    first = login(u, codes=[code])
    assert_in(first, " (first use of the code)")
    again = login(u, codes=[code] * 3)
    assert_refused(again, " (same code again)")
    audit = E.audit(u, t0)
    expect_rows(audit, [("auth.begin", "challenge", None), ("auth.totp", "allow", None),
                        ("auth.begin", "challenge", None), ("auth.totp", "deny", "replayed")])
    begins = [i for i, r in enumerate(audit) if r.get("action") == "auth.begin"]
    later = audit[begins[1]:] if len(begins) >= 2 else []
    if rows(later, result="allow"):
        raise AssertionError("audit: an allow row after the replay:\n%s" % fmt_rows(audit))


def pending_push(user, timeout=10):
    def find():
        st, b = E.d.admin("GET", "/v1/approvals")
        assert st == 200, "GET /v1/approvals → %s %r" % (st, b)
        hits = [a for a in b.get("approvals", []) if a.get("user") == user]
        return hits
    hits = harness.wait_until(find, timeout=timeout, what="a pending approval for %s" % user)
    assert len(hits) == 1, "expected one pending approval for %s, got %r" % (user, hits)
    return hits[0]


def push_login(user, decide, enter_first=False):
    """A push login: decide(push_id, match) approves/denies via the admin API."""
    seen = {}

    def on_prompt(match):
        seen["match"] = match
        if match is None:
            return "close"
        a = pending_push(user)
        seen["approval"] = a
        seen["reply"] = decide(a["push_id"], match)
        return "enter"

    l = login(user, on_prompt=on_prompt)
    if seen.get("match") is None:
        raise AssertionError("no two-digit match number in the first prompt %r\n%s"
                             % (l.prompts[:1], l.describe()))
    return l, seen


def approve(push_id, match):
    st, b = E.d.admin("POST", "/v1/approvals/%s/approve" % push_id, {"match": match})
    return st, b


@test
def push_approved_logs_in():
    u = "pctest4"
    E.fresh_user(u, push=True)
    t0 = time.time()
    l, seen = push_login(u, approve)
    st, b = seen["reply"]
    assert st == 200 and b.get("state") == "approved", "approve → %s %r" % (st, b)
    assert_in(l, " after approving match %s" % seen["match"])
    assert len(l.prompts) == 1, "expected one prompt, got %r" % l.prompts
    audit = E.audit(u, t0)
    expect_rows(audit, [("auth.begin", "challenge", None), ("push.create", "pending", None),
                        ("push.approve", "allow", None)])
    assert_host(audit)


@test
def push_approved_while_waiting_logs_in():
    """The user presses Enter first; the module long-polls while the approval comes 1 s later
    (login.exp sends the Enter within ~0.2 s of being told to)."""
    u = "pctest4"
    E.fresh_user(u, push=True)
    t0 = time.time()
    seen = {}

    def approve_later(push_id, match):
        time.sleep(1)
        seen["approving"] = time.time()
        seen["reply"] = approve(push_id, match)

    def on_prompt(match):
        seen["match"] = match
        if match is None:
            return "close"
        a = pending_push(u)
        th = threading.Thread(target=approve_later, args=(a["push_id"], match), daemon=True)
        th.start()
        seen["thread"] = th
        return "enter"
    l = login(u, on_prompt=on_prompt)
    if seen.get("match") is None:
        raise AssertionError("no two-digit match number in the first prompt\n%s" % l.describe())
    seen["thread"].join(timeout=10)
    st, b = seen.get("reply", (None, None))
    assert st == 200 and b.get("state") == "approved", "approve → %s %r" % (st, b)
    assert_in(l, " after a late approval")
    if l.ended <= seen["approving"]:
        raise AssertionError("the login finished before the approval was given (%.1fs before)"
                             "\n%s" % (seen["approving"] - l.ended, l.describe()))
    expect_rows(E.audit(u, t0), [("auth.begin", "challenge", None), ("push.create", "pending", None),
                                 ("push.approve", "allow", None)])


@test
def push_denied_refused():
    u = "pctest5"
    E.fresh_user(u, push=True)
    t0 = time.time()

    def deny(push_id, match):
        return E.d.admin("POST", "/v1/approvals/%s/deny" % push_id, {})
    l, seen = push_login(u, deny)
    st, b = seen["reply"]
    assert st == 200 and b.get("state") == "denied", "deny → %s %r" % (st, b)
    if "E2E-RESULT extra-prompt" in l.out:
        raise AssertionError("after a denied push the module prompted again (the test had no "
                             "code to give): %r\n%s" % (l.prompts, l.describe()))
    assert_refused(l)
    audit = E.audit(u, t0)
    expect_rows(audit, [("auth.begin", "challenge", None), ("push.create", "pending", None),
                        ("push.deny", "deny", None)])
    assert_no_allow(audit)


@test
def push_wrong_number_refused():
    u = "pctest5"
    E.fresh_user(u, push=True)
    t0 = time.time()

    def approve_wrong(push_id, match):
        wrong = "%02d" % (10 + (int(match) - 10 + 37) % 90)
        assert wrong != match
        return approve(push_id, wrong)
    l, seen = push_login(u, approve_wrong)
    st, b = seen["reply"]
    assert st == 200 and b.get("state") == "denied", "approve with a wrong number → %s %r" % (st, b)
    if "E2E-RESULT extra-prompt" in l.out:
        raise AssertionError("after a push denied by a wrong number the module prompted again: "
                             "%r\n%s" % (l.prompts, l.describe()))
    assert_refused(l)
    audit = E.audit(u, t0)
    expect_rows(audit, [("auth.begin", "challenge", None), ("push.create", "pending", None),
                        ("push.deny", "deny", None)])
    assert_no_allow(audit)


# ---- failure modes --------------------------------------------------------------------------

class ProxyMode:
    """Sets the proxy mode and restarts the agent so no pooled connection predates it."""

    def __init__(self, mode):
        self.mode = mode

    def __enter__(self):
        E.proxy.set_mode(self.mode)
        E.agent.restart()

    def __exit__(self, *a):
        E.proxy.set_mode("pass")
        E.agent.restart()


def down_case(u, failmode, expect_in, setup_ctx):
    secret = E.fresh_user(u)
    E.pam(failmode=failmode)
    t0 = time.time()
    mark = E.syslog.mark()
    try:
        with setup_ctx():
            l = login(u, codes=[fresh_code(secret)] * 3, timeout=60)
    finally:
        E.pam(failmode="secure")
    # issue 18: E.audit leaves out the host's failmode reports; failmode_reports() checks them
    audit = E.audit(u, t0)
    assert_no_allow(audit)
    if expect_in:
        assert_in(l, " under failmode=safe")
        hits = failmode_lines(u, mark)
        if not hits:
            raise AssertionError("failmode=safe admitted %s but no loud syslog line "
                                 "(failmode=safe: admitting %s …, severity <= warning) was "
                                 "logged\n%s" % (u, u, context()))
    else:
        assert_refused(l, " under failmode=%s" % failmode)
        bad = any_failmode_line(mark)
        if bad:
            raise AssertionError("failmode=%s but the module logged a fail-open line: %r"
                                 % (failmode, bad))
    return l, audit, mark


def cp_dead():
    return ProxyMode("dead")


class ProxyStopped:
    """Nothing listens where the agent's url points (connection refused)."""

    def __enter__(self):
        E.proxy.stop()
        E.agent.restart()

    def __exit__(self, *a):
        E.proxy.start()
        E.agent.restart()


class AgentDown:
    def __enter__(self):
        E.agent.stop()

    def __exit__(self, *a):
        E.agent.start()


def no_rows(audit, why):
    if audit:
        raise AssertionError("audit: %s, yet login rows appeared:\n%s" % (why, fmt_rows(audit)))


@test
def control_plane_stopped_secure_refused():
    t0 = time.time()
    _, audit, mark = down_case("pctest6", "secure", False, ProxyStopped)
    no_rows(audit, "the control plane was not listening")
    failmode_reports("pctest6", t0, mark, "deny")  # issue 18: one per PAM attempt sshd made


@test
def control_plane_stopped_safe_admitted_loudly():
    _, audit, mark = down_case("pctest6", "safe", True, ProxyStopped)
    no_rows(audit, "the control plane was not listening")


class ProxyStoppedMetered(ProxyStopped):
    """ProxyStopped that reads the agent's metrics (issue 18) before the agent restarts."""
    metrics = ""

    def __exit__(self, *a):
        r = subprocess.run([E.agent.binary, "status", "--metrics", "--config", E.agent.config],
                           capture_output=True, text=True, timeout=30)
        ProxyStoppedMetered.metrics = r.stdout if r.returncode == 0 else "exit %d: %s" % (
            r.returncode, r.stderr)
        super().__exit__(*a)


def failmode_reports(u, t0, mark, result):
    """Issue 18: each failmode decision the module logged for u since mark (its syslog line
    names the id) is exactly one auth.failmode row with that txid once the agent uploaded it
    (the control plane is back), from an enrolled host, with result; returns the rows."""
    want = "result=allow_failmode" if result == "allow" else "result=deny reason=unreachable"
    txids = [m.group(1) for r in E.syslog.since(mark)
             if "user=%s " % u in r.text and want in r.text
             for m in [re.search(r" txid=([0-9a-f]{32}) ", r.text)] if m]
    if not txids:
        raise AssertionError("no module line %r with a txid for %s\n%s" % (want, u, context()))

    def got():
        return [r for r in E.audit(u, t0 - 60, reports=True) if r.get("txid") in txids]
    harness.wait_until(lambda: {r["txid"] for r in got()} == set(txids), timeout=30,
                       what="the failmode reports %s of %s in the audit log" % (txids, u))
    time.sleep(2.5)  # a later upload must not add them again
    rows = got()
    if len(rows) != len(txids) or \
            any(r.get("action") != "auth.failmode" or r.get("result") != result or
                r.get("source") != "failmode" or
                (E.hostnames and r.get("host") not in E.hostnames) for r in rows):
        raise AssertionError("audit: expected one auth.failmode row %s from an enrolled host "
                             "for each of %s, got:\n%s" % (result, txids, fmt_rows(rows)))
    return rows


@test
def failmode_admission_shows_in_the_agents_metrics():
    """The alert "failmode admitted someone" (docs/METRICS.md) fires on a real one: the agent,
    restarted as the control plane went away, counts exactly this login's begin. Once the
    control plane is back, the admission is one audit row (issue 18) that `portcullis explain`
    reads, with the id the module's syslog line names."""
    t0 = time.time()
    _, _, mark = down_case("pctest6", "safe", True, ProxyStoppedMetered)
    m = ProxyStoppedMetered.metrics
    want = 'portcullis_agent_failmode_replies_total{error="unreachable"} 1\n'
    if want not in m:
        raise AssertionError("agent metrics lack %r:\n%s" % (want, m))
    rows = failmode_reports("pctest6", t0, mark, "allow")
    if len(rows) != 1:
        raise AssertionError("one admission, reported %d times:\n%s" % (len(rows), fmt_rows(rows)))
    row = rows[0]
    if not row.get("reason", "").startswith("failmode=safe error=unreachable service=") or \
            " rhost=127.0.0.1 " not in row.get("reason", ""):
        raise AssertionError("auth.failmode reason: %r" % row.get("reason"))
    txid = row.get("txid", "")
    st, b = E.d.admin("GET", "/v1/audit/explain/" + txid)
    text = "\n".join(b.get("explanation", [])) if st == 200 else ""
    for want in ("The control plane was unreachable from host %s" % row.get("host"),
                 "failmode=safe admitted pctest6 without a second factor"):
        if want not in text:
            raise AssertionError("explain %s → %s, lacks %r:\n%s" % (txid, st, want, b))


@test
def control_plane_resets_secure_refused():
    """proxy `dead`: accepts and resets every connection."""
    _, audit, mark = down_case("pctest6", "secure", False, cp_dead)
    no_rows(audit, "the control plane reset every connection")


@test
def control_plane_resets_safe_admitted_loudly():
    _, audit, mark = down_case("pctest6", "safe", True, cp_dead)
    no_rows(audit, "the control plane reset every connection")


def killed_mid_login(u, failmode, expect_in):
    """portcullisd answers begin, then is killed while the user is at the code prompt. The
    prompt has been shown: failmode no longer applies, every failmode refuses (issue 11)."""
    secret = E.fresh_user(u)
    E.pam(failmode=failmode)
    t0 = time.time()
    mark = E.syslog.mark()
    code = fresh_code(secret)

    def on_prompt(match):
        E.d.kill()
        return "code:" + code
    try:
        l = login(u, on_prompt=on_prompt, codes=[code, code], timeout=60)
    finally:
        E.pam(failmode="secure")
        if not E.d.alive():
            E.d.start()
        E.agent.restart()
    audit = E.audit(u, t0)
    expect_rows(audit, [("auth.begin", "challenge", None)])
    assert_no_allow(audit)
    if rows(audit, action="auth.totp"):
        raise AssertionError("audit: a totp row although portcullisd was dead:\n%s"
                             % fmt_rows(audit))
    if expect_in:
        assert_in(l, " under failmode=safe")
        if not failmode_lines(u, mark):
            raise AssertionError("admitted without the loud failmode line\n%s" % context())
    else:
        assert_refused(l, " under failmode=%s" % failmode)
        bad = any_failmode_line(mark)
        if bad:
            raise AssertionError("failmode=%s, killed after the prompt, but the module logged a "
                                 "fail-open line: %r" % (failmode, bad))


@test
def control_plane_killed_mid_login_secure_refused():
    killed_mid_login("pctest6", "secure", False)


@test
def control_plane_killed_mid_login_safe_refused():
    """It used to admit (failmode=safe after the prompt): a code typed at a prompt is never
    admitted unchecked."""
    killed_mid_login("pctest6", "safe", False)


@test
def agent_down_secure_refused():
    _, audit, mark = down_case("pctest7", "secure", False, AgentDown)
    no_rows(audit, "the agent was down")


@test
def agent_down_safe_admitted_loudly():
    _, audit, mark = down_case("pctest7", "safe", True, AgentDown)
    no_rows(audit, "the agent was down")


def wrongkey():
    return ProxyMode("wrongkey")


@test
def wrong_tls_key_secure_refused():
    _, audit, mark = down_case("pctest8", "secure", False, wrongkey)
    no_rows(audit, "the TLS key was wrong")
    assert_module_reason("pctest8", mark, "result=deny reason=tls")


@test
def wrong_tls_key_safe_still_refused():
    _, audit, mark = down_case("pctest8", "safe", False, wrongkey)
    no_rows(audit, "the TLS key was wrong")
    assert_module_reason("pctest8", mark, "result=deny reason=tls")


@test
def broken_agent_conf_with_failmode_safe_refuses_the_login():
    """A typo in agent.conf (timeout = soon) while pam.d says failmode=safe: the agent does not
    exit (that would be "agent down", admitted) but keeps its socket and refuses with the error
    "config", so the login is refused (reason=config), not admitted without a second factor."""
    u = "pctest7"
    E.fresh_user(u)
    E.pam(failmode="safe")
    t0 = time.time()
    mark = E.syslog.mark()
    off = E.agent.proc.log_size()
    try:
        E.agent.timeout = "soon"
        E.agent.write_config()
        E.agent.restart()   # waits for the socket: the refusing agent binds it
        l = login(u, codes=["000000"] * 3, timeout=60)
        alive = E.agent.proc.alive()
        agent_log = E.agent.proc.log_since(off)
    finally:
        E.pam(failmode="secure")
        E.agent.timeout = "10"
        E.agent.write_config()
        E.agent.restart()
    if not alive:
        raise AssertionError("the agent exited on the broken agent.conf\n%s" % context())
    if "event=start mode=refusing" not in agent_log or "%s:" % E.agent.config not in agent_log:
        raise AssertionError("the agent's log lacks the refusing start with FILE:LINE:\n%s"
                             % indent(tail(agent_log, 20)))
    assert_refused(l, " with a broken agent.conf under failmode=safe")
    bad = any_failmode_line(mark)
    if bad:
        raise AssertionError("the module logged a fail-open line: %r" % bad)
    assert_module_reason(u, mark, "result=deny reason=config")
    no_rows(E.audit(u, t0), "the agent refused every request")


class Hang:
    def __enter__(self):
        E.agent.timeout = AGENT_SHORT_TIMEOUT
        E.agent.write_config()
        E.proxy.set_mode("hang")
        E.agent.restart()

    def __exit__(self, *a):
        E.proxy.set_mode("pass")
        E.agent.timeout = "10"
        E.agent.write_config()
        E.agent.restart()


@test
def control_plane_hangs_refused_within_deadline():
    u = "pctest9"
    secret = E.fresh_user(u)
    E.pam(failmode="secure", extra="timeout=%d" % MODULE_TIMEOUT)
    t0 = time.time()
    mark = E.syslog.mark()
    try:
        with Hang():
            l = login(u, codes=[fresh_code(secret)] * 3, timeout=90)
    finally:
        E.pam(failmode="secure")
    if "E2E-RESULT timeout" in l.out:
        raise AssertionError("the login was still open after 90 s (module timeout=%d, agent "
                             "timeout=%ss)\n%s" % (MODULE_TIMEOUT, AGENT_SHORT_TIMEOUT,
                                                  l.describe()))
    assert_refused(l, " with a hanging control plane")
    assert_module_reason(u, mark, "result=deny reason=timeout")
    audit = E.audit(u, t0)
    assert_no_allow(audit)


@test
def after_faults_logins_work_again():
    """The environment is back to normal: a TOTP login and its audit rows."""
    u = "pctest1"
    secret = E.fresh_user(u)
    t0 = time.time()
    l = login(u, codes=[fresh_code(secret)])
    assert_in(l)
    expect_rows(E.audit(u, t0), [("auth.begin", "challenge", None), ("auth.totp", "allow", None)])


# the certificate authority tests (their own control plane, agent and sshd): e2e_ca.py
import e2e_ca  # noqa: E402

TESTS += e2e_ca.register(sys.modules[__name__])

# access on request, on the CA tests' sshd: e2e_requests.py, before the CA test that deletes
# that host
import e2e_requests  # noqa: E402

_at = TESTS.index(e2e_ca.ca_host_krl_refuses_revoked_and_deleted_host)
TESTS[_at:_at] = e2e_requests.register(sys.modules[__name__])

# issue 13, logins that survive the control plane (on e2e_ca's environment, so before its test
# that deletes the host): e2e_offline.py
import e2e_offline  # noqa: E402

_i = TESTS.index(e2e_ca.ca_host_krl_refuses_revoked_and_deleted_host)
TESTS[_i:_i] = e2e_offline.register(sys.modules[__name__])

# issue 13, per-certificate cases through sshd (expired, without our extension), right after
# e2e_offline's tests: e2e_offline_certs.py
import e2e_offline_certs  # noqa: E402

_i = TESTS.index(e2e_ca.ca_host_krl_refuses_revoked_and_deleted_host)
TESTS[_i:_i] = e2e_offline_certs.register(sys.modules[__name__])


# --------------------------------------------------------------------------------------------

def main(argv):
    filters = argv[1:]
    selected = [t for t in TESTS if not filters or any(f in t.__name__ for f in filters)]
    passed = failed = skipped = 0

    def result():
        s = "%d passed, %d failed" % (passed, failed)
        if skipped:
            s += ", %d skipped" % skipped
        print(s, flush=True)

    reason = None
    if os.geteuid() != 0:
        reason = "needs root (real sshd, PAM service file, test accounts)"
    elif not os.path.exists(pcenv.SSHD_BIN):
        reason = "%s not installed" % pcenv.SSHD_BIN
    elif not shutil.which("expect"):
        reason = "expect not installed"
    elif not shutil.which("ssh"):
        reason = "ssh client not installed"
    if reason:
        for t in selected:
            print("SKIP %s: %s" % (t.__name__, reason))
            skipped += 1
        result()
        return 0

    signal.signal(signal.SIGALRM, _on_alarm)
    setup_error = None
    t_setup = time.time()
    try:
        signal.setitimer(signal.ITIMER_REAL, 180)
        try:
            E.setup()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except BaseException as e:     # noqa: B902 — includes TestTimeout
        setup_error = "setup failed: %s\n%s" % (e, traceback.format_exc())
    t_tests = time.time()
    try:
        for t in selected:
            if setup_error:
                print("FAIL %s" % t.__name__)
                print(indent(setup_error), end="")
                failed += 1
                continue
            t0 = time.time()
            try:
                mark_logs()
                signal.setitimer(signal.ITIMER_REAL, TEST_TIMEOUT)
                try:
                    t()
                    reports = E.sshd.sanitizer_reports()
                    if len(reports) > E.asan_seen:
                        new = reports[E.asan_seen:]
                        E.asan_seen = len(reports)
                        raise AssertionError("AddressSanitizer report(s) from sshd (the PAM "
                                             "module):\n%s" % "\n".join(new))
                    # every portcullisd so far ran on the store asked for (PC_TEST_STORE;
                    # tests/e2e-pg), not on a silent fallback
                    bad = [p for p in harness.store_problems() if p not in E.store_seen]
                    if bad:
                        E.store_seen.update(bad)
                        raise AssertionError("portcullisd not on the %s store:\n%s"
                                             % (harness.STORE, "\n".join(bad)))
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                print("PASS %s (%.1fs)" % (t.__name__, time.time() - t0), flush=True)
                passed += 1
            except Skip as e:
                print("SKIP %s: %s (%.1fs)" % (t.__name__, e, time.time() - t0), flush=True)
                skipped += 1
            except BaseException as e:   # noqa: B902
                if isinstance(e, KeyboardInterrupt):
                    raise
                print("FAIL %s (%.1fs)" % (t.__name__, time.time() - t0))
                detail = "".join(traceback.format_exception_only(type(e), e))
                if not isinstance(e, AssertionError):
                    detail = traceback.format_exc()
                try:
                    detail += "\n" + context()
                except Exception:
                    pass
                print(indent(detail), end="", flush=True)
                failed += 1
                # restore a sane state for the next test
                try:
                    E.pam(failmode="secure")
                    E.proxy.set_mode("pass")
                    if not E.d.alive():
                        E.d.start()
                    E.agent.timeout = "10"
                    E.agent.write_config()
                    E.agent.restart()
                except BaseException as e2:   # noqa: B902
                    setup_error = "environment could not be restored: %s" % e2
    finally:
        t_teardown = time.time()
        e2e_ca.teardown()
        E.teardown()
    print("time: %.1fs (set-up %.1fs, tests %.1fs, teardown %.1fs)"
          % (time.time() - t_setup, t_tests - t_setup, t_teardown - t_tests,
             time.time() - t_teardown), flush=True)
    result()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
