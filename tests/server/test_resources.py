"""MCP resources (event schema, catalog) and prompts (release health check, weekly report) via the client."""

import json

from mcp import Client
from mcp.types import TextContent, TextResourceContents

from helpers import load
from telemetry_mcp.events.model import CORE_TYPES
from telemetry_mcp.server.app import App, build_server


async def test_both_data_resources_are_listed_as_json_beside_the_app_views(app: App) -> None:
    async with Client(build_server(app)) as client:
        listed = await client.list_resources()
    assert sorted((str(r.uri), r.name, r.mime_type) for r in listed.resources) == [
        ("telemetry://catalog", "catalog", "application/json"),
        ("telemetry://schema/events", "event_schema", "application/json"),
        ("ui://telemetry-mcp/adoption", "view-adoption", "text/html;profile=mcp-app"),
        ("ui://telemetry-mcp/anomalies", "view-anomalies", "text/html;profile=mcp-app"),
        ("ui://telemetry-mcp/behavior", "view-behavior", "text/html;profile=mcp-app"),
        ("ui://telemetry-mcp/metrics", "view-metrics", "text/html;profile=mcp-app"),
        ("ui://telemetry-mcp/performance", "view-performance", "text/html;profile=mcp-app"),
    ]
    assert all(r.description for r in listed.resources)


async def test_the_schema_resource_holds_the_event_schema_types_and_severities(app: App) -> None:
    async with Client(build_server(app)) as client:
        result = await client.read_resource("telemetry://schema/events")
    content = result.contents[0]
    assert isinstance(content, TextResourceContents)
    assert content.mime_type == "application/json"
    doc = json.loads(content.text)
    assert doc["schema"]["required"] == ["event_type"]
    assert doc["schema"]["additionalProperties"] is False
    assert {"event_type", "timestamp", "component", "properties"} <= set(doc["schema"]["properties"])
    assert set(doc["core_types"]) == set(CORE_TYPES)
    core = doc["core_types"]
    assert (core["component_load"], core["animation_play"], core["crash"]) == ("info", "debug", "error")
    assert doc["severities"] == ["debug", "info", "warning", "error", "critical"]
    assert doc["error_severities"] == ["error", "critical"]


async def test_the_catalog_resource_is_the_describe_events_answer(app: App) -> None:
    load(app, [
        {"event_id": "c1", "timestamp": "2026-10-01", "event_type": "page_view", "component": "Button"},
        {"event_id": "c2", "timestamp": "2026-10-02", "event_type": "page_view", "component": "Modal"},
    ])  # fmt: skip
    async with Client(build_server(app)) as client:
        result = await client.read_resource("telemetry://catalog")
        tool = await client.call_tool("describe_events", {"limit": 100})
    content = result.contents[0]
    assert isinstance(content, TextResourceContents)
    catalog = json.loads(content.text)
    assert (catalog["total_events"], [v["value"] for v in catalog["components"]["values"]]) == (
        2,
        ["Button", "Modal"],
    )
    assert catalog == tool.structured_content


async def test_prompts_are_listed_with_their_arguments(app: App) -> None:
    async with Client(build_server(app)) as client:
        listed = await client.list_prompts()
    assert sorted((p.name, [(a.name, a.required) for a in p.arguments or []]) for p in listed.prompts) == [
        ("release_health_check", [("service_version", True), ("baseline_version", False)]),
        ("weekly_report", []),
    ]
    assert all(p.description for p in listed.prompts)


async def test_the_release_health_check_names_the_versions_and_the_tools_in_order(app: App) -> None:
    async with Client(build_server(app)) as client:
        with_baseline = await client.get_prompt(
            "release_health_check", {"service_version": "2.3.0", "baseline_version": "2.2.0"}
        )
        alone = await client.get_prompt("release_health_check", {"service_version": "2.3.0"})
    content = with_baseline.messages[0].content
    assert isinstance(content, TextContent)
    text = content.text
    assert text.startswith('Check the health of release "2.3.0" against the baseline release "2.2.0".')
    order = [text.index(t) for t in ("describe_events", "get_realtime_stats", "analyze_performance",
                                      "collect_metrics", "analyze_user_behavior")]  # fmt: skip
    assert order == sorted(order)
    alone_content = alone.messages[0].content
    assert isinstance(alone_content, TextContent)
    assert "the release of the same service that preceded it" in alone_content.text


async def test_the_weekly_report_walks_through_every_analysis(app: App) -> None:
    async with Client(build_server(app)) as client:
        result = await client.get_prompt("weekly_report")
    content = result.messages[0].content
    assert isinstance(content, TextContent)
    text = content.text
    tools = ("describe_events", "collect_metrics", '"engagement"', '"retention"', "analyze_feature_adoption",
             "analyze_performance", "get_realtime_stats")  # fmt: skip
    order = [text.index(t) for t in tools]
    assert order == sorted(order)
