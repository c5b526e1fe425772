# SPDX-License-Identifier: BSD-2-Clause
"""`portcullis-agent status --metrics` (issue 18): the agent's counters over its socket, in the
Prometheus text format (parsed by test_metrics.parse, and promtool when installed). A known
sequence of socket calls, control-plane failures and cached principals moves exactly the
counters it should; the KRL's age is shown once a sync happened; only root may read them."""
import os
import shutil
import subprocess

import harness
from harness import Daemon
import test_agent
import test_ca
from test_agent import Agent, in_child, login_totp
from test_metrics import parse

TEST_TIMEOUT = 180


def setup_module():
    test_agent.setup_module()


def teardown_module():
    test_agent.teardown_module()


def metrics(agent):
    rc, out, err = test_agent.run_agent("status", "--metrics", "--config", agent.conf)
    assert rc == 0, (rc, out, err)
    if shutil.which("promtool"):
        p = subprocess.run(["promtool", "check", "metrics"], input=out, capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 0, "promtool: %s%s" % (p.stdout, p.stderr)
    return parse(out)[0]


def val(s, name, **labels):
    return s.get((name, tuple(sorted(labels.items()))), 0.0)


CALLS = "portcullis_agent_calls_total"


def own_agent(extra=()):
    """A control plane and an agent of their own, so every count is exactly ours."""
    d = Daemon().start()
    _, tok = d.enroll_host()
    tf = os.path.join(test_agent.fresh_dir("m-"), "host.token")
    with open(tf, "w") as f:
        f.write(tok + "\n")
    os.chmod(tf, 0o600)
    return d, Agent(daemon=d, token_file=tf, extra=extra)


def test_calls_failmode_and_cache_are_counted():
    d, a = own_agent()
    a.start()
    user, secret = d.user_with_totp()
    login_totp(a, user, harness.totp_code(secret))          # begin ok, totp ok (allow)
    login_totp(a, user, harness.wrong_code(secret))         # begin ok, totp ok (deny)
    r = a.call({"op": "begin", "user": "no_such_user_m"})   # begin ok (deny)
    assert r["ok"] is True and r["action"] == "deny", r
    r = a.call({"op": "dance"})
    assert r["error"] == "bad_request", r
    # a principals answer the agent may cache, then the same question with the control plane down
    test_ca.D = d
    p = test_ca.Person()
    test_ca.add_policy(users=[p.name], accounts=["$user"])
    serial = p.login_ok()["serial"]
    q = {"op": "principals", "account": p.name, "key_id": p.name, "serial": str(serial),
         "fingerprint": p.fp}
    r = a.call(q)
    assert r["ok"] is True and r["principals"] == [p.name], r
    assert d.stop() == 0
    r = a.call(q)                                             # from the cache
    assert r["ok"] is True and r["principals"] == [p.name], r
    r = a.call(dict(q, serial=str(serial + 1000)))            # not in the cache
    assert r["ok"] is False and r["error"] == "unreachable", r
    r = a.call({"op": "begin", "user": user})                 # the module follows failmode
    assert r["ok"] is False and r["error"] == "unreachable", r
    s = metrics(a)
    assert val(s, CALLS, op="begin", outcome="ok") == 3
    assert val(s, CALLS, op="totp", outcome="ok") == 2
    assert val(s, CALLS, op="begin", outcome="unreachable") == 1
    assert val(s, CALLS, op="other", outcome="bad_request") == 1
    assert val(s, CALLS, op="principals", outcome="ok") == 2
    assert val(s, CALLS, op="principals", outcome="unreachable") == 1
    assert val(s, "portcullis_agent_failmode_replies_total", error="unreachable") == 1
    assert val(s, "portcullis_agent_principals_cache_total", result="hit") == 1
    assert val(s, "portcullis_agent_principals_cache_total", result="miss") == 1
    cp = "portcullis_agent_control_plane_seconds_count"
    assert val(s, cp, op="begin") == 4 and val(s, cp, op="totp") == 2, s
    assert val(s, cp, op="principals") == 3
    assert any(k[0] == "portcullis_agent_build_info" and v == 1 for k, v in s.items())
    # the metrics call itself was counted (seen on the next read)
    assert val(metrics(a), CALLS, op="metrics", outcome="ok") >= 1
    assert a.stop() == 0


def test_krl_age_after_a_sync():
    d, a = own_agent(extra=["krl_interval = 1s"])
    ssh_dir = os.path.join(os.path.dirname(a.conf), "ssh")
    os.makedirs(ssh_dir, exist_ok=True)
    st, b = d.api("GET", "/v1/ca/user.pub")
    assert st == 200, (st, b)
    with open(os.path.join(ssh_dir, "user_ca.pub"), "w") as f:
        f.write(b["public_key"] + "\n")
    a.start()
    s = metrics(a)
    harness.wait_until(lambda: os.path.exists(os.path.join(ssh_dir, "revoked.krl")),
                       what="the agent's first KRL sync")
    harness.wait_until(lambda: val(metrics(a), "portcullis_agent_krl_age_seconds") <= 2 and
                       ("portcullis_agent_krl_age_seconds", ()) in metrics(a),
                       what="a KRL age")
    s = metrics(a)
    assert 0 <= val(s, "portcullis_agent_krl_age_seconds") <= 5, s
    # the control plane goes away: syncs fail and the age grows
    assert d.stop() == 0
    harness.wait_until(lambda: val(metrics(a), "portcullis_agent_krl_age_seconds") >= 3,
                       timeout=20, what="the KRL to age")
    assert a.stop() == 0


def test_no_krl_means_no_age():
    d, a = own_agent()
    a.start()
    s = metrics(a)
    assert ("portcullis_agent_krl_age_seconds", ()) not in s, s
    assert a.stop() == 0
    d.kill()


def test_only_root_reads_agent_metrics():
    a = Agent(extra=["socket_group = nogroup"]).start()

    def as_member():
        import socket
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(a.socket)
        return test_agent.call(s, {"op": "metrics"})
    res = in_child(as_member, groups=[test_agent.NOBODY])
    r = res["result"]
    assert r["ok"] is False and r["error"] == "forbidden" and "metrics" not in r, r
    # root: extra fields are refused
    r = a.call({"op": "metrics", "x": 1})
    assert r["ok"] is False and r["error"] == "bad_request", r
    r = a.call({"op": "metrics"})
    assert r["ok"] is True and "portcullis_agent_calls_total" in r["metrics"], r
    # --metrics with --json is a usage error; no agent on the socket is exit 1
    rc, _, err = test_agent.run_agent("status", "--metrics", "--json", "--config", a.conf)
    assert rc == 2, (rc, err)
    assert a.stop() == 0
    rc, out, err = test_agent.run_agent("status", "--metrics", "--config", a.conf)
    assert rc == 1 and "cannot connect" in err and out == "", (rc, out, err)
