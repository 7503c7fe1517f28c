"""detect_anomalies: anomalous buckets of a series per group, new error signatures, release starts.

Series: events (count), errors (severity error/critical), error_rate (errors / events), users
(distinct user_ids), or a performance metric (load_time, api_latency, fps, … as analyze_performance
has them) with `stat` count|avg|p50|p95|p99 per bucket (buckets with fewer than 3 samples are left
out of a statistic). Every bucket of the range is in the series (zeros for counts), per group for
the `MAX_GROUPS` largest groups. The test itself is `detector.detect` (STL + robust residuals).

An anomaly's observed/expected/lower/upper are means over the buckets it lasted; score is its
largest robust z. new_errors: (name, component) of error events whose first event ever falls in
the range. releases: each service_version first seen in the range, its first days (up to 3, and
never past the range) against the previous version's first days of the same service.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from telemetry_mcp.analytics import detector
from telemetry_mcp.analytics.common import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Filter,
    Params,
    TimeRange,
    bucket_sql,
    clip,
    compile_filters,
    field_sql,
    iso_local,
    iso_utc,
    local_buckets,
    parse_range,
    r4,
    range_where,
)
from telemetry_mcp.analytics.performance import METRICS, MetricDef, resolve_metric
from telemetry_mcp.errors import InvalidArgument
from telemetry_mcp.store import Store

ERRORS_SQL = "severity IN ('error', 'critical')"
Stat = Literal["count", "avg", "p50", "p95", "p99"]
AnomalyInterval = Literal["minute", "hour", "day"]
COUNT_METRICS = ("events", "errors", "error_rate", "users")
GROUP_FIELDS = ("component", "service_version", "platform", "framework", "event_type", "os", "name")
MAX_GROUPS = 10
MIN_SAMPLES = 3
RELEASE_DAYS = 3
_STAT_SQL = {
    "count": "count(x)",
    "avg": "avg(x)",
    "p50": "quantile_cont(x, 0.5)",
    "p95": "quantile_cont(x, 0.95)",
    "p99": "quantile_cont(x, 0.99)",
}


class AnomalyQuery(BaseModel):
    """Arguments of detect_anomalies (since/until still as given)."""

    model_config = ConfigDict(extra="forbid")

    metric: str = "events"
    stat: Stat = "p95"
    group_by: str | None = None
    interval: AnomalyInterval = "hour"
    since: str | None = None
    until: str | None = None
    timezone: str = "UTC"
    filters: list[Filter] | None = None
    threshold: float = Field(detector.DEFAULT_THRESHOLD, ge=2, le=20)
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)


class Anomaly(BaseModel):
    metric: str
    group: str | None = Field(description="group_by value (null when ungrouped)")
    bucket_start: str = Field(description="first bucket of the anomaly (local time, ISO 8601)")
    observed: float | None = Field(description="mean over its buckets")
    expected: float | None
    lower: float | None
    upper: float | None
    score: float = Field(description="largest robust z-score (≥ threshold)")
    direction: Literal["up", "down"]
    buckets: int = Field(description="consecutive buckets it lasted")


class NewError(BaseModel):
    name: str | None
    component: str | None
    first_seen: str
    count: int
    users: int
    message: str | None = Field(None, description="a properties.message of it, if any")


class ReleaseStart(BaseModel):
    service: str | None
    version: str
    previous_version: str | None
    released: str = Field(description="first event of the version (UTC)")
    days: float = Field(description="length of the compared first days")
    events: int
    error_rate: float
    previous_error_rate: float | None
    value: float | None = Field(description="the metric (stat) over its first days")
    previous_value: float | None
    change_pct: float | None = Field(description="value vs previous_value in percent (39.4 = +39.4 %)")


class AnomalyResult(BaseModel):
    metric: str
    stat: str | None
    interval: str
    group_by: str | None
    since: str
    until: str
    anomalies: list[Anomaly] = Field(description="most severe first")
    new_errors: list[NewError] = Field(description="error names first seen in the range, most frequent first")
    releases: list[ReleaseStart]
    truncated: bool
    summary: str


# ---------------------------------------------------------------- SQL


def _source(metric: str, perf: MetricDef | None, p: Params) -> tuple[str, str]:
    """(WHERE restriction, x expression) for the metric's events."""
    if perf is None:
        return "TRUE", "NULL::DOUBLE"
    where = f"event_type = {p.add(perf.event_type)}"
    if perf.name is not None:
        where += f" AND name = {p.add(perf.name)}"
    return f"{where} AND {perf.column} IS NOT NULL", perf.column


def series_sql(q: AnomalyQuery, perf: MetricDef | None, tr: TimeRange, p: Params) -> str:
    """One row per (bucket, group): n events, e errors, u users, v the statistic."""
    bucket = bucket_sql(q.interval, tr, p)
    group = field_sql(q.group_by, p) + "::VARCHAR" if q.group_by else "NULL::VARCHAR"
    restrict, x = _source(q.metric, perf, p)
    stat = _STAT_SQL[q.stat] if perf is not None else "NULL"
    where = f"{range_where(tr, p)} AND {restrict}{compile_filters(q.filters, p)}"
    users = "count(DISTINCT user_id)" if q.metric == "users" else "NULL"
    return f"""
        SELECT {bucket} AS b, {group} AS g, count(*) AS n, count_if({ERRORS_SQL}) AS e,
               {users} AS u, {stat} AS v
        FROM (SELECT *, {x} AS x FROM events WHERE {where})
        GROUP BY ALL
    """


def new_errors_sql(tr: TimeRange, filters: list[Filter] | None, limit: int, p: Params) -> str:
    fs = compile_filters(filters, p)
    since, until = p.add(tr.since), p.add(tr.until)
    return f"""
        SELECT name, component, min(ts) AS first_seen,
               count_if(ts >= {since}::TIMESTAMP AND ts < {until}::TIMESTAMP) AS n,
               count(DISTINCT user_id) FILTER (WHERE ts >= {since}::TIMESTAMP) AS users,
               any_value(json_extract_string(properties, '$.message')) AS message,
               count(*) OVER () AS total
        FROM events WHERE {ERRORS_SQL} AND ts < {until}::TIMESTAMP{fs}
        GROUP BY name, component
        HAVING min(ts) >= {since}::TIMESTAMP
        ORDER BY n DESC, first_seen, name NULLS LAST, component NULLS LAST
        LIMIT {int(limit) + 1}
    """


VERSIONS_SQL = """
    SELECT service, service_version, min(ts) AS first FROM events
    WHERE service_version IS NOT NULL GROUP BY ALL ORDER BY service NULLS LAST, first
"""


def release_sql(
    q: AnomalyQuery,
    perf: MetricDef | None,
    service: str | None,
    version: str,
    lo: datetime,
    hi: datetime,
    p: Params,
) -> str:
    """n events, e errors, v the metric's statistic over one version's first days."""
    restrict, x = _source(q.metric, perf, p)
    svc = f"service = {p.add(service)}" if service is not None else "service IS NULL"
    v = f"{_STAT_SQL[q.stat]} FILTER (WHERE m)" if perf is not None else "NULL"
    return f"""
        SELECT count(*) AS n, count_if({ERRORS_SQL}) AS e, {v} AS v
        FROM (SELECT *, {x} AS x, ({restrict}) AS m FROM events
              WHERE {svc} AND service_version = {p.add(version)} AND ts >= {p.add(lo)}::TIMESTAMP
                AND ts < {p.add(hi)}::TIMESTAMP{compile_filters(q.filters, p)})
    """


# ---------------------------------------------------------------- running


def _kind(q: AnomalyQuery, perf: MetricDef | None) -> detector.Kind:
    if perf is None:
        return "rate" if q.metric == "error_rate" else "count"
    return "count" if q.stat == "count" else "value"


def _value(q: AnomalyQuery, perf: MetricDef | None, n: int, e: int, u: int | None, v: Any) -> float:
    if perf is not None:
        if q.stat != "count" and n < MIN_SAMPLES:
            return float("nan")
        return float(v) if v is not None else float("nan")
    if q.metric == "events":
        return float(n)
    if q.metric == "errors":
        return float(e)
    if q.metric == "users":
        return float(u or 0)
    return e / n if n else float("nan")


def resolve(store: Store, q: AnomalyQuery) -> MetricDef | None:
    """None for the count metrics; else the performance metric (unknown names refused)."""
    if q.metric in COUNT_METRICS:
        return None
    if q.metric not in METRICS:
        try:
            return resolve_metric(store, q.metric)
        except Exception as exc:
            # The accepted list must name the count metrics too.
            msg = str(exc).replace("Accepted: ", 'Accepted: "events", "errors", "error_rate", "users", ')
            raise type(exc)(msg) from None
    return METRICS[q.metric]


def find(store: Store, q: AnomalyQuery, tr: TimeRange) -> list[Anomaly]:
    """The anomalies of the query's series, most severe first (all of them, not cut at limit)."""
    perf = resolve(store, q)
    if q.group_by is not None and q.group_by not in GROUP_FIELDS:
        field_sql(q.group_by, Params())  # refuses unknown fields with the accepted list
    p = Params()
    rows = store.fetch_dicts(series_sql(q, perf, tr, p), p.values)
    return anomalies_of(q, perf, tr, rows)


def anomalies_of(
    q: AnomalyQuery, perf: MetricDef | None, tr: TimeRange, rows: list[dict[str, Any]]
) -> list[Anomaly]:
    """The detector over series rows {b, g, n, e, u, v} (series_sql's), most severe first."""
    buckets = local_buckets(tr, q.interval)
    index = {b: i for i, b in enumerate(buckets)}
    volume: dict[str | None, int] = {}
    for r in rows:
        volume[r["g"]] = volume.get(r["g"], 0) + int(r["n"])
    groups = sorted(volume, key=lambda g: (-volume[g], g is None, g or ""))[:MAX_GROUPS]
    kind = _kind(q, perf)
    found: list[Anomaly] = []
    for g in groups:
        fill = float("nan") if (perf is not None and q.stat != "count") or q.metric == "error_rate" else 0.0
        values = np.full(len(buckets), fill)
        dens = np.zeros(len(buckets))
        for r in rows:
            if r["g"] == g and r["b"] in index:
                i = index[r["b"]]
                values[i] = _value(q, perf, int(r["n"]), int(r["e"]), r["u"], r["v"])
                dens[i] = int(r["n"])
        for run in detector.detect(
            values, interval=q.interval, kind=kind, denominators=dens, threshold=q.threshold
        ):
            found.append(
                Anomaly(
                    metric=q.metric if perf is None else f"{q.metric} {q.stat}",
                    group=g,
                    bucket_start=iso_local(buckets[run.start], tr.zone),
                    observed=r4(run.observed),
                    expected=r4(run.expected),
                    lower=r4(run.lower),
                    upper=r4(run.upper),
                    score=r4(run.score) or 0.0,
                    direction=run.direction,
                    buckets=run.buckets,
                )
            )
    found.sort(key=lambda a: (-a.score, a.bucket_start, a.group or ""))
    return found


def releases(store: Store, q: AnomalyQuery, tr: TimeRange) -> list[ReleaseStart]:
    perf = resolve(store, q)
    out: list[ReleaseStart] = []
    previous: dict[str | None, tuple[str, datetime]] = {}
    for service, version, first in store.fetch(VERSIONS_SQL):
        prev = previous.get(service)
        previous[service] = (version, first)
        if not (tr.since <= first < tr.until):
            continue
        span = min(timedelta(days=RELEASE_DAYS), tr.until - first)
        p = Params()
        n, e, v = store.fetch(release_sql(q, perf, service, version, first, first + span, p), p.values)[0]
        prev_rate: float | None = None
        prev_v: float | None = None
        if prev is not None:
            pp = Params()
            pn, pe, pv = store.fetch(
                release_sql(q, perf, service, prev[0], prev[1], prev[1] + span, pp), pp.values
            )[0]
            prev_rate = r4(pe / pn) if pn else None
            prev_v = _release_value(q, perf, pn, pe, pv, span)
        value = _release_value(q, perf, n, e, v, span)
        change = r4((value - prev_v) / prev_v * 100) if value is not None and prev_v else None
        out.append(
            ReleaseStart(
                service=service,
                version=version,
                previous_version=prev[0] if prev else None,
                released=iso_utc(first) or "",
                days=r4(span.total_seconds() / 86400) or 0.0,
                events=int(n),
                error_rate=r4(e / n if n else 0.0) or 0.0,
                previous_error_rate=prev_rate,
                value=value,
                previous_value=prev_v,
                change_pct=change,
            )
        )
    return out


def _release_value(
    q: AnomalyQuery, perf: MetricDef | None, n: int, e: int, v: Any, span: timedelta
) -> float | None:
    days = span.total_seconds() / 86400 or 1.0
    if perf is not None:
        return r4(v)
    if q.metric == "error_rate":
        return r4(e / n) if n else None
    if q.metric == "errors":
        return r4(e / days)
    return r4(n / days)  # events (and users: events per day stand in for the release's reach)


def run(store: Store, q: AnomalyQuery) -> AnomalyResult:
    """Execute detect_anomalies."""
    tr = parse_range(q.since, q.until, q.timezone)
    found = find(store, q, tr)
    p = Params()
    err_rows = store.fetch_dicts(new_errors_sql(tr, q.filters, q.limit, p), p.values)
    new = [
        NewError(
            name=r["name"],
            component=r["component"],
            first_seen=iso_utc(r["first_seen"]) or "",
            count=int(r["n"]),
            users=int(r["users"]),
            message=r["message"],
        )
        for r in err_rows[: q.limit]
    ]
    rel = releases(store, q, tr)
    truncated = len(found) > q.limit or len(err_rows) > q.limit or len(rel) > q.limit
    result = AnomalyResult(
        metric=q.metric,
        stat=None if q.metric in COUNT_METRICS else q.stat,
        interval=q.interval,
        group_by=q.group_by,
        since=iso_utc(tr.since) or "",
        until=iso_utc(tr.until) or "",
        anomalies=found[: q.limit],
        new_errors=new,
        releases=rel[: q.limit],
        truncated=truncated,
        summary="",
    )
    perf = resolve(store, q)
    result.summary = summarize(result, len(found), perf is not None and perf.higher_is_better)
    return result


def anomaly_sentence(a: Anomaly, interval: str) -> str:
    """One sentence about an anomaly (shared by every tool that flags one)."""
    where = f" of {a.group}" if a.group is not None else ""
    lasted = f" for {a.buckets} {interval}s" if a.buckets > 1 else ""
    word = "spiked" if a.direction == "up" else "dropped"
    return (
        f"{a.metric}{where} {word} at {a.bucket_start}{lasted}: {_g(a.observed)} vs {_g(a.expected)} "
        f"expected (band {_g(a.lower)}–{_g(a.upper)}, score {a.score:.1f})."
    )


def _g(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def summarize(r: AnomalyResult, total: int, higher_is_better: bool = False) -> str:
    parts: list[str] = []
    sign = -1.0 if higher_is_better else 1.0
    worst_release = max(
        (x for x in r.releases if x.change_pct is not None and sign * x.change_pct > 0),
        key=lambda x: sign * (x.change_pct or 0.0),
        default=None,
    )
    if r.anomalies:
        parts.append("Most severe: " + anomaly_sentence(r.anomalies[0], r.interval))
        more = total - 1
        if more:
            parts.append(f"{more} more anomal{'y' if more == 1 else 'ies'}.")
    else:
        parts.append(f"No anomalies in {r.metric} per {r.interval} from {r.since} to {r.until}.")
    if r.new_errors:
        top = ", ".join(f"{e.name} on {e.component} ({e.count})" for e in r.new_errors[:3])
        parts.append(f"New error types: {top}.")
    if worst_release is not None:
        parts.append(
            f"Release {worst_release.version} vs {worst_release.previous_version} in their first "
            f"{worst_release.days:g} days: {r.metric} {worst_release.change_pct:+.1f} %, error rate "
            f"{worst_release.error_rate * 100:.2f} % vs {(worst_release.previous_error_rate or 0) * 100:.2f} %."
        )
    if r.truncated:
        parts.append("Lists cut at limit (truncated); raise limit for the rest.")
    return clip(" ".join(parts))


def worst(
    store: Store,
    tr: TimeRange,
    interval: str,
    filters: list[Filter] | None,
    metric: str = "errors",
    stat: Stat = "p95",
) -> Anomaly | None:
    """The detector's most severe upward finding (worsening, for a performance metric) in one series.

    The proactive line of collect_metrics, analyze_performance and get_realtime_stats: day buckets
    unless the caller's interval is finer; None when nothing is flagged or the series is too short.
    """
    iv: AnomalyInterval = interval if interval in ("minute", "hour", "day") else "day"  # type: ignore[assignment]
    try:
        if len(local_buckets(tr, iv)) < detector.MIN_POINTS:
            return None
        q = AnomalyQuery(
            metric=metric,
            stat=stat,
            interval=iv,
            filters=filters,
            threshold=detector.DEFAULT_THRESHOLD,
            limit=1,
        )
        perf = resolve(store, q)
        bad = "down" if perf is not None and perf.higher_is_better else "up"
        return next((a for a in find(store, q, tr) if a.direction == bad), None)
    except InvalidArgument:
        return None


def worst_errors_of(tr: TimeRange, interval: str, counts: list[tuple[datetime, int, int]]) -> Anomaly | None:
    """worst(…, metric="errors") from per-bucket (bucket start, events, errors) the caller already
    counted over the same events and the same buckets (collect_metrics' series), without a scan."""
    if interval not in ("minute", "hour", "day"):
        raise ValueError(f"worst_errors_of: interval {interval} (day buckets need their own series)")
    iv: AnomalyInterval = interval  # type: ignore[assignment]
    if len(local_buckets(tr, iv)) < detector.MIN_POINTS:
        return None
    q = AnomalyQuery(metric="errors", interval=iv, threshold=detector.DEFAULT_THRESHOLD, limit=1)
    rows = [{"b": b, "g": None, "n": n, "e": e, "u": None, "v": None} for b, n, e in counts]
    return next((a for a in anomalies_of(q, None, tr, rows) if a.direction == "up"), None)


def spike_sentence(a: Anomaly, interval: str, tz: str) -> str:
    """'Error spike: 2026-10-20 (UTC) had 10 errors vs 1.3 expected (detector score 4.5).'"""
    start = datetime.fromisoformat(a.bucket_start).replace(tzinfo=None)
    fmt = {"minute": "%Y-%m-%d %H:%M", "hour": "%Y-%m-%d %H:00"}.get(interval, "%Y-%m-%d")
    lasted = f" for {a.buckets} {interval}s" if a.buckets > 1 else ""
    if a.metric == "errors":
        return (
            f"Error spike: {start.strftime(fmt)} ({tz}) had {_g(a.observed)} errors{lasted} vs {_g(a.expected)} "
            f"expected (detector score {a.score:.1f})."
        )
    return "Anomaly: " + anomaly_sentence(a, interval)
