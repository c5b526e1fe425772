# SPDX-License-Identifier: BSD-2-Clause
"""Unauthenticated callers cannot fill the disk: refused enrolls and login starts are
aggregated per source address in the audit log and answered 429 past a limit (without touching
the store), other addresses and authenticated callers are unaffected, names are validated before
they are stored, and finished transactions, pushes, logins and expired sessions are pruned after
--retention while audit rows stay."""
import http.client
import json
import os
import secrets
import subprocess
import tempfile
import time

import harness
from harness import Daemon, totp_code, wait_until

D = None
HOST = None


def setup_module():
    global D, HOST
    D = Daemon().start()
    _, HOST = D.enroll_host(hostname="unauth-host")


def teardown_module():
    if D:
        D.kill()


def _post_from(d, source, path, body, token=None):
    """POST from a given loopback source address (127.0.0.0/8 all reach the daemon)."""
    conn = http.client.HTTPSConnection("127.0.0.1", d.port, timeout=30, context=d.ssl_context(),
                                       source_address=(source, 0))
    hdrs = {"Host": "127.0.0.1:%d" % d.port, "Content-Type": "application/json"}
    if token:
        hdrs["Authorization"] = "Bearer %s" % token
    try:
        conn.request("POST", path, body=json.dumps(body).encode(), headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw.decode()) if raw else {}
    finally:
        conn.close()


def _bad_enroll(d, source):
    return _post_from(d, source, "/v1/enroll", {"token": secrets.token_hex(32), "hostname": "flood"})


def _rows(d, since, source=None, action=None):
    rows = d.audit(since=since, limit=100000)
    return [r for r in rows if (source is None or r["source"] == source) and
            (action is None or r["action"] == action)]


def test_enroll_flood_aggregated_and_throttled():
    since = int(time.time()) - 1
    src = "127.0.0.21"
    statuses = [_bad_enroll(D, src)[0] for _ in range(1000)]
    assert set(statuses) <= {401, 429}, "unexpected answers: %r" % sorted(set(statuses))
    assert statuses[0] == 401 and statuses[-1] == 429, "no 429 after the limit: %r" % statuses[-5:]
    first429 = statuses.index(429)
    assert all(s == 429 for s in statuses[first429:]), "401 after the first 429"
    st, b = _bad_enroll(D, src)
    assert st == 429 and b.get("error") == "too_many_requests", (st, b)
    rows = _rows(D, since, source=src)
    assert 1 <= len(rows) <= 6, "1000 refused enrolls wrote %d audit rows: %r" % (len(rows),
                                                                                  rows[:8])
    # another address is unaffected: refused, audited in full, not throttled
    other = "127.0.0.22"
    st, b = _bad_enroll(D, other)
    assert st == 401 and b.get("error") == "unauthorized", (st, b)
    orow = _rows(D, since, source=other, action="host.enroll")
    assert orow and orow[0]["result"] == "deny" and orow[0]["reason"] == "bad_token", orow
    # a good enroll token from another address still works
    tok = D.create_token(hostname="after-flood")
    st, b = _post_from(D, other, "/v1/enroll", {"token": tok, "hostname": "after-flood"})
    assert st == 200 and len(b.get("host_token", "")) == 64, (st, b)
    # a host's authenticated calls from the throttled address are unaffected
    st, b = _post_from(D, src, "/v1/auth/begin", {"user": "nobody_here"}, token=HOST)
    assert st == 200 and b.get("action") == "deny", (st, b)
    # so is the admin, from the throttled address
    st, b = _post_from(D, src, "/v1/tokens", {"ttl": 600, "hostname": "admin-from-src"},
                       token=D.admin_token)
    assert st == 201, (st, b)


def test_login_start_flood_aggregated():
    since = int(time.time()) - 1
    src = "127.0.0.23"
    pub = _keygen()
    statuses = [_post_from(D, src, "/v1/login/start",
                           {"user": "nosuch%d" % i, "public_key": pub})[0] for i in range(300)]
    assert statuses[0] == 401 and statuses[-1] == 429, (statuses[:3], statuses[-3:])
    rows = _rows(D, since, source=src)
    assert 1 <= len(rows) <= 6, "300 refused login starts wrote %d rows: %r" % (len(rows),
                                                                               rows[:8])


def test_refusal_summary_row_when_window_closes():
    d = Daemon(env={"PC_TEST_REFUSAL_WINDOW": "2"}).start()
    try:
        since = int(time.time()) - 1
        src = "127.0.0.24"
        statuses = [_bad_enroll(d, src)[0] for _ in range(30)]
        assert statuses[0] == 401, statuses

        def summary():
            return [r for r in _rows(d, since, source=src) if r["action"] == "refused.summary"]
        wait_until(lambda: summary(), timeout=15, what="summary row")
        rows = _rows(d, since, source=src)
        total = 0
        for r in rows:
            if r["action"] == "refused.summary":
                assert r["result"] == "deny" and r["actor"] == "system", r
                n = int(r["reason"].split(" ")[0])
                assert r["reason"] == "%d refused from %s in 2s" % (n, src), r
                total += n
            else:
                total += 1
        assert total == 30, "summary rows do not add up to 30 refusals: %r" % rows
        assert len(rows) <= 6 * 3, rows
    finally:
        d.kill()


def _keygen():
    tmp = tempfile.mkdtemp(prefix="pc-unauth-key-")
    harness._TMP_ROOTS.append(tmp)  # a private key: removed at exit
    path = os.path.join(tmp, "k")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path], check=True,
                   stdin=subprocess.DEVNULL)
    with open(path + ".pub") as f:
        return " ".join(f.read().split()[:2])


def test_login_start_user_name_validated_before_stored():
    since = int(time.time()) - 1
    pub = _keygen()
    bad = "ev\u202eil"
    st, b = _post_from(D, "127.0.0.25", "/v1/login/start", {"user": bad, "public_key": pub})
    assert st == 400 and b.get("error") == "bad_field", (st, b)
    rows = _rows(D, since, source="127.0.0.25")
    assert rows == [], "an invalid user name reached the audit log: %r" % rows


# ---- retention -------------------------------------------------------------------------------

DAY = 86400


def test_retention_flag_help_and_bounds():
    rc = subprocess.run([harness.DAEMON_BIN, "--help"], capture_output=True, timeout=30)
    assert rc.returncode == 0 and b"--retention" in rc.stdout, rc.stdout
    for bad in ("0", "-1", "abc", "20y", "59s"):
        r = subprocess.run([harness.DAEMON_BIN, "--data-dir", "/nonexistent", "--listen",
                            "127.0.0.1:1", "--retention", bad], capture_output=True, timeout=30)
        assert r.returncode == 2 and b"--retention" in r.stderr, (bad, r.returncode, r.stderr)


def _count(d, table):
    return harness.db_query(d, "SELECT count(*) FROM %s" % table)[0][0]


def test_finished_rows_pruned_after_retention_audit_kept():
    d = Daemon(env={"PC_FAKE_NOW": "-%d" % (40 * DAY)}).start()
    try:
        past = time.time() - 40 * DAY
        _, host = d.enroll_host(hostname="old-host")
        name, secret = d.user_with_totp(push=True)
        # a finished (allowed) transaction
        st, b = d.begin(host, name)
        assert st == 200 and b.get("txid"), (st, b)
        st, b = d.submit_totp(host, b["txid"], totp_code(secret, t=past))
        assert st == 200 and b.get("result") == "allow", (st, b)
        # a denied push
        _, p = d.create_push(host, name)
        pid = p["push_id"]
        st, _ = d.admin("POST", "/v1/approvals/%s/deny" % pid, {})
        assert st == 200, st
        # a login start (expires unfinished)
        pub = _keygen()
        st, _ = d.admin("POST", "/v1/users/%s/keys" % name, {"public_key": pub})
        assert st == 201, st
        st, b = d.api("POST", "/v1/login/start", {"user": name, "public_key": pub})
        assert st == 200, (st, b)
        audit_before = _count(d, "audit")
        for t in ("transactions", "pushes", "logins"):
            assert _count(d, t) >= 1, t
        d.stop()
        # an expired session, 40 days old, and a live one
        now = int(time.time())
        harness.db_query(d, "INSERT INTO sessions(hash, user_name, created_at, expires_at)"
                         " VALUES (?,?,?,?)",
                         (secrets.token_hex(32), name, now - 40 * DAY, now - 40 * DAY + 3600))
        harness.db_query(d, "INSERT INTO sessions(hash, user_name, created_at, expires_at)"
                         " VALUES (?,?,?,?)", (secrets.token_hex(32), name, now, now + 3600))
        d.start(env={})
        # a fresh finished transaction: younger than the retention, kept
        st, b = d.begin(host, name)
        assert st == 200 and b.get("txid"), (st, b)
        fresh = b["txid"]
        wait_until(lambda: _count(d, "logins") == 0 and _count(d, "pushes") == 0 and
                   _count(d, "sessions") == 1, timeout=20, what="old rows pruned")
        txs = [r[0] for r in harness.db_query(d, "SELECT txid FROM transactions")]
        assert txs == [fresh], "transactions left: %r" % txs
        assert _count(d, "audit") >= audit_before, "audit rows were pruned"
        assert d.health() == 200
    finally:
        d.kill()


def test_full_address_table_never_throttles_a_new_address():
    """Refusals from more addresses than the table tracks (CP_REFUSAL_SLOTS, 4096) share one
    overflow slot. That slot bounds the audit rows, but it must never answer 429: otherwise an
    attacker with 4096 sources (one IPv6 /48 is 65,536 /64s) plus 100 more refusals would lock
    every new address out of enroll and login/start."""
    from concurrent.futures import ThreadPoolExecutor
    d = Daemon().start()
    try:
        # 4096 distinct sources fill the table, then 150 more distinct ones land in the shared slot
        sources = ["127.%d.%d.%d" % (40 + i // 65536, (i // 256) % 256, i % 256 or 1)
                   for i in range(4096 + 150)]
        with ThreadPoolExecutor(max_workers=8) as ex:
            statuses = list(ex.map(lambda s: _bad_enroll(d, s)[0], sources))
        assert set(statuses) == {401}, "refusals from distinct addresses: %r" % sorted(set(statuses))
        fresh = "127.99.0.7"
        st, b = _bad_enroll(d, fresh)
        assert st == 401, "a new address after the table filled got %s %r (want 401)" % (st, b)
        tok = d.create_token(hostname="after-full-table")
        st, b = _post_from(d, fresh, "/v1/enroll", {"token": tok, "hostname": "after-full-table"})
        assert st == 200, (st, b)
    finally:
        d.kill()


def test_unknown_login_ids_never_wait_for_the_write_lock():
    """login/finish and GET /v1/login/{id} are open to anyone: for an id that does not exist they
    answer 404 from a plain read, without queueing for the store's write lock that hosts'
    logins need. Shown by holding that lock from outside: the answers are still 404 (they used to
    wait out the 10 s busy timeout and fail with 500)."""
    with harness.hold_write_lock(D):
        for _ in range(2):
            st, b = _post_from(D, "127.0.0.26", "/v1/login/finish",
                               {"login_id": secrets.token_hex(16), "code": "123456",
                                "signature": "-----BEGIN SSH SIGNATURE-----"})
            assert st == 404 and b.get("error") == "not_found", (st, b)
            st, b = D.api("GET", "/v1/login/%s" % secrets.token_hex(16))
            assert st == 404 and b.get("error") == "not_found", (st, b)
