"""forget and prune, seen through the tools: what goes, what stays, and what they report."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from conftest import TEST_SALT
from lifecycle_data import events
from telemetry_mcp.analytics.common import utcnow
from telemetry_mcp.cli import main
from telemetry_mcp.config import Settings, load_settings
from telemetry_mcp.events.privacy import hash_user_id
from telemetry_mcp.server.app import App, build_server
from telemetry_mcp.store.export import export_events
from telemetry_mcp.store.lifecycle import forget_users, prune

START = utcnow() - timedelta(days=120)


async def _sql(app: App, sql: str) -> list[dict[str, Any]]:
    async with Client(build_server(app)) as client:
        result = await client.call_tool("run_sql", {"sql": sql})
    assert not result.is_error, result.content
    assert result.structured_content is not None
    content = result.structured_content
    names = [c["name"] for c in content["columns"]]
    return [dict(zip(names, row, strict=True)) for row in content["rows"]]


async def _total(app: App, since: str = "200d") -> int:
    async with Client(build_server(app)) as client:
        result = await client.call_tool("collect_metrics", {"since": since, "interval": "total"})
    assert result.structured_content is not None
    return int(result.structured_content["totals"]["count"])


@pytest.fixture
def settings() -> Settings:
    """The conftest store, deleting in chunks of 100 rows (so that a bounded step can leave some)."""
    return load_settings(
        {"db": ":memory:", "threads": 2, "salt": TEST_SALT, "maintenance_chunk_rows": 100}, env={}
    )


@pytest.fixture
def loaded(app: App) -> App:
    report = app.ingestor.ingest(events(6_000, START, days=110, users=40))
    assert report.accepted == 6_000
    return app


async def test_forget_deletes_every_event_of_the_user_and_no_other(loaded: App, tmp_path: Path) -> None:
    salt = loaded.store.salt
    ann, bob = hash_user_id("user-3", salt), hash_user_id("user-4", salt)
    per_user = "SELECT user_id, count(*) AS n FROM events WHERE user_id IS NOT NULL GROUP BY user_id ORDER BY user_id"
    before = {r["user_id"]: r["n"] for r in await _sql(loaded, per_user)}
    total_before = await _total(loaded)
    assert before[ann] > 0 and before[bob] > 0

    # a raw id (hashed as at ingest) and a stored hash both work
    report = forget_users(loaded.store, ["user-3", bob, "nobody"])

    assert [(u.matched_as, u.events) for u in report.users] == [
        ("raw id", before[ann]),
        ("stored hash", before[bob]),
        ("raw id", 0),
    ]
    assert report.events == before[ann] + before[bob]
    after = {r["user_id"]: r["n"] for r in await _sql(loaded, per_user)}
    assert ann not in after and bob not in after
    assert after == {u: n for u, n in before.items() if u not in (ann, bob)}
    assert await _total(loaded) == total_before - report.events
    path = tmp_path / "after.jsonl"
    export_events(loaded.store, path, "jsonl")
    text = path.read_text()
    assert ann not in text and bob not in text and hash_user_id("user-5", salt) in text


async def test_prune_dry_run_says_what_would_go_and_deletes_nothing(loaded: App) -> None:
    now = START + timedelta(days=100)
    total = await _total(loaded)
    expected = (
        await _sql(
            loaded, f"SELECT count(*) AS n FROM events WHERE ts < TIMESTAMP '{now - timedelta(days=90)}'"
        )
    )[0]["n"]
    report = prune(loaded.store, now, dry_run=True)
    assert report.dry_run and report.raw_events == expected and 0 < expected < total
    assert "would delete" in report.lines()[0] and "raw_retention_days = 90" in report.lines()[0]
    assert await _total(loaded) == total


async def test_prune_deletes_the_events_past_retention_in_chunks_and_keeps_the_rest(loaded: App) -> None:
    now = START + timedelta(days=100)
    cutoff = now - timedelta(days=90)
    total = await _total(loaded)
    keep_sql = f"SELECT event_id FROM events WHERE ts >= TIMESTAMP '{cutoff}' ORDER BY event_id"
    kept_before = await _sql(loaded, keep_sql + " LIMIT 1000")
    report = prune(loaded.store, now, max_chunks=1)  # chunk of 100: one bounded step leaves some
    assert report.raw_events == 100 and report.remaining > 0
    report = prune(loaded.store, now)
    assert report.remaining == 0
    oldest = (await _sql(loaded, "SELECT min(ts) AS t FROM events"))[0]["t"]
    assert datetime.fromisoformat(oldest.rstrip("Z")) >= cutoff
    assert await _sql(loaded, keep_sql + " LIMIT 1000") == kept_before
    raw = (await _sql(loaded, "SELECT count(*) AS n FROM events"))[0]["n"]
    assert raw == total - 100 - report.raw_events
    assert await _total(loaded) == total  # collect_metrics still counts them, from the rollups


def test_the_forget_and_prune_commands_report_on_a_file_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from telemetry_mcp.store import Store
    from telemetry_mcp.store.ingest import Ingestor

    db = str(tmp_path / "cmd.duckdb")
    with Store(load_settings({"db": db, "threads": 2}, env={})) as store:
        Ingestor(store).ingest(events(3_000, utcnow() - timedelta(days=120), days=119, users=10))
    assert main(["prune", "--db", db, "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert dry.startswith("would delete ") and "older than" in dry
    assert main(["prune", "--db", db, "--raw-retention-days", "0"]) == 0
    assert "kept forever" in capsys.readouterr().out
    assert main(["forget", "--db", db, "user-1", "user-2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("forgot 2 user(s): ") and "user-1 (raw id " in out
    assert main(["prune", "--db", db]) == 0
    assert capsys.readouterr().out.startswith("deleted ")
