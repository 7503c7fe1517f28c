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
            "Start here: what the store holds. total_events, the time span, and the event_types, names, "
            "components, services (with versions), platforms, frameworks and property_keys (usable as "
            "properties.<key>) with event counts and first/last seen, most frequent first."
        ),
    )
    def describe_events(
        since: Annotated[
            str | None, Field(description="ISO date/datetime or relative; default all time")
        ] = None,
        until: Annotated[str | None, Field(description="exclusive end; default none")] = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> discovery.CatalogResult:
        return discovery.run(app.store, since=since, until=until, limit=limit)


DEMO_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("describe_events", {}),
    ("describe_events", {"since": "7d", "limit": 5}),
]
