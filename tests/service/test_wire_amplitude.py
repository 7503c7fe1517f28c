"""map_amplitude: Amplitude HTTP V2 bodies as our events, and Amplitude's per-event verdicts."""

from datetime import UTC, datetime
from typing import Any

import pytest

from telemetry_mcp.server.app import App
from telemetry_mcp.service.collector.amplitude import map_amplitude
from telemetry_mcp.service.collector.common import WireError

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
T0 = int(datetime(2026, 3, 1, 11, 0, 0, tzinfo=UTC).timestamp() * 1000)

BODY = {
    "api_key": "amp_key",
    "events": [
        {
            "event_type": "Song Played",
            "user_id": "user-0001",
            "device_id": "dev-0001",
            "time": T0,
            "insert_id": "ins-1",
            "session_id": T0 - 60_000,
            "os_name": "iOS",
            "os_version": "17.2",
            "platform": "iOS",
            "app_version": "5.0.1",
            "ip": "203.0.113.9",
            "idfa": "AEBE52E7-03EE-455A-B3C4-E57283966239",
            "event_properties": {"genre": "jazz", "duration_ms": 2100, "ip": "198.51.100.7"},
            "user_properties": {"tier": "free"},
            "library": "amplitude-python/1.3.0",
        },
        {
            "event_type": "[Amplitude] Page Viewed",
            "device_id": "dev-0002",
            "time": T0 + 1000,
            "session_id": -1,
            "platform": "Web",
            "event_properties": {"[Amplitude] Page Path": "/docs/start", "[Amplitude] Page Title": "Start"},
        },
        {"event_type": "session_start", "user_id": "user-0003", "time": T0 + 2000, "platform": "Desktop"},
    ],
}
EXPECTED = [
    {
        "event_id": "ins-1",
        "timestamp": "2026-03-01T11:00:00+00:00",
        "event_type": "song_played",
        "name": "Song Played",
        "user_id": "user-0001",
        "session_id": str(T0 - 60_000),
        "os": "iOS",
        "platform": "mobile",
        "service_version": "5.0.1",
        "duration_ms": 2100,
        "properties": {
            "genre": "jazz",
            "user_properties": {"tier": "free"},
            "os_version": "17.2",
            "library": "amplitude-python/1.3.0",
        },
    },
    {
        "timestamp": "2026-03-01T11:00:01+00:00",
        "event_type": "page_view",
        "name": "Start",
        "user_id": "dev-0002",
        "page": "/docs/start",
        "platform": "web",
    },
    {
        "timestamp": "2026-03-01T11:00:02+00:00",
        "event_type": "session_start",
        "user_id": "user-0003",
        "platform": "desktop",
    },
]


def test_a_valid_body_maps_field_by_field() -> None:
    mapped = map_amplitude(BODY, now=NOW)
    assert (mapped.key, mapped.received, mapped.errors, mapped.origin) == ("amp_key", 3, [], [0, 1, 2])
    assert mapped.events == EXPECTED
    assert mapped.error_body() is None


def test_ip_and_advertising_ids_are_dropped() -> None:
    text = repr(map_amplitude(BODY, now=NOW).events)
    assert "203.0.113.9" not in text
    assert "198.51.100.7" not in text
    assert "AEBE52E7" not in text
    assert "dev-0001" not in text  # the device id beside a user id is not kept


def test_invalid_events_are_listed_by_index_as_amplitude_answers() -> None:
    body = {
        "api_key": "k",
        "events": [
            {"event_type": "ok", "user_id": "user-0001"},
            {"user_id": "user-0002"},
            {"event_type": "no ids"},
            {"event_type": "short", "user_id": "abc"},
            {"event_type": "bad time", "device_id": "dev-12345", "time": "later"},
            "nope",
            {"event_type": "bad props", "user_id": "user-0006", "event_properties": [1]},
            {"event_type": "short device", "device_id": "d1"},
            {"event_type": "ok too", "device_id": "dev-00008"},
        ],
    }
    mapped = map_amplitude(body, now=NOW)
    assert mapped.origin == [0, 8]
    assert mapped.error_body() == {
        "code": 400,
        "error": "Invalid field values on some events",
        "events_with_invalid_fields": {"time": [4], "event": [5], "event_properties": [6]},
        "events_with_missing_fields": {"event_type": [1], "user_id": [2]},
        "events_with_invalid_id_lengths": {"user_id": [3], "device_id": [7]},
    }
    assert mapped.errors == [
        (1, "event_type is missing"),
        (2, "user_id or device_id is required"),
        (3, "user_id must be at least 5 characters (options.min_id_length)"),
        (4, "timestamp 'later' is not ISO 8601 (e.g. 2026-01-31T12:00:00Z) or epoch milliseconds"),
        (5, "event: expected a JSON object, got a string"),
        (6, "event_properties: expected a JSON object, got an array"),
        (7, "device_id must be at least 5 characters (options.min_id_length)"),
    ]


def test_options_min_id_length_lowers_the_id_length_rule() -> None:
    body = {"api_key": "k", "events": [{"event_type": "a", "user_id": "ab"}], "options": {"min_id_length": 2}}
    mapped = map_amplitude(body, now=NOW)
    assert (mapped.errors, mapped.events) == (
        [],
        [{"timestamp": "2026-03-01T12:00:00+00:00", "event_type": "a", "user_id": "ab"}],
    )


@pytest.mark.parametrize(
    ("body", "missing"),
    [({"events": []}, "api_key"), ({"api_key": "k"}, "events"), ({"api_key": "k", "events": {}}, "events")],
)
def test_a_body_without_api_key_or_events_answers_missing_field(body: dict[str, Any], missing: str) -> None:
    mapped = map_amplitude(body, now=NOW)
    assert mapped.events == []
    assert mapped.error_body() == {
        "code": 400,
        "error": "Request missing required field",
        "missing_field": missing,
    }


def test_a_body_that_is_not_an_object_is_refused_as_a_whole() -> None:
    with pytest.raises(WireError) as caught:
        map_amplitude([{"event_type": "a"}], now=NOW)
    assert caught.value.status == 400


def test_ingest_rejections_are_reported_at_the_senders_index_under_amplitudes_field_names() -> None:
    body = {
        "api_key": "k",
        "events": [
            {"user_id": "user-0000"},
            {"event_type": "a", "user_id": "user-0001"},
            {"event_type": "b", "user_id": "user-0002", "time": T0 + 10 * 86_400_000},
        ],
    }
    mapped = map_amplitude(body, now=NOW)
    mapped.add_rejects([(1, "timestamp 2026-03-11T11:00:00Z is more than 5 minutes in the future")])
    assert mapped.error_body() == {
        "code": 400,
        "error": "Invalid field values on some events",
        "events_with_invalid_fields": {"time": [2]},
        "events_with_missing_fields": {"event_type": [0]},
    }


def test_the_ingest_core_verdicts_map_into_the_400_body(app: App) -> None:
    future = int(datetime(2099, 1, 1, tzinfo=UTC).timestamp() * 1000)
    body = {
        "api_key": "k",
        "events": [
            {"event_type": "a", "user_id": "user-0001"},
            {"event_type": "b", "user_id": "user-0002", "time": future},
        ],
    }
    mapped = map_amplitude(body, now=NOW)
    prepared = app.ingestor.prepare(mapped.events)
    mapped.add_rejects(prepared.report.errors)
    assert mapped.error_body() == {
        "code": 400,
        "error": "Invalid field values on some events",
        "events_with_invalid_fields": {"time": [1]},
    }


def test_mapped_events_are_accepted_by_the_real_ingest_core(app: App) -> None:
    mapped = map_amplitude(BODY, now=NOW)
    report = app.ingestor.ingest(mapped.events)
    assert (report.accepted, report.rejected, report.errors) == (3, 0, [])
