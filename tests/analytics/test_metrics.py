"""collect_metrics through the MCP server: buckets, distinct counts, statistics, components, guard rails."""

from typing import Any

from mcp import Client

from helpers import load, load_sample, text_of
from telemetry_mcp.server.app import App


def ev(event_id: str, ts: str, event_type: str, **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "timestamp": ts, "event_type": event_type, **fields}


# Monday 2026-10-05 .. Thursday 2026-10-08. Paris is UTC+2 and New York UTC-4 on these days.
BASE = [
    ev("e01", "2026-10-05T08:00:00Z", "component_load", component="Button", user_id="u1", session_id="s1",
       duration_ms=12.5),
    ev("e02", "2026-10-05T08:10:00Z", "animation_play", component="Button", user_id="u1", session_id="s1",
       name="ripple"),
    # u2 has no session_id: two derived sessions (a 2 h gap).
    ev("e03", "2026-10-05T21:30:00Z", "component_load", component="Button", user_id="u2", duration_ms=20),
    # 23:30 UTC on the 5th is 01:30 on the 6th in Paris.
    ev("e04", "2026-10-05T23:30:00Z", "component_load", component="Modal", user_id="u2", duration_ms=33.3),
    # 02:00 UTC on the 6th is 22:00 on the 5th in New York.
    ev("e05", "2026-10-06T02:00:00Z", "component_load", component="Modal", user_id="u3", session_id="s2",
       duration_ms=47.1),
    ev("e06", "2026-10-06T02:00:05Z", "error", component="Modal", user_id="u3", session_id="s2"),
    # No user and no duration: counted, but not in unique_users nor in the statistics.
    ev("e07", "2026-10-06T02:01:00Z", "component_load", component="Modal", session_id="s3"),
    ev("e08", "2026-10-08T10:00:00Z", "performance", component="Carousel", user_id="u1", session_id="s4",
       name="fps", value=58, unit="fps"),
    ev("e09", "2026-10-08T10:00:01Z", "performance", component="Carousel", user_id="u1", session_id="s4",
       name="fps", value=40, unit="fps"),
    ev("e10", "2026-10-08T10:05:00Z", "crash", component="Carousel", user_id="u1", session_id="s4",
       severity="critical"),
]  # fmt: skip

EMPTY = (None,) * 7


def table(result: dict[str, Any]) -> list[tuple[Any, ...]]:
    """(bucket_start, group, count, users, sessions, errors, sum, avg, min, max, p50, p95, p99) rows."""
    keys = ("bucket_start", "group", "count", "unique_users", "unique_sessions", "error_count",
            "sum", "avg", "min", "max", "p50", "p95", "p99")  # fmt: skip
    return [tuple(row[k] for k in keys) for row in result["series"]]


async def call(client: Client, **args: Any) -> dict[str, Any]:
    result = await client.call_tool("collect_metrics", args)
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    return dict(result.structured_content)


async def error_of(client: Client, **args: Any) -> str:
    result = await client.call_tool("collect_metrics", args)
    assert result.is_error
    return text_of(result)


async def test_daily_series_in_paris_counts_users_sessions_errors_and_fills_empty_days(
    app: App, client: Client
) -> None:
    load(app, BASE)
    out = await call(client, since="2026-10-05", until="2026-10-09", timezone="Europe/Paris")
    assert table(out) == [
        ("2026-10-05T00:00:00+02:00", None, 3, 2, 2, 0, 32.5, 16.25, 12.5, 20.0, 16.25, 19.625, 19.925),
        ("2026-10-06T00:00:00+02:00", None, 4, 2, 3, 1, 80.4, 40.2, 33.3, 47.1, 40.2, 46.41, 46.962),
        ("2026-10-07T00:00:00+02:00", None, 0, 0, 0, 0, *EMPTY),
        ("2026-10-08T00:00:00+02:00", None, 3, 1, 1, 1, *EMPTY),
    ]
    assert out["empty_buckets_filled"] is True
    assert out["since"] == "2026-10-04T22:00:00Z"
    assert out["until"] == "2026-10-08T22:00:00Z"
    assert out["totals"] == {
        "count": 10, "unique_users": 3, "unique_sessions": 6, "error_count": 2, "values": 4,
        "sum": 112.9, "avg": 28.225, "min": 12.5, "max": 47.1,
        "p50": 26.65, "p95": 45.03, "p99": 46.686,
    }  # fmt: skip
    assert out["truncated"] is False
    assert out["summary"].startswith("10 events, 3 users, 6 sessions, 2 errors (20.0 %)")
    assert "Busiest day: 2026-10-06 (4 events)" in out["summary"]


async def test_a_late_evening_event_lands_on_the_local_day_of_the_timezone(app: App, client: Client) -> None:
    load(app, BASE)
    counts = {}
    for tz in ("UTC", "Europe/Paris", "America/New_York"):
        out = await call(client, since="2026-10-05", until="2026-10-09", timezone=tz)
        counts[tz] = [(row["bucket_start"], row["count"]) for row in out["series"]]
    assert counts == {
        "UTC": [
            ("2026-10-05T00:00:00+00:00", 4),
            ("2026-10-06T00:00:00+00:00", 3),
            ("2026-10-07T00:00:00+00:00", 0),
            ("2026-10-08T00:00:00+00:00", 3),
        ],
        "Europe/Paris": [
            ("2026-10-05T00:00:00+02:00", 3),
            ("2026-10-06T00:00:00+02:00", 4),
            ("2026-10-07T00:00:00+02:00", 0),
            ("2026-10-08T00:00:00+02:00", 3),
        ],
        "America/New_York": [
            ("2026-10-05T00:00:00-04:00", 7),
            ("2026-10-06T00:00:00-04:00", 0),
            ("2026-10-07T00:00:00-04:00", 0),
            ("2026-10-08T00:00:00-04:00", 3),
        ],
    }


async def test_weeks_start_on_monday_in_the_local_timezone(app: App, client: Client) -> None:
    load(
        app,
        [
            ev("w1", "2026-10-04T21:30:00Z", "page_view", user_id="a"),  # Sunday 23:30 in Paris
            ev("w2", "2026-10-04T22:30:00Z", "page_view", user_id="a"),  # Monday 00:30 in Paris
            ev("w3", "2026-10-11T12:00:00Z", "page_view", user_id="b"),  # Sunday
            ev("w4", "2026-10-12T00:00:00Z", "page_view", user_id="b"),  # Monday
        ],
    )
    paris = await call(
        client, since="2026-09-28", until="2026-10-19", interval="week", timezone="Europe/Paris"
    )
    utc = await call(client, since="2026-09-28", until="2026-10-19", interval="week")
    assert [(r["bucket_start"], r["count"], r["unique_users"]) for r in paris["series"]] == [
        ("2026-09-28T00:00:00+02:00", 1, 1),
        ("2026-10-05T00:00:00+02:00", 2, 2),
        ("2026-10-12T00:00:00+02:00", 1, 1),
    ]
    assert [(r["bucket_start"], r["count"], r["unique_users"]) for r in utc["series"]] == [
        ("2026-09-28T00:00:00+00:00", 2, 1),
        ("2026-10-05T00:00:00+00:00", 1, 1),
        ("2026-10-12T00:00:00+00:00", 1, 1),
    ]


async def test_month_buckets_carry_the_offset_of_their_own_start(app: App, client: Client) -> None:
    # Paris leaves summer time on 2026-10-25; 23:30 UTC on Oct 31 is already November there.
    load(app, [ev("m1", "2026-10-31T23:30:00Z", "page_view"), ev("m2", "2026-10-31T22:30:00Z", "page_view")])
    out = await call(
        client, since="2026-10-01", until="2026-12-01", interval="month", timezone="Europe/Paris"
    )
    assert [(r["bucket_start"], r["count"]) for r in out["series"]] == [
        ("2026-10-01T00:00:00+02:00", 1),
        ("2026-11-01T00:00:00+01:00", 1),
    ]


async def test_grouped_series_lists_only_buckets_with_events_by_bucket_then_group(
    app: App, client: Client
) -> None:
    load(app, BASE)
    out = await call(client, since="2026-10-05", until="2026-10-09", group_by="event_type")
    assert table(out) == [
        ("2026-10-05T00:00:00+00:00", "animation_play", 1, 1, 1, 0, *EMPTY),
        (
            "2026-10-05T00:00:00+00:00",
            "component_load",
            3,
            2,
            3,
            0,
            65.8,
            21.9333,
            12.5,
            33.3,
            20.0,
            31.97,
            33.034,
        ),
        ("2026-10-06T00:00:00+00:00", "component_load", 2, 1, 2, 0, 47.1, 47.1, 47.1, 47.1, 47.1, 47.1, 47.1),
        ("2026-10-06T00:00:00+00:00", "error", 1, 1, 1, 1, *EMPTY),
        ("2026-10-08T00:00:00+00:00", "crash", 1, 1, 1, 1, *EMPTY),
        ("2026-10-08T00:00:00+00:00", "performance", 2, 1, 1, 0, *EMPTY),
    ]
    assert out["empty_buckets_filled"] is False


async def test_a_group_missing_on_some_events_is_a_null_group_listed_last(app: App, client: Client) -> None:
    load(app, BASE)
    out = await call(client, since="2026-10-05", until="2026-10-09", interval="total", group_by="name")
    assert [(r["group"], r["count"]) for r in out["series"]] == [("fps", 2), ("ripple", 1), (None, 7)]
    assert {r["bucket_start"] for r in out["series"]} == {"2026-10-05T00:00:00+00:00"}


async def test_total_interval_gives_exact_percentiles_per_property_group(app: App, client: Client) -> None:
    durations = [12.5, 20.0, 33.3, 47.1, 51.37]
    load(
        app,
        [
            ev(f"p{i}", f"2026-10-05T1{i}:00:00Z", "component_load", component="Chart", user_id=f"u{i % 2}",
               duration_ms=d, properties={"theme": "dark"})
            for i, d in enumerate(durations)
        ]
        + [ev("p9", "2026-10-05T19:00:00Z", "component_load", component="Chart", duration_ms=5)],
    )  # fmt: skip
    out = await call(
        client, since="2026-10-05", until="2026-10-06", interval="total", group_by="properties.theme"
    )
    assert table(out) == [
        ("2026-10-05T00:00:00+00:00", "dark", 5, 2, 5, 0, 164.27, 32.854, 12.5, 51.37, 33.3, 50.516, 51.1992),
        ("2026-10-05T00:00:00+00:00", None, 1, 0, 1, 0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0),
    ]


async def test_a_metric_name_measures_the_value_of_those_performance_events_only(
    app: App, client: Client
) -> None:
    load(app, BASE)
    out = await call(client, since="2026-10-08", until="2026-10-09", metric="fps")
    assert out["metric"] == "fps"
    assert out["unit"] == "fps"
    assert table(out) == [
        ("2026-10-08T00:00:00+00:00", None, 2, 1, 1, 0, 98.0, 49.0, 40.0, 58.0, 49.0, 57.1, 57.82)
    ]
    assert "fps p50 49.0 fps, p95 57.1 fps" in out["summary"]


async def test_components_table_ignores_event_types_but_honours_component_and_filters(
    app: App, client: Client
) -> None:
    load(app, BASE)
    out = await call(client, since="2026-10-05", until="2026-10-09", event_types=["component_load"])
    assert [r["count"] for r in out["series"]] == [3, 2, 0, 0]
    assert out["components"] == [
        {"component": "Modal", "events": 4, "loads": 3, "plays": 0, "errors": 1, "avg_load_ms": 40.2,
         "avg_fps": None, "unique_users": 2, "last_seen": "2026-10-06T02:01:00Z"},
        {"component": "Button", "events": 3, "loads": 2, "plays": 1, "errors": 0, "avg_load_ms": 16.25,
         "avg_fps": None, "unique_users": 2, "last_seen": "2026-10-05T21:30:00Z"},
        {"component": "Carousel", "events": 3, "loads": 0, "plays": 0, "errors": 1, "avg_load_ms": None,
         "avg_fps": 49.0, "unique_users": 1, "last_seen": "2026-10-08T10:05:00Z"},
    ]  # fmt: skip
    only = await call(client, since="2026-10-05", until="2026-10-09", component="Carousel")
    assert [c["component"] for c in only["components"]] == ["Carousel"]
    assert only["totals"]["count"] == 3
    filtered = await call(
        client,
        since="2026-10-05",
        until="2026-10-09",
        filters=[{"field": "user_id", "op": "eq", "value": "x"}],
    )
    assert filtered["components"] == []


async def test_an_empty_range_answers_zeros_not_an_error(app: App, client: Client) -> None:
    load(app, BASE)
    out = await call(client, since="2026-09-01", until="2026-09-03")
    assert table(out) == [
        ("2026-09-01T00:00:00+00:00", None, 0, 0, 0, 0, *EMPTY),
        ("2026-09-02T00:00:00+00:00", None, 0, 0, 0, 0, *EMPTY),
    ]
    assert out["totals"]["count"] == 0
    assert out["components"] == []
    assert out["summary"].startswith("No events matched")


async def test_a_single_event_is_its_own_percentiles(app: App, client: Client) -> None:
    load(app, [ev("one", "2026-10-05T12:34:56Z", "api_call", user_id="u", duration_ms=123.45678)])
    out = await call(client, since="2026-10-05T12:00:00Z", until="2026-10-05T13:00:00Z", interval="minute",
                     limit=1000)  # fmt: skip
    assert len(out["series"]) == 60
    hit = [r for r in out["series"] if r["count"]]
    assert table({"series": hit}) == [
        ("2026-10-05T12:34:00+00:00", None, 1, 1, 1, 0, *(123.4568,) * 7),
    ]


async def test_series_is_cut_at_limit_and_says_truncated(app: App, client: Client) -> None:
    load(app, BASE)
    out = await call(client, since="2026-10-05", until="2026-10-09", limit=2)
    assert [r["bucket_start"] for r in out["series"]] == [
        "2026-10-05T00:00:00+00:00",
        "2026-10-06T00:00:00+00:00",
    ]
    assert out["series_truncated"] is True
    assert out["truncated"] is True
    assert len(out["components"]) == 2
    assert out["components_truncated"] is True


async def test_error_spike_leads_the_summary(app: App, client: Client) -> None:
    events = [ev(f"n{d}", f"2026-10-0{d}T12:00:00Z", "page_view") for d in range(1, 8)]
    events += [ev(f"x{i}", f"2026-10-04T1{i}:00:00Z", "error", component="Chart") for i in range(5)]
    load(app, events)
    out = await call(client, since="2026-10-01", until="2026-10-08", event_types=["error", "page_view"])
    assert [r["error_count"] for r in out["series"]] == [0, 0, 0, 5, 0, 0, 0]
    # The shared detector (analytics/detector.py) decides; the expected count is its Poisson level.
    assert out["summary"].startswith(
        "Error spike: 2026-10-04 (UTC) had 5 errors vs 0.3579 expected (detector score 4.0)."
    )


async def test_unknown_component_and_metric_suggest_the_closest_known_name(app: App, client: Client) -> None:
    load(app, BASE)
    message = await error_of(client, component="Buton")
    assert 'unknown component "Buton"' in message
    assert 'did you mean "Button"' in message
    message = await error_of(client, metric="fsp")
    assert 'unknown metric "fsp"' in message
    assert 'did you mean "fps"' in message
    assert '"duration_ms"' in message
    message = await error_of(client, event_types=["component_lod"])
    assert 'did you mean "component_load"' in message
    message = await error_of(client, event_types=["component_load"], metric="fps")
    assert 'metric "fps" reads performance events' in message


async def test_hostile_arguments_are_refused_or_harmless_and_the_server_keeps_answering(
    app: App, client: Client
) -> None:
    load(app, BASE)
    window = {"since": "2026-10-05", "until": "2026-10-09"}
    hostile_value = await call(
        client, **window, filters=[{"field": "component", "op": "eq", "value": "x' OR 1=1 --"}]
    )
    assert hostile_value["totals"]["count"] == 0
    assert [r["count"] for r in hostile_value["series"]] == [0, 0, 0, 0]
    hostile_in = await call(
        client,
        **window,
        filters=[{"field": "properties.a", "op": "in", "value": ["'); DROP TABLE events; --"]}],
    )
    assert hostile_in["totals"]["count"] == 0

    message = await error_of(client, **window, filters=[{"field": "component = component --", "value": "x"}])
    assert "unknown field" in message
    message = await error_of(client, **window, group_by="1; DROP TABLE events")
    assert "unknown field" in message
    message = await error_of(client, **window, group_by="properties.a') OR (1=1")
    assert "not allowed" in message
    message = await error_of(client, **window, limit=1001)
    assert "1000" in message
    message = await error_of(client, **window, interval="fortnight")
    assert "interval" in message
    message = await error_of(client, since="2000-01-01", until="2026-01-01")
    assert "too long" in message
    message = await error_of(client, **window, timezone="Europe/Pariss")
    assert 'did you mean "Europe/Paris"' in message

    after = await call(client, **window)
    assert after["totals"]["count"] == 10


async def test_sample_data_shows_its_error_spike_day(app: App, client: Client) -> None:
    load_sample(app)
    out = await call(client, since="2026-09-01", until="2026-11-01", interval="day", limit=100)
    assert len(out["series"]) == 61
    worst = max(out["series"], key=lambda r: r["error_count"])
    assert worst["bucket_start"] == "2026-10-20T00:00:00+00:00"
    others = sorted(r["error_count"] for r in out["series"] if r is not worst)
    assert worst["error_count"] > 2 * others[-1]
    assert out["summary"].startswith("Error spike: 2026-10-20 (UTC) had 10 errors vs")
