"""detect_anomalies, explain_change and milestones on the fixture sample: its planted stories, literally."""

from __future__ import annotations

import pytest

from helpers import load_sample
from telemetry_mcp.analytics import anomalies, explain
from telemetry_mcp.analytics.behavior import BehaviorQuery, run_behavior
from telemetry_mcp.analytics.milestones import MilestonesResult, histogram
from telemetry_mcp.errors import InvalidArgument
from telemetry_mcp.server.app import App

OCTOBER = {"since": "2026-10-01", "until": "2026-11-01"}
CHECKOUT = {"event_type": "page_view", "filters": [{"field": "page", "op": "eq", "value": "/checkout"}]}


@pytest.fixture
def sample(app: App) -> App:
    load_sample(app)
    return app


def test_the_error_spike_day_is_the_one_anomaly_of_october_and_leads_the_summary(sample: App) -> None:
    q = anomalies.AnomalyQuery.model_validate({"metric": "errors", "interval": "day", **OCTOBER})
    r = anomalies.run(sample.store, q)
    assert [(a.bucket_start, a.observed, a.direction, a.buckets) for a in r.anomalies] == [
        ("2026-10-20T00:00:00+00:00", 10.0, "up", 1)
    ]
    a = r.anomalies[0]
    assert a.lower is not None and a.upper is not None and a.expected is not None
    assert a.lower <= a.expected < a.upper < a.observed  # type: ignore[operator]
    assert r.summary.startswith("Most severe: errors spiked at 2026-10-20T00:00:00+00:00: 10 vs")


def test_error_rate_flags_the_same_day(sample: App) -> None:
    q = anomalies.AnomalyQuery.model_validate({"metric": "error_rate", "interval": "day", **OCTOBER})
    r = anomalies.run(sample.store, q)
    assert [(a.bucket_start, a.observed) for a in r.anomalies] == [("2026-10-20T00:00:00+00:00", 0.0206)]


def test_new_error_signatures_are_the_ones_first_seen_in_the_range(sample: App) -> None:
    q = anomalies.AnomalyQuery.model_validate({"metric": "errors", "interval": "day", **OCTOBER})
    r = anomalies.run(sample.store, q)
    assert [(e.name, e.component, e.count) for e in r.new_errors] == [
        ("build_failed", "build", 4),
        ("image_load_error", "Avatar", 2),
        ("unhandled_exception", "Carousel", 1),
        ("hydration_mismatch", "Avatar", 1),
        ("generate_failed", "generate", 1),
    ]


def test_a_release_is_compared_with_the_previous_one_over_its_first_days(sample: App) -> None:
    q = anomalies.AnomalyQuery.model_validate({"metric": "error_rate", "interval": "day", **OCTOBER})
    rel = {x.version: x for x in anomalies.run(sample.store, q).releases}
    assert set(rel) == {"2.3.0", "1.6.0"}
    ui = rel["2.3.0"]
    assert (ui.previous_version, ui.days, ui.events, ui.error_rate, ui.previous_error_rate) == (
        "2.2.0",
        3.0,
        456,
        0.0022,
        0.0029,
    )


def test_an_unknown_metric_is_refused_with_the_accepted_ones(sample: App) -> None:
    q = anomalies.AnomalyQuery.model_validate({"metric": "load_tme"})
    with pytest.raises(InvalidArgument, match=r'did you mean "load_time".*"error_rate"'):
        anomalies.run(sample.store, q)


def explain_(app: App, **args: object) -> explain.ExplainResult:
    return explain.run(app.store, explain.ExplainQuery.model_validate(args))


def test_explain_names_loaderspinner_for_the_2_3_0_load_time_regression(sample: App) -> None:
    r = explain_(sample, metric="load_time", baseline={"version": "2.2.0"}, candidate={"version": "2.3.0"})
    top = r.causes[0]
    assert (top.dimensions, top.root_cause, top.baseline, top.candidate) == (
        {"component": "LoaderSpinner"},
        True,
        138.18,
        192.55,
    )
    assert [c.dimensions for c in r.causes if c.root_cause] == [{"component": "LoaderSpinner"}]
    assert "LoaderSpinner" in r.summary and "2.3.0" in r.summary


def test_explain_over_two_periods_names_loaderspinner_x_2_3_0(sample: App) -> None:
    r = explain_(
        sample,
        metric="load_time",
        baseline={"since": "2026-09-29", "until": "2026-10-13"},
        candidate={"since": "2026-10-13", "until": "2026-10-27"},
    )
    assert r.causes[0].dimensions == {"component": "LoaderSpinner", "service_version": "2.3.0"}
    assert r.causes[0].root_cause and r.causes[0].explanatory_power > 0.8
    assert "component=LoaderSpinner × service_version=2.3.0" in r.summary


def test_explain_names_chart_render_error_for_the_error_spike(sample: App) -> None:
    r = explain_(
        sample,
        metric="error_rate",
        baseline={"since": "2026-10-13", "until": "2026-10-20"},
        candidate={"since": "2026-10-20", "until": "2026-10-21"},
    )
    assert (r.total.baseline, r.total.candidate) == (0.0036, 0.0206)
    assert [c.dimensions for c in r.causes if c.root_cause] == [
        {"component": "Chart", "name": "render_error"}
    ]
    assert "Main cause: component=Chart × name=render_error" in r.summary


def test_counts_over_periods_of_different_lengths_are_compared_per_unit_of_time(sample: App) -> None:
    r = explain_(
        sample,
        metric="errors",
        baseline={"since": "2026-10-13", "until": "2026-10-20"},
        candidate={"since": "2026-10-20", "until": "2026-10-21"},
    )
    assert (r.total.baseline, r.total.candidate, r.total.change_pct) == (1.4286, 10.0, 600.0)


def test_explain_refuses_an_unknown_version_and_dimension(sample: App) -> None:
    with pytest.raises(InvalidArgument, match=r'unknown service_version "2.30".*did you mean "2.3.0"'):
        explain_(sample, baseline={"version": "2.2.0"}, candidate={"version": "2.30"})
    with pytest.raises(InvalidArgument, match=r'unknown dimension "componet"'):
        explain_(
            sample, baseline={"version": "2.2.0"}, candidate={"version": "2.3.0"}, dimensions=["componet"]
        )


def milestones(app: App, **args: object) -> MilestonesResult:
    result = run_behavior(app.store, BehaviorQuery.model_validate({"analysis": "milestones", **args}))
    assert isinstance(result, MilestonesResult)
    return result


def test_checkout_milestones_match_the_checkout_funnel(sample: App) -> None:
    r = milestones(
        sample,
        start_event=CHECKOUT,
        milestones=[
            {"event_type": "user_interaction", "name": "add_payment", "target": "1m"},
            {"event_type": "event_trigger", "name": "submit_order"},
            {"event_type": "feature_used", "name": "order_confirmed"},
        ],
        since="2026-09-01",
        until="2026-11-01",
    )
    assert r.starters == 204
    assert [(m.label, m.actors, m.share) for m in r.milestones] == [
        ("add_payment", 123, 0.6029),
        ("submit_order", 35, 0.1716),
        ("order_confirmed", 31, 0.152),
    ]
    first = r.milestones[0]
    assert (first.median_seconds, first.median_seconds_from_previous, first.within_target_share) == (
        45.568,
        45.568,
        0.6911,
    )
    assert len(first.histogram) == 5 and sum(b.actors for b in first.histogram) == 123  # ceil(∛123) = 5
    assert r.milestones[1].within_target_share is None


def test_histogram_bins_follow_posthog(sample: App) -> None:
    assert [(b.from_seconds, b.actors) for b in histogram([10.0, 20.0, 30.0, 40.0, 100.0])] == [
        (10.0, 4),
        (55.0, 1),
    ]
    assert len(histogram([float(i) for i in range(300_000)])) == 60


def test_realtime_and_performance_summaries_flag_what_the_detector_flags(app: App) -> None:
    from datetime import datetime

    from helpers import load
    from telemetry_mcp.analytics import performance, realtime

    events = [
        {"event_type": "page_view", "user_id": f"u{h}", "timestamp": f"2026-03-02T{h:02d}:10:00Z"}
        for h in range(12)
    ]
    events += [
        {
            "event_type": "error",
            "name": "boom",
            "user_id": f"e{i}",
            "timestamp": f"2026-03-02T11:{20 + i}:00Z",
        }
        for i in range(6)
    ]
    load(app, events)
    live = realtime.run(app.store, now=datetime(2026, 3, 2, 12, 0))
    assert "Error spike: 2026-03-02 11:00 (UTC) had 6 errors vs" in live.summary
    q = performance.PerformanceQuery.model_validate(
        {"metric": "load_time", "since": "2026-03-01", "until": "2026-03-03"}
    )
    assert "Error spike" not in performance.run(app.store, q).summary  # two days: too short a series to judge


def test_analyze_performance_names_the_days_the_detector_flags_on_the_sample(sample: App) -> None:
    from telemetry_mcp.analytics import performance

    q = performance.PerformanceQuery.model_validate(
        {"metric": "load_time", "since": "2026-10-01", "until": "2026-11-01", "group_by": "none"}
    )
    assert "Error spike: 2026-10-20 (UTC) had 10 errors vs" in performance.run(sample.store, q).summary
