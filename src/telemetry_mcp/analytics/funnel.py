"""Funnels (SPEC 4.4 and 5): ordered, strict or unordered; per user or per session.

Every step-0 event inside [since, until) starts an attempt (an anchor: any step event, for unordered).
The attempts are extended step by step in SQL, attempts hit by an exclusion are dropped, and each
actor counts once, at its furthest clean attempt (ties: the earliest).

- ordered: step k is the earliest event matching it at or after step k-1's time (equal timestamps
  convert) that is not already one of the attempt's steps; chained ASOF joins on the actor key.
- strict: step k is the actor's very next event (ts, seq order) and must match step k.
- unordered: from an anchor, the first event of every step at or after it; "step k" = k+1 of them.

Every step must be at most `conversion_window` after step 0 (inclusive).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field

from telemetry_mcp.analytics.behavior import BehaviorQuery, Exclusion, StepSpec
from telemetry_mcp.analytics.common import (
    Filter,
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
    sessionized,
)
from telemetry_mcp.errors import InvalidArgument, did_you_mean
from telemetry_mcp.store import Store

MIN_STEPS, MAX_STEPS = 2, 10
MAX_WINDOW = timedelta(days=365)
OTHER = "other"


class FunnelStep(BaseModel):
    """One funnel step (0-based index) with its counts and times to convert."""

    index: int = Field(description="0-based step index")
    label: str
    users: int = Field(description="actors (users, or sessions with by=session) who reached this step")
    conversion_from_start: float = Field(description="users here / users at step 0 (0-1)")
    conversion_from_previous: float = Field(description="users here / users at the previous step (0-1)")
    dropoff: int = Field(description="users at the previous step minus users here (0 for step 0)")
    avg_seconds_to_convert: float | None = Field(
        description="mean time from the previous step; null for step 0"
    )
    median_seconds_to_convert: float | None = Field(description="median (interpolated); null for step 0")


class BreakdownRow(BaseModel):
    """The funnel of the actors whose best attempt's step-0 event had this value."""

    value: str | None = Field(
        description='breakdown value (null: the step-0 event lacks it; "other": the rest)'
    )
    other_values: int | None = Field(
        None, description='how many smaller values the "other" row merges (null for a real value)'
    )
    steps: list[FunnelStep]


class FunnelResult(BaseModel):
    """analyze_user_behavior(analysis=funnel)."""

    steps: list[FunnelStep] = Field(description="one row per funnel step, step 0 first")
    overall_conversion: float = Field(description="users at the last step / users at step 0 (0-1)")
    breakdown: list[BreakdownRow] | None = Field(
        None, description="per breakdown_by value (top `limit` by step-0 users, the rest as 'other')"
    )
    summary: str
    truncated: bool = Field(description='true when breakdown values beyond `limit` were merged into "other"')
    warnings: list[str] = Field(default_factory=list, description="steps or exclusions that match nothing")


@dataclass(frozen=True)
class FunnelSpec:
    """A validated funnel question."""

    steps: list[StepSpec]
    labels: list[str]
    window: timedelta
    window_text: str
    order: str
    by: str
    exclusions: list[Exclusion]
    breakdown_by: str | None
    tr: TimeRange
    filters: list[Filter] | None
    limit: int
    session_timeout_minutes: float
    warnings: tuple[str, ...] = ()

    @property
    def n(self) -> int:
        return len(self.steps)

    @property
    def unit(self) -> str:
        return "sessions" if self.by == "session" else "users"

    def count(self, n: int) -> str:
        """'1 user', '2,000 sessions'."""
        return f"{n:,} {self.unit if n != 1 else self.unit[:-1]}"


def step_label(step: StepSpec) -> str:
    """The display label: the given one, else the event name, else the event type (with its component)."""
    if step.label:
        return step.label
    if step.name:
        return step.name
    return f"{step.event_type} {step.component}" if step.component else step.event_type


def prepare(store: Store, query: BehaviorQuery) -> FunnelSpec:
    """Validate the funnel arguments of a BehaviorQuery (shared by funnel and dropoff)."""
    steps = query.steps or []
    if not MIN_STEPS <= len(steps) <= MAX_STEPS:
        raise InvalidArgument(
            f"analysis {query.analysis} needs `steps`: {MIN_STEPS} to {MAX_STEPS} items like "
            '{"event_type": "page_view", "name": "checkout"} (optional name, component, filters); '
            f"got {len(steps)}"
        )
    window = parse_duration(query.conversion_window, "conversion_window")
    if not timedelta(seconds=1) <= window <= MAX_WINDOW:
        raise InvalidArgument(
            f'conversion_window "{query.conversion_window}" is out of bounds; use 1s to 365d (e.g. 30m, 24h, 14d)'
        )
    exclusions = query.exclusions or []
    for ex in exclusions:
        if not 0 <= ex.from_step < ex.to_step <= len(steps) - 1:
            raise InvalidArgument(
                f"exclusion of {ex.event.event_type}: from_step {ex.from_step} / to_step {ex.to_step} must satisfy "
                f"0 <= from_step < to_step <= {len(steps) - 1} (0-based step indexes of this funnel)"
            )
        if query.order == "unordered" and (ex.from_step, ex.to_step) != (0, len(steps) - 1):
            raise InvalidArgument(
                "unordered funnels only take exclusions over the whole funnel: "
                f"from_step 0 and to_step {len(steps) - 1}"
            )
    tr = parse_range(query.since, query.until, query.timezone)
    # Validate names and filters now (clear errors before any SQL runs).
    probe = Params()
    if query.breakdown_by:
        field_sql(query.breakdown_by, probe)
    for spec in [*steps, *(ex.event for ex in exclusions)]:
        compile_filters(spec.filters, probe)
    compile_filters(query.filters, probe)
    # A step or exclusion that matches nothing is an answer (zeros there), not an error, as in PostHog.
    known = {r[0] for r in store.fetch("SELECT DISTINCT event_type FROM events")}
    named = [(f"step {i}", s) for i, s in enumerate(steps)] + [
        (f"exclusion {j}", ex.event) for j, ex in enumerate(exclusions)
    ]
    warnings = [
        f'{where} event_type "{spec.event_type}" matches no stored event'
        + (did_you_mean(spec.event_type, sorted(known)) or "")
        for where, spec in named
        if spec.event_type not in known
    ]
    if query.order == "unordered":
        labels = [f"completed {i + 1} step{'s' if i else ''}" for i in range(len(steps))]
    else:
        labels = [step_label(s) for s in steps]
    return FunnelSpec(
        steps=list(steps),
        labels=labels,
        window=window,
        window_text=query.conversion_window.strip(),
        order=query.order,
        by=query.by,
        exclusions=list(exclusions),
        breakdown_by=query.breakdown_by,
        tr=tr,
        filters=query.filters,
        limit=query.limit,
        session_timeout_minutes=store.settings.session_timeout_minutes,
        warnings=tuple(warnings),
    )


# ---------------------------------------------------------------- SQL building


def _match_sql(step: StepSpec, p: Params) -> str:
    parts = [f"event_type = {p.add(step.event_type)}"]
    if step.name is not None:
        parts.append(f"name = {p.add(step.name)}")
    if step.component is not None:
        parts.append(f"component = {p.add(step.component)}")
    return f"coalesce({' AND '.join(parts)}{compile_filters(step.filters, p)}, false)"


def _events_cte(spec: FunnelSpec, p: Params, name: str, *, step_types_only: bool) -> str:
    """Events the funnel may look at, keyed by actor (or session), with step/exclusion flags.

    `step_types_only` keeps just the event types of the steps and exclusions (a scan-level filter).
    """
    since, end = p.add(spec.tr.since), p.add(spec.tr.until + spec.window)
    in_range = f"ts >= {since}::TIMESTAMP AND ts < {end}::TIMESTAMP"
    if spec.by == "session":
        source, key = sessionized(in_range, spec.session_timeout_minutes, p), "session_key"
    else:
        source, key = "events", "actor"
    where = in_range
    if step_types_only:
        types = sorted({s.event_type for s in spec.steps} | {ex.event.event_type for ex in spec.exclusions})
        where += f" AND list_contains({p.add(types)}::VARCHAR[], event_type)"
    flags = [f"{_match_sql(s, p)} AS m{i}" for i, s in enumerate(spec.steps)]
    flags += [f"{_match_sql(ex.event, p)} AS x{j}" for j, ex in enumerate(spec.exclusions)]
    bd = f"({field_sql(spec.breakdown_by, p)})::VARCHAR" if spec.breakdown_by else "NULL::VARCHAR"
    return f"""{name} AS (
        SELECT {key} AS ah, ts, seq, event_type, name, {bd} AS bd, {", ".join(flags)}
        FROM {source} AS src
        WHERE {where}{compile_filters(spec.filters, p)}
    )"""


def _ordered_ctes(spec: FunnelSpec, until: str, win: str, exact: bool) -> list[str]:
    n = spec.n
    ctes = [f"a0 AS (SELECT ah, bd, ts AS t0, seq AS q0 FROM ev WHERE m0 AND ts < {until})"]
    for k in range(1, n):
        if not exact:
            # No earlier step event can match this step, and which of several events at one
            # timestamp is picked changes nothing: a plain ASOF join on the time.
            ctes += [
                f"g{k} AS (SELECT ah, ts, seq FROM ev WHERE m{k})",
                f"""a{k} AS (
                    SELECT a.*, CASE WHEN g.ts <= a.t0 + {win} THEN g.ts END AS t{k},
                           CASE WHEN g.ts <= a.t0 + {win} THEN g.seq END AS q{k}
                    FROM a{k - 1} a ASOF LEFT JOIN g{k} g ON a.ah = g.ah AND g.ts >= a.t{k - 1}
                )""",
            ]
            continue
        used = ", ".join(f"a.q{i}" for i in range(k))
        ctes += [
            # Matching events grouped per timestamp, with the next group: events already used by
            # the attempt can only be at the previous step's timestamp, so the next group is the fallback.
            f"""g{k} AS (
                SELECT ah, ts, seqs, lead(ts) OVER w AS nts, lead(seqs[1]) OVER w AS nseq
                FROM (SELECT ah, ts, list(seq ORDER BY seq) AS seqs FROM ev WHERE m{k} GROUP BY ah, ts)
                WINDOW w AS (PARTITION BY ah ORDER BY ts)
            )""",
            f"""j{k} AS (
                SELECT a.*, g.ts AS g_ts, g.nts AS g_nts, g.nseq AS g_nseq,
                       list_filter(g.seqs, lambda x: NOT list_contains([{used}], x))[1] AS g_fu
                FROM a{k - 1} a ASOF LEFT JOIN g{k} g ON a.ah = g.ah AND g.ts >= a.t{k - 1}
            )""",
            f"""a{k} AS (
                SELECT * EXCLUDE (g_ts, g_nts, g_nseq, g_fu, c_t, c_q),
                       CASE WHEN c_t <= t0 + {win} THEN c_t END AS t{k},
                       CASE WHEN c_t <= t0 + {win} THEN c_q END AS q{k}
                FROM (SELECT *, CASE WHEN g_fu IS NOT NULL THEN g_ts ELSE g_nts END AS c_t,
                             coalesce(g_fu, g_nseq) AS c_q FROM j{k})
            )""",
        ]
    ctes.append(f"att AS (SELECT * FROM a{n - 1})")
    return ctes


def _strict_ctes(spec: FunnelSpec, until: str, win: str) -> list[str]:
    n = spec.n
    leads = []
    for k in range(1, n):
        leads += [
            f"lead(m{k}, {k}) OVER o AS f{k}",
            f"lead(ts, {k}) OVER o AS l{k}",
            f"lead(seq, {k}) OVER o AS s{k}",
        ]
    cols, cond = [], "true"
    for k in range(1, n):
        cond = f"{cond} AND coalesce(f{k}, false) AND l{k} <= ts + {win}"
        cols += [f"CASE WHEN {cond} THEN l{k} END AS t{k}", f"CASE WHEN {cond} THEN s{k} END AS q{k}"]
    return [
        f"""w AS (
            SELECT ah, bd, ts, seq, m0, {", ".join(leads)}
            FROM ev WINDOW o AS (PARTITION BY ah ORDER BY ts, seq)
        )""",
        f"att AS (SELECT ah, bd, ts AS t0, seq AS q0, {', '.join(cols)} FROM w WHERE m0 AND ts < {until})",
    ]


# (ts, seq) packed into one HUGEINT that sorts like the pair: window mins over it are 4x faster
# than over a STRUCT. seq stays below 2^40 (a trillion events).
SEQ_BITS = 1 << 40


def order_key(ts: str, seq: str) -> str:
    """SQL: the (ts, seq) order as one comparable HUGEINT."""
    return f"(epoch_us({ts})::HUGEINT * {SEQ_BITS} + {seq})"


def _unordered_ctes(spec: FunnelSpec, until: str, win: str) -> list[str]:
    n = spec.n
    any_step = " OR ".join(f"m{i}" for i in range(n))
    # Per event: the first event of every step at or after its time (RANGE: same-time peers count).
    nexts = ", ".join(
        f"min(CASE WHEN m{j} THEN {order_key('ts', 'seq')} END) OVER w AS f{j}" for j in range(n)
    )
    close = f"(epoch_us(ts + {win})::HUGEINT + 1) * {SEQ_BITS}"
    firsts = ", ".join(f"CASE WHEN f{j} < {close} THEN f{j} END" for j in range(n))
    cols = [f"make_timestamp((done[{k + 1}] // {SEQ_BITS})::BIGINT) AS t{k}" for k in range(n)]
    cols += [f"(done[{k + 1}] % {SEQ_BITS})::BIGINT AS q{k}" for k in range(1, n)]
    return [
        f"""u AS (
            SELECT ah, bd, ts, seq, {nexts} FROM ev WHERE {any_step}
            WINDOW w AS (PARTITION BY ah ORDER BY ts RANGE BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)
        )""",
        # Completed steps sorted by time: "step k" of an unordered funnel is the (k+1)-th of them.
        f"""d AS (
            SELECT ah, bd, seq AS q0, list_sort(list_filter([{firsts}], lambda x: x IS NOT NULL)) AS done
            FROM u WHERE ts < {until}
        )""",
        f"att AS (SELECT ah, bd, q0, {', '.join(cols)} FROM d)",
    ]


def _overlapping(spec: FunnelSpec) -> bool:
    """Whether a step or an exclusion may match an event an earlier step used (same event_type)."""
    types = [s.event_type for s in spec.steps]
    return len(set(types)) < len(types) or any(ex.event.event_type in types for ex in spec.exclusions)


def attempts_sql(spec: FunnelSpec, p: Params, *, with_base: bool = False) -> str:
    """WITH … ending in `best`: one row per actor (its counted attempt); `base` (all events) on request.

    `best` columns: ah, bd, reached (1..n), t0..t{n-1} / q0..q{n-1} (step times / seqs, null when not
    reached), d1..d{n-1} (seconds from the previous step), last_k (order_key of the last step event).
    """
    n = spec.n
    until = f"{p.add(spec.tr.until)}::TIMESTAMP"
    win = f"{p.add(spec.window)}::INTERVAL"
    ctes = [_events_cte(spec, p, "base", step_types_only=False)] if with_base else []
    if spec.order == "strict":
        # Strictness needs every event of the actors that start the funnel.
        src = "base" if with_base else "evs"
        if not with_base:
            ctes.append(_events_cte(spec, p, "evs", step_types_only=False))
        ctes.append(
            f"ev AS (SELECT * FROM {src} WHERE ah IN (SELECT ah FROM {src} WHERE m0 AND ts < {until}))"
        )
        chain = _strict_ctes(spec, until, win)
    else:
        ctes.append(_events_cte(spec, p, "ev", step_types_only=True))
        if spec.order == "ordered":
            chain = _ordered_ctes(spec, until, win, exact=with_base or _overlapping(spec))
        else:
            chain = _unordered_ctes(spec, until, win)
    ts = [f"t{k}" for k in range(n)]
    qs = ", ".join(f"q{k}" for k in range(n))
    reached = " + ".join(f"(t{k} IS NOT NULL)::INTEGER" for k in range(n))
    keys = ", ".join(order_key(f"t{k}", f"q{k}") for k in range(n))
    ctes += chain
    ctes.append(
        f"""att2 AS (
            SELECT ah, bd, {", ".join(ts)}, {qs}, {reached} AS reached, [{qs}] AS qs,
                   list_max([{keys}]) AS last_k
            FROM att
        )"""
    )
    if spec.exclusions:
        bad = []
        for j, ex in enumerate(spec.exclusions):
            f, t = ex.from_step, ex.to_step
            # Strictly between the two steps' times (PostHog); up to the window's close when
            # to_step was not reached. The attempt's own step events never count as excluded.
            bad.append(
                f"""SELECT a.ah, a.q0 FROM att2 a JOIN ev x ON x.ah = a.ah AND x.x{j}
                    AND a.t{f} IS NOT NULL AND x.ts > a.t{f}
                    AND CASE WHEN a.t{t} IS NULL THEN x.ts <= a.t0 + {win} ELSE x.ts < a.t{t} END
                    AND NOT list_contains(a.qs, x.seq)"""
            )
        ctes.append(f"bad AS ({' UNION '.join(bad)})")
        ctes.append(
            "clean AS (SELECT * FROM att2 a WHERE NOT EXISTS (SELECT 1 FROM bad b WHERE b.ah = a.ah AND b.q0 = a.q0))"
        )
    else:
        ctes.append("clean AS (SELECT * FROM att2)")
    durations = ", ".join(f"epoch(t{k} - t{k - 1}) AS d{k}" for k in range(1, n))
    ctes.append(
        f"""best AS (
            SELECT *, {durations} FROM clean
            QUALIFY row_number() OVER (PARTITION BY ah ORDER BY reached DESC, t0, q0) = 1
        )"""
    )
    return "WITH " + ",\n".join(ctes)


def funnel_sql(spec: FunnelSpec, p: Params) -> str:
    """Step counts and times, overall (grp_id 1) and per breakdown group (grp_id 0)."""
    n = spec.n
    head = attempts_sql(spec, p)
    aggs = [f"count(*) FILTER (WHERE reached >= {k + 1}) AS u{k}" for k in range(n)]
    aggs += [f"avg(d{k}) AS avg{k}, quantile_cont(d{k}, 0.5) AS med{k}" for k in range(1, n)]
    if not spec.breakdown_by:
        return f"{head}\nSELECT 1 AS grp_id, false AS is_other, NULL AS grp, 0 AS nvals, {', '.join(aggs)} FROM best"
    limit = p.add(spec.limit)
    return f"""{head},
    vals AS (SELECT bd, count(*) AS n FROM best GROUP BY bd),
    ranked AS (SELECT bd, row_number() OVER (ORDER BY n DESC, bd NULLS LAST) AS r FROM vals),
    lab AS (
        SELECT b.*, r.r, r.r > {limit} AS is_other, CASE WHEN r.r > {limit} THEN NULL ELSE b.bd END AS grp
        FROM best b JOIN ranked r ON b.bd IS NOT DISTINCT FROM r.bd
    )
    SELECT grouping(is_other, grp) = 3 AS grp_id, is_other, grp, count(DISTINCT r) AS nvals, {", ".join(aggs)}
    FROM lab GROUP BY GROUPING SETS ((), (is_other, grp))"""


# ---------------------------------------------------------------- results


def build_steps(row: dict[str, Any], labels: list[str]) -> list[FunnelStep]:
    """Turn one aggregate row (u{k}, avg{k}, med{k}) into the SPEC's steps list."""
    users = [int(row[f"u{k}"]) for k in range(len(labels))]
    out = []
    for k, label in enumerate(labels):
        prev = users[k - 1] if k else users[0]
        out.append(
            FunnelStep(
                index=k,
                label=label,
                users=users[k],
                conversion_from_start=rate(users[k], users[0]),
                conversion_from_previous=rate(users[k], prev),
                dropoff=prev - users[k] if k else 0,
                avg_seconds_to_convert=r4(row.get(f"avg{k}")) if k else None,
                median_seconds_to_convert=r4(row.get(f"med{k}")) if k else None,
            )
        )
    return out


def biggest_dropoff(steps: list[FunnelStep]) -> FunnelStep | None:
    """The step with the largest share lost from the previous one (first on ties); None if nobody entered."""
    worst: FunnelStep | None = None
    for s in steps[1:]:
        if steps[s.index - 1].users and (
            worst is None or s.conversion_from_previous < worst.conversion_from_previous
        ):
            worst = s
    return worst


def describe(spec: FunnelSpec, steps: list[FunnelStep]) -> str:
    """The opening of a funnel summary: conversion, entry count and the biggest drop-off."""
    first, last = steps[0], steps[-1]
    if not first.users:
        return (
            f"No {spec.unit} did step 0 '{first.label}' between {spec.tr.since.isoformat()}Z and "
            f"{spec.tr.until.isoformat()}Z, so the {spec.n}-step funnel is empty."
        )
    text = (
        f"{pct(rate(last.users, first.users))} of {spec.count(first.users)} converted through "
        f"{spec.n} steps ({spec.order}, {spec.window_text} window; {last.users:,} reached '{last.label}')."
    )
    worst = biggest_dropoff(steps)
    if worst is not None and worst.dropoff:
        prev = steps[worst.index - 1]
        text += (
            f" Biggest drop-off: step {prev.index} '{prev.label}' → step {worst.index} '{worst.label}', "
            f"{pct(1 - worst.conversion_from_previous)} lost ({spec.count(worst.dropoff)})."
        )
    return text


def run(store: Store, query: BehaviorQuery) -> FunnelResult:
    """Compute the funnel described by `query` (analysis=funnel)."""
    spec = prepare(store, query)
    p = Params()
    rows = store.fetch_dicts(funnel_sql(spec, p), p.values)
    total = next(r for r in rows if r["grp_id"])
    steps = build_steps(total, spec.labels)
    breakdown = None
    truncated = False
    if spec.breakdown_by:
        groups = [r for r in rows if not r["grp_id"]]
        groups.sort(key=lambda r: (bool(r["is_other"]), -int(r["u0"]), r["grp"] is None, r["grp"] or ""))
        breakdown = [
            BreakdownRow(
                value=OTHER if r["is_other"] else r["grp"],
                other_values=int(r["nvals"]) if r["is_other"] else None,
                steps=build_steps(r, spec.labels),
            )
            for r in groups
        ]
        truncated = any(r["is_other"] for r in groups)
    summary = describe(spec, steps)
    if spec.warnings:
        notes = (f"Warning: {w}" + ("" if w.endswith("?") else ".") for w in spec.warnings)
        summary = " ".join(notes) + " " + summary
    if breakdown:
        real = [b for b in breakdown if b.other_values is None and b.steps[0].users]
        if len(real) > 1:
            top = max(real, key=lambda b: b.steps[-1].conversion_from_start)
            low = min(real, key=lambda b: b.steps[-1].conversion_from_start)
            summary += (
                f" By {spec.breakdown_by}: best {top.value!s} {pct(top.steps[-1].conversion_from_start)}, "
                f"worst {low.value!s} {pct(low.steps[-1].conversion_from_start)}."
            )
        if truncated:
            other = breakdown[-1]
            summary += f" {other.other_values:,} smaller values grouped as '{OTHER}'."
    return FunnelResult(
        steps=steps,
        overall_conversion=rate(steps[-1].users, steps[0].users),
        breakdown=breakdown,
        summary=clip(summary),
        truncated=truncated,
        warnings=list(spec.warnings),
    )
