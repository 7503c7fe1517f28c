"""Engagement (SPEC 4.4): DAU/WAU/MAU, stickiness, sessions and the active-days histogram."""

from __future__ import annotations

from typing import Any

from helpers import load
from telemetry_mcp.analytics.behavior import BehaviorQuery
from telemetry_mcp.analytics.engagement import EngagementResult, run
from telemetry_mcp.server.app import App

WEEK = {"since": "2026-10-05", "until": "2026-10-12"}  # Monday to Monday


def ev(user: str, ts: str, event_type: str = "page_view", **extra: Any) -> dict[str, Any]:
    return {"event_type": event_type, "user_id": user, "timestamp": ts, **extra}


def engagement(app: App, **args: Any) -> EngagementResult:
    return run(app.store, BehaviorQuery(analysis="engagement", **args))


def e1_day(day: str) -> list[dict[str, Any]]:
    return [
        ev("e1", f"{day}T10:00:00Z"),
        ev("e1", f"{day}T10:05:00Z", "user_interaction"),
        ev("e1", f"{day}T10:10:00Z", "component_load"),
    ]


HAND_BUILT_WEEK = [
    *e1_day("2026-10-05"),
    *e1_day("2026-10-06"),
    *e1_day("2026-10-07"),
    ev("e2", "2026-10-05T12:00:00Z"),
    ev("e3", "2026-10-09T09:00:00Z"),
    ev("e3", "2026-10-09T09:05:00Z", "command_executed"),
    ev("e3", "2026-10-09T12:00:00Z", "component_load"),
    # Active only before the range: in the rolling windows that reach back, never in DAU.
    ev("e4", "2026-09-30T10:00:00Z"),
]


def test_a_hand_built_week_gives_exact_engagement_figures(app: App) -> None:
    load(app, HAND_BUILT_WEEK)

    result = engagement(app, period="week", **WEEK)

    assert [r.model_dump() for r in result.engagement] == [
        {
            "period_start": "2026-10-05T00:00:00+00:00",
            "days": 7,
            "active_users": 3,
            "dau": 0.7143,  # (2 + 1 + 1 + 0 + 1 + 0 + 0) / 7
            "wau": 3,  # e1, e2, e3 in Oct 5..11
            "mau": 4,  # and e4 (Sep 30) in Sep 12..Oct 11
            "stickiness": 0.1786,
            "sessions": 6,  # e1 3 (one a day), e2 1, e3 2 (a 175-minute gap on Friday)
            "sessions_per_user": 2.0,
            "avg_session_seconds": 350.0,  # (600 * 3 + 0 + 300 + 0) / 6
            "events_per_session": 2.1667,  # 13 / 6
            "interactions_per_session": 0.6667,  # 3 user_interaction + 1 command_executed
        }
    ]
    assert [b.model_dump() for b in result.stickiness_histogram] == [
        {"active_days": 1, "users": 2, "share": 0.6667},
        {"active_days": 2, "users": 0, "share": 0.0},
        {"active_days": 3, "users": 1, "share": 0.3333},
    ]
    assert result.engagement_active_users == 3
    assert result.engagement_dau == 0.7143
    assert result.engagement_wau == 2.7143  # mean of the daily rolling counts 3 3 2 2 3 3 3
    assert result.engagement_mau == 3.4286  # 3 3 3 3 4 4 4
    assert result.engagement_stickiness == 0.2083  # (5/7) / (24/7)
    assert result.engagement_sessions == 6
    assert result.engagement_avg_session_seconds == 350.0
    assert result.truncated is False
    assert result.summary.startswith("DAU 0.7 (mean), WAU 2.7, MAU 3.4, stickiness 20.8 %; 3 active users")


def test_daily_rows_roll_wau_and_mau_over_the_trailing_7_and_30_days(app: App) -> None:
    load(app, HAND_BUILT_WEEK)

    result = engagement(app, period="day", **WEEK)

    assert [
        (r.period_start[:10], r.dau, r.wau, r.mau, r.stickiness, r.sessions) for r in result.engagement
    ] == [
        ("2026-10-05", 2.0, 3, 3, 0.6667, 2),  # e4's Sep 30 is inside Sep 29..Oct 5
        ("2026-10-06", 1.0, 3, 3, 0.3333, 1),  # ... and Sep 30..Oct 6
        ("2026-10-07", 1.0, 2, 3, 0.3333, 1),  # Oct 1..7 no longer holds it
        ("2026-10-08", 0.0, 2, 3, 0.0, 0),
        ("2026-10-09", 1.0, 3, 4, 0.25, 2),
        ("2026-10-10", 0.0, 3, 4, 0.0, 0),
        ("2026-10-11", 0.0, 3, 4, 0.0, 0),
    ]


def test_a_session_belongs_to_the_period_it_started_in(app: App) -> None:
    load(app, [ev("n", "2026-10-05T23:50:00Z"), ev("n", "2026-10-06T00:10:00Z", "user_interaction")])

    result = engagement(app, period="day", since="2026-10-05", until="2026-10-07")

    assert [
        (r.period_start[:10], r.active_users, r.sessions, r.avg_session_seconds, r.interactions_per_session)
        for r in result.engagement
    ] == [("2026-10-05", 1, 1, 1200.0, 1.0), ("2026-10-06", 1, 0, 0.0, 0.0)]
    assert [(b.active_days, b.users) for b in result.stickiness_histogram] == [(1, 0), (2, 1)]


def test_partial_months_average_dau_over_their_days_inside_the_range(app: App) -> None:
    load(
        app,
        [ev("m", "2026-10-30T10:00:00Z"), ev("m", "2026-11-02T10:00:00Z"), ev("k", "2026-11-02T11:00:00Z")],
    )

    result = engagement(app, period="month", since="2026-10-20", until="2026-11-03")

    assert [(r.period_start, r.days, r.dau, r.wau, r.mau) for r in result.engagement] == [
        ("2026-10-01T00:00:00+00:00", 12, 0.0833, 1, 1),
        ("2026-11-01T00:00:00+00:00", 2, 1.0, 2, 2),
    ]


def test_a_timezone_moves_activity_into_the_local_day_and_week(app: App) -> None:
    # Sunday 23:30 UTC is Monday 01:30 in Berlin.
    load(app, [ev("z", "2026-10-04T23:30:00Z")])

    utc = engagement(app, period="week", since="2026-09-28", until="2026-10-12")
    berlin = engagement(app, period="week", since="2026-09-28", until="2026-10-12", timezone="Europe/Berlin")

    assert [(r.period_start, r.active_users) for r in utc.engagement] == [
        ("2026-09-28T00:00:00+00:00", 1),
        ("2026-10-05T00:00:00+00:00", 0),
    ]
    assert [(r.period_start, r.active_users) for r in berlin.engagement] == [
        ("2026-09-28T00:00:00+02:00", 0),
        ("2026-10-05T00:00:00+02:00", 1),
    ]


def test_without_since_the_range_is_the_last_periods(app: App) -> None:
    load(app, HAND_BUILT_WEEK)

    result = engagement(app, period="week", periods=2, until="2026-10-12")

    assert [r.period_start[:10] for r in result.engagement] == ["2026-09-28", "2026-10-05"]
    assert result.engagement_since == "2026-09-28T00:00:00Z"
    assert result.stickiness_histogram[0].model_dump() == {
        "active_days": 1,
        "users": 3,
        "share": 0.75,
    }


def test_filters_narrow_who_is_active(app: App) -> None:
    load(app, HAND_BUILT_WEEK)

    result = engagement(
        app, filters=[{"field": "event_type", "op": "eq", "value": "command_executed"}], **WEEK
    )

    assert result.engagement_active_users == 1
    assert [(r.active_users, r.sessions, r.mau) for r in result.engagement] == [(1, 1, 1)]


def test_no_activity_gives_zero_rows_and_says_so(app: App) -> None:
    result = engagement(app, period="week", **WEEK)

    assert [(r.active_users, r.dau, r.mau, r.stickiness) for r in result.engagement] == [(0, 0.0, 0, 0.0)]
    assert result.stickiness_histogram == []
    assert result.summary == "No active actors in the range (1 week, 7 days)."
