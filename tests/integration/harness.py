# SPDX-License-Identifier: BSD-2-Clause
"""Integration-test harness for portcullisd and the portcullis CLI.

Python 3 standard library only. Everything talks to 127.0.0.1.

Main pieces:
  Daemon            one portcullisd process on a fresh (or given) data directory
  Daemon.api()      (status, json) over HTTPS, trusting DATA_DIR/tls.crt
  totp_code()       RFC 6238 (HMAC-SHA1, 6 digits, 30 s), independent of the C code
  spki_pin_from_der() sha256//BASE64 of a certificate's SubjectPublicKeyInfo
  run_cli()         runs the real CLI, returns (rc, stdout, stderr)
  Skip              raise to skip a test

The store: SQLite (portcullis.db in the data dir), or with PC_TEST_STORE=postgresql a fresh
PostgreSQL database per data dir, on one throwaway cluster per test run (tests/lib/pgserver.py),
handed to the daemon by --store-file (a 0600 file beside the data dir). read_db_bytes() and
db_query() read the store whichever it is; sqlite_only() skips a test about the SQLite file.
"""
import atexit
import base64
import hashlib
import hmac
import http.client
import itertools
import json
import os
import random
import resource
import shutil
import signal
import socket
import ssl
import string
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
SRC_DIR = os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD_DIR = os.environ.get("PC_BUILD_DIR", os.path.join(SRC_DIR, "build-main"))
DAEMON_BIN = os.path.join(BUILD_DIR, "control-plane", "portcullisd")
CLI_BIN = os.path.join(BUILD_DIR, "cli", "portcullis")

START_TIMEOUT = 30.0      # seconds to wait for GET /v1/health after spawning
STOP_TIMEOUT = 15.0       # seconds to wait for exit after SIGTERM
HTTP_TIMEOUT = 60.0

STORE = os.environ.get("PC_TEST_STORE", "sqlite")
if STORE not in ("sqlite", "postgresql"):
    raise SystemExit("PC_TEST_STORE must be sqlite or postgresql, not %r" % STORE)

_ALL_DAEMONS = []
_TMP_ROOTS = []
current = None            # the most recently started Daemon (for the module-level api())


class Skip(Exception):
    """Raise Skip("reason") inside a test to report it as skipped."""


class NonJSON(str):
    """A response body that is not JSON (so tests indexing it fail loudly)."""


def _raise_nofile(want=65536):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


# Raised before any daemon is spawned so daemons inherit it too.
_raise_nofile()


# --------------------------------------------------------------------------------------------
# small helpers

_counter = itertools.count(1)


def unique_name(prefix="u"):
    """A fresh valid user name ([a-z_][a-z0-9_.-]{0,31})."""
    rnd = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(5))
    return ("%s%d_%s" % (prefix, next(_counter), rnd))[:32]


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(pred, timeout=10.0, interval=0.1, what="condition"):
    """Polls pred() until it returns a truthy value; returns it, or raises AssertionError."""
    deadline = time.time() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.time() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s (last: %r)"
                                 % (timeout, what, last))
        time.sleep(interval)


def file_mode(path):
    return os.stat(path).st_mode & 0o777


# --------------------------------------------------------------------------------------------
# the store: SQLite's file, or a PostgreSQL database per data dir

_PG_URLS = {}             # absolute data dir -> URL of its database (restarts reuse it)
_pg_template = None       # a database with the schema migrated, copied for each new data dir


def is_pg():
    return STORE == "postgresql"


def sqlite_only(why):
    """Skips the calling test on PostgreSQL: it is about the SQLite file itself (why)."""
    if is_pg():
        raise Skip("SQLite only: %s" % why)


def pg_server():
    sys.path.insert(0, os.path.join(SRC_DIR, "tests", "lib"))
    import pgserver
    return pgserver.shared()


def _write_store_file(path, url):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(url + "\n")
    os.chmod(path, 0o600)


def _pg_template_db():
    """A database migrated once by `portcullisd --migrate-only`; CREATE DATABASE … TEMPLATE
    copies it for each data dir (each daemon then starts on an up-to-date schema).
    PC_TEST_PG_TEMPLATE=0: every daemon migrates its own empty database."""
    global _pg_template
    if os.environ.get("PC_TEST_PG_TEMPLATE", "1") == "0":
        return None
    if _pg_template is None:
        srv = pg_server()
        url = srv.new_database()
        root = tempfile.mkdtemp(prefix="pc-it-tmpl-")
        _TMP_ROOTS.append(root)
        path = os.path.join(root, "store.url")
        _write_store_file(path, url)
        r = subprocess.run([DAEMON_BIN, "--data-dir", os.path.join(root, "data"),
                            "--store-file", path, "--migrate-only"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=120)
        if r.returncode != 0:
            raise AssertionError("portcullisd --migrate-only on %s failed (%d): %s"
                                 % (url, r.returncode, r.stdout.decode(errors="replace")))
        _pg_template = srv.dbname(url)
    return _pg_template


def pg_url(data_dir):
    """The PostgreSQL database of a data dir (created on first use)."""
    key = os.path.abspath(data_dir)
    if key not in _PG_URLS:
        tmpl = _pg_template_db()
        _PG_URLS[key] = pg_server().new_database(template=tmpl)
    return _PG_URLS[key]


def db_query(d, sql, params=()):
    """Rows of one SQL statement on d's store (a Daemon or a data dir), whichever back end:
    a list of tuples (on PostgreSQL integers come back as int, NULL as None, the rest as
    text). '?' parameters."""
    data_dir = d.data_dir if isinstance(d, Daemon) else d
    if not is_pg():
        import sqlite3
        con = sqlite3.connect(os.path.join(data_dir, "portcullis.db"), timeout=30)
        try:
            rows = con.execute(sql, params).fetchall()
            con.commit()
            return rows
        finally:
            con.close()
    it = iter(params)

    def lit(_m):
        v = next(it)
        if v is None:
            return "NULL"
        if isinstance(v, bool):
            return "1" if v else "0"
        if isinstance(v, int):
            return "%d" % v
        if isinstance(v, bytes):
            return "'\\x%s'::bytea" % v.hex()
        return "'%s'" % str(v).replace("'", "''")
    import re
    text = re.sub(r"\?", lit, sql)
    srv = pg_server()
    out = srv.psql_rows(text, srv.dbname(pg_url(data_dir)))
    def conv(c):
        if c is not None and re.fullmatch(r"-?[0-9]+", c):
            return int(c)
        if c is not None and re.fullmatch(r"\\x(?:[0-9a-f]{2})*", c):
            return bytes.fromhex(c[2:])     # bytea
        return c
    return [tuple(conv(c) for c in r) for r in out]


PG_WRITE_LOCK_KEY = "5795977089659530348"   # cp_sql_pg.c's write lock (an advisory lock)


class hold_write_lock:
    """with hold_write_lock(d): the store's write lock is held from outside the daemon —
    SQLite's BEGIN IMMEDIATE on the file, or PostgreSQL's advisory lock that cp_tx_begin
    takes, in an open transaction of another session."""

    def __init__(self, d):
        self.d = d

    def __enter__(self):
        if not is_pg():
            import sqlite3
            self.con = sqlite3.connect(self.d.db_path, timeout=1, isolation_level=None)
            self.con.execute("BEGIN IMMEDIATE")
            return self
        srv = pg_server()
        self.proc = subprocess.Popen(
            [os.path.join(srv.bin, "psql"), "-X", "-q", "-At", "-h", srv.sock, "-U", "postgres",
             "-d", srv.dbname(pg_url(self.d.data_dir))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.proc.stdin.write("BEGIN;\nSELECT pg_advisory_xact_lock(%s);\n\\echo locked\n"
                              % PG_WRITE_LOCK_KEY)
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        while line and line.strip() != "locked":
            line = self.proc.stdout.readline()
        assert line, "psql could not take the write lock"
        return self

    def __exit__(self, *exc):
        if not is_pg():
            self.con.execute("ROLLBACK")
            self.con.close()
            return False
        self.proc.stdin.write("ROLLBACK;\n")
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()
        return False


def read_db_bytes(data_dir):
    """Everything the store holds: all bytes of portcullis.db plus its -wal and -shm files
    (whatever exists), or on PostgreSQL every row of the database (pg_dump --data-only) followed
    by every bytea value of it decoded (the dump shows them in hex), so a search for raw bytes
    sees them as it would in the SQLite file."""
    if is_pg():
        import re
        dump = pg_server().dump(pg_url(data_dir))
        return dump + b"".join(bytes.fromhex(h.decode())
                               for h in re.findall(rb"\\\\x((?:[0-9a-f]{2})+)", dump))
    out = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        p = os.path.join(data_dir, "portcullis.db" + suffix)
        if os.path.exists(p):
            with open(p, "rb") as f:
                out += f.read()
    return out


def store_problems(daemons=None):
    """What contradicts PC_TEST_STORE in the daemons started so far (default: every Daemon of
    this process): each start that logged `event=started` must say store=STORE, and on
    PostgreSQL no portcullis.db may exist in a data dir. [] when all is well. For suites that
    only switch the store through the environment (tests/e2e-pg), so that a switch which
    silently fell back to SQLite makes them fail."""
    out = []
    started = 0
    for d in list(_ALL_DAEMONS if daemons is None else daemons):
        if any(a.split("=")[0] in ("--store", "--store-file") for a in d.args):
            continue        # the test names its own store
        for line in d.all_logs().splitlines():
            if "event=started " in line:
                started += 1
                if "store=%s" % STORE not in line.split():
                    out.append("%s did not run on %s: %s" % (d.data_dir, STORE, line.strip()))
        if is_pg() and os.path.exists(os.path.join(d.data_dir, "portcullis.db")):
            out.append("%s has a portcullis.db although the store is PostgreSQL" % d.data_dir)
    if not started:
        out.append("no portcullisd logged event=started (cannot tell which store it used)")
    return out


# --------------------------------------------------------------------------------------------
# TOTP (RFC 6238 / RFC 4226), independent of the C implementation

def b32decode_loose(secret):
    s = secret.strip().replace(" ", "").upper()
    s += "=" * (-len(s) % 8)
    return base64.b32decode(s)


def hotp(key, counter, digits=6):
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    val = (struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % (10 ** digits)
    return "%0*d" % (digits, val)


def totp_step(t=None):
    return int((time.time() if t is None else t) // 30)


def step_with_time_left(secs=12):
    """The current step, once at least secs seconds of it are left (sleeping into the next step
    if fewer are): a test that computes codes relative to "now" and then makes several calls
    before the last of them must not see the step roll over in between."""
    left = 30 - time.time() % 30
    if left < secs:
        time.sleep(left + 0.05)
    return totp_step()


def totp_code(secret_b32, t=None, step=None, offset=0):
    """The code for time t (default now), or for an explicit time step, plus offset steps."""
    key = b32decode_loose(secret_b32)
    if step is None:
        step = totp_step(t)
    return hotp(key, step + offset)


def wrong_code(secret_b32):
    """A 6-digit code that matches none of the steps now-5..now+5."""
    key = b32decode_loose(secret_b32)
    now = totp_step()
    valid = {hotp(key, now + d) for d in range(-5, 6)}
    while True:
        c = "%06d" % random.randrange(10 ** 6)
        if c not in valid:
            return c


def wrong_match(match, k=37):
    """A valid-looking match number (10-99) that differs from match."""
    m = int(match)
    w = 10 + ((m - 10 + k) % 90)
    assert w != m
    return "%02d" % w


def parse_otpauth(uri):
    """Returns (label, params dict) of an otpauth:// URI."""
    u = urllib.parse.urlsplit(uri)
    assert u.scheme == "otpauth" and u.netloc == "totp", "not an otpauth://totp URI: %r" % uri
    label = urllib.parse.unquote(u.path.lstrip("/"))
    params = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
    return label, params


def _selfcheck_totp():
    # RFC 6238 appendix B, SHA1, T=59 → 94287082 (8 digits) → last 6 digits with 6-digit math.
    key = b"12345678901234567890"
    assert hotp(key, 59 // 30, 8) == "94287082"
    assert hotp(key, 1111111109 // 30, 8) == "07081804"
    assert hotp(key, 59 // 30, 6) == "287082"


_selfcheck_totp()


# --------------------------------------------------------------------------------------------
# DER walking: the SubjectPublicKeyInfo of an X.509 certificate

def _der_read(buf, pos):
    """Reads one TLV at pos. Returns (tag, content_start, content_end, tlv_end)."""
    tag = buf[pos]
    pos += 1
    if tag & 0x1F == 0x1F:
        raise ValueError("high-tag-number form not expected in a certificate")
    ln = buf[pos]
    pos += 1
    if ln & 0x80:
        n = ln & 0x7F
        if n == 0 or n > 4:
            raise ValueError("unsupported DER length")
        ln = int.from_bytes(buf[pos:pos + n], "big")
        pos += n
    end = pos + ln
    if end > len(buf):
        raise ValueError("DER truncated")
    return tag, pos, end, end


def _der_children(buf, start, end):
    out = []
    pos = start
    while pos < end:
        tag, cs, ce, te = _der_read(buf, pos)
        out.append((tag, pos, cs, ce, te))
        pos = te
    return out


def spki_der_from_cert(der):
    """The DER bytes of the SubjectPublicKeyInfo of an X.509 certificate (DER)."""
    tag, cs, ce, _ = _der_read(der, 0)
    assert tag == 0x30, "Certificate is not a SEQUENCE"
    tbs_tag, _, tcs, tce, _ = _der_children(der, cs, ce)[0]
    assert tbs_tag == 0x30, "tbsCertificate is not a SEQUENCE"
    kids = _der_children(der, tcs, tce)
    i = 0
    if kids[0][0] == 0xA0:          # [0] EXPLICIT version
        i = 1
    # serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
    spki = kids[i + 5]
    assert spki[0] == 0x30, "subjectPublicKeyInfo is not a SEQUENCE"
    return bytes(der[spki[1]:spki[4]])


def spki_pin_from_der(der):
    return "sha256//" + base64.b64encode(hashlib.sha256(spki_der_from_cert(der)).digest()).decode()


def pem_to_der(pem_text):
    lines = [l for l in pem_text.strip().splitlines() if l and not l.startswith("-----")]
    return base64.b64decode("".join(lines))


# --------------------------------------------------------------------------------------------
# the daemon

class Daemon:
    """One portcullisd. Usage:
        d = Daemon(args=["--push-ttl", "2s"]).start()
        status, body = d.api("GET", "/v1/health")
        d.stop()
    """

    def __init__(self, data_dir=None, args=None, env=None, port=None, log_level=None):
        if data_dir is None:
            root = tempfile.mkdtemp(prefix="pc-it-")
            _TMP_ROOTS.append(root)
            data_dir = os.path.join(root, "data")   # not created: the daemon must create it
            self.root = root
        else:
            self.root = os.path.dirname(os.path.abspath(data_dir))
        self.data_dir = data_dir
        self.args = list(args or [])
        self.env = dict(env or {})
        self.port = port or free_port()
        self.log_level = log_level
        self.proc = None
        self.returncode = None
        self._ctx = None
        self._admin_token = None
        self.starts = 0
        self.log_path = None
        _ALL_DAEMONS.append(self)

    # ---- process control ----------------------------------------------------------------
    @property
    def url(self):
        return "https://127.0.0.1:%d" % self.port

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def store_args(self):
        """[] on SQLite; on PostgreSQL --store-file naming this data dir's database (unless the
        test names its own store with --store or --store-file)."""
        if not is_pg() or any(a.split("=")[0] in ("--store", "--store-file") for a in self.args):
            return []
        path = os.path.join(self.root, "%s.store" % os.path.basename(self.data_dir.rstrip("/")))
        _write_store_file(path, pg_url(self.data_dir))
        return ["--store-file", path]

    def command(self):
        cmd = [DAEMON_BIN, "--data-dir", self.data_dir, "--listen", "127.0.0.1:%d" % self.port]
        cmd += self.store_args()
        if self.log_level:
            cmd += ["--log-level", self.log_level]
        return cmd + self.args

    def start(self, wait=True, env=None, args=None):
        """Spawns the daemon (optionally with different env/args for this start) and waits for
        GET /v1/health → 200. Raises AssertionError with the log if it does not come up."""
        global current
        if not os.path.exists(DAEMON_BIN):
            raise AssertionError("daemon binary not built: %s (set PC_BUILD_DIR)" % DAEMON_BIN)
        if env is not None:
            self.env = dict(env)
        if args is not None:
            self.args = list(args)
        self.starts += 1
        self.log_path = os.path.join(self.root, "daemon-%d-%d.log" % (self.port, self.starts))
        self.stdout_path = self.log_path + ".stdout"
        cmd = self.command()
        full_env = dict(os.environ)
        full_env.update(self.env)
        self._log_f = open(self.log_path, "wb")
        self._out_f = open(self.stdout_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._out_f,
                                     stderr=self._log_f, env=full_env, close_fds=True)
        self.returncode = None
        self._ctx = None
        current = self
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=START_TIMEOUT):
        deadline = time.time() + timeout
        last_err = None
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("portcullisd exited with %s during start-up; log:\n%s"
                                     % (self.proc.returncode, self.log()))
            if os.path.exists(os.path.join(self.data_dir, "tls.crt")):
                try:
                    st, body = self.api("GET", "/v1/health", timeout=5)
                    if st == 200:
                        return
                    last_err = "health returned %s %r" % (st, body)
                except (OSError, ssl.SSLError, http.client.HTTPException) as e:
                    last_err = repr(e)
                    self._ctx = None
            time.sleep(0.1)
        raise AssertionError("portcullisd did not answer /v1/health within %.0fs (%s); log:\n%s"
                             % (timeout, last_err, self.log()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Sends sig and waits; returns the exit status (SIGKILL after timeout)."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.returncode = self.proc.returncode
                self._close_files()
                self.proc = None
                raise AssertionError("portcullisd did not exit within %.0fs of signal %d"
                                     % (timeout, sig))
        self.returncode = self.proc.returncode
        self._close_files()
        self.proc = None
        return self.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc is not None:
            self.returncode = self.proc.returncode
        self._close_files()
        self.proc = None

    def restart(self, env=None, args=None):
        rc = self.stop()
        assert rc == 0, "portcullisd exited %s on SIGTERM; log:\n%s" % (rc, self.log())
        return self.start(env=env, args=args)

    def _close_files(self):
        for f in (getattr(self, "_log_f", None), getattr(self, "_out_f", None)):
            if f:
                try:
                    f.close()
                except OSError:
                    pass

    def log(self):
        """The daemon's stderr so far (current start)."""
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def all_logs(self):
        """stderr of every start of this daemon, concatenated."""
        out = []
        for n in range(1, self.starts + 1):
            p = os.path.join(self.root, "daemon-%d-%d.log" % (self.port, n))
            if os.path.exists(p):
                with open(p, "rb") as f:
                    out.append(f.read().decode("utf-8", "replace"))
        return "".join(out)

    def proc_status(self):
        """/proc/PID/status as a dict of strings."""
        out = {}
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                out[k.strip()] = v.strip()
        return out

    # ---- files ------------------------------------------------------------------------------
    def path(self, name):
        return os.path.join(self.data_dir, name)

    @property
    def db_path(self):
        return self.path("portcullis.db")

    @property
    def admin_token(self):
        if self._admin_token is None:
            with open(self.path("admin.token")) as f:
                self._admin_token = f.read().strip()
        return self._admin_token

    def cert_der(self):
        with open(self.path("tls.crt")) as f:
            return pem_to_der(f.read())

    def print_pin(self):
        """Runs `portcullisd --data-dir DIR --print-pin`; returns the stripped stdout."""
        r = subprocess.run([DAEMON_BIN, "--data-dir", self.data_dir, "--print-pin"],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=30,
                           env=dict(os.environ, **self.env))
        assert r.returncode == 0, "--print-pin exited %d: %s" % (r.returncode, r.stderr.decode())
        return r.stdout.decode().strip()

    @property
    def pin(self):
        """The pin from --print-pin (cached; the key does not change for a data dir)."""
        if getattr(self, "_pin_cache", None) is None:
            self._pin_cache = self.print_pin()
        return self._pin_cache

    def served_cert_der(self):
        """The DER certificate the daemon presents (no verification)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            with ctx.wrap_socket(s) as ts:
                return ts.getpeercert(binary_form=True)

    # ---- HTTP ---------------------------------------------------------------------------------
    def ssl_context(self):
        if self._ctx is None:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.path("tls.crt"))
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_REQUIRED
            self._ctx = ctx
        return self._ctx

    def request(self, method, path, body=None, token=None, raw=None, headers=None,
                timeout=HTTP_TIMEOUT, source=None):
        """Full exchange: returns (status, parsed_json_or_NonJSON, headers_dict, raw_bytes).
        source: the client's loopback address (e.g. "127.0.0.9"; default 127.0.0.1)."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                           context=self.ssl_context(),
                                           source_address=(source, 0) if source else None)
        hdrs = {"Host": "127.0.0.1:%d" % self.port}
        if raw is not None:
            data = raw if isinstance(raw, bytes) else raw.encode("utf-8")
            hdrs["Content-Type"] = "application/json"
        elif body is not None:
            data = json.dumps(body).encode("utf-8")
            hdrs["Content-Type"] = "application/json"
        else:
            data = None
        if token is not None:
            hdrs["Authorization"] = "Bearer %s" % token
        if headers:
            hdrs.update(headers)
        try:
            try:
                conn.request(method, path, body=data, headers=hdrs)
            except (BrokenPipeError, ConnectionResetError):
                # The server may answer (e.g. 413) and close before reading the whole body.
                pass
            resp = conn.getresponse()
            rawbody = resp.read()
            status = resp.status
            rhdrs = {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()
        try:
            parsed = json.loads(rawbody.decode("utf-8")) if rawbody else NonJSON("")
        except (ValueError, UnicodeDecodeError):
            parsed = NonJSON(rawbody.decode("utf-8", "replace"))
        return status, parsed, rhdrs, rawbody

    def api(self, method, path, body=None, token=None, raw=None, headers=None,
            timeout=HTTP_TIMEOUT, source=None):
        """Returns (status, json). body is JSON-encoded; raw (bytes/str) is sent as is."""
        st, parsed, _, _ = self.request(method, path, body=body, token=token, raw=raw,
                                        headers=headers, timeout=timeout, source=source)
        return st, parsed

    def admin(self, method, path, body=None, raw=None, timeout=HTTP_TIMEOUT):
        return self.api(method, path, body=body, token=self.admin_token, raw=raw, timeout=timeout)

    def health(self):
        st, _ = self.api("GET", "/v1/health", timeout=10)
        return st

    # ---- domain helpers --------------------------------------------------------------------
    def create_user(self, name=None, groups=None, push=True):
        name = name or unique_name()
        body = {"name": name, "groups": list(groups or []), "push": push}
        st, b = self.admin("POST", "/v1/users", body)
        assert st == 201, "POST /v1/users %r → %s %r" % (body, st, b)
        return name

    def enroll_totp(self, name, force=False):
        """Enrolls TOTP; returns (secret_base32, uri)."""
        st, b = self.admin("POST", "/v1/users/%s/totp" % name, {"force": force})
        assert st == 201, "POST /v1/users/%s/totp → %s %r" % (name, st, b)
        uri = b["uri"]
        _, params = parse_otpauth(uri)
        return params["secret"], uri

    def user_with_totp(self, push=False, groups=None):
        name = self.create_user(push=push, groups=groups)
        secret, _ = self.enroll_totp(name)
        return name, secret

    def create_token(self, labels=None, ttl=None, hostname=None, principals=None):
        """An enrollment token for hostname (a new unique name when not given)."""
        body = {"hostname": hostname or ("host-" + unique_name("h").replace("_", "-"))}
        if principals is not None:
            body["principals"] = principals
        if labels is not None:
            body["labels"] = labels
        if ttl is not None:
            body["ttl"] = ttl
        st, b = self.admin("POST", "/v1/tokens", body)
        assert st == 201, "POST /v1/tokens → %s %r" % (st, b)
        return b["token"]

    def enroll_host(self, hostname=None, labels=None):
        """Creates an enrollment token as admin and enrolls; returns (host_id, host_token)."""
        hostname = hostname or ("host-" + unique_name("h").replace("_", "-"))
        tok = self.create_token(labels=labels, hostname=hostname)
        st, b = self.api("POST", "/v1/enroll", {"token": tok, "hostname": hostname})
        assert st == 200, "POST /v1/enroll → %s %r" % (st, b)
        return b["host_id"], b["host_token"]

    def delete_host(self, hostname):
        """Deletes the enrolled host of that name (admin); returns the DELETE reply."""
        st, b = self.admin("GET", "/v1/hosts")
        assert st == 200, (st, b)
        ids = [h["host_id"] for h in b["hosts"] if h["hostname"] == hostname]
        assert ids, "no host %s in %r" % (hostname, b)
        st, b = self.admin("DELETE", "/v1/hosts/%d" % ids[0])
        assert st == 200, "DELETE host %s → %s %r" % (hostname, st, b)
        return b

    def begin(self, host_token, user, **extra):
        body = {"user": user}
        body.update(extra)
        return self.api("POST", "/v1/auth/begin", body, token=host_token)

    def begin_txid(self, host_token, user, **extra):
        st, b = self.begin(host_token, user, **extra)
        assert st == 200 and b.get("action") == "challenge", "begin for %s → %s %r" % (user, st, b)
        return b["txid"]

    def submit_totp(self, host_token, txid, code):
        return self.api("POST", "/v1/auth/totp", {"txid": txid, "code": code}, token=host_token)

    def login_totp(self, host_token, user, code):
        """begin + totp; returns the /v1/auth/totp reply body (asserting 200)."""
        txid = self.begin_txid(host_token, user)
        st, b = self.submit_totp(host_token, txid, code)
        assert st == 200, "POST /v1/auth/totp → %s %r" % (st, b)
        return b

    def create_push(self, host_token, user, **extra):
        """begin + push; returns (txid, push reply)."""
        txid = self.begin_txid(host_token, user, **extra)
        st, b = self.api("POST", "/v1/auth/push", {"txid": txid}, token=host_token)
        assert st == 200, "POST /v1/auth/push → %s %r" % (st, b)
        return txid, b

    def poll_push(self, host_token, push_id, wait=0, timeout=None):
        return self.api("GET", "/v1/auth/push/%s?wait=%d" % (push_id, wait), token=host_token,
                        timeout=timeout or (wait + 30))

    def get_user(self, name):
        st, b = self.admin("GET", "/v1/users/%s" % name)
        assert st == 200, "GET /v1/users/%s → %s %r" % (name, st, b)
        return b

    def audit(self, user=None, since=None, limit=None):
        q = {}
        if user is not None:
            q["user"] = user
        if since is not None:
            q["since"] = str(int(since))
        if limit is not None:
            q["limit"] = str(limit)
        path = "/v1/audit" + ("?" + urllib.parse.urlencode(q) if q else "")
        st, b = self.admin("GET", path)
        assert st == 200, "GET %s → %s %r" % (path, st, b)
        return b["audit"]


def api(method, path, body=None, token=None, raw=None):
    """Module-level shortcut: api() against the most recently started daemon."""
    assert current is not None, "no daemon started"
    return current.api(method, path, body=body, token=token, raw=raw)


# --------------------------------------------------------------------------------------------
# the CLI

def run_cli(d, *args, url=None, pin=None, token_file=None, json_out=False, timeout=60,
            env=None, global_opts=True, stdin=None):
    """Runs portcullis; returns (rc, stdout, stderr). With global_opts the --url/--pin/
    --token-file options for daemon d are added (override any with url=/pin=/token_file=;
    pass "" to leave one out)."""
    if not os.path.exists(CLI_BIN):
        raise AssertionError("CLI binary not built: %s (set PC_BUILD_DIR)" % CLI_BIN)
    cmd = [CLI_BIN]
    if global_opts:
        u = d.url if url is None else url
        p = d.pin if pin is None else pin
        t = d.path("admin.token") if token_file is None else token_file
        if u:
            cmd += ["--url", u]
        if p:
            cmd += ["--pin", p]
        if t:
            cmd += ["--token-file", t]
    if json_out:
        cmd.append("--json")
    cmd += list(args)
    full_env = dict(os.environ)
    full_env.pop("PORTCULLIS_URL", None)
    full_env.pop("PORTCULLIS_PIN", None)
    full_env.pop("PORTCULLIS_TOKEN_FILE", None)
    if env:
        full_env.update(env)
    r = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout, env=full_env)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def cli_json(d, *args, **kw):
    """Runs the CLI with --json, asserts rc 0 and returns the parsed stdout."""
    rc, out, err = run_cli(d, *args, json_out=True, **kw)
    assert rc == 0, "portcullis --json %s → rc %d\nstdout: %s\nstderr: %s" % (
        " ".join(args), rc, out, err)
    try:
        return json.loads(out)
    except ValueError:
        raise AssertionError("portcullis --json %s printed non-JSON: %r" % (" ".join(args), out))


# --------------------------------------------------------------------------------------------
# cleanup

def cleanup_all():
    """Kills every daemon still running (called by run.py after each module and at exit)."""
    for d in list(_ALL_DAEMONS):
        try:
            d.kill()
        except Exception:
            pass
    del _ALL_DAEMONS[:]


def _remove_tmp():
    cleanup_all()
    if os.environ.get("PC_KEEP_TMP"):
        sys.stderr.write("harness: kept temp dirs: %s\n" % " ".join(_TMP_ROOTS))
        return
    for r in _TMP_ROOTS:
        shutil.rmtree(r, ignore_errors=True)


atexit.register(_remove_tmp)


def same_code_on_two_at_once(a, b, host):
    """A new person with TOTP on a; a transaction on each of a and b (two instances of one
    store); the same right code submitted to both at the same moment. Returns
    {"a": (status, body), "b": (status, body)} (the race tests of test_failover and
    test_multi_instance assert exactly one allow)."""
    user, secret = a.user_with_totp()
    txa, txb = a.begin_txid(host, user), b.begin_txid(host, user)
    code = totp_code(secret)
    out = {}
    barrier = threading.Barrier(2)

    def go(d, tx, k):
        barrier.wait()
        out[k] = d.submit_totp(host, tx, code)
    ts = [threading.Thread(target=go, args=(a, txa, "a")),
          threading.Thread(target=go, args=(b, txb, "b"))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    return out
