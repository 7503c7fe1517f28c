"""The event model (SPEC section 2): what validate_event accepts, what it refuses, and why."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry_mcp.events.model import Event, EventRejected, parse_timestamp, validate_event

TEXT_LIMITS = {
    "event_id": 128,
    "name": 200,
    "component": 200,
    "user_id": 200,
    "session_id": 200,
    "unit": 32,
    "service": 200,
    "service_version": 200,
    "platform": 200,
    "os": 200,
    "framework": 200,
    "page": 200,
}
PATTERN_HINT = "must match ^[a-z][a-z0-9_]{0,63}$ (lower-case letters, digits, _)"


def rejection(raw: Any) -> str:
    with pytest.raises(EventRejected) as info:
        validate_event(raw)
    return str(info.value)


def nested(levels: int) -> dict[str, Any]:
    """A properties object `levels` deep, counting the properties object itself as level 1."""
    node: dict[str, Any] = {}
    for _ in range(levels - 1):
        node = {"a": node}
    return node


# --- shape -----------------------------------------------------------------------------------------


def test_a_minimal_event_needs_only_an_event_type() -> None:
    event = validate_event({"event_type": "component_load"})

    assert event.model_dump(exclude_none=True) == {"event_type": "component_load"}


def test_a_missing_event_type_is_rejected() -> None:
    assert rejection({"name": "fade"}) == "event_type is required"


@pytest.mark.parametrize(
    ("raw", "kind"), [([{"event_type": "x"}], "list"), ("x", "str"), (None, "NoneType"), (7, "int")]
)
def test_an_event_that_is_not_an_object_is_rejected(raw: Any, kind: str) -> None:
    assert rejection(raw) == f"event: expected a JSON object, got {kind}"


def test_an_unknown_top_level_field_is_rejected_naming_it_and_pointing_at_properties() -> None:
    reason = rejection({"event_type": "page_view", "color": "red"})

    assert reason == 'unknown field "color": custom data belongs in "properties"'


def test_several_problems_are_reported_together() -> None:
    reason = rejection({"event_type": "Bad", "severity": "fatal"})

    assert reason == (
        f"event_type 'Bad' {PATTERN_HINT}; "
        "severity 'fatal' is not one of: debug, info, warning, error, critical"
    )


# --- text fields -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "limit"), TEXT_LIMITS.items())
def test_text_length_limits_count_characters_not_bytes(field: str, limit: int) -> None:
    at_limit = validate_event({"event_type": "x", field: "é" * limit})

    assert getattr(at_limit, field) == "é" * limit
    assert rejection({"event_type": "x", field: "é" * (limit + 1)}) == (
        f"{field}: at most {limit} characters (got {limit + 1})"
    )


@pytest.mark.parametrize("field", TEXT_LIMITS)
def test_a_text_field_given_a_number_is_rejected_not_converted(field: str) -> None:
    assert rejection({"event_type": "x", field: 5}) == f"{field}: expected a string, got int"


@pytest.mark.parametrize("field", TEXT_LIMITS)
def test_a_nul_character_in_a_text_field_is_rejected(field: str) -> None:
    assert rejection({"event_type": "x", field: "a\x00b"}) == f"{field}: contains a NUL character"


@pytest.mark.parametrize("field", TEXT_LIMITS)
def test_a_lone_surrogate_in_a_text_field_is_rejected(field: str) -> None:
    assert (
        rejection({"event_type": "x", field: "a\ud800b"}) == f"{field}: not valid Unicode (a lone surrogate?)"
    )


def test_an_empty_event_id_is_rejected() -> None:
    assert rejection({"event_type": "x", "event_id": ""}) == "event_id: must not be empty"


# --- event_type and severity -----------------------------------------------------------------------


@pytest.mark.parametrize("event_type", ["a", "component_load", "x9_", "my_custom_type", "a" * 64])
def test_event_types_matching_the_pattern_are_accepted(event_type: str) -> None:
    assert validate_event({"event_type": event_type}).event_type == event_type


@pytest.mark.parametrize(
    "event_type", ["", "A", "Component_load", "9a", "_a", "a-b", "a b", "é", "abc\n", "a" * 65]
)
def test_event_types_not_matching_the_pattern_are_rejected(event_type: str) -> None:
    assert rejection({"event_type": event_type}) == f"event_type {event_type!r} {PATTERN_HINT}"


@pytest.mark.parametrize("severity", ["debug", "info", "warning", "error", "critical"])
def test_each_severity_of_the_enum_is_accepted(severity: str) -> None:
    assert validate_event({"event_type": "x", "severity": severity}).severity == severity


@pytest.mark.parametrize("severity", ["fatal", "ERROR", "", "warn"])
def test_a_severity_outside_the_enum_is_rejected_listing_the_accepted_ones(severity: str) -> None:
    assert rejection({"event_type": "x", "severity": severity}) == (
        f"severity {severity!r} is not one of: debug, info, warning, error, critical"
    )


# --- numbers ---------------------------------------------------------------------------------------


def test_duration_ms_may_be_zero_but_not_negative() -> None:
    assert validate_event({"event_type": "x", "duration_ms": 0}).duration_ms == 0.0
    assert rejection({"event_type": "x", "duration_ms": -0.5}) == "duration_ms must be >= 0 (got -0.5)"


def test_value_may_be_negative() -> None:
    assert validate_event({"event_type": "x", "value": -3}).value == -3.0


@pytest.mark.parametrize("field", ["duration_ms", "value"])
@pytest.mark.parametrize(("given", "stored"), [("12.5", 12.5), (" 3 ", 3.0), ("1e3", 1000.0), (7, 7.0)])
def test_numeric_strings_are_accepted_for_numbers(field: str, given: Any, stored: float) -> None:
    assert getattr(validate_event({"event_type": "x", field: given}), field) == stored


@pytest.mark.parametrize("field", ["duration_ms", "value"])
@pytest.mark.parametrize(("flag", "shown"), [(True, "true"), (False, "false")])
def test_booleans_are_rejected_for_numbers(field: str, flag: bool, shown: str) -> None:
    assert (
        rejection({"event_type": "x", field: flag}) == f"{field}: expected a number, got a boolean ({shown})"
    )


@pytest.mark.parametrize("field", ["duration_ms", "value"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf"), "NaN", "inf", "1e400", 10**400])
def test_nan_and_infinities_are_rejected_for_numbers(field: str, bad: Any) -> None:
    assert rejection({"event_type": "x", field: bad}) == f"{field}: expected a finite number"


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("fast", "value: expected a number, got the string 'fast'"),
        ([1], "value: expected a number, got list"),
        ({"n": 1}, "value: expected a number, got dict"),
    ],
)
def test_non_numbers_are_rejected_for_numbers(bad: Any, reason: str) -> None:
    assert rejection({"event_type": "x", "value": bad}) == reason


# --- timestamps ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("2026-01-01T01:00:00+01:00", datetime(2026, 1, 1, 0, 0)),
        ("2025-12-31T19:00:00-05:00", datetime(2026, 1, 1, 0, 0)),
        ("2026-01-01T00:00:00Z", datetime(2026, 1, 1, 0, 0)),
        ("2026-01-01T00:00:00z", datetime(2026, 1, 1, 0, 0)),
        ("2026-01-01T00:00:00.250Z", datetime(2026, 1, 1, 0, 0, 0, 250_000)),
        ("2026-01-01T00:00:00", datetime(2026, 1, 1, 0, 0)),
        (1_767_225_600_000, datetime(2026, 1, 1, 0, 0)),
        (1_767_225_600_250, datetime(2026, 1, 1, 0, 0, 0, 250_000)),
        ("1767225600000", datetime(2026, 1, 1, 0, 0)),
        (0, datetime(1970, 1, 1, 0, 0)),
    ],
)
def test_timestamps_are_rfc3339_or_epoch_milliseconds_stored_as_naive_utc(
    given: Any, stored: datetime
) -> None:
    assert validate_event({"event_type": "x", "timestamp": given}).timestamp == stored


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("1969-12-31T23:59:59Z", "timestamp: timestamp '1969-12-31T23:59:59Z' is before 1970-01-01"),
        (
            "1970-01-01T00:30:00+01:00",
            "timestamp: timestamp '1970-01-01T00:30:00+01:00' is before 1970-01-01",
        ),
        (-1, "timestamp: timestamp -1 ms is before 1970-01-01"),
        (
            "yesterday",
            "timestamp: timestamp 'yesterday' is not RFC 3339 (e.g. 2026-01-31T12:00:00Z) "
            "or epoch milliseconds",
        ),
        (True, "timestamp: expected an RFC 3339 string or epoch milliseconds, got a boolean"),
        ([2026], "timestamp: expected an RFC 3339 string or epoch milliseconds, got list"),
        (float("nan"), "timestamp: epoch milliseconds must be finite"),
        (
            "0001-01-01T00:00:00+01:00",
            "timestamp: timestamp '0001-01-01T00:00:00+01:00' is out of range "
            "(years 1970 to 9998 with an offset)",
        ),
    ],
)
def test_timestamps_before_1970_or_not_timestamps_are_rejected(given: Any, reason: str) -> None:
    assert rejection({"event_type": "x", "timestamp": given}) == reason


def test_epoch_microseconds_are_rejected_as_beyond_year_9999() -> None:
    reason = rejection({"event_type": "x", "timestamp": 1_767_225_600_000_000_000})

    assert reason.endswith("ms is beyond year 9999 (epoch milliseconds expected, not µs)")


def test_more_than_five_minutes_in_the_future_is_rejected_four_is_accepted() -> None:
    now = datetime(2026, 1, 1, 12, 0)

    assert parse_timestamp("2026-01-01T12:04:00Z", now=now) == datetime(2026, 1, 1, 12, 4)
    assert parse_timestamp("2026-01-01T12:05:00Z", now=now) == datetime(2026, 1, 1, 12, 5)
    with pytest.raises(
        ValueError, match=r"^timestamp 2026-01-01T12:05:01Z is more than 5 minutes in the future$"
    ):
        parse_timestamp("2026-01-01T12:05:01Z", now=now)
    # the offset is applied before the comparison: 13:06+01:00 is 12:06 UTC, 12:06+01:00 is 11:06 UTC
    with pytest.raises(ValueError, match="more than 5 minutes in the future"):
        parse_timestamp("2026-01-01T13:06:00+01:00", now=now)
    assert parse_timestamp("2026-01-01T12:06:00+01:00", now=now) == datetime(2026, 1, 1, 11, 6)


def test_the_future_limit_applies_against_the_real_clock_in_both_forms() -> None:
    now = datetime.now(UTC)
    four = now + timedelta(minutes=4)
    six = now + timedelta(minutes=6)

    assert validate_event({"event_type": "x", "timestamp": four.isoformat()}).timestamp is not None
    assert (
        validate_event({"event_type": "x", "timestamp": int(four.timestamp() * 1000)}).timestamp is not None
    )
    assert "more than 5 minutes in the future" in rejection({"event_type": "x", "timestamp": six.isoformat()})
    assert "more than 5 minutes in the future" in rejection(
        {"event_type": "x", "timestamp": int(six.timestamp() * 1000)}
    )


# --- properties ------------------------------------------------------------------------------------


def compact_size(properties: dict[str, Any]) -> int:
    """Bytes of the stored (compact, UTF-8) form."""
    return len(json.dumps(properties, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def test_properties_up_to_16_kib_serialized_are_accepted_one_byte_more_is_rejected() -> None:
    fits = {"k": "a" * (16 * 1024 - 8)}  # {"k":"…"} is 8 bytes around the value
    too_big = {"k": "a" * (16 * 1024 - 7)}
    assert (compact_size(fits), compact_size(too_big)) == (16384, 16385)

    assert validate_event({"event_type": "x", "properties": fits}).properties == fits
    assert rejection({"event_type": "x", "properties": too_big}) == (
        "properties: 16385 bytes serialized; at most 16384 (16 KiB)"
    )


def test_the_properties_size_counts_utf8_bytes() -> None:
    fits = {"k": "é" * 8188}  # 8,188 characters, 16,376 bytes
    too_big = {"k": "é" * 8188 + "a"}
    assert (compact_size(fits), compact_size(too_big)) == (16384, 16385)

    assert validate_event({"event_type": "x", "properties": fits}).properties == fits
    assert rejection({"event_type": "x", "properties": too_big}) == (
        "properties: 16385 bytes serialized; at most 16384 (16 KiB)"
    )


def test_properties_nested_32_levels_are_accepted_33_are_rejected() -> None:
    assert validate_event({"event_type": "x", "properties": nested(32)}).properties == nested(32)
    assert (
        rejection({"event_type": "x", "properties": nested(33)}) == "properties: nested deeper than 32 levels"
    )


def test_lists_count_as_nesting_levels_too() -> None:
    def lists(levels: int) -> list[Any]:
        node: list[Any] = []
        for _ in range(levels - 1):
            node = [node]
        return node

    # the properties object is level 1, so 31 levels of lists fit under it
    assert validate_event({"event_type": "x", "properties": {"a": lists(31)}}).properties is not None
    assert rejection({"event_type": "x", "properties": {"a": lists(32)}}) == (
        "properties: nested deeper than 32 levels"
    )


def test_hostile_nesting_is_rejected_without_blowing_the_stack() -> None:
    assert rejection({"event_type": "x", "properties": nested(100_000)}) == (
        "properties: nested deeper than 32 levels"
    )


@pytest.mark.parametrize(("bad", "kind"), [([], "list"), ("{}", "str"), (5, "int")])
def test_properties_must_be_a_json_object(bad: Any, kind: str) -> None:
    assert (
        rejection({"event_type": "x", "properties": bad}) == f"properties: expected a JSON object, got {kind}"
    )


def test_properties_with_nan_are_rejected_as_not_json() -> None:
    assert rejection({"event_type": "x", "properties": {"v": float("nan")}}) == (
        "properties: not valid JSON (Out of range float values are not JSON compliant)"
    )


def test_a_lone_surrogate_inside_properties_is_rejected() -> None:
    assert rejection({"event_type": "x", "properties": {"note": "a\udc00"}}) == (
        "properties: contains a lone surrogate, which is not valid Unicode"
    )


# --- input-only fields -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "bad", "reason"),
    [
        ("do_not_track", "maybe", "do_not_track: expected true or false"),
        ("do_not_track", [True], "do_not_track: expected true or false"),
        ("ip", 10, "ip: expected a string, got int"),
    ],
)
def test_input_only_fields_have_types_too(field: str, bad: Any, reason: str) -> None:
    assert rejection({"event_type": "x", field: bad}) == reason


def test_do_not_track_and_ip_are_accepted_on_the_wire() -> None:
    event = validate_event({"event_type": "x", "do_not_track": True, "ip": "203.0.113.9"})

    assert event.do_not_track is True
    assert event.ip == "203.0.113.9"


# --- properties of the whole input space -----------------------------------------------------------

FIELDS = [*TEXT_LIMITS, "event_type", "timestamp", "severity", "duration_ms", "value", "properties"]
# Every character, lone surrogates and NUL included.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=40)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([10**400, -(10**400), 2**1023, 2**1024, 253_402_300_800_000])
    | st.floats()
    | ANY_TEXT
    | st.sampled_from(["1e400", "NaN", " 12 ", "2026-01-01T00:00:00+14:00", "0001-01-01T00:00:00-23:59",
                       "9999-12-31T23:59:59-01:00", "info", "component_load", "-1", "253402300800000"])
)  # fmt: skip
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from([*FIELDS, "ip", "do_not_track", "extra"]), JSONISH, max_size=8))
def test_arbitrary_json_like_objects_never_raise_anything_but_event_rejected(raw: dict[str, Any]) -> None:
    try:
        event = validate_event(raw)
    except EventRejected as exc:
        assert str(exc)
    else:
        assert isinstance(event, Event)


@settings(max_examples=60, deadline=None)
@given(JSONISH)
def test_arbitrary_json_values_as_an_event_never_raise_anything_but_event_rejected(raw: Any) -> None:
    try:
        validate_event(raw)
    except EventRejected as exc:
        assert str(exc)


SAFE_TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=30)
JSON_PROPERTIES = st.dictionaries(
    SAFE_TEXT,
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | SAFE_TEXT,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(SAFE_TEXT, inner, max_size=3),
        max_leaves=10,
    ),
    max_size=5,
)
OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
MOMENTS = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2025, 12, 31), timezones=OFFSETS)


@st.composite
def valid_events(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A valid raw event and the values validate_event must produce for it."""
    raw: dict[str, Any] = {"event_type": draw(st.from_regex(r"[a-z][a-z0-9_]{0,63}", fullmatch=True))}
    expected = dict(raw)
    for field, limit in TEXT_LIMITS.items():
        if draw(st.booleans()):
            text = draw(st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
                                min_size=1, max_size=min(limit, 40)))  # fmt: skip
            raw[field] = expected[field] = text
    if draw(st.booleans()):
        moment = draw(MOMENTS)
        expected["timestamp"] = moment.astimezone(UTC).replace(tzinfo=None)
        as_epoch_ms = moment.microsecond == 0 and draw(st.booleans())
        raw["timestamp"] = int(moment.timestamp()) * 1000 if as_epoch_ms else moment.isoformat()
    if draw(st.booleans()):
        raw["severity"] = expected["severity"] = draw(st.sampled_from(["debug", "info", "warning", "error"]))
    if draw(st.booleans()):
        number = draw(st.floats(min_value=0, max_value=1e12, allow_nan=False))
        expected["duration_ms"] = number
        raw["duration_ms"] = draw(st.sampled_from([number, repr(number)]))
    if draw(st.booleans()):
        number = draw(st.floats(allow_nan=False, allow_infinity=False))
        expected["value"] = number
        raw["value"] = number
    if draw(st.booleans()):
        raw["properties"] = expected["properties"] = draw(JSON_PROPERTIES)
    return raw, expected


@settings(max_examples=100, deadline=None)
@given(valid_events())
def test_any_valid_event_round_trips(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    raw, expected = case

    event = validate_event(raw)

    assert event.model_dump(exclude_none=True) == expected
    # what is stored can be submitted again unchanged
    assert validate_event(event.model_dump(mode="json", exclude_none=True)) == event
