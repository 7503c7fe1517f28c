"""Bulk import of JSONL / JSON / CSV / Parquet files through the same ingest path as MCP."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

from telemetry_mcp.errors import InvalidArgument
from telemetry_mcp.store.export import HASH_COLUMN, is_stored_hash
from telemetry_mcp.store.ingest import MAX_ERRORS, Ingestor, IngestReport, Prepared

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


class _Line:
    """One JSONL line left as its bytes: the ingest core decodes it straight to a struct."""

    __slots__ = ("lineno", "text")

    def __init__(self, lineno: int, text: bytes) -> None:
        self.lineno = lineno
        self.text = text


def _jsonl_lines(fh: BinaryIO) -> Iterator[Any]:
    for lineno, line in enumerate(fh, 1):
        if line.strip():
            yield _Line(lineno, line)


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
        self._reader = _jsonl_lines if reader is _jsonl else reader
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

    @property
    def columnar(self) -> bool:
        """Whether the file is read as typed column batches (Parquet) rather than record by record."""
        return self._reader is _parquet

    def tables(self) -> Iterator[Any]:
        """The file's record batches as Arrow tables of at most BATCH rows (Parquet only)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            for batch in pq.ParquetFile(self._raw).iter_batches(batch_size=BATCH):
                yield pa.Table.from_batches([batch])
        except (OSError, EOFError) as exc:
            raise InvalidArgument(f"{self.path}: cannot be read ({exc})") from None
        finally:
            self._raw.close()

    def default_id(self, position: int) -> str:
        """The event id of the record at `position` when it has none: the same on every re-run."""
        return f"imp-{self.key}-{position}"


def records(path: Path) -> Iterator[Any]:
    """Raw event records of a file, by extension (.gz of the text formats too)."""
    for record in Source(path):
        if isinstance(record, _Line):
            try:
                yield json.loads(record.text)
            except (ValueError, RecursionError) as exc:
                yield _BadRecord(f"line {record.lineno}: malformed JSON ({str(exc)[:120]})")
        else:
            yield record


class _HashColumn:
    """Whether a file carries stored hashes (`user_id_hash`, an export) or raw ids (`user_id`).

    The first record with either decides for the whole file; a record with the other one, or a
    `user_id_hash` that is not a stored hash (16 hex characters), is rejected rather than guessed at.
    """

    def __init__(self) -> None:
        self.prehashed: bool | None = None

    def needs_dict(self, line: bytes) -> bool:
        """Whether this line must be decoded for `check` (else it passes as its bytes, unchanged)."""
        if self.prehashed is True or b'"user_id_hash"' in line:
            return True
        return self.prehashed is None and b'"user_id"' in line

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


class _Rows:
    """Row k of an Arrow table as the record the Parquet reader gives (for the rows Arrow cannot decide)."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self.calls = 0
        self.all: list[dict[str, Any]] | None = None

    def __call__(self, k: int) -> dict[str, Any]:
        self.calls += 1
        if self.all is None and self.calls > 64:
            self.all = self.table.to_pylist()
        row = self.all[k] if self.all is not None else self.table.slice(k, 1).to_pylist()[0]
        return {key: _parquet_value(key, v) for key, v in row.items() if v is not None}


def _resolve_users(
    table: Any, users: _HashColumn, unparsed: IngestReport, base: int
) -> tuple[Any, list[int]]:
    """`_HashColumn.check` on each row of a table with a `user_id_hash` column, in file order.

    Returns the table (user_id holding the stored hashes, rows it rejects removed) and the batch
    positions of the rows kept.
    """
    import pyarrow as pa

    n = table.num_rows
    if HASH_COLUMN not in table.column_names:
        return table, list(range(n))
    hashed = table.column(HASH_COLUMN).to_pylist()
    raw_ids = table.column("user_id").to_pylist() if "user_id" in table.column_names else [None] * n
    keep: list[int] = []
    resolved: list[Any] = []
    for k, (h, u) in enumerate(zip(hashed, raw_ids, strict=True)):
        record: dict[str, Any] = {}
        if u is not None:
            record["user_id"] = u
        if h is not None:
            record[HASH_COLUMN] = h
        checked = users.check(record)
        if isinstance(checked, _BadRecord):
            unparsed.reject(base + k, checked.reason)
        else:
            keep.append(k)
            resolved.append(checked.get("user_id"))
    table = table.take(pa.array(keep, pa.int64())).drop_columns([HASH_COLUMN])
    if "user_id" in table.column_names:
        table = table.drop_columns(["user_id"])
    try:
        column = pa.array(resolved, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        column = pa.array(resolved)  # not text: the record path rejects those rows with its reasons
    return table.append_column("user_id", column), keep


def import_file(
    ingestor: Ingestor, path: Path, progress: Progress | None = None, *, arrow: bool = True
) -> IngestReport:
    """Load one file in batches of 10,000, each committed before the next is read; a bad line is a
    rejection (by record number), never a stop.

    A record without an event_id gets one from the file (its name and first 4 KiB) and its
    position, so a re-run after a crash skips what was committed instead of storing it twice.
    A file written by `export` carries `user_id_hash` (stored hashes): those are stored as they are,
    never hashed a second time, so export → import gives back the same rows.
    """
    source = Source(path)
    total = IngestReport()  # written by the commit thread only
    unparsed = IngestReport()  # records rejected before validation, by this thread
    batch: list[Any] = []
    positions: list[int] = []
    lines: dict[int, int] = {}  # batch index → line number, for the lines left as bytes
    seen = 0
    users = _HashColumn()
    # One thread commits batch N (DuckDB works without the GIL) while this one reads and prepares
    # batch N+1; at most one commit is in flight, so memory stays at two batches.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-commit")
    pending: Future[None] | None = None

    def flush() -> None:
        where, at = list(positions), dict(lines)
        prepared = ingestor.prepare(
            batch,
            default_ids=lambda i: source.default_id(where[i]),
            prehashed_users=bool(users.prehashed),
        )
        batch.clear()
        positions.clear()
        lines.clear()
        submit(prepared, where, at)

    def submit(prepared: Prepared, where: list[int], at: dict[int, int]) -> None:
        nonlocal pending
        if pending is not None:
            pending.result()
        pending = pool.submit(commit, prepared, where, at, seen, source.bytes_read)

    def columnar() -> None:
        # Parquet: each record batch is validated column by column (the record path only for the
        # rows Arrow cannot decide), with the same positions, ids and reports as record by record.
        # Batches hold BATCH records that reached validation, as the record path's do (the rows
        # rejected before it do not count), so the two paths cut the file at the same places.
        import pyarrow as pa

        nonlocal seen
        held: list[Any] = []
        held_where: list[int] = []

        def send(table: Any, where: list[int]) -> None:
            def default_id(i: int) -> str:
                return source.default_id(where[i])

            prepared = ingestor.prepare_arrow(
                table, _Rows(table), default_ids=default_id, prehashed_users=bool(users.prehashed)
            )
            submit(prepared, where, {})

        for table in source.tables():
            base = seen
            seen += table.num_rows
            table, kept = _resolve_users(table, users, unparsed, base)
            held.append(table)
            held_where.extend(base + k for k in kept)
            while len(held_where) >= BATCH:
                whole = pa.concat_tables(held, promote_options="permissive") if len(held) > 1 else held[0]
                send(whole.slice(0, BATCH), held_where[:BATCH])
                held[:] = [whole.slice(BATCH)]
                del held_where[:BATCH]
        if held_where:
            send(
                pa.concat_tables(held, promote_options="permissive") if len(held) > 1 else held[0], held_where
            )

    def commit(prepared: Prepared, where: list[int], at: dict[int, int], done: int, read: int) -> None:
        report = ingestor.commit(prepared)
        errors, report.errors = report.errors, []
        total.merge(report)
        room = max(0, MAX_ERRORS - len(total.errors))
        total.errors.extend((where[i], _with_line(reason, at.get(i))) for i, reason in errors[:room])
        if progress:
            progress(done, read, source.size)

    try:
        if arrow and source.columnar:
            columnar()
        for raw in [] if arrow and source.columnar else source:
            if isinstance(raw, _Line):
                if not users.needs_dict(raw.text):
                    lines[len(batch)] = raw.lineno
                    batch.append(raw.text)
                    positions.append(seen)
                    seen += 1
                    if len(batch) >= BATCH:
                        flush()
                    continue
                try:
                    raw = json.loads(raw.text)
                except (ValueError, RecursionError) as exc:
                    raw = _BadRecord(f"line {raw.lineno}: malformed JSON ({str(exc)[:120]})")
            record = raw if isinstance(raw, _BadRecord) else users.check(raw)
            if isinstance(record, _BadRecord):
                unparsed.reject(seen, record.reason)
            else:
                batch.append(record)
                positions.append(seen)
            seen += 1
            if len(batch) >= BATCH:
                flush()
        if batch:
            flush()
        if pending is not None:
            pending.result()
    finally:
        pool.shutdown(wait=True)
    total.merge(unparsed)
    total.errors.sort()
    del total.errors[MAX_ERRORS:]
    return total


def _with_line(reason: str, lineno: int | None) -> str:
    """A line that is not JSON is rejected with its line number, as the line reader says it."""
    if lineno is not None and reason.startswith("malformed JSON ("):
        return f"line {lineno}: {reason}"
    return reason
