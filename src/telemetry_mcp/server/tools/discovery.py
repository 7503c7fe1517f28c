"""describe_events: the discovery tool (what event types, components, names, keys exist)."""

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from telemetry_mcp.analytics import discovery
from telemetry_mcp.analytics.common import DEFAULT_LIMIT, Limit
from telemetry_mcp.server.app import App, tool


def register(mcp: MCPServer[Any], app: App) -> None:
    @tool(
        mcp,
        title="Describe stored events",
        description=(
            "Start here: what the store holds, so you know which values to ask the other tools about. "
            "Returns total_events and the time span, and for event_types, names, components, services "
            "(service + service_version pairs), platforms, frameworks and property_keys (top-level keys of "
            "properties, usable as filter fields properties.<key>) the values with their event count and "
            "first/last seen, most frequent first; each list is cut at limit (truncated, distinct). "
            "Default: all time."
        ),
    )
    def describe_events(
        since: Annotated[
            str | None, Field(description="ISO date/datetime or relative (24h, 7d, 8w); default: all time")
        ] = None,
        until: Annotated[str | None, Field(description="end (exclusive); default: no bound")] = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> discovery.CatalogResult:
        return discovery.run(app.store, since=since, until=until, limit=limit)


DEMO_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("describe_events", {}),
    ("describe_events", {"since": "7d", "limit": 5}),
]
