# SPDX-License-Identifier: BSD-2-Clause
"""The benchmark suite of issue 16 (bench/run-all.sh runs it): every measure beside its anchor,
measured in the same run on loopback, then one table of ratios.

    python3 bench/bench.py BUILD_DIR [--quick]

It starts its own portcullisd (tests/integration/harness.py: a fresh data dir, random port,
--totp-window 10 so that each user has 20 fresh right codes, --auth-rate 100000 and 8 hosts so
that the per-host limit is not what is measured) and a real agent. The load comes from
bench/bench_load (C, libcurl multi), wrk and hyperfine; the PAM row from bench/bench_pam (C,
pam_start_confdir with a private configuration directory: nothing under /etc/pam.d changes).
Then the PostgreSQL rows (issue 12): a throwaway cluster (tests/lib/pgserver.py) with fsync on,
one portcullisd on it, then a second on the same database (a copy of the first's master.key),
pairs/s and long-polls held against the SQLite figures of the same run; SKIP without PostgreSQL.
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
import test_multi_instance as multi  # noqa: E402

SECS = int(os.environ.get("PC_BENCH_SECS", 1 if QUICK else 5))  # each throughput run
# The pairs, begin and certificate rows: the median of ROUNDS runs, each beside its own anchor
# (one run on this shared 2-core guest moved by up to 30 % from the next). A user's codes are
# spent by one round: each round has its own slice of the users.
ROUNDS = int(os.environ.get("PC_BENCH_ROUNDS", 1 if QUICK else 3))
N_PAIR_USERS = 60 if QUICK else 4000     # 20 codes each: ~26,000 pairs a round (5,300/s for 5 s)
N_CERT_USERS = 20 if QUICK else 1800     # 20 codes each: 12,000 certificates a round
N_PAM_USERS = 20 if QUICK else 100
N_PAM_CALLS = int(os.environ.get("PC_BENCH_PAM_CALLS", 60 if QUICK else 600))
BUDGET_S = 60 if QUICK else 280          # SQLite rows not started by then are skipped
N_POLLS = 200 if QUICK else 10000
POLL_OPEN_MAX_S = 60 if QUICK else 150  # s to open them all (200 TLS handshakes at a time)
HF_RUNS = 30 if QUICK else 300
CONNS = int(os.environ.get("PC_BENCH_CONNS", 8))  # a developer measuring latency: 1
N_PG_USERS = 60 if QUICK else 500        # pair users per PostgreSQL run (10,000 pairs at most)
N_PG_POLLS = 100 if QUICK else 2000      # pushes long-polled per PostgreSQL run
PG_BUDGET_S = 50 if QUICK else 200       # PostgreSQL rows: started by BUDGET_S + this
N_HOSTS = 8
MODDIR = "/usr/lib/x86_64-linux-gnu/security"

LOAD = os.path.join(BUILD, "bench", "bench_load")
PAM = os.path.join(BUILD, "bench", "bench_pam")
HELPER = os.path.join(BUILD, "agent", "portcullis-principals")
AGENT = os.path.join(BUILD, "agent", "portcullis-agent")
MODULE = os.path.join(BUILD, "pam_module", ".libs", "pam_portcullis.so")

rows = []      # (measure, value, anchor, ratio, target)
IDLE = {}
SQLITE = {}    # the SQLite figures the PostgreSQL rows are compared with: pairs/s, KB per poll
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


def run_loads(mode, jobs, secs=SECS, conns=CONNS):
    """One bench_load per job (daemon, users file, tokens file), all at the same time; their
    [(result, stdout)]."""
    print("bench: bench_load %s for %d s (pid %s)" % (mode, secs,
          ",".join(str(d.pid) for d, _, _ in jobs)), flush=True)   # to attach perf or strace
    cpu0 = [cpu_seconds(d.pid) for d, _, _ in jobs]
    ps = [subprocess.Popen([LOAD, mode, d.url, d.pin, str(conns), str(secs), users, tokens],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
          for d, users, tokens in jobs]
    res = []
    for i, p in enumerate(ps):
        out, err = p.communicate(timeout=300)
        lines = [l for l in out.splitlines() if l.startswith(mode + " ")]
        if not lines:
            raise RuntimeError("bench_load %s: rc %d %s" % (mode, p.returncode, err[-800:]))
        if err.strip():
            print("bench: bench_load %s said: %s" % (mode, err.strip()[-600:]), flush=True)
        r = kv(lines[-1])
        # The daemon's CPU time per operation (user + system, all its threads): steadier than a
        # rate on a machine whose two cores the load generator shares, and what a change to the
        # daemon's own work moves. Includes the load's warm-up and wind-down.
        ops = int(r.get("ok", "0") or 0) + int(r.get("failed", "0") or 0)
        if cpu0[i] is not None and ops:
            cpu1 = cpu_seconds(jobs[i][0].pid)
            if cpu1 is not None:
                r["daemon_cpu_us_per_op"] = "%.0f" % ((cpu1 - cpu0[i]) * 1e6 / ops)
        res.append((r, out))
    return res


def cpu_seconds(pid):
    """User + system CPU seconds of a process so far (all its threads), or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def run_load(mode, users, tokens, secs=SECS, conns=CONNS, d=None):
    return run_loads(mode, [(d or D, users, tokens)], secs, conns)[0]


def wrk_health(secs=SECS):
    p = subprocess.run(["wrk", "-t%d" % min(2, CONNS), "-c%d" % CONNS, "-d%ds" % secs,
                        D.url + "/v1/health"], capture_output=True, text=True, timeout=secs + 60)
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


def make_users(n, keys=None, push=True, d=None):
    """n users (group bench, TOTP, push, the given keys): [(name, secret_hex, priv, pub)]."""
    d = d or D

    def one(i):
        name = harness.unique_name("b")
        body = {"name": name, "groups": ["bench"], "push": push}
        if keys:
            body["ssh_keys"] = [keys[i][1]]
        st, b = d.admin("POST", "/v1/users", body)
        assert st == 201, (st, b)
        secret, _ = d.enroll_totp(name)
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


def daemon_args(polls):
    """--push-ttl 10m: no push expires (and ends its poll at once) before all polls are open.
    All the load comes from 127.0.0.1 and a poll is unauthenticated until its request is read
    (POLL_RAMP TLS handshakes at a time; on a loaded machine one can take over the default 5 s
    --handshake-timeout): neither those limits nor that deadline is what is measured."""
    extra = os.environ.get("PC_BENCH_XARGS", "").split()   # a developer trying a flag
    return extra + ["--totp-window", "10", "--auth-rate", "100000", "--push-ttl", "10m",
            "--max-connections", str(polls + 1024), "--max-unauthenticated", str(polls + 512),
            "--max-per-address", "65536", "--handshake-timeout", "60s"]


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


def slices(users):
    """users cut into ROUNDS disjoint slices, one a round."""
    n = max(1, len(users) // ROUNDS)
    return [users[i * n:(i + 1) * n] for i in range(ROUNDS)]


def median(xs):
    return sorted(xs)[len(xs) // 2]


def rounds_note(ratios, fmt):
    """ "(3 runs: a, b, c)" after a median, or nothing for one run."""
    return " (%d runs: %s)" % (len(ratios), ", ".join(fmt % r for r in ratios)) \
        if len(ratios) > 1 else ""


def ran_out(results):
    """ " (codes ran out at 3.1, 4.0 s)" for the runs whose users' codes were all spent before
    their time was up (such a run's last moments had fewer than CONNS connections busy)."""
    at = [float(r["seconds"]) for r in results if r.get("ran_out") == "1"]
    return " (codes ran out at %s s)" % ", ".join("%.1f" % x for x in at) if at else ""


def m_pairs(users, tokens):
    runs = []   # per round: (health, pairs result, begin result)
    for i, part in enumerate(slices(users)):
        path = write_users("pair-users-%d" % i, part)
        health = wrk_health()
        pairs, _ = run_load("pairs", path, tokens)
        begin, _ = run_load("begin", path, tokens)
        health2 = wrk_health()
        runs.append(((health + health2) / 2, pairs, begin))
    pr = [float(p["per_sec"]) / (h / 2) for h, p, _ in runs]
    br = [float(b["per_sec"]) / h for h, _, b in runs]
    h = median([r[0] for r in runs])
    ps = median([float(p["per_sec"]) for _, p, _ in runs])
    bs = median([float(b["per_sec"]) for _, _, b in runs])
    failed = sum(int(p["failed"]) for _, p, _ in runs)
    spent = ran_out([p for _, p, _ in runs])
    SQLITE["pairs"] = ps
    row("begin+TOTP pairs/s (%d conns, %s users, fresh codes)" % (CONNS, N_PAIR_USERS // ROUNDS),
        "%.0f/s (%d failed)%s" % (ps, failed, spent), "health %.0f req/s" % h,
        "%.3f of health/2%s" % (median(pr), rounds_note(pr, "%.3f")), ">= 0.25")
    row("  pair latency p99 (p50)", "%.2f ms (%.2f ms)" % (
        median([float(p["p99_ms"]) for _, p, _ in runs]),
        median([float(p["p50_ms"]) for _, p, _ in runs])), "-", "-", "<= 50 ms")
    row("begin only /s", "%.0f/s (%d failed)" % (bs, sum(int(b["failed"]) for _, _, b in runs)),
        "health %.0f req/s" % h, "%.3f of health%s" % (median(br), rounds_note(br, "%.3f")),
        ">= 0.50")
    for _, p, b in runs:
        note("PASS" if float(p["ok"]) > 0 else "FAIL", "pairs", str(p))
        note("PASS" if float(b["ok"]) > 0 else "FAIL", "begin_only", str(b))


def make_pushes(d, users, tok, n):
    """n pushes (begin + push via d, as the host of tok; fewer if PUSHES_MAX_S ran out): their
    "push ID" lines."""
    _, out = run_load("pushes", users, tok, secs=n, d=d)
    return [l + "\n" for l in out.splitlines() if l.startswith("push ")]


def hold_polls(parts, tok):
    """parts [(daemon, push lines)]: one bench_load polls per part, on its daemon, all at once;
    once every poll is open, each daemon's peak RSS and threads over 2 s (held); then the
    clients are killed and each daemon's RSS 5 s later. [{before, peak, thr, after, n, held,
    sent, err}] per part; RuntimeError when not all were open within POLL_OPEN_MAX_S."""
    time.sleep(1.0)
    res, procs = [], []
    for i, (d, ids) in enumerate(parts):
        path = os.path.join(TMP, "push-ids-%d-%d" % (d.port, i))
        with open(path, "w") as f:
            f.write("".join(ids))
        r = {"d": d, "n": len(ids), "before": rss_mb(d.pid), "thr": threads(d.pid), "sent": None}
        r["peak"] = r["before"]
        # wait=120 (the most portcullisd allows): none ends before every one of them is open
        p = subprocess.Popen([LOAD, "polls", d.url, d.pin, "120", "0", path, tok],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        r["lines"] = queue.Queue()
        threading.Thread(target=lambda p=p, q=r["lines"]: [q.put(l) for l in p.stdout],
                         daemon=True).start()
        res.append(r)
        procs.append(p)

    def sample():
        for r in res:
            r["peak"] = max(r["peak"], rss_mb(r["d"].pid))
            r["thr"] = max(r["thr"], threads(r["d"].pid))

    t0 = time.time()
    while any(r["sent"] is None for r in res) and time.time() - t0 < POLL_OPEN_MAX_S:
        sample()
        for r, p in zip(res, procs):
            if r["sent"] is not None or p.poll() is not None:
                continue
            try:
                line = r["lines"].get(timeout=0.2 / len(res))
            except queue.Empty:
                continue
            if line.startswith("sent "):
                r["sent"] = kv(line)
        if all(r["sent"] is not None or p.poll() is not None for r, p in zip(res, procs)):
            break
    opened = all(r["sent"] is not None for r in res)
    if opened:
        for _ in range(10):     # held: all open; sample for 2 s
            sample()
            time.sleep(0.2)
    for r, p in zip(res, procs):
        p.kill()                # release: the clients go away, their connections close
        r["err"] = p.communicate()[1].strip()[-300:]
    time.sleep(5.0)
    for r in res:
        r["after"] = rss_mb(r["d"].pid)
        if r["sent"] is not None:
            r["held"] = r["n"] - int(r["sent"].get("done", 0))
    if not opened:
        raise RuntimeError("not all %s polls were open after %d s; %s" % (
            "+".join(str(r["n"]) for r in res), POLL_OPEN_MAX_S,
            "; ".join(r["err"] for r in res)))
    return res


def polls_ok(res):
    return all(int(r["sent"].get("failed", 1)) == 0 and r["held"] == r["n"] for r in res)


def kb_per_poll(r):
    return (r["peak"] - r["before"]) * 1024.0 / max(r["held"], 1)


def m_polls(users, tokens):
    tok = os.path.join(TMP, "tok1")         # one host: a push is polled by the host that made it
    with open(tok, "w") as f:
        f.write(TOKENS[0] + "\n")
    ids = make_pushes(D, users, tok, N_POLLS)
    try:
        (r,) = hold_polls([(D, ids)], tok)
    except RuntimeError as e:
        note("FAIL", "long_polls", str(e))
        return
    SQLITE["kb_poll"] = kb_per_poll(r)
    row("%d pending push long-polls: RSS held (threads)" % r["held"],
        "%s (%d)" % (fmt_mb(r["peak"]), r["thr"]),
        "idle %s" % fmt_mb(IDLE["cp"]), "+%s" % fmt_mb(r["peak"] - IDLE["cp"]), "<= 100 MB")
    row("  RSS 5 s after their clients went away", fmt_mb(r["after"]),
        "idle %s" % fmt_mb(IDLE["cp"]), "+%s" % fmt_mb(r["after"] - IDLE["cp"]),
        "<= idle + 30 MB")
    note("PASS" if polls_ok([r]) else "FAIL", "long_polls",
         "%d pushes, %s; %s" % (r["n"], r["sent"], r["err"]))


def keygen_loop(kg, secs):
    """ssh-keygen -s signing one certificate after another for secs: certificates/s."""
    t0, n = time.time(), 0
    while time.time() - t0 < secs:
        n += 1
        subprocess.run(["ssh-keygen", "-q", "-s", kg + "/ca", "-I", "id", "-n", "p", "-z", str(n),
                        "-V", "+1h", kg + "/u.pub"], check=True, capture_output=True)
    return n / (time.time() - t0)


def m_certs(users, tokens):
    kg = os.path.join(TMP, "kg")
    os.mkdir(kg)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", kg + "/ca"], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", kg + "/u"], check=True)
    runs = []   # per round: (ssh-keygen loop/s, certs result)
    for i, part in enumerate(slices(users)):
        res, _ = run_load("certs", write_users("cert-users-%d" % i, part), tokens)
        runs.append((keygen_loop(kg, SECS), res))
    ratios = [float(r["per_sec"]) / k for k, r in runs]
    cr = median([float(r["per_sec"]) for _, r in runs])
    row("user certificates via the API /s (start+SSHSIG+finish)",
        "%.0f/s (%d failed)%s" % (cr, sum(int(r["failed"]) for _, r in runs),
                                   ran_out([r for _, r in runs])),
        "ssh-keygen -s loop %.0f/s" % median([k for k, _ in runs]),
        "%.1fx%s" % (median(ratios), rounds_note(ratios, "%.1f")), ">= 25x")
    for _, r in runs:
        note("PASS" if float(r["ok"]) > 0 else "FAIL", "user_certs", str(r))


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


PG_ROWS = (("pg1_pairs", "PG 1 instance: begin+TOTP pairs/s", ">= 0.50 of SQLite"),
           ("pg1_long_polls", "PG 1 instance: pending push long-polls held", "-"),
           ("pg2_pairs", "PG 2 instances: begin+TOTP pairs/s", ">= 1.00 of 1 instance"),
           ("pg2_long_polls", "PG 2 instances: pending push long-polls held", "-"))


def vs_sqlite(x, key, fmt="%.2f of SQLite"):
    return fmt % (x / SQLITE[key]) if SQLITE.get(key) else "-"


def pg_steps(a, b_start, files):
    """The PostgreSQL rows, on instance a (and b, started by b_start()); files: users and
    tokens files. Yields (name, fn) in order."""
    got = {}

    def pairs1():
        (r, _), = run_loads("pairs", [(a, files["u1"], files["tok"])])
        got["ps1"] = ps = float(r["per_sec"])
        row("PG 1 instance: begin+TOTP pairs/s (%d conns, %d users)" % (CONNS, N_PG_USERS),
            "%.0f/s (%s failed)" % (ps, r["failed"]),
            "SQLite %.0f/s" % SQLITE["pairs"] if "pairs" in SQLITE else "-",
            vs_sqlite(ps, "pairs"), ">= 0.50")
        row("  pair latency p99 (p50)", "%s ms (%s ms)" % (r["p99_ms"], r["p50_ms"]), "-", "-",
            "-")
        note("PASS" if float(r["ok"]) > 0 else "FAIL", "pg1_pairs", str(r))

    def pairs2():
        b = b_start()
        res = run_loads("pairs", [(a, files["u2a"], files["tok_lo"]),
                                  (b, files["u2b"], files["tok_hi"])], conns=max(1, CONNS // 2))
        per = [float(r["per_sec"]) for r, _ in res]
        ps = sum(per)
        one = got.get("ps1")
        half = max(1, CONNS // 2)
        row("PG 2 instances: begin+TOTP pairs/s (%d+%d conns, %d+%d users)"
            % (half, half, N_PG_USERS // 2, N_PG_USERS - N_PG_USERS // 2),
            "%.0f/s (%.0f + %.0f, %d failed)" % (ps, per[0], per[1],
                                                 sum(int(r["failed"]) for r, _ in res)),
            "1 instance %.0f/s" % one if one else "-",
            ("%.2f of 1 instance" % (ps / one) if one else "-") + ", "
            + vs_sqlite(ps, "pairs"), ">= 1.00 of 1 instance")
        row("  pair latency p99 (p50), worse instance",
            "%s ms (%s ms)" % (max((r["p99_ms"] for r, _ in res), key=float),
                               max((r["p50_ms"] for r, _ in res), key=float)), "-", "-", "-")
        note("PASS" if all(float(r["ok"]) > 0 for r, _ in res) else "FAIL", "pg2_pairs",
             "; ".join(str(r) for r, _ in res))

    def polls1():
        ids = make_pushes(a, files["u1"], files["tok1"], N_PG_POLLS)
        (r,) = hold_polls([(a, ids)], files["tok1"])
        kb = kb_per_poll(r)
        row("PG 1 instance: %d pending push long-polls: RSS held (threads)" % r["held"],
            "%s (%d); %s 5 s after" % (fmt_mb(r["peak"]), r["thr"], fmt_mb(r["after"])),
            "SQLite %.1f KB/poll" % SQLITE["kb_poll"] if "kb_poll" in SQLITE else "-",
            "%.1f KB/poll, %s" % (kb, vs_sqlite(kb, "kb_poll")), "-")
        note("PASS" if polls_ok([r]) else "FAIL", "pg1_long_polls",
             "%d pushes, %s; %s" % (r["n"], r["sent"], r["err"]))

    def polls2():
        b = b_start()
        ids = make_pushes(a, files["u2a"], files["tok1"], N_PG_POLLS)
        h = len(ids) // 2    # made via a; half polled on a, half on b
        ra, rb = hold_polls([(a, ids[:h]), (b, ids[h:])], files["tok1"])
        row("PG 2 instances: %d+%d pending push long-polls: RSS held per instance (threads)"
            % (ra["held"], rb["held"]),
            "%s (%d), %s (%d)" % (fmt_mb(ra["peak"]), ra["thr"], fmt_mb(rb["peak"]), rb["thr"]),
            "SQLite %.1f KB/poll" % SQLITE["kb_poll"] if "kb_poll" in SQLITE else "-",
            "%.1f, %.1f KB/poll, %s" % (kb_per_poll(ra), kb_per_poll(rb),
                                        vs_sqlite((kb_per_poll(ra) + kb_per_poll(rb)) / 2,
                                                  "kb_poll", "%.2f of SQLite (mean)")), "-")
        note("PASS" if polls_ok([ra, rb]) else "FAIL", "pg2_long_polls",
             "%d+%d pushes, %s, %s; %s %s" % (ra["n"], rb["n"], ra["sent"], rb["sent"],
                                             ra["err"], rb["err"]))

    return [("pg1_pairs", pairs1), ("pg2_pairs", pairs2), ("pg1_long_polls", polls1),
            ("pg2_long_polls", polls2)]


def m_pg():
    """PostgreSQL one instance and two instances on one database (the second with a copy of
    the first's master.key, docs/HA.md), on a throwaway cluster (tests/lib/pgserver.py) with
    fsync ON: a verification is a durable commit, as on SQLite (synchronous=FULL)."""
    sys.path.insert(0, os.path.join(SRC, "tests", "lib"))
    import pgserver
    try:
        srv = pgserver.PgServer(durable=True)
    except pgserver.PgMissing as e:
        for name, measure, target in PG_ROWS:
            note("SKIP", name, str(e))
            row(measure, "SKIP: %s" % str(e).split(":")[0], "-", "-", target)
        return
    multi.ROOT = TMP
    args = daemon_args(N_PG_POLLS)
    insts = []
    try:
        t0 = time.time()
        srv.start()
        url = srv.new_database()
        a = multi.Instance(url, args=args).start()
        insts.append(a)

        def b_start():
            if len(insts) < 2:
                insts.append(multi.Instance(url, master=a.master(), args=args).start())
            return insts[1]
        ca.add_policy(a, "bench", groups=["bench"], accounts=["$user"])
        toks = [a.enroll_host()[1] for _ in range(N_HOSTS)]
        u1, u2 = make_users(N_PG_USERS, d=a), make_users(N_PG_USERS, d=a)
        files = {"u1": write_users("pg-u1", u1), "u2a": write_users("pg-u2a", u2[:len(u2) // 2]),
                 "u2b": write_users("pg-u2b", u2[len(u2) // 2:])}
        for name, tt in (("tok", toks), ("tok_lo", toks[:N_HOSTS // 2]),
                         ("tok_hi", toks[N_HOSTS // 2:]), ("tok1", toks[:1])):
            files[name] = os.path.join(TMP, "pg-" + name)
            with open(files[name], "w") as f:
                f.write("".join(t + "\n" for t in tt))
        print("bench: PostgreSQL %s (fsync on): cluster, instance and %d users in %.1f s" % (
            os.path.basename(os.path.dirname(srv.bin)), 2 * N_PG_USERS, time.time() - t0),
            flush=True)
        for name, fn in pg_steps(a, b_start, files):
            if time.time() - T_START > BUDGET_S + PG_BUDGET_S:
                note("SKIP", name, "over the time budget of %d s" % (BUDGET_S + PG_BUDGET_S))
                continue
            try:
                fn()
            except Exception as e:  # a tool failed: the row is missing, the suite goes on
                note("FAIL", name, "%s: %s" % (type(e).__name__, str(e)[-600:]))
    finally:
        for d in insts:
            d.kill()
        srv.stop()


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
    global D, TMP, TOKENS, T_START
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
    t_start = T_START = time.time()
    print("bench: %s build %s, %s, %d CPUs" % ("quick" if QUICK else "full", BUILD,
          os.uname().release, os.cpu_count()), flush=True)
    D = harness.Daemon(args=daemon_args(N_POLLS)).start()
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
            steps.append(("pairs", lambda: m_pairs(pair_users,
                                                   tokens)))
        steps += [("certs", lambda: m_certs(cert_users, tokens)),
                  ("pam", lambda: m_pam(h, pam_users)),
                  ("polls", lambda: m_polls(write_users("poll-users", pair_users), tokens)),
                  ("pg", m_pg)]
        only = [x for x in os.environ.get("PC_BENCH_ONLY", "").split(",") if x]
        for name, fn in steps:
            if only and name not in only:   # PC_BENCH_ONLY=pairs,certs: a developer measuring some rows
                continue
            limit = BUDGET_S + (PG_BUDGET_S if name == "pg" else 0)
            if time.time() - t_start > limit:
                note("SKIP", name, "over the time budget of %d s" % limit)
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
    counts = {k: sum(1 for v in verdicts if v[0] == k) for k in ("PASS", "FAIL", "SKIP")}
    if counts["FAIL"] or os.environ.get("PC_KEEP_TMP"):  # the daemons' logs, to see why
        print("bench: kept %s" % TMP)
    else:
        shutil.rmtree(TMP, ignore_errors=True)
    print("%d passed, %d failed, %d skipped" % (counts["PASS"], counts["FAIL"], counts["SKIP"]))
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
