"""Open a page in Debian's headless Chromium and report what a person's browser would show.

The DevTools protocol is spoken over Chromium's own pipe (--remote-debugging-pipe: JSON messages
ending in a NUL byte on file descriptors 3 and 4), so no driver, websocket library or browser
download is needed: the `chromium` package the test command installs is enough. What it returns:
console errors and uncaught exceptions, every URL the page asked for (a self-contained report asks
for nothing but itself), the result of a script run in the page, and a full-page screenshot.

Also a script: `python -m tests.headless_chromium PAGE.html SHOT.png` saves the screenshot.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--mute-audio")


@dataclass
class PageVisit:
    console_errors: list[str] = field(default_factory=list)
    requested_urls: list[str] = field(default_factory=list)
    evaluated: Any = None
    screenshot_png: bytes = b""


class _Pipe:
    """One DevTools session over Chromium's pipe; events are kept for the caller to read."""

    def __init__(self, process: subprocess.Popen[bytes], to_browser: int, from_browser: int) -> None:
        self.process, self.to_browser, self.from_browser = process, to_browser, from_browser
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("no answer from Chromium")
            chunk = os.read(self.from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium closed its pipe (exit {self.process.poll()})")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float = 60) -> dict[str, Any]:
        self.next_id += 1
        request: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            request["sessionId"] = session
        os.write(self.to_browser, json.dumps(request).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            message = self._read_message(deadline)
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            message = self._read_message(deadline)
            self.events.append(message)
            if message.get("method") == method:
                return message


def visit(url: str, script: str = "null", width: int = 1200, executable: str = "chromium") -> PageVisit:
    """Load `url`, run `script` (an expression; JSON-serialisable result) and take a full-page screenshot."""
    binary = shutil.which(executable)
    if binary is None:
        raise FileNotFoundError(f"{executable} is not installed (the test command installs Debian's chromium)")
    profile = tempfile.mkdtemp(prefix="autocurriculum-chromium-")
    to_browser_read, to_browser = os.pipe()
    from_browser, from_browser_write = os.pipe()

    def wire_fds() -> None:
        """In the child: Chromium reads commands on fd 3 and writes answers on fd 4.

        Copies first, so a pipe end that already sits on 3 or 4 is not overwritten; close_fds=False
        because subprocess would close 3 and 4 after this function ran.
        """
        reads, writes = os.dup(to_browser_read), os.dup(from_browser_write)
        os.dup2(reads, 3)
        os.dup2(writes, 4)

    process = subprocess.Popen(
        [binary, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=wire_fds, close_fds=False,
    )
    os.close(to_browser_read)
    os.close(from_browser_write)
    pipe = _Pipe(process, to_browser, from_browser)
    result = PageVisit()
    try:
        targets = pipe.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        session = pipe.call("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            pipe.call(f"{domain}.enable", session=session)
        pipe.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=session)
        pipe.events.clear()
        pipe.call("Page.navigate", {"url": url}, session=session)
        pipe.wait_for("Page.loadEventFired")
        evaluated = pipe.call("Runtime.evaluate", {"expression": f"JSON.stringify({script})", "returnByValue": True},
                              session=session)
        if "exceptionDetails" in evaluated:
            raise RuntimeError(f"the test's script failed in the page: {evaluated['exceptionDetails']}")
        result.evaluated = json.loads(evaluated["result"].get("value") or "null")
        size = pipe.call("Page.getLayoutMetrics", session=session)["cssContentSize"]
        shot = pipe.call("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": size["height"], "scale": 1}}, session=session)
        result.screenshot_png = base64.b64decode(shot["data"])
        for event in pipe.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                result.console_errors.append(json.dumps(params.get("exceptionDetails", {}))[:500])
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                result.console_errors.append(json.dumps(params.get("args", []))[:500])
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                result.console_errors.append(str(params["entry"].get("text"))[:500])
            elif method == "Network.requestWillBeSent":
                result.requested_urls.append(params.get("request", {}).get("url", ""))
        try:
            pipe.call("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError):
            pass
    finally:
        os.close(to_browser)
        os.close(from_browser)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        shutil.rmtree(profile, ignore_errors=True)
    return result


if __name__ == "__main__":
    page, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
    seen = visit(page.as_uri())
    out.write_bytes(seen.screenshot_png)
    print(f"{out}: {len(seen.screenshot_png)} bytes; console errors: {seen.console_errors or 'none'}; "
          f"requests: {seen.requested_urls}")
