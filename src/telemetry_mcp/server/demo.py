"""`telemetry-mcp demo`: load the fixture set into a demo store, then be an MCP client of the real
server over stdio and show what every tool answers. No AI client or configuration needed."""

from __future__ import annotations

import asyncio
import base64
import importlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from telemetry_mcp.config import Settings, default_db_path, load_settings
from telemetry_mcp.store import Store
from telemetry_mcp.store.importer import records
from telemetry_mcp.store.ingest import Ingestor

BATCH = 10_000


def sample_path() -> Path:
    """The bundled sample: package data in a wheel, fixtures/ in a source checkout."""
    here = Path(__file__).resolve()
    for candidate in (
        here.parents[1] / "data" / "sample.jsonl",
        here.parents[3] / "fixtures" / "sample.jsonl",
    ):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("the fixture sample (fixtures/sample.jsonl) is not installed; pass --data FILE")


def demo_db_path() -> str:
    return str(Path(default_db_path()).with_name("demo.duckdb"))


def _shifted(path: Path, now: datetime) -> Iterator[Any]:
    """The sample's events with timestamps moved so the newest one is a minute ago."""
    newest = None
    for rec in records(path):
        if isinstance(rec, dict) and isinstance(rec.get("timestamp"), str):
            ts = datetime.fromisoformat(rec["timestamp"].replace("Z", "+00:00"))
            newest = ts if newest is None or ts > newest else newest
    shift = (now - timedelta(minutes=1) - newest) if newest else timedelta(0)
    for rec in records(path):
        if isinstance(rec, dict) and isinstance(rec.get("timestamp"), str):
            ts = datetime.fromisoformat(rec["timestamp"].replace("Z", "+00:00")) + shift
            rec = {**rec, "timestamp": ts.astimezone(UTC).isoformat().replace("+00:00", "Z")}
        yield rec


def load_demo(settings: Settings, data: Path) -> tuple[int, int, float]:
    """Load `data` (time-shifted to end now) through the normal ingest path; return counts and seconds."""
    started = time.perf_counter()
    accepted = rejected = 0
    with Store(settings) as store:
        ingestor = Ingestor(store)
        batch: list[Any] = []
        for rec in _shifted(data, datetime.now(UTC)):
            batch.append(rec)
            if len(batch) == BATCH:
                report = ingestor.ingest(batch)
                accepted, rejected = accepted + report.accepted, rejected + report.rejected
                batch = []
        if batch:
            report = ingestor.ingest(batch)
            accepted, rejected = accepted + report.accepted, rejected + report.rejected
        store.checkpoint()
    return accepted, rejected, time.perf_counter() - started


def demo_calls() -> list[tuple[str, dict[str, Any]]]:
    from telemetry_mcp.server.tools import TOOL_MODULES

    calls: list[tuple[str, dict[str, Any]]] = []
    for name in TOOL_MODULES:
        calls.extend(getattr(importlib.import_module(f"telemetry_mcp.server.tools.{name}"), "DEMO_CALLS", []))
    return calls


async def _show(db: str, out: Any) -> int:
    from mcp import Client, StdioServerParameters

    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMETRY_MCP_DB")}
    params = StdioServerParameters(command=sys.executable, args=["-m", "telemetry_mcp", "--db", db], env=env)
    failures = 0
    async with Client(params) as client:
        tools = (await client.list_tools()).tools
        print(f"\nThe server offers {len(tools)} tools: {', '.join(t.name for t in tools)}\n", file=out)
        for name, args in demo_calls():
            started = time.perf_counter()
            result = await client.call_tool(name, args)
            ms = (time.perf_counter() - started) * 1000
            print(f"── {name}({json.dumps(args)})  [{ms:.0f} ms]", file=out)
            if result.is_error:
                failures += 1
                text = result.content[0].text if result.content else "?"  # type: ignore[union-attr]
                print(f"   ERROR: {text}", file=out)
            else:
                summary = (result.structured_content or {}).get("summary", "")
                print(f"   {summary}\n", file=out)
    return failures


DEMO_WRITE_KEY = "demo-write-key"


def _collector_calls(run: str) -> list[tuple[str, str, dict[str, str], dict[str, Any]]]:
    """One request per wire format, as the SDKs send them (what `demo` shows the collector doing)."""
    basic = "Basic " + base64.b64encode(f"{DEMO_WRITE_KEY}:".encode()).decode()
    return [
        ("PostHog", "/batch/", {}, {"api_key": DEMO_WRITE_KEY, "batch": [
            {"event": "$pageview", "distinct_id": f"{run}-ph", "properties": {"$current_url": "https://app.example/docs/42?tab=api"}},
            {"event": "component_load", "distinct_id": f"{run}-ph", "properties": {"component": "DataGrid", "duration_ms": 41}},
        ]}),
        ("Segment", "/v1/batch", {"authorization": basic}, {"batch": [
            {"type": "track", "event": "Export Clicked", "userId": f"{run}-seg", "properties": {"component": "ExportButton"}},
            {"type": "page", "name": "Pricing", "userId": f"{run}-seg", "properties": {"path": "/pricing"}},
        ]}),
        ("PostHog v1", "/i/v1/analytics/events", {"authorization": f"Bearer {DEMO_WRITE_KEY}"}, {"batch": [
            {"event": "feature_used", "uuid": str(uuid.uuid4()), "distinct_id": f"{run}-ph", "properties": {"component": "Search"}},
        ]}),
        ("Amplitude", "/2/httpapi", {}, {"api_key": DEMO_WRITE_KEY, "events": [
            {"event_type": "command_executed", "user_id": f"{run}-amp", "event_properties": {"component": "deploy", "duration_ms": 930}},
        ]}),
        ("ours", "/api/v1/events", {"authorization": f"Bearer {DEMO_WRITE_KEY}"}, {"service": "demo-cli", "events": [
            {"event_type": "feature_used", "name": "dark_mode", "user_id": f"{run}-ours"},
        ]}),
    ]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _show_service(db: str, out: Any) -> int:
    """`telemetry-mcp serve` on the demo store: the SDKs' wire formats in, a stdio server reaching it."""
    import httpx
    from mcp import Client, StdioServerParameters

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMETRY_MCP_DB")}
    cmd = [
        sys.executable,
        "-m",
        "telemetry_mcp",
        "serve",
        "--db",
        db,
        "--port",
        str(port),
        "--write-key",
        DEMO_WRITE_KEY,
    ]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )
    url = f"http://127.0.0.1:{port}"
    failures = 0
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30, trust_env=False) as http:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if (await http.get("/ready")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                    print(f"   ERROR: telemetry-mcp serve did not start: {err.strip()[-500:]}", file=out)
                    return 1
                await asyncio.sleep(0.05)
            print(
                f"\n── telemetry-mcp serve --port {port}: MCP at {url}/mcp, the collector beside it", file=out
            )
            for name in ("/health", "/ready"):
                print(f"   GET {name} → {(await http.get(name)).text}", file=out)
            page = await http.get("/")
            dash = await http.get("/api/v1/dashboard", params={"since": "7d"})
            failures += page.status_code != 200 or dash.status_code != 200
            tiles = dash.json().get("tiles", {}) if dash.status_code == 200 else dash.text[:200]
            print(
                f"   GET / → {page.status_code} the dashboard ({len(page.text):,} characters of HTML); open {url}/",
                file=out,
            )
            print(f"   GET /api/v1/dashboard?since=7d → {tiles}", file=out)
            saved = await http.get("/api/v1/dashboard/insights")
            failures += saved.status_code != 200
            titles = (
                [i["title"] for i in saved.json().get("insights", [])]
                if saved.status_code == 200
                else saved.text[:200]
            )
            print(f"   GET /api/v1/dashboard/insights → saved funnels/retention: {titles}", file=out)
            run = f"demo-{int(time.time())}"
            for label, path, headers, body in _collector_calls(run):
                r = await http.post(path, json=body, headers=headers)
                failures += r.status_code != 200
                print(f"   {label:10} POST {path:22} → {r.status_code} {r.text[:160]}", file=out)
            # The first collector request started the collector workers (other processes that
            # decode, map and validate; `collector_workers`): once ready, requests go to them.
            workers = 0
            ready_by = time.monotonic() + 30
            while time.monotonic() < ready_by:
                workers = int((await http.get("/ready")).json().get("collector_workers", 0))
                if workers:
                    break
                await asyncio.sleep(0.1)
            label, path, headers, body = _collector_calls(f"{run}-w")[0]
            r = await http.post(path, json=body, headers=headers)
            failures += r.status_code != 200
            where = (
                f"a collector worker process ({workers} ready)"
                if workers
                else "threads of the serve (one core)"
            )
            print(
                f"   {label:10} POST {path:22} → {r.status_code} {r.text[:60]}, prepared in {where}", file=out
            )
            metrics = [
                line for line in (await http.get("/metrics")).text.splitlines()
                if line.startswith(("telemetry_events_accepted_total", "telemetry_store_events",
                                    "telemetry_collector_workers "))
            ]  # fmt: skip
            print("   GET /metrics → " + "; ".join(metrics), file=out)
        failures += _show_lifecycle(db, run, env, out)
        # A stdio server on the same store does not fail on the lock: it reaches the owner.
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "telemetry_mcp", "--db", db], env=env
        )
        async with Client(params) as client:
            sql = "SELECT event_type, component, page, user_id FROM events ORDER BY seq DESC LIMIT 6"
            result = await client.call_tool("run_sql", {"sql": sql})
            failures += bool(result.is_error)
            summary = (result.structured_content or {}).get("summary", "")
            print(
                f"── a stdio telemetry-mcp on the same store reaches the owner: run_sql → {summary}", file=out
            )
            for row in (result.structured_content or {}).get("rows", [])[:6]:
                print(f"   {row}", file=out)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        if proc.stderr is not None:
            proc.stderr.close()
    return failures


def _show_lifecycle(db: str, run: str, env: dict[str, str], out: Any) -> int:
    """export / forget / prune --dry-run / compact on the owned demo store: each command asks the owner."""
    export_to = Path(db).with_name("demo-export.parquet")
    commands = [
        ["prune", "--dry-run"],
        ["forget", f"{run}-ours"],
        ["export", "--since", "1d", str(export_to)],
        ["export", "--since", "1d", "--filter", "event_type = component_load", "--filter", "duration_ms > 100",
         str(export_to.with_name("demo-export-slow-loads.jsonl"))],
        ["import", "--quiet", str(export_to)],  # read back by the owner: every event a duplicate
        ["compact"],  # the file copied and swapped while the service keeps serving
    ]  # fmt: skip
    failures = 0
    print("── data lifecycle commands on the store the service owns (each asks the owner):", file=out)
    for args in commands:
        done = subprocess.run(
            [sys.executable, "-m", "telemetry_mcp", args[0], "--db", db, *args[1:]],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        failures += done.returncode != 0
        shown = (done.stdout or done.stderr).strip().replace("\n", "\n     ")
        print(f"   telemetry-mcp {' '.join(args)} → {shown}", file=out)
    return failures


def _show_report(settings: Settings, out: Any) -> int:
    """`telemetry-mcp report` on the demo store: the HTML and Markdown files, and where they are."""
    import tempfile

    from telemetry_mcp.server.report import write_report

    folder = Path(tempfile.mkdtemp(prefix="telemetry-mcp-report-"))
    html, md = folder / "report.html", folder / "report.md"
    started = time.perf_counter()
    report = asyncio.run(write_report(settings, "both", datetime.now(UTC), html, md))
    sections = [s for part in report["parts"] for s in part["sections"]]
    failed = [s["title"] for s in sections if s["error"]]
    print(
        f"\n── telemetry-mcp report --html {html} --md {md}  [{(time.perf_counter() - started) * 1000:.0f} ms]\n"
        f"   {len(sections)} sections ({len(failed)} not available); open {html} in a browser for the charts",
        file=out,
    )
    for title in failed:
        print(f"   not available: {title}", file=out)
    return len(failed)


def run_demo(overrides: dict[str, Any], data: Path | None) -> int:
    """Entry point of `telemetry-mcp demo`. Uses its own demo store unless --db is given."""
    explicit_db = overrides.get("db") or os.environ.get("TELEMETRY_MCP_DB")
    db = explicit_db or demo_db_path()
    if not explicit_db:
        for suffix in ("", ".wal"):
            Path(db + suffix).unlink(missing_ok=True)
    settings = load_settings({**overrides, "db": db})
    if settings.is_memory:
        print("telemetry-mcp: demo needs a file store (the server runs in its own process)", file=sys.stderr)
        return 2
    source = data or sample_path()
    print(f"Loading {source} into {db} (timestamps shifted to end now)…", flush=True)
    accepted, rejected, seconds = load_demo(settings, source)
    print(f"Loaded {accepted:,} events ({rejected:,} rejected) in {seconds:.1f} s.", flush=True)
    failures = asyncio.run(_show(db, sys.stdout))
    failures += asyncio.run(_show_service(db, sys.stdout))
    failures += _show_report(settings, sys.stdout)
    print(f"Demo store kept at {db}. Point your MCP client at it with --db {db}.")
    return 1 if failures else 0
