#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""Tests of scripts/check-deps.py: the parsers find the commands a script runs (and only those),
and a package missing from scripts/install-deps.sh's list fails the check, naming the command
and the package. Run by scripts/test.sh once (it needs no build).
Output: "PASS name" / "FAIL name: why" lines, then "N passed, N failed"."""
import importlib.util
import os
import subprocess
import sys

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHECK = os.path.join(SRC, "scripts", "check-deps.py")
spec = importlib.util.spec_from_file_location("check_deps", CHECK)
cd = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cd)

results = []


def case(fn):
    try:
        fn()
        results.append((fn.__name__, None))
    except AssertionError as e:
        results.append((fn.__name__, str(e) or "assertion failed"))
    return fn


def cmds(text):
    return [c for c, _ in cd.shell_commands(text)]


@case
def shell_finds_commands_in_pipes_lists_and_substitutions():
    got = cmds('a=$(oathtool --totp -b "$s" | tr -d x) && sudo -u demo ssh-keygen -q; echo "$(curl -s u)"\n')
    for want in ("oathtool", "tr", "sudo", "ssh-keygen", "echo", "curl"):
        assert want in got, "%s not found in %s" % (want, got)


@case
def shell_wrappers_reveal_the_command_they_run():
    got = cmds("timeout 5 nice -n 10 env A=1 expect x.exp\nnohup setsid wrk -t1 &\n")
    for want in ("timeout", "nice", "env", "expect", "nohup", "setsid", "wrk"):
        assert want in got, "%s not found in %s" % (want, got)


@case
def shell_ignores_comments_strings_heredocs_and_loop_words():
    text = ("# lintian is run elsewhere\n"
            "echo 'rpmlint; gdb' \"then valgrind\"\n"
            "for p in hyperfine wrk; do :; done\n"
            "cat <<EOF\nqemu-system-x86_64 is not run\nEOF\n"
            "case $x in\n  start|stop) true ;;\nesac\n")
    got = cmds(text)
    for bad in ("lintian", "rpmlint", "gdb", "valgrind", "hyperfine", "wrk", "qemu-system-x86_64"):
        assert bad not in got, "%s wrongly found in %s" % (bad, got)
    assert "echo" in got and "cat" in got and "true" in got, got


@case
def shell_line_numbers_point_at_the_call():
    found = list(cd.shell_commands("x=1\n\nif true; then\n  oathtool -b y\nfi\n"))
    assert ("oathtool", 4) in found, found


@case
def python_finds_argv_lists_shell_strings_and_which():
    src = ('import subprocess, shutil\n'
           'subprocess.run(["oathtool", "--totp"])\n'
           'p = ("ssh-keyscan", "-p", "1")\n'
           'subprocess.run(["bash", "-c", "sqlite3 db .dump | gzip"])\n'
           'shutil.which("wrk")\n'
           'req = ["GET", "/v1/health"]\n')
    got = [c for c, _ in cd.python_commands(src, "x.py")]
    for want in ("oathtool", "ssh-keyscan", "bash", "sqlite3", "gzip", "wrk"):
        assert want in got, "%s not found in %s" % (want, got)
    assert "GET" not in got, got


@case
def expect_finds_spawn_and_exec():
    got = [c for c, _ in cd.expect_commands("spawn -noecho ssh -p 1 x\nset c [exec oathtool --totp]\n")]
    assert got == ["ssh", "oathtool"], got


def run_check(packages):
    return subprocess.run(["/usr/bin/python3", CHECK, "--packages", packages],
                          capture_output=True, text=True)


LISTED = subprocess.run(["sh", os.path.join(SRC, "scripts/install-deps.sh"), "--list"],
                        capture_output=True, text=True, check=True).stdout.split()


@case
def the_tree_passes_with_the_real_list():
    p = run_check(" ".join(LISTED))
    assert p.returncode == 0, p.stdout[-2000:]
    assert p.stdout.strip().splitlines()[-1].endswith(" 0 failed"), p.stdout[-500:]


def fails_without(pkg, command):
    p = run_check(" ".join(x for x in LISTED if x != pkg))
    assert p.returncode != 0, "check passed with %s removed from the list" % pkg
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("FAIL command %s " % command)]
    assert line, "no FAIL line for %s: %s" % (command, p.stdout[-800:])
    assert "package %s" % pkg in line[0], line[0]


@case
def removing_oathtool_from_the_list_fails_naming_command_and_package():
    fails_without("oathtool", "oathtool")


@case
def removing_expect_from_the_list_fails():
    fails_without("expect", "expect")


@case
def removing_sudo_from_the_list_fails():
    fails_without("sudo", "sudo")


if __name__ == "__main__":
    failed = 0
    for name, why in results:
        print("PASS %s" % name if why is None else "FAIL %s: %s" % (name, why))
        failed += why is not None
    print("%d passed, %d failed" % (len(results) - failed, failed))
    sys.exit(1 if failed else 0)
