# SPDX-License-Identifier: BSD-2-Clause
"""1000 concurrent long-polls on one pending push: the daemon keeps a bounded number of threads
and bounded memory while they wait, and answers every one of them once the push is approved."""
# Measures the machine (time, memory) under its own load: run.py runs it by itself.
ALONE = True

import asyncio
import json
import os
import resource
import time

import harness
from harness import Daemon

TEST_TIMEOUT = 300
N = 1000
MAX_THREADS = 32
MAX_RSS_KIB = 512 * 1024

D = None
HOST = None


def setup_module():
    global D, HOST
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = N * 2 + 256
    if soft != resource.RLIM_INFINITY and soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            raise harness.Skip("RLIMIT_NOFILE hard limit %d < %d" % (hard, want))
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    D = Daemon(args=["--push-ttl", "2m"]).start()   # inherits the raised limit
    _, HOST = D.enroll_host()


def teardown_module():
    if D:
        D.kill()


async def _read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for l in lines[1:]:
        if ":" in l:
            k, v = l.split(":", 1)
            hdrs[k.strip().lower()] = v.strip()
    if "content-length" in hdrs:
        body = await reader.readexactly(int(hdrs["content-length"]))
    elif hdrs.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    else:
        body = await reader.read()
    return status, json.loads(body.decode("utf-8"))


async def _scenario(push_id, match):
    ctx = D.ssl_context()
    connect_sem = asyncio.Semaphore(50)     # handshakes in flight at once
    sent = asyncio.Event()
    counters = {"sent": 0, "errors": []}
    req = ("GET /v1/auth/push/%s?wait=100 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
           "Authorization: Bearer %s\r\nConnection: close\r\n\r\n"
           % (push_id, D.port, HOST)).encode()
    done_at = {}

    async def one(i):
        writer = None
        try:
            async with connect_sem:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", D.port, ssl=ctx,
                                            server_hostname="127.0.0.1", limit=1 << 20), 60)
                writer.write(req)
                await writer.drain()
            counters["sent"] += 1
            if counters["sent"] == N:
                sent.set()
            r = await _read_response(reader)
            done_at[i] = time.time()
            return r
        except Exception as e:
            counters["errors"].append(repr(e))
            counters["sent"] += 1
            if counters["sent"] == N:
                sent.set()
            return ("error", repr(e))
        finally:
            if writer is not None:
                writer.close()

    tasks = [asyncio.ensure_future(one(i)) for i in range(N)]
    await asyncio.wait_for(sent.wait(), 180)
    assert not counters["errors"], "%d long-polls failed before approval: %r" % (
        len(counters["errors"]), counters["errors"][:5])
    # let the daemon take them all in, then sample it while they wait
    await asyncio.sleep(2.0)
    early = [i for i in done_at]
    assert not early, "%d long-polls returned before the approval" % len(early)
    max_threads = 0
    max_rss = 0
    for _ in range(5):
        st = D.proc_status()
        max_threads = max(max_threads, int(st["Threads"]))
        max_rss = max(max_rss, int(st["VmRSS"].split()[0]))
        await asyncio.sleep(0.3)
    loop = asyncio.get_running_loop()
    t_approve = time.time()
    st, b = await loop.run_in_executor(
        None, lambda: D.admin("POST", "/v1/approvals/%s/approve" % push_id, {"match": match}))
    assert st == 200 and b.get("state") == "approved", "approve → %s %r" % (st, b)
    try:
        results = await asyncio.wait_for(asyncio.gather(*tasks), 30)
    except asyncio.TimeoutError:
        n_done = len(done_at)
        for t in tasks:
            t.cancel()
        raise AssertionError("only %d of %d long-polls returned within 30 s of the approval"
                             % (n_done, N))
    return results, max_threads, max_rss, t_approve, done_at


def test_thousand_longpolls():
    user = D.create_user(push=True)
    _, p = D.create_push(HOST, user)
    assert D.alive()
    results, max_threads, max_rss, t_approve, done_at = asyncio.run(_scenario(p["push_id"], p["match"]))
    if os.environ.get("PC_TEST_VERBOSE"):
        print("    [%d long-polls waiting: daemon Threads %d, VmRSS %d KiB]" % (N, max_threads, max_rss))
    assert max_threads <= MAX_THREADS, "daemon had %d threads with %d long-polls waiting (max %d)" % (
        max_threads, N, MAX_THREADS)
    assert max_rss < MAX_RSS_KIB, "daemon VmRSS %d KiB with %d long-polls waiting" % (max_rss, N)
    bad = [r for r in results if r[0] != 200 or r[1].get("state") != "approved"]
    assert not bad, "%d of %d long-polls did not return approved, e.g. %r" % (len(bad), N, bad[:3])
    assert min(done_at.values()) >= t_approve, "a long-poll returned before the approval"
    assert D.alive() and D.health() == 200
    # the daemon released the connections: threads back down, and it still serves
    st = D.proc_status()
    assert int(st["Threads"]) <= MAX_THREADS, st["Threads"]


def _server_side(d, client_ports):
    """TCP states (hex, as in /proc/net/tcp: 01 established, 08 close-wait) of the daemon's
    ends of the connections from client_ports."""
    out = {}
    for name in ("/proc/%d/net/tcp" % d.pid, "/proc/%d/net/tcp6" % d.pid):
        try:
            lines = open(name).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            lport = int(f[1].rsplit(":", 1)[1], 16)
            rport = int(f[2].rsplit(":", 1)[1], 16)
            if lport == d.port and rport in client_ports:
                out[rport] = f[3]
    return out


def test_hung_up_longpoll_is_closed_on_the_server():
    """A client that disconnects mid-poll (FIN without TLS close_notify, as when its process
    dies; Connection: close so libmicrohttpd itself reads nothing more) → the daemon closes
    its end within a few seconds (no CLOSE-WAIT), not at the poll's deadline (wait=100)."""
    import socket
    user = D.create_user(push=True)
    _, p = D.create_push(HOST, user)
    conns = []
    for _ in range(20):
        s = D.ssl_context().wrap_socket(socket.create_connection(("127.0.0.1", D.port)),
                                        server_hostname="127.0.0.1")
        s.sendall(("GET /v1/auth/push/%s?wait=100 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   "Authorization: Bearer %s\r\nConnection: close\r\n\r\n"
                   % (p["push_id"], HOST)).encode())
        conns.append(s)
    ports = {s.getsockname()[1] for s in conns}
    time.sleep(1.0)
    states = _server_side(D, ports)
    assert len(states) == 20 and set(states.values()) == {"01"}, states
    for s in conns:
        raw = socket.socket(fileno=os.dup(s.fileno()))
        raw.shutdown(socket.SHUT_WR)     # FIN, the TLS layer says nothing
        raw.close()
    try:
        harness.wait_until(lambda: not [v for v in _server_side(D, ports).values()
                                        if v in ("01", "08")], timeout=5,
                           what="the daemon closing its ends of 20 hung-up long-polls")
    finally:
        for s in conns:
            s.close()
    # the push itself is untouched
    st, b = D.poll_push(HOST, p["push_id"], wait=0)
    assert st == 200 and b["state"] == "pending", (st, b)


def test_rss_returns_near_idle_after_release():
    """1,000+ long-polls released: the daemon's RSS goes back near where it was before them
    (a memory outcome; the bound is generous)."""
    user = D.create_user(push=True)
    _, p = D.create_push(HOST, user)
    idle = int(D.proc_status()["VmRSS"].split()[0])
    results, _, max_rss, _, _ = asyncio.run(_scenario(p["push_id"], p["match"]))
    assert all(r[0] == 200 for r in results)

    def rss():
        return int(D.proc_status()["VmRSS"].split()[0])
    try:
        harness.wait_until(lambda: rss() <= idle + 30 * 1024, timeout=45, interval=1,
                           what="RSS back within 30 MB of idle")
    except AssertionError:
        raise AssertionError("RSS %d KiB after %d long-polls were released (idle %d KiB, "
                             "%d KiB while they waited)" % (rss(), N, idle, max_rss))
