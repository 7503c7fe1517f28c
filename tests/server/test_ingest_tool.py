"""ingest_events (SPEC tool 1) through the in-process MCP client (conftest's `client`)."""

from __future__ import annotations

import json
from typing import Any

from mcp import Client
from mcp.types import TextContent

from telemetry_mcp.server.app import App

RESULT_FIELDS = [
    "accepted", "duplicates", "rejected", "errors", "dropped_dnt", "sampled_out", "redactions", "summary",
    "truncated",
]  # fmt: skip
PATTERN_HINT = "must match ^[a-z][a-z0-9_]{0,63}$ (lower-case letters, digits, _)"


def stored(app: App, columns: str = "event_id", order: str = " ORDER BY seq") -> list[tuple[Any, ...]]:
    return app.store.fetch(f"SELECT {columns} FROM events{order}")


def error_text(result: Any) -> str:
    assert result.is_error, result
    content = result.content[0]
    assert isinstance(content, TextContent)
    return content.text


async def test_the_result_has_exactly_the_spec_fields_and_a_quotable_summary(
    client: Client, app: App
) -> None:
    events = [
        {"event_id": "a", "event_type": "component_load", "properties": {"password": "x"}},
        {"event_id": "a", "event_type": "component_load"},
        {"event_id": "b", "event_type": "Bad"},
        {"event_id": "c", "event_type": "page_view", "do_not_track": True},
        {"event_id": "d", "event_type": "page_view"},
    ]

    result = await client.call_tool("ingest_events", {"events": events})

    assert not result.is_error
    assert result.structured_content == {
        "accepted": 2,
        "duplicates": 1,
        "rejected": 1,
        "errors": [
            {
                "index": 2,
                "reason": f"event_type 'Bad' {PATTERN_HINT}",
            }
        ],
        "dropped_dnt": 1,
        "sampled_out": 0,
        "redactions": 1,
        "summary": "Accepted 2 of 5 events; 1 duplicates; 1 rejected (first: #2 event_type 'Bad' must match "
        "^[a-z][a-z0-9_]{0,63}$ (lower-case letters, digits, _)); 1 dropped for do-not-track; 1 redactions.",
        "truncated": False,
    }
    assert stored(app) == [("a",), ("d",)]


async def test_a_clean_batch_has_a_short_summary(client: Client) -> None:
    result = await client.call_tool("ingest_events", {"events": [{"event_type": "x"}, {"event_type": "y"}]})

    assert result.structured_content is not None
    assert result.structured_content["summary"] == "Accepted 2 of 2 events."


async def test_the_summary_stays_within_600_characters_whatever_the_errors(client: Client) -> None:
    events = [{"event_type": "x" * 70, "severity": "s" * 300, "name": "n" * 300} for _ in range(500)]

    result = await client.call_tool("ingest_events", {"events": events})

    assert result.structured_content is not None
    assert result.structured_content["rejected"] == 500
    # 100 errors of ~400 characters each exceed the 25,000-character answer budget: the list is cut.
    assert 0 < len(result.structured_content["errors"]) < 100
    assert result.structured_content["truncated"] is True
    assert len(json.dumps(result.structured_content)) <= 25_000
    assert len(result.structured_content["summary"]) <= 600
    assert "errors " in result.structured_content["summary"]


async def test_a_batch_of_10001_events_is_refused_with_the_limit_and_nothing_is_stored(
    client: Client, app: App
) -> None:
    events = [{"event_type": "component_load", "event_id": f"e{i}"} for i in range(10_001)]

    result = await client.call_tool("ingest_events", {"events": events})

    assert error_text(result) == (
        "Error executing tool ingest_events: "
        "batch of 10,001 events exceeds the limit of 10,000 per call; split it into several calls "
        "(or use `telemetry-mcp import FILE` for bulk loads)"
    )
    assert stored(app, "count(*)", order="") == [(0,)]


async def test_an_empty_event_list_is_refused(client: Client) -> None:
    result = await client.call_tool("ingest_events", {"events": []})

    text = error_text(result)
    assert "events" in text
    assert "events is empty: send 1..10,000 event objects" in text


async def test_items_that_are_not_objects_are_rejected_by_index_and_the_others_stored(
    client: Client, app: App
) -> None:
    events: list[Any] = [
        1,
        {"event_id": "ok", "event_type": "x"},
        "text",
        None,
        [],
        {"event_id": "ok2", "event_type": "y"},
    ]

    result = await client.call_tool("ingest_events", {"events": events})

    assert result.structured_content is not None
    assert result.structured_content["accepted"] == 2
    assert result.structured_content["errors"] == [
        {"index": 0, "reason": "event: expected a JSON object, got int"},
        {"index": 2, "reason": "event: expected a JSON object, got str"},
        {"index": 3, "reason": "event: expected a JSON object, got NoneType"},
        {"index": 4, "reason": "event: expected a JSON object, got list"},
    ]
    assert stored(app) == [("ok",), ("ok2",)]


async def test_the_tool_is_annotated_idempotent_and_not_read_only_with_an_output_schema(
    client: Client,
) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}

    tool = tools["ingest_events"]

    assert tool.annotations is not None
    assert tool.annotations.idempotent_hint is True
    assert tool.annotations.read_only_hint is False
    assert tool.annotations.destructive_hint is False
    assert tool.description
    assert tool.output_schema is not None
    assert sorted(tool.output_schema["properties"]) == sorted(RESULT_FIELDS)
    assert tool.input_schema["required"] == ["events"]
    assert set(tool.input_schema["properties"]) == {"events", "service", "service_version", "do_not_track"}


async def test_do_not_track_drops_the_whole_batch_and_says_so(client: Client, app: App) -> None:
    events = [{"event_id": "a", "event_type": "x"}, {"event_id": "b", "event_type": "y"}]

    result = await client.call_tool("ingest_events", {"events": events, "do_not_track": True})

    assert result.structured_content == {
        "accepted": 0,
        "duplicates": 0,
        "rejected": 0,
        "errors": [],
        "dropped_dnt": 2,
        "sampled_out": 0,
        "redactions": 0,
        "summary": "Accepted 0 of 2 events; 2 dropped for do-not-track.",
        "truncated": False,
    }
    assert stored(app) == []


async def test_service_arguments_fill_events_that_lack_them(client: Client, app: App) -> None:
    events = [{"event_id": "a", "event_type": "x"}, {"event_id": "b", "event_type": "x", "service": "cli"}]

    await client.call_tool("ingest_events", {"events": events, "service": "web", "service_version": "2.0.0"})

    assert stored(app, "event_id, service, service_version") == [("a", "web", "2.0.0"), ("b", "cli", "2.0.0")]


async def test_sending_the_same_batch_twice_stores_it_once(client: Client, app: App) -> None:
    events = [{"event_id": f"e{i}", "event_type": "x"} for i in range(3)]

    first = await client.call_tool("ingest_events", {"events": events})
    second = await client.call_tool("ingest_events", {"events": events})

    assert first.structured_content is not None and second.structured_content is not None
    assert (first.structured_content["accepted"], second.structured_content["accepted"]) == (3, 0)
    assert second.structured_content["duplicates"] == 3
    assert stored(app, "count(*)", order="") == [(3,)]
