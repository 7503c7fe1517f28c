"""analyze_feature_adoption (SPEC tool 6): who uses each feature, per period, and where it is heading.

A feature is a value of component, name or event_type. Users are actors (the hashed user_id; events
without one count for their session), the same everywhere in the product. Adoption rate = feature
users / active users (actors with any event matching the filters) over the same span: the whole range,
or one period of the series.

Trend: the least-squares slope of the per-period adoption rate over the *complete* periods (those
lying entirely inside [since, until)), divided by their mean rate. `trend_change_pct` is that
normalized slope in percent per period: 12.0 means the rate grows by 12 % of its mean each period.
The normalized slope (a fraction) at or above +0.05 the trend is "up", at or below -0.05 "down", otherwise "stable"; with fewer than 3
complete periods it is "insufficient_data" (and trend_change_pct null). A complete period without any
active user has no rate and is left out of the fit. A partial first or last period still appears in the
series (its counts cover only the part inside the range) but never steers the trend.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from telemetry_mcp.analytics.common import (
    DEFAULT_LIMIT,
    FIELD_COLUMNS,
    MAX_LIMIT,
    Filter,
    Params,
    Period,
    TimeRange,
    bucket_sql,
    check_known,
    clip,
    compile_filters,
    iso_local,
    iso_utc,
    local_buckets,
    parse_range,
    pct,
    r4,
    range_where,
    rate,
    step_local,
    to_utc,
)
from telemetry_mcp.store import Store

FeatureBy = Literal["component", "name", "event_type"]
Trend = Literal["up", "down", "stable", "insufficient_data"]
TREND_THRESHOLD = 0.05
DEPRECATION_RATE = 0.05
MIN_COMPLETE_PERIODS = 3


class AdoptionQuery(BaseModel):
    """All arguments of analyze_feature_adoption (since/until still as given)."""

    model_config = ConfigDict(extra="forbid")

    feature_by: FeatureBy = "component"
    features: list[str] | None = Field(None, max_length=MAX_LIMIT)
    period: Period = "week"
    since: str | None = "8w"
    until: str | None = None
    timezone: str = "UTC"
    filters: list[Filter] | None = None
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)


class SeriesPoint(BaseModel):
    period_start: str = Field(description="local period start with its UTC offset")
    users: int = Field(description="feature users in the period")
    adoption_rate: float = Field(description="feature users / active users in the period")


class FeatureAdoption(BaseModel):
    feature: str
    events: int
    users: int = Field(description="distinct actors who used the feature in the range")
    adoption_rate: float = Field(description="users / active users in the range")
    first_seen: str | None = Field(description="first use inside the range (UTC)")
    last_seen: str | None = Field(description="last use inside the range (UTC)")
    series: list[SeriesPoint]
    trend: Trend
    trend_change_pct: float | None = Field(
        description="slope of the per-period adoption rate over complete periods / its mean, in percent per "
        "period (10.0 = +10 % of the mean rate each period); null when insufficient_data"
    )
    deprecation_candidate: bool = Field(description="adoption_rate < 0.05 and trend down")


class PeriodInfo(BaseModel):
    period_start: str
    active_users: int
    complete: bool = Field(
        description="the period lies entirely inside [since, until); only these drive trends"
    )


class AdoptionResult(BaseModel):
    feature_by: FeatureBy
    period: Period
    since: str
    until: str
    timezone: str
    active_users: int = Field(description="distinct actors with any event (matching filters) in the range")
    periods: list[PeriodInfo]
    features: list[FeatureAdoption] = Field(description="by users, most first")
    truncated: bool
    summary: str


def normalized_slope(points: list[tuple[int, float]]) -> tuple[Trend, float | None]:
    """Least-squares slope of (period index, rate) points divided by the mean rate, and its label."""
    n = len(points)
    if n < MIN_COMPLETE_PERIODS:
        return "insufficient_data", None
    x_mean = sum(x for x, _ in points) / n
    mean = sum(r for _, r in points) / n
    if mean == 0:
        return "stable", 0.0
    slope = sum((x - x_mean) * (r - mean) for x, r in points) / sum((x - x_mean) ** 2 for x, _ in points)
    change = r4(slope / mean) or 0.0
    if change >= TREND_THRESHOLD:
        return "up", change
    if change <= -TREND_THRESHOLD:
        return "down", change
    return "stable", change


def adoption_sql(q: AdoptionQuery, tr: TimeRange, p: Params) -> str:
    """Users and events per (feature, period), per feature, per period and overall.

    One scan groups the events by (feature, period, actor); everything else aggregates that much
    smaller set (a (feature, period) group's users are its row count). Only the top `limit` features
    by users come back with their per-period rows. Row kinds: feature, feature_period, period, total.
    """
    column = FIELD_COLUMNS[q.feature_by]  # allow-listed by the Literal
    bucket = bucket_sql(q.period, tr, p)
    where = range_where(tr, p) + compile_filters(q.filters, p)
    only = f" AND list_contains({p.add(sorted(set(q.features)))}::VARCHAR[], f)" if q.features else ""
    return f"""
        WITH fpa AS MATERIALIZED (
            SELECT {column} AS f, {bucket} AS p, actor AS a, count(*) AS n,
                   min(ts) AS first_seen, max(ts) AS last_seen
            FROM events WHERE {where} GROUP BY ALL
        ), totals AS (
            SELECT f, sum(n) AS events, count(DISTINCT a) AS users, min(first_seen) AS first_seen,
                   max(last_seen) AS last_seen,
                   row_number() OVER (ORDER BY count(DISTINCT a) DESC, sum(n) DESC, f) AS rk,
                   count(*) OVER () AS n_features
            FROM fpa WHERE f IS NOT NULL{only} GROUP BY f
        ), kept AS (
            SELECT * FROM totals WHERE rk <= {p.add(q.limit)}
        )
        SELECT 'feature' AS kind, f, NULL::TIMESTAMP AS p, events, users, first_seen, last_seen, rk, n_features
        FROM kept
        UNION ALL
        SELECT 'feature_period', f, p, sum(n), count(*), NULL, NULL, NULL, NULL
        FROM fpa SEMI JOIN kept USING (f) GROUP BY f, p
        UNION ALL
        SELECT 'period', NULL, p, NULL, count(DISTINCT a), NULL, NULL, NULL, NULL FROM fpa GROUP BY p
        UNION ALL
        SELECT 'total', NULL, NULL, NULL, count(DISTINCT a), NULL, NULL, NULL, NULL FROM fpa"""


def known_features_sql(feature_by: str) -> str:
    column = FIELD_COLUMNS[feature_by]
    return f"SELECT DISTINCT {column} FROM events WHERE {column} IS NOT NULL"


def run(store: Store, q: AdoptionQuery) -> AdoptionResult:
    """Run the adoption analysis."""
    tr = parse_range(q.since, q.until, q.timezone, default_since="8w")
    buckets = local_buckets(tr, q.period)
    if q.features:
        known = [r[0] for r in store.fetch(known_features_sql(q.feature_by))]
        check_known(q.feature_by, q.features, known)
    p = Params()
    rows = store.fetch(adoption_sql(q, tr, p), p.values)

    total_active = 0
    active_by_period: dict[datetime, int] = {}
    totals: dict[str, tuple[int, int, datetime, datetime, int]] = {}
    feature_period: dict[tuple[str, datetime], int] = {}
    n_features = 0
    for kind, f, period_start, events, users, first, last, rk, n in rows:
        if kind == "total":
            total_active = int(users)
        elif kind == "period":
            active_by_period[period_start] = int(users)
        elif kind == "feature":
            totals[f] = (int(events), int(users), first, last, int(rk))
            n_features = int(n)
        else:
            feature_period[(f, period_start)] = int(users)

    zone = tr.zone
    complete = [
        to_utc(b, zone) >= tr.since and to_utc(step_local(b, q.period), zone) <= tr.until for b in buckets
    ]
    periods = [
        PeriodInfo(period_start=iso_local(b, zone), active_users=active_by_period.get(b, 0), complete=c)
        for b, c in zip(buckets, complete, strict=True)
    ]

    def feature_row(name: str, events: int, users: int, first: Any, last: Any) -> FeatureAdoption:
        series: list[SeriesPoint] = []
        points: list[tuple[int, float]] = []
        for i, (b, c) in enumerate(zip(buckets, complete, strict=True)):
            fu, au = feature_period.get((name, b), 0), active_by_period.get(b, 0)
            series.append(SeriesPoint(period_start=iso_local(b, zone), users=fu, adoption_rate=rate(fu, au)))
            if c and au:  # a period without any active user has no rate to fit
                points.append((i, fu / au))
        trend, change = normalized_slope(points)
        adoption = rate(users, total_active)
        return FeatureAdoption(
            feature=name,
            events=events,
            users=users,
            adoption_rate=adoption,
            first_seen=iso_utc(first),
            last_seen=iso_utc(last),
            series=series,
            trend=trend,
            trend_change_pct=None if change is None else r4(change * 100),
            deprecation_candidate=adoption < DEPRECATION_RATE and trend == "down",
        )

    ordered = sorted(totals.items(), key=lambda kv: kv[1][4])
    features = [feature_row(f, ev, us, fs, ls) for f, (ev, us, fs, ls, _) in ordered]
    # Requested features with no use in the range still get a (zero) row.
    missing = sorted(set(q.features or []) - set(totals))
    features += [feature_row(f, 0, 0, None, None) for f in missing]
    n_total = n_features + len(missing)
    result = AdoptionResult(
        feature_by=q.feature_by,
        period=q.period,
        since=iso_utc(tr.since) or "",
        until=iso_utc(tr.until) or "",
        timezone=tr.tz,
        active_users=total_active,
        periods=periods,
        features=features[: q.limit],
        truncated=n_total > q.limit,
        summary="",
    )
    result.summary = summarize(result, n_total)
    return result


def summarize(r: AdoptionResult, n_total: int) -> str:
    n_complete = sum(1 for x in r.periods if x.complete)
    if not r.features:
        return clip(
            f"No {r.feature_by} values found among {r.active_users:,} active users between {r.since} and "
            f"{r.until}."
        )
    parts: list[str] = []
    rising = [f for f in r.features if f.trend == "up"]
    fading = [f for f in r.features if f.trend == "down"]
    per = r.period
    if rising:
        top = max(rising, key=lambda f: f.trend_change_pct or 0.0)
        parts.append(
            f"Fastest climbing: {top.feature} ({_signed(top.trend_change_pct)} of its mean rate per {per}, "
            f"adoption {pct(top.adoption_rate)})."
        )
    if fading:
        low = min(fading, key=lambda f: f.trend_change_pct or 0.0)
        flag = ", deprecation candidate" if low.deprecation_candidate else ""
        parts.append(
            f"Fastest fading: {low.feature} ({_signed(low.trend_change_pct)} per {per}, "
            f"adoption {pct(low.adoption_rate)}{flag})."
        )
    if not rising and not fading:
        if n_complete < MIN_COMPLETE_PERIODS:
            parts.append(f"Only {n_complete} complete {per}s in the range: too few for trends (need 3).")
        else:
            parts.append(f"No feature is climbing or fading over {n_complete} complete {per}s.")
    lead = r.features[0]
    parts.append(
        f"Most used: {lead.feature}, {lead.users:,} of {r.active_users:,} active users "
        f"({pct(lead.adoption_rate)})."
    )
    candidates = [f.feature for f in r.features if f.deprecation_candidate]
    if candidates:
        parts.append(f"Deprecation candidates: {', '.join(candidates[:5])}.")
    shown = f"{len(r.features)} of {n_total}" if r.truncated else f"{n_total}"
    parts.append(f"{shown} {r.feature_by} values, {r.since} to {r.until}.")
    return clip(" ".join(parts))


def _signed(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.1f} %"
