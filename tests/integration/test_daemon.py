# SPDX-License-Identifier: BSD-2-Clause
"""portcullisd as a process: files on first start, reuse on restart, pin, schema, signals,
bad command lines."""
import os
import re
import signal
import sqlite3
import stat
import subprocess
import time

import harness
from harness import Daemon, DAEMON_BIN

D = None


def setup_module():
    global D
    D = Daemon().start()


def teardown_module():
    if D:
        D.kill()


def _ro(db_path):
    return sqlite3.connect("file:%s?mode=ro" % db_path, uri=True, timeout=10)


def test_first_start_creates_files_with_modes():
    d = D
    assert os.path.isdir(d.data_dir)
    assert harness.file_mode(d.data_dir) == 0o700, "data dir mode %o" % harness.file_mode(d.data_dir)
    for name in ("tls.key", "tls.crt", "master.key", "admin.token"):
        assert os.path.isfile(d.path(name)), "%s not created" % name
    if harness.is_pg():     # the store is the PostgreSQL database: no SQLite file beside it
        assert not os.path.exists(d.db_path), "portcullis.db created with --store-file"
    else:
        assert os.path.isfile(d.db_path), "portcullis.db not created"
    for name in ("tls.key", "master.key", "admin.token"):
        m = harness.file_mode(d.path(name))
        assert m == 0o600, "%s has mode %o, want 600" % (name, m)
    # the database must not be readable by others either
    if not harness.is_pg():
        m = harness.file_mode(d.db_path)
        assert m & 0o077 == 0, "portcullis.db has mode %o (group/other bits set)" % m
    assert os.path.getsize(d.path("master.key")) == 32, "master.key is not 32 bytes"
    with open(d.path("admin.token")) as f:
        tok = f.read()
    assert re.fullmatch(r"[0-9a-f]{64}\n?", tok), "admin.token is not 64 hex chars: %r" % tok
    with open(d.path("tls.crt")) as f:
        assert "BEGIN CERTIFICATE" in f.read()
    with open(d.path("tls.key")) as f:
        assert "PRIVATE KEY" in f.read()
    st, b = d.api("GET", "/v1/health")
    assert st == 200 and b.get("status") == "ok" and isinstance(b.get("version"), str), (st, b)


def test_print_pin_matches_served_certificate():
    pin = D.print_pin()
    assert re.fullmatch(r"sha256//[A-Za-z0-9+/]{43}=", pin), "bad --print-pin output %r" % pin
    served = harness.spki_pin_from_der(D.served_cert_der())
    assert pin == served, "--print-pin %s != pin of served certificate %s" % (pin, served)
    on_disk = harness.spki_pin_from_der(D.cert_der())
    assert on_disk == served, "tls.crt on disk is not the served certificate"
    st, b = D.admin("GET", "/v1/info")
    assert st == 200 and b.get("pin") == pin, "GET /v1/info → %s %r (want pin %s)" % (st, b, pin)


def test_schema_version_table_and_wal():
    if harness.is_pg():
        versions = [r[0] for r in harness.db_query(D, "SELECT version FROM schema_version")]
        assert versions, "schema_version is empty"
        tables = [r[0] for r in harness.db_query(
            D, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")]
        assert "audit" in tables, "no audit table: %r" % tables
        # durability: the test cluster runs with synchronous_commit = off (tests/lib/pgserver.py),
        # under which the server would acknowledge commits it can lose; the daemon's sessions
        # set it on (the counterpart of SQLite's WAL with synchronous=FULL, checked below)
        assert "event=store_synchronous_commit store=postgresql set=on" in D.log(), D.log()
        return
    con = _ro(D.db_path)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type='table'")]
        vt = [t for t in tables if "version" in t.lower()]
        assert vt, "no version table in schema; tables: %r" % tables
        rows = con.execute('SELECT * FROM "%s"' % vt[0]).fetchall()
        assert rows, "version table %s is empty" % vt[0]
        mode = con.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode.lower() == "wal", "journal_mode is %r" % mode
        assert any("audit" in t.lower() for t in tables), "no audit table: %r" % tables
    finally:
        con.close()


def test_second_start_reuses_key_cert_token():
    d = Daemon().start()
    try:
        files = {}
        for name in ("tls.key", "tls.crt", "master.key", "admin.token"):
            with open(d.path(name), "rb") as f:
                files[name] = f.read()
        pin1 = harness.spki_pin_from_der(d.served_cert_der())
        tok1 = d.admin_token
        d.create_user("keepme")
        rc = d.stop()
        assert rc == 0, "SIGTERM exit status %r; log:\n%s" % (rc, d.log())
        d.start()
        for name, content in files.items():
            with open(d.path(name), "rb") as f:
                assert f.read() == content, "%s changed across restart" % name
        pin2 = harness.spki_pin_from_der(d.served_cert_der())
        assert pin1 == pin2, "served pin changed across restart"
        assert d.print_pin() == pin1
        d._admin_token = None
        assert d.admin_token == tok1
        st, b = d.admin("GET", "/v1/users/keepme")
        assert st == 200 and b.get("name") == "keepme", "admin token not accepted after restart: %s %r" % (st, b)
    finally:
        d.kill()


def test_master_key_older_name_secrets_key_still_works_and_master_key_wins():
    """A data directory from before the rename has secrets.key: it keeps working (the VAPID key
    sealed with it opens, so the daemon starts) and no master.key is made beside it. When both
    exist, master.key is the one used: a wrong master.key refuses to start even beside the right
    secrets.key, and a wrong secrets.key beside the right master.key is ignored."""
    d = Daemon().start()
    try:
        d.create_user("legacy")
        assert d.stop() == 0
        os.rename(d.path("master.key"), d.path("secrets.key"))
        d.start()
        assert not os.path.exists(d.path("master.key")), "a new master.key was made"
        st, b = d.admin("GET", "/v1/users/legacy")
        assert st == 200, (st, b)
        assert d.stop() == 0
        right = open(d.path("secrets.key"), "rb").read()
        for name, data in (("master.key", os.urandom(32)),):
            with open(d.path(name), "wb") as f:
                f.write(data)
            os.chmod(d.path(name), 0o600)
        rc, out, err = _run_bad(["--data-dir", d.data_dir, "--listen", "127.0.0.1:%d" % d.port]
                                + d.store_args(), timeout=30)
        assert rc != 0, "started with a wrong master.key beside the right secrets.key"
        assert d.path("master.key") in err or "master key" in err, err
        with open(d.path("master.key"), "wb") as f:
            f.write(right)
        with open(d.path("secrets.key"), "wb") as f:
            f.write(os.urandom(32))
        d.start()
        st, b = d.admin("GET", "/v1/users/legacy")
        assert st == 200, (st, b)
    finally:
        d.kill()


def test_sigterm_clean_exit_and_data_survives():
    d = Daemon().start()
    try:
        name = d.create_user(groups=["wheel"])
        host_id, host_tok = d.enroll_host(labels={"env": "test"})
        rc = d.stop(signal.SIGTERM)
        assert rc == 0, "exit status after SIGTERM is %r; log:\n%s" % (rc, d.log())
        d.start()
        u = d.get_user(name)
        assert u["name"] == name and u["groups"] == ["wheel"], u
        st, b = d.begin(host_tok, name)
        assert st == 200, "host token not valid after restart: %s %r" % (st, b)
        st, b = d.admin("GET", "/v1/hosts")
        assert st == 200 and any(h["host_id"] == host_id for h in b["hosts"]), b
        acts = [r["action"] for r in d.audit(user=name)]
        assert "user.add" in acts, "audit rows lost across restart: %r" % acts
    finally:
        d.kill()


def test_sigint_also_clean():
    d = Daemon().start()
    try:
        rc = d.stop(signal.SIGINT)
        assert rc == 0, "exit status after SIGINT is %r; log:\n%s" % (rc, d.log())
    finally:
        d.kill()


def _run_bad(args, timeout=20):
    r = subprocess.run([DAEMON_BIN] + args, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def test_bad_listen_value_rejected():
    tmp = os.path.join(D.root, "badlisten")
    for bad in ("127.0.0.1:99999", "127.0.0.1", "127.0.0.1:abc", "127.0.0.1:0x50"):
        rc, out, err = _run_bad(["--data-dir", tmp, "--listen", bad])
        assert rc != 0, "--listen %r accepted (rc 0)" % bad
        assert "listen" in err.lower() or bad in err, \
            "--listen %r: stderr does not name the option or value: %r" % (bad, err)


def test_bad_options_rejected():
    tmp = os.path.join(D.root, "badopts")
    port = harness.free_port()
    listen = "127.0.0.1:%d" % port
    cases = [
        (["--totp-window", "-1"], "totp-window"),
        (["--totp-window", "x"], "totp-window"),
        (["--push-ttl", "5y"], "push-ttl"),
        (["--lockout-threshold", "abc"], "lockout-threshold"),
        (["--lockout-base", "1w"], "lockout-base"),
        (["--log-level", "loud"], "log-level"),
        (["--no-such-option"], "no-such-option"),
    ]
    failures = []
    for extra, word in cases:
        rc, out, err = _run_bad(["--data-dir", tmp, "--listen", listen] + extra)
        if rc == 0:
            failures.append("%r accepted (rc 0)" % extra)
        elif word not in err:
            failures.append("%r: stderr does not name %s: %r" % (extra, word, err))
    # the option name, not only the value, for --listen too
    rc, out, err = _run_bad(["--data-dir", tmp, "--listen", "127.0.0.1:99999"])
    if rc == 0 or "listen" not in err:
        failures.append("--listen 127.0.0.1:99999: rc %d, stderr does not name --listen: %r"
                        % (rc, err))
    assert not failures, "\n".join(failures)
    rc, out, err = _run_bad(["--listen", listen])
    assert rc != 0, "missing --data-dir accepted"
    assert "data-dir" in err, "missing --data-dir: message does not name it: %r" % err


def test_port_in_use_fails():
    # D is listening on its port: a second daemon on the same port must fail, not hang.
    tmp = os.path.join(D.root, "busyport")
    rc, out, err = _run_bad(["--data-dir", tmp, "--listen", "127.0.0.1:%d" % D.port], timeout=30)
    assert rc != 0, "second daemon on a busy port exited 0"
    assert err.strip(), "no message on stderr for a busy port"


def test_refuses_world_readable_secret():
    d = Daemon().start()
    try:
        assert d.stop() == 0
        os.chmod(d.path("master.key"), 0o644)
        rc, out, err = _run_bad(["--data-dir", d.data_dir, "--listen", "127.0.0.1:%d" % d.port],
                                timeout=30)
        assert rc != 0, "started with a 0644 master.key"
        assert "master.key" in err, "message does not name master.key: %r" % err
    finally:
        d.kill()
