# SPDX-License-Identifier: BSD-2-Clause
"""Connection memory (issue 16): libmicrohttpd's per-connection pool is 4 KB, so what a client
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
    # 3,000 bytes of one header (the pool of 4 KB takes a header block of ~3.6 KB)
    st, b, _, _ = D.request("GET", "/v1/health", headers={"X-Pad": "p" * 3000})
    assert st == 200, (st, b)


def test_longest_bearer_token_is_read_and_judged():
    # The longest bearer token the API takes (PC_BEARER_TOKEN_MAX, 1,024 characters) with the
    # headers a client sends: the header block is read whole and the token judged (401, JSON),
    # never cut off by the connection's memory; one character more is refused the same way.
    hdrs = {"User-Agent": "portcullis-agent/" + "9" * 40, "Accept": "application/json"}
    for n in (1024, 1025):
        st, b, _, _ = D.request("GET", "/v1/auth/push/%s?wait=1" % ("0" * 32), token="f" * n,
                                headers=hdrs)
        assert st in (400, 401) and isinstance(b, dict) and b.get("error"), (n, st, b)


def test_waiting_poll_with_headers_of_2kb_is_answered():
    # A push long-poll (it waits in the pool's memory) whose request carries 2,000 bytes of
    # headers besides the host's token: after its wait it gets the ordinary answer.
    user, _ = D.user_with_totp(push=True)
    _, p = D.create_push(HOST, user)
    st, b, _, _ = D.request("GET", "/v1/auth/push/%s?wait=1" % p["push_id"], token=HOST,
                            headers={"X-Pad": "p" * 2000}, timeout=30)
    assert st == 200 and b.get("push_id") == p["push_id"] and b.get("state") == "pending", (st, b)


def test_header_block_larger_than_the_pool_is_refused():
    # 8 KB of headers does not fit the 4 KB pool: not answered as a request (431, or the
    # connection closed), and the daemon goes on serving.
    try:
        st, b, _, _ = D.request("GET", "/v1/health", headers={"X-Pad": "p" * 8000})
    except (ConnectionError, OSError) as e:  # closed without an answer
        st, b = None, repr(e)
    assert st != 200, (st, b)
    assert D.health() == 200


def test_transaction_row_keeps_no_auth_info():
    txid = D.begin_txid(HOST, USER, auth_info="publickey " + "B" * 2000)
    rows = harness.db_query(D, "SELECT auth_info, user_name FROM transactions WHERE txid = ?",
                            (txid,))
    assert rows, txid
    row = rows[0]
    assert row[0] is None, len(row[0])
    assert row[1] == USER
