#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""Runs the integration tests: every function test_* in tests/integration/test_*.py.

    python3 tests/integration/run.py [FILTER...]

A FILTER is a substring of "module.test_name" (e.g. "test_totp" or "replay"); with several,
a test runs if it matches any. A module may define setup_module() and teardown_module();
setup runs once before its first selected test, teardown after its last (a setup failure fails
every test of the module). A test skips itself with `raise harness.Skip("reason")`.

Output: one line per test, `PASS name`, `FAIL name` (traceback indented below) or
`SKIP name: reason`, then `N passed, N failed` (`, N skipped` when any skipped).
Exit status 0 iff nothing failed. Each test has a hard timeout (PC_TEST_TIMEOUT, default 120 s;
a module may set TEST_TIMEOUT to raise its own).

PC_TEST_JOBS=N runs N modules at a time, each in its own process (every test starts its own
daemons on their own ports and directories, and most of a test's time is waiting); a module's
lines are printed together when it ends. A module that measures the machine under load (the
starvation attack, memory of 10,000 long-polls) sets ALONE = True and runs after the others,
by itself.
"""
import importlib
import inspect
import os
import re
import signal
import subprocess
import sys
import time
import traceback
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402

DEFAULT_TIMEOUT = int(os.environ.get("PC_TEST_TIMEOUT", "120"))


class TestTimeout(BaseException):
    """Raised in the main thread by SIGALRM (BaseException so `except Exception` can't eat it)."""


def _on_alarm(signum, frame):
    raise TestTimeout("hard timeout: test ran longer than its limit")


def _indent(text):
    return "".join("    " + line + "\n" for line in text.rstrip("\n").splitlines())


def _call_with_timeout(fn, seconds):
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def discover():
    mods = sorted(f[:-3] for f in os.listdir(HERE)
                  if f.startswith("test_") and f.endswith(".py"))
    return mods


def tests_of(module):
    fns = [(name, obj) for name, obj in vars(module).items()
           if name.startswith("test_") and inspect.isfunction(obj)
           and obj.__module__ == module.__name__]
    fns.sort(key=lambda nf: nf[1].__code__.co_firstlineno)
    return fns


def _module_is_alone(modname):
    """ALONE = True at the top level of the module's source (read, not imported: the parent
    process stays free of every module's imports)."""
    with open(os.path.join(HERE, modname + ".py")) as f:
        return re.search(r"^ALONE = True\b", f.read(), re.M) is not None


def run_parallel(filters, jobs):
    """Each module in its own `run.py --module M FILTER...`, jobs at a time, then the ALONE ones
    one by one; prints each module's lines when it ends and the summed counts."""
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    mods = discover()
    if harness.is_pg():   # one PostgreSQL cluster for every module's process
        os.environ["PC_TEST_PG_ROOT"] = harness.pg_server().root
    shared = [m for m in mods if not _module_is_alone(m)]
    alone = [m for m in mods if m not in shared]
    pending = list(shared)
    running = []

    def start(m):
        cmd = [sys.executable, os.path.abspath(__file__), "--module=" + m] + filters
        return (m, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, text=True))

    def finish(m, proc):
        text, _ = proc.communicate()
        lines = text.rstrip("\n").splitlines()
        last = lines.pop() if lines else ""
        mt = re.match(r"(\d+) passed, (\d+) failed(?:, (\d+) skipped)?$", last)
        if lines:
            sys.stdout.write("\n".join(lines) + "\n")
        if not mt:
            lines.append(last)
            sys.stdout.write("FAIL %s (runner)\n    no result line; exit %s\n%s\n"
                             % (m, proc.returncode, _indent(last).rstrip("\n")))
            counts["failed"] += 1
        else:
            counts["passed"] += int(mt.group(1))
            counts["failed"] += int(mt.group(2))
            counts["skipped"] += int(mt.group(3) or 0)
        sys.stdout.flush()

    while pending or running:
        while pending and len(running) < jobs:
            running.append(start(pending.pop(0)))
        time.sleep(0.2)
        for item in list(running):
            if item[1].poll() is not None:
                running.remove(item)
                finish(*item)
    for m in alone:
        finish(*start(m))
    line = "%d passed, %d failed" % (counts["passed"], counts["failed"])
    if counts["skipped"]:
        line += ", %d skipped" % counts["skipped"]
    print(line)
    return 0 if counts["failed"] == 0 else 1


def main(argv):
    filters = [a for a in argv if not a.startswith("-")]
    only = [a.split("=", 1)[1] for a in argv if a.startswith("--module=")]
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    jobs = int(os.environ.get("PC_TEST_JOBS", "1") or "1")

    if jobs > 1 and not only:
        return run_parallel(filters, jobs)

    def out(line):
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    for modname in (only or discover()):
        try:
            module = importlib.import_module(modname)
        except BaseException:
            if not filters or any(f in modname for f in filters):
                out("FAIL %s (import)" % modname)
                out(_indent(traceback.format_exc()).rstrip("\n"))
                counts["failed"] += 1
            continue
        selected = [(n, f) for n, f in tests_of(module)
                    if not filters or any(flt in "%s.%s" % (modname, n) for flt in filters)]
        if not selected:
            continue
        timeout = getattr(module, "TEST_TIMEOUT", DEFAULT_TIMEOUT)
        setup_error = None
        setup = getattr(module, "setup_module", None)
        if setup:
            try:
                _call_with_timeout(setup, max(timeout, 120))
            except harness.Skip as e:
                for n, _ in selected:
                    out("SKIP %s.%s: %s" % (modname, n, e))
                    counts["skipped"] += 1
                harness.cleanup_all()
                continue
            except BaseException:
                setup_error = traceback.format_exc()
        for name, fn in selected:
            full = "%s.%s" % (modname, name)
            if setup_error:
                out("FAIL %s" % full)
                out(_indent("setup_module failed:\n" + setup_error).rstrip("\n"))
                counts["failed"] += 1
                continue
            t0 = time.time()
            try:
                _call_with_timeout(fn, timeout)
            except (harness.Skip, unittest.SkipTest) as e:
                out("SKIP %s: %s" % (full, e))
                counts["skipped"] += 1
            except KeyboardInterrupt:
                raise
            except BaseException:
                out("FAIL %s" % full)
                out(_indent(traceback.format_exc()).rstrip("\n"))
                counts["failed"] += 1
            else:
                if os.environ.get("PC_TEST_VERBOSE"):
                    out("PASS %s (%.1fs)" % (full, time.time() - t0))
                else:
                    out("PASS %s" % full)
                counts["passed"] += 1
        teardown = getattr(module, "teardown_module", None)
        if teardown:
            try:
                _call_with_timeout(teardown, 60)
            except BaseException:
                out("FAIL %s.teardown_module" % modname)
                out(_indent(traceback.format_exc()).rstrip("\n"))
                counts["failed"] += 1
        harness.cleanup_all()

    line = "%d passed, %d failed" % (counts["passed"], counts["failed"])
    if counts["skipped"]:
        line += ", %d skipped" % counts["skipped"]
    out(line)
    return 0 if counts["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
