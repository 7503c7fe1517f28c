"""Segment tracking-API bodies (`/v1/batch`, `/v1/track`, `/v1/page`, `/v1/screen`, `/v1/identify`)
as our events.

Timestamps follow Segment's own clock-skew correction: `receivedAt - (sentAt - timestamp)` when the
message or its batch says when it was sent; else `timestamp` (or `originalTimestamp`) as given;
else the receive time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from telemetry_mcp.service.collector.common import (
    EVENT_TYPE,
    Mapped,
    WireError,
    compact,
    drop_ip,
    event_type_of,
    json_kind,
    lift_fields,
    parse_time,
    rfc3339,
    text,
    utc,
)

KINDS = ("batch", "track", "page", "screen", "identify")
TYPES = ("track", "page", "screen", "identify", "group", "alias")
MOBILE_DEVICES = frozenset({"ios", "android", "mobile", "tablet"})
SERVER_LIBRARIES = frozenset(
    {
        "analytics-python",
        "analytics-node",
        "@segment/analytics-node",
        "analytics-ruby",
        "analytics-go",
        "analytics-java",
        "analytics-php",
        "analytics.NET",
        "analytics-rust",
    }
)
MOBILE_LIBRARIES = frozenset(
    {"analytics-ios", "analytics-android", "analytics-react-native", "analytics-swift", "analytics-kotlin"}
)


class _Rejected(ValueError):
    """This one message cannot be mapped; the message says why."""


def map_segment(payload: Any, kind: str, *, now: datetime) -> Mapped:
    """Map a decoded Segment body to our events; `kind` is the endpoint (batch, track, page ...).

    Raises WireError(400) when the body as a whole has the wrong shape.
    """
    if kind not in KINDS:
        raise WireError(404, f"unknown Segment endpoint /v1/{kind}: use one of {', '.join(KINDS)}")
    if not isinstance(payload, dict):
        raise WireError(
            400, f"expected a JSON object (a Segment message or {{batch: [...]}}), got {json_kind(payload)}"
        )
    if kind == "batch":
        items = payload.get("batch")
        if not isinstance(items, list):
            raise WireError(400, '"batch" must be an array of messages')
        implied = None
    else:
        items, implied = [payload], kind

    mapped = Mapped(received=len(items), key=text(payload.get("writeKey")))
    batch_sent = payload.get("sentAt")
    received = utc(now)
    for index, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise _Rejected(f"message: expected a JSON object, got {json_kind(item)}")
            mapped.add(index, _event(item, implied, batch_sent, received))
        except _Rejected as exc:
            mapped.reject(index, str(exc))
    return mapped


def _event(msg: dict[str, Any], implied: str | None, batch_sent: Any, now: datetime) -> dict[str, Any]:
    kind = msg.get("type") or implied
    kind = kind.lower() if isinstance(kind, str) else kind
    if kind not in TYPES:
        raise _Rejected(f"unknown message type {kind!r}: expected one of {', '.join(TYPES)}")
    context = _object(msg, "context")
    raw_props = msg.get("properties")
    if raw_props is not None and not isinstance(raw_props, dict):
        raise _Rejected(f"properties: expected a JSON object, got {json_kind(raw_props)}")
    props: dict[str, Any] = dict(raw_props or {})
    page_ctx = _object(context, "page")

    event: dict[str, Any] = {
        "event_id": text(msg.get("messageId")),
        "timestamp": rfc3339(_timestamp(msg, batch_sent, now)),
        "user_id": text(msg.get("userId")) or text(msg.get("anonymousId")),
        "page": text(page_ctx.get("path")),
        "os": text(_object(context, "os").get("name")),
        "platform": _platform(context),
        "service": text(_object(context, "app").get("name")),
        "service_version": text(_object(context, "app").get("version")),
    }
    if kind == "track":
        name = msg.get("event")
        if not isinstance(name, str) or not name.strip():
            raise _Rejected('track message has no event name ("event")')
        event["event_type"] = event_type_of(name)
        if not EVENT_TYPE.fullmatch(name):
            event["name"] = name[:200]
    elif kind in ("page", "screen"):
        event["event_type"] = "page_view"
        event["name"] = text(msg.get("name"))
        if kind == "screen":
            event["platform"] = "mobile"
            event["page"] = None
        path = text(props.pop("path", None))
        if path:
            event["page"] = path
        # analytics-python sends page(category, name) / screen(category, name) at the top level
        # (analytics-node puts it in properties): kept as properties.category either way.
        category = text(msg.get("category"))
        if category:
            props.setdefault("category", category)
    else:
        event["event_type"] = kind
        traits = msg.get("traits")
        if isinstance(traits, dict):
            props["traits"] = traits
        if kind == "group" and text(msg.get("groupId")):
            props["group_id"] = text(msg.get("groupId"))
    # previousId (alias) and a userId's anonymousId are raw user ids: kept out, as user_id is hashed.
    kept_context = {k: v for k, v in context.items() if k not in ("ip", "traits")}
    if kept_context:
        props.setdefault("context", kept_context)
    drop_ip(props)
    lift_fields(event, props)
    event["properties"] = props
    return compact(event)


def _timestamp(msg: dict[str, Any], batch_sent: Any, now: datetime) -> datetime:
    stamp = msg.get("timestamp") or msg.get("originalTimestamp")
    if stamp is None or stamp == "":
        return now
    try:
        moment = parse_time(stamp)
    except ValueError as exc:
        raise _Rejected(str(exc)) from None
    sent = msg.get("sentAt") or batch_sent
    if not sent:
        return moment
    try:
        return now - (parse_time(sent) - moment)
    except ValueError:
        return moment  # an unreadable sentAt: no correction, as for a message without one
    except OverflowError:
        raise _Rejected(f"timestamp {str(stamp)[:40]!r} is out of range") from None


def _platform(context: dict[str, Any]) -> str | None:
    device = text(_object(context, "device").get("type"))
    if device:
        return "mobile" if device.lower() in MOBILE_DEVICES else device.lower()
    library = text(_object(context, "library").get("name")) or ""
    if library in SERVER_LIBRARIES:
        return "server"
    if library in MOBILE_LIBRARIES:
        return "mobile"
    return (
        "web" if library.startswith("analytics.js") or library.startswith("@segment/analytics-next") else None
    )


def _object(parent: dict[str, Any], key: str) -> dict[str, Any]:
    value = parent.get(key)
    return value if isinstance(value, dict) else {}
