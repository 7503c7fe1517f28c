"""Parquet import through Arrow columns against the record-by-record path: the same rows, the same reports.

Generated Parquet files (typed columns of every kind the Arrow path handles, with bad rows mixed in:
malformed properties, out-of-range times, long or NUL text, negative or infinite numbers, unknown
severities, duplicates, records without an id, do-not-track, `user_id_hash` files with rows that break
the hash rule) are imported twice into fresh stores with the same salt, once column by column and
once record by record; every stored column (but the receive time) and every report must be equal.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from telemetry_mcp.config import load_settings
from telemetry_mcp.events.columns import validate_arrow
from telemetry_mcp.store import Store
from telemetry_mcp.store.export import export_events
from telemetry_mcp.store.importer import import_file
from telemetry_mcp.store.ingest import Ingestor, IngestReport

SALT = "00112233445566778899aabbccddeeff"
NOW = datetime.now(UTC).replace(microsecond=0)
ROW = """SELECT seq, event_id, ts, event_type, name, component, user_id, session_id, actor, severity,
       duration_ms, value, unit, service, service_version, platform, os, framework, page,
       properties::VARCHAR, redacted_paths, session_key, id_hash FROM events ORDER BY seq"""

_PROPS = [None, '{"plan":"pro","n":3}', '{"contact": "alice@example.com"}', '{"a": [1, 2.5, {"b": null}]}',
          '{"password":"hunter2"}', '{"next":"https://x.example.com/c?token=abc"}', '{"u":"caf\\u00e9 ☕"}',
          '{"big": 123456789012345678901234567890}', '{"x": NaN}', '{"lone": "\\ud800"}', "[1, 2]", "not json",
          '{"d": {"d": {"d": {"d": {"d": {"d": {"d": {"d": {"d": {"d": {"d": 1}}}}}}}}}}}', '"text"',
          '{"k": 1, "k": 2}', '{"f": 1e400}', '{"ok": true}  ']  # fmt: skip
_TYPES = [
    "component_load",
    "page_view",
    "interaction",
    "error",
    "performance",
    "page_view",
    "Bad",
    "",
    None,
    "x" * 70,
]
_SEVERITIES = [None, None, "info", "error", "critical", "loud"]
_NAMES = [
    None,
    "Card 4111111111111111 failed",
    "checkout_button",
    "bad\x00name",
    "y" * 201,
    "mail bob@example.org",
]


def _column(rng: random.Random, n: int, choices: list[Any]) -> list[Any]:
    """The first two choices mostly, any of them now and then (most rows stay valid)."""
    return [rng.choice(choices if rng.random() < 0.04 else choices[:2]) for _ in range(n)]


def _table(rng: random.Random, n: int, *, hashes: bool = False, aware: bool = False) -> pa.Table:
    ts: list[datetime | None] = []
    for _ in range(n):
        r = rng.random()
        if r < 0.1:
            ts.append(None)
        elif r < 0.13:
            ts.append(datetime(1960, 1, 1))
        elif r < 0.16:
            ts.append((NOW + timedelta(days=3)).replace(tzinfo=None))
        else:
            ts.append(
                (
                    NOW - timedelta(seconds=rng.randrange(60 * 86400), microseconds=rng.randrange(10**6))
                ).replace(tzinfo=None)
            )
    ts_type = pa.timestamp("us", tz="Europe/Paris") if aware else pa.timestamp("us")
    ts_array = pa.array(ts, pa.timestamp("us"))
    if aware:
        ts_array = ts_array.cast(pa.timestamp("us", tz="UTC")).cast(ts_type)
    columns: dict[str, Any] = {
        "event_id": pa.array(
            [rng.choice([f"e{rng.randrange(4 * n)}"] * 16 + [None] * 3 + [""]) for _ in range(n)]
        ),
        "timestamp": ts_array,
        "event_type": pa.array(_column(rng, n, _TYPES), pa.string()),
        "name": pa.array(_column(rng, n, _NAMES), pa.string()),
        "component": pa.array(_column(rng, n, [None, "Checkout", "Search", "Nav"]), pa.string()),
        "session_id": pa.array(_column(rng, n, [None, *[f"s{i}" for i in range(30)]]), pa.string()),
        "severity": pa.array(_column(rng, n, _SEVERITIES), pa.string()),
        "duration_ms": pa.array(_column(rng, n, [None, 12.5, 0.0, 1e6, -1.0, float("inf"), float("nan")])),
        "value": pa.array(_column(rng, n, [None, 3, -7, 2**40]), pa.int64()),
        "unit": pa.array(_column(rng, n, [None, "ms", "u" * 33]), pa.string()),
        "page": pa.array(_column(rng, n, ["/checkout", None, "https://s.example.com/p/42?email=a@b.co#f"])),
        "properties": pa.array(_column(rng, n, _PROPS), pa.string()),
        "do_not_track": pa.array(_column(rng, n, [None, None, None, False, True, True]), pa.bool_()),
        "ip": pa.array(_column(rng, n, [None, None, None, "10.1.2.3"]), pa.string()),
    }
    if hashes:
        columns["user_id_hash"] = pa.array(
            _column(rng, n, ["0123456789abcdef", None, "fedcba9876543210", "nothex"])
        )
        columns["user_id"] = pa.array([None] * (n - 1) + ["raw-user"], pa.string())
    else:
        columns["user_id"] = pa.array(
            _column(rng, n, ["alice", None, "bob@example.com", "z" * 201]), pa.string()
        )
    return pa.table(columns)


def _store(tmp_path: Path, name: str) -> Store:
    return Store(load_settings({"db": str(tmp_path / name), "salt": SALT, "threads": 2}, env={}))


def _both(
    tmp_path: Path, path: Path
) -> tuple[tuple[IngestReport, list[Any]], tuple[IngestReport, list[Any]]]:
    out = []
    for arrow in (True, False):
        with _store(tmp_path, f"{path.stem}-{arrow}.duckdb") as store:
            report = import_file(Ingestor(store), path, arrow=arrow)
            # a record without a timestamp is stored at its receive time: that (and the derived
            # session it may start) alone can differ between the two imports
            late = NOW.replace(tzinfo=None)
            rows = [
                (*r[:2], "received", *r[3:21], "derived", *r[22:]) if r[2] > late else r
                for r in store.fetch(ROW)
            ]
            out.append((report, rows))
    return out[0], out[1]


@pytest.mark.parametrize("variant", ["plain", "aware", "hashes"])
def test_a_parquet_file_imports_column_by_column_to_the_rows_and_report_of_the_record_path(
    tmp_path: Path, variant: str
) -> None:
    rng = random.Random(f"arrow-{variant}")
    path = tmp_path / f"{variant}.parquet"
    tables = [_table(rng, 3_000, hashes=variant == "hashes", aware=variant == "aware") for _ in range(4)]
    with pq.ParquetWriter(path, tables[0].schema) as writer:
        for table in tables:
            writer.write_table(table, row_group_size=1_000)

    (arrow_report, arrow_rows), (record_report, record_rows) = _both(tmp_path, path)

    assert arrow_report == record_report
    assert 100 < arrow_report.rejected < arrow_report.accepted and arrow_report.duplicates > 0
    assert arrow_report.dropped_dnt > 0 and arrow_report.redactions > 0
    assert arrow_rows == record_rows


def test_a_parquet_column_of_a_type_arrow_does_not_handle_takes_the_record_path_with_the_same_result(
    tmp_path: Path,
) -> None:
    rng = random.Random("odd-types")
    table = _table(rng, 2_000)
    stamps = [None if t is None else t.isoformat() + "Z" for t in table.column("timestamp").to_pylist()]
    table = table.set_column(table.schema.get_field_index("timestamp"), "timestamp", pa.array(stamps))
    table = table.append_column("extra", pa.array(_column(rng, 2_000, [None, None, "x"])))
    path = tmp_path / "odd.parquet"
    pq.write_table(table, path)

    (arrow_report, arrow_rows), (record_report, record_rows) = _both(tmp_path, path)

    assert arrow_report == record_report and arrow_rows == record_rows
    assert any("extra" in reason for _, reason in arrow_report.errors)


def test_an_exported_parquet_file_is_validated_in_arrow_and_imports_back_to_the_same_rows(
    tmp_path: Path,
) -> None:
    rng = random.Random("round-trip")
    events = [
        {"event_type": rng.choice(["component_load", "performance", "page_view"]), "user_id": f"u{rng.randrange(90)}",
         "component": rng.choice(["Checkout", "Nav"]), "name": "load_time", "value": rng.random() * 100,
         "timestamp": (NOW - timedelta(seconds=rng.randrange(86400 * 30))).isoformat(),
         "properties": {"n": i, "plan": rng.choice(["pro", "free"])}}
        for i in range(20_000)
    ]  # fmt: skip
    path = tmp_path / "export.parquet"
    with _store(tmp_path, "source.duckdb") as source:
        ingestor = Ingestor(source)
        for i in range(0, len(events), 10_000):
            assert ingestor.ingest(events[i : i + 10_000]).accepted == 10_000
        export_events(source, path, "parquet")
        expected = source.fetch(ROW.replace("seq, ", "", 1))
    first = next(pq.ParquetFile(path).iter_batches(batch_size=1_000))
    table = pa.Table.from_batches([first]).rename_columns(
        ["user_id" if c == "user_id_hash" else c for c in first.schema.names]
    )
    assert validate_arrow(table, NOW.replace(tzinfo=None), lambda k: {}) is not None

    with _store(tmp_path, "copy.duckdb") as copy:
        report = import_file(Ingestor(copy), path)
        assert (report.accepted, report.rejected, report.duplicates) == (20_000, 0, 0)
        assert copy.fetch(ROW.replace("seq, ", "", 1)) == expected
        again = import_file(Ingestor(copy), path)
        assert (again.accepted, again.duplicates) == (0, 20_000)
