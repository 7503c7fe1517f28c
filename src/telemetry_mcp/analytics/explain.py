"""explain_change: which dimension values (and combinations) explain a metric's change.

Method. We follow **Adtributor** (Bhagwan et al., NSDI 2014) for what a cause is worth —
*explanatory power* (its share of the total change) and *surprise* (Jensen–Shannon divergence
between its baseline and candidate shares) — and take from **HotSpot** (ripple effect) and
**Squeeze/RiskLoc** the search over combinations of several dimensions. Adtributor alone looks
at one dimension at a time; a regression such as "LoaderSpinner in 2.3.0" lives in a pair. We do
not follow RiskLoc's leaf classification or Squeeze's deviation clustering, because both need a
forecast per leaf, which we do not have for two arbitrary periods or versions; the change per leaf
is all we know. So:

1. The metric is written as a sum over leaves (the finest combinations of the dimensions): each
   leaf ℓ has a change Δℓ and ΣΔℓ is the total change.
   - additive (events, errors, users, a count of samples): Δℓ = cℓ − k·bℓ, where k = candidate
     length / baseline length when both sides are periods (a day is compared with a day; the
     baseline values reported are scaled so), else 1.
     `users` sums each leaf's distinct users, an approximation (one user can sit in two leaves).
   - ratio (error_rate = errors / events; avg = sum / count): Δℓ = (numℓ,c − r_b·denℓ,c)/DEN_c −
     (numℓ,b − r_b·denℓ,b)/DEN_b, the leaf's excess over the baseline ratio r_b, as a share of the
     side's total denominator DEN. It sums exactly to R_c − R_b, and a leaf that is new (or gone) but
     at the usual ratio contributes nothing: only the mix-adjusted excess counts.
   - percentiles (p50/p95/p99): the proxy is the share of samples above the baseline quantile —
     of the sample's own component when component is a dimension (components differ by orders of
     magnitude, so a global p95 only sees the slowest ones), else the global baseline quantile —
     a ratio metric as above. The causes' baseline/candidate values are their real quantiles.
2. Explanatory power of an element e = Σ_{ℓ∈e} Δℓ / ΣΔℓ (Adtributor's EP, on the leaf deltas).
   An element that holds ≥ 95 % of the numerator on both sides (event_type=error for errors) is the
   whole, not a part, and is never a cause.
   For additive metrics the search only sees leaves that moved beyond noise (|Δ| ≥ 3.5 noise sd — Poisson, scaled by the data's own spread — and
   ≥ 10 % of the leaf: RiskLoc's abnormal-leaf partition), so a general element does not win on
   the summed noise of thousands of leaves. Ratio metrics keep every leaf: a leaf whose events are
   all errors (name=render_error) moves the rate by its volume, not by its own ratio.
3. Additive metrics (counts, users): a likelihood search. Every leaf of a cause moves by the same
   factor (the ripple effect), so giving a true cause its own Poisson rate gains the sum of its
   leaves' gains — more than any of its children — while a parent that holds a cause and unchanged
   leaves gains less than the cause alone (log-sum inequality). So the element with the largest
   gain is the cause at its own granularity, whatever its depth (this is what HotSpot's ripple and
   Squeeze's "same deviation per leaf" rest on). Its leaves leave the search, which repeats while
   the best gain clears a bar for the thousands of elements tried (χ² tail ~1e-15, after the data's
   overdispersion, read from the leaves as `abnormal` does) and explains ≥ 2 % of the change; at
   most 3 causes. Shared parents no longer absorb two causes, and a small three-dimension cause is
   found from its total, where each of its leaves alone is within noise.
4. Ratio metrics and percentiles (greedy on EP): take the element with the largest EP at any
   depth; then, while a child of it with one more dimension keeps ≥ 80 % of its EP, descend to that
   child (the change is concentrated there: LoaderSpinner × 2.3.0, not LoaderSpinner nor 2.3.0).
   The chosen element's leaves are then removed and the search repeats while the set explains
   < 80 % of the change and the next explains ≥ 10 % of it (at most 3). Other strong elements
   follow in `causes` with root_cause false.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from telemetry_mcp.analytics.anomalies import COUNT_METRICS, ERRORS_SQL, Stat, resolve
from telemetry_mcp.analytics.common import (
    DEFAULT_LIMIT,
    FIELD_COLUMNS,
    MAX_LIMIT,
    Filter,
    Params,
    clip,
    compile_filters,
    iso_utc,
    parse_instant,
    r4,
    utcnow,
)
from telemetry_mcp.analytics.performance import MetricDef
from telemetry_mcp.errors import InvalidArgument, unknown
from telemetry_mcp.store import Store

DEFAULT_DIMENSIONS = ("component", "service_version", "platform", "framework", "os", "event_type", "name")
ALLOWED_DIMENSIONS = (*DEFAULT_DIMENSIONS, "service", "page", "severity", "unit")
SPECIALIZE = 0.8
# Stop adding causes once the set explains EXPLAINED of the change, or the next explains < MIN_EP.
# Additive metrics search only the leaves that moved beyond noise, so they can go further; ratio
# metrics search every leaf and stop earlier (noise would pass for a second cause).
MIN_EP = {False: 0.05, True: 0.1}
EXPLAINED = {False: 0.9, True: 0.8}
MAX_ROOT_CAUSES = 3
# Likelihood gain a cause of an additive metric must clear (after overdispersion): beyond a χ²(1)
# tail of 1e-15, a Bonferroni bar for the few thousand elements a search tries with room for the
# noise the overdispersion estimate misses (on the seeded cubes: true causes ≥ 54, noise ≤ 27).
SIGNIFICANT_GAIN = 35.0
MIN_EP_LIKELIHOOD = 0.02  # a further significant cause still has to matter
MAX_LEAVES = 200_000
QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
NULL = "(null)"


class Side(BaseModel):
    """A period {since, until?} (ISO or relative), a service {version}, or both."""

    model_config = ConfigDict(extra="forbid")

    since: str | None = Field(None, max_length=64)
    until: str | None = Field(None, max_length=64)
    version: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _something(self) -> Side:
        if self.version is None and self.since is None:
            raise ValueError("a side needs {since, until?} or {version}")
        return self


class ExplainQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: str = "events"
    stat: Stat = "p95"
    baseline: Side
    candidate: Side
    dimensions: list[str] | None = None
    max_depth: int = Field(2, ge=1, le=3)
    filters: list[Filter] | None = None
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)


class Total(BaseModel):
    baseline: float | None
    candidate: float | None
    change: float | None = Field(description="candidate − baseline (counts: per baseline length of time)")
    change_pct: float | None = Field(description="percent (39.4 = +39.4 %)")


class Cause(BaseModel):
    dimensions: dict[str, str | None]
    baseline: float | None = Field(description="the metric on this element, baseline side")
    candidate: float | None
    change: float | None = Field(description="its contribution to the total change")
    explanatory_power: float = Field(description="share of the total change it explains")
    surprise: float = Field(description="Jensen–Shannon divergence of its share, baseline vs candidate")
    root_cause: bool = Field(description="part of the returned root-cause set")


class ExplainResult(BaseModel):
    metric: str
    stat: str | None
    proxy: str = Field(description="what the attribution measures")
    total: Total
    causes: list[Cause] = Field(description="root causes first, then other strong elements")
    truncated: bool
    summary: str


@dataclass
class Cube:
    """Leaves: dimension codes per dimension, and numerators/denominators per side."""

    dims: list[str]
    codes: list[npt.NDArray[np.int64]]
    labels: list[list[str | None]]
    nb: npt.NDArray[np.float64]
    nc: npt.NDArray[np.float64]
    db: npt.NDArray[np.float64]
    dc: npt.NDArray[np.float64]
    ratio: bool
    k: float = 1.0

    def deltas(self) -> npt.NDArray[np.float64]:
        if self.ratio:
            db, dc = float(self.db.sum()), float(self.dc.sum())
            p0 = float(self.nb.sum()) / db if db else 0.0
            cand = (self.nc - p0 * self.dc) / dc if dc else np.zeros(len(self.nc))
            base = (self.nb - p0 * self.db) / db if db else np.zeros(len(self.nb))
            return np.asarray(cand - base, dtype=np.float64)
        return np.asarray(self.nc - self.k * self.nb, dtype=np.float64)


@dataclass(frozen=True)
class Element:
    dims: tuple[int, ...]  # indexes into Cube.dims
    values: tuple[int, ...]  # codes
    ep: float


# ---------------------------------------------------------------- the search (pure, numpy)


def drop_constant(cube: Cube) -> Cube:
    """Dimensions with one value in every leaf (event_type for load_time) explain nothing."""
    keep = [i for i in range(len(cube.dims)) if len(cube.labels[i]) > 1] or [0]
    return Cube(
        [cube.dims[i] for i in keep],
        [cube.codes[i] for i in keep],
        [cube.labels[i] for i in keep],
        cube.nb,
        cube.nc,
        cube.db,
        cube.dc,
        cube.ratio,
        cube.k,
    )


def _keys(cube: Cube, dims: tuple[int, ...]) -> npt.NDArray[np.int64]:
    key = np.zeros(len(cube.nb), dtype=np.int64)
    for d in dims:
        key = key * (len(cube.labels[d]) + 1) + cube.codes[d]
    return key


def _decode(cube: Cube, dims: tuple[int, ...], key: int) -> tuple[int, ...]:
    out = []
    for d in reversed(dims):
        base = len(cube.labels[d]) + 1
        out.append(key % base)
        key //= base
    return tuple(reversed(out))


def _mask(cube: Cube, e: Element) -> npt.NDArray[np.bool_]:
    m = np.ones(len(cube.nb), dtype=bool)
    for d, v in zip(e.dims, e.values, strict=True):
        m &= cube.codes[d] == v
    return m


def elements(cube: Cube, max_depth: int, delta: npt.NDArray[np.float64], total: float) -> list[Element]:
    """Every element up to max_depth with its EP (on the given deltas)."""
    out: list[Element] = []
    n = len(cube.dims)
    for depth in range(1, min(max_depth, n) + 1):
        for dims in itertools.combinations(range(n), depth):
            keys = _keys(cube, dims)
            uniq, inv = np.unique(keys, return_inverse=True)
            gains = np.bincount(inv, weights=delta, minlength=len(uniq))
            sb = np.bincount(inv, weights=cube.nb, minlength=len(uniq))
            sc = np.bincount(inv, weights=cube.nc, minlength=len(uniq))
            tb, tc = float(cube.nb.sum()), float(cube.nc.sum())
            whole = ((sb >= 0.95 * tb) | (tb == 0)) & ((sc >= 0.95 * tc) | (tc == 0))
            for key, g, w in zip(uniq.tolist(), gains.tolist(), whole.tolist(), strict=True):
                if not w:
                    out.append(Element(dims, _decode(cube, dims, key), g / total if total else 0.0))
    return out


def root_causes(cube: Cube, max_depth: int) -> tuple[list[Element], list[Element]]:
    """(root-cause set, all elements by EP) — the search of the module docstring."""
    delta = cube.deltas()
    total = float(delta.sum())
    every = sorted(elements(cube, max_depth, delta, total), key=lambda e: (-e.ep, len(e.dims)))
    if not total:
        return [], every
    if cube.ratio:
        chosen, _ = _greedy(cube, max_depth, delta, total)
    else:
        chosen = _likelihood_search(cube, max_depth, delta, total)
    return chosen, every


def _poisson_gain(c: npt.NDArray[np.float64], e: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Log-likelihood gain of giving an element its own rate (c observed, e expected; Poisson)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.where(c > 0, c * np.log(np.where(c > 0, c, 1.0) / np.maximum(e, 0.5)), 0.0) - (c - e)
    return np.asarray(g, dtype=np.float64)


def _likelihood_search(
    cube: Cube, max_depth: int, delta: npt.NDArray[np.float64], total: float
) -> list[Element]:
    """Additive metrics: the element whose own rate most improves the Poisson likelihood, repeated.

    Every leaf of a cause moves by the same factor (ripple effect), so the likelihood gain of a
    true cause is the sum of its leaves' gains and beats each of its children, while a parent that
    holds a cause and unchanged leaves gains less than the cause itself (log-sum inequality): the
    best element is the cause at its own granularity, whatever its depth. Its leaves then leave the
    search and it repeats. A gain counts only when it clears a significance bar that accounts for
    the thousands of elements tried and for the data's overdispersion (the leaves' spread beyond
    Poisson, read from the data as `abnormal` does).
    """
    expected = cube.k * cube.nb
    observed = cube.nc
    sd = np.sqrt(observed + cube.k * expected + 1.0)
    std = (observed - expected) / sd
    dispersion = max(1.0, 1.4826 * float(np.median(np.abs(std - np.median(std))))) ** 2 if len(std) else 1.0
    tb, tc = float(expected.sum()), float(observed.sum())
    active = np.ones(len(observed), dtype=bool)
    n = len(cube.dims)
    combos = [d for depth in range(1, min(max_depth, n) + 1) for d in itertools.combinations(range(n), depth)]
    keyed = [(dims, *np.unique(_keys(cube, dims), return_inverse=True)) for dims in combos]
    chosen: list[Element] = []
    while len(chosen) < MAX_ROOT_CAUSES:
        best: tuple[float, int, tuple[int, ...], int] | None = None
        for dims, uniq, inv in keyed:
            c = np.bincount(inv, weights=observed * active, minlength=len(uniq)).astype(np.float64)
            e = np.bincount(inv, weights=expected * active, minlength=len(uniq)).astype(np.float64)
            whole = ((e >= 0.95 * tb) | (tb == 0)) & ((c >= 0.95 * tc) | (tc == 0))
            gains = np.where(whole, 0.0, _poisson_gain(c, e))
            i = int(np.argmax(gains))
            top = float(gains[i])
            if (
                best is None
                or top > best[0] + 1e-9
                or (abs(top - best[0]) <= 1e-9 and len(dims) < len(best[2]))
            ):
                best = (top, len(dims), dims, int(uniq[i]))
        if best is None:
            break
        gain, _, dims, key = best
        element = Element(dims, _decode(cube, dims, key), 0.0)
        mask = _mask(cube, element) & active
        ep = float(delta[mask].sum()) / total
        # The first cause may even run against the total (when the noise of thousands of leaves
        # outweighs it): a significant cause is reported with its signed share.
        if gain / dispersion < SIGNIFICANT_GAIN or (chosen and abs(ep) < MIN_EP_LIKELIHOOD):
            break
        chosen.append(Element(dims, element.values, ep))
        active &= ~mask
    return chosen


def _greedy(
    cube: Cube, max_depth: int, delta: npt.NDArray[np.float64], total: float
) -> tuple[list[Element], list[Element]]:
    every = sorted(elements(cube, max_depth, delta, total), key=lambda e: (-e.ep, len(e.dims)))
    if not total:
        return [], every
    chosen: list[Element] = []
    remaining = delta.copy()
    while len(chosen) < MAX_ROOT_CAUSES and abs(float(remaining.sum()) / total) > 1 - EXPLAINED[cube.ratio]:
        cands = elements(cube, max_depth, remaining, total) if chosen else every
        best = max(cands, key=lambda e: (e.ep, -len(e.dims)), default=None)
        if best is None or best.ep < (MIN_EP[cube.ratio] if chosen else 1e-9):
            break
        while len(best.dims) < max_depth:
            children = [
                c
                for c in cands
                if len(c.dims) == len(best.dims) + 1
                and set(best.dims) <= set(c.dims)
                and all(c.values[c.dims.index(d)] == v for d, v in zip(best.dims, best.values, strict=True))
            ]
            child = max(children, key=lambda c: c.ep, default=None)
            if child is None or child.ep < SPECIALIZE * best.ep:
                break
            best = child
        chosen.append(best)
        remaining = np.where(_mask(cube, best), 0.0, remaining)
    return chosen, every


def abnormal(cube: Cube, z: float = 3.0, rel: float = 0.1) -> npt.NDArray[np.bool_]:
    """Leaves of an additive metric whose change exceeds their noise (z) and `rel` of their size.

    Noise: Poisson sd times a factor read from the data (1.4826·MAD of the standardised changes,
    at least 1), so extra noise between periods does not turn every large leaf abnormal.
    """
    expected = cube.k * cube.nb
    diff = cube.nc - expected
    sd = np.sqrt(cube.nc + cube.k * expected + 1.0)
    std = diff / sd
    factor = max(1.0, 1.4826 * float(np.median(np.abs(std - np.median(std))))) if len(std) else 1.0
    return np.asarray(
        (np.abs(diff) >= z * factor * sd) & (np.abs(diff) >= rel * np.maximum(expected, cube.nc))
    )


def _js(p: float, q: float) -> float:
    m = (p + q) / 2
    out = 0.0
    if p > 0:
        out += 0.5 * p * math.log(p / m)
    if q > 0:
        out += 0.5 * q * math.log(q / m)
    return out


def surprise(cube: Cube, e: Element) -> float:
    m = _mask(cube, e)
    s = _js(_share(cube.nb, m), _share(cube.nc, m))
    if cube.ratio:
        s += _js(_share(cube.db, m), _share(cube.dc, m))
    return s


def _share(x: npt.NDArray[np.float64], m: npt.NDArray[np.bool_]) -> float:
    t = float(x.sum())
    return float(x[m].sum()) / t if t else 0.0


# ---------------------------------------------------------------- SQL and running


@dataclass(frozen=True)
class Resolved:
    where_b: str
    where_c: str
    k: float
    version_sides: bool


def _side_sql(side: Side, p: Params, now: datetime) -> tuple[str, datetime | None, datetime | None]:
    parts = []
    lo = hi = None
    if side.since is not None:
        zone = __import__("zoneinfo").ZoneInfo("UTC")
        lo = parse_instant(side.since, zone, now, "since")
        hi = parse_instant(side.until, zone, now, "until") if side.until else now
        if lo >= hi:
            raise InvalidArgument(f"empty side: since {iso_utc(lo)} must be before until {iso_utc(hi)}")
        parts.append(f"ts >= {p.add(lo)}::TIMESTAMP AND ts < {p.add(hi)}::TIMESTAMP")
    if side.version is not None:
        parts.append(f"service_version = {p.add(side.version)}")
    return " AND ".join(parts), lo, hi


def _resolve_sides(store: Store, q: ExplainQuery, p: Params) -> Resolved:
    versions = {
        str(r[0])
        for r in store.fetch("SELECT DISTINCT service_version FROM events WHERE service_version IS NOT NULL")
    }
    for side in (q.baseline, q.candidate):
        if side.version is not None and side.version not in versions:
            raise unknown("service_version", side.version, versions)
    now = utcnow()
    wb, lb, hb = _side_sql(q.baseline, p, now)
    wc, lc, hc = _side_sql(q.candidate, p, now)
    k = 1.0
    if lb and hb and lc and hc and q.baseline.version is None and q.candidate.version is None:
        k = (hc - lc).total_seconds() / (hb - lb).total_seconds()
    return Resolved(wb, wc, k, q.baseline.version is not None and q.candidate.version is not None)


def dimensions_of(q: ExplainQuery, versions: bool) -> list[str]:
    dims = list(q.dimensions or DEFAULT_DIMENSIONS)
    for d in dims:
        if d not in ALLOWED_DIMENSIONS:
            raise unknown("dimension", d, ALLOWED_DIMENSIONS)
    if len(set(dims)) != len(dims) or not dims:
        raise InvalidArgument("dimensions must be 1-11 distinct fields")
    if versions and "service_version" in dims and len(dims) > 1:
        dims.remove("service_version")  # the compared axis itself cannot explain anything
    return dims


def _measure(q: ExplainQuery, perf: MetricDef | None, thresholds: str) -> tuple[str, str, bool, str]:
    """(num SQL, den SQL, ratio?, proxy description)."""
    if perf is None:
        return {
            "events": ("count(*)", "0", False, "event count"),
            "errors": (f"count_if({ERRORS_SQL})", "0", False, "error count (severity error/critical)"),
            "users": ("count(DISTINCT user_id)", "0", False, "distinct users per leaf (summed)"),
            "error_rate": (f"count_if({ERRORS_SQL})", "count(*)", True, "errors / events"),
        }[q.metric]
    if q.stat == "count":
        return "count(x)", "0", False, "sample count"
    if q.stat == "avg":
        return "sum(x)", "count(x)", True, "sum / count of samples"
    return (
        f"count_if(x > {thresholds})",
        "count(x)",
        True,
        f"share of samples above their baseline {q.stat}",
    )


def _base(store: Store, q: ExplainQuery, perf: MetricDef | None, p: Params) -> tuple[Resolved, str]:
    """The side conditions and the source subquery (metric events with x), bound in `p`."""
    sides = _resolve_sides(store, q, p)
    fs = compile_filters(q.filters, p)
    restrict = "TRUE"
    x = "NULL::DOUBLE"
    if perf is not None:
        restrict = f"event_type = {p.add(perf.event_type)}"
        if perf.name:
            restrict += f" AND name = {p.add(perf.name)}"
        restrict += f" AND {perf.column} IS NOT NULL"
        x = perf.column
    return sides, f"(SELECT *, {x} AS x FROM events WHERE {restrict}{fs})"


def run(store: Store, q: ExplainQuery) -> ExplainResult:
    """Execute explain_change."""
    perf = resolve(store, q)  # type: ignore[arg-type]
    p = Params()
    sides, base_cte = _base(store, q, perf, p)
    dims = dimensions_of(q, sides.version_sides)
    cols = [FIELD_COLUMNS[d] for d in dims]
    union = f"(SELECT 0 AS side, * FROM src WHERE {sides.where_b} UNION ALL SELECT 1 AS side, * FROM src WHERE {sides.where_c})"
    ctes = f"src AS {base_cte}, u AS {union}"
    th = "NULL::DOUBLE"
    join = ""
    if perf is not None and q.stat in QUANTILES:
        qv = p.add(QUANTILES[q.stat])
        ctes += f", gthr AS (SELECT quantile_cont(x, {qv}) AS t FROM u WHERE side = 0)"
        th = "(SELECT t FROM gthr)"
        if "component" in dims:
            ctes += f", thr AS (SELECT component AS tk, quantile_cont(x, {qv}) AS t FROM u WHERE side = 0 GROUP BY ALL)"
            join = " LEFT JOIN thr ON thr.tk = u.component"
            th = f"coalesce(thr.t, {th})"
    num, den, ratio, proxy = _measure(q, perf, "th")
    sel = ", ".join(f"{c}::VARCHAR AS d{i}" for i, c in enumerate(cols))
    sql = f"""
        WITH {ctes}, s AS (SELECT u.*, {th} AS th FROM u{join})
        SELECT {sel}, side, {num} AS num, {den} AS den FROM s GROUP BY ALL
        LIMIT {MAX_LEAVES + 1}
    """
    rows = store.fetch(sql, p.values)
    if len(rows) > MAX_LEAVES:
        raise InvalidArgument(f"more than {MAX_LEAVES:,} leaves: use fewer or coarser dimensions")
    cube = drop_constant(build_cube(dims, rows, ratio, sides.k))
    chosen, every = root_causes(cube, q.max_depth)
    quantile = perf is not None and q.stat in QUANTILES
    listed = [*chosen, *[e for e in every if e not in chosen and e.ep > 0]][: min(q.limit, 50)]
    if quantile:
        conds = [
            [(FIELD_COLUMNS[cube.dims[d]], cube.labels[d][v]) for d, v in zip(e.dims, e.values, strict=True)]
            for e in listed
        ]
        qs = _quantiles(store, q, perf, [[], *conds])
        (tb, tc), values = qs[0], qs[1:]
        total = Total(baseline=r4(tb), candidate=r4(tc), change=_diff(tb, tc), change_pct=_pct(tb, tc))
    else:
        total = _total(cube)
        values = _element_values(cube, listed)
    causes = [
        Cause(
            dimensions={cube.dims[d]: cube.labels[d][v] for d, v in zip(e.dims, e.values, strict=True)},
            baseline=values[i][0],
            candidate=values[i][1],
            change=_diff(*values[i]) if quantile else r4(e.ep * (total.change or 0.0)),
            explanatory_power=r4(e.ep) or 0.0,
            surprise=r4(surprise(cube, e)) or 0.0,
            root_cause=e in chosen,
        )
        for i, e in enumerate(listed)
    ]
    result = ExplainResult(
        metric=q.metric,
        stat=None if q.metric in COUNT_METRICS else q.stat,
        proxy=proxy,
        total=total,
        causes=causes,
        truncated=len(every) > len(listed),
        summary="",
    )
    result.summary = summarize(q, result)
    return result


def build_cube(dims: list[str], rows: list[tuple[Any, ...]], ratio: bool, k: float) -> Cube:
    n = len(dims)
    leaf_index: dict[tuple[Any, ...], int] = {}
    for r in rows:
        leaf_index.setdefault(tuple(r[:n]), len(leaf_index))
    m = len(leaf_index)
    nb, nc, db, dc = (np.zeros(m) for _ in range(4))
    for r in rows:
        i = leaf_index[tuple(r[:n])]
        side, num, den = r[n], float(r[n + 1] or 0), float(r[n + 2] or 0)
        if side == 0:
            nb[i] += num
            db[i] += den
        else:
            nc[i] += num
            dc[i] += den
    labels: list[list[str | None]] = []
    codes = []
    keys = list(leaf_index)
    for d in range(n):
        vals = sorted({key[d] for key in keys}, key=lambda v: (v is None, v or ""))
        pos = {v: j for j, v in enumerate(vals)}
        labels.append(vals)
        codes.append(np.array([pos[key[d]] for key in keys], dtype=np.int64))
    return Cube(dims, codes, labels, nb, nc, db, dc, ratio, k)


def _total(cube: Cube) -> Total:
    if cube.ratio:
        b = float(cube.nb.sum() / cube.db.sum()) if cube.db.sum() else None
        c = float(cube.nc.sum() / cube.dc.sum()) if cube.dc.sum() else None
        return Total(baseline=r4(b), candidate=r4(c), change=_diff(b, c), change_pct=_pct(b, c))
    b, c = cube.k * float(cube.nb.sum()), float(cube.nc.sum())
    return Total(baseline=r4(b), candidate=r4(c), change=_diff(b, c), change_pct=_pct(b, c))


def _diff(b: float | None, c: float | None) -> float | None:
    return r4(c - b) if b is not None and c is not None else None


def _pct(b: float | None, c: float | None) -> float | None:
    return r4((c - b) / b * 100) if b and c is not None else None


def _quantiles(
    store: Store, q: ExplainQuery, perf: MetricDef | None, conds: list[list[tuple[str, str | None]]]
) -> list[tuple[float | None, float | None]]:
    """Real quantiles (baseline, candidate) of the whole metric and of each listed element."""
    p = Params()
    sides, src = _base(store, q, perf, p)
    qv = p.add(QUANTILES[q.stat])
    exprs = []
    for cond in conds:
        extra = "".join(f" AND {col}::VARCHAR IS NOT DISTINCT FROM {p.add(v)}::VARCHAR" for col, v in cond)
        exprs.append(f"quantile_cont(x, {qv}) FILTER (WHERE b{extra})")
        exprs.append(f"quantile_cont(x, {qv}) FILTER (WHERE c{extra})")
    sql = f"""SELECT {", ".join(exprs)} FROM (SELECT *, ({sides.where_b}) AS b, ({sides.where_c}) AS c FROM {src})
              WHERE b OR c"""
    row = store.fetch(sql, p.values)[0]
    return [(r4(row[2 * i]), r4(row[2 * i + 1])) for i in range(len(conds))]


def _element_values(cube: Cube, listed: list[Element]) -> list[tuple[float | None, float | None]]:
    out: list[tuple[float | None, float | None]] = []
    for e in listed:
        m = _mask(cube, e)
        if cube.ratio:
            b = float(cube.nb[m].sum() / cube.db[m].sum()) if cube.db[m].sum() else None
            c = float(cube.nc[m].sum() / cube.dc[m].sum()) if cube.dc[m].sum() else None
        else:
            b, c = cube.k * float(cube.nb[m].sum()), float(cube.nc[m].sum())
        out.append((r4(b), r4(c)))
    return out


def _v(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def label(dims: dict[str, str | None]) -> str:
    return " × ".join(f"{k}={v}" for k, v in dims.items())


def summarize(q: ExplainQuery, r: ExplainResult) -> str:
    t = r.total
    what = r.metric if r.stat is None else f"{r.metric} {r.stat}"
    b_side = q.baseline.version or f"{q.baseline.since}…{q.baseline.until or 'now'}"
    c_side = q.candidate.version or f"{q.candidate.since}…{q.candidate.until or 'now'}"
    pct = "" if t.change_pct is None else f" ({t.change_pct:+.1f} %)"
    parts = [f"{what}: {_v(t.baseline)} ({b_side}) → {_v(t.candidate)} ({c_side}){pct}."]
    if r.stat in QUANTILES:
        parts.append(f"Attribution by {r.proxy}.")
    roots = [c for c in r.causes if c.root_cause]
    if roots:
        top = roots[0]
        parts.append(
            f"Main cause: {label(top.dimensions)} explains {top.explanatory_power * 100:.0f} % of the change "
            f"({_v(top.baseline)} → {_v(top.candidate)})."
        )
        for c in roots[1:]:
            parts.append(f"Also {label(c.dimensions)} ({c.explanatory_power * 100:.0f} %).")
    else:
        parts.append("No change to explain.")
    return clip(" ".join(parts))
