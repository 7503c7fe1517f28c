"""The one ingest path (SPEC sections 2, 3 and tool 1): what a batch does to the store, event by event."""

from __future__ import annotations

import hashlib
import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry_mcp.config import load_settings
from telemetry_mcp.errors import InvalidArgument
from telemetry_mcp.server.app import App, open_app
from telemetry_mcp.store import Store
from telemetry_mcp.store.ingest import Ingestor

SALT = "00112233445566778899aabbccddeeff"
# HMAC-SHA256(SALT, user id), first 16 hex characters
ALICE = "40a7644018f606ae"
BOB = "284e1eee08f028ae"
PATTERN_HINT = "must match ^[a-z][a-z0-9_]{0,63}$ (lower-case letters, digits, _)"


def make_app(**overrides: Any) -> App:
    return open_app(load_settings({"db": ":memory:", "threads": 2, "salt": SALT, **overrides}, env={}))


def ids(app: App) -> list[str]:
    return [r[0] for r in app.store.fetch("SELECT event_id FROM events ORDER BY seq")]


def count(app: App) -> int:
    return int(app.store.fetch("SELECT count(*) FROM events")[0][0])


def ev(event_id: str, **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "event_type": "component_load", **fields}


# --- each event stands alone -----------------------------------------------------------------------


def test_one_bad_event_never_loses_the_good_ones(app: App) -> None:
    batch = [
        ev("g0"),
        ev("b1", event_type="Bad"),
        ev("g2"),
        ev("b3", duration_ms=-1),
        ev("b4", value=10**400),
        ev("b5", timestamp="0001-01-01T00:00:00+01:00"),
        ev("g6"),
    ]

    report = app.ingestor.ingest(batch)

    assert (report.accepted, report.rejected, report.duplicates) == (3, 4, 0)
    assert report.errors == [
        (1, f"event_type 'Bad' {PATTERN_HINT}"),
        (3, "duration_ms must be >= 0 (got -1)"),
        (4, "value: expected a finite number"),
        (
            5,
            "timestamp: timestamp '0001-01-01T00:00:00+01:00' is out of range "
            "(years 1970 to 9998 with an offset)",
        ),
    ]
    assert ids(app) == ["g0", "g2", "g6"]


def test_only_the_first_100_errors_are_listed_but_every_rejection_is_counted(app: App) -> None:
    batch = [ev(f"e{i}", severity="loud") if i % 2 else ev(f"e{i}") for i in range(300)]

    report = app.ingestor.ingest(batch)

    assert (report.accepted, report.rejected) == (150, 150)
    assert len(report.errors) == 100
    assert [index for index, _ in report.errors] == list(range(1, 200, 2))
    assert report.errors[0] == (1, "severity 'loud' is not one of: debug, info, warning, error, critical")
    assert count(app) == 150


# --- duplicates ------------------------------------------------------------------------------------


def test_a_duplicate_within_a_batch_is_counted_and_stored_once_keeping_the_first(app: App) -> None:
    report = app.ingestor.ingest([ev("a", name="first"), ev("b"), ev("a", name="second")])

    assert (report.accepted, report.duplicates) == (2, 1)
    assert app.store.fetch("SELECT event_id, name FROM events ORDER BY seq") == [("a", "first"), ("b", None)]


def test_a_duplicate_across_batches_is_counted_and_stored_once(app: App) -> None:
    first = app.ingestor.ingest([ev("a", name="first"), ev("b")])
    second = app.ingestor.ingest([ev("b"), ev("c"), ev("a", name="again")])

    assert (first.accepted, first.duplicates) == (2, 0)
    assert (second.accepted, second.duplicates) == (1, 2)
    assert app.store.fetch("SELECT event_id, name FROM events ORDER BY event_id") == [
        ("a", "first"),
        ("b", None),
        ("c", None),
    ]


def test_events_without_an_id_get_a_generated_uuid_each(app: App) -> None:
    report = app.ingestor.ingest([{"event_type": "page_view"}] * 3)

    generated = ids(app)
    assert report.accepted == 3
    assert len(set(generated)) == 3
    assert all(str(uuid.UUID(i)) == i for i in generated)


# --- arrival order and time ------------------------------------------------------------------------


def test_seq_follows_list_order_so_equal_timestamps_keep_batch_order(app: App) -> None:
    ts = "2026-01-01T00:00:00Z"
    app.ingestor.ingest([ev(f"a{i}", name=n, timestamp=ts) for i, n in enumerate(["open", "type", "submit"])])
    app.ingestor.ingest([ev(f"b{i}", name=n, timestamp=ts) for i, n in enumerate(["close", "reopen"])])

    rows = app.store.fetch("SELECT seq, name FROM events ORDER BY ts, seq")

    assert rows == [(1, "open"), (2, "type"), (3, "submit"), (4, "close"), (5, "reopen")]


def test_seq_continues_after_rejected_and_duplicate_events(app: App) -> None:
    app.ingestor.ingest([ev("a"), ev("bad", event_type="?"), ev("a"), ev("b")])
    app.ingestor.ingest([ev("c")])

    assert app.store.fetch("SELECT event_id, seq FROM events ORDER BY seq") == [("a", 1), ("b", 2), ("c", 3)]


def test_the_receive_time_is_used_when_the_timestamp_is_absent(app: App) -> None:
    now = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)

    app.ingestor.ingest([ev("no-ts"), ev("ts", timestamp="2026-02-28T23:00:00-02:00")], now=now)

    assert app.store.fetch("SELECT event_id, ts, received_at FROM events ORDER BY seq") == [
        ("no-ts", datetime(2026, 3, 1, 12, 30), datetime(2026, 3, 1, 12, 30)),
        ("ts", datetime(2026, 3, 1, 1, 0), datetime(2026, 3, 1, 12, 30)),
    ]


# --- defaults --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "severity"),
    [
        ("component_load", "info"),
        ("page_view", "info"),
        ("api_call", "info"),
        ("animation_play", "debug"),
        ("animation_loop", "debug"),
        ("input_change", "debug"),
        ("warning", "warning"),
        ("error", "error"),
        ("crash", "error"),
        ("my_custom_type", "info"),
    ],
)
def test_severity_defaults_to_the_spec_type_list(app: App, event_type: str, severity: str) -> None:
    app.ingestor.ingest([{"event_type": event_type}])

    assert app.store.fetch("SELECT severity FROM events") == [(severity,)]


def test_an_explicit_severity_wins_over_the_default(app: App) -> None:
    app.ingestor.ingest([ev("c", event_type="crash", severity="critical"), ev("d", severity="warning")])

    assert app.store.fetch("SELECT severity FROM events ORDER BY seq") == [("critical",), ("warning",)]


def test_batch_level_service_and_version_fill_only_the_missing_ones(app: App) -> None:
    batch = [
        ev("none"),
        ev("own-service", service="cli"),
        ev("own-version", service_version="0.9.0"),
        ev("own-both", service="sdk", service_version="3.0.0"),
    ]

    app.ingestor.ingest(batch, service="web", service_version="1.2.0")

    assert app.store.fetch("SELECT event_id, service, service_version FROM events ORDER BY seq") == [
        ("none", "web", "1.2.0"),
        ("own-service", "cli", "1.2.0"),
        ("own-version", "web", "0.9.0"),
        ("own-both", "sdk", "3.0.0"),
    ]


# --- privacy pipeline, as stored -------------------------------------------------------------------


def test_an_event_marked_do_not_track_is_counted_and_not_stored(app: App) -> None:
    report = app.ingestor.ingest([ev("dnt", do_not_track=True), ev("kept", do_not_track=False), ev("plain")])

    assert (report.accepted, report.dropped_dnt) == (2, 1)
    assert ids(app) == ["kept", "plain"]


def test_a_batch_marked_do_not_track_is_counted_whole_and_nothing_is_stored(app: App) -> None:
    report = app.ingestor.ingest([ev("a"), ev("b"), {"event_type": "Invalid"}], do_not_track=True)

    assert (report.accepted, report.rejected, report.dropped_dnt) == (0, 0, 3)
    assert count(app) == 0


def test_do_not_track_is_ignored_when_switched_off() -> None:
    app = make_app(honor_dnt=False)
    try:
        event_report = app.ingestor.ingest([ev("a", do_not_track=True)])
        batch_report = app.ingestor.ingest([ev("b")], do_not_track=True)

        assert (event_report.accepted, batch_report.accepted) == (1, 1)
        assert ids(app) == ["a", "b"]
    finally:
        app.store.close()


def test_sampling_keeps_or_drops_whole_users_and_counts_what_it_drops() -> None:
    app = make_app(sample_rate=0.5)
    try:
        users = [f"user-{u}" for u in range(40)]
        batch = [ev(f"{u}-{i}", user_id=u) for i in range(5) for u in users]

        report = app.ingestor.ingest(batch)
        per_user = dict(app.store.fetch("SELECT user_id, count(*) FROM events GROUP BY user_id"))

        assert set(per_user.values()) == {5}
        assert report.accepted == 5 * len(per_user)
        assert report.sampled_out == 5 * (40 - len(per_user))
        assert 0 < len(per_user) < 40
        # the decision is per user, so a later batch keeps exactly the same users
        again = app.ingestor.ingest([ev(f"{u}-later", user_id=u) for u in users])
        assert again.accepted == len(per_user)
        assert dict(app.store.fetch("SELECT user_id, count(*) FROM events GROUP BY user_id")).keys() == (
            per_user.keys()
        )
    finally:
        app.store.close()


def test_sampling_applies_to_anonymous_events_too_keyed_on_their_session_or_event() -> None:
    app = make_app(sample_rate=0.5)
    try:
        by_session = [ev(f"s-{i}", session_id=f"sess-{i % 20}") for i in range(100)]
        without_ids = [{"event_type": "page_view"} for _ in range(200)]

        session_report = app.ingestor.ingest(by_session)
        per_session = dict(app.store.fetch("SELECT session_id, count(*) FROM events GROUP BY session_id"))
        anonymous_report = app.ingestor.ingest(without_ids)

        assert set(per_session.values()) == {5}
        assert session_report.sampled_out == 100 - 5 * len(per_session)
        # no user, no session, no event_id: the generated id decides, so some are dropped
        assert anonymous_report.accepted + anonymous_report.sampled_out == 200
        assert 0 < anonymous_report.sampled_out < 200
    finally:
        app.store.close()


def test_user_ids_are_stored_as_a_keyed_16_hex_hash_the_same_for_the_same_raw_id(app: App) -> None:
    app.ingestor.ingest([ev("1", user_id="alice"), ev("2", user_id="bob")])
    app.ingestor.ingest([ev("3", user_id="alice")])

    assert app.store.fetch("SELECT event_id, user_id FROM events ORDER BY seq") == [
        ("1", ALICE),
        ("2", BOB),
        ("3", ALICE),
    ]


def test_scrubbed_values_and_redacted_paths_are_stored_and_the_ip_never_is(app: App) -> None:
    raw = ev(
        "p",
        user_id="alice@example.com",
        ip="203.0.113.9",
        name="sent to bob@example.com",
        page="/profile/abc-123-def-456?tab=settings&userId=789",
        properties={"password": "hunter2", "note": "from 198.51.100.7", "plan": "pro"},
    )

    report = app.ingestor.ingest([raw])
    row = app.store.fetch_dicts("SELECT * FROM events")[0]

    assert report.redactions == 5
    assert (row["name"], row["page"], row["properties"]) == (
        "sent to [redacted:email]",
        "/profile/[id]",
        '{"note":"from [redacted:ipv4]","plan":"pro"}',
    )
    assert row["redacted_paths"] == ["properties.password", "properties.note", "name", "page", "ip"]
    text = repr(row)
    for secret in (
        "203.0.113.9",
        "198.51.100.7",
        "hunter2",
        "alice@example.com",
        "bob@example.com",
        "userId",
    ):
        assert secret not in text


def test_the_actor_is_the_user_hash_else_the_session_else_the_event(app: App) -> None:
    app.ingestor.ingest(
        [
            ev("u", user_id="alice"),
            ev("us", user_id="bob", session_id="sess-1"),
            ev("s", session_id="sess-2"),
            ev("e"),
        ]
    )

    # a user's key is the 64 bits of its hash; a session's or an event's, 8 bytes of BLAKE2b
    def digest(text: str) -> int:
        return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")

    rows = app.store.fetch("SELECT event_id, actor, session_key, epoch_us(ts) FROM events ORDER BY seq")
    # a derived session's key: the actor's key XOR the session's first timestamp (µs)
    assert [r[:3] for r in rows] == [
        ("u", int(ALICE, 16), int(ALICE, 16) ^ rows[0][3]),
        ("us", int(BOB, 16), digest("x:sess-1")),
        ("s", digest("s:sess-2"), digest("x:sess-2")),
        ("e", digest("e:e"), digest("e:e") ^ rows[3][3]),
    ]


# --- limits and durability -------------------------------------------------------------------------


def test_a_batch_over_max_batch_events_is_refused_naming_the_limit() -> None:
    app = make_app(max_batch_events=3)
    try:
        assert app.ingestor.ingest([ev(f"ok{i}") for i in range(3)]).accepted == 3
        with pytest.raises(InvalidArgument) as info:
            app.ingestor.ingest([ev(f"x{i}") for i in range(4)])

        assert str(info.value) == (
            "batch of 4 events exceeds the limit of 3 per call; split it into several calls "
            "(or use `telemetry-mcp import FILE` for bulk loads)"
        )
        assert count(app) == 3
    finally:
        app.store.close()


def test_accepted_events_are_committed_before_ingest_returns(tmp_path: Path) -> None:
    settings = load_settings({"db": str(tmp_path / "c.duckdb"), "threads": 2, "salt": SALT}, env={})
    store = Store(settings)
    report = Ingestor(store).ingest([ev("a"), ev("b", user_id="alice")])
    store.close()

    with Store(settings) as reopened:
        rows = reopened.fetch("SELECT event_id, user_id FROM events ORDER BY seq")

    assert report.accepted == 2
    assert rows == [("a", None), ("b", ALICE)]


# --- the counts always add up ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def sampled_app() -> Iterator[App]:
    app = make_app(sample_rate=0.5)
    yield app
    app.store.close()


_batches = itertools.count()
EVENTS = st.one_of(
    st.fixed_dictionaries(
        {"event_id": st.sampled_from(["a", "b", "c", "d"]), "event_type": st.sampled_from(["x", "crash"])},
        optional={
            "user_id": st.sampled_from(["alice", "bob", "carol", "dave", "erin"]),
            "session_id": st.sampled_from(["s1", "s2"]),
            "do_not_track": st.booleans(),
            "duration_ms": st.floats(min_value=-5, max_value=5) | st.booleans(),
            "ip": st.just("10.0.0.1"),
            "properties": st.dictionaries(st.sampled_from(["token", "note", "page"]), st.text(max_size=10)),
        },
    ),
    st.fixed_dictionaries(
        {"event_type": st.sampled_from(["BAD", "ok", ""])}, optional={"color": st.just("red")}
    ),
    st.none() | st.integers() | st.text(max_size=5) | st.lists(st.integers(), max_size=2),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(EVENTS, min_size=1, max_size=30))
def test_every_event_of_a_batch_is_accounted_for_exactly_once(sampled_app: App, batch: list[Any]) -> None:
    # a fresh id space per example, so that only duplicates within this batch are duplicates
    prefix = f"{next(_batches)}-"
    batch = [
        {**e, "event_id": prefix + e["event_id"]} if isinstance(e, dict) and "event_id" in e else e
        for e in batch
    ]
    before = count(sampled_app)

    report = sampled_app.ingestor.ingest(batch)

    assert (
        report.accepted + report.rejected + report.duplicates + report.dropped_dnt + report.sampled_out
        == len(batch)
    )
    assert count(sampled_app) - before == report.accepted
    assert sorted(i for i, _ in report.errors) == sorted(set(i for i, _ in report.errors))
    assert len(report.errors) == report.rejected
