"""analyze_user_behavior: the query model shared by its analyses, and the registry of analyses.

A new analysis is one module exposing `run(store, query) -> <pydantic result>` plus one line here.
"""

from __future__ import annotations

import importlib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from telemetry_mcp.analytics.common import DEFAULT_LIMIT, MAX_LIMIT, Filter
from telemetry_mcp.store import Store

# analysis name → module under telemetry_mcp.analytics (each has `run(store, query)`).
ANALYSES: dict[str, str] = {
    "funnel": "funnel",
    "dropoff": "dropoff",
    "retention": "retention",
    "journeys": "journeys",
    "engagement": "engagement",
    "milestones": "milestones",
}

Analysis = Literal["funnel", "journeys", "retention", "dropoff", "engagement", "milestones"]
FunnelOrder = Literal["ordered", "strict", "unordered"]
FunnelBy = Literal["user", "session"]
JourneyNode = Literal["event_type", "name", "component", "page"]
Period = Literal["day", "week", "month"]
RetentionType = Literal["first_time", "recurring"]


class StepSpec(BaseModel):
    """One funnel step: an event_type, optionally narrowed by name, component and filters."""

    model_config = ConfigDict(extra="forbid")

    event_type: str
    name: str | None = None
    component: str | None = None
    filters: list[Filter] | None = None
    label: str | None = None


class MilestoneSpec(StepSpec):
    """A milestone: an event (as a funnel step) with an optional target time from the previous one."""

    target: str | None = Field(None, max_length=16, description="target time from the previous one, e.g. 10m")


def _step_or_event_type(value: Any) -> Any:
    """A step, milestone or exclusion `event` written as a plain string means that event_type."""
    return {"event_type": value} if isinstance(value, str) else value


# A step given as "page_view" is {"event_type": "page_view"} (the schema stays the object's).
Step = Annotated[StepSpec, BeforeValidator(_step_or_event_type)]
Milestone = Annotated[MilestoneSpec, BeforeValidator(_step_or_event_type)]


class Exclusion(BaseModel):
    """An event that must not happen between two funnel steps (0-based step indexes)."""

    model_config = ConfigDict(extra="forbid")

    event: Annotated[StepSpec, BeforeValidator(_step_or_event_type)] = Field(
        description="an event_type string, or a step object"
    )
    from_step: int = Field(ge=0, le=9, description="0-based index of the step after which it is excluded")
    to_step: int = Field(ge=1, le=9, description="0-based index of the step before which it is excluded")


class BehaviorQuery(BaseModel):
    """All arguments of analyze_user_behavior, already parsed (since/until still as given)."""

    model_config = ConfigDict(extra="forbid")

    analysis: Analysis
    since: str | None = None
    until: str | None = None
    timezone: str = "UTC"
    filters: list[Filter] | None = None
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    # funnel / dropoff
    steps: list[Step] | None = None
    conversion_window: str = "14d"
    order: FunnelOrder = "ordered"
    by: FunnelBy = "user"
    exclusions: list[Exclusion] | None = None
    breakdown_by: str | None = None
    # journeys
    node: JourneyNode = "event_type"
    start_at: str | None = None
    end_at: str | None = None
    max_steps: int = Field(5, ge=2, le=20)
    # retention / engagement
    period: Period = "week"
    retention_type: RetentionType = "first_time"
    start_event: str | StepSpec | None = None
    # milestones
    milestones: list[Milestone] | None = None
    return_event: str | None = None
    periods: int = Field(8, ge=1, le=120)
    cumulative: bool = False


def run_behavior(store: Store, query: BehaviorQuery) -> BaseModel:
    """Dispatch through the registry (no if-chain)."""
    module = importlib.import_module(f"telemetry_mcp.analytics.{ANALYSES[query.analysis]}")
    result: Any = module.run(store, query)
    return result  # type: ignore[no-any-return]
