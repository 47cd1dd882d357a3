"""A headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`): no websocket,
no extra package, no port. `archc view -o graph.png` screenshots the page with it; the tests load every page
with it and check the console and the DOM.

    with Chromium() as browser:
        page = browser.open("file:///tmp/graph.html")
        page.evaluate("document.title"); page.screenshot(); page.errors  # console errors, exceptions

Chromium is found as $ARCHC_CHROMIUM, else `chromium`, `chromium-browser`, `google-chrome` on the PATH. It runs
with a fresh profile in a temporary folder, networking features off, and is killed on exit.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
         "--disable-dev-shm-usage", "--mute-audio", "--hide-scrollbars", "--remote-debugging-pipe")


class BrowserError(RuntimeError):
    """Chromium could not be started, or did not answer."""


def find_chromium() -> str | None:
    """The Chromium executable: $ARCHC_CHROMIUM, or the first of NAMES on the PATH; None when there is none."""
    forced = os.environ.get("ARCHC_CHROMIUM")
    if forced:
        return forced if os.access(forced, os.X_OK) else None
    return next((p for p in map(shutil.which, NAMES) if p), None)


class Chromium:
    def __init__(self, executable: str | None = None, timeout: float = 60.0):
        self.executable = executable or find_chromium()
        if not self.executable:
            raise BrowserError("Chromium not found (install `chromium`, or set ARCHC_CHROMIUM to its path)")
        self.timeout = timeout
        self._id = 0
        self._buffer = b""
        self._events: list[dict] = []
        self.profile = tempfile.mkdtemp(prefix="archc-chromium-")
        to_child, self._write = os.pipe()  # Chromium reads commands on its fd 3 ...
        self._read, from_child = os.pipe()  # ... and writes replies and events on its fd 4

        def fds():  # in the child, before exec: the pipe ends become fds 3 and 4 (inheritable)
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_child, from_child)]  # out of 3 and 4's way
            for fd, target in zip(high, (3, 4)):
                os.dup2(fd, target)

        try:
            self.process = subprocess.Popen([self.executable, *FLAGS, f"--user-data-dir={self.profile}",
                                             "about:blank"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL, preexec_fn=fds, close_fds=False)
        except OSError as e:
            self.close()
            raise BrowserError(f"cannot start {self.executable}: {e}") from None
        finally:
            os.close(to_child)
            os.close(from_child)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        process = getattr(self, "process", None)
        if process is not None and process.poll() is None:
            try:
                self.send("Browser.close", timeout=5)
                process.wait(5)
            except Exception:
                process.kill()
                process.wait()
        for fd in (getattr(self, "_write", None), getattr(self, "_read", None)):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._write = self._read = None
        shutil.rmtree(self.profile, ignore_errors=True)

    # -- the protocol -------------------------------------------------------------------------------------
    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float | None = None) -> dict:
        """Send a command and wait for its reply; events that arrive meanwhile are kept for `events`."""
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            reply = self._next(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            self._events.append(reply)

    def wait_for(self, method: str, session: str | None = None, timeout: float | None = None) -> dict:
        """The first event `method` (of `session`), kept or yet to come."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for i, e in enumerate(self._events):
                if e.get("method") == method and (session is None or e.get("sessionId") == session):
                    return self._events.pop(i)
            self._events.append(self._next(deadline))

    def events(self, session: str | None = None) -> list[dict]:
        """The events received so far (of `session`), consumed."""
        mine = [e for e in self._events if session is None or e.get("sessionId") == session]
        self._events = [e for e in self._events if e not in mine]
        return mine

    def _next(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._read], [], [], left)[0]:
                raise BrowserError(f"Chromium did not answer within {self.timeout:.0f} s")
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                raise BrowserError("Chromium closed the connection (it exited)")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def open(self, url: str, width: int = 1400, height: int = 900) -> Page:
        """A new tab showing `url`, loaded (its load event fired), with console and network recorded."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=session)
        self.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                          "mobile": False}, session=session)
        page = Page(self, session, target)
        page.navigate(url)
        return page


class Page:
    def __init__(self, browser: Chromium, session: str, target: str):
        self.browser, self.session, self.target = browser, session, target
        self.errors: list[str] = []  # console errors and uncaught exceptions, in order
        self.requests: list[str] = []  # every URL the page asked for

    def send(self, method: str, params: dict | None = None) -> dict:
        return self.browser.send(method, params, self.session)

    def close(self) -> None:
        """Close the tab."""
        self.browser.send("Target.closeTarget", {"targetId": self.target})
        self.browser.events(self.session)

    def navigate(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})
        self.browser.wait_for("Page.loadEventFired", self.session)
        self.collect()

    def collect(self) -> None:
        """Record the console errors, exceptions and requests that arrived so far."""
        for e in self.browser.events(self.session):
            method, p = e.get("method"), e.get("params", {})
            if method == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                self.errors.append(d.get("exception", {}).get("description") or d.get("text", "exception"))
            elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                self.errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p["args"]))
            elif method == "Log.entryAdded" and p["entry"].get("level") == "error":
                self.errors.append(p["entry"].get("text", ""))
            elif method == "Network.requestWillBeSent":
                self.requests.append(p["request"]["url"])

    def evaluate(self, expression: str):
        """The value of a JavaScript expression (promises awaited); a thrown exception raises BrowserError."""
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        self.collect()
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise BrowserError(d.get("exception", {}).get("description") or d.get("text", "exception"))
        return r["result"].get("value")

    def screenshot(self) -> bytes:
        """A PNG of the viewport (write it with archc.files)."""
        return base64.b64decode(self.send("Page.captureScreenshot", {"format": "png"})["data"])


def screenshot(html: str, path: str | Path, size: str = "1600x1000") -> bytes:
    """Render a page's text in headless Chromium: the PNG of it, for `path` (named in errors; the caller writes it
    with archc.files). A user-facing failure (no Chromium, a bad size, a page that does not render) is an
    ArchcError."""
    from archc.errors import ArchcError

    try:
        width, height = (int(v) for v in size.lower().split("x"))
        assert 100 <= width <= 8000 and 100 <= height <= 8000
    except (ValueError, AssertionError):
        raise ArchcError(f"--size {size!r}: expected WIDTHxHEIGHT in pixels, 100 to 8000 each") from None
    with tempfile.TemporaryDirectory(prefix="archc-view-") as tmp:
        page_file = Path(tmp) / "page.html"
        page_file.write_text(html, encoding="utf-8")
        try:
            with Chromium() as browser:
                page = browser.open(page_file.as_uri(), width, height)
                if page.evaluate("document.body.dataset.ready") != "1" or page.errors:
                    raise BrowserError(f"the page did not render: {page.errors[:1]}")
                return page.screenshot()
        except BrowserError as e:
            raise ArchcError(f"cannot write {path}: {e}") from None
