"""collect_metrics: usage and a metric's statistics per local calendar bucket, plus a per-component table.

The series counts events, distinct users (events without a user_id are not counted), distinct
sessions (explicit or derived, see `common.sessionized`) and errors per bucket and group, and gives
sum/avg/min/max/p50/p95/p99 of the metric: `duration_ms` by default, or the `value` of performance
events with a given name (the series then covers only those events). NULL metric values count in
`count` but not in the statistics.

Empty buckets: like PostHog trends, an ungrouped series has a zero row for every calendar bucket
overlapping the range (only the first `limit` are listed); a grouped series lists only the
(bucket, group) pairs that have events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from telemetry_mcp.analytics import metrics_rollup
from telemetry_mcp.analytics.anomalies import Anomaly, spike_sentence, worst, worst_errors_of
from telemetry_mcp.analytics.common import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Filter,
    Interval,
    Params,
    TimeRange,
    bucket_sql,
    check_known,
    clip,
    compile_filters,
    field_sql,
    iso_local,
    iso_utc,
    parse_range,
    pct,
    r4,
    range_where,
    rate,
    sessionized,
    step_local,
    to_local,
    to_utc,
    truncate_local,
)
from telemetry_mcp.analytics.performance import performance_unit
from telemetry_mcp.errors import InvalidArgument, unknown
from telemetry_mcp.events.model import CORE_TYPES, METRIC_NAMES
from telemetry_mcp.store import Store
from telemetry_mcp.store.rollups import Slot, raw_cutoff

DEFAULT_METRIC = "duration_ms"
ERRORS_SQL = "severity IN ('error', 'critical')"
QUANTILES = "[0.5, 0.95, 0.99]"


class MetricsQuery(BaseModel):
    """All arguments of collect_metrics (since/until still as given)."""

    model_config = ConfigDict(extra="forbid")

    component: str | None = None
    event_types: list[str] | None = None
    metric: str | None = None
    interval: Interval = "day"
    group_by: str | None = None
    since: str | None = None
    until: str | None = None
    timezone: str = "UTC"
    filters: list[Filter] | None = None
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)


class Totals(BaseModel):
    """The whole range at once (distinct counts are not sums of the buckets')."""

    count: int = Field(description="events (NULL metric values included)")
    unique_users: int = Field(description="distinct user_ids; events without one are not counted")
    unique_sessions: int = Field(description="distinct sessions, explicit or derived (30 min gaps)")
    error_count: int = Field(description="events with severity error or critical")
    values: int = Field(description="events with a non-NULL metric value (the statistics' sample)")
    sum: float | None
    avg: float | None
    min: float | None
    max: float | None
    p50: float | None
    p95: float | None
    p99: float | None


class SeriesPoint(BaseModel):
    bucket_start: str = Field(description="local calendar bucket start, ISO 8601 with the zone's offset")
    group: str | None = Field(description="value of group_by (null when ungrouped or the event lacks it)")
    count: int
    unique_users: int
    unique_sessions: int
    error_count: int
    sum: float | None
    avg: float | None
    min: float | None
    max: float | None
    p50: float | None
    p95: float | None
    p99: float | None


class ComponentRow(BaseModel):
    component: str
    events: int = Field(description="all events of the component in range")
    loads: int = Field(description="component_load events")
    plays: int = Field(description="animation_play events")
    errors: int = Field(description="events with severity error or critical")
    avg_load_ms: float | None = Field(description="mean duration_ms of component_load")
    avg_fps: float | None = Field(description="mean value of performance events named fps")
    unique_users: int
    last_seen: str = Field(description="latest event, ISO 8601 UTC")


class MetricsResult(BaseModel):
    metric: str = Field(description="duration_ms, or the performance event name whose value is measured")
    unit: str | None
    interval: str
    group_by: str | None
    timezone: str
    since: str
    until: str
    totals: Totals
    series: list[SeriesPoint] = Field(description="rows by bucket_start, then group")
    series_truncated: bool
    empty_buckets_filled: bool = Field(description="true when zero rows stand in for buckets without events")
    components: list[ComponentRow] = Field(description="most loaded first; ignores event_types")
    components_truncated: bool
    truncated: bool = Field(description="series or components was cut at limit")
    approximate: bool = Field(
        False, description="true when buckets before approximate_until come from rollups (raw events pruned)"
    )
    approximate_until: str | None = Field(
        None, description="ISO 8601 UTC: buckets before it come from rollups; null when all are raw"
    )
    relative_error: float | None = Field(
        None, description="bound on the relative error of p50/p95/p99 when approximate (counts stay exact)"
    )
    summary: str


@dataclass(frozen=True)
class MetricSpec:
    """Which column the statistics read, and which events they are restricted to."""

    name: str
    column: str
    performance_name: str | None  # restrict to performance events of this name


@dataclass(frozen=True)
class Peaks:
    buckets: int
    busiest: datetime | None
    busiest_count: int
    error_bucket: datetime | None
    error_bucket_errors: int
    error_bucket_count: int


# ---------------------------------------------------------------- SQL building (pure)


def _selection(q: MetricsQuery, metric: MetricSpec, p: Params) -> str:
    """' AND …' conditions of the series (component, event_types, metric events, filters)."""
    sql = ""
    if q.component is not None:
        sql += f" AND component = {p.add(q.component)}"
    if q.event_types:
        sql += f" AND list_contains({p.add(list(q.event_types))}::VARCHAR[], event_type)"
    if metric.performance_name is not None:
        sql += f" AND event_type = 'performance' AND name = {p.add(metric.performance_name)}"
    return sql + compile_filters(q.filters, p)


def series_sql(
    q: MetricsQuery,
    tr: TimeRange,
    metric: MetricSpec,
    timeout_minutes: float,
    p: Params,
    exact_keys: bool = False,
    checked: bool = False,
) -> str:
    """One query: the totals row (kind 0, with peak buckets), the first limit+1 series rows (kind 1)
    and every bucket's events and errors (kind 2: the error-spike detector's series, no second scan).

    Sessions are derived over every event of the range before the selection applies, so that
    filtering never splits a session.
    """
    source = sessionized(range_where(tr, p), timeout_minutes, p)
    bucket = bucket_sql(q.interval, tr, p)
    group = f"CAST({field_sql(q.group_by, p)} AS VARCHAR)" if q.group_by else "NULL::VARCHAR"
    where = _selection(q, metric, p)
    # Every pass groups on fixed-size keys: the group's text enters as hash(g) (hg) and comes back
    # through first(g); DISTINCT passes over (b, hg, u) ran 2.7x faster than over (b, g, u) at 10 M
    # events (a VARCHAR key kept DuckDB's distinct to one thread), and `base` is inlined into each
    # pass instead of materialized (materializing 10 M rows cost more than the passes). A hash
    # collision between two group values of one bucket would merge them: when the group's values
    # are not known to hash apart (`checked`: the catalog's values of the column do), `collisions`
    # counts them and run() repeats the query with exact text keys (exact_keys=True).
    plain = f"""count(*) AS n, count(*) FILTER (WHERE {ERRORS_SQL}) AS errors, count(v) AS nv,
            sum(v) AS s, avg(v) AS a, min(v) AS lo, max(v) AS hi, quantile_cont(v, {QUANTILES}) AS q"""
    columns = "b, g, n, users, sessions, errors, nv, s, a, lo, hi, q"
    key = "g" if exact_keys else "hash(g)"
    ng = "1" if exact_keys or checked or q.group_by is None else "count(DISTINCT g)"
    return f"""
    WITH base AS NOT MATERIALIZED (
        SELECT b, g, {key} AS hg, u, sk, severity, v FROM (
            SELECT {bucket} AS b, {group} AS g,
                   CASE WHEN user_id IS NOT NULL THEN hash(user_id) END AS u,
                   session_key AS sk,
                   severity, {metric.column} AS v
            FROM {source} src
            WHERE TRUE {where}
        )
    ),
    c AS (SELECT b, hg, first(g) AS g, {ng} AS ng, {plain} FROM base GROUP BY b, hg),
    du AS (SELECT b, hg, count(*) AS users FROM (SELECT DISTINCT b, hg, u FROM base WHERE u IS NOT NULL) GROUP BY b, hg),
    ds AS (SELECT b, hg, count(*) AS sessions FROM (SELECT DISTINCT b, hg, sk FROM base WHERE sk IS NOT NULL) GROUP BY b, hg),
    agg AS (
        SELECT 0 AS gid, c.b, c.g, c.n, coalesce(du.users, 0) AS users, coalesce(ds.sessions, 0) AS sessions,
               c.errors, c.nv, c.s, c.a, c.lo, c.hi, c.q, c.ng
        FROM c
        LEFT JOIN du ON c.b = du.b AND c.hg IS NOT DISTINCT FROM du.hg
        LEFT JOIN ds ON c.b = ds.b AND c.hg IS NOT DISTINCT FROM ds.hg
        UNION ALL
        SELECT 3, NULL, NULL, count(*), count(DISTINCT u), count(DISTINCT sk),
               count(*) FILTER (WHERE {ERRORS_SQL}), count(v), sum(v), avg(v), min(v), max(v), quantile_cont(v, {QUANTILES}),
               1
        FROM base
    ),
    per_bucket AS (
        SELECT b, sum(n) AS n, sum(errors) AS e FROM agg WHERE gid = 0 GROUP BY b
    ),
    peaks AS (
        SELECT count(*) AS buckets,
               first(b ORDER BY n DESC, b) AS busiest, coalesce(max(n), 0) AS busiest_n,
               first(b ORDER BY e DESC, b) AS err_b, coalesce(max(e), 0) AS err_e,
               coalesce(first(n ORDER BY e DESC, b), 0) AS err_n
        FROM per_bucket
    )
    SELECT 0 AS kind, {columns}, buckets, busiest, busiest_n, err_b, err_e, err_n,
           (SELECT count(*) FROM agg WHERE gid = 0 AND ng > 1) AS collisions
    FROM agg, peaks WHERE gid = 3
    UNION ALL
    SELECT 1, {columns}, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM (
        SELECT * FROM agg WHERE gid = 0 ORDER BY b, g NULLS LAST LIMIT {int(q.limit) + 1}
    )
    UNION ALL
    SELECT 2, b, NULL, n, NULL, NULL, e, NULL, NULL, NULL, NULL, NULL, NULL,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL
    FROM per_bucket
    """


def components_sql(q: MetricsQuery, tr: TimeRange, p: Params, hashed: bool = True) -> str:
    """Per-component usage in range; honours component and filters, not event_types.

    As in series_sql, the passes group on hash(component) (`hashed`, when the catalog's components
    hash apart) and distinct users are one DISTINCT pass over (component key, user key).
    """
    where = range_where(tr, p)
    if q.component is not None:
        where += f" AND component = {p.add(q.component)}"
    where += compile_filters(q.filters, p)
    key = "hash(component)" if hashed else "component"
    return f"""
    WITH src AS NOT MATERIALIZED (
        SELECT {key} AS hc, component, event_type, severity, duration_ms, value, name, user_id, ts
        FROM events
        WHERE component IS NOT NULL AND {where}
    ),
    a AS (
        SELECT hc, first(component) AS component,
               count(*) AS events,
               count(*) FILTER (WHERE event_type = 'component_load') AS loads,
               count(*) FILTER (WHERE event_type = 'animation_play') AS plays,
               count(*) FILTER (WHERE {ERRORS_SQL}) AS errors,
               avg(duration_ms) FILTER (WHERE event_type = 'component_load') AS avg_load_ms,
               avg(value) FILTER (WHERE event_type = 'performance' AND name = 'fps') AS avg_fps,
               max(ts) AS last_seen
        FROM src GROUP BY hc
    ),
    d AS (
        SELECT hc, count(*) AS unique_users
        FROM (SELECT DISTINCT hc, hash(user_id) AS u FROM src WHERE user_id IS NOT NULL)
        GROUP BY hc
    )
    SELECT a.component, a.events, a.loads, a.plays, a.errors, a.avg_load_ms, a.avg_fps,
           coalesce(d.unique_users, 0) AS unique_users, a.last_seen
    FROM a LEFT JOIN d ON a.hc = d.hc
    ORDER BY loads DESC, events DESC, component
    LIMIT {int(q.limit) + 1}
    """


# ---------------------------------------------------------------- validation against the store


def _distinct(store: Store, kind: str) -> list[str]:
    """The stored values of one column, from the catalog kept at ingest (no scan of the events)."""
    return sorted(store.catalog(kind))


def resolve_metric(store: Store, metric: str | None) -> MetricSpec:
    """duration_ms (default), or a performance event name: a known metric name or one in the store."""
    if metric is None or metric == DEFAULT_METRIC:
        return MetricSpec(DEFAULT_METRIC, "duration_ms", None)
    if metric in METRIC_NAMES:
        return MetricSpec(metric, "value", metric)
    names = _distinct(store, "metric")
    if metric not in names:
        raise unknown("metric", metric, [DEFAULT_METRIC, *names])
    return MetricSpec(metric, "value", metric)


def validate(store: Store, q: MetricsQuery, metric: MetricSpec) -> None:
    """Refuse components and event types that exist nowhere (with a did-you-mean)."""
    if q.component is not None:
        check_known(
            "component",
            [q.component],
            _distinct(store, "component"),
        )
    if q.event_types:
        if len(q.event_types) > 100:
            raise InvalidArgument("event_types: at most 100 types")
        stored = _distinct(store, "event_type")
        check_known("event_type", q.event_types, [*CORE_TYPES, *stored])
        if metric.performance_name is not None and "performance" not in q.event_types:
            raise InvalidArgument(
                f'metric "{metric.name}" reads performance events, which event_types excludes; '
                'add "performance" to event_types or leave event_types out'
            )
    if q.group_by is not None:
        field_sql(q.group_by, Params())  # refuses fields outside the allow-list


# ---------------------------------------------------------------- execution


def _stats(row: dict[str, Any]) -> dict[str, Any]:
    q = row["q"] or [None, None, None]
    return {
        "count": int(row["n"]),
        "unique_users": int(row["users"]),
        "unique_sessions": int(row["sessions"]),
        "error_count": int(row["errors"]),
        "sum": r4(row["s"]),
        "avg": r4(row["a"]),
        "min": r4(row["lo"]),
        "max": r4(row["hi"]),
        "p50": r4(q[0]),
        "p95": r4(q[1]),
        "p99": r4(q[2]),
    }


def _empty_stats() -> dict[str, Any]:
    return {
        "count": 0,
        "unique_users": 0,
        "unique_sessions": 0,
        "error_count": 0,
        **dict.fromkeys(("sum", "avg", "min", "max", "p50", "p95", "p99")),
    }


def first_buckets(tr: TimeRange, interval: str, n: int) -> list[datetime]:
    """The first n local bucket starts overlapping the range (skipping wall times a DST jump removes)."""
    zone = tr.zone
    cur = truncate_local(to_local(tr.since, zone), interval)
    end = to_local(tr.until, zone)
    out: list[datetime] = []
    while cur < end and len(out) < n:
        if to_local(to_utc(cur, zone), zone) == cur:
            out.append(cur)
        cur = step_local(cur, interval)
    return out


def _series(
    q: MetricsQuery, tr: TimeRange, rows: list[dict[str, Any]]
) -> tuple[list[SeriesPoint], bool, bool]:
    zone = tr.zone
    if q.group_by is None and q.interval != "total":
        buckets = first_buckets(tr, q.interval, q.limit + 1)
        by_bucket = {r["b"]: r for r in rows}
        points = [
            SeriesPoint(
                bucket_start=iso_local(b, zone),
                group=None,
                **(_stats(by_bucket[b]) if b in by_bucket else _empty_stats()),
            )
            for b in buckets[: q.limit]
        ]
        return points, len(buckets) > q.limit, True
    points = [
        SeriesPoint(bucket_start=iso_local(r["b"], zone), group=r["g"], **_stats(r)) for r in rows[: q.limit]
    ]
    return points, len(rows) > q.limit, False


def _bucket_label(b: datetime | None, interval: str) -> str:
    if b is None:
        return "?"
    return {
        "minute": b.strftime("%Y-%m-%d %H:%M"),
        "hour": b.strftime("%Y-%m-%d %H:00"),
        "day": b.strftime("%Y-%m-%d"),
        "week": "week of " + b.strftime("%Y-%m-%d"),
        "month": b.strftime("%Y-%m"),
    }.get(interval, "the range")


def _n(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.1f}"


def summarize(
    q: MetricsQuery,
    tr: TimeRange,
    metric: MetricSpec,
    unit: str | None,
    totals: Totals,
    peaks: Peaks,
    components: list[ComponentRow],
    truncated: bool,
    spike: Anomaly | None = None,
) -> str:
    """The notable finding first (the detector's error spike), then totals, the busiest bucket, the metric."""
    span = f"{iso_utc(tr.since.replace(microsecond=0))} → {iso_utc(tr.until.replace(microsecond=0))}"
    scope = f" for component {q.component}" if q.component else ""
    if metric.performance_name is not None:
        scope += f" (performance events named {metric.name})"
    if totals.count == 0:
        return clip(f"No events matched{scope} in {span}.")
    parts: list[str] = []
    if spike is not None:
        parts.append(spike_sentence(spike, q.interval if q.interval in ("minute", "hour") else "day", tr.tz))
    parts.append(
        f"{_n(totals.count, 'event')}{scope}, {_n(totals.unique_users, 'user')}, "
        f"{_n(totals.unique_sessions, 'session')}, "
        f"{_n(totals.error_count, 'error')} ({pct(rate(totals.error_count, totals.count))}) in {span}."
    )
    if q.interval != "total" and peaks.buckets >= 2:
        busiest = _bucket_label(peaks.busiest, q.interval)
        parts.append(f"Busiest {q.interval}: {busiest} ({_n(peaks.busiest_count, 'event')}).")
    if totals.values:
        u = f" {unit}" if unit else ""
        parts.append(
            f"{metric.name} p50 {_num(totals.p50)}{u}, p95 {_num(totals.p95)}{u}, p99 {_num(totals.p99)}{u} "
            f"over {_n(totals.values, 'value')}."
        )
    if components:
        top = ", ".join(f"{c.component} ({_n(c.loads, 'load')})" for c in components[:3])
        parts.append(f"Most loaded: {top}.")
    if truncated:
        parts.append(f"Lists cut at limit={q.limit} (truncated).")
    return clip(" ".join(parts))


def _spike(
    store: Store, q: MetricsQuery, tr: TimeRange, metric: MetricSpec, counts: list[tuple[datetime, int, int]]
) -> Anomaly | None:
    """The shared detector's error spike over the query's events (same range, filters, component).

    For minute/hour/day buckets over all of the selection's events, the series' own per-bucket
    counts are the detector's series; otherwise (weeks, months: day buckets; a performance
    metric, whose selection is narrower) the detector reads its own.
    """
    if q.interval == "total":
        return None
    if q.interval in ("minute", "hour", "day") and metric.performance_name is None:
        return worst_errors_of(tr, q.interval, counts)
    scope = list(q.filters or [])
    if q.component:
        scope.append(Filter(field="component", op="eq", value=q.component))
    if q.event_types:
        scope.append(Filter(field="event_type", op="in", value=list(q.event_types)))
    return worst(store, tr, q.interval, scope)


def _series_rows(
    store: Store, q: MetricsQuery, tr: TimeRange, metric: MetricSpec, *, exact_keys: bool
) -> list[dict[str, Any]]:
    p = Params()
    checked = q.group_by in HASH_CHECKABLE and _hashes_apart(store, sorted(store.catalog(q.group_by)))
    sql = series_sql(
        q, tr, metric, store.settings.session_timeout_minutes, p, exact_keys=exact_keys, checked=checked
    )
    return store.fetch_dicts(sql, p.values)


# group_by columns whose every stored value the catalog lists (a superset)
HASH_CHECKABLE = ("event_type", "component", "service", "service_version", "platform", "os", "framework")


_APART: dict[tuple[str, ...], bool] = {}  # DuckDB's hash() is fixed: a value list is checked once


def _hashes_apart(store: Store, values: list[str]) -> bool:
    """True when DuckDB's hash() gives each of these values a different 64-bit key."""
    key = tuple(values)
    if not key:
        return True
    if key not in _APART:
        rows = store.fetch("SELECT count(DISTINCT hash(v)) FROM unnest(?::VARCHAR[]) AS t(v)", [values])
        if len(_APART) >= 64:
            _APART.clear()
        _APART[key] = int(rows[0][0]) == len(values)
    return _APART[key]


def run(store: Store, q: MetricsQuery) -> MetricsResult:
    """Execute collect_metrics against the store."""
    tr = parse_range(q.since, q.until, q.timezone)
    metric = resolve_metric(store, q.metric)
    validate(store, q, metric)

    cutoff = raw_cutoff(store)
    if cutoff is not None and tr.since < cutoff:
        return _run_approximate(store, q, tr, metric, cutoff)

    rows = _series_rows(store, q, tr, metric, exact_keys=False)
    head = next(r for r in rows if r["kind"] == 0)
    if head["collisions"]:  # two group values of a bucket share a 64-bit hash: text keys instead
        rows = _series_rows(store, q, tr, metric, exact_keys=True)
        head = next(r for r in rows if r["kind"] == 0)
    data = sorted((r for r in rows if r["kind"] == 1), key=lambda r: (r["b"], r["g"] is None, r["g"] or ""))
    counts = [(r["b"], int(r["n"]), int(r["errors"])) for r in rows if r["kind"] == 2]

    cp = Params()
    hashed = _hashes_apart(store, sorted(store.catalog("component")))
    comp_rows = store.fetch_dicts(components_sql(q, tr, cp, hashed), cp.values)
    peaks = Peaks(
        buckets=int(head["buckets"] or 0),
        busiest=head["busiest"],
        busiest_count=int(head["busiest_n"] or 0),
        error_bucket=head["err_b"],
        error_bucket_errors=int(head["err_e"] or 0),
        error_bucket_count=int(head["err_n"] or 0),
    )
    return _result(store, q, tr, metric, head, data, comp_rows, peaks, counts=counts)


def _result(
    store: Store,
    q: MetricsQuery,
    tr: TimeRange,
    metric: MetricSpec,
    head: dict[str, Any],
    data: list[dict[str, Any]],
    comp_rows: list[dict[str, Any]],
    peaks: Peaks,
    approximate_until: datetime | None = None,
    counts: list[tuple[datetime, int, int]] | None = None,
) -> MetricsResult:
    """The answer from the fetched rows, exact or (approximate_until given) partly from rollups."""
    components = _component_rows(q, comp_rows)
    components_truncated = len(comp_rows) > q.limit
    unit = "ms" if metric.performance_name is None else performance_unit(store, tr, metric.performance_name)
    totals = Totals(values=int(head["nv"]), **_stats(head))
    series, series_truncated, filled = _series(q, tr, data)
    truncated = series_truncated or components_truncated
    if approximate_until is None:
        spike = _spike(store, q, tr, metric, counts or [])
        summary = summarize(q, tr, metric, unit, totals, peaks, components, truncated, spike)
        until = None
    else:
        until = iso_utc(approximate_until) or ""
        note = (
            f"Approximate: buckets before {until} come from rollups (raw events before it are pruned); "
            f"counts, errors, users and sessions are exact, percentiles within "
            f"{metrics_rollup.RELATIVE_ERROR:.0%} relative error."
        )
        summary = clip(f"{note} {summarize(q, tr, metric, unit, totals, peaks, components, truncated)}")
    return MetricsResult(
        metric=metric.name,
        unit=unit,
        interval=q.interval,
        group_by=q.group_by,
        timezone=tr.tz,
        since=iso_utc(tr.since) or "",
        until=iso_utc(tr.until) or "",
        totals=totals,
        series=series,
        series_truncated=series_truncated,
        empty_buckets_filled=filled,
        components=components,
        components_truncated=components_truncated,
        truncated=truncated,
        approximate=approximate_until is not None,
        approximate_until=until,
        relative_error=None if approximate_until is None else metrics_rollup.RELATIVE_ERROR,
        summary=summary,
    )


def _component_rows(q: MetricsQuery, comp_rows: list[dict[str, Any]]) -> list[ComponentRow]:
    return [
        ComponentRow(
            component=r["component"],
            events=int(r["events"]),
            loads=int(r["loads"]),
            plays=int(r["plays"]),
            errors=int(r["errors"]),
            avg_load_ms=r4(r["avg_load_ms"]),
            avg_fps=r4(r["avg_fps"]),
            unique_users=int(r["unique_users"]),
            last_seen=iso_utc(r["last_seen"]) or "",
        )
        for r in comp_rows[: q.limit]
    ]


def _peaks(rows: list[dict[str, Any]]) -> Peaks:
    per: dict[datetime, list[int]] = {}
    for r in rows:
        acc = per.setdefault(r["b"], [0, 0])
        acc[0] += r["n"]
        acc[1] += r["errors"]
    if not per:
        return Peaks(0, None, 0, None, 0, 0)
    busiest = min(per, key=lambda b: (-per[b][0], b))
    err = min(per, key=lambda b: (-per[b][1], b))
    return Peaks(len(per), busiest, per[busiest][0], err, per[err][1], per[err][0])


def _run_approximate(
    store: Store, q: MetricsQuery, tr: TimeRange, metric: MetricSpec, cutoff: datetime
) -> MetricsResult:
    """The range reaches before the raw cutoff: earlier buckets from rollups (metrics_rollup)."""
    metric_rollup_check(q, cutoff, metrics_rollup.property_slots(store), tr.since)
    split, head, data = metrics_rollup.fetch(
        store, tr, q.interval, q.group_by, metric.column, lambda p: _selection(q, metric, p), cutoff
    )

    def comp_where(p: Params) -> str:
        where = f" AND component = {p.add(q.component)}" if q.component is not None else ""
        return where + compile_filters(q.filters, p)

    comp_rows = metrics_rollup.components(store, tr, q.interval, cutoff, comp_where)
    return _result(store, q, tr, metric, head, data, comp_rows, _peaks(data), approximate_until=split)


def metric_rollup_check(q: MetricsQuery, cutoff: datetime, slots: Sequence[Slot], since: datetime) -> None:
    """Refuse what rollups cannot answer (minute buckets, fields outside their keys)."""
    if q.interval == "minute":
        metrics_rollup.grain_of(q.interval, TimeRange(cutoff, cutoff))
    metrics_rollup.check_fields(q.group_by, [f.field for f in q.filters or []], cutoff, slots, since)
