"""detect_anomalies (SPEC tool 7)."""

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from telemetry_mcp.analytics import anomalies
from telemetry_mcp.analytics.common import DEFAULT_LIMIT, Filter, Limit
from telemetry_mcp.server.app import App, tool


def register(mcp: MCPServer[Any], app: App) -> None:
    @tool(
        mcp,
        title="Detect anomalies",
        description=(
            "Finds anomalous buckets in a series (seasonal STL + robust residual test, like S-H-ESD): "
            "events, errors, error_rate, users, or a performance metric (load_time, api_latency, fps, "
            "… with stat). Per group, most severe first, each with observed/expected/band/score and how "
            "many buckets it lasted. Also new_errors (error names first seen in the range) and releases "
            "(a version's first days vs the previous version's). Use explain_change next for the cause."
        ),
        view="anomalies",
    )
    def detect_anomalies(
        metric: Annotated[
            str,
            Field(max_length=200, description="events, errors, error_rate, users or a performance metric"),
        ] = "events",
        stat: Annotated[anomalies.Stat, Field(description="for a performance metric")] = "p95",
        group_by: Annotated[
            str | None,
            Field(max_length=140, description="component, service_version, platform, framework, event_type…"),
        ] = None,
        interval: Annotated[anomalies.AnomalyInterval, Field(description="bucket size")] = "hour",
        since: Annotated[
            str | None, Field(max_length=64, description="ISO or relative (7d); default 7d")
        ] = None,
        until: Annotated[str | None, Field(max_length=64, description="exclusive; default now")] = None,
        timezone: Annotated[str, Field(max_length=64, description="IANA timezone of buckets")] = "UTC",
        filters: Annotated[
            list[Filter] | None, Field(max_length=50, description="[{field, op, value}]")
        ] = None,
        threshold: Annotated[
            float, Field(ge=2, le=20, description="min robust z (raised for long series)")
        ] = 3.5,
        limit: Limit = DEFAULT_LIMIT,
    ) -> anomalies.AnomalyResult:
        query = anomalies.AnomalyQuery(
            metric=metric,
            stat=stat,
            group_by=group_by,
            interval=interval,
            since=since,
            until=until,
            timezone=timezone,
            filters=filters,
            threshold=threshold,
            limit=limit,
        )
        return anomalies.run(app.store, query)


DEMO_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("detect_anomalies", {"metric": "errors", "interval": "day", "since": "5w"}),
    ("detect_anomalies", {"metric": "load_time", "group_by": "component", "interval": "day", "since": "8w"}),
]
