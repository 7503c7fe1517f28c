"""collect_metrics (SPEC tool 2)."""

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from telemetry_mcp.analytics import metrics
from telemetry_mcp.analytics.common import DEFAULT_LIMIT, Filter, Interval, Limit
from telemetry_mcp.server.app import App, tool

KnownMetric = Literal["duration_ms", "fps", "frame_time", "load_time", "render_time", "memory", "cpu"]


def register(mcp: MCPServer[Any], app: App) -> None:
    @tool(
        mcp,
        title="Collect usage metrics",
        description=(
            "Usage over time: per local calendar bucket (minute, hour, day, week starting Monday, month, "
            "or total) and optional group, the event count, distinct users, distinct sessions (explicit "
            "or derived by 30 min gaps), errors (severity error/critical) and sum/avg/min/max/p50/p95/p99 "
            "of a metric: duration_ms by default, or the value of performance events with the name given "
            "in `metric` (e.g. fps, memory). Ungrouped series include zero rows for empty buckets. Also "
            "returns a per-component table (loads, animation plays, errors, avg load ms, avg fps, users, "
            "last seen) for the same range, component and filters (event_types does not apply to it)."
        ),
    )
    def collect_metrics(
        component: Annotated[
            str | None, Field(description="only events of this component (must exist in the store)")
        ] = None,
        event_types: Annotated[
            list[str] | None,
            Field(max_length=100, description='only these event types, e.g. ["component_load"]'),
        ] = None,
        metric: Annotated[
            KnownMetric | str | None,
            Field(
                description="duration_ms (default), or a performance event name whose `value` is measured "
                "(fps, frame_time, render_time, memory, cpu, or any name present in the store)"
            ),
        ] = None,
        interval: Annotated[Interval, Field(description="bucket size; weeks start Monday")] = "day",
        group_by: Annotated[
            str | None,
            Field(
                description="split each bucket by an event column (component, event_type, name, platform, "
                "service_version, framework, os, page, severity, …) or properties.<key>"
            ),
        ] = None,
        since: Annotated[
            str | None,
            Field(description="range start: ISO date/datetime or relative (30m, 24h, 7d, 8w); default 7d"),
        ] = None,
        until: Annotated[str | None, Field(description="range end (exclusive); default now")] = None,
        timezone: Annotated[str, Field(description="IANA timezone of the calendar buckets")] = "UTC",
        filters: Annotated[
            list[Filter] | None, Field(description="conditions {field, op, value} that events must meet")
        ] = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> metrics.MetricsResult:
        query = metrics.MetricsQuery(
            component=component,
            event_types=event_types,
            metric=metric,
            interval=interval,
            group_by=group_by,
            since=since,
            until=until,
            timezone=timezone,
            filters=filters,
            limit=limit,
        )
        return metrics.run(app.store, query)


DEMO_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("collect_metrics", {"since": "8w", "interval": "week", "timezone": "Europe/Paris"}),
    ("collect_metrics", {"since": "8w", "interval": "day", "event_types": ["error"], "limit": 60}),
    ("collect_metrics", {"since": "4w", "interval": "week", "metric": "fps", "group_by": "platform"}),
    ("collect_metrics", {"since": "8w", "interval": "total", "component": "LoaderSpinner"}),
]
