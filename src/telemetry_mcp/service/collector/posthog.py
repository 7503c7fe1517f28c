"""PostHog capture bodies (`/batch/`, `/capture/`, `/e/`, `/i/v0/e/`) as our events.

Timestamps follow PostHog's capture (rust/common/types timestamp.rs): an `offset` (ms before the
server received it) wins; else `timestamp` corrected by the client's clock skew, `now + (timestamp -
sent_at)`, unless `$ignore_sent_at`; else `timestamp` as given; else the receive time.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

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

MOBILE_LIBS = frozenset({"posthog-ios", "posthog-android", "posthog-react-native", "posthog-flutter"})
# Sent by the SDKs but not data: the key itself, and raw user ids that would defeat the user_id hash
# (posthog-js puts the identified distinct id in `$user_id` on every event after identify()).
DROPPED = (
    "token", "api_key", "$ip", "distinct_id", "$distinct_id", "$anon_distinct_id", "$device_id", "$user_id",
)  # fmt: skip
_ELEMENT = re.compile(r'(?:[^;"]|"(?:\\.|[^"\\])*")+')
_TAG = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_ATTR = re.compile(r'([A-Za-z0-9_$-]+)="((?:\\.|[^"\\])*)"')


class _Rejected(ValueError):
    """This one item cannot be mapped; the message says why."""


def map_posthog(payload: Any, *, now: datetime, sent_at: Any = None) -> Mapped:
    """Map a decoded PostHog capture body to our events.

    `sent_at` is a request-level send time (e.g. the `_` query parameter, epoch ms), used when the
    body has none. Raises WireError(400) when the body as a whole has the wrong shape.
    """
    key: str | None = None
    if isinstance(payload, list):
        items = payload
    elif isinstance(payload, dict):
        key = text(payload.get("api_key")) or text(payload.get("token"))
        sent_at = payload.get("sent_at") or sent_at
        if "batch" in payload:
            items = payload["batch"]
            if not isinstance(items, list):
                raise WireError(400, '"batch" must be an array of events')
        else:
            items = [payload]
    else:
        raise WireError(
            400,
            f'expected {{"api_key", "batch": [...]}}, one event, or an array of events; got {json_kind(payload)}',
        )

    mapped = Mapped(received=len(items))
    skew_base = _sent_at(sent_at)
    received = utc(now)
    for index, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise _Rejected(f"event: expected a JSON object, got {json_kind(item)}")
            item_key = _key_of(item)
            if key is None:
                key = item_key
            elif item_key is not None and item_key != key:
                raise _Rejected("api_key differs from the one of the batch")
            mapped.add(index, _event(item, skew_base, received))
        except _Rejected as exc:
            mapped.reject(index, str(exc))
    mapped.key = key
    return mapped


def _event(item: dict[str, Any], sent_at: datetime | None, now: datetime) -> dict[str, Any]:
    name = item.get("event")
    if not isinstance(name, str) or not name.strip():
        raise _Rejected('event name ("event") is missing')
    raw_props = item.get("properties")
    if raw_props is not None and not isinstance(raw_props, dict):
        raise _Rejected(f"properties: expected a JSON object, got {json_kind(raw_props)}")
    props: dict[str, Any] = dict(raw_props or {})
    for legacy in ("$set", "$set_once"):
        if legacy in item and legacy not in props:
            props[legacy] = item[legacy]

    event: dict[str, Any] = {
        "event_id": text(item.get("uuid")),
        "timestamp": rfc3339(_timestamp(item, props, sent_at, now)),
        "user_id": text(item.get("distinct_id"))
        or text(props.get("distinct_id"))
        or text(props.get("$distinct_id")),
        "session_id": text(props.pop("$session_id", None)),
        "page": _page(props),
        "os": text(props.pop("$os", None)),
        "platform": _platform(props.get("$lib")),
        "service": text(props.pop("$app_name", None)),
        "service_version": text(props.pop("$app_version", None)),
    }
    event.update(_kind_fields(name, props))
    for dropped in DROPPED:
        props.pop(dropped, None)
    drop_ip(props)
    lift_fields(event, props)
    event["properties"] = props
    return compact(event)


def _kind_fields(name: str, props: dict[str, Any]) -> dict[str, Any]:
    """event_type, and the name / component / severity PostHog's special events carry."""
    if name in ("$pageview", "$screen"):
        title = props.pop("$title", None) if name == "$pageview" else props.pop("$screen_name", None)
        if name == "$pageview" and text(title) is None and text(props.get("title")):
            title = props.pop("title")  # posthog-js sends document.title as `title`, not `$title`
        return {"event_type": "page_view", "name": text(title)}
    if name == "$pageleave":
        return {"event_type": "page_leave"}
    if name == "$autocapture":
        component = _component(props.pop("$elements", None), props.pop("$elements_chain", None))
        return {
            "event_type": "user_interaction",
            "name": text(props.pop("$event_type", None)),
            "component": component,
        }
    if name == "$exception":
        first = props.get("$exception_list")
        first = first[0] if isinstance(first, list) and first and isinstance(first[0], dict) else {}
        message = props.get("$exception_message") or first.get("value")
        if isinstance(message, str) and "message" not in props:
            props["message"] = message
        kind = text(props.get("$exception_type")) or text(first.get("type"))
        return {"event_type": "error", "severity": "error", "name": kind}
    if name == "$identify":
        return {"event_type": "identify"}
    props.pop("$elements", None)
    props.pop("$elements_chain", None)
    return {"event_type": event_type_of(name), "name": None if EVENT_TYPE.fullmatch(name) else name[:200]}


def _timestamp(
    item: dict[str, Any], props: dict[str, Any], sent_at: datetime | None, now: datetime
) -> datetime:
    offset = item.get("offset")
    if offset is not None:
        if not is_number(offset):
            raise _Rejected(f"offset: expected milliseconds, got {json_kind(offset)}")
        try:
            return now - timedelta(milliseconds=offset)
        except OverflowError:
            raise _Rejected(f"offset {offset} ms is out of range") from None
    stamp = item.get("timestamp")
    if stamp is None or stamp == "":
        return now
    try:
        moment = parse_time(stamp)
    except ValueError as exc:
        raise _Rejected(str(exc)) from None
    if sent_at is None or props.get("$ignore_sent_at") is True:
        return moment
    try:
        return now + (moment - sent_at)
    except OverflowError:
        raise _Rejected(f"timestamp {str(stamp)[:40]!r} is out of range") from None


def _sent_at(value: Any) -> datetime | None:
    """The client's send time; an unreadable one is ignored, as PostHog does (no skew correction)."""
    if value is None or value == "":
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


def _key_of(item: dict[str, Any]) -> str | None:
    props = item.get("properties")
    from_props = text(props.get("token")) if isinstance(props, dict) else None
    return text(item.get("api_key")) or text(item.get("token")) or from_props


def _page(props: dict[str, Any]) -> str | None:
    path = text(props.pop("$pathname", None))
    if path:
        return path
    url = props.get("$current_url")
    if isinstance(url, str) and url:
        try:
            return urlsplit(url).path or "/"
        except ValueError:
            return None
    return None


def _platform(lib: Any) -> str | None:
    if not isinstance(lib, str):
        return None
    if lib in ("web", "posthog-js-lite"):
        return "web"
    if lib in MOBILE_LIBS:
        return "mobile"
    return "server" if lib.startswith("posthog-") else None


def _component(elements: Any, chain: Any) -> str | None:
    """The nearest `data-component` up from the clicked element, else the clicked element's tag."""
    found: list[dict[str, Any]] = []
    if isinstance(elements, list):
        found = [e for e in elements if isinstance(e, dict)]
    elif isinstance(chain, str):
        for match in _ELEMENT.finditer(chain):
            part = match.group(0)
            tag = _TAG.match(part)
            attrs = {k: v for k, v in _ATTR.findall(part)}
            found.append({"tag_name": tag.group(0) if tag else None, **attrs})
    for element in found:
        component = text(element.get("attr__data-component"))
        if component:
            return component[:200]
    return text(found[0].get("tag_name")) if found else None
