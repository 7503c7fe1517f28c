"""Bulk import of JSONL / JSON / CSV / Parquet files through the same ingest path as MCP."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from telemetry_mcp.errors import InvalidArgument
from telemetry_mcp.store.export import HASH_COLUMN, is_stored_hash
from telemetry_mcp.store.ingest import Ingestor, IngestReport

# progress(records done, bytes of the file read, the file's size in bytes)
Progress = Callable[[int, int, int], None]
BATCH = 10_000
KEY_BYTES = 4096  # the file's first bytes (with its name) name its records' default event ids
PEEK_BYTES = 64


class _BadRecord:
    """A line or row that could not even be parsed; reported as a rejection with its position."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _jsonl(fh: BinaryIO) -> Iterator[Any]:
    for lineno, line in enumerate(fh, 1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except (ValueError, RecursionError) as exc:
            yield _BadRecord(f"line {lineno}: malformed JSON ({str(exc)[:120]})")


def _json(fh: BinaryIO) -> Iterator[Any]:
    """A JSON array (or {"events": [...]}) read item by item: memory stays flat as the file grows."""
    import ijson

    head = fh.peek(PEEK_BYTES) if hasattr(fh, "peek") else b""  # type: ignore[attr-defined]
    first = head.lstrip()[:1]
    if first not in (b"[", b"{"):
        raise InvalidArgument('expected a JSON array of events (or {"events": [...]})')
    prefix = "item" if first == b"[" else "events.item"
    seen = 0
    try:
        for item in ijson.items(fh, prefix, use_float=True):
            seen += 1
            yield item
    except ijson.JSONError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidArgument(f"not valid JSON after {seen:,} records ({reason[:200]})") from None
    if not seen and first == b"{":
        raise InvalidArgument('expected a JSON array of events (or {"events": [...]})')


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


def _csv(fh: BinaryIO) -> Iterator[Any]:
    text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
    for row in csv.DictReader(text):
        yield {k: _csv_value(k, v) for k, v in row.items() if k is not None and v is not None and v != ""}


def _parquet_value(key: str, value: Any) -> Any:
    if key == "properties" and isinstance(value, str):
        return _csv_value(key, value)  # a JSON text column, as writers without a map type store it
    if hasattr(value, "isoformat"):
        # naive datetimes in Parquet are UTC by convention
        text = value.isoformat()
        return text + "Z" if getattr(value, "tzinfo", None) is None and key == "timestamp" else text
    return value


def _parquet(fh: BinaryIO) -> Iterator[Any]:
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(fh).iter_batches(batch_size=BATCH):
        for row in batch.to_pylist():
            yield {k: _parquet_value(k, v) for k, v in row.items() if v is not None}


READERS: dict[str, Callable[[BinaryIO], Iterator[Any]]] = {
    ".jsonl": _jsonl,
    ".ndjson": _jsonl,
    ".json": _json,
    ".csv": _csv,
    ".parquet": _parquet,
}


class Source:
    """One file's records, read in bounded chunks (gzip of each text format too), and its bytes read."""

    def __init__(self, path: Path) -> None:
        name = path.name.lower()
        self.gzipped = name.endswith(".gz")
        kind = Path(name.removesuffix(".gz")).suffix
        reader = READERS.get(kind)
        accepted = ", ".join([*sorted(READERS), "and .gz of the text formats"])
        if reader is None:
            raise InvalidArgument(f"{path}: unsupported file type; use one of {accepted}")
        if self.gzipped and kind == ".parquet":
            raise InvalidArgument(
                f"{path}: Parquet compresses itself; import the .parquet file, not a .gz of it"
            )
        if not path.is_file():
            raise InvalidArgument(f"{path}: no such file")
        self.path = path
        self.size = path.stat().st_size
        self._reader = reader
        self._raw = path.open("rb")
        head = self._raw.read(KEY_BYTES)
        self._raw.seek(0)
        self.key = hashlib.sha256(path.name.encode() + b"\0" + head).hexdigest()[:16]

    @property
    def bytes_read(self) -> int:
        try:
            return min(self._raw.tell(), self.size)
        except (OSError, ValueError):
            return self.size

    def __iter__(self) -> Iterator[Any]:
        try:
            fh: BinaryIO = self._raw
            if self.gzipped:
                fh = gzip.GzipFile(fileobj=self._raw, mode="rb")  # type: ignore[assignment]
            try:
                yield from self._reader(fh)
            except InvalidArgument as exc:
                raise InvalidArgument(f"{self.path}: {exc}") from None
            except (OSError, EOFError, zlib.error) as exc:
                raise InvalidArgument(f"{self.path}: cannot be read ({exc})") from None
        finally:
            self._raw.close()

    def default_id(self, position: int) -> str:
        """The event id of the record at `position` when it has none: the same on every re-run."""
        return f"imp-{self.key}-{position}"


def records(path: Path) -> Iterator[Any]:
    """Raw event records of a file, by extension (.gz of the text formats too)."""
    return iter(Source(path))


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
    """Load one file in batches of 10,000, each committed before the next is read; a bad line is a
    rejection (by record number), never a stop.

    A record without an event_id gets one from the file (its name and first 4 KiB) and its
    position, so a re-run after a crash skips what was committed instead of storing it twice.
    A file written by `export` carries `user_id_hash` (stored hashes): those are stored as they are,
    never hashed a second time, so export → import gives back the same rows.
    """
    source = Source(path)
    total = IngestReport()
    batch: list[Any] = []
    positions: list[int] = []
    seen = 0
    users = _HashColumn()

    def flush() -> None:
        prepared = ingestor.prepare(
            batch,
            default_ids=lambda i: source.default_id(positions[i]),
            prehashed_users=bool(users.prehashed),
        )
        report = ingestor.commit(prepared)
        errors, report.errors = report.errors, []
        total.merge(report)
        total.errors.extend((positions[i], reason) for i, reason in errors[: max(0, 100 - len(total.errors))])
        batch.clear()
        positions.clear()
        if progress:
            progress(seen, source.bytes_read, source.size)

    for raw in source:
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
