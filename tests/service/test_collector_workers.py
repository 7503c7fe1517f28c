"""Collector requests prepared in worker processes: the same rows and answers as in the serve's
threads, the work really done in the workers, a killed worker costing a retry and never an event,
no worker outliving a SIGKILLed serve, and nothing but the protocol on a stdio owner's stdout."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import os
import signal
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from svc import WRITE_KEY, ServiceProcess
from telemetry_mcp.config import Settings, load_settings
from telemetry_mcp.server.app import App, open_app
from telemetry_mcp.service.app import build_app
from telemetry_mcp.service.committer import Committer
from telemetry_mcp.service.context import ServiceContext
from telemetry_mcp.service.metrics import ServiceMetrics
from telemetry_mcp.service.owner import OwnerInfo
from telemetry_mcp.service.workers import Workers
from telemetry_mcp.store import Store
from wire import RawServer

KEY = "workers-key-123"
SALT = "ffeeddccbbaa99887766554433221100"
ROW_COLUMNS = (
    "event_id, ts, event_type, name, component, user_id, session_id, actor, severity, duration_ms, value, "
    "unit, service, service_version, platform, os, framework, page, properties, redacted_paths, session_key, "
    "id_hash, id_hash = hash(event_id)"
)


def _settings() -> Settings:
    return load_settings(
        {"db": ":memory:", "threads": 2, "salt": SALT, "max_request_bytes": 256 * 1024}, env={}
    )


def _wait_ready(pool: Workers) -> None:
    deadline = time.monotonic() + 120
    while not pool.ready and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pool.ready, "the collector workers did not start"


@pytest.fixture(scope="module")
def pool() -> Iterator[Workers]:
    workers = Workers(_settings(), bytes.fromhex(SALT), KEY, 2)
    workers.start()
    _wait_ready(workers)
    yield workers
    workers.close()


class _Service:
    """An in-memory store behind the collector's ASGI app, prepared in threads or in `workers`."""

    def __init__(self, workers: Workers | None) -> None:
        self.app: App = open_app(_settings())
        self.committer = Committer(self.app.ingestor)
        holder: list[ServiceContext] = []
        self.ctx = ServiceContext(
            app=self.app,
            owner=OwnerInfo.new("http://127.0.0.1:1", "serve"),
            write_key=KEY,
            committer=self.committer,
            metrics=ServiceMetrics(lambda: holder[0].store_gauges()),
            workers=workers,
        )
        holder.append(self.ctx)

    def rows(self) -> list[tuple[Any, ...]]:
        return self.app.store.fetch(f"SELECT {ROW_COLUMNS} FROM events ORDER BY event_id")

    def close(self) -> None:
        self.committer.close()
        self.app.store.close()


@pytest.fixture
async def pair(pool: Workers) -> AsyncIterator[tuple[Any, Any, _Service, _Service]]:
    threads, workers = _Service(None), _Service(pool)
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(threads.ctx, "127.0.0.1")),
                          base_url="http://127.0.0.1:8000") as a,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(workers.ctx, "127.0.0.1")),
                          base_url="http://127.0.0.1:8000") as b,
    ):  # fmt: skip
        yield a, b, threads, workers
    threads.close()
    workers.close()


def _ph_event(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "event": ["$pageview", "$autocapture", "feature_used", "$exception", "Sign Up!"][i % 5],
        "uuid": f"00000000-0000-4000-8000-{i:012d}",
        "distinct_id": f"user-{i % 9}",
        "timestamp": f"2026-11-{1 + i % 28:02d}T10:{i % 60:02d}:00Z",
        "properties": {
            "$session_id": f"s-{i % 4}",
            "$current_url": f"https://app.example.com/projects/{i}/board?token=abc",
            "$os": "Linux",
            "$lib": "posthog-js",
            "$elements_chain": 'button.primary:attr__data-component="SaveButton"nth-child="1"',
            "$exception_message": "boom",
            "email": f"person{i}@example.com",
            "duration_ms": i * 1.5,
            "nested": {"ip": "10.0.0.1", "keep": i},
        },
        **extra,
    }


def _bodies() -> list[tuple[str, dict[str, str], bytes]]:
    """(path, headers, body): every request shape the workers take, hostile ones included."""
    j = {"content-type": "application/json"}
    batch = {"api_key": KEY, "batch": [_ph_event(i) for i in range(40)]}
    bad = {
        "api_key": KEY,
        "batch": [_ph_event(100), {"event": ""}, "not an event", _ph_event(101, offset="x")],
    }
    seg = {
        "writeKey": KEY,
        "batch": [
            {"type": "track", "event": "Order Completed", "userId": "u1", "messageId": "seg-1",
             "timestamp": "2026-11-03T10:00:00Z", "properties": {"revenue": 12.5}},
            {"type": "page", "name": "Home", "anonymousId": "a1", "messageId": "seg-2",
             "timestamp": "2026-11-03T10:01:00Z", "properties": {"path": "/home"}},
            {"type": "identify", "userId": "u1", "messageId": "seg-3", "timestamp": "2026-11-03T10:02:00Z"},
        ],
    }  # fmt: skip
    basic = {
        "content-type": "application/json",
        "authorization": "Basic " + base64.b64encode(f"{KEY}:".encode()).decode(),
    }
    one = {"api_key": KEY, **_ph_event(200)}
    form = "data=" + base64.b64encode(json.dumps([_ph_event(300)]).encode()).decode()
    return [
        ("/batch/", j, json.dumps(batch).encode()),
        ("/batch/", {**j, "content-encoding": "gzip"}, gzip.compress(json.dumps(bad).encode())),
        ("/e/?compression=base64&api_key=" + KEY, {"content-type": "application/x-www-form-urlencoded"},
         form.encode()),
        ("/capture/", j, json.dumps(one).encode()),
        ("/batch/", j, json.dumps({"api_key": "wrong", "batch": [_ph_event(400)]}).encode()),
        ("/batch/", j, b'{"api_key": "' + KEY.encode() + b'", "batch": [{"event": "x"'),
        ("/batch/", j, b"[1, 2, 3]"),
        ("/batch/", {**j, "content-encoding": "gzip"}, gzip.compress(b"[" + b" " * (2 * 1024 * 1024) + b"]")),
        ("/v1/batch", j, json.dumps(seg).encode()),
        ("/v1/track", basic, json.dumps(seg["batch"][0] | {"messageId": "seg-9"}).encode()),  # type: ignore[operator]
        ("/v1/batch", j, json.dumps({**seg, "writeKey": "nope"}).encode()),
        ("/batch", j, json.dumps({"api_key": KEY, "events": [{"event_type": "x", "user_id": "a1",
                                   "insert_id": "amp-1", "time": 1764000000000}]}).encode()),
    ]  # fmt: skip


async def test_workers_store_the_same_rows_and_give_the_same_answers_as_the_serve_threads(
    pair: tuple[httpx.AsyncClient, httpx.AsyncClient, _Service, _Service],
) -> None:
    a, b, threads, workers = pair
    statuses = set()
    for path, headers, body in _bodies():
        ra = await a.post(path, content=body, headers=headers)
        rb = await b.post(path, content=body, headers=headers)
        assert (rb.status_code, rb.content) == (ra.status_code, ra.content), path
        statuses.add(ra.status_code)
    assert {200, 400, 401, 413} <= statuses  # the hostile bodies were refused, on both paths alike
    rows = threads.rows()
    assert len(rows) > 40
    assert workers.rows() == rows
    assert all(row[-1] for row in rows)  # the workers' id hashes are DuckDB's own
    catalog = "SELECT kind, value FROM catalog ORDER BY ALL"
    assert workers.app.store.fetch(catalog) == threads.app.store.fetch(catalog)
    assert workers.app.store.total_events() == threads.app.store.total_events()


async def test_the_work_is_done_in_the_worker_processes(
    pair: tuple[httpx.AsyncClient, httpx.AsyncClient, _Service, _Service], pool: Workers
) -> None:
    _, b, _, workers = pair
    procs = [psutil.Process(pid) for pid in pool.pids]
    before = sum(p.cpu_times().user for p in procs)
    bodies = [{"api_key": KEY, "batch": [_ph_event(1000 * k + i) for i in range(200)]} for k in range(30)]
    # 10 requests at once, on a pool an earlier test's event loop used: each worker takes one job
    # at a time and the others wait for a free one
    for first in range(0, 30, 10):
        answers = await asyncio.wait_for(
            asyncio.gather(*(b.post("/batch/", json=body) for body in bodies[first : first + 10])), 60
        )
        assert [(r.status_code, r.json()) for r in answers] == [(200, {"status": 1})] * 10
    after = sum(p.cpu_times().user for p in procs)
    assert workers.app.store.total_events() == 6000
    assert after - before > 0.1, "the worker processes did not do the mapping and validation"
    metrics = (await b.get("/metrics")).text
    assert "\ntelemetry_collector_workers 2.0\n" in metrics, [
        m for m in metrics.splitlines() if "workers" in m
    ]
    assert (await b.get("/ready")).json()["collector_workers"] == 2


def _worker_pids(serve_pid: int) -> list[int]:
    out = []
    for child in psutil.Process(serve_pid).children(recursive=True):
        try:
            cmd = " ".join(child.cmdline())
        except psutil.NoSuchProcess:
            continue
        if "spawn_main" in cmd:
            out.append(child.pid)
    return out


def _wait_workers(url: str, n: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"{url}/ready", timeout=5).json().get("collector_workers") == n:
            return
        time.sleep(0.05)
    raise AssertionError(f"{n} collector workers were not ready within {timeout} s")


def _posthog_body(ids: list[str]) -> dict[str, Any]:
    return {
        "api_key": WRITE_KEY,
        "batch": [{"event": "feature_used", "distinct_id": "u", "uuid": i} for i in ids],
    }


def test_a_killed_worker_costs_a_retry_and_never_an_acknowledged_event(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    acknowledged: set[str] = set()
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    stop = threading.Event()
    with ServiceProcess(db, "--collector-workers", "2") as svc:
        svc.post("/batch/", _posthog_body([str(uuid.uuid4())]))  # the first request starts them
        _wait_workers(svc.url, 2)

        def send() -> None:
            with httpx.Client(timeout=30) as client:
                while not stop.is_set():
                    ids = [str(uuid.uuid4()) for _ in range(100)]
                    r = client.post(f"{svc.url}/batch/", json=_posthog_body(ids))
                    with lock:
                        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                        if r.status_code == 200:
                            acknowledged.update(ids)
                        else:
                            assert r.status_code == 503 and r.headers["retry-after"], r.text

        senders = [threading.Thread(target=send, daemon=True) for _ in range(4)]
        for t in senders:
            t.start()
        time.sleep(1.0)
        victim = _worker_pids(svc.proc.pid)[0]
        os.kill(victim, signal.SIGKILL)
        time.sleep(1.0)
        _wait_workers(svc.url, 2)  # a new pool took over
        with lock:
            after_restart = statuses.get(200, 0)
        time.sleep(1.0)
        stop.set()
        for t in senders:
            t.join(timeout=60)
        assert statuses.get(200, 0) > after_restart, "no request succeeded after the restart"
        assert set(statuses) <= {200, 503}, statuses
        metrics = httpx.get(f"{svc.url}/metrics", timeout=5).text
        assert "telemetry_collector_worker_restarts 1.0" in metrics
        assert victim not in _worker_pids(svc.proc.pid)
    with Store(load_settings({"db": str(db)}, env={})) as store:
        stored = {r[0] for r in store.fetch("SELECT event_id FROM events")}
        count = store.total_events()
    assert acknowledged <= stored
    assert count == len(stored)  # each once


def test_no_worker_outlives_a_sigkilled_serve(tmp_path: Path) -> None:
    svc = ServiceProcess(tmp_path / "k.duckdb", "--collector-workers", "2")
    try:
        svc.post("/batch/", _posthog_body([str(uuid.uuid4())]))
        _wait_workers(svc.url, 2)
        # a body and an answer far larger than a pipe's buffer cross in pieces, both ways
        big = _posthog_body([f"big-{i}" for i in range(8_000)])
        for event in big["batch"]:
            event["properties"] = {"component": "DataGrid", "note": "x" * 300}
        r = svc.post("/batch/", big)
        assert (r.status_code, r.json()) == (200, {"status": 1})
        assert len(json.dumps(big)) > 2_500_000
        workers = [psutil.Process(pid) for pid in _worker_pids(svc.proc.pid)]
        assert len(workers) == 2
        svc.kill()
        _gone, alive = psutil.wait_procs(workers, timeout=10)
        assert not alive, f"workers still running 10 s after the serve was killed: {alive}"
    finally:
        svc.stop()
    with Store(load_settings({"db": str(tmp_path / "k.duckdb")}, env={})) as store:
        assert store.total_events() == 8_001  # acknowledged before the kill: stored


def test_a_stdio_owner_with_collector_workers_writes_only_the_protocol_on_stdout(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    server = RawServer(db, "--write-key", WRITE_KEY, "--collector-workers", "2")
    try:
        server.initialize()
        url = json.loads(Path(f"{db}.owner").read_text())["url"]
        assert httpx.post(f"{url}/batch/", json=_posthog_body(["first"]), timeout=30).status_code == 200
        _wait_workers(url, 2)
        ids = [f"w-{i}" for i in range(500)]
        for k in range(5):
            r = httpx.post(f"{url}/batch/", json=_posthog_body(ids[k * 100 : (k + 1) * 100]), timeout=30)
            assert r.status_code == 200
        stats = server.call("get_realtime_stats", {})["result"]["structuredContent"]
        assert stats["storage"]["total_events"] == 501
        # every byte the process wrote on stdout was a JSON-RPC message (read() parses each line)
        reply = server.request("ping")
        assert reply["result"] == {}
        assert server._out == b""
    finally:
        server.close()
