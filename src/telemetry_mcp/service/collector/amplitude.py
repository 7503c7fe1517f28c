"""Amplitude HTTP V2 bodies (`/2/httpapi`, `/batch`) as our events, and the answer the SDK reads.

What amplitude-analytics (Python, 1.x: `http_client.Response`, `processor.ResponseProcessor`) needs:

- Every JSON answer must carry `"code"`: the SDK takes its status from `body["code"]`, not from the
  HTTP status, and a 200 body without it raises KeyError in the SDK's worker (nothing retried, no
  callback). Answer 200 `{"code": 200, "events_ingested": n, "payload_size_bytes": b,
  "server_upload_time": ms}`.
- 400 with `events_with_invalid_fields`, `events_with_missing_fields` and/or
  `events_with_invalid_id_lengths` (field name -> indexes into the request's `events`): the SDK
  drops exactly the union of those indexes (callback with the code and `error`) and re-queues every
  other event of the request for a retry. So list EVERY bad index (an empty list means all events
  are retried, up to `flush_max_retries` times), and, as Amplitude itself does, store NOTHING from
  a request answered 400: the good events come back in the retry and are accepted then (storing them
  now would count them twice for senders without `insert_id`; the SDK always sets one).
  `AmplitudeMapped.error_body()` is that 400 body; `add_rejects` adds the ingest core's per-event
  rejections (e.g. a timestamp in the future -> `time`) so they are dropped, not retried forever.
- 400 with `missing_field` (the body lacks `api_key` or `events`): the SDK drops all events.
- An `error` starting "Invalid API key:" (with any 4xx code, e.g. 401 for a wrong key) makes the SDK
  log "Invalid API Key" and drop the batch without retrying.
- 413: the SDK halves its batch size and retries (a single event is dropped); 429 with
  `throttled_events` (indexes) delays those; 408 / 5xx / no answer: the whole batch is retried.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from telemetry_mcp.service.collector.common import (
    EVENT_TYPE,
    Mapped,
    WireError,
    compact,
    drop_ip,
    event_type_of,
    is_number,
    json_kind,
    lift_fields,
    parse_time,
    rfc3339,
    text,
    utc,
)

DEFAULT_MIN_ID_LENGTH = 5
# Amplitude's own event names for what we have core types for.
EVENT_TYPES = {
    "[Amplitude] Page Viewed": "page_view",
    "Page Viewed": "page_view",
    "[Amplitude] Element Clicked": "user_interaction",
    "[Amplitude] Element Changed": "user_interaction",
}
PLATFORMS = {"ios": "mobile", "android": "mobile", "web": "web"}
# Descriptive top-level fields kept as properties. Not kept: ip, advertising ids (idfa, idfv, adid,
# android_id), location_lat/lng, and device_id when user_id is given (a raw id next to the hash).
KEPT = (
    "os_version", "device_brand", "device_manufacturer", "device_model", "carrier", "country",
    "region", "city", "dma", "language", "library", "version_name", "price", "quantity", "revenue",
    "productId", "revenueType", "currency", "partner_id", "groups", "group_properties", "plan",
)  # fmt: skip
# Our field named in an ingest reject -> the Amplitude field the sender set.
AMPLITUDE_FIELD = {
    "timestamp": "time",
    "event_id": "insert_id",
    "event_type": "event_type",
    "user_id": "user_id",
    "session_id": "session_id",
    "os": "os_name",
    "platform": "platform",
    "service_version": "app_version",
    "properties": "event_properties",
}


@dataclass
class AmplitudeMapped(Mapped):
    """Mapped, plus what Amplitude answers about invalid events (field name -> event indexes)."""

    missing_field: str | None = None
    events_with_invalid_fields: dict[str, list[int]] = field(default_factory=dict)
    events_with_missing_fields: dict[str, list[int]] = field(default_factory=dict)
    events_with_invalid_id_lengths: dict[str, list[int]] = field(default_factory=dict)

    def invalid(self, table: dict[str, list[int]], name: str, index: int, reason: str) -> None:
        table.setdefault(name, []).append(index)
        self.reject(index, reason)

    def add_rejects(self, errors: list[tuple[int, str]]) -> None:
        """Record the ingest core's rejections (indexes into `events`, reasons "field: ...")."""
        for position, reason in errors:
            ours = reason.split(":", 1)[0].split(" ", 1)[0].strip('"').split(".", 1)[0]
            name = AMPLITUDE_FIELD.get(ours, "event_properties")
            self.invalid(self.events_with_invalid_fields, name, self.origin[position], reason)

    def error_body(self) -> dict[str, Any] | None:
        """The 400 body to answer, or None when every event is valid."""
        if self.missing_field:
            return {
                "code": 400,
                "error": "Request missing required field",
                "missing_field": self.missing_field,
            }
        tables = {
            "events_with_invalid_fields": self.events_with_invalid_fields,
            "events_with_missing_fields": self.events_with_missing_fields,
            "events_with_invalid_id_lengths": self.events_with_invalid_id_lengths,
        }
        if not any(tables.values()):
            return None
        body: dict[str, Any] = {"code": 400, "error": "Invalid field values on some events"}
        body.update({k: {f: sorted(set(v)) for f, v in t.items()} for k, t in tables.items() if t})
        return body


def map_amplitude(payload: Any, *, now: datetime) -> AmplitudeMapped:
    """Map a decoded Amplitude HTTP V2 body to our events, with Amplitude's per-event verdicts.

    Raises WireError(400) only for a body that is not a JSON object (the SDK never sends one).
    """
    if not isinstance(payload, dict):
        raise WireError(
            400, f'expected a JSON object {{"api_key", "events": [...]}}, got {json_kind(payload)}'
        )
    items = payload.get("events")
    mapped = AmplitudeMapped(received=len(items) if isinstance(items, list) else 0)
    mapped.key = text(payload.get("api_key"))
    if mapped.key is None:
        mapped.missing_field = "api_key"
        return mapped
    if not isinstance(items, list):
        mapped.missing_field = "events"
        return mapped
    options = payload.get("options")
    min_length = options.get("min_id_length") if isinstance(options, dict) else None
    if not (isinstance(min_length, int) and not isinstance(min_length, bool) and min_length > 0):
        min_length = DEFAULT_MIN_ID_LENGTH
    received = utc(now)
    for index, item in enumerate(items):
        _map_one(mapped, index, item, min_length, received)
    return mapped


def _map_one(mapped: AmplitudeMapped, index: int, item: Any, min_length: int, now: datetime) -> None:
    if not isinstance(item, dict):
        mapped.invalid(
            mapped.events_with_invalid_fields,
            "event",
            index,
            f"event: expected a JSON object, got {json_kind(item)}",
        )
        return
    name = item.get("event_type")
    if not isinstance(name, str) or not name.strip():
        mapped.invalid(mapped.events_with_missing_fields, "event_type", index, "event_type is missing")
        return
    user_id, device_id = text(item.get("user_id")), text(item.get("device_id"))
    if user_id is None and device_id is None:
        mapped.invalid(
            mapped.events_with_missing_fields, "user_id", index, "user_id or device_id is required"
        )
        return
    for label, value in (("user_id", user_id), ("device_id", device_id)):
        if value is not None and len(value) < min_length:
            reason = f"{label} must be at least {min_length} characters (options.min_id_length)"
            mapped.invalid(mapped.events_with_invalid_id_lengths, label, index, reason)
            return
    stamp = item.get("time")
    try:
        moment = now if stamp is None else parse_time(stamp)
    except ValueError as exc:
        mapped.invalid(mapped.events_with_invalid_fields, "time", index, str(exc))
        return
    props_in = item.get("event_properties")
    if props_in is not None and not isinstance(props_in, dict):
        reason = f"event_properties: expected a JSON object, got {json_kind(props_in)}"
        mapped.invalid(mapped.events_with_invalid_fields, "event_properties", index, reason)
        return
    mapped.add(index, _event(item, name, user_id or device_id, moment, dict(props_in or {})))


def _event(
    item: dict[str, Any], name: str, user_id: str | None, moment: datetime, props: dict[str, Any]
) -> dict[str, Any]:
    platform = text(item.get("platform"))
    event_type = EVENT_TYPES.get(name) or event_type_of(name)
    event: dict[str, Any] = {
        "event_id": text(item.get("insert_id")),
        "timestamp": rfc3339(moment),
        "event_type": event_type,
        "name": None if EVENT_TYPE.fullmatch(name) else name[:200],
        "user_id": user_id,
        "session_id": _session(item.get("session_id")),
        "os": text(item.get("os_name")),
        "platform": PLATFORMS.get(platform.lower(), platform.lower()) if platform else None,
        "service_version": text(item.get("app_version")),
    }
    if event_type == "page_view":
        event["page"] = text(props.pop("[Amplitude] Page Path", None))
        event["name"] = text(props.pop("[Amplitude] Page Title", None)) or event["name"]
    user_props = item.get("user_properties")
    if isinstance(user_props, dict) and user_props:
        props["user_properties"] = user_props
    for key in KEPT:
        if item.get(key) is not None:
            props.setdefault(key, item[key])
    drop_ip(props)
    lift_fields(event, props)
    event["properties"] = props
    return compact(event)


def _session(value: Any) -> str | None:
    """Amplitude's session id (the session's start, epoch ms) as text; -1 means no session."""
    if is_number(value) and value != -1:
        return str(int(value)) if float(value).is_integer() else str(value)
    return value if isinstance(value, str) and value not in ("", "-1") else None
