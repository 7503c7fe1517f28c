"""MCP resources (event schema, catalog) and prompts (release health check, weekly report)."""

import json
from typing import Any

from mcp.server.mcpserver import MCPServer

from telemetry_mcp.analytics import discovery
from telemetry_mcp.events.model import (
    DEFAULT_SEVERITY,
    ERROR_SEVERITIES,
    METRIC_NAMES,
    SEVERITIES,
    event_json_schema,
)
from telemetry_mcp.server.app import App

SCHEMA_URI = "telemetry://schema/events"
CATALOG_URI = "telemetry://catalog"
CATALOG_LIMIT = 100


def schema_document() -> dict[str, Any]:
    """The event JSON schema plus the vocabulary that goes with it."""
    return {
        "schema": event_json_schema(),
        "core_types": DEFAULT_SEVERITY,
        "severities": list(SEVERITIES),
        "error_severities": list(ERROR_SEVERITIES),
        "metric_names": list(METRIC_NAMES),
        "notes": (
            "core_types maps each core event_type to its default severity; custom event types are allowed "
            "(^[a-z][a-z0-9_]{0,63}$, default severity info). Unknown top-level fields are rejected: put "
            "custom data in properties. user_id is stored as a keyed hash."
        ),
    }


def release_health_check_text(service_version: str, baseline_version: str | None = None) -> str:
    baseline = (
        f'the baseline release "{baseline_version}"'
        if baseline_version
        else "the baseline: the release of the same service that preceded it (pick it from describe_events' "
        "services list by first_seen)"
    )
    return f"""Check the health of release "{service_version}" against {baseline}.
Call the tools in this order:

1. describe_events (since "30d"): confirm "{service_version}" appears in services[].service_version and note
   its service and first_seen (the rollout start). Stop and say so if it is absent.
2. get_realtime_stats: current error_rate, events_per_second and storage.newest_event (is data still
   arriving?).
3. analyze_performance with metric "load_time", group_by "service_version" and compare set to the two
   releases; repeat for "api_latency" and "fps" (for fps lower is worse). Collect every regressions[] row with
   regressed true (p95 worse by more than 10 %).
4. collect_metrics with interval "day", group_by "service_version", filters on the two releases, since the
   baseline's first_seen: compare error_count / count per release and unique_users (adoption of the release).
5. analyze_user_behavior analysis "funnel" (or "dropoff") on the product's main flow, with breakdown_by
   "service_version": did conversion drop in "{service_version}"?
6. If something regressed, narrow it down with component filters (which component?) and platform/framework.

Answer with a verdict first (healthy / watch / roll back), then a table of metrics (baseline vs candidate,
change %), the error-rate change, funnel changes, and quote each tool's summary as evidence. Say which data
was thin (few events or users) rather than guessing."""


WEEKLY_REPORT_TEXT = """Write the weekly product-telemetry report for the last 7 days.
Call the tools in this order:

1. describe_events (since "7d"): what is being tracked, total events, active services and releases.
2. collect_metrics with interval "day" since "14d": events, unique_users and error_count per day; compare
   this week with the week before.
3. analyze_user_behavior analysis "engagement", period "week": DAU/WAU/MAU, stickiness, sessions per user,
   session length.
4. analyze_user_behavior analysis "retention", period "week", since "8w": how new cohorts retain.
5. analyze_feature_adoption (defaults: components, weekly, last 8 weeks): climbing and fading features,
   deprecation candidates.
6. analyze_performance with metric "load_time", group_by "component", compare with the previous period;
   then "api_latency". List regressions.
7. get_realtime_stats: current health, ingest counters (rejections, drops) and storage size.

Format: a 3-line executive summary first (the most notable change with numbers), then sections Usage,
Engagement & retention, Feature adoption, Performance, Data health. Quote tool summaries as evidence and
give every figure with its period. Flag anything unusual (spikes, drops, rising error rates)."""


def register(mcp: MCPServer[Any], app: App) -> None:
    @mcp.resource(
        SCHEMA_URI,
        name="event_schema",
        title="Telemetry event schema",
        description="JSON Schema of one telemetry event, the core event types with default severities, "
        "severities and metric names.",
        mime_type="application/json",
    )
    def event_schema() -> str:
        return json.dumps(schema_document(), indent=2)

    @mcp.resource(
        CATALOG_URI,
        name="catalog",
        title="Event catalog",
        description=f"What the store holds (all time): event types, names, components, service releases, "
        f"platforms, frameworks and property keys with counts and first/last seen (top {CATALOG_LIMIT} each) "
        "— the describe_events answer.",
        mime_type="application/json",
    )
    def catalog() -> str:
        return discovery.run(app.store, limit=CATALOG_LIMIT).model_dump_json(indent=2)

    @mcp.prompt(
        name="release_health_check",
        title="Release health check",
        description="Check a release for performance regressions, error-rate changes and funnel drops "
        "against a baseline release.",
    )
    def release_health_check(service_version: str, baseline_version: str | None = None) -> str:
        return release_health_check_text(service_version, baseline_version)

    @mcp.prompt(
        name="weekly_report",
        title="Weekly report",
        description="Write the weekly usage, engagement, adoption, performance and data-health report.",
    )
    def weekly_report() -> str:
        return WEEKLY_REPORT_TEXT


DEMO_CALLS: list[tuple[str, dict[str, Any]]] = []
