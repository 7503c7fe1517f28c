"""The anomaly detector every tool shares: seasonal decomposition plus a robust residual test.

The method is Twitter's S-H-ESD idea with statsmodels' STL doing the decomposition:

1. Counts (events, errors, users, samples) are first made roughly homoscedastic with the Anscombe
   transform 2·sqrt(x + 3/8) (Poisson noise becomes ~N(0, 1)), so a quiet night and a busy afternoon
   are judged on the same scale and sparse error counts are not "anomalous" for one extra error.
2. Seasons: hourly data has a daily season (STL, period 24, robust) and, from 15 days on, a weekly
   one (STL, period 7, robust, on the daily means, spread back over the hours); daily data has a
   weekly season (period 7). Each season needs two full cycles and must stand clearly above the
   noise (else STL's "season" of pure noise would invent anomalies), or it is left out.
3. The level of each bucket comes from the buckets before it (a trailing window of 7 days of hours,
   14 days, or 2 hours of minutes): the median, for counts the 10 %-trimmed mean (sparse counts
   take a handful of values, their median is 0 or 1 whatever the rate). Expected values thus come
   from the past, as an alert sees them: a spike does not move its own level, and a level shift
   stays anomalous until the window is full of it, instead of being absorbed by a fitted trend or
   by S-H-ESD's block median.
4. Residual z-scores: counts against Poisson tails (with the overdispersion the data shows: the
   trimmed Pearson dispersion), rates against their pooled binomial rate, values against
   1.4826·MAD of the residual (robust to the anomalies themselves).
5. Multi-scale: a bucket also takes the z of the 6- and 24-bucket windows holding it (hour; 3 and 7
   days; 15 and 60 minutes), Σz/√k with each z clipped to ±2 — a shift or drift of 2 sd per bucket
   is invisible pointwise and obvious over six hours, while one spike cannot lend its size.
6. Buckets with |z| ≥ threshold (raised with the series length, Bonferroni) are anomalies;
   consecutive ones in one direction (one bucket of slack) are one anomaly that lasted `buckets`
   buckets; its score is the largest |z|.
7. Hourly series: a run whose hours looked the same (within 1.6×) at the same hours of the previous
   week (and the week before, when the series reaches back that far) is a weekly habit the daily
   weekly season cannot hold (a Saturday-morning job), not an anomaly (`recurs_weekly`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

# scipy.stats and statsmodels are imported where they are used: together they took ~0.6 s of every
# server's start (a third of the cold start), and most processes never run the detector.

Kind = Literal["count", "rate", "value"]
Arr = npt.NDArray[np.float64]
DEFAULT_THRESHOLD = 3.5  # the floor; long series need more (see `threshold_for`)
MIN_POINTS = 7  # a week of days


@dataclass(frozen=True)
class Run:
    """One anomaly: buckets [start, end] (indexes into the series), values averaged over the run."""

    start: int
    end: int
    observed: float
    expected: float
    lower: float
    upper: float
    score: float
    direction: Literal["up", "down"]

    @property
    def buckets(self) -> int:
        return self.end - self.start + 1


def _forward(x: Arr, kind: Kind) -> Arr:
    return 2.0 * np.sqrt(np.maximum(x, 0.0) + 0.375) if kind == "count" else x


def _inverse(y: Arr, kind: Kind) -> Arr:
    return np.maximum((np.maximum(y, 0.0) / 2.0) ** 2 - 0.375, 0.0) if kind == "count" else y


MIN_STRENGTH = 0.3


def _stl_seasonal(y: Arr, period: int) -> Arr:
    """STL's seasonal part, or zeros when the season is weak (strength < MIN_STRENGTH).

    The seasonal smoother spans the whole series (at least 7 cycles), so the season is one stable
    profile, not free to follow (and hide) a spike. Strength is Wang, Smith & Hyndman's
    1 - Var(remainder) / Var(seasonal + remainder): on sparse noise STL still returns a "season",
    and subtracting it would invent anomalies.
    """
    cycles = len(y) // period
    smoother = max(7, 2 * cycles + 1)
    # Loess every few points, interpolated between (statsmodels' jumps): ~3x faster on hourly
    # series, the same season to the second decimal.
    jump = max(1, period // 8)
    from statsmodels.tsa.seasonal import STL

    fit = STL(
        y,
        period=period,
        seasonal=smoother,
        robust=True,
        seasonal_jump=jump,
        trend_jump=jump,
        low_pass_jump=jump,
    ).fit(inner_iter=2, outer_iter=3)
    seasonal = np.asarray(fit.seasonal, dtype=np.float64)
    resid = np.asarray(fit.resid, dtype=np.float64)
    total = float(np.var(seasonal + resid))
    strength = 1.0 - float(np.var(resid)) / total if total > 0 else 0.0
    # A per-phase mean of pure noise still varies by Var(noise)/cycles: demand well above that.
    # The noise is read from the series itself (MAD of first differences): STL's remainder is
    # smaller than the noise, its flexible trend takes a share of it.
    noise = (1.4826 * float(np.median(np.abs(np.diff(y) - np.median(np.diff(y))))) / math.sqrt(2)) ** 2
    clear = float(np.var(seasonal)) >= 4.0 * noise / max(cycles, 1)
    return seasonal if strength >= MIN_STRENGTH and clear else np.zeros(len(y))


def seasonal_component(y: Arr, interval: str) -> Arr:
    """The seasonal part of a gap-free series of `interval` buckets (zeros when too short)."""
    n = len(y)
    season = np.zeros(n)
    if interval == "hour":
        days = n // 24
        if days >= 15:
            daily = y[: days * 24].reshape(days, 24).mean(axis=1)
            weekly = _stl_seasonal(daily, 7)
            spread = np.repeat(weekly, 24)
            season[: len(spread)] = spread
            season[len(spread) :] = weekly[-1] if days else 0.0
        if n >= 2 * 24 + 1:
            season += _stl_seasonal(y - season, 24)
    elif interval == "day" and n >= 2 * 7 + 1:
        season = _stl_seasonal(y, 7)
    return season


def _center(d: Arr, kind: Kind) -> float:
    # Sparse counts take a handful of values: their median is 0 or 1 whatever the rate, so counts
    # use a 10 %-trimmed mean (still blind to the top and bottom tenth, where anomalies sit).
    from scipy.stats import trim_mean

    return float(trim_mean(d, 0.1)) if kind == "count" else float(np.median(d))


TRAILING = {"minute": 120, "hour": 168, "day": 14}


def _trailing_level(d: Arr, window: int, kind: Kind) -> Arr:
    """Each bucket's level from the `window` buckets before it (the first window: from that window)."""
    n = len(d)
    if n <= window:
        return np.full(n, _center(d, kind))
    from numpy.lib.stride_tricks import sliding_window_view
    from scipy.stats import trim_mean

    views = sliding_window_view(d[:-1], window)  # views[j] = d[j : j + window], the past of j + window
    past = trim_mean(views, 0.1, axis=1) if kind == "count" else np.median(views, axis=1)
    out = np.empty(n)
    out[:window] = _center(d[:window], kind)
    out[window:] = past
    return out


def threshold_for(n: int, floor: float = DEFAULT_THRESHOLD) -> float:
    """A z that one bucket in 20 series of n would pass by chance under Gaussian noise (Bonferroni)."""
    from statistics import NormalDist

    return max(floor, NormalDist().inv_cdf(1 - 0.05 / (2 * max(n, 1))))


def detect(
    values: Arr,
    *,
    interval: str,
    kind: Kind = "value",
    denominators: Arr | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> list[Run]:
    """Anomalous runs in one series (NaN = no data in that bucket), most severe first.

    kind "rate": `values` are rates and `denominators` their bucket sizes (events).
    """
    x = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(x)
    if ok.sum() < MIN_POINTS:
        return []
    thr = threshold_for(int(ok.sum()), threshold)
    z, expected, lower, upper = _scores(x, ok, interval, kind, denominators, thr)
    runs = _runs(multiscale(z, interval), x, expected, lower, upper, thr)
    return [r for r in runs if not recurs_weekly(x, r)] if interval == "hour" else runs


WEEK_HOURS = 168
RECUR_RATIO = 1.6  # the same hours of the previous weeks within this factor of the run: a habit


def recurs_weekly(x: Arr, run: Run) -> bool:
    """True when the run's hours looked the same in each of the previous one or two weeks.

    The weekly season is fitted on daily means (step 2), so a pattern confined to some hours of one
    weekday (a Saturday-morning batch job) is not in the model; seen again at the same hours of the
    week before (and the one before that, when there is one), it is the series' habit, not an
    anomaly. A first occurrence, a spike, or the first week of a shift has no such precedent.
    """
    sl = slice(run.start, run.end + 1)
    now = float(np.nanmean(x[sl]))
    seen = 0
    for lag in (WEEK_HOURS, 2 * WEEK_HOURS):
        if run.start - lag < 0:
            break
        before = x[run.start - lag : run.end - lag + 1]
        if not np.isfinite(before).any():
            return False
        then = float(np.nanmean(before))
        if now <= 0 or then <= 0 or max(now / then, then / now) > RECUR_RATIO:
            return False
        seen += 1
    return seen > 0


SCALES = {"minute": (15, 60), "hour": (6, 24), "day": (3, 7)}


def multiscale(z: Arr, interval: str) -> Arr:
    """Per bucket the strongest of its own z and of the k-bucket windows holding it (Σz / √k, each z
    clipped to ±2).

    A pointwise test misses a shift or a drift of 2 sd per bucket; six hours of it are ~5 sd. A
    window that passes lends its z to the buckets in it that lean the same way.
    """
    out = z.copy()
    n = len(z)
    for k in SCALES.get(interval, ()):
        if n < 2 * k:
            continue
        # Each bucket counts for at most 2 sd: one spike cannot make its neighbours a shift.
        sums = np.convolve(np.clip(z, -2.0, 2.0), np.ones(k), mode="valid") / math.sqrt(k)
        for j in np.nonzero(np.abs(sums) >= DEFAULT_THRESHOLD)[0]:
            seg = out[j : j + k]
            lean = np.sign(z[j : j + k]) == np.sign(sums[j])
            stronger = lean & (np.abs(seg) < abs(sums[j]))
            seg[stronger] = sums[j]
    return out


def _scores(
    x: Arr, ok: npt.NDArray[np.bool_], interval: str, kind: Kind, dens: Arr | None, thr: float
) -> tuple[Arr, Arr, Arr, Arr]:
    """Per bucket: signed z, expected value and the band at `thr`."""
    idx = np.arange(len(x))
    filled = np.interp(idx, idx[ok], x[ok]) if not ok.all() else x
    if kind == "rate":
        n = np.where(ok, dens if dens is not None else 1.0, 0.0)
        p0 = float(np.sum(filled * n) / np.sum(n)) if np.sum(n) > 0 else 0.0
        lam = np.maximum(p0 * n, 1e-9)
        z = _tail_z(np.round(filled * n), lam, 1.0)
        sd = np.sqrt(lam) / np.maximum(n, 1.0)
        exp = np.full(len(x), p0)
        return np.where(ok, z, 0.0), exp, np.maximum(exp - thr * sd, 0.0), exp + thr * sd
    y = _forward(filled, kind)
    season = seasonal_component(y, interval)
    level = _trailing_level(y - season, TRAILING.get(interval, 60), kind)
    base = season + level
    resid = y - base
    mad = 1.4826 * float(np.median(np.abs(resid[ok] - np.median(resid[ok]))))
    if kind == "count":
        lam = np.maximum(_inverse(base, kind), 0.05)
        # Overdispersion (bursts of events from one session): the Pearson dispersion with the top
        # 5 % trimmed, so the anomalies themselves do not widen the band.
        pearson = np.sort(((filled - lam) ** 2 / lam)[ok])
        kept = pearson[: max(1, int(len(pearson) * 0.95))]
        phi = max(1.0, float(kept.mean()))
        z = _tail_z(filled, lam, phi)
        sd = np.sqrt(phi * lam)
        return np.where(ok, z, 0.0), lam, np.maximum(lam - thr * sd, 0.0), lam + thr * sd
    scale = float(np.median(np.abs(y[ok])))
    sigma = max(mad, 1e-9 + 1e-6 * scale)
    return np.where(ok, resid / sigma, 0.0), base, base - thr * sigma, base + thr * sigma


def _tail_z(k: Arr, lam: Arr, phi: float) -> Arr:
    """Signed normal-equivalent of the Poisson tail of k given lam, deflated by the overdispersion."""
    from scipy.stats import norm, poisson

    up = norm.isf(np.clip(poisson.sf(k - 1, lam), 1e-300, 1.0))
    down = -norm.isf(np.clip(poisson.cdf(k, lam), 1e-300, 1.0))
    z = np.where(k > lam, np.maximum(up, 0.0), np.minimum(down, 0.0))
    return np.asarray(np.clip(z / math.sqrt(phi), -50.0, 50.0), dtype=np.float64)


def _runs(z: Arr, x: Arr, expected: Arr, lower: Arr, upper: Arr, threshold: float) -> list[Run]:
    flagged = np.abs(z) >= threshold
    runs: list[Run] = []
    i, n = 0, len(z)
    while i < n:
        if not flagged[i]:
            i += 1
            continue
        sign = 1.0 if z[i] > 0 else -1.0
        j = i
        while True:
            if j + 1 < n and flagged[j + 1] and z[j + 1] * sign > 0:
                j += 1
            elif j + 2 < n and flagged[j + 2] and z[j + 2] * sign > 0 and z[j + 1] * sign > threshold / 2:
                j += 2
            else:
                break
        sl = slice(i, j + 1)
        runs.append(
            Run(
                start=i,
                end=j,
                observed=float(np.nanmean(x[sl])),
                expected=float(expected[sl].mean()),
                lower=float(lower[sl].mean()),
                upper=float(upper[sl].mean()),
                score=float(np.max(np.abs(z[sl]))),
                direction="up" if sign > 0 else "down",
            )
        )
        i = j + 1
    runs.sort(key=lambda r: (-r.score, r.start))
    return runs


def point_scores(values: Arr, *, interval: str, kind: Kind = "value") -> Arr:
    """|z| of every bucket (the bench thresholds these); NaN buckets score 0."""
    x = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(x)
    if ok.sum() < MIN_POINTS:
        return np.zeros(len(x))
    z, _, _, _ = _scores(x, ok, interval, kind, None, DEFAULT_THRESHOLD)
    return np.abs(multiscale(z, interval))


def describe_run(run: Run) -> str:
    """'10 vs 1.2 expected (score 8.1, 1 bucket)' — used by every summary that flags one."""

    def fmt(v: float) -> str:
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.4g}" if not math.isnan(v) else "n/a"

    span = "" if run.buckets == 1 else f", {run.buckets} buckets"
    return f"{fmt(run.observed)} vs {fmt(run.expected)} expected (score {run.score:.1f}{span})"
