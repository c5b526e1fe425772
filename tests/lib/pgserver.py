# SPDX-License-Identifier: BSD-2-Clause
"""A throwaway PostgreSQL cluster for tests (Debian's postgresql package).

    srv = PgServer().start()        # initdb + pg_ctl in a temporary directory
    url = srv.new_database()        # postgresql:///NAME?host=SOCKDIR&user=postgres
    srv.dump(url)                   # every row of that database (pg_dump --data-only), bytes
    srv.stop()                      # also at exit

The server runs as the unprivileged user `postgres` (runuser, when we are root; as ourselves
otherwise), listens on a unix socket in a private directory and nowhere else
(listen_addresses=''), with trust authentication on that socket and fsync off
(PgServer(durable=True): PostgreSQL's defaults, fsync, synchronous_commit and full_page_writes
on — for benchmarks, where the commit's flush is part of what is measured). Its binaries come from /usr/lib/postgresql/*/bin,
never PATH. Python 3 standard library only.
"""
import atexit
import glob
import itertools
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time

SERVER_USER = "postgres"
_counter = itertools.count(1)


class PgMissing(Exception):
    """PostgreSQL's server (Debian package postgresql) is not installed."""


def bin_dir():
    """The newest /usr/lib/postgresql/VERSION/bin that has initdb, pg_ctl and postgres."""
    found = []
    for d in glob.glob("/usr/lib/postgresql/*/bin"):
        m = re.match(r"^/usr/lib/postgresql/(\d+)(?:\.\d+)?/bin$", d)
        if m and all(os.access(os.path.join(d, p), os.X_OK)
                     for p in ("initdb", "pg_ctl", "postgres", "psql", "pg_dump")):
            found.append((int(m.group(1)), d))
    if not found:
        raise PgMissing("PostgreSQL is not installed: no /usr/lib/postgresql/*/bin with initdb, "
                        "pg_ctl, postgres, psql and pg_dump (apt-get install postgresql)")
    return max(found)[1]


class PgServer:
    def __init__(self, max_connections=300, durable=False):
        self.bin = bin_dir()
        self.max_connections = max_connections
        self.durable = durable
        self.root = None
        self.running = False
        self._as_user = os.geteuid() == 0
        if self._as_user:
            try:
                self._pw = pwd.getpwnam(SERVER_USER)
            except KeyError:
                raise PgMissing("no user %r to run PostgreSQL as (apt-get install postgresql)"
                                % SERVER_USER)

    # ---- the cluster ------------------------------------------------------------------------
    def _server_cmd(self, argv):
        """argv run as the server's user (runuser from root; ourselves otherwise)."""
        if self._as_user:
            return ["runuser", "-u", SERVER_USER, "--"] + argv
        return argv

    def _run(self, argv, what, server=False, **kw):
        cmd = self._server_cmd(argv) if server else argv
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, **kw)
        if r.returncode != 0:
            raise RuntimeError("%s failed (exit %d): %s\n%s" % (
                what, r.returncode, " ".join(cmd), (r.stderr or r.stdout).decode(errors="replace")))
        return r.stdout

    def start(self):
        self.root = tempfile.mkdtemp(prefix="pc-pg-")
        os.chmod(self.root, 0o755)      # the daemons under test reach the socket through it
        self.data = os.path.join(self.root, "data")
        self.sock = os.path.join(self.root, "sock")
        self.logfile = os.path.join(self.root, "server.log")
        os.mkdir(self.sock, 0o755)
        if self._as_user:
            os.chown(self.root, self._pw.pw_uid, self._pw.pw_gid)
            os.chown(self.sock, self._pw.pw_uid, self._pw.pw_gid)
        atexit.register(self.stop)
        self._run([os.path.join(self.bin, "initdb"), "-D", self.data, "--no-locale", "-E", "UTF8",
                   "-A", "trust", "-U", SERVER_USER, "--no-sync"], "initdb", server=True)
        opts = ("-c listen_addresses='' -c unix_socket_directories='%s' -c max_connections=%d"
                % (self.sock, self.max_connections))
        if not self.durable:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run([os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-l", self.logfile,
                   "-o", opts, "-w", "-t", "60", "start"], "pg_ctl start", server=True)
        self.running = True
        return self

    def attach(self, root):
        """The cluster another process (run.py's parent, PC_TEST_JOBS) started in root: used,
        never stopped, by this one."""
        self.root = None          # not ours to remove
        self.data = os.path.join(root, "data")
        self.sock = os.path.join(root, "sock")
        self.logfile = os.path.join(root, "server.log")
        return self

    def stop(self):
        if self.running:
            self.running = False
            subprocess.run(self._server_cmd([os.path.join(self.bin, "pg_ctl"), "-D", self.data,
                                             "-m", "immediate", "-w", "stop"]),
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        if self.root and not os.environ.get("PC_KEEP_TMP"):
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def log(self):
        try:
            with open(self.logfile, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    # ---- databases --------------------------------------------------------------------------
    def url(self, name):
        return "postgresql:///%s?host=%s&user=%s" % (name, self.sock, SERVER_USER)

    def psql(self, sql, db="postgres"):
        """Runs SQL (as the superuser, over the socket); returns its output as text."""
        return self._run([os.path.join(self.bin, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                          "-At", "-h", self.sock, "-U", SERVER_USER, "-d", db, "-c", sql],
                         "psql").decode()

    def psql_rows(self, sql, db):
        """Rows of one statement: a list of tuples of text (None for NULL). Raises
        RuntimeError (with the server's message) when the statement fails."""
        out = self._run([os.path.join(self.bin, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                         "-At", "-F", "\x1f", "-R", "\x1e", "-P", "null=\x01", "-h", self.sock,
                         "-U", SERVER_USER, "-d", db, "-c", sql], "psql").decode()
        out = out[:-1] if out.endswith("\n") else out
        return [tuple(None if c == "\x01" else c for c in r.split("\x1f"))
                for r in out.split("\x1e") if r != ""]

    def new_database(self, template=None):
        """A fresh, empty database (or a copy of template); returns its URL. FILE_COPY: with
        fsync off its checkpoint is cheap, and it copied a migrated template in about 0.3 s here
        where PostgreSQL 15's default (WAL_LOG) took 0.5-1 s."""
        name = "pc_%d_%d" % (os.getpid(), next(_counter))
        sql = 'CREATE DATABASE "%s" STRATEGY FILE_COPY' % name
        if template:
            sql += ' TEMPLATE "%s"' % template
        self.psql(sql)
        return self.url(name)

    @staticmethod
    def dbname(url):
        m = re.match(r"^postgresql:///([A-Za-z0-9_]+)\?", url)
        assert m, url
        return m.group(1)

    def dump(self, url):
        """Every row of the database at url, as pg_dump --data-only prints them (bytes)."""
        return self._run([os.path.join(self.bin, "pg_dump"), "--data-only", "--no-owner",
                          "-h", self.sock, "-U", SERVER_USER, "-d", self.dbname(url)], "pg_dump")


_shared = None


def shared():
    """One cluster per test run, started on first use. With PC_TEST_PG_ROOT (set by run.py for
    the processes it runs modules in) the cluster that directory holds is used instead."""
    global _shared
    if _shared is None:
        t0 = time.time()
        root = os.environ.get("PC_TEST_PG_ROOT")
        _shared = PgServer().attach(root) if root else PgServer().start()
        _shared.start_seconds = time.time() - t0
    return _shared
