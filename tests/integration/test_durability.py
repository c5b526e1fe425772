# SPDX-License-Identifier: BSD-2-Clause
"""The write path (group commit, cp_store_write): a code answered "allow" is on disk before the
answer leaves, so after kill -9 it is refused (replay); many users at once are all served and
none is lost; a write job that fails inside a batch is undone alone, never its neighbours."""
import os
import re
import signal
import subprocess
import threading
import time

import harness
from harness import Daemon, totp_code

TEST_TIMEOUT = 240


def _daemon(**kw):
    args = ["--auth-rate", "100000"] + kw.pop("args", [])
    return Daemon(args=args, **kw).start()


def _pair(d, host, user, code):
    """begin + totp; returns the totp reply (status, body), or None if the daemon went away."""
    try:
        st, b = d.begin(host, user)
        if st != 200 or b.get("action") != "challenge":
            return None
        return d.submit_totp(host, b["txid"], code)
    except Exception:
        return None


def test_code_accepted_then_kill9_is_refused_after_restart():
    d = _daemon()
    try:
        _, host = d.enroll_host()
        user, secret = d.user_with_totp()
        code = totp_code(secret)
        b = d.login_totp(host, user, code)
        assert b["result"] == "allow", b
        d.kill()                                   # SIGKILL right after the 200
        d.start()
        b = d.login_totp(host, user, code)
        assert b["result"] == "deny" and b["reason"] == "replayed", b
    finally:
        d.kill()


def test_every_allowed_code_survives_kill9_under_load():
    d = _daemon()
    allowed = []                                   # (user, code) answered allow
    lock = threading.Lock()
    stop = threading.Event()
    try:
        _, host = d.enroll_host()
        users = [d.user_with_totp() for _ in range(24)]

        def worker(user, secret):
            for off in (-1, 0, 1):                 # three fresh steps per user, oldest first
                if stop.is_set():
                    return
                code = totp_code(secret, offset=off)
                r = _pair(d, host, user, code)
                if r is None:
                    return
                st, b = r
                if st == 200 and b.get("result") == "allow":
                    with lock:
                        allowed.append((user, code))

        threads = [threading.Thread(target=worker, args=u) for u in users]
        for t in threads:
            t.start()
        harness.wait_until(lambda: len(allowed) >= 20, timeout=60, what="20 codes allowed")
        d.proc.kill()                              # kill -9 while requests are in flight
        stop.set()
        for t in threads:
            t.join(60)
        d.kill()
        with lock:
            got = list(allowed)
        assert len(got) >= 20, got
        d.start()
        for user, code in got:
            b = d.login_totp(host, user, code)
            assert b["result"] == "deny", "%s's code %s was allowed before kill -9 and again " \
                "after the restart: %r" % (user, code, b)
    finally:
        d.kill()


def test_many_users_at_once_all_allowed_none_lost():
    # a wide window: the replay check at the end resends the very codes of the burst, which
    # may be a 30 s step later on a loaded machine; they must still be inside the window to be
    # called replays (a fresh code there would be a new step, rightly allowed)
    d = _daemon(args=["--totp-window", "10"])
    try:
        _, host = d.enroll_host()
        users = [d.user_with_totp() for _ in range(40)]
        txids = {u: d.begin_txid(host, u) for u, _ in users}
        results, sent = {}, {}
        go = threading.Barrier(len(users))

        def one(user, secret):
            go.wait()
            sent[user] = totp_code(secret)
            results[user] = d.submit_totp(host, txids[user], sent[user])

        threads = [threading.Thread(target=one, args=u) for u in users]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        bad = {u: r for u, r in results.items() if r[0] != 200 or r[1].get("result") != "allow"}
        assert len(results) == len(users) and not bad, bad
        # every one of them is on record: the audit row and the replay guard
        rows = [r for r in d.audit(limit=1000) if r.get("action") == "auth.totp"
                and r.get("result") == "allow"]
        assert {r["user"] for r in rows} >= {u for u, _ in users}, rows
        for user, _ in users[:5]:
            b = d.login_totp(host, user, sent[user])
            assert b["reason"] == "replayed", b
    finally:
        d.kill()


def test_same_code_on_many_connections_exactly_one_allow():
    d = _daemon()
    try:
        _, host = d.enroll_host()
        user, secret = d.user_with_totp()
        n = 16
        txids = [d.begin_txid(host, user) for _ in range(n)]
        code = totp_code(secret)
        results = []
        go = threading.Barrier(n)

        def one(txid):
            go.wait()
            results.append(d.submit_totp(host, txid, code))

        threads = [threading.Thread(target=one, args=(t,)) for t in txids]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(results) == n and all(st == 200 for st, _ in results), results
        allows = [b for _, b in results if b["result"] == "allow"]
        assert len(allows) == 1, results
        # the others are replays (past the lockout threshold, replays lock the user here)
        assert all(b["reason"] in ("replayed", "locked") for _, b in results
                   if b["result"] != "allow"), results
    finally:
        d.kill()


def test_failing_job_in_a_batch_is_undone_alone():
    """The user named in PC_TEST_AUDIT_NULL_USER (test hook) hits a NOT NULL constraint in its
    audit row after its code was marked used; other users submit at the same moment. The bad
    job fails (500) and is rolled back to its savepoint: its code is still unused. The good
    ones, committed in the same batch, stay."""
    # a wide window: the replay checks at the end resend the very codes of the bursts, minutes
    # later under a sanitizer build; they must still be inside the window to be called replays
    d = _daemon(log_level="debug", args=["--totp-window", "10"])
    try:
        _, host = d.enroll_host()
        tries, per_try = 4, 10
        sent = {}
        bad = [d.user_with_totp() for _ in range(tries)]
        good = [[d.user_with_totp() for _ in range(per_try)] for _ in range(tries)]
        tx = {u: d.begin_txid(host, u) for u, _ in bad + [g for gs in good for g in gs]}
        done = []
        for (bu, bs), goods in zip(bad, good):
            d.stop()
            # the writer gathers a burst's jobs into one batch (test hook; without it a fast,
            # idle machine commits each job alone and no batch mixes a failing job with others)
            d.start(env={"PC_TEST_AUDIT_NULL_USER": bu, "PC_TEST_STORE_GATHER_MS": "200"})
            everyone = [(bu, bs)] + goods
            go = threading.Barrier(len(everyone))
            res = {}

            def one(user, secret):
                go.wait()
                sent[user] = totp_code(secret)
                res[user] = d.submit_totp(host, tx[user], sent[user])

            ts = [threading.Thread(target=one, args=u) for u in everyone]
            for t in ts:
                t.start()
            for t in ts:
                t.join(60)
            done.append(((bu, bs), goods, res))
            if any(_mixed_batch(line) for line in d.log().splitlines()):
                break
        d.stop()
        d.start(env={})
        mixed = any(_mixed_batch(line) for line in d.all_logs().splitlines())
        assert mixed, "no batch held a failing job beside others in %d bursts" % len(done)
        for (bu, bs), goods, res in done:
            assert res[bu][0] == 500, res[bu]
            for gu, gs in goods:
                assert res[gu][0] == 200 and res[gu][1]["result"] == "allow", res[gu]
                # a good user's accepted code stays spent
                r = d.login_totp(host, gu, sent[gu])
                assert r["reason"] == "replayed", r
            # the bad user's code was never spent: none of its job's writes were kept
            assert d.login_totp(host, bu, totp_code(bs))["result"] == "allow"
    finally:
        d.kill()


_BATCH = re.compile(r"event=store_batch jobs=(\d+) failed=(\d+)")


def _mixed_batch(line):
    m = _BATCH.search(line)
    return bool(m) and int(m.group(1)) >= 2 and 1 <= int(m.group(2)) < int(m.group(1))


def _syncs_during(d, action):
    """The fsync-family calls portcullisd (every thread) makes while action() runs, counted by
    strace attached to it; returns (count, action's result)."""
    out = os.path.join(d.data_dir, "strace.out")
    tracer = subprocess.Popen(["strace", "-f", "-qq", "-p", str(d.proc.pid), "-o", out, "-e",
                               "trace=fsync,fdatasync,sync_file_range,syncfs,msync"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 20
        while True:                                # attached to every thread of the daemon
            tids = os.listdir("/proc/%d/task" % d.proc.pid)
            traced = 0
            for t in tids:
                try:
                    with open("/proc/%d/task/%s/status" % (d.proc.pid, t)) as f:
                        traced += "TracerPid:\t%d\n" % tracer.pid in f.read()
                except OSError:
                    pass
            if traced == len(tids):
                break
            assert tracer.poll() is None, tracer.stderr.read()
            assert time.time() < deadline, "strace did not attach to every thread"
            time.sleep(0.05)
        result = action()
    finally:
        tracer.send_signal(signal.SIGINT)
        tracer.wait(20)
    with open(out) as f:
        calls = [ln for ln in f if re.search(r"\b(fsync|fdatasync|sync_file_range|syncfs|msync)\(",
                                             ln)]
    return len(calls), result


def test_a_begun_login_skips_the_sync_and_its_answer_syncs():
    """A begin that answers "challenge" decides nothing: its commit does not wait for the disk
    (the login's code, answered next, is synced, and with it the begin). A begin that decides
    (deny) and a code's answer are synced before the reply leaves. SQLite only: on PostgreSQL
    the sync happens in the server (the same rule, SET LOCAL synchronous_commit, cp_sql.c)."""
    if harness.is_pg():
        raise harness.Skip("the fsync is PostgreSQL's own there, not portcullisd's")
    d = _daemon()
    try:
        _, host = d.enroll_host()
        user, secret = d.user_with_totp()
        n, (st, b) = _syncs_during(d, lambda: d.begin(host, user))
        assert st == 200 and b["action"] == "challenge", b
        assert n == 0, "a begun login synced %d times" % n
        n, (st, r) = _syncs_during(d, lambda: d.submit_totp(host, b["txid"], totp_code(secret)))
        assert st == 200 and r["result"] == "allow", r
        assert n >= 1, "an allowed code was answered before any sync"
        n, (st, b) = _syncs_during(d, lambda: d.begin(host, "nobody-" + user))
        assert st == 200 and b["action"] == "deny", b
        assert n >= 1, "a begin that denied was answered before any sync"
    finally:
        d.kill()


def test_a_push_created_skips_the_sync_and_its_approval_syncs():
    """A pending push decides nothing either (the PAM module asks for one at each login of a
    person with push on): created without a sync; the approval is synced before its reply."""
    if harness.is_pg():
        raise harness.Skip("the fsync is PostgreSQL's own there, not portcullisd's")
    d = _daemon()
    try:
        _, host = d.enroll_host()
        user, _ = d.user_with_totp(push=True)
        txid = d.begin_txid(host, user)
        n, (st, p) = _syncs_during(d, lambda: d.api("POST", "/v1/auth/push", {"txid": txid},
                                                    token=host))
        assert st == 200 and p.get("push_id") and p.get("match"), (st, p)
        assert n == 0, "a push was created with %d syncs" % n
        n, (st, b) = _syncs_during(d, lambda: d.admin(
            "POST", "/v1/approvals/%s/approve" % p["push_id"], {"match": p["match"]}))
        assert st == 200 and b.get("state") == "approved", (st, b)
        assert n >= 1, "an approval was answered before any sync"
        st, s = d.poll_push(host, p["push_id"])
        assert st == 200 and s["state"] == "approved", (st, s)
    finally:
        d.kill()


def test_a_certificate_login_start_skips_the_sync_and_its_finish_syncs():
    """`portcullis login`: the challenge handed out by login/start decides nothing (its finish,
    which issues the certificate, is synced and makes it durable); a refused start is synced
    (its audit row is the decision)."""
    if harness.is_pg():
        raise harness.Skip("the fsync is PostgreSQL's own there, not portcullisd's")
    import tempfile
    import test_ca
    d = _daemon()
    try:
        test_ca.D, test_ca.TMP = d, tempfile.mkdtemp(prefix="pc-dur-ca-")
        harness._TMP_ROOTS.append(test_ca.TMP)
        p = test_ca.Person()
        test_ca.add_policy(users=[p.name], accounts=["$user"])
        n, (st, s) = _syncs_during(d, p.start)
        assert st == 200 and s.get("login_id") and s.get("challenge"), (st, s)
        assert n == 0, "login/start synced %d times" % n
        sig = test_ca.sshsig(p.priv, test_ca.base64.b64decode(s["challenge"]))
        n, (st, b) = _syncs_during(d, lambda: d.api("POST", "/v1/login/finish", {
            "login_id": s["login_id"], "signature": sig, "code": harness.totp_code(p.secret)}))
        assert st == 200 and b.get("certificate"), (st, b)
        assert n >= 1, "a certificate was issued before any sync"
        _, other = test_ca.keygen("ed25519")
        n, (st, r) = _syncs_during(d, lambda: p.start(pub=other))   # a key not registered
        assert st in (401, 403), (st, r)
        assert n >= 1, "a refused login/start was answered before any sync"
    finally:
        d.kill()


def test_a_begun_login_survives_kill9_of_the_daemon():
    """An unsynced commit is in the operating system's hands: a crash of the process alone
    loses nothing. Begin, kill -9, restart: the code answers that very login."""
    d = _daemon()
    try:
        _, host = d.enroll_host()
        user, secret = d.user_with_totp()
        txid = d.begin_txid(host, user)
        d.kill()
        d.start()
        st, r = d.submit_totp(host, txid, totp_code(secret))
        assert st == 200 and r["result"] == "allow", r
        # and a pending push (unsynced too): kill -9, restart, approved with its number
        push_user, _ = d.user_with_totp(push=True)
        _, p = d.create_push(host, push_user)
        d.kill()
        d.start()
        st, b = d.admin("POST", "/v1/approvals/%s/approve" % p["push_id"], {"match": p["match"]})
        assert st == 200 and b.get("state") == "approved", (st, b)
    finally:
        d.kill()
