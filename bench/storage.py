#!/usr/bin/env python3
"""Store size after import + live ingest, with the bytes of each column (issue 10).

    python bench/storage.py --jsonl bench/data/events-1m-seed42-60d.jsonl --out bench/results/storage-after.json

Imports the file with `telemetry-mcp import` into a fresh store, then ingests `--live` more events
(generated with the file's seed and users, the day after the file ends) in batches of `--batch`, deriving
sessions after every batch as reads would, closes the store and reports: the file's bytes, MB per
million events (and of a compacted copy), `pragma_database_size` (used / free blocks) and per-column bytes from
`pragma_storage_info('events')` after the import and after the live ingest.

Per-column bytes: a segment's bytes are from its offset to the next segment's offset in the same
block (or the block's end), plus its additional blocks: an upper bound that counts a block's unused
tail to its last segment.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
from common import GENERATOR, REPO, log, server_env

BLOCK = 262_144


def column_bytes(db: Path) -> dict[str, Any]:
    """Bytes per column of the events table, and the database's block counts."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        block_size = int(con.execute("SELECT block_size FROM pragma_database_size()").fetchone()[0])  # type: ignore[index]
        rows = con.execute(
            "SELECT column_name, block_id, block_offset, len(additional_block_ids) FROM pragma_storage_info('events') "
            "WHERE persistent AND block_id >= 0"
        ).fetchall()
        by_block: dict[int, list[tuple[int, str, int]]] = {}
        for name, block, offset, extra in rows:
            by_block.setdefault(block, []).append((offset, name, extra))
        out: dict[str, int] = {}
        for segs in by_block.values():
            segs.sort()
            for k, (offset, name, extra) in enumerate(segs):
                end = segs[k + 1][0] if k + 1 < len(segs) else block_size
                out[name] = out.get(name, 0) + (end - offset) + extra * block_size
        size = con.execute(
            "SELECT total_blocks, used_blocks, free_blocks FROM pragma_database_size()"
        ).fetchone()
        events = int(con.execute("SELECT count(*) FROM events").fetchone()[0])  # type: ignore[index]
    finally:
        con.close()
    assert size is not None
    return {
        "events": events,
        "file_bytes": db.stat().st_size,
        "blocks": {"total": size[0], "used": size[1], "free": size[2], "block_size": block_size},
        "columns": dict(sorted(out.items(), key=lambda kv: -kv[1])),
    }


def compacted_bytes(db: Path) -> int:
    """The file size of a copy of the store written in one pass (COPY FROM DATABASE): the bytes of
    the content without the free blocks that checkpoints leave inside the file."""
    dst = db.with_name(db.stem + "-compacted.duckdb")
    dst.unlink(missing_ok=True)
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{db}' AS s (READ_ONLY)")  # paths of this script's own scratch files
        con.execute(f"ATTACH '{dst}' AS d")
        con.execute("COPY FROM DATABASE s TO d")
        con.execute("CHECKPOINT d")
    finally:
        con.close()
    size = dst.stat().st_size
    dst.unlink()
    return size


def live_ingest(db: Path, jsonl: Path, batch: int) -> dict[str, Any]:
    """Ingest the file's events in batches, refreshing sessions after each (as the server's reads do)."""
    sys.path.insert(0, str(REPO / "src"))
    from telemetry_mcp.config import Settings
    from telemetry_mcp.store.db import Store
    from telemetry_mcp.store.ingest import Ingestor

    events = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    refresh: list[float] = []
    ingest: list[float] = []
    with Store(Settings(db=str(db))) as store:
        ing = Ingestor(store)
        for k in range(0, len(events), batch):
            t0 = time.perf_counter()
            ing.ingest(events[k : k + batch])
            t1 = time.perf_counter()
            store.refresh_sessions()
            refresh.append(time.perf_counter() - t1)
            ingest.append(t1 - t0)
    refresh.sort()
    return {
        "batches": len(refresh),
        "events": len(events),
        "ingest_seconds": round(sum(ingest), 3),
        "refresh_ms_p50": round(refresh[len(refresh) // 2] * 1000, 2),
        "refresh_ms_max": round(refresh[-1] * 1000, 2),
        "refresh_seconds_total": round(sum(refresh), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jsonl", type=Path, required=True)
    ap.add_argument("--db", type=Path, default=Path("/tmp/telemetry-storage-bench.duckdb"))
    ap.add_argument("--live", type=int, default=100_000, help="events ingested live after the import")
    ap.add_argument("--batch", type=int, default=1_000)
    ap.add_argument("--end", default="2026-11-02T00:00:00Z", help="end of the live events (one day)")
    ap.add_argument("--seed", type=int, default=42, help="the file's seed")
    ap.add_argument("--users", type=int, default=25_000, help="the file's user pool")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    for p in (a.db, a.db.with_name(a.db.name + ".wal")):
        p.unlink(missing_ok=True)
    log(f"importing {a.jsonl} → {a.db}")
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "telemetry_mcp", "import", str(a.jsonl), "--db", str(a.db), "--quiet"]
    subprocess.run(cmd, check=True, env=server_env(), cwd=REPO, stdout=subprocess.DEVNULL)
    result: dict[str, Any] = {"import_seconds": round(time.perf_counter() - t0, 2)}
    result["after_import"] = column_bytes(a.db)
    if a.live:
        live = a.db.with_name("live-events.jsonl")
        # the data set's users (same seed and pool), new event ids
        cmd = [sys.executable, str(GENERATOR), "--events", str(a.live), "--seed", str(a.seed), "--days", "1"]
        cmd += ["--users", str(a.users)]
        subprocess.run([*cmd, "--end", a.end, "--out", str(live)], check=True, cwd=REPO)
        log(f"live ingest of {a.live:,} events in batches of {a.batch:,}")
        result["live"] = live_ingest(a.db, live, a.batch)
        live.unlink()
        result["after_live"] = column_bytes(a.db)
    final = result.get("after_live", result["after_import"])
    result["mb_per_million"] = round(final["file_bytes"] / 1e6 / (final["events"] / 1e6), 2)
    result["compacted_mb_per_million"] = round(compacted_bytes(a.db) / 1e6 / (final["events"] / 1e6), 2)
    text = json.dumps(result, indent=2)
    print(text)
    if a.out:
        a.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
