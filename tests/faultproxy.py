#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""faultproxy.py — a fault-injecting stand-in for portcullisd, owned by the tests.

Python 3 standard library only (plus the `openssl` command for the `wrongkey` mode).
Listens on 127.0.0.1 only. For every accepted connection it reads its mode from --mode-file,
so a test switches faults by rewriting that file; no restart.

Usage:
  faultproxy.py --mode-file FILE [--port PORT] [--upstream HOST:PORT]
                [--cert TLS.CRT --key TLS.KEY] [--port-file F] [--pid-file F]
                [--workdir DIR] [--quiet]

  --mode-file FILE   first word of the file is the mode (missing/empty file: pass);
                     `slow` may be followed by the delay in seconds, e.g. "slow 5"
  --port PORT        port to listen on (default 0: pick a free one; see --port-file)
  --upstream H:P     the real portcullisd (for pass and slow); must be loopback
  --cert/--key       the real portcullisd's tls.crt/tls.key (DATA_DIR/tls.crt, tls.key) for
                     garbage: the client's pin matches, so only the body is wrong
  --port-file F      write the listening port here once listening (atomic rename)
  --pid-file F       write our pid here
  --workdir DIR      where the wrongkey certificate is generated (default: a temp dir)

Modes:
  pass       plain TCP forward to --upstream (TLS passes through untouched)
  dead       refuse: the listening socket is closed while this mode is set (connect gets
             ECONNREFUSED); it is re-opened on the same port when the mode changes
  reset      accept, then close at once with a TCP reset (SO_LINGER 0)
  hang       accept, read and discard, never answer, keep the socket open until the peer leaves
  garbage    TLS with --cert/--key, read each HTTP request, answer
             "HTTP/1.1 200 OK" with a non-JSON body
  slow [N]   forward like pass, but hold upstream's answers until N seconds (default 5) after the
             client's first bytes on the connection (one delay per connection)

When the mode file's content changes, every open connection is closed (a client with a
persistent connection, like portcullis-agent, reconnects and meets the new mode).
  wrongkey   TLS with a freshly generated P-256 key/certificate (generated at start with
             `openssl req -x509 -newkey ec ...`): the client's pin does not match
  mute       forward like pass, but discard everything upstream sends from now on: the
             request reaches (and is applied by) portcullisd, its answer is lost. Switching
             to mute keeps the open connections (a client's warm connection stays usable).

Stop it with SIGTERM (or SIGINT). Exit status 0.
"""
import argparse
import os
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time

GARBAGE_BODY = b"<html><body>definitely not JSON</body></html>\n"
QUIET = False


def log(msg):
    if not QUIET:
        sys.stderr.write("faultproxy[%d]: %s\n" % (os.getpid(), msg))
        sys.stderr.flush()


def read_mode(path):
    try:
        with open(path) as f:
            words = f.read().split()
    except OSError:
        words = []
    if not words:
        return "pass", None
    arg = None
    if len(words) > 1:
        try:
            arg = float(words[1])
        except ValueError:
            arg = None
    return words[0], arg


def close_quietly(s):
    try:
        s.close()
    except OSError:
        pass


MUTED = [False]   # mode mute: upstream's bytes are dropped (set by watch_mode and serve)


def pipe(src, dst, state=None, delay=0.0, mark=False):
    """Copies src → dst until EOF. mark: record when the client first sent data; delay: hold
    upstream's answers until delay seconds after that (one delay per connection)."""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if not mark and MUTED[0]:
                continue   # upstream → client while muted: the answer is lost
            if mark:
                if state["first"] is None:
                    state["first"] = time.monotonic()
            elif delay > 0:
                wait = (state["first"] or time.monotonic()) + delay - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def forward(client, upstream, delay=0.0):
    host, port = upstream
    try:
        up = socket.create_connection((host, port), timeout=10)
        up.settimeout(None)
    except OSError as e:
        log("upstream connect failed: %s" % e)
        close_quietly(client)
        return
    state = {"first": None}
    t = threading.Thread(target=pipe, args=(client, up, state, 0.0, True), daemon=True)
    t.start()
    pipe(up, client, state, delay, False)
    t.join()
    close_quietly(up)
    close_quietly(client)


def hang(client):
    try:
        while client.recv(65536):
            pass
    except OSError:
        pass
    close_quietly(client)


def dead(client):
    try:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    close_quietly(client)


def read_http_request(f):
    """Reads one HTTP/1.1 request (headers + Content-Length body). False at EOF."""
    line = f.readline(65537)
    if not line:
        return False
    length = 0
    while True:
        h = f.readline(65537)
        if not h or h in (b"\r\n", b"\n"):
            break
        name, _, value = h.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                length = int(value.strip())
            except ValueError:
                length = 0
    if length > 0:
        f.read(length)
    return True


def tls_garbage(client, ctx):
    try:
        client.settimeout(30)
        tls = ctx.wrap_socket(client, server_side=True)
    except (OSError, ssl.SSLError) as e:
        log("TLS handshake failed (expected for wrongkey): %s" % e)
        close_quietly(client)
        return
    with OPEN_LOCK:  # the raw socket is detached now: track the TLS one for mode changes
        OPEN.add(tls)
    try:
        f = tls.makefile("rb")
        while read_http_request(f):
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n" % len(GARBAGE_BODY) + GARBAGE_BODY)
    except (OSError, ssl.SSLError):
        pass
    with OPEN_LOCK:
        OPEN.discard(tls)
    close_quietly(tls)


def make_ctx(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def generate_wrong_cert(workdir):
    crt = os.path.join(workdir, "wrongkey.crt")
    key = os.path.join(workdir, "wrongkey.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt,
                    "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return crt, key


OPEN = set()
OPEN_LOCK = threading.Lock()


def watch_mode(path):
    """Closes every open connection when the mode file changes."""
    last = read_mode(path)
    while True:
        time.sleep(0.1)
        cur = read_mode(path)
        if cur != last:
            MUTED[0] = cur[0] == "mute"
            if MUTED[0]:
                log("mode changed to mute: connections kept, answers dropped")
                last = cur
                continue
            log("mode changed to %s: closing %d open connection(s)" % (cur[0], len(OPEN)))
            last = cur
            with OPEN_LOCK:
                for c in list(OPEN):
                    try:
                        c.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass


def handle(client, args, ctxs):
    with OPEN_LOCK:
        OPEN.add(client)
    try:
        serve(client, args, ctxs)
    finally:
        with OPEN_LOCK:
            OPEN.discard(client)


def serve(client, args, ctxs):
    mode, arg = read_mode(args.mode_file)
    log("connection in mode %s" % mode)
    if mode in ("pass", "mute") and args.upstream:
        MUTED[0] = mode == "mute"
        forward(client, args.upstream)
    elif mode == "slow" and args.upstream:
        forward(client, args.upstream, delay=arg if arg is not None else 5.0)
    elif mode == "hang":
        hang(client)
    elif mode == "garbage" and ctxs.get("garbage"):
        tls_garbage(client, ctxs["garbage"])
    elif mode == "wrongkey":
        tls_garbage(client, ctxs["wrongkey"])
    else:  # reset/dead, or a mode we cannot serve (no upstream / no cert): fail the connection
        if mode not in ("dead", "reset"):
            log("mode %r cannot be served with these arguments; closing" % mode)
        dead(client)


def parse_upstream(text):
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if host not in ("127.0.0.1", "::1", "localhost"):
        raise SystemExit("faultproxy: --upstream must be a loopback address")
    return host, int(port)


def listen_on(port):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    for _ in range(50):
        try:
            srv.bind(("127.0.0.1", port))
            break
        except OSError:
            if port == 0:
                raise
            time.sleep(0.1)
    srv.listen(128)
    srv.settimeout(0.1)
    return srv


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def main():
    global QUIET
    p = argparse.ArgumentParser(description="fault-injecting proxy for portcullis tests")
    p.add_argument("--mode-file", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--upstream", type=parse_upstream)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--port-file")
    p.add_argument("--pid-file")
    p.add_argument("--workdir")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args()
    QUIET = args.quiet

    workdir = args.workdir or tempfile.mkdtemp(prefix="faultproxy-")
    ctxs = {"wrongkey": make_ctx(*generate_wrong_cert(workdir))}
    if args.cert and args.key:
        ctxs["garbage"] = make_ctx(args.cert, args.key)

    srv = listen_on(args.port)
    port = srv.getsockname()[1]

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.pid_file:
        write_atomic(args.pid_file, "%d\n" % os.getpid())
    if args.port_file:
        write_atomic(args.port_file, "%d\n" % port)
    log("listening on 127.0.0.1:%d" % port)
    threading.Thread(target=watch_mode, args=(args.mode_file,), daemon=True).start()
    try:
        while True:
            dead = read_mode(args.mode_file)[0] == "dead"
            if dead and srv is not None:
                close_quietly(srv)
                srv = None
                log("dead: listening socket closed")
            elif not dead and srv is None:
                srv = listen_on(port)
                log("listening again on 127.0.0.1:%d" % port)
            if srv is None:
                time.sleep(0.1)
                continue
            try:
                client, _ = srv.accept()
            except socket.timeout:
                continue
            client.settimeout(None)
            threading.Thread(target=handle, args=(client, args, ctxs), daemon=True).start()
    except SystemExit:
        pass
    finally:
        if srv is not None:
            close_quietly(srv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
