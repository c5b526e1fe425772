#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Numbers for docs/HA.md's sizing: begin+TOTP verifications/s (one instance; two instances on
one SQLite data dir), and the daemon's memory per pending long-poll. Not a test: it prints.

Usage: PC_BUILD_DIR=build/plain bench/ha_sizing.py [USERS] [CLIENTS] [LONGPOLLS]
  USERS      logins per run, each a different user (a code is single-use; default 600)
  CLIENTS    concurrent HTTPS clients, each on one keep-alive connection (default 8)
  LONGPOLLS  pending long-polls held for the memory figure (default 1000)
"""
import asyncio
import http.client
import json
import os
import resource
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import harness  # noqa: E402
from harness import Daemon  # noqa: E402


def rss_kib(d):
    return int(d.proc_status()["VmRSS"].split()[0])


def make_users(d, n):
    return [d.user_with_totp() for _ in range(n)]


def verify_rate(daemons, host, users, clients):
    """users split over clients threads; each thread keeps one connection to one daemon."""
    per = [users[i::clients] for i in range(clients)]
    errors = []

    def worker(i):
        d = daemons[i % len(daemons)]
        con = http.client.HTTPSConnection("127.0.0.1", d.port, context=d.ssl_context(),
                                          timeout=60)
        hdr = {"Authorization": "Bearer " + host, "Content-Type": "application/json"}
        for u, s in per[i]:
            con.request("POST", "/v1/auth/begin", json.dumps({"user": u}), hdr)
            b = json.loads(con.getresponse().read())
            con.request("POST", "/v1/auth/totp",
                        json.dumps({"txid": b["txid"], "code": harness.totp_code(s)}), hdr)
            r = json.loads(con.getresponse().read())
            if r.get("result") != "allow":
                errors.append(r)
        con.close()
    ts = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    t0 = time.time()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt = time.time() - t0
    return len(users) / dt, errors


def health_rate(d, host, clients, n=3000):
    """GET /v1/health with the host token on keep-alive connections: the agent's keep-warm
    request (one per instance and host when idle for 10 s)."""
    def worker(k):
        con = http.client.HTTPSConnection("127.0.0.1", d.port, context=d.ssl_context(),
                                          timeout=60)
        for _ in range(k):
            con.request("GET", "/v1/health", headers={"Authorization": "Bearer " + host})
            con.getresponse().read()
        con.close()
    ts = [threading.Thread(target=worker, args=(n // clients,)) for _ in range(clients)]
    t0 = time.time()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return (n // clients) * clients / (time.time() - t0)


async def hold_longpolls(d, host, push_id, n):
    ctx = d.ssl_context()
    sem = asyncio.Semaphore(50)
    req = ("GET /v1/auth/push/%s?wait=100 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
           "Connection: close\r\n\r\n" % (push_id, host)).encode()
    writers = []

    async def one():
        async with sem:
            _, w = await asyncio.open_connection("127.0.0.1", d.port, ssl=ctx,
                                                 server_hostname="127.0.0.1")
            w.write(req)
            await w.drain()
            writers.append(w)
    base = rss_kib(d)
    await asyncio.gather(*[one() for _ in range(n)])
    await asyncio.sleep(2)
    held = max(rss_kib(d) for _ in range(3))
    threads = int(d.proc_status()["Threads"])
    for w in writers:
        w.close()
    return base, held, threads


def main():
    users_n = int(sys.argv[1]) if len(sys.argv) > 1 else 600
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    polls = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, polls * 2 + 256)), hard))
    a = Daemon(args=["--push-ttl", "5m", "--auth-rate", "100000"]).start()
    _, host = a.enroll_host(hostname="bench")
    try:
        us = make_users(a, users_n)
        r1, e1 = verify_rate([a], host, us, clients)
        print("one instance:   %.0f begin+totp verifications/s (%d logins, %d clients)%s"
              % (r1, users_n, clients, " ERRORS %d" % len(e1) if e1 else ""))
        b = Daemon(data_dir=a.data_dir, args=["--push-ttl", "5m", "--auth-rate", "100000"])
        b.start()
        us = make_users(a, users_n)
        r2, e2 = verify_rate([a, b], host, us, clients)
        print("two instances:  %.0f begin+totp verifications/s (one SQLite data dir)%s"
              % (r2, " ERRORS %d" % len(e2) if e2 else ""))
        print("ratio two/one:  %.2f" % (r2 / r1))
        b.kill()
        print("keep-warm:      %.0f GET /v1/health/s (host token, %d clients)"
              % (health_rate(a, host, clients), clients))
        u, _ = a.user_with_totp(push=True)
        _, p = a.create_push(host, u)
        base, held, threads = asyncio.run(hold_longpolls(a, host, p["push_id"], polls))
        print("long-polls:     %d held: VmRSS %d -> %d KiB (%.1f KiB each), %d threads"
              % (polls, base, held, (held - base) / polls, threads))
    finally:
        a.kill()
        harness.cleanup_all()


if __name__ == "__main__":
    main()
