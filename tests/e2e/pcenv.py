# SPDX-License-Identifier: BSD-2-Clause
"""Shared set-up for the end-to-end tests (tests/e2e/run_e2e.py) and the demo (scripts/demo.sh).

Python 3 standard library only; needs root. Brings up, on loopback only:

  portcullisd     the control plane (tests/integration/harness.py's Daemon)
  faultproxy      tests/faultproxy.py in front of portcullisd (tests only; optional)
  portcullis-agent  enrolled against the control plane (or the proxy), socket in a temp dir
  sshd            the Debian sshd run through a symlink named SERVICE in a root-owned 0755
                  directory, so that its PAM service is /etc/pam.d/SERVICE (written here)
  a /dev/log reader  so the PAM module's pam_syslog lines can be asserted (tests only)

Every file lives in one run directory under BASE (root-owned, 0755 all the way up, as sshd's
StrictModes wants for AuthorizedKeysFile); the only files written elsewhere are
/etc/pam.d/SERVICE (carries a marker line, removed on teardown), the symlink BASE/SERVICE,
Unix test accounts (kept; created only if missing) and, when nothing listens there, /dev/log.

Command line (used by scripts/demo.sh):
  pcenv.py demo-up    --build DIR --state DIR [--port N]   prints KEY=VALUE lines (shell-quoted)
  pcenv.py demo-down  --state DIR
"""
import argparse
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC_DIR = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SRC_DIR, "tests", "integration"))

import harness  # noqa: E402

SSHD_BIN = "/usr/sbin/sshd"
PAM_DIR = "/etc/pam.d"
PAM_MARKER = "# written by portcullis tests/e2e/pcenv.py; removed when the run ends"
LOGIN_EXP = os.path.join(HERE, "login.exp")
FAULTPROXY = os.path.join(SRC_DIR, "tests", "faultproxy.py")


class SetupError(Exception):
    pass


def log(msg):
    if os.environ.get("PC_E2E_VERBOSE"):
        sys.stderr.write("pcenv: %s\n" % msg)


def run(cmd, check=True, timeout=60, **kw):
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise SetupError("%s exited %d: %s%s" % (" ".join(cmd), r.returncode,
                                                  r.stdout.decode(errors="replace"),
                                                  r.stderr.decode(errors="replace")))
    return r


def wait_port(port, timeout=20.0, proc=None, banner=None):
    """Waits until 127.0.0.1:port accepts (and, with banner, sends a line starting with it)."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        if proc is not None and not proc.alive():
            raise SetupError("%s exited with %s while starting; log:\n%s"
                             % (proc.name, proc.returncode(), proc.log()))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                if banner is None:
                    return
                s.settimeout(5)
                data = s.recv(256)
                if data.startswith(banner):
                    return
                last = data
        except OSError as e:
            last = e
        time.sleep(0.1)
    raise SetupError("nothing answered on 127.0.0.1:%d within %.0fs (%r)" % (port, timeout, last))


def mkdir_root(path, mode=0o755):
    os.makedirs(path, exist_ok=True)
    os.chown(path, 0, 0)
    os.chmod(path, mode)


def write_file(path, text, mode=0o644):
    tmp = path + ".tmp%d" % os.getpid()
    with open(tmp, "w") as f:
        f.write(text)
    os.chown(tmp, 0, 0)
    os.chmod(tmp, mode)
    os.rename(tmp, path)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


# --------------------------------------------------------------------------------------------
# processes

class Proc:
    """A background process with its output in a log file. detach=True leaves it running when
    Python exits (for the demo); its pid is written to pidfile."""

    def __init__(self, name, cmd, log_path, env=None, pidfile=None, detach=False):
        self.name = name
        self.cmd = list(cmd)
        self.log_path = log_path
        self.env = env
        self.pidfile = pidfile
        self.detach = detach
        self.p = None
        self._rc = None

    def start(self):
        full_env = dict(os.environ)
        if self.env:
            full_env.update(self.env)
        with open(self.log_path, "ab") as lf:
            self.p = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=lf,
                                      stderr=subprocess.STDOUT, env=full_env, close_fds=True,
                                      start_new_session=True)
        self._rc = None
        if self.pidfile:
            with open(self.pidfile, "w") as f:
                f.write("%d\n" % self.p.pid)
        if not self.detach:
            _LIVE.append(self)
        log("started %s pid %d: %s" % (self.name, self.p.pid, " ".join(self.cmd)))
        return self

    @property
    def pid(self):
        return self.p.pid if self.p else None

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def returncode(self):
        return self.p.poll() if self.p else self._rc

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        if self.p is None:
            return self._rc
        if self.p.poll() is None:
            try:
                self.p.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self._rc = self.p.returncode
        self.p = None
        if self in _LIVE:
            _LIVE.remove(self)
        if self.pidfile and os.path.exists(self.pidfile):
            os.unlink(self.pidfile)
        return self._rc

    def kill(self):
        return self.stop(sig=signal.SIGKILL, timeout=5)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_since(self, offset):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


_LIVE = []


def stop_all():
    for p in list(reversed(_LIVE)):
        try:
            p.stop(timeout=5)
        except Exception:
            pass


def stop_pidfile(path, timeout=10.0, must_mention=None):
    """Stops the process whose pid is in path (demo-down); removes the file. With must_mention,
    only if that string is in the process's command line (a stale pid may have been reused)."""
    try:
        with open(path) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return
    if must_mention is not None:
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                if must_mention.encode() not in f.read():
                    pid = 0
        except OSError:
            pid = 0
    if pid > 1 and pid_alive(pid):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.time() + timeout
        while time.time() < deadline and pid_alive(pid):
            time.sleep(0.1)
        if pid_alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    try:
        os.unlink(path)
    except OSError:
        pass


# --------------------------------------------------------------------------------------------
# syslog: a /dev/log reader we own

_PRI_RE = re.compile(r"^<(\d{1,3})>")


class SyslogRecord:
    def __init__(self, raw):
        self.raw = raw
        m = _PRI_RE.match(raw)
        self.pri = int(m.group(1)) if m else 13
        self.severity = self.pri & 7
        self.facility = self.pri >> 3
        self.text = raw[m.end():] if m else raw
        self.time = time.time()

    def __repr__(self):
        return "<sev %d fac %d> %s" % (self.severity, self.facility, self.text)


class SyslogSink:
    """Collects datagrams sent to a unix socket (what syslog(3) writes to /dev/log).

    If /dev/log does not exist, the sink binds /dev/log itself (and removes it on close).
    Otherwise it binds a socket in the run dir and `wrap(cmd)` returns a command that runs cmd
    in a private mount namespace with that socket bind-mounted over /dev/log (the machine's
    syslog is not touched)."""

    DEV_LOG = "/dev/log"

    def __init__(self, run_dir):
        self.records = []
        self.lock = threading.Lock()
        self.own_devlog = not os.path.lexists(self.DEV_LOG)
        self.path = self.DEV_LOG if self.own_devlog else os.path.join(run_dir, "syslog.sock")
        if os.path.lexists(self.path) and not self.own_devlog:
            os.unlink(self.path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o666)
        self.ino = os.stat(self.path).st_ino
        self.sock.settimeout(0.2)
        self.closed = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        self.file_path = os.path.join(run_dir, "syslog.txt")

    def _loop(self):
        while not self.closed:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            rec = SyslogRecord(data.decode("utf-8", "replace").rstrip("\n\0"))
            with self.lock:
                self.records.append(rec)
            try:
                with open(self.file_path, "a") as f:
                    f.write(repr(rec) + "\n")
            except OSError:
                pass

    def wrap(self, cmd):
        if self.own_devlog:
            return list(cmd)
        script = 'mount --bind "$1" /dev/log && shift && exec "$@"'
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                self.path] + list(cmd)

    def mark(self):
        with self.lock:
            return len(self.records)

    def since(self, mark=0):
        with self.lock:
            return list(self.records[mark:])

    def wait_for(self, pred, mark=0, timeout=5.0):
        deadline = time.time() + timeout
        while True:
            hits = [r for r in self.since(mark) if pred(r)]
            if hits or time.time() >= deadline:
                return hits
            time.sleep(0.1)

    def close(self):
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass
        self.thread.join(timeout=2)
        try:
            if os.stat(self.path).st_ino == self.ino:
                os.unlink(self.path)
        except OSError:
            pass


# --------------------------------------------------------------------------------------------
# Unix accounts and keys

def ensure_user(name):
    """A real account with a home and a shell; created if missing. Returns the pwd entry."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    run(["useradd", "-m", "-s", "/bin/bash", "-c", "Portcullis test user", name])
    return pwd.getpwnam(name)


# --------------------------------------------------------------------------------------------
# sshd

def sanitizer_env(module, log_dir):
    """Environment for a host program (sshd) that dlopen()s module: LD_PRELOAD of libasan when
    module needs it, else None."""
    if not module or not os.path.exists(module):
        return None
    with open(module, "rb") as f:
        data = f.read()
    if b"libasan.so" not in data:
        return None
    r = run(["gcc", "-print-file-name=libasan.so"], check=False)
    lib = r.stdout.decode().strip()
    if r.returncode != 0 or not os.path.isabs(lib):
        raise SetupError("%s needs libasan but gcc -print-file-name=libasan.so failed" % module)
    lib = os.path.realpath(lib)
    # sshd itself is not instrumented and keeps memory to exit: no leak report for it
    opts = os.environ.get("ASAN_OPTIONS", "")
    opts = ":".join([o for o in opts.split(":") if o and not o.startswith("detect_leaks")] +
                    ["detect_leaks=0", "log_path=" + os.path.join(log_dir, "asan-sshd")])
    return {"LD_PRELOAD": lib, "ASAN_OPTIONS": opts}

class Sshd:
    """sshd under the symlink base/service, its own config and host key in run_dir."""

    def __init__(self, base, service, run_dir, port=None, syslog=None, detach=False):
        self.base = base
        self.service = service
        self.run_dir = run_dir
        self.port = port or harness.free_port()
        self.syslog = syslog
        self.detach = detach
        self.link = os.path.join(base, service)
        self.config = os.path.join(run_dir, "sshd_config")
        self.hostkey = os.path.join(run_dir, "ssh_host_ed25519_key")
        self.keys_dir = os.path.join(run_dir, "client-keys")
        self.authkeys_dir = os.path.join(run_dir, "authorized_keys")
        self.pam_path = os.path.join(PAM_DIR, service)
        self.proc = None
        self.users = []

    def setup(self):
        if not os.path.exists(SSHD_BIN):
            raise SetupError("%s not found (apt-get install openssh-server)" % SSHD_BIN)
        mkdir_root(self.base)
        if os.path.islink(self.link) and os.readlink(self.link) == SSHD_BIN:
            pass
        else:
            if os.path.lexists(self.link):
                os.unlink(self.link)
            os.symlink(SSHD_BIN, self.link)
        mkdir_root(self.run_dir)
        mkdir_root(self.authkeys_dir)
        mkdir_root(self.keys_dir, 0o700)
        if not os.path.isdir("/run/sshd"):
            mkdir_root("/run/sshd")
        if not os.path.exists(self.hostkey):
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "portcullis-e2e-host",
                 "-f", self.hostkey])
        return self

    def add_user(self, name):
        ensure_user(name)
        key = self.key_path(name)
        if not os.path.exists(key):
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "%s@portcullis-e2e" % name,
                 "-f", key])
        with open(key + ".pub") as f:
            pub = f.read()
        write_file(os.path.join(self.authkeys_dir, name), pub, 0o644)
        if name not in self.users:
            self.users.append(name)
        return key

    def key_path(self, name):
        return os.path.join(self.keys_dir, name)

    def write_config(self, extra=""):
        text = """# sshd for Portcullis end-to-end tests / demo (loopback only)
Port %(port)d
ListenAddress 127.0.0.1
HostKey %(hostkey)s
PidFile %(run)s/sshd.pid
UsePAM yes
KbdInteractiveAuthentication yes
PasswordAuthentication no
PubkeyAuthentication yes
AuthenticationMethods publickey,keyboard-interactive:pam
AuthorizedKeysFile %(authkeys)s/%%u
StrictModes yes
PermitRootLogin no
AllowUsers %(users)s
LoginGraceTime 120
MaxAuthTries 6
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowTcpForwarding no
LogLevel VERBOSE
%(extra)s""" % {"port": self.port, "hostkey": self.hostkey, "run": self.run_dir,
                "authkeys": self.authkeys_dir, "users": " ".join(self.users) or "nobody",
                "extra": extra}
        write_file(self.config, text, 0o644)
        r = run([self.link, "-t", "-f", self.config], check=False)
        if r.returncode != 0:
            raise SetupError("sshd -t -f %s failed: %s" % (self.config,
                                                          r.stderr.decode(errors="replace")))

    def write_pam(self, module, socket_path, failmode="secure", extra_opts=""):
        """/etc/pam.d/SERVICE with our module in the auth stack; rewritten between tests."""
        if os.path.exists(self.pam_path):
            with open(self.pam_path) as f:
                if PAM_MARKER not in f.read():
                    raise SetupError("%s exists and was not written by us; not touching it"
                                     % self.pam_path)
        opts = "socket=%s failmode=%s" % (socket_path, failmode)
        if extra_opts:
            opts += " " + extra_opts
        text = ("%s\nauth     required %s %s\naccount  required pam_unix.so\n"
                "session  required pam_unix.so\n") % (PAM_MARKER, os.path.abspath(module), opts)
        write_file(self.pam_path, text, 0o644)
        self.pam_text = text

    def remove_link(self):
        """Removes the symlink, and base if that leaves it empty."""
        if os.path.islink(self.link):
            os.unlink(self.link)
        try:
            os.rmdir(self.base)
        except OSError:
            pass

    def remove_pam(self):
        try:
            with open(self.pam_path) as f:
                if PAM_MARKER in f.read():
                    os.unlink(self.pam_path)
        except OSError:
            pass

    def start(self, module=None):
        """Starts sshd. module: the PAM module's path; when it was built with AddressSanitizer
        the ASan runtime is preloaded into sshd (it must come first in the link order)."""
        cmd = [self.link, "-D", "-e", "-f", self.config]
        if self.syslog is not None:
            cmd = self.syslog.wrap(cmd)
        self.proc = Proc("sshd", cmd, os.path.join(self.run_dir, "sshd.log"),
                         env=sanitizer_env(module, self.run_dir),
                         pidfile=os.path.join(self.run_dir, "sshd.proc.pid"), detach=self.detach)
        self.proc.start()
        wait_port(self.port, proc=self.proc, banner=b"SSH-2.0-")
        return self

    def stop(self):
        if self.proc:
            self.proc.stop()

    def sanitizer_reports(self):
        """Contents of ASan reports written by sshd's processes (the PAM module), if any."""
        out = []
        for name in sorted(os.listdir(self.run_dir)):
            if name.startswith("asan-sshd"):
                with open(os.path.join(self.run_dir, name), errors="replace") as f:
                    out.append("%s:\n%s" % (name, f.read()))
        return out

    def ssh_cmd(self, user, extra=()):
        return ["ssh", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                "-o", "PreferredAuthentications=publickey,keyboard-interactive",
                "-o", "IdentitiesOnly=yes", "-o", "NumberOfPasswordPrompts=1",
                "-i", self.key_path(user), "-p", str(self.port)] + list(extra) + \
               ["%s@127.0.0.1" % user]


# --------------------------------------------------------------------------------------------
# the agent

class Agent:
    def __init__(self, binary, run_dir, url, pin, timeout="10", connect_timeout="3",
                 log_level="debug", detach=False, extra=None, name="agent"):
        self.binary = binary
        self.dir = os.path.join(run_dir, name)
        # Lines added to agent.conf. By default no host certificate and an ssh_dir of our own,
        # so that nothing is written under /etc/ssh (tests/e2e/e2e_ca.py passes its own).
        self.extra = list(extra) if extra is not None else [
            "host_key = none", "ssh_dir = %s" % os.path.join(self.dir, "ssh")]
        mkdir_root(self.dir, 0o755)
        self.config = os.path.join(self.dir, "agent.conf")
        self.token_file = os.path.join(self.dir, "host.token")
        self.socket = os.path.join(self.dir, "agent.sock")
        self.url = url
        self.pin = pin
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.log_level = log_level
        self.detach = detach
        self.proc = None
        self.starts = 0

    def write_config(self, with_server=True):
        lines = ["# portcullis-agent for e2e tests / demo",
                 "host_token_file = %s" % self.token_file,
                 "socket = %s" % self.socket,
                 "timeout = %s" % self.timeout,
                 "connect_timeout = %s" % self.connect_timeout,
                 "log_level = %s" % self.log_level]
        lines += self.extra
        if with_server:
            lines += ["url = %s" % self.url, "pin = %s" % self.pin]
        write_file(self.config, "\n".join(lines) + "\n", 0o644)

    def enroll(self, enroll_token):
        """Writes the config without url/pin and lets `enroll` add them and the host token."""
        self.write_config(with_server=False)
        r = run([self.binary, "enroll", "--config", self.config, "--url", self.url,
                 "--pin", self.pin, "--token", enroll_token], check=False, timeout=60)
        if r.returncode != 0:
            raise SetupError("portcullis-agent enroll exited %d:\n%s%s" % (
                r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")))
        if not os.path.exists(self.token_file):
            raise SetupError("portcullis-agent enroll did not write %s" % self.token_file)
        return r

    def start(self, wait=True):
        self.starts += 1
        self.proc = Proc("portcullis-agent", [self.binary, "run", "--config", self.config],
                         os.path.join(self.dir, "agent.log"),
                         pidfile=os.path.join(self.dir, "agent.pid"), detach=self.detach)
        self.proc.start()
        if wait:
            deadline = time.time() + 20
            while True:
                if not self.proc.alive():
                    raise SetupError("portcullis-agent exited with %s; log:\n%s"
                                     % (self.proc.returncode(), self.proc.log()))
                if os.path.exists(self.socket) and stat.S_ISSOCK(os.stat(self.socket).st_mode):
                    try:
                        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                        s.settimeout(2)
                        s.connect(self.socket)
                        s.close()
                        break
                    except OSError:
                        pass
                if time.time() > deadline:
                    raise SetupError("portcullis-agent socket %s did not appear; log:\n%s"
                                     % (self.socket, self.proc.log()))
                time.sleep(0.1)
        return self

    def stop(self):
        if self.proc:
            self.proc.stop()

    def restart(self):
        self.stop()
        return self.start()


# --------------------------------------------------------------------------------------------
# the fault proxy (tests only)

class FaultProxy:
    """tests/faultproxy.py between the agent and portcullisd; mode written to a file."""

    def __init__(self, run_dir, upstream_port, port=None, data_dir=None):
        self.dir = os.path.join(run_dir, "proxy")
        mkdir_root(self.dir, 0o755)
        self.mode_file = os.path.join(self.dir, "mode")
        self.port = port or harness.free_port()
        self.upstream_port = upstream_port
        self.data_dir = data_dir
        self.set_mode("pass")
        self.proc = None

    @property
    def url(self):
        return "https://127.0.0.1:%d" % self.port

    def set_mode(self, mode, wait=False):
        """Writes the mode file. wait=True (proxy running): returns once the proxy has seen the
        change (it polls the file every 0.1 s) and closed (`dead`) or re-opened (leaving `dead`)
        its listening socket."""
        before = getattr(self, "_mode", None)
        off = self.proc.log_size() if wait and self.proc and self.proc.alive() else None
        write_file(self.mode_file, mode + "\n", 0o644)
        self._mode = mode
        if off is None or mode == before:
            return
        was_dead = before == "dead"

        def seen():
            text = self.proc.log_since(off)
            if "mode changed to %s:" % mode not in text:
                return False
            if mode == "dead":
                return "dead: listening socket closed" in text
            return not was_dead or "listening again" in text
        harness.wait_until(seen, timeout=10, interval=0.05,
                           what="the fault proxy to switch to mode %s" % mode)

    def command(self):
        cmd = ["/usr/bin/python3", FAULTPROXY, "--port", str(self.port),
               "--upstream", "127.0.0.1:%d" % self.upstream_port, "--mode-file", self.mode_file,
               "--workdir", self.dir]
        if self.data_dir:
            cmd += ["--cert", os.path.join(self.data_dir, "tls.crt"),
                    "--key", os.path.join(self.data_dir, "tls.key")]
        return cmd

    def start(self):
        if not os.path.exists(FAULTPROXY):
            raise SetupError("%s does not exist (yet)" % FAULTPROXY)
        self.proc = Proc("faultproxy", self.command(), os.path.join(self.dir, "proxy.log"))
        self.proc.start()
        wait_port(self.port, proc=self.proc)
        return self

    def stop(self):
        if self.proc:
            self.proc.stop()


# --------------------------------------------------------------------------------------------
# the control plane

def start_daemon(data_dir, port=None, detach=False, log_path=None, pidfile=None, args=None):
    """portcullisd on 127.0.0.1. For tests (detach=False) harness manages it; for the demo it is
    left running with its pid in pidfile."""
    d = harness.Daemon(data_dir=data_dir, port=port, args=args)
    if not detach:
        return d.start()
    if not os.path.exists(harness.DAEMON_BIN):
        raise SetupError("portcullisd not built: %s" % harness.DAEMON_BIN)
    p = Proc("portcullisd", d.command(), log_path, pidfile=pidfile, detach=True)
    p.start()
    d.proc = p.p
    d.log_path = log_path
    try:
        d.wait_ready()
    finally:
        d.proc = None     # not harness's to kill at exit
    return d


def build_paths(build_dir):
    return {
        "daemon": os.path.join(build_dir, "control-plane", "portcullisd"),
        "cli": os.path.join(build_dir, "cli", "portcullis"),
        "agent": os.path.join(build_dir, "agent", "portcullis-agent"),
        "module": os.path.join(build_dir, "pam_module", ".libs", "pam_portcullis.so"),
    }


# --------------------------------------------------------------------------------------------
# demo

DEMO_BASE = "/usr/local/lib/portcullis-demo"
DEMO_SERVICE = "portcullis-demo-sshd"
DEMO_USER = "demo"


def port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def demo_up(build_dir, state, port):
    paths = build_paths(build_dir)
    for k in ("daemon", "agent", "module"):
        if not os.path.exists(paths[k]):
            raise SetupError("%s not built: %s" % (k, paths[k]))
    demo_down(state, quiet=True)
    mkdir_root(state, 0o755)
    for p in [port] + list(range(port + 1, port + 50)):
        if port_free(p):
            port = p
            break
    else:
        raise SetupError("no free port in %d-%d on 127.0.0.1" % (port, port + 49))
    try:
        pwd.getpwnam(DEMO_USER)
    except KeyError:
        ensure_user(DEMO_USER)
        write_file(os.path.join(state, "created_user"), DEMO_USER + "\n")
    run_dir = os.path.join(DEMO_BASE, "run")
    if os.path.isdir(run_dir):
        shutil.rmtree(run_dir)
    cp_port = harness.free_port()
    d = start_daemon(os.path.join(state, "data"), port=cp_port, detach=True,
                     log_path=os.path.join(state, "portcullisd.log"),
                     pidfile=os.path.join(state, "portcullisd.pid"))
    pin = d.print_pin()
    # the Portcullis user (the TOTP enrollment is printed by demo.sh with the CLI)
    st, b = d.admin("GET", "/v1/users/%s" % DEMO_USER)
    if st == 404:
        d.create_user(DEMO_USER, push=False)
    host_tok = d.create_token(labels={"env": "demo"})
    sshd = Sshd(DEMO_BASE, DEMO_SERVICE, run_dir, port=port, detach=True).setup()
    agent = Agent(paths["agent"], run_dir, d.url, pin, detach=True, log_level="info")
    agent.enroll(host_tok)
    agent.start()
    sshd.add_user(DEMO_USER)
    sshd.write_config()
    sshd.write_pam(paths["module"], agent.socket, failmode="secure", extra_opts="tries=3")
    sshd.start()
    with open(os.path.join(state, "run_dir"), "w") as f:
        f.write(run_dir + "\n")
    out = {
        "PC_URL": d.url, "PC_PIN": pin, "PC_TOKEN_FILE": d.path("admin.token"),
        "PC_DATA_DIR": d.data_dir, "PC_SSH_PORT": str(sshd.port),
        "PC_SSH_KEY": sshd.key_path(DEMO_USER), "PC_DEMO_USER": DEMO_USER,
        "PC_AGENT_SOCKET": agent.socket, "PC_RUN_DIR": run_dir,
        "PC_PAM_FILE": sshd.pam_path,
        "PC_SSHD_LOG": sshd.proc.log_path, "PC_AGENT_LOG": agent.proc.log_path,
        "PC_DAEMON_LOG": os.path.join(state, "portcullisd.log"),
    }
    for k, v in out.items():
        print("%s=%s" % (k, shlex.quote(v)))


def demo_down(state, quiet=False):
    run_dir = None
    try:
        with open(os.path.join(state, "run_dir")) as f:
            run_dir = f.read().strip()
    except OSError:
        run_dir = os.path.join(DEMO_BASE, "run")
    if run_dir and os.path.isdir(run_dir):
        stop_pidfile(os.path.join(run_dir, "sshd.proc.pid"))
        stop_pidfile(os.path.join(run_dir, "agent", "agent.pid"))
    stop_pidfile(os.path.join(state, "portcullisd.pid"))
    Sshd(DEMO_BASE, DEMO_SERVICE, run_dir or "/nonexistent").remove_pam()
    created = os.path.join(state, "created_user")
    if os.path.exists(created):
        with open(created) as f:
            name = f.read().strip()
        if name == DEMO_USER:
            run(["userdel", "-r", name], check=False)
        os.unlink(created)
    if run_dir and os.path.isdir(run_dir) and run_dir.startswith(DEMO_BASE + "/"):
        shutil.rmtree(run_dir, ignore_errors=True)
    link = os.path.join(DEMO_BASE, DEMO_SERVICE)
    if os.path.islink(link):
        os.unlink(link)
    try:
        os.rmdir(DEMO_BASE)
    except OSError:
        pass
    if os.path.isdir(state) and not quiet:
        shutil.rmtree(state, ignore_errors=True)
    if not quiet:
        print("demo stopped (processes ended, %s/%s removed)" % (PAM_DIR, DEMO_SERVICE))


def main(argv):
    ap = argparse.ArgumentParser(prog="pcenv.py")
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("demo-up")
    up.add_argument("--build", required=True)
    up.add_argument("--state", required=True)
    up.add_argument("--port", type=int, default=2222)
    down = sub.add_parser("demo-down")
    down.add_argument("--state", required=True)
    a = ap.parse_args(argv)
    if os.geteuid() != 0:
        sys.stderr.write("pcenv.py: must run as root\n")
        return 2
    try:
        if a.cmd == "demo-up":
            os.environ["PC_BUILD_DIR"] = os.path.abspath(a.build)
            harness.BUILD_DIR = os.path.abspath(a.build)
            harness.DAEMON_BIN = build_paths(harness.BUILD_DIR)["daemon"]
            harness.CLI_BIN = build_paths(harness.BUILD_DIR)["cli"]
            demo_up(os.path.abspath(a.build), os.path.abspath(a.state), a.port)
        else:
            demo_down(os.path.abspath(a.state))
    except (SetupError, AssertionError) as e:
        sys.stderr.write("pcenv.py: %s\n" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
