"""analyze_feature_adoption (SPEC tool 6)."""

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from telemetry_mcp.analytics import adoption
from telemetry_mcp.analytics.common import DEFAULT_LIMIT, MAX_LIMIT, Filters, Limit, Period, Timezone, Until
from telemetry_mcp.server.app import App, tool


def register(mcp: MCPServer[Any], app: App) -> None:
    @tool(
        mcp,
        title="Feature adoption and trends",
        description=(
            "Adoption of each feature (a component, name or event_type value), most users first: events, "
            "users (actors), adoption_rate = feature users / active users, first/last seen, a per-period "
            "series. trend_change_pct = least-squares slope of the per-period rate over complete periods "
            "/ its mean, in percent per period: >= +5 up, <= -5 down, else stable; < 3 complete periods: "
            "insufficient_data. deprecation_candidate = adoption_rate < 0.05 and trend down."
        ),
        view="adoption",
    )
    def analyze_feature_adoption(
        feature_by: Annotated[
            adoption.FeatureBy,
            Field(description="the column that names a feature"),
        ] = "component",
        features: Annotated[
            list[str] | None,
            Field(
                max_length=MAX_LIMIT,
                description="only these features (default all)",
            ),
        ] = None,
        period: Annotated[Period, Field(description="weeks start Monday")] = "week",
        since: Annotated[str | None, Field(description="ISO date/datetime or relative (7d, 8w)")] = "8w",
        until: Until = None,
        timezone: Timezone = "UTC",
        filters: Filters = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> adoption.AdoptionResult:
        query = adoption.AdoptionQuery(
            feature_by=feature_by,
            features=features,
            period=period,
            since=since,
            until=until,
            timezone=timezone,
            filters=filters,
            limit=limit,
        )
        return adoption.run(app.store, query)


DEMO_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("analyze_feature_adoption", {"since": "8w"}),
    ("analyze_feature_adoption", {"feature_by": "name", "period": "month", "since": "26w", "limit": 10}),
]
