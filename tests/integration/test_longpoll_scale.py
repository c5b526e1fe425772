# SPDX-License-Identifier: BSD-2-Clause
"""1000 concurrent long-polls on one pending push: the daemon keeps a bounded number of threads
and bounded memory while they wait, and answers every one of them once the push is approved."""
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
