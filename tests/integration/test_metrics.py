# SPDX-License-Identifier: BSD-2-Clause
"""GET /metrics (issue 18): the Prometheus text exposition of portcullisd. A known sequence of
logins, pushes, certificates and refusals moves exactly the counters it should (read with a
parser of the text format written here, and checked by Debian's `promtool check metrics`);
only the admin token or an address in --metrics-allow may read it, everyone else gets the
API's 401/403."""
import math
import re
import shutil
import subprocess
import threading

import harness
from harness import Daemon, totp_code, wrong_code
import test_ca

D = None                  # its own daemon: the counters move only with what these tests do
ALLOWED = "127.0.0.9"     # in --metrics-allow
OTHER = "127.0.0.10"      # not


def setup_module():
    global D
    D = Daemon(args=["--metrics-allow", ALLOWED + "/32",
                     "--metrics-allow", "fd00::/8"]).start()
    test_ca.D = D         # its Person (key + TOTP + `portcullis login`) against this daemon


def teardown_module():
    if D:
        D.kill()


# ---- a parser of the text format 0.0.4 ------------------------------------------------------

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SAMPLE = re.compile(r"^(%s)(?:\{(.*)\})? (\S+)$" % NAME)
LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def parse(text):
    """{(name, ((label, value), ...)): float}, plus {family: type}. Fails on anything outside
    the format: a sample before its TYPE, a TYPE twice, an unknown type, a bad number, a counter
    without _total, a histogram whose buckets are not cumulative or whose +Inf is not _count."""
    assert text.endswith("\n"), "the exposition must end with a newline"
    samples, types, helps = {}, {}, set()
    for n, line in enumerate(text.split("\n")[:-1], 1):
        assert line, "line %d is empty" % n
        if line.startswith("# HELP "):
            fam = line.split(" ")[2]
            assert re.fullmatch(NAME, fam) and fam not in helps, "line %d: %r" % (n, line)
            helps.add(fam)
            continue
        if line.startswith("# TYPE "):
            parts = line.split(" ")
            assert len(parts) == 4 and parts[3] in ("counter", "gauge", "histogram"), line
            assert parts[2] not in types, "TYPE twice for %s" % parts[2]
            types[parts[2]] = parts[3]
            continue
        assert not line.startswith("#"), "line %d: unknown comment %r" % (n, line)
        m = SAMPLE.match(line)
        assert m, "line %d is not a sample: %r" % (n, line)
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        fam = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        assert fam in types, "line %d: %s has no TYPE before it" % (n, name)
        pairs, pos = [], 0
        while pos < len(labels):
            lm = LABEL.match(labels, pos)
            assert lm, "line %d: bad labels %r" % (n, labels)
            pairs.append((lm.group(1), lm.group(2)))
            pos = lm.end()
        v = float(value)
        assert not math.isnan(v), line
        key = (name, tuple(sorted(pairs)))
        assert key not in samples, "line %d: sample twice: %r" % (n, key)
        samples[key] = v
    for fam, t in types.items():
        assert fam.startswith("portcullis_"), fam
        assert fam in helps, "%s has no HELP" % fam
        if t == "counter":
            assert fam.endswith("_total"), "counter %s does not end in _total" % fam
        if t == "histogram":
            assert fam.endswith("_seconds"), fam
            check_histogram(fam, samples)
    return samples, types


def check_histogram(fam, samples):
    series = {}
    for (name, labels), v in samples.items():
        if name == fam + "_bucket":
            rest = tuple(x for x in labels if x[0] != "le")
            le = dict(labels)["le"]
            series.setdefault(rest, []).append((math.inf if le == "+Inf" else float(le), v))
    for rest, buckets in series.items():
        buckets.sort()
        counts = [c for _, c in buckets]
        assert counts == sorted(counts), "%s%r: buckets not cumulative: %r" % (fam, rest, buckets)
        assert buckets[-1][0] == math.inf, "%s%r has no +Inf bucket" % (fam, rest)
        assert samples[(fam + "_count", rest)] == buckets[-1][1], (fam, rest)
        assert (fam + "_sum", rest) in samples, (fam, rest)


def scrape(source=ALLOWED, token=None):
    st, _, hdrs, raw = D.request("GET", "/metrics", token=token, source=source)
    assert st == 200, (st, raw[:300])
    assert hdrs["content-type"].startswith("text/plain; version=0.0.4"), hdrs
    text = raw.decode("utf-8")
    if shutil.which("promtool"):
        p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 0, "promtool check metrics: %s%s" % (p.stdout, p.stderr)
    return parse(text)[0]


def val(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(before, after, name, **labels):
    return val(after, name, **labels) - val(before, name, **labels)


DEC = "portcullis_decisions_total"


# ---- what the counters say --------------------------------------------------------------

def test_logins_move_exactly_their_counters():
    _, host = D.enroll_host()
    name, sec = D.user_with_totp()
    s0 = scrape()
    D.login_totp(host, name, totp_code(sec))                      # allowed
    for _ in range(2):                                            # two wrong codes
        r = D.login_totp(host, name, wrong_code(sec))
        assert r["reason"] == "wrong_code", r
    st, b = D.begin(host, "nobody-" + harness.unique_name())      # unknown person
    assert st == 200 and b["reason"] == "unknown_user", b
    s1 = scrape()
    assert delta(s0, s1, DEC, stage="begin", result="challenge",
                 reason="second_factor_required") == 3
    assert delta(s0, s1, DEC, stage="begin", result="deny", reason="unknown_user") == 1
    assert delta(s0, s1, DEC, stage="totp", result="allow", reason="totp_ok") == 1
    assert delta(s0, s1, DEC, stage="totp", result="deny", reason="wrong_code") == 2
    assert delta(s0, s1, "portcullis_verification_seconds_count", stage="totp") == 3
    assert delta(s0, s1, "portcullis_verification_seconds_count", stage="begin") == 4
    assert delta(s0, s1, "portcullis_verification_seconds_bucket", stage="totp", le="+Inf") == 3
    # one connection per request: 4 begins, 3 codes, and the second scrape itself
    assert delta(s0, s1, "portcullis_tls_connections_total") == 8
    # counters only go up: nothing moved backwards
    for key, v in s0.items():
        if key[0].endswith(("_total", "_bucket", "_count", "_sum")):
            assert s1.get(key, 0) >= v, "%r went down: %s → %s" % (key, v, s1.get(key))


def test_pushes_pending_long_polls_and_approvals():
    _, host = D.enroll_host()
    name = D.create_user(push=True)
    s0 = scrape()
    assert val(s0, "portcullis_pushes_pending") == 0
    _, p = D.create_push(host, name)
    held = {}
    t = threading.Thread(target=lambda: held.setdefault(
        "r", D.poll_push(host, p["push_id"], wait=30)))
    t.start()
    harness.wait_until(lambda: val(scrape(), "portcullis_long_polls_held") == 1,
                       what="the long-poll to be counted")
    assert val(scrape(), "portcullis_pushes_pending") == 1
    st, b = D.admin("POST", "/v1/approvals/%s/approve" % p["push_id"], {"match": p["match"]})
    assert st == 200, (st, b)
    t.join(30)
    assert held["r"][1]["state"] == "approved", held
    _, p2 = D.create_push(host, name)
    st, b = D.admin("POST", "/v1/approvals/%s/deny" % p2["push_id"], {})
    assert st == 200, (st, b)
    s1 = scrape()
    assert val(s1, "portcullis_pushes_pending") == 0
    assert val(s1, "portcullis_long_polls_held") == 0
    pd = "portcullis_push_decisions_total"
    assert delta(s0, s1, pd, method="admin", result="allow") == 1
    assert delta(s0, s1, pd, method="admin", result="deny") == 1
    assert delta(s0, s1, DEC, stage="push", result="allow", reason="approved") == 1
    assert delta(s0, s1, DEC, stage="push", result="deny", reason="denied_by_approver") == 1


def test_certificates_and_krl_version():
    person = test_ca.Person()
    test_ca.add_policy(users=[person.name], accounts=["$user"])
    s0 = scrape()
    b = person.login_ok()
    s1 = scrape()
    assert delta(s0, s1, "portcullis_certificates_issued_total", type="user") == 1
    assert delta(s0, s1, "portcullis_certificates_issued_total", type="host") == 0
    # portcullis login's decision (login.finish) is counted as stage login
    assert delta(s0, s1, DEC, stage="login", result="allow", reason="totp_ok") == 1
    st, _ = person.login(code=harness.wrong_code(person.secret))
    assert st == 401, st
    s1b = scrape()
    assert delta(s1, s1b, DEC, stage="login", result="deny", reason="wrong_code") == 1
    assert delta(s1, s1b, DEC, stage="login", result="allow", reason="totp_ok") == 0
    st, r = D.admin("POST", "/v1/certs/revoke", {"serial": b["serial"]})
    assert st == 200, (st, r)
    s2 = scrape()
    st, _, hdrs, _ = D.request("GET", "/v1/krl")
    assert st == 200
    assert val(s2, "portcullis_krl_version") == int(hdrs["x-krl-version"]) == \
        val(s1, "portcullis_krl_version") + 1


def test_refused_unauthenticated_and_build_info():
    s0 = scrape()
    assert D.api("GET", "/v1/users")[0] == 401
    assert D.api("GET", "/v1/users", token="f" * 64)[0] == 401
    assert D.api("GET", "/v1/users", token="garbage")[0] == 401
    s1 = scrape()
    ru = "portcullis_refused_unauthenticated_total"
    assert delta(s0, s1, ru, reason="no_token") == 1
    assert delta(s0, s1, ru, reason="bad_token") == 2
    st, h = D.api("GET", "/v1/health")
    assert val(s1, "portcullis_build_info", version=h["version"]) == 1
    assert val(s1, "portcullis_store_errors_total", op="step") == 0


# ---- who may read it ----------------------------------------------------------------------

def test_metrics_access_for_each_kind_of_caller():
    _, host = D.enroll_host()
    person = test_ca.Person()
    test_ca.add_policy(users=[person.name], accounts=["$user"])
    session = person.login_ok()["session_token"]

    def get(token=None, source=None):
        st, b, hdrs, raw = D.request("GET", "/metrics", token=token, source=source)
        return st, b, raw

    st, b, raw = get()                                   # no credential, other address
    assert st == 401 and b["error"] == "unauthorized", (st, raw)
    assert b"portcullis_" not in raw
    st, b, _ = get(token="garbage")
    assert st == 401 and b["error"] == "unauthorized"
    st, b, _ = get(token="a" * 64)
    assert st == 401 and b["error"] == "unauthorized"
    st, b, _ = get(token=host)                           # a host
    assert st == 403 and b["error"] == "forbidden", (st, b)
    st, b, _ = get(token=session)                        # a user's session
    assert st == 403 and b["error"] == "forbidden", (st, b)
    st, _, raw = get(token=D.admin_token)                # the admin
    assert st == 200 and b"portcullis_build_info" in raw
    st, _, raw = get(source=ALLOWED)                     # an allowed address, no token
    assert st == 200 and b"portcullis_decisions_total" in raw
    st, _, raw = get(source=ALLOWED, token="garbage")    # the address is what counts there
    assert st == 200
    st, b, _ = get(source=OTHER)                         # an address outside the list
    assert st == 401, st
    st, b, _ = get(source=OTHER, token=host)
    assert st == 403, st
    # other methods and near paths
    st, b = D.api("POST", "/metrics", {}, token=D.admin_token)
    assert st == 405, (st, b)
    for path in ("/metrics/", "/metricsx", "/v1/metrics", "/metrics?x=1"):
        st, b = D.api("GET", path, token=D.admin_token)
        assert st == (200 if "?" in path else 404), (path, st)
    s = scrape(token=D.admin_token, source=OTHER)
    assert val(s, "portcullis_metrics_scrapes_total", by="admin") >= 1
    assert val(s, "portcullis_metrics_scrapes_total", by="address") >= 1


def test_bad_metrics_allow_values_refuse_to_start():
    for bad in ("10.0.0.1/8", "abc", "1.2.3.4/33", "::1/129", "1.2.3.4/", "/8", "1.2.3.4/-1",
                "1.2.3.4/08x"):
        p = subprocess.run([harness.DAEMON_BIN, "--data-dir", "/nonexistent/x", "--listen",
                            "127.0.0.1:1", "--metrics-allow", bad], capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 2 and "--metrics-allow" in p.stderr, (bad, p.returncode, p.stderr)
