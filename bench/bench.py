# SPDX-License-Identifier: BSD-2-Clause
"""The benchmark suite of issue 16 (bench/run-all.sh runs it): every measure beside its anchor,
measured in the same run on loopback, then one table of ratios.

    python3 bench/bench.py BUILD_DIR [--quick]

It starts its own portcullisd (tests/integration/harness.py: a fresh data dir, random port,
--totp-window 10 so that each user has 20 fresh right codes, --auth-rate 100000 and 8 hosts so
that the per-host limit is not what is measured) and a real agent. The load comes from
bench/bench_load (C, libcurl multi), wrk and hyperfine; the PAM row from bench/bench_pam (C,
pam_start_confdir with a private configuration directory: nothing under /etc/pam.d changes).
Not a test of speed: it prints PASS for each row that was measured, FAIL for a row whose tool
failed, SKIP when a tool is missing, and "N passed, N failed, N skipped"."""
import base64
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import queue
import tempfile
import threading
import time

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else ""
QUICK = "--quick" in sys.argv[2:]
os.environ.setdefault("PC_BUILD_DIR", BUILD)

import harness  # noqa: E402
import test_agent_ca as ca  # noqa: E402

SECS = 1 if QUICK else 6                 # each throughput run
N_PAIR_USERS = 60 if QUICK else 1000     # 20 codes each: 20,000 pairs at most
N_CERT_USERS = 20 if QUICK else 200
N_PAM_USERS = 20 if QUICK else 100
N_PAM_CALLS = 60 if QUICK else 600
BUDGET_S = 60 if QUICK else 280          # rows not started by then are skipped
N_POLLS = 200 if QUICK else 10000
POLL_OPEN_MAX_S = 60 if QUICK else 150  # s to open them all (200 TLS handshakes at a time)
HF_RUNS = 30 if QUICK else 300
CONNS = 8
N_HOSTS = 8
MODDIR = "/usr/lib/x86_64-linux-gnu/security"

LOAD = os.path.join(BUILD, "bench", "bench_load")
PAM = os.path.join(BUILD, "bench", "bench_pam")
HELPER = os.path.join(BUILD, "agent", "portcullis-principals")
AGENT = os.path.join(BUILD, "agent", "portcullis-agent")
MODULE = os.path.join(BUILD, "pam_module", ".libs", "pam_portcullis.so")

rows = []      # (measure, value, anchor, ratio, target)
IDLE = {}
verdicts = []  # (PASS|FAIL|SKIP, name, detail)


def note(kind, name, detail=""):
    verdicts.append((kind, name, detail))
    print("%s bench.%s%s" % (kind, name, (": " + detail) if detail else ""), flush=True)


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        m = re.search(r"VmRSS:\s+(\d+) kB", f.read())
    return int(m.group(1)) / 1024.0


def rss_detail(pid):
    """"RSS (anon A, PSS P)": the shared libraries' pages are most of an idle RSS."""
    with open("/proc/%d/smaps_rollup" % pid) as f:
        t = f.read()
    get = lambda k: int(re.search(r"^%s:\s+(\d+) kB" % k, t, re.M).group(1)) / 1024.0  # noqa
    return "%.1f MB (anon %.1f, PSS %.1f)" % (get("Rss"), get("Anonymous"), get("Pss"))


def threads(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"Threads:\s+(\d+)", f.read()).group(1))


def kv(line):
    return {k: v for k, v in re.findall(r"(\w+)=(\S+)", line)}


def run_load(mode, users, tokens, secs=SECS, conns=CONNS):
    p = subprocess.run([LOAD, mode, D.url, D.pin, str(conns), str(secs), users, tokens],
                       capture_output=True, text=True, timeout=300)
    lines = [l for l in p.stdout.splitlines() if l.startswith(mode + " ")]
    if not lines:
        raise RuntimeError("bench_load %s: rc %d %s" % (mode, p.returncode, p.stderr[-800:]))
    if p.stderr.strip():
        print("bench: bench_load %s said: %s" % (mode, p.stderr.strip()[-600:]), flush=True)
    return kv(lines[-1]), p.stdout


def wrk_health(secs=SECS):
    p = subprocess.run(["wrk", "-t2", "-c%d" % CONNS, "-d%ds" % secs, D.url + "/v1/health"],
                       capture_output=True, text=True, timeout=secs + 60)
    m = re.search(r"Requests/sec:\s+([\d.]+)", p.stdout)
    if not m:
        raise RuntimeError("wrk: %s %s" % (p.stdout[-500:], p.stderr[-500:]))
    return float(m.group(1))


def hyperfine_p50(cmds):
    out = os.path.join(TMP, "hf.json")
    subprocess.run(["hyperfine", "-N", "-i", "--warmup", "20", "--runs", str(HF_RUNS),
                    "--export-json", out] + cmds, capture_output=True, text=True, check=True,
                   timeout=300)
    with open(out) as f:
        res = json.load(f)["results"]
    return [r["median"] * 1000.0 for r in res]


def make_users(n, keys=None, push=True):
    """n users (group bench, TOTP, push, the given keys): [(name, secret_hex, priv, pub)]."""
    def one(i):
        name = harness.unique_name("b")
        body = {"name": name, "groups": ["bench"], "push": push}
        if keys:
            body["ssh_keys"] = [keys[i][1]]
        st, b = D.admin("POST", "/v1/users", body)
        assert st == 201, (st, b)
        secret, _ = D.enroll_totp(name)
        hexs = harness.b32decode_loose(secret).hex()
        return (name, hexs) + ((keys[i][0], keys[i][1]) if keys else ())
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        return list(ex.map(one, range(n)))


def write_users(name, users):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        for u in users:
            f.write(" ".join(u) + "\n")
    return path


def row(measure, value, anchor, ratio, target):
    rows.append((measure, value, anchor, ratio, target))


def fmt_mb(x):
    return "%.1f MB" % x


# ---- the measures -------------------------------------------------------------------------

def m_idle_daemon():
    time.sleep(1.0)
    IDLE["cp"] = rss_mb(D.pid)
    row("idle RSS portcullisd", rss_detail(D.pid), "-", "-", "<= 15 MB")
    note("PASS", "idle_rss_portcullisd", fmt_mb(IDLE["cp"]))


def m_pairs(users, tokens):
    health = wrk_health()
    pairs, _ = run_load("pairs", users, tokens)
    begin, _ = run_load("begin", users, tokens)
    health2 = wrk_health()
    h = (health + health2) / 2
    ps, bs = float(pairs["per_sec"]), float(begin["per_sec"])
    row("begin+TOTP pairs/s (8 conns, %s users, fresh codes)" % N_PAIR_USERS,
        "%.0f/s (%s failed)" % (ps, pairs["failed"]), "health %.0f req/s" % h,
        "%.3f of health/2" % (ps / (h / 2)), ">= 0.25")
    row("  pair latency p99 (p50)", "%s ms (%s ms)" % (pairs["p99_ms"], pairs["p50_ms"]), "-", "-",
        "<= 50 ms")
    row("begin only /s", "%.0f/s (%s failed)" % (bs, begin["failed"]), "health %.0f req/s" % h,
        "%.3f of health" % (bs / h), ">= 0.50")
    note("PASS" if float(pairs["ok"]) > 0 else "FAIL", "pairs", str(pairs))
    note("PASS" if float(begin["ok"]) > 0 else "FAIL", "begin_only", str(begin))


def m_polls(users, tokens):
    ids = os.path.join(TMP, "pushes")
    tok = os.path.join(TMP, "tok1")         # one host: a push is polled by the host that made it
    with open(tok, "w") as f:
        f.write(TOKENS[0] + "\n")
    _, out = run_load("pushes", users, tok, secs=N_POLLS)
    with open(ids, "w") as f:
        f.write("".join(l + "\n" for l in out.splitlines() if l.startswith("push ")))
    n = sum(1 for _ in open(ids))
    time.sleep(1.0)
    before = rss_mb(D.pid)
    # wait=120 (the most portcullisd allows): none ends before every one of them is open
    p = subprocess.Popen([LOAD, "polls", D.url, D.pin, "120", "0", ids, tok],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(l) for l in p.stdout], daemon=True).start()
    peak, peak_thr, sent, t0 = before, threads(D.pid), None, time.time()
    while p.poll() is None and time.time() - t0 < POLL_OPEN_MAX_S:
        peak, peak_thr = max(peak, rss_mb(D.pid)), max(peak_thr, threads(D.pid))
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        if line.startswith("sent "):
            sent = kv(line)
            break
    if sent:
        for _ in range(10):     # held: all open; sample for 2 s
            peak, peak_thr = max(peak, rss_mb(D.pid)), max(peak_thr, threads(D.pid))
            time.sleep(0.2)
    p.kill()                    # release: the clients go away, their connections close
    _, err = p.communicate()
    time.sleep(5.0)
    after = rss_mb(D.pid)
    if not sent:
        note("FAIL", "long_polls", "not all %d polls were open after %d s; %s"
             % (n, POLL_OPEN_MAX_S, err.strip()[-300:]))
        return
    held = n - int(sent.get("done", 0))
    row("%d pending push long-polls: RSS held (threads)" % held,
        "%s (%d)" % (fmt_mb(peak), peak_thr),
        "idle %s" % fmt_mb(IDLE["cp"]), "+%s" % fmt_mb(peak - IDLE["cp"]), "<= 100 MB")
    row("  RSS 5 s after their clients went away", fmt_mb(after), "idle %s" % fmt_mb(IDLE["cp"]),
        "+%s" % fmt_mb(after - IDLE["cp"]), "<= idle + 30 MB")
    note("PASS" if int(sent.get("failed", 1)) == 0 and held == n else "FAIL", "long_polls",
         "%d pushes, %s; %s" % (n, sent, err.strip()[-300:]))


def m_certs(users, tokens):
    res, _ = run_load("certs", users, tokens)
    kg = os.path.join(TMP, "kg")
    os.mkdir(kg)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", kg + "/ca"], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", kg + "/u"], check=True)
    t0, n = time.time(), 0
    while time.time() - t0 < SECS:
        n += 1
        subprocess.run(["ssh-keygen", "-q", "-s", kg + "/ca", "-I", "id", "-n", "p", "-z", str(n),
                        "-V", "+1h", kg + "/u.pub"], check=True, capture_output=True)
    kgr = n / (time.time() - t0)
    cr = float(res["per_sec"])
    row("user certificates via the API /s (start+SSHSIG+finish)",
        "%.0f/s (%s failed)" % (cr, res["failed"]), "ssh-keygen -s loop %.0f/s" % kgr,
        "%.1fx" % (cr / kgr), ">= 25x")
    note("PASS" if float(res["ok"]) > 0 else "FAIL", "user_certs", str(res))


def m_principals(h, name):
    sock = h.socket
    new = [HELPER, "--socket", sock, "ubuntu", name, "7", "SHA256:abc"]
    old = [AGENT, "principals", "--socket", sock, "ubuntu", name, "7", "SHA256:abc"]
    p = subprocess.run(new, capture_output=True, text=True)
    if p.returncode != 0:
        note("FAIL", "principals_helper", p.stderr)
        return
    # /bin/true before and after: on a busy machine the load drifts between the commands
    t_true1, t_new, t_old, t_true2 = hyperfine_p50(["/bin/true", " ".join(new), " ".join(old),
                                                    "/bin/true"])
    t_true = (t_true1 + t_true2) / 2
    row("principals helper p50 (portcullis-principals)", "%.2f ms" % t_new,
        "/bin/true %.2f ms" % t_true, "%+.2f ms" % (t_new - t_true), "<= +1.5 ms")
    row("  portcullis-agent principals p50 (old line)", "%.2f ms" % t_old,
        "/bin/true %.2f ms" % t_true, "%+.2f ms" % (t_old - t_true), "-")
    note("PASS", "principals_helper", "p50 %.2f ms, /bin/true %.2f ms" % (t_new, t_true))


def m_pam(h, users):
    conf = os.path.join(TMP, "pam.d")
    sec = os.path.join(TMP, "ga")
    os.makedirs(conf)
    os.makedirs(sec, 0o700)
    ufile = os.path.join(TMP, "pam-users")
    oath = os.path.join(TMP, "users.oath")
    with open(ufile, "w") as f, open(oath, "w") as o:
        for name, hexs in users:
            f.write("%s %s\n" % (name, hexs))
            o.write("HOTP/T30/6 %s - %s\n" % (name, hexs))
            b32 = base64.b32encode(bytes.fromhex(hexs)).decode().rstrip("=")
            p = os.path.join(sec, name)
            with open(p, "w") as g:
                g.write('%s\n" TOTP_AUTH\n" DISALLOW_REUSE\n" WINDOW_SIZE 21\n' % b32)
            os.chmod(p, 0o600)
    os.chmod(oath, 0o600)
    stacks = {
        "bench-permit": "auth required %s/pam_permit.so" % MODDIR,
        "bench-portcullis": "auth required %s socket=%s" % (MODULE, h.socket),
        "bench-ga": "auth required %s/pam_google_authenticator.so secret=%s/${USER} user=root"
                    % (MODDIR, sec),
        "bench-oath": "auth required %s/pam_oath.so usersfile=%s window=10 digits=6"
                      % (MODDIR, oath),
    }
    got = {}
    for svc, line in stacks.items():
        mod = line.split()[2]
        if not os.path.exists(mod):
            note("SKIP", "pam_" + svc, "%s is not installed" % mod)
            continue
        with open(os.path.join(conf, svc), "w") as f:
            f.write(line + "\n")
        p = subprocess.run([PAM, svc, conf, ufile, str(N_PAM_CALLS)], capture_output=True,
                           text=True, timeout=300)
        res = kv(p.stdout)
        if not res or int(res.get("ok", 0)) == 0:
            note("FAIL", "pam_" + svc, p.stdout + p.stderr[-500:])
            continue
        got[svc] = float(res["us_per_call"])
        note("PASS", "pam_" + svc, p.stdout.strip())
    if "bench-permit" in got:
        base = got["bench-permit"]
        ga = got.get("bench-ga")
        for svc in ("bench-portcullis", "bench-ga", "bench-oath"):
            if svc not in got:
                continue
            own = got[svc] - base
            ratio = "%.2f of GA's" % (own / (ga - base)) if ga and ga > base else "-"
            row("PAM decision %s (own cost above pam_permit)" % svc[6:],
                "%.0f us (%.0f us)" % (got[svc], own),
                "pam_permit %.0f us" % base, ratio,
                "<= 0.50 of GA's" if svc == "bench-portcullis" else "-")


def m_idle_agent(h):
    time.sleep(1.0)
    a = rss_mb(h.proc.pid)
    row("idle RSS agent", rss_detail(h.proc.pid), "-", "-", "<= 8 MB")
    note("PASS", "idle_rss_agent", fmt_mb(a))


def print_table():
    head = ("measure", "value", "anchor (same run)", "ratio", "target")
    w = [max(len(r[i]) for r in rows + [head]) for i in range(5)]
    line = lambda r: "| " + " | ".join(r[i].ljust(w[i]) for i in range(5)) + " |"  # noqa: E731
    print()
    print(line(head))
    print("|" + "|".join("-" * (x + 2) for x in w) + "|")
    for r in rows:
        print(line(r))
    print()


def main():
    global D, TMP, TOKENS
    if not BUILD or not os.path.isdir(BUILD):
        print("usage: bench.py BUILD_DIR [--quick]")
        return 2
    for tool in (LOAD, PAM, HELPER):
        if not os.path.exists(tool):
            subprocess.run(["make", "-C", BUILD, os.path.relpath(tool, BUILD)],
                           capture_output=True)
    missing = [t for t in ("wrk", "hyperfine", "ssh-keygen") if not shutil.which(t)]
    TMP = tempfile.mkdtemp(prefix="pc-bench-")
    os.chmod(TMP, 0o755)
    ca.ROOT = TMP
    t_start = time.time()
    print("bench: %s build %s, %s, %d CPUs" % ("quick" if QUICK else "full", BUILD,
          os.uname().release, os.cpu_count()), flush=True)
    # --push-ttl 10m: no push expires (and ends its poll at once) before all polls are open
    D = harness.Daemon(args=["--totp-window", "10", "--auth-rate", "100000", "--push-ttl", "10m",
                             "--max-connections", str(N_POLLS + 512)]).start()
    ca.D = D
    h = None
    try:
        D.health()
        m_idle_daemon()
        keys = subprocess.run([LOAD, "keys", str(N_CERT_USERS)], capture_output=True, text=True,
                              check=True).stdout.splitlines()
        keys = [k.split("\t") for k in keys]
        pair_users = make_users(N_PAIR_USERS)
        cert_users = make_users(N_CERT_USERS, keys=keys)
        pam_users = make_users(N_PAM_USERS)
        ca.add_policy(D, "bench", groups=["bench"], accounts=["$user"])
        TOKENS = [D.enroll_host()[1] for _ in range(N_HOSTS)]
        tokens = os.path.join(TMP, "tokens")
        with open(tokens, "w") as f:
            f.write("".join(t + "\n" for t in TOKENS))
        print("bench: set up %d users and %d hosts in %.1f s" % (
            len(pair_users) + len(cert_users) + len(pam_users), N_HOSTS, time.time() - t_start),
            flush=True)
        h = ca.Host(D)
        h.enroll()
        h.start()
        m_idle_agent(h)
        steps = [("principals", lambda: m_principals(h, pair_users[0][0]))]
        if "hyperfine" in missing:
            steps = []
            note("SKIP", "principals_helper", "hyperfine is not installed")
        if "wrk" in missing:
            note("SKIP", "pairs", "wrk is not installed")
        else:
            steps.append(("pairs", lambda: m_pairs(write_users("pair-users", pair_users),
                                                   tokens)))
        steps += [("certs", lambda: m_certs(write_users("cert-users", cert_users), tokens)),
                  ("pam", lambda: m_pam(h, pam_users)),
                  ("polls", lambda: m_polls(write_users("poll-users", pair_users), tokens))]
        for name, fn in steps:
            if time.time() - t_start > BUDGET_S:
                note("SKIP", name, "over the time budget of %d s" % BUDGET_S)
                continue
            try:
                fn()
            except Exception as e:  # a tool failed: the row is missing, the suite goes on
                note("FAIL", name, "%s: %s" % (type(e).__name__, str(e)[-600:]))
    finally:
        if h:
            h.stop()
        D.stop()
    print("bench: %.0f s in all" % (time.time() - t_start))
    print_table()
    if not QUICK:
        shutil.rmtree(TMP, ignore_errors=True)
    counts = {k: sum(1 for v in verdicts if v[0] == k) for k in ("PASS", "FAIL", "SKIP")}
    print("%d passed, %d failed, %d skipped" % (counts["PASS"], counts["FAIL"], counts["SKIP"]))
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
