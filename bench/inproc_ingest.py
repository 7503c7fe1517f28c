"""In-process ingest: Ingestor.ingest(list_of_dicts) on a file store, timed per call.

Run as a worker so its memory is its own:
    python bench/inproc_ingest.py --jsonl FILE --db PATH --batch 1000 --events 200000
prints one JSON object. Only the ingest calls are timed; reading and parsing the JSONL is not
(the path under test starts from Python dicts). Each batch is parsed right before its call, so the
worker never holds more than one batch. --max-seconds stops early (the rate stays valid).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any


def run(jsonl: Path, db: Path, batch: int, events: int, max_seconds: float) -> dict[str, Any]:
    from telemetry_mcp.config import Settings
    from telemetry_mcp.store import Store
    from telemetry_mcp.store.ingest import Ingestor

    settings = Settings(db=str(db))
    timed = cpu = 0.0
    accepted = rejected = duplicates = calls = done = 0
    first_errors: list[str] = []
    started = time.perf_counter()
    with Store(settings) as store, jsonl.open("rb") as fh:
        ingestor = Ingestor(store)
        while done < events and timed < max_seconds:
            take = min(batch, events - done)
            chunk: list[Any] = []
            for line in fh:
                chunk.append(json.loads(line))
                if len(chunk) >= take:
                    break
            if not chunk:
                break
            t0, c0 = time.perf_counter(), time.process_time()
            report = ingestor.ingest(chunk)
            timed += time.perf_counter() - t0
            cpu += time.process_time() - c0
            calls += 1
            done += len(chunk)
            accepted += report.accepted
            rejected += report.rejected
            duplicates += report.duplicates
            if report.errors and len(first_errors) < 3:
                first_errors += [f"#{i}: {r}" for i, r in report.errors[:3]]
        wall = time.perf_counter() - started
        store.checkpoint()
    return {
        "batch": batch,
        "events": done,
        "budget_reached": done < events,
        "calls": calls,
        "seconds": round(timed, 4),
        "events_per_s": round(done / timed, 1) if timed else None,
        "cpu_seconds": round(cpu, 4),  # process CPU (all threads) in the ingest calls
        "cpu_s_per_million": round(cpu * 1e6 / done, 2) if done else None,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "wall_seconds_incl_parse": round(wall, 3),
        "accepted": accepted,
        "rejected": rejected,
        "duplicates": duplicates,
        "errors": first_errors,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jsonl", type=Path, required=True)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument(
        "--max-seconds", type=float, default=float("inf"), help="stop after this much ingest time"
    )
    args = parser.parse_args(argv)
    print(json.dumps(run(args.jsonl, args.db, args.batch, args.events, args.max_seconds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
