"""The fast path must agree with the pydantic model on every input: same verdict, same row."""

from datetime import datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry_mcp.events.fastpath import ROW_KEYS, validate_row
from telemetry_mcp.events.model import EventRejected, validate_event

NOW = datetime(2026, 11, 23, 12, 0, 0)

text = st.one_of(st.text(max_size=210), st.just("\x00"), st.just("é" * 201), st.just("a" * 200))
number = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(min_value=-(10**400), max_value=10**400),
    st.booleans(), st.just("12.5"), st.just("abc"),
)  # fmt: skip
timestamp = st.one_of(
    st.just("2026-01-01T00:00:00Z"), st.just("2026-01-01T01:00:00+01:00"), st.just("1969-12-31T23:59:59Z"),
    st.just("2026-11-23T12:04:00Z"), st.just("2026-11-23T12:06:00Z"), st.just("not a time"),
    st.integers(min_value=-10, max_value=2_000_000_000_000), st.just("1700000000000"), st.just("9999-12-31T23:59:59-01:00"),
)  # fmt: skip
leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
json_value = st.recursive(leaf, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                          max_leaves=12)  # fmt: skip
fields: dict[str, Any] = {
    "event_id": st.one_of(text, st.just("")),
    "timestamp": timestamp,
    "event_type": st.one_of(st.sampled_from(["component_load", "x", "Bad", "a" * 65, ""]), st.integers()),
    "name": text,
    "component": text,
    "user_id": st.one_of(text, st.integers()),
    "severity": st.sampled_from(["info", "error", "fatal", 3]),
    "duration_ms": number,
    "value": number,
    "unit": st.text(max_size=40),
    "page": text,
    "properties": st.one_of(
        st.dictionaries(st.text(max_size=8), json_value, max_size=4), st.lists(leaf), leaf
    ),
    "do_not_track": st.one_of(st.booleans(), st.just("yes")),
    "ip": st.one_of(st.text(max_size=10), st.integers()),
    "surprise": st.integers(),
}
raw_event = st.fixed_dictionaries(
    {"event_type": fields["event_type"]}, optional={k: v for k, v in fields.items() if k != "event_type"}
)


def _model_row(raw: Any) -> dict[str, Any] | None:
    try:
        event = validate_event(raw)
    except EventRejected:
        return None
    return {k: getattr(event, k) for k in ROW_KEYS}


@settings(max_examples=600, deadline=None)
@given(raw_event)
def test_the_fast_path_and_the_model_agree_on_validity_and_values(raw: dict[str, Any]) -> None:
    expected = _model_row(raw)
    try:
        row, _ = validate_row(raw, NOW)
    except EventRejected:
        assert expected is None
        return
    assert expected is not None
    if expected["timestamp"] is not None and abs((expected["timestamp"] - NOW).total_seconds()) < 3600:
        # the model compares against the wall clock, the fast path against NOW: skip near-now stamps
        return
    assert row == expected


def test_a_well_formed_event_takes_the_fast_path_and_keeps_its_properties_json() -> None:
    row, props = validate_row(
        {"event_type": "component_load", "duration_ms": 5, "timestamp": 1_700_000_000_000,
         "properties": {"variant": "primary", "n": [1, 2]}},
        NOW,
    )  # fmt: skip
    assert row["duration_ms"] == 5.0
    assert row["timestamp"] == datetime(2023, 11, 14, 22, 13, 20)
    assert props == '{"variant":"primary","n":[1,2]}'
