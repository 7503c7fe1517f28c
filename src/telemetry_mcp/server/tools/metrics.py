"""collect_metrics (SPEC tool 2)."""

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from telemetry_mcp.analytics import metrics
from telemetry_mcp.analytics.common import DEFAULT_LIMIT, Filters, Interval, Limit, Since, Timezone, Until
from telemetry_mcp.server.app import App, tool

KnownMetric = Literal["duration_ms", "fps", "frame_time", "load_time", "render_time", "memory", "cpu"]


def register(mcp: MCPServer[Any], app: App) -> None:
    @tool(
        mcp,
        title="Collect usage metrics",
        description=(
            "Usage over time: per local calendar bucket and group, events, distinct users and sessions "
            "(explicit or derived by 30 min gaps), errors (severity error/critical) and sum/avg/min/max/"
            "p50/p95/p99 of the metric (duration_ms, or the value of performance events of that name). "
            "Ungrouped series have zero rows for empty buckets. Plus a per-component table (loads, "
            "animation plays, errors, avg load ms, avg fps, users, last seen) for the same range, "
            "component and filters (not event_types). Pruned ranges come from rollups "
            "(approximate=true, percentiles ±1 %)."
        ),
        rest_hint="a coarser interval, a narrower since/until, fewer groups or a smaller limit",
        view="metrics",
    )
    def collect_metrics(
        component: Annotated[str | None, Field(description="only this component (must exist)")] = None,
        event_types: Annotated[
            list[str] | None,
            Field(max_length=100, description="only these event types"),
        ] = None,
        metric: Annotated[
            KnownMetric | str | None,
            Field(description="duration_ms (default), or any performance event name (its value)"),
        ] = None,
        interval: Annotated[Interval, Field(description="weeks start Monday")] = "day",
        group_by: Annotated[
            str | None,
            Field(
                description="an event column (component, event_type, name, platform, service_version, …) "
                "or properties.<key>"
            ),
        ] = None,
        since: Since = None,
        until: Until = None,
        timezone: Timezone = "UTC",
        filters: Filters = None,
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
