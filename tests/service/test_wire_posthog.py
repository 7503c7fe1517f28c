"""map_posthog: PostHog capture bodies as our events, with PostHog's own timestamp rules."""

from datetime import UTC, datetime
from typing import Any

import pytest

from telemetry_mcp.server.app import App
from telemetry_mcp.service.collector.common import WireError
from telemetry_mcp.service.collector.posthog import map_posthog

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)

PAGEVIEW = {
    "event": "$pageview",
    "uuid": "0190a1b2-0000-7000-8000-000000000001",
    "distinct_id": "user-1",
    "timestamp": "2026-03-01T11:00:00.000Z",
    "properties": {
        "$current_url": "https://shop.example/products/42?ref=mail",
        "$pathname": "/products/42",
        "$title": "Product 42",
        "$session_id": "sess-1",
        "$lib": "web",
        "$lib_version": "1.200.0",
        "$os": "Mac OS X",
        "$browser": "Chrome",
        "$ip": "203.0.113.9",
        "token": "phc_key",
        "distinct_id": "user-1",
        "$device_id": "dev-1",
    },
}
AUTOCAPTURE = {
    "event": "$autocapture",
    "distinct_id": "user-1",
    "timestamp": "2026-03-01T11:00:01.000Z",
    "properties": {
        "$event_type": "click",
        "$current_url": "https://shop.example/cart",
        "$lib": "web",
        "$elements_chain": 'button.btn.primary:attr__class="btn primary"nth-child="1"text="Pay";'
        'form:attr__data-component="checkout-form";body',
    },
}
EXCEPTION = {
    "event": "$exception",
    "distinct_id": "srv-7",
    "timestamp": "2026-03-01T11:00:02Z",
    "properties": {
        "$lib": "posthog-python",
        "$exception_list": [{"type": "ValueError", "value": "bad input", "mechanism": {"handled": True}}],
        "service": "billing",
        "service_version": "2.4.1",
    },
}
CUSTOM = {
    "event": "Checkout Completed",
    "distinct_id": 1234,
    "timestamp": "2026-03-01T11:00:03Z",
    "properties": {
        "$lib": "posthog-node",
        "duration_ms": 812,
        "value": "not a number",
        "severity": "warning",
        "component": "checkout",
        "cart": {"items": 3, "ip": "198.51.100.1"},
    },
}
IDENTIFY = {
    "event": "$identify",
    "distinct_id": "user-1",
    "timestamp": "2026-03-01T11:00:04Z",
    "properties": {"$anon_distinct_id": "anon-9", "$set": {"plan": "pro"}, "$lib": "posthog-ios"},
}
SCREEN = {
    "event": "$screen",
    "distinct_id": "user-2",
    "timestamp": "2026-03-01T11:00:05Z",
    "properties": {
        "$screen_name": "Settings",
        "$lib": "posthog-react-native",
        "$app_name": "Shop",
        "$app_version": "3.1",
    },
}
BATCH = {"api_key": "phc_key", "batch": [PAGEVIEW, AUTOCAPTURE, EXCEPTION, CUSTOM, IDENTIFY, SCREEN]}

EXPECTED = [
    {
        "event_id": "0190a1b2-0000-7000-8000-000000000001",
        "timestamp": "2026-03-01T11:00:00+00:00",
        "event_type": "page_view",
        "name": "Product 42",
        "user_id": "user-1",
        "session_id": "sess-1",
        "page": "/products/42",
        "os": "Mac OS X",
        "platform": "web",
        "properties": {
            "$current_url": "https://shop.example/products/42?ref=mail",
            "$lib": "web",
            "$lib_version": "1.200.0",
            "$browser": "Chrome",
        },
    },
    {
        "timestamp": "2026-03-01T11:00:01+00:00",
        "event_type": "user_interaction",
        "name": "click",
        "component": "checkout-form",
        "user_id": "user-1",
        "page": "/cart",
        "platform": "web",
        "properties": {"$current_url": "https://shop.example/cart", "$lib": "web"},
    },
    {
        "timestamp": "2026-03-01T11:00:02+00:00",
        "event_type": "error",
        "severity": "error",
        "name": "ValueError",
        "user_id": "srv-7",
        "platform": "server",
        "service": "billing",
        "service_version": "2.4.1",
        "properties": {
            "$lib": "posthog-python",
            "$exception_list": [{"type": "ValueError", "value": "bad input", "mechanism": {"handled": True}}],
            "message": "bad input",
        },
    },
    {
        "timestamp": "2026-03-01T11:00:03+00:00",
        "event_type": "checkout_completed",
        "name": "Checkout Completed",
        "component": "checkout",
        "severity": "warning",
        "duration_ms": 812,
        "user_id": "1234",
        "platform": "server",
        "properties": {"$lib": "posthog-node", "value": "not a number", "cart": {"items": 3}},
    },
    {
        "timestamp": "2026-03-01T11:00:04+00:00",
        "event_type": "identify",
        "user_id": "user-1",
        "platform": "mobile",
        "properties": {"$set": {"plan": "pro"}, "$lib": "posthog-ios"},
    },
    {
        "timestamp": "2026-03-01T11:00:05+00:00",
        "event_type": "page_view",
        "name": "Settings",
        "user_id": "user-2",
        "platform": "mobile",
        "service": "Shop",
        "service_version": "3.1",
        "properties": {"$lib": "posthog-react-native"},
    },
]


def test_a_batch_of_every_special_event_maps_field_by_field() -> None:
    mapped = map_posthog(BATCH, now=NOW)
    assert mapped.key == "phc_key"
    assert mapped.received == 6
    assert mapped.errors == []
    assert mapped.origin == [0, 1, 2, 3, 4, 5]
    assert mapped.events == EXPECTED


def test_ip_is_dropped_everywhere() -> None:
    mapped = map_posthog(BATCH, now=NOW)
    assert "203.0.113.9" not in repr(mapped.events)
    assert "198.51.100.1" not in repr(mapped.events)


def test_sent_at_corrects_the_client_clock_skew() -> None:
    # The client clock is 10 min ahead: it stamped 12:05 and sent at 12:09:30; we received at 12:00.
    body = {
        "api_key": "k",
        "sent_at": "2026-03-01T12:09:30Z",
        "batch": [{"event": "a", "timestamp": "2026-03-01T12:05:00Z"}],
    }
    assert map_posthog(body, now=NOW).events == [
        {"timestamp": "2026-03-01T11:55:30+00:00", "event_type": "a"}
    ]


def test_ignore_sent_at_keeps_the_timestamp_as_given() -> None:
    body = {
        "api_key": "k",
        "sent_at": "2026-03-01T12:09:30Z",
        "batch": [
            {"event": "a", "timestamp": "2026-03-01T10:05:00Z", "properties": {"$ignore_sent_at": True}}
        ],
    }
    assert map_posthog(body, now=NOW).events == [
        {"timestamp": "2026-03-01T10:05:00+00:00", "event_type": "a", "properties": {"$ignore_sent_at": True}}
    ]


def test_offset_wins_over_timestamp_and_sent_at() -> None:
    body = [
        {"event": "a", "offset": 2500, "timestamp": "2020-01-01T00:00:00Z", "token": "k"},
        {"event": "b", "offset": 0, "token": "k"},
    ]
    assert map_posthog(body, now=NOW, sent_at="2026-03-01T13:00:00Z").events == [
        {"timestamp": "2026-03-01T11:59:57.500000+00:00", "event_type": "a"},
        {"timestamp": "2026-03-01T12:00:00+00:00", "event_type": "b"},
    ]


def test_a_request_level_sent_at_in_epoch_ms_corrects_skew_when_the_body_has_none() -> None:
    sent = int(datetime(2026, 3, 1, 12, 1, 0, tzinfo=UTC).timestamp() * 1000)
    mapped = map_posthog([{"event": "a", "timestamp": "2026-03-01T12:00:30Z"}], now=NOW, sent_at=sent)
    assert mapped.events == [{"timestamp": "2026-03-01T11:59:30+00:00", "event_type": "a"}]


def test_no_time_at_all_is_the_receive_time_and_a_naive_timestamp_is_utc() -> None:
    body = [{"event": "a"}, {"event": "b", "timestamp": "2026-03-01T09:30:00"}]
    assert map_posthog(body, now=NOW).events == [
        {"timestamp": "2026-03-01T12:00:00+00:00", "event_type": "a"},
        {"timestamp": "2026-03-01T09:30:00+00:00", "event_type": "b"},
    ]


def test_a_future_corrected_time_is_left_for_validation_to_reject() -> None:
    body = {"sent_at": "2026-03-01T12:00:00Z", "batch": [{"event": "a", "timestamp": "2026-03-01T13:00:00Z"}]}
    assert map_posthog(body, now=NOW).events == [
        {"timestamp": "2026-03-01T13:00:00+00:00", "event_type": "a"}
    ]


def test_a_single_event_body_with_its_key() -> None:
    body = {"api_key": "phc_one", "event": "signed_up", "distinct_id": "u", "properties": {"plan": "pro"}}
    mapped = map_posthog(body, now=NOW)
    assert (mapped.key, mapped.received, mapped.errors) == ("phc_one", 1, [])
    assert mapped.events == [
        {
            "timestamp": "2026-03-01T12:00:00+00:00",
            "event_type": "signed_up",
            "user_id": "u",
            "properties": {"plan": "pro"},
        }
    ]


def test_a_bare_array_takes_its_key_from_properties_token() -> None:
    body = [
        {"event": "a", "properties": {"token": "phc_js", "$lib": "web"}},
        {"event": "b", "properties": {"token": "phc_js"}},
    ]
    mapped = map_posthog(body, now=NOW)
    assert mapped.key == "phc_js"
    assert [e["event_type"] for e in mapped.events] == ["a", "b"]
    assert "phc_js" not in repr(mapped.events)


def test_an_event_with_another_key_than_the_batch_is_rejected_alone() -> None:
    body = [{"event": "a", "token": "phc_1"}, {"event": "b", "token": "phc_2"}]
    mapped = map_posthog(body, now=NOW)
    assert (mapped.key, mapped.origin, mapped.errors) == (
        "phc_1",
        [0],
        [(1, "api_key differs from the one of the batch")],
    )


def test_bad_items_are_rejected_alone_and_the_others_mapped() -> None:
    body = {
        "api_key": "k",
        "batch": [
            {"event": "ok_1"},
            "not an event",
            {"properties": {"a": 1}},
            {"event": "bad_time", "timestamp": "yesterday"},
            {"event": "bad_props", "properties": [1, 2]},
            {"event": "bad_offset", "offset": "soon"},
            {"event": "ok_2"},
        ],
    }
    mapped = map_posthog(body, now=NOW)
    assert mapped.origin == [0, 6]
    assert [e["event_type"] for e in mapped.events] == ["ok_1", "ok_2"]
    assert mapped.errors == [
        (1, "event: expected a JSON object, got a string"),
        (2, 'event name ("event") is missing'),
        (3, "timestamp 'yesterday' is not ISO 8601 (e.g. 2026-01-31T12:00:00Z) or epoch milliseconds"),
        (4, "properties: expected a JSON object, got an array"),
        (5, "offset: expected milliseconds, got a string"),
    ]


@pytest.mark.parametrize(
    ("name", "event_type", "kept_name"),
    [
        ("$pageleave", "page_leave", None),
        ("$set", "set", "$set"),
        ("$groupidentify", "groupidentify", "$groupidentify"),
        ("$create_alias", "create_alias", "$create_alias"),
        ("feature_used", "feature_used", None),
        ("Video Played", "video_played", "Video Played"),
        ("2fa enabled", "e_2fa_enabled", "2fa enabled"),
    ],
)
def test_event_names_become_valid_event_types(name: str, event_type: str, kept_name: str | None) -> None:
    (event,) = map_posthog([{"event": name}], now=NOW).events
    assert (event["event_type"], event.get("name")) == (event_type, kept_name)


def test_a_name_property_wins_over_the_original_event_name() -> None:
    (event,) = map_posthog([{"event": "Video Played", "properties": {"name": "intro.mp4"}}], now=NOW).events
    assert (event["event_type"], event["name"], event.get("properties")) == (
        "video_played",
        "intro.mp4",
        None,
    )


def test_autocapture_from_elements_list_uses_the_clicked_tag_without_data_component() -> None:
    item = {
        "event": "$autocapture",
        "properties": {
            "$event_type": "submit",
            "$elements": [{"tag_name": "form", "attr__id": "f"}, {"tag_name": "body"}],
        },
    }
    assert map_posthog([item], now=NOW).events == [
        {
            "timestamp": "2026-03-01T12:00:00+00:00",
            "event_type": "user_interaction",
            "name": "submit",
            "component": "form",
        }
    ]


@pytest.mark.parametrize(
    ("lib", "platform"),
    [
        ("web", "web"),
        ("posthog-ios", "mobile"),
        ("posthog-android", "mobile"),
        ("posthog-flutter", "mobile"),
        ("posthog-go", "server"),
        ("something-else", None),
    ],
)
def test_platform_follows_the_sending_library(lib: str, platform: str | None) -> None:
    (event,) = map_posthog([{"event": "a", "properties": {"$lib": lib}}], now=NOW).events
    assert event.get("platform") == platform


@pytest.mark.parametrize("payload", [42, "text", None, {"batch": {"event": "a"}}])
def test_a_body_of_the_wrong_shape_is_refused_as_a_whole(payload: Any) -> None:
    with pytest.raises(WireError) as caught:
        map_posthog(payload, now=NOW)
    assert caught.value.status == 400


def test_mapped_events_are_accepted_by_the_real_ingest_core(app: App) -> None:
    mapped = map_posthog(BATCH, now=NOW)
    report = app.ingestor.ingest(mapped.events)
    assert (report.accepted, report.rejected, report.errors) == (6, 0, [])


def test_posthog_js_user_id_property_is_dropped_as_a_raw_id() -> None:
    # posthog-js sends the identified distinct id again as properties.$user_id on every event
    # after identify(): kept, it would put the raw id beside the hashed user_id.
    item = {
        "event": "feature_used",
        "distinct_id": "web-user-1",
        "properties": {"$user_id": "web-user-1", "$is_identified": True, "$lib": "web"},
    }
    (event,) = map_posthog({"api_key": "k", "batch": [item]}, now=NOW).events
    assert event["user_id"] == "web-user-1"
    assert event["properties"] == {"$is_identified": True, "$lib": "web"}


def test_posthog_js_pageview_title_property_is_the_name() -> None:
    # posthog-js sends document.title as properties.title on $pageview ($title is the older name).
    item = {
        "event": "$pageview",
        "distinct_id": "web-user-1",
        "properties": {"title": "Pricing", "$current_url": "https://shop.example/pricing", "$lib": "web"},
    }
    (event,) = map_posthog({"api_key": "k", "batch": [item]}, now=NOW).events
    assert (event["event_type"], event["name"], event["page"]) == ("page_view", "Pricing", "/pricing")
    assert "title" not in event["properties"]
    both = {**item, "properties": {**item["properties"], "$title": "Given"}}
    (event,) = map_posthog({"api_key": "k", "batch": [both]}, now=NOW).events
    assert (event["name"], event["properties"]["title"]) == ("Given", "Pricing")
