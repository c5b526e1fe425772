# SPDX-License-Identifier: BSD-2-Clause
"""portcullisd's store flags (issue 12): --store URL (PostgreSQL; any other scheme refused),
--store-file FILE (the URL on its first line; refused unless a regular file closed to group and
others, the message naming the file), --migrate-only (migrate and exit, on SQLite and on
PostgreSQL, with no listener and no key written), --backup refused on PostgreSQL. The URL can
hold a password: it must appear in no message, no log line and (with --store-file) not in argv.
The PostgreSQL tests run on a throwaway cluster (tests/lib/pgserver.py), whatever
PC_TEST_STORE says."""
import os
import re
import sqlite3
import subprocess
import tempfile
import threading

import harness
from harness import Daemon

TEST_TIMEOUT = 180
PASSWORD = "Hunter2-Sekr3t"
KEY_FILES = ("tls.key", "tls.crt", "secrets.key", "ca_user.key", "ca_host.key", "admin.token")


def tmpdir():
    d = tempfile.mkdtemp(prefix="pc-store-")
    harness._TMP_ROOTS.append(d)
    return d


def run(*args, timeout=120):
    r = subprocess.run([harness.DAEMON_BIN] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def write_file(path, text, mode):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def assert_secret_free(*texts, url=None):
    for t in texts:
        assert PASSWORD not in t, "the password leaked: %r" % t
        if url:
            assert url not in t, "the URL leaked: %r" % t


def pg():
    try:
        return harness.pg_server()
    except Exception as e:   # pgserver.PgMissing, or a cluster that cannot start here
        raise harness.Skip("no PostgreSQL cluster: %s" % e)


def with_password(url):
    """url with a password (the test cluster trusts its socket: it is sent, never needed)."""
    return url.replace("postgresql:///", "postgresql://postgres:%s@/" % PASSWORD, 1)


def sqlite_version(data_dir):
    con = sqlite3.connect(os.path.join(data_dir, "portcullis.db"))
    try:
        return con.execute("SELECT MAX(version), COUNT(*) FROM schema_version").fetchone()
    finally:
        con.close()


def pg_version(srv, url):
    out = srv.psql("SELECT MAX(version) || ' ' || COUNT(*) FROM schema_version",
                   srv.dbname(url)).split()
    return int(out[0]), int(out[1])


_newest = []


def newest_version():
    """The schema version this portcullisd migrates to (from a fresh SQLite store)."""
    if not _newest:
        d = os.path.join(tmpdir(), "data")
        rc, out, err = run("--data-dir", d, "--migrate-only")
        assert rc == 0, (rc, out, err)
        _newest.append(sqlite_version(d)[0])
    return _newest[0]


# ---- --store ---------------------------------------------------------------------------------

def test_store_refuses_other_schemes_without_echoing_the_value():
    root = tmpdir()
    for bad in ("mysql://admin:%s@db.example/pc" % PASSWORD,
                "postgresq://admin:%s@db.example/pc" % PASSWORD,
                "sqlite:///var/lib/%s.db" % PASSWORD,
                "/var/lib/portcullis/%s.db" % PASSWORD,
                "postgresql://admin:%s@db.example/pc extra" % PASSWORD,
                "postgresql://admin:%s@db\n.example/pc" % PASSWORD,
                ""):
        d = os.path.join(root, "data")
        rc, out, err = run("--data-dir", d, "--listen", "127.0.0.1:1", "--store", bad)
        assert rc == 2, (bad, rc, out, err)
        assert "not a PostgreSQL URL" in err and "postgresql://" in err, err
        assert_secret_free(out, err)
        assert not os.path.exists(d), "refused at parse time, before anything is created"


def test_store_and_store_file_together_refused():
    root = tmpdir()
    f = write_file(os.path.join(root, "url"), "postgresql:///x?host=/nonexistent\n", 0o600)
    rc, out, err = run("--data-dir", os.path.join(root, "data"), "--migrate-only",
                       "--store", "postgresql:///y?host=/nonexistent", "--store-file", f)
    assert rc == 2 and "--store and --store-file" in err, (rc, err)


# ---- --store-file ----------------------------------------------------------------------------

def test_store_file_open_to_group_or_others_refused_naming_the_file():
    root = tmpdir()
    url = "postgresql://postgres:%s@/pc?host=/nonexistent" % PASSWORD
    for mode in (0o644, 0o640, 0o604, 0o620, 0o602, 0o660):
        f = write_file(os.path.join(root, "store-%o.url" % mode), url + "\n", mode)
        rc, out, err = run("--data-dir", os.path.join(root, "data"), "--migrate-only",
                           "--store-file", f)
        assert rc == 2, (oct(mode), rc, err)
        assert f in err and "group or others" in err and "chmod 600" in err, err
        assert_secret_free(out, err, url=url)
        assert not os.path.exists(os.path.join(root, "data"))


def test_store_file_missing_empty_or_not_regular_refused_naming_the_file():
    root = tmpdir()
    data = os.path.join(root, "data")
    missing = os.path.join(root, "no-such.url")
    rc, out, err = run("--data-dir", data, "--migrate-only", "--store-file", missing)
    assert rc == 2 and missing in err and "cannot open" in err, (rc, err)
    for text in ("", "\n", "   \t \r\n", "\npostgresql:///pc?host=/nonexistent\n"):
        f = write_file(os.path.join(root, "empty.url"), text, 0o600)
        rc, out, err = run("--data-dir", data, "--migrate-only", "--store-file", f)
        assert rc == 2 and f in err and "first line is empty" in err, (repr(text), rc, err)
    rc, out, err = run("--data-dir", data, "--migrate-only", "--store-file", root)
    assert rc == 2 and root in err and "not a regular file" in err, (rc, err)
    fifo = os.path.join(root, "fifo.url")
    os.mkfifo(fifo, 0o600)
    rc, out, err = run("--data-dir", data, "--migrate-only", "--store-file", fifo, timeout=20)
    assert rc == 2 and fifo in err and "not a regular file" in err, (rc, err)
    link = os.path.join(root, "link.url")
    os.symlink("/dev/null", link)
    rc, out, err = run("--data-dir", data, "--migrate-only", "--store-file", link)
    assert rc == 2 and link in err and "not a regular file" in err, (rc, err)
    assert not os.path.exists(data)


def test_store_file_with_another_scheme_refused_without_its_content():
    root = tmpdir()
    line = "mysql://admin:%s@db.example/pc" % PASSWORD
    f = write_file(os.path.join(root, "store.url"), line + "\nsecond line\n", 0o600)
    rc, out, err = run("--data-dir", os.path.join(root, "data"), "--migrate-only",
                       "--store-file", f)
    assert rc == 2 and f in err and "not a PostgreSQL URL" in err, (rc, err)
    assert_secret_free(out, err, url=line)


def test_unreachable_postgresql_fails_without_showing_the_url():
    root = tmpdir()
    url = "postgresql://postgres:%s@/pc?host=%s" % (PASSWORD, os.path.join(root, "nosock"))
    f = write_file(os.path.join(root, "store.url"), url + "  \n", 0o600)
    rc, out, err = run("--data-dir", os.path.join(root, "data"), "--migrate-only",
                       "--store-file", f)
    assert rc == 1 and "PostgreSQL: cannot connect" in err, (rc, out, err)
    assert_secret_free(out, err, url=url)
    # the other spelling of the scheme is a PostgreSQL URL too (it gets as far as connecting)
    short = url.replace("postgresql://", "postgres://", 1)
    rc, out, err = run("--data-dir", os.path.join(root, "data"), "--migrate-only",
                       "--store", short)
    assert rc == 1 and "PostgreSQL: cannot connect" in err, (rc, out, err)
    assert_secret_free(out, err, url=short)
    d = Daemon(data_dir=os.path.join(root, "data2"), args=["--store", url])
    d.start(wait=False)
    d.proc.wait(timeout=60)
    assert d.proc.returncode == 1, d.proc.returncode
    log = d.log()
    assert "cannot connect" in log, log
    assert_secret_free(log, url=url)


# ---- --migrate-only --------------------------------------------------------------------------

def test_migrate_only_on_sqlite_migrates_writes_no_key_and_exits():
    root = tmpdir()
    d = os.path.join(root, "data")
    rc, out, err = run("--data-dir", d, "--migrate-only")   # no --listen needed
    assert rc == 0, (rc, out, err)
    newest = sqlite_version(d)[0]
    assert newest >= 16, newest
    assert sqlite_version(d) == (newest, newest), "one row per step"
    assert ("store=sqlite schema migrated from version 0 to %d (%d steps)" % (newest, newest)
            in out), out
    assert "event=schema_migrated version=%d" % newest in err, err
    assert sorted(os.listdir(d)) == ["portcullis.db"] + sorted(
        f for f in os.listdir(d) if f.startswith("portcullis.db-")), os.listdir(d)
    assert harness.file_mode(d) == 0o700
    rc, out, err = run("--data-dir", d, "--migrate-only")
    assert rc == 0 and "schema version %d: already the newest, nothing to do" % newest in out, \
        (rc, out, err)
    assert sqlite_version(d) == (newest, newest)
    for f in KEY_FILES:
        assert not os.path.exists(os.path.join(d, f)), f
    # the migrated store serves a daemon
    if not harness.is_pg():
        dm = Daemon(data_dir=d).start()
        name, secret = dm.user_with_totp()
        dm.stop()
        assert "store=sqlite" in dm.log()


def test_migrate_only_refuses_a_newer_schema():
    d = os.path.join(tmpdir(), "data")
    rc, out, err = run("--data-dir", d, "--migrate-only")
    assert rc == 0, err
    newest = sqlite_version(d)[0]
    con = sqlite3.connect(os.path.join(d, "portcullis.db"))
    con.execute("INSERT INTO schema_version(version) VALUES (?)", (newest + 5,))
    con.commit()
    con.close()
    rc, out, err = run("--data-dir", d, "--migrate-only")
    assert rc == 1, (rc, out, err)
    assert "schema version %d is newer than this portcullisd (%d)" % (newest + 5, newest) in err


def test_migrate_only_goes_with_neither_backup_nor_print_pin():
    d = os.path.join(tmpdir(), "data")
    for extra in (["--print-pin"], ["--backup", os.path.join(tmpdir(), "b.db")]):
        rc, out, err = run("--data-dir", d, "--migrate-only", *extra)
        assert rc == 2 and "--migrate-only goes with neither" in err, (extra, rc, err)


# ---- PostgreSQL ------------------------------------------------------------------------------

def test_migrate_only_on_postgresql_then_a_daemon_serves_from_it():
    srv = pg()
    newest = newest_version()
    plain = srv.new_database()
    url = with_password(plain)
    root = tmpdir()
    f = write_file(os.path.join(root, "store.url"), url + " \n", 0o600)
    data = os.path.join(root, "data")
    rc, out, err = run("--data-dir", data, "--store-file", f, "--migrate-only")
    assert rc == 0, (rc, out, err)
    assert ("store=postgresql schema migrated from version 0 to %d (%d steps)" % (newest, newest)
            in out), out
    assert_secret_free(out, err, url=url)
    assert pg_version(srv, plain) == (newest, newest)
    assert not os.path.exists(data), "the data dir is not needed to migrate PostgreSQL"
    rc, out, err = run("--data-dir", data, "--store-file", f, "--migrate-only")
    assert rc == 0 and "store=postgresql schema version %d: already the newest" % newest in out
    assert pg_version(srv, plain) == (newest, newest)

    d = Daemon(data_dir=data, args=["--store-file", f]).start()
    with open("/proc/%d/cmdline" % d.pid, "rb") as c:
        assert PASSWORD.encode() not in c.read()
    _, host = d.enroll_host()
    name, secret = d.user_with_totp()
    b = d.login_totp(host, name, harness.totp_code(secret))
    assert b.get("result") == "allow", b
    st, b = d.submit_totp(host, d.begin_txid(host, name), harness.totp_code(secret))
    assert st == 200 and b.get("reason") == "replayed", (st, b)   # the step is spent in PostgreSQL
    d.stop()
    log = d.log()
    assert "store=postgresql" in log, log
    assert_secret_free(log, url=url)
    rows = srv.psql("SELECT COUNT(*) FROM users WHERE name = '%s'" % name, srv.dbname(plain))
    assert rows.strip() == "1", rows
    assert not os.path.exists(os.path.join(data, "portcullis.db")), "no SQLite file beside it"


def test_concurrent_migrate_only_on_postgresql_serialised_by_the_write_lock():
    """Several instances upgrading at once: the migration runs under the store's write lock
    (an advisory lock), so one migrates, the others find it done; no step runs twice."""
    srv = pg()
    newest = newest_version()
    url = srv.new_database()
    root = tmpdir()
    results = []

    def one(i):
        results.append(run("--data-dir", os.path.join(root, "d%d" % i), "--store", url,
                           "--migrate-only"))

    ts = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert [r[0] for r in results] == [0] * 4, results
    outs = [r[1] for r in results]
    assert sum("migrated from version 0 to %d" % newest in o for o in outs) == 1, outs
    assert sum("already the newest" in o for o in outs) == 3, outs
    assert pg_version(srv, url) == (newest, newest)


def test_backup_refused_on_postgresql_pointing_to_pg_dump():
    root = tmpdir()
    url = "postgresql://postgres:%s@/pc?host=/nonexistent" % PASSWORD
    f = write_file(os.path.join(root, "store.url"), url, 0o600)
    backup = os.path.join(root, "b.db")
    for store in (["--store-file", f], ["--store", url]):
        rc, out, err = run("--data-dir", os.path.join(root, "data"), "--backup", backup, *store)
        assert rc == 2 and "pg_dump" in err and "docs/HA.md" in err, (rc, err)
        assert_secret_free(out, err, url=url)
        assert not os.path.exists(backup)


def test_help_lists_the_store_flags():
    rc, out, err = run("--help")
    assert rc == 0
    for flag in ("--store URL", "--store-file FILE", "--migrate-only"):
        assert flag in out, flag
    assert re.search(r"--store-file FILE\s+the --store URL", out), out


def test_sql_layer_unit_tests_on_postgresql():
    """tests/unit/test_sql_pg (skipped by make check without a server) on a fresh database."""
    srv = pg()
    exe = os.path.join(harness.BUILD_DIR, "tests", "unit", "test_sql_pg")
    if not os.path.exists(exe):
        subprocess.run(["make", "-C", harness.BUILD_DIR, "tests/unit/test_sql_pg"],
                       capture_output=True, timeout=300)
    assert os.path.exists(exe), "not built: %s (make check TESTS=)" % exe
    env = dict(os.environ, PC_TEST_PG_URL=srv.new_database())
    r = subprocess.run([exe], env=env, capture_output=True, timeout=120)
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode == 0, out
    assert "[  PASSED  ] 7 test(s)." in out and "SKIPPED" not in out, out
