"""analyze_performance: exact percentiles of a performance metric per group, and release regressions.

Metrics: load_time = duration_ms of component_load, api_latency = duration_ms of api_call, any
other name = value of performance events of that name. `count` and the statistics cover samples
with a value (NULL values are not samples). error_rate = error/critical events of the group key /
all events of that key in range (every event type, not only the metric's).

Comparisons (`compare`): two service versions (per group, in the same range) or this range against
the equally long range right before it. change_pct is the relative change of p95 in percent
(38.0 = +38 %, as the name says); a group regressed when p95 got worse by more than `threshold` (default 0.10):
higher for time-like metrics, lower for fps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from telemetry_mcp.analytics.common import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Filter,
    Params,
    TimeRange,
    check_known,
    clip,
    compile_filters,
    iso_utc,
    parse_range,
    pct,
    r4,
    range_where,
    rate,
)
from telemetry_mcp.errors import InvalidArgument, unknown
from telemetry_mcp.store import Store

GroupBy = Literal["component", "service_version", "app_version", "platform", "framework", "none"]
GROUP_COLUMNS: dict[str, str | None] = {
    "component": "component",
    "service_version": "service_version",
    "app_version": "service_version",
    "platform": "platform",
    "framework": "framework",
    "none": None,
}
ERRORS_SQL = "severity IN ('error', 'critical')"
DEFAULT_THRESHOLD = 0.10
MAX_COMPARE_KEYS = 10_000


@dataclass(frozen=True)
class MetricDef:
    """Where a metric's samples come from."""

    event_type: str
    name: str | None  # performance event name, None for the duration of a typed event
    column: str
    unit: str | None
    higher_is_better: bool = False

    @property
    def source(self) -> str:
        if self.name is None:
            return f"duration_ms of {self.event_type} events"
        return f"value of performance events named {self.name}"


# Built-in metrics (always accepted); any other name must be a performance event name in the store.
METRICS: dict[str, MetricDef] = {
    "load_time": MetricDef("component_load", None, "duration_ms", "ms"),
    "api_latency": MetricDef("api_call", None, "duration_ms", "ms"),
    "fps": MetricDef("performance", "fps", "value", "fps", higher_is_better=True),
    "frame_time": MetricDef("performance", "frame_time", "value", "ms"),
    "render_time": MetricDef("performance", "render_time", "value", "ms"),
    "memory": MetricDef("performance", "memory", "value", "bytes"),
}


class Compare(BaseModel):
    """Either two versions ({baseline_version, candidate_version}) or {previous_period: true}."""

    model_config = ConfigDict(extra="forbid")

    baseline_version: str | None = Field(
        None, max_length=200, description="service_version to compare against, e.g. 2.2.0"
    )
    candidate_version: str | None = Field(
        None, max_length=200, description="the newer service_version, e.g. 2.3.0"
    )
    previous_period: bool = Field(
        False, description="true: compare [since, until) with the equally long range right before it"
    )

    @model_validator(mode="after")
    def _one_mode(self) -> Compare:
        versions = (self.baseline_version, self.candidate_version)
        if self.previous_period:
            if any(v is not None for v in versions):
                raise ValueError(
                    "compare takes either previous_period: true or baseline_version + candidate_version, "
                    "not both"
                )
            return self
        if any(v is None for v in versions):
            raise ValueError(
                "compare needs both baseline_version and candidate_version "
                '(e.g. {"baseline_version": "2.2.0", "candidate_version": "2.3.0"}) '
                'or {"previous_period": true}'
            )
        if self.baseline_version == self.candidate_version:
            raise ValueError("compare: baseline_version and candidate_version must differ")
        return self


class PerformanceQuery(BaseModel):
    """All arguments of analyze_performance (since/until still as given)."""

    model_config = ConfigDict(extra="forbid")

    metric: str = "load_time"
    component: str | None = None
    group_by: GroupBy = "component"
    since: str | None = None
    until: str | None = None
    timezone: str = "UTC"
    filters: list[Filter] | None = None
    compare: Compare | None = None
    threshold: float = Field(DEFAULT_THRESHOLD, ge=0, le=10)
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)


class PerfGroup(BaseModel):
    key: str | None = Field(description="group value ('all' when group_by is none; null when events lack it)")
    count: int = Field(description="samples with a value")
    avg: float | None
    min: float | None
    max: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    error_rate: float = Field(description="error/critical events / all events of this key in range (0-1)")


class Regression(BaseModel):
    key: str | None
    baseline_count: int
    candidate_count: int
    baseline_p50: float | None
    candidate_p50: float | None
    baseline_p95: float | None
    candidate_p95: float | None
    change_pct: float | None = Field(
        description="relative change of p95 in percent (38.0 = +38 %); null when the baseline p95 is 0"
    )
    regressed: bool = Field(description="p95 worse by more than the threshold (lower is worse for fps)")


class CompareInfo(BaseModel):
    mode: Literal["versions", "previous_period"]
    baseline: str = Field(description="baseline version, or 'previous period'")
    candidate: str
    baseline_since: str
    baseline_until: str
    candidate_since: str
    candidate_until: str
    threshold: float = Field(description="fraction, e.g. 0.1 = 10 %")
    groups_compared: int = Field(description="groups with samples on both sides")
    regressed_count: int


class PerformanceResult(BaseModel):
    metric: str
    source: str = Field(description="which events and column the samples come from")
    unit: str | None
    direction: Literal["lower_is_better", "higher_is_better"]
    group_by: str
    since: str
    until: str
    overall: PerfGroup = Field(description="every sample in range at once (key 'all')")
    groups: list[PerfGroup] = Field(description="worst p95 first (highest; lowest for fps)")
    groups_truncated: bool
    compare: CompareInfo | None
    regressions: list[Regression] = Field(description="with compare: worst p95 change first")
    regressions_truncated: bool
    truncated: bool
    summary: str


@dataclass(frozen=True)
class Sides:
    """The two sides of a comparison as SQL, plus labels."""

    mode: Literal["versions", "previous_period"]
    baseline: str
    candidate: str
    baseline_range: TimeRange
    candidate_range: TimeRange


# ---------------------------------------------------------------- SQL building (pure)


def _key_sql(group_by: str) -> str:
    column = GROUP_COLUMNS[group_by]
    return "'all'" if column is None else column


def _metric_sql(m: MetricDef, p: Params) -> str:
    cond = f"event_type = {p.add(m.event_type)}"
    if m.name is not None:
        cond += f" AND name = {p.add(m.name)}"
    return cond


def _scope_sql(q: PerformanceQuery, p: Params) -> str:
    sql = f" AND component = {p.add(q.component)}" if q.component is not None else ""
    return sql + compile_filters(q.filters, p)


def _stats_sql() -> str:
    return f"""count(v) FILTER (WHERE mc) AS n,
               avg(v) FILTER (WHERE mc) AS a, min(v) FILTER (WHERE mc) AS lo, max(v) FILTER (WHERE mc) AS hi,
               quantile_cont(v, [0.5, 0.95, 0.99]) FILTER (WHERE mc) AS q,
               count(*) FILTER (WHERE {ERRORS_SQL}) AS errors, count(*) AS events"""


def _source_sql(q: PerformanceQuery, m: MetricDef, tr: TimeRange, p: Params, key: str) -> str:
    """Every event of the range and scope: the metric's samples (mc) and the rest for error_rate."""
    return f"""
        SELECT {key} AS k, {m.column} AS v, ({_metric_sql(m, p)}) AS mc, severity
        FROM events
        WHERE ts >= {p.add(tr.since)}::TIMESTAMP AND ts < {p.add(tr.until)}::TIMESTAMP {_scope_sql(q, p)}"""


def groups_sql(q: PerformanceQuery, m: MetricDef, tr: TimeRange, p: Params) -> str:
    """The first limit+1 groups with samples, worst p95 first (one scan; a GROUPING SETS total doubled it)."""
    order = "ASC" if m.higher_is_better else "DESC"
    return f"""
    SELECT k, {_stats_sql()}
    FROM ({_source_sql(q, m, tr, p, _key_sql(q.group_by))})
    GROUP BY k
    HAVING count(v) FILTER (WHERE mc) > 0
    ORDER BY q[2] {order}, n DESC, k NULLS LAST
    LIMIT {int(q.limit) + 1}
    """


def overall_sql(q: PerformanceQuery, m: MetricDef, tr: TimeRange, p: Params) -> str:
    """Every sample of the range at once (the error rate's counts come from the day series)."""
    return f"""
    SELECT 'all' AS k, count(v) AS n, avg(v) AS a, min(v) AS lo, max(v) AS hi, quantile_cont(v, [0.5, 0.95, 0.99]) AS q
    FROM (
        SELECT {m.column} AS v FROM events
        WHERE ts >= {p.add(tr.since)}::TIMESTAMP AND ts < {p.add(tr.until)}::TIMESTAMP
          AND {_metric_sql(m, p)} {_scope_sql(q, p)}
    )"""


def compare_sql(q: PerformanceQuery, m: MetricDef, sides: Sides, p: Params) -> str:
    """Per key: baseline and candidate counts, p50 and p95; worst change first."""
    if sides.mode == "versions":
        span = sides.candidate_range
        side = (
            f"CASE WHEN service_version = {p.add(sides.baseline)} THEN 0 "
            f"WHEN service_version = {p.add(sides.candidate)} THEN 1 END"
        )
    else:
        span = TimeRange(sides.baseline_range.since, sides.candidate_range.until, sides.candidate_range.tz)
        side = f"CASE WHEN ts < {p.add(sides.candidate_range.since)}::TIMESTAMP THEN 0 ELSE 1 END"
    worse = "-1.0" if m.higher_is_better else "1.0"
    return f"""
    WITH src AS (
        SELECT {_key_sql(q.group_by)} AS k, {m.column} AS v, {side} AS side
        FROM events
        WHERE ts >= {p.add(span.since)}::TIMESTAMP AND ts < {p.add(span.until)}::TIMESTAMP
          AND {_metric_sql(m, p)} {_scope_sql(q, p)}
    ),
    agg AS (
        SELECT k,
               count(v) FILTER (WHERE side = 0) AS nb, count(v) FILTER (WHERE side = 1) AS nc,
               quantile_cont(v, [0.5, 0.95]) FILTER (WHERE side = 0) AS qb,
               quantile_cont(v, [0.5, 0.95]) FILTER (WHERE side = 1) AS qc
        FROM src WHERE side IS NOT NULL
        GROUP BY k
        HAVING count(v) FILTER (WHERE side = 0) > 0 AND count(v) FILTER (WHERE side = 1) > 0
    )
    SELECT * FROM agg
    ORDER BY {worse} * (qc[2] - qb[2]) / nullif(qb[2], 0) DESC NULLS FIRST, nc DESC, k NULLS LAST
    LIMIT {MAX_COMPARE_KEYS}
    """


# ---------------------------------------------------------------- validation against the store


def _distinct(store: Store, kind: str) -> list[str]:
    """The stored values of one column, from the catalog kept at ingest (no scan of the events)."""
    return sorted(store.catalog(kind))


def resolve_metric(store: Store, metric: str) -> MetricDef:
    """A built-in metric, or the name of performance events present in the store."""
    if metric in METRICS:
        return METRICS[metric]
    names = _distinct(store, "metric")
    if metric not in names:
        raise unknown("metric", metric, [*METRICS, *names])
    return MetricDef("performance", metric, "value", None)


def resolve_sides(store: Store, q: PerformanceQuery, tr: TimeRange) -> Sides | None:
    """Check the compare argument against the store and the grouping."""
    c = q.compare
    if c is None:
        return None
    if c.previous_period:
        before = TimeRange(tr.since - (tr.until - tr.since), tr.since, tr.tz)
        return Sides("previous_period", "previous period", "this period", before, tr)
    if GROUP_COLUMNS[q.group_by] == "service_version":
        raise InvalidArgument(
            "group_by service_version cannot split a comparison of two versions; "
            "use group_by component, platform, framework or none"
        )
    versions = _distinct(store, "service_version")
    check_known("service_version", [c.baseline_version or "", c.candidate_version or ""], versions)
    return Sides("versions", c.baseline_version or "", c.candidate_version or "", tr, tr)


def validate(store: Store, q: PerformanceQuery) -> None:
    if q.component is not None:
        check_known(
            "component",
            [q.component],
            _distinct(store, "component"),
        )


# ---------------------------------------------------------------- execution


def _group(row: dict[str, Any], key: str | None) -> PerfGroup:
    qs = row["q"] or [None, None, None]
    return PerfGroup(
        key=key,
        count=int(row["n"]),
        avg=r4(row["a"]),
        min=r4(row["lo"]),
        max=r4(row["hi"]),
        p50=r4(qs[0]),
        p95=r4(qs[1]),
        p99=r4(qs[2]),
        error_rate=rate(row["errors"], row["events"]),
    )


def change(baseline: float | None, candidate: float | None) -> float | None:
    """Relative change as a fraction, rounded to 4 decimals; None when the baseline is 0 or missing."""
    if baseline is None or candidate is None or baseline == 0:
        return None
    return r4((candidate - baseline) / baseline)


def is_regressed(
    baseline: float | None,
    candidate: float | None,
    change_pct: float | None,
    threshold: float,
    higher_is_better: bool,
) -> bool:
    """Worse by more than threshold (compared on the rounded fraction, so exactly 10 % is not > 10 %)."""
    if baseline is None or candidate is None:
        return False
    if change_pct is None:  # baseline 0: any move in the bad direction is unbounded
        return candidate < baseline if higher_is_better else candidate > baseline
    return -change_pct > threshold if higher_is_better else change_pct > threshold


def _regression(row: dict[str, Any], q: PerformanceQuery, m: MetricDef) -> Regression:
    qb, qc = row["qb"], row["qc"]
    b95, c95 = r4(qb[1]), r4(qc[1])
    ch = change(qb[1], qc[1])
    return Regression(
        key=row["k"],
        baseline_count=int(row["nb"]),
        candidate_count=int(row["nc"]),
        baseline_p50=r4(qb[0]),
        candidate_p50=r4(qc[0]),
        baseline_p95=b95,
        candidate_p95=c95,
        change_pct=None if ch is None else r4((qc[1] - qb[1]) / qb[1] * 100),
        regressed=is_regressed(qb[1], qc[1], ch, q.threshold, m.higher_is_better),
    )


def _worst_first(r: Regression, m: MetricDef) -> tuple[float, int, bool, str]:
    """Sort key: biggest worsening first; a change from a zero baseline counts as infinite."""
    if r.change_pct is None:
        worsening = float("inf") if r.regressed else float("-inf")
    else:
        worsening = -r.change_pct if m.higher_is_better else r.change_pct
    return (-worsening, -r.candidate_count, r.key is None, r.key or "")


def _fmt(x: float | None, unit: str | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:,.1f}" + (f" {unit}" if unit else "")


def _subject(q: PerformanceQuery, key: str | None) -> str:
    if q.group_by == "none":
        return q.metric
    label = key if key is not None else f"(no {q.group_by})"
    return f"{label} {q.metric}"


def _n(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


def _signed(x: float | None) -> str:
    if x is None:
        return "n/a"
    return ("+" if x >= 0 else "") + pct(x)


def summarize(
    q: PerformanceQuery,
    m: MetricDef,
    unit: str | None,
    overall: PerfGroup,
    groups: list[PerfGroup],
    sides: Sides | None,
    regressions: list[Regression],
    regressed_count: int,
    compared: int,
    truncated: bool,
    notes: list[str] | None = None,
) -> str:
    """The worst regression first (with a compare), else the worst group; then the overall figures."""
    parts: list[str] = []
    if sides is not None:
        span = (
            f"from {sides.baseline} to {sides.candidate}"
            if sides.mode == "versions"
            else "vs the previous period"
        )
        worst = regressions[0] if regressions else None
        if worst is not None and worst.regressed:
            verb = "fell" if (worst.change_pct or 0) < 0 else "rose"
            amount = pct(abs(worst.change_pct) / 100) if worst.change_pct is not None else "from 0"
            parts.append(
                f"{_subject(q, worst.key)} p95 {verb} {amount} {span} "
                f"(p95 {_fmt(worst.baseline_p95, None)} → {_fmt(worst.candidate_p95, unit)})."
            )
            parts.append(
                f"{regressed_count:,} of {_n(compared, 'group')} regressed beyond {pct(q.threshold)}."
            )
        elif worst is not None:
            parts.append(
                f"No {q.metric} p95 regression beyond {pct(q.threshold)} {span} "
                f"across {_n(compared, 'group')}; "
                f"largest change: {_subject(q, worst.key)} {_signed(None if worst.change_pct is None else worst.change_pct / 100)} "
                f"(p95 {_fmt(worst.baseline_p95, None)} → {_fmt(worst.candidate_p95, unit)})."
            )
        else:
            parts.append(f"No group has {q.metric} samples on both sides {span}; nothing to compare.")
    if overall.count == 0:
        parts.append(f"No {q.metric} samples ({m.source}) in range.")
        return clip(" ".join(parts))
    notes = notes or []
    if groups and q.group_by != "none":
        g = groups[0]
        which = "Lowest" if m.higher_is_better else "Slowest"
        parts.append(
            f"{which} {q.group_by} by {q.metric} p95: {g.key if g.key is not None else '(none)'} "
            f"{_fmt(g.p95, unit)} (p50 {_fmt(g.p50, None)}, n={g.count:,}, error rate {pct(g.error_rate)})."
        )
    parts.append(
        f"Overall {q.metric}: p50 {_fmt(overall.p50, unit)}, p95 {_fmt(overall.p95, unit)}, "
        f"p99 {_fmt(overall.p99, unit)} over {overall.count:,} samples."
    )
    if truncated:
        parts.append(f"Lists cut at limit={q.limit} (truncated).")
    if notes:
        parts[1:1] = notes  # after the lead sentence
    return clip(" ".join(parts))


def _iso(dt: datetime) -> str:
    return iso_utc(dt) or ""


def run(store: Store, q: PerformanceQuery) -> PerformanceResult:
    """Execute analyze_performance against the store."""
    tr = parse_range(q.since, q.until, q.timezone)
    m = resolve_metric(store, q.metric)
    validate(store, q)
    sides = resolve_sides(store, q, tr)

    p = Params()
    data = store.fetch_dicts(groups_sql(q, m, tr, p), p.values)
    groups = [_group(r, r["k"]) for r in data[: q.limit]]
    # Events and errors per day of the whole scope: the overall error rate, and the detector's
    # error series for the notes (one scan for both).
    day_rows = _errors_by_day(store, q, tr)
    op = Params()
    overall_row = store.fetch_dicts(overall_sql(q, m, tr, op), op.values)[0]
    overall_row["events"] = sum(int(r["n"]) for r in day_rows)
    overall_row["errors"] = sum(int(r["e"]) for r in day_rows)
    overall = _group(overall_row, "all")
    groups_truncated = len(data) > q.limit

    regressions: list[Regression] = []
    compare_info = None
    regressions_truncated = False
    if sides is not None:
        cp = Params()
        all_regressions = [
            _regression(r, q, m) for r in store.fetch_dicts(compare_sql(q, m, sides, cp), cp.values)
        ]
        all_regressions.sort(key=lambda r: _worst_first(r, m))
        regressed_count = sum(1 for r in all_regressions if r.regressed)
        regressions = all_regressions[: q.limit]
        regressions_truncated = len(all_regressions) > q.limit
        compare_info = CompareInfo(
            mode=sides.mode,
            baseline=sides.baseline,
            candidate=sides.candidate,
            baseline_since=_iso(sides.baseline_range.since),
            baseline_until=_iso(sides.baseline_range.until),
            candidate_since=_iso(sides.candidate_range.since),
            candidate_until=_iso(sides.candidate_range.until),
            threshold=q.threshold,
            groups_compared=len(all_regressions),
            regressed_count=regressed_count,
        )
    unit = m.unit if m.unit is not None or m.name is None else performance_unit(store, tr, m.name)
    truncated = groups_truncated or regressions_truncated
    return PerformanceResult(
        metric=q.metric,
        source=m.source,
        unit=unit,
        direction="higher_is_better" if m.higher_is_better else "lower_is_better",
        group_by=q.group_by,
        since=_iso(tr.since),
        until=_iso(tr.until),
        overall=overall,
        groups=groups,
        groups_truncated=groups_truncated,
        compare=compare_info,
        regressions=regressions,
        regressions_truncated=regressions_truncated,
        truncated=truncated,
        summary=summarize(
            q,
            m,
            unit,
            overall,
            groups,
            sides,
            regressions,
            compare_info.regressed_count if compare_info else 0,
            compare_info.groups_compared if compare_info else 0,
            truncated,
            _notes(store, q, tr, day_rows),
        ),
    )


def _scope(q: PerformanceQuery) -> list[Filter]:
    scope = list(q.filters or [])
    if q.component:
        scope.append(Filter(field="component", op="eq", value=q.component))
    return scope


def _errors_by_day(store: Store, q: PerformanceQuery, tr: TimeRange) -> list[dict[str, Any]]:
    """The detector's error series (day buckets) over every event of the scope: rows {b, n, e}."""
    from telemetry_mcp.analytics import anomalies, detector  # anomalies builds on this module

    aq = anomalies.AnomalyQuery(
        metric="errors",
        interval="day",
        filters=_scope(q),
        threshold=detector.DEFAULT_THRESHOLD,
        limit=1,
    )
    p = Params()
    return store.fetch_dicts(anomalies.series_sql(aq, None, tr, p), p.values)


def _notes(store: Store, q: PerformanceQuery, tr: TimeRange, day_rows: list[dict[str, Any]]) -> list[str]:
    """What the shared detector flags over the range (day buckets): the metric's p95, then errors."""
    from telemetry_mcp.analytics.anomalies import spike_sentence, worst, worst_errors_of

    counts = [(r["b"], int(r["n"]), int(r["e"])) for r in day_rows]
    found = [
        worst(store, tr, "day", _scope(q), metric=q.metric, stat="p95"),
        worst_errors_of(tr, "day", counts),
    ]
    return [spike_sentence(a, "day", tr.tz) for a in found if a is not None]


def performance_unit(store: Store, tr: TimeRange, name: str) -> str | None:
    """The unit most performance events of this name carry in range (custom metrics declare none)."""
    p = Params()
    rows = store.fetch(
        f"SELECT mode(unit) FROM events WHERE {range_where(tr, p)} AND event_type = 'performance' "
        f"AND name = {p.add(name)} AND unit IS NOT NULL",
        p.values,
    )
    return str(rows[0][0]) if rows and rows[0][0] is not None else None
