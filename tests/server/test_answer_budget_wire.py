"""Every tool with its largest allowed arguments, over a real stdio connection, on a store of
100,000 events: each answer's text and structured content fit the 25,000-character budget, and an
answer that had to be cut says `truncated: true`."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from telemetry_mcp.config import load_settings
from telemetry_mcp.server.app import open_app
from wire import RawServer

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
BUDGET = 25_000
N_EVENTS = 100_000


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("fixtures_generate", FIXTURES / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _store(db: Path) -> None:
    gen = _generator()
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    app = open_app(load_settings({"db": str(db), "threads": 2}, env={}))
    try:
        batch: list[dict[str, Any]] = []
        for event in gen.generate(N_EVENTS, seed=7, days=60, end=end):
            batch.append(event)
            if len(batch) == 10_000:
                assert app.ingestor.ingest(batch).rejected == 0
                batch = []
        if batch:
            assert app.ingestor.ingest(batch).rejected == 0
        app.store.checkpoint()
    finally:
        app.store.close()


WIDE = {"since": "8w", "limit": 1000}
CALLS: list[tuple[str, dict[str, Any]]] = [
    ("describe_events", {"limit": 1000}),
    ("collect_metrics", {**WIDE, "interval": "hour"}),
    ("collect_metrics", {**WIDE, "interval": "day", "group_by": "component"}),
    ("collect_metrics", {**WIDE, "interval": "hour", "group_by": "name", "metric": "load_time"}),
    ("analyze_performance", {**WIDE, "group_by": "component"}),
    ("analyze_performance", {**WIDE, "group_by": "service_version", "compare": None}),
    ("get_realtime_stats", {"window": "24h", "limit": 1000}),
    ("analyze_feature_adoption", {**WIDE, "feature_by": "name", "period": "day"}),
    ("analyze_feature_adoption", {**WIDE, "feature_by": "component", "period": "week"}),
    ("analyze_user_behavior", {**WIDE, "analysis": "journeys", "max_steps": 20, "node": "name"}),
    ("analyze_user_behavior", {**WIDE, "analysis": "retention", "period": "day", "periods": 120}),
    ("analyze_user_behavior", {**WIDE, "analysis": "engagement", "period": "day", "periods": 120}),
    ("analyze_user_behavior", {**WIDE, "analysis": "dropoff", "steps": ["session_start", "component_load", "user_interaction", "feature_used"], "breakdown_by": "component"}),
    ("analyze_user_behavior", {**WIDE, "analysis": "milestones", "start_event": "session_start", "milestones": ["component_load", "feature_used", "command_executed"], "breakdown_by": "service_version"}),
    ("analyze_user_behavior", {**WIDE, "analysis": "funnel", "steps": [{"event_type": "session_start"}, {"event_type": "component_load"}, {"event_type": "user_interaction"}], "breakdown_by": "component"}),
    ("detect_anomalies", {**WIDE, "metric": "events", "interval": "hour", "group_by": "component", "threshold": 2}),
    ("explain_change", {"baseline": {"since": "8w", "until": "4w"}, "candidate": {"since": "4w"}, "max_depth": 3, "limit": 1000}),
    ("run_sql", {"sql": "SELECT * FROM events", "limit": 1000}),
]  # fmt: skip


def test_every_tool_at_its_largest_arguments_answers_within_the_budget_over_stdio(tmp_path: Path) -> None:
    db = tmp_path / "big.duckdb"
    _store(db)
    truncated_seen = 0
    largest = 0
    with RawServer(db) as server:
        server.initialize()
        listed = {t["name"] for t in server.request("tools/list", {})["result"]["tools"]}
        assert listed - {name for name, _ in CALLS} == {"ingest_events"}  # every read tool is exercised
        # the largest batch: 10,000 events, half of them rejected (the error list is bounded too)
        events = [
            {"event_type": "BAD", "name": "n" * 200},
            {"event_type": "feature_used", "name": "ok"},
        ] * 5000
        calls = [*CALLS, ("ingest_events", {"events": events})]
        for name, args in calls:
            reply = server.call(name, args, timeout=120)
            result = reply["result"]
            assert not result.get("isError"), (name, result["content"][0]["text"][:500])
            text = "".join(c["text"] for c in result["content"] if c["type"] == "text")
            structured = json.dumps(result["structuredContent"], ensure_ascii=False)
            assert len(text) <= BUDGET, (name, args, len(text))
            assert len(structured) <= BUDGET, (name, args, len(structured))
            largest = max(largest, len(text), len(structured))
            if result["structuredContent"].get("truncated"):
                truncated_seen += 1
                assert "truncated" in text
    print(f"largest answer part {largest:,} characters; {truncated_seen} of {len(calls)} answers cut")
    # the widest questions had more to say than the budget allows: they were cut, and said so
    assert truncated_seen >= 5, truncated_seen
    assert largest > BUDGET * 0.5
