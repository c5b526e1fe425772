#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""Every program our scripts and tests run must be installed by scripts/install-deps.sh.

A fresh Debian 12 machine has the base image and whatever install-deps.sh installs; anything
else "works on my machine" only (the demo once needed oathtool, which nobody had listed).
This check reads the shell, expect and Python files under scripts/, tests/, setup-scripts/
and packaging/, collects the external commands they run (and the Python modules they import),
finds the file each one is on this machine, asks dpkg which package ships it, and fails unless
that package is in the list, is pulled in by a package of the list (Depends/Pre-Depends, since
install-deps.sh installs without Recommends), or is part of the base image (BASE below).

    scripts/check-deps.py [--packages "P1 P2 ..."] [-v]

--packages replaces the list read from `scripts/install-deps.sh --list` (the self-test uses it
to show that a missing entry fails). Output: one line per problem, naming the command, the
file and line that runs it, and the package to add; the last line is "N passed, N failed".
A command that is on no path here is not checked (it cannot be run here either, so a test
that needs it fails on its own); -v lists them.
"""
import ast
import os
import re
import subprocess
import sys

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIRS = ("scripts", "tests", "setup-scripts", "packaging", "bench")

# What the debian:12 base image always has (Priority: required and the essential set).
# Only these may be used without being listed; keep it short and say why each is here.
BASE = {
    "bash", "dash",                       # the shells themselves
    "coreutils", "findutils", "grep", "sed", "diffutils", "tar", "gzip", "mawk",
    "util-linux", "mount", "bsdutils",    # mount, unshare, nsenter, logger, flock, script
    "debianutils",                        # which, run-parts, mktemp's old home
    "hostname", "login", "passwd",        # hostname, su, useradd/userdel/groupadd
    "dpkg", "apt",                        # dpkg -S, dpkg-query, apt-get (install-deps.sh itself)
    "perl-base", "ncurses-bin", "sysvinit-utils", "libc-bin", "base-files", "base-passwd",
    "e2fsprogs", "init-system-helpers", "debconf",
}

# Commands a script only probes for (`command -v X`) or runs on another distribution:
# setup.sh installs with dnf/yum on RPM systems; they are never run on Debian.
NOT_ON_DEBIAN = {"dnf", "yum", "zypper", "rpm-ostree", "restorecon", "semanage", "firewall-cmd"}

SHELL_KEYWORDS = {
    "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "for", "in", "case",
    "esac", "select", "function", "time", "!", "{", "}", "[[", "]]", "coproc",
}
# Commands that run another command: the word after their options is a command too.
WRAPPERS = {"sudo", "env", "exec", "command", "nice", "nohup", "setsid", "timeout", "xargs",
            "unshare", "chroot", "runuser", "stdbuf", "ionice", "flock", "nsenter", "builtin"}
SYS_PATH = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
LOCAL_PATH = ["/usr/local/sbin", "/usr/local/bin"]
WORD = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]*$")


def bash_builtins():
    out = subprocess.run(["bash", "-c", "compgen -b; compgen -k"], capture_output=True, text=True)
    return set(out.stdout.split())


# ---------------------------------------------------------------------------------------------
# Finding the commands a file runs. Each finder yields (command, line number).

def shell_segments(text):
    """Splits shell text into simple commands: yields (words, line) for each.

    Quote-aware enough for our scripts: separators inside quotes do not split, except that
    $( ... ) and backquotes inside double quotes start commands of their own."""
    words, cur, line = [], "", 1
    stack = []          # quoting contexts: "'" or '"' or "$(" (a command inside double quotes)
    outer = []          # the words of the command a "$(" inside double quotes interrupted
    start_line = 1
    i, n = 0, len(text)

    def flush_word():
        nonlocal cur
        if cur != "":
            words.append(cur)
        cur = ""

    def flush_cmd():
        nonlocal words, start_line
        flush_word()
        if words:
            yield_list.append((words, start_line))
        words = []
        start_line = line

    yield_list = []
    while i < n:
        c = text[i]
        top = stack[-1] if stack else None
        if c == "\n":
            line += 1
        if top == "'":
            if c == "'":
                stack.pop()
            cur += c
            i += 1
            continue
        if top == '"':
            if c == "\\":
                cur += text[i:i + 2]
                i += 2
                continue
            if c == '"':
                stack.pop()
                cur += c
                i += 1
                continue
            if text.startswith("$(", i) and not text.startswith("$((", i):
                # a command substitution inside a string: its words are a command of their own
                saved_words, saved_cur = words, cur
                words, cur = [], ""
                stack.append("$(")
                outer.append((saved_words, saved_cur + "$"))
                i += 2
                continue
            cur += c
            i += 1
            continue
        # unquoted (top is None or "$(")
        if c == "\\" and i + 1 < n:
            if text[i + 1] == "\n":
                line += 1
                i += 2
                continue
            cur += text[i:i + 2]
            i += 2
            continue
        if c == "#" and cur == "":
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if c in "'\"":
            stack.append(c)
            cur += c
            i += 1
            continue
        if top == "$(" and c == ")":
            flush_cmd()
            stack.pop()
            words, cur = outer.pop()
            i += 1
            continue
        if text.startswith("$((", i):          # arithmetic: skip to the matching ))
            j = text.find("))", i)
            cur += text[i:(n if j < 0 else j + 2)]
            i = n if j < 0 else j + 2
            continue
        if text.startswith("$(", i) or text.startswith("${", i):
            if text[i + 1] == "{":             # a parameter expansion is part of a word
                j = text.find("}", i)
                cur += text[i:(n if j < 0 else j + 1)]
                i = n if j < 0 else j + 1
                continue
            flush_cmd()
            i += 2
            continue
        if c in ";|&()`\n":
            flush_cmd()
            i += 1
            continue
        if c in " \t":
            flush_word()
            i += 1
            continue
        if c in "<>":
            # a redirection: skip the operator and its target word
            flush_word()
            j = i
            while j < n and text[j] in "<>&|-0123456789":
                j += 1
            if text.startswith("<<", i):
                yield_list.append((["<<"] + [text[j:].split("\n", 1)[0].strip()], line))
            while j < n and text[j] in " \t":
                j += 1
            while j < n and text[j] not in " \t\n;|&()":
                j += 1
            i = j
            continue
        cur += c
        i += 1
    flush_cmd()
    return yield_list


def strip_heredocs(text):
    """Replaces the bodies of here-documents whose delimiter is quoted or whose command is
    cat/tee/printf (text, not commands) with blank lines, keeping line numbers."""
    out, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        ln = lines[i]
        out.append(ln)
        m = re.search(r"<<(-?)\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\2", ln)
        i += 1
        if not m or ln.lstrip().startswith("#"):
            continue
        delim, dash = m.group(3), m.group(1) == "-"
        while i < len(lines):
            body = lines[i].lstrip("\t") if dash else lines[i]
            if body == delim:
                break
            out.append("")
            i += 1
    return "\n".join(out)


def strip_quotes(w):
    if len(w) >= 2 and w[0] == w[-1] and w[0] in "'\"":
        return w[1:-1]
    return w


def commands_of_words(words):
    """The command words of one simple command: its first word after assignments, plus the
    command that a wrapper (sudo, env, timeout, …) runs."""
    out = []
    k = 0
    while k < len(words):
        w = strip_quotes(words[k])
        if re.match(r"^[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?\+?=", w):
            k += 1
            continue
        if w in SHELL_KEYWORDS:
            if w in ("for", "case", "select", "in", "function"):
                return out
            k += 1
            continue
        if w == "<<":
            return out
        out.append(w)
        base = os.path.basename(w)
        if base not in WRAPPERS:
            return out
        k += 1
        # skip the wrapper's options (and the argument of the ones that take one)
        while k < len(words):
            a = strip_quotes(words[k])
            if a == "--":
                k += 1
                break
            if base == "env" and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", a):
                k += 1
                continue
            if a.startswith("-"):
                k += 1
                if a in ("-n", "-u", "-g", "-s", "-k", "-c", "-C", "-t", "-o", "-e", "-i") \
                        and base in ("nice", "sudo", "runuser", "timeout", "xargs", "stdbuf",
                                     "ionice", "nsenter"):
                    k += 1
                continue
            if base == "timeout" and re.match(r"^[0-9.]+[smhd]?$", a):
                k += 1
                continue
            if base in ("chroot", "flock"):
                k += 1          # the directory or the lock file
                continue
            break
    return out


def shell_commands(text):
    text = strip_heredocs(text)
    for words, line in shell_segments(text):
        for w in commands_of_words(words):
            yield w, line


def expect_commands(text):
    for no, ln in enumerate(text.split("\n"), 1):
        for m in re.finditer(r"(?:^|[\[;{]\s*|\s)(?:spawn|exec)\s+((?:-\S+\s+)*)([^\s\]\"$]+)", ln):
            yield m.group(2), no


def python_commands(text, path):
    """First elements of list/tuple literals, shutil.which("x"), and "sh -c" strings."""
    try:
        tree = ast.parse(text, path)
    except SyntaxError as e:
        yield ("<syntax error: %s>" % e.msg), e.lineno or 0
        return
    for node in ast.walk(tree):
        if isinstance(node, (ast.List, ast.Tuple)) and node.elts:
            first = node.elts[0]
            # (all-capital words are data such as ["GET", "/v1/…"], not commands)
            if isinstance(first, ast.Constant) and isinstance(first.value, str) and \
                    not first.value.isupper():
                yield first.value, node.lineno
                # ["bash", "-c", "script"]: the script's commands too
                if os.path.basename(first.value) in ("sh", "bash") and len(node.elts) >= 3:
                    flag, script = node.elts[1], node.elts[2]
                    if isinstance(flag, ast.Constant) and flag.value == "-c" and \
                            isinstance(script, ast.Constant) and isinstance(script.value, str):
                        for w, _ in shell_commands(script.value):
                            yield w, node.lineno
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr == "which" and node.args and \
                isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            yield node.args[0].value, node.lineno


def python_imports(text, path):
    try:
        tree = ast.parse(text, path)
    except SyntaxError:
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name.split(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0], node.lineno


def kind_of(path, head):
    if path.endswith(".py") or head.startswith("#!") and "python" in head:
        return "python"
    if path.endswith(".exp") or head.startswith("#!") and "expect" in head:
        return "expect"
    if path.endswith(".sh") or head.startswith("#!") and re.search(r"\b(ba)?sh\b", head):
        return "shell"
    return None


def project_files():
    for d in DIRS:
        for root, dirs, files in os.walk(os.path.join(SRC, d)):
            dirs[:] = [x for x in dirs if x not in ("corpus", "__pycache__")]
            for f in sorted(files):
                p = os.path.join(root, f)
                try:
                    with open(p, encoding="utf-8") as fh:
                        text = fh.read()
                except (UnicodeDecodeError, OSError):
                    continue
                k = kind_of(p, text.split("\n", 1)[0])
                if k:
                    yield p, k, text


def sourced(name):
    """The texts of the project's shell files called name (what `. DIR/name` can load)."""
    out = []
    for d in DIRS:
        for root, _, files in os.walk(os.path.join(SRC, d)):
            if name in files:
                with open(os.path.join(root, name), encoding="utf-8", errors="replace") as fh:
                    out.append(fh.read())
    return out


# ---------------------------------------------------------------------------------------------
# Packages.

def listed_packages(override):
    if override is not None:
        return set(override.split())
    out = subprocess.run(["sh", os.path.join(SRC, "scripts/install-deps.sh"), "--list"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def installed_graph():
    """{package: [[alternative, ...], ...]} of hard dependencies, and {virtual: [providers]}."""
    fmt = "${Package}\t${db:Status-Abbrev}\t${Pre-Depends}\t${Depends}\t${Provides}\n"
    out = subprocess.run(["dpkg-query", "-W", "-f", fmt], capture_output=True, text=True).stdout
    deps, provides = {}, {}

    def names(field):
        groups = []
        for grp in filter(None, (g.strip() for g in field.split(","))):
            groups.append([re.sub(r"[\s(:].*", "", a.strip()) for a in grp.split("|")])
        return groups

    for ln in out.split("\n"):
        parts = ln.split("\t")
        if len(parts) < 5 or not parts[1].startswith("ii"):
            continue
        pkg = parts[0]
        deps[pkg] = names(parts[2]) + names(parts[3])
        for g in names(parts[4]):
            for v in g:
                provides.setdefault(v, []).append(pkg)
    return deps, provides


def closure(roots, deps, provides):
    """Packages that installing roots without Recommends brings: {package: the root that brings it}."""
    brought = {}
    todo = [(r, r) for r in sorted(roots)]
    while todo:
        pkg, root = todo.pop()
        cands = [pkg] if pkg in deps else provides.get(pkg, [])
        for c in cands:
            if c in brought:
                continue
            brought[c] = root
            for grp in deps.get(c, []):
                # an alternative: any installed one satisfies it; follow the first installed
                inst = [a for a in grp if a in deps or a in provides]
                if inst:
                    todo.append((inst[0], root))
    return brought


_OWNERS = None


def owners():
    """{path: package} from dpkg's file lists, read once (dpkg-query -S per path is slow)."""
    global _OWNERS
    if _OWNERS is None:
        _OWNERS = {}
        info = "/var/lib/dpkg/info"
        for f in os.listdir(info):
            if not f.endswith(".list"):
                continue
            pkg = f[:-5].split(":")[0]
            with open(os.path.join(info, f), encoding="utf-8", errors="replace") as fh:
                for ln in fh:
                    _OWNERS.setdefault(ln.rstrip("\n"), pkg)
    return _OWNERS


def package_of(path):
    """The package that ships path, trying the usr-merged twins too; None if none does."""
    cands = [path, os.path.realpath(path)]
    for p in list(cands):
        cands.append(p[4:] if p.startswith("/usr/") else "/usr" + p)
    own = owners()
    for p in cands:
        if p in own:
            return own[p]
    return None


def resolve(cmd):
    """(path, where) with where 'system' or 'local', or (None, None)."""
    if cmd.startswith("/"):
        return (cmd, "system") if os.access(cmd, os.X_OK) and not os.path.isdir(cmd) else (None, None)
    if not WORD.match(cmd):
        return None, None
    for where, dirs in (("system", SYS_PATH), ("local", LOCAL_PATH)):
        for d in dirs:
            p = os.path.join(d, cmd)
            if os.access(p, os.X_OK) and not os.path.isdir(p):
                return p, where
    return None, None


def main(argv):
    override, verbose = None, False
    i = 1
    while i < len(argv):
        if argv[i] == "--packages" and i + 1 < len(argv):
            override = argv[i + 1]
            i += 2
        elif argv[i] == "-v":
            verbose = True
            i += 1
        else:
            print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
            return 2
    listed = listed_packages(override)
    deps, provides = installed_graph()
    missing_listed = sorted(p for p in listed if p not in deps and p not in provides)
    allowed = closure(listed, deps, provides)
    base = closure(BASE, deps, provides)
    builtins = bash_builtins()
    stdlib = set(sys.stdlib_module_names)
    local_modules = set()
    for root, _, files in os.walk(SRC):
        local_modules.update(f[:-3] for f in files if f.endswith(".py"))

    uses = {}           # command -> [(file, line)]
    modules = {}        # module -> [(file, line)]
    for path, kind, text in project_files():
        rel = os.path.relpath(path, SRC)
        functions = set()   # a function shadows a command only in the file that defines it
        if kind == "shell":
            functions.update(re.findall(r"^\s*(?:function\s+)?([A-Za-z_][A-Za-z0-9_-]*)\s*\(\)",
                                        text, re.M))
            # functions of the files it sources (". DIR/x.sh", "source x.sh")
            for inc in re.findall(r"^\s*(?:\.|source)\s+\S*?([A-Za-z0-9_.-]+\.sh)\b", text, re.M):
                for other in sourced(inc):
                    functions.update(re.findall(
                        r"^\s*(?:function\s+)?([A-Za-z_][A-Za-z0-9_-]*)\s*\(\)", other, re.M))
            found = shell_commands(text)
        elif kind == "expect":
            functions.update(re.findall(r"^\s*proc\s+(\S+)", text, re.M))
            found = expect_commands(text)
        else:
            found = python_commands(text, path)
            for m, ln in python_imports(text, path):
                modules.setdefault(m, []).append((rel, ln))
        for cmd, ln in found:
            if cmd not in functions:
                uses.setdefault(cmd, []).append((rel, ln))

    passed = failed = 0
    unresolved = []
    pkg_cache = {}
    for cmd in sorted(uses):
        where_used = uses[cmd]
        at = "%s:%d" % where_used[0]
        if cmd in builtins or cmd in NOT_ON_DEBIAN or \
                cmd.startswith("portcullis") or cmd.startswith("pam_portcullis"):
            continue
        path, where = resolve(cmd)
        if path is None:
            if WORD.match(cmd) or cmd.startswith("/"):
                unresolved.append(cmd)
            continue
        if path not in pkg_cache:
            pkg_cache[path] = package_of(path)
        pkg = pkg_cache[path]
        if pkg is None:
            failed += 1
            print("FAIL %s (%s, run at %s): no Debian package ships it; a fresh machine does not "
                  "have it" % (cmd, path, at))
            continue
        if pkg in listed or pkg in base or pkg in allowed:
            passed += 1
            if verbose:
                how = "listed" if pkg in listed else "base image" if pkg in base \
                    else "brought by %s" % allowed[pkg]
                print("ok   %s: %s (%s)" % (cmd, pkg, how))
            continue
        failed += 1
        more = "" if len(where_used) == 1 else " (and %d more places)" % (len(where_used) - 1)
        print("FAIL command %s (run at %s%s) comes from package %s, which "
              "scripts/install-deps.sh does not install: add %s to its list"
              % (cmd, at, more, pkg, pkg))

    for mod in sorted(modules):
        if mod in stdlib or mod in local_modules or mod == "__future__":
            continue
        at = "%s:%d" % modules[mod][0]
        r = subprocess.run(["/usr/bin/python3", "-c",
                            "import %s, sys; print(getattr(%s, '__file__', '') or '')" % (mod, mod)],
                           capture_output=True, text=True)
        f = r.stdout.strip()
        pkg = package_of(f) if r.returncode == 0 and f else None
        if pkg and (pkg in allowed or pkg in base):
            passed += 1
            continue
        failed += 1
        print("FAIL python module %s (imported at %s) %s" % (
            mod, at, "comes from package %s: add it to scripts/install-deps.sh" % pkg if pkg
            else "is not in any Debian package installed here: use python3-* from Debian"))

    for p in missing_listed:
        print("note: listed package %s is not installed here (run scripts/install-deps.sh)" % p)
    if verbose and unresolved:
        print("not on this machine, not checked: " + " ".join(sorted(set(unresolved))))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
