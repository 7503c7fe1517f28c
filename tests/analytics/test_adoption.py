"""analyze_feature_adoption through the MCP server: rates, series, trends over complete periods, flags."""

from typing import Any

from mcp import Client

from helpers import load, load_sample
from telemetry_mcp.analytics.adoption import normalized_slope
from telemetry_mcp.server.app import App


async def call(client: Client, **args: Any) -> dict[str, Any]:
    result = await client.call_tool("analyze_feature_adoption", args)
    assert not result.is_error, result.content[0].text
    assert result.structured_content is not None
    return result.structured_content


async def error_of(client: Client, **args: Any) -> str:
    result = await client.call_tool("analyze_feature_adoption", args)
    assert result.is_error
    return str(result.content[0].text)


def uses(
    prefix: str, ts: str, users: range, event_type: str = "feature_used", **fields: Any
) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"{prefix}-{u:02d}",
            "timestamp": ts,
            "event_type": event_type,
            "user_id": f"u{u:02d}",
            **fields,
        }
        for u in users
    ]


# The range 2026-09-09 (Wed) .. 2026-10-07 (Wed), weekly: a partial week of 09-07, complete weeks of 09-14,
# 09-21 and 09-28, a partial week of 10-05. 20 users (u00..u19) are active in each complete week.
def trend_data() -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for week, day in ((1, "2026-09-15"), (2, "2026-09-22"), (3, "2026-09-29")):
        events += uses(f"pv{week}", f"{day}T12:00:00Z", range(20), "page_view")
    # CommandPalette climbs 0.1 → 0.2 → 0.3 over the complete weeks.
    events += uses("cp1", "2026-09-15T10:00:00Z", range(2), component="CommandPalette")
    events += uses("cp2", "2026-09-22T10:00:00Z", range(4), component="CommandPalette")
    events += uses("cp3", "2026-09-29T10:00:00Z", range(6), component="CommandPalette")
    # LegacyCarousel fades 0.3 → 0.2 → 0.1.
    events += uses("lc1", "2026-09-15T10:00:00Z", range(6), component="LegacyCarousel")
    events += uses("lc2", "2026-09-22T10:00:00Z", range(4), component="LegacyCarousel")
    events += uses("lc3", "2026-09-29T10:00:00Z", range(2), component="LegacyCarousel")
    # Button holds: 0.5, 0.5, 0.55.
    events += uses("bt1", "2026-09-15T10:00:00Z", range(10), component="Button")
    events += uses("bt2", "2026-09-22T10:00:00Z", range(10), component="Button")
    events += uses("bt3", "2026-09-29T10:00:00Z", range(11), component="Button")
    # Partial weeks: if they counted, CommandPalette would fall (1.0 first) and LegacyCarousel
    # would climb (1.0 last).
    events += uses("cp0", "2026-09-10T09:00:00Z", range(4), component="CommandPalette")
    events += uses("lc4", "2026-10-06T08:00:00Z", range(1), component="LegacyCarousel")
    # Before `since`: counted nowhere.
    events += uses("out", "2026-09-08T09:00:00Z", range(30, 31), component="CommandPalette")
    return events


WEEKS = ["2026-09-07", "2026-09-14", "2026-09-21", "2026-09-28", "2026-10-05"]


def series(out: dict[str, Any], feature: str) -> list[tuple[str, int, float]]:
    row = next(f for f in out["features"] if f["feature"] == feature)
    return [(p["period_start"][:10], p["users"], p["adoption_rate"]) for p in row["series"]]


async def test_weekly_adoption_rates_series_and_trends_over_complete_weeks(app: App, client: Client) -> None:
    load(app, trend_data())
    out = await call(client, since="2026-09-09", until="2026-10-07")
    assert (out["since"], out["until"], out["active_users"]) == (
        "2026-09-09T00:00:00Z",
        "2026-10-07T00:00:00Z",
        20,
    )
    assert [(p["period_start"], p["active_users"], p["complete"]) for p in out["periods"]] == [
        ("2026-09-07T00:00:00+00:00", 4, False),
        ("2026-09-14T00:00:00+00:00", 20, True),
        ("2026-09-21T00:00:00+00:00", 20, True),
        ("2026-09-28T00:00:00+00:00", 20, True),
        ("2026-10-05T00:00:00+00:00", 1, False),
    ]
    keys = ("feature", "events", "users", "adoption_rate", "first_seen", "last_seen", "trend",
            "trend_change_pct", "deprecation_candidate")  # fmt: skip
    assert [tuple(f[k] for k in keys) for f in out["features"]] == [
        # Button: slope of (0.5, 0.5, 0.55) = 0.025 per week; mean 0.51667 → 0.025 / 0.51667 = 0.0484 → 4.84 %.
        ("Button", 31, 11, 0.55, "2026-09-15T10:00:00Z", "2026-09-29T10:00:00Z", "stable", 4.84, False),
        # Ties on users (6) go to more events: 16 before 13.
        # CommandPalette: slope of (0.1, 0.2, 0.3) = 0.1; mean 0.2 → +0.5 → 50.0 % per week.
        ("CommandPalette", 16, 6, 0.3, "2026-09-10T09:00:00Z", "2026-09-29T10:00:00Z", "up", 50.0, False),
        # LegacyCarousel: slope -0.1, mean 0.2 → -0.5 → -50.0 %; adoption 0.3 is too high to be a deprecation candidate.
        ("LegacyCarousel", 13, 6, 0.3, "2026-09-15T10:00:00Z", "2026-10-06T08:00:00Z", "down", -50.0, False),
    ]
    assert series(out, "CommandPalette") == [
        ("2026-09-07", 4, 1.0), ("2026-09-14", 2, 0.1), ("2026-09-21", 4, 0.2), ("2026-09-28", 6, 0.3),
        ("2026-10-05", 0, 0.0),
    ]  # fmt: skip
    assert series(out, "LegacyCarousel") == [
        ("2026-09-07", 0, 0.0), ("2026-09-14", 6, 0.3), ("2026-09-21", 4, 0.2), ("2026-09-28", 2, 0.1),
        ("2026-10-05", 1, 1.0),
    ]  # fmt: skip
    assert out["truncated"] is False
    assert out["summary"] == (
        "Fastest climbing: CommandPalette (+50.0 % of its mean rate per week, adoption 30.0 %). "
        "Fastest fading: LegacyCarousel (-50.0 % per week, adoption 30.0 %). "
        "Most used: Button, 11 of 20 active users (55.0 %). "
        "3 component values, 2026-09-09T00:00:00Z to 2026-10-07T00:00:00Z."
    )


def test_the_normalized_slope_is_the_least_squares_slope_over_the_mean() -> None:
    # x = 0..3, y = 0.1, 0.1, 0.2, 0.4: x̄ = 1.5, ȳ = 0.2;
    # Σ(x-x̄)(y-ȳ) = (-1.5)(-0.1) + (-0.5)(-0.1) + 0 + (1.5)(0.2) = 0.5; Σ(x-x̄)² = 5 → slope 0.1 → 0.1 / 0.2.
    assert normalized_slope([(0, 0.1), (1, 0.1), (2, 0.2), (3, 0.4)]) == ("up", 0.5)
    assert normalized_slope([(0, 0.4), (1, 0.2), (2, 0.1), (3, 0.1)]) == ("down", -0.5)
    # Slope 0.0049 on a mean of 0.1 is +4.9 % of the mean per period: below the 5 % threshold.
    assert normalized_slope([(0, 0.0951), (1, 0.1), (2, 0.1049)]) == ("stable", 0.049)
    # Exactly +5 % counts as up.
    assert normalized_slope([(0, 0.095), (1, 0.1), (2, 0.105)]) == ("up", 0.05)
    assert normalized_slope([(0, 0.3), (1, 0.1)]) == ("insufficient_data", None)
    assert normalized_slope([(0, 0.0), (1, 0.0), (2, 0.0)]) == ("stable", 0.0)
    # A complete period without active users is left out: the fit runs on x = 0, 2, 3 (x̄ = 5/3,
    # ȳ = 0.8/3): Σ(x-x̄)(y-ȳ) = 1.4/3, Σ(x-x̄)² = 14/3 → slope 0.1 → 0.1 / (0.8/3) = 0.375.
    assert normalized_slope([(0, 0.1), (2, 0.3), (3, 0.4)]) == ("up", 0.375)


async def test_fewer_than_three_complete_periods_give_insufficient_data(app: App, client: Client) -> None:
    load(app, trend_data())
    # Monthly over 09-09 .. 10-07: September and October are both partial.
    out = await call(client, since="2026-09-09", until="2026-10-07", period="month")
    assert [(p["period_start"], p["active_users"], p["complete"]) for p in out["periods"]] == [
        ("2026-09-01T00:00:00+00:00", 20, False),
        ("2026-10-01T00:00:00+00:00", 1, False),
    ]
    assert {f["feature"]: (f["trend"], f["trend_change_pct"]) for f in out["features"]} == {
        "Button": ("insufficient_data", None),
        "CommandPalette": ("insufficient_data", None),
        "LegacyCarousel": ("insufficient_data", None),
    }
    assert out["summary"].startswith("Only 0 complete months in the range: too few for trends (need 3).")


async def test_a_rare_fading_feature_is_a_deprecation_candidate(app: App, client: Client) -> None:
    events: list[dict[str, Any]] = []
    for week, day in ((1, "2026-09-15"), (2, "2026-09-22"), (3, "2026-09-29")):
        events += uses(f"pv{week}", f"{day}T12:00:00Z", range(40), "page_view")
    # OldWidget: 1/40, 1/40, 0 → slope -0.0125, mean 0.016667 → -0.75; adoption 1/40 = 0.025 < 0.05.
    events += uses("ow1", "2026-09-15T10:00:00Z", range(1), component="OldWidget")
    events += uses("ow2", "2026-09-22T10:00:00Z", range(1), component="OldWidget")
    # Carousel: 0.25, 0.2, 0.15 → slope -0.05, mean 0.2 → -0.25; adoption 10/40 = 0.25: fading, still used.
    events += uses("ca1", "2026-09-15T10:00:00Z", range(10), component="Carousel")
    events += uses("ca2", "2026-09-22T10:00:00Z", range(8), component="Carousel")
    events += uses("ca3", "2026-09-29T10:00:00Z", range(6), component="Carousel")
    load(app, events)
    out = await call(client, since="2026-09-14", until="2026-10-05")
    assert all(p["complete"] for p in out["periods"]) and len(out["periods"]) == 3
    assert [(f["feature"], f["adoption_rate"], f["trend"], f["trend_change_pct"], f["deprecation_candidate"])
            for f in out["features"]] == [
        ("Carousel", 0.25, "down", -25.0, False),
        ("OldWidget", 0.025, "down", -75.0, True),
    ]  # fmt: skip
    assert out["summary"] == (
        "Fastest fading: OldWidget (-75.0 % per week, adoption 2.5 %, deprecation candidate). "
        "Most used: Carousel, 10 of 40 active users (25.0 %). Deprecation candidates: OldWidget. "
        "2 component values, 2026-09-14T00:00:00Z to 2026-10-05T00:00:00Z."
    )


async def test_features_by_name_restricted_to_a_list_and_bounded_by_limit(app: App, client: Client) -> None:
    events = uses("a", "2026-09-15T10:00:00Z", range(3), name="export")
    events += uses("b", "2026-09-15T10:00:00Z", range(2), name="import")
    events += uses("c", "2026-09-15T10:00:00Z", range(1), name="share")
    events += uses("old", "2026-01-05T10:00:00Z", range(1), name="print")  # known, but not in the range
    load(app, events)
    out = await call(client, feature_by="name", since="2026-09-14", until="2026-09-21", limit=2)
    assert [(f["feature"], f["users"], f["adoption_rate"]) for f in out["features"]] == [
        ("export", 3, 1.0), ("import", 2, 0.6667),
    ]  # fmt: skip
    assert out["truncated"] is True
    out = await call(
        client, feature_by="name", features=["share", "print"], since="2026-09-14", until="2026-09-21"
    )
    assert [
        (f["feature"], f["events"], f["users"], f["first_seen"], f["trend"]) for f in out["features"]
    ] == [
        ("share", 1, 1, "2026-09-15T10:00:00Z", "insufficient_data"),
        ("print", 0, 0, None, "insufficient_data"),
    ]
    assert out["truncated"] is False


async def test_filters_narrow_both_feature_users_and_active_users(app: App, client: Client) -> None:
    events = uses("w", "2026-09-15T10:00:00Z", range(4), "page_view", platform="web")
    events += uses("m", "2026-09-15T10:00:00Z", range(4, 10), "page_view", platform="mobile")
    events += uses("f", "2026-09-15T11:00:00Z", range(2), component="Tooltip", platform="web")
    load(app, events)
    out = await call(client, since="2026-09-14", until="2026-09-21",
                     filters=[{"field": "platform", "op": "eq", "value": "web"}])  # fmt: skip
    assert (out["active_users"], out["features"][0]["adoption_rate"]) == (4, 0.5)
    out = await call(client, since="2026-09-14", until="2026-09-21")
    assert (out["active_users"], out["features"][0]["adoption_rate"]) == (10, 0.2)


async def test_periods_follow_the_timezone(app: App, client: Client) -> None:
    # 2026-09-13T23:00Z is Sunday in UTC but Monday 09-14 01:00 in Paris: inside the Paris week.
    events = uses("a", "2026-09-13T23:00:00Z", range(1), component="Chart")
    load(app, events)
    out = await call(client, since="2026-09-14", until="2026-09-21", timezone="Europe/Paris")
    assert out["since"] == "2026-09-13T22:00:00Z"
    assert [(p["period_start"], p["active_users"], p["complete"]) for p in out["periods"]] == [
        ("2026-09-14T00:00:00+02:00", 1, True),
    ]


async def test_unknown_features_and_hostile_arguments_are_refused(app: App, client: Client) -> None:
    load(app, trend_data())
    msg = await error_of(client, features=["CommandPalete"], since="2026-09-09", until="2026-10-07")
    assert 'unknown component "CommandPalete"' in msg and 'did you mean "CommandPalette"' in msg
    assert "feature_by" in await error_of(client, feature_by="user_id")
    assert "period" in await error_of(client, period="year")
    assert "1000" in await error_of(client, limit=1001)
    assert "too long" in await error_of(client, since="1000w")
    assert "unknown field" in await error_of(
        client, filters=[{"field": "name; DROP TABLE events", "op": "eq", "value": "x"}]
    )
    msg = await error_of(client, features=["x' OR 1=1 --"])
    assert "unknown component" in msg
    out = await call(client, since="2026-09-09", until="2026-10-07")
    assert out["active_users"] == 20


async def test_sample_data_shows_command_palette_climbing_and_legacy_carousel_fading(
    app: App, client: Client
) -> None:
    load_sample(app)
    # The eight weeks before the sample ends: the palette climbs, the legacy carousel fades but is still
    # used by too many users over the whole range to be a deprecation candidate.
    out = await call(
        client, since="2026-09-07", until="2026-11-01", features=["CommandPalette", "LegacyCarousel"]
    )
    by = {f["feature"]: f for f in out["features"]}
    assert (by["CommandPalette"]["trend"], by["LegacyCarousel"]["trend"]) == ("up", "down")
    assert by["CommandPalette"]["trend_change_pct"] > 5.0 > -5.0 > by["LegacyCarousel"]["trend_change_pct"]
    assert out["summary"].startswith("Fastest climbing: CommandPalette")
    assert "Fastest fading: LegacyCarousel" in out["summary"]
    # The last four weeks (fixtures/README.md story 3): the carousel is gone from 2.3.0, a candidate.
    out = await call(
        client, since="2026-10-05", until="2026-11-01", features=["CommandPalette", "LegacyCarousel"]
    )
    by = {f["feature"]: f for f in out["features"]}
    assert out["active_users"] == 453
    assert [(p["period_start"][:10], p["active_users"], p["complete"]) for p in out["periods"]] == [
        ("2026-10-05", 144, True), ("2026-10-12", 145, True), ("2026-10-19", 141, True), ("2026-10-26", 114, False),
    ]  # fmt: skip
    legacy = by["LegacyCarousel"]
    assert (legacy["users"], legacy["adoption_rate"], legacy["trend"], legacy["deprecation_candidate"]) == (
        12, 0.0265, "down", True,
    )  # fmt: skip
    assert [p["users"] for p in legacy["series"]] == [7, 4, 2, 0]
    assert [p["users"] for p in by["CommandPalette"]["series"]] == [7, 25, 32, 50]
    assert "Deprecation candidates: LegacyCarousel." in out["summary"]
