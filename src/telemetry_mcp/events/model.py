"""The event model (SPEC section 2): one flat, typed record per event, validated at the boundary."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
)

SEVERITIES = ("debug", "info", "warning", "error", "critical")
Severity = Literal["debug", "info", "warning", "error", "critical"]
ERROR_SEVERITIES = ("error", "critical")

CORE_INFO_TYPES = (
    "component_load",
    "component_ready",
    "animation_complete",
    "state_change",
    "event_trigger",
    "user_interaction",
    "performance",
    "resource_load",
    "session_start",
    "session_end",
    "feature_used",
    "command_executed",
    "page_view",
    "api_call",
)
CORE_DEBUG_TYPES = ("animation_play", "animation_pause", "animation_stop", "animation_loop", "input_change")
DEFAULT_SEVERITY: dict[str, str] = {
    **dict.fromkeys(CORE_INFO_TYPES, "info"),
    **dict.fromkeys(CORE_DEBUG_TYPES, "debug"),
    "warning": "warning",
    "error": "error",
    "crash": "error",
}
CORE_TYPES = tuple(DEFAULT_SEVERITY)
EVENT_TYPE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
METRIC_NAMES = ("fps", "frame_time", "load_time", "render_time", "memory", "cpu")

MAX_PROPERTIES_BYTES = 16 * 1024
MAX_PROPERTIES_DEPTH = 32
FUTURE_TOLERANCE = timedelta(minutes=5)
EPOCH = datetime(1970, 1, 1)
# Input-only keys: accepted on the wire, never stored as columns.
INPUT_ONLY = ("do_not_track", "ip")


def _number(v: Any) -> Any:
    """Accept numbers and numeric strings; refuse booleans, NaN and infinities (never guess)."""
    if isinstance(v, bool):
        raise ValueError(f"expected a number, got a boolean ({str(v).lower()})")
    if isinstance(v, str):
        try:
            v = float(v.strip())
        except ValueError:
            raise ValueError(f"expected a number, got the string {v[:40]!r}") from None
    if isinstance(v, int | float):
        f = float(v) if not isinstance(v, int) or abs(v) < 2**1023 else float("inf")  # no OverflowError
        if f != f or f in (float("inf"), float("-inf")):
            raise ValueError("expected a finite number")
        return f
    raise ValueError(f"expected a number, got {type(v).__name__}")


Number = Annotated[float, BeforeValidator(_number)]


Text200 = Annotated[str, Field(max_length=200)]
Text32 = Annotated[str, Field(max_length=32)]


def parse_timestamp(v: Any, now: datetime | None = None) -> datetime:
    """RFC 3339 string or epoch milliseconds → naive UTC datetime. Rejects < 1970 and > now + 5 min."""
    if isinstance(v, bool):
        raise ValueError("expected an RFC 3339 string or epoch milliseconds, got a boolean")
    if isinstance(v, str) and re.fullmatch(r"\s*-?\d+(\.\d+)?\s*", v):
        v = float(v)
    if isinstance(v, int | float):
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError("epoch milliseconds must be finite")
        if v < 0:
            raise ValueError(f"timestamp {v} ms is before 1970-01-01")
        if v > 253402300799999:
            raise ValueError(f"timestamp {v} ms is beyond year 9999 (epoch milliseconds expected, not µs)")
        dt = EPOCH + timedelta(milliseconds=float(v))
    elif isinstance(v, str):
        text = v.strip()
        try:
            parsed = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            raise ValueError(
                f"timestamp {text[:40]!r} is not RFC 3339 (e.g. 2026-01-31T12:00:00Z) or epoch milliseconds"
            ) from None
        if parsed.tzinfo is not None and not (datetime.min.year < parsed.year < datetime.max.year):
            raise ValueError(f"timestamp {text[:40]!r} is out of range (years 1970 to 9998 with an offset)")
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        dt = parsed
        if dt < EPOCH:
            raise ValueError(f"timestamp {text[:40]!r} is before 1970-01-01")
    else:
        raise ValueError(f"expected an RFC 3339 string or epoch milliseconds, got {type(v).__name__}")
    now = now or datetime.now(UTC).replace(tzinfo=None)
    if dt > now + FUTURE_TOLERANCE:
        raise ValueError(f"timestamp {dt.isoformat()}Z is more than 5 minutes in the future")
    return dt


def _depth_exceeds(obj: Any, limit: int) -> bool:
    """Iterative depth check (no recursion, so hostile nesting cannot blow the stack)."""
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values() if isinstance(child, dict | list))
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node if isinstance(child, dict | list))
    return False


class Event(BaseModel):
    """One telemetry event as submitted. Unknown top-level fields are rejected."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    event_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    timestamp: datetime | None = Field(None, description="RFC 3339 string or epoch milliseconds; UTC")
    event_type: Annotated[str, Field(pattern=EVENT_TYPE_PATTERN)]
    name: Text200 | None = None
    component: Text200 | None = None
    user_id: Text200 | None = None
    session_id: Text200 | None = None
    severity: Severity | None = None
    duration_ms: Annotated[Number, Field(ge=0)] | None = None
    value: Number | None = None
    unit: Text32 | None = None
    service: Text200 | None = None
    service_version: Text200 | None = None
    platform: Text200 | None = None
    os: Text200 | None = None
    framework: Text200 | None = None
    page: Text200 | None = None
    properties: dict[str, Any] | None = None
    do_not_track: StrictBool | None = Field(None, description="drop this event (never stored)")
    ip: str | None = Field(None, description="accepted, never stored")

    @field_validator("timestamp", mode="before")
    @classmethod
    def _ts(cls, v: Any) -> Any:
        return None if v is None else parse_timestamp(v)

    @field_validator("properties")
    @classmethod
    def _props(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is None:
            return None
        if _depth_exceeds(v, MAX_PROPERTIES_DEPTH):
            raise ValueError(f"nested deeper than {MAX_PROPERTIES_DEPTH} levels")
        try:
            size = len(
                json.dumps(v, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
            )
        except UnicodeEncodeError:  # a ValueError subclass: must come first
            raise ValueError("contains a lone surrogate, which is not valid Unicode") from None
        except ValueError as exc:
            raise ValueError(f"not valid JSON ({exc})") from None
        if size > MAX_PROPERTIES_BYTES:
            raise ValueError(f"{size} bytes serialized; at most {MAX_PROPERTIES_BYTES} (16 KiB)")
        return v

    @field_validator(
        "event_id", "name", "component", "user_id", "session_id", "unit", "service", "service_version",
        "platform", "os", "framework", "page", mode="after",
    )  # fmt: skip
    @classmethod
    def _clean_text(cls, v: str | None) -> str | None:
        if v is None:
            return None
        if "\x00" in v:
            raise ValueError("contains a NUL character")
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("contains a lone surrogate, which is not valid Unicode") from None
        return v


EVENT_FIELDS = tuple(f for f in Event.model_fields if f not in INPUT_ONLY)


def _reason(err: Any) -> str:
    """One human sentence per pydantic error: which field, what is wrong, what is accepted."""
    loc = ".".join(str(p) for p in err["loc"]) or "event"
    kind = err["type"]
    ctx = err.get("ctx") or {}
    got = err.get("input")
    if kind == "extra_forbidden":
        return f'unknown field "{loc}": custom data belongs in "properties"'
    if kind == "missing":
        return f"{loc} is required"
    if kind == "string_too_long":
        return f"{loc}: at most {ctx.get('max_length')} characters (got {len(got) if isinstance(got, str) else '?'})"
    if kind == "string_too_short":
        return f"{loc}: must not be empty"
    if kind == "string_type":
        return f"{loc}: expected a string, got {type(got).__name__}"
    if kind == "string_pattern_mismatch":
        return f"{loc} {str(got)[:70]!r} must match {EVENT_TYPE_PATTERN} (lower-case letters, digits, _)"
    if kind == "literal_error":
        return f"{loc} {str(got)[:40]!r} is not one of: {', '.join(SEVERITIES)}"
    if kind in ("greater_than_equal", "greater_than"):
        return f"{loc} must be >= {ctx.get('ge', ctx.get('gt'))} (got {got})"
    if kind == "string_unicode":
        return f"{loc}: not valid Unicode (a lone surrogate?)"
    if kind == "dict_type":
        return f"{loc}: expected a JSON object, got {type(got).__name__}"
    if kind in ("bool_type", "bool_parsing"):
        return f"{loc}: expected true or false"
    if kind == "model_type" or kind == "model_attributes_type":
        return f"event: expected a JSON object, got {type(got).__name__}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{loc}: {msg}"


class EventRejected(ValueError):
    """A single event failed validation; the message is the reason given to the caller."""


# An event the transport could not carry as it was sent (e.g. nested too deeply for the JSON-RPC
# parser): the stdio reader puts {WIRE_REJECTED: reason} in its place, so it is rejected by index.
WIRE_REJECTED = "$rejected"


def validate_event(raw: Any) -> Event:
    """Validate one raw event; raise EventRejected with every problem found, joined by '; '."""
    if isinstance(raw, dict) and isinstance(raw.get(WIRE_REJECTED), str):
        raise EventRejected(raw[WIRE_REJECTED])
    if not isinstance(raw, dict):
        raise EventRejected(f"event: expected a JSON object, got {type(raw).__name__}")
    try:
        return Event.model_validate(raw)
    except ValidationError as exc:
        raise EventRejected("; ".join(_reason(e) for e in exc.errors(include_url=False)[:5])) from None


def event_json_schema() -> dict[str, Any]:
    """The event schema as JSON Schema (served as an MCP resource)."""
    return Event.model_json_schema()
