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
            "What is happening right now (wall clock, UTC): active_users and active_sessions (an "
            "event within the session timeout, 30 min by default; users are hashed user_ids, "
            "anonymous events count per session), events in the last 1/5/15 minutes, and for the "
            "chosen window events_per_second, error_rate (severity error/critical) and "
            "top_event_types. Also ingest counters since the server started (received, accepted, "
            "rejected, duplicates, dropped = do-not-track + sampled out), storage (total_events = "
            "every stored event, oldest/newest event, database_bytes) and health (status, "
            "uptime_seconds, version, duckdb_version)."
        ),
    )
    def get_realtime_stats(
        window: Annotated[
            str,
            Field(description="window for rate, error rate and top event types: 30s, 5m, 15m, 1h … (≤ 7d)"),
        ] = "5m",
        limit: Limit = DEFAULT_LIMIT,
    ) -> realtime.RealtimeResult:
        return realtime.run(app.store, window=window, limit=limit)


DEMO_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("get_realtime_stats", {}),
    ("get_realtime_stats", {"window": "1h", "limit": 5}),
]
