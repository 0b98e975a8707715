"""The HTML report in a real browser: headless Chromium, driven over the DevTools protocol.

What a person sees when they open the file: the graph and the table render,
the page logs no error (a Content-Security-Policy violation would be one), the
filters work, and an untrusted value stays text. A screenshot is written next
to the test's tmp files (and to ``$NOVADIAG_SCREENSHOT_DIR`` when set, to look
at). Skipped, with the reason, when Debian's ``chromium`` is not installed
(``apt-get install -y chromium``).

The browser is kept off every network: file:// page, a CSP that allows no
fetch, and a host resolver that maps every name to "not found".
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import novadiag
from novadiag.model import Edge, ObjectRef, Reference, SourceInfo
from novadiag.report import Report

websocket = pytest.importorskip("websocket", reason="websocket-client (a kubernetes client dependency) is missing")

NOVA = Path(novadiag.__file__).parent / "lab" / "scenarios" / "nova" / "manifests"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)"),
    pytest.mark.timeout(120),
]

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]


class Browser:
    """The few DevTools calls the tests need: navigate, evaluate, screenshot, collect errors."""

    def __init__(self, profile: Path) -> None:
        assert CHROMIUM is not None
        self.proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port = self._port(profile)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            pages = [t for t in json.load(resp) if t["type"] == "page"]
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
        self.next_id = 0
        self.errors: list[str] = []
        self.events: list[dict[str, Any]] = []
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")

    def _port(self, profile: Path) -> int:
        marker = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if marker.exists() and marker.read_text().strip():
                return int(marker.read_text().split()[0])
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode}")
            time.sleep(0.1)
        raise TimeoutError("chromium did not open its DevTools port")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            self._event(message)

    def _event(self, message: dict[str, Any]) -> None:
        method, params = message.get("method"), message.get("params", {})
        self.events.append(message)
        if method == "Runtime.exceptionThrown":
            self.errors.append(json.dumps(params["exceptionDetails"])[:500])
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.errors.append(json.dumps(params.get("args"))[:500])
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.errors.append(params["entry"]["text"])

    def open(self, path: Path, *, width: int = 1400, dark: bool = False) -> None:
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1, mobile=False)
        scheme = "dark" if dark else "light"
        self.call("Emulation.setEmulatedMedia", features=[{"name": "prefers-color-scheme", "value": scheme}])
        self.events.clear()
        self.call("Page.navigate", url=path.as_uri())
        deadline = time.monotonic() + 30
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError("page did not load")
            self._event(json.loads(self.ws.recv()))
        self.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> bytes:
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"])
        path.write_bytes(data)
        return data

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    b = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


@pytest.fixture(scope="module")
def nova_page(tmp_path_factory: pytest.TempPathFactory, browser: Browser) -> Path:
    path = tmp_path_factory.mktemp("html") / "nova.html"
    path.write_text(novadiag.audit(manifests=[NOVA]).render("html"), encoding="utf-8")
    browser.open(path)
    return path


def _keep(path: Path, name: str) -> None:
    target = os.environ.get("NOVADIAG_SCREENSHOT_DIR")
    if target:
        shutil.copy(path, Path(target) / name)


def test_page_loads_without_console_errors(browser: Browser, nova_page: Path) -> None:
    assert browser.errors == []


def test_graph_draws_every_namespace_box_and_the_broken_edges_red(browser: Browser, nova_page: Path) -> None:
    drawn = browser.evaluate(
        """({boxes: [...document.querySelectorAll('#nd-graph .nd-ns')].map(g => g.dataset.ns),
            broken: [...document.querySelectorAll('#nd-graph .nd-links path.nd-broken')]
                      .filter(p => p.getTotalLength() > 0).map(p => getComputedStyle(p).stroke),
            width: document.querySelector('#nd-graph svg').getBoundingClientRect().width})"""
    )
    assert "nova-backend" in drawn["boxes"] and "(external)" in drawn["boxes"]
    assert drawn["broken"] == ["rgb(207, 34, 46)"] * 5
    assert drawn["width"] > 600


def test_edge_table_lists_every_edge_with_broken_ones_first(browser: Browser, nova_page: Path) -> None:
    statuses = browser.evaluate("[...document.querySelectorAll('#nd-edges tbody tr')].map(r => r.dataset.status)")
    assert len(statuses) == 26
    assert statuses[:5] == ["dns-unresolvable"] * 4 + ["blocked"]


def test_only_broken_filter_leaves_the_five_broken_edges(browser: Browser, nova_page: Path) -> None:
    shown = browser.evaluate(
        """(() => { const box = document.getElementById('nd-broken'); box.click();
            const rows = [...document.querySelectorAll('#nd-edges tbody tr')].filter(r => !r.hidden);
            const text = document.getElementById('nd-shown').textContent; box.click();
            return {n: rows.length, text}; })()"""
    )
    assert shown == {"n": 5, "text": "showing 5 of 26 edges"}


def test_clicking_a_header_sorts_the_table(browser: Browser, nova_page: Path) -> None:
    envs = browser.evaluate(
        """(() => { document.querySelectorAll('#nd-edges thead button')[2].click();
            return [...document.querySelectorAll('#nd-edges tbody tr')].map(r => r.cells[2].textContent); })()"""
    )
    assert envs == sorted(envs, key=str.lower)


def test_screenshots_in_light_and_dark_themes(browser: Browser, nova_page: Path, tmp_path: Path) -> None:
    for dark in (False, True):
        browser.open(nova_page, dark=dark)
        name = f"nova-{'dark' if dark else 'light'}.png"
        png = browser.screenshot(tmp_path / name)
        _keep(tmp_path / name, name)
        assert png.startswith(b"\x89PNG") and len(png) > 50_000
    background = browser.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(13, 17, 23)"  # the dark theme really applied
    assert browser.errors == []


def _hostile_report() -> Report:
    workload = ObjectRef("Deployment", "evil", "<img src=x onerror=alert(2)>")
    ref = Reference(
        workload=workload,
        container="app",
        env="PAYLOAD",
        origin="value",
        reference="http://evil/?q=<script>alert(1)</script>",
        host="<img src=x onerror=alert(2)>",
        port=80,
    )
    edge = Edge(reference=ref, status="unknown-target", detail='no Service named "<script>alert(1)</script>"')
    return Report(source=SourceInfo(kind="manifests"), edges=(edge,))


def test_script_in_a_value_renders_as_text_and_never_runs(browser: Browser, tmp_path: Path) -> None:
    path = tmp_path / "hostile.html"
    path.write_text(_hostile_report().render("html"), encoding="utf-8")
    browser.call("Page.addScriptToEvaluateOnNewDocument", source="window.alert = m => { window.__alerted = m; };")
    browser.open(path)
    page = browser.evaluate(
        """({alerted: window.__alerted || null,
            scripts: document.scripts.length,
            imgs: document.images.length,
            host: document.querySelector('#nd-edges tbody tr td.ref code').textContent,
            written: document.querySelector('#nd-edges tbody tr td.ref .written').textContent})"""
    )
    assert page == {
        "alerted": None,
        "scripts": 1,
        "imgs": 0,
        "host": "<img src=x onerror=alert(2)>:80",
        "written": "http://evil/?q=<script>alert(1)</script>",
    }
    assert browser.errors == []
