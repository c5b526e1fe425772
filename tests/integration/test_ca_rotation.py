# SPDX-License-Identifier: BSD-2-Clause
"""CA rotation (issue 15, second half) against a real portcullisd and real agents: the admin-only
endpoints GET /v1/ca, POST /v1/ca/{user,host}/{rotate,finish} refuse every other caller (none,
garbage, host, user session) and hostile input (rotate twice, finish without a rotation, finish
before the overlap's end, bad overlap durations, unknown CA, unknown fields), changing nothing;
the phases (public_keys, what signs, status, audit, the KRL: both CAs' sections during the
overlap, the retired key revoked after finish); a restart keeps the rotation and completes a
finish interrupted between its commit and its rename; agents rewrite user_ca.pub / host_ca.pub
to exactly the current set (an organisation's own keys kept), a host that missed the whole
overlap renews at once, and a crash half way through writing user_ca.pub leaves the old file.

Each test that rotates starts its own daemon: the rotation is global state."""
import os
import shutil
import signal
import subprocess
import tempfile
import time

import harness
from harness import Daemon
import test_agent_ca as ac

TEST_TIMEOUT = 180
D = None  # shared daemon for the tests that do not rotate


def setup_module():
    global D
    ac.ROOT = tempfile.mkdtemp(prefix="pc-carot-")
    harness._TMP_ROOTS.append(ac.ROOT)
    os.chmod(ac.ROOT, 0o755)
    D = Daemon().start()


def teardown_module():
    ac.teardown_module()
    if D:
        D.kill()


def fresh_daemon():
    return Daemon().start()


def keys_of(d, kind):
    st, b = d.api("GET", "/v1/ca/%s.pub" % kind)
    assert st == 200, (st, b)
    assert b["public_keys"][0] == b["public_key"], b
    return [" ".join(k.split()[:2]) for k in b["public_keys"]]


def status(d):
    st, b = d.admin("GET", "/v1/ca")
    assert st == 200, (st, b)
    return b


def bare(line):
    return " ".join(line.split()[:2])


def file_keys(path):
    with open(path) as f:
        return [bare(l) for l in f.read().splitlines() if l.strip() and not l.startswith("#")]


def write_pub(dirpath, name, line):
    p = os.path.join(dirpath, name)
    with open(p, "w") as f:
        f.write(line + "\n")
    return p


def signing_ca_fp(cert_path):
    info = ac.cert_info(cert_path)
    for l in info.splitlines():
        if "Signing CA:" in l:
            return l.split()[3]
    raise AssertionError(info)


def fp_of_line(dirpath, line):
    return ac.fingerprint(write_pub(dirpath, "k%d.pub" % time.monotonic_ns(), line))


def person(d, tmp):
    key = os.path.join(tmp, "id_%d" % time.monotonic_ns())
    name, secret = ac.person_with_key(d, key)
    ac.add_policy(d, harness.unique_name("r"), users=[name])
    return name, secret, key


# --------------------------------------------------------------------------------------------
# callers and hostile input

def test_rotation_endpoints_refuse_every_caller_but_the_admin():
    tmp = ac.fresh_dir("callers-")
    h = ac.Host(D)
    h.enroll()
    with open(h.token_file) as f:
        host_token = f.read().strip()
    name, secret, key = person(D, tmp)
    session = ac.user_cert(D, name, secret, key)["session_token"]
    before_user, before_host = keys_of(D, "user"), keys_of(D, "host")
    calls = [("GET", "/v1/ca", None), ("POST", "/v1/ca/user/rotate", {"overlap": 0}),
             ("POST", "/v1/ca/host/rotate", {}), ("POST", "/v1/ca/user/finish", {"now": True}),
             ("POST", "/v1/ca/host/finish", {"now": True})]
    callers = [(None, 401), ("00" * 32, 401), ("garbage token", 401), (host_token, 403),
               (session, 403)]
    for method, path, body in calls:
        for token, want in callers:
            st, b = D.api(method, path, body=body, token=token)
            assert st == want and b.get("error") in ("unauthorized", "forbidden"), (
                method, path, token and token[:8], st, b)
    assert keys_of(D, "user") == before_user and keys_of(D, "host") == before_host
    s = status(D)
    assert s["user"]["phase"] == "stable" and s["host"]["phase"] == "stable", s
    assert not [r for r in D.audit() if r["action"].startswith("ca.")], D.audit()
    assert not os.path.exists(D.path("ca_user.next.key"))
    # the public endpoints stay public, for everyone
    for token in (None, "garbage", host_token, session):
        st, b = D.api("GET", "/v1/ca/host.pub", token=token)
        assert st == 200 and bare(b["public_key"]) == before_host[0], (st, b)


def test_rotation_refuses_hostile_input_and_changes_nothing():
    d = fresh_daemon()
    try:
        u0, h0 = keys_of(d, "user"), keys_of(d, "host")
        bad = [("/v1/ca/user/rotate", {"overlap": -1}, 400),
               ("/v1/ca/user/rotate", {"overlap": 90 * 86400 + 1}, 400),
               ("/v1/ca/user/rotate", {"overlap": "1h"}, 400),
               ("/v1/ca/user/rotate", {"overlap": 1.5}, 400),
               ("/v1/ca/user/rotate", {"overlap": None}, 400),
               ("/v1/ca/user/rotate", {"overlap": 2 ** 63}, 400),
               ("/v1/ca/user/rotate", {"ttl": 60}, 400),
               ("/v1/ca/host/rotate", {"key": "ssh-ed25519 AAAA"}, 400),
               ("/v1/ca/ssh/rotate", {}, 404),
               ("/v1/ca/..%2fuser/rotate", {}, 404),
               ("/v1/ca/user/finish", {}, 409),          # nothing to finish
               ("/v1/ca/host/finish", {"now": True}, 409),
               ("/v1/ca/user/finish", {"now": "yes"}, 400)]
        for path, body, want in bad:
            st, b = d.admin("POST", path, body)
            assert st == want, (path, body, st, b)
        for raw in ("not json", "[1]", "{\"overlap\":", "\x00"):
            st, b = d.admin("POST", "/v1/ca/user/rotate", raw=raw)
            assert st == 400, (raw, st, b)
        st, b = d.admin("POST", "/v1/ca/user/finish", {})
        assert b["error"] == "no_rotation", b
        assert keys_of(d, "user") == u0 and keys_of(d, "host") == h0
        assert status(d)["user"]["phase"] == "stable"
        assert not os.path.exists(d.path("ca_user.next.key"))
        assert not [r for r in d.audit() if r["action"].startswith("ca.")]
        # a good rotation ({}: the default overlap of 1 day), then hostile steps
        st, b = d.admin("POST", "/v1/ca/user/rotate", {})
        assert st == 200 and b["phase"] == "overlap", (st, b)
        assert 86400 - 5 <= b["overlap_end"] - b["since"] <= 86400, b
        u1 = keys_of(d, "user")
        st, b = d.admin("POST", "/v1/ca/user/rotate", {"overlap": 0})
        assert st == 409 and b["error"] == "rotation_in_progress", (st, b)
        assert keys_of(d, "user") == u1, "a second rotate replaced the key"
        st, b = d.admin("POST", "/v1/ca/user/finish", {})
        assert st == 409 and b["error"] == "overlap_running", (st, b)
        st, b = d.admin("POST", "/v1/ca/user/finish", {"now": False})
        assert st == 409 and b["error"] == "overlap_running", (st, b)
        assert keys_of(d, "user") == u1 and len(u1) == 2
        # the host CA is untouched by the user CA's rotation
        assert keys_of(d, "host") == h0 and status(d)["host"]["phase"] == "stable"
        acts = [r["action"] for r in d.audit() if r["action"].startswith("ca.")]
        assert acts == ["ca.rotate"], acts
    finally:
        d.kill()


# --------------------------------------------------------------------------------------------
# the phases on the control plane

def test_phases_public_keys_signing_status_audit_and_krl():
    d = fresh_daemon()
    tmp = ac.fresh_dir("phases-")
    try:
        old = keys_of(d, "user")
        assert len(old) == 1
        # one person per login: a TOTP code is good once
        name, secret, key = person(d, tmp)
        # a certificate from the old key
        ac.user_cert(d, name, secret, key)
        old_cert = key + "-cert.pub"
        old_fp = fp_of_line(tmp, old[0])
        assert signing_ca_fp(old_cert) == old_fp
        st, b = d.admin("POST", "/v1/ca/user/rotate", {"overlap": 0})
        assert st == 200, (st, b)
        keys = keys_of(d, "user")
        assert len(keys) == 2 and keys[1] == old[0] and keys[0] != old[0], keys
        new_fp = fp_of_line(tmp, keys[0])
        assert [k["role"] for k in b["keys"]] == ["current", "previous"], b
        assert [k["fingerprint"] for k in b["keys"]] == [new_fp, old_fp], b
        assert harness.file_mode(d.path("ca_user.next.key")) == 0o600
        # new certificates: the new key; the old certificate is still good (KRL: ok)
        name2, secret2, key2 = person(d, tmp)
        ac.user_cert(d, name2, secret2, key2)
        new_cert = key2 + "-cert.pub"
        assert signing_ca_fp(new_cert) == new_fp
        krl = os.path.join(tmp, "krl")
        with open(krl, "wb") as f:
            f.write(d.request("GET", "/v1/krl")[3])
        assert ac.krl_query(krl, old_cert)[0] == 0
        assert ac.krl_query(krl, new_cert)[0] == 0
        # a serial revoked during the overlap is revoked for either key
        st, _ = d.admin("POST", "/v1/certs/revoke", {"serial": ac.cert_serial(new_cert)})
        assert st == 200
        with open(krl, "wb") as f:
            f.write(d.request("GET", "/v1/krl")[3])
        rc, text = ac.krl_query(krl, new_cert)
        assert rc != 0 and "REVOKED" in text, text
        assert ac.krl_query(krl, old_cert)[0] == 0
        # finish: one key; the retired key is revoked whole in the KRL
        st, b = d.admin("POST", "/v1/ca/user/finish", {})
        assert st == 200 and b["phase"] == "stable" and len(b["keys"]) == 1, (st, b)
        assert keys_of(d, "user") == [keys[0]]
        assert not os.path.exists(d.path("ca_user.next.key"))
        name3, secret3, key3 = person(d, tmp)
        ac.user_cert(d, name3, secret3, key3)
        with open(krl, "wb") as f:
            f.write(d.request("GET", "/v1/krl")[3])
        rc, text = ac.krl_query(krl, old_cert)
        assert rc != 0 and "REVOKED" in text, text
        assert ac.krl_query(krl, key3 + "-cert.pub")[0] == 0, "a new certificate is revoked"
        # the host KRL (clients' RevokedHostKeys) does not carry the user CA
        with open(krl, "wb") as f:
            f.write(d.request("GET", "/v1/krl/host")[3])
        assert ac.krl_query(krl, old_cert)[0] == 0
        rows = [r for r in d.audit() if r["action"].startswith("ca.")]
        assert [r["action"] for r in rows] == ["ca.rotate", "ca.finish"], rows
        assert old_fp in rows[0]["reason"] and new_fp in rows[0]["reason"], rows
        assert "removed=%s" % old_fp in rows[1]["reason"], rows
        assert all(r["actor"] == "admin" for r in rows)
        # the enrollment reply and ca.pub name the new key
        assert bare(d.api("GET", "/v1/ca/user.pub")[1]["public_key"]) == keys[0]
    finally:
        d.kill()


def test_restart_keeps_the_rotation_and_completes_an_interrupted_finish():
    d = fresh_daemon()
    try:
        h0 = keys_of(d, "host")
        st, b = d.admin("POST", "/v1/ca/host/rotate", {"overlap": 3600})
        assert st == 200
        h1 = keys_of(d, "host")
        s1 = status(d)["host"]
        d.restart()
        assert keys_of(d, "host") == h1 and status(d)["host"] == s1
        # keep both key files as they are during the overlap
        old_file = open(d.path("ca_host.key"), "rb").read()
        new_file = open(d.path("ca_host.next.key"), "rb").read()
        st, b = d.admin("POST", "/v1/ca/host/finish", {"now": True})
        assert st == 200 and keys_of(d, "host") == [h1[0]], (st, b)
        assert "before_overlap_end" in [r for r in d.audit()
                                        if r["action"] == "ca.finish"][0]["reason"]
        d.stop()
        # a crash between the finish's commit and its rename: both files as before
        for name, data in (("ca_host.key", old_file), ("ca_host.next.key", new_file)):
            with open(d.path(name), "wb") as f:
                f.write(data)
            os.chmod(d.path(name), 0o600)
        d.start()
        assert keys_of(d, "host") == [h1[0]] and h1[0] != h0[0]
        assert open(d.path("ca_host.key"), "rb").read() == new_file
        assert not os.path.exists(d.path("ca_host.next.key"))
        if harness.is_pg():
            # PostgreSQL: the finish replaced the key in the database in its own transaction;
            # the files in DIR are a copy, rewritten from it at start (cp_secrets.h)
            logs = d.all_logs()
            assert "event=secret_replaced" in logs and "ca_host.key" in logs, logs
            assert "event=secret_removed" in logs and "ca_host.next.key" in logs, logs
            # a missing key file comes back from the database, never as a new key
            d.stop()
            os.unlink(d.path("ca_host.key"))
            d.start()
            assert keys_of(d, "host") == [h1[0]]
            assert open(d.path("ca_host.key"), "rb").read() == new_file
            return
        assert "event=ca_finish_completed ca=host" in d.all_logs()
        # a missing key file the database knows about is never silently replaced
        d.stop()
        os.unlink(d.path("ca_host.key"))
        d.start(wait=False)
        harness.wait_until(lambda: not d.alive(), timeout=15, what="portcullisd to refuse")
        assert "restore the file from a backup" in d.all_logs(), d.all_logs()
        assert not os.path.exists(d.path("ca_host.key"))
    finally:
        d.kill()


def test_cli_ca_rotate_finish_status():
    d = fresh_daemon()
    try:
        rc, out, err = harness.run_cli(d, "ca", "status")
        assert rc == 0 and "user CA: stable" in out and "host CA: stable" in out, (out, err)
        for args in (("ca", "rotate"), ("ca", "rotate", "ssh"), ("ca", "rotate", "user",
                     "--overlap", "-5"), ("ca", "rotate", "user", "--overlap", "91d"),
                     ("ca", "rotate", "user", "--overlap", "1x"), ("ca", "finish", "user", "--x"),
                     ("ca", "status", "extra"), ("ca",)):
            rc, out, err = harness.run_cli(d, *args)
            assert rc == 2, (args, rc, out, err)
        assert status(d)["user"]["phase"] == "stable"
        rc, out, err = harness.run_cli(d, "ca", "rotate", "host", "--overlap", "2h")
        assert rc == 0 and "host CA: overlap since" in out and "overlap ends" in out, (out, err)
        assert "portcullis ssh-config" in out
        # ssh-config prints both host CA keys during the overlap, the new one first
        rc, out, err = harness.run_cli(d, "ssh-config", "--domain", "example.net")
        lines = [l for l in out.splitlines() if l.startswith("@cert-authority")]
        assert [bare(l.split(None, 2)[2]) for l in lines] == keys_of(d, "host"), out
        rc, out, err = harness.run_cli(d, "ca", "finish", "host")
        assert rc == 1 and "overlap" in err, (rc, out, err)
        rc, out, err = harness.run_cli(d, "ca", "finish", "host", "--now")
        assert rc == 0 and "host CA: stable" in out, (out, err)
        rc, out, err = harness.run_cli(d, "ssh-config", "--domain", "example.net")
        lines = [l for l in out.splitlines() if l.startswith("@cert-authority")]
        assert len(lines) == 1 and bare(lines[0].split(None, 2)[2]) == keys_of(d, "host")[0]
        st = harness.cli_json(d, "ca", "status")
        assert st["host"]["phase"] == "stable" and len(st["host"]["keys"]) == 1, st
        rc, out, err = harness.run_cli(d, "ca", "finish", "host", "--now")
        assert rc == 1 and "not rotating" in err, (rc, out, err)
    finally:
        d.kill()


# --------------------------------------------------------------------------------------------
# agents

def test_agent_installs_both_keys_then_exactly_the_current_set():
    d = fresh_daemon()
    try:
        h = ac.Host(d)
        os.makedirs(h.ssh_dir, mode=0o755)
        org = ac.keygen(os.path.join(h.dir, "org_ca"), "org-ca")
        with open(h.path("user_ca.pub"), "w") as f:
            f.write("# our own CA\n%s\n" % org)
        h.enroll()
        u0, h0 = keys_of(d, "user"), keys_of(d, "host")
        assert file_keys(h.path("user_ca.pub")) == [bare(org)] + u0
        for kind in ("user", "host"):
            assert d.admin("POST", "/v1/ca/%s/rotate" % kind, {"overlap": 0})[0] == 200
        u1, h1 = keys_of(d, "user"), keys_of(d, "host")
        rc, out, err = ac.run_agent("renew", "--config", h.conf)
        assert rc == 0, (out, err)
        text = open(h.path("user_ca.pub")).read()
        assert text.startswith("# our own CA\n%s\n" % org), text
        assert sorted(file_keys(h.path("user_ca.pub"))) == sorted([bare(org)] + u1), text
        assert sorted(file_keys(h.path("host_ca.pub"))) == sorted(h1)
        # the renewed host certificate comes from the new host CA
        assert signing_ca_fp(h.path("host-cert.pub")) == fp_of_line(h.dir, h1[0])
        for kind in ("user", "host"):
            assert d.admin("POST", "/v1/ca/%s/finish" % kind, {})[0] == 200
        # the daemon's sync drops the old keys (and keeps the organisation's)
        h.start()
        harness.wait_until(lambda: file_keys(h.path("user_ca.pub")) == [bare(org), u1[0]]
                           and file_keys(h.path("host_ca.pub")) == [h1[0]], timeout=15,
                           what="the agent to drop the old CA keys")
        assert open(h.path("user_ca.pub")).read().startswith("# our own CA\n%s\n" % org)
        assert harness.file_mode(h.path("user_ca.pub")) == 0o644
        assert u0[0] not in open(h.path("user_ca.pub")).read()
        h.stop()
    finally:
        d.kill()


def test_agent_that_missed_the_whole_overlap_renews_at_once():
    d = fresh_daemon()
    try:
        h = ac.Host(d)
        h.enroll()
        s0 = ac.cert_serial(h.path("host-cert.pub"))
        h0 = keys_of(d, "host")
        assert d.admin("POST", "/v1/ca/host/rotate", {"overlap": 0})[0] == 200
        assert d.admin("POST", "/v1/ca/host/finish", {})[0] == 200
        h1 = keys_of(d, "host")
        assert h1 != h0
        # the agent was offline through the rotation: its certificate is 30 days from its
        # renewal time, but its CA is gone, so it renews at once
        h.start()
        harness.wait_until(lambda: ac.cert_serial(h.path("host-cert.pub")) > s0, timeout=15,
                           what="the agent to renew from the new host CA")
        assert file_keys(h.path("host_ca.pub")) == h1
        assert signing_ca_fp(h.path("host-cert.pub")) == fp_of_line(h.dir, h1[0])
        # the agent reloads sshd after it wrote the certificate: a slow build (TSan) may not
        # have logged it yet when the file is seen
        harness.wait_until(lambda: "event=sshd_reload result=ok" in h.log(), timeout=15,
                           what="the agent to reload sshd after the renewal")
        time.sleep(2)
        assert h.log().count("event=host_cert_renew result=ok") == 1, h.log()
        h.stop()
    finally:
        d.kill()


def test_user_ca_rewrite_survives_a_crash_half_way():
    d = fresh_daemon()
    try:
        h = ac.Host(d)
        os.makedirs(h.ssh_dir, mode=0o755)
        org = ac.keygen(os.path.join(h.dir, "org_ca"), "org-ca")
        with open(h.path("user_ca.pub"), "w") as f:
            f.write("%s\n" % org)
        h.enroll()
        before = open(h.path("user_ca.pub"), "rb").read()
        assert d.admin("POST", "/v1/ca/user/rotate", {"overlap": 0})[0] == 200
        rc, out, err = ac.run_agent("renew", "--config", h.conf,
                                    env={"PC_TEST_CRASH_WRITING": "user_ca.pub"})
        assert rc == -signal.SIGABRT, (rc, out, err)
        # the crash left a partial temp file beside it, never in it
        assert open(h.path("user_ca.pub"), "rb").read() == before
        partial = [n for n in os.listdir(h.ssh_dir) if n.startswith("user_ca.pub.tmp.")]
        assert partial, os.listdir(h.ssh_dir)
        # sshd's view (ssh-keygen reads the same file): every old key still parses
        assert file_keys(h.path("user_ca.pub")) == [bare(org)] + keys_of(d, "user")[1:]
        # the next run completes it; finish, then a crash again leaves the two-key set
        rc, out, err = ac.run_agent("renew", "--config", h.conf)
        assert rc == 0, (out, err)
        two = open(h.path("user_ca.pub"), "rb").read()
        assert sorted(file_keys(h.path("user_ca.pub"))) == sorted([bare(org)] +
                                                                 keys_of(d, "user"))
        assert d.admin("POST", "/v1/ca/user/finish", {})[0] == 200
        rc, out, err = ac.run_agent("renew", "--config", h.conf,
                                    env={"PC_TEST_CRASH_WRITING": "user_ca.pub"})
        assert rc == -signal.SIGABRT and open(h.path("user_ca.pub"), "rb").read() == two
        rc, out, err = ac.run_agent("renew", "--config", h.conf)
        assert rc == 0 and file_keys(h.path("user_ca.pub")) == [bare(org)] + keys_of(d, "user")
    finally:
        d.kill()


def test_enrollment_during_the_overlap_trusts_both_keys():
    d = fresh_daemon()
    try:
        assert d.admin("POST", "/v1/ca/user/rotate", {"overlap": 60})[0] == 200
        assert d.admin("POST", "/v1/ca/host/rotate", {"overlap": 60})[0] == 200
        h = ac.Host(d)
        out = h.enroll()
        # the old user CA still signs valid certificates during the overlap: a host enrolled
        # now trusts them at once, not only from its first sync
        assert sorted(file_keys(h.path("user_ca.pub"))) == sorted(keys_of(d, "user")), out
        assert sorted(file_keys(h.path("host_ca.pub"))) == sorted(keys_of(d, "host")), out
        assert signing_ca_fp(h.path("host-cert.pub")) == fp_of_line(h.dir, keys_of(d, "host")[0])
    finally:
        d.kill()


class _CAServer:
    """A stand-in control plane (the real one's TLS key, so the agent's pin matches) that
    answers GET /v1/ca/user.pub and /v1/ca/host.pub with a body the test chooses, 404 else."""

    def __init__(self, d):
        import http.server
        import ssl
        import threading
        srv = self
        self.body = b"{}"

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = srv.body if self.path.startswith("/v1/ca/") else b'{"error":"not_found"}'
                self.send_response(200 if self.path.startswith("/v1/ca/") else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(d.path("tls.crt"), d.path("tls.key"))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = "https://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_agent_keeps_its_ca_files_when_the_answer_is_hostile():
    import json
    h = ac.Host(D)
    h.enroll()
    user_before = open(h.path("user_ca.pub"), "rb").read()
    host_before = open(h.path("host_ca.pub"), "rb").read()
    srv = _CAServer(D)
    try:
        text = open(h.conf).read().replace("url = %s" % D.url, "url = %s" % srv.url)
        with open(h.conf, "w") as f:
            f.write(text)
        other = ac.keygen(os.path.join(h.dir, "other_ca"), "x")
        cert = open(h.path("host-cert.pub")).read().strip()
        bodies = [{"public_keys": []},
                  {"public_keys": [other] * 5},
                  {"public_keys": ["not a key"]},
                  {"public_keys": [other, "ssh-ed25519 AAAA"]},
                  {"public_keys": [cert]},
                  {"public_keys": [7]},
                  {"public_keys": "ssh-ed25519 AAAA"},
                  {"public_keys": [other + "\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI x"]},
                  {"public_keys": ["A" * 20000]},
                  {"public_key": None},
                  {}]
        for body in bodies:
            srv.body = json.dumps(body).encode()
            rc, out, err = ac.run_agent("renew", "--config", h.conf)
            assert rc == 1, (body, rc, out, err)
            assert "event=user_ca_sync result=error" in err, (body, err)
            assert "event=host_ca_sync result=error" in err, (body, err)
            assert open(h.path("user_ca.pub"), "rb").read() == user_before, body
            assert open(h.path("host_ca.pub"), "rb").read() == host_before, body
        srv.body = b"<html>not json</html>"
        rc, out, err = ac.run_agent("renew", "--config", h.conf)
        assert rc == 1 and open(h.path("user_ca.pub"), "rb").read() == user_before, err
        # a well-formed answer with another key is taken (the control plane is pinned)
        srv.body = json.dumps({"public_key": other, "public_keys": [other]}).encode()
        rc, out, err = ac.run_agent("renew", "--config", h.conf)
        assert file_keys(h.path("user_ca.pub")) == [bare(other)], err
    finally:
        srv.stop()
