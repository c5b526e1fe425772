# SPDX-License-Identifier: BSD-2-Clause
"""The audit trail: append-only in the schema, not deletable through the API, a row for every
admin change, and no secrets in the daemon's log."""
import re
import sqlite3
import time

import harness
from harness import Daemon, totp_code, wrong_code

D = None


def setup_module():
    global D
    D = Daemon(log_level="debug").start()


def teardown_module():
    if D:
        D.kill()


def _audit_table(con):
    tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    cand = [t for t in tables if t.lower() == "audit"] or [t for t in tables if "audit" in t.lower()]
    assert cand, "no audit table: %r" % tables
    return cand[0]


def _audit_immutable_in_postgresql():
    """The same on PostgreSQL: no UPDATE, DELETE or TRUNCATE of audit rows from any session."""
    n = harness.db_query(D, "SELECT count(*) FROM audit")[0][0]
    assert n >= 2, "audit table has %d rows after two user adds" % n
    for sql in ("UPDATE audit SET action = 'tampered'",
                "UPDATE audit SET action = 'tampered' WHERE id = (SELECT max(id) FROM audit)",
                "DELETE FROM audit",
                "DELETE FROM audit WHERE id = (SELECT min(id) FROM audit)",
                "TRUNCATE audit"):
        try:
            harness.db_query(D, sql)
        except RuntimeError as e:
            assert "append-only" in str(e), (sql, str(e))
        else:
            raise AssertionError("audit table accepted: %s" % sql)
    n2 = harness.db_query(D, "SELECT count(*) FROM audit")[0][0]
    assert n2 == n, "rows changed: %d → %d" % (n, n2)
    events = {r[0] for r in harness.db_query(
        D, "SELECT event_manipulation FROM information_schema.triggers"
           " WHERE event_object_table = 'audit'")}
    assert {"UPDATE", "DELETE"} <= events, "missing UPDATE/DELETE triggers: %r" % events


def test_audit_rows_immutable_in_sqlite():
    D.create_user()
    D.create_user()
    if harness.is_pg():
        return _audit_immutable_in_postgresql()
    con = sqlite3.connect(D.db_path, timeout=30)
    try:
        t = _audit_table(con)
        n = con.execute('SELECT count(*) FROM "%s"' % t).fetchone()[0]
        assert n >= 2, "audit table has %d rows after two user adds" % n
        cols = [r[1] for r in con.execute('PRAGMA table_info("%s")' % t)]
        col = "action" if "action" in cols else [c for c in cols if c != "id"][0]
        for sql in ('UPDATE "%s" SET "%s" = \'tampered\'' % (t, col),
                    'UPDATE "%s" SET "%s" = \'tampered\' WHERE rowid = (SELECT max(rowid) FROM "%s")'
                    % (t, col, t),
                    'DELETE FROM "%s"' % t,
                    'DELETE FROM "%s" WHERE rowid = (SELECT min(rowid) FROM "%s")' % (t, t)):
            try:
                con.execute(sql)
                con.commit()
            except sqlite3.DatabaseError:
                con.rollback()
            else:
                raise AssertionError("audit table accepted: %s" % sql)
        n2 = con.execute('SELECT count(*) FROM "%s"' % t).fetchone()[0]
        assert n2 == n, "rows changed: %d → %d" % (n, n2)
        trig = con.execute("SELECT name, sql FROM sqlite_master WHERE type='trigger' AND tbl_name=?",
                           (t,)).fetchall()
        text = " ".join((s or "").upper() for _, s in trig)
        assert "UPDATE" in text and "DELETE" in text, "missing UPDATE/DELETE triggers: %r" % trig
    finally:
        con.close()
    assert D.health() == 200
    acts = [r["action"] for r in D.audit()]
    assert "tampered" not in acts


def test_no_api_deletes_audit():
    before = D.audit()
    for method, path in (("DELETE", "/v1/audit"), ("PUT", "/v1/audit"), ("POST", "/v1/audit"),
                         ("PATCH", "/v1/audit")):
        st, b = D.admin(method, path, body={} if method in ("PUT", "POST", "PATCH") else None)
        assert st == 405 and b.get("error") == "method_not_allowed", "%s /v1/audit → %s %r" % (
            method, st, b)
    rid = before[-1]["id"]
    st, b = D.admin("DELETE", "/v1/audit/%s" % rid)
    assert st in (404, 405), "DELETE /v1/audit/ID → %s %r" % (st, b)
    after = D.audit()
    assert [r["id"] for r in after[:len(before)]] == [r["id"] for r in before], "rows vanished"


def _row(rows, action, user=None):
    m = [r for r in rows if r["action"] == action and (user is None or r["user"] == user)]
    assert m, "no %s row%s in %r" % (action, " for %s" % user if user else "", rows)
    return m[-1]


def _check_admin_row(r):
    assert isinstance(r["actor"], str) and "admin" in r["actor"].lower(), "actor %r" % r
    assert isinstance(r["result"], str) and r["result"], "no result: %r" % r
    assert isinstance(r["source"], str) and "127.0.0.1" in r["source"], "source %r" % r
    assert isinstance(r["id"], int) and isinstance(r["time"], int), r
    assert abs(r["time"] - time.time()) < 300, "row time %r is not now" % r["time"]


def test_admin_changes_are_audited():
    since = int(time.time()) - 1
    name = harness.unique_name("aud")
    D.create_user(name, groups=["g1"])
    st, b = D.admin("PATCH", "/v1/users/%s" % name, {"enabled": False, "groups": ["g2"]})
    assert st == 200, (st, b)
    D.enroll_totp(name)
    D.enroll_totp(name, force=True)
    st, b = D.admin("POST", "/v1/tokens", {"hostname": "audit-1", "labels": {"a": "b"}, "ttl": 300})
    assert st == 201
    st, b = D.admin("DELETE", "/v1/users/%s" % name)
    assert st == 200 and b == {"deleted": name}, (st, b)
    rows = D.audit(since=since)
    for action in ("user.add", "user.update", "totp.enroll", "user.delete"):
        r = _row(rows, action, name)
        _check_admin_row(r)
    assert len([r for r in rows if r["action"] == "totp.enroll" and r["user"] == name]) == 2
    _check_admin_row(_row(rows, "token.create"))
    # the user's rows survive the user's deletion
    urows = D.audit(user=name)
    assert [r["action"] for r in urows][:2] == ["user.add", "user.update"], urows
    ids = [r["id"] for r in D.audit()]
    assert ids == sorted(ids), "audit not newest-last: %r" % ids


def test_refused_duplicate_add_not_audited_as_success():
    name = D.create_user()
    st, b = D.admin("POST", "/v1/users", {"name": name})
    assert st == 409 and b.get("error") == "conflict", (st, b)
    adds = [r for r in D.audit(user=name) if r["action"] == "user.add"]
    assert adds[0]["result"] != adds[-1]["result"] or len(adds) == 1, \
        "a refused duplicate add is audited like a successful one: %r" % adds


def test_audit_query_filters():
    a = D.create_user()
    b = D.create_user()
    rows = D.audit(user=a)
    assert rows and all(r["user"] == a for r in rows), rows
    rows = D.audit(limit=1)
    assert len(rows) == 1, rows
    rows = D.audit(since=int(time.time()) + 3600)
    assert rows == [], rows
    for bad in ("limit=abc", "since=yesterday", "limit=-1"):
        st, body = D.admin("GET", "/v1/audit?" + bad)
        assert st == 400 and body.get("error") == "bad_field", "%s → %s %r" % (bad, st, body)


def test_no_secrets_in_debug_log():
    # full cycle: token → enroll → user → TOTP enroll → right/wrong/replayed codes → push → approve
    etok = D.create_token(labels={"x": "y"}, hostname="logcheck")
    st, eb = D.api("POST", "/v1/enroll", {"token": etok, "hostname": "logcheck"})
    assert st == 200
    htok = eb["host_token"]
    name = D.create_user(push=True)
    secret, uri = D.enroll_totp(name)
    secret2, uri2 = D.enroll_totp(name, force=True)
    good = totp_code(secret2)
    bad = wrong_code(secret2)
    codes = [good, bad]
    assert D.login_totp(htok, name, bad)["result"] == "deny"
    assert D.login_totp(htok, name, good)["result"] == "allow"
    assert D.login_totp(htok, name, good)["reason"] == "replayed"
    _, p = D.create_push(htok, name)
    D.admin("POST", "/v1/approvals/%s/approve" % p["push_id"], {"match": p["match"]})
    # a request with a wrong bearer token must not log what was sent either
    probe = "f" * 10 + harness.unique_name("p").encode().hex()[:54]
    D.api("GET", "/v1/users", token=probe)
    time.sleep(0.5)
    log = D.log()
    assert log.strip(), "the daemon logged nothing at --log-level debug"
    secrets_ = {"admin token": D.admin_token, "enrollment token": etok, "host token": htok,
                "totp secret": secret, "forced totp secret": secret2, "otpauth uri": uri,
                "wrong bearer": probe}
    for what, s in secrets_.items():
        assert s not in log, "%s appears in the daemon log" % what
        assert s.lower() not in log.lower(), "%s appears (case-folded) in the daemon log" % what
    for what, s in (("admin token", D.admin_token), ("host token", htok), ("enrollment token", etok)):
        assert s[:16] not in log, "a prefix of the %s appears in the daemon log" % what
    for c in codes:
        assert not re.search(r"(?<!\d)%s(?!\d)" % c, log), "TOTP code %s in the daemon log" % c
    raw_seed = harness.b32decode_loose(secret2)
    assert raw_seed.hex() not in log.lower()
