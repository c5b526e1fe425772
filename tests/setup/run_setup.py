# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end test of setup.sh (issue 5, last acceptance bullet), on the real paths of this
machine without touching it.

The runner re-executes itself under `unshare --mount --propagation private` and then mounts, in
that namespace only:
  /etc        a copy of the real /etc (so /etc/ssh, /etc/pam.d, /etc/portcullis, and the
              accounts that setup.sh may add, are private), with fresh host keys in /etc/ssh
  /run        a tmpfs (no systemd, no /run/sshd.pid of the machine: nothing real is reloaded)
  /usr/local  a tmpfs holding the "installed package": lib/portcullis-test/portcullis-agent
              (root-owned 0755 path, as sshd wants for AuthorizedPrincipalsCommand), the
              build's default config path as a symlink to /etc/portcullis, its state dir
  PAM's module dir  a copy with the built pam_portcullis.so added
Then: portcullisd (harness.py) with --public-url, a person with a key, TOTP and a policy rule;
`portcullis host token` prints the one line; it is run as printed (plus --agent-path and
--no-service); the agent daemon and sshd start from the result; `portcullis login` gives a
certificate and login.exp logs in with it and a TOTP code; setup.sh run again changes nothing;
unconfigure restores every file byte for byte.
Prints PASS/FAIL lines and "N passed, N failed"."""
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
sys.path.insert(0, os.path.join(SRC, "tests", "e2e"))

AGENT = "/usr/local/lib/portcullis-test/portcullis-agent"   # the build's agent, "installed"
# Package mode (PC_PACKAGE_DIR=DIR holding make deb's .debs): the installed files are tested
# instead of the build tree — see the module docstring.
PKG_AGENT = "/usr/sbin/portcullis-agent"
ACCOUNT = "pcsetup"
LOGIN_EXP = os.path.join(SRC, "tests", "e2e", "login.exp")


def sh(cmd, check=True, timeout=120, **kw):
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, **kw)
    out = r.stdout.decode("utf-8", "replace") + r.stderr.decode("utf-8", "replace")
    if check and r.returncode != 0:
        raise AssertionError("%s exited %d:\n%s" % (" ".join(cmd), r.returncode, out))
    return r.returncode, out


def snapshot(paths):
    """{path: (mode, uid, gid, sha256 or symlink target)} of every file under paths."""
    snap = {}
    for top in paths:
        for dirpath, dirs, files in os.walk(top):
            for name in sorted(dirs + files):
                p = os.path.join(dirpath, name)
                st = os.lstat(p)
                if os.path.islink(p):
                    what = "-> " + os.readlink(p)
                elif os.path.isfile(p):
                    with open(p, "rb") as f:
                        what = hashlib.sha256(f.read()).hexdigest()
                else:
                    what = "dir"
                snap[p] = (st.st_mode, st.st_uid, st.st_gid, what)
    return snap


def snap_diff(a, b):
    out = []
    for p in sorted(set(a) | set(b)):
        if a.get(p) != b.get(p):
            out.append("%s: %r -> %r" % (p, a.get(p), b.get(p)))
    return out


def agent_default(args, pattern):
    _, out = sh([E.agent] + args + ["--help"], check=False)
    m = re.search(pattern, out)
    assert m, "cannot find the default in: %s" % out
    return m.group(1)


def multiarch_pam_dir():
    r = subprocess.run(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"], capture_output=True)
    arch = r.stdout.decode().strip() if r.returncode == 0 else ""
    if not arch:
        arch = subprocess.run(["gcc", "-print-multiarch"], capture_output=True).stdout.decode().strip()
    return "/usr/lib/%s/security" % arch


def find_deb(pkg_dir, name):
    debs = sorted(f for f in os.listdir(pkg_dir) if re.fullmatch(re.escape(name) + r"_[^_]+_[^_]+\.deb", f))
    assert len(debs) == 1, "expected one %s_*.deb in %s, found %r" % (name, pkg_dir, debs)
    return os.path.join(pkg_dir, debs[0])


class Env:
    def __init__(self, build, pkg_dir=None):
        self.build = build
        self.pkg_dir = pkg_dir
        if pkg_dir:
            self.paths = {
                "daemon": "/usr/sbin/portcullisd",
                "cli": "/usr/bin/portcullis",
                "agent": PKG_AGENT,
                "module": os.path.join(multiarch_pam_dir(), "pam_portcullis.so"),
            }
            self.agent = PKG_AGENT
            self.debs = {n: find_deb(pkg_dir, n)
                         for n in ("portcullis-server", "portcullis-cli", "portcullis-agent")}
        else:
            self.paths = {
                "daemon": os.path.join(build, "control-plane", "portcullisd"),
                "cli": os.path.join(build, "cli", "portcullis"),
                "agent": os.path.join(build, "agent", "portcullis-agent"),
                "module": os.path.join(build, "pam_module", ".libs", "pam_portcullis.so"),
            }
            self.agent = AGENT
        self.procs = []
        self.used = {}

    # ---- the namespace ---------------------------------------------------------------------
    def mounts(self):
        self.tmp = tempfile.mkdtemp(prefix="pc-setup-")
        os.chmod(self.tmp, 0o755)
        if self.pkg_dir:
            # dpkg writes /usr, /var/lib/dpkg and /etc: each gets a private overlay, so the
            # packages are installed for real in this namespace and gone when it ends
            for top in ("/etc", "/usr", "/var"):
                up = os.path.join(self.tmp, "overlay" + top.replace("/", "-"))
                os.makedirs(up + "/upper")
                os.makedirs(up + "/work")
                sh(["mount", "-t", "overlay", "pc-setup" + top.replace("/", "-"), "-o",
                    "lowerdir=%s,upperdir=%s/upper,workdir=%s/work" % (top, up, up), top])
        else:
            etc = os.path.join(self.tmp, "etc")
            sh(["cp", "-a", "/etc", etc])
            sh(["mount", "--bind", etc, "/etc"])
        for n in os.listdir("/etc/ssh"):
            if n.startswith("ssh_host_"):
                os.unlink(os.path.join("/etc/ssh", n))
        for p in ("/etc/ssh/portcullis", "/etc/ssh/sshd_config.d/00-portcullis.conf",
                  "/etc/portcullis"):
            if os.path.isdir(p):
                shutil.rmtree(p)
            elif os.path.lexists(p):
                os.unlink(p)
        sh(["ssh-keygen", "-A"])
        sh(["mount", "-t", "tmpfs", "-o", "mode=0755", "pc-setup-run", "/run"])
        os.makedirs("/run/sshd", 0o755)
        if subprocess.run(["id", ACCOUNT], capture_output=True).returncode != 0:
            sh(["useradd", "-M", "-s", "/bin/sh", "-c", "Portcullis setup test", ACCOUNT])
        if self.pkg_dir:
            # the control plane and its CLI from their packages (the agent comes from
            # setup.sh --package)
            sh(["dpkg", "-i", self.debs["portcullis-cli"], self.debs["portcullis-server"]],
               timeout=300)
            return
        sh(["mount", "-t", "tmpfs", "-o", "mode=0755", "pc-setup-local", "/usr/local"])
        os.makedirs(os.path.dirname(AGENT), 0o755)
        shutil.copy2(self.paths["agent"], AGENT)
        os.chmod(AGENT, 0o755)
        # and the principals helper beside it, as the package installs it: configure names it
        helper = os.path.join(os.path.dirname(AGENT), "portcullis-principals")
        shutil.copy2(os.path.join(self.build, "agent", "portcullis-principals"), helper)
        os.chmod(helper, 0o755)
        # the build's defaults (prefix /usr/local in a test build) lead to the real paths
        conf_dir = os.path.dirname(agent_default(["run"], r"default (\S+/agent\.conf)\)"))
        if conf_dir != "/etc/portcullis":
            assert conf_dir.startswith("/usr/local/"), conf_dir
            os.makedirs(os.path.dirname(conf_dir), 0o755, exist_ok=True)
            os.symlink("/etc/portcullis", conf_dir)
        state = agent_default(["configure"], r"default ROOT(\S+/configure)\)")
        assert state.startswith("/usr/local/") or state.startswith("/var/lib/portcullis"), state
        os.makedirs(os.path.dirname(state), 0o755, exist_ok=True)
        self.state_dir = state
        # PAM finds pam_portcullis.so by its bare name (as configure writes it)
        _, out = sh(["sh", "-c", "ls /lib/*/security/pam_unix.so /lib/security/pam_unix.so "
                     "/usr/lib64/security/pam_unix.so 2>/dev/null | head -n 1"])
        secdir = os.path.dirname(out.strip())
        assert secdir, "pam_unix.so not found"
        copy = os.path.join(self.tmp, "security")
        sh(["cp", "-a", secdir, copy])
        shutil.copy2(self.paths["module"], os.path.join(copy, "pam_portcullis.so"))
        sh(["mount", "--bind", copy, secdir])

    # ---- the control plane -----------------------------------------------------------------
    def control_plane(self):
        import harness
        import test_agent_ca as ca
        self.h = harness
        harness.DAEMON_BIN = self.paths["daemon"]
        harness.CLI_BIN = self.paths["cli"]
        port = harness.free_port()
        self.public_url = "https://127.0.0.1:%d" % port
        self.d = harness.Daemon(port=port, args=["--public-url", self.public_url]).start()
        self.pin = self.d.print_pin()
        self.keys = os.path.join(self.tmp, "people")
        os.makedirs(self.keys, 0o700)
        ca.ROOT = self.tmp
        self.key = os.path.join(self.keys, "alice")
        self.person, self.secret = ca.person_with_key(self.d, self.key, name="alice")
        ca.add_policy(self.d, "alice-setup", users=["alice"], accounts=[ACCOUNT],
                      hosts={"env": "setup"})

    def cli(self, *args):
        return sh([self.paths["cli"], "--url", self.d.url, "--pin", self.pin, "--token-file",
                   self.d.path("admin.token")] + list(args), check=False)

    def next_code(self):
        """A TOTP code for a step above every step used so far (the server refuses reuse)."""
        while True:
            now = time.time()
            cur = int(now // 30)
            s = max(self.used.get("s", -1) + 1, cur - 1 if now % 30 < 15 else cur)
            if s <= cur + 1:
                break
            time.sleep((s - 1) * 30 + 0.5 - now)
        self.used["s"] = s
        return self.h.totp_code(self.secret, step=s)

    def start(self, name, cmd, env=None):
        log = open(os.path.join(self.tmp, name + ".log"), "ab")
        full_env = None
        if env:
            full_env = dict(os.environ)
            full_env.update(env)
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True, env=full_env)
        self.procs.append((name, p))
        return p

    def log(self, name):
        try:
            with open(os.path.join(self.tmp, name + ".log"), errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def stop_all(self):
        for name, p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = []
        if getattr(self, "d", None):
            self.d.kill()


E = None


# --------------------------------------------------------------------------------------------
# the tests (in order; each builds on the previous)

def host_token_prints_the_one_line():
    rc, out = E.cli("host", "token", "--hostname", "setup-host", "--label", "env=setup", "--json")
    assert rc == 0, out
    import json
    j = json.loads(out)
    E.command = j["command"]
    E.token = j["token"]
    # the token follows the script on bash's stdin (echo is a builtin: in no argv)
    want = (r"\{ curl -fsSk --pinnedpubkey %s %s/v1/setup\.sh && echo %s; \} \| sudo bash -s"
            % (re.escape(E.pin), re.escape(E.public_url), j["token"]))
    assert re.fullmatch(want, E.command), "%s\n!~ %s" % (E.command, want)
    rc, text = E.cli("host", "token", "--hostname", "setup-other", "--label", "env=other")
    assert rc == 0 and re.search(r"^  \{ curl -fsSk --pinnedpubkey sha256//\S+ https://127\.0\.0\."
                                 r"1:\d+/v1/setup\.sh && echo [0-9a-f]{64}; \} \| sudo bash -s$",
                                 text, re.M), text


class PsWatch:
    """What any local user sees: nobody runs `ps -eo args` in a loop (until stop())."""

    def __init__(self):
        self.out = open(os.path.join(E.tmp, "ps-watch.out"), "w+b")
        self.p = subprocess.Popen(["runuser", "-u", "nobody", "--", "sh", "-c",
                                   "while :; do ps -eo args; echo =====; done"],
                                  stdin=subprocess.DEVNULL, stdout=self.out,
                                  stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self):
        """The text nobody saw."""
        try:
            os.killpg(self.p.pid, 15)
        except ProcessLookupError:
            pass
        self.p.wait(timeout=10)
        self.out.seek(0)
        text = self.out.read().decode("utf-8", "replace")
        self.out.close()
        return text


def run_setup(watch=False):
    """Runs the printed line (plus --agent-path or --package, and --no-service); with watch,
    sets E.seen to what an unprivileged `ps -eo args` loop saw meanwhile."""
    cmd = E.command
    if not shutil.which("sudo"):
        cmd = cmd.replace("| sudo bash", "| bash")
    if E.pkg_dir:
        opts = "--package %s --no-service" % E.debs["portcullis-agent"]
    else:
        opts = "--agent-path %s --no-service" % AGENT
    # the options go to setup.sh: after "bash -s --" (or after "bash -s -- --token T")
    cmd += (" -- " if cmd.endswith("bash -s") else " ") + opts
    # as typed into a shell: from a file (bash -c CMD would put the line into bash's argv)
    line = os.path.join(E.tmp, "line.sh")
    with open(os.open(line, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(cmd + "\n")
    w = PsWatch() if watch else None
    try:
        return sh(["bash", line], check=False, timeout=180)
    finally:
        if w:
            E.seen = w.stop()


def setup_sh_enrolls_and_configures():
    E.before = snapshot(["/etc/ssh", "/etc/pam.d"])
    rc, out = run_setup(watch=True)
    with open(os.path.join(E.tmp, "setup-1.out"), "w") as f:
        f.write(out)
    assert rc == 0, "setup.sh exited %d:\n%s" % (rc, out)
    if E.pkg_dir:
        rc, st = sh(["dpkg-query", "-W", "-f=${Status}", "portcullis-agent"], check=False)
        assert st == "install ok installed", "portcullis-agent: %r\n%s" % (st, out)
        assert "installing %s" % E.debs["portcullis-agent"] in out, out
        for f in (PKG_AGENT, E.paths["module"]):
            assert os.path.isfile(f), "%s not installed:\n%s" % (f, out)
        E.state_dir = agent_default(["configure"], r"default ROOT(\S+/configure)\)")
    assert os.path.exists("/etc/portcullis/host.token"), out
    assert os.path.exists("/etc/ssh/sshd_config.d/00-portcullis.conf"), out
    with open("/etc/pam.d/sshd") as f:
        assert "pam_portcullis.so" in f.read()
    rc, st = sh([E.agent, "configure", "--status"], check=False)
    assert rc == 0 and st.startswith("configured: %s/manifest" % E.state_dir), st
    rc, t = sh(["/usr/sbin/sshd", "-T", "-C", "user=%s,host=localhost,addr=127.0.0.1" % ACCOUNT])
    for want in ("authenticationmethods publickey,keyboard-interactive:pam",
                 "trustedusercakeys /etc/ssh/portcullis/user_ca.pub",
                 "authorizedprincipalscommand %s/portcullis-principals %%u %%i %%s %%f"
                 % os.path.dirname(E.agent),
                 "authorizedprincipalscommanduser portcullis-principals"):
        assert want in t, "sshd -T lacks %r:\n%s\nsetup.sh said:\n%s" % (want, t, out)


def token_never_in_the_process_list():
    """The enrollment token never shows in `ps` for other users during the whole install: not in
    the argv of sudo or bash (sudo also logs that), nor of portcullis-agent enroll."""
    samples = E.seen.count("=====\n")
    # the loop really watched the install: it saw the agent at work
    assert samples >= 3 and E.agent in E.seen, \
        "the ps loop saw %d samples and no %s:\n%s" % (samples, E.agent, E.seen[-3000:])
    hits = sorted(set(line for line in E.seen.splitlines() if E.token in line))
    assert not hits, "an unprivileged user saw the enrollment token in ps (%d samples):\n%s" % (
        samples, "\n".join(hits))


def setup_sh_twice_changes_nothing():
    watched = ["/etc/ssh", "/etc/pam.d", "/etc/portcullis", E.state_dir, "/etc/passwd",
               "/etc/group", "/etc/shadow"]
    snap = lambda: snapshot([p for p in watched if os.path.isdir(p)]) | {
        p: open(p, "rb").read() for p in watched if os.path.isfile(p)}
    a = snap()
    rc, out = run_setup()
    with open(os.path.join(E.tmp, "setup-2.out"), "w") as f:
        f.write(out)
    assert rc == 0, "second run exited %d:\n%s" % (rc, out)
    assert "already enrolled" in out and "already configured" in out, out
    d = snap_diff(a, snap())
    assert not d, "the second run changed:\n%s\n%s" % ("\n".join(d), out)


def login_with_certificate_and_totp():
    agent = E.start("agent", [E.agent, "run", "--config", "/etc/portcullis/agent.conf"])
    E.h.wait_until(lambda: os.path.exists("/run/portcullis/agent.sock") or agent.poll() is not None,
                   timeout=20, what="the agent socket")
    assert agent.poll() is None, E.log("agent")
    E.ssh_port = E.h.free_port()
    import pcenv
    # In the sanitizer build the module needs the ASan runtime loaded into sshd first.
    sshd = E.start("sshd", ["/usr/sbin/sshd", "-D", "-e", "-p", str(E.ssh_port),
                            "-o", "ListenAddress=127.0.0.1"],
                   env=pcenv.sanitizer_env(E.paths["module"], E.tmp))
    try:
        pcenv.wait_port(E.ssh_port, banner=b"SSH-2.0-")
    except pcenv.SetupError as e:
        raise AssertionError("%s\n%s" % (e, E.log("sshd")))
    assert sshd.poll() is None, E.log("sshd")
    cf = os.path.join(E.keys, "code")
    with open(cf, "w") as f:
        f.write(E.next_code() + "\n")
    rc, out = sh([E.paths["cli"], "--url", E.d.url, "--pin", E.pin, "login", "--user", "alice",
                  "--key", E.key, "--code-file", cf], check=False,
                 env=dict(os.environ, HOME=E.keys))
    cert = E.key + "-cert.pub"
    assert rc == 0 and os.path.exists(cert), "portcullis login → %d\n%s" % (rc, out)
    ssh = ["ssh", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o",
           "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o",
           "PreferredAuthentications=publickey,keyboard-interactive", "-o", "IdentitiesOnly=yes",
           "-o", "NumberOfPasswordPrompts=1", "-o", "CertificateFile=%s" % cert, "-i", E.key,
           "-p", str(E.ssh_port), "%s@127.0.0.1" % ACCOUNT, "echo SETUP-OK-$USER"]
    r = subprocess.run(["expect", LOGIN_EXP, "-timeout", "60", "-code", E.next_code(), "--"] + ssh,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=90)
    out = r.stdout.decode(errors="replace").replace("\r", "")
    assert r.returncode == 0 and "SETUP-OK-%s" % ACCOUNT in out, \
        "login failed (rc %d):\n%s\n--- sshd:\n%s\n--- agent:\n%s" % (
            r.returncode, out, E.log("sshd"), E.log("agent"))
    prompts = re.findall(r"E2E-PROMPT \d+: (.*)", out)
    assert len(prompts) == 1, "expected exactly one prompt (ours): %r" % prompts
    # the same key without the certificate gets nowhere
    plain = [a for a in ssh if not a.startswith("CertificateFile=")]
    r = subprocess.run(["expect", LOGIN_EXP, "-timeout", "30", "-code", "000000", "--"] + plain,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    out = r.stdout.decode(errors="replace")
    assert r.returncode != 0 and "SETUP-OK" not in out and "E2E-PROMPT" not in out, out


def assert_restored():
    after = snapshot(["/etc/ssh", "/etc/pam.d"])
    # /etc/ssh/portcullis is enroll's (CA keys, host certificate, KRL), not configure's
    after = {p: v for p, v in after.items()
             if not (p == "/etc/ssh/portcullis" or p.startswith("/etc/ssh/portcullis/"))}
    d = snap_diff(E.before, after)
    assert not d, "not restored byte for byte:\n" + "\n".join(d)


def unconfigure_restores_files():
    rc, out = sh([E.agent, "unconfigure"], check=False)
    assert rc == 0 and "unconfigured" in out, out
    assert_restored()
    rc, st = sh([E.agent, "configure", "--status"], check=False)
    assert rc == 1 and "not configured" in st, st


# ---- how setup.sh takes the token (a stand-in agent records what enroll got) -----------------

SETUP_SH = os.path.join(SRC, "setup-scripts", "setup.sh")
TOKEN = "c0ffee" * 10 + "beef"
FAKE_AGENT = """#!/bin/sh
# stands in for portcullis-agent: records what enroll got (argv, stdin)
d=$(dirname "$0")
case $1 in
status) [ -e "$d/enrolled" ] && echo '{"enrolled": true}' || echo '{"enrolled": false}' ;;
enroll) printf '%s\\n' "$*" >"$d/enroll.args"; cat >"$d/enroll.stdin" ;;
configure) exit 0 ;;
*) exit 1 ;;
esac
"""


def fake_setup(shell, args=(), tty_input=None):
    """Runs `shell` (a bash line; $SETUP is setup.sh, $OPTS its options for the stand-in agent)
    with no terminal, or on a new pty answering a prompt with tty_input. Returns (rc, output,
    what enroll got on stdin or None, enroll's argv or None)."""
    d = os.path.join(E.tmp, "fake")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d, 0o755)
    fake = os.path.join(d, "portcullis-agent")
    with open(fake, "w") as f:
        f.write(FAKE_AGENT)
    os.chmod(fake, 0o755)
    if "enrolled" in args:
        open(os.path.join(d, "enrolled"), "w").close()
    env = dict(os.environ, SETUP=SETUP_SH, OPTS="--url %s --pin %s --agent-path %s --no-service"
               % (E.public_url, E.pin, fake))
    line = os.path.join(d, "line.sh")
    with open(line, "w") as f:
        f.write(shell + "\n")
    if tty_input is None:
        r = subprocess.run(["bash", line], stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=60, env=env, start_new_session=True)   # no controlling tty
        rc, out = r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")
    else:
        import pty
        pid, fd = pty.fork()
        if pid == 0:
            os.execve("/bin/bash", ["bash", line], env)
        buf = b""
        answered = False
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            if not answered and b"not shown): " in buf:
                os.write(fd, tty_input.encode() + b"\n")
                answered = True
        os.close(fd)
        rc = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        out = buf.decode("utf-8", "replace")
    got = args_got = None
    if os.path.exists(os.path.join(d, "enroll.stdin")):
        with open(os.path.join(d, "enroll.stdin")) as f:
            got = f.read()
        with open(os.path.join(d, "enroll.args")) as f:
            args_got = f.read()
    return rc, out, got, args_got


def token_after_the_script_on_stdin():
    """The printed line's form: the token is the line after the script; enroll gets it on stdin,
    never in argv; what follows the token is never run as commands."""
    rc, out, got, args = fake_setup(
        "{ cat \"$SETUP\" && echo %s; echo 'echo RAN-AFTER-THE-SCRIPT'; } | bash -s -- $OPTS" % TOKEN)
    assert rc == 0 and got == TOKEN + "\n", "rc %d, enroll got %r:\n%s" % (rc, got, out)
    assert TOKEN not in args and "--token -" in args, args
    assert "RAN-AFTER" not in out and "warning" not in out, out
    # already enrolled: the token is not needed, and still never run as a command
    rc, out, got, _ = fake_setup("{ cat \"$SETUP\" && echo %s; } | bash -s -- $OPTS" % TOKEN,
                                 args=("enrolled",))
    assert rc == 0 and got is None and "already enrolled" in out, out
    assert "command not found" not in out and TOKEN not in out, out


def token_from_token_file():
    tf = os.path.join(E.tmp, "enroll.token")
    with open(os.open(tf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(TOKEN + "\r\n")
    rc, out, got, args = fake_setup("bash \"$SETUP\" $OPTS --token-file %s" % tf)
    assert rc == 0 and got == TOKEN + "\n", "rc %d, enroll got %r:\n%s" % (rc, got, out)
    assert TOKEN not in args and TOKEN not in out, out
    for bad, why in (("/nonexistent/token", "cannot read"), ("/dev/null", "holds no token")):
        rc, out, got, _ = fake_setup("bash \"$SETUP\" $OPTS --token-file %s" % bad)
        assert rc != 0 and why in out and got is None, "%s: rc %d\n%s" % (bad, rc, out)


def token_prompted_on_the_terminal():
    """curl ... | sudo bash -s without the token, on a terminal: asked for it, not echoed."""
    rc, out, got, args = fake_setup("cat \"$SETUP\" | bash -s -- $OPTS", tty_input=TOKEN)
    assert rc == 0 and got == TOKEN + "\n", "rc %d, enroll got %r:\n%s" % (rc, got, out)
    assert "enrollment token" in out and TOKEN not in out, "the token was echoed:\n%s" % out


def no_token_no_terminal_fails():
    rc, out, got, _ = fake_setup("cat \"$SETUP\" | bash -s -- $OPTS")
    assert rc != 0 and got is None and "no enrollment token" in out and "--token-file" in out, \
        "rc %d\n%s" % (rc, out)


def token_garbage_refused():
    """A line with spaces or control characters is no token: refused before enroll."""
    for junk in ("%s; rm -rf /" % TOKEN, "\x1b]0;x\x07" + TOKEN):
        rc, out, got, _ = fake_setup("{ cat \"$SETUP\"; printf '%%s\\n' %s; } | bash -s -- $OPTS"
                                     % shlex.quote(junk))
        assert rc != 0 and got is None and "not a token" in out, "%r: rc %d\n%s" % (junk, rc, out)


def token_on_the_command_line_warns():
    """--token still works (old scripts) but says that ps and sudo's log show it."""
    rc, out, got, _ = fake_setup("bash \"$SETUP\" $OPTS --token %s" % TOKEN)
    assert rc == 0 and got == TOKEN + "\n", "rc %d, enroll got %r:\n%s" % (rc, got, out)
    assert "warning: --token puts the enrollment token in the process list (ps)" in out, out


TOKEN_INTAKE = [token_after_the_script_on_stdin, token_from_token_file,
                token_prompted_on_the_terminal, no_token_no_terminal_fails, token_garbage_refused,
                token_on_the_command_line_warns]


# ---- package mode: removing the agent package while sshd uses it ---------------------------

BROKEN = "/etc/ssh/sshd_config.d/99-pc-test-broken.conf"


def package_state(name):
    _, st = sh(["dpkg-query", "-W", "-f=${Status}", name], check=False)
    return st


def remove_refused_while_unconfigure_fails():
    """sshd and PAM use the agent; unconfigure cannot finish (an unrelated drop-in makes sshd -t
    fail), so dpkg -r must refuse and leave the package — binary, PAM module — in place."""
    os.makedirs(os.path.dirname(BROKEN), exist_ok=True)
    with open(BROKEN, "w") as f:
        f.write("ThisIsNotAnSshdKeyword yes\n")
    rc, out = sh(["dpkg", "-r", "portcullis-agent"], check=False, timeout=300)
    os.unlink(BROKEN)
    assert rc != 0, "dpkg -r succeeded although unconfigure failed:\n%s" % out
    assert "is NOT removed" in out and "portcullis-agent unconfigure" in out, out
    # dpkg notes the wish ("deinstall") but the package stays unpacked and configured
    assert package_state("portcullis-agent").endswith(" ok installed"), \
        "%r\n%s" % (package_state("portcullis-agent"), out)
    for f in (PKG_AGENT, E.paths["module"]):
        assert os.path.isfile(f), "%s is gone although the removal was refused:\n%s" % (f, out)


def remove_while_configured_unconfigures_first():
    """The admin fixed the problem: dpkg -r now runs unconfigure (prerm) and every sshd/PAM file
    is back byte for byte before the binary and the module go."""
    rc, out = sh(["dpkg", "-r", "portcullis-agent"], check=False, timeout=300)
    assert rc == 0, "dpkg -r exited %d:\n%s" % (rc, out)
    assert "running 'portcullis-agent unconfigure'" in out, out
    assert package_state("portcullis-agent").startswith("deinstall ok config-files"), \
        package_state("portcullis-agent")
    for f in (PKG_AGENT, E.paths["module"]):
        assert not os.path.exists(f), "%s still there after dpkg -r" % f
    assert_restored()
    rc, t = sh(["/usr/sbin/sshd", "-t"], check=False)
    assert rc == 0, "sshd -t after the removal: %s" % t


if os.environ.get("PC_PACKAGE_DIR"):
    TESTS = [host_token_prints_the_one_line, setup_sh_enrolls_and_configures,
             token_never_in_the_process_list, setup_sh_twice_changes_nothing,
             login_with_certificate_and_totp,
             remove_refused_while_unconfigure_fails,
             remove_while_configured_unconfigures_first] + TOKEN_INTAKE
else:
    TESTS = [host_token_prints_the_one_line, setup_sh_enrolls_and_configures,
             token_never_in_the_process_list, setup_sh_twice_changes_nothing,
             login_with_certificate_and_totp,
             unconfigure_restores_files] + TOKEN_INTAKE


def inner(build):
    global E
    E = Env(build, os.environ.get("PC_PACKAGE_DIR") or None)
    passed = failed = 0
    # FILTER... (substrings of test names): only those (the token-intake ones need nothing before)
    tests = [t for t in TESTS if not sys.argv[1:] or any(a in t.__name__ for a in sys.argv[1:])]
    try:
        for k in () if E.pkg_dir else ("daemon", "cli", "agent", "module"):
            assert os.path.exists(E.paths[k]), "not built: %s" % E.paths[k]
        E.mounts()
        E.control_plane()
    except Exception:
        print("FAIL setup_environment\n    " + traceback.format_exc().replace("\n", "\n    "))
        E.stop_all()
        print("0 passed, %d failed" % (len(tests) + 1))
        return 1
    broken = None
    for t in tests:
        if broken:
            print("FAIL %s: not run, %s failed" % (t.__name__, broken))
            failed += 1
            continue
        try:
            t()
            print("PASS %s" % t.__name__)
            passed += 1
        except Exception as e:
            detail = str(e) if isinstance(e, AssertionError) else traceback.format_exc()
            print("FAIL %s\n    %s" % (t.__name__, detail.replace("\n", "\n    ")))
            failed += 1
            broken = t.__name__
        sys.stdout.flush()
    E.stop_all()
    if os.environ.get("PC_KEEP_TMP"):
        print("kept %s (namespace-private mounts are gone)" % E.tmp)
    else:
        shutil.rmtree(E.tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


def main():
    build = os.path.abspath(os.environ.get("PC_BUILD_DIR", os.path.join(SRC, "build-main")))
    os.environ["PC_BUILD_DIR"] = build
    if os.environ.get("PC_SETUP_IN_NS") == "1":
        return inner(build)
    if os.geteuid() != 0:
        print("SKIP setup: needs root (private mount namespace)")
        print("0 passed, 0 failed, %d skipped" % len(TESTS))
        return 0
    env = dict(os.environ, PC_SETUP_IN_NS="1")
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable,
                        os.path.abspath(__file__)] + sys.argv[1:], env=env, timeout=900)
    return r.returncode


if __name__ == "__main__":
    sys.exit(main())
