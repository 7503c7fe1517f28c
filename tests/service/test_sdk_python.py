"""The real Python SDKs (posthog, segment-analytics-python, amplitude-analytics), unchanged but for
host and key, against a real `telemetry-mcp serve`; what they sent is read back through MCP tools."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from sdk_checks import (
    IP,
    check_privacy,
    check_user_ids,
    counts_by_type,
    events_of,
    need_module,
    tool,
    wait_for_events,
)
from svc import WRITE_KEY, ServiceProcess


def _run_id() -> str:
    return uuid.uuid4().hex[:10]


def _by_type(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["event_type"]: e for e in events}


async def test_posthog_python_sdk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    posthog = need_module("posthog")
    monkeypatch.delenv("POSTHOG_CAPTURE_MODE", raising=False)  # the SDK's default wire protocol (v0)
    user = f"py-ph-{_run_id()}"
    with ServiceProcess(tmp_path / "ph.duckdb") as svc:
        errors: list[Any] = []
        client = posthog.Posthog(WRITE_KEY, host=svc.url, on_error=lambda exc, batch: errors.append(exc))
        client.capture(
            "feature_used",
            distinct_id=user,
            properties={
                "component": "Editor",
                "duration_ms": 12.5,
                "api_secret": "s3cr3t-value",
                "note": "mail me at bob@example.com",
                "$ip": IP,
                "$current_url": "https://app.example/profile/abc-123-def-456?tab=settings",
            },
        )
        client.capture(
            "$pageview",
            distinct_id=user,
            properties={"$current_url": "https://app.example/docs/getting-started?utm=x", "$title": "Docs"},
        )
        client.capture("Report Exported", distinct_id=user, properties={"component": "Reports"})
        client.set(distinct_id=user, properties={"plan": "pro"})
        client.shutdown()  # flushes the queue and joins the consumer
        assert errors == []

        await wait_for_events(svc.url, 4)
        assert await counts_by_type(svc.url) == {
            "feature_used": 1,
            "page_view": 1,
            "report_exported": 1,
            "set": 1,
        }
        events = await events_of(svc.url)
        got = _by_type(events)
        used, view, exported = got["feature_used"], got["page_view"], got["report_exported"]
        assert (used["component"], used["duration_ms"], used["name"]) == ("Editor", 12.5, None)
        assert used["page"] == "/profile/[id]"  # from $current_url, anonymized
        assert (used["platform"], used["os"]) == ("server", "Linux")  # $lib posthog-python, $os
        assert used["properties"]["note"] == "mail me at [redacted:email]"
        assert (view["name"], view["page"]) == ("Docs", "/docs/getting-started")
        assert (exported["name"], exported["component"]) == ("Report Exported", "Reports")
        assert got["set"]["properties"]["$set"] == {"plan": "pro"}
        check_privacy(events, [user], {"api_secret"})
        await check_user_ids(svc.url, {user: 4})


async def test_posthog_python_sdk_on_capture_v1_gets_per_event_results(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    posthog = need_module("posthog")
    user = f"py-v1-{_run_id()}"
    with ServiceProcess(tmp_path / "v1.duckdb") as svc:
        errors: list[Any] = []
        client = posthog.Posthog(
            WRITE_KEY, host=svc.url, capture_mode="v1", on_error=lambda exc, batch: errors.append(exc)
        )
        client.capture("feature_used", distinct_id=user, properties={"component": "Editor", "$ip": IP})
        client.capture(
            "$pageview", distinct_id=user, properties={"$current_url": "https://app.example/a/123456"}
        )
        # a timestamp far in the future: our validation drops this one event, the SDK is told so
        client.capture("feature_used", distinct_id=user, timestamp=datetime(2999, 1, 1, tzinfo=UTC))
        client.shutdown()

        await wait_for_events(svc.url, 2)
        assert await counts_by_type(svc.url) == {"feature_used": 1, "page_view": 1}
        events = await events_of(svc.url)
        assert {e["page"] for e in events} == {None, "/a/[id]"}
        check_privacy(events, [user], set())
        await check_user_ids(svc.url, {user: 2})
        # the dropped event reached on_error as a terminal failure, nothing else did
        assert len(errors) == 1 and "drop" in str(errors[0]).lower(), errors


async def test_segment_python_sdk(tmp_path: Path) -> None:
    analytics = need_module("segment.analytics")
    user = f"py-seg-{_run_id()}"
    with ServiceProcess(tmp_path / "seg.duckdb") as svc:
        errors: list[Any] = []
        client = analytics.Client(WRITE_KEY, host=svc.url, on_error=lambda exc, batch: errors.append(exc))
        client.track(
            user,
            "Order Completed",
            {
                "component": "Checkout",
                "duration_ms": 40,
                "password": "hunter2",
                "client_secret": "abc",
                "contact": "alice@example.org",
            },
            context={"ip": IP, "os": {"name": "Linux"}},
        )
        client.page(user, "Docs", "Home", {"path": "/orders/123456?x=1", "component": "Nav"})
        client.screen(user, "App", "Main")
        client.identify(user, {"plan": "pro", "email": "alice@example.org"}, context={"ip": IP})
        client.flush()
        client.shutdown()
        assert errors == []

        await wait_for_events(svc.url, 4)
        assert await counts_by_type(svc.url) == {"order_completed": 1, "page_view": 2, "identify": 1}
        events = await events_of(svc.url)
        order = next(e for e in events if e["event_type"] == "order_completed")
        page, screen = (e for e in events if e["event_type"] == "page_view")
        identify = next(e for e in events if e["event_type"] == "identify")
        assert (order["name"], order["component"], order["duration_ms"]) == (
            "Order Completed",
            "Checkout",
            40.0,
        )
        assert (order["os"], order["platform"]) == ("Linux", "server")  # context.os, analytics-python
        assert order["properties"]["contact"] == "[redacted:email]"
        assert (page["name"], page["page"], page["component"]) == ("Home", "/orders/[id]", "Nav")
        assert page["properties"]["category"] == "Docs"
        assert (screen["name"], screen["platform"], screen["page"]) == ("Main", "mobile", None)
        assert screen["properties"]["category"] == "App"
        assert identify["properties"]["traits"] == {"plan": "pro"}  # the e-mail trait's key is excluded
        check_privacy(events, [user], {"password", "client_secret", "email"})
        await check_user_ids(svc.url, {user: 4})


async def test_amplitude_python_sdk(tmp_path: Path) -> None:
    amplitude = need_module("amplitude")
    user = f"py-amp-{_run_id()}"
    with ServiceProcess(tmp_path / "amp.duckdb") as svc:
        results: list[tuple[str, int, str | None]] = []
        config = amplitude.Config(
            server_url=f"{svc.url}/2/httpapi",
            callback=lambda event, code, message: results.append((event.event_type, code, message)),
        )
        client = amplitude.Amplitude(WRITE_KEY, config)
        client.track(
            amplitude.BaseEvent(
                "Song Played",
                user_id=user,
                os_name="Linux",
                platform="Web",
                ip=IP,
                event_properties={
                    "component": "Player",
                    "duration_ms": 7,
                    "auth_token": "tok-123",
                    "who": "carol@example.com",
                },
            )
        )
        client.track(
            amplitude.BaseEvent(
                "[Amplitude] Page Viewed",
                user_id=user,
                event_properties={
                    "[Amplitude] Page Path": "/songs/9876543",
                    "[Amplitude] Page Title": "Song",
                },
            )
        )
        client.identify(amplitude.Identify().set("plan", "pro"), amplitude.EventOptions(user_id=user))
        client.flush()
        client.shutdown()
        assert sorted(r[:2] for r in results) == [
            ("$identify", 200),
            ("Song Played", 200),
            ("[Amplitude] Page Viewed", 200),
        ]

        await wait_for_events(svc.url, 3)
        assert await counts_by_type(svc.url) == {"song_played": 1, "page_view": 1, "identify": 1}
        events = await events_of(svc.url)
        got = _by_type(events)
        song, view = got["song_played"], got["page_view"]
        assert (song["name"], song["component"], song["duration_ms"]) == ("Song Played", "Player", 7.0)
        assert (song["os"], song["platform"]) == ("Linux", "web")
        assert song["properties"]["who"] == "[redacted:email]"
        assert (view["name"], view["page"]) == ("Song", "/songs/[id]")
        assert got["identify"]["properties"]["user_properties"] == {"$set": {"plan": "pro"}}
        check_privacy(events, [user], {"auth_token"})
        await check_user_ids(svc.url, {user: 3})


async def test_a_wrong_key_gets_401_from_each_sdk_and_nothing_is_stored(tmp_path: Path) -> None:
    posthog = need_module("posthog")
    analytics = need_module("segment.analytics")
    amplitude = need_module("amplitude")
    wrong = "not-the-write-key"
    with ServiceProcess(tmp_path / "wrong.duckdb") as svc:
        errors: list[tuple[str, Any]] = []
        ph = posthog.Posthog(wrong, host=svc.url, on_error=lambda exc, batch: errors.append(("posthog", exc)))
        ph.capture("feature_used", distinct_id="someone-1", properties={"component": "Editor"})
        ph.shutdown()
        seg = analytics.Client(
            wrong, host=svc.url, on_error=lambda exc, batch: errors.append(("segment", exc))
        )
        seg.track("someone-1", "Order Completed")
        seg.shutdown()
        assert [(sdk, getattr(exc, "status", None)) for sdk, exc in errors] == [
            ("posthog", 401),
            ("segment", 401),
        ]

        delivered: list[int] = []
        amp = amplitude.Amplitude(
            wrong,
            amplitude.Config(
                server_url=f"{svc.url}/2/httpapi", callback=lambda e, code, m: delivered.append(code)
            ),
        )
        amp.track(amplitude.BaseEvent("Song Played", user_id="someone-1"))
        amp.flush()
        amp.shutdown()
        assert 200 not in delivered  # "Invalid API key": the SDK drops the batch, no retry loop

        described = await tool(svc.url, "describe_events", {})
        assert described["total_events"] == 0
