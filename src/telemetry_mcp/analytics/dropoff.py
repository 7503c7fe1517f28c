"""Drop-off (SPEC 4.4): per funnel step, who stopped there and what they did next instead.

Actors are the funnel's (same attempts, same best attempt). An actor "stopped at step k" when its
counted attempt reached step k but not k+1. What it did next is its first event after the last step
event of that attempt (ts, seq order) still inside the conversion window; actors with no such event
are counted apart (`no_next_event`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from telemetry_mcp.analytics.behavior import BehaviorQuery
from telemetry_mcp.analytics.common import Params, clip, pct, rate
from telemetry_mcp.analytics.funnel import (
    FunnelSpec,
    FunnelStep,
    attempts_sql,
    describe,
    funnel_sql,
    order_key,
    prepare,
)
from telemetry_mcp.analytics.funnel import build_steps as funnel_steps
from telemetry_mcp.store import Store


class NextEvent(BaseModel):
    """An event (type and name) that actors who stopped at a step did next."""

    event_type: str
    name: str | None
    users: int = Field(description="actors whose next event this was")
    share: float = Field(description="users / actors who stopped at the step (0-1)")


class DropoffStep(BaseModel):
    """Actors who reached this step but not the next one, and what they did next instead."""

    index: int = Field(description="0-based index of the step they stopped at")
    label: str
    next_label: str = Field(description="the step they did not reach")
    stopped: int = Field(description="actors whose furthest step was this one")
    no_next_event: int = Field(description="of those, actors with no event at all after it within the window")
    next_events: list[NextEvent] = Field(description="most frequent next events, most users first")
    truncated: bool = Field(description="true when more next events exist than `limit`")


class DropoffResult(BaseModel):
    """analyze_user_behavior(analysis=dropoff)."""

    steps: list[FunnelStep] = Field(description="one row per funnel step, step 0 first")
    overall_conversion: float = Field(description="users at the last step / users at step 0 (0-1)")
    dropoff: list[DropoffStep] = Field(description="one row per step except the last")
    summary: str
    truncated: bool = Field(description="true when any step's next_events was cut to `limit`")


def dropoff_sql(spec: FunnelSpec, p: Params) -> str:
    """Per stop step k: counts of the next (event_type, name), the `limit`+1 largest, plus the no-next row."""
    head = attempts_sql(spec, p, with_base=True)
    win = f"{p.add(spec.window)}::INTERVAL"
    limit = p.add(spec.limit + 1)
    return f"""{head},
    stop AS (SELECT ah, reached - 1 AS k, t0, last_k FROM best WHERE reached < {spec.n}),
    pool AS (
        SELECT ah, {order_key("ts", "seq")} AS kk, ts, event_type, name FROM base
        WHERE ah IN (SELECT ah FROM stop)
    ),
    nxt AS (
        SELECT s.k, CASE WHEN e.ts <= s.t0 + {win} THEN e.event_type END AS et,
               CASE WHEN e.ts <= s.t0 + {win} THEN e.name END AS nm
        FROM stop s ASOF LEFT JOIN pool e ON s.ah = e.ah AND e.kk > s.last_k
    ),
    cnt AS (SELECT k, et, nm, count(*) AS users FROM nxt GROUP BY ALL)
    SELECT k, et, nm, users,
           row_number() OVER (PARTITION BY k, et IS NULL ORDER BY users DESC, et, nm NULLS FIRST) AS r
    FROM cnt
    QUALIFY et IS NULL OR r <= {limit}
    ORDER BY k, et IS NULL, r"""


def run(store: Store, query: BehaviorQuery) -> DropoffResult:
    """Compute the drop-off of the funnel described by `query` (analysis=dropoff; breakdown_by ignored)."""
    spec = prepare(store, query.model_copy(update={"breakdown_by": None}))
    p = Params()
    total = store.fetch_dicts(funnel_sql(spec, p), p.values)[0]
    steps = funnel_steps(total, spec.labels)
    p = Params()
    rows = store.fetch_dicts(dropoff_sql(spec, p), p.values)
    per_step: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        per_step.setdefault(int(r["k"]), []).append(r)
    out = []
    for k in range(spec.n - 1):
        stopped = steps[k].users - steps[k + 1].users
        found = per_step.get(k, [])
        named = [r for r in found if r["et"] is not None]
        out.append(
            DropoffStep(
                index=k,
                label=spec.labels[k],
                next_label=spec.labels[k + 1],
                stopped=stopped,
                no_next_event=sum(int(r["users"]) for r in found if r["et"] is None),
                next_events=[
                    NextEvent(
                        event_type=r["et"],
                        name=r["nm"],
                        users=int(r["users"]),
                        share=rate(r["users"], stopped),
                    )
                    for r in named[: spec.limit]
                ],
                truncated=len(named) > spec.limit,
            )
        )
    return DropoffResult(
        steps=steps,
        overall_conversion=rate(steps[-1].users, steps[0].users),
        dropoff=out,
        summary=clip(_summary(spec, steps, out)),
        truncated=any(d.truncated for d in out),
    )


def _summary(spec: FunnelSpec, steps: list[FunnelStep], rows: list[DropoffStep]) -> str:
    if not steps[0].users:
        return describe(spec, steps)
    worst = max(rows, key=lambda d: (d.stopped, -d.index))
    if not worst.stopped:
        return f"Nobody dropped off: all {spec.count(steps[0].users)} completed the {spec.n}-step funnel."
    text = (
        f"Most {spec.unit} stop at step {worst.index} '{worst.label}': {worst.stopped:,} "
        f"({pct(rate(worst.stopped, steps[worst.index].users))} of those who got there) never reached "
        f"'{worst.next_label}'."
    )
    if worst.next_events:
        top = worst.next_events[0]
        what = f"{top.event_type} {top.name}" if top.name else top.event_type
        text += f" Their most common next event: {what} ({top.users:,}, {pct(top.share)})."
    if worst.no_next_event:
        text += f" {worst.no_next_event:,} did nothing more within the window."
    return text + " " + describe(spec, steps)
