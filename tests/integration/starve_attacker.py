#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""The attacker of test_starvation: one source address against portcullisd.

    starve_attacker.py halfopen --port P --source 127.0.0.2 --seconds 60 --rate 140
    starve_attacker.py flood --port P --source 127.0.0.2 --seconds 60 --threads 3 --cafile F

halfopen: opens TCP connections at --rate per second, sends the first bytes of a TLS
ClientHello (a record that announces 512 bytes, of which 48 come) and holds each one until the
server closes it; a closed one is simply replaced by the next opening. flood: --threads threads
each send complete unauthenticated requests in turn over fresh TLS connections: GET /v1/health,
a garbage POST /v1/enroll, POST /v1/auth/begin with a random bearer token. At the end one line
of JSON on stdout: what was opened, what the server closed or refused, the answers by status."""
import argparse
import errno
import http.client
import json
import os
import resource
import select
import socket
import ssl
import threading
import time

PARTIAL_HELLO = (bytes([0x16, 0x03, 0x01, 0x02, 0x00,   # handshake record of 512 bytes
                        0x01, 0x00, 0x01, 0xfc,         # ClientHello of 508 bytes
                        0x03, 0x03]) + os.urandom(37))  # version, 37 of the 32+ random bytes


def halfopen(a):
    opened = refused = closed_by_server = 0
    held = {}
    poller = select.poll()
    t0 = time.monotonic()
    end = t0 + a.seconds
    next_at = t0
    peak = 0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        while next_at <= now:
            next_at += 1.0 / a.rate
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.bind((a.source, 0))
                s.connect_ex(("127.0.0.1", a.port))
            except OSError:
                s.close()
                refused += 1
                continue
            held[s.fileno()] = [s, False]
            poller.register(s.fileno(), select.POLLOUT | select.POLLIN)
            opened += 1
        for fd, ev in poller.poll(max(0, int((next_at - time.monotonic()) * 1000))):
            s, sent = held[fd]
            gone = False
            if ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
                try:
                    gone = s.recv(4096) == b""
                except BlockingIOError:
                    pass
                except OSError:
                    gone = True
            if not gone and not sent and ev & select.POLLOUT:
                try:
                    s.send(PARTIAL_HELLO)
                    held[fd][1] = True
                    poller.modify(fd, select.POLLIN)
                except OSError as e:
                    gone = e.errno not in (errno.EAGAIN, errno.EINPROGRESS)
            if gone:
                poller.unregister(fd)
                del held[fd]
                s.close()
                closed_by_server += 1
        peak = max(peak, len(held))
    elapsed = time.monotonic() - t0
    for s, _ in held.values():
        s.close()
    return {"mode": "halfopen", "opened": opened, "rate": opened / elapsed,
            "closed_by_server": closed_by_server, "open_failed": refused,
            "held_at_end": len(held), "peak_held": peak}


def flood(a):
    ctx = ssl.create_default_context(cafile=a.cafile)
    ctx.check_hostname = False
    statuses = {}
    errors = [0]
    lock = threading.Lock()
    end = time.monotonic() + a.seconds
    reqs = [("GET", "/v1/health", None, None),
            ("POST", "/v1/enroll", b'{"token": 17, "hostname": ["x"]}', None),
            ("POST", "/v1/enroll", b"\x00garbage{{{", None),
            ("POST", "/v1/auth/begin", b'{"user": "root"}', "Bearer " + os.urandom(32).hex())]

    def worker():
        i = 0
        while time.monotonic() < end:
            method, path, body, auth = reqs[i % len(reqs)]
            i += 1
            hdrs = {"Content-Type": "application/json"}
            if auth:
                hdrs["Authorization"] = auth
            c = http.client.HTTPSConnection("127.0.0.1", a.port, timeout=5, context=ctx,
                                            source_address=(a.source, 0))
            try:
                c.request(method, path, body=body, headers=hdrs)
                st = c.getresponse().status
                with lock:
                    statuses[st] = statuses.get(st, 0) + 1
            except (OSError, http.client.HTTPException):
                with lock:
                    errors[0] += 1
                time.sleep(0.01)
            finally:
                c.close()

    threads = [threading.Thread(target=worker) for _ in range(a.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"mode": "flood", "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "errors": errors[0], "requests": sum(statuses.values()) + errors[0]}


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["halfopen", "flood"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--source", default="127.0.0.2")
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--rate", type=float, default=140)
    p.add_argument("--threads", type=int, default=3)
    p.add_argument("--cafile")
    a = p.parse_args()
    out = halfopen(a) if a.mode == "halfopen" else flood(a)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
