#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""The approval web app in a real browser: headless Chromium (cdp.py, a WebAuthn virtual
authenticator) against a real portcullisd with --web-listen and a test certificate made here
with openssl; the end-to-end cases add a real sshd + ssh under expect (tests/e2e, needs root;
run under flock /tmp/pc-system-tests.lock).
    PC_BUILD_DIR=BUILD tests/webapp/run.sh [FILTER...]
One PASS/FAIL/SKIP line per test, then "N passed, N failed[, N skipped]". Screenshots at 390x844
go to $PC_TEST_OUT/webapp-screenshots (default BUILD/webapp-screenshots)."""
import base64
import hashlib
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
sys.path.insert(0, os.path.join(SRC, "tests", "e2e"))
import cdp  # noqa: E402
import harness  # noqa: E402
import test_webpush as tw  # noqa: E402

RP = "approve.test"
OTHER = "evil.test"
BUILD = os.environ.get("PC_BUILD_DIR", os.path.join(SRC, "build-main"))
SHOTS = os.path.join(os.environ.get("PC_TEST_OUT") or BUILD, "webapp-screenshots")
TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class Skip(Exception):
    pass


# --------------------------------------------------------------------------------------------
# the environment: a test certificate, portcullisd with the web listener, a browser

def make_cert(dirpath, name, cn=RP):
    key, crt = os.path.join(dirpath, name + ".key"), os.path.join(dirpath, name + ".crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt, "-days", "2",
                    "-subj", "/CN=" + cn, "-addext", "subjectAltName=DNS:" + cn],
                   check=True, capture_output=True)
    return key, crt


def spki_b64(crt):
    der = subprocess.run(["openssl", "x509", "-in", crt, "-pubkey", "-noout"], check=True,
                         capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=der, check=True,
                         capture_output=True).stdout
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


class Web:
    """portcullisd + its web listener + what the tests need to talk to it."""

    def __init__(self, daemon=None):
        self.tmp = tempfile.mkdtemp(prefix="pc-webapp-")
        harness._TMP_ROOTS.append(self.tmp)  # its TLS key: removed at exit
        self.key, self.crt = make_cert(self.tmp, "web")
        self.wport = harness.free_port()
        self.origin = "https://%s:%d" % (RP, self.wport)
        self.args = ["--web-listen", "127.0.0.1:%d" % self.wport, "--web-origin", self.origin,
                     "--web-cert", self.crt, "--web-key", self.key]
        self.d = daemon
        self.browser = None

    def start(self, env=None):
        self.d = harness.Daemon(args=self.args, env=env).start()
        return self

    def open_browser(self):
        if self.browser is None:
            self.browser = cdp.Browser(spki_b64(self.crt), {RP: "127.0.0.1", OTHER: "127.0.0.1"})
        return self.browser

    def close(self):
        if self.browser:
            self.browser.close()
            self.browser = None

    # ---- HTTP to the web listener, as any client could --------------------------------
    def req(self, method, path, body=None, cookie=None, origin="same", headers=None, raw=None):
        ctx = ssl.create_default_context(cafile=self.crt)
        ctx.check_hostname = False
        conn = http.client.HTTPSConnection("127.0.0.1", self.wport, context=ctx, timeout=20)
        h = {"Host": "%s:%d" % (RP, self.wport)}
        if origin == "same":
            h["Origin"] = self.origin
        elif origin:
            h["Origin"] = origin
        if cookie:
            h["Cookie"] = "__Host-pcweb=" + cookie
        if headers:
            h.update(headers)
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                            else None)
        if data is not None:
            h["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        text = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        conn.close()
        try:
            j = json.loads(text)
        except ValueError:
            j = None
        return r.status, j, hdrs, text

    def api(self, method, path, body=None, **kw):
        st, j, _, _ = self.req(method, "/app/api/" + path, body, **kw)
        return st, j

    # ---- admin side ------------------------------------------------------------------------
    def invite(self, user):
        st, b = self.d.admin("POST", "/v1/users/%s/invite" % user, {})
        assert st == 201, "invite %s → %s %r" % (user, st, b)
        return b["url"]

    def session_cookie(self):
        for c in self.browser.cookies():
            if c["name"] == "__Host-pcweb":
                return c["value"]
        return None


def visible(view):
    return "!document.getElementById('%s').hidden" % view


def register_in_browser(w, user, totp_expected=None, shots=False):
    """Opens the user's invite in the browser and creates a passkey; returns the invite URL."""
    b = w.open_browser()
    url = w.invite(user)
    b.goto(url)
    b.wait(visible("v-invite"), what="the invite screen")
    if shots:
        os.makedirs(SHOTS, exist_ok=True)
        b.screenshot(os.path.join(SHOTS, "0-invite.png"))
    b.js("document.getElementById('b-register').click()")
    b.wait("%s || %s" % (visible("v-totp"), visible("v-list")), what="passkey created")
    if totp_expected is not None:
        shown = b.js(visible("v-totp"))
        assert shown == totp_expected, "TOTP QR shown: %r, expected %r" % (shown, totp_expected)
    if shots and b.js(visible("v-totp")):
        b.wait("document.getElementById('totp-qr').complete", what="the QR image")
        b.screenshot(os.path.join(SHOTS, "0-totp.png"))
    if b.js(visible("v-totp")):
        b.js("document.getElementById('b-totp-done').click()")
    b.wait(visible("v-list"), what="the list after registering")
    return url


def signin_in_browser(w, user="alice"):
    b = w.browser
    b.goto(w.origin + "/app/")
    b.wait("%s || %s" % (visible("v-signin"), visible("v-list")), what="sign-in or list")
    if b.js(visible("v-list")):
        b.js("document.getElementById('b-signout').click()")
        b.wait(visible("v-signin"), what="signed out")
    # Several people's passkeys sit on the one virtual authenticator (alice's, bob's): a sign-in
    # with discoverable credentials may pick any of them (Chromium's choice is unspecified), so
    # the others are taken off for the ceremony and put back after it.
    away = []
    for aid in b.authenticators:
        for c in b.page("WebAuthn.getCredentials", authenticatorId=aid)["credentials"]:
            if c.get("isResidentCredential") and c.get("userName", user) != user:
                b.page("WebAuthn.removeCredential", authenticatorId=aid,
                       credentialId=c["credentialId"])
                away.append((aid, c))
    try:
        b.js("document.getElementById('b-signin').click()")
        b.wait(visible("v-list"), what="the list after signing in")
    finally:
        for aid, c in away:
            b.page("WebAuthn.addCredential", authenticatorId=aid, credential=c)


# In-page helpers (DevTools evaluation is not subject to the page's CSP): run a ceremony and
# return the request body the app would send, without sending it.
JS_HELPERS = r"""
window.__t = {
  b64u: (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g,'-').replace(/\//g,'_').replace(/=+$/,''),
  unb64u: (s) => Uint8Array.from(atob(s.replace(/-/g,'+').replace(/_/g,'/')), c => c.charCodeAt(0)),
  async post(path, body) {
    const r = await fetch('/app/api/' + path, {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
    return {status: r.status, body: await r.json()};
  },
  async assertion(b, uv) {
    const a = await navigator.credentials.get({publicKey: {challenge: __t.unb64u(b.challenge), rpId: b.rp_id,
      userVerification: uv || 'required', allowCredentials: (b.allow || []).map(id => ({type: 'public-key', id: __t.unb64u(id)}))}});
    return {credential_id: __t.b64u(a.rawId), client_data: __t.b64u(a.response.clientDataJSON),
            authenticator_data: __t.b64u(a.response.authenticatorData), signature: __t.b64u(a.response.signature)};
  },
  async approvalBody(pushId, uv) {
    const b = await __t.post('pushes/' + pushId + '/begin', {});
    if (b.status !== 200) return {error: b};
    return await __t.assertion(b.body, uv);
  },
  async register(invite, algs) {
    const b = (await __t.post('invite/begin', {invite})).body;
    const c = await navigator.credentials.create({publicKey: {challenge: __t.unb64u(b.challenge), rp: {id: b.rp_id, name: 'x'},
      user: {id: __t.unb64u(b.user_handle), name: b.user, displayName: b.user},
      pubKeyCredParams: algs.map(alg => ({type: 'public-key', alg})),
      authenticatorSelection: {residentKey: 'required', userVerification: 'required'}, attestation: 'none'}});
    return {invite, client_data: __t.b64u(c.response.clientDataJSON),
            authenticator_data: __t.b64u(c.response.getAuthenticatorData()), alg: c.response.getPublicKeyAlgorithm()};
  },
};
true
"""


def helpers(b):
    b.js(JS_HELPERS)


def approval_body(w, push_id, uv="required"):
    helpers(w.browser)
    body = w.browser.js("__t.approvalBody(%s, %s)" % (json.dumps(push_id), json.dumps(uv)))
    assert "error" not in body, "pushes/%s/begin → %r" % (push_id, body)
    return body


def push_state(w, push_id, host_token):
    st, b = w.d.poll_push(host_token, push_id)
    assert st == 200, "poll push → %s %r" % (st, b)
    return b["state"]


def audit_rows(w, user, action):
    return [r for r in w.d.audit(user=user) if r.get("action") == action]


# --------------------------------------------------------------------------------------------
# shared state of the browser cases (one daemon, one browser; alice and bob have passkeys)

S = {}


def env():
    if "w" not in S:
        # a loopback push receiver (tests/integration/test_webpush.py) the daemon trusts
        recv_dir = tempfile.mkdtemp(prefix="pc-webapp-recv-")
        harness._TMP_ROOTS.append(recv_dir)
        tw.RECV = S["recv"] = tw.Receiver(recv_dir)
        w = Web().start(env={"PC_TEST_WEBPUSH_CA": S["recv"].paths["ca.pem"]})
        S["w"] = w
        S["host_id"], S["host"] = w.d.enroll_host()
        w.d.create_user("alice")
        w.d.create_user("bob")
    return S["w"]


def alice_signed_in():
    w = env()
    w.open_browser()
    if not S.get("alice_registered"):
        if not w.browser.authenticators:
            w.browser.add_authenticator()
        register_in_browser(w, "alice", totp_expected=True)
        S["alice_registered"] = True
        S["alice_invite"] = w.browser.js("1") and S.get("alice_invite")
    if not w.session_cookie():
        signin_in_browser(w)
    return w


def new_push(w, user="alice"):
    _, p = w.d.create_push(S["host"], user, rhost="203.0.113.7", service="sshd")
    return p


# --------------------------------------------------------------------------------------------
# cases

@test
def invite_registers_passkey_shows_totp_once_and_signs_in():
    w = env()
    b = w.open_browser()
    b.add_authenticator()
    url = register_in_browser(w, "alice", totp_expected=True, shots=True)
    S["alice_registered"] = True
    S["alice_invite"] = url
    st, keys = w.d.admin("GET", "/v1/users/alice/passkeys")
    assert st == 200 and len(keys["passkeys"]) == 1, "passkeys → %s %r" % (st, keys)
    assert keys["passkeys"][0]["algorithm"] == "es256", keys
    st, u = w.d.admin("GET", "/v1/users/alice")
    assert u.get("totp") in (True, "yes", "enrolled") or u.get("totp"), "alice has no TOTP: %r" % u
    # sign out, then sign in with the passkey alone
    b.js("document.getElementById('b-signout').click()")
    b.wait(visible("v-signin"), what="the sign-in screen")
    os.makedirs(SHOTS, exist_ok=True)
    b.screenshot(os.path.join(SHOTS, "1-signin.png"))
    b.js("document.getElementById('b-signin').click()")
    b.wait(visible("v-list"), what="the list after signing in")
    assert b.js("document.getElementById('who').textContent") == "alice"
    assert audit_rows(w, "alice", "web.signin"), "no web.signin audit row"
    assert audit_rows(w, "alice", "passkey.register"), "no passkey.register audit row"
    cookie = [c for c in b.cookies() if c["name"] == "__Host-pcweb"]
    assert cookie and cookie[0]["httpOnly"] and cookie[0]["secure"] and \
        cookie[0]["sameSite"] == "Strict" and cookie[0]["path"] == "/", cookie


@test
def invite_second_use_refused():
    w = alice_signed_in()
    tok = S["alice_invite"].split("#invite=")[1]
    st, b = w.api("POST", "invite/begin", {"invite": tok})
    assert st == 410 and b["error"] == "invite_invalid", "second use → %s %r" % (st, b)
    # and the page says so
    br = w.browser
    br.goto("about:blank")
    br.goto(S["alice_invite"])
    br.wait("document.getElementById('msg').textContent.includes('used already')",
            what="the 'used already' message")
    # a user who already has TOTP gets no QR: bob has TOTP, registers with Ed25519
    w.d.enroll_totp("bob")
    url = w.invite("bob")
    helpers(br)
    body = br.js("__t.register(%s, [-8])" % json.dumps(url.split("#invite=")[1]))
    st, r = w.api("POST", "invite/finish", body)
    assert st == 200 and r["user"] == "bob" and "totp_uri" not in r, "bob → %s %r" % (st, r)
    st, keys = w.d.admin("GET", "/v1/users/bob/passkeys")
    assert [k["algorithm"] for k in keys["passkeys"]] == ["ed25519"], keys
    st, r = w.api("POST", "invite/finish", body)
    assert st == 410, "the same registration again → %s %r" % (st, r)
    signin_in_browser(w)  # back to alice's session in the browser (signin_in_browser: why alice)
    st, me = w.api("GET", "me", cookie=w.session_cookie())
    assert st == 200 and me.get("user") == "alice", "the browser is %s %r, not alice's" % (st, me)


@test
def approve_with_passkey_and_number():
    w = alice_signed_in()
    p = new_push(w)
    br = w.browser
    br.goto(w.origin + "/app/")
    br.wait("document.querySelectorAll('#pushes li').length >= 1", what="the push in the list")
    br.screenshot(os.path.join(SHOTS, "2-list.png"))
    text = br.js("document.getElementById('pushes').textContent")
    assert "from 203.0.113.7" in text and "sshd" in text and "ago" in text, "list: %r" % text
    br.js("document.querySelector('#pushes li[data-id=\"%s\"]').click()" % p["push_id"])
    br.wait(visible("v-approve"), what="the approval screen")
    br.js("document.getElementById('a-match').value = %s" % json.dumps(p["match"]))
    br.screenshot(os.path.join(SHOTS, "3-approve.png"))
    br.js("document.getElementById('b-approve').click()")
    br.wait("document.getElementById('msg').textContent === 'Approved.'", what="Approved.")
    assert push_state(w, p["push_id"], S["host"]) == "approved"
    rows = audit_rows(w, "alice", "push.approve")
    assert rows and rows[-1]["actor"] == "passkey:alice", "audit: %r" % rows


@test
def wrong_number_denies():
    w = alice_signed_in()
    p = new_push(w)
    body = approval_body(w, p["push_id"])
    body["match"] = harness.wrong_match(p["match"])
    st, r = w.api("POST", "pushes/%s/approve" % p["push_id"], body, cookie=w.session_cookie())
    assert st == 200 and r["state"] == "denied", "wrong number → %s %r" % (st, r)
    assert push_state(w, p["push_id"], S["host"]) == "denied"
    rows = audit_rows(w, "alice", "push.deny")
    assert rows and rows[-1]["reason"] == "wrong_match", rows


@test
def deny_is_one_tap():
    w = alice_signed_in()
    p = new_push(w)
    st, r = w.api("POST", "pushes/%s/deny" % p["push_id"], {}, cookie=w.session_cookie())
    assert st == 200 and r["state"] == "denied", "deny → %s %r" % (st, r)
    assert push_state(w, p["push_id"], S["host"]) == "denied"


@test
def replayed_approval_refused():
    w = alice_signed_in()
    p1, p2 = new_push(w), new_push(w)
    body = approval_body(w, p1["push_id"])
    body["match"] = p1["match"]
    st, r = w.api("POST", "pushes/%s/approve" % p1["push_id"], body, cookie=w.session_cookie())
    assert st == 200 and r["state"] == "approved", "first → %s %r" % (st, r)
    # the same request again, and the same assertion for another push
    st, r = w.api("POST", "pushes/%s/approve" % p1["push_id"], body, cookie=w.session_cookie())
    assert st == 401, "replay → %s %r" % (st, r)
    body["match"] = p2["match"]
    st, r = w.api("POST", "pushes/%s/approve" % p2["push_id"], body, cookie=w.session_cookie())
    assert st == 401 and r["error"] == "passkey_refused", "replay on p2 → %s %r" % (st, r)
    # a challenge issued for p2 but the assertion posted to p3
    p3 = new_push(w)
    body = approval_body(w, p2["push_id"])
    body["match"] = p3["match"]
    st, r = w.api("POST", "pushes/%s/approve" % p3["push_id"], body, cookie=w.session_cookie())
    assert st == 401, "p2's assertion on p3 → %s %r" % (st, r)
    for p in (p2, p3):
        assert push_state(w, p["push_id"], S["host"]) == "pending"


@test
def cookie_without_fresh_assertion_refused():
    w = alice_signed_in()
    p = new_push(w)
    c = w.session_cookie()
    st, r = w.api("POST", "pushes/%s/approve" % p["push_id"], {"match": p["match"]}, cookie=c)
    assert st == 400, "match only → %s %r" % (st, r)
    junk = base64.urlsafe_b64encode(b"x" * 40).decode().rstrip("=")
    st, r = w.api("POST", "pushes/%s/approve" % p["push_id"],
                  {"match": p["match"], "credential_id": junk, "client_data": junk,
                   "authenticator_data": junk, "signature": junk}, cookie=c)
    assert st == 401, "junk assertion → %s %r" % (st, r)
    assert push_state(w, p["push_id"], S["host"]) == "pending"


@test
def other_origin_refused():
    w = alice_signed_in()
    p = new_push(w)
    c = w.session_cookie()
    for origin in ("https://%s:%d" % (OTHER, w.wport), "null", None,
                   "https://%s:%d.evil.test" % (RP, w.wport), "http://%s:%d" % (RP, w.wport)):
        st, r = w.api("POST", "pushes/%s/deny" % p["push_id"], {}, cookie=c, origin=origin)
        assert st == 403 and r["error"] == "bad_origin", "Origin %r → %s %r" % (origin, st, r)
        st, r = w.api("POST", "signin/begin", {}, origin=origin)
        assert st == 403, "signin/begin, Origin %r → %s %r" % (origin, st, r)
    # a page on another origin, in the browser: the request is refused too
    br = w.browser
    br.goto("https://%s:%d/app/" % (OTHER, w.wport))
    res = br.js("fetch('https://%s:%d/app/api/pushes/%s/deny', {method: 'POST', mode: 'no-cors',"
                " credentials: 'include', body: '{}'}).then(() => 'sent', e => 'error')"
                % (RP, w.wport, p["push_id"]))
    assert res in ("sent", "error")
    assert push_state(w, p["push_id"], S["host"]) == "pending", "a cross-origin deny took effect"


@test
def each_endpoint_each_caller():
    w = alice_signed_in()
    p = new_push(w)
    alice = w.session_cookie()
    # bob's session (his Ed25519 passkey was registered above; sign him in over HTTP)
    st, r = w.api("POST", "signin/begin", {})
    assert st == 200
    admin_tok, host_tok = w.d.admin_token, S["host"]
    garbage = "0" * 64
    session_eps = [("GET", "me", None), ("GET", "pushes", None),
                   ("POST", "pushes/%s/begin" % p["push_id"], {}),
                   ("POST", "pushes/%s/approve" % p["push_id"], {"match": p["match"]}),
                   ("POST", "pushes/%s/deny" % p["push_id"], {}), ("POST", "signout", {})]
    for method, path, body in session_eps:
        for who, kw in (("none", {}), ("garbage cookie", {"cookie": garbage}),
                        ("host token", {"headers": {"Authorization": "Bearer " + host_tok}}),
                        ("admin token", {"headers": {"Authorization": "Bearer " + admin_tok}}),
                        ("CLI-style bearer", {"headers": {"Authorization": "Bearer " + "a" * 64}})):
            st, r = w.api(method, path, body, **kw)
            assert st == 401, "%s %s as %s → %s %r" % (method, path, who, st, r)
    # the app's endpoints are not on the pinned listener, the API is not on the web listener
    st, _ = w.d.api("GET", "/app/api/pushes", token=admin_tok)
    assert st == 404, "/app/api on the pinned listener → %s" % st
    st, _ = w.d.api("GET", "/app/", token=admin_tok)
    assert st == 404, "/app/ on the pinned listener → %s" % st
    for path in ("/v1/health", "/v1/approvals", "/v1/users"):
        st, _, _, _ = w.req("GET", path, headers={"Authorization": "Bearer " + admin_tok})
        assert st == 404, "%s on the web listener → %s" % (path, st)
    st, _, _, _ = w.req("POST", "/v1/approvals/%s/approve" % p["push_id"], {"match": p["match"]},
                        headers={"Authorization": "Bearer " + admin_tok})
    assert st == 404, "admin approve on the web listener → %s" % st
    # the admin endpoints: admin only
    for method, path, body in (("POST", "/v1/users/alice/invite", {}),
                               ("GET", "/v1/users/alice/passkeys", None),
                               ("DELETE", "/v1/users/alice/passkeys/999", None)):
        st, _ = w.d.api(method, path, body)
        assert st == 401, "%s %s without a token → %s" % (method, path, st)
        st, _ = w.d.api(method, path, body, token=host_tok)
        assert st == 403, "%s %s as a host → %s" % (method, path, st)
    # another user's session: bob sees none of alice's pushes and cannot act on them
    br = w.browser
    helpers(br)
    st, bob = sign_in_as_bob(w)
    st, r = w.api("GET", "pushes", cookie=bob)
    assert st == 200 and all(x["push_id"] != p["push_id"] for x in r["pushes"]), r
    st, r = w.api("POST", "pushes/%s/begin" % p["push_id"], {}, cookie=bob)
    assert st == 404, "bob begins alice's push → %s %r" % (st, r)
    st, r = w.api("POST", "pushes/%s/deny" % p["push_id"], {}, cookie=bob)
    assert st == 404, "bob denies alice's push → %s %r" % (st, r)
    body = approval_body(w, p["push_id"])  # alice's fresh assertion, posted with bob's cookie
    body["match"] = p["match"]
    st, r = w.api("POST", "pushes/%s/approve" % p["push_id"], body, cookie=bob)
    assert st == 401, "alice's assertion under bob's session → %s %r" % (st, r)
    assert push_state(w, p["push_id"], S["host"]) == "pending"
    st, r = w.api("GET", "me", cookie=alice)
    assert st == 200 and r["user"] == "alice"


def sign_in_as(w, user):
    """user's passkey lives in the same virtual authenticator: sign in with it over HTTP (the
    browser's own cookie stays alice's). Returns the session cookie's value."""
    br = w.browser
    st, b = w.api("POST", "signin/begin", {})
    assert st == 200
    b["allow"] = [k["credential_id"] for k in
                  w.d.admin("GET", "/v1/users/%s/passkeys" % user)[1]["passkeys"]]
    assert b["allow"], "%s has no passkey" % user
    helpers(br)
    body = br.js("__t.assertion(%s)" % json.dumps(b))
    st, r, h, _ = w.req("POST", "/app/api/signin/finish", body)
    assert st == 200 and r["user"] == user, "%s signs in → %s %r" % (user, st, r)
    return h["set-cookie"].split(";")[0].split("=", 1)[1]


def sign_in_as_bob(w):
    return 200, sign_in_as(w, "bob")


@test
def login_push_approved_in_app_and_cli_session_is_no_web_caller():
    """`portcullis login --push` is approved with the passkey like an SSH push; the session it
    yields is no caller of the app."""
    w = alice_signed_in()
    br = w.browser
    helpers(br)
    tmp = tempfile.mkdtemp(prefix="pc-webapp-key-")
    harness._TMP_ROOTS.append(tmp)  # an SSH private key: removed at exit
    w.d.create_user("carol")
    w.d.enroll_totp("carol")
    tok = w.invite("carol").split("#invite=")[1]
    st, r = w.api("POST", "invite/finish", br.js("__t.register(%s, [-7])" % json.dumps(tok)))
    assert st == 200, "carol registers → %s %r" % (st, r)
    carol = sign_in_as(w, "carol")
    key = os.path.join(tmp, "id")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True,
                   stdin=subprocess.DEVNULL)
    with open(key + ".pub") as f:
        pub = f.read().strip()
    assert w.d.admin("POST", "/v1/users/carol/keys", {"public_key": pub})[0] == 201
    assert w.d.admin("POST", "/v1/policies", {"name": "p-carol", "users": ["carol"],
                                              "accounts": ["$user"]})[0] == 201
    st, s = w.d.api("POST", "/v1/login/start", {"user": "carol", "public_key": pub})
    assert st == 200, (st, s)
    msg = os.path.join(tmp, "msg")
    with open(msg, "wb") as f:
        f.write(base64.b64decode(s["challenge"]))
    subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-n", "portcullis-login", "-f", key, msg],
                   check=True, stdin=subprocess.DEVNULL, capture_output=True)
    with open(msg + ".sig") as f:
        sig = f.read()
    st, push = w.d.api("POST", "/v1/login/finish",
                       {"login_id": s["login_id"], "signature": sig, "push": True})
    assert st == 202, (st, push)
    st, lst = w.api("GET", "pushes", cookie=carol)
    assert [x["push_id"] for x in lst["pushes"]] == [push["push_id"]], lst
    st, b = w.api("POST", "pushes/%s/begin" % push["push_id"], {}, cookie=carol)
    assert st == 200, (st, b)
    body = br.js("__t.assertion(%s)" % json.dumps(b))
    body["match"] = push["match"]
    st, r = w.api("POST", "pushes/%s/approve" % push["push_id"], body, cookie=carol)
    assert st == 200 and r["state"] == "approved", "login push → %s %r" % (st, r)
    st, lg = w.d.api("GET", "/v1/login/%s" % s["login_id"])
    assert st == 200 and lg.get("session_token"), (st, lg)
    cli_session = lg["session_token"]
    S["cli_session"] = cli_session
    for method, path, body in (("GET", "me", None), ("GET", "pushes", None),
                               ("POST", "signout", {})):
        st, r = w.api(method, path, body,
                      headers={"Authorization": "Bearer " + cli_session})
        assert st == 401, "%s %s with a CLI session → %s %r" % (method, path, st, r)
        st, r = w.api(method, path, body, cookie=cli_session)
        assert st == 401, "%s %s with a CLI session as cookie → %s %r" % (method, path, st, r)
    rows = [x for x in audit_rows(w, "carol", "push.approve")]
    assert rows and rows[-1]["actor"] == "passkey:carol", rows


def mutate_b64(s, fn):
    raw = bytearray(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
    raw = fn(raw)
    return base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")


def enc(b):
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


@test
def hostile_assertions_refused():
    w = alice_signed_in()
    p = new_push(w)
    c = w.session_cookie()
    good = approval_body(w, p["push_id"])
    cd = json.loads(base64.urlsafe_b64decode(good["client_data"] + "=" * 4))

    def cdj(**over):
        d = dict(cd)
        d.update(over)
        return enc(json.dumps(d).encode())

    def flip_rpid(raw):
        raw[0] ^= 1
        return raw

    def uv_off(raw):
        raw[32] &= ~0x04
        return raw

    cases = [
        ("oversized client_data", {"client_data": enc(b"{" + b" " * 5000 + b"}")}, 400),
        ("garbage client_data", {"client_data": "!!!not base64!!!"}, 400),
        ("client_data not JSON", {"client_data": enc(b"\x00\x01garbage")}, 401),
        ("wrong type", {"client_data": cdj(type="webauthn.create")}, 401),
        ("wrong challenge", {"client_data": cdj(challenge=enc(os.urandom(32)))}, 401),
        ("wrong origin", {"client_data": cdj(origin="https://%s:%d" % (OTHER, w.wport))}, 401),
        ("crossOrigin", {"client_data": cdj(crossOrigin=True)}, 401),
        ("oversized authenticator_data", {"authenticator_data": enc(os.urandom(2000))}, 400),
        ("short authenticator_data", {"authenticator_data": enc(b"\x01" * 10)}, 401),
        ("wrong rpIdHash", {"authenticator_data": mutate_b64(good["authenticator_data"],
                                                             flip_rpid)}, 401),
        ("UV flag off", {"authenticator_data": mutate_b64(good["authenticator_data"], uv_off)}, 401),
        ("bad signature", {"signature": mutate_b64(good["signature"],
                                                   lambda r: r[:-1] + bytes([r[-1] ^ 1]))}, 401),
        ("unknown credential", {"credential_id": enc(os.urandom(16))}, 401),
        ("extra field", {"admin": True}, 400),
    ]
    for name, over, want in cases:
        body = dict(good)
        body.update(over)
        body["match"] = p["match"]
        st, r = w.api("POST", "pushes/%s/approve" % p["push_id"], body, cookie=c)
        assert st == want, "%s → %s %r (expected %d)" % (name, st, r, want)
    st, r, _, _ = w.req("POST", "/app/api/pushes/%s/approve" % p["push_id"],
                        raw=b"{" + b"x" * 20000, cookie=c)
    assert st == 413, "20 KB body → %s" % st
    st, r, _, _ = w.req("POST", "/app/api/pushes/%s/approve" % p["push_id"], raw=b"[1,2",
                        cookie=c)
    assert st == 400, "not JSON → %s" % st
    # a real assertion made without user verification (same authenticator, UV not performed)
    br = w.browser
    br.set_user_verified(br.authenticators[0], False)
    try:
        body = approval_body(w, p["push_id"], uv="discouraged")
    finally:
        br.set_user_verified(br.authenticators[0], True)
    flags = base64.urlsafe_b64decode(body["authenticator_data"] + "==")[32]
    assert flags & 0x01 and not flags & 0x04, "the authenticator set flags %#x" % flags
    body["match"] = p["match"]
    st, r = w.api("POST", "pushes/%s/approve" % p["push_id"], body, cookie=c)
    assert st == 401, "a validly signed assertion without UV → %s %r" % (st, r)
    assert push_state(w, p["push_id"], S["host"]) == "pending"
    # the untouched assertion is accepted (so each refusal above was about its change), once
    good["match"] = p["match"]
    st, r = w.api("POST", "pushes/%s/approve" % p["push_id"], good, cookie=c)
    assert st == 200 and r["state"] == "approved", "the good assertion → %s %r" % (st, r)
    st, r = w.api("POST", "pushes/%s/approve" % p["push_id"], good, cookie=c)
    assert st == 401, "the good assertion again → %s %r" % (st, r)


@test
def hostile_registrations_refused():
    w = alice_signed_in()
    br = w.browser
    helpers(br)
    url = w.invite("alice")
    tok = url.split("#invite=")[1]
    good = br.js("__t.register(%s, [-7])" % json.dumps(tok))
    cd = json.loads(base64.urlsafe_b64decode(good["client_data"] + "=" * 4))

    def cdj(**over):
        d = dict(cd)
        d.update(over)
        return enc(json.dumps(d).encode())

    for name, over, want in (
            ("wrong type", {"client_data": cdj(type="webauthn.get")}, 401),
            ("wrong origin", {"client_data": cdj(origin="https://evil.test")}, 401),
            ("wrong challenge", {"client_data": cdj(challenge=enc(os.urandom(32)))}, 401),
            ("wrong rpIdHash", {"authenticator_data": mutate_b64(
                good["authenticator_data"], lambda r: bytearray([r[0] ^ 1]) + r[1:])}, 401),
            ("UV off", {"authenticator_data": mutate_b64(
                good["authenticator_data"], lambda r: r[:32] + bytearray([r[32] & ~4]) + r[33:])},
             401),
            ("wrong alg", {"alg": -8}, 401),
            ("RS256", {"alg": -257}, 400),
            ("garbage authenticator_data", {"authenticator_data": enc(os.urandom(300))}, 401),
            ("no invite", {"invite": "f" * 64}, 410)):
        body = dict(good)
        body.update(over)
        st, r = w.api("POST", "invite/finish", body)
        assert st == want, "%s → %s %r (expected %d)" % (name, st, r, want)
    st, keys = w.d.admin("GET", "/v1/users/alice/passkeys")
    assert len(keys["passkeys"]) == 1, "a hostile registration was stored: %r" % keys


@test
def headers_and_app_size():
    w = env()
    total = 0
    for path in ("/app/", "/app/app.js", "/app/app.css", "/app/sw.js",
                 "/app/manifest.webmanifest", "/app/icon.svg"):
        st, _, h, body = w.req("GET", path, origin=None)
        assert st == 200, "%s → %s" % (path, st)
        total += len(body)
        csp = h.get("content-security-policy", "")
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and \
            "unsafe-inline" not in csp, "%s CSP: %r" % (path, csp)
        assert h.get("x-frame-options") == "DENY" and h.get("referrer-policy") == "no-referrer"
    assert total < 60 * 1024, "the app is %d bytes" % total
    _, _, _, html = w.req("GET", "/app/", origin=None)
    assert b"<script>" not in html and b"onclick" not in html and b"http://" not in html.replace(
        b"http://www.w3.org", b"")
    st, _, h, _ = w.req("GET", "/", origin=None)
    assert st == 302 and h.get("location") == "/app/"
    st, _, h, _ = w.req("GET", "/app/../v1/health", origin=None)
    assert st in (400, 404)


@test
def one_address_cannot_fill_the_web_listener():
    """The web listener faces phones on any network: 72 connections from one address that never
    start TLS (issue 12's half-open attack): at most 64 of them stay open, the others are closed
    at once without a byte (the listener's idle limit is 30 s); the hosts' listener answers
    meanwhile; once they are gone the app answers again. (The browser may hold a few connections
    of its own from the same address, and may drop them meanwhile: the count of ours that stay
    open is what is bounded.)"""
    w = env()
    socks = []
    try:
        for _ in range(72):
            socks.append(socket.create_connection(("127.0.0.1", w.wport), timeout=5))
        time.sleep(1.0)
        still_open = 0
        for s_ in socks:
            s_.setblocking(False)
            try:
                got = s_.recv(1)
            except BlockingIOError:
                still_open += 1         # held by the server, waiting for our handshake
                continue
            except ConnectionResetError:
                got = b""
            assert got == b"", "the listener sent %r before any handshake" % got
        assert still_open <= 64, "one address holds %d connections" % still_open
        assert len(socks) - still_open >= 8, "only %d of 72 were refused" % (72 - still_open)
        st, _ = w.d.api("GET", "/v1/health")
        assert st == 200, "the pinned listener during the attack → %s" % st
    finally:
        for s_ in socks:
            s_.close()
    def app_answers():
        try:
            return w.req("GET", "/app/", origin=None)[0] == 200
        except OSError:     # the listener has not yet seen all of ours close: still full
            return False
    harness.wait_until(app_answers, timeout=15, what="the app after the connections closed")


@test
def installs_as_pwa():
    w = alice_signed_in()
    br = w.browser
    br.goto(w.origin + "/app/")
    br.wait("navigator.serviceWorker.getRegistration('/app/').then(r => !!(r && r.active))",
            timeout=20, what="an active service worker")
    m = br.js("fetch('/app/manifest.webmanifest').then(r => r.json())")
    assert m["display"] == "standalone" and m["start_url"] == "/app/", m
    assert br.js("document.documentElement.scrollWidth <= 390"), "wider than the phone"


@test
def certificate_reloaded_on_sighup():
    w = env()
    before = spki_served(w)
    key, crt = make_cert(w.tmp, "web2")
    os.replace(key, w.key)
    os.replace(crt, w.crt)
    os.kill(w.d.pid, signal.SIGHUP)
    harness.wait_until(lambda: spki_served(w) != before, timeout=10, what="the new certificate")
    assert spki_served(w) == spki_b64(w.crt)
    st, _ = w.d.api("GET", "/v1/health")
    assert st == 200, "the pinned listener after SIGHUP → %s" % st
    # a broken file: the old certificate stays
    good = spki_b64(w.crt)
    with open(w.crt, "w") as f:
        f.write("not a certificate\n")
    os.kill(w.d.pid, signal.SIGHUP)
    harness.wait_until(lambda: "web_reload_failed" in w.d.log(), timeout=10,
                       what="the failed reload in the log")
    assert spki_served(w) == good, "a broken certificate was taken"
    key, crt = make_cert(w.tmp, "web3")
    os.replace(key, w.key)
    os.replace(crt, w.crt)
    os.kill(w.d.pid, signal.SIGHUP)
    harness.wait_until(lambda: spki_served(w) == spki_b64(w.crt), timeout=10, what="web3")
    # the browser trusts only the first test certificate's key: restart it for later cases
    w.close()


def spki_served(w):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    import socket
    with socket.create_connection(("127.0.0.1", w.wport), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname=RP) as t:
            der = t.getpeercert(binary_form=True)
    pem = ssl.DER_cert_to_PEM_cert(der)
    path = os.path.join(w.tmp, "served.crt")
    with open(path, "w") as f:
        f.write(pem)
    return spki_b64(path)


@test
def passkey_delete_ends_web_sessions():
    w = env()
    rc, out, err = harness.run_cli(w.d, "user", "passkeys", "bob")
    assert rc == 0 and "ed25519" in out, "passkeys bob → %d %s %s" % (rc, out, err)
    pid = w.d.admin("GET", "/v1/users/bob/passkeys")[1]["passkeys"][0]["id"]
    rc, out, err = harness.run_cli(w.d, "user", "passkey", "delete", "bob", str(pid))
    assert rc == 0, "passkey delete → %d %s %s" % (rc, out, err)
    st, keys = w.d.admin("GET", "/v1/users/bob/passkeys")
    assert keys["passkeys"] == []
    st, r = w.api("GET", "me", cookie=S.get("bob_cookie") or "0" * 64)
    assert st == 401
    rc, out, err = harness.run_cli(w.d, "user", "invite", "bob", "--ttl", "1h")
    assert rc == 0 and "#invite=" in out and "\u2588" in out, "invite → %d %s %s" % (rc, out, err)
    rc, out, err = harness.run_cli(w.d, "user", "invite", "nobody")
    assert rc != 0, "invite for an unknown user → %d" % rc
    # a deleted user's passkeys go with them: a new "alice" starts with none
    st, _ = w.d.admin("DELETE", "/v1/users/alice")
    assert st == 200
    w.d.create_user("alice")
    st, keys = w.d.admin("GET", "/v1/users/alice/passkeys")
    assert st == 200 and keys["passkeys"] == [], "the new alice inherited %r" % keys
    S.pop("alice_registered", None)


@test
def web_flags_validated():
    tmp = tempfile.mkdtemp(prefix="pc-webapp-flags-")
    harness._TMP_ROOTS.append(tmp)
    key, crt = make_cert(tmp, "web")
    port, wport = harness.free_port(), harness.free_port()
    base = [harness.DAEMON_BIN, "--data-dir", os.path.join(tmp, "d"), "--listen",
            "127.0.0.1:%d" % port]
    web = ["--web-listen", "127.0.0.1:%d" % wport]
    good_origin = ["--web-origin", "https://%s:%d" % (RP, wport)]
    files = ["--web-cert", crt, "--web-key", key]
    for args, rc, words in (
            (web + files, 2, "--web-listen needs"),
            (good_origin + files, 2, "need --web-listen"),
            (web + ["--web-origin", "http://%s" % RP] + files, 2, "--web-origin"),
            (web + ["--web-origin", "https://Approve.test"] + files, 2, "--web-origin"),
            (web + ["--web-origin", "https://%s/app" % RP] + files, 2, "--web-origin"),
            (web + ["--web-origin", "https://127.0.0.1"] + files, 2, "--web-origin"),
            (["--web-listen", "approve.test:443"] + good_origin + files, 2, "--web-listen"),
            (web + good_origin + ["--web-cert", crt + ".missing", "--web-key", key], 1,
             "--web-cert"),
            (web + good_origin + ["--web-cert", key, "--web-key", crt], 1, "--web-listen")):
        r = subprocess.run(base + args, capture_output=True, text=True, timeout=30)
        assert r.returncode == rc and words in r.stderr, \
            "%r → rc %d (want %d), stderr %r" % (args, r.returncode, rc, r.stderr[-400:])


# --------------------------------------------------------------------------------------------
# end to end: ssh under expect, the number approved in the browser (root, real sshd)

E2E = {}


def e2e_env():
    if "E" in E2E:
        return E2E["E"]
    if os.geteuid() != 0:
        raise Skip("needs root (real sshd, PAM service file, test accounts)")
    import run_e2e
    web = Web()

    class WebDaemon(harness.Daemon):
        def __init__(self, *a, **kw):
            kw["args"] = list(kw.get("args") or []) + web.args
            super().__init__(*a, **kw)

    real = harness.Daemon
    harness.Daemon = WebDaemon
    try:
        run_e2e.E.setup()
    finally:
        harness.Daemon = real
    web.d = run_e2e.E.d
    E2E["E"], E2E["web"], E2E["mod"] = run_e2e.E, web, run_e2e
    return run_e2e.E


def e2e_login(match_for):
    E = e2e_env()
    web, m = E2E["web"], E2E["mod"]
    u = "pctest4"
    E.fresh_user(u, push=True)
    br = web.open_browser()
    if not br.authenticators:
        br.add_authenticator()
    register_in_browser(web, u, totp_expected=False)
    seen = {}

    def on_prompt(match):
        seen["match"] = match
        if match is None:
            return "close"
        br.goto(web.origin + "/app/")
        br.wait("document.querySelectorAll('#pushes li').length >= 1", what="the push")
        br.js("document.querySelector('#pushes li').click()")
        br.wait(visible("v-approve"), what="the approval screen")
        br.js("document.getElementById('a-match').value = %s" % json.dumps(match_for(match)))
        br.js("document.getElementById('b-approve').click()")
        br.wait("/Approved|denied/.test(document.getElementById('msg').textContent)",
                what="the decision")
        seen["msg"] = br.js("document.getElementById('msg').textContent")
        return "enter"

    t0 = time.time()
    l = m.login(u, on_prompt=on_prompt)
    return E, l, seen, u, t0


@test
def sshd_login_approved_in_browser():
    E, l, seen, u, t0 = e2e_login(lambda match: match)
    assert seen.get("match"), "no number in the prompt:\n" + l.describe()
    assert seen.get("msg") == "Approved.", seen
    assert l.marker, "ssh did not log in:\n" + l.describe()
    rows = [r for r in E.audit(u, t0) if r["action"] == "push.approve"]
    assert rows and rows[0]["actor"] == "passkey:%s" % u, rows


@test
def sshd_login_wrong_number_refused():
    E, l, seen, u, t0 = e2e_login(lambda match: harness.wrong_match(match))
    assert seen.get("match"), "no number in the prompt:\n" + l.describe()
    assert "denied" in seen.get("msg", ""), seen
    assert not l.marker and l.denied, "ssh logged in after a wrong number:\n" + l.describe()


# --------------------------------------------------------------------------------------------

# --------------------------------------------------------------------------------------------
# Web Push in the app: webpush/vapid-public-key, webpush/subscriptions on the cookie session

WP_EPS = [("GET", "webpush/vapid-public-key", None), ("GET", "webpush/subscriptions", None),
          ("POST", "webpush/subscriptions", "SUB"), ("DELETE", "webpush/subscriptions/1", None)]


def db_subscriptions(w, user):
    """The stored subscriptions of user, read from the daemon's store itself (SQLite's file or,
    with PC_TEST_STORE=postgresql, its database: harness.db_query)."""
    return [r[0] for r in harness.db_query(
        w.d, "SELECT s.endpoint FROM webpush_subscriptions s JOIN users u ON u.id = s.user_id"
        " WHERE u.name = ? ORDER BY s.id", (user,))]


def other_user_session(w, user):
    """A second user with a passkey (registered over HTTP; passkey_delete_ends_web_sessions has
    taken bob's) and their session cookie."""
    if not S.get(user):
        br = w.browser
        helpers(br)
        w.d.create_user(user)
        tok = w.invite(user).split("#invite=")[1]
        st, r = w.api("POST", "invite/finish", br.js("__t.register(%s, [-7])" % json.dumps(tok)))
        assert st == 200, "%s registers → %s %r" % (user, st, r)
        S[user] = True
    return sign_in_as(w, user)


@test
def webpush_endpoints_each_caller():
    w = alice_signed_in()
    alice = w.session_cookie()
    recv = S["recv"]
    sub = tw.Subscription(recv.endpoint("ok"))
    admin_tok, host_tok = w.d.admin_token, S["host"]
    callers = [("none", {}), ("garbage cookie", {"cookie": "0" * 64}),
               ("host token", {"headers": {"Authorization": "Bearer " + host_tok}}),
               ("host token as cookie", {"cookie": host_tok}),
               ("admin token", {"headers": {"Authorization": "Bearer " + admin_tok}}),
               ("admin token as cookie", {"cookie": admin_tok}),
               ("CLI-style bearer", {"headers": {"Authorization": "Bearer " + "a" * 64}})]
    if S.get("cli_session"):  # a real `portcullis login` session (carol's, from the test above)
        callers += [("CLI session", {"headers": {"Authorization": "Bearer " + S["cli_session"]}}),
                    ("CLI session as cookie", {"cookie": S["cli_session"]})]
    for method, path, body in WP_EPS:
        for who, kw in callers:
            st, r = w.api(method, path, sub.json() if body else None, **kw)
            assert st == 401, "%s %s as %s → %s %r" % (method, path, who, st, r)
    assert db_subscriptions(w, "alice") == [], "a refused caller stored a subscription"
    # the cookie session: the same VAPID key as /v1, a subscription stored and listed
    st, k = w.api("GET", "webpush/vapid-public-key", cookie=alice)
    st1, k1 = w.d.api("GET", "/v1/webpush/vapid-public-key")
    assert st == 200 and st1 == 200 and k["public_key"] == k1["public_key"], (st, k, k1)
    # wrong Origin on the state-changing requests: refused, nothing stored
    for origin in ("https://%s:%d" % (OTHER, w.wport), "null", None):
        st, r = w.api("POST", "webpush/subscriptions", sub.json(), cookie=alice, origin=origin)
        assert st == 403 and r["error"] == "bad_origin", "POST, Origin %r → %s %r" % (origin, st, r)
    assert db_subscriptions(w, "alice") == []
    st, r = w.api("POST", "webpush/subscriptions", sub.json(), cookie=alice)
    assert st == 201 and r["endpoint"] == sub.endpoint and isinstance(r["id"], int), (st, r)
    sid = r["id"]
    assert db_subscriptions(w, "alice") == [sub.endpoint]
    st, r = w.api("GET", "webpush/subscriptions", cookie=alice)
    assert st == 200 and [x["id"] for x in r["subscriptions"]] == [sid], r
    for origin in ("https://%s:%d" % (OTHER, w.wport), None):
        st, r = w.api("DELETE", "webpush/subscriptions/%d" % sid, cookie=alice, origin=origin)
        assert st == 403 and r["error"] == "bad_origin", "DELETE, Origin %r → %s %r" % (origin, st, r)
    # another user: sees none of alice's, cannot delete hers
    bob = other_user_session(w, "dave")
    st, r = w.api("GET", "webpush/subscriptions", cookie=bob)
    assert st == 200 and r["subscriptions"] == [], r
    st, r = w.api("DELETE", "webpush/subscriptions/%d" % sid, cookie=bob)
    assert st == 404, "bob deletes alice's subscription → %s %r" % (st, r)
    assert db_subscriptions(w, "alice") == [sub.endpoint]
    for bad in ("0", "-1", "abc", "99999999999999999999999", "%dx" % sid, "0x%x" % sid):
        st, r = w.api("DELETE", "webpush/subscriptions/" + bad, cookie=alice)
        assert st == 404, "DELETE subscriptions/%s → %s %r" % (bad, st, r)
    st, r = w.api("DELETE", "webpush/subscriptions/%d" % sid, cookie=alice)
    assert st == 200 and r["deleted"] == sid, (st, r)
    assert db_subscriptions(w, "alice") == []
    st, r = w.api("DELETE", "webpush/subscriptions/%d" % sid, cookie=alice)
    assert st == 404, "a second DELETE → %s %r" % (st, r)


@test
def webpush_hostile_subscriptions_refused():
    w = alice_signed_in()
    alice = w.session_cookie()
    recv = S["recv"]
    s = tw.Subscription(recv.endpoint("ok"))
    for b, field in tw.hostile_subscriptions(s, recv.port):
        st, r = w.api("POST", "webpush/subscriptions", b, cookie=alice)
        assert st == 400 and field in r.get("message", ""), (field, b, st, r)
    for raw in (b"{not json", b"[]", b'"x"', b"\x00", b""):
        st, _, _, _ = w.req("POST", "/app/api/webpush/subscriptions", cookie=alice, raw=raw)
        assert st == 400, "raw %r → %s" % (raw, st)
    st, _, _, _ = w.req("POST", "/app/api/webpush/subscriptions", cookie=alice, raw=b"x" * 70000)
    assert st == 413, st
    assert db_subscriptions(w, "alice") == [], "a refused subscription was stored"


# The test's stand-in for the vendor push service (unreachable here): PushManager's subscribe and
# getSubscription return a subscription whose keys the test holds, so the app's own code runs.
PUSH_STUB = r"""
(() => {
  if (!self.PushManager) return;
  const SUB = %s;
  let on = false;
  const obj = () => ({ endpoint: SUB.endpoint, toJSON: () => SUB,
                       unsubscribe: async () => { on = false; return true; } });
  PushManager.prototype.subscribe = async function (o) {
    self.__pcSubscribeOpts = { userVisibleOnly: o.userVisibleOnly, key: Array.from(new Uint8Array(o.applicationServerKey)) };
    on = true; return obj();
  };
  PushManager.prototype.getSubscription = async function () { return on ? obj() : null; };
})();
"""


def notify_state(br):
    return br.js("document.getElementById('notify').hidden ? 'hidden' :"
                 " document.getElementById('notify').dataset.state || ''")


@test
def app_subscribes_and_the_notice_reaches_the_receiver():
    w = alice_signed_in()
    br = w.browser
    recv = S["recv"]
    sub = tw.Subscription(recv.endpoint("ok"))
    br.page("Page.addScriptToEvaluateOnNewDocument", source=PUSH_STUB % json.dumps(sub.json()))
    br.call("Browser.grantPermissions", origin=w.origin, permissions=["notifications"])
    br.goto(w.origin + "/app/")
    br.wait(visible("v-list"), what="the list")
    br.wait("document.getElementById('notify').dataset.state === 'off'", what="the notify control")
    assert br.js("document.getElementById('b-notify').textContent") == "Notify me on this phone"
    os.makedirs(SHOTS, exist_ok=True)
    br.screenshot(os.path.join(SHOTS, "2-list-notify-off.png"))
    br.js("document.getElementById('b-notify').click()")
    br.wait("document.getElementById('notify').dataset.state === 'on'", timeout=20,
            what="notifications on")
    assert br.js("document.getElementById('notify-state').textContent").endswith(": on")
    # the app asked for a user-visible subscription with the server's VAPID key
    opts = br.js("self.__pcSubscribeOpts")
    key = tw.unb64u(w.d.api("GET", "/v1/webpush/vapid-public-key")[1]["public_key"])
    assert opts["userVisibleOnly"] is True and bytes(opts["key"]) == key, opts
    assert db_subscriptions(w, "alice") == [sub.endpoint]
    rows = audit_rows(w, "alice", "webpush.subscribe")
    assert rows, "no webpush.subscribe audit row"
    br.screenshot(os.path.join(SHOTS, "2-list-notify-on.png"))
    # a push from a host → the receiver gets a notice for this subscription
    p = new_push(w)
    got = recv.to(sub.endpoint)[0]
    notice = sub.decrypt(got["body"])
    assert notice["push_id"] == p["push_id"] and notice["url"] == w.origin + "/app/", notice
    assert notice["host"] and notice["rhost"] == "203.0.113.7" and notice["service"] == "sshd"
    assert "match" not in notice, "the notice carries the number"
    S["notified_push"], S["notice"] = p, notice
    # off again: the server forgets it
    br.js("document.getElementById('b-notify').click()")
    br.wait("document.getElementById('notify').dataset.state === 'off'", timeout=20,
            what="notifications off")
    assert db_subscriptions(w, "alice") == []
    # permission denied: no control at all
    br.call("Browser.setPermission", origin=w.origin, permission={"name": "notifications"},
            setting="denied")
    br.goto(w.origin + "/app/")
    br.wait(visible("v-list"), what="the list")
    time.sleep(1)
    assert notify_state(br) == "hidden", "the notify control is shown with permission denied"
    br.call("Browser.grantPermissions", origin=w.origin, permissions=["notifications"])


@test
def service_worker_shows_the_notice_and_opens_its_approval():
    w = alice_signed_in()
    br = w.browser
    p = new_push(w)
    br.call("Browser.grantPermissions", origin=w.origin, permissions=["notifications"])
    br.goto(w.origin + "/app/")
    br.wait("navigator.serviceWorker.getRegistration('/app/').then(r => !!(r && r.active))",
            timeout=20, what="an active service worker")
    br.events.clear()
    br.page("ServiceWorker.enable")
    reg = None
    deadline = time.time() + 10
    while reg is None and time.time() < deadline:
        for m in list(br.events):
            if m.get("method") == "ServiceWorker.workerRegistrationUpdated":
                for x in m["params"]["registrations"]:
                    if x["scopeURL"] == w.origin + "/app/" and not x.get("isDeleted"):
                        reg = x["registrationId"]
        if reg is None:
            br.js("1")  # pumps the events
            time.sleep(0.2)
    if reg is None:
        raise Skip("DevTools reported no service worker registration")
    payload = {"push_id": p["push_id"], "host": "web-1.example", "rhost": "203.0.113.7",
               "service": "sshd", "url": w.origin + "/app/"}
    br.page("ServiceWorker.deliverPushMessage", origin=w.origin, registrationId=reg,
            data=json.dumps(payload))
    notes = br.wait("navigator.serviceWorker.ready.then(r => r.getNotifications())"
                    ".then(ns => ns.length ? ns.map(n => ({title: n.title, body: n.body, data: n.data})) : null)",
                    timeout=15, what="a notification shown")
    n = [x for x in notes if x["data"]["push"] == p["push_id"]]
    assert n, notes
    n = n[0]
    assert n["title"] == "Sign-in on web-1.example", n
    assert "203.0.113.7" in n["body"] and "sshd" in n["body"], n
    assert n["data"]["url"] == w.origin + "/app/#push=" + p["push_id"], n
    # a hostile payload: a url elsewhere is never used, odd fields are dropped
    br.page("ServiceWorker.deliverPushMessage", origin=w.origin, registrationId=reg,
            data=json.dumps({"push_id": "../x", "host": 7, "url": "https://evil.test/app/"}))
    odd = br.wait("navigator.serviceWorker.ready.then(r => r.getNotifications({tag: 'portcullis'}))"
                  ".then(ns => ns.length ? ns.map(n => ({title: n.title, data: n.data})) : null)",
                  timeout=15, what="the hostile notice's notification")
    assert odd[0]["data"]["url"] == w.origin + "/app/" and odd[0]["data"]["push"] == "", odd
    # what a tap opens (the notificationclick itself cannot be driven through DevTools): the
    # notification's url, in a fresh window, lands on that push's approval screen
    br.goto(n["data"]["url"])
    br.wait(visible("v-approve"), timeout=15, what="the approval screen of the notified push")
    assert br.js("location.hash") == "", "the fragment stays in the address bar"
    assert br.js("document.getElementById('a-rhost').textContent") == "203.0.113.7"
    # and with the app already open: the service worker's message opens it too
    br.goto(w.origin + "/app/")
    br.wait(visible("v-list"), what="the list")
    br.js("navigator.serviceWorker.dispatchEvent(new MessageEvent('message', {data: {push: %s}}))"
          % json.dumps(p["push_id"]))
    br.wait(visible("v-approve"), timeout=15, what="the approval screen after the message")
    br.js("document.getElementById('b-back').click()")


def main(argv):
    filters = argv[1:]
    selected = [t for t in TESTS if not filters or any(f in t.__name__ for f in filters)]
    passed = failed = skipped = 0
    store_seen = set()
    reason = None
    if not cdp.chromium_bin():
        reason = "chromium not installed"
    elif not os.path.exists(os.path.join(BUILD, "control-plane", "portcullisd")):
        reason = "portcullisd not built in %s (set PC_BUILD_DIR)" % BUILD
    try:
        for t in selected:
            if reason:
                print("SKIP %s: %s" % (t.__name__, reason))
                skipped += 1
                continue
            try:
                t()
                # every portcullisd so far ran on the store asked for (PC_TEST_STORE;
                # tests/webapp-pg), not on a silent fallback
                bad = [p for p in harness.store_problems() if p not in store_seen]
                if bad:
                    store_seen.update(bad)
                    raise AssertionError("portcullisd not on the %s store:\n%s"
                                         % (harness.STORE, "\n".join(bad)))
                print("PASS %s" % t.__name__, flush=True)
                passed += 1
            except Skip as e:
                print("SKIP %s: %s" % (t.__name__, e), flush=True)
                skipped += 1
            except BaseException as e:  # noqa: B902
                print("FAIL %s" % t.__name__, flush=True)
                for line in ("%s\n%s" % (e, traceback.format_exc())).splitlines():
                    print("    " + line)
                w = S.get("w")
                if w and w.d:
                    print("    daemon log (tail):")
                    for line in w.d.log().splitlines()[-15:]:
                        print("      " + line)
                failed += 1
    finally:
        for w in (S.get("w"), E2E.get("web")):
            if w:
                w.close()
        if S.get("recv"):
            S["recv"].close()
        if "E" in E2E:
            E2E["E"].teardown()
        harness.cleanup_all()
    s = "%d passed, %d failed" % (passed, failed)
    if skipped:
        s += ", %d skipped" % skipped
    print(s)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
