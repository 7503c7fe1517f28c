"""export → import gives back the same stored rows, in every format, with bounded memory."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from lifecycle_data import events
from telemetry_mcp.analytics.common import utcnow
from telemetry_mcp.cli import main
from telemetry_mcp.config import Settings, load_settings
from telemetry_mcp.store import Store
from telemetry_mcp.store.export import export_events
from telemetry_mcp.store.importer import import_file
from telemetry_mcp.store.ingest import Ingestor

SALT = "00112233445566778899aabbccddeeff"
# Every stored column but the store's own bookkeeping: seq and received_at (arrival in this store)
# and redacted_paths (what ingest scrubbed here; an exported row has nothing left to scrub).
ROW = """SELECT event_id, ts, event_type, name, component, user_id, session_id, actor, severity,
       duration_ms, value, unit, service, service_version, platform, os, framework, page,
       properties::VARCHAR, session_key, id_hash FROM events ORDER BY event_id"""


def _settings(db: str, **extra: object) -> Settings:
    return load_settings({"db": db, "threads": 2, "salt": SALT, **extra}, env={})


def _rows(store: Store) -> list[tuple[object, ...]]:
    store.refresh_sessions()
    cur = store.cursor()
    try:
        return cur.execute(ROW).fetchall()
    finally:
        cur.close()


def _load(store: Store, data: list[dict[str, object]]) -> None:
    ingestor = Ingestor(store)
    for i in range(0, len(data), 10_000):
        report = ingestor.ingest(data[i : i + 10_000])
        assert report.rejected == 0, report.errors[:3]


@pytest.fixture(scope="module")
def source() -> Store:
    store = Store(_settings(":memory:"))
    _load(store, events(100_000, utcnow() - timedelta(days=40)))
    return store


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_an_export_of_100000_events_imports_back_to_identical_rows(
    source: Store, fmt: str, tmp_path: Path
) -> None:
    path = tmp_path / f"events.{fmt}"
    report = export_events(source, path, fmt)
    assert report.events == 100_000 and path.stat().st_size == report.bytes
    with Store(_settings(":memory:")) as copy:
        imported = import_file(Ingestor(copy), path)
        assert (imported.accepted, imported.rejected, imported.duplicates) == (100_000, 0, 0)
        assert _rows(copy) == _rows(source)


def test_user_ids_travel_as_stored_hashes_and_are_not_hashed_twice(source: Store, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    export_events(source, path, "jsonl")
    with path.open() as fh:
        fh.readline()  # event 0 has no user
        second = json.loads(fh.readline())
    assert "user_id" not in second and len(second["user_id_hash"]) == 16
    other_salt = _settings(":memory:", salt="ffeeddccbbaa99887766554433221100")
    with Store(other_salt) as copy:  # another store, another salt: the hashes still stay as exported
        import_file(Ingestor(copy), path)
        assert _rows(copy) == _rows(source)


def test_since_and_until_select_a_half_open_range_of_the_export(source: Store, tmp_path: Path) -> None:
    cur = source.cursor()
    since, until = cur.execute(
        "SELECT min(ts) + INTERVAL 10 DAY, min(ts) + INTERVAL 20 DAY FROM events"
    ).fetchall()[0]
    expected = cur.execute("SELECT count(*) FROM events WHERE ts >= ? AND ts < ?", [since, until]).fetchall()[
        0
    ][0]
    cur.close()
    report = export_events(source, tmp_path / "part.parquet", "parquet", since, until)
    assert report.events == expected and 0 < expected < 100_000


def test_an_export_matching_nothing_is_a_valid_empty_file(source: Store, tmp_path: Path) -> None:
    since = utcnow() + timedelta(days=1)
    for fmt in ("jsonl", "csv", "parquet"):
        path = tmp_path / f"none.{fmt}"
        assert export_events(source, path, fmt, since).events == 0
        with Store(_settings(":memory:")) as copy:
            assert import_file(Ingestor(copy), path).accepted == 0


def test_an_imported_user_id_hash_that_is_not_a_stored_hash_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"event_type": "page_view", "user_id_hash": "0123456789abcdef"}\n'
        '{"event_type": "page_view", "user_id_hash": "ann@example.com"}\n'
        '{"event_type": "page_view", "user_id": "raw-id-in-a-file-of-hashes"}\n'
    )
    with Store(_settings(":memory:")) as store:
        report = import_file(Ingestor(store), path)
        assert (report.accepted, report.rejected) == (1, 2)
        assert [i for i, _ in report.errors] == [1, 2]
        assert "16 lowercase hex" in report.errors[0][1]
        assert _rows(store)[0][5] == "0123456789abcdef"


def test_the_export_command_writes_the_file_and_says_how_many_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "cli.duckdb")
    with Store(_settings(db)) as store:
        _load(store, events(2_000, utcnow() - timedelta(days=3), days=2))
    out = tmp_path / "out.csv"
    assert main(["export", "--db", db, "--salt", SALT, "--since", "2d", str(out)]) == 0
    line = capsys.readouterr().out
    assert line.startswith("exported ") and str(out) in line and "(csv," in line
    assert 0 < sum(1 for _ in out.open()) - 1 < 2_000


_EXPORT_CHILD = """
import json, sys, psutil
from telemetry_mcp.config import load_settings
from telemetry_mcp.store import Store
from telemetry_mcp.store import export as E

E._BlockCache.TRIM_AFTER = 4 * 2**20  # the store is small: trim at 4 MiB, so that trimming is exercised
proc, samples = psutil.Process(), []
cached = "SELECT sum(memory_usage_bytes) FROM duckdb_memory() WHERE tag = 'BASE_TABLE'"
with Store(load_settings({"db": sys.argv[1], "threads": 2}, env={})) as store:
    write = E._Writer.write

    def sampled(self, batch):  # the RSS and DuckDB's block cache after every window written
        write(self, batch)
        cur = store.cursor()
        samples.append((proc.memory_info().rss, cur.execute(cached).fetchall()[0][0]))
        cur.close()

    E._Writer.write = sampled
    base = proc.memory_info().rss
    report = E.export_events(store, sys.argv[2], "jsonl", window=10_000)
print(json.dumps({"events": report.events, "bytes": report.bytes, "base": base, "samples": samples}))
"""


def test_exporting_2_million_events_does_not_hold_them_in_memory(tmp_path: Path) -> None:
    """The issue's test, in a fresh process: across the 200 windows of a 2 M-event export neither the
    RSS nor DuckDB's block cache grows with the events already written."""
    db = str(tmp_path / "big.duckdb")
    n, chunk = 2_000_000, 200_000
    with Store(_settings(db)) as store:
        start = utcnow() - timedelta(days=40)
        for k in range(n // chunk):  # ten seeds: ten sets of distinct event ids, two days each
            _load(store, events(chunk, start + timedelta(days=2 * k), days=2, seed=100 + k))
        store.refresh_sessions()
        store.checkpoint()
    out = subprocess.run(
        [sys.executable, "-c", _EXPORT_CHILD, db, str(tmp_path / "big.jsonl")],
        capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["events"] == n and r["bytes"] > 600_000_000
    rss = [s[0] for s in r["samples"]]
    cache = [s[1] or 0 for s in r["samples"]]
    third = len(rss) // 3
    assert len(rss) == n // 10_000
    mib = 2**20
    # the last third of the windows holds no more than the first: nothing accumulates per event
    assert max(rss[-third:]) - max(rss[:third]) < 8 * mib, [x // mib for x in rss]
    # DuckDB's block cache settles (trimmed at TRIM_AFTER) instead of growing to the store's ~90 MB
    # of columns: no higher in the last third than in the middle one, and small
    assert max(cache[-third:]) <= max(cache[third : 2 * third]) + 4 * mib, str([x // mib for x in cache])
    assert max(cache) < 24 * mib, str([x // mib for x in cache])
    assert max(rss) - r["base"] < 96 * mib, (r["base"] // mib, [x // mib for x in rss])


def test_export_filters_select_the_same_events_as_the_tools_filters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "filtered.duckdb")
    with Store(_settings(db)) as store:
        _load(store, events(3_000, utcnow() - timedelta(days=3), days=2))
        cur = store.cursor()
        expected = cur.execute(
            "SELECT event_id FROM events WHERE component = 'Button' AND duration_ms > 100 "
            "AND platform IN ('web', 'mobile') ORDER BY seq"
        ).fetchall()
        cur.close()
    out = tmp_path / "buttons.jsonl"
    argv = ["export", "--db", db, "--salt", SALT, "--filter", "component = Button", "--filter",
            "duration_ms > 100", "--filter", "platform in web,mobile", str(out)]  # fmt: skip
    assert main(argv) == 0
    got = [json.loads(line)["event_id"] for line in out.read_text().splitlines()]
    assert got == [r[0] for r in expected] and 0 < len(got) < 3_000
    assert f"exported {len(got):,} events" in capsys.readouterr().out
    # the tools' JSON form, on a property; a value that would be SQL stays a value
    out2 = tmp_path / "odd.csv"
    json_filter = '{"field": "properties.note", "op": "eq", "value": "x\' OR 1=1 --"}'
    assert main(["export", "--db", db, "--salt", SALT, "--filter", json_filter, str(out2)]) == 0
    assert "exported 0 events" in capsys.readouterr().out


def test_a_bad_export_filter_gets_the_tools_error_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "bad.duckdb")
    with Store(_settings(db)) as store:
        _load(store, events(100, utcnow() - timedelta(days=1), days=1))
    out = tmp_path / "none.jsonl"
    assert main(["export", "--db", db, "--filter", "compnent = Button", str(out)]) == 2
    err = capsys.readouterr().err
    assert 'unknown field "compnent"' in err and 'did you mean "component"' in err
    assert main(["export", "--db", db, "--filter", "component like Button", str(out)]) == 2
    assert 'unknown filter op "like"' in capsys.readouterr().err
    assert main(["export", "--db", db, "--filter", "duration_ms > fast", str(out)]) == 2
    assert "needs a number" in capsys.readouterr().err
    assert not out.exists()
