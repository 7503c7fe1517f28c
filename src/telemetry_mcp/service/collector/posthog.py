"""PostHog capture bodies (`/batch/`, `/capture/`, `/e/`, `/i/v0/e/`) as our events.

Timestamps follow PostHog's capture (rust/common/types timestamp.rs): an `offset` (ms before the
server received it) wins; else `timestamp` corrected by the client's clock skew, `now + (timestamp -
sent_at)`, unless `$ignore_sent_at`; else `timestamp` as given; else the receive time.

`map_posthog` is on the collector's hot path (issue 11), a few µs per item: its loop reads each
field once, takes what it consumed out of the copied properties in one pass, and remembers what
repeats (custom event names, page URLs, `$lib`, a body's timestamps); the rarer shapes go through
the helpers below it. tests/service/test_wire_posthog_differential.py holds it to the output of
the plain version it replaced, item by item.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from math import isfinite
from typing import Any, TypeVar
from urllib.parse import urlsplit

from telemetry_mcp.events.model import SEVERITIES
from telemetry_mcp.service.collector.common import (
    EVENT_TYPE,
    LIFT_TEXT,
    LIFTABLE,
    Mapped,
    WireError,
    drop_ip,
    event_type_of,
    is_number,
    json_kind,
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
# The special events `_kind_fields` reads; any other name is a custom event.
SPECIAL = frozenset({"$pageview", "$screen", "$pageleave", "$autocapture", "$exception", "$identify"})
# What the mapper always takes out of (its copy of) an event's properties: the fields it read,
# DROPPED, and `ip` (`$ip` is in DROPPED; drop_ip removes both at any depth). A custom event's
# `$elements` / `$elements_chain` too (a special event keeps them unless it reads them).
_TAKEN = frozenset({"$session_id", "$pathname", "$os", "$app_name", "$app_version", *DROPPED, "ip"})
_TAKEN_CUSTOM = _TAKEN | {"$elements", "$elements_chain"}
# The types of values that hold no keys: properties of only these have no nested `ip` to drop.
_FLAT = frozenset({str, int, float, bool, type(None)})
_ELEMENT = re.compile(r'(?:[^;"]|"(?:\\.|[^"\\])*")+')
_TAG = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_ATTR = re.compile(r'([A-Za-z0-9_$-]+)="((?:\\.|[^"\\])*)"')

# Pure functions of strings that repeat from event to event, remembered. Bounded: a full memo is
# emptied, and strings longer than _MEMO_LONGEST are not kept (hostile input cannot grow it much).
_MEMO_SIZE = 4096
_MEMO_LONGEST = 1024
_KINDS: dict[str, tuple[str, str | None]] = {}  # custom event name -> (event_type, name)
_PATHS: dict[str, str | None] = {}  # $current_url -> page
_PLATFORMS: dict[str, str | None] = {}  # $lib -> platform
_MISSING: Any = object()
_V = TypeVar("_V")


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
    naive_received = received.replace(tzinfo=None)
    add_event, add_origin = mapped.events.append, mapped.origin.append
    # The last timestamp string mapped, whether $ignore_sent_at applied to it, and the result: SDKs
    # often stamp many events of a batch alike, and within one body nothing else changes the result.
    last_stamp: str | None = None
    last_ignore = False
    last_when = ""
    for index, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise _Rejected(f"event: expected a JSON object, got {json_kind(item)}")
            raw_props = item.get("properties")

            # The key: api_key, else token, else properties.token; one per body.
            item_key = None
            api_key, token = item.get("api_key"), item.get("token")
            props_token = raw_props.get("token") if isinstance(raw_props, dict) else None
            if api_key is not None or token is not None or props_token is not None:
                item_key = text(api_key) or text(token) or text(props_token)
            if key is None:
                key = item_key
            elif item_key is not None and item_key != key:
                raise _Rejected("api_key differs from the one of the batch")

            name = item.get("event")
            if not isinstance(name, str) or not name.strip():
                raise _Rejected('event name ("event") is missing')
            if raw_props is not None and not isinstance(raw_props, dict):
                raise _Rejected(f"properties: expected a JSON object, got {json_kind(raw_props)}")
            props: dict[str, Any] = dict(raw_props) if raw_props else {}
            if "$set" in item and "$set" not in props:
                props["$set"] = item["$set"]
            if "$set_once" in item and "$set_once" not in props:
                props["$set_once"] = item["$set_once"]
            get = props.get

            stamp = item.get("timestamp")
            if type(stamp) is str and stamp and item.get("offset") is None:
                ignore = skew_base is not None and get("$ignore_sent_at") is True
                if stamp != last_stamp or ignore is not last_ignore:
                    last_when = _when(item, props, skew_base, received, naive_received)
                    last_stamp, last_ignore = stamp, ignore
                when = last_when
            else:
                when = _when(item, props, skew_base, received, naive_received)

            # Our fields, each set only when it has a value. text() gives a non-empty string as is
            # and an integer as its digits; `value.__class__ is str` saves the call for a string.
            event: dict[str, Any] = {}
            value = item.get("uuid")
            if value.__class__ is not str:
                value = text(value)
            if value:
                event["event_id"] = value
            event["timestamp"] = when
            value = item.get("distinct_id")
            if value.__class__ is not str or not value:
                value = text(value) or text(get("distinct_id")) or text(get("$distinct_id"))
            if value:
                event["user_id"] = value
            value = get("$session_id")
            if value.__class__ is not str:
                value = text(value)
            if value:
                event["session_id"] = value
            value = get("$pathname")
            if value.__class__ is not str:
                value = text(value)
            if not value:  # the path of $current_url then
                url = get("$current_url")
                if isinstance(url, str) and url:
                    value = _PATHS.get(url, _MISSING)
                    if value is _MISSING:
                        value = _remember(_PATHS, url, _path_of(url))
            if value:
                event["page"] = value
            value = get("$os")
            if value.__class__ is not str:
                value = text(value)
            if value:
                event["os"] = value
            lib = get("$lib")
            if lib.__class__ is str:  # _platform() is None for anything else
                value = _PLATFORMS.get(lib, _MISSING)
                if value is _MISSING:
                    value = _remember(_PLATFORMS, lib, _platform(lib))
                if value:
                    event["platform"] = value
            value = get("$app_name")
            if value.__class__ is not str:
                value = text(value)
            if value:
                event["service"] = value
            value = get("$app_version")
            if value.__class__ is not str:
                value = text(value)
            if value:
                event["service_version"] = value

            if name in SPECIAL:
                for field, value in _kind_fields(name, props).items():
                    if value is not None:
                        event[field] = value
                taken = _TAKEN
            else:
                kind = _KINDS.get(name)
                if kind is None:
                    shown = None if EVENT_TYPE.fullmatch(name) else name[:200]
                    kind = _remember(_KINDS, name, (event_type_of(name), shown))
                event["event_type"] = kind[0]
                if kind[1] is not None:
                    event["name"] = kind[1]
                taken = _TAKEN_CUSTOM

            # What was read, the raw ids and the key leave the properties; so does `ip` at any depth.
            for field in taken.intersection(props):
                del props[field]
            if not _FLAT.issuperset(map(type, props.values())):
                drop_ip(props)

            # Our own fields given as properties win over the derived ones when well typed
            # (common.lift_fields, inline); otherwise they stay in the properties.
            for field in LIFTABLE.intersection(props):
                value = props[field]
                limit = LIFT_TEXT.get(field)
                if limit is not None:
                    if not (isinstance(value, str) and 0 < len(value) <= limit):
                        continue
                elif field == "severity":
                    if value not in SEVERITIES:
                        continue
                elif value.__class__ is float:  # is_number(), inline for the common case
                    if not isfinite(value) or (field == "duration_ms" and value < 0):
                        continue
                elif not is_number(value) or (field == "duration_ms" and value < 0):
                    continue
                event[field] = value
                del props[field]
            if props:
                event["properties"] = props
            add_event(event)
            add_origin(index)
        except _Rejected as exc:
            mapped.reject(index, str(exc))
    mapped.key = key
    return mapped


def _remember(memo: dict[str, _V], key: str, value: _V) -> _V:
    if len(key) <= _MEMO_LONGEST:
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
        memo[key] = value
    return value


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


def _when(
    item: dict[str, Any], props: dict[str, Any], sent_at: datetime | None, now: datetime, naive_now: datetime
) -> str:
    """The event's time (the rules in the module docstring) as rfc3339() text. `now` is aware UTC,
    `naive_now` the same time naive: the skew-corrected time is formatted from a naive datetime
    plus the UTC offset, the same text for half the cost of an aware isoformat()."""
    offset = item.get("offset")
    if offset is not None:
        if not is_number(offset):
            raise _Rejected(f"offset: expected milliseconds, got {json_kind(offset)}")
        try:
            return rfc3339(now - timedelta(milliseconds=offset))
        except OverflowError:
            raise _Rejected(f"offset {offset} ms is out of range") from None
    stamp = item.get("timestamp")
    if stamp is None or stamp == "":
        return rfc3339(now)
    try:
        moment = parse_time(stamp)
    except ValueError as exc:
        raise _Rejected(str(exc)) from None
    if sent_at is None or props.get("$ignore_sent_at") is True:
        return rfc3339(moment)
    try:
        corrected = naive_now + (moment - sent_at)
    except OverflowError:
        raise _Rejected(f"timestamp {str(stamp)[:40]!r} is out of range") from None
    return corrected.isoformat() + "+00:00"


def _sent_at(value: Any) -> datetime | None:
    """The client's send time; an unreadable one is ignored, as PostHog does (no skew correction)."""
    if value is None or value == "":
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


def _path_of(url: str) -> str | None:
    """The page of a `$current_url`: its path ("/" when it has none), None when it is no URL."""
    try:
        return urlsplit(url).path or "/"
    except ValueError:
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
