# SPDX-License-Identifier: BSD-2-Clause
"""Wipe on free (lib/pc_wipefree.c) is in the built daemons: portcullisd and portcullis-agent
define free and realloc themselves, export them, and the libraries that hold our secrets
(json-c, libcurl, libcrypto, libmicrohttpd) bind to them at run time. The CLI does not.
The agent speaks HTTPS through libssl, whose buffers libcrypto allocates and frees.
portcullisd loads libcurl only for a webhook or Web Push (control-plane/cp_curl.c): it is not
mapped at start, and once loaded it binds to the executable's free too.

Skips in sanitizer builds (ldd shows libasan/libtsan: the interposer is compiled out there) and
in builds configured with --disable-wipe-free (config.h)."""
import os
import re
import subprocess

import harness
from harness import BUILD_DIR, CLI_BIN, DAEMON_BIN

AGENT_BIN = os.path.join(BUILD_DIR, "agent", "portcullis-agent")
# The libraries each daemon hands secrets to, and what each imports (nm -D: libmicrohttpd has
# no realloc); every one of these must bind to the executable.
_JSONC = ("libjson-c", ("free", "realloc"))
_CURL = ("libcurl", ("free", "realloc"))
_CRYPTO = ("libcrypto", ("free", "realloc"))
_MHD = ("libmicrohttpd", ("free",))
LIBS = {
    DAEMON_BIN: (_JSONC, _CRYPTO, _MHD),  # libcurl: loaded on first use, see below
    AGENT_BIN: (_JSONC, _CRYPTO),  # libssl allocates through libcrypto (CRYPTO_malloc)
}


def _run(argv, env=None):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=60, env=env)
    return p.returncode, p.stdout, p.stderr


def _skip_unless_enabled(binary):
    if not os.path.isfile(binary):
        raise AssertionError("not built: %s (set PC_BUILD_DIR)" % binary)
    rc, out, err = _run(["ldd", binary])
    if re.search(r"lib(asan|tsan|msan|hwasan)", out):
        raise harness.Skip("sanitizer build: wipe on free is compiled out")
    config_h = os.path.join(BUILD_DIR, "config.h")
    with open(config_h) as f:
        if not re.search(r"^#define PC_WIPE_FREE 1$", f.read(), re.M):
            raise harness.Skip("configured with --disable-wipe-free")


def _defined(binary, dynamic):
    """{name: type} of the text symbols nm lists as defined in binary (-D: exported ones)."""
    rc, out, err = _run(["nm"] + (["-D"] if dynamic else []) + ["--defined-only", binary])
    assert rc == 0, "nm %s failed: %s" % (binary, err)
    syms = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            syms[parts[2].split("@")[0]] = parts[1]
    return syms


def _check_symbols(binary):
    _skip_unless_enabled(binary)
    for dynamic in (False, True):
        syms = _defined(binary, dynamic)
        for name in ("free", "realloc"):
            assert syms.get(name) == "T", "%s: nm%s shows %s as %r, want T (defined here)" % (
                binary, " -D" if dynamic else "", name, syms.get(name))
    # Only these two: malloc, calloc and friends stay glibc's.
    syms = _defined(binary, True)
    for name in ("malloc", "calloc", "aligned_alloc", "posix_memalign", "memalign"):
        assert name not in syms, "%s defines %s too" % (binary, name)


def _bindings(err):
    """{symbol: {library: what it binds to}} for free and realloc in LD_DEBUG=bindings output."""
    bound = {}
    for m in re.finditer(r"binding file (\S+) \[\d+\] to (\S+) \[\d+\]: normal symbol `(free|realloc)'",
                         err):
        lib, target, sym = os.path.basename(m.group(1)), os.path.basename(m.group(2)), m.group(3)
        bound.setdefault(sym, {})[lib] = target
    return bound


def _assert_bound(binary, bound, libs):
    exe = os.path.basename(binary)
    for lib, syms in libs:
        for sym in syms:
            users = [l for l in bound.get(sym, {}) if l.startswith(lib + ".")]
            assert users, "%s: no binding of %s's %s in LD_DEBUG output" % (exe, lib, sym)
            for u in users:
                target = bound[sym][u]
                assert target == exe, "%s: %s's %s binds to %s, not to the executable" % (
                    exe, u, sym, target)


def _check_bindings(binary):
    """The dynamic linker binds the libraries' free to the executable (LD_DEBUG=bindings, all
    symbols bound at start with LD_BIND_NOW); --help only prints and exits."""
    _skip_unless_enabled(binary)
    env = dict(os.environ, LD_BIND_NOW="1", LD_DEBUG="bindings")
    rc, out, err = _run([binary, "--help"], env=env)
    _assert_bound(binary, _bindings(err), LIBS[binary])
    return err


def test_portcullisd_defines_free_and_realloc():
    _check_symbols(DAEMON_BIN)


def test_agent_defines_free_and_realloc():
    _check_symbols(AGENT_BIN)


def test_portcullisd_libraries_bind_to_the_interposer():
    err = _check_bindings(DAEMON_BIN)
    assert "libcurl" not in err, "portcullisd maps libcurl at start (cp_curl.c loads it on use)"


def test_portcullisd_libcurl_loaded_for_a_webhook_binds_to_the_interposer():
    """With --webhook-url set, the webhook thread loads libcurl (dlopen) when it starts; its
    free and realloc bind to portcullisd's, as the libraries linked at start do, and a push's
    webhook goes through it."""
    _skip_unless_enabled(DAEMON_BIN)
    d = harness.Daemon(args=["--webhook-url", "http://127.0.0.1:%d/x" % harness.free_port()],
                       env={"LD_DEBUG": "bindings"}).start()
    try:
        _, host = d.enroll_host()
        d.create_push(host, d.create_user(push=True))
        harness.wait_until(lambda: re.search(r"binding file \S*libcurl\.so\S* .*`free'", d.log()),
                           timeout=30, what="libcurl loaded and bound for the webhook")
        _assert_bound(DAEMON_BIN, _bindings(d.log()), (_CURL,))
    finally:
        d.kill()


def test_agent_libraries_bind_to_the_interposer():
    _check_bindings(AGENT_BIN)


def test_cli_keeps_glibc_free():
    """The CLI (and the PAM module, which is no executable) never get the interposer."""
    _skip_unless_enabled(DAEMON_BIN)
    assert "free" not in _defined(CLI_BIN, False), "the CLI defines free"
    pam = os.path.join(BUILD_DIR, "pam_module", ".libs", "pam_portcullis.so")
    if os.path.isfile(pam):
        assert "free" not in _defined(pam, True), "pam_portcullis.so defines free"
