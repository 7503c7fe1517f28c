"""Data lifecycle figures: export memory and speed, and the store file before/after pruning half.

    python bench/lifecycle.py --events 2000000

1. builds a file store of N events spread over 180 days (synthetic, tests/lifecycle_data.py);
2. exports it as JSONL and Parquet in a fresh process each, sampling peak RSS (psutil);
3. prunes the older half (raw_retention_days = 90 with the clock at the end of the data) and
   reports the file size: before, after the DELETE + CHECKPOINT that prune does, and after a
   copy into a new file (`ATTACH` + `COPY FROM DATABASE`, DuckDB's documented way to shrink).
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


def _prune(db: Path) -> dict[str, float]:
    import duckdb

    from telemetry_mcp.analytics.common import utcnow
    from telemetry_mcp.config import load_settings
    from telemetry_mcp.store import Store
    from telemetry_mcp.store.lifecycle import prune

    before = db.stat().st_size
    with Store(load_settings({"db": str(db), "raw_retention_days": 90}, env={})) as store:
        total = store.total_events()
        report = prune(store, utcnow())
        left = store.total_events()
    after = db.stat().st_size
    copy = db.with_name("compacted.duckdb")
    started = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"ATTACH '{db}' AS src (READ_ONLY); ATTACH '{copy}' AS dst; COPY FROM DATABASE src TO dst")
    con.close()
    return {"events": total, "deleted": report.raw_events, "left": left, "prune_seconds": report.seconds,
            "bytes_before": before, "bytes_after_prune_checkpoint": after, "bytes_after_copy": copy.stat().st_size,
            "copy_seconds": time.perf_counter() - started}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
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
        for fmt in ("jsonl", "parquet"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(db), str(Path(tmp) / f"out.{fmt}"), fmt],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            r = json.loads(out.stdout.strip().splitlines()[-1])
            (Path(tmp) / f"out.{fmt}").unlink()
            print(f"export {fmt}: {r['events']:,} events, {r['bytes']:,} bytes in {r['seconds']:.1f} s; "
                  f"RSS {r['rss_before_mb']:.0f} → peak {r['rss_peak_mb']:.0f} MiB")  # fmt: skip
        p = _prune(db)
        print(f"prune half: deleted {p['deleted']:,} of {p['events']:,} in {p['prune_seconds']:.1f} s; file "
              f"{p['bytes_before']:,} → {p['bytes_after_prune_checkpoint']:,} bytes (DELETE + CHECKPOINT) → "
              f"{p['bytes_after_copy']:,} bytes (COPY FROM DATABASE into a new file, {p['copy_seconds']:.1f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
