# SPDX-License-Identifier: BSD-2-Clause
"""Connection memory (issue 16): libmicrohttpd's per-connection pool is 8 KB, so what a client
may send must still work — a request body larger than the pool arrives in pieces and is answered,
headers of a few KB are accepted — and auth/begin no longer keeps sshd's auth_info (up to 16 KB)
in the transaction row."""
# Measures the machine (time, memory) under its own load: run.py runs it by itself.
ALONE = True

import harness
from harness import Daemon

D = None
HOST = None
USER = None
SECRET = None


def setup_module():
    global D, HOST, USER, SECRET
    D = Daemon().start()
    _, HOST = D.enroll_host()
    USER, SECRET = D.user_with_totp()


def teardown_module():
    if D:
        D.kill()


def test_body_larger_than_connection_pool_is_answered():
    # 16,000 bytes of auth_info (the largest the API takes is 16,384): twice the pool.
    info = "publickey " + "A" * 15990
    st, b = D.begin(HOST, USER, auth_info=info)
    assert st == 200, (st, b)
    assert b.get("action") == "challenge", b
    # and the transaction it opened works: a right code is accepted
    st, r = D.submit_totp(HOST, b["txid"], harness.totp_code(SECRET))
    assert st == 200 and r.get("result") == "allow", (st, r)


def test_body_over_the_api_limit_still_refused():
    st, b = D.begin(HOST, USER, auth_info="A" * 40000)
    assert st in (400, 413), (st, b)


def test_headers_of_a_few_kb_are_accepted():
    # 3,000 bytes of one header: a header block well within the connection pool
    st, b, _, _ = D.request("GET", "/v1/health", headers={"X-Pad": "p" * 3000})
    assert st == 200, (st, b)


def test_transaction_row_keeps_no_auth_info():
    txid = D.begin_txid(HOST, USER, auth_info="publickey " + "B" * 2000)
    rows = harness.db_query(D, "SELECT auth_info, user_name FROM transactions WHERE txid = ?",
                            (txid,))
    assert rows, txid
    row = rows[0]
    assert row[0] is None, len(row[0])
    assert row[1] == USER
