"""A headless Chromium driven over the DevTools protocol, for testing the HTML report.

Just enough of the protocol to open one page and record what a reviewer would check by hand:
console errors and uncaught exceptions, every request the page makes, the text of elements,
and a screenshot. Needs the ``chromium`` binary (Debian package ``chromium``) and
``websocket-client`` (the ``test`` extra).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--remote-debugging-port=0",
    "--window-size=1200,1600",
)


def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class PageRecord:
    """What happened while a page loaded."""

    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    screenshot: bytes = b""
    values: dict[str, Any] = field(default_factory=dict)


class Browser:
    """``with Browser() as b: record = b.open(path, {...})``: one fresh profile per use."""

    def __init__(self, binary: str) -> None:
        self.binary = binary

    def __enter__(self) -> Browser:
        self.profile = tempfile.TemporaryDirectory(prefix="matcher-chromium-")
        self.proc = subprocess.Popen(
            [self.binary, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile.name}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = Path(self.profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.__exit__()
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        self.port = int(port_file.read_text().split()[0])
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.profile.cleanup()

    def open(self, path: Path, expressions: dict[str, str], timeout: float = 60) -> PageRecord:
        """Load ``path``, evaluate each JavaScript expression (by name) once loaded, and take
        a full-page screenshot."""
        import websocket

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=10) as r:
            targets = json.load(r)
        page = next(t for t in targets if t.get("type") == "page")
        ws = websocket.create_connection(
            page["webSocketDebuggerUrl"], timeout=timeout, suppress_origin=True
        )
        record = PageRecord()
        counter = iter(range(1, 1_000_000))

        def call(method: str, **params: Any) -> dict[str, Any]:
            ident = next(counter)
            ws.send(json.dumps({"id": ident, "method": method, "params": params}))
            while True:
                msg = json.loads(ws.recv())
                if msg.get("id") == ident:
                    if "error" in msg:
                        raise RuntimeError(f"{method}: {msg['error']}")
                    return dict(msg.get("result", {}))
                event(msg)

        def event(msg: dict[str, Any]) -> None:
            method, params = msg.get("method"), msg.get("params", {})
            if method == "Network.requestWillBeSent":
                record.requests.append(params["request"]["url"])
            elif method == "Runtime.consoleAPICalled" and params.get("type") in (
                "error",
                "assert",
            ):
                record.console_errors.append(json.dumps(params.get("args", []))[:300])
            elif method == "Runtime.exceptionThrown":
                record.console_errors.append(json.dumps(params.get("exceptionDetails"))[:300])
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                record.console_errors.append(params["entry"].get("text", "")[:300])
            elif method == "Page.loadEventFired":
                loaded.append(True)

        loaded: list[bool] = []
        try:
            for domain in ("Network", "Runtime", "Log", "Page"):
                call(f"{domain}.enable")
            call("Page.navigate", url=path.resolve().as_uri())
            end = time.monotonic() + timeout
            while not loaded:
                if time.monotonic() > end:
                    raise TimeoutError(f"{path} did not finish loading in {timeout} s")
                event(json.loads(ws.recv()))
            for name, expression in expressions.items():
                result = call("Runtime.evaluate", expression=expression, returnByValue=True)
                record.values[name] = result.get("result", {}).get("value")
            metrics = call("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            shot = call(
                "Page.captureScreenshot",
                format="png",
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 4000),
                      "scale": 1},
            )  # fmt: skip
            record.screenshot = base64.b64decode(shot["data"])
        finally:
            ws.close()
        return record
