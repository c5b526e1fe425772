# SPDX-License-Identifier: BSD-2-Clause
"""Several portcullisd on one PostgreSQL database (issue 12, item 2). The instances share only
the database (--store-file) and a copy of the first one's DIR/master.key; each has its own data
directory. The TLS key (one pin), the CA keys and the admin token are sealed in the database by
the first instance and loaded by the others. A push created via A, long-polled on B and approved
on C wakes the waiter within 1 s (LISTEN/NOTIFY; the bound is the issue's), also after B's
listening connection was killed. The same right TOTP code sent to two instances at once gives
exactly one allow. A CA rotation started on one instance is seen by the others, and finished on
another. A wrong master key refuses to start, names the file and writes nothing. An existing
SQLite data directory moving to PostgreSQL keeps its pin and CA.

Always on PostgreSQL (tests/lib/pgserver.py), whatever PC_TEST_STORE says; skipped, with the
reason, only when PostgreSQL is not installed."""
import os
import shutil
import subprocess
import threading
import time

import harness
from harness import Daemon

TEST_TIMEOUT = 240
SRV = None
ROOT = None


def setup_module():
    global SRV, ROOT
    try:
        SRV = harness.pg_server()
    except Exception as e:  # pgserver.PgMissing, imported inside harness
        if type(e).__name__ == "PgMissing":
            raise harness.Skip(str(e))
        raise
    import tempfile
    ROOT = tempfile.mkdtemp(prefix="pc-multi-")
    harness._TMP_ROOTS.append(ROOT)
    os.chmod(ROOT, 0o755)


class Instance(Daemon):
    """A portcullisd whose store is the given PostgreSQL database (not its data dir's own)."""

    def __init__(self, url, master=None, **kw):
        d = os.path.join(ROOT, harness.unique_name("inst"))
        os.mkdir(d, 0o700)
        data = os.path.join(d, "data")
        if master is not None:  # the admin copies the first instance's master key
            os.mkdir(data, 0o700)
            with open(os.path.join(data, "master.key"), "wb") as f:
                f.write(master)
            os.chmod(os.path.join(data, "master.key"), 0o600)
        super().__init__(data_dir=data, **kw)
        self.store_file = os.path.join(d, "store.url")
        harness._write_store_file(self.store_file, url)

    def store_args(self):
        return ["--store-file", self.store_file]

    def master(self):
        with open(self.path("master.key"), "rb") as f:
            return f.read()


def cluster(n, url=None, together=False):
    """n instances on one (new) database: the first makes the secrets, the others get a copy of
    its master key. together: the others start at the same moment (not after the first)."""
    url = url or SRV.new_database()
    a = Instance(url).start()
    rest = [Instance(url, master=a.master()) for _ in range(n - 1)]
    for d in rest:
        d.start(wait=not together)
    if together:
        for d in rest:
            d.wait_ready()
    return url, [a] + rest


def served_pin(d):
    return harness.spki_pin_from_der(d.served_cert_der())


def ca_keys(d, kind):
    st, b = d.api("GET", "/v1/ca/%s.pub" % kind)
    assert st == 200, (st, b)
    return [" ".join(k.split()[:2]) for k in b["public_keys"]]


def rows_of(url):
    """The database's rows (pg_dump --data-only without its per-run \\restrict token lines)."""
    return [l for l in SRV.dump(url).splitlines() if not l.startswith((b"\\restrict",
                                                                       b"\\unrestrict"))]


def kill_all(ds):
    for d in ds:
        d.kill()


def test_one_pin_one_ca_one_admin_token_on_every_instance():
    url, ds = cluster(3)
    try:
        pins = {served_pin(d) for d in ds}
        assert len(pins) == 1, "instances serve different TLS keys: %r" % pins
        assert ds[0].pin == served_pin(ds[2])
        for kind in ("user", "host"):
            keys = [ca_keys(d, kind) for d in ds]
            assert keys[0] == keys[1] == keys[2], "%s CA differs: %r" % (kind, keys)
        # --print-pin of a new instance (master key copied, never started) gives the same pin
        e = Instance(url, master=ds[0].master())
        r = subprocess.run([harness.DAEMON_BIN, "--data-dir", e.data_dir, "--print-pin"] +
                           e.store_args(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        assert r.returncode == 0 and r.stdout.decode().strip() == ds[0].pin, r
        toks = {d.admin_token for d in ds}
        assert len(toks) == 1, "each instance made its own admin token"
        # the first instance's admin token works on the third (its hash is in the database)
        st, b = ds[2].api("GET", "/v1/users", token=ds[0].admin_token)
        assert st == 200, (st, b)
        rows = SRV.psql_rows("SELECT name FROM server_secrets ORDER BY name", SRV.dbname(url))
        assert [r[0] for r in rows] == ["admin.token", "ca_host.key", "ca_user.key", "tls.crt",
                                        "tls.key"], rows
        # sealed: no key or token in the clear in the database
        dump = SRV.dump(url)
        with open(ds[0].path("tls.key"), "rb") as f:
            tls_key = f.read()
        body = b"".join(l for l in tls_key.splitlines() if not l.startswith(b"-----"))
        assert body[:40] not in dump, "the TLS key is in the database in the clear"
        assert ds[0].admin_token.encode() not in dump, "the admin token is in the clear"
        assert ds[0].master() not in dump and ds[0].master().hex().encode() not in dump
    finally:
        kill_all(ds)


def test_instances_starting_at_the_same_moment_agree_on_one_key():
    for _ in range(3):
        url = SRV.new_database()
        a = Instance(url)
        a.start(wait=False)
        # the master key file is made at once; copy it before the first instance is up
        harness.wait_until(lambda: os.path.exists(a.path("master.key")), 10, what="master.key")
        time.sleep(0.05)
        rest = [Instance(url, master=a.master()) for _ in range(2)]
        for d in rest:
            d.start(wait=False)
        ds = [a] + rest
        try:
            for d in ds:
                d.wait_ready()
            pins = {served_pin(d) for d in ds}
            assert len(pins) == 1, pins
            for kind in ("user", "host"):
                assert len({tuple(ca_keys(d, kind)) for d in ds}) == 1, kind
            assert len({d.admin_token for d in ds}) == 1
        finally:
            kill_all(ds)


def test_host_enrolled_via_one_instance_logs_in_via_another():
    url, (a, b) = cluster(2)
    try:
        _, host = a.enroll_host()
        user, secret = a.user_with_totp()
        r = b.login_totp(host, user, harness.totp_code(secret))
        assert r["result"] == "allow", r
        st, h = b.api("GET", "/v1/health", token=host)
        assert st == 200, (st, h)
    finally:
        kill_all([a, b])


def wait_for_waiter(d, n=1, timeout=10):
    """Until d holds n long-polls (its /metrics gauge), so an approval cannot come first."""
    def held():
        st, parsed, _, raw = d.request("GET", "/metrics", token=d.admin_token)
        assert st == 200, (st, parsed)
        for line in raw.decode(errors="replace").splitlines():
            if line.startswith("portcullis_long_polls_held "):
                return float(line.split()[-1]) >= n
        raise AssertionError("no portcullis_long_polls_held in /metrics")
    harness.wait_until(held, timeout, what="a long-poll held")


def push_across(a, b, c, host, user):
    """Push via a, long-poll on b, approve on c; returns (seconds from approval to answer,
    the poll's reply)."""
    _, p = a.create_push(host, user)
    out = {}

    def poll():
        out["r"] = b.poll_push(host, p["push_id"], wait=25)
        out["t"] = time.monotonic()
    t = threading.Thread(target=poll)
    t.start()
    wait_for_waiter(b)
    t0 = time.monotonic()
    st, r = c.admin("POST", "/v1/approvals/%s/approve" % p["push_id"], {"match": p["match"]})
    assert st == 200 and r.get("state") == "approved", (st, r)
    t.join(30)
    assert "r" in out, "the long-poll on b did not answer"
    return out["t"] - t0, out["r"]


def test_push_created_on_a_polled_on_b_approved_on_c_wakes_within_1s():
    url, (a, b, c) = cluster(3)
    try:
        _, host = a.enroll_host()
        for _ in range(5):
            user = a.create_user(push=True)
            dt, (st, r) = push_across(a, b, c, host, user)
            assert st == 200 and r.get("state") == "approved", (st, r)
            assert dt < 1.0, "the waiter on b woke %.2f s after the approval on c" % dt
    finally:
        kill_all([a, b, c])


def listeners(url):
    return SRV.psql_rows("SELECT pid FROM pg_stat_activity WHERE application_name ="
                         " 'portcullisd-listen' AND datname = '%s'" % SRV.dbname(url), "postgres")


def test_wake_survives_a_killed_listen_connection():
    """The listening connection of every instance is terminated by the server: each reconnects
    (backoff from 0.1 s) and wakes its waiters once; a waiter listed while the connection was
    down still answers at once after the approval, and later pushes wake within 1 s again."""
    url, (a, b, c) = cluster(3)
    try:
        _, host = a.enroll_host()
        user = a.create_user(push=True)
        _, p = a.create_push(host, user)
        out = {}

        def poll():
            out["r"] = b.poll_push(host, p["push_id"], wait=25)
            out["t"] = time.monotonic()
        t = threading.Thread(target=poll)
        t.start()
        wait_for_waiter(b)
        before = listeners(url)
        assert len(before) == 3, before
        SRV.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name"
                 " = 'portcullisd-listen' AND datname = '%s'" % SRV.dbname(url))
        # the approval lands while (or right after) the listeners are gone
        t0 = time.monotonic()
        st, r = c.admin("POST", "/v1/approvals/%s/approve" % p["push_id"], {"match": p["match"]})
        assert st == 200 and r.get("state") == "approved", (st, r)
        t.join(30)
        assert out["r"][0] == 200 and out["r"][1].get("state") == "approved", out
        assert out["t"] - t0 < 3.0, "the waiter was not woken after the reconnect"
        harness.wait_until(lambda: len(listeners(url)) == 3, 15, what="listeners back")
        assert {r[0] for r in listeners(url)}.isdisjoint({r[0] for r in before})
        assert "event=notify_reconnected" in b.log(), b.log()[-3000:]
        user2 = a.create_user(push=True)
        dt, (st, r) = push_across(a, b, c, host, user2)
        assert st == 200 and r.get("state") == "approved", (st, r)
        assert dt < 1.0, "after the reconnect the waiter woke %.2f s after the approval" % dt
    finally:
        kill_all([a, b, c])


def test_first_write_while_the_database_refuses_connections_does_not_break_later_ones():
    """An instance's store writer opens its connection at its first write. If the database
    refused it then (a server restarting or failing over), that write fails, but once the
    database is back the next ones succeed: before, the writer kept its failed connection and
    every login answered 500 until portcullisd was restarted. The setup is written through a,
    so that b's first write is the login under test."""
    url, (a,) = cluster(1)
    b = Instance(url, master=a.master(), args=["--threads", "1"]).start()
    db = SRV.dbname(url)
    try:
        _, host = a.enroll_host()
        user, secret = a.user_with_totp()
        st, r = b.admin("GET", "/v1/users")       # b's one worker has its connection now
        assert st == 200, (st, r)
        SRV.psql("ALTER DATABASE \"%s\" ALLOW_CONNECTIONS false" % db)
        try:
            st, r = b.begin(host, user)
            assert st >= 500, "a write without a connection was answered %s: %r" % (st, r)
        finally:
            SRV.psql("ALTER DATABASE \"%s\" ALLOW_CONNECTIONS true" % db)
        r = b.login_totp(host, user, harness.totp_code(secret))
        assert r["result"] == "allow", r
    finally:
        kill_all([a, b])


def test_same_code_on_two_instances_at_once_exactly_one_allow():
    url, (a, b) = cluster(2)
    try:
        _, host = a.enroll_host()
        for _ in range(20):
            out = harness.same_code_on_two_at_once(a, b, host)
            assert out["a"][0] == 200 and out["b"][0] == 200, out
            verdicts = sorted([out["a"][1]["result"], out["b"][1]["result"]])
            assert verdicts == ["allow", "deny"], out
            assert "replayed" in (out["a"][1].get("reason"), out["b"][1].get("reason")), out
    finally:
        kill_all([a, b])


def test_ca_rotation_on_one_instance_is_seen_by_the_others():
    url, (a, b) = cluster(2)
    try:
        old = ca_keys(a, "user")
        st, r = a.admin("POST", "/v1/ca/user/rotate", {"overlap": 0})
        assert st == 200, (st, r)
        new = ca_keys(a, "user")
        assert len(new) == 2 and new[1] == old[0], new
        harness.wait_until(lambda: ca_keys(b, "user") == new, 5, what="b sees the rotation")
        # b signs with the new key and finishes the rotation; a follows
        st, r = b.admin("POST", "/v1/ca/user/finish", {"now": True})
        assert st == 200, (st, r)
        harness.wait_until(lambda: ca_keys(a, "user") == new[:1], 5, what="a sees the finish")
        assert ca_keys(b, "user") == new[:1]
        # a third instance started now loads the new key, and a restarted one keeps it
        c = Instance(url, master=a.master()).start()
        try:
            assert ca_keys(c, "user") == new[:1]
        finally:
            c.kill()
        a.stop()
        a.start()
        assert ca_keys(a, "user") == new[:1]
        assert not os.path.exists(a.path("ca_user.next.key"))
    finally:
        kill_all([a, b])


def test_rotations_begun_on_two_instances_at_once_give_one():
    """`ca rotate` on two instances at the same moment: the database holds one open rotation
    per CA (checked under the write lock), so exactly one answers 200 and the other 409
    rotation_in_progress, and both instances end with the same two keys."""
    url, (a, b) = cluster(2)
    try:
        for attempt in range(4):
            res = {}
            go = threading.Barrier(2)

            def rotate(d):
                go.wait()
                res[d] = d.admin("POST", "/v1/ca/user/rotate", {"overlap": 0})

            ts = [threading.Thread(target=rotate, args=(d,)) for d in (a, b)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(60)
            codes = sorted(st for st, _ in res.values())
            assert codes == [200, 409], "attempt %d: %r" % (attempt, res)
            assert all(r.get("error") == "rotation_in_progress" for st, r in res.values()
                       if st == 409), res
            harness.wait_until(lambda: ca_keys(a, "user") == ca_keys(b, "user"), 5,
                               what="both instances to agree on the keys")
            assert len(ca_keys(a, "user")) == 2, ca_keys(a, "user")
            st, r = a.admin("POST", "/v1/ca/user/finish", {"now": True})
            assert st == 200, (st, r)
            harness.wait_until(lambda: len(ca_keys(b, "user")) == 1, 5, what="b sees the finish")
    finally:
        kill_all([a, b])


def test_wrong_master_key_refuses_to_start_and_names_the_file():
    url, (a,) = cluster(1)
    try:
        before = rows_of(url)
        bad = Instance(url, master=os.urandom(32))
        r = subprocess.run(bad.command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        err = r.stderr.decode(errors="replace")
        assert r.returncode != 0, "started with a wrong master key: %s" % err
        assert bad.path("master.key") in err, "the message does not name the file: %r" % err
        assert "master key" in err, err
        for name in ("tls.key", "tls.crt", "ca_user.key", "ca_host.key", "admin.token"):
            assert not os.path.exists(bad.path(name)), "%s made with a wrong master key" % name
        assert rows_of(url) == before, "the database changed"
        # a master key of the wrong size is refused too, naming the file
        with open(bad.path("master.key"), "wb") as f:
            f.write(b"short")
        r = subprocess.run(bad.command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        assert r.returncode != 0 and bad.path("master.key") in r.stderr.decode(), r.stderr
    finally:
        a.kill()


def test_single_instance_moving_to_postgresql_keeps_pin_and_ca():
    """A data dir that ran on SQLite, started on an empty PostgreSQL database: its own files
    are imported (same pin, same CAs, same admin token); a second instance loads them."""
    d = os.path.join(ROOT, harness.unique_name("move"))
    os.mkdir(d, 0o700)
    old = Daemon(data_dir=os.path.join(d, "data"))
    old.store_args = lambda: []     # SQLite, whatever PC_TEST_STORE says
    old.start()
    pin, user_ca, host_ca, tok = old.pin, ca_keys(old, "user"), ca_keys(old, "host"), \
        old.admin_token
    old.stop()
    url = SRV.new_database()
    a = Instance(url)
    shutil.rmtree(a.data_dir, ignore_errors=True)
    shutil.copytree(old.data_dir, a.data_dir)
    a.start()
    b = Instance(url, master=a.master()).start()
    try:
        for x in (a, b):
            assert served_pin(x) == pin
            assert ca_keys(x, "user") == user_ca and ca_keys(x, "host") == host_ca
            assert x.admin_token == tok
    finally:
        kill_all([a, b])
