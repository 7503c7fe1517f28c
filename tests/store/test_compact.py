"""compact: after large deletions the store file shrinks, with every row and answer as before."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lifecycle_data import events
from svc import WRITE_KEY, ServiceProcess, call_tool
from telemetry_mcp.analytics import metrics
from telemetry_mcp.analytics.common import utcnow
from telemetry_mcp.cli import main
from telemetry_mcp.config import Settings, load_settings
from telemetry_mcp.store import Store
from telemetry_mcp.store.ingest import Ingestor
from telemetry_mcp.store.lifecycle import compact, prune

SALT = "00112233445566778899aabbccddeeff"
TABLES = ("events", "rollup_hour", "rollup_day", "meta", "catalog", "schema_migrations")


def _settings(db: Path, **extra: object) -> Settings:
    return load_settings(
        {"db": str(db), "threads": 2, "salt": SALT, "raw_retention_days": 90, **extra}, env={}
    )


def _fingerprint(store: Store) -> dict[str, tuple[Any, ...]]:
    """Per table: its row count and an order-independent hash of all its rows."""
    out = {}
    for table in TABLES:  # names from the fixed tuple above
        out[table] = store.fetch(f"SELECT count(*), sum(hash(t::VARCHAR)) FROM {table} t")[0]
    return out


def _answers(store: Store, now: datetime) -> list[dict[str, Any]]:
    out = []
    for days, args in ((182, {"interval": "day"}), (30, {"interval": "hour", "group_by": "component"})):
        since, until = (now - timedelta(days=days)).isoformat(), now.isoformat()
        q = metrics.MetricsQuery.model_validate({**args, "since": since, "until": until, "limit": 1000})
        out.append(metrics.run(store, q).model_dump())
    return out


def test_compacting_a_store_pruned_by_half_shrinks_the_file_and_keeps_every_row_and_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "half.duckdb"
    with Store(_settings(db)) as store:
        data = events(60_000, utcnow() - timedelta(days=180), days=179)
        ingestor = Ingestor(store)  # keeps its writer cursor between batches, also across the swap
        for i in range(0, len(data), 10_000):
            ingestor.ingest(data[i : i + 10_000])
        report = prune(store, utcnow())
        assert 25_000 < report.raw_events < 35_000  # about half
        now = utcnow()
        rows, answers = _fingerprint(store), _answers(store, now)
        size = db.stat().st_size
        done = compact(store)
        assert done.bytes_before >= size and done.bytes_after < 0.9 * done.bytes_before
        assert done.bytes_after <= done.bytes_before - done.free_bytes_before  # at least the free blocks went
        assert db.stat().st_size == done.bytes_after
        assert _fingerprint(store) == rows  # every row of every table identical
        assert _answers(store, now) == answers  # and the store keeps working as before
        assert ingestor.ingest(events(10, utcnow() - timedelta(hours=1), days=0.01, seed=99)).accepted == 10
        assert store.total_events() == rows["events"][0] + 10
    assert not list(tmp_path.glob("*.compact.tmp*"))
    with Store(_settings(db)) as reopened:  # the renamed file is the store from now on
        assert reopened.total_events() == rows["events"][0] + 10
    assert main(["compact", "--db", str(db), "--salt", SALT]) == 0
    assert capsys.readouterr().out.startswith(f"compacted {db}: ")


def test_compact_refuses_an_in_memory_store_and_a_busy_one_changes_nothing(tmp_path: Path) -> None:
    with Store(_settings(Path(":memory:"))) as store, pytest.raises(Exception, match="in-memory"):
        compact(store)
    db = tmp_path / "busy.duckdb"
    with Store(_settings(db)) as store:
        Ingestor(store).ingest(events(100, utcnow() - timedelta(days=1), days=1))
        held = store.cursor()  # a query still running elsewhere
        before = _fingerprint(store)
        started = time.monotonic()
        with pytest.raises(Exception, match="queries still running"):
            store.swap_file(lambda path: path.write_bytes(b"never"), wait=0.3)
        assert time.monotonic() - started < 5
        held.close()
        del held
        assert _fingerprint(store) == before


async def test_compact_via_the_owner_while_a_client_ingests_loses_no_acknowledged_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "owned.duckdb"
    with ServiceProcess(db, "--raw-retention-days", "90", "--salt", SALT) as svc:
        old = events(20_000, utcnow() - timedelta(days=180), days=80, seed=1)
        for i in range(0, len(old), 5_000):
            r = svc.post(
                "/api/v1/events",
                {"events": old[i : i + 5_000]},
                headers={"authorization": f"Bearer {WRITE_KEY}"},
            )
            assert r.status_code == 200
        assert main(["prune", "--db", str(db)]) == 0
        capsys.readouterr()

        acked: list[str] = []
        retried = [0]
        stop = threading.Event()

        def client() -> None:
            seq = 0
            while not stop.is_set():
                batch = events(50, utcnow() - timedelta(minutes=5), days=0.001, seed=10_000 + seq)
                seq += 1
                while True:
                    r = svc.post(
                        "/api/v1/events", {"events": batch}, headers={"authorization": f"Bearer {WRITE_KEY}"}
                    )
                    if r.status_code == 503:
                        assert r.headers.get("retry-after")
                        retried[0] += 1
                        time.sleep(0.05)
                        continue
                    assert r.status_code == 200, r.text
                    acked.extend(e["event_id"] for e in batch)
                    break

        t = threading.Thread(target=client)
        t.start()
        try:
            time.sleep(0.5)
            assert main(["compact", "--db", str(db)]) == 0
            time.sleep(0.5)
        finally:
            stop.set()
            t.join(timeout=60)
        out = capsys.readouterr()
        assert out.out.startswith("compacted ") and "done by the store's owner" in out.err
        before, after = (
            int(x.replace(",", "")) for x in out.out.split(": ")[1].split(" bytes")[0].split(" → ")
        )
        assert 0 < after <= before
        stats = await call_tool(svc.url, "get_realtime_stats", {})  # the owner answers on the new file
        assert stats["storage"]["total_events"] >= len(acked)
    with Store(_settings(db)) as store:
        stored = {r[0] for r in store.fetch("SELECT event_id FROM events")}
    missing = [e for e in acked if e not in stored]
    assert len(acked) > 500 and not missing, (len(acked), len(missing), retried[0])


_KILLED_CHILD = """
import sys
from datetime import timedelta
sys.path.insert(0, sys.argv[2])
from lifecycle_data import events
from telemetry_mcp.analytics.common import utcnow
from telemetry_mcp.config import load_settings
from telemetry_mcp.store import Store
from telemetry_mcp.store.ingest import Ingestor
from telemetry_mcp.store.lifecycle import compact

store = Store(load_settings({"db": sys.argv[1], "threads": 2, "salt": sys.argv[3]}, env={}))
ingestor, k = Ingestor(store), int(sys.argv[4])
while True:
    for _ in range(3):
        batch = events(200, utcnow() - timedelta(days=1), days=0.5, seed=k)
        assert ingestor.ingest(batch).accepted == 200
        print("acked", k, flush=True)  # after the commit: acknowledged
        k += 1
    print("compacting", flush=True)
    compact(store)
"""


def test_a_kill_9_at_any_point_of_compaction_leaves_a_valid_store_with_every_acknowledged_event(
    tmp_path: Path,
) -> None:
    db = tmp_path / "killed.duckdb"
    with Store(_settings(db)) as store:
        data = events(30_000, utcnow() - timedelta(days=20), days=19, seed=1)
        for i in range(0, len(data), 10_000):
            Ingestor(store).ingest(data[i : i + 10_000])
    acked: list[int] = []
    tests_dir = str(Path(__file__).resolve().parents[1])
    # a compaction of this store takes ~0.2 s here: before it, inside (copy, rename, reopen), after it
    delays = (0.0, 0.03, 0.06, 0.1, 0.14, 0.18, 0.3)
    for round_, delay in enumerate(delays):
        child = subprocess.Popen(
            [sys.executable, "-c", _KILLED_CHILD, str(db), tests_dir, SALT, str(1000 * (round_ + 1))],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert child.stdout is not None
        seen = 0
        for line in child.stdout:
            if line.startswith("acked "):
                acked.append(int(line.split()[1]))
            elif line.startswith("compacting"):
                seen += 1
                if seen == 2:  # the second compaction of this process: kill it somewhere inside
                    time.sleep(delay)
                    os.kill(child.pid, signal.SIGKILL)
                    break
        child.wait(timeout=30)
        assert child.returncode == -signal.SIGKILL, child.stderr.read() if child.stderr else ""
        with Store(_settings(db)) as store:  # a valid store, every acknowledged batch in it
            ids = {r[0] for r in store.fetch("SELECT DISTINCT split_part(event_id, '-', 2) FROM events")}
            assert {str(k) for k in acked} <= ids, round_
    assert len(acked) == len(delays) * 6
