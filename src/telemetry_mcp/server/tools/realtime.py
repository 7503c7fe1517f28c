"""get_realtime_stats (SPEC tool 5)."""

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from telemetry_mcp.analytics import realtime
from telemetry_mcp.analytics.common import DEFAULT_LIMIT, Limit
from telemetry_mcp.server.app import App, tool


def register(mcp: MCPServer[Any], app: App) -> None:
    @tool(
        mcp,
        title="Real-time stats and health",
        description=(
            "What is happening now (UTC): active users and sessions (an event within the session "
            "timeout), events in the last 1/5/15 minutes, and in the window events_per_second, "
            "error_rate and top_event_types; ingest counters since start (dropped = do-not-track + "
            "sampled out), storage (total_events, oldest/newest event, database_bytes), health."
        ),
    )
    def get_realtime_stats(
        window: Annotated[
            str,
            Field(description="30s, 5m, 1h … (at most 7d)"),
        ] = "5m",
        limit: Limit = DEFAULT_LIMIT,
    ) -> realtime.RealtimeResult:
        return realtime.run(app.store, window=window, limit=limit)


DEMO_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("get_realtime_stats", {}),
    ("get_realtime_stats", {"window": "1h", "limit": 5}),
]
