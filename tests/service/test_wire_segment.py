"""map_segment: Segment tracking-API messages as our events, with Segment's skew correction."""

from datetime import UTC, datetime
from typing import Any

import pytest

from telemetry_mcp.server.app import App
from telemetry_mcp.service.collector.common import WireError
from telemetry_mcp.service.collector.segment import map_segment

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
PY_CONTEXT = {"library": {"name": "analytics-python", "version": "2.3.3"}}
JS_CONTEXT = {
    "library": {"name": "analytics.js", "version": "next-1.70.0"},
    "page": {"path": "/pricing", "url": "https://shop.example/pricing?utm=x", "title": "Pricing"},
    "os": {"name": "Windows"},
    "ip": "203.0.113.9",
    "userAgent": "Mozilla/5.0",
}
MOBILE_CONTEXT = {
    "app": {"name": "Shop", "version": "3.1.0"},
    "device": {"type": "ios", "model": "iPhone15,2"},
    "os": {"name": "iOS", "version": "17.2"},
    "library": {"name": "analytics-swift", "version": "1.5"},
}

BATCH = {
    "writeKey": "wk_test",
    "sentAt": "2026-03-01T12:00:10Z",
    "batch": [
        {
            "type": "track",
            "event": "Order Completed",
            "messageId": "m-1",
            "userId": "user-1",
            "anonymousId": "anon-1",
            "timestamp": "2026-03-01T12:00:00Z",
            "properties": {
                "revenue": 42.5,
                "duration_ms": 120,
                "service": "checkout-api",
                "ip": "198.51.100.7",
            },
            "context": PY_CONTEXT,
        },
        {
            "type": "page",
            "name": "Pricing",
            "messageId": "m-2",
            "anonymousId": "anon-2",
            "timestamp": "2026-03-01T12:00:01Z",
            "properties": {"path": "/pricing", "title": "Pricing", "url": "https://shop.example/pricing"},
            "context": JS_CONTEXT,
        },
        {
            "type": "screen",
            "name": "Settings",
            "messageId": "m-3",
            "userId": "user-3",
            "timestamp": "2026-03-01T12:00:02Z",
            "context": MOBILE_CONTEXT,
        },
        {
            "type": "identify",
            "messageId": "m-4",
            "userId": "user-1",
            "traits": {"plan": "pro", "email": "someone@example.com"},
            "timestamp": "2026-03-01T12:00:03Z",
            "context": PY_CONTEXT,
        },
        {
            "type": "group",
            "messageId": "m-5",
            "userId": "user-1",
            "groupId": "acme",
            "traits": {"seats": 20},
            "timestamp": "2026-03-01T12:00:04Z",
        },
        {
            "type": "alias",
            "messageId": "m-6",
            "userId": "user-1",
            "previousId": "anon-1",
            "timestamp": "2026-03-01T12:00:05Z",
        },
        {
            "type": "track",
            "event": "feature_used",
            "messageId": "m-7",
            "userId": "user-1",
            "timestamp": "2026-03-01T12:00:06Z",
            "properties": {"name": "export_csv", "platform": "cli"},
            "context": PY_CONTEXT,
        },
    ],
}

# The sender's clock is 10 s ahead (sentAt 12:00:10 received at 12:00:00): every time moves 10 s back.
EXPECTED = [
    {
        "event_id": "m-1",
        "timestamp": "2026-03-01T11:59:50+00:00",
        "event_type": "order_completed",
        "name": "Order Completed",
        "user_id": "user-1",
        "platform": "server",
        "service": "checkout-api",
        "duration_ms": 120,
        "properties": {"revenue": 42.5, "context": PY_CONTEXT},
    },
    {
        "event_id": "m-2",
        "timestamp": "2026-03-01T11:59:51+00:00",
        "event_type": "page_view",
        "name": "Pricing",
        "user_id": "anon-2",
        "page": "/pricing",
        "os": "Windows",
        "platform": "web",
        "properties": {
            "title": "Pricing",
            "url": "https://shop.example/pricing",
            "context": {
                "library": {"name": "analytics.js", "version": "next-1.70.0"},
                "page": {"path": "/pricing", "url": "https://shop.example/pricing?utm=x", "title": "Pricing"},
                "os": {"name": "Windows"},
                "userAgent": "Mozilla/5.0",
            },
        },
    },
    {
        "event_id": "m-3",
        "timestamp": "2026-03-01T11:59:52+00:00",
        "event_type": "page_view",
        "name": "Settings",
        "user_id": "user-3",
        "os": "iOS",
        "platform": "mobile",
        "service": "Shop",
        "service_version": "3.1.0",
        "properties": {"context": MOBILE_CONTEXT},
    },
    {
        "event_id": "m-4",
        "timestamp": "2026-03-01T11:59:53+00:00",
        "event_type": "identify",
        "user_id": "user-1",
        "platform": "server",
        "properties": {"traits": {"plan": "pro", "email": "someone@example.com"}, "context": PY_CONTEXT},
    },
    {
        "event_id": "m-5",
        "timestamp": "2026-03-01T11:59:54+00:00",
        "event_type": "group",
        "user_id": "user-1",
        "properties": {"traits": {"seats": 20}, "group_id": "acme"},
    },
    {
        "event_id": "m-6",
        "timestamp": "2026-03-01T11:59:55+00:00",
        "event_type": "alias",
        "user_id": "user-1",
    },
    {
        "event_id": "m-7",
        "timestamp": "2026-03-01T11:59:56+00:00",
        "event_type": "feature_used",
        "name": "export_csv",
        "user_id": "user-1",
        "platform": "cli",
        "properties": {"context": PY_CONTEXT},
    },
]


def test_a_batch_of_every_message_type_maps_field_by_field() -> None:
    mapped = map_segment(BATCH, "batch", now=NOW)
    assert (mapped.key, mapped.received, mapped.errors) == ("wk_test", 7, [])
    assert mapped.origin == [0, 1, 2, 3, 4, 5, 6]
    assert mapped.events == EXPECTED


def test_context_ip_and_property_ip_are_dropped() -> None:
    text = repr(map_segment(BATCH, "batch", now=NOW).events)
    assert "203.0.113.9" not in text
    assert "198.51.100.7" not in text
    assert "anon-1" not in text  # previousId and a userId's anonymousId are raw ids, not kept


@pytest.mark.parametrize("kind", ["track", "page", "screen", "identify"])
def test_a_single_message_endpoint_implies_the_type(kind: str) -> None:
    body = {
        "writeKey": "wk",
        "userId": "u-1",
        "event": "Clicked",
        "name": "Home",
        "timestamp": "2026-03-01T11:00:00Z",
    }
    mapped = map_segment(body, kind, now=NOW)
    assert mapped.key == "wk"
    expected_type = {"track": "clicked", "page": "page_view", "screen": "page_view", "identify": "identify"}[
        kind
    ]
    assert [e["event_type"] for e in mapped.events] == [expected_type]


def test_a_message_level_sent_at_wins_over_the_batch_one() -> None:
    body = {
        "sentAt": "2026-03-01T12:00:10Z",
        "batch": [
            {
                "type": "track",
                "event": "a",
                "timestamp": "2026-03-01T12:30:00Z",
                "sentAt": "2026-03-01T12:30:05Z",
            }
        ],
    }
    assert map_segment(body, "batch", now=NOW).events == [
        {"timestamp": "2026-03-01T11:59:55+00:00", "event_type": "a"}
    ]


def test_without_sent_at_the_timestamp_or_original_timestamp_is_used_as_given() -> None:
    body = {
        "batch": [
            {"type": "track", "event": "a", "timestamp": "2026-03-01T08:00:00Z"},
            {"type": "track", "event": "b", "originalTimestamp": "2026-03-01T09:00:00+01:00"},
            {"type": "track", "event": "c"},
        ]
    }
    assert map_segment(body, "batch", now=NOW).events == [
        {"timestamp": "2026-03-01T08:00:00+00:00", "event_type": "a"},
        {"timestamp": "2026-03-01T08:00:00+00:00", "event_type": "b"},
        {"timestamp": "2026-03-01T12:00:00+00:00", "event_type": "c"},
    ]


def test_bad_messages_are_rejected_alone_and_the_others_mapped() -> None:
    body = {
        "batch": [
            {"type": "track", "event": "ok"},
            7,
            {"type": "boom"},
            {"type": "track"},
            {"type": "track", "event": "t", "timestamp": "soon"},
            {"type": "track", "event": "p", "properties": "x"},
            {"event": "no type in a batch"},
        ]
    }
    mapped = map_segment(body, "batch", now=NOW)
    assert mapped.origin == [0]
    assert mapped.errors == [
        (1, "message: expected a JSON object, got a number"),
        (2, "unknown message type 'boom': expected one of track, page, screen, identify, group, alias"),
        (3, 'track message has no event name ("event")'),
        (4, "timestamp 'soon' is not ISO 8601 (e.g. 2026-01-31T12:00:00Z) or epoch milliseconds"),
        (5, "properties: expected a JSON object, got a string"),
        (6, "unknown message type None: expected one of track, page, screen, identify, group, alias"),
    ]


@pytest.mark.parametrize(
    ("context", "platform"),
    [
        ({"device": {"type": "android"}}, "mobile"),
        ({"device": {"type": "Desktop"}}, "desktop"),
        ({"library": {"name": "@segment/analytics-node"}}, "server"),
        ({"library": {"name": "analytics-react-native"}}, "mobile"),
        ({"library": {"name": "analytics.js"}}, "web"),
        ({}, None),
    ],
)
def test_platform_from_the_device_or_the_library(context: dict[str, Any], platform: str | None) -> None:
    (event,) = map_segment({"type": "track", "event": "a", "context": context}, "track", now=NOW).events
    assert event.get("platform") == platform


@pytest.mark.parametrize(("payload", "kind"), [([1], "batch"), ({"batch": {}}, "batch"), ("x", "track")])
def test_a_body_of_the_wrong_shape_is_refused_as_a_whole(payload: Any, kind: str) -> None:
    with pytest.raises(WireError) as caught:
        map_segment(payload, kind, now=NOW)
    assert caught.value.status == 400


def test_an_unknown_endpoint_kind_is_404() -> None:
    with pytest.raises(WireError) as caught:
        map_segment({}, "flush", now=NOW)
    assert caught.value.status == 404


def test_mapped_events_are_accepted_by_the_real_ingest_core(app: App) -> None:
    mapped = map_segment(BATCH, "batch", now=NOW)
    report = app.ingestor.ingest(mapped.events)
    assert (report.accepted, report.rejected, report.errors) == (7, 0, [])


@pytest.mark.parametrize("kind", ["page", "screen"])
def test_analytics_python_top_level_category_is_kept_as_a_property(kind: str) -> None:
    # analytics-python sends page(category, name) with `category` beside `name`; analytics-node
    # puts it in properties. Both end up as properties.category (a property given wins).
    body = {
        "type": kind,
        "userId": "user-1",
        "category": "Docs",
        "name": "Home",
        "timestamp": "2026-03-01T11:00:00Z",
    }
    (event,) = map_segment({"writeKey": "wk", "batch": [body]}, "batch", now=NOW).events
    assert (event["event_type"], event["name"], event["properties"]) == (
        "page_view",
        "Home",
        {"category": "Docs"},
    )
    given = {**body, "properties": {"category": "Given"}}
    (event,) = map_segment({"writeKey": "wk", "batch": [given]}, "batch", now=NOW).events
    assert event["properties"] == {"category": "Given"}
