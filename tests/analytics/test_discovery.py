"""describe_events through the MCP server: every list with counts and first/last seen, bounds, ranges."""

from typing import Any

from mcp import Client

from helpers import load
from telemetry_mcp.server.app import App


async def call(client: Client, **args: Any) -> dict[str, Any]:
    result = await client.call_tool("describe_events", args)
    assert not result.is_error, result.content[0].text
    assert result.structured_content is not None
    return result.structured_content


async def error_of(client: Client, **args: Any) -> str:
    result = await client.call_tool("describe_events", args)
    assert result.is_error
    return str(result.content[0].text)


def ev(event_id: str, ts: str, event_type: str, **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "timestamp": ts, "event_type": event_type, **fields}


EVENTS = [
    ev("d1", "2026-10-01T10:00:00Z", "page_view", name="home", service="web", service_version="1.0",
       platform="web", properties={"path": "/", "ab": {"x": 1}}),
    ev("d2", "2026-10-01T11:00:00Z", "component_load", component="Button", service="web",
       service_version="1.0", platform="web", framework="react", properties={"ab": "x"}),
    ev("d3", "2026-10-02T09:00:00Z", "component_load", component="Button", service="web",
       service_version="1.1", platform="mobile", framework="react"),
    ev("d4", "2026-10-03T08:00:00Z", "error", component="Modal", name="render_error", service="web",
       service_version="1.1", properties={"message": "boom"}),
    ev("d5", "2026-10-04T08:00:00Z", "command_executed", component="deploy", name="deploy", service="cli",
       service_version="2.0", platform="cli"),
]  # fmt: skip


LISTS = ("event_types", "names", "components", "services", "platforms", "frameworks", "property_keys")


def rows(block: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [tuple(v.values()) for v in block["values"]]


async def test_all_time_catalog_lists_values_by_count_with_first_and_last_seen(
    app: App, client: Client
) -> None:
    load(app, EVENTS)
    out = await call(client)
    assert (out["since"], out["until"], out["total_events"], out["first_event"], out["last_event"]) == (
        None, None, 5, "2026-10-01T10:00:00Z", "2026-10-04T08:00:00Z",
    )  # fmt: skip
    assert rows(out["event_types"]) == [
        ("component_load", 2, "2026-10-01T11:00:00Z", "2026-10-02T09:00:00Z"),
        ("command_executed", 1, "2026-10-04T08:00:00Z", "2026-10-04T08:00:00Z"),
        ("error", 1, "2026-10-03T08:00:00Z", "2026-10-03T08:00:00Z"),
        ("page_view", 1, "2026-10-01T10:00:00Z", "2026-10-01T10:00:00Z"),
    ]
    assert rows(out["names"]) == [
        ("deploy", 1, "2026-10-04T08:00:00Z", "2026-10-04T08:00:00Z"),
        ("home", 1, "2026-10-01T10:00:00Z", "2026-10-01T10:00:00Z"),
        ("render_error", 1, "2026-10-03T08:00:00Z", "2026-10-03T08:00:00Z"),
    ]
    assert rows(out["components"]) == [
        ("Button", 2, "2026-10-01T11:00:00Z", "2026-10-02T09:00:00Z"),
        ("Modal", 1, "2026-10-03T08:00:00Z", "2026-10-03T08:00:00Z"),
        ("deploy", 1, "2026-10-04T08:00:00Z", "2026-10-04T08:00:00Z"),
    ]
    assert [
        (v["value"], v["service_version"], v["count"], v["first_seen"]) for v in out["services"]["values"]
    ] == [
        ("web", "1.0", 2, "2026-10-01T10:00:00Z"),
        ("web", "1.1", 2, "2026-10-02T09:00:00Z"),
        ("cli", "2.0", 1, "2026-10-04T08:00:00Z"),
    ]
    assert [(v["value"], v["count"]) for v in out["platforms"]["values"]] == [
        ("web", 2),
        ("cli", 1),
        ("mobile", 1),
    ]
    assert [(v["value"], v["count"]) for v in out["frameworks"]["values"]] == [("react", 2)]
    assert rows(out["property_keys"]) == [
        ("ab", 2, "2026-10-01T10:00:00Z", "2026-10-01T11:00:00Z"),
        ("message", 1, "2026-10-03T08:00:00Z", "2026-10-03T08:00:00Z"),
        ("path", 1, "2026-10-01T10:00:00Z", "2026-10-01T10:00:00Z"),
    ]
    distinct = {k: (out[k]["distinct"], out[k]["truncated"]) for k in LISTS}
    assert distinct == {
        "event_types": (4, False), "names": (3, False), "components": (3, False), "services": (3, False),
        "platforms": (3, False), "frameworks": (1, False), "property_keys": (3, False),
    }  # fmt: skip
    assert out["truncated"] is False
    assert out["summary"] == (
        "5 events from 2026-10-01T10:00:00Z to 2026-10-04T08:00:00Z. 4 event types: component_load (2), "
        "command_executed (1), error (1), page_view (1). 3 components: Button (2), Modal (1), deploy (1). "
        "3 names; 3 property keys: ab (2), message (1), path (1). Releases: web 1.0, web 1.1, cli 2.0."
    )


async def test_limit_cuts_every_list_and_says_so(app: App, client: Client) -> None:
    load(app, EVENTS)
    out = await call(client, limit=1)
    assert [(k, [v["value"] for v in out[k]["values"]], out[k]["truncated"]) for k in LISTS] == [
        ("event_types", ["component_load"], True),
        ("names", ["deploy"], True),
        ("components", ["Button"], True),
        ("services", ["web"], True),
        ("platforms", ["web"], True),
        ("frameworks", ["react"], False),
        ("property_keys", ["ab"], True),
    ]  # fmt: skip
    assert out["truncated"] is True


async def test_a_range_limits_counts_and_an_until_alone_bounds_only_the_end(app: App, client: Client) -> None:
    load(app, EVENTS)
    out = await call(client, since="2026-10-02", until="2026-10-04")
    assert (out["since"], out["until"], out["total_events"]) == (
        "2026-10-02T00:00:00Z",
        "2026-10-04T00:00:00Z",
        2,
    )
    assert [(v["value"], v["count"]) for v in out["event_types"]["values"]] == [
        ("component_load", 1),
        ("error", 1),
    ]
    assert [(v["value"], v["count"]) for v in out["property_keys"]["values"]] == [("message", 1)]
    out = await call(client, until="2026-10-02")
    assert (out["since"], out["until"], out["total_events"]) == (None, "2026-10-02T00:00:00Z", 2)
    assert [(v["value"], v["count"]) for v in out["components"]["values"]] == [("Button", 1)]


async def test_an_empty_store_says_how_to_add_events(client: Client) -> None:
    out = await call(client)
    assert (out["total_events"], out["first_event"], out["event_types"]["values"]) == (0, None, [])
    assert out["summary"] == "No events stored yet; submit some with ingest_events or `telemetry-mcp import`."


async def test_bad_ranges_and_limits_are_refused_and_the_server_keeps_answering(
    app: App, client: Client
) -> None:
    load(app, EVENTS)
    assert "is not understood" in await error_of(client, since="yesterday'; DROP TABLE events; --")
    assert "empty range" in await error_of(client, since="2026-10-04", until="2026-10-01")
    assert "too long" in await error_of(client, since="1990-01-01", until="2026-10-01")
    assert "1000" in await error_of(client, limit=1001)
    assert (await call(client))["total_events"] == 5
