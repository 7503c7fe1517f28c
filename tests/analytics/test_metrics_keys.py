"""collect_metrics' fast paths give the answers of the plain ones: hashed group keys, the spike from its own series."""

from typing import Any

import pytest

from helpers import load, load_sample
from telemetry_mcp.analytics import metrics, performance
from telemetry_mcp.analytics.anomalies import worst
from telemetry_mcp.analytics.common import Filter, Params, parse_range
from telemetry_mcp.server.app import App

RANGE = {"since": "2026-09-01", "until": "2026-11-01"}


def _rows(app: App, q: metrics.MetricsQuery, **keys: bool) -> list[tuple[Any, ...]]:
    tr = parse_range(q.since, q.until, q.timezone)
    metric = metrics.resolve_metric(app.store, q.metric)
    p = Params()
    sql = metrics.series_sql(q, tr, metric, app.settings.session_timeout_minutes, p, **keys)
    rows = app.store.fetch(sql, p.values)
    # kind, b, g, n, users, sessions, errors, nv, s (rounded: summation order differs), a, lo, hi, q
    return sorted(
        ((*tuple(r[:8]), None if r[8] is None else round(r[8], 6), *tuple(r[10:13])) for r in rows), key=repr
    )


@pytest.mark.parametrize(
    "args",
    [
        {"interval": "day", "group_by": "event_type"},
        {"interval": "hour", "group_by": "component"},
        {"interval": "week", "group_by": "name"},  # not in the catalog: checked per bucket
        {"interval": "day", "group_by": "properties.plan"},
        {"interval": "month"},
        {"interval": "day", "group_by": "platform", "metric": "fps"},
    ],
)
def test_hashed_group_keys_give_the_rows_of_exact_text_keys(app: App, args: dict[str, Any]) -> None:
    load_sample(app)
    q = metrics.MetricsQuery(**args, **RANGE, limit=200)
    hashed = _rows(app, q)
    exact = _rows(app, q, exact_keys=True)
    assert hashed == exact
    assert len([r for r in hashed if r[0] == 1]) >= 2  # real series rows were compared


def test_the_collision_check_counts_buckets_where_two_values_share_a_key(app: App) -> None:
    load_sample(app)
    assert metrics._hashes_apart(app.store, sorted(app.store.catalog("event_type")))
    assert not metrics._hashes_apart(app.store, ["Button", "Button"])  # one key for two entries
    q = metrics.MetricsQuery(interval="day", group_by="name", **RANGE)
    tr = parse_range(q.since, q.until, q.timezone)
    p = Params()
    sql = metrics.series_sql(q, tr, metrics.resolve_metric(app.store, None), 30, p)
    # Forcing every group value onto one key (the worst collision) is what the check must see.
    forced = sql.replace("hash(g) AS hg", "0::UBIGINT AS hg")
    assert forced != sql
    head = next(r for r in app.store.fetch_dicts(forced, p.values) if r["kind"] == 0)
    assert head["collisions"] > 0
    head = next(r for r in app.store.fetch_dicts(sql, p.values) if r["kind"] == 0)
    assert head["collisions"] == 0


@pytest.mark.parametrize(
    "args",
    [
        {"interval": "day"},
        {"interval": "hour", "since": "2026-10-15", "until": "2026-10-25"},
        {"interval": "day", "component": "Chart"},
        {"interval": "day", "event_types": ["error", "page_view"]},
        {"interval": "day", "filters": [{"field": "platform", "op": "eq", "value": "web"}]},
    ],
)
def test_the_error_spike_from_the_series_equals_the_detectors_own_scan(
    app: App, args: dict[str, Any]
) -> None:
    load_sample(app)
    q = metrics.MetricsQuery(**{**RANGE, **args})
    tr = parse_range(q.since, q.until, q.timezone)
    result = metrics.run(app.store, q)
    scope = list(q.filters or [])
    if q.component:
        scope.append(Filter(field="component", op="eq", value=q.component))
    if q.event_types:
        scope.append(Filter(field="event_type", op="in", value=list(q.event_types)))
    expected = worst(app.store, tr, q.interval, scope)
    if expected is None:
        assert not result.summary.startswith("Error spike")
    else:
        assert result.summary.startswith(f"Error spike: {expected.bucket_start[:10]}")
        assert f"detector score {expected.score:.1f}" in result.summary


def test_a_spike_in_a_small_store_is_found_from_the_series(app: App) -> None:
    events = [
        {"event_id": f"n{d}", "timestamp": f"2026-10-0{d}T12:00:00Z", "event_type": "page_view"}
        for d in range(1, 8)
    ]
    events += [
        {
            "event_id": f"x{i}",
            "timestamp": f"2026-10-04T1{i}:00:00Z",
            "event_type": "error",
            "component": "Chart",
        }
        for i in range(5)
    ]
    load(app, events)
    q = metrics.MetricsQuery(since="2026-10-01", until="2026-10-08")
    tr = parse_range(q.since, q.until, q.timezone)
    expected = worst(app.store, tr, "day", [])
    assert expected is not None and expected.bucket_start.startswith("2026-10-04")
    assert metrics.run(app.store, q).summary.startswith("Error spike: 2026-10-04 (UTC) had 5 errors")


@pytest.mark.parametrize(
    "args",
    [
        {},
        {"component": "Chart", "timezone": "America/New_York"},
        {"filters": [{"field": "platform", "op": "eq", "value": "web"}], "group_by": "platform"},
    ],
)
def test_analyze_performance_overall_error_rate_counts_every_event_of_the_scope(
    app: App, args: dict[str, Any]
) -> None:
    """The overall error rate now comes from the day series' counts; it must equal a direct count."""
    load_sample(app)
    q = performance.PerformanceQuery(metric="load_time", **RANGE, **args)
    result = performance.run(app.store, q)
    tr = parse_range(q.since, q.until, q.timezone)
    where, params = "ts >= ?::TIMESTAMP AND ts < ?::TIMESTAMP", [tr.since, tr.until]
    if "component" in args:
        where, params = where + " AND component = ?", [*params, args["component"]]
    if "filters" in args:
        where, params = where + " AND platform = ?", [*params, "web"]
    errors, events = app.store.fetch(
        f"SELECT count_if(severity IN ('error', 'critical')), count(*) FROM events WHERE {where}", params
    )[0]
    assert events > 0 and errors > 0
    assert result.overall.error_rate == round(errors / events, 4)
    samples = app.store.fetch(
        f"SELECT count(duration_ms) FROM events WHERE {where} AND event_type = 'component_load'", params
    )[0][0]
    assert result.overall.count == samples
