"""The MCP Apps side of the server, in process: tools link views, views are self-contained resources."""

import re

from mcp import Client
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID
from mcp.types import TextResourceContents

from helpers import load
from telemetry_mcp.server.app import App, build_server
from telemetry_mcp.views import VIEWS, library_version, static

LINKED = {
    "collect_metrics": "ui://telemetry-mcp/metrics",
    "analyze_performance": "ui://telemetry-mcp/performance",
    "analyze_user_behavior": "ui://telemetry-mcp/behavior",
    "analyze_feature_adoption": "ui://telemetry-mcp/adoption",
    "detect_anomalies": "ui://telemetry-mcp/anomalies",
}


async def test_each_analysis_tool_links_its_view_and_the_others_link_none(app: App) -> None:
    async with Client(build_server(app)) as client:
        tools = (await client.list_tools()).tools
    linked = {t.name: (t.meta or {}).get("ui", {}).get("resourceUri") for t in tools}
    assert {name: uri for name, uri in linked.items() if uri} == LINKED


async def test_every_linked_view_is_an_app_resource_with_the_chart_library_inlined_and_nothing_fetched(
    app: App,
) -> None:
    async with Client(build_server(app)) as client:
        for uri in LINKED.values():
            content = (await client.read_resource(uri)).contents[0]
            assert isinstance(content, TextResourceContents)
            assert content.mime_type == APP_MIME_TYPE
            html = content.text
            assert html.startswith("<!DOCTYPE html>")
            assert static("uPlot.iife.min.js")[:200].replace("</", "<\\/") in html
            assert "ui/initialize" in html and "ui/notifications/tool-result" in html
            # no outside resource: no src/href to any URL, no @import, no fetch
            assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), uri
            assert "@import" not in html and "fetch(" not in html


async def test_the_server_advertises_the_apps_extension(app: App) -> None:
    async with Client(build_server(app)) as client:
        capabilities = client.server_capabilities
    assert capabilities.extensions is not None and EXTENSION_ID in capabilities.extensions


async def test_a_linked_tool_still_answers_clients_without_apps_with_the_compact_text(app: App) -> None:
    load(app, [{"event_type": "page_view", "page": "/home", "user_id": "u1"}])
    async with Client(build_server(app)) as client:
        result = await client.call_tool("collect_metrics", {"interval": "total", "since": "1d"})
    assert not result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert text.splitlines()[0] == result.structured_content["summary"]  # type: ignore[index]
    assert '"series":[{' in text  # compact JSON, as before views existed


def test_the_bundled_chart_library_is_pinned_with_its_licence() -> None:
    assert library_version() == "uplot 1.6.32"
    assert "MIT License" in static("uPlot.LICENSE")
    assert set(VIEWS) == {"metrics", "performance", "behavior", "adoption", "anomalies"}
