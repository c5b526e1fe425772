#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""Tests of `portcullis-agent configure` / `unconfigure` against a corpus of sshd and PAM
layouts (tests/configure/corpus/NAME/{etc/...,layout.json}).

Every case runs in its own private mount namespace (unshare --mount --propagation private):
/etc gets a throw-away overlay (so a layout may add /etc/crypto-policies or a group), and a temp
copy of the layout is bind-mounted over /etc/ssh and /etc/pam.d, with freshly generated host
keys. The real machine's files are never written. Checks: sshd -T shows every directive of ours
in effect, PAM (libpam through ctypes, pam_portcullis.so replaced by pam_debug.so) admits an
exempt user with no prompt and refuses on an error, and unconfigure leaves every file byte-identical
(sha256, mode, owner of the whole tree; a symlink by its target, so one replaced by a file
shows). Faults: a failing sshd -t, a lying sshd -T, a read-only
file, a crash (abort) after every step of configure and unconfigure.

Usage: PC_BUILD_DIR=BUILD tests/configure/run.sh [CASE...]
Output: "PASS name" / "FAIL name: why" lines, then "N passed, N failed"."""
import ctypes
import hashlib
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
BUILD = os.environ.get("PC_BUILD_DIR") or os.path.join(HERE, "..", "..", "build-conf")
AGENT = os.path.join(os.path.abspath(BUILD), "agent", "portcullis-agent")
AGENT_PATH = "/usr/sbin/portcullis-agent"
TREES = ("/etc/ssh", "/etc/pam.d", "/etc/crypto-policies", "/etc/pam.d-vendor")
# directories of a layout's etc/ that are bind-mounted copies; any other directory there (e.g.
# pam.d-vendor, the target of a symlinked /etc/pam.d/sshd) is copied into the /etc overlay
MOUNTED = ("ssh", "pam.d", "crypto-policies")
EFFECTIVE = "user=root,host=localhost,addr=127.0.0.1"


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def sh(*argv, env=None, ok=True):
    p = subprocess.run(argv, capture_output=True, text=True, env=env)
    if ok and p.returncode != 0:
        raise Fail("%s: exit %d: %s" % (" ".join(argv), p.returncode, p.stderr.strip()[-400:]))
    return p


def layout(name):
    with open(os.path.join(CORPUS, name, "layout.json")) as f:
        return json.load(f)


def tree_state():
    """sha256 (a symlink: its target, never followed), mode, owner of every file, symlink and
    directory below TREES."""
    out = {}
    for top in TREES:
        if not os.path.isdir(top):
            continue
        for d, dirs, files in os.walk(top):
            for n in dirs + files:
                p = os.path.join(d, n)
                st = os.lstat(p)
                h = ""
                if stat.S_ISREG(st.st_mode):
                    with open(p, "rb") as f:
                        h = hashlib.sha256(f.read()).hexdigest()
                elif stat.S_ISLNK(st.st_mode):
                    h = "-> " + os.readlink(p)
                out[p] = (h, st.st_mode, st.st_uid, st.st_gid)
    return out


def same_tree(before, msg):
    after = tree_state()
    diff = sorted(set(before.items()) ^ set(after.items()))
    check(not diff, "%s: tree differs at %s" % (msg, sorted({d[0] for d in diff})[:5]))


class Env:
    """A layout mounted over the real paths inside this (private) mount namespace."""

    def __init__(self, name, keys):
        self.name, self.keys = name, keys
        self.tmp = tempfile.mkdtemp(prefix="pc-configure-")
        up, work = os.path.join(self.tmp, "up"), os.path.join(self.tmp, "work")
        os.mkdir(up)
        os.mkdir(work)
        sh("mount", "-t", "overlay", "overlay", "-o",
           "lowerdir=/etc,upperdir=%s,workdir=%s" % (up, work), "/etc")
        self.gen = 0
        self.reset()

    def reset(self):
        """Fresh copies of the layout over /etc/ssh, /etc/pam.d, /etc/crypto-policies."""
        self.gen += 1
        base = os.path.join(self.tmp, "g%d" % self.gen)
        src = os.path.join(CORPUS, self.name, "etc")
        ssh, pam = os.path.join(base, "ssh"), os.path.join(base, "pam.d")
        shutil.copytree(os.path.join(src, "ssh"), ssh)
        for k in os.listdir(self.keys):
            shutil.copy2(os.path.join(self.keys, k), ssh)
        shutil.copytree("/etc/pam.d", pam)
        for n in os.listdir(os.path.join(src, "pam.d")):
            shutil.copy(os.path.join(src, "pam.d", n), os.path.join(pam, n))
        cp = os.path.join(src, "crypto-policies")
        if os.path.isdir(cp):
            shutil.rmtree("/etc/crypto-policies", ignore_errors=True)
            shutil.copytree(cp, "/etc/crypto-policies")
        for n in os.listdir(src):
            if n not in MOUNTED and os.path.isdir(os.path.join(src, n)):
                shutil.rmtree("/etc/" + n, ignore_errors=True)
                shutil.copytree(os.path.join(src, n), "/etc/" + n)
        if self.gen > 1:
            sh("umount", "/etc/ssh")
            sh("umount", "/etc/pam.d")
        sh("mount", "--bind", ssh, "/etc/ssh")
        sh("mount", "--bind", pam, "/etc/pam.d")
        for link, target in layout(self.name).get("symlinks", {}).items():
            if os.path.lexists(link):
                os.remove(link)
            os.symlink(target, link)
        self.state = os.path.join(base, "state")
        self.before = tree_state()

    def agent(self, cmd, *args, env=None, path=None):
        argv = [AGENT, cmd, "--state-dir", self.state, "--no-reload"]
        if cmd == "configure":
            argv += ["--agent-path", AGENT_PATH]
        e = dict(os.environ, **(env or {}))
        if path:
            e["PATH"] = path + ":" + e.get("PATH", "")
        return subprocess.run(argv + list(args), capture_output=True, text=True, env=e)


def effective(user="root"):
    p = sh("sshd", "-T", "-C", EFFECTIVE.replace("user=root", "user=" + user),
           "-f", "/etc/ssh/sshd_config")
    eff = {}
    for line in p.stdout.splitlines():
        k, _, v = line.partition(" ")
        eff.setdefault(k, []).append(v)
    return eff


def default_principals_user():
    """configure's documented default: portcullis-principals when that user exists (the
    agent package creates it), else nobody."""
    try:
        pwd.getpwnam("portcullis-principals")
        return "portcullis-principals"
    except KeyError:
        return "nobody"


def check_effective(before_keys, user_expect=None):
    user_expect = user_expect or default_principals_user()
    eff = effective()
    want = {
        "trustedusercakeys": "/etc/ssh/portcullis/user_ca.pub",
        "authorizedprincipalscommand": AGENT_PATH + " principals %u %i %s %f",
        "authorizedprincipalscommanduser": user_expect,
        "revokedkeys": "/etc/ssh/portcullis/revoked.krl",
        "usepam": "yes",
        "kbdinteractiveauthentication": "yes",
        "authenticationmethods": "publickey,keyboard-interactive:pam",
    }
    for k, v in want.items():
        check(eff.get(k) == [v], "sshd -T: %s is %s, expected %s" % (k, eff.get(k), v))
    check("/etc/ssh/portcullis/host-cert.pub" in eff.get("hostcertificate", []),
          "sshd -T: no hostcertificate")
    missing = set(before_keys) - set(eff.get("hostkey", []))
    check(not missing, "sshd -T: host keys dropped: %s" % sorted(missing))


# ---- PAM through libpam (ctypes): how many prompts, and the result ----------------------
class PamMessage(ctypes.Structure):
    _fields_ = [("msg_style", ctypes.c_int), ("msg", ctypes.c_char_p)]


class PamResponse(ctypes.Structure):
    _fields_ = [("resp", ctypes.c_void_p), ("resp_retcode", ctypes.c_int)]


CONV = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.POINTER(PamMessage)),
                        ctypes.POINTER(ctypes.POINTER(PamResponse)), ctypes.c_void_p)


class PamConv(ctypes.Structure):
    _fields_ = [("conv", CONV), ("appdata_ptr", ctypes.c_void_p)]


def pam_auth(confdir, service, user):
    """Runs pam_authenticate; returns (rc, prompts seen). Every prompt gets an empty answer."""
    libc = ctypes.CDLL("libc.so.6")
    libc.calloc.restype = ctypes.c_void_p
    libc.strdup.restype = ctypes.c_void_p
    pam = ctypes.CDLL("libpam.so.0")
    prompts = []

    def conv(n, msgs, resp, _):
        arr = libc.calloc(n, ctypes.sizeof(PamResponse))
        r = ctypes.cast(arr, ctypes.POINTER(PamResponse))
        for i in range(n):
            m = msgs[i].contents
            if m.msg_style in (1, 2):
                prompts.append(m.msg.decode(errors="replace"))
            r[i].resp = libc.strdup(b"")
        resp[0] = r
        return 0

    c = PamConv(CONV(conv), None)
    h = ctypes.c_void_p()
    rc = pam.pam_start_confdir(service.encode(), user.encode(), ctypes.byref(c),
                               confdir.encode(), ctypes.byref(h))
    check(rc == 0, "pam_start_confdir: %d" % rc)
    rc = pam.pam_authenticate(h, 0)
    pam.pam_end(h, rc)
    return rc, prompts


def check_pam(tmp, service="sshd"):
    """Our module replaced by pam_debug: ignore and success admit with no prompt, errors refuse."""
    for res, admit in (("ignore", True), ("success", True), ("auth_err", False),
                       ("user_unknown", False)):
        d = tempfile.mkdtemp(dir=tmp)
        for n in os.listdir("/etc/pam.d"):
            if os.path.isfile(os.path.join("/etc/pam.d", n)):
                shutil.copy(os.path.join("/etc/pam.d", n), d)
        with open(os.path.join("/etc/pam.d", service)) as f:
            text = f.read()
        check("pam_portcullis.so" in text, "%s: pam_portcullis.so missing" % service)
        with open(os.path.join(d, "pctest"), "w") as f:
            f.write(text.replace("pam_portcullis.so", "pam_debug.so auth=" + res))
        rc, prompts = pam_auth(d, "pctest", "root")
        check((rc == 0) == admit, "PAM with our module answering %s: rc %d" % (res, rc))
        check(not prompts or service == "sudo",
              "PAM with our module answering %s: unexpected prompts %s" % (res, prompts))


# ---- cases ------------------------------------------------------------------------------
def hostkeys_now():
    return effective().get("hostkey", [])


def check_pam_baseline(tmp):
    """Before configure the harness must see the distribution's password prompt."""
    d = tempfile.mkdtemp(dir=tmp)
    for n in os.listdir("/etc/pam.d"):
        if os.path.isfile(os.path.join("/etc/pam.d", n)):
            shutil.copy(os.path.join("/etc/pam.d", n), d)
    rc, prompts = pam_auth(d, "sshd", "root")
    check(rc != 0 and prompts, "original stack: rc %d, prompts %s" % (rc, prompts))


def case_layout(env, lay):
    keys = hostkeys_now()
    check_pam_baseline(env.tmp)
    p = env.agent("configure", *lay.get("args", []))
    check(p.returncode == 0, "configure: exit %d: %s" % (p.returncode, p.stderr.strip()))
    dropin = os.path.exists("/etc/ssh/sshd_config.d/00-portcullis.conf")
    with open("/etc/ssh/sshd_config") as f:
        main = f.read()
    if lay["mode"] == "dropin":
        check(dropin and "# BEGIN portcullis\n" not in main, "expected the drop-in")
    else:
        check(not dropin and main.startswith("# BEGIN portcullis\n"), "expected the marked block")
    check_effective(keys)
    check_pam(env.tmp)
    for link, target in lay.get("symlinks", {}).items():
        check(os.path.islink(link) and os.readlink(link) == target,
              "%s is no longer a symlink to %s" % (link, target))
        with open(link) as f:  # through the link: its target
            check("pam_portcullis.so" in f.read(), "%s -> %s lacks our line" % (link, target))
    for path in lay.get("changed", []):
        check(env.before.get(path, ("",))[0] != tree_state().get(path, ("",))[0],
              "%s not changed" % path)
    if "/etc/pam.d/sudo" in lay.get("changed", []):
        with open("/etc/pam.d/sudo") as f:
            s = f.read()
        check("auth substack " in s and "pam_portcullis.so" in s, "sudo stack: " + s)
    if "--breakglass-group" in lay.get("args", []):
        group = lay["args"][lay["args"].index("--breakglass-group") + 1]
        with open("/etc/group", "a") as f:  # the overlay's /etc/group
            f.write("%s:x:4242:nobody\n" % group)
        am = effective("nobody").get("authenticationmethods")
        check(am == ["publickey"], "break-glass member gets %s" % am)
        check(main.rstrip().endswith("# END portcullis break-glass"), "break-glass not at the end")
    with open("/etc/ssh/portcullis/user_ca.pub") as f:
        ca = f.read()
    for word in lay.get("ca_contains", []):
        check(word in ca, "CA file lacks %s" % word)
    p = env.agent("unconfigure")
    check(p.returncode == 0, "unconfigure: exit %d: %s" % (p.returncode, p.stderr.strip()))
    same_tree(env.before, "after unconfigure")
    check(not os.listdir(env.state) if os.path.isdir(env.state) else True, "state left behind")


def case_refuse(env, lay):
    args = [a for a in lay["args"] if a not in lay["refuse_without"]]
    p = env.agent("configure", *args)
    check(p.returncode == 1, "configure should refuse: exit %d" % p.returncode)
    check(lay["refuse_message"] in p.stderr, "message: " + p.stderr.strip())
    same_tree(env.before, "after refusal")


def fake_sshd(env, script):
    d = os.path.join(env.tmp, "fakebin")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "sshd"), "w") as f:
        f.write("#!/bin/sh\n" + script)
    os.chmod(os.path.join(d, "sshd"), 0o755)
    return d


def case_sshd_t_fails(env, lay):
    d = fake_sshd(env, 'for a in "$@"; do [ "$a" = -t ] && { echo "fake sshd: /etc/ssh/'
                  'sshd_config line 3: Bad configuration option: Nonsense" >&2; exit 255; }; done\n'
                  'exec /usr/sbin/sshd "$@"\n')
    p = env.agent("configure", path=d)
    check(p.returncode == 1, "exit %d" % p.returncode)
    check("rejects the new configuration" in p.stderr and "Nonsense" in p.stderr,
          "message: " + p.stderr.strip())
    same_tree(env.before, "after sshd -t failure")
    check(not os.path.exists(os.path.join(env.state, "journal")), "journal left")


def case_sshd_T_overridden(env, lay):
    d = fake_sshd(env, 'case " $* " in *" -T "*) /usr/sbin/sshd "$@" | '
                  'sed "s/^authenticationmethods .*/authenticationmethods any/";; '
                  '*) exec /usr/sbin/sshd "$@";; esac\n')
    p = env.agent("configure", path=d)
    check(p.returncode == 1, "exit %d" % p.returncode)
    check("sshd -T: authenticationmethods" in p.stderr, "message: " + p.stderr.strip())
    same_tree(env.before, "after sshd -T mismatch")


def case_readonly(env, lay):
    sh("mount", "--bind", "/etc/pam.d/sshd", "/etc/pam.d/sshd")
    sh("mount", "-o", "remount,bind,ro", "/etc/pam.d/sshd")
    p = env.agent("configure")
    check(p.returncode == 1, "exit %d" % p.returncode)
    check("/etc/pam.d/sshd: cannot write" in p.stderr, "message: " + p.stderr.strip())
    same_tree(env.before, "after a read-only file")
    sh("umount", "/etc/pam.d/sshd")


def case_crash_configure(env, lay):
    keys = hostkeys_now()
    for n in range(1, 60):
        for then in ("unconfigure", "configure"):
            env.reset()
            p = env.agent("configure", *lay.get("args", []),
                          env={"PC_CONFIGURE_CRASH_AT": str(n)})
            if p.returncode == 0:
                check(n > 5, "configure finished after only %d steps: no test hooks?" % n)
                return "%d crash points" % (n - 1)
            check(p.returncode < 0 and "test hook: crash after step" in p.stderr,
                  "step %d: exit %d: %s" % (n, p.returncode, p.stderr.strip()))
            committed = os.path.exists(os.path.join(env.state, "manifest"))
            q = env.agent(then, *(lay.get("args", []) if then == "configure" else []))
            if committed and then == "configure":  # crashed after its commit: it is configured
                check(q.returncode == 1 and "already configured" in q.stderr,
                      "step %d: rerun after commit: %s" % (n, q.stderr.strip()))
            else:
                check(q.returncode == 0, "step %d, %s: exit %d: %s" % (n, then, q.returncode,
                                                                     q.stderr.strip()))
            if then == "configure":
                check_effective(keys)
                q = env.agent("unconfigure")
                check(q.returncode == 0, "step %d: unconfigure: %s" % (n, q.stderr.strip()))
            same_tree(env.before, "crash after step %d, then %s" % (n, then))
    raise Fail("configure never finished")


def case_crash_unconfigure(env, lay):
    for n in range(1, 40):
        env.reset()
        p = env.agent("configure", *lay.get("args", []))
        check(p.returncode == 0, "configure: %s" % p.stderr.strip())
        p = env.agent("unconfigure", env={"PC_CONFIGURE_CRASH_AT": str(n)})
        if p.returncode == 0:
            same_tree(env.before, "unconfigure")
            return "%d crash points" % (n - 1)
        check(p.returncode < 0, "step %d: exit %d: %s" % (n, p.returncode, p.stderr.strip()))
        q = env.agent("unconfigure")
        check(q.returncode == 0, "step %d: rerun: %s" % (n, q.stderr.strip()))
        same_tree(env.before, "unconfigure crashed after step %d, rerun" % n)
    raise Fail("unconfigure never finished")


def case_dry_run(env, lay):
    p = env.agent("configure", "--dry-run", *lay.get("args", []))
    check(p.returncode == 0, "exit %d: %s" % (p.returncode, p.stderr))
    check("+AuthenticationMethods publickey,keyboard-interactive:pam" in p.stdout and
          "+auth [success=done ignore=ignore default=die] pam_portcullis.so" in p.stdout,
          "diff: " + p.stdout[:500])
    same_tree(env.before, "after --dry-run")
    check(not os.path.exists(env.state), "dry run created the state directory")


def case_twice(env, lay):
    check(env.agent("configure").returncode == 0, "first configure failed")
    mid = tree_state()
    p = env.agent("configure")
    check(p.returncode == 1 and "already configured" in p.stderr, "second: " + p.stderr)
    same_tree(mid, "second configure")
    check(env.agent("unconfigure").returncode == 0, "unconfigure failed")
    p = env.agent("unconfigure")
    check(p.returncode == 0 and "nothing to undo" in p.stdout, "second unconfigure: " + p.stdout)
    same_tree(env.before, "after unconfigure")


def case_root(env, lay):
    """--root DIR: files below DIR; the agent validates in its own mount namespace."""
    root = os.path.join(env.tmp, "root")
    os.makedirs(os.path.join(root, "etc"))
    shutil.copytree("/etc/ssh", os.path.join(root, "etc", "ssh"), symlinks=True)
    shutil.copytree("/etc/pam.d", os.path.join(root, "etc", "pam.d"), symlinks=True)
    for extra in ("/etc/crypto-policies", "/etc/pam.d-vendor"):
        if os.path.isdir(extra):
            shutil.copytree(extra, root + extra, symlinks=True)
    # the real paths now hold something else: validation must not read them
    sh("mount", "-t", "tmpfs", "tmpfs", "/etc/ssh")
    if os.path.isdir("/etc/crypto-policies"):
        sh("mount", "-t", "tmpfs", "tmpfs", "/etc/crypto-policies")
    global TREES
    saved, TREES = TREES, tuple(root + t for t in TREES)
    try:
        before = tree_state()
        argv = [AGENT, "configure", "--root", root, "--agent-path", AGENT_PATH] + lay.get("args", [])
        p = subprocess.run(argv, capture_output=True, text=True)
        check(p.returncode == 0, "configure --root: %s" % p.stderr.strip())
        for link, target in lay.get("symlinks", {}).items():
            check(os.path.islink(root + link) and os.readlink(root + link) == target,
                  "%s is no longer a symlink to %s" % (root + link, target))
            t = target if not target.startswith("/") else root + target
            with open(os.path.join(os.path.dirname(root + link), t)) as f:
                check("pam_portcullis.so" in f.read(), "%s -> %s lacks our line" % (link, t))
        check("sshd not reloaded (--root)" in p.stdout, "stdout: " + p.stdout)
        check(os.path.exists(root + "/etc/ssh/sshd_config.d/00-portcullis.conf") or
              lay["mode"] == "block", "drop-in missing under root")
        manifests = [d for d, _, f in os.walk(root) if "manifest" in f]
        check(len(manifests) == 1 and manifests[0].endswith("/lib/portcullis/configure"),
              "state directory under root: %s" % manifests)
        p = subprocess.run([AGENT, "unconfigure", "--root", root], capture_output=True, text=True)
        check(p.returncode == 0, "unconfigure --root: %s" % p.stderr.strip())
        same_tree(before, "after unconfigure --root")
    finally:
        TREES = saved


def case_principals_helper(env, lay):
    """The principals command (issue 16): portcullis-principals beside the agent when it is
    there, root-owned and not group/world writable (as sshd demands); else the agent's own
    `principals`; --principals-path names another. Read from --dry-run's diff under --root."""
    root = os.path.join(env.tmp, "root")
    os.makedirs(os.path.join(root, "etc"))
    shutil.copytree("/etc/ssh", os.path.join(root, "etc", "ssh"), symlinks=True)
    shutil.copytree("/etc/pam.d", os.path.join(root, "etc", "pam.d"), symlinks=True)
    helper = root + os.path.dirname(AGENT_PATH) + "/portcullis-principals"
    os.makedirs(os.path.dirname(helper))
    with open(helper, "w") as f:
        f.write("#!/bin/sh\n")
    new = "+AuthorizedPrincipalsCommand %s/portcullis-principals %%u %%i %%s %%f" % (
        os.path.dirname(AGENT_PATH))
    old = "+AuthorizedPrincipalsCommand %s principals %%u %%i %%s %%f" % AGENT_PATH
    for mode, extra, want in ((0o755, [], new), (0o775, [], old), (0o757, [], old),
                              (0o644, [], old),
                              (0o775, ["--principals-path", "/opt/pc/helper"],
                               "+AuthorizedPrincipalsCommand /opt/pc/helper %u %i %s %f")):
        os.chmod(helper, mode)
        p = subprocess.run([AGENT, "configure", "--root", root, "--dry-run", "--agent-path",
                            AGENT_PATH] + extra, capture_output=True, text=True)
        lines = p.stdout.splitlines()
        check(p.returncode == 0 and want in lines,
              "helper mode %o %s: exit %d, want %r in:\n%s%s" % (mode, extra, p.returncode, want,
                                                                 p.stdout, p.stderr))
    p = subprocess.run([AGENT, "configure", "--root", root, "--dry-run", "--agent-path",
                        AGENT_PATH, "--principals-path", "relative/helper"],
                       capture_output=True, text=True)
    check(p.returncode == 2 and "--principals-path" in p.stderr,
          "a relative --principals-path: exit %d: %s" % (p.returncode, p.stderr))


def case_symlink_refused(env, lay):
    """A symlinked file configure cannot write through is refused, and nothing changes: a
    dangling link (configure never creates what a link merely names), a loop, and under --root a
    link that leads out of the root."""
    os.rename("/etc/pam.d/sshd", "/etc/pam.d/sshd.saved")
    for target, msg in (("sshd-missing", "which does not exist"),
                        ("sshd", "too many symlinks")):
        os.symlink(target, "/etc/pam.d/sshd")
        before = tree_state()
        p = env.agent("configure")
        check(p.returncode == 1 and msg in p.stderr,
              "link to %s: exit %d: %s" % (target, p.returncode, p.stderr.strip()))
        same_tree(before, "after refusing a link to %s" % target)
        os.remove("/etc/pam.d/sshd")
    os.rename("/etc/pam.d/sshd.saved", "/etc/pam.d/sshd")
    root = os.path.join(env.tmp, "root")
    os.makedirs(os.path.join(root, "etc"))
    shutil.copytree("/etc/ssh", os.path.join(root, "etc", "ssh"))
    shutil.copytree("/etc/pam.d", os.path.join(root, "etc", "pam.d"), symlinks=True)
    os.remove(root + "/etc/pam.d/sshd")
    os.symlink("../../../../../../../../etc/pam.d/login", root + "/etc/pam.d/sshd")
    with open("/etc/pam.d/login", "rb") as f:
        outside = f.read()
    p = subprocess.run([AGENT, "configure", "--root", root, "--agent-path", AGENT_PATH],
                       capture_output=True, text=True)
    check(p.returncode == 1 and "outside" in p.stderr,
          "link out of --root: exit %d: %s" % (p.returncode, p.stderr.strip()))
    with open("/etc/pam.d/login", "rb") as f:
        check(f.read() == outside, "configure --root wrote outside the root")


FAULTS = {
    "symlink-refused": case_symlink_refused,
    "sshd-t-fails": case_sshd_t_fails,
    "sshd-T-overridden": case_sshd_T_overridden,
    "readonly-file": case_readonly,
    "crash-configure": case_crash_configure,
    "crash-unconfigure": case_crash_unconfigure,
    "dry-run": case_dry_run,
    "twice": case_twice,
    "root": case_root,
    "principals-helper": case_principals_helper,
}


def cases():
    out = []
    for name in sorted(os.listdir(CORPUS)):
        lay = layout(name)
        out.append(("layout-" + name, name, "layout"))
        if "refuse_without" in lay:
            out.append(("refuse-" + name, name, "refuse"))
    for f in ("sshd-t-fails", "sshd-T-overridden", "readonly-file", "dry-run", "twice",
              "symlink-refused", "principals-helper"):
        out.append((f, "debian12", f))
    for name in ("debian12", "rhel9", "legacy-noinclude", "symlink-pam"):
        out.append(("crash-configure-" + name, name, "crash-configure"))
    out.append(("crash-unconfigure-debian12", "debian12", "crash-unconfigure"))
    out.append(("crash-unconfigure-symlink-pam", "symlink-pam", "crash-unconfigure"))
    for name in ("debian12", "rhel9", "legacy-noinclude", "symlink-pam"):
        out.append(("root-" + name, name, "root"))
    return out


def run_case(name, lay_name, kind, keys):
    """In the namespace: one case. Prints 'OK detail' or 'FAIL why'."""
    import resource
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # abort() of the crash hook: no core
    lay = layout(lay_name)
    env = Env(lay_name, keys)
    try:
        fn = {"layout": case_layout, "refuse": case_refuse}.get(kind) or FAULTS[kind]
        detail = fn(env, lay)
        print("OK " + (detail or ""))
    except Fail as e:
        print("FAIL " + str(e))
    finally:
        subprocess.run(["umount", "-R", "-l", "/etc"], capture_output=True)
        shutil.rmtree(env.tmp, ignore_errors=True)


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "--case":
        run_case(*sys.argv[2:])
        return 0
    if os.geteuid() != 0:
        print("needs root (mount namespaces)\n0 passed, 1 failed")
        return 1
    if not os.access(AGENT, os.X_OK):
        print("FAIL build: %s missing (set PC_BUILD_DIR)\n0 passed, 1 failed" % AGENT)
        return 1
    want = sys.argv[1:]
    # sshd -t/-T refuse to run without their privilege separation directory. On a machine where
    # openssh-server was just installed without a running systemd (a fresh container, CI) nothing
    # has created it yet; `portcullis-agent configure` creates it, but the checks below also run
    # sshd -T before and without configure.
    os.makedirs("/run/sshd", 0o755, exist_ok=True)
    keytmp = tempfile.mkdtemp(prefix="pc-configure-keys-")
    os.makedirs(os.path.join(keytmp, "etc", "ssh"))
    sh("ssh-keygen", "-q", "-A", "-f", keytmp)
    keys = os.path.join(keytmp, "etc", "ssh")
    passed = failed = 0
    for name, lay_name, kind in cases():
        if want and not any(w in name for w in want):
            continue
        p = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable,
                            os.path.abspath(__file__), "--case", name, lay_name, kind, keys],
                           capture_output=True, text=True, timeout=900)
        last = (p.stdout.strip().splitlines() or [""])[-1]
        if p.returncode == 0 and last.startswith("OK"):
            passed += 1
            print("PASS %s%s" % (name, (" (" + last[3:] + ")") if last[3:] else ""))
        else:
            failed += 1
            why = last[5:] if last.startswith("FAIL") else (p.stderr.strip()[-600:] or last)
            print("FAIL %s: %s" % (name, why))
        sys.stdout.flush()
    shutil.rmtree(keytmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
