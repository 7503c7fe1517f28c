"""Retention (analyze_user_behavior analysis="retention"): calendar cohorts and their return rates.

Cohort = actors whose start event falls in a local calendar period (their first ever start event for
first_time, any for recurring). retained[0] is the cohort size by definition (PostHog's convention);
retained[n] counts members with a return event in period cohort+n (in any period >= cohort+n when
cumulative). Periods are indexed arithmetically from the first bucket, so the SQL never joins a
calendar table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from telemetry_mcp.analytics.behavior import BehaviorQuery
from telemetry_mcp.analytics.common import (
    Params,
    TimeRange,
    clip,
    compile_filters,
    iso_local,
    iso_utc,
    local_buckets,
    local_ts,
    parse_range,
    pct,
    r4,
    range_where,
    rate,
    step_local,
    to_local,
    to_utc,
    truncate_local,
)
from telemetry_mcp.errors import InvalidArgument, did_you_mean
from telemetry_mcp.store import Store

MAX_COHORTS = 120  # a cohorts x periods matrix: 120 periods is already 7,260 cells


class Cohort(BaseModel):
    cohort_start: str = Field(
        description="start of the cohort's local calendar period (ISO 8601 with offset)"
    )
    size: int = Field(description="actors in the cohort (= retained[0])")
    retained: list[int] = Field(
        description="retained[n] = members with a return event in period n after the cohort's "
        "(cumulative: in period n or later); runs to the last period of the range"
    )
    rates: list[float] = Field(description="retained[n] / size (0 for an empty cohort)")


class RetentionResult(BaseModel):
    cohorts: list[Cohort] = Field(
        description="one per calendar period overlapping the range, oldest first, empty ones included"
    )
    average_rates: list[float] = Field(
        description="average_rates[n] = sum of retained[n] / sum of sizes, over the cohorts with a period n"
    )
    retention_period: Literal["day", "week", "month"]
    retention_type: Literal["first_time", "recurring"]
    retention_cumulative: bool
    retention_since: str = Field(description="range start actually used (UTC)")
    retention_until: str = Field(description="range end actually used (UTC, exclusive)")
    retention_users: int = Field(description="distinct actors in at least one cohort")
    summary: str
    warnings: list[str] = Field(default_factory=list, description="start/return events that match nothing")
    truncated: bool = Field(
        False, description="always false: every period of the range is shown (the range is capped instead)"
    )


# ---------------------------------------------------------------- ranges shared with engagement


def period_range(query: BehaviorQuery, max_periods: int, what: str) -> tuple[TimeRange, list[datetime]]:
    """The range and its local period starts; without `since`, the last `periods` periods up to `until`."""
    if query.since is None:
        # Only `until` matters here; the 1 s default keeps parse_range's own checks meaningful.
        end = parse_range(None, query.until, query.timezone, default_since="1s").until
        zone = TimeRange(end, end, query.timezone).zone
        # The period holding the last instant of the half-open range is the last period.
        last = truncate_local(to_local(end - timedelta(microseconds=1), zone), query.period)
        start = to_utc(step_local(last, query.period, -(query.periods - 1)), zone)
        if start.year < 1970:
            raise InvalidArgument("periods reach back before 1970-01-01; ask for fewer periods")
        tr = TimeRange(start, end, query.timezone)
    else:
        tr = parse_range(query.since, query.until, query.timezone)
    buckets = local_buckets(tr, query.period)
    if len(buckets) > max_periods:
        raise InvalidArgument(
            f"{what} over this range spans {len(buckets):,} {query.period}s; at most {max_periods}: "
            "use a coarser period (day < week < month) or a shorter range"
        )
    return tr, buckets


def period_index_sql(period: str, first: datetime, tr: TimeRange, p: Params, column: str = "ts") -> str:
    """SQL for the 0-based index of the local calendar period holding `column` (first = bucket 0)."""
    local = local_ts(tr, p, column)
    origin = f"{p.add(first)}::TIMESTAMP"
    if period == "month":
        return f"date_diff('month', {origin}, date_trunc('month', {local}))"
    days = f"date_diff('day', {origin}, date_trunc('day', {local}))"
    return days if period == "day" else f"({days} // 7)"


def known_event_types(store: Store) -> list[str]:
    return [r[0] for r in store.fetch("SELECT DISTINCT event_type FROM events")]


def unseen_event_types(store: Store, **named: str | None) -> list[str]:
    """Warnings for event types the store has never seen (with a did-you-mean).

    As a funnel step, an unseen start or return event is an answer (empty cohorts), not an error.
    """
    wanted = {k: v for k, v in named.items() if v is not None}
    if not wanted:
        return []
    known = set(known_event_types(store))
    return [
        f'{where} event_type "{value}" matches no stored event' + did_you_mean(value, sorted(known))
        for where, value in wanted.items()
        if value not in known
    ]


# ---------------------------------------------------------------- SQL


@dataclass(frozen=True)
class RetentionSQL:
    sql: str
    params: list[object]


def build_sql(query: BehaviorQuery, tr: TimeRange, first: datetime) -> RetentionSQL:
    """One statement returning ('size', cohort, 0, size), ('hit', cohort, n, count) and ('users', ...)."""
    p = Params()
    period = query.period
    start_cond = f" AND event_type = {p.add(query.start_event)}" if query.start_event else ""
    return_cond = f" AND event_type = {p.add(query.return_event)}" if query.return_event else ""
    if query.retention_type == "first_time":
        since, until = p.add(tr.since), p.add(tr.until)
        # First ever start event, before the range too: an actor who started earlier is in no cohort.
        members = f"""
            SELECT a, {period_index_sql(period, first, tr, p, "first_ts")} AS c FROM (
                SELECT actor AS a, min(ts) AS first_ts FROM events
                WHERE ts < {until}::TIMESTAMP{start_cond}{compile_filters(query.filters, p)}
                GROUP BY 1
            ) WHERE first_ts >= {since}::TIMESTAMP"""
    else:
        members = f"""
            SELECT DISTINCT actor AS a, {period_index_sql(period, first, tr, p)} AS c FROM events
            WHERE {range_where(tr, p)}{start_cond}{compile_filters(query.filters, p)}"""
    returns = f"""
        SELECT DISTINCT actor AS a, {period_index_sql(period, first, tr, p)} AS r FROM events
        WHERE {range_where(tr, p)}{return_cond}{compile_filters(query.filters, p)}"""
    if query.cumulative:
        # Each member counts for every n up to its last return period: keep the max, expand later.
        hits = """
            SELECT c, n, count(*) AS k FROM (
                SELECT m.a, m.c, max(r.r) - m.c AS n FROM members m JOIN returns r ON r.a = m.a AND r.r > m.c
                GROUP BY m.a, m.c
            ) GROUP BY c, n"""
    else:
        hits = """
            SELECT m.c, r.r - m.c AS n, count(*) AS k
            FROM members m JOIN returns r ON r.a = m.a AND r.r > m.c GROUP BY ALL"""
    sql = f"""
        WITH members AS MATERIALIZED ({members}),
        returns AS ({returns})
        SELECT 'size' AS kind, c, 0 AS n, count(*) AS k FROM members GROUP BY c
        UNION ALL SELECT 'hit', c, n, k FROM ({hits})
        UNION ALL SELECT 'users', 0, 0, count(DISTINCT a) FROM members"""
    return RetentionSQL(sql, p.values)


# ---------------------------------------------------------------- run


def run(store: Store, query: BehaviorQuery) -> RetentionResult:
    """Compute the cohort table for `query` (analysis="retention")."""
    if query.start_event is not None and not isinstance(query.start_event, str):
        raise InvalidArgument(
            "retention: start_event is an event_type string (a step object is for milestones)"
        )
    tr, buckets = period_range(query, MAX_COHORTS, "retention")
    warnings = unseen_event_types(store, start_event=query.start_event, return_event=query.return_event)
    built = build_sql(query, tr, buckets[0])
    rows = store.fetch(built.sql, built.params)

    n_periods = len(buckets)
    sizes = [0] * n_periods
    hits = [[0] * n_periods for _ in range(n_periods)]  # hits[cohort][n]
    users = 0
    for kind, c, n, k in rows:
        if kind == "users":
            users = int(k)
        elif 0 <= c < n_periods:
            if kind == "size":
                sizes[c] = int(k)
            elif n < n_periods - c:
                hits[c][n] = int(k)
    cohorts: list[Cohort] = []
    for c, start in enumerate(buckets):
        length = n_periods - c
        retained = [sizes[c]] + [0] * (length - 1)
        if query.cumulative:
            running = 0
            for n in range(length - 1, 0, -1):  # members whose last return is >= n
                running += hits[c][n]
                retained[n] = running
        else:
            for n in range(1, length):
                retained[n] = hits[c][n]
        cohorts.append(
            Cohort(
                cohort_start=iso_local(start, tr.zone),
                size=sizes[c],
                retained=retained,
                rates=[rate(x, sizes[c]) for x in retained],
            )
        )
    average = []
    for n in range(n_periods):
        den = sum(ch.size for ch in cohorts[: n_periods - n])
        average.append(rate(sum(ch.retained[n] for ch in cohorts[: n_periods - n]), den))
    return RetentionResult(
        cohorts=cohorts,
        average_rates=average,
        retention_period=query.period,
        retention_type=query.retention_type,
        retention_cumulative=query.cumulative,
        retention_since=iso_utc(tr.since) or "",
        retention_until=iso_utc(tr.until) or "",
        retention_users=users,
        summary="".join(f"Warning: {w}. " for w in warnings) + summarize(query, cohorts, average, users),
        warnings=warnings,
        truncated=False,
    )


def summarize(query: BehaviorQuery, cohorts: list[Cohort], average: list[float], users: int) -> str:
    unit = query.period
    label = unit.capitalize()
    total = sum(c.size for c in cohorts)
    who = (
        f"{users:,} users"
        if query.retention_type == "first_time"
        else f"{users:,} users, {total:,} memberships"
    )
    scope = f"{len(cohorts)} cohorts, {who}"
    if total == 0:
        start = f'"{query.start_event}" ' if query.start_event else ""
        what = (
            f"No actor's first {start}event falls in the range"
            if query.retention_type == "first_time"
            else f"No actor has a {start}event in the range"
        )
        return clip(f"{what} ({len(cohorts)} empty {unit} cohorts).")
    if len(average) < 2:
        return clip(
            f"Only one {unit} in the range: {total:,} users in the cohort, no later {unit} to return in."
        )
    mode = " (cumulative)" if query.cumulative else ""
    text = f"{label}-1 retention{mode} averages {pct(r4(average[1]))}"
    if len(average) > 2:
        text += f"; by {unit} {len(average) - 1}: {pct(r4(average[-1]))}"
    text += f" ({scope})."
    ranked = [c for c in cohorts if c.size > 0 and len(c.rates) > 1]
    if len(ranked) > 1:
        best = max(ranked, key=lambda c: (c.rates[1], c.size))
        worst = min(ranked, key=lambda c: (c.rates[1], -c.size))
        text += (
            f" Best {unit}-1: cohort {best.cohort_start[:10]} at {pct(best.rates[1])} of {best.size:,};"
            f" worst: {worst.cohort_start[:10]} at {pct(worst.rates[1])} of {worst.size:,}."
        )
    empty = sum(1 for c in cohorts if c.size == 0)
    if empty:
        text += f" {empty} empty cohort{'s' if empty > 1 else ''}."
    return clip(text)
