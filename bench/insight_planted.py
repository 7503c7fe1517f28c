"""Planted anomalies: recall and false positives of detect_anomalies per planted kind.

A seeded generator (this file; the fixture sample stays as it is) writes 8 weeks of hourly
component telemetry, ~40 k events: every component follows a daily shape (peak in the afternoon)
and a weekly one (weekends at 55 %), Poisson counts. Planted, one component each:

- Spike: one hour at 4× (+20 events), in week 6;
- Shift: from day 45 on, 1.8× the volume (a level shift to the end);
- Drift: over the last 12 days the volume climbs linearly to 2.5× (a slow drift);
- Seasonal: every Saturday 10:00–14:00 at 3× — a weekly pattern, last Saturday too: NOT an anomaly;
- Calm: nothing.

The events go through the real ingest path into a store; detect_anomalies(metric events,
group_by component, interval hour) over the 8 weeks. A kind is recalled when an upward anomaly
starts inside its window (spike: ±1 h; shift: day 45 ± 1 day; drift: the last 12 days). Every
other anomaly is a false positive, counted per component; Seasonal and Calm should have none.

    python bench/insight_planted.py --seeds 10                  # hour buckets
    python bench/insight_planted.py --seeds 10 --interval day   # day buckets
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from telemetry_mcp.analytics import anomalies
from telemetry_mcp.config import load_settings
from telemetry_mcp.server.app import open_app

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
DAYS = 56
KINDS = ("Spike", "Shift", "Drift", "Seasonal", "Calm")


def rate(kind: str, h: int, spike_at: int) -> float:
    day, hour = divmod(h, 24)
    weekday = day % 7
    base = 6 + 5 * math.sin(2 * math.pi * (hour - 9) / 24)
    base *= 0.55 if weekday >= 5 else 1.0
    if kind == "Spike" and h == spike_at:
        return base * 4 + 20
    if kind == "Shift" and day >= 45:
        return base * 1.8
    if kind == "Drift" and day >= DAYS - 12:
        return base * (1 + 1.5 * (h - (DAYS - 12) * 24) / (12 * 24))
    if kind == "Seasonal" and weekday == 5 and 10 <= hour < 14:
        return base * 3
    return base


def poisson(rng: random.Random, lam: float) -> int:
    # Knuth for small lam, normal approximation above.
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def generate(seed: int) -> tuple[list[dict[str, object]], int]:
    rng = random.Random(f"planted/{seed}")
    spike_at = (5 * 7 + rng.randrange(5)) * 24 + rng.randrange(10, 17)
    events: list[dict[str, object]] = []
    for kind in KINDS:
        for h in range(DAYS * 24):
            for _ in range(poisson(rng, rate(kind, h, spike_at))):
                ts = START + timedelta(hours=h, seconds=rng.randrange(3600))
                events.append(
                    {
                        "event_type": "component_load",
                        "component": kind,
                        "user_id": f"u{rng.randrange(400)}",
                        "session_id": f"s{seed}-{kind}-{h}-{rng.randrange(3)}",
                        "timestamp": ts.isoformat().replace("+00:00", "Z"),
                        "duration_ms": 50.0,
                    }
                )
    return events, spike_at


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--interval", choices=["hour", "day"], default="hour")
    args = ap.parse_args()
    recall = {k: 0 for k in ("Spike", "Shift", "Drift")}
    fps = {k: 0 for k in KINDS}
    for seed in range(args.seeds):
        app = open_app(load_settings({"db": ":memory:", "threads": 2}, env={}))
        events, spike_at = generate(seed)
        for i in range(0, len(events), 10_000):
            app.ingestor.ingest(events[i : i + 10_000])
        q = anomalies.AnomalyQuery.model_validate(
            {
                "metric": "events",
                "group_by": "component",
                "interval": args.interval,
                "since": START.isoformat(),
                "until": (START + timedelta(days=DAYS)).isoformat(),
                "limit": 1000,
            }
        )
        found = anomalies.run(app.store, q).anomalies
        app.store.close()
        windows = {
            "Spike": (spike_at - 1 if args.interval == "hour" else spike_at // 24 * 24, spike_at + 1),
            "Shift": (44 * 24, 46 * 24),
            "Drift": ((DAYS - 12) * 24, DAYS * 24),
        }
        hit = set()
        for a in sorted(found, key=lambda a: a.bucket_start):
            h = int((datetime.fromisoformat(a.bucket_start) - START).total_seconds() // 3600)
            w = windows.get(a.group or "")
            if w and a.direction == "up" and w[0] <= h <= w[1]:
                hit.add(a.group)
            elif w and a.group in hit and a.direction == "up" and h >= w[0]:
                continue  # the same change, flagged again after a quiet gap
            else:
                fps[a.group or ""] += 1
        for k in hit:
            recall[k] += 1
        print(
            f"seed {seed}: {len(events):,} events, recalled {sorted(hit)}, anomalies {len(found)}", flush=True
        )
    summary = {
        "seeds": args.seeds,
        "interval": args.interval,
        "recall": {k: round(v / args.seeds, 2) for k, v in recall.items()},
        "false_positives_per_run": {k: round(v / args.seeds, 2) for k, v in fps.items()},
    }
    print(json.dumps(summary))
    Path(f"bench/results/insight-planted-{args.interval}.json").write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
