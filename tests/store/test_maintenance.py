"""The owner's background maintenance: a clock the test controls, and clients working meanwhile."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest

from conftest import TEST_SALT
from lifecycle_data import events
from telemetry_mcp.analytics import metrics
from telemetry_mcp.analytics.common import utcnow
from telemetry_mcp.config import Settings, load_settings
from telemetry_mcp.server.app import App
from telemetry_mcp.store.lifecycle import Maintenance


@pytest.fixture
def settings() -> Settings:
    """The conftest store, deleting 1,000 rows per transaction (many steps for the test to interleave)."""
    return load_settings(
        {"db": ":memory:", "threads": 2, "salt": TEST_SALT, "maintenance_chunk_rows": 1000}, env={}
    )


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _metrics(app: App, since: datetime, until: datetime) -> dict[str, Any]:
    q = metrics.MetricsQuery(since=since.isoformat(), until=until.isoformat(), interval="day", limit=100)
    return metrics.run(app.store, q).model_dump()


def test_events_older_than_the_raw_retention_go_at_the_next_step_and_recent_answers_stay_exact(
    app: App,
) -> None:
    start = utcnow() - timedelta(days=100)
    app.ingestor.ingest(events(5_000, start, days=99))
    clock = Clock(start + timedelta(days=60))  # nothing is 90 days old yet
    job = Maintenance(app.store, clock=clock)
    recent = (start + timedelta(days=92), start + timedelta(days=99))
    exact_before = _metrics(app, *recent)
    hour = start.replace(minute=0, second=0, microsecond=0)  # rollups answer in whole hours
    old_before = _metrics(app, hour, hour + timedelta(days=10))

    assert job.step().raw_events == 0
    clock.now = start + timedelta(days=100)  # ten days of events are now past the retention
    report = job.step()

    assert report.raw_events > 0 and report.remaining == 0
    cutoff = clock.now - timedelta(days=90)
    assert app.store.fetch("SELECT count(*) FROM events WHERE ts < ?", [cutoff])[0][0] == 0
    old = _metrics(app, hour, hour + timedelta(days=10))  # now answered from the rollups
    assert old["approximate"] and old["totals"]["count"] == old_before["totals"]["count"] > 0
    assert _metrics(app, *recent) == exact_before


def test_maintenance_while_four_clients_ingest_and_query_loses_nothing(app: App) -> None:
    start = utcnow() - timedelta(days=200)
    old = events(20_000, start, days=100, seed=1)  # all past the 90-day retention
    for i in range(0, len(old), 10_000):
        app.ingestor.ingest(old[i : i + 10_000])
    job = Maintenance(app.store, max_chunks=1)
    errors: list[str] = []
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def ingest(k: int) -> None:
        for n in range(20):
            batch = events(200, utcnow() - timedelta(hours=2), days=0.05, seed=100 + k * 100 + n)
            report = app.ingestor.ingest(batch)
            if report.rejected:
                errors.append(str(report.errors[:1]))
            with lock:
                acknowledged.extend(e["event_id"] for e in batch)

    def query() -> None:
        while not stop.is_set():
            _metrics(app, utcnow() - timedelta(days=1), utcnow())

    def guarded(fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    def maintain() -> None:
        while job.step().remaining:
            pass

    workers = [threading.Thread(target=guarded, args=(ingest, k)) for k in range(2)]
    workers += [threading.Thread(target=guarded, args=(query,)) for _ in range(2)]
    maintainer = threading.Thread(target=guarded, args=(maintain,))
    for t in [*workers, maintainer]:
        t.start()
    for t in workers[:2]:
        t.join(timeout=120)
    maintainer.join(timeout=120)
    stop.set()
    for t in workers[2:]:
        t.join(timeout=60)

    assert errors == []
    assert job.steps > 1  # it ran in bounded steps, interleaved with the clients
    stored = {r[0] for r in app.store.fetch("SELECT event_id FROM events")}
    assert set(acknowledged) <= stored and len(acknowledged) == 2 * 20 * 200
    assert app.store.fetch("SELECT count(*) FROM events WHERE ts < ?", [utcnow() - timedelta(days=90)]) == [
        (0,)
    ]


def test_the_background_thread_runs_steps_until_stopped(app: App) -> None:
    start = utcnow() - timedelta(days=200)
    app.ingestor.ingest(events(3_000, start, days=50))
    job = Maintenance(app.store, interval=0.02)
    job.start()
    try:
        for _ in range(500):  # bounded wait, 10 s at most
            if app.store.total_events() == 0:
                break
            threading.Event().wait(0.02)
    finally:
        job.stop()
    assert app.store.total_events() == 0 and job.steps >= 1 and job.errors == []
