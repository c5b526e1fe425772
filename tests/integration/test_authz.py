# SPDX-License-Identifier: BSD-2-Clause
"""The authorization matrix: every endpoint of docs/API.md × callers
none / bad token / host / admin.

  public endpoints: work for every caller
  host endpoints:   401 / 401 / expected / 403
  admin endpoints:  401 / 401 / 403 / expected

Rejected calls must not change anything (checked after each row)."""
import secrets

import harness
from harness import Daemon

D = None
HOST_TOKEN = None
HOST2_TOKEN = None


def setup_module():
    global D, HOST_TOKEN, HOST2_TOKEN
    D = Daemon().start()
    _, HOST_TOKEN = D.enroll_host()
    _, HOST2_TOKEN = D.enroll_host()


def teardown_module():
    if D:
        D.kill()


def bad_tokens():
    """Bearer values that must all be 401: random, truncated/extended admin token, an unused
    enrollment token (not a bearer credential), a host token with a flipped character."""
    adm = D.admin_token
    flipped = HOST_TOKEN[:-1] + ("0" if HOST_TOKEN[-1] != "0" else "1")
    return [secrets.token_hex(32), adm[:-1], adm + "0", adm[32:] + adm[:32],
            D.create_token(), flipped, "", "x" * 64, "00" * 32]


def _check(what, st, b, want):
    assert st == want, "%s: status %s, want %s (body %r)" % (what, st, want, b)
    if want >= 400:
        code = {400: None, 401: "unauthorized", 403: "forbidden", 404: "not_found",
                409: "conflict"}.get(want)
        assert isinstance(b, dict) and isinstance(b.get("message"), str), "%s: %r" % (what, b)
        if code:
            assert b.get("error") == code, "%s: error %r, want %r" % (what, b.get("error"), code)


def _header_variants(tok):
    """Authorization header values that carry a valid token but the wrong scheme/format."""
    return ["Basic " + tok, "bearer" + tok, "Bearer", "Bearer  ", "Token " + tok, tok]


# Each case: (name, method, path_fn, body_fn, expected_status_for_right_caller, verify_fn)
# path_fn/body_fn build a fresh resource for every call (so success really succeeds).

def _fresh_user(push=True, totp=False):
    n = D.create_user(push=push)
    if totp:
        D.enroll_totp(n)
    return n


def host_cases():
    def begin():
        n = _fresh_user(totp=True)
        return "/v1/auth/begin", {"user": n, "rhost": "127.0.0.1", "service": "sshd"}

    def begin_push():  # begin that makes the push with the challenge
        n = _fresh_user(push=True, totp=True)
        return "/v1/auth/begin", {"user": n, "rhost": "127.0.0.1", "service": "sshd",
                                  "push": True}

    def totp():
        n, sec = D.user_with_totp()
        txid = D.begin_txid(HOST_TOKEN, n)
        return "/v1/auth/totp", {"txid": txid, "code": harness.totp_code(sec)}

    def push():
        n = _fresh_user(push=True)
        txid = D.begin_txid(HOST_TOKEN, n)
        return "/v1/auth/push", {"txid": txid}

    def poll():
        n = _fresh_user(push=True)
        _, p = D.create_push(HOST_TOKEN, n)
        return "/v1/auth/push/%s?wait=0" % p["push_id"], None

    return [("POST /v1/auth/begin", "POST", begin, 200),
            ("POST /v1/auth/begin with push", "POST", begin_push, 200),
            ("POST /v1/auth/totp", "POST", totp, 200),
            ("POST /v1/auth/push", "POST", push, 200),
            ("GET /v1/auth/push/{id}", "GET", poll, 200)]


def admin_cases():
    def users_get():
        return "/v1/users", None

    def users_post():
        return "/v1/users", {"name": harness.unique_name("az"), "groups": ["g"], "push": True}

    def user_get():
        return "/v1/users/%s" % _fresh_user(), None

    def user_patch():
        return "/v1/users/%s" % _fresh_user(), {"enabled": False}

    def user_delete():
        return "/v1/users/%s" % _fresh_user(), None

    def totp_enroll():
        return "/v1/users/%s/totp" % _fresh_user(), {"force": False}

    def approvals():
        return "/v1/approvals", None

    def approve():
        n = _fresh_user(push=True)
        _, p = D.create_push(HOST_TOKEN, n)
        return "/v1/approvals/%s/approve" % p["push_id"], {"match": p["match"]}

    def deny():
        n = _fresh_user(push=True)
        _, p = D.create_push(HOST_TOKEN, n)
        return "/v1/approvals/%s/deny" % p["push_id"], {}

    def tokens():
        return "/v1/tokens", {"hostname": "authz-" + secrets.token_hex(4),
                              "labels": {"role": "web"}, "ttl": 600}

    def hosts():
        return "/v1/hosts", None

    def audit():
        return "/v1/audit?limit=5", None

    def info():
        return "/v1/info", None

    return [("GET /v1/users", "GET", users_get, 200),
            ("POST /v1/users", "POST", users_post, 201),
            ("GET /v1/users/{name}", "GET", user_get, 200),
            ("PATCH /v1/users/{name}", "PATCH", user_patch, 200),
            ("DELETE /v1/users/{name}", "DELETE", user_delete, 200),
            ("POST /v1/users/{name}/totp", "POST", totp_enroll, 201),
            ("GET /v1/approvals", "GET", approvals, 200),
            ("POST /v1/approvals/{id}/approve", "POST", approve, 200),
            ("POST /v1/approvals/{id}/deny", "POST", deny, 200),
            ("POST /v1/tokens", "POST", tokens, 201),
            ("GET /v1/hosts", "GET", hosts, 200),
            ("GET /v1/audit", "GET", audit, 200),
            ("GET /v1/info", "GET", info, 200)]


def _snapshot():
    """What a rejected call must not change: users, pending approvals, hosts."""
    st, u = D.admin("GET", "/v1/users")
    assert st == 200
    st, a = D.admin("GET", "/v1/approvals")
    assert st == 200
    st, h = D.admin("GET", "/v1/hosts")
    assert st == 200
    return (sorted((x["name"], x["enabled"], x["totp"], x["push"], tuple(x["groups"]))
                   for x in u["users"]),
            sorted(x["push_id"] for x in a["approvals"]),
            sorted(x["host_id"] for x in h["hosts"]))


_SOURCES = iter(range(1, 250))


def _run_matrix(cases, want_none, want_host, want_admin_fn):
    for name, method, make, ok_status in cases:
        path, body = make()
        before = _snapshot()
        # The ~20 unauthenticated calls of a case come from a loopback address of their own:
        # past 100 refusals a minute an address gets 429 instead of 401 (test_starvation).
        src = "127.0.1.%d" % next(_SOURCES)
        st, b = D.api(method, path, body, token=None, source=src)
        _check("%s as none" % name, st, b, want_none)
        for bt in bad_tokens():
            st, b = D.api(method, path, body, token=bt, source=src)
            _check("%s with bad token %r" % (name, bt[:12]), st, b, 401)
        for hv in _header_variants(D.admin_token) + _header_variants(HOST_TOKEN):
            st, b = D.api(method, path, body, headers={"Authorization": hv}, source=src)
            _check("%s with Authorization %r" % (name, hv[:14]), st, b, 401)
        want_h = want_host(ok_status)
        if want_h >= 400:
            st, b = D.api(method, path, body, token=HOST_TOKEN)
            _check("%s as host" % name, st, b, want_h)
        want_a = want_admin_fn(ok_status)
        if want_a >= 400:
            st, b = D.api(method, path, body, token=D.admin_token)
            _check("%s as admin" % name, st, b, want_a)
        after = _snapshot()
        assert before == after, "%s: a rejected call changed state:\n%r\n%r" % (name, before, after)
        # finally the right caller, on the same untouched resource
        if want_h < 400:
            st, b = D.api(method, path, body, token=HOST_TOKEN)
            _check("%s as host" % name, st, b, want_h)
        if want_a < 400:
            st, b = D.api(method, path, body, token=D.admin_token)
            _check("%s as admin" % name, st, b, want_a)
        assert isinstance(b, dict), "%s: reply is not a JSON object: %r" % (name, b)


def test_host_endpoints_matrix():
    _run_matrix(host_cases(), 401, lambda ok: ok, lambda ok: 403)


def test_admin_endpoints_matrix():
    _run_matrix(admin_cases(), 401, lambda ok: 403, lambda ok: ok)


def test_public_health_for_all_callers():
    for tok in [None, D.admin_token, HOST_TOKEN] + bad_tokens():
        st, b = D.api("GET", "/v1/health", token=tok)
        assert st == 200 and b.get("status") == "ok", "health with %r → %s %r" % (
            tok and tok[:8], st, b)


def test_public_enroll_for_all_callers():
    for i, tok in enumerate([None, D.admin_token, HOST_TOKEN, secrets.token_hex(32)]):
        et = D.create_token(hostname="pub-enroll-%d" % i)
        st, b = D.api("POST", "/v1/enroll", {"token": et, "hostname": "pub-enroll-%d" % i},
                      token=tok)
        assert st == 200, "enroll with Authorization %r → %s %r" % (tok and tok[:8], st, b)
        assert isinstance(b.get("host_id"), int) and len(b.get("host_token", "")) == 64, b
        st, b = D.begin(b["host_token"], "nobody_here")
        assert st == 200 and b.get("action") == "deny", "new host token unusable: %s %r" % (st, b)


def test_enroll_bad_tokens_401():
    for et in (secrets.token_hex(32), D.admin_token, HOST_TOKEN, "", "zz"):
        st, b = D.api("POST", "/v1/enroll", {"token": et, "hostname": "h"})
        _check("enroll with token %r" % et[:8], st, b, 401)


def test_host_token_never_admin():
    # a host token is never accepted on admin endpoints, even for read-only ones
    for path in ("/v1/users", "/v1/hosts", "/v1/audit", "/v1/info", "/v1/approvals"):
        st, b = D.api("GET", path, token=HOST2_TOKEN)
        _check("GET %s as host" % path, st, b, 403)
