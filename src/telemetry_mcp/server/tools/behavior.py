"""analyze_user_behavior (SPEC tool 4): funnels, drop-off, journeys, retention, engagement."""

import functools
import importlib
import operator
import typing
from typing import Annotated, Any, ClassVar

from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, create_model, model_serializer

from telemetry_mcp.analytics.behavior import (
    ANALYSES,
    Analysis,
    BehaviorQuery,
    Exclusion,
    FunnelBy,
    FunnelOrder,
    JourneyNode,
    MilestoneSpec,
    Period,
    RetentionType,
    StepSpec,
    run_behavior,
)
from telemetry_mcp.analytics.common import MAX_LIMIT, Filter
from telemetry_mcp.server.app import App, tool

# Fields every answer has; the others are the union of the analyses' result fields.
_COMMON = ("analysis", "summary", "truncated")


def result_models() -> dict[str, type[BaseModel]]:
    """analysis → the pydantic model its `run` returns (read from the annotation, so it never drifts)."""
    models: dict[str, type[BaseModel]] = {}
    for analysis, module_name in ANALYSES.items():
        module = importlib.import_module(f"telemetry_mcp.analytics.{module_name}")
        models[analysis] = typing.get_type_hints(module.run)["return"]
    return models


class _BehaviorBase(BaseModel):
    """Serializes only the chosen analysis's fields (the others would all be null)."""

    owned: ClassVar[dict[str, frozenset[str]]] = {}

    @model_serializer(mode="wrap")
    def _own_fields_only(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        # No return annotation on purpose: the output schema stays the model's own.
        data = handler(self)
        own = self.owned.get(getattr(self, "analysis", ""), frozenset())
        return {k: v for k, v in data.items() if k in _COMMON or k in own or v is not None}


def build_result_model(models: dict[str, type[BaseModel]]) -> type[BaseModel]:
    """One output model: analysis, summary, truncated, and every analysis's fields, all optional."""
    types: dict[str, list[Any]] = {}
    owners: dict[str, list[str]] = {}
    descriptions: dict[str, str] = {}
    for analysis, result_model in models.items():
        for name, info in result_model.model_fields.items():
            if name in _COMMON:
                continue
            if info.annotation not in types.setdefault(name, []):
                types[name].append(info.annotation)
            owners.setdefault(name, []).append(analysis)
            if info.description and name not in descriptions:
                descriptions[name] = info.description
    fields: dict[str, Any] = {
        "analysis": (Analysis, Field(description="the analysis that produced this answer")),
        "summary": (str, Field(description="the main finding with numbers, quotable (≤ 600 characters)")),
        "truncated": (bool, Field(description="true when a list was cut at `limit`")),
    }
    for name, anns in types.items():
        union = functools.reduce(operator.or_, anns)
        what = descriptions.get(name, "")
        fields[name] = (
            union | None,
            Field(None, description=f"[{', '.join(owners[name])}] {what}".strip()),
        )
    model: type[_BehaviorBase] = create_model(
        "BehaviorResult",
        __doc__="Answer of analyze_user_behavior: the fields of the chosen analysis (the others are left out).",
        __base__=_BehaviorBase,
        **fields,
    )
    model.owned = {a: frozenset(m.model_fields) for a, m in models.items()}
    return model


BehaviorResult = build_result_model(result_models())
# Defaults come from BehaviorQuery so the tool and the query model never disagree.
_D = BehaviorQuery.model_validate({"analysis": "funnel"})


DESCRIPTION = """\
User behaviour over events, one analysis per call (arguments of other analyses are ignored):
- funnel: `steps` (2-10, each {event_type, name?, component?, filters?, label?}) done in order within
  `conversion_window` of step 0. order: ordered (other events may come between), strict (the steps are
  consecutive events), unordered (any order). by: user or session. exclusions [{event, from_step, to_step}]
  (0-based) discard an attempt when the event happens between those steps. breakdown_by a field: each actor
  counts under the value on its step-0 event. → steps[{index, label, users, conversion_from_start,
  conversion_from_previous, dropoff, avg/median_seconds_to_convert}], overall_conversion, breakdown.
- dropoff: same `steps`; per step the actors who stopped there and the events they did next instead.
- journeys: paths through sessions by `node` (event_type|name|component|page), optional start_at/end_at,
  max_steps → paths, transitions, exits.
- retention: cohorts by `period` of `start_event` (first_time or recurring), return on `return_event`
  (default any), `periods`, `cumulative` → cohorts[{cohort_start, size, retained[], rates[]}], average_rates.
- engagement: per `period` DAU, WAU, MAU, stickiness, sessions per user, session length, events and
  interactions per session; stickiness histogram.
- milestones: time to value from each actor's first `start_event` (event_type or step object) through
  ordered `milestones` [{event_type, name?, component?, filters?, target?}] → per milestone actors, share,
  median/p75/p90 seconds, median from previous, within_target_share, histogram; efficiency_score.
Ranges are half-open [since, until), default the last 7 days; actors are hashed user ids (else sessions)."""


def register(mcp: MCPServer[Any], app: App) -> None:
    @tool(mcp, title="Analyze user behavior", description=DESCRIPTION)
    def analyze_user_behavior(
        analysis: Annotated[
            Analysis, Field(description="funnel, dropoff, journeys, retention, engagement or milestones")
        ],
        steps: Annotated[
            list[StepSpec] | None,
            Field(
                max_length=10,
                description="funnel/dropoff (required): 2-10 steps, each {event_type, name?, component?, "
                "filters?, label?}",
            ),
        ] = None,
        conversion_window: Annotated[
            str | None,
            Field(
                max_length=16,
                description="funnel/dropoff: max time from step 0 to any later step, inclusive "
                f"(number + s|m|h|d|w, e.g. 30m, 24h; default {_D.conversion_window}); milestones: none unless given",
            ),
        ] = None,
        order: Annotated[
            FunnelOrder,
            Field(
                description="funnel/dropoff: ordered (events may come between steps), strict (steps are "
                "consecutive events of the actor) or unordered (steps in any order)"
            ),
        ] = _D.order,
        by: Annotated[
            FunnelBy,
            Field(description="funnel/dropoff: count users, or sessions (the funnel must finish in one)"),
        ] = _D.by,
        exclusions: Annotated[
            list[Exclusion] | None,
            Field(
                max_length=10,
                description="funnel/dropoff: [{event: {event_type, ...}, from_step, to_step}] (0-based); an "
                "attempt with that event strictly between those steps (or after from_step until the window "
                "closes, if to_step is not reached) is discarded; unordered funnels: from 0 to the last step",
            ),
        ] = None,
        breakdown_by: Annotated[
            str | None,
            Field(
                max_length=140,
                description="funnel: an event field (platform, service_version, framework, …) or "
                "properties.<key>; actors count under the value on the step-0 event of their best attempt",
            ),
        ] = None,
        node: Annotated[
            JourneyNode, Field(description="journeys: the event field that names a node")
        ] = _D.node,
        start_at: Annotated[
            str | None,
            Field(max_length=200, description="journeys: paths start at the first event with this node"),
        ] = None,
        end_at: Annotated[
            str | None,
            Field(max_length=200, description="journeys: paths end at the first event with this node"),
        ] = None,
        max_steps: Annotated[
            int, Field(ge=2, le=20, description="journeys: nodes per path (2-20)")
        ] = _D.max_steps,
        period: Annotated[
            Period, Field(description="retention/engagement: calendar period (weeks start Monday)")
        ] = _D.period,
        retention_type: Annotated[
            RetentionType,
            Field(description="retention: first_time (cohort = first ever start event) or recurring (any)"),
        ] = _D.retention_type,
        start_event: Annotated[
            str | StepSpec | None,
            Field(description="retention: event_type that puts an actor in a cohort; milestones: the start"),
        ] = None,
        milestones: Annotated[
            list[MilestoneSpec] | None,
            Field(max_length=10, description="milestones: 1-10 [{event_type, name?, component?, target?}]"),
        ] = None,
        return_event: Annotated[
            str | None,
            Field(max_length=64, description="retention: event_type that counts as a return (any)"),
        ] = None,
        periods: Annotated[
            int,
            Field(
                ge=1, le=120, description="retention/engagement: number of periods when `since` is omitted"
            ),
        ] = _D.periods,
        cumulative: Annotated[
            bool, Field(description="retention: count a return in period n or any later one")
        ] = _D.cumulative,
        since: Annotated[
            str | None,
            Field(max_length=64, description="range start: ISO date/datetime or relative (30m, 24h, 7d, 8w)"),
        ] = None,
        until: Annotated[
            str | None, Field(max_length=64, description="range end, exclusive (default now)")
        ] = None,
        timezone: Annotated[
            str, Field(max_length=64, description="IANA timezone for calendar periods")
        ] = _D.timezone,
        filters: Annotated[
            list[Filter] | None,
            Field(max_length=50, description="[{field, op, value}] applied to every event considered"),
        ] = None,
        limit: Annotated[
            int, Field(ge=1, le=MAX_LIMIT, description=f"max rows per list (1..{MAX_LIMIT})")
        ] = _D.limit,
    ) -> BehaviorResult:  # type: ignore[valid-type]
        query = BehaviorQuery(
            analysis=analysis,
            steps=steps,
            **({"conversion_window": conversion_window} if conversion_window is not None else {}),
            order=order,
            by=by,
            exclusions=exclusions,
            breakdown_by=breakdown_by,
            node=node,
            start_at=start_at,
            end_at=end_at,
            max_steps=max_steps,
            period=period,
            retention_type=retention_type,
            start_event=start_event,
            milestones=milestones,
            return_event=return_event,
            periods=periods,
            cumulative=cumulative,
            since=since,
            until=until,
            timezone=timezone,
            filters=filters,
            limit=limit,
        )
        result = run_behavior(app.store, query)
        return BehaviorResult(analysis=analysis, **dict(result))


CHECKOUT_STEPS = [
    {
        "event_type": "page_view",
        "filters": [{"field": "page", "op": "eq", "value": "/checkout"}],
        "label": "checkout",
    },
    {"event_type": "user_interaction", "name": "add_payment"},
    {"event_type": "event_trigger", "name": "submit_order"},
    {"event_type": "feature_used", "name": "order_confirmed"},
]

DEMO_CALLS: list[tuple[str, dict[str, Any]]] = [
    (
        "analyze_user_behavior",
        {"analysis": "funnel", "steps": CHECKOUT_STEPS, "conversion_window": "1h", "since": "8w"},
    ),
    (
        "analyze_user_behavior",
        {
            "analysis": "funnel",
            "steps": CHECKOUT_STEPS,
            "since": "8w",
            "by": "session",
            "breakdown_by": "platform",
        },
    ),
    (
        "analyze_user_behavior",
        {
            "analysis": "dropoff",
            "steps": CHECKOUT_STEPS,
            "conversion_window": "1h",
            "since": "8w",
            "limit": 5,
        },
    ),
    ("analyze_user_behavior", {"analysis": "journeys", "node": "page", "since": "8w", "limit": 10}),
    ("analyze_user_behavior", {"analysis": "retention", "period": "week", "periods": 8}),
    ("analyze_user_behavior", {"analysis": "engagement", "period": "week", "since": "8w"}),
    (
        "analyze_user_behavior",
        {
            "analysis": "milestones",
            "start_event": "session_start",
            "milestones": [
                {"event_type": "page_view", "target": "1m"},
                {"event_type": "user_interaction", "target": "5m"},
                {"event_type": "feature_used", "target": "30m"},
            ],
            "since": "8w",
        },
    ),
]
