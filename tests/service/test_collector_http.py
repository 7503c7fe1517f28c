"""The collector's HTTP contract, in process (the ASGI app over httpx): keys, limits, partial
batches, back-pressure, CORS, the PostHog start-up endpoints, and the operations endpoints."""

from __future__ import annotations

import base64
import gzip
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from telemetry_mcp.config import Settings, load_settings
from telemetry_mcp.server.app import App, open_app
from telemetry_mcp.service.app import build_app
from telemetry_mcp.service.committer import Committer
from telemetry_mcp.service.context import ServiceContext
from telemetry_mcp.service.metrics import ServiceMetrics
from telemetry_mcp.service.owner import OwnerInfo
from telemetry_mcp.service.workers import Workers

KEY = "collector-key-123"
TEST_SALT = "00112233445566778899aabbccddeeff"


def _settings() -> Settings:
    return load_settings(
        {"db": ":memory:", "threads": 2, "salt": TEST_SALT, "max_request_bytes": 64 * 1024}, env={}
    )


@pytest.fixture
def settings() -> Settings:
    return _settings()


@pytest.fixture(scope="module")
def worker_pool() -> Iterator[Workers]:
    """Two real collector worker processes, started once for the module and ready before use."""
    settings = _settings()
    pool = Workers(settings, bytes.fromhex(TEST_SALT), KEY, 2)
    pool.start()
    deadline = time.monotonic() + 120
    while not pool.ready and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pool.ready, "the collector workers did not start"
    yield pool
    pool.close()


@pytest.fixture
def app(settings: Settings) -> Iterator[App]:
    application = open_app(settings)
    yield application
    application.store.close()


@pytest.fixture(params=["threads", "workers"])
def ctx(app: App, request: pytest.FixtureRequest) -> Iterator[ServiceContext]:
    """Every test runs twice: requests prepared in threads of the serve, and in worker processes."""
    committer = Committer(app.ingestor)
    holder: list[ServiceContext] = []
    workers = request.getfixturevalue("worker_pool") if request.param == "workers" else None
    context = ServiceContext(
        app=app,
        owner=OwnerInfo.new("http://127.0.0.1:1", "serve"),
        write_key=KEY,
        committer=committer,
        metrics=ServiceMetrics(lambda: holder[0].store_gauges()),
        workers=workers,
    )
    holder.append(context)
    yield context
    committer.close()


@pytest.fixture
async def http(ctx: ServiceContext) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(ctx, "127.0.0.1"))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        yield client


def _count(app: App, where: str = "TRUE", params: list[Any] | None = None) -> int:
    return int(app.store.fetch(f"SELECT count(*) FROM events WHERE {where}", params or [])[0][0])


def _ph(n: int, key: str = KEY, **extra: Any) -> dict[str, Any]:
    return {
        "api_key": key,
        "batch": [{"event": "feature_used", "distinct_id": f"u{i}", **extra} for i in range(n)],
    }


async def test_posthog_batch_is_answered_exactly_status_1_and_stored(
    http: httpx.AsyncClient, app: App
) -> None:
    for path in ("/batch/", "/batch", "/capture/", "/e/", "/e", "/i/v0/e/", "/i/v0/e"):
        r = await http.post(path, json=_ph(2))
        assert (r.status_code, r.json()) == (200, {"status": 1}), path
    assert _count(app) == 14


@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [
        ("/batch/", _ph(3, key="wrong-key-000"), {}),
        ("/batch/", {"batch": [{"event": "x", "distinct_id": "u"}]}, {}),
        ("/v1/batch", {"batch": [{"type": "track", "event": "x", "userId": "u"}]},
         {"authorization": "Basic " + base64.b64encode(b"wrong-key-000:").decode()}),
        ("/v1/track", {"type": "track", "event": "x", "userId": "u", "writeKey": "nope-nope-nope"}, {}),
        ("/2/httpapi", {"api_key": "wrong-key-000", "events": [{"event_type": "x", "user_id": "user-1"}]}, {}),
        ("/api/v1/events", {"events": [{"event_type": "x"}]}, {"authorization": "Bearer wrong-key-000"}),
        ("/api/v1/events", {"events": [{"event_type": "x"}]}, {}),
    ],
)  # fmt: skip
async def test_a_wrong_or_missing_write_key_gets_401_and_nothing_is_stored(
    http: httpx.AsyncClient, app: App, path: str, body: Any, headers: dict[str, str]
) -> None:
    r = await http.post(path, json=body, headers=headers)
    assert r.status_code == 401
    assert _count(app) == 0


async def test_segment_takes_the_write_key_as_basic_auth_or_in_the_body(
    http: httpx.AsyncClient, app: App
) -> None:
    basic = {"authorization": "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()}
    r = await http.post(
        "/v1/batch", json={"batch": [{"type": "track", "event": "Saved", "userId": "u1"}]}, headers=basic
    )
    assert (r.status_code, r.json()) == (200, {"success": True})
    r = await http.post("/v1/page", json={"type": "page", "name": "Home", "userId": "u1", "writeKey": KEY})
    assert r.status_code == 200
    assert app.store.fetch("SELECT event_type FROM events ORDER BY seq") == [("saved",), ("page_view",)]


async def test_a_gzip_bomb_gets_413_without_storing_anything_and_the_next_request_is_served(
    http: httpx.AsyncClient, app: App
) -> None:
    bomb = gzip.compress(b"[" + b" " * (50 * 1024 * 1024) + b"]")  # 50 MiB of JSON in ~50 KiB
    assert len(bomb) < 64 * 1024
    r = await http.post("/batch/", content=bomb, headers={"content-encoding": "gzip"})
    assert r.status_code == 413
    assert "decompresses to more than" in r.json()["error"]
    r = await http.post("/batch/?compression=gzip-js", content=bomb, headers={"content-type": "text/plain"})
    assert r.status_code == 413
    assert _count(app) == 0
    r = await http.post(
        "/batch/", content=gzip.compress(json.dumps(_ph(2)).encode()), headers={"content-encoding": "gzip"}
    )
    assert r.status_code == 200 and _count(app) == 2


async def test_a_body_over_the_byte_limit_gets_413_before_it_is_read(
    http: httpx.AsyncClient, app: App
) -> None:
    r = await http.post("/batch/", content=b"[" + b" " * (65 * 1024) + b"]")
    assert r.status_code == 413 and "exceeds the limit of 65,536 bytes" in r.json()["error"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [(b"{not json", "JSON"), (b"", "empty body"), (b"[" * 100_000 + b"]" * 100_000, "")],
)
async def test_a_body_that_is_not_json_gets_400_with_a_reason(
    http: httpx.AsyncClient, settings: Settings, body: bytes, needle: str
) -> None:
    if len(body) > settings.max_request_bytes:
        body = b"[" * 30_000 + b"]" * 30_000
    r = await http.post("/batch/", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert needle in r.json()["error"]


async def test_one_bad_event_in_a_posthog_batch_is_dropped_alone(http: httpx.AsyncClient, app: App) -> None:
    batch = [
        {"event": "feature_used", "distinct_id": "u1", "uuid": "00000000-0000-4000-8000-000000000001"},
        "not an event",
        {"event": "feature_used", "distinct_id": "u2", "timestamp": "2999-01-01T00:00:00Z"},
        {"event": "feature_used", "distinct_id": "u3", "properties": {"$ip": "203.0.113.9", "plan": "pro"}},
    ]
    r = await http.post("/batch/", json={"api_key": KEY, "batch": batch})
    assert (r.status_code, r.json()) == (200, {"status": 1})
    assert _count(app) == 2
    stored = app.store.fetch("SELECT properties FROM events ORDER BY seq")
    assert "203.0.113.9" not in json.dumps(stored) and "$ip" not in json.dumps(stored)


async def test_one_bad_event_in_a_segment_batch_is_dropped_alone(http: httpx.AsyncClient, app: App) -> None:
    batch = [
        {"type": "track", "event": "Clicked", "userId": "u1"},
        {"type": "teleport", "userId": "u2"},
        {"type": "identify", "userId": "u3", "traits": {"plan": "pro"}},
    ]
    r = await http.post("/v1/batch", json={"batch": batch, "writeKey": KEY})
    assert r.status_code == 200
    assert app.store.fetch("SELECT event_type FROM events ORDER BY seq") == [("clicked",), ("identify",)]


async def test_ours_answers_what_ingest_events_answers_with_errors_by_index(
    http: httpx.AsyncClient, app: App
) -> None:
    body = {"events": [{"event_type": "feature_used", "name": "export"}, {"event_type": "Bad Type"},
                       {"event_type": "feature_used", "surprise": 1}], "service": "cli", "service_version": "2.0.0"}  # fmt: skip
    r = await http.post("/api/v1/events", json=body, headers={"authorization": f"Bearer {KEY}"})
    assert r.status_code == 200
    answer = r.json()
    assert (answer["accepted"], answer["rejected"]) == (1, 2)
    assert [e["index"] for e in answer["errors"]] == [1, 2]
    assert "surprise" in answer["errors"][1]["reason"]
    assert app.store.fetch("SELECT service, service_version FROM events") == [("cli", "2.0.0")]


async def test_ours_refuses_an_unknown_envelope_field_and_an_oversized_batch(
    http: httpx.AsyncClient, app: App, settings: Settings
) -> None:
    auth = {"authorization": f"Bearer {KEY}"}
    r = await http.post("/api/v1/events", json={"events": [{"event_type": "x"}], "evnts": []}, headers=auth)
    assert r.status_code == 400 and "evnts" in r.json()["error"]
    r = await http.post("/api/v1/events", json={"events": []}, headers=auth)
    assert r.status_code == 400
    assert _count(app) == 0


async def test_amplitude_bad_events_get_400_by_index_and_the_resent_good_ones_are_stored(
    http: httpx.AsyncClient, app: App
) -> None:
    events = [
        {"event_type": "Song Played", "user_id": "user-0001", "insert_id": "a1"},
        {"event_type": "Song Played"},  # neither user_id nor device_id
        {"event_type": "Song Played", "user_id": "user-0003", "insert_id": "a3"},
    ]
    r = await http.post("/2/httpapi", json={"api_key": KEY, "events": events})
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == 400
    listed = {i for table in ("events_with_invalid_fields", "events_with_missing_fields")
              for indexes in body.get(table, {}).values() for i in indexes}  # fmt: skip
    assert listed == {1}
    assert _count(app) == 0  # as Amplitude: nothing of a 400 request is stored
    r = await http.post(
        "/batch", json={"api_key": KEY, "events": [events[0], events[2]]}
    )  # what the SDK resends
    assert r.status_code == 200
    assert r.json()["code"] == 200 and r.json()["events_ingested"] == 2
    assert _count(app) == 2


async def test_too_many_requests_in_flight_get_429_with_retry_after(
    http: httpx.AsyncClient, ctx: ServiceContext, app: App
) -> None:
    ctx.max_inflight = 0
    r = await http.post("/batch/", json=_ph(1))
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    assert _count(app) == 0


async def test_a_commit_backlog_over_its_bound_gets_503_with_retry_after(
    http: httpx.AsyncClient, ctx: ServiceContext, app: App
) -> None:
    ctx.committer.max_backlog_events = 5
    r = await http.post("/batch/", json=_ph(6))
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    r = await http.post("/batch/", json=_ph(5))
    assert r.status_code == 200
    assert _count(app) == 5


async def test_a_store_being_handed_over_answers_503_so_senders_retry(
    http: httpx.AsyncClient, ctx: ServiceContext, app: App
) -> None:
    ctx.closing = True
    r = await http.post("/e/", json=_ph(1))
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert _count(app) == 0


async def test_browsers_get_cors_on_the_collector_only(http: httpx.AsyncClient) -> None:
    pre = {"origin": "http://app.example", "access-control-request-method": "POST",
           "access-control-request-headers": "content-type"}  # fmt: skip
    r = await http.options("/e/", headers=pre)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
    r = await http.post("/e/", json=_ph(1), headers={"origin": "http://app.example"})
    assert r.headers["access-control-allow-origin"] == "*"
    r = await http.get("/health", headers={"origin": "http://app.example"})
    assert "access-control-allow-origin" not in r.headers


async def test_posthog_js_start_up_endpoints_answer_no_flags_and_an_empty_config(
    http: httpx.AsyncClient,
) -> None:
    r = await http.post("/flags/?v=2", json={"token": KEY, "distinct_id": "u"})
    assert r.status_code == 200 and r.json()["featureFlags"] == {} and r.json()["flags"] == {}
    r = await http.post("/decide/?v=3", json={"token": KEY, "distinct_id": "u"})
    assert r.status_code == 200 and r.json()["featureFlags"] == {}
    r = await http.get(f"/array/{KEY}/config")
    assert r.status_code == 200 and r.json()["token"] == KEY and r.json()["sessionRecording"] is False


async def test_health_ready_and_metrics_report_what_happened(
    http: httpx.AsyncClient, ctx: ServiceContext
) -> None:
    assert (await http.get("/health")).json()["owner_id"] == ctx.owner.owner_id
    assert (await http.get("/ready")).json()["ready"] is True
    await http.post("/batch/", json={"api_key": KEY, "batch": [{"event": "x", "distinct_id": "u"}, 7]})
    await http.post("/batch/", json=_ph(1, key="wrong-key-000"))
    text = (await http.get("/metrics")).text
    assert 'telemetry_events_received_total{endpoint="posthog"} 2.0' in text
    assert 'telemetry_events_accepted_total{endpoint="posthog"} 1.0' in text
    assert 'telemetry_events_rejected_total{endpoint="posthog"} 1.0' in text
    assert 'telemetry_collector_requests_total{endpoint="posthog",status="401"} 1.0' in text
    assert 'telemetry_ingest_seconds_count{endpoint="posthog"} 2.0' in text
    assert "telemetry_store_events 1.0" in text
    assert "telemetry_store_bytes" in text


async def test_the_request_address_is_never_stored(http: httpx.AsyncClient, app: App) -> None:
    headers = {"x-forwarded-for": "198.51.100.7"}
    await http.post(
        "/batch/",
        json={"api_key": KEY, "batch": [{"event": "x", "distinct_id": "u", "ip": "198.51.100.8"}]},
        headers=headers,
    )
    await http.post("/v1/track", json={"type": "track", "event": "x", "userId": "u", "writeKey": KEY,
                                       "context": {"ip": "198.51.100.9"}})  # fmt: skip
    await http.post(
        "/2/httpapi",
        json={"api_key": KEY, "events": [{"event_type": "x", "user_id": "user-1", "ip": "198.51.100.10"}]},
    )
    assert _count(app) == 3
    dump = json.dumps(app.store.fetch("SELECT * FROM events"), default=str)
    assert "198.51.100" not in dump and "127.0.0.1" not in dump


HUGE = "1" + "0" * 400  # a JSON integer no float can hold: both JSON decoders let it through


async def test_integers_too_large_for_a_float_reject_their_event_alone_on_every_wire_format(
    http: httpx.AsyncClient, app: App
) -> None:
    good = {"event": "feature_used", "distinct_id": "u1", "uuid": "00000000-0000-4000-8000-0000000000aa"}
    items = [
        good,
        '{"event": "feature_used", "distinct_id": "u2", "timestamp": HUGE}',
        '{"event": "feature_used", "distinct_id": "u3", "offset": HUGE}',
        '{"event": "feature_used", "distinct_id": "u4", "properties": {"duration_ms": HUGE, "value": -HUGE}}',
    ]
    joined = ", ".join(i if isinstance(i, str) else json.dumps(i) for i in items)
    text = '{"api_key": "KEY", "sent_at": HUGE, "batch": [ITEMS]}'.replace("KEY", KEY).replace(
        "ITEMS", joined
    )
    r = await http.post(
        "/batch/", content=text.replace("HUGE", HUGE), headers={"content-type": "application/json"}
    )
    assert (r.status_code, r.json()) == (200, {"status": 1})
    stored = app.store.fetch("SELECT user_id IS NOT NULL, duration_ms, properties FROM events ORDER BY seq")
    # the first event, and the one whose huge numbers stay properties (not lifted: not a finite number)
    assert len(stored) == 2 and stored[1][1] is None and HUGE in stored[1][2]
    seg = (
        '{"writeKey": "KEY", "batch": [{"type": "track", "event": "A", "userId": "s1", "messageId": "m1"},'
        ' {"type": "track", "event": "B", "userId": "s2", "messageId": "m2", "timestamp": HUGE}]}'
    )
    r = await http.post(
        "/v1/batch",
        content=seg.replace("HUGE", HUGE).replace("KEY", KEY),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 200
    amp = (
        '{"api_key": "KEY", "events": [{"event_type": "A", "user_id": "a-user-1", "insert_id": "i1"},'
        ' {"event_type": "B", "user_id": "a-user-2", "insert_id": "i2", "time": HUGE}]}'
    )
    r = await http.post(
        "/2/httpapi",
        content=amp.replace("HUGE", HUGE).replace("KEY", KEY),
        headers={"content-type": "application/json"},
    )
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:  # as Amplitude: the bad one listed by index, nothing stored
        assert "1" in json.dumps(r.json()) and r.json()["code"] == 400
