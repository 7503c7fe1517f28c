"""detect_anomalies, explain_change and milestones through the in-process MCP client."""

from __future__ import annotations

import json

from mcp import Client

from helpers import load_sample, text_of
from telemetry_mcp.server.app import App


async def test_the_two_tools_are_listed_read_only_and_the_list_stays_within_budget(client: Client) -> None:
    tools = (await client.list_tools()).tools
    by_name = {t.name: t for t in tools}
    assert {"detect_anomalies", "explain_change"} <= set(by_name)
    assert len(tools) <= 10
    for name in ("detect_anomalies", "explain_change"):
        t = by_name[name]
        assert t.annotations is not None and t.annotations.read_only_hint is True
        assert t.output_schema is not None and "summary" in t.output_schema["properties"]
        # Our share of the 32,000-character tools/list: a tenth each for description and arguments
        # (output schemas are the answer-budget work's to compact, for every tool at once).
        own = t.model_dump(mode="json", by_alias=True, exclude_none=True)
        own.pop("outputSchema")
        assert len(json.dumps(own)) <= 3_200


async def test_anything_wrong_gets_the_spike_and_its_cause_from_the_tools_alone(
    client: Client, app: App
) -> None:
    load_sample(app)
    found = await client.call_tool(
        "detect_anomalies",
        {"metric": "error_rate", "interval": "day", "since": "2026-10-01", "until": "2026-11-01"},
    )
    assert not found.is_error
    assert found.structured_content is not None
    spike = found.structured_content["anomalies"][0]
    assert spike["bucket_start"] == "2026-10-20T00:00:00+00:00"
    cause = await client.call_tool(
        "explain_change",
        {
            "metric": "error_rate",
            "baseline": {"since": "2026-10-13", "until": "2026-10-20"},
            "candidate": {"since": "2026-10-20", "until": "2026-10-21"},
        },
    )
    assert cause.structured_content is not None
    assert cause.structured_content["causes"][0]["dimensions"] == {
        "component": "Chart",
        "name": "render_error",
    }
    assert len(text_of(cause)) <= 25_000


async def test_milestones_answer_through_analyze_user_behavior(client: Client, app: App) -> None:
    load_sample(app)
    r = await client.call_tool(
        "analyze_user_behavior",
        {
            "analysis": "milestones",
            "start_event": "session_start",
            "milestones": [{"event_type": "page_view", "target": "1m"}],
            "since": "2026-09-01",
            "until": "2026-11-01",
        },
    )
    assert not r.is_error, text_of(r)
    assert r.structured_content is not None
    data = r.structured_content
    assert data["analysis"] == "milestones" and data["starters"] > 0
    assert data["milestones"][0]["actors"] <= data["starters"]
    assert "steps" not in data  # other analyses' fields stay out


async def test_bad_arguments_give_one_readable_error(client: Client, app: App) -> None:
    load_sample(app)
    r = await client.call_tool(
        "explain_change", {"baseline": {"version": "2.2.0"}, "candidate": {"version": "9.9"}}
    )
    assert r.is_error and 'unknown service_version "9.9"' in text_of(r)
    r = await client.call_tool("detect_anomalies", {"metric": "events", "group_by": "colour"})
    assert r.is_error and 'unknown field "colour"' in text_of(r)
