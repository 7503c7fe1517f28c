"""analyze_performance through the MCP server: percentiles, regressions, fps direction, guard rails."""

from typing import Any

from mcp import Client

from helpers import load, load_sample, text_of
from telemetry_mcp.server.app import App

WINDOW = {"since": "2026-10-01", "until": "2026-10-08"}


def loads(
    prefix: str, component: str, version: str, durations: list[float | None], **extra: Any
) -> list[dict[str, Any]]:
    """component_load events one minute apart on 2026-10-02."""
    out = []
    for i, d in enumerate(durations):
        e: dict[str, Any] = {
            "event_id": f"{prefix}{i}",
            "timestamp": f"2026-10-02T10:{i:02d}:00Z",
            "event_type": "component_load",
            "component": component,
            "service_version": version,
            "user_id": f"{prefix}-user",
            **extra,
        }
        if d is not None:
            e["duration_ms"] = d
        out.append(e)
    return out


RELEASES = [
    *loads("ls22-", "LoaderSpinner", "2.2.0", [100, 200, 300, 400, 500]),
    *loads("ls23-", "LoaderSpinner", "2.3.0", [150, 250, 350, 450, 700]),
    *loads("tt22-", "Tooltip", "2.2.0", [100]),
    *loads("tt23-", "Tooltip", "2.3.0", [110]),  # exactly +10 %: not a regression at the default threshold
    *loads("bt22-", "Button", "2.2.0", [20, 22]),
    *loads("bt23-", "Button", "2.3.0", [20, 21, None]),  # a load without duration is no sample
    *loads("md23-", "Modal", "2.3.0", [80]),  # only in the candidate: nothing to compare
    {"event_id": "err1", "timestamp": "2026-10-02T11:00:00Z", "event_type": "error",
     "component": "LoaderSpinner", "service_version": "2.3.0"},
    {"event_id": "api1", "timestamp": "2026-10-02T11:00:00Z", "event_type": "api_call",
     "component": "DataTable", "duration_ms": 240.5, "service_version": "2.3.0"},
]  # fmt: skip


def stats(group: dict[str, Any]) -> tuple[Any, ...]:
    keys = ("key", "count", "avg", "min", "max", "p50", "p95", "p99", "error_rate")
    return tuple(group[k] for k in keys)


def regression(row: dict[str, Any]) -> tuple[Any, ...]:
    keys = ("key", "baseline_count", "candidate_count", "baseline_p50", "candidate_p50",
            "baseline_p95", "candidate_p95", "change_pct", "regressed")  # fmt: skip
    return tuple(row[k] for k in keys)


async def call(client: Client, **args: Any) -> dict[str, Any]:
    result = await client.call_tool("analyze_performance", args)
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    return dict(result.structured_content)


async def error_of(client: Client, **args: Any) -> str:
    result = await client.call_tool("analyze_performance", args)
    assert result.is_error
    return text_of(result)


async def test_load_time_per_component_slowest_p95_first_with_error_rate(app: App, client: Client) -> None:
    load(app, RELEASES)
    out = await call(client, **WINDOW)
    assert [stats(g) for g in out["groups"]] == [
        ("LoaderSpinner", 10, 340.0, 100.0, 700.0, 325.0, 610.0, 682.0, 0.0909),
        ("Tooltip", 2, 105.0, 100.0, 110.0, 105.0, 109.5, 109.9, 0.0),
        ("Modal", 1, 80.0, 80.0, 80.0, 80.0, 80.0, 80.0, 0.0),
        ("Button", 4, 20.75, 20.0, 22.0, 20.5, 21.85, 21.97, 0.0),
    ]
    assert stats(out["overall"]) == ("all", 17, 221.9412, 20.0, 700.0, 150.0, 540.0, 668.0, 0.05)
    assert out["unit"] == "ms"
    assert out["direction"] == "lower_is_better"
    assert out["compare"] is None
    assert out["regressions"] == []
    assert out["summary"].startswith(
        "Slowest component by load_time p95: LoaderSpinner 610.0 ms (p50 325.0, n=10, error rate 9.1 %)."
    )


async def test_version_compare_flags_the_regression_and_not_exactly_ten_percent(
    app: App, client: Client
) -> None:
    load(app, RELEASES)
    out = await call(client, **WINDOW, compare={"baseline_version": "2.2.0", "candidate_version": "2.3.0"})
    assert [regression(r) for r in out["regressions"]] == [
        ("LoaderSpinner", 5, 5, 300.0, 350.0, 480.0, 650.0, 35.4167, True),
        ("Tooltip", 1, 1, 100.0, 110.0, 100.0, 110.0, 10.0, False),
        ("Button", 2, 2, 21.0, 20.5, 21.9, 20.95, -4.3379, False),
    ]
    assert out["compare"] == {
        "mode": "versions", "baseline": "2.2.0", "candidate": "2.3.0",
        "baseline_since": "2026-10-01T00:00:00Z", "baseline_until": "2026-10-08T00:00:00Z",
        "candidate_since": "2026-10-01T00:00:00Z", "candidate_until": "2026-10-08T00:00:00Z",
        "threshold": 0.1, "groups_compared": 3, "regressed_count": 1,
    }  # fmt: skip
    assert out["summary"].startswith(
        "LoaderSpinner load_time p95 rose 35.4 % from 2.2.0 to 2.3.0 (p95 480.0 → 650.0 ms). "
        "1 of 3 groups regressed beyond 10.0 %."
    )


async def test_a_lower_threshold_flags_the_ten_percent_change(app: App, client: Client) -> None:
    load(app, RELEASES)
    out = await call(
        client, **WINDOW, threshold=0.05, compare={"baseline_version": "2.2.0", "candidate_version": "2.3.0"}
    )
    assert [(r["key"], r["regressed"]) for r in out["regressions"]] == [
        ("LoaderSpinner", True),
        ("Tooltip", True),
        ("Button", False),
    ]


async def test_no_regression_is_said_plainly(app: App, client: Client) -> None:
    load(app, RELEASES)
    out = await call(
        client,
        **WINDOW,
        component="Button",
        compare={"baseline_version": "2.2.0", "candidate_version": "2.3.0"},
    )
    assert out["summary"].startswith(
        "No load_time p95 regression beyond 10.0 % from 2.2.0 to 2.3.0 across 1 group; "
        "largest change: Button load_time -4.3 % (p95 21.9 → 20.9 ms)."
    )


async def test_group_by_app_version_is_an_alias_of_service_version(app: App, client: Client) -> None:
    load(app, RELEASES)
    out = await call(client, **WINDOW, group_by="app_version", component="LoaderSpinner")
    assert [stats(g) for g in out["groups"]] == [
        ("2.3.0", 5, 380.0, 150.0, 700.0, 350.0, 650.0, 690.0, 0.1667),
        ("2.2.0", 5, 300.0, 100.0, 500.0, 300.0, 480.0, 496.0, 0.0),
    ]


FPS = [
    {"event_id": f"f{i}", "timestamp": ts, "event_type": "performance", "name": "fps", "unit": "fps",
     "component": comp, "platform": platform, "value": value}
    for i, (ts, comp, platform, value) in enumerate([
        # previous week
        ("2026-09-25T10:00:00Z", "Carousel", "web", 58),
        ("2026-09-25T10:01:00Z", "Carousel", "web", 60),
        ("2026-09-25T10:02:00Z", "Chart", "mobile", 40),
        # this week
        ("2026-10-02T10:00:00Z", "Carousel", "web", 50),
        ("2026-10-02T10:01:00Z", "Carousel", "web", 52),
        ("2026-10-02T10:02:00Z", "Chart", "mobile", 30),
        ("2026-10-02T10:03:00Z", "Chart", "mobile", 50),
    ])
]  # fmt: skip


async def test_for_fps_the_lowest_p95_comes_first(app: App, client: Client) -> None:
    load(app, FPS)
    out = await call(client, **WINDOW, metric="fps", group_by="platform")
    assert out["direction"] == "higher_is_better"
    assert [stats(g) for g in out["groups"]] == [
        ("mobile", 2, 40.0, 30.0, 50.0, 40.0, 49.0, 49.8, 0.0),
        ("web", 2, 51.0, 50.0, 52.0, 51.0, 51.9, 51.98, 0.0),
    ]
    assert out["summary"].startswith("Lowest platform by fps p95: mobile 49.0 fps")


async def test_previous_period_compare_treats_lower_fps_as_worse(app: App, client: Client) -> None:
    load(app, FPS)
    out = await call(client, **WINDOW, metric="fps", compare={"previous_period": True})
    assert [regression(r) for r in out["regressions"]] == [
        ("Carousel", 2, 2, 59.0, 51.0, 59.9, 51.9, -13.3556, True),
        ("Chart", 1, 2, 40.0, 40.0, 40.0, 49.0, 22.5, False),
    ]
    assert out["compare"]["baseline_since"] == "2026-09-24T00:00:00Z"
    assert out["compare"]["baseline_until"] == "2026-10-01T00:00:00Z"
    assert out["summary"].startswith(
        "Carousel fps p95 fell 13.4 % vs the previous period (p95 59.9 → 51.9 fps)."
    )


async def test_other_metrics_read_their_own_events(app: App, client: Client) -> None:
    load(app, [*RELEASES, *FPS])
    api = await call(client, **WINDOW, metric="api_latency", group_by="none")
    assert [stats(g) for g in api["groups"]] == [("all", 1, 240.5, 240.5, 240.5, 240.5, 240.5, 240.5, 0.0417)]
    load(app, [{"event_id": "cls", "timestamp": "2026-10-03T00:00:00Z", "event_type": "performance",
                "name": "layout_shift", "value": 0.25, "unit": "score", "component": "Modal"}])  # fmt: skip
    custom = await call(client, **WINDOW, metric="layout_shift")
    assert [stats(g) for g in custom["groups"]] == [("Modal", 1, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.0)]
    assert custom["unit"] == "score"
    empty = await call(client, **WINDOW, metric="memory")
    assert empty["groups"] == []
    assert empty["summary"] == "No memory samples (value of performance events named memory) in range."


async def test_groups_are_cut_at_limit(app: App, client: Client) -> None:
    load(app, RELEASES)
    out = await call(client, **WINDOW, limit=2)
    assert [g["key"] for g in out["groups"]] == ["LoaderSpinner", "Tooltip"]
    assert out["groups_truncated"] is True
    assert out["truncated"] is True


async def test_bad_compare_arguments_say_what_is_accepted(app: App, client: Client) -> None:
    load(app, RELEASES)
    message = await error_of(client, **WINDOW, compare={"baseline_version": "2.2.0"})
    assert "needs both baseline_version and candidate_version" in message
    message = await error_of(
        client,
        **WINDOW,
        compare={"previous_period": True, "baseline_version": "2.2.0", "candidate_version": "2.3.0"},
    )
    assert "not both" in message
    message = await error_of(
        client, **WINDOW, compare={"baseline_version": "2.2", "candidate_version": "2.3.0"}
    )
    assert 'unknown service_version "2.2"' in message
    assert 'did you mean "2.2.0"' in message
    message = await error_of(
        client,
        **WINDOW,
        group_by="service_version",
        compare={"baseline_version": "2.2.0", "candidate_version": "2.3.0"},
    )
    assert "group_by component, platform, framework or none" in message
    message = await error_of(
        client, **WINDOW, compare={"baseline_version": "2.2.0", "candidate_version": "2.2.0"}
    )
    assert "must differ" in message


async def test_unknown_component_and_metric_suggest_the_closest_known_name(app: App, client: Client) -> None:
    load(app, RELEASES)
    message = await error_of(client, **WINDOW, component="LoaderSpiner")
    assert 'unknown component "LoaderSpiner" — did you mean "LoaderSpinner"' in message
    message = await error_of(client, **WINDOW, metric="lod_time")
    assert 'unknown metric "lod_time" — did you mean "load_time"' in message


async def test_hostile_arguments_are_refused_or_harmless_and_the_server_keeps_answering(
    app: App, client: Client
) -> None:
    load(app, RELEASES)
    harmless = await call(
        client, **WINDOW, filters=[{"field": "platform", "op": "eq", "value": "x' OR 1=1 --"}]
    )
    assert harmless["groups"] == []
    assert harmless["overall"]["count"] == 0
    message = await error_of(client, **WINDOW, metric="fps' OR '1'='1")
    assert "unknown metric" in message
    message = await error_of(client, **WINDOW, filters=[{"field": "ts; DROP TABLE events", "value": 1}])
    assert "unknown field" in message
    message = await error_of(client, **WINDOW, group_by="component; DROP TABLE events")
    assert "group_by" in message
    message = await error_of(client, **WINDOW, limit=1001)
    assert "1000" in message
    message = await error_of(client, **WINDOW, threshold=-0.1)
    assert "threshold" in message
    message = await error_of(client, since="1900-01-01", until="2026-01-01")
    assert "too long" in message or "1970" in message

    after = await call(client, **WINDOW)
    assert after["overall"]["count"] == 17


async def test_sample_data_shows_the_loader_spinner_regression_in_2_3_0(app: App, client: Client) -> None:
    load_sample(app)
    out = await call(
        client,
        since="2026-09-01",
        until="2026-11-01",
        metric="load_time",
        compare={"baseline_version": "2.2.0", "candidate_version": "2.3.0"},
    )
    worst = out["regressions"][0]
    assert worst["key"] == "LoaderSpinner"
    assert worst["regressed"] is True
    assert 25.0 < worst["change_pct"] < 60.0
    assert out["summary"].startswith("LoaderSpinner load_time p95 rose ")
    assert "from 2.2.0 to 2.3.0" in out["summary"]
