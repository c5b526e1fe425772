# SPDX-License-Identifier: BSD-2-Clause
"""portcullisd --backup FILE (issue 12, item 5): a consistent copy of the store while the
daemon runs and writes (on PostgreSQL: pg_dump, restored into a new database; see
_pg_dump_restore_and_log_in) (logins go on during the backup); the file is 0600 and complete (SQLite
integrity check), an existing FILE is kept unless --force, errors name the file; a restore
(the backup as portcullis.db plus the key files of docs/HA.md in a new data dir) gives a
working control plane: the same pin, the admin token, the host tokens, and TOTP logins."""
import os
import shutil
import sqlite3
import stat
import subprocess
import tempfile
import threading

import harness
from harness import Daemon

TEST_TIMEOUT = 240
# what a restore copies besides the backup (docs/HA.md, "Backups and restore")
KEY_FILES = ("master.key", "tls.key", "tls.crt", "ca_user.key", "ca_host.key", "admin.token")


def backup(data_dir, path, *extra):
    r = subprocess.run([harness.DAEMON_BIN, "--data-dir", data_dir, "--backup", path] +
                       list(extra), capture_output=True, timeout=120)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def tmpdir():
    d = tempfile.mkdtemp(prefix="pc-backup-")
    harness._TMP_ROOTS.append(d)
    return d


def while_logins_run(d, host, what, action):
    """Runs action() while logins go on (begins, verifications, new users: writes): at least 3
    before it and 3 after it; asserts every login was allowed; returns action()'s result."""
    stop = threading.Event()
    done, errors = [], []

    def load():
        while not stop.is_set():
            try:
                u, s = d.user_with_totp()
                r = d.login_totp(host, u, harness.totp_code(s))
                (done if r["result"] == "allow" else errors).append(r)
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
    t = threading.Thread(target=load)
    t.start()
    try:
        harness.wait_until(lambda: len(done) >= 3, timeout=60, what="logins before the " + what)
        result = action()
        n_during = len(done)
        harness.wait_until(lambda: len(done) >= n_during + 3, timeout=60,
                           what="logins after the " + what)
    finally:
        stop.set()
        t.join(60)
    assert not errors, errors[:3]
    return result


def _pg_dump_restore_and_log_in():
    """PostgreSQL (docs/HA.md): pg_dump of the store while logins run, restored into a new,
    empty database; a new data dir holding only a copy of master.key and a store file for it
    gives a working control plane — the same pin and admin token (the TLS key and the token are
    in the database, sealed with the master key), the host tokens and the TOTP seeds."""
    srv = harness.pg_server()
    d = Daemon().start()
    _, host = d.enroll_host(hostname=harness.unique_name("bk"))
    users = [d.user_with_totp() for _ in range(5)]
    dump = os.path.join(tmpdir(), "pc.sql")
    out = while_logins_run(d, host, "dump", lambda: srv._run(
        [os.path.join(srv.bin, "pg_dump"), "--no-owner", "-h", srv.sock, "-U", "postgres",
         "-d", srv.dbname(harness.pg_url(d.data_dir))], "pg_dump"))
    with open(dump, "wb") as f:
        f.write(out)
    os.chmod(dump, 0o644)   # psql runs as the server's user
    url = srv.new_database()
    srv._run([os.path.join(srv.bin, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", srv.sock,
              "-U", "postgres", "-d", srv.dbname(url), "-f", dump], "psql restore")
    root = tmpdir()
    new = os.path.join(root, "restored")
    os.mkdir(new, 0o700)
    shutil.copy2(os.path.join(d.data_dir, "master.key"), os.path.join(new, "master.key"))
    store = os.path.join(root, "store.url")
    harness._write_store_file(store, url)
    old_pin, old_admin = d.pin, d.admin_token
    d.kill()
    r = Daemon(data_dir=new, args=["--store-file", store]).start()
    assert r.pin == old_pin
    assert r.admin_token == old_admin
    st, b = r.admin("GET", "/v1/users")
    assert st == 200, (st, b)
    assert {u for u, _ in users} <= {u["name"] for u in b["users"]}
    for u, s in users:
        assert r.login_totp(host, u, harness.totp_code(s))["result"] == "allow", u
    r.kill()


def test_backup_while_logins_run_then_restore_and_log_in():
    if harness.is_pg():
        return _pg_dump_restore_and_log_in()
    d = Daemon().start()
    _, host = d.enroll_host(hostname=harness.unique_name("bk"))
    users = [d.user_with_totp() for _ in range(5)]
    out = os.path.join(tmpdir(), "pc.backup")
    rc, _, err = while_logins_run(d, host, "backup", lambda: backup(d.data_dir, out))
    assert rc == 0, err
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600, oct(os.stat(out).st_mode)
    assert not [f for f in os.listdir(os.path.dirname(out)) if ".tmp-" in f]
    con = sqlite3.connect(out)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    con.close()
    # an existing file is kept without --force, replaced with it
    before = open(out, "rb").read()
    rc, _, err = backup(d.data_dir, out)
    assert rc == 1 and out in err and "--force" in err, (rc, err)
    assert open(out, "rb").read() == before
    rc, _, err = backup(d.data_dir, out, "--force")
    assert rc == 0, err
    # restore: a new data dir with the backup as portcullis.db and the key files
    new = os.path.join(tmpdir(), "restored")
    os.mkdir(new, 0o700)
    shutil.copy(out, os.path.join(new, "portcullis.db"))
    for f in KEY_FILES:
        shutil.copy2(os.path.join(d.data_dir, f), os.path.join(new, f))
    old_pin, old_admin = d.pin, d.admin_token
    d.kill()
    r = Daemon(data_dir=new).start()
    assert r.pin == old_pin
    assert r.admin_token == old_admin
    st, b = r.admin("GET", "/v1/users")
    assert st == 200, (st, b)
    names = {u["name"] for u in b["users"]}
    assert {u for u, _ in users} <= names
    for u, s in users:   # created before the backup: the host token and the seeds still work
        assert r.login_totp(host, u, harness.totp_code(s))["result"] == "allow", u
    r.kill()


class _SqliteDir:
    """A data dir with a SQLite store made by `portcullisd --migrate-only` (no --store): what
    --backup copies, also in a run whose daemons use PostgreSQL (where --backup is refused:
    test_store_flags.test_backup_refused_on_postgresql_pointing_to_pg_dump)."""
    def __init__(self):
        self.data_dir = os.path.join(tmpdir(), "data")
        r = subprocess.run([harness.DAEMON_BIN, "--data-dir", self.data_dir, "--migrate-only"],
                           capture_output=True, timeout=120)
        assert r.returncode == 0, r.stderr

    def kill(self):
        pass


def test_backup_errors_name_the_file():
    d = _SqliteDir() if harness.is_pg() else Daemon().start()
    root = tmpdir()
    missing_dir = os.path.join(root, "no", "such", "dir", "b.db")
    rc, _, err = backup(d.data_dir, missing_dir)
    assert rc == 1 and missing_dir in err, (rc, err)
    empty = os.path.join(root, "empty")
    os.mkdir(empty)
    target = os.path.join(root, "x.db")
    rc, _, err = backup(empty, target)
    assert rc == 1 and os.path.join(empty, "portcullis.db") in err, (rc, err)
    assert not os.path.exists(target)
    # a directory in the way, even with --force: refused, named, nothing left behind
    os.mkdir(os.path.join(root, "adir"))
    rc, _, err = backup(d.data_dir, os.path.join(root, "adir"), "--force")
    assert rc == 1 and os.path.join(root, "adir") in err, (rc, err)
    assert not [f for f in os.listdir(root) if ".tmp-" in f], os.listdir(root)
    # usage: --force without --backup, --backup without a value
    r = subprocess.run([harness.DAEMON_BIN, "--data-dir", d.data_dir, "--force"],
                       capture_output=True, timeout=30)
    assert r.returncode == 2 and b"--force" in r.stderr, r
    r = subprocess.run([harness.DAEMON_BIN, "--data-dir", d.data_dir, "--backup"],
                       capture_output=True, timeout=30)
    assert r.returncode == 2 and b"--backup" in r.stderr, r
    d.kill()
