"""analyze_user_behavior analysis `milestones` (SPEC tool 9): time to value.

Per actor, from its first start_event inside [since, until): milestone 0 is its first matching
event after the start (in (ts, seq) order: equal timestamps count, as in funnels, and one event is
never two milestones; the start event is none of them), milestone k the first matching event after
milestone k−1. Milestones are looked for up to `until` (plus conversion_window, when one is given,
and then each must be within it of the start).

Per milestone: actors, share (of the actors with a start), median/p75/p90 seconds from the start
(interpolated, as quantile_cont), median seconds from the previous milestone (or the start), the
share of its actors who got there from the previous one within `target`, and a histogram of the
time from the start in PostHog's time-to-convert bins: ceil(∛n) bins (at most 60) of equal,
whole-second width from the smallest time.

efficiency_score (0–1): the mean over the milestones of the share of starters who reached it with
every target up to it met (a milestone without a target counts as met). 1 = everyone reached every
milestone in time; reach and speed both count.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from telemetry_mcp.analytics.behavior import BehaviorQuery, MilestoneSpec, StepSpec
from telemetry_mcp.analytics.common import (
    Params,
    TimeRange,
    clip,
    compile_filters,
    field_sql,
    parse_duration,
    parse_range,
    pct,
    r4,
    rate,
)
from telemetry_mcp.errors import InvalidArgument
from telemetry_mcp.store import Store

MAX_MILESTONES = 10
MAX_BINS = 60


class Bin(BaseModel):
    from_seconds: float
    actors: int


class Milestone(BaseModel):
    index: int
    label: str
    actors: int
    share: float = Field(description="actors / actors with a start (0-1)")
    median_seconds: float | None = Field(description="from the start")
    p75_seconds: float | None
    p90_seconds: float | None
    median_seconds_from_previous: float | None
    target_seconds: float | None
    within_target_share: float | None = Field(
        description="of its actors, reached within target; null: no target"
    )
    histogram: list[Bin]


class MilestoneBreakdown(BaseModel):
    value: str | None
    starters: int
    milestones: list[Milestone]
    efficiency_score: float


class MilestonesResult(BaseModel):
    starters: int = Field(description="actors with a start event in range")
    milestones: list[Milestone]
    efficiency_score: float = Field(description="0-1, defined in the README")
    breakdown: list[MilestoneBreakdown] | None = Field(
        description="per breakdown_by value of the start event"
    )
    truncated: bool
    summary: str


def _match(spec: StepSpec | MilestoneSpec, p: Params) -> str:
    parts = [f"event_type = {p.add(spec.event_type)}"]
    if spec.name is not None:
        parts.append(f"name = {p.add(spec.name)}")
    if spec.component is not None:
        parts.append(f"component = {p.add(spec.component)}")
    return f"coalesce({' AND '.join(parts)}{compile_filters(spec.filters, p)}, false)"


def _label(spec: MilestoneSpec) -> str:
    if spec.label:
        return spec.label
    if spec.name:
        return spec.name
    return f"{spec.event_type} {spec.component}" if spec.component else spec.event_type


def events_sql(
    q: BehaviorQuery, tr: TimeRange, start: StepSpec, ms: list[MilestoneSpec], end: datetime, p: Params
) -> str:
    """The start events and milestone events of every actor, in (actor, ts, seq) order."""
    since, until, stop = p.add(tr.since), p.add(tr.until), p.add(end)
    fs = compile_filters(q.filters, p)
    flags = ", ".join(f"{_match(m, p)} AS m{i}" for i, m in enumerate(ms))
    bd = f"({field_sql(q.breakdown_by, p)})::VARCHAR" if q.breakdown_by else "NULL::VARCHAR"
    return f"""
        WITH ev AS (
            SELECT actor AS ah, ts, seq, {_match(start, p)} AS s, {bd} AS bd, {flags}
            FROM events WHERE ts >= {since}::TIMESTAMP AND ts < {stop}::TIMESTAMP{fs}
        ),
        st AS (SELECT ah, arg_min(ts, (ts, seq)) AS t0, arg_min(seq, (ts, seq)) AS q0,
                      arg_min(bd, (ts, seq)) AS bd0
               FROM ev WHERE s AND ts < {until}::TIMESTAMP GROUP BY ah)
        SELECT st.ah, st.t0, st.bd0, ev.ts, ev.seq, {", ".join(f"ev.m{i}" for i in range(len(ms)))}
        FROM st LEFT JOIN ev ON ev.ah = st.ah AND (ev.ts > st.t0 OR (ev.ts = st.t0 AND ev.seq > st.q0))
                            AND ({" OR ".join(f"ev.m{i}" for i in range(len(ms)))})
        ORDER BY st.ah, ev.ts, ev.seq
    """


def _walk(
    rows: list[tuple[Any, ...]], n: int, window: timedelta | None
) -> dict[int, tuple[str | None, list[float | None]]]:
    """actor → (breakdown value, seconds from the start to each milestone, None when not reached)."""
    out: dict[int, tuple[str | None, list[float | None]]] = {}
    for ah, t0, bd, ts, _seq, *flags in rows:
        if ah not in out:
            out[ah] = (bd, [None] * n)
        times = out[ah][1]
        if ts is None:
            continue
        k = next((i for i, t in enumerate(times) if t is None), n)
        if k == n or not flags[k]:
            continue
        if window is not None and ts - t0 > window:
            continue
        times[k] = (ts - t0).total_seconds()
    return out


def _quantiles(xs: list[float]) -> list[float | None]:
    if not xs:
        return [None, None, None]
    return [r4(float(v)) for v in np.quantile(np.array(xs), [0.5, 0.75, 0.9])]


def histogram(xs: list[float]) -> list[Bin]:
    """PostHog's time-to-convert bins: ceil(∛n) (≤ 60) of equal whole-second width from the minimum."""
    if not xs:
        return []
    bins = min(MAX_BINS, max(1, math.ceil(len(xs) ** (1 / 3))))
    lo, hi = math.floor(min(xs)), max(xs)
    width = max(1, math.ceil((hi - lo) / bins))
    counts = [0] * bins
    for x in xs:
        counts[min(bins - 1, int((x - lo) // width))] += 1
    return [Bin(from_seconds=float(lo + i * width), actors=c) for i, c in enumerate(counts)]


def build(
    actors: list[list[float | None]], ms: list[MilestoneSpec], targets: list[float | None]
) -> tuple[list[Milestone], float]:
    starters = len(actors)
    out: list[Milestone] = []
    on_time = [0] * len(ms)
    for times in actors:
        ok = True
        prev = 0.0
        for k, t in enumerate(times):
            if t is None:
                break
            tgt = targets[k]
            ok = ok and (tgt is None or t - prev <= tgt)
            prev = t
            if ok:
                on_time[k] += 1
    for k, m in enumerate(ms):
        reached = [a for a in actors if a[k] is not None]
        from_start = [float(a[k]) for a in reached]  # type: ignore[arg-type]
        gaps = [float(a[k]) - (float(a[k - 1]) if k else 0.0) for a in reached]  # type: ignore[arg-type]
        med, p75, p90 = _quantiles(from_start)
        tgt = targets[k]
        out.append(
            Milestone(
                index=k,
                label=_label(m),
                actors=len(reached),
                share=rate(len(reached), starters),
                median_seconds=med,
                p75_seconds=p75,
                p90_seconds=p90,
                median_seconds_from_previous=_quantiles(gaps)[0],
                target_seconds=tgt,
                within_target_share=None if tgt is None else rate(sum(g <= tgt for g in gaps), len(reached)),
                histogram=histogram(from_start),
            )
        )
    score = r4(sum(on_time) / (starters * len(ms))) if starters and ms else 0.0
    return out, score or 0.0


def run(store: Store, query: BehaviorQuery) -> MilestonesResult:
    """Execute the milestones analysis."""
    if query.start_event is None:
        raise InvalidArgument('milestones needs start_event (an event_type, or {"event_type", ...})')
    start = (
        query.start_event
        if isinstance(query.start_event, StepSpec)
        else StepSpec.model_validate({"event_type": query.start_event})
    )
    ms = list(query.milestones or [])
    if not 1 <= len(ms) <= MAX_MILESTONES:
        raise InvalidArgument(f"milestones needs 1-{MAX_MILESTONES} milestones [{{event_type, target?}}]")
    targets = [parse_duration(m.target, "target").total_seconds() if m.target else None for m in ms]
    window = (
        parse_duration(query.conversion_window, "conversion_window")
        if "conversion_window" in query.model_fields_set
        else None
    )
    tr = parse_range(query.since, query.until, query.timezone)
    p = Params()
    rows = store.fetch(events_sql(query, tr, start, ms, tr.until + (window or timedelta(0)), p), p.values)
    walked = _walk(rows, len(ms), window)
    milestones, score = build([t for _, t in walked.values()], ms, targets)
    breakdown = None
    truncated = False
    if query.breakdown_by:
        groups: dict[str | None, list[list[float | None]]] = {}
        for bd, times in walked.values():
            groups.setdefault(bd, []).append(times)
        order = sorted(groups, key=lambda v: (-len(groups[v]), v is None, v or ""))
        truncated = len(order) > query.limit
        breakdown = []
        for v in order[: query.limit]:
            b_ms, b_score = build(groups[v], ms, targets)
            breakdown.append(
                MilestoneBreakdown(
                    value=v, starters=len(groups[v]), milestones=b_ms, efficiency_score=b_score
                )
            )
    result = MilestonesResult(
        starters=len(walked),
        milestones=milestones,
        efficiency_score=score,
        breakdown=breakdown,
        truncated=truncated,
        summary="",
    )
    result.summary = summarize(result, start)
    return result


def summarize(r: MilestonesResult, start: StepSpec) -> str:
    if not r.starters:
        return clip(f"No actor has a start event ({start.event_type}) in range; every milestone is 0.")
    parts = [
        f"{r.starters:,} actors started ({start.event_type}); efficiency score {r.efficiency_score:.2f}."
    ]
    for m in r.milestones[:4]:
        med = "n/a" if m.median_seconds is None else f"{m.median_seconds:,.0f} s"
        tgt = "" if m.within_target_share is None else f", {pct(m.within_target_share)} within target"
        parts.append(f"{m.label}: {m.actors:,} ({pct(m.share)}), median {med}{tgt}.")
    return clip(" ".join(parts))
