"""get_realtime_stats through the MCP server: recent windows, active users/sessions, counters, storage."""

from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
from mcp import Client

import telemetry_mcp
from helpers import load
from telemetry_mcp.analytics import realtime
from telemetry_mcp.server.app import App


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def recent_events(now: datetime) -> list[dict[str, Any]]:
    """Events a few seconds to hours before `now`; every one far from a window edge."""

    def ev(event_id: str, ago: timedelta, event_type: str, **fields: Any) -> dict[str, Any]:
        return {"event_id": event_id, "timestamp": iso(now - ago), "event_type": event_type, **fields}

    s, m, h = timedelta(seconds=1), timedelta(minutes=1), timedelta(hours=1)
    return [
        ev("r1", 10 * s, "page_view", user_id="u1", session_id="s1"),
        ev("r2", 20 * s, "error", user_id="u1", session_id="s1"),
        ev("r3", 3 * m, "page_view", user_id="u2"),  # derived session
        ev("r4", 4 * m, "user_interaction", session_id="s9"),  # anonymous: the session is the actor
        ev("r5", 10 * m, "page_view", user_id="u3"),
        ev("r6", 20 * m, "feature_used", user_id="u4", component="CommandPalette"),
        ev("r7", 25 * m, "page_view", user_id="u1", session_id="s2"),  # u1's second session
        ev("r8", 40 * m, "page_view", user_id="u5"),  # beyond the 30 min session timeout
        ev("r9", 3 * h, "page_view", user_id="u1", session_id="s0"),
    ]


async def call(client: Client, **args: Any) -> dict[str, Any]:
    result = await client.call_tool("get_realtime_stats", args)
    assert not result.is_error, result.content[0].text
    assert result.structured_content is not None
    return result.structured_content


async def error_of(client: Client, **args: Any) -> str:
    result = await client.call_tool("get_realtime_stats", args)
    assert result.is_error
    return str(result.content[0].text)


async def test_counts_recent_windows_active_users_and_sessions(app: App, client: Client) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    load(app, recent_events(now))
    out = await call(client)
    assert {k: out[k] for k in (
        "window", "active_window_minutes", "active_sessions", "active_users", "events_last_1m",
        "events_last_5m", "events_last_15m", "events_in_window", "events_per_second", "error_rate",
        "top_event_types", "truncated",
    )} == {
        "window": "5m",
        "active_window_minutes": 30.0,
        # u1 (s1 and s2), u2 (derived), s:s9, u3 (derived), u4 (derived): 5 actors, 6 sessions.
        "active_sessions": 6,
        "active_users": 5,
        "events_last_1m": 2,
        "events_last_5m": 4,
        "events_last_15m": 5,
        "events_in_window": 4,
        "events_per_second": 0.0133,  # 4 / 300 s
        "error_rate": 0.25,
        "top_event_types": [
            {"event_type": "page_view", "count": 2},
            {"event_type": "error", "count": 1},
            {"event_type": "user_interaction", "count": 1},
        ],
        "truncated": False,
    }  # fmt: skip
    assert out["storage"]["total_events"] == 9
    assert out["storage"]["oldest_event"] == iso(now - timedelta(hours=3))
    assert out["storage"]["newest_event"] == iso(now - timedelta(seconds=10))
    assert out["storage"]["database_bytes"] > 0
    assert out["summary"].startswith(
        "4 events in the last 5m (0.0133/s), error rate 25.0 %; 5 active users in 6 sessions (last 30 min). "
        "Top: page_view 2, error 1, user_interaction 1. Store: 9 events from "
    )


async def test_a_wider_window_changes_rate_error_rate_and_top_types_only(app: App, client: Client) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    load(app, recent_events(now))
    out = await call(client, window="1h", limit=2)
    assert (out["window"], out["events_in_window"], out["events_per_second"], out["error_rate"]) == (
        "1h", 8, 0.0022, 0.125,  # 8 events / 3600 s; 1 error of 8
    )  # fmt: skip
    assert out["top_event_types"] == [
        {"event_type": "page_view", "count": 5},
        {"event_type": "error", "count": 1},
    ]
    assert out["truncated"] is True
    assert (out["active_users"], out["events_last_15m"]) == (5, 5)


async def test_ingest_counters_report_rejections_duplicates_and_drops_since_start(
    app: App, client: Client
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    load(app, recent_events(now))
    app.ingestor.ingest(
        [
            {"event_id": "r1", "event_type": "page_view"},  # duplicate
            {"event_type": "Bad Type"},  # rejected
            {"event_type": "page_view", "do_not_track": True},  # dropped
        ]
    )
    out = await call(client)
    assert out["ingest"] == {"received": 12, "accepted": 9, "rejected": 1, "duplicates": 1, "dropped": 1}
    assert out["summary"].endswith(
        "Ingest since start: 12 received, 9 accepted, 1 rejected, 1 duplicates, 1 dropped. Health ok."
    )
    assert out["storage"]["total_events"] == 9


async def test_health_reports_versions_and_uptime(client: Client) -> None:
    out = await call(client)
    health = out["health"]
    assert (health["status"], health["version"], health["duckdb_version"]) == (
        "ok", telemetry_mcp.__version__, duckdb.__version__,
    )  # fmt: skip
    assert health["uptime_seconds"] >= 0


async def test_an_empty_store_answers_with_zeros(client: Client) -> None:
    out = await call(client)
    assert (out["active_users"], out["active_sessions"], out["events_last_15m"], out["error_rate"]) == (
        0,
        0,
        0,
        0.0,
    )
    assert out["storage"] | {"database_bytes": 0} == {
        "total_events": 0, "oldest_event": None, "newest_event": None, "database_bytes": 0,
    }  # fmt: skip
    assert "Store: empty." in out["summary"]


async def test_total_events_counts_every_stored_event_not_only_recent_ones(app: App, client: Client) -> None:
    load(app, [{"event_id": f"old{i}", "timestamp": f"2020-01-0{i + 1}T00:00:00Z", "event_type": "page_view"}
               for i in range(3)])  # fmt: skip
    out = await call(client)
    assert (out["storage"]["total_events"], out["events_in_window"]) == (3, 0)
    assert (out["storage"]["oldest_event"], out["storage"]["newest_event"]) == (
        "2020-01-01T00:00:00Z", "2020-01-03T00:00:00Z",
    )  # fmt: skip


def test_an_event_stamped_slightly_ahead_still_counts_as_recent(app: App) -> None:
    now = datetime(2026, 10, 1, 12, 0, 0)
    load(
        app,
        [
            {
                "event_id": "skew",
                "timestamp": "2026-10-01T12:02:00Z",
                "event_type": "page_view",
                "user_id": "u",
            }
        ],
    )
    out = realtime.run(app.store, now=now)
    assert (out.events_last_1m, out.active_users, out.now) == (1, 1, "2026-10-01T12:00:00Z")


async def test_bad_windows_and_limits_are_refused_and_the_server_keeps_answering(client: Client) -> None:
    assert "not a duration" in await error_of(client, window="5 minutes")
    assert "between 1s and 7d" in await error_of(client, window="30d")
    assert "between 1s and 7d" in await error_of(client, window="0m")
    assert "1000" in await error_of(client, limit=1001)
    assert "not a duration" in await error_of(client, window="5m'; DROP TABLE events; --")
    assert (await call(client))["health"]["status"] == "ok"
