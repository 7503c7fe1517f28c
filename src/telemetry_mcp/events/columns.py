"""Column-wise validation of a batch: typed structs in C, checks per column, the model for the rest.

Each record is converted (from a dict) or decoded (from JSON bytes) into the msgspec `_Candidate`
struct, the shape of an obviously valid event; the whole batch goes through msgspec in one call
when it can. The structs become row tuples and columns (in C), and the checks msgspec cannot
express (NUL characters, lone surrogates, finite numbers, timestamp range, the size and depth of
properties) then run once per column, looking at single rows only when a column fails. A record
that fails any of them goes to the pydantic model (`validate_event`), which either accepts it (the
fast path is only ever stricter) or rejects it with its precise reasons.
tests/store/test_columnar_differential.py checks the result equals the per-event reference.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from telemetry_mcp.events.fastpath import _Candidate, _encodable, _timestamp, properties_json
from telemetry_mcp.events.model import EPOCH, FUTURE_TOLERANCE, Event, EventRejected, validate_event

TEXT_FIELDS = ("event_id", "name", "component", "user_id", "session_id", "service", "service_version",
               "platform", "os", "framework", "page", "unit", "ip")  # fmt: skip
# The fields of a row tuple, in order (the struct's fields: astuple gives them in C).
FIELDS: tuple[str, ...] = _Candidate.__struct_fields__
COL = {name: k for k, name in enumerate(FIELDS)}
_TS = COL["timestamp"]
_PROPS = COL["properties"]
_CONVERT_ERRORS = (msgspec.ValidationError, OverflowError, TypeError, ValueError)
_decode_candidate = msgspec.json.Decoder(_Candidate).decode
_decode_candidates = msgspec.json.Decoder(list[_Candidate]).decode
_astuple = msgspec.structs.astuple
_UTC_US = pa.timestamp("us", tz="UTC")
_NONE_OR_DATETIME = frozenset((type(None), datetime))
_MICROSECOND = timedelta(microseconds=1)


class Unparsable:
    """A record that is not even JSON (a bad line of a file): rejected with this reason."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


@dataclass
class Validated:
    """The valid records of a batch, in input order, as row tuples (FIELDS) with their properties' JSON.

    The timestamp of a row is a datetime (aware, or naive UTC) or None (use the receive time); it is
    within range. `timestamps(rows, received_at)` gives the stored column.
    """

    index: list[int] = field(default_factory=list)  # position in the batch of each valid record
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    props_json: list[str | None] = field(default_factory=list)
    rejects: list[tuple[int, str]] = field(default_factory=list)  # (index, reason), in input order


def validate_batch(raws: Sequence[Any], now: datetime) -> Validated:
    """Validate raw events: dicts, JSON bytes of one event each, or `Unparsable` markers."""
    structs = _structs(raws)
    good = [i for i, s in enumerate(structs) if s is not None]
    rows = [_astuple(s) for s in structs if s is not None]
    bad: set[int] = set()  # positions in `good` (and `rows`) that the model must decide
    props_json: list[str | None] = []
    if rows:
        columns = list(zip(*rows, strict=True))
        _check_text(columns, bad)
        _check_numbers(columns, bad)
        _check_timestamps(rows, columns[_TS], now, bad)
        props_json = _props_json(columns[_PROPS], bad)
    out = Validated()
    if not bad and len(good) == len(raws):
        out.index, out.rows, out.props_json = good, rows, props_json
        return out
    slow = [i for i, s in enumerate(structs) if s is None]
    slow += [good[k] for k in bad]
    slow.sort()
    fast = iter(k for k in range(len(good)) if k not in bad)
    next_fast = next(fast, None)
    for i in slow:
        # the fast rows before this slow one keep their order
        while next_fast is not None and good[next_fast] < i:
            _take(out, good[next_fast], rows[next_fast], props_json[next_fast])
            next_fast = next(fast, None)
        _slow(raws[i], i, out)
    while next_fast is not None:
        _take(out, good[next_fast], rows[next_fast], props_json[next_fast])
        next_fast = next(fast, None)
    return out


# --- Arrow columns (a Parquet file's record batches) ----------------------------------------------

_ARROW_TEXT = (*TEXT_FIELDS, "event_type", "severity", "properties")
_ARROW_NUMBERS = ("duration_ms", "value")
_TEXT_LIMITS = {name: 200 for name in ("name", "component", "user_id", "session_id", "service",
                                       "service_version", "platform", "os", "framework", "page")}  # fmt: skip
_TEXT_LIMITS["unit"] = 32
_TEXT_LIMITS["event_id"] = 128
_SEVERITIES = ("debug", "info", "warning", "error", "critical")  # an Arrow array only when used:
# pa.array() of Python values imports pandas (~0.17 s), which a server's start need not pay
# msgspec and json.loads read these differently (or not at all): such properties take the slow path.
_PROPS_ODD = re.compile(r"[0-9]{16}|\\u[dD][89a-fA-F]|NaN|Infinity")
_decode_any = msgspec.json.Decoder().decode


def _arrow_kind(name: str, dtype: pa.DataType) -> bool:
    """Whether a column of this name and type can be validated in Arrow (else: the record path)."""
    if pa.types.is_null(dtype):
        return name in FIELDS
    if name in _ARROW_TEXT:
        return bool(pa.types.is_string(dtype) or pa.types.is_large_string(dtype))
    if name in _ARROW_NUMBERS:
        return bool(pa.types.is_floating(dtype) or pa.types.is_integer(dtype))
    if name == "timestamp":
        return bool(pa.types.is_timestamp(dtype) and dtype.unit in ("s", "ms", "us"))
    if name == "do_not_track":
        return bool(pa.types.is_boolean(dtype))
    return False


def validate_arrow(table: pa.Table, now: datetime, raw: Callable[[int], Any]) -> Validated | None:
    """Validate a table of typed columns (a Parquet batch) like `validate_batch` does its records.

    The checks of `_Candidate` and of `validate_batch` run on whole Arrow columns; a row that fails any
    of them is decided by the record path on `raw(row)` (the record as the file reader gives it), so
    its rejection keeps its exact reason. None when a column's name or type is not one handled here:
    then the caller takes the record path for the whole table.
    """
    n = table.num_rows
    if n == 0 or not all(_arrow_kind(f.name, f.type) for f in table.schema):
        return None
    present = {f.name: table.column(f.name) for f in table.schema if not pa.types.is_null(f.type)}
    flag = np.zeros(n, dtype=bool)

    def mark(mask: pa.ChunkedArray | pa.Array) -> None:
        flag[mask.to_numpy(zero_copy_only=False)] = True

    for name in _ARROW_TEXT:
        column = present.get(name)
        if column is None:
            continue
        if name != "properties":
            mark(pc.fill_null(pc.match_substring(column, "\x00"), False))
        limit = _TEXT_LIMITS.get(name)
        if limit is not None:
            length = pc.utf8_length(column)
            too = pc.greater(length, limit)
            if name == "event_id":
                too = pc.or_(too, pc.equal(length, 0))
            mark(pc.fill_null(too, False))
    event_type = present.get("event_type")
    if event_type is None:
        return None  # every record is rejected: the record path says why
    mark(pc.fill_null(pc.invert(pc.match_substring_regex(event_type, r"^[a-z][a-z0-9_]{0,63}$")), True))
    if "severity" in present:
        mark(pc.fill_null(pc.invert(pc.is_in(present["severity"], value_set=pa.array(_SEVERITIES))), False))
    numbers: dict[str, list[Any]] = {}
    for name in _ARROW_NUMBERS:
        column = present.get(name)
        if column is None:
            continue
        try:
            column = column.cast(pa.float64())  # safe: an integer a float cannot hold exactly fails
        except pa.ArrowInvalid:
            return None
        bad = pc.invert(pc.is_finite(column))
        if name == "duration_ms":
            bad = pc.or_(bad, pc.less(column, 0))
        mark(pc.fill_null(bad, False))
        numbers[name] = column.to_pylist()
    stamps: list[Any] | None = None
    if "timestamp" in present:
        try:
            ts = present["timestamp"].cast(pa.timestamp("us"))  # UTC instants, naive
            micros = ts.cast(pa.int64())
        except pa.ArrowInvalid:
            return None
        high = (now + FUTURE_TOLERANCE - EPOCH) // _MICROSECOND
        mark(pc.fill_null(pc.or_(pc.less(micros, 0), pc.greater(micros, high)), False))
        stamps = ts.to_pylist()
    props: list[Any] = [None] * n
    props_json: list[str | None] = [None] * n
    if "properties" in present:
        for k, text in enumerate(present["properties"].to_pylist()):
            if text is None or flag[k]:
                continue
            value = None
            if not _PROPS_ODD.search(text):
                try:
                    value = _decode_any(text)
                except (msgspec.DecodeError, RecursionError):
                    value = None
            pj = properties_json(value) if type(value) is dict else None
            if pj is None:
                flag[k] = True
            else:
                props[k], props_json[k] = value, pj
    columns: list[list[Any]] = []
    for name in FIELDS:
        if name == "timestamp" and stamps is not None:
            columns.append(stamps)
        elif name == "properties":
            columns.append(props)
        elif name in numbers:
            columns.append(numbers[name])
        elif name in present:
            columns.append(present[name].to_pylist())
        else:
            columns.append([None] * n)
    rows = list(zip(*columns, strict=True))
    out = Validated()
    if not flag.any():
        out.index, out.rows, out.props_json = list(range(n)), rows, props_json
        return out
    slow = np.flatnonzero(flag).tolist()
    decided = validate_batch([raw(i) for i in slow], now)
    by_row = {
        slow[j]: (row, pj) for j, row, pj in zip(decided.index, decided.rows, decided.props_json, strict=True)
    }
    reasons = {slow[j]: reason for j, reason in decided.rejects}
    for k in range(n):
        if not flag[k]:
            _take(out, k, rows[k], props_json[k])
        elif k in by_row:
            _take(out, k, *by_row[k])
        else:
            out.rejects.append((k, reasons[k]))
    return out


def timestamps(column: Sequence[datetime | None], received_at: datetime) -> pa.Array:
    """The stored `ts` column (naive UTC) of validated rows' timestamps; None becomes `received_at`."""
    arr = pa.array(column, _UTC_US).cast(pa.timestamp("us"))
    return arr.fill_null(pa.scalar(received_at, pa.timestamp("us"))) if arr.null_count else arr


def _take(out: Validated, index: int, row: tuple[Any, ...], pj: str | None) -> None:
    out.index.append(index)
    out.rows.append(row)
    out.props_json.append(pj)


def _structs(raws: Sequence[Any]) -> list[_Candidate | None]:
    """One struct per record, None where the record is not of the obviously valid shape."""
    if raws and all(type(raw) is dict for raw in raws):
        try:
            return list(msgspec.convert(raws, list[_Candidate]))
        except _CONVERT_ERRORS:
            pass  # some record is not: one by one below
    structs: list[_Candidate | None] = [None] * len(raws)
    for i, raw in enumerate(raws):
        try:
            if type(raw) is dict:
                structs[i] = msgspec.convert(raw, _Candidate)
            elif type(raw) is bytes or type(raw) is msgspec.Raw:
                structs[i] = _decode_candidate(raw)
        except _CONVERT_ERRORS:
            pass
        except msgspec.DecodeError:
            pass
    return structs


def decode_array(body: bytes) -> list[_Candidate] | None:
    """The structs of a JSON array of events in one pass, or None when some item needs the slow path."""
    try:
        return _decode_candidates(body)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None


def _check_text(columns: list[tuple[Any, ...]], bad: set[int]) -> None:
    """NUL characters and lone surrogates: one test over each whole column, rows only when it fails."""
    for name in TEXT_FIELDS:
        column = columns[COL[name]]
        joined = "".join(filter(None, column))
        if "\x00" not in joined and (joined.isascii() or _encodable(joined)):
            continue
        for k, v in enumerate(column):
            if v is not None and ("\x00" in v or not (v.isascii() or _encodable(v))):
                bad.add(k)


def _check_numbers(columns: list[tuple[Any, ...]], bad: set[int]) -> None:
    """Finite numbers: one sum per column (inf and nan stay in it), rows only when it is not finite."""
    for name in ("duration_ms", "value"):
        column = columns[COL[name]]
        try:
            if math.isfinite(math.fsum(filter(None, column))):
                continue
        except (OverflowError, ValueError):
            pass  # finite values whose sum overflows, or inf + -inf: look at each
        for k, v in enumerate(column):
            if v is not None and not math.isfinite(v):
                bad.add(k)


def _check_timestamps(
    rows: list[tuple[Any, ...]], column: tuple[Any, ...], now: datetime, bad: set[int]
) -> None:
    """Timestamps: epoch milliseconds parsed in place, then one range test over the whole column."""
    if not set(map(type, column)) <= _NONE_OR_DATETIME:
        for k, ts in enumerate(column):
            if ts is not None and type(ts) is not datetime:
                parsed = _timestamp(ts, now)
                if parsed is None:
                    bad.add(k)
                else:
                    row = rows[k]
                    rows[k] = (*row[:_TS], parsed, *row[_TS + 1 :])
        column = tuple(row[_TS] for row in rows)
    values = [None if k in bad else ts for k, ts in enumerate(column)] if bad else column
    try:
        arr = pa.array(values, _UTC_US).cast(pa.timestamp("us"))
    except (OverflowError, ValueError, pa.ArrowException):
        arr = None  # an aware time that leaves the datetime range in UTC: row by row
    if arr is not None:
        # in microseconds since the epoch: an aware time past year 9999 in UTC is a valid integer here
        micros = arr.cast(pa.int64())
        high = (now + FUTURE_TOLERANCE - EPOCH) // _MICROSECOND
        mm = pc.min_max(micros)
        lo, hi = mm["min"].as_py(), mm["max"].as_py()
        if lo is None or (lo >= 0 and hi <= high):
            return
        outside = pc.or_(pc.less(micros, 0), pc.greater(micros, high))
        bad.update(k for k, flag in enumerate(outside.to_pylist()) if flag)
        return
    for k, ts in enumerate(values):
        if ts is None:
            continue
        try:
            utc = ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo is not None else ts
        except OverflowError:
            bad.add(k)
            continue
        if utc < EPOCH or utc > now + FUTURE_TOLERANCE:
            bad.add(k)


def _props_json(column: tuple[Any, ...], bad: set[int]) -> list[str | None]:
    out: list[str | None] = [None] * len(column)
    for k, props in enumerate(column):
        if props is not None:
            text = properties_json(props)
            if text is None:
                bad.add(k)
            out[k] = text
    return out


def _slow(raw: Any, index: int, out: Validated) -> None:
    """The reference model decides: accepted with its values, or rejected with its reasons."""
    if isinstance(raw, Unparsable):
        out.rejects.append((index, raw.reason))
        return
    if type(raw) is bytes or type(raw) is msgspec.Raw:
        try:
            raw = json.loads(bytes(raw))
        except (ValueError, RecursionError) as exc:
            out.rejects.append((index, f"malformed JSON ({str(exc)[:120]})"))
            return
    try:
        event = validate_event(raw)
    except EventRejected as exc:
        out.rejects.append((index, str(exc)))
        return
    props = event.properties
    pj = None if props is None else json.dumps(props, ensure_ascii=False, separators=(",", ":"))
    _take(out, index, _event_row(event), pj)


def _event_row(event: Event) -> tuple[Any, ...]:
    return tuple(getattr(event, name) for name in FIELDS)


__all__ = [
    "COL",
    "FIELDS",
    "TEXT_FIELDS",
    "Unparsable",
    "Validated",
    "decode_array",
    "timestamps",
    "validate_arrow",
    "validate_batch",
]
