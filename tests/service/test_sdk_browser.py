"""posthog-js, the real browser bundle, in headless Chromium: a page served by the test loads it, inits
it with api_host = a real `telemetry-mcp serve` and the write key as token, identifies a user and
captures known events (plus its own $pageview); what arrives is read back through MCP tools.

Chromium runs in real time (no virtual time: posthog-js flushes its batch queue on a timer and the
request has to complete) and is stopped once the events are stored. The page reports the errors it
saw (window errors, unhandled rejections, console.error) to the test server every 300 ms.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sdk_checks import SETUP, check_privacy, check_user_ids, counts_by_type, events_of, wait_for_events
from svc import WRITE_KEY, ServiceProcess

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / ".ci" / "node" / "node_modules" / "posthog-js" / "dist" / "array.full.js"
# posthog-js drops every event from a user agent that looks like a bot, "HeadlessChrome" included:
# Chromium is given the user agent of an ordinary desktop Chrome instead (the SDK is not touched).
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
PAGE_PATH = "/app/settings/abc-123-def-456"

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>SDK test page</title>
<script>
  window.__errors = [];
  window.addEventListener("error", (e) => window.__errors.push("error: " + e.message + " at " + e.filename));
  window.addEventListener("unhandledrejection", (e) => window.__errors.push("unhandled rejection: " + e.reason));
  const consoleError = console.error;
  console.error = (...args) => {
    window.__errors.push("console.error: " + args.map(String).join(" "));
    consoleError(...args);
  };
</script>
<script src="/posthog.js" onerror="window.__errors.push('posthog.js did not load')"></script>
</head><body><pre id="status">loading</pre>
<script>
  const config = __CONFIG__;
  let status = "loading";
  const report = () => fetch("/report", {
    method: "POST",
    body: JSON.stringify({ status, errors: window.__errors, version: window.posthog && posthog.version }),
  }).catch(() => {});
  setInterval(report, 300);
  posthog.init(config.key, {
    api_host: config.host,
    // A page leave depends on how the browser is closed: left out so the counts are exact.
    capture_pageleave: false,
    loaded: (ph) => {
      ph.identify(config.user);
      ph.capture("feature_used", {
        component: "Editor",
        duration_ms: 12.5,
        api_secret: "s3cr3t-value",
        note: "mail me at bob@example.com",
      });
      ph.capture("Report Exported", { component: "Reports" });
      status = "captured";
      document.getElementById("status").textContent = status;
    },
  });
</script></body></html>
"""


class _PageServer:
    """The test page, the posthog-js bundle, and the page's reports, on a loopback port."""

    def __init__(self, page: bytes, bundle: bytes) -> None:
        self.reports: list[tuple[float, dict[str, Any]]] = []
        reports = self.reports

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/posthog.js"):
                    self._send(200, bundle, "application/javascript")
                elif self.path.startswith("/favicon"):
                    self._send(204, b"", "image/x-icon")
                else:
                    self._send(200, page, "text/html; charset=utf-8")

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                reports.append((time.monotonic(), json.loads(body)))
                self._send(204, b"", "text/plain")

            def _send(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@contextmanager
def _chromium(url: str, profile: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.fail(f"chromium is not installed: {SETUP}", pytrace=False)
    cmd = [
        browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-extensions", "--disable-background-networking", "--disable-dev-shm-usage",
        f"--user-data-dir={profile}", f"--user-agent={USER_AGENT}", "--enable-logging=stderr", "--v=0", url,
    ]  # fmt: skip
    with log.open("wb") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True)  # fmt: skip
        try:
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)  # the browser's own process group (started above)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)


async def _report_after(server: _PageServer, moment: float, timeout: float = 10.0) -> dict[str, Any]:
    """The page's first report sent after `moment` (so it covers everything up to then)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        later = [r for t, r in list(server.reports) if t > moment]
        if later:
            return later[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"the page sent no report within {timeout} s; reports so far: {server.reports[-3:]}")


async def test_posthog_js_in_headless_chromium(tmp_path: Path) -> None:
    if not BUNDLE.exists():
        pytest.fail(f"{BUNDLE} is missing: {SETUP}", pytrace=False)
    user = f"web-{uuid.uuid4().hex[:10]}"
    log = tmp_path / "chromium.log"
    with ServiceProcess(tmp_path / "web.duckdb") as svc:
        config = json.dumps({"key": WRITE_KEY, "host": svc.url, "user": user})
        server = _PageServer(PAGE.replace("__CONFIG__", config).encode(), BUNDLE.read_bytes())
        try:
            url = f"http://127.0.0.1:{server.port}{PAGE_PATH}?tab=settings#top"
            with _chromium(url, tmp_path / "profile", log):
                try:
                    await wait_for_events(svc.url, 4, timeout=30)
                except AssertionError as exc:
                    tail = log.read_text(errors="replace")[-3000:]
                    raise AssertionError(
                        f"{exc}; page reports: {server.reports[-1:]}; chromium: {tail}"
                    ) from None
                report = await _report_after(server, time.monotonic())
        finally:
            server.close()
        assert report["status"] == "captured", report
        assert report["errors"] == [], report["errors"]

        assert await counts_by_type(svc.url) == {
            "identify": 1,
            "feature_used": 1,
            "report_exported": 1,
            "page_view": 1,
        }
        events = await events_of(svc.url)
        got = {e["event_type"]: e for e in events}
        used, view = got["feature_used"], got["page_view"]
        for event in events:
            # $pathname / $current_url anonymized; $os from the user agent; $lib web
            assert (event["page"], event["os"], event["platform"]) == (
                "/app/settings/[id]",
                "Linux",
                "web",
            ), event
            assert event["properties"]["$lib"] == "web"
        assert len({e["session_id"] for e in events}) == 1 and events[0]["session_id"]
        assert (used["component"], used["duration_ms"], used["name"]) == ("Editor", 12.5, None)
        assert used["properties"]["note"] == "mail me at [redacted:email]"
        assert used["properties"]["$current_url"] == f"http://[redacted:ipv4]:{server.port}/app/settings/[id]"
        assert (got["report_exported"]["name"], got["report_exported"]["component"]) == (
            "Report Exported",
            "Reports",
        )
        assert view["name"] == "SDK test page"  # $title
        check_privacy(events, [user], {"api_secret"})
        await check_user_ids(svc.url, {user: 4})
