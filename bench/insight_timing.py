"""Wall time of the insight analyses on a file store (median of 5 warm runs after one warm-up).

python fixtures/generate.py --events 1000000 --out /tmp/1m.parquet
telemetry-mcp import /tmp/1m.parquet --db /tmp/1m.duckdb
python bench/insight_timing.py /tmp/1m.duckdb
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

from telemetry_mcp.analytics import anomalies, explain
from telemetry_mcp.analytics.behavior import BehaviorQuery, run_behavior
from telemetry_mcp.config import load_settings
from telemetry_mcp.store import Store

RANGE = {"since": "2026-09-02", "until": "2026-11-01"}
CASES: dict[str, tuple[Any, Any]] = {
    "detect_anomalies errors per day": (
        anomalies.run,
        anomalies.AnomalyQuery.model_validate({"metric": "errors", "interval": "day", **RANGE}),
    ),
    "detect_anomalies events per hour by component (60 days)": (
        anomalies.run,
        anomalies.AnomalyQuery.model_validate(
            {"metric": "events", "interval": "hour", "group_by": "component", **RANGE}
        ),
    ),
    "detect_anomalies load_time p95 per day by component": (
        anomalies.run,
        anomalies.AnomalyQuery.model_validate(
            {"metric": "load_time", "interval": "day", "group_by": "component", **RANGE}
        ),
    ),
    "explain_change load_time 2.2.0 vs 2.3.0": (
        explain.run,
        explain.ExplainQuery.model_validate(
            {"metric": "load_time", "baseline": {"version": "2.2.0"}, "candidate": {"version": "2.3.0"}}
        ),
    ),
    "explain_change error_rate, spike day vs week before (depth 3)": (
        explain.run,
        explain.ExplainQuery.model_validate(
            {
                "metric": "error_rate",
                "baseline": {"since": "2026-10-13", "until": "2026-10-20"},
                "candidate": {"since": "2026-10-20", "until": "2026-10-21"},
                "max_depth": 3,
            }
        ),
    ),
    "milestones session_start → page_view → user_interaction → feature_used": (
        run_behavior,
        BehaviorQuery.model_validate(
            {
                "analysis": "milestones",
                "start_event": "session_start",
                "milestones": [
                    {"event_type": "page_view"},
                    {"event_type": "user_interaction"},
                    {"event_type": "feature_used"},
                ],
                **RANGE,
            }
        ),
    ),
}


def main() -> int:
    store = Store(load_settings({"db": sys.argv[1], "threads": 2}, env={}))
    for name, (fn, q) in CASES.items():
        fn(store, q)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            r = fn(store, q)
            times.append(time.perf_counter() - t0)
        print(
            f"{name}: median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms — {r.summary[:120]}"
        )
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
