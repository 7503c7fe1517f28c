"""analyze_performance (SPEC tool 3)."""

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from telemetry_mcp.analytics import performance
from telemetry_mcp.analytics.common import DEFAULT_LIMIT, Filters, Limit, Since, Timezone, Until
from telemetry_mcp.server.app import App, tool

BuiltinMetric = Literal["load_time", "fps", "frame_time", "render_time", "memory", "api_latency"]


def register(mcp: MCPServer[Any], app: App) -> None:
    @tool(
        mcp,
        title="Analyze performance",
        description=(
            "Exact p50/p95/p99, count, avg, min, max and error rate of a metric per group, worst p95 "
            "first. load_time = duration_ms of component_load, api_latency = duration_ms of api_call, "
            "others = value of performance events of that name; for fps lower is worse. compare gives "
            "regressions per group (two service versions, or the range vs the one before): regressed "
            "when p95 worsens by more than threshold (a fraction); change_pct is a percentage "
            "(38.0 = +38 %)."
        ),
        view="performance",
    )
    def analyze_performance(
        metric: Annotated[
            BuiltinMetric | str,
            Field(description="a built-in metric or any performance event name"),
        ] = "load_time",
        component: Annotated[str | None, Field(description="only this component (must exist)")] = None,
        group_by: Annotated[
            performance.GroupBy,
            Field(description="app_version is an alias of service_version"),
        ] = "component",
        since: Since = None,
        until: Until = None,
        timezone: Timezone = "UTC",
        filters: Filters = None,
        compare: Annotated[
            performance.Compare | None,
            Field(
                description='{"baseline_version": "2.2.0", "candidate_version": "2.3.0"} or {"previous_period": true}'
            ),
        ] = None,
        threshold: Annotated[
            float,
            Field(ge=0, le=10, description="p95 worsening (a fraction) that counts as a regression"),
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
