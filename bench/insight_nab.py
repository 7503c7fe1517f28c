"""NAB-style score of the shared anomaly detector, side by side with a windowed-Gaussian baseline.

Data: four realKnownCause files of the Numenta Anomaly Benchmark (bench/nab/data, MIT licence in
bench/nab/LICENSE.txt, labels bench/nab/combined_windows.json; numenta/NAB commit ea702d7).
Scoring follows NAB's sweeper (nab/sweeper.py): per window the earliest detection scores
tpWeight·scaledSigmoid(position)/scaledSigmoid(-1); a missed window −fnWeight; every detection
outside a window fpWeight·scaledSigmoid(distance past the previous window) (−fpWeight before any
window); the first 15 % of each file (at most 750 rows) is probationary. Standard profile
(tp 1, fp 0.11, fn 1). Like NAB, each detector's threshold is optimised over the corpus; scores are
normalised to 100·(S − S_null)/(S_perfect − S_null), S_null = every window missed.

Our detector (the one the tools use) works on buckets: each file is averaged per hour, scored
causally one day at a time (STL on at most the last 2,000 hours up to that day's end, the day's
buckets scored), and an anomaly is reported once, at the first row of the hour where a run starts
(as detect_anomalies reports one anomaly per run). The baseline is NAB's windowedGaussian: the
tail probability of each row under the mean and sd of the previous 6,400 rows, every row scored.
It is run both as NAB has it and with the same onset rule, in the same run.

    python bench/insight_nab.py
"""

from __future__ import annotations

import csv
import json
import math
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from telemetry_mcp.analytics.detector import point_scores

HERE = Path(__file__).parent / "nab"
PROFILE = {"tp": 1.0, "fp": 0.11, "fn": 1.0}
ONSET_Z = 3.5


def scaled_sigmoid(x: float) -> float:
    return -1.0 if x > 3.0 else 2 / (1 + math.exp(5 * x)) - 1.0


def load(name: str) -> tuple[list[datetime], np.ndarray]:
    with open(HERE / "data" / name) as f:
        rows = list(csv.DictReader(f))
    return [datetime.fromisoformat(r["timestamp"]) for r in rows], np.array([float(r["value"]) for r in rows])


def sweep_points(ts: list[datetime], windows: list[list[str]]) -> tuple[list[float], list[int | None]]:
    """Per row: its NAB sweep score and window index (None outside; -1 probationary)."""
    n = len(ts)
    limits = [(datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in windows]
    index = {t: i for i, t in enumerate(ts)}
    spans = [(index[a], index[b]) for a, b in limits]
    probation = min(math.floor(0.15 * n), 0.15 * 5000)
    max_tp = scaled_sigmoid(-1.0)
    scores: list[float] = []
    names: list[int | None] = []
    prev: tuple[int, int] | None = None
    for i in range(n):
        w = next((k for k, (a, b) in enumerate(spans) if a <= i <= b), None)
        if w is not None:
            a, b = spans[w]
            scores.append(scaled_sigmoid(-(b - i + 1) / (b - a + 1)) * PROFILE["tp"] / max_tp)
        else:
            before = [s for s in spans if s[1] < i]
            prev = before[-1] if before else None
            if prev is None:
                scores.append(-1.0 * PROFILE["fp"])
            else:
                scores.append(scaled_sigmoid(abs(prev[1] - i) / (prev[1] - prev[0] + 1 - 1)) * PROFILE["fp"])
        names.append(-1 if i < probation else w)
    return scores, names


def corpus_score(
    files: list[tuple[np.ndarray, list[float], list[int | None], int]], threshold: float
) -> float:
    total = 0.0
    for det, sweep, names, nwin in files:
        best = [-PROFILE["fn"]] * nwin
        fp = 0.0
        for i in np.nonzero(det >= threshold)[0]:
            w = names[i]
            if w == -1:
                continue
            if w is None:
                fp += sweep[i]
            else:
                best[w] = max(best[w], sweep[i])
        total += sum(best) + fp
    return total


def ours(ts: list[datetime], x: np.ndarray) -> np.ndarray:
    """Hourly means, scored a day at a time from the past only; score at each run's first row."""
    hours = [t.replace(minute=0, second=0, microsecond=0) for t in ts]
    uniq = sorted(set(hours))
    pos = {h: k for k, h in enumerate(uniq)}
    first = {h: hours.index(h) for h in uniq}
    span = int((uniq[-1] - uniq[0]).total_seconds() // 3600) + 1
    series = np.full(span, np.nan)
    sums = np.zeros(span)
    counts = np.zeros(span)
    for h, v in zip(hours, x, strict=True):
        k = int((h - uniq[0]).total_seconds() // 3600)
        sums[k] += v
        counts[k] += 1
    series[counts > 0] = sums[counts > 0] / counts[counts > 0]
    z = np.zeros(span)
    for end in range(48, span + 24, 24):
        end = min(end, span)
        lo = max(0, end - 2000)
        z[max(end - 24, 0) : end] = point_scores(series[lo:end], interval="hour")[-(end - max(end - 24, 0)) :]
        if end == span:
            break
    out = np.zeros(len(ts))
    for k in range(span):
        if z[k] >= ONSET_Z and (k == 0 or z[k - 1] < ONSET_Z):
            h = uniq[0].__class__.fromtimestamp(uniq[0].timestamp() + 3600 * k)
            if h in pos:
                out[first[h]] = z[k]
    return out


def gaussian(x: np.ndarray, window: int = 6400, onset: bool = False) -> np.ndarray:
    """NAB's windowedGaussian: 1 − tail probability under the previous `window` rows' mean and sd."""
    out = np.zeros(len(x))
    for i in range(1, len(x)):
        w = x[max(0, i - window) : i]
        sd = float(w.std())
        if len(w) < 2 or sd == 0:
            continue
        zz = abs(x[i] - float(w.mean())) / sd
        out[i] = 1 - 0.5 * math.erfc(zz / math.sqrt(2))
    if onset:
        cut = 1 - 0.5 * math.erfc(ONSET_Z / math.sqrt(2))
        prev = np.concatenate([[0.0], out[:-1]])
        out = np.where((out >= cut) & (prev < cut), out, 0.0)
    return out


def best(
    files: list[tuple[np.ndarray, list[float], list[int | None], int]], windows: int
) -> dict[str, float]:
    pool = np.concatenate([f[0] for f in files])
    cands = (
        np.unique(np.quantile(pool[pool > 0], np.linspace(0, 1, 400)))
        if (pool > 0).any()
        else np.array([1.0])
    )
    scored = [(corpus_score(files, float(t)), float(t)) for t in cands]
    s, t = max(scored)
    null = -PROFILE["fn"] * windows
    perfect = PROFILE["tp"] * windows
    return {
        "threshold": round(t, 6),
        "raw": round(s, 4),
        "normalised": round(100 * (s - null) / (perfect - null), 1),
    }


def main() -> int:
    labels = json.loads((HERE / "combined_windows.json").read_text())
    t0 = time.perf_counter()
    detectors = {
        "telemetry-mcp (STL + robust z, hourly)": [],
        "windowedGaussian (NAB)": [],
        "windowedGaussian, onset only": [],
    }
    windows = 0
    for name, wins in sorted(labels.items()):
        ts, x = load(name)
        sweep, names = sweep_points(ts, wins)
        windows += len(wins)
        for key, det in zip(detectors, (ours(ts, x), gaussian(x), gaussian(x, onset=True)), strict=True):
            detectors[key].append((det, sweep, names, len(wins)))
        print(f"{name}: {len(ts):,} rows, {len(wins)} windows", flush=True)
    results = {k: best(v, windows) for k, v in detectors.items()}
    for k, v in results.items():
        print(f"{k}: NAB standard score {v['normalised']} (raw {v['raw']}, threshold {v['threshold']})")
    print(f"{len(labels)} files, {windows} windows, {time.perf_counter() - t0:.0f} s")
    out = Path("bench/results/insight-nab.json")
    out.write_text(json.dumps({"files": sorted(labels), "windows": windows, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
