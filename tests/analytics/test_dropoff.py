"""Drop-off (SPEC 4.4): who stopped at each funnel step and what they did next instead."""

from __future__ import annotations

from typing import Any

import pytest

from helpers import load
from telemetry_mcp.analytics.behavior import BehaviorQuery
from telemetry_mcp.analytics.dropoff import DropoffResult, run
from telemetry_mcp.errors import InvalidArgument
from telemetry_mcp.server.app import App

DAY = {"since": "2026-03-02", "until": "2026-03-03"}
STEPS = [
    {"event_type": "page_view"},
    {"event_type": "user_interaction", "name": "add_payment"},
    {"event_type": "event_trigger", "name": "submit_order"},
]


def ev(user: str, time: str, event_type: str = "page_view", **extra: Any) -> dict[str, Any]:
    return {"event_type": event_type, "user_id": user, "timestamp": f"2026-03-02T{time}Z", **extra}


def add(user: str, time: str) -> dict[str, Any]:
    return ev(user, time, "user_interaction", name="add_payment")


def submit(user: str, time: str) -> dict[str, Any]:
    return ev(user, time, "event_trigger", name="submit_order")


# Every step's event_type must exist in the store: a user who never viewed a page makes sure they do.
KNOWN = [add("z", "00:00:00"), submit("z", "00:00:00")]


def dropoff(app: App, **args: Any) -> DropoffResult:
    return run(
        app.store,
        BehaviorQuery(analysis="dropoff", steps=STEPS, **{**DAY, "conversion_window": "1h", **args}),
    )


def table(result: DropoffResult) -> list[tuple[int, str, int, int, list[tuple[str, str | None, int, float]]]]:
    return [
        (
            d.index,
            d.label,
            d.stopped,
            d.no_next_event,
            [(n.event_type, n.name, n.users, n.share) for n in d.next_events],
        )
        for d in result.dropoff
    ]


EVENTS = [
    ev("u1", "10:00:00"),
    ev("u1", "10:01:00", "warning", name="slow"),  # stopped at step 0, then a warning
    ev("u2", "10:00:00"),  # stopped at step 0, nothing after
    ev("u3", "10:00:00"),
    add("u3", "10:01:00"),
    ev("u3", "10:02:00", "warning", name="card_declined"),  # stopped at step 1
    ev("u3", "10:03:00", "warning", name="slow"),  # not the first: ignored
    ev("u4", "10:00:00"),
    add("u4", "10:01:00"),
    submit("u4", "10:02:00"),  # converted
    ev("u5", "10:00:00"),
    ev("u5", "12:00:00", "warning", name="slow"),  # after the 1h window: no next event
    ev("u6", "10:00:00"),
    ev("u6", "10:00:30", "warning", name="slow"),
]


def test_each_step_lists_who_stopped_there_and_their_next_event(app: App) -> None:
    load(app, EVENTS)

    result = dropoff(app)

    assert table(result) == [
        (0, "page_view", 4, 2, [("warning", "slow", 2, 0.5)]),
        (1, "add_payment", 1, 0, [("warning", "card_declined", 1, 1.0)]),
    ]
    assert [(s.users, s.dropoff) for s in result.steps] == [(6, 0), (2, 4), (1, 1)]
    assert result.overall_conversion == 0.1667
    assert result.truncated is False
    assert result.summary.startswith(
        "Most users stop at step 0 'page_view': 4 (66.7 % of those who got there) never reached 'add_payment'. "
        "Their most common next event: warning slow (2, 50.0 %). 2 did nothing more within the window."
    )


def test_next_events_are_cut_at_the_limit_and_say_so(app: App) -> None:
    load(app, EVENTS)

    result = dropoff(app, limit=1)
    load(app, [ev("u7", "10:00:00"), ev("u7", "10:00:10", "component_load", name="other")])
    wider = dropoff(app, limit=1)

    assert table(result)[0][4] == [("warning", "slow", 2, 0.5)]
    assert result.truncated is False
    assert table(wider)[0] == (0, "page_view", 5, 2, [("warning", "slow", 2, 0.4)])
    assert wider.dropoff[0].truncated is True
    assert wider.truncated is True


def test_the_next_event_follows_the_last_step_reached_in_ts_then_ingest_order(app: App) -> None:
    load(
        app,
        [
            ev("u1", "10:00:00"),
            ev("u1", "10:00:00", "warning", name="same_time_after"),
            ev("u2", "10:00:00", "warning", name="same_time_before"),
            ev("u2", "10:00:00"),
            ev("u2", "10:05:00", "warning", name="later"),
            *KNOWN,
        ],
    )

    result = dropoff(app)

    assert table(result)[0] == (
        0,
        "page_view",
        2,
        0,
        [("warning", "later", 1, 0.5), ("warning", "same_time_after", 1, 0.5)],
    )


def test_by_session_the_next_event_stays_in_the_session(app: App) -> None:
    load(
        app,
        [
            ev("u1", "10:00:00", session_id="a"),
            ev("u1", "10:01:00", "warning", name="other_session", session_id="b"),
            *KNOWN,
        ],
    )

    by_user = dropoff(app)
    by_session = dropoff(app, by="session")

    assert table(by_user)[0] == (0, "page_view", 1, 0, [("warning", "other_session", 1, 1.0)])
    assert table(by_session)[0] == (0, "page_view", 1, 1, [])


def test_nobody_dropping_off_is_said_plainly(app: App) -> None:
    load(app, [ev("u1", "10:00:00"), add("u1", "10:01:00"), submit("u1", "10:02:00")])

    result = dropoff(app)

    assert table(result) == [(0, "page_view", 0, 0, []), (1, "add_payment", 0, 0, [])]
    assert result.summary == "Nobody dropped off: all 1 user completed the 3-step funnel."


def test_dropoff_needs_funnel_steps(app: App) -> None:
    with pytest.raises(InvalidArgument, match="analysis dropoff needs `steps`"):
        run(app.store, BehaviorQuery(analysis="dropoff", **DAY))
