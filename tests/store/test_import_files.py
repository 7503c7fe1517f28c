"""Bulk import (SPEC section 1): JSONL / JSON / CSV / Parquet through the same ingest path, and its CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from telemetry_mcp.config import load_settings
from telemetry_mcp.errors import InvalidArgument
from telemetry_mcp.server.app import App
from telemetry_mcp.store import Store
from telemetry_mcp.store.importer import import_file
from wire import server_env

# HMAC-SHA256 of "alice" with the test salt, first 16 hex characters
ALICE = "40a7644018f606ae"


def rows(app: App, columns: str = "event_id") -> list[tuple[Any, ...]]:
    return app.store.fetch(f"SELECT {columns} FROM events ORDER BY seq")


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- JSONL -----------------------------------------------------------------------------------------


def test_jsonl_with_a_malformed_line_imports_the_others_and_reports_its_record_number(
    app: App, tmp_path: Path
) -> None:
    path = write_jsonl(
        tmp_path / "events.jsonl",
        [
            '{"event_id": "a", "event_type": "component_load"}',
            '{"event_id": "b", "event_type": ',
            '{"event_id": "c", "event_type": "page_view", "user_id": "alice"}',
            "",
            '{"event_id": "d", "event_type": "Bad"}',
            '{"event_id": "e", "event_type": "crash"}',
        ],
    )

    report = import_file(app.ingestor, path)

    assert (report.accepted, report.rejected) == (3, 2)
    assert sorted(index for index, _ in report.errors) == [1, 3]
    reasons = dict(report.errors)
    assert reasons[1].startswith("line 2: malformed JSON (")
    assert reasons[3] == "event_type 'Bad' must match ^[a-z][a-z0-9_]{0,63}$ (lower-case letters, digits, _)"
    assert rows(app, "event_id, user_id, severity") == [
        ("a", None, "info"),
        ("c", ALICE, "info"),
        ("e", None, "error"),
    ]


def test_record_numbers_stay_right_across_batches_of_ten_thousand(app: App, tmp_path: Path) -> None:
    lines = [json.dumps({"event_id": f"e{i}", "event_type": "x"}) for i in range(10_005)]
    lines[10_002] = '{"event_id": "e10002", "event_type": "x", "color": "red"}'
    path = write_jsonl(tmp_path / "many.ndjson", lines)
    progress: list[int] = []

    report = import_file(app.ingestor, path, lambda done, read, size: progress.append(done))

    assert (report.accepted, report.rejected) == (10_004, 1)
    assert report.errors == [(10_002, 'unknown field "color": custom data belongs in "properties"')]
    assert progress == [10_000, 10_005]


# --- JSON ------------------------------------------------------------------------------------------


def test_a_json_array_of_events_is_imported(app: App, tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    path.write_text(json.dumps([{"event_id": "a", "event_type": "x"}, {"event_id": "b", "event_type": "y"}]))

    report = import_file(app.ingestor, path)

    assert report.accepted == 2
    assert rows(app, "event_id, event_type") == [("a", "x"), ("b", "y")]


def test_a_json_object_with_an_events_list_is_imported(app: App, tmp_path: Path) -> None:
    path = tmp_path / "wrapped.json"
    path.write_text(json.dumps({"events": [{"event_id": "a", "event_type": "x"}, 5]}))

    report = import_file(app.ingestor, path)

    assert (report.accepted, report.rejected) == (1, 1)
    assert report.errors == [(1, "event: expected a JSON object, got int")]
    assert rows(app) == [("a",)]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('{"event_type": "x"}', 'expected a JSON array of events (or {"events": [...]})'),
        ('{"events": 3}', 'expected a JSON array of events (or {"events": [...]})'),
        (
            "[{]",
            "not valid JSON after 0 records (parse error: invalid object key (must be a string))",
        ),
    ],
)
def test_a_json_file_that_is_not_a_list_of_events_is_refused_whole(
    app: App, tmp_path: Path, content: str, reason: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)

    with pytest.raises(InvalidArgument) as info:
        import_file(app.ingestor, path)

    assert str(info.value) == f"{path}: {reason}"


# --- CSV -------------------------------------------------------------------------------------------


def test_csv_empty_cells_are_absent_numbers_may_be_strings_and_properties_are_json_text(
    app: App, tmp_path: Path
) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "event_id,event_type,timestamp,component,duration_ms,value,properties\n"
        'a,component_load,2026-01-01T01:00:00+01:00,Button,12.5,,"{""plan"": ""pro"", ""n"": 2}"\n'
        "b,animation_play,1767225600000,,,3,\n"
        'c,page_view,,Card,-1,,"{}"\n'
        "d,page_view,,Card,,,not json\n",
        encoding="utf-8",
    )

    report = import_file(app.ingestor, path)

    assert (report.accepted, report.rejected) == (2, 2)
    assert report.errors == [
        (2, "duration_ms must be >= 0 (got -1)"),
        (3, "properties: expected a JSON object, got str"),
    ]
    assert rows(app, "event_id, ts, component, duration_ms, value, severity, properties") == [
        ("a", datetime(2026, 1, 1, 0, 0), "Button", 12.5, None, "info", '{"plan":"pro","n":2}'),
        ("b", datetime(2026, 1, 1, 0, 0), None, None, 3.0, "debug", None),
    ]


def test_a_csv_column_outside_the_event_fields_rejects_its_rows(app: App, tmp_path: Path) -> None:
    path = tmp_path / "extra.csv"
    path.write_text("event_id,event_type,color\na,x,red\nb,x,\n", encoding="utf-8")

    report = import_file(app.ingestor, path)

    # an empty cell is absent, so only the row that fills the unknown column is refused
    assert report.errors == [(0, 'unknown field "color": custom data belongs in "properties"')]
    assert rows(app) == [("b",)]


# --- Parquet ---------------------------------------------------------------------------------------


def test_parquet_rows_are_imported_with_typed_columns(app: App, tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    table = pa.table(
        {
            "event_id": ["a", "b", "c"],
            "event_type": ["component_load", "performance", "crash"],
            "timestamp": pa.array(
                [datetime(2026, 1, 1, 12, 0), datetime(2026, 1, 2, 8, 30), None], pa.timestamp("us")
            ),
            "user_id": ["alice", None, None],
            "duration_ms": [12.5, None, 3.0],
            "value": pa.array([None, 60, None], pa.int64()),
            "properties": [{"plan": "pro"}, None, {"plan": "free"}],
        }
    )
    pq.write_table(table, path)

    report = import_file(app.ingestor, path)

    assert report.accepted == 3
    assert rows(app, "event_id, ts, user_id, duration_ms, value, severity, properties")[:2] == [
        ("a", datetime(2026, 1, 1, 12, 0), ALICE, 12.5, None, "info", '{"plan":"pro"}'),
        ("b", datetime(2026, 1, 2, 8, 30), None, None, 60.0, "info", None),
    ]
    assert rows(app, "event_id, severity, properties")[2] == ("c", "error", '{"plan":"free"}')


def test_a_parquet_properties_column_of_json_text_is_read_as_an_object(app: App, tmp_path: Path) -> None:
    path = tmp_path / "text.parquet"
    pq.write_table(
        pa.table(
            {"event_id": ["a", "b"], "event_type": ["x", "x"], "properties": ['{"plan": "pro"}', "[1]"]}
        ),
        path,
    )

    report = import_file(app.ingestor, path)

    assert report.errors == [(1, "properties: expected a JSON object, got list")]
    assert rows(app, "event_id, properties") == [("a", '{"plan":"pro"}')]


def test_parquet_timestamps_with_a_time_zone_are_stored_in_utc(app: App, tmp_path: Path) -> None:
    path = tmp_path / "tz.parquet"
    moment = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    pq.write_table(
        pa.table(
            {
                "event_id": ["a"],
                "event_type": ["x"],
                "timestamp": pa.array([moment], pa.timestamp("ms", tz="Europe/Paris")),
            }
        ),
        path,
    )

    import_file(app.ingestor, path)

    assert rows(app, "event_id, ts") == [("a", datetime(2026, 1, 1, 12, 0))]


# --- refusals --------------------------------------------------------------------------------------


def test_an_unsupported_extension_is_refused_listing_the_supported_ones(app: App, tmp_path: Path) -> None:
    path = tmp_path / "events.txt"
    path.write_text('{"event_type": "x"}\n')

    with pytest.raises(InvalidArgument) as info:
        import_file(app.ingestor, path)

    assert (
        str(info.value)
        == f"{path}: unsupported file type; use one of .csv, .json, .jsonl, .ndjson, .parquet, and .gz of the text formats"
    )


def test_a_missing_file_is_refused(app: App, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument) as info:
        import_file(app.ingestor, tmp_path / "missing.jsonl")

    assert str(info.value) == f"{tmp_path / 'missing.jsonl'}: no such file"


# --- the CLI ---------------------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "telemetry_mcp", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        env=server_env(),
    )


def test_the_import_command_reports_on_stderr_only_and_the_events_are_stored(tmp_path: Path) -> None:
    source = write_jsonl(
        tmp_path / "cli.jsonl",
        [
            '{"event_id": "a", "event_type": "x"}',
            "{oops",
            '{"event_id": "b", "event_type": "x", "ip": "10.0.0.1"}',
        ],
    )
    db = tmp_path / "cli.duckdb"

    done = run_cli("import", str(source), "--db", str(db))

    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr
    assert (
        f"{source}: accepted 2, rejected 1, duplicates 0, dropped (do-not-track/sampling) 0, redactions 1"
        in lines
    )
    assert any(line.startswith("  record 1: line 2: malformed JSON (") for line in lines)
    assert lines[-1].startswith(f"imported 1 file(s) into {db} in ")
    assert lines[-1].endswith(" s: accepted 2, rejected 1, duplicates 0, dropped 0")
    with Store(load_settings({"db": str(db)}, env={})) as store:
        assert store.fetch("SELECT event_id FROM events ORDER BY seq") == [("a",), ("b",)]


def test_the_import_command_on_a_missing_file_exits_2_with_one_clear_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"

    done = run_cli("import", str(missing), "--db", str(tmp_path / "x.duckdb"))

    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip() == f"telemetry-mcp: {missing}: no such file"


# --- gzip, streaming, re-runs ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["events.jsonl.gz", "events.json.gz", "events.csv.gz"])
def test_a_gzip_of_each_text_format_is_imported(app: App, tmp_path: Path, name: str) -> None:
    import gzip

    events = [{"event_id": f"g{i}", "event_type": "feature_used", "name": f"f{i % 3}"} for i in range(25)]
    if name.startswith("events.jsonl"):
        text = "\n".join(json.dumps(e) for e in events) + "\n"
    elif name.startswith("events.json"):
        text = json.dumps({"events": events})
    else:
        text = "event_id,event_type,name\n" + "".join(
            f"{e['event_id']},{e['event_type']},{e['name']}\n" for e in events
        )
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()))

    report = import_file(app.ingestor, path)

    assert (report.accepted, report.rejected) == (25, 0)
    assert rows(app, "event_id, name")[:2] == [("g0", "f0"), ("g1", "f1")]


def test_a_large_json_array_is_read_item_by_item_with_progress_in_bytes(app: App, tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_text(json.dumps([{"event_type": "x", "value": i} for i in range(25_000)]))
    seen: list[tuple[int, int, int]] = []

    report = import_file(app.ingestor, path, lambda done, read, size: seen.append((done, read, size)))

    assert report.accepted == 25_000
    assert [s[0] for s in seen] == [10_000, 20_000, 25_000]
    size = path.stat().st_size
    assert all(s[2] == size for s in seen) and seen[-1][1] == size
    assert seen[0][1] < size  # bytes read grow as the array is read, not all at once


def test_records_without_an_event_id_get_one_from_the_file_so_a_rerun_stores_nothing_twice(
    app: App, tmp_path: Path
) -> None:
    records = [json.dumps({"event_type": "x", "value": i}) for i in range(300)]
    path = write_jsonl(tmp_path / "noids.jsonl", records)
    assert path.stat().st_size > 4096

    first = import_file(app.ingestor, path)
    again = import_file(app.ingestor, path)

    assert (first.accepted, again.accepted, again.duplicates) == (300, 0, 300)
    assert app.store.fetch("SELECT count(*), count(DISTINCT event_id) FROM events") == [(300, 300)]
    # a file that grew (past its first 4 KiB) keeps its records' ids: only the new one is stored
    with path.open("a") as fh:
        fh.write(json.dumps({"event_type": "x", "value": 999}) + "\n")
    appended = import_file(app.ingestor, path)
    assert (appended.accepted, appended.duplicates) == (1, 300)


def test_an_import_larger_than_its_memory_limit_killed_midway_and_run_again_stores_every_record_exactly_once(
    tmp_path: Path,
) -> None:
    """2 M events (a file twice DuckDB's memory limit for the import), SIGKILL after the first
    progress line, then a re-run: every record stored exactly once (the issue's literal test)."""
    import os
    import signal
    import time

    db = tmp_path / "k.duckdb"
    path = tmp_path / "many.jsonl"
    n = 2_000_000
    pad = "p" * 120
    with path.open("w") as fh:
        for start in range(0, n, 10_000):
            fh.write("".join(
                f'{{"event_type":"component_load","component":"C{i % 9}","user_id":"u{i % 5000}",'
                f'"duration_ms":{i % 97},"properties":{{"variant":"v{i % 7}","note":"{pad}"}}}}\n'
                for i in range(start, start + 10_000)
            ))  # fmt: skip
    limit = "200MB"
    assert path.stat().st_size > 2 * 200 * 10**6
    cmd = [
        sys.executable,
        "-m",
        "telemetry_mcp",
        "import",
        "--db",
        str(db),
        "--import-memory-limit",
        limit,
        str(path),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=server_env())
    assert proc.stderr is not None
    os.set_blocking(proc.stderr.fileno(), False)
    seen = b""
    deadline = time.monotonic() + 120
    while b"records" not in seen and proc.poll() is None and time.monotonic() < deadline:
        seen += proc.stderr.read() or b""
        time.sleep(0.02)
    assert proc.poll() is None, "the import finished before it could be killed: make the file larger"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()
    with Store(load_settings({"db": str(db)}, env={})) as store:
        partial = int(store.fetch("SELECT count(*) FROM events")[0][0])
    assert 0 < partial < n

    rerun = subprocess.run([*cmd, "--quiet"], capture_output=True, text=True, timeout=600, env=server_env())

    assert rerun.returncode == 0, rerun.stderr
    with Store(load_settings({"db": str(db)}, env={})) as store:
        assert store.fetch("SELECT count(*), count(DISTINCT event_id) FROM events") == [(n, n)]
