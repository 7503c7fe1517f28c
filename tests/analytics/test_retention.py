"""Retention (SPEC 4.4 / 5): calendar cohorts, first_time vs recurring, cumulative, timezones."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from helpers import load, load_sample
from telemetry_mcp.analytics.behavior import BehaviorQuery
from telemetry_mcp.analytics.retention import RetentionResult, run
from telemetry_mcp.config import load_settings
from telemetry_mcp.errors import InvalidArgument
from telemetry_mcp.server.app import App, open_app


def ev(user: str, ts: str, event_type: str = "page_view", **extra: Any) -> dict[str, Any]:
    return {"event_type": event_type, "user_id": user, "timestamp": ts, **extra}


def retention(app: App, **args: Any) -> RetentionResult:
    return run(app.store, BehaviorQuery(analysis="retention", **args))


def table(result: RetentionResult) -> list[tuple[str, int, list[int], list[float]]]:
    return [(c.cohort_start, c.size, c.retained, c.rates) for c in result.cohorts]


# Weeks (Mondays): W0 2026-09-07, W1 09-14, W2 09-21. "old" started the week before the range.
WEEKLY = [
    ev("old", "2026-08-31T09:00:00Z"),
    ev("old", "2026-09-08T09:00:00Z"),
    ev("old", "2026-09-15T09:00:00Z"),
    ev("u1", "2026-09-07T09:00:00Z"),
    ev("u1", "2026-09-16T09:00:00Z"),
    ev("u1", "2026-09-27T23:59:00Z"),
    ev("u2", "2026-09-09T09:00:00Z"),
    ev("u2", "2026-09-22T09:00:00Z"),
    ev("u3", "2026-09-18T09:00:00Z"),
    # After `until`: never counted.
    ev("u3", "2026-09-28T00:00:00Z"),
]
RANGE = {"since": "2026-09-07", "until": "2026-09-28"}


def test_first_time_cohorts_leave_out_an_actor_who_started_before_the_range(app: App) -> None:
    load(app, WEEKLY)

    result = retention(app, **RANGE)

    assert table(result) == [
        ("2026-09-07T00:00:00+00:00", 2, [2, 1, 2], [1.0, 0.5, 1.0]),
        ("2026-09-14T00:00:00+00:00", 1, [1, 0], [1.0, 0.0]),
        ("2026-09-21T00:00:00+00:00", 0, [0], [0.0]),
    ]
    # Weighted by size: (1 + 0) / (2 + 1), not the plain mean of 0.5 and 0.0.
    assert result.average_rates == [1.0, 0.3333, 1.0]
    assert result.retention_users == 3
    assert result.truncated is False
    assert result.summary.startswith(
        "Week-1 retention averages 33.3 %; by week 2: 100.0 % (3 cohorts, 3 users)."
    )


def test_recurring_cohorts_count_every_actor_active_in_the_period_including_earlier_starters(
    app: App,
) -> None:
    load(app, WEEKLY)

    result = retention(app, retention_type="recurring", **RANGE)

    assert table(result) == [
        ("2026-09-07T00:00:00+00:00", 3, [3, 2, 2], [1.0, 0.6667, 0.6667]),
        ("2026-09-14T00:00:00+00:00", 3, [3, 1], [1.0, 0.3333]),
        ("2026-09-21T00:00:00+00:00", 2, [2], [1.0]),
    ]
    assert result.average_rates == [1.0, 0.5, 0.6667]
    assert result.retention_users == 4


def test_cumulative_counts_a_member_in_every_period_up_to_its_last_return(app: App) -> None:
    load(app, WEEKLY)

    plain = retention(app, **RANGE)
    cumulative = retention(app, cumulative=True, **RANGE)

    # u2 skipped week 1 but came back in week 2: retained at n=1 only when cumulative.
    assert [c.retained for c in plain.cohorts] == [[2, 1, 2], [1, 0], [0]]
    assert [c.retained for c in cumulative.cohorts] == [[2, 2, 2], [1, 0], [0]]
    assert cumulative.average_rates == [1.0, 0.6667, 1.0]
    assert "(cumulative)" in cumulative.summary


def test_start_and_return_events_select_who_enters_and_what_counts_as_coming_back(app: App) -> None:
    load(
        app,
        [
            ev("a", "2026-09-07T09:00:00Z", "session_start"),
            ev("a", "2026-09-15T09:00:00Z", "page_view"),
            ev("a", "2026-09-22T09:00:00Z", "feature_used"),
            ev("b", "2026-09-08T09:00:00Z", "page_view"),
            ev("b", "2026-09-16T09:00:00Z", "session_start"),
            ev("b", "2026-09-23T09:00:00Z", "feature_used"),
        ],
    )

    result = retention(app, start_event="session_start", return_event="feature_used", **RANGE)

    assert table(result) == [
        ("2026-09-07T00:00:00+00:00", 1, [1, 0, 1], [1.0, 0.0, 1.0]),
        ("2026-09-14T00:00:00+00:00", 1, [1, 1], [1.0, 1.0]),
        ("2026-09-21T00:00:00+00:00", 0, [0], [0.0]),
    ]


def test_filters_apply_to_start_and_return_events(app: App) -> None:
    load(
        app,
        [
            ev("a", "2026-09-07T09:00:00Z", platform="web"),
            ev("a", "2026-09-14T09:00:00Z", platform="mobile"),
            ev("b", "2026-09-07T09:00:00Z", platform="mobile"),
            ev("b", "2026-09-14T09:00:00Z", platform="mobile"),
        ],
    )

    result = retention(app, filters=[{"field": "platform", "value": "mobile"}], **RANGE)

    # On mobile, a's first event is in week 1; b is retained.
    assert [(c.size, c.retained) for c in result.cohorts] == [(1, [1, 1, 0]), (1, [1, 0]), (0, [0])]


def test_month_cohorts_run_across_the_year_boundary(app: App) -> None:
    load(
        app,
        [
            ev("m2", "2025-11-03T12:00:00Z"),
            ev("m2", "2026-01-31T23:00:00Z"),
            ev("m1", "2025-12-15T12:00:00Z"),
            ev("m1", "2026-01-01T00:00:00Z"),
            ev("m3", "2026-01-20T12:00:00Z"),
        ],
    )

    result = retention(app, period="month", since="2025-11-01", until="2026-02-01")

    assert table(result) == [
        ("2025-11-01T00:00:00+00:00", 1, [1, 0, 1], [1.0, 0.0, 1.0]),
        ("2025-12-01T00:00:00+00:00", 1, [1, 1], [1.0, 1.0]),
        ("2026-01-01T00:00:00+00:00", 1, [1], [1.0]),
    ]
    assert result.average_rates == [1.0, 0.5, 1.0]
    assert result.summary.startswith("Month-1 retention averages 50.0 %; by month 2: 100.0 %")


def test_a_timezone_moves_a_late_utc_event_into_the_next_local_day(app: App) -> None:
    # 23:30 UTC on Oct 5 is 01:30 on Oct 6 in Berlin (CEST, +02:00).
    load(app, [ev("t", "2026-10-05T10:00:00Z"), ev("t", "2026-10-05T23:30:00Z")])

    utc = retention(app, period="day", since="2026-10-05", until="2026-10-08")
    berlin = retention(app, period="day", since="2026-10-05", until="2026-10-08", timezone="Europe/Berlin")

    assert table(utc) == [
        ("2026-10-05T00:00:00+00:00", 1, [1, 0, 0], [1.0, 0.0, 0.0]),
        ("2026-10-06T00:00:00+00:00", 0, [0, 0], [0.0, 0.0]),
        ("2026-10-07T00:00:00+00:00", 0, [0], [0.0]),
    ]
    assert table(berlin) == [
        ("2026-10-05T00:00:00+02:00", 1, [1, 1, 0], [1.0, 1.0, 0.0]),
        ("2026-10-06T00:00:00+02:00", 0, [0, 0], [0.0, 0.0]),
        ("2026-10-07T00:00:00+02:00", 0, [0], [0.0]),
    ]
    assert berlin.retention_since == "2026-10-04T22:00:00Z"


def test_local_weeks_keep_their_monday_start_across_a_dst_change(app: App) -> None:
    # Berlin leaves summer time on Sunday 2026-10-25: the next Monday starts at +01:00.
    load(app, [ev("d", "2026-10-20T10:00:00Z"), ev("d", "2026-10-25T23:30:00Z")])

    result = retention(app, since="2026-10-19", until="2026-11-02", timezone="Europe/Berlin")

    # 23:30 UTC on Sunday is 00:30 on Monday in Berlin: a week-1 return.
    assert table(result) == [
        ("2026-10-19T00:00:00+02:00", 1, [1, 1], [1.0, 1.0]),
        ("2026-10-26T00:00:00+01:00", 0, [0], [0.0]),
    ]


def test_without_since_periods_sets_the_range_ending_with_the_period_holding_until(app: App) -> None:
    load(app, WEEKLY)

    mid_week = retention(app, until="2026-09-23T12:00:00Z", periods=3)
    on_boundary = retention(app, until="2026-09-28", periods=3)

    assert [c.cohort_start[:10] for c in mid_week.cohorts] == ["2026-09-07", "2026-09-14", "2026-09-21"]
    assert mid_week.retention_since == "2026-09-07T00:00:00Z"
    assert mid_week.retention_until == "2026-09-23T12:00:00Z"
    # until is exclusive: a range ending at Monday 00:00 ends with the week before.
    assert [c.cohort_start[:10] for c in on_boundary.cohorts] == ["2026-09-07", "2026-09-14", "2026-09-21"]
    assert table(on_boundary) == table(retention(app, **RANGE))


def test_periods_is_ignored_when_since_is_given(app: App) -> None:
    load(app, WEEKLY)

    result = retention(app, periods=1, **RANGE)

    assert len(result.cohorts) == 3


def test_an_empty_range_gives_empty_cohorts_and_says_so(app: App) -> None:
    result = retention(app, period="day", since="2026-09-01", until="2026-09-03")

    assert table(result) == [
        ("2026-09-01T00:00:00+00:00", 0, [0, 0], [0.0, 0.0]),
        ("2026-09-02T00:00:00+00:00", 0, [0], [0.0]),
    ]
    assert result.average_rates == [0.0, 0.0]
    assert result.summary == "No actor's first event falls in the range (2 empty day cohorts)."


def test_an_unseen_start_event_is_answered_with_empty_cohorts_and_a_warning_with_a_suggestion(
    app: App,
) -> None:
    load(app, WEEKLY)

    result = retention(app, start_event="page_veiw", **RANGE)

    assert all(c.size == 0 for c in result.cohorts) and result.retention_users == 0
    assert result.warnings == [
        'start_event event_type "page_veiw" matches no stored event — did you mean "page_view"?'
    ]
    assert result.summary.startswith("Warning: start_event event_type")


def test_more_than_120_periods_is_refused_with_the_bound(app: App) -> None:
    with pytest.raises(InvalidArgument, match="spans 200 days; at most 120"):
        retention(app, period="day", since="2026-01-01", until="2026-07-20")


def test_hostile_filter_values_stay_values(app: App) -> None:
    load(app, WEEKLY)

    result = retention(app, filters=[{"field": "page", "value": "x'; DROP TABLE events; --"}], **RANGE)

    assert [c.size for c in result.cohorts] == [0, 0, 0]
    assert app.store.fetch("SELECT count(*) FROM events") == [(len(WEEKLY),)]


@pytest.fixture(scope="module")
def sample_app() -> Iterator[App]:
    """The fixture data set, loaded once for this module's read-only checks."""
    application = open_app(load_settings({"db": ":memory:", "threads": 2, "salt": "00" * 16}, env={}))
    load_sample(application)
    yield application
    application.store.close()


@pytest.mark.parametrize("retention_type", ["first_time", "recurring"])
def test_the_sample_data_gives_a_sane_weekly_retention_table(sample_app: App, retention_type: str) -> None:
    app = sample_app

    plain = retention(app, since="2026-09-07", until="2026-11-01", retention_type=retention_type)
    cumulative = retention(
        app, since="2026-09-07", until="2026-11-01", retention_type=retention_type, cumulative=True
    )

    assert [c.cohort_start[:10] for c in plain.cohorts] == [
        "2026-09-07", "2026-09-14", "2026-09-21", "2026-09-28", "2026-10-05", "2026-10-12", "2026-10-19",
        "2026-10-26",
    ]  # fmt: skip
    assert [len(c.retained) for c in plain.cohorts] == [8, 7, 6, 5, 4, 3, 2, 1]
    for c, k in zip(plain.cohorts, cumulative.cohorts, strict=True):
        assert c.retained[0] == c.size == k.size == k.retained[0]
        assert all(0.0 <= r <= 1.0 for r in c.rates + k.rates)
        assert all(0 <= x <= c.size for x in c.retained)
        # Cumulative counts never grow with n, and are never below the plain count.
        assert k.retained == sorted(k.retained, reverse=True)
        assert all(kx >= cx for kx, cx in zip(k.retained, c.retained, strict=True))
    assert plain.average_rates[0] == 1.0
    assert all(0.0 <= r <= 1.0 for r in plain.average_rates)
    assert 0.0 < plain.average_rates[1] < 1.0
    assert sum(c.size for c in plain.cohorts) > 0
    assert len(plain.summary) <= 600
