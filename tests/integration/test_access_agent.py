# SPDX-License-Identifier: BSD-2-Clause
"""Access on request through a real agent (`portcullis-agent run` + `principals`): the agent's
principals cache, used only while the control plane is unreachable, never keeps a grant's allow
past the grant's end, however long principals_stale is."""
import os
import shutil
import tempfile
import time

import harness
import test_agent_ca as ac
from harness import Daemon


def setup_module():
    if not shutil.which("ssh-keygen"):
        raise harness.Skip("ssh-keygen not installed")
    if not os.path.exists(ac.AGENT_BIN):
        raise AssertionError("agent binary not built: %s (set PC_BUILD_DIR)" % ac.AGENT_BIN)
    ac.ROOT = tempfile.mkdtemp(prefix="pc-access-agent-")
    harness._TMP_ROOTS.append(ac.ROOT)
    os.chmod(ac.ROOT, 0o755)


def teardown_module():
    for a in ac.AGENTS:
        try:
            a.stop()
        except Exception:
            pass
    for p in ac.PROCS:
        if p.poll() is None:
            p.kill()
            p.wait()


def person(d, h, groups=()):
    key = os.path.join(h.dir, harness.unique_name("k"))
    name, secret = ac.person_with_key(d, key)
    if groups:
        st, b = d.admin("PATCH", "/v1/users/" + name, {"groups": list(groups)})
        assert st == 200, (st, b)
    return name, secret, key


def test_agent_cache_never_keeps_a_grant_past_its_end():
    d = Daemon().start()
    p, port, set_mode = ac.start_proxy(d.port, d)
    h = None
    try:
        h = ac.Host(d, labels={"env": "prod"}, url="https://127.0.0.1:%d" % port, pin=d.pin,
                    extra=["principals_stale = 1h", "connect_timeout = 1", "timeout = 2"])
        h.enroll()
        h.start()
        dana, dana_secret, key = person(d, h)
        erin, erin_secret, erin_key = person(d, h, groups=["leads"])
        ac.add_policy(d, "ops", users=[dana], accounts=["ubuntu"], hosts={"env": "prod"},
                      requires_request=True, approver_group="leads", max_duration=3600)
        ac.add_policy(d, "erin", users=[erin], accounts=["ubuntu"], hosts={"env": "none"})
        r = ac.user_cert(d, dana, dana_secret, key)
        s_erin = ac.user_cert(d, erin, erin_secret, erin_key)["session_token"]
        args = ("ubuntu", dana, r["serial"], ac.fingerprint(key + ".pub"))
        rc, out, err, _ = h.principals(*args)
        assert out == "", (out, err)
        st, req = d.api("POST", "/v1/requests", {"account": "ubuntu", "duration": 60,
                                                 "reason": "cache"}, token=r["session_token"])
        assert st == 201, (st, req)
        st, g = d.api("POST", "/v1/requests/%s/approve" % req["id"],
                      {"code": harness.totp_code(erin_secret, t=time.time() + 30)}, token=s_erin)
        assert st == 200, (st, g)
        rc, out, err, _ = h.principals(*args)
        assert out.endswith(" %s\n" % dana), (out, err, h.log())
        # the control plane unreachable: the cached allow, while the grant lasts
        set_mode("dead")
        rc, out, err, _ = h.principals(*args)
        assert out.endswith(" %s\n" % dana), (out, err, h.log())
        assert "source=cache" in h.log()
        # past the grant's end: refused, though principals_stale is an hour
        time.sleep(max(0, g["ends_at"] - time.time()) + 1)
        rc, out, err, _ = h.principals(*args)
        assert out == "" and rc == 1, (out, err)
        set_mode("pass")
        harness.wait_until(lambda: h.principals(*args)[0] == 0, timeout=10,
                           what="the control plane back")
        assert h.principals(*args)[1] == ""
    finally:
        if h:
            h.stop()
        p.terminate()
        p.wait()
        d.kill()
