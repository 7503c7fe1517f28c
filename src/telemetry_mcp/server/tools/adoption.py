"""analyze_feature_adoption (SPEC tool 6)."""

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from telemetry_mcp.analytics import adoption
from telemetry_mcp.analytics.common import DEFAULT_LIMIT, MAX_LIMIT, Filter, Limit, Period
from telemetry_mcp.server.app import App, tool


def register(mcp: MCPServer[Any], app: App) -> None:
    @tool(
        mcp,
        title="Feature adoption and trends",
        description=(
            "Adoption of each feature (a component, name or event_type value): events, users, adoption_rate "
            "= feature users / active users in the range, first/last seen, and a per-period series "
            "(users, adoption_rate = feature users / active users of that period). Users are actors: hashed "
            "user_id, else the session. trend: least-squares slope of the per-period rate over complete "
            "periods (entirely inside [since, until)) divided by the mean rate — trend_change_pct, a "
            "fraction per period; >= +0.05 up, <= -0.05 down, else stable; < 3 complete periods: "
            "insufficient_data. deprecation_candidate = adoption_rate < 0.05 and trend down. Features by "
            "users, most first. Default: weekly over the last 8 weeks."
        ),
    )
    def analyze_feature_adoption(
        feature_by: Annotated[
            adoption.FeatureBy,
            Field(description="which column names a feature: component, name or event_type"),
        ] = "component",
        features: Annotated[
            list[str] | None,
            Field(
                max_length=MAX_LIMIT,
                description="only these features (default: all); unknown ones are refused",
            ),
        ] = None,
        period: Annotated[Period, Field(description="series period: day, week (Monday) or month")] = "week",
        since: Annotated[
            str | None, Field(description="ISO date/datetime or relative (30m, 24h, 7d, 8w); default 8w")
        ] = "8w",
        until: Annotated[str | None, Field(description="end (exclusive); default now")] = None,
        timezone: Annotated[str, Field(description="IANA timezone for period boundaries")] = "UTC",
        filters: Annotated[
            list[Filter] | None, Field(description="conditions every counted event must meet (users too)")
        ] = None,
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
