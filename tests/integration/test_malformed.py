# SPDX-License-Identifier: BSD-2-Clause
"""Hostile and malformed request bodies: every POST/PATCH endpoint answers 400/413 with the
documented error shape, applies nothing, and the daemon stays up. Unknown path 404, wrong
method 405."""
import json

import harness
from harness import Daemon

D = None
HOST_TOKEN = None
USER = None          # a user with TOTP and push
TXID = None          # a pending transaction of USER
PUSH_ID = None       # a pending push
NEVER = None         # a user name that no rejected request may create


def setup_module():
    global D, HOST_TOKEN, USER
    D = Daemon(args=["--push-ttl", "10m"]).start()
    _, HOST_TOKEN = D.enroll_host()
    USER = D.create_user(push=True)
    D.enroll_totp(USER)


def fresh():
    """Per-test fixtures, so one test's damage does not spill into the next: a pending
    transaction, a pending push, a user name that must never be created, and USER reset."""
    global TXID, PUSH_ID, NEVER
    st, b = D.admin("PATCH", "/v1/users/%s" % USER, {"enabled": True, "push": True})
    assert st == 200, (st, b)
    TXID = D.begin_txid(HOST_TOKEN, USER)
    _, p = D.create_push(HOST_TOKEN, USER)
    PUSH_ID = p["push_id"]
    NEVER = harness.unique_name("never")


def teardown_module():
    if D:
        D.kill()


def endpoints():
    """(method, path, token, valid_body, required_fields, typed_fields) for every endpoint
    that takes a body. typed_fields: {field: wrong-typed value}."""
    adm = D.admin_token
    return [
        ("POST", "/v1/enroll", None, {"token": "00" * 32, "hostname": "h1"},
         ["token"], {"token": 5, "hostname": ["x"]}),
        ("POST", "/v1/auth/begin", HOST_TOKEN, {"user": USER}, ["user"],
         {"user": 5, "rhost": 7, "service": True, "auth_info": {}, "tty": 1.5}),
        ("POST", "/v1/auth/totp", HOST_TOKEN, {"txid": TXID, "code": "123456"}, ["txid", "code"],
         {"txid": 1, "code": 123456}),
        ("POST", "/v1/auth/push", HOST_TOKEN, {"txid": TXID}, ["txid"], {"txid": 5}),
        ("POST", "/v1/users", adm, {"name": NEVER}, ["name"],
         {"name": 5, "groups": "wheel", "push": "yes"}),
        ("PATCH", "/v1/users/%s" % USER, adm, {"enabled": True}, [],
         {"enabled": "no", "groups": [1, 2], "push": 0}),
        ("POST", "/v1/users/%s/totp" % USER, adm, {"force": False}, [], {"force": "true"}),
        ("POST", "/v1/approvals/%s/approve" % PUSH_ID, adm, {"match": "00"}, ["match"],
         {"match": 12}),
        ("POST", "/v1/approvals/%s/deny" % PUSH_ID, adm, {}, [], {}),
        ("POST", "/v1/tokens", adm, {"hostname": "m1", "ttl": 3600}, ["hostname"],
         {"ttl": "3600", "labels": ["a"]}),
    ]


def _assert_err(st, b, want_status, codes, what, names=None):
    if isinstance(codes, str):
        codes = (codes,)
    assert st == want_status, "%s: status %s (want %s) body %r" % (what, st, want_status, b)
    assert isinstance(b, dict), "%s: body is not a JSON object: %r" % (what, b)
    assert b.get("error") in codes, "%s: error %r, want one of %r" % (what, b.get("error"), codes)
    assert isinstance(b.get("message"), str) and b["message"], "%s: no message: %r" % (what, b)
    if names:
        assert names in b["message"], "%s: message %r does not name %r" % (what, b["message"], names)


class Collect:
    """Runs many checks, then fails once listing every failed case (better reports)."""

    def __init__(self):
        self.failures = []

    def check(self, *a, **kw):
        try:
            _assert_err(*a, **kw)
        except AssertionError as e:
            self.failures.append(str(e))

    def done(self):
        assert not self.failures, "%d case(s) failed:\n  " % len(self.failures) + \
            "\n  ".join(self.failures)


def _alive(what):
    assert D.alive(), "daemon died after %s; log:\n%s" % (what, D.log()[-4000:])
    assert D.health() == 200, "health not 200 after %s" % what


def _state_unchanged():
    """Nothing in the fixtures was changed by a rejected request."""
    u = D.get_user(USER)
    assert u["enabled"] is True and u["push"] is True and u["totp"] is True, u
    st, b = D.admin("GET", "/v1/approvals")
    assert st == 200 and any(a["push_id"] == PUSH_ID for a in b["approvals"]), \
        "pending push vanished after a rejected request: %r" % b
    st, b = D.admin("GET", "/v1/users/%s" % NEVER)
    assert st == 404, "a rejected POST /v1/users created the user: %s %r" % (st, b)


def test_malformed_json():
    fresh()
    c = Collect()
    for method, path, tok, _, _, _ in endpoints():
        for raw in (b"{", b"{\"a\":}", b"not json", b"{\"user\":\"x\",}", b"{}garbage",
                    b"{\"a\":1}{\"b\":2}", b"", b"{'a':1}", b"{\"a\":'x'}",
                    b"{\"a\":NaN}", b"{\"a\":Infinity}", b"{\"a\":-Infinity}",
                    b"{\"a\":1 /* c */}", b"// c\n{}", b"{\"a\":0x10}", b"{\"a\":01}",
                    b"{\"a\":.5}", b"{\"a\":1.}", b"{\"a\":+1}", b"{a:1}",
                    b"{\"a\":\"\\x41\"}", b"{\"a\":\"\\u12\"}", b"{\"a\":tru}",
                    b"{\"a\" 1}", b"{,}", b"{\"a\":[1,]}", b"   "):
            st, b = D.api(method, path, token=tok, raw=raw)
            c.check(st, b, 400, "bad_json", "%s %s raw=%r" % (method, path, raw))
    c.done()
    _alive("malformed JSON")
    _state_unchanged()


def test_non_object_bodies():
    fresh()
    c = Collect()
    for method, path, tok, _, _, _ in endpoints():
        for raw in (b"[]", b"[{\"name\":\"x\"}]", b"5", b"\"str\"", b"null", b"true"):
            st, b = D.api(method, path, token=tok, raw=raw)
            c.check(st, b, 400, "bad_json", "%s %s raw=%r" % (method, path, raw))
    c.done()
    _alive("non-object bodies")
    _state_unchanged()


def test_wrong_types():
    fresh()
    c = Collect()
    for method, path, tok, valid, _, typed in endpoints():
        for field, bad in typed.items():
            body = dict(valid)
            body[field] = bad
            st, b = D.api(method, path, body, token=tok)
            c.check(st, b, 400, "bad_field", "%s %s %s=%r" % (method, path, field, bad),
                        names=field)
    c.done()
    _alive("wrong types")
    _state_unchanged()


def test_invalid_values():
    fresh()
    c = Collect()
    cases = [
        ("POST", "/v1/users", {"name": "Bad Name"}, "name"),
        ("POST", "/v1/users", {"name": "1abc"}, "name"),
        ("POST", "/v1/users", {"name": "a" * 33}, "name"),
        ("POST", "/v1/users", {"name": ""}, "name"),
        ("POST", "/v1/users", {"name": "ok_name", "groups": [""]}, "groups"),
        ("POST", "/v1/tokens", {"hostname": "m1", "ttl": 59}, "ttl"),
        ("POST", "/v1/tokens", {"hostname": "m1", "ttl": 2592001}, "ttl"),
        ("POST", "/v1/tokens", {"hostname": "m1", "ttl": -1}, "ttl"),
        ("POST", "/v1/tokens", {"hostname": "m1", "labels": {"k": 5}}, "labels"),
    ]
    for method, path, body, field in cases:
        st, b = D.admin(method, path, body)
        c.check(st, b, 400, "bad_field", "%s %s %r" % (method, path, body), names=field)
    st, b = D.admin("GET", "/v1/users/ok_name")
    assert st == 404, "user created despite bad groups"
    c.done()
    _alive("invalid values")


def test_unknown_fields():
    fresh()
    c = Collect()
    for method, path, tok, valid, _, _ in endpoints():
        body = dict(valid)
        body["bogus_field_xyz"] = 1
        st, b = D.api(method, path, body, token=tok)
        c.check(st, b, 400, "unknown_field", "%s %s +bogus_field_xyz" % (method, path),
                    names="bogus_field_xyz")
    c.done()
    _alive("unknown fields")
    _state_unchanged()


def test_missing_fields():
    fresh()
    c = Collect()
    for method, path, tok, valid, required, _ in endpoints():
        for field in required:
            body = {k: v for k, v in valid.items() if k != field}
            st, b = D.api(method, path, body, token=tok)
            c.check(st, b, 400, "missing_field", "%s %s without %s" % (method, path, field),
                        names=field)
    c.done()
    _alive("missing fields")
    _state_unchanged()


def test_body_too_large():
    fresh()
    for method, path, tok, _, _, _ in endpoints():
        big = json.dumps({"name": "x" * (70 * 1024)}).encode()
        st, b = D.api(method, path, token=tok, raw=big)
        _assert_err(st, b, 413, "too_large", "%s %s 70 KiB body" % (method, path))
    # a much larger one, too
    st, b = D.admin("POST", "/v1/users", raw=b"{\"name\":\"" + b"a" * (4 * 1024 * 1024) + b"\"}")
    _assert_err(st, b, 413, "too_large", "4 MiB body")
    _alive("oversize bodies")
    _state_unchanged()


def test_body_just_under_limit_is_parsed():
    fresh()
    # 60 KiB of whitespace around a valid object is still < 64 KiB: it must not be 413.
    raw = b" " * (60 * 1024) + json.dumps({"name": "Bad Name"}).encode()
    st, b = D.admin("POST", "/v1/users", raw=raw)
    _assert_err(st, b, 400, "bad_field", "60 KiB body", names="name")


def test_deep_nesting():
    fresh()
    c = Collect()
    for method, path, tok, valid, _, _ in endpoints():
        for depth in (64, 20000):
            raw = b"{\"x\":" + b"[" * depth + b"]" * depth + b"}"
            st, b = D.api(method, path, token=tok, raw=raw)
            c.check(st, b, 400, "bad_json", "%s %s depth %d" % (method, path, depth))
        raw = b"{\"x\":" + b"{\"a\":" * 50 + b"1" + b"}" * 50 + b"}"
        st, b = D.api(method, path, token=tok, raw=raw)
        c.check(st, b, 400, "bad_json", "%s %s nested objects" % (method, path))
    c.done()
    _alive("deep nesting")
    _state_unchanged()


def test_invalid_utf8():
    fresh()
    c = Collect()
    for method, path, tok, valid, required, typed in endpoints():
        field = (required or list(typed) or ["x"])[0]
        for bad in (b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf8\x88\x80\x80\x80"):
            raw = b"{\"" + field.encode() + b"\":\"a" + bad + b"b\"}"
            st, b = D.api(method, path, token=tok, raw=raw)
            c.check(st, b, 400, ("bad_json", "bad_field"),
                        "%s %s invalid UTF-8 %r" % (method, path, bad))
    c.done()
    _alive("invalid UTF-8")
    _state_unchanged()


# For each endpoint with a string field: a raw body template with %s for the string's bytes.
def string_templates():
    return [
        ("POST", "/v1/enroll", None, b'{"token":"' + b"00" * 32 + b'","hostname":"%s"}', "hostname"),
        ("POST", "/v1/auth/begin", HOST_TOKEN, b'{"user":"%s"}', "user"),
        ("POST", "/v1/auth/totp", HOST_TOKEN, b'{"txid":"' + TXID.encode() + b'","code":"%s"}', "code"),
        ("POST", "/v1/auth/push", HOST_TOKEN, b'{"txid":"%s"}', "txid"),
        ("POST", "/v1/users", D.admin_token, b'{"name":"%s"}', "name"),
        ("PATCH", "/v1/users/" + USER, D.admin_token, b'{"groups":["%s"]}', "groups"),
        ("POST", "/v1/approvals/%s/approve" % PUSH_ID, D.admin_token, b'{"match":"%s"}', "match"),
        ("POST", "/v1/tokens", D.admin_token, b'{"labels":{"k":"%s"},"hostname":"m1"}', "labels"),
        ("POST", "/v1/tokens", D.admin_token, b'{"labels":{"%s":"v"},"hostname":"m1"}', "labels"),
    ]


def test_nul_bytes():
    fresh()
    c = Collect()
    for method, path, tok, _, _, _ in endpoints():
        for raw in (b'{"x":"a\x00b"}', b"{}\x00", b"\x00{}"):
            st, b = D.api(method, path, token=tok, raw=raw)
            c.check(st, b, 400, "bad_json", "%s %s NUL %r" % (method, path, raw))
    for method, path, tok, tmpl, field in string_templates():
        raw = tmpl.replace(b"%s", b"123\\u00004")          # escaped NUL inside the string
        st, b = D.api(method, path, token=tok, raw=raw)
        # In an object key, U+0000 cannot survive parsing (json-c keys are C strings), so the
        # body itself is refused as bad_json; in a value it is the field that is bad.
        in_key = tmpl.startswith(b'{"labels":{"%s"')
        want, names = ("bad_json", None) if in_key else ("bad_field", field)
        c.check(st, b, 400, want, "%s %s escaped NUL %r" % (method, path, raw), names=names)
    # a user name with an escaped NUL must never be truncated at the NUL and created
    st, b = D.admin("GET", "/v1/users/123")
    assert st == 404, "name truncated at NUL and created: %s %r" % (st, b)
    c.done()
    _alive("NUL bytes")
    _state_unchanged()


def test_null_values():
    fresh()
    c = Collect()
    for method, path, tok, valid, required, typed in endpoints():
        for field in list(required) + [f for f in typed if f not in required]:
            body = dict(valid)
            body[field] = None
            st, b = D.api(method, path, body, token=tok)
            c.check(st, b, 400, "bad_field", "%s %s %s=null" % (method, path, field),
                    names=field)
    c.done()
    _alive("null values")
    _state_unchanged()


def test_control_characters():
    fresh()
    c = Collect()
    for method, path, tok, tmpl, field in string_templates():
        for esc in (b"\\u0001", b"\\u001f", b"\\n", b"\\t", b"\\r", b"\\u007f", b"\\u001b[31m"):
            raw = tmpl.replace(b"%s", b"ab" + esc + b"cd")
            st, b = D.api(method, path, token=tok, raw=raw)
            c.check(st, b, 400, "bad_field", "%s %s escaped control %r" % (method, path, esc),
                    names=field)
        for ctl in (b"\x01", b"\n", b"\t", b"\x1f"):
            raw = tmpl.replace(b"%s", b"ab" + ctl + b"cd")       # unescaped: not JSON at all
            st, b = D.api(method, path, token=tok, raw=raw)
            c.check(st, b, 400, "bad_json", "%s %s raw control %r" % (method, path, ctl))
    c.done()
    _alive("control characters")
    _state_unchanged()


def test_groups_rules():
    fresh()
    c = Collect()
    for groups in ([""], ["a b"], ["a/b"], ["ä"], ["g" * 65], ["g%d" % i for i in range(65)],
                   ["ok", 5], "wheel", [["x"]]):
        st, b = D.admin("POST", "/v1/users", {"name": NEVER, "groups": groups})
        c.check(st, b, 400, "bad_field", "POST /v1/users groups=%r" % (groups,)[:60], names="groups")
        st, b = D.admin("PATCH", "/v1/users/%s" % USER, {"groups": groups})
        c.check(st, b, 400, "bad_field", "PATCH groups=%r" % (groups,)[:60], names="groups")
    c.done()
    name = D.create_user(groups=["wheel", "Ops", "a.b-c_D", "g" * 64] + ["x%d" % i for i in range(60)])
    u = D.get_user(name)
    assert u["groups"] == sorted(u["groups"]) and len(u["groups"]) == 64, u["groups"]
    st, b = D.admin("PATCH", "/v1/users/%s" % name, {"groups": ["zeta", "alpha", "Mid"]})
    assert st == 200 and b["groups"] == sorted(["zeta", "alpha", "Mid"]), (st, b)
    assert D.get_user(name)["groups"] == sorted(["zeta", "alpha", "Mid"])
    _alive("groups")
    _state_unchanged()


def test_unknown_path_404():
    fresh()
    c = Collect()
    for method, path in (("GET", "/v1/nope"), ("GET", "/v2/health"), ("GET", "/"),
                         ("POST", "/v1/users/%s/nope" % USER), ("GET", "/v1/health/x"),
                         ("GET", "/v1/users/%s/totp/x" % USER), ("GET", "/v1/approvals/x/y/z")):
        st, b = D.api(method, path, token=D.admin_token,
                      body={} if method == "POST" else None)
        c.check(st, b, 404, "not_found", "%s %s" % (method, path))
    st, b = D.admin("GET", "/v1/users/no_such_user")
    c.check(st, b, 404, "not_found", "GET unknown user")
    st, b = D.api("GET", "/v1/auth/push/" + "ab" * 16, token=HOST_TOKEN)
    c.check(st, b, 404, "not_found", "GET unknown push")
    st, b = D.api("POST", "/v1/auth/totp", {"txid": "ab" * 16, "code": "123456"}, token=HOST_TOKEN)
    c.check(st, b, 404, "not_found", "totp with unknown txid")
    st, b = D.admin("POST", "/v1/approvals/%s/approve" % ("cd" * 16), {"match": "00"})
    c.check(st, b, 404, "not_found", "approve unknown push")
    c.done()
    _alive("unknown paths")


def test_wrong_method_405():
    fresh()
    c = Collect()
    cases = [("DELETE", "/v1/health", None), ("POST", "/v1/health", None),
             ("GET", "/v1/enroll", None), ("PUT", "/v1/users", D.admin_token),
             ("DELETE", "/v1/users", D.admin_token), ("GET", "/v1/tokens", D.admin_token),
             ("PUT", "/v1/users/%s" % USER, D.admin_token),
             ("GET", "/v1/auth/begin", HOST_TOKEN), ("DELETE", "/v1/auth/push/%s" % PUSH_ID, HOST_TOKEN),
             ("GET", "/v1/approvals/%s/approve" % PUSH_ID, D.admin_token),
             ("DELETE", "/v1/audit", D.admin_token), ("POST", "/v1/hosts", D.admin_token),
             ("POST", "/v1/info", D.admin_token)]
    for method, path, tok in cases:
        st, b = D.api(method, path, token=tok, body={} if method in ("POST", "PUT") else None)
        c.check(st, b, 405, "method_not_allowed", "%s %s" % (method, path))
    c.done()
    _alive("wrong methods")
    _state_unchanged()


def test_garbage_http_does_not_kill_daemon():
    fresh()
    import socket
    import ssl
    # plain HTTP on the TLS port, a TLS client that sends junk, and a half-open connection
    s = socket.create_connection(("127.0.0.1", D.port), timeout=3)
    s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        s.recv(100)
    except OSError:
        pass
    s.close()
    ctx = D.ssl_context()
    with socket.create_connection(("127.0.0.1", D.port), timeout=5) as raw:
        with ctx.wrap_socket(raw) as t:
            t.sendall(b"\x00\x01\x02 NOT HTTP\r\n\r\n")
            try:
                t.recv(100)
            except OSError:
                pass
    with socket.create_connection(("127.0.0.1", D.port), timeout=5) as raw:
        with ctx.wrap_socket(raw) as t:
            t.sendall(b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n"
                      b"Authorization: Bearer " + D.admin_token.encode() + b"\r\n\r\n{")
            try:
                t.settimeout(5)
                data = t.recv(4096)
                if data:
                    assert b" 413 " in data.split(b"\r\n")[0], data[:200]
            except (OSError, socket.timeout):
                pass
    _alive("garbage HTTP")
