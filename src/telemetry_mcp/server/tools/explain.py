"""explain_change (SPEC tool 8)."""

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from telemetry_mcp.analytics import explain
from telemetry_mcp.analytics.anomalies import Stat
from telemetry_mcp.analytics.common import DEFAULT_LIMIT, Filter, Limit
from telemetry_mcp.server.app import App, tool


def register(mcp: MCPServer[Any], app: App) -> None:
    @tool(
        mcp,
        title="Explain a change",
        description=(
            "Root cause of a metric's change between two sides ({since, until?} or {version}): dimension "
            "values and combinations ranked by explanatory power (share of the change), with JS surprise "
            "and before/after values. root_cause marks the cause set. Metrics as detect_anomalies."
        ),
    )
    def explain_change(
        baseline: Annotated[
            explain.Side, Field(description='{"since": "14d", "until": "7d"} or {"version": "2.2.0"}')
        ],
        candidate: Annotated[explain.Side, Field(description='{"since": "7d"} or {"version": "2.3.0"}')],
        metric: Annotated[
            str,
            Field(max_length=200, description="events, errors, error_rate, users or a performance metric"),
        ] = "events",
        stat: Annotated[Stat, Field(description="for a performance metric")] = "p95",
        dimensions: Annotated[
            list[str] | None,
            Field(
                max_length=11,
                description="fields to search; default component, service_version, platform, "
                "framework, os, event_type, name",
            ),
        ] = None,
        max_depth: Annotated[int, Field(ge=1, le=3, description="dimensions per cause")] = 2,
        filters: Annotated[
            list[Filter] | None, Field(max_length=50, description="[{field, op, value}]")
        ] = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> explain.ExplainResult:
        query = explain.ExplainQuery(
            metric=metric,
            stat=stat,
            baseline=baseline,
            candidate=candidate,
            dimensions=dimensions,
            max_depth=max_depth,
            filters=filters,
            limit=limit,
        )
        return explain.run(app.store, query)


DEMO_CALLS: list[tuple[str, dict[str, Any]]] = [
    (
        "explain_change",
        {
            "metric": "load_time",
            "baseline": {"version": "2.2.0"},
            "candidate": {"version": "2.3.0"},
            "limit": 5,
        },
    ),
]
