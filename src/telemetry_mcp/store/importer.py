"""Bulk import of JSONL / JSON / CSV / Parquet files through the same ingest path as MCP."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from telemetry_mcp.errors import InvalidArgument
from telemetry_mcp.store.export import HASH_COLUMN, is_stored_hash
from telemetry_mcp.store.ingest import Ingestor, IngestReport

Progress = Callable[[int, int | None], None]
BATCH = 10_000


class _BadRecord:
    """A line or row that could not even be parsed; reported as a rejection with its position."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _jsonl(path: Path) -> Iterator[Any]:
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except (ValueError, RecursionError) as exc:
                yield _BadRecord(f"line {lineno}: malformed JSON ({str(exc)[:120]})")


def _json(path: Path) -> Iterator[Any]:
    with path.open("rb") as fh:
        try:
            data = json.load(fh)
        except (ValueError, RecursionError) as exc:
            raise InvalidArgument(f"{path}: not valid JSON ({str(exc)[:200]})") from None
    if isinstance(data, dict) and isinstance(data.get("events"), list):
        data = data["events"]
    if not isinstance(data, list):
        raise InvalidArgument(f'{path}: expected a JSON array of events (or {{"events": [...]}})')
    yield from data


def _csv_value(key: str, value: str) -> Any:
    if value == "":
        return None
    if key == "do_not_track" and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if key == "properties":
        try:
            return json.loads(value)
        except ValueError:
            return value  # validation reports it as "expected a JSON object"
    return value


def _csv(path: Path) -> Iterator[Any]:
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            yield {k: _csv_value(k, v) for k, v in row.items() if k is not None and v is not None and v != ""}


def _parquet_value(key: str, value: Any) -> Any:
    if key == "properties" and isinstance(value, str):
        return _csv_value(key, value)  # a JSON text column, as writers without a map type store it
    if hasattr(value, "isoformat"):
        # naive datetimes in Parquet are UTC by convention
        text = value.isoformat()
        return text + "Z" if getattr(value, "tzinfo", None) is None and key == "timestamp" else text
    return value


def _parquet(path: Path) -> Iterator[Any]:
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH):
        for row in batch.to_pylist():
            yield {k: _parquet_value(k, v) for k, v in row.items() if v is not None}


READERS: dict[str, Callable[[Path], Iterator[Any]]] = {
    ".jsonl": _jsonl,
    ".ndjson": _jsonl,
    ".json": _json,
    ".csv": _csv,
    ".parquet": _parquet,
}


def records(path: Path) -> Iterator[Any]:
    """Raw event records of a file, by extension."""
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise InvalidArgument(f"{path}: unsupported file type; use one of {', '.join(sorted(READERS))}")
    if not path.is_file():
        raise InvalidArgument(f"{path}: no such file")
    return reader(path)


class _HashColumn:
    """Whether a file carries stored hashes (`user_id_hash`, an export) or raw ids (`user_id`).

    The first record with either decides for the whole file; a record with the other one, or a
    `user_id_hash` that is not a stored hash (16 hex characters), is rejected rather than guessed at.
    """

    def __init__(self) -> None:
        self.prehashed: bool | None = None

    def check(self, record: Any) -> Any:
        if not isinstance(record, dict) or (HASH_COLUMN not in record and self.prehashed is not True):
            if isinstance(record, dict) and record.get("user_id") is not None:
                self.prehashed = False
            return record
        hashed = record.pop(HASH_COLUMN, None)
        raw = record.get("user_id")
        if hashed is not None and raw is not None:
            return _BadRecord("both user_id and user_id_hash: an event has one user")
        if raw is not None:
            return _BadRecord("user_id in a file of stored hashes (user_id_hash); use one or the other")
        if hashed is None:
            return record
        if self.prehashed is False:
            return _BadRecord("user_id_hash in a file of raw user_ids; use one or the other")
        if not is_stored_hash(hashed):
            return _BadRecord("user_id_hash must be a stored hash (16 lowercase hex characters, as exported)")
        self.prehashed = True
        record["user_id"] = hashed
        return record


def import_file(ingestor: Ingestor, path: Path, progress: Progress | None = None) -> IngestReport:
    """Load one file in batches of 10,000; a bad line is a rejection (by record number), never a stop.

    A file written by `export` carries `user_id_hash` (stored hashes): those are stored as they are,
    never hashed a second time, so export → import gives back the same rows.
    """
    total = IngestReport()
    batch: list[Any] = []
    positions: list[int] = []
    seen = 0
    users = _HashColumn()

    def flush() -> None:
        report = ingestor.ingest(batch, prehashed_users=bool(users.prehashed))
        errors, report.errors = report.errors, []
        total.merge(report)
        total.errors.extend((positions[i], reason) for i, reason in errors[: max(0, 100 - len(total.errors))])
        batch.clear()
        positions.clear()
        if progress:
            progress(seen, None)

    for raw in records(path):
        record = users.check(raw)
        if isinstance(record, _BadRecord):
            total.reject(seen, record.reason)
        else:
            batch.append(record)
            positions.append(seen)
        seen += 1
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()
    total.errors.sort()
    return total
