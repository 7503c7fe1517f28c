"""`telemetry-mcp export`: stored events as files `import` reads back to the same rows.

Rows are read in windows of arrival order (seq), so memory stays bounded however large the store:
each window is one small sorted read, written out before the next is read. The store's connection
has no file access (the SQL tool relies on that), so DuckDB hands Arrow batches to Python writers
instead of running `COPY … TO`.

The files are in the SPEC's event format, with one difference: user ids are already hashed, so
they travel as `user_id_hash` (16 hex characters), which `import` stores as it is instead of
hashing it a second time. A store that keeps raw ids (`--no-hash-user-ids`) exports `user_id`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import pyarrow as pa

from telemetry_mcp.errors import InvalidArgument
from telemetry_mcp.store.db import Store

Format = Literal["parquet", "csv", "jsonl"]
FORMATS: tuple[Format, ...] = ("parquet", "csv", "jsonl")
WINDOW = 20_000  # seq numbers per read: at most 20,000 rows (JSONL: ~8 MB of text) in flight
HASH_COLUMN = "user_id_hash"

# (output name, SQL over events); the order of SPEC section 2
_TEXT_TS = "strftime(ts, '%Y-%m-%dT%H:%M:%S.%fZ')"
_FIELDS = ("event_type", "name", "component", "USER", "session_id", "severity", "duration_ms", "value",
           "unit", "service", "service_version", "platform", "os", "framework", "page")  # fmt: skip


@dataclass
class ExportReport:
    """What one export wrote."""

    path: str
    format: str
    events: int
    bytes: int

    def line(self) -> str:
        return f"exported {self.events:,} events to {self.path} ({self.format}, {self.bytes:,} bytes)"


def _columns(hashed: bool, fmt: Format) -> list[str]:
    user = f"user_id AS {HASH_COLUMN}" if hashed else "user_id"
    ts = "ts AS timestamp" if fmt == "parquet" else f"{_TEXT_TS} AS timestamp"
    out = ["event_id", ts]
    out += [user if f == "USER" else f for f in _FIELDS]
    out.append("properties::VARCHAR AS properties")
    return out


def _jsonl_select(hashed: bool) -> str:
    """One JSON object per row, built by DuckDB (properties embedded as an object, not a string)."""
    user_key = HASH_COLUMN if hashed else "user_id"
    pairs = [("event_id", "event_id"), ("timestamp", _TEXT_TS)]
    pairs += [(user_key, "user_id") if f == "USER" else (f, f) for f in _FIELDS]
    pairs.append(("properties", "properties"))
    body = ", ".join(f"'{k}': {v}" for k, v in pairs)
    # nulls stay (an absent field and a null one import alike; stripping them could touch properties)
    # the newline too: a batch is then one contiguous buffer of lines, written without a copy
    return f"to_json({{{body}}})::VARCHAR || chr(10) AS line"


def _where(
    since: datetime | None, until: datetime | None, condition: str, condition_params: Sequence[Any]
) -> tuple[str, list[Any]]:
    """The WHERE of one window: `condition` (' AND …' with $1…$m bound to `condition_params`, as
    analytics.common.compile_filters builds it), then the window's seq range and since/until."""
    params = list(condition_params)

    def add(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"

    lo, hi = add(None), add(None)  # the window bounds: set per window
    sql = f"seq >= {lo} AND seq < {hi}"
    if since is not None:
        sql += f" AND ts >= {add(since)}"
    if until is not None:
        sql += f" AND ts < {add(until)}"
    return sql + condition, params


class _BlockCache:
    """Keeps what an export adds to DuckDB's block cache small.

    DuckDB keeps every block it has read cached until its memory_limit needs the room, so reading a
    whole store grows the process by the store's scanned columns (~42 MiB at 2 M events, up to the
    memory limit on a large store) though the export needs one window. When the cache has grown by
    `TRIM_AFTER` since the export began, DuckDB is asked to drop that much: memory_limit is set
    just under what is in use (it evicts unpinned blocks to get there), then back at once. Blocks
    other queries pin are never evicted; a concurrent query short of room meanwhile evicts or
    spills like at any limit. A file store only: in memory the blocks are the data.
    """

    TRIM_AFTER = 16 * 2**20

    def __init__(self, store: Store) -> None:
        self.on = not store.settings.is_memory
        self.start = 0
        if self.on:
            cur = store.cursor()
            try:
                self.start = self._cached(cur)
            finally:
                cur.close()

    @staticmethod
    def _cached(cur: Any) -> int:
        sql = "SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory() WHERE tag = 'BASE_TABLE'"
        return int(cur.execute(sql).fetchall()[0][0])

    def trim(self, cur: Any) -> None:
        if not self.on:
            return
        grown = self._cached(cur) - self.start
        if grown < self.TRIM_AFTER:
            return
        limit = cur.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        used = cur.execute("SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory()").fetchall()[0][
            0
        ]
        try:
            cur.execute(f"SET memory_limit = '{max(int(used) - grown, 16 * 2**20)}B'")
        except duckdb.Error:
            pass  # pinned by others right now: try again after the next window
        finally:
            cur.execute("SET memory_limit = ?", [limit])


def _text_bytes(column: pa.Array) -> memoryview:
    """The UTF-8 bytes of a string column's values, back to back: a view of its Arrow data buffer.

    No Python string per row and no joined copy (those, not the rows, were most of a JSONL export's
    memory). Every value is non-NULL here (to_json of a struct never is).
    """
    if len(column) == 0:
        return memoryview(b"")
    kind = "int64" if pa.types.is_large_string(column.type) else "int32"
    offsets = np.frombuffer(column.buffers()[1], dtype=kind)  # type: ignore[union-attr]
    lo, hi = int(offsets[column.offset]), int(offsets[column.offset + len(column)])
    return memoryview(column.buffers()[2])[lo:hi]  # type: ignore[arg-type]


class _Writer:
    """Appends Arrow batches to one file in the chosen format."""

    def __init__(self, path: Path, fmt: Format) -> None:
        self.path, self.fmt = path, fmt
        self._w: Any = None
        self._fh: Any = None

    def write(self, batch: pa.RecordBatch) -> None:
        if self.fmt == "jsonl":
            if self._fh is None:
                self._fh = self.path.open("wb")
            self._fh.write(_text_bytes(batch.column(0)))
            return
        if self._w is None:
            if self.fmt == "parquet":
                import pyarrow.parquet as pq

                self._w = pq.ParquetWriter(self.path, batch.schema, compression="zstd")
            else:
                import pyarrow.csv as pcsv

                self._w = pcsv.CSVWriter(self.path, batch.schema)
        self._w.write_batch(batch)

    def close(self, schema: pa.Schema | None) -> None:
        if self._w is None and self._fh is None:
            # nothing matched: still a valid, empty file of the format
            if self.fmt == "jsonl":
                self.path.write_text("")
            elif schema is not None:
                self.write(pa.RecordBatch.from_pylist([], schema))
        if self._w is not None:
            self._w.close()
        if self._fh is not None:
            self._fh.close()


def export_events(
    store: Store,
    path: str | Path,
    fmt: str,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    condition: str = "",
    condition_params: Sequence[Any] = (),
    window: int = WINDOW,
) -> ExportReport:
    """Write the events with `since <= ts < until` (naive UTC; None: unbounded), in arrival order.

    `condition` narrows them further: ' AND …' SQL over the events columns whose values are bound
    ($1…$m, `condition_params`), e.g. the tools' `filters` compiled by analytics.common (the CLI's
    `--filter`). The file is written beside its final name and renamed when complete, so a reader
    never sees half.
    """
    if fmt not in FORMATS:
        raise InvalidArgument(f'unknown export format "{fmt}"; use one of {", ".join(FORMATS)}')
    target = Path(path).expanduser().resolve()
    if not target.parent.is_dir():
        raise InvalidArgument(f"{target.parent}: no such directory; create it or choose another PATH")
    fmt_t: Format = fmt  # type: ignore[assignment]
    hashed = store.settings.hash_user_ids
    select = _jsonl_select(hashed) if fmt_t == "jsonl" else ", ".join(_columns(hashed, fmt_t))
    where, params = _where(since, until, condition, condition_params)
    slot = len(condition_params)  # params[slot], params[slot + 1]: the window's seq bounds
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    writer = _Writer(tmp, fmt_t)
    rows = 0
    schema: pa.Schema | None = None
    store.refresh_sessions()
    cache = _BlockCache(store)
    cur = store.cursor()
    try:
        lo_hi = cur.execute("SELECT min(seq), max(seq) FROM events").fetchall()[0]
        lo, hi = (int(lo_hi[0]), int(lo_hi[1])) if lo_hi[0] is not None else (1, 0)
        sql = f"SELECT {select} FROM events WHERE {where} ORDER BY seq"
        start = lo
        while start <= hi:
            params[slot : slot + 2] = [start, start + window]
            reader: pa.RecordBatchReader = cur.sql(sql, params=params).to_arrow_reader(window)
            for batch in reader:
                schema = batch.schema
                if batch.num_rows:
                    writer.write(batch)
                    rows += batch.num_rows
            del reader
            start += window
            cache.trim(cur)
        if schema is None:
            empty: pa.Table = cur.sql(f"SELECT {select} FROM events LIMIT 0").to_arrow_table()
            schema = empty.schema
        writer.close(schema)
        os.replace(tmp, target)
    except BaseException:
        writer.close(None)
        tmp.unlink(missing_ok=True)
        raise
    finally:
        cur.close()
    return ExportReport(str(target), fmt_t, rows, target.stat().st_size)


def is_stored_hash(value: object) -> bool:
    """The shape of a stored user id hash: 16 lowercase hex characters."""
    return isinstance(value, str) and len(value) == 16 and all(c in "0123456789abcdef" for c in value)
