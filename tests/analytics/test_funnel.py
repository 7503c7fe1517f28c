"""Funnels (SPEC 4.4, 5): hand-built event sets, expected step tables written out."""

from __future__ import annotations

from typing import Any

import pytest

from helpers import load
from telemetry_mcp.analytics.behavior import BehaviorQuery
from telemetry_mcp.analytics.funnel import FunnelResult, run
from telemetry_mcp.errors import InvalidArgument
from telemetry_mcp.server.app import App

DAY = {"since": "2026-03-02", "until": "2026-03-03"}
VIEW_CLICK = [{"event_type": "page_view"}, {"event_type": "user_interaction", "name": "click"}]
VIEW_CLICK_BUY = [*VIEW_CLICK, {"event_type": "feature_used", "name": "buy"}]
Row = tuple[int, float, float, int, float | None, float | None]


def ev(user: str | None, time: str, event_type: str = "page_view", **extra: Any) -> dict[str, Any]:
    e = {"event_type": event_type, "timestamp": f"2026-03-02T{time}Z", **extra}
    if user:
        e["user_id"] = user
    return e


def click(user: str | None, time: str, **extra: Any) -> dict[str, Any]:
    return ev(user, time, "user_interaction", name="click", **extra)


def buy(user: str | None, time: str, **extra: Any) -> dict[str, Any]:
    return ev(user, time, "feature_used", name="buy", **extra)


def noise(user: str | None, time: str, **extra: Any) -> dict[str, Any]:
    return ev(user, time, "warning", name="noise", **extra)


def funnel(app: App, steps: list[dict[str, Any]] = VIEW_CLICK, **args: Any) -> FunnelResult:
    return run(app.store, BehaviorQuery(analysis="funnel", steps=steps, **{**DAY, **args}))


def rows(result: FunnelResult) -> list[Row]:
    """(users, conversion_from_start, conversion_from_previous, dropoff, avg s, median s) per step."""
    return [
        (
            s.users,
            s.conversion_from_start,
            s.conversion_from_previous,
            s.dropoff,
            s.avg_seconds_to_convert,
            s.median_seconds_to_convert,
        )
        for s in result.steps
    ]


def test_a_user_who_repeats_step_0_counts_once_at_the_attempt_that_converts(app: App) -> None:
    load(app, [ev("u1", "10:00:00"), ev("u1", "12:00:00"), click("u1", "12:30:00")])

    result = funnel(app, conversion_window="1h")

    assert rows(result) == [
        (1, 1.0, 1.0, 0, None, None),
        (1, 1.0, 1.0, 0, 1800.0, 1800.0),  # from the 12:00 attempt; the 10:00 one is out of its window
    ]
    assert result.overall_conversion == 1.0


def test_a_step_exactly_at_the_window_boundary_converts_and_one_second_later_does_not(app: App) -> None:
    load(
        app,
        [ev("in", "10:00:00"), click("in", "11:00:00"), ev("out", "10:00:00"), click("out", "11:00:01")],
    )

    result = funnel(app, conversion_window="1h")

    assert rows(result) == [(2, 1.0, 1.0, 0, None, None), (1, 0.5, 0.5, 1, 3600.0, 3600.0)]


def test_equal_timestamps_convert_whatever_the_ingest_order(app: App) -> None:
    load(app, [ev("a", "10:00:00"), click("a", "10:00:00"), click("b", "10:00:00"), ev("b", "10:00:00")])

    result = funnel(app)

    assert rows(result) == [(2, 1.0, 1.0, 0, None, None), (2, 1.0, 1.0, 0, 0.0, 0.0)]


def test_one_event_never_serves_as_two_steps(app: App) -> None:
    load(app, [ev("once", "10:00:00"), ev("twice", "10:00:00"), ev("twice", "10:00:00")])

    result = funnel(app, steps=[{"event_type": "page_view"}, {"event_type": "page_view"}])

    assert rows(result) == [(2, 1.0, 1.0, 0, None, None), (1, 0.5, 0.5, 1, 0.0, 0.0)]


def test_a_strict_funnel_is_broken_by_any_event_in_between(app: App) -> None:
    load(
        app,
        [
            ev("broken", "10:00:00"),
            noise("broken", "10:01:00"),
            click("broken", "10:02:00"),
            ev("direct", "10:00:00"),
            click("direct", "10:05:00"),
        ],
    )

    strict = funnel(app, order="strict")
    ordered = funnel(app, order="ordered")

    assert rows(strict) == [(2, 1.0, 1.0, 0, None, None), (1, 0.5, 0.5, 1, 300.0, 300.0)]
    assert rows(ordered) == [(2, 1.0, 1.0, 0, None, None), (2, 1.0, 1.0, 0, 210.0, 210.0)]


def test_an_unordered_funnel_counts_how_many_distinct_steps_each_user_completed(app: App) -> None:
    load(
        app,
        [
            buy("all3", "10:00:00"),
            click("all3", "10:10:00"),
            ev("all3", "10:30:00"),
            click("one", "10:00:00"),
            ev("two", "10:00:00"),
            buy("two", "11:00:00"),
        ],
    )

    unordered = funnel(app, steps=VIEW_CLICK_BUY, order="unordered")
    ordered = funnel(app, steps=VIEW_CLICK_BUY, order="ordered")

    assert [s.label for s in unordered.steps] == [
        "completed 1 step",
        "completed 2 steps",
        "completed 3 steps",
    ]
    assert rows(unordered) == [
        (3, 1.0, 1.0, 0, None, None),
        (2, 0.6667, 0.6667, 1, 2100.0, 2100.0),  # all3 600 s, two 3600 s
        (1, 0.3333, 0.5, 1, 1200.0, 1200.0),  # all3: 10:10 → 10:30
    ]
    assert rows(ordered) == [
        (2, 1.0, 1.0, 0, None, None),
        (0, 0.0, 0.0, 2, None, None),
        (0, 0.0, 0.0, 0, None, None),
    ]


def test_an_exclusion_discards_that_attempt_but_a_later_clean_attempt_still_counts(app: App) -> None:
    load(
        app,
        [
            ev("u1", "10:00:00"),
            noise("u1", "10:10:00"),
            click("u1", "10:20:00"),  # the 10:00 attempt saw noise between its steps: discarded
            ev("u1", "11:00:00"),
            click("u1", "11:05:00"),  # clean
            ev("u2", "10:00:00"),
            noise("u2", "10:05:00"),  # before the window closes, click never came: discarded
        ],
    )
    exclusion = {"event": {"event_type": "warning", "name": "noise"}, "from_step": 0, "to_step": 1}

    plain = funnel(app, conversion_window="1h")
    excluded = funnel(app, conversion_window="1h", exclusions=[exclusion])

    assert rows(plain) == [(2, 1.0, 1.0, 0, None, None), (1, 0.5, 0.5, 1, 1200.0, 1200.0)]
    assert rows(excluded) == [(1, 1.0, 1.0, 0, None, None), (1, 1.0, 1.0, 0, 300.0, 300.0)]


def test_an_exclusion_only_applies_between_its_own_steps(app: App) -> None:
    load(app, [ev("u1", "10:00:00"), click("u1", "10:10:00"), noise("u1", "10:15:00"), buy("u1", "10:20:00")])
    between_0_and_1 = {"event": {"event_type": "warning"}, "from_step": 0, "to_step": 1}
    between_1_and_2 = {"event": {"event_type": "warning"}, "from_step": 1, "to_step": 2}

    kept = funnel(app, steps=VIEW_CLICK_BUY, exclusions=[between_0_and_1])
    dropped = funnel(app, steps=VIEW_CLICK_BUY, exclusions=[between_1_and_2])

    assert [s.users for s in kept.steps] == [1, 1, 1]
    assert [s.users for s in dropped.steps] == [0, 0, 0]


def test_by_session_a_funnel_must_finish_inside_one_session(app: App) -> None:
    load(
        app,
        [
            ev("u1", "10:00:00", session_id="s1"),
            click("u1", "10:10:00", session_id="s2"),
            ev("u2", "10:00:00"),
            click("u2", "11:00:00"),  # 60 min later: a new derived session (timeout 30 min)
            ev("u3", "10:00:00"),
            click("u3", "10:20:00"),
        ],
    )

    by_user = funnel(app, by="user")
    by_session = funnel(app, by="session")

    assert rows(by_user) == [(3, 1.0, 1.0, 0, None, None), (3, 1.0, 1.0, 0, 1800.0, 1200.0)]
    assert rows(by_session) == [(3, 1.0, 1.0, 0, None, None), (1, 0.3333, 0.3333, 2, 1200.0, 1200.0)]
    assert "sessions" in by_session.summary


def test_anonymous_events_are_their_sessions_actor(app: App) -> None:
    load(app, [ev(None, "10:00:00", session_id="anon"), click(None, "10:01:00", session_id="anon")])

    assert [s.users for s in funnel(app).steps] == [1, 1]


def test_times_to_convert_are_from_the_previous_step_with_an_interpolated_median(app: App) -> None:
    load(
        app,
        [
            ev("slow", "08:00:00"),
            click("slow", "10:00:00"),
            buy("slow", "10:01:00"),
            ev("fast", "08:00:00"),
            click("fast", "09:00:00"),
        ],
    )

    result = funnel(app, steps=VIEW_CLICK_BUY)

    assert rows(result) == [
        (2, 1.0, 1.0, 0, None, None),
        (2, 1.0, 1.0, 0, 5400.0, 5400.0),  # 7200 s and 3600 s
        (1, 0.5, 0.5, 1, 60.0, 60.0),
    ]
    assert result.summary.startswith("50.0 % of 2 users converted through 3 steps")
    assert "Biggest drop-off: step 1 'click' → step 2 'buy', 50.0 % lost (1 user)." in result.summary


BREAKDOWN_EVENTS = [
    ev("u1", "10:00:00", platform="web"),  # not converted within 1h
    ev("u1", "12:00:00", platform="ios"),
    click("u1", "12:10:00"),  # the 12:00 (ios) attempt goes further: u1 counts under ios
    ev("u2", "10:00:00"),
    click("u2", "10:05:00"),  # no platform on step 0: null
    ev("u3", "10:00:00", platform="web"),
    ev("u4", "10:00:00", platform="web"),
    click("u4", "10:05:00"),
    ev("u4", "10:30:00", platform="ios"),  # a later attempt, not further: u4 stays web
]


def test_breakdown_attributes_each_user_to_the_step_0_value_of_its_best_attempt(app: App) -> None:
    load(app, BREAKDOWN_EVENTS)

    result = funnel(app, conversion_window="1h", breakdown_by="platform")

    assert result.breakdown is not None
    assert [(b.value, b.other_values, rows_of(b.steps)) for b in result.breakdown] == [
        ("web", None, [(2, 1.0, 1.0, 0, None, None), (1, 0.5, 0.5, 1, 300.0, 300.0)]),
        ("ios", None, [(1, 1.0, 1.0, 0, None, None), (1, 1.0, 1.0, 0, 600.0, 600.0)]),
        (None, None, [(1, 1.0, 1.0, 0, None, None), (1, 1.0, 1.0, 0, 300.0, 300.0)]),
    ]
    assert rows(result) == [(4, 1.0, 1.0, 0, None, None), (3, 0.75, 0.75, 1, 400.0, 300.0)]
    assert result.truncated is False


def test_breakdown_values_beyond_the_limit_are_merged_into_other(app: App) -> None:
    load(app, BREAKDOWN_EVENTS)

    result = funnel(app, conversion_window="1h", breakdown_by="platform", limit=1)

    assert result.breakdown is not None
    assert [(b.value, b.other_values, rows_of(b.steps)) for b in result.breakdown] == [
        ("web", None, [(2, 1.0, 1.0, 0, None, None), (1, 0.5, 0.5, 1, 300.0, 300.0)]),
        ("other", 2, [(2, 1.0, 1.0, 0, None, None), (2, 1.0, 1.0, 0, 450.0, 450.0)]),
    ]
    assert result.truncated is True
    assert "2 smaller values grouped as 'other'" in result.summary


def test_breakdown_by_a_property_reads_the_step_0_event(app: App) -> None:
    load(
        app,
        [
            ev("u1", "10:00:00", properties={"plan": "pro"}),
            click("u1", "10:01:00", properties={"plan": "free"}),
            ev("u2", "10:00:00", properties={"plan": "free"}),
        ],
    )

    result = funnel(app, breakdown_by="properties.plan")

    assert result.breakdown is not None
    assert [(b.value, [s.users for s in b.steps]) for b in result.breakdown] == [
        ("free", [1, 0]),
        ("pro", [1, 1]),
    ]


def test_filters_narrow_every_step(app: App) -> None:
    load(
        app,
        [
            ev("u1", "10:00:00", platform="web"),
            click("u1", "10:01:00", platform="ios"),
            ev("u2", "10:00:00", platform="web"),
            click("u2", "10:01:00", platform="web"),
        ],
    )

    result = funnel(app, filters=[{"field": "platform", "op": "eq", "value": "web"}])

    assert [s.users for s in result.steps] == [2, 1]


def test_step_filters_name_and_component_narrow_only_their_step(app: App) -> None:
    load(
        app,
        [
            ev("u1", "10:00:00", page="/checkout"),
            click("u1", "10:01:00", component="PayButton"),
            ev("u2", "10:00:00", page="/home"),
            click("u2", "10:01:00", component="PayButton"),
            ev("u3", "10:00:00", page="/checkout"),
            click("u3", "10:01:00", component="Other"),
        ],
    )
    steps = [
        {"event_type": "page_view", "filters": [{"field": "page", "op": "eq", "value": "/checkout"}]},
        {"event_type": "user_interaction", "name": "click", "component": "PayButton"},
    ]

    result = funnel(app, steps=steps)

    assert [(s.label, s.users) for s in result.steps] == [("page_view", 2), ("click", 1)]


def test_only_step_0_events_inside_the_range_start_attempts_later_steps_may_follow_it(app: App) -> None:
    load(
        app,
        [
            ev("before", "00:00:00"),
            click("before", "10:00:00"),
            ev("edge", "23:59:00"),
            {
                "event_type": "user_interaction",
                "name": "click",
                "user_id": "edge",
                "timestamp": "2026-03-03T00:30:00Z",
            },
        ],
    )

    result = funnel(app, since="2026-03-02T01:00:00Z", until="2026-03-03")

    assert [s.users for s in result.steps] == [1, 1]


def test_an_empty_funnel_says_so(app: App) -> None:
    load(app, [ev("u1", "10:00:00"), click("u1", "10:00:00")])

    result = funnel(app, since="2026-03-05", until="2026-03-06")

    assert rows(result) == [(0, 0.0, 0.0, 0, None, None), (0, 0.0, 0.0, 0, None, None)]
    assert result.overall_conversion == 0.0
    assert result.summary.startswith("No users did step 0 'page_view'")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"steps": [{"event_type": "page_view"}]}, "needs `steps`: 2 to 10"),
        ({"steps": None}, "needs `steps`: 2 to 10"),
        ({"conversion_window": "2 fortnights"}, "is not a duration"),
        ({"conversion_window": "400d"}, "out of bounds"),
        (
            {"exclusions": [{"event": {"event_type": "warning"}, "from_step": 1, "to_step": 1}]},
            "from_step < to_step",
        ),
        (
            {
                "order": "unordered",
                "steps": VIEW_CLICK_BUY,
                "exclusions": [{"event": {"event_type": "warning"}, "from_step": 0, "to_step": 1}],
            },
            "only take exclusions over the whole funnel",
        ),
        ({"breakdown_by": "name; DROP TABLE events"}, 'unknown field "name; DROP TABLE events"'),
        ({"breakdown_by": "properties.a'b"}, "is not allowed"),
        ({"filters": [{"field": "1=1 --", "op": "eq", "value": "x"}]}, "unknown field"),
        ({"since": "2026-03-03", "until": "2026-03-02"}, "empty range"),
    ],
)
def test_bad_arguments_are_refused_with_what_is_accepted(
    app: App, args: dict[str, Any], message: str
) -> None:
    load(app, [ev("u1", "10:00:00"), click("u1", "10:01:00"), noise("u1", "10:02:00"), buy("u1", "10:03:00")])

    with pytest.raises(InvalidArgument) as caught:
        funnel(app, **args)

    assert message in str(caught.value)


def test_sql_in_filter_values_is_only_ever_a_value(app: App) -> None:
    load(app, [ev("u1", "10:00:00"), click("u1", "10:01:00")])

    result = funnel(app, filters=[{"field": "platform", "op": "ne", "value": "x'); DROP TABLE events; --"}])

    assert [s.users for s in result.steps] == [1, 1]
    assert [s.users for s in funnel(app).steps] == [1, 1]


def rows_of(steps: Any) -> list[Row]:
    return rows(FunnelResult(steps=steps, overall_conversion=0.0, summary="", truncated=False))


def test_an_exclusion_written_as_a_plain_string_means_that_event_type(app: App) -> None:
    load(app, [ev("u1", "10:00:00"), click("u1", "10:10:00"), noise("u1", "10:15:00"), buy("u1", "10:20:00")])
    shorthand = {"event": "warning", "from_step": 1, "to_step": 2}

    dropped = funnel(app, steps=VIEW_CLICK_BUY, exclusions=[shorthand])

    assert [s.users for s in dropped.steps] == [0, 0, 0]
    assert (
        dropped.model_dump()
        == funnel(
            app, steps=VIEW_CLICK_BUY, exclusions=[{**shorthand, "event": {"event_type": "warning"}}]
        ).model_dump()
    )


def test_a_step_of_a_never_seen_event_type_answers_zero_there_with_a_warning(app: App) -> None:
    load(app, [ev("u1", "10:00:00"), click("u1", "10:10:00"), ev("u2", "10:00:00")])
    steps = [*VIEW_CLICK, {"event_type": "step_three"}]

    result = funnel(app, steps=steps)

    assert rows(result) == [
        (2, 1.0, 1.0, 0, None, None),
        (1, 0.5, 0.5, 1, 600.0, 600.0),
        (0, 0.0, 0.0, 1, None, None),
    ]
    assert result.overall_conversion == 0.0
    assert result.warnings == ['step 2 event_type "step_three" matches no stored event']
    assert result.summary.startswith('Warning: step 2 event_type "step_three" matches no stored event. ')


def test_a_misspelt_step_gets_a_did_you_mean_in_the_warning_and_the_summary(app: App) -> None:
    load(app, [ev("u1", "10:00:00"), click("u1", "10:10:00")])

    result = funnel(app, steps=[{"event_type": "page_veiw"}, VIEW_CLICK[1]])

    assert [s.users for s in result.steps] == [0, 0]
    expected = 'step 0 event_type "page_veiw" matches no stored event — did you mean "page_view"?'
    assert result.warnings == [expected]
    assert result.summary.startswith(f"Warning: {expected} ")
