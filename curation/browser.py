"""Headless Chromium, for rendering reports and pages to the DOM a person would see or to PNG.

Used by the tests (a report must open in a real browser and show its content) and by anyone who
wants a screenshot of a report. The flags keep Chromium off the network and out of the way.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from curation.errors import CurationError
from curation.localhost import free_port

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars",
]


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise CurationError("Chromium is not installed (apt-get install chromium; `make install` does it)")


def _url(target: str | Path) -> str:
    text = str(target)
    return text if "://" in text else Path(text).resolve().as_uri()


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run([chromium_path(), *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout, check=False)


def dump_dom(target: str | Path, *, virtual_time_budget_ms: int = 5000, timeout: float = 90) -> str:
    """The page's DOM after scripts ran, as Chromium serialises it."""
    done = _run([f"--virtual-time-budget={virtual_time_budget_ms}", "--dump-dom", _url(target)], timeout)
    if done.returncode != 0 or not done.stdout.strip():
        raise CurationError(f"Chromium could not render {target}: {done.stderr.strip()[-500:]}")
    return done.stdout


def screenshot(target: str | Path, out_png: Path, *, width: int = 1280, height: int = 900,
               virtual_time_budget_ms: int = 5000, timeout: float = 90) -> Path:
    """A PNG of the page as rendered at width x height."""
    out_png.parent.mkdir(parents=True, exist_ok=True)
    done = _run([f"--virtual-time-budget={virtual_time_budget_ms}", f"--window-size={width},{height}",
                 f"--screenshot={out_png.resolve()}", _url(target)], timeout)
    if not out_png.is_file():
        raise CurationError(f"Chromium took no screenshot of {target}: {done.stderr.strip()[-500:]}")
    return out_png




async def _drive(ws_url: str, page_url: str, photo: Path, out: Path, hide: bool, width: int, height: int) -> None:
    import websockets

    async with websockets.connect(ws_url, max_size=50 * 2**20) as ws:
        counter = 0

        async def call(method: str, **params):
            nonlocal counter
            counter += 1
            await ws.send(json.dumps({"id": counter, "method": method, "params": params}))
            while True:
                message = json.loads(await ws.recv())
                if message.get("id") == counter:
                    if "error" in message:
                        raise CurationError(f"Chromium DevTools {method}: {message['error']}")
                    return message.get("result", {})

        await call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        await call("Page.enable")
        await call("Page.navigate", url=page_url)
        await asyncio.sleep(2)
        root = await call("DOM.getDocument")
        node = await call("DOM.querySelector", nodeId=root["root"]["nodeId"], selector="#files")
        await call("DOM.setFileInputFiles", nodeId=node["nodeId"], files=[str(photo.resolve())])
        for _ in range(120):  # the answer arrives over HTTP
            done = await call("Runtime.evaluate", expression="!!document.getElementById('label')", returnByValue=True)
            if done["result"]["value"]:
                break
            await asyncio.sleep(0.5)
        else:
            raise CurationError(f"{page_url} showed no answer for {photo.name} within a minute")
        if hide:
            await call("Runtime.evaluate", expression="document.querySelectorAll('.near img')"
                                                      ".forEach(i => i.style.visibility = 'hidden')")
        await asyncio.sleep(1)
        shot = await call("Page.captureScreenshot", format="png")
        out.write_bytes(base64.b64decode(shot["data"]))


def screenshot_after_upload(page_url: str, photo: Path, out: Path, *, hide: bool = False, width: int = 1100,
                            height: int = 760) -> Path:
    """Open a page, give `photo` to its file input #files as a person would (DevTools protocol), wait for
    an element #label, and save a PNG. `hide`: hide the `.near img` thumbnails first."""
    port = free_port()
    # A leftover profile file is no failure of the screenshot (tempdir cleanup must not raise).
    with tempfile.TemporaryDirectory(prefix="chromium-profile-", ignore_cleanup_errors=True) as profile:
        browser = subprocess.Popen([chromium_path(), *FLAGS, f"--user-data-dir={profile}",
                                    f"--remote-debugging-port={port}", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            for _ in range(100):
                try:
                    targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json"))
                    ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page")
                    break
                except Exception:
                    time.sleep(0.2)
            else:
                raise CurationError("Chromium's DevTools did not answer")
            asyncio.run(_drive(ws_url, page_url, photo, out, hide, width, height))
        finally:
            _stop_group(browser)
    return out


def _stop_group(browser: subprocess.Popen, timeout: float = 30) -> None:
    """Stop Chromium and every helper it started (its own process group), and wait until they are
    gone: helpers that outlive the main process still write into the profile being deleted."""
    try:
        os.killpg(browser.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    browser.wait(timeout=timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(browser.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.killpg(browser.pid, signal.SIGKILL)
