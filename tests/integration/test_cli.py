# SPDX-License-Identifier: BSD-2-Clause
"""The admin CLI `portcullis` against a real daemon."""
import base64
import json
import os
import re
import secrets
import time

import harness
from harness import Daemon, run_cli, cli_json

D = None
HOST = None


def setup_module():
    global D, HOST
    D = Daemon().start()
    _, HOST = D.enroll_host(hostname="cli-host")


def teardown_module():
    if D:
        D.kill()


def _ok(*args, **kw):
    rc, out, err = run_cli(D, *args, **kw)
    assert rc == 0, "portcullis %s → rc %d\nstdout: %s\nstderr: %s" % (" ".join(args), rc, out, err)
    return out, err


def test_help():
    rc, out, err = run_cli(D, "--help", global_opts=False)
    assert rc == 0, "--help exited %d: %s" % (rc, err)
    text = out + err
    for word in ("user", "totp", "host", "approve", "audit", "--url", "--pin"):
        assert word in text, "--help does not mention %s:\n%s" % (word, text)


def test_user_add_list_show_disable_enable_delete():
    name = harness.unique_name("cli")
    _ok("user", "add", name, "--group", "wheel", "--group", "ops")
    u = D.get_user(name)
    assert sorted(u["groups"]) == ["ops", "wheel"] and u["push"] is True and u["enabled"] is True, u
    nopush = harness.unique_name("clin")
    _ok("user", "add", nopush, "--no-push")
    assert D.get_user(nopush)["push"] is False
    out, _ = _ok("user", "list")
    assert name in out and nopush in out, "user list lacks the new users:\n%s" % out
    j = cli_json(D, "user", "list")
    users = j["users"] if isinstance(j, dict) else j
    assert any(x["name"] == name for x in users), j
    out, _ = _ok("user", "show", name)
    assert name in out and "wheel" in out, out
    _ok("user", "disable", name)
    assert D.get_user(name)["enabled"] is False
    st, b = D.begin(HOST, name)
    assert b["action"] == "deny" and b["reason"] == "disabled", b
    _ok("user", "enable", name)
    assert D.get_user(name)["enabled"] is True
    _ok("user", "delete", name)
    st, b = D.admin("GET", "/v1/users/%s" % name)
    assert st == 404, "user still there after CLI delete: %s %r" % (st, b)


def test_user_errors():
    name = harness.unique_name("clie")
    _ok("user", "add", name)
    rc, out, err = run_cli(D, "user", "add", name)
    assert rc != 0, "adding an existing user exited 0"
    assert err.strip(), "no error message on stderr"
    rc, out, err = run_cli(D, "user", "add", "Bad Name")
    assert rc != 0 and "name" in err.lower(), (rc, err)
    rc, out, err = run_cli(D, "user", "show", "no_such_user_cli")
    assert rc != 0 and err.strip(), (rc, err)
    rc, out, err = run_cli(D, "user", "frobnicate", name)
    assert rc != 0 and err.strip(), (rc, err)
    rc, out, err = run_cli(D, "no-such-command")
    assert rc != 0 and err.strip(), (rc, err)


def test_totp_enroll_json_and_login():
    name = harness.unique_name("clit")
    _ok("user", "add", name, "--no-push")
    j = cli_json(D, "totp", "enroll", name)
    uri = j["uri"]
    assert uri.startswith("otpauth://totp/Portcullis:%s?secret=" % name), uri
    secret = harness.parse_otpauth(uri)[1]["secret"]
    r = D.login_totp(HOST, name, harness.totp_code(secret))
    assert r["result"] == "allow", r
    rc, out, err = run_cli(D, "--json", "totp", "enroll", name, global_opts=True)
    assert rc != 0, "re-enroll without --force exited 0"
    j2 = cli_json(D, "totp", "enroll", name, "--force")
    assert harness.parse_otpauth(j2["uri"])[1]["secret"] != secret
    # without --json the secret/URI is still shown (text or QR) and exit is 0
    name2 = harness.unique_name("clit")
    _ok("user", "add", name2)
    out, _ = _ok("totp", "enroll", name2)
    assert out.strip(), "totp enroll printed nothing"


def qr_modules(text):
    """The module rows of the CLI's terminal QR code (two rows per character row: full block =
    both lit, upper half = top lit, lower half = bottom lit, space = both dark)."""
    top = {"\u2588": (1, 1), "\u2580": (1, 0), "\u2584": (0, 1), " ": (0, 0)}
    lines = [l for l in text.split("\n") if l.strip() and set(l) <= set(top)]
    assert lines, "no QR code in:\n%s" % text
    rows = []
    for l in lines:
        rows.append([top[c][0] for c in l])
        rows.append([top[c][1] for c in l])
    return rows


def test_totp_enroll_qr_has_a_four_module_quiet_zone():
    """ISO/IEC 18004 asks for 4 light modules around the symbol; phone cameras misread codes
    whose border is the terminal's (dark) background."""
    name = harness.unique_name("clqr")
    _ok("user", "add", name, "--no-push")
    out, _ = _ok("totp", "enroll", name)
    rows = qr_modules(out)
    width = len(rows[0])
    assert all(len(r) == width for r in rows), "ragged QR rows"
    size = width - 8                       # the symbol itself: 21 + 4k modules
    assert size >= 21 and (size - 21) % 4 == 0, "symbol width %d (with border %d)" % (size, width)
    # the last character row's lower half is the terminal background when the height is odd
    if len(rows) == width + 1:
        rows = rows[:-1]
    assert len(rows) == width, "%d module rows for %d columns" % (len(rows), width)
    for i in list(range(4)) + list(range(width - 4, width)):
        assert all(rows[i]), "quiet-zone row %d is not all light" % i
    for r in rows:
        assert all(r[:4]) and all(r[-4:]), "quiet-zone columns are not all light"
    # the symbol's top-left finder pattern starts right inside the border: a dark 7x7 ring
    assert not any(rows[4][4:11]) and rows[5][5] == 1, "no finder pattern at (4, 4)"


def test_host_token_json_command():
    j = cli_json(D, "host", "token", "--hostname", "from-cli", "--label", "env=prod", "--label",
                 "role=web", "--ttl", "1h")
    for k in ("token", "expires_at", "command"):
        assert k in j, "host token --json lacks %s: %r" % (k, j)
    assert re.fullmatch(r"[0-9a-f]{64}", j["token"]), j
    assert abs(j["expires_at"] - (time.time() + 3600)) <= 10, j
    cmd = j["command"]
    # issue 5's one line, the token after the script on bash's stdin (issue 11: in no argv):
    # { curl -fsSk --pinnedpubkey PIN URL/v1/setup.sh && echo T; } | sudo bash -s
    assert re.fullmatch(r"\{ curl -fsSk --pinnedpubkey %s https://127\.0\.0\.1:%d/v1/setup\.sh "
                        r"&& echo %s; \} \| sudo bash -s" % (re.escape(D.pin), D.port, j["token"]),
                        cmd), "not the installer one-liner of issue 5: %s" % cmd
    assert j["token"] in cmd, "command lacks the token: %s" % cmd
    assert D.url in cmd or "127.0.0.1:%d" % D.port in cmd, "command lacks the URL: %s" % cmd
    st, b = D.api("POST", "/v1/enroll", {"token": j["token"], "hostname": "from-cli"})
    assert st == 200, (st, b)
    st, h = D.admin("GET", "/v1/hosts")
    mine = [x for x in h["hosts"] if x["hostname"] == "from-cli"]
    assert mine and mine[0]["labels"] == {"env": "prod", "role": "web"}, mine
    out, _ = _ok("host", "list")
    assert "from-cli" in out, out
    rc, out, err = run_cli(D, "host", "token", "--hostname", "x1", "--label", "novalue")
    assert rc != 0, "--label without '=' accepted"


def test_host_list_table_is_aligned_and_sanitized():
    """`host list` in text: the titles, then a row per host, each column as wide as its widest
    cell plus two spaces (the last one unpadded). A label value holding the 8-bit CSI (U+009B:
    the API refuses C0 controls such as ESC, but lets C1 through) reaches the terminal with '?'
    in place of each control, while --json passes the value on as the server sent it."""
    d = Daemon().start()
    try:
        id1, _ = d.enroll_host(hostname="web-1", labels={"env": "prod", "role": "web"})
        id2, _ = d.enroll_host(hostname="db", labels={"note": "\u009b31mred\u009b0m\u0085"})
        j = cli_json(d, "host", "list")
        assert [h["labels"] for h in j["hosts"]][1] == {"note": "\u009b31mred\u009b0m\u0085"}, j
        when = {h["host_id"]: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(h["enrolled_at"]))
                for h in j["hosts"]}
        rc, out, err = run_cli(d, "host", "list")
        assert rc == 0 and not err, (rc, err)
        assert not re.search("[\x00-\x08\x0b-\x1f\x7f\u0080-\u009f]", out), \
            "a control character reached the terminal: %r" % out
        rows = [["ID", "HOSTNAME", "ENROLLED", "LABELS"],
                [str(id1), "web-1", when[id1], "env=prod,role=web"],
                [str(id2), "db", when[id2], "note=?31mred?0m?"]]
        width = [max(len(r[i]) for r in rows) for i in range(3)]
        want = "".join("".join(c.ljust(w + 2) for c, w in zip(r, width)) + r[3] + "\n"
                       for r in rows)
        assert out == want, "host list:\n%s\nwanted:\n%s" % (out, want)
        lines = out.splitlines()
        assert lines[0] == "ID  HOSTNAME  ENROLLED              LABELS", lines[0]
        assert re.fullmatch(r"%d +web-1     \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  env=prod,role=web"
                            % id1, lines[1]), lines[1]
        assert lines[2].endswith("  note=?31mred?0m?"), lines[2]
        starts = {l.index(when[i]) for l, i in zip(lines[1:], (id1, id2))}
        assert starts == {lines[0].index("ENROLLED")}, "ENROLLED column not aligned:\n%s" % out
    finally:
        d.kill()


def test_approvals_approve_deny():
    user = harness.unique_name("clip")
    _ok("user", "add", user)
    _, p1 = D.create_push(HOST, user, rhost="127.0.0.3", service="sshd")
    _, p2 = D.create_push(HOST, user)
    out, _ = _ok("approvals")
    assert p1["push_id"] in out and p2["push_id"] in out, "approvals output lacks pushes:\n%s" % out
    assert user in out, out
    j = cli_json(D, "approvals")
    items = j["approvals"] if isinstance(j, dict) else j
    mine = [a for a in items if a["push_id"] == p1["push_id"]]
    assert mine and "match" not in mine[0], mine
    _ok("approve", p1["push_id"], "--match", p1["match"])
    st, s = D.poll_push(HOST, p1["push_id"])
    assert s["state"] == "approved", s
    _ok("deny", p2["push_id"])
    st, s = D.poll_push(HOST, p2["push_id"])
    assert s["state"] == "denied", s
    rc, out, err = run_cli(D, "approve", p2["push_id"], "--match", p2["match"])
    assert rc != 0 and err.strip(), "approving a final push exited %d" % rc
    _, p3 = D.create_push(HOST, user)
    wrong = harness.wrong_match(p3["match"], 50)
    rc, out, err = run_cli(D, "approve", p3["push_id"], "--match", wrong)
    st, s = D.poll_push(HOST, p3["push_id"])
    assert s["state"] == "denied", "wrong match via CLI → state %r" % s
    assert "denied" in (out + err).lower(), "CLI did not tell the approver it was denied: %r" % (out + err)
    rc, out, err = run_cli(D, "approve", p3["push_id"])
    assert rc != 0, "approve without --match exited 0"


def test_audit_json_filters():
    d = Daemon(env={"PC_FAKE_NOW": "-7200"}).start()
    try:
        old = harness.unique_name("old")
        d.create_user(old)
        d.restart(env={})
        new = harness.unique_name("new")
        d.create_user(new)
        j = cli_json(d, "audit", "--since", "1h")
        rows = j["audit"] if isinstance(j, dict) else j
        users = {r.get("user") for r in rows}
        assert new in users, "recent row missing from audit --since 1h: %r" % rows
        assert old not in users, "2-hour-old row shown by audit --since 1h: %r" % rows
        j = cli_json(d, "audit")
        rows = j["audit"] if isinstance(j, dict) else j
        assert old in {r.get("user") for r in rows}, "audit without --since lost old rows"
        j = cli_json(d, "audit", "--user", new)
        rows = j["audit"] if isinstance(j, dict) else j
        assert rows and all(r["user"] == new for r in rows), rows
        assert any(r["action"] == "user.add" for r in rows), rows
        for k in ("id", "time", "actor", "action", "user", "host", "result", "reason", "txid",
                  "source"):
            assert k in rows[0], "audit row lacks %s: %r" % (k, rows[0])
        # --json after the subcommand, as documented in the usage
        rc, out, err = run_cli(d, "audit", "--user", new, "--json")
        assert rc == 0, err
        j = json.loads(out)
        rows = j["audit"] if isinstance(j, dict) else j
        assert rows and all(r["user"] == new for r in rows), rows
        rc, out, err = run_cli(d, "audit", "--user", new)
        assert rc == 0 and "user.add" in out, (rc, out, err)
    finally:
        d.kill()


def test_wrong_pin():
    fake = "sha256//" + base64.b64encode(secrets.token_bytes(32)).decode()
    rc, out, err = run_cli(D, "user", "list", pin=fake)
    assert rc != 0, "wrong pin accepted"
    assert "pin" in err.lower(), "wrong pin: message does not mention the pin: %r" % err
    assert not out.strip() or "users" not in out, out
    name = harness.unique_name("pin")
    rc, out, err = run_cli(D, "user", "add", name, pin=fake)
    assert rc != 0
    st, b = D.admin("GET", "/v1/users/%s" % name)
    assert st == 404, "request went through despite the wrong pin"
    rc, out, err = run_cli(D, "user", "list", pin="not-a-pin")
    assert rc != 0 and "pin" in err.lower(), (rc, err)


def test_missing_url():
    rc, out, err = run_cli(D, "user", "list", url="", env={"HOME": D.root})
    assert rc != 0, "missing --url exited 0"
    assert "url" in err.lower(), "missing --url: unhelpful message %r" % err


def test_wrong_token_file():
    rc, out, err = run_cli(D, "user", "list", token_file=os.path.join(D.root, "nope.token"))
    assert rc != 0, "missing token file exited 0"
    assert "token" in err.lower(), "missing token file: message does not mention it: %r" % err
    wrong = os.path.join(D.root, "wrong.token")
    with open(wrong, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    os.chmod(wrong, 0o600)
    rc, out, err = run_cli(D, "user", "list", token_file=wrong)
    assert rc != 0, "wrong token exited 0"
    assert "token" in err.lower() or "unauthori" in err.lower(), \
        "wrong token: message does not mention the token: %r" % err
    assert D.admin_token not in err + out
    # a host token is not an admin token
    ht = os.path.join(D.root, "host.token")
    with open(ht, "w") as f:
        f.write(HOST + "\n")
    os.chmod(ht, 0o600)
    rc, out, err = run_cli(D, "user", "list", token_file=ht)
    assert rc != 0 and err.strip(), (rc, err)


def test_upper_case_hex_is_refused_locally():
    """Every token and id portcullisd makes is lower-case hex, and it accepts no other: the CLI
    refuses an upper-case one itself (pc_valid_hex) instead of sending it to be refused."""
    up = os.path.join(D.root, "upper.token")
    with open(up, "w") as f:
        f.write(D.admin_token.upper() + "\n")
    os.chmod(up, 0o600)
    rc, out, err = run_cli(D, "user", "list", token_file=up)
    assert rc != 0 and "does not hold a hex token" in err, (rc, out, err)
    assert D.admin_token.upper() not in err + out
    rc, out, err = run_cli(D, "deny", "ABCDEF0123456789ABCDEF0123456789")
    assert rc != 0 and "is not a push id" in err, (rc, out, err)


def test_unreachable_daemon():
    port = harness.free_port()
    rc, out, err = run_cli(D, "user", "list", url="https://127.0.0.1:%d" % port, timeout=60)
    assert rc != 0 and err.strip(), "unreachable daemon: rc %d err %r" % (rc, err)


def test_server_text_printed_without_bidi_or_format_characters():
    # A host may send any user name; the refusal's audit row carries it as sent. The CLI must
    # not let a right-to-left override (or other format/control characters) reach the
    # terminal: dropped in tables, escaped in --json output.
    tag = harness.unique_name("bidi")
    sent = tag + "\u202egnp.exe\u2066\u200b\ufeff\u0085x"
    st, b = D.begin(HOST, sent)
    assert st == 200 and b["action"] == "deny", (st, b)
    out, _ = _ok("audit", "--limit", "50")
    line = [l for l in out.splitlines() if tag in l]
    assert line, "audit row not printed:\n%s" % out
    for ch in "\u202e\u2066\u200b\ufeff\u0085":
        assert ch not in out, "U+%04X printed by 'portcullis audit':\n%r" % (ord(ch), line)
    assert tag + "gnp.exe?x" in line[0], line
    rc, jout, err = run_cli(D, "--json", "audit", "--limit", "50")
    assert rc == 0, err
    for ch in "\u202e\u2066\u200b\ufeff\u0085":
        assert ch not in jout, "U+%04X printed by 'portcullis --json audit'" % ord(ch)
    rows = json.loads(jout)
    rows = rows["audit"] if isinstance(rows, dict) else rows
    assert any(r.get("user") == sent for r in rows), "--json output lost the data"
