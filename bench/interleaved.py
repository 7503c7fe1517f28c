#!/usr/bin/env python3
"""Interleaved workload: a batch ingested every second into a loaded store while an agent queries.

    python bench/interleaved.py --store bench/data/store-1m-seed42-60d.duckdb --seconds 60

Two measurements, each on a scratch copy of the store:

- refresh: in process, `--batches` batches of `--batch` live events, each ingested and followed by
  Store.refresh_sessions (what the first read after a batch pays): ms per batch, p50 / p95 / max;
- stdio: one server over stdio MCP; every second one ingest_events call of `--batch` events, and in
  between the agent's questions in turn (collect_metrics daily by event type over the store's span,
  the 4-step checkout funnel, get_realtime_stats over 5 minutes): latency p50 / p95 per tool.

Live events come from fixtures/generate.py (the stored data set's seed and users, the last day up to
now), so they fall in the realtime window, after the stored data, from actors with a history.
Used by bench/run.py's `interleaved` phase; prints JSON when run on its own.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from cases import CHECKOUT
from common import GENERATOR, REPO, PeakRss, log, quantile, server_env
from stdio_client import StdioPeer

SERVER = [sys.executable, "-m", "telemetry_mcp"]


def live_events(out: Path, n: int, seed: int, users: int) -> Path:
    """n generated events over the day before now, as JSONL: the stored data set's users (same seed,
    same pool), new event ids (the generator's ids depend on the count and the end)."""
    end = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    cmd = [sys.executable, str(GENERATOR), "--events", str(n), "--seed", str(seed), "--users", str(users)]
    cmd += ["--days", "1", "--end", end]
    subprocess.run([*cmd, "--out", str(out)], check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    return out


def _copy_store(store: Path, to: Path) -> Path:
    for suffix in ("", ".wal"):
        src = store.with_name(store.name + suffix)
        dst = to.with_name(to.name + suffix)
        dst.unlink(missing_ok=True)
        if src.exists():
            shutil.copyfile(src, dst)
    return to


def _ms(values: list[float]) -> dict[str, float | int]:
    ms = [v * 1000.0 for v in values]
    if not ms:
        return {"n": 0}
    return {
        "n": len(ms),
        "p50_ms": round(quantile(ms, 0.5), 2),
        "p95_ms": round(quantile(ms, 0.95), 2),
        "max_ms": round(max(ms), 2),
    }


def refresh_cost(store: Path, lines: list[bytes], batch: int, batches: int) -> dict[str, Any]:
    """Ingest batches in process, timing the session refresh that follows each."""
    sys.path.insert(0, str(REPO / "src"))
    from telemetry_mcp.config import Settings
    from telemetry_mcp.store.db import Store
    from telemetry_mcp.store.ingest import Ingestor

    refresh: list[float] = []
    ingest: list[float] = []
    with Store(Settings(db=str(store))) as st:
        st.refresh_sessions()  # anything pending from the import is not the live cost
        ing = Ingestor(st)
        for k in range(batches):
            body = b"[" + b",".join(lines[k * batch : (k + 1) * batch]) + b"]"
            if body == b"[]":
                break
            t0 = time.perf_counter()
            ing.ingest_json(body)
            t1 = time.perf_counter()
            st.refresh_sessions()
            refresh.append(time.perf_counter() - t1)
            ingest.append(t1 - t0)
    return {"batch": batch, "refresh": _ms(refresh), "ingest": _ms(ingest)}


def _window(store: Path) -> tuple[str, str]:
    con = duckdb.connect(str(store), read_only=True)
    try:
        lo, hi = con.execute("SELECT min(ts)::DATE, max(ts)::DATE + 1 FROM events").fetchall()[0]
    finally:
        con.close()
    return lo.isoformat(), hi.isoformat()


def stdio_interleaved(
    store: Path, lines: list[bytes], batch: int, seconds: float, stderr: Path
) -> dict[str, Any]:
    """Ingest a batch every second over stdio MCP while the agent's questions run in between."""
    since, until = _window(store)
    questions: list[tuple[str, str, dict[str, Any]]] = [
        ("collect_metrics", "collect_metrics", {"interval": "day", "group_by": "event_type", "since": since,
                                                "until": until}),
        ("funnel", "analyze_user_behavior", {"analysis": "funnel", "conversion_window": "14d", "steps": CHECKOUT,
                                             "order": "ordered", "since": since, "until": until}),
        ("realtime", "get_realtime_stats", {"window": "5m"}),
    ]  # fmt: skip
    latency: dict[str, list[float]] = {name: [] for name, _, _ in questions}
    ingest: list[float] = []
    errors: list[str] = []
    with StdioPeer([*SERVER, "--db", str(store)], server_env(), stderr) as peer:
        rss = PeakRss(peer.pid).start()
        peer.initialize(timeout=1800)
        started = time.perf_counter()
        next_tick = started
        k = turn = 0
        while time.perf_counter() - started < seconds:
            now = time.perf_counter()
            if now >= next_tick and k * batch < len(lines):
                body = b'{"events":[' + b",".join(lines[k * batch : (k + 1) * batch]) + b"]}"
                rid = peer.new_id()
                answer = peer.exchange(peer.call_line(rid, "ingest_events", body), rid)
                ingest.append(answer.seconds)
                if answer.is_error:
                    errors.append(answer.error_text[:200])
                k += 1
                next_tick += 1.0
                continue
            name, tool, args = questions[turn % len(questions)]
            turn += 1
            answer = peer.call(tool, args)
            latency[name].append(answer.seconds)
            if answer.is_error:
                errors.append(f"{name}: {answer.error_text[:200]}")
        peak = rss.stop()
    return {
        "batch": batch,
        "seconds": seconds,
        "batches": len(ingest),
        "ingest_call": _ms(ingest),
        "queries": {name: _ms(v) for name, v in latency.items()},
        "server_peak_rss_bytes": peak,
        "errors": errors[:5],
    }


def run(
    store: Path, tmp: Path, *, seconds: float, batch: int, batches: int, seed: int, users: int
) -> dict[str, Any]:
    """Both measurements on scratch copies of `store` (left untouched)."""
    need = batch * max(batches, int(seconds) + 2)
    live = live_events(tmp / "interleaved-live.jsonl", need, seed, users)
    lines = [ln for ln in live.read_bytes().splitlines() if ln.strip()]
    live.unlink()
    out: dict[str, Any] = {"store": store.name}
    copy = _copy_store(store, tmp / "interleaved-refresh.duckdb")
    log(f"interleaved: refresh cost over {batches} batches of {batch}")
    out["refresh"] = refresh_cost(copy, lines, batch, batches)
    copy = _copy_store(store, tmp / "interleaved-stdio.duckdb")
    log(f"interleaved: {seconds:g} s of a batch per second with queries over stdio")
    out["stdio"] = stdio_interleaved(copy, lines, batch, seconds, tmp / "interleaved-stdio.stderr")
    for p in tmp.glob("interleaved-*.duckdb*"):
        p.unlink()
    return out


def render_section(results: dict[str, dict[str, Any]]) -> str:
    """Markdown: per store size, the refresh cost per batch and the query latencies."""
    lines = ["## Interleaved: a batch of 1,000 every second while an agent queries", ""]
    lines += ["| store | refresh per batch p50 / p95 / max | ingest_events call p50 | "
              "collect_metrics p50 / p95 | funnel p50 / p95 | realtime p50 / p95 | server peak RSS |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for label, r in results.items():
        f, st, q = r["refresh"]["refresh"], r["stdio"], r["stdio"]["queries"]

        def pair(x: dict[str, Any]) -> str:
            return f"{x.get('p50_ms', '–')} / {x.get('p95_ms', '–')} ms (n={x['n']})"

        rss = st.get("server_peak_rss_bytes")
        lines.append(
            f"| {label} | {f.get('p50_ms')} / {f.get('p95_ms')} / {f.get('max_ms')} ms | "
            f"{st['ingest_call'].get('p50_ms')} ms | {pair(q['collect_metrics'])} | {pair(q['funnel'])} | "
            f"{pair(q['realtime'])} | {round(rss / 2**20) if rss else '–'} MiB |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", type=Path, required=True, help="a loaded store (copied, never changed)")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--batch", type=int, default=1_000)
    ap.add_argument("--batches", type=int, default=60, help="batches for the in-process refresh cost")
    ap.add_argument("--seed", type=int, default=42, help="the stored data set's seed")
    ap.add_argument("--users", type=int, default=25_000, help="the stored data set's user pool")
    ap.add_argument("--tmp", type=Path, default=Path("/tmp"))
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    result = run(
        a.store, a.tmp, seconds=a.seconds, batch=a.batch, batches=a.batches, seed=a.seed, users=a.users
    )
    text = json.dumps(result, indent=2)
    print(text)
    if a.out:
        a.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
