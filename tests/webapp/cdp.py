# SPDX-License-Identifier: BSD-2-Clause
"""Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe: we
write NUL-terminated JSON to its fd 3 and read its fd 4), with a WebAuthn virtual
authenticator. No websocket or browser-automation library."""
import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time


def chromium_bin():
    if os.access("/usr/lib/chromium/chromium", os.X_OK):
        return "/usr/lib/chromium/chromium"  # Debian: the binary behind the /usr/bin wrapper
    for name in ("chromium", "chromium-browser"):
        p = shutil.which(name)
        if p:
            return p
    return None


class CDPError(Exception):
    pass


class Browser:
    def __init__(self, spki_pin, host_map, width=390, height=844):
        """spki_pin: base64 SHA-256 of the test certificate's SubjectPublicKeyInfo;
        host_map: {"approve.test": "127.0.0.1"}."""
        self.profile = tempfile.mkdtemp(prefix="pc-webapp-chromium-")
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()
        rules = ",".join("MAP %s %s" % (h, a) for h, a in host_map.items())
        cmd = [chromium_bin(), "--headless=new", "--no-sandbox", "--disable-gpu",
               "--remote-debugging-pipe", "--user-data-dir=" + self.profile,
               "--no-first-run", "--no-default-browser-check", "--disable-extensions",
               "--disable-background-networking", "--disable-sync", "--mute-audio",
               "--ignore-certificate-errors-spki-list=" + spki_pin,
               "--host-resolver-rules=" + rules,
               "--window-size=%d,%d" % (width, height), "about:blank"]

        # chromium reads fd 3 and writes fd 4: move our ends out of the way (>= 10) first,
        # then dup2 them into place in the child.
        hi_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
        hi_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        keep = (self._w, self._r)

        def child():
            for fd in keep:  # our ends first: one of them may be numbered 3 or 4
                os.close(fd)
            os.dup2(hi_r, 3)
            os.dup2(hi_w, 4)
            os.close(hi_r)
            os.close(hi_w)

        self.proc = subprocess.Popen(cmd, preexec_fn=child, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=open(os.environ.get("PC_CHROMIUM_LOG", os.devnull), "ab"),
                                     close_fds=False)
        os.close(hi_r)
        os.close(hi_w)
        self._buf = b""
        self._id = 0
        self.events = []
        self.width, self.height = width, height
        tid = None
        deadline = time.time() + 20
        while tid is None and time.time() < deadline:
            for t in self.call("Target.getTargets")["targetInfos"]:
                if t["type"] == "page":
                    tid = t["targetId"]
            if tid is None:
                time.sleep(0.2)
        if tid is None:
            raise CDPError("chromium opened no page")
        self.session = self.call("Target.attachToTarget", targetId=tid, flatten=True)["sessionId"]
        self.page("Page.enable")
        self.page("Runtime.enable")
        self.page("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=True)
        self.page("WebAuthn.enable", enableUI=False)
        self.authenticators = []

    # ---- the protocol ------------------------------------------------------------------
    def _send(self, msg):
        data = json.dumps(msg).encode() + b"\0"
        while data:
            n = os.write(self._w, data)
            data = data[n:]

    def _recv(self, timeout):
        deadline = time.time() + timeout
        while b"\0" not in self._buf:
            if time.time() > deadline:
                raise CDPError("no answer from chromium in %ss" % timeout)
            import select
            r, _, _ = select.select([self._r], [], [], 0.5)
            if r:
                chunk = os.read(self._r, 1 << 20)
                if not chunk:
                    raise CDPError("chromium closed the pipe (crashed?)")
                self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, session=None, timeout=30, **params):
        self._id += 1
        mid = self._id
        msg = {"id": mid, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        self._send(msg)
        while True:
            m = self._recv(timeout)
            if m.get("id") == mid:
                if "error" in m:
                    raise CDPError("%s: %s" % (method, m["error"]))
                return m.get("result", {})
            self.events.append(m)

    def page(self, method, timeout=30, **params):
        return self.call(method, session=self.session, timeout=timeout, **params)

    # ---- helpers -----------------------------------------------------------------------
    def add_authenticator(self, uv=True, resident=True):
        a = self.page("WebAuthn.addVirtualAuthenticator", options={
            "protocol": "ctap2", "transport": "internal", "hasResidentKey": resident,
            "hasUserVerification": True, "isUserVerified": uv,
            "automaticPresenceSimulation": True})["authenticatorId"]
        self.authenticators.append(a)
        return a

    def remove_authenticators(self):
        for a in self.authenticators:
            self.page("WebAuthn.removeVirtualAuthenticator", authenticatorId=a)
        self.authenticators = []

    def set_user_verified(self, aid, uv):
        self.page("WebAuthn.setUserVerified", authenticatorId=aid, isUserVerified=uv)

    def goto(self, url):
        self.page("Page.navigate", url=url)
        self.wait("document.readyState === 'complete'", what="page load of " + url)

    def js(self, expr, timeout=30):
        r = self.page("Runtime.evaluate", expression=expr, awaitPromise=True,
                      returnByValue=True, timeout=timeout)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            text = d.get("exception", {}).get("description") or d.get("text")
            raise CDPError("JS error: %s\n  in: %s" % (text, expr[:200]))
        return r.get("result", {}).get("value")

    def wait(self, expr, timeout=15, what=None):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                last = self.js(expr)
                if last:
                    return last
            except CDPError as e:
                last = str(e)
            time.sleep(0.1)
        raise AssertionError("timed out waiting for %s (last: %r)" % (what or expr, last))

    def screenshot(self, path):
        data = self.page("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path

    def cookies(self):
        return self.page("Network.getCookies")["cookies"]

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._r, self._w):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)
