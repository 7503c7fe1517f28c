"""map_posthog against a frozen copy of itself: the same output for every input, batch by batch.

The mapper was rewritten for speed (issue 11: collector throughput). The reference below is the
mapper as it was before, with the helpers it used from collector/common.py; thousands of random
PostHog items (seeded) of every shape the wire allows, and many it does not, must map exactly as
the reference maps them: the same events (keys, values and types), origins, errors, key and count,
the same WireError for a body refused as a whole, and the same changes to the input it was given.
"""

from __future__ import annotations

import copy
import math
import random
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeGuard
from urllib.parse import urlsplit

from telemetry_mcp.service.collector.common import Mapped, WireError
from telemetry_mcp.service.collector.posthog import map_posthog

# ================================================================================================
# Frozen copy of the mapper at commit fb7827c, the reference: collector/posthog.py (map_posthog
# renamed _reference_map_posthog) and the helpers it used from collector/common.py. Do not edit.
# ================================================================================================

# from telemetry_mcp.events.model at fb7827c
EVENT_TYPE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
SEVERITIES = ("debug", "info", "warning", "error", "critical")
EVENT_TYPE = re.compile(EVENT_TYPE_PATTERN)


def event_type_of(raw: str) -> str:
    """A valid event_type from any event name: lower snake case; a leading `$` dropped."""
    text = re.sub(r"[^a-z0-9]+", "_", raw.strip().lstrip("$").lower()).strip("_")
    if not text:
        return "custom"
    if not text[0].isalpha():
        text = "e_" + text
    return text[:64].rstrip("_")


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
    """A finite JSON number (booleans are not numbers here).

    The one deliberate change to the frozen copy: an integer too large for a float is not a number
    (at fb7827c it raised OverflowError out of the mapper, and the request got a 500; now its event
    is rejected alone, or the value stays a property: tests/service/test_collector_http.py).
    """
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
        if re.fullmatch(r"\d+(\.\d+)?", raw):
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
    return utc(moment).isoformat()


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


def _reference_map_posthog(payload: Any, *, now: datetime, sent_at: Any = None) -> Mapped:
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


# ================================================================================================
# Random PostHog bodies (seeded)
# ================================================================================================

NAMES = [
    "$pageview", "$screen", "$pageleave", "$autocapture", "$exception", "$identify",
    "Sign Up!", "$", "123", "", " ", "  ", "$pageview ", " $screen", "$set", "$create_alias",
    "component_load", "user_interaction", "Checkout Completed", "Button Clicked", "__x__", "_lead",
    "e_1", "A" * 65, "a" * 64, "b" * 65, "x" * 300, "$" + "y" * 120, "Größe ändern 🎉", "日本語",
    "--", "$$", "9lives", "camelCaseEvent", "kebab-case-event", "tab\tname", "new\nline",
]  # fmt: skip
ISO = [
    "2026-03-01T11:00:00.000Z", "2026-03-01T11:00:00Z", "2026-03-01T11:00:00z", "2026-03-01T11:00:00",
    "2026-03-01T13:00:00.123456+02:00", "2026-03-01T06:00:00-05:00", " 2026-03-01T11:00:00Z ",
    "2026-03-01", "2026-03-01 11:00:00", "2026-03-01T11:00:00.5Z", "9999-12-31T23:59:59-05:00",
    "0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00", "1969-12-31T23:59:59Z", "2030-01-01T00:00:00Z",
]  # fmt: skip
GARBAGE = ["yesterday", "2026-13-01T00:00:00Z", "2026-03-01T25:00:00Z", "--", "1e5", "١٢٣", "12:00", "x" * 80]
NUMBER_STRINGS = ["1772362800000", " 1772362800000.5 ", "0", "99999999999999999999", "1.5", "00012"]
NUMBERS: list[Any] = [1772362800000, 1772362800000.25, 0, -1, 10**20, 1e300, -(10**16), 1.5]
# JSON integers too large for a float: not numbers (their event rejected alone; kept rare here)
HUGE = 10**400
ODD: list[Any] = [None, "", True, False, [], {}, ["x"], {"a": 1}, math.nan, math.inf, -math.inf]
URLS = [
    "https://shop.example/products/42?ref=mail", "https://shop.example", "https://shop.example/",
    "http://[::1", "http://[::1]:8080/admin", "no-scheme/path", "/just/a/path", "mailto:a@b.example",
    "https://ex.example/ünïcode/路径#frag", "", "https://user:pw@host.example:99/p;params?q#f",
    "https://x.example/" + "p" * 300,
]  # fmt: skip
LIBS: list[Any] = [
    "web", "posthog-js-lite", "posthog-js", "posthog-ios", "posthog-android", "posthog-react-native",
    "posthog-flutter", "posthog-python", "posthog-node", "posthog-", "other", "", 5, None, ["web"],
]  # fmt: skip
CHAINS = [
    'button.btn.primary:attr__class="btn primary"nth-child="1"text="Pay";'
    'form:attr__data-component="checkout-form";body',
    'a:attr__href="/x"text="Go \\"now\\"";div:attr__data-component="";body',
    "span;div;body",
    'svg:attr__data-component="icon; with semicolon";button:attr__data-component="' + "c" * 250 + '"',
    "",
    ";;;",
    '9bad:attr__data-component="nav"',
    '"quoted only"',
]
SEVERITY_VALUES: list[Any] = ["debug", "info", "warning", "error", "critical", "fatal", "INFO", None, 5, ""]
KEYS = ["phc_key", "phc_other", "", 42, None, True]


def _pick(rng: random.Random, *pools: list[Any]) -> Any:
    return rng.choice(rng.choice(pools))


def _text_value(rng: random.Random, limit: int = 200) -> Any:
    return rng.choice(
        ["ok", "a" * limit, "a" * (limit + 1), "", 7, 7.5, True, None, ["x"], {"ip": "1.2.3.4"}, "ünï 🎉"]
    )


def _nested(rng: random.Random, depth: int = 0) -> Any:
    """A JSON value with ip / $ip keys hidden at some depth."""
    if depth > 3 or rng.random() < 0.3:
        return _pick(rng, ["x", 1, 2.5, True, None, "ip"], ODD[:4])
    if rng.random() < 0.5:
        node: dict[str, Any] = {}
        for key in rng.sample(["ip", "$ip", "a", "b", "IP", "$ipv6", "deep"], rng.randint(0, 4)):
            node[key] = _nested(rng, depth + 1)
        return node
    return [_nested(rng, depth + 1) for _ in range(rng.randint(0, 3))]


def _timestamp_value(rng: random.Random, pool: list[Any]) -> Any:
    r = rng.random()
    if r < 0.5 and pool:
        return rng.choice(pool)  # repeated within the batch, as SDK batches often are
    if r < 0.002:
        return HUGE
    if r < 0.8:
        return rng.choice(ISO[:7])  # the common, valid shapes
    return _pick(rng, ISO, GARBAGE, NUMBER_STRINGS, NUMBERS, ODD)


def _properties(rng: random.Random, name: Any) -> dict[str, Any]:
    props: dict[str, Any] = {}
    choices: list[tuple[str, Any]] = [
        ("$session_id", lambda: _text_value(rng)),
        ("$pathname", lambda: rng.choice(["/p/1", "", 5, None, "/" + "q" * 250])),
        ("$current_url", lambda: _pick(rng, URLS, URLS, [5, None, ["u"]])),
        ("$os", lambda: _text_value(rng)),
        ("$lib", lambda: rng.choice(LIBS)),
        ("$lib_version", lambda: "1.200.0"),
        ("$browser", lambda: "Chrome"),
        ("$app_name", lambda: _text_value(rng)),
        ("$app_version", lambda: _text_value(rng)),
        ("$title", lambda: _text_value(rng)),
        ("title", lambda: _text_value(rng)),
        ("$screen_name", lambda: _text_value(rng)),
        ("$event_type", lambda: _text_value(rng)),
        (
            "$elements",
            lambda: rng.choice(
                [
                    [{"tag_name": "button"}, {"tag_name": "form", "attr__data-component": "checkout"}],
                    [{"tag_name": "a", "attr__data-component": ""}, "not a dict", {"tag_name": 5}],
                    [{"attr__data-component": "x" * 250}],
                    [],
                    ["x"],
                    "not a list",
                    None,
                    [{"tag_name": "div", "ip": "1.2.3.4"}],
                ]
            ),
        ),
        ("$elements_chain", lambda: rng.choice([*CHAINS, 5, None])),
        (
            "$exception_list",
            lambda: rng.choice(
                [
                    [{"type": "ValueError", "value": "bad input", "mechanism": {"handled": True, "ip": "x"}}],
                    [{"type": 5, "value": 7}],
                    [{}],
                    [],
                    ["not a dict"],
                    "not a list",
                    None,
                    [{"type": "", "value": ""}, {"type": "Second"}],
                ]
            ),
        ),
        ("$exception_message", lambda: rng.choice(["boom", "", None, 0, ["m"]])),
        ("$exception_type", lambda: _text_value(rng)),
        ("message", lambda: rng.choice(["given", "", 5])),
        ("token", lambda: rng.choice(KEYS)),
        ("api_key", lambda: rng.choice(KEYS)),
        ("$ip", lambda: "203.0.113.9"),
        ("ip", lambda: "198.51.100.1"),
        ("distinct_id", lambda: rng.choice(["user-p", 77, "", None, True])),
        ("$distinct_id", lambda: rng.choice(["user-q", 78, "", None])),
        ("$anon_distinct_id", lambda: "anon-9"),
        ("$device_id", lambda: "dev-1"),
        ("$user_id", lambda: "user-raw"),
        ("$ignore_sent_at", lambda: rng.choice([True, True, False, "true", 1, None])),
        ("$set", lambda: {"plan": "pro", "ip": "1.1.1.1"}),
        ("$set_once", lambda: rng.choice([{"first": "x"}, None, 3])),
        ("name", lambda: _text_value(rng)),
        ("component", lambda: _text_value(rng)),
        ("session_id", lambda: _text_value(rng)),
        ("unit", lambda: _text_value(rng, 32)),
        ("service", lambda: _text_value(rng)),
        ("service_version", lambda: _text_value(rng)),
        ("platform", lambda: _text_value(rng)),
        ("os", lambda: _text_value(rng)),
        ("framework", lambda: _text_value(rng)),
        ("page", lambda: _text_value(rng)),
        ("severity", lambda: rng.choice(SEVERITY_VALUES)),
        (
            "duration_ms",
            lambda: _pick(
                rng,
                [812, 0, -1, -0.5, 12.25, True, "5", None],
                [math.nan, math.inf, HUGE if rng.random() < 0.02 else 1],
            ),
        ),
        (
            "value",
            lambda: rng.choice(
                [1, 2.5, True, False, "not a number", None, -3, math.nan, HUGE if rng.random() < 0.02 else 4]
            ),
        ),
        ("cart", lambda: _nested(rng)),
        ("list", lambda: _nested(rng)),
        ("Größe", lambda: "ünïcödé 🎉"),
        ("variant", lambda: rng.choice(["a", "b"])),
        ("k" * 300, lambda: "long key"),
    ]
    if name == "$autocapture" or rng.random() < 0.2:
        choices += [("$elements", choices[13][1]), ("$elements_chain", choices[14][1])] * 3
    if name == "$exception":
        choices += [(k, f) for k, f in choices if k.startswith("$exception")] * 2
    for key, make in rng.sample(choices, rng.randint(0, min(len(choices), 14))):
        props[key] = make()
    return props


def _item(rng: random.Random, stamps: list[Any], batch_key: Any) -> Any:
    r = rng.random()
    if r < 0.02:
        return rng.choice([5, "x", None, [], True, [{"event": "$pageview"}]])
    name: Any = rng.choice(NAMES) if rng.random() < 0.95 else rng.choice([None, 5, ["x"], {"e": 1}])
    item: dict[str, Any] = {}
    if name is not None or rng.random() < 0.5:
        item["event"] = name
    r = rng.random()
    if r < 0.75:
        item["properties"] = _properties(rng, name)
    elif r < 0.8:
        item["properties"] = rng.choice([None, [], "props", 5, {}])
    if rng.random() < 0.8:
        item["distinct_id"] = rng.choice(["user-1", 1234, "", None, True, 1.5, "ünï"])
    if rng.random() < 0.7:
        item["uuid"] = rng.choice(
            ["0190a1b2-0000-7000-8000-000000000001", f"u-{rng.randrange(10**6)}", 99, "", None]
        )
    if rng.random() < 0.9:
        item["timestamp"] = _timestamp_value(rng, stamps)
    if rng.random() < 0.1:
        item["offset"] = _pick(
            rng,
            [0, 1500, -2000, 12.5, 10**30, 1e300],
            ["10", True, None, math.nan, HUGE if rng.random() < 0.05 else 3],
        )
    if rng.random() < 0.1:
        item["$set"] = {"email_domain": "example.com", "nested": {"ip": "10.0.0.1"}}
    if rng.random() < 0.05:
        item["$set_once"] = rng.choice([{"first_seen": "x"}, "str", None])
    if rng.random() < 0.1:
        item["api_key"] = batch_key if rng.random() < 0.6 else rng.choice(KEYS)
    if rng.random() < 0.05:
        item["token"] = rng.choice(KEYS)
    if rng.random() < 0.05:
        item["sent_at"] = rng.choice(ISO)  # only a body's sent_at counts, not an item's
    return item


def _body(rng: random.Random) -> tuple[Any, Any]:
    """A decoded body and a request-level sent_at."""
    stamps = [_timestamp_value(rng, []) for _ in range(rng.randint(0, 3))]
    key = rng.choice(KEYS)
    items = [_item(rng, stamps, key) for _ in range(rng.randint(1, 40))]
    request_sent_at = rng.choice([None, None, 1772362800000, "1772362800000", "garbage", ""])
    r = rng.random()
    if r < 0.03:
        return rng.choice(["text", 5, None, True, 1.5]), request_sent_at
    if r < 0.05:
        return {"api_key": key, "batch": rng.choice([{"event": "x"}, "x", None, 5])}, request_sent_at
    if r < 0.15:
        return items, request_sent_at
    if r < 0.25:
        single = items[0]
        if isinstance(single, dict) and rng.random() < 0.5:
            single["sent_at"] = rng.choice([*ISO, *GARBAGE, 1772362800000, "", None])
        return single, request_sent_at
    body: dict[str, Any] = {"batch": items}
    if rng.random() < 0.7:
        body["api_key" if rng.random() < 0.7 else "token"] = key
    if rng.random() < 0.8:
        body["sent_at"] = _pick(rng, ISO[:7], ISO[:7], ISO, GARBAGE, NUMBER_STRINGS, NUMBERS, ODD)
    return body, request_sent_at


NOWS = [
    datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC),
    datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC),
    datetime(2026, 3, 1, 12, 0, 0),  # naive: read as UTC
    datetime(2026, 3, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2))),
    datetime(9999, 12, 31, 23, 0, 0, tzinfo=UTC),
    datetime(1, 1, 1, 1, 0, 0, tzinfo=UTC),
]


# ================================================================================================
# Comparison
# ================================================================================================


def _same(a: Any, b: Any) -> bool:
    """Equal values of the same types all the way down (1 == 1.0 == True is not enough here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def _run(mapper: Any, payload: Any, now: datetime, sent_at: Any) -> tuple[Any, Any]:
    """The mapper's result (or what it raised) and the input as the mapper left it."""
    given = copy.deepcopy(payload)
    try:
        m = mapper(given, now=now, sent_at=sent_at)
    except WireError as exc:
        return ("WireError", exc.status, exc.message), given
    except Exception as exc:  # e.g. OverflowError of a JSON integer too large for a float: the same one
        return ("raised", type(exc).__name__, str(exc)), given
    assert isinstance(m, Mapped)
    return ("Mapped", m.received, m.events, m.origin, m.errors, m.key), given


def test_the_mapper_maps_25_000_random_items_exactly_as_the_frozen_reference_does() -> None:
    rng = random.Random(20260301)
    items = kinds = 0
    seen_errors: set[str] = set()
    for batch in range(1_500):
        payload, sent_at = _body(rng)
        now = NOWS[batch % len(NOWS)]
        expected, expected_input = _run(_reference_map_posthog, payload, now, sent_at)
        got, got_input = _run(map_posthog, payload, now, sent_at)
        assert _same(got, expected), f"batch {batch}: {payload!r}\nexpected {expected!r}\ngot      {got!r}"
        assert _same(got_input, expected_input), f"batch {batch}: the input was changed differently"
        if expected[0] == "Mapped":
            items += expected[1]
            kinds += len(expected[2])
            seen_errors.update(re.sub(r"'.*'|\d+", "_", message)[:30] for _, message in expected[4])
    # the generator reaches every branch that matters: many items, most mapped, every kind of error
    assert items >= 20_000
    assert kinds >= items // 2
    assert len(seen_errors) >= 8, seen_errors
