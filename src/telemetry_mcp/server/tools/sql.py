"""run_sql: read-only SQL over the events table."""

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from telemetry_mcp.analytics import sql as sql_query
from telemetry_mcp.server.app import App, tool

EVENTS_COLUMNS = (
    "seq BIGINT (arrival order; events are ordered by ts, seq), event_id VARCHAR, "
    "ts TIMESTAMP (event time, UTC), received_at TIMESTAMP (UTC), event_type, name, component, "
    "user_id (keyed hash, 16 hex chars), session_id (explicit sessions only), "
    "actor UBIGINT (key of user_id, else session, else event), severity (debug/info/warning/error/"
    "critical), duration_ms DOUBLE, value DOUBLE, unit, service, service_version, platform, os, "
    "framework, page, properties JSON (e.g. properties->>'$.status'), redacted_paths VARCHAR[], "
    "session_key UBIGINT (explicit or derived session)"
)


def register(mcp: MCPServer[Any], app: App) -> None:
    max_rows = app.settings.sql_max_rows

    @tool(
        mcp,
        title="Read-only SQL over events",
        description=(
            "ONE read-only DuckDB SELECT (or WITH … SELECT, DESCRIBE events) over the table `events`, for "
            "what the other tools do not answer. Columns: " + EVENTS_COLUMNS + ". Nothing else can be "
            "read (no other tables, catalogs, files or network). Rows are lists (timestamps ISO 8601 UTC, "
            "floats to 4 decimals); page with LIMIT/OFFSET. Cancelled after "
            f"{app.settings.query_timeout_seconds:g} s."
        ),
    )
    def run_sql(
        sql: Annotated[
            str,
            Field(description="e.g. SELECT component, count(*) FROM events GROUP BY 1"),
        ],
        limit: Annotated[int, Field(ge=1, le=max_rows, description="max rows returned")] = min(100, max_rows),
    ) -> sql_query.SqlResult:
        return sql_query.run(app.store, sql, limit)


DEMO_CALLS: list[tuple[str, dict[str, Any]]] = [
    (
        "run_sql",
        {
            "sql": "SELECT service_version, count(*) AS events, count(DISTINCT actor) AS users "
            "FROM events GROUP BY ALL ORDER BY events DESC",
            "limit": 10,
        },
    ),
]
