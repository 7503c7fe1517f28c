"""What every wire format's mapper returns, and the error it raises for a body it cannot read."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeGuard

from telemetry_mcp.events.model import EVENT_TYPE_PATTERN, SEVERITIES

EVENT_TYPE = re.compile(EVENT_TYPE_PATTERN)


class WireError(Exception):
    """A request the collector refuses as a whole: `status` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Mapped:
    """A request body turned into our events (dicts in the SPEC section 2 format, not yet validated).

    `events[i]` came from incoming item `origin[i]`, so the ingest core's per-event errors can be
    reported at the index the sender used. Items that could not be mapped at all are in `errors`.
    """

    received: int
    events: list[dict[str, Any]] = field(default_factory=list)
    origin: list[int] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)
    key: str | None = None

    def add(self, index: int, event: dict[str, Any]) -> None:
        self.events.append(event)
        self.origin.append(index)

    def reject(self, index: int, reason: str) -> None:
        self.errors.append((index, reason))


def event_type_of(raw: str) -> str:
    """A valid event_type from any event name: lower snake case; a leading `$` dropped."""
    text = re.sub(r"[^a-z0-9]+", "_", raw.strip().lstrip("$").lower()).strip("_")
    if not text:
        return "custom"
    if not text[0].isalpha():
        text = "e_" + text
    return text[:64].rstrip("_")


# --- helpers shared by the wire-format mappers -------------------------------------------------

# Our own fields an SDK user may set as plain properties; lifted to the top level when well typed.
LIFT_TEXT = {
    "name": 200,
    "component": 200,
    "session_id": 200,
    "unit": 32,
    "service": 200,
    "service_version": 200,
    "platform": 200,
    "os": 200,
    "framework": 200,
    "page": 200,
}
LIFT_NUMBER = ("duration_ms", "value")
LIFTABLE = frozenset({*LIFT_TEXT, *LIFT_NUMBER, "severity"})
# Keys that carry the sender's address: never stored, at any depth (SPEC section 3, step 7).
IP_KEYS = frozenset({"ip", "$ip"})


def lift_fields(event: dict[str, Any], props: dict[str, Any]) -> None:
    """Move our own fields given as properties to the top level of `event` (they win over derived
    values) when they have the right type; otherwise they stay in `props` for the sender to see."""
    for key in LIFTABLE.intersection(props):
        value = props[key]
        if key in LIFT_TEXT:
            ok = isinstance(value, str) and 0 < len(value) <= LIFT_TEXT[key]
        elif key == "severity":
            ok = value in SEVERITIES
        else:
            ok = is_number(value) and not (key == "duration_ms" and value < 0)
        if ok:
            event[key] = props.pop(key)


def is_number(value: Any) -> TypeGuard[int | float]:
    """A finite JSON number a float can hold (booleans are not numbers here; nor is an integer of
    hundreds of digits, which both JSON decoders let through)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def drop_ip(obj: Any) -> None:
    """Remove `ip` / `$ip` keys at any depth, in place (iterative: hostile nesting cannot recurse)."""
    stack = [obj]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key in IP_KEYS.intersection(node):
                del node[key]
            stack.extend(v for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, dict | list))


def text(value: Any) -> str | None:
    """A non-empty string as is, an integer as its digits (ids are often numbers), else None."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


_EPOCH_MS = re.compile(r"\d+(\.\d+)?")


def parse_time(value: Any) -> datetime:
    """An SDK's timestamp (RFC 3339 / ISO 8601, a missing offset read as UTC, or epoch
    milliseconds) as an aware UTC datetime. Raises ValueError saying what is accepted."""
    if is_number(value):
        try:
            return datetime.fromtimestamp(value / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"timestamp {value} is out of range (epoch milliseconds expected)") from None
    if isinstance(value, str):
        raw = value.strip()
        if "-" not in raw and _EPOCH_MS.fullmatch(raw):  # (an ISO date has a "-": no regex for it)
            return parse_time(float(raw))
        try:
            parsed = datetime.fromisoformat(raw.replace("z", "Z"))
        except ValueError:
            raise ValueError(
                f"timestamp {raw[:40]!r} is not ISO 8601 (e.g. 2026-01-31T12:00:00Z) or epoch milliseconds"
            ) from None
        try:
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        except OverflowError:
            raise ValueError(f"timestamp {raw[:40]!r} is out of range") from None
    raise ValueError(
        f"timestamp: expected an ISO 8601 string or epoch milliseconds, got {type(value).__name__}"
    )


def utc(moment: datetime) -> datetime:
    """`moment` as an aware UTC datetime (a naive one is taken to be UTC already)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def rfc3339(moment: datetime) -> str:
    """An aware datetime as an RFC 3339 string in UTC, e.g. 2026-01-31T12:00:00.250000+00:00."""
    return moment.isoformat() if moment.tzinfo is UTC else utc(moment).isoformat()


def compact(event: dict[str, Any]) -> dict[str, Any]:
    """The event without absent fields or an empty properties object."""
    return {k: v for k, v in event.items() if v is not None and not (k == "properties" and not v)}


def json_kind(value: Any) -> str:
    """The JSON type of a value, for messages ("an array", "a string" ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
