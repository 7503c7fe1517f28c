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
    Milestone,
    Period,
    RetentionType,
    Step,
    StepSpec,
    run_behavior,
)
from telemetry_mcp.analytics.common import Filters, Limit, Since, Timezone, Until
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
User behaviour, one analysis per call (other analyses' arguments are ignored); actors are hashed user
ids, else sessions. funnel: 2-10 `steps` within `conversion_window` of step 0 → steps[{index, label,
users, conversion_from_start, conversion_from_previous, dropoff, avg/median_seconds_to_convert}],
overall_conversion, breakdown. dropoff: the same steps; per step who stopped and what they did next.
journeys: session paths by `node` → paths, transitions, exits. retention: cohorts of `start_event` by
`period`, returns on `return_event` → cohorts[{cohort_start, size, retained[], rates[]}],
average_rates. engagement: per period DAU, WAU, MAU, stickiness, sessions per user, session length,
events and interactions per session; stickiness histogram. A step, exclusion, start/return event or
journey anchor that matches nothing gives zeros and a `warnings` entry.
milestones: time from each actor's first `start_event` through ordered `milestones` [{event_type,
name?, component?, filters?, target?}] → per milestone actors, share, median/p75/p90 seconds,
median from previous, within_target_share, histogram; efficiency_score."""


def register(mcp: MCPServer[Any], app: App) -> None:
    @tool(mcp, title="Analyze user behavior", description=DESCRIPTION, view="behavior")
    def analyze_user_behavior(
        analysis: Annotated[
            Analysis, Field(description="funnel, dropoff, journeys, retention, engagement or milestones")
        ],
        steps: Annotated[
            list[Step] | None,
            Field(
                max_length=10,
                description="funnel/dropoff (required): 2-10 steps (a plain string is an event_type)",
            ),
        ] = None,
        conversion_window: Annotated[
            str | None,
            Field(
                max_length=16,
                description="funnel/dropoff: max time from step 0 (30m, 24h, 14d; at most 365d; default 14d); milestones: no window unless given",
            ),
        ] = None,
        order: Annotated[
            FunnelOrder,
            Field(description="funnel/dropoff; strict: the steps are consecutive events"),
        ] = _D.order,
        by: Annotated[
            FunnelBy,
            Field(description="funnel/dropoff: count users or sessions"),
        ] = _D.by,
        exclusions: Annotated[
            list[Exclusion] | None,
            Field(
                max_length=10,
                description="funnel/dropoff: an attempt with `event` (an event_type, or a step) between "
                "from_step and to_step (0-based) is discarded",
            ),
        ] = None,
        breakdown_by: Annotated[
            str | None,
            Field(
                max_length=140,
                description="funnel: an event field or properties.<key>, read on step 0",
            ),
        ] = None,
        node: Annotated[JourneyNode, Field(description="journeys: the field naming a node")] = _D.node,
        start_at: Annotated[
            str | None,
            Field(max_length=200, description="journeys: paths start at this node"),
        ] = None,
        end_at: Annotated[
            str | None,
            Field(max_length=200, description="journeys: paths end at this node"),
        ] = None,
        max_steps: Annotated[int, Field(ge=2, le=20, description="journeys: nodes per path")] = _D.max_steps,
        period: Annotated[Period, Field(description="retention/engagement; weeks start Monday")] = _D.period,
        retention_type: Annotated[
            RetentionType,
            Field(description="retention: cohort by the first ever start event, or any"),
        ] = _D.retention_type,
        start_event: Annotated[
            str | StepSpec | None,
            Field(
                description="retention: cohort event_type (default any); milestones: the start (or a step)"
            ),
        ] = None,
        milestones: Annotated[
            list[Milestone] | None,
            Field(max_length=10, description="milestones: 1-10 [{event_type, name?, component?, target?}]"),
        ] = None,
        return_event: Annotated[
            str | None,
            Field(max_length=64, description="retention: event_type (default any)"),
        ] = None,
        periods: Annotated[
            int,
            Field(ge=1, le=120, description="retention/engagement: periods when since is omitted"),
        ] = _D.periods,
        cumulative: Annotated[
            bool, Field(description="retention: a return counts for period n and every earlier one")
        ] = _D.cumulative,
        since: Since = None,
        until: Until = None,
        timezone: Timezone = _D.timezone,
        filters: Filters = None,
        limit: Limit = _D.limit,
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
