"""Column-wise validation of a batch: typed structs in C, checks per column, the model for the rest.

Each record is converted (from a dict) or decoded (from JSON bytes) into the msgspec `_Candidate`
struct, the shape of an obviously valid event. The checks msgspec cannot express (NUL characters,
lone surrogates, finite numbers, timestamp range, the size and depth of properties) then run per
column. A record that fails any of them goes to the pydantic model (`validate_event`), which
either accepts it (the fast path is only ever stricter) or rejects it with its precise reasons.
tests/store/test_columnar_differential.py checks the result equals the per-event reference.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

from telemetry_mcp.events.fastpath import _Candidate, _encodable, _timestamp, properties_json
from telemetry_mcp.events.model import EPOCH, FUTURE_TOLERANCE, Event, EventRejected, validate_event

TEXT_FIELDS = ("event_id", "name", "component", "user_id", "session_id", "service", "service_version",
               "platform", "os", "framework", "page", "unit", "ip")  # fmt: skip
_CONVERT_ERRORS = (msgspec.ValidationError, OverflowError, TypeError, ValueError)
_decode_candidate = msgspec.json.Decoder(_Candidate).decode


class Unparsable:
    """A record that is not even JSON (a bad line of a file): rejected with this reason."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


@dataclass
class Validated:
    """The valid records of a batch, in input order, as structs with their derived columns."""

    index: list[int] = field(default_factory=list)  # position in the batch of each valid record
    records: list[_Candidate | Event] = field(default_factory=list)
    ts: list[datetime | None] = field(default_factory=list)  # naive UTC, None: use the receive time
    props_json: list[str | None] = field(default_factory=list)
    rejects: list[tuple[int, str]] = field(default_factory=list)  # (index, reason), in input order


def validate_batch(raws: Sequence[Any], now: datetime) -> Validated:
    """Validate raw events: dicts, JSON bytes of one event each, or `Unparsable` markers."""
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
    _check_text(structs)
    out = Validated()
    for i, st in enumerate(structs):
        ts: datetime | None = None
        pj: str | None = None
        if st is not None:
            ts, pj, ok = _check_rest(st, now)
            if ok:
                out.index.append(i)
                out.records.append(st)
                out.ts.append(ts)
                out.props_json.append(pj)
                continue
        _slow(raws[i], i, out)
    return out


def _check_text(structs: list[_Candidate | None]) -> None:
    """NUL characters and lone surrogates: one test over each whole column, rows only when it fails."""
    for name in TEXT_FIELDS:
        values = [getattr(s, name) for s in structs if s is not None]
        joined = "".join([v for v in values if v is not None])
        if "\x00" not in joined and (joined.isascii() or _encodable(joined)):
            continue
        for i, s in enumerate(structs):
            if s is None:
                continue
            v = getattr(s, name)
            if v is not None and ("\x00" in v or not (v.isascii() or _encodable(v))):
                structs[i] = None


def _check_rest(st: _Candidate, now: datetime) -> tuple[datetime | None, str | None, bool]:
    for number in (st.duration_ms, st.value):
        if number is not None and not math.isfinite(number):
            return None, None, False
    ts = st.timestamp
    if ts is not None:
        if type(ts) is datetime:
            try:
                if ts.tzinfo is not None:
                    ts = (
                        ts.replace(tzinfo=None)
                        if ts.tzinfo is UTC
                        else ts.astimezone(UTC).replace(tzinfo=None)
                    )
            except OverflowError:
                return None, None, False
            if ts < EPOCH or ts > now + FUTURE_TOLERANCE:
                return None, None, False
        else:
            ts = _timestamp(ts, now)
            if ts is None:
                return None, None, False
    pj = None
    if st.properties is not None:
        pj = properties_json(st.properties)
        if pj is None:
            return None, None, False
    return ts, pj, True


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
    out.index.append(index)
    out.records.append(event)
    out.ts.append(event.timestamp)
    out.props_json.append(
        None if props is None else json.dumps(props, ensure_ascii=False, separators=(",", ":"))
    )


__all__ = ["TEXT_FIELDS", "Unparsable", "Validated", "validate_batch"]
