#!/usr/bin/env python3
"""ingest_events over stdio (bridge + its own loopback owner, one process), batches of 1,000:
events/s, the server's CPU seconds per million events (all threads, from /proc; less disturbed by
a shared machine than wall figures), and optionally a cProfile of the server.

    python bench/stdio_probe.py --events 100000
    python bench/stdio_probe.py --events 60000 --profile /tmp/stdio.prof   # + /tmp/stdio.prof.threads

--profile starts the server through this file (`--serve`): the event-loop thread is cProfiled, and
every `anyio.to_thread.run_sync` call (the tool itself runs there) gets its own profile, merged
into <file>.threads at exit. Nothing in src/ changes. The JSONL lines are sent verbatim, as
bench/run.py's stdio phase does.
"""

from __future__ import annotations

import argparse
import atexit
import cProfile
import os
import pstats
import runpy
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

DEFAULT_JSONL = BENCH / "data" / "events-1m-seed42-60d.jsonl"


def _serve_profiled(out: str, argv: list[str]) -> None:
    import anyio.to_thread

    lock = threading.Lock()
    profiles: list[cProfile.Profile] = []
    original = anyio.to_thread.run_sync

    async def run_sync(func: Any, *args: Any, **kwargs: Any) -> Any:
        def profiled(*a: Any) -> Any:
            p = cProfile.Profile()
            try:
                return p.runcall(func, *a)
            finally:
                with lock:
                    profiles.append(p)

        return await original(profiled, *args, **kwargs)

    anyio.to_thread.run_sync = run_sync  # type: ignore[assignment]
    main = cProfile.Profile()

    def dump() -> None:
        main.disable()
        pstats.Stats(main).dump_stats(out)
        with lock:
            if profiles:
                merged = pstats.Stats(profiles[0])
                for p in profiles[1:]:
                    merged.add(p)
                merged.dump_stats(out + ".threads")

    atexit.register(dump)
    sys.argv = ["telemetry_mcp", *argv]
    main.enable()
    runpy.run_module("telemetry_mcp", run_name="__main__")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--serve":
        _serve_profiled(sys.argv[2], sys.argv[3:])
        return
    from common import server_env
    from run import _ingest_requests
    from stdio_client import StdioPeer

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=1_000)
    ap.add_argument("--jsonl", type=Path, default=DEFAULT_JSONL)
    ap.add_argument("--profile", help="write a cProfile of the server here (and <file>.threads)")
    o = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="stdio-probe-") as tmp:
        db = Path(tmp) / "probe.duckdb"
        cmd = [sys.executable, "-m", "telemetry_mcp", "--db", str(db)]
        if o.profile:
            cmd = [sys.executable, __file__, "--serve", o.profile, "--db", str(db)]
        with StdioPeer(cmd, server_env(), Path(tmp) / "server.stderr") as peer:
            peer.initialize()
            requests = _ingest_requests(peer, o.jsonl, o.batch, o.events)
            load0 = os.getloadavg()[0]
            cpu0 = _cpu_seconds(peer.pid)
            started = time.perf_counter()
            calls = []
            for rid, _count, line in requests:
                answer = peer.exchange(line, rid)
                if answer.is_error:
                    raise SystemExit(f"ingest_events failed: {answer.error_text[:300]}")
                calls.append(answer.seconds)
            wall = time.perf_counter() - started
            cpu = _cpu_seconds(peer.pid) - cpu0
            sent = sum(c for _, c, _ in requests)
            calls.sort()
            print(
                f"{sent:,} events in batches of {o.batch:,}: {sent / wall:,.0f} events/s, median call "
                f"{calls[len(calls) // 2] * 1000:.1f} ms, server CPU {cpu / sent * 1e6:.1f} s per million "
                f"events, load {load0:.1f} -> {os.getloadavg()[0]:.1f}"
            )
            peer.close()


if __name__ == "__main__":
    main()
