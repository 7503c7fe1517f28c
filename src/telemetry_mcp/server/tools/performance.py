"""analyze_performance (SPEC tool 3)."""

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from telemetry_mcp.analytics import performance
from telemetry_mcp.analytics.common import DEFAULT_LIMIT, Filter, Limit
from telemetry_mcp.server.app import App, tool

BuiltinMetric = Literal["load_time", "fps", "frame_time", "render_time", "memory", "api_latency"]


def register(mcp: MCPServer[Any], app: App) -> None:
    @tool(
        mcp,
        title="Analyze performance",
        description=(
            "Exact p50/p95/p99 (plus count, avg, min, max and error rate) of a performance metric per "
            "group, worst p95 first. Metrics: load_time (duration_ms of component_load), api_latency "
            "(duration_ms of api_call), fps, frame_time, render_time, memory, or any performance event "
            "name (its value). For fps lower is worse. With compare, finds regressions: "
            '{"baseline_version": "2.2.0", "candidate_version": "2.3.0"} compares two service versions '
            'per group; {"previous_period": true} compares the range with the one before it. A group '
            "regressed when p95 got worse by more than `threshold` (a fraction, default 0.10 = 10 %); "
            "change_pct is a fraction too (0.38 = +38 %)."
        ),
    )
    def analyze_performance(
        metric: Annotated[
            BuiltinMetric | str,
            Field(
                description="load_time, fps, frame_time, render_time, memory, api_latency, "
                "or the name of performance events in the store"
            ),
        ] = "load_time",
        component: Annotated[
            str | None, Field(description="only this component (must exist in the store)")
        ] = None,
        group_by: Annotated[
            performance.GroupBy,
            Field(
                description="split by component (default), service_version (alias app_version), platform, "
                "framework, or none"
            ),
        ] = "component",
        since: Annotated[
            str | None,
            Field(description="range start: ISO date/datetime or relative (30m, 24h, 7d, 8w); default 7d"),
        ] = None,
        until: Annotated[str | None, Field(description="range end (exclusive); default now")] = None,
        timezone: Annotated[str, Field(description="IANA timezone for dates without an offset")] = "UTC",
        filters: Annotated[
            list[Filter] | None, Field(description="conditions {field, op, value} that events must meet")
        ] = None,
        compare: Annotated[
            performance.Compare | None,
            Field(
                description='two versions {"baseline_version": "2.2.0", "candidate_version": "2.3.0"} '
                'or {"previous_period": true}'
            ),
        ] = None,
        threshold: Annotated[
            float,
            Field(
                ge=0, le=10, description="p95 worsening (fraction) beyond which a group counts as regressed"
            ),
        ] = performance.DEFAULT_THRESHOLD,
        limit: Limit = DEFAULT_LIMIT,
    ) -> performance.PerformanceResult:
        query = performance.PerformanceQuery(
            metric=metric,
            component=component,
            group_by=group_by,
            since=since,
            until=until,
            timezone=timezone,
            filters=filters,
            compare=compare,
            threshold=threshold,
            limit=limit,
        )
        return performance.run(app.store, query)


DEMO_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("analyze_performance", {"metric": "load_time", "since": "8w"}),
    (
        "analyze_performance",
        {
            "metric": "load_time",
            "since": "8w",
            "compare": {"baseline_version": "2.2.0", "candidate_version": "2.3.0"},
        },
    ),
    ("analyze_performance", {"metric": "fps", "group_by": "platform", "since": "8w"}),
    ("analyze_performance", {"metric": "api_latency", "since": "2w", "compare": {"previous_period": True}}),
]
