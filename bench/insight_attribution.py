"""Attribution F1 of explain_change on seeded RiskLoc/Squeeze-style cubes, each in a 1 M-event store.

A cube has 5 dimensions (component 10 values, platform 8, framework 6, os 5, service_version 4:
9,600 leaves). Every leaf gets a base volume (log-normal), a baseline count Poisson(v) on day 1 and
a candidate count Poisson(v·(1+ε)) on day 2, ε ~ N(0, 0.05) (noise). 1-3 root-cause elements of
`layer` dimensions each (non-overlapping) move their leaves by −30…−70 % or +50…+150 % (one
direction per case, magnitudes drawn per element): the ripple effect, every leaf of a cause moves by
the same factor. ~1 M events in all. explain_change(metric=events, baseline day 1, candidate day 2,
the 5 dimensions, max_depth=3) returns the root-cause set (root_cause=true); F1 against the truth
per (layer, element count), and the wall time of each call.

    python bench/insight_attribution.py --cases 10            # 10 cases per (layer, count): 90 cases
    python bench/insight_attribution.py --cases 2 --events 200000   # quick
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from telemetry_mcp.analytics import explain
from telemetry_mcp.config import load_settings
from telemetry_mcp.server.app import open_app

DIMS = {
    "component": [f"C{i}" for i in range(10)],
    "platform": [f"P{i}" for i in range(8)],
    "framework": [f"F{i}" for i in range(6)],
    "os": [f"O{i}" for i in range(5)],
    "service_version": [f"V{i}" for i in range(4)],
}
DAY1, DAY2, DAY3 = "2026-03-02", "2026-03-03", "2026-03-04"


def make_case(
    rng: np.random.Generator, layer: int, count: int, events: int
) -> tuple[dict[str, np.ndarray], list[frozenset[tuple[str, str]]]]:
    names = list(DIMS)
    grids = np.array(list(itertools.product(*[range(len(v)) for v in DIMS.values()])))
    n = len(grids)
    volume = rng.lognormal(0.0, 1.0, n)
    volume *= (events / 2) / volume.sum()
    factor = 1 + rng.normal(0, 0.05, n)
    causes: list[frozenset[tuple[str, str]]] = []
    taken = np.zeros(n, dtype=bool)
    up = rng.random() < 0.5
    while len(causes) < count:
        dims = sorted(rng.choice(len(names), layer, replace=False).tolist())
        vals = [int(rng.integers(len(DIMS[names[d]]))) for d in dims]
        mask = np.all(grids[:, dims] == vals, axis=1)
        if (mask & taken).any():
            continue
        taken |= mask
        magnitude = rng.uniform(0.5, 1.5) if up else -rng.uniform(0.3, 0.7)
        factor[mask] *= 1 + magnitude
        causes.append(frozenset((names[d], DIMS[names[d]][v]) for d, v in zip(dims, vals, strict=True)))
    base = rng.poisson(volume)
    cand = rng.poisson(volume * np.maximum(factor, 0))
    cols = {names[d]: np.array(DIMS[names[d]])[grids[:, d]] for d in range(len(names))}
    cols["b"] = base
    cols["c"] = cand
    return cols, causes


INSERT = """
INSERT INTO events (seq, event_id, ts, received_at, event_type, actor, severity, session_id, session_key,
                    component, platform, framework, os, service_version, id_hash)
SELECT row_number() OVER () AS seq, 'e' || row_number() OVER () AS event_id,
       t + to_seconds((r % 86000)::BIGINT) AS ts, t AS received_at, 'page_view', 'a' || (r % 5000), 'info',
       's' || (r % 5000), 'x:s' || (r % 5000), component, platform, framework, os, service_version,
       hash(row_number() OVER ())
FROM (SELECT *, unnest(range(n)) AS r FROM (
        SELECT *, b AS n, TIMESTAMP '2026-03-02' AS t FROM leaves
        UNION ALL SELECT *, c AS n, TIMESTAMP '2026-03-03' AS t FROM leaves))
"""


def f1(got: set[frozenset[tuple[str, str]]], truth: set[frozenset[tuple[str, str]]]) -> float:
    tp = len(got & truth)
    if not tp:
        return 0.0
    p, r = tp / len(got), tp / len(truth)
    return 2 * p * r / (p + r)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=10)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--out", default="bench/results/insight-attribution.json")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    app = open_app(load_settings({"db": ":memory:", "threads": 2}, env={}))
    store = app.store
    results: dict[str, dict[str, float]] = {}
    rows_out = []
    for layer, count in itertools.product((1, 2, 3), (1, 2, 3)):
        scores, times, sizes = [], [], []
        for _ in range(args.cases):
            cols, causes = make_case(rng, layer, count, args.events)
            cur = store.cursor()
            cur.execute("DELETE FROM events")
            cur.register("leaves", pa.table(cols))
            cur.execute(INSERT)
            sizes.append(cur.execute("SELECT count(*) FROM events").fetchall()[0][0])
            cur.unregister("leaves")
            cur.close()
            q = explain.ExplainQuery.model_validate(
                {
                    "metric": "events",
                    "baseline": {"since": DAY1, "until": DAY2},
                    "candidate": {"since": DAY2, "until": DAY3},
                    "dimensions": list(DIMS),
                    "max_depth": 3,
                }
            )
            t0 = time.perf_counter()
            r = explain.run(store, q)
            times.append(time.perf_counter() - t0)
            got = {
                frozenset((k, v) for k, v in c.dimensions.items() if v is not None)
                for c in r.causes
                if c.root_cause
            }
            scores.append(f1(got, set(causes)))
            rows_out.append(
                {
                    "layer": layer,
                    "count": count,
                    "truth": [sorted(c) for c in causes],
                    "got": [sorted(c) for c in got],
                    "f1": scores[-1],
                    "seconds": times[-1],
                }
            )
        key = f"layer {layer}, {count} element{'s' if count > 1 else ''}"
        results[key] = {
            "f1": round(statistics.mean(scores), 3),
            "median_s": round(statistics.median(times), 3),
            "max_s": round(max(times), 3),
            "events": int(statistics.mean(sizes)),
        }
        print(
            f"{key}: F1 {results[key]['f1']:.3f}, median {results[key]['median_s']:.3f} s, max {results[key]['max_s']:.3f} s, ~{results[key]['events']:,} events",
            flush=True,
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps({"args": vars(args), "summary": results, "cases": rows_out}, indent=1)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
