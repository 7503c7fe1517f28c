"""Journeys (SPEC 4.4 / 5): session paths, collapsed repeats, anchors, transitions and exits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from helpers import load, load_sample
from telemetry_mcp.analytics.behavior import BehaviorQuery
from telemetry_mcp.analytics.journeys import JourneysResult, run
from telemetry_mcp.config import load_settings
from telemetry_mcp.server.app import App, open_app

DAY = {"since": "2026-10-05", "until": "2026-10-06"}


def ev(user: str, time: str, event_type: str, **extra: Any) -> dict[str, Any]:
    return {"event_type": event_type, "user_id": user, "timestamp": f"2026-10-05T{time}:00Z", **extra}


def journeys(app: App, **args: Any) -> JourneysResult:
    return run(app.store, BehaviorQuery(analysis="journeys", **{**DAY, **args}))


def paths(result: JourneysResult) -> list[tuple[list[str], int]]:
    return [(p.nodes, p.count) for p in result.paths]


def transitions(result: JourneysResult) -> list[tuple[int, str, str, int]]:
    return [(t.step, t.source, t.target, t.count) for t in result.transitions]


def exits(result: JourneysResult) -> list[tuple[str, int]]:
    return [(e.node, e.count) for e in result.exits]


SESSIONS = [
    # j1: derived sessions; a repeat, a 29-minute gap (same session), a 31-minute gap (new session).
    ev("j1", "10:00", "page_view"),
    ev("j1", "10:01", "page_view"),
    ev("j1", "10:02", "component_load"),
    ev("j1", "10:31", "feature_used"),
    ev("j1", "11:02", "page_view"),
    ev("j1", "11:03", "feature_used"),
    # j2: an explicit session is never split by gaps.
    ev("j2", "10:00", "page_view", session_id="s-1"),
    ev("j2", "10:05", "component_load", session_id="s-1"),
    ev("j2", "12:00", "feature_used", session_id="s-1"),
    ev("j2", "12:01", "feature_used", session_id="s-1"),
    ev("j3", "10:00", "page_view"),
    ev("j3", "10:10", "error"),
    # j4: equal timestamps keep ingest order.
    ev("j4", "10:00", "page_view"),
    ev("j4", "10:00", "component_load"),
]


def test_paths_collapse_repeats_and_rank_by_count_then_nodes(app: App) -> None:
    load(app, SESSIONS)

    result = journeys(app)

    assert paths(result) == [
        (["page_view", "component_load", "feature_used"], 2),
        (["page_view", "component_load"], 1),
        (["page_view", "error"], 1),
        (["page_view", "feature_used"], 1),
    ]
    assert result.journey_sessions == 5
    assert result.journey_distinct_paths == 4
    assert result.truncated is False
    assert result.summary.startswith(
        "Top path (2 of 5 sessions, 40.0 %): page_view → component_load → feature_used. 4 distinct paths;"
    )


def test_transitions_count_session_transitions_at_the_1_based_step_of_their_source(app: App) -> None:
    load(app, SESSIONS)

    result = journeys(app)

    assert transitions(result) == [
        (1, "page_view", "component_load", 3),
        (1, "page_view", "error", 1),
        (1, "page_view", "feature_used", 1),
        (2, "component_load", "feature_used", 2),
    ]


def test_exits_count_the_last_node_of_each_session_path(app: App) -> None:
    load(app, SESSIONS)

    assert exits(journeys(app)) == [("feature_used", 3), ("component_load", 1), ("error", 1)]


def test_derived_sessions_split_at_a_31_minute_gap_and_not_at_29(app: App) -> None:
    load(
        app,
        [
            ev("g", "09:00", "page_view"),
            ev("g", "09:29", "component_load"),  # 29 min: same session
            ev("g", "10:00", "feature_used"),  # 31 min: new session
        ],
    )

    result = journeys(app)

    assert paths(result) == [(["feature_used"], 1), (["page_view", "component_load"], 1)]
    assert exits(result) == [("component_load", 1), ("feature_used", 1)]


def test_a_node_that_comes_back_later_is_a_new_step(app: App) -> None:
    load(
        app,
        [
            ev("r", "09:00", "user_interaction", component="Button"),
            ev("r", "09:01", "user_interaction", component="Button"),
            ev("r", "09:02", "page_view"),  # no component: skipped, Button repeats collapse across it
            ev("r", "09:03", "user_interaction", component="Button"),
            ev("r", "09:04", "user_interaction", component="Modal"),
            ev("r", "09:05", "user_interaction", component="Button"),
            ev("r", "09:06", "user_interaction", component="Modal"),
        ],
    )

    result = journeys(app, node="component")

    assert paths(result) == [(["Button", "Modal", "Button", "Modal"], 1)]
    assert transitions(result) == [
        (1, "Button", "Modal", 1),
        (2, "Modal", "Button", 1),
        (3, "Button", "Modal", 1),
    ]


def test_start_at_anchors_paths_at_the_first_occurrence_and_drops_sessions_without_it(app: App) -> None:
    load(app, SESSIONS)

    result = journeys(app, start_at="component_load")

    assert paths(result) == [(["component_load", "feature_used"], 2), (["component_load"], 1)]
    assert transitions(result) == [(1, "component_load", "feature_used", 2)]
    assert result.journey_sessions == 3


def test_end_at_cuts_paths_after_the_first_occurrence_and_drops_sessions_without_it(app: App) -> None:
    load(app, [*SESSIONS, ev("j5", "15:00", "feature_used"), ev("j5", "15:01", "page_view")])

    result = journeys(app, end_at="feature_used")

    assert paths(result) == [
        (["page_view", "component_load", "feature_used"], 2),
        (["feature_used"], 1),
        (["page_view", "feature_used"], 1),
    ]
    assert exits(result) == [("feature_used", 4)]


def test_max_steps_keeps_the_first_steps_or_with_end_at_alone_the_last_ones(app: App) -> None:
    load(app, SESSIONS)

    head = journeys(app, max_steps=2)
    tail = journeys(app, max_steps=2, end_at="feature_used")
    both = journeys(app, max_steps=2, start_at="page_view", end_at="feature_used")

    assert paths(head) == [
        (["page_view", "component_load"], 3),
        (["page_view", "error"], 1),
        (["page_view", "feature_used"], 1),
    ]
    assert paths(tail) == [(["component_load", "feature_used"], 2), (["page_view", "feature_used"], 1)]
    assert transitions(tail) == [
        (1, "component_load", "feature_used", 2),
        (1, "page_view", "feature_used", 1),
    ]
    assert paths(both) == [(["page_view", "component_load"], 2), (["page_view", "feature_used"], 1)]


def test_node_page_uses_the_anonymized_page_and_skips_events_without_one(app: App) -> None:
    load(
        app,
        [
            ev("p", "09:00", "page_view", page="/home"),
            ev("p", "09:01", "component_load"),
            ev("p", "09:02", "page_view", page="/orders/12345"),
            ev("p", "09:03", "page_view", page="/orders/67890"),
        ],
    )

    result = journeys(app, node="page")

    assert paths(result) == [(["/home", "/orders/[id]"], 1)]


def test_lists_are_cut_at_limit_and_say_so(app: App) -> None:
    load(app, SESSIONS)

    result = journeys(app, limit=1)

    assert paths(result) == [(["page_view", "component_load", "feature_used"], 2)]
    assert transitions(result) == [(1, "page_view", "component_load", 3)]
    assert exits(result) == [("feature_used", 3)]
    assert result.truncated is True
    assert result.summary.endswith("Lists cut at limit=1.")


def test_an_unseen_start_at_is_answered_with_no_paths_and_a_warning_with_a_suggestion(app: App) -> None:
    load(app, SESSIONS)

    result = journeys(app, start_at="componen_load")

    assert (result.paths, result.transitions, result.exits) == ([], [], [])
    assert result.warnings == [
        'start_at event_type "componen_load" matches no stored event — did you mean "component_load"?'
    ]
    assert result.summary.startswith(
        'Warning: start_at event_type "componen_load" matches no stored event — did you mean "component_load"?. '
    )


def test_an_empty_range_says_no_sessions(app: App) -> None:
    load(app, SESSIONS)

    result = journeys(app, since="2026-10-01", until="2026-10-02", start_at="page_view")

    assert (result.paths, result.transitions, result.exits) == ([], [], [])
    assert result.summary == 'No sessions that start at "page_view" in the range.'


@pytest.fixture(scope="module")
def sample_app() -> Iterator[App]:
    """The fixture data set, loaded once for this module's read-only checks."""
    application = open_app(load_settings({"db": ":memory:", "threads": 2, "salt": "00" * 16}, env={}))
    load_sample(application)
    yield application
    application.store.close()


@pytest.mark.parametrize("node", ["event_type", "page"])
def test_the_sample_data_gives_consistent_paths_transitions_and_exits(sample_app: App, node: str) -> None:
    app = sample_app
    window = {"since": "2026-09-01", "until": "2026-11-01"}

    everything = journeys(app, node=node, limit=1000, max_steps=4, **window)
    top = journeys(app, node=node, max_steps=4, **window)

    assert everything.truncated is False
    assert everything.journey_sessions > 100
    assert sum(p.count for p in everything.paths) == everything.journey_sessions
    assert sum(e.count for e in everything.exits) == everything.journey_sessions
    assert len(everything.paths) == everything.journey_distinct_paths
    for p in everything.paths:
        assert 1 <= len(p.nodes) <= 4
        assert all(a != b for a, b in zip(p.nodes, p.nodes[1:], strict=False))
    # Transitions are exactly those of the paths, at the 1-based position of their source.
    expected: dict[tuple[int, str, str], int] = {}
    for p in everything.paths:
        for i, (a, b) in enumerate(zip(p.nodes, p.nodes[1:], strict=False), start=1):
            expected[(i, a, b)] = expected.get((i, a, b), 0) + p.count
    assert {(t.step, t.source, t.target): t.count for t in everything.transitions} == expected
    # The default limit shows the head of the same ranking.
    assert top.truncated is (everything.journey_distinct_paths > 20)
    assert [(p.nodes, p.count) for p in top.paths] == [(p.nodes, p.count) for p in everything.paths[:20]]
    assert top.summary.startswith(f"Top path ({everything.paths[0].count:,} of ")
