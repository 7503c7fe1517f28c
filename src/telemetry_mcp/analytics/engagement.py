"""Engagement (analyze_user_behavior analysis="engagement"): DAU/WAU/MAU, stickiness, session depth.

Active = any event (after filters). Days are local calendar days in `timezone`. WAU and MAU are
PostHog's rolling counts: distinct actors active in the 7 / 30 local days ending with a given day
(the window may reach before `since`, so the first days are not deflated). They come from one pass
over actor-days: an active day d of an actor covers the days [d, min(d + w, next active day)), and
those disjoint intervals summed as +1/-1 deltas give every day's rolling count at once.
Sessions (explicit or derived from gaps) belong to the period of their first event.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from telemetry_mcp.analytics.behavior import BehaviorQuery
from telemetry_mcp.analytics.common import (
    MAX_LIMIT,
    Params,
    TimeRange,
    bucket_sql,
    clip,
    compile_filters,
    iso_local,
    iso_utc,
    local_buckets,
    local_ts,
    pct,
    r4,
    range_where,
    rate,
    sessionized,
    to_utc,
    truncate_local,
)
from telemetry_mcp.analytics.retention import period_range
from telemetry_mcp.store import Store

# What counts as an interaction with the product (not a load, render or background event).
INTERACTION_TYPES = ("user_interaction", "input_change", "event_trigger", "command_executed")
MAX_PERIODS = MAX_LIMIT


class EngagementRow(BaseModel):
    period_start: str = Field(description="start of the local calendar period (ISO 8601 with offset)")
    days: int = Field(description="local days of the period inside the range")
    active_users: int = Field(description="distinct actors with an event in the period (inside the range)")
    dau: float = Field(description="mean daily active actors over the period's days inside the range")
    wau: int = Field(
        description="actors active in the 7 local days ending with the period's last day in the range"
    )
    mau: int = Field(
        description="actors active in the 30 local days ending with the period's last day in the range"
    )
    stickiness: float = Field(description="dau / mau (0 when mau is 0)")
    sessions: int = Field(description="sessions that started in the period")
    sessions_per_user: float = Field(description="sessions / active_users")
    avg_session_seconds: float = Field(
        description="mean of (last event - first event) per session; 0 when none"
    )
    events_per_session: float
    interactions_per_session: float = Field(
        description="user_interaction, input_change, event_trigger and command_executed events per session"
    )


class StickinessBin(BaseModel):
    active_days: int = Field(description="distinct local days with activity inside the range")
    users: int
    share: float = Field(description="users / all active actors in the range")


class EngagementResult(BaseModel):
    engagement: list[EngagementRow] = Field(description="one row per calendar period overlapping the range")
    stickiness_histogram: list[StickinessBin] = Field(
        description="actors by number of active days, every count from 1 to the highest (zeros included)"
    )
    engagement_period: str
    engagement_active_users: int = Field(description="distinct actors active in the range")
    engagement_dau: float = Field(description="mean daily active actors over the days of the range")
    engagement_wau: float = Field(description="mean over the range's days of the rolling 7-day actives")
    engagement_mau: float = Field(description="mean over the range's days of the rolling 30-day actives")
    engagement_stickiness: float = Field(description="engagement_dau / engagement_mau")
    engagement_sessions: int
    engagement_sessions_per_user: float = Field(description="sessions / active actors over the range")
    engagement_avg_session_seconds: float
    engagement_events_per_session: float
    engagement_interactions_per_session: float
    engagement_since: str = Field(description="range start actually used (UTC)")
    engagement_until: str = Field(description="range end actually used (UTC, exclusive)")
    summary: str
    truncated: bool = Field(
        False, description="always false: every period is shown (the range is capped instead)"
    )


@dataclass(frozen=True)
class SQL:
    sql: str
    params: list[object]


def build_daily_sql(query: BehaviorQuery, tr: TimeRange, lookback: datetime) -> SQL:
    """Per local day: dau, and the +/- deltas of the rolling 7/30-day counts; plus the histogram."""
    p = Params()
    since = p.add(tr.since)
    where = f"ts >= {p.add(lookback)}::TIMESTAMP AND ts < {p.add(tr.until)}::TIMESTAMP"
    where += compile_filters(query.filters, p)
    sql = f"""
        WITH ad AS MATERIALIZED (
            SELECT actor AS a, date_trunc('day', {local_ts(tr, p)})::TIMESTAMP AS d,
                   bool_or(ts >= {since}::TIMESTAMP) AS in_range
            FROM events WHERE {where} GROUP BY 1, 2
        ),
        cov AS (SELECT d, in_range, lead(d) OVER (PARTITION BY a ORDER BY d) AS nd FROM ad),
        deltas AS (
            SELECT d AS day, in_range::INT AS dau, 1 AS w7, 1 AS w30 FROM cov
            UNION ALL SELECT least(d + INTERVAL 7 DAY, coalesce(nd, d + INTERVAL 7 DAY)), 0, -1, 0 FROM cov
            UNION ALL SELECT least(d + INTERVAL 30 DAY, coalesce(nd, d + INTERVAL 30 DAY)), 0, 0, -1 FROM cov
        )
        SELECT 'day' AS kind, day, sum(dau)::BIGINT, sum(w7)::BIGINT, sum(w30)::BIGINT
        FROM deltas GROUP BY day
        UNION ALL
        SELECT 'hist', NULL, k, count(*), 0 FROM (
            SELECT count(*) FILTER (WHERE in_range) AS k FROM ad GROUP BY a
        ) WHERE k > 0 GROUP BY k
    """
    return SQL(sql, p.values)


def build_period_sql(query: BehaviorQuery, tr: TimeRange, timeout_minutes: float) -> SQL:
    """Per local period: active actors, and sessions started there with their length and depth."""
    p = Params()
    source_where = range_where(tr, p) + compile_filters(query.filters, p)
    kinds = ", ".join(p.add(t) for t in INTERACTION_TYPES)
    sql = f"""
        WITH s AS (
            SELECT min(ts) AS t0, max(ts) AS t1, count(*) AS n,
                   count(*) FILTER (WHERE event_type IN ({kinds})) AS k
            FROM {sessionized(source_where, timeout_minutes, p)} GROUP BY actor, session_key
        ),
        per_session AS (
            SELECT {bucket_sql(query.period, tr, p, "t0")} AS b, count(*) AS sessions,
                   sum(epoch(t1) - epoch(t0)) AS secs, sum(n) AS events, sum(k) AS interactions
            FROM s GROUP BY 1
        ),
        per_actor AS (
            SELECT {bucket_sql(query.period, tr, p)} AS b, count(DISTINCT actor) AS users
            FROM events WHERE {source_where} GROUP BY 1
        )
        SELECT b::TIMESTAMP, coalesce(users, 0), coalesce(sessions, 0), coalesce(secs, 0),
               coalesce(events, 0), coalesce(interactions, 0)
        FROM per_actor FULL JOIN per_session USING (b)
    """
    return SQL(sql, p.values)


@dataclass
class PeriodStats:
    users: int = 0
    sessions: int = 0
    secs: float = 0.0
    events: int = 0
    interactions: int = 0


def run(store: Store, query: BehaviorQuery) -> EngagementResult:
    """Compute per-period engagement rows and the stickiness histogram (analysis="engagement")."""
    tr, periods = period_range(query, MAX_PERIODS, "engagement")
    zone = tr.zone
    days = local_buckets(tr, "day")
    lookback = to_utc(days[0] - timedelta(days=29), zone)

    daily_sql = build_daily_sql(query, tr, lookback)
    dau_by_day: dict[datetime, int] = {}
    d7: dict[datetime, int] = defaultdict(int)
    d30: dict[datetime, int] = defaultdict(int)
    hist: dict[int, int] = {}
    for kind, day, a, b, c in store.fetch(daily_sql.sql, daily_sql.params):
        if kind == "day":
            dau_by_day[day] = int(a)
            d7[day] += int(b)
            d30[day] += int(c)
        else:
            hist[int(a)] = int(b)
    # Rolling counts: cumulative sums of the deltas, day by day (days, not events: at most 3,690).
    wau: dict[datetime, int] = {}
    mau: dict[datetime, int] = {}
    run7 = run30 = 0
    cur = days[0] - timedelta(days=29)
    while cur <= days[-1]:
        run7 += d7.get(cur, 0)
        run30 += d30.get(cur, 0)
        wau[cur], mau[cur] = run7, run30
        cur += timedelta(days=1)

    period_sql = build_period_sql(query, tr, store.settings.session_timeout_minutes)
    stats: dict[datetime, PeriodStats] = {}
    for b, users, sessions, secs, events, interactions in store.fetch(period_sql.sql, period_sql.params):
        stats[b] = PeriodStats(int(users), int(sessions), float(secs), int(events), int(interactions))

    days_of: dict[datetime, list[datetime]] = defaultdict(list)
    for day in days:
        days_of[truncate_local(day, query.period)].append(day)
    rows: list[EngagementRow] = []
    for start in periods:
        own = days_of[start]
        st = stats.get(start, PeriodStats())
        dau = sum(dau_by_day.get(d, 0) for d in own) / len(own)
        last = own[-1]
        rows.append(
            EngagementRow(
                period_start=iso_local(start, zone),
                days=len(own),
                active_users=st.users,
                dau=r4(dau) or 0.0,
                wau=wau[last],
                mau=mau[last],
                stickiness=min(1.0, rate(dau, mau[last])),
                sessions=st.sessions,
                sessions_per_user=ratio(st.sessions, st.users),
                avg_session_seconds=ratio(st.secs, st.sessions),
                events_per_session=ratio(st.events, st.sessions),
                interactions_per_session=ratio(st.interactions, st.sessions),
            )
        )

    active = sum(hist.values())
    histogram = [
        StickinessBin(active_days=k, users=hist.get(k, 0), share=rate(hist.get(k, 0), active))
        for k in range(1, max(hist, default=0) + 1)
    ]
    total = PeriodStats(
        users=active,
        sessions=sum(s.sessions for s in stats.values()),
        secs=sum(s.secs for s in stats.values()),
        events=sum(s.events for s in stats.values()),
        interactions=sum(s.interactions for s in stats.values()),
    )
    mean_dau = sum(dau_by_day.get(d, 0) for d in days) / len(days)
    mean_wau = sum(wau[d] for d in days) / len(days)
    mean_mau = sum(mau[d] for d in days) / len(days)
    result = EngagementResult(
        engagement=rows,
        stickiness_histogram=histogram,
        engagement_period=query.period,
        engagement_active_users=active,
        engagement_dau=r4(mean_dau) or 0.0,
        engagement_wau=r4(mean_wau) or 0.0,
        engagement_mau=r4(mean_mau) or 0.0,
        engagement_stickiness=min(1.0, rate(mean_dau, mean_mau)),
        engagement_sessions=total.sessions,
        engagement_sessions_per_user=ratio(total.sessions, total.users),
        engagement_avg_session_seconds=ratio(total.secs, total.sessions),
        engagement_events_per_session=ratio(total.events, total.sessions),
        engagement_interactions_per_session=ratio(total.interactions, total.sessions),
        engagement_since=iso_utc(tr.since) or "",
        engagement_until=iso_utc(tr.until) or "",
        summary="",
        truncated=False,
    )
    result.summary = summarize(query, result, len(days))
    return result


def ratio(num: float, den: float) -> float:
    """A mean that is not a rate (may exceed 1), 0 when there is nothing to divide by."""
    return round(num / den, 4) if den else 0.0


def num(x: float) -> str:
    """Counts of people read as integers once large; small means keep a decimal."""
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def duration_text(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{seconds / 3600:.1f} h"


def summarize(query: BehaviorQuery, res: EngagementResult, n_days: int) -> str:
    if res.engagement_active_users == 0:
        n = len(res.engagement)
        return clip(
            f"No active actors in the range ({n} {query.period}{'s' if n != 1 else ''}, {n_days} days)."
        )
    text = (
        f"DAU {num(res.engagement_dau)} (mean), WAU {num(res.engagement_wau)}, "
        f"MAU {num(res.engagement_mau)}, "
        f"stickiness {pct(res.engagement_stickiness)}; {res.engagement_active_users:,} active users over "
        f"{n_days} days with {res.engagement_sessions_per_user:.2f} sessions each; sessions last "
        f"{duration_text(res.engagement_avg_session_seconds)} on average with "
        f"{res.engagement_events_per_session:.1f} events "
        f"({res.engagement_interactions_per_session:.1f} interactions)."
    )
    if res.stickiness_histogram:
        one = res.stickiness_histogram[0]
        text += f" {pct(one.share)} of them were active on one day only."
    rows = [r for r in res.engagement if r.days > 0]
    if len(rows) >= 2:
        first, last = rows[0], rows[-1]
        text += (
            f" DAU went from {first.dau:,.1f} ({first.period_start[:10]}) "
            f"to {last.dau:,.1f} ({last.period_start[:10]})."
        )
    return clip(text)
