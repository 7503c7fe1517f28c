"""Data lifecycle figures: export memory and speed, and the store file before/after pruning half.

    python bench/lifecycle.py --events 2000000

1. builds a file store of N events spread over 180 days (synthetic, tests/lifecycle_data.py);
2. exports it as JSONL and Parquet in a fresh process each, sampling peak RSS (psutil);
3. prunes the older half (raw_retention_days = 90 with the clock at the end of the data) and
   reports the file size: before, after the DELETE + CHECKPOINT that prune does, and after
   `compact` (a copy into a new file, `ATTACH` + `COPY FROM DATABASE`, swapped in place);
4. rollups: the first `Rollups.refresh` of all N events (cost per million), an incremental one of
   100,000 new events, the rollup tables' rows; after the prune, collect_metrics over the whole
   180 days (then answered from rollups before the cutoff) by day, by hour, and in total.

    python bench/lifecycle.py --events 1000000 --skip-export   # steps 1, 3 and 4 only
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def _build(db: Path, n: int) -> None:
    from lifecycle_data import events
    from telemetry_mcp.analytics.common import utcnow
    from telemetry_mcp.config import load_settings
    from telemetry_mcp.store import Store
    from telemetry_mcp.store.ingest import Ingestor

    start = utcnow() - timedelta(days=181)
    with Store(load_settings({"db": str(db)}, env={})) as store:
        ingestor = Ingestor(store)
        chunk = 100_000
        for k in range(0, n, chunk):
            # one generated slice at a time: bounded memory while building
            part = events(chunk, start + timedelta(days=180) * k / n, days=180 * chunk / n, seed=k)
            for i in range(0, chunk, 10_000):
                ingestor.ingest(part[i : i + 10_000])
        store.refresh_sessions()
        store.checkpoint()


def _export_child(db: str, path: str, fmt: str) -> None:
    import psutil

    from telemetry_mcp.config import load_settings
    from telemetry_mcp.store import Store
    from telemetry_mcp.store.export import export_events

    proc = psutil.Process()
    with Store(load_settings({"db": db}, env={})) as store:
        base = proc.memory_info().rss
        peak = [base]
        done = threading.Event()

        def watch() -> None:
            while not done.wait(0.02):
                peak[0] = max(peak[0], proc.memory_info().rss)

        t = threading.Thread(target=watch)
        t.start()
        started = time.perf_counter()
        report = export_events(store, path, fmt)
        seconds = time.perf_counter() - started
        done.set()
        t.join()
    print(json.dumps({"format": fmt, "events": report.events, "bytes": report.bytes, "seconds": seconds,
                      "rss_before_mb": base / 2**20, "rss_peak_mb": peak[0] / 2**20}))  # fmt: skip


def _refresh(db: Path) -> dict[str, float]:
    from lifecycle_data import events
    from telemetry_mcp.analytics.common import utcnow
    from telemetry_mcp.config import load_settings
    from telemetry_mcp.store import Store
    from telemetry_mcp.store.ingest import Ingestor
    from telemetry_mcp.store.rollups import Rollups

    before = db.stat().st_size
    with Store(load_settings({"db": str(db), "raw_retention_days": 0}, env={})) as store:
        first = Rollups.refresh(store)
        store.checkpoint()
        used = store.fetch("SELECT used_blocks * block_size FROM pragma_database_size()")[0][0]
        rollup_bytes = (
            store.fetch(
                "SELECT sum(used_blocks) FROM (SELECT 1 AS used_blocks FROM pragma_storage_info('rollup_hour') "
                "WHERE block_id >= 0 GROUP BY block_id UNION ALL SELECT 1 FROM pragma_storage_info('rollup_day') "
                "WHERE block_id >= 0 GROUP BY block_id)"
            )[0][0]
            * 262_144
        )
        new = events(100_000, utcnow() - timedelta(days=1), days=1, seed=999_999)
        for i in range(0, len(new), 10_000):
            Ingestor(store).ingest(new[i : i + 10_000])
        store.refresh_sessions()
        inc = Rollups.refresh(store)
        hours, days = (store.fetch(f"SELECT count(*) FROM {t}")[0][0] for t in ("rollup_hour", "rollup_day"))
        store.checkpoint()
    return {"events": first.events, "seconds": first.seconds, "per_million": first.seconds / first.events * 1e6,
            "inc_events": inc.events, "inc_seconds": inc.seconds, "hour_rows": hours, "day_rows": days,
            "file_before": before, "used_after_first": used, "rollup_bytes": rollup_bytes,
            "rollup_bytes_per_million": rollup_bytes / first.events * 1e6}  # fmt: skip


def _metrics_after_prune(db: Path) -> list[tuple[str, float, bool, int]]:
    from telemetry_mcp.analytics import metrics
    from telemetry_mcp.analytics.common import utcnow
    from telemetry_mcp.config import load_settings
    from telemetry_mcp.store import Store

    today = utcnow().date()
    midnight = (today - timedelta(days=182)).isoformat(), (today + timedelta(days=1)).isoformat()
    old_only = (today - timedelta(days=182)).isoformat(), (today - timedelta(days=100)).isoformat()
    cases = [
        ("182d by day", {"since": "182d", "interval": "day"}),
        ("182d by hour", {"since": "182d", "interval": "hour"}),
        ("182d total", {"since": "182d", "interval": "total"}),
        (
            "182 days midnight to midnight by day",
            {"since": midnight[0], "until": midnight[1], "interval": "day"},
        ),
        (
            "182 days midnight to midnight, week",
            {"since": midnight[0], "until": midnight[1], "interval": "week"},
        ),
        ("82 pruned days only, by day", {"since": old_only[0], "until": old_only[1], "interval": "day"}),
        ("last 30 days (raw, exact) by day", {"since": "30d", "interval": "day"}),
    ]
    out = []
    with Store(load_settings({"db": str(db), "raw_retention_days": 90}, env={})) as store:
        for label, args in cases:
            q = metrics.MetricsQuery.model_validate({**args, "limit": 1000})
            metrics.run(store, q)  # warm
            started = time.perf_counter()
            r = metrics.run(store, q)
            out.append((label, time.perf_counter() - started, r.approximate, r.totals.count))
    return out


def _prune(db: Path) -> dict[str, float]:
    from telemetry_mcp.analytics.common import utcnow
    from telemetry_mcp.config import load_settings
    from telemetry_mcp.store import Store
    from telemetry_mcp.store.lifecycle import compact, prune

    before = db.stat().st_size
    with Store(load_settings({"db": str(db), "raw_retention_days": 90}, env={})) as store:
        total = store.total_events()
        report = prune(store, utcnow())
        left = store.total_events()
        after = db.stat().st_size
        done = compact(store)  # what `telemetry-mcp compact` does
    return {"events": total, "deleted": report.raw_events, "left": left, "prune_seconds": report.seconds,
            "bytes_before": before, "bytes_after_prune_checkpoint": after, "bytes_after_copy": db.stat().st_size,
            "copy_seconds": done.seconds}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--skip-export", action="store_true")
    args = ap.parse_args()
    if args.child:
        _export_child(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "life.duckdb"
        started = time.perf_counter()
        _build(db, args.events)
        print(
            f"built {args.events:,} events in {time.perf_counter() - started:.0f} s: {db.stat().st_size:,} bytes"
        )
        for fmt in () if args.skip_export else ("jsonl", "parquet"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(db), str(Path(tmp) / f"out.{fmt}"), fmt],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            r = json.loads(out.stdout.strip().splitlines()[-1])
            (Path(tmp) / f"out.{fmt}").unlink()
            print(f"export {fmt}: {r['events']:,} events, {r['bytes']:,} bytes in {r['seconds']:.1f} s; "
                  f"RSS {r['rss_before_mb']:.0f} → peak {r['rss_peak_mb']:.0f} MiB")  # fmt: skip
        r = _refresh(db)
        print(f"rollups: first refresh {r['events']:,} events in {r['seconds']:.1f} s "
              f"({r['per_million']:.1f} s per million); incremental {r['inc_events']:,} new events in "
              f"{r['inc_seconds']:.2f} s; rollup_hour {r['hour_rows']:,} rows, rollup_day {r['day_rows']:,} rows; "
              f"file {r['file_before']:,} bytes before the rollups; the rollup tables take {r['rollup_bytes']:,} "
              f"bytes ({r['rollup_bytes_per_million'] / 2**20:.1f} MiB per million events)")  # fmt: skip
        p = _prune(db)
        print(f"prune half: deleted {p['deleted']:,} of {p['events']:,} in {p['prune_seconds']:.1f} s; file "
              f"{p['bytes_before']:,} → {p['bytes_after_prune_checkpoint']:,} bytes (DELETE + CHECKPOINT) → "
              f"{p['bytes_after_copy']:,} bytes (telemetry-mcp compact: COPY FROM DATABASE into a new file, swapped in, "
              f"{p['copy_seconds']:.1f} s)")  # fmt: skip
        for interval, seconds, approximate, count in _metrics_after_prune(db):
            print(f"collect_metrics {interval}: {seconds * 1000:.0f} ms, approximate={approximate}, "
                  f"{count:,} events")  # fmt: skip


if __name__ == "__main__":
    main()
