"""The columnar ingest core against the per-event reference: identical rows, identical errors.

50,000 generated events (valid ones of every shape, secrets, addresses, ids, URLs, malformed values,
duplicates within and across batches, records without an id, do-not-track) go through both paths,
each into a fresh store with the same salt and the same receive time; every stored column and every
report must be equal.
"""

from __future__ import annotations

import copy
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from telemetry_mcp.config import load_settings
from telemetry_mcp.errors import InvalidArgument
from telemetry_mcp.server.app import App, open_app
from telemetry_mcp.store.ingest import Ingestor, IngestReport
from telemetry_mcp.store.reference import ReferenceIngestor

SALT = "00112233445566778899aabbccddeeff"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
N = 50_000
BATCH = 5_000

_PROPS: list[Any] = [
    None,
    {},
    {"plan": "pro", "n": 3},
    {"contact": "alice@example.com"},
    {"next": "https://shop.example.com/cart?token=abc&id=7"},
    {"path": "/users/12345/orders"},
    {"password": "hunter2", "ok": True},
    {"nested": {"api_key": "k-123", "list": [1, "x", {"Authorization": "Bearer abc.def"}]}},
    {"card": "4111 1111 1111 1111"},
    {"ip": "10.1.2.3", "v6": "fe80::1"},
    {"jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"},
    {"ssn": "123-45-6789"},
    {"note": "version 1.2.3 build 45"},
    {"unicode": "café ☕", "emoji": "\U0001f600"},
    {"deep": {"a": {"b": {"c": {"d": 1}}}}},
    {"big": "x" * 300},
]
_PAGES = [None, "/checkout", "https://shop.example.com/p/42?email=a@b.co#frag", "/users/98765/profile"]
_NAMES = [None, "checkout_button", "Card 4111111111111111 failed", "mail bob@example.org", "render"]
_TYPES = ["component_load", "interaction", "error", "performance", "page_view", "custom"]
_BAD_TYPES = ["Bad Type", 7]


def _pick(rng: random.Random, good: list[Any], bad: list[Any]) -> Any:
    """Mostly a valid value, now and then (3 %) an invalid one."""
    return rng.choice(bad) if rng.random() < 0.03 else rng.choice(good)


def _event(rng: random.Random, i: int) -> Any:
    kind = rng.random()
    if kind < 0.01:
        return rng.choice(["not an object", 42, None, ["list"]])
    ev: dict[str, Any] = {"event_type": _pick(rng, _TYPES, _BAD_TYPES)}
    if rng.random() < 0.9:
        # some ids repeat, within a batch and across batches
        ev["event_id"] = f"e{rng.randrange(N * 9 // 10)}"
    for key, choices, bad in (("name", _NAMES, ["bad\ud800surrogate"]), ("page", _PAGES, ["bad\x00page"]),
                              ("properties", _PROPS, [{"a": float("inf")}])):  # fmt: skip
        value = _pick(rng, choices, bad)
        if value is not None:
            ev[key] = value
    if rng.random() < 0.8:
        ev["component"] = _pick(rng, ["Checkout", "Search", "Nav"], ["x" * 300])
    if rng.random() < 0.7:
        ev["user_id"] = rng.choice([f"u{rng.randrange(500)}", "alice@example.com", ""])
    if rng.random() < 0.5:
        ev["session_id"] = f"s{rng.randrange(2000)}"
    if rng.random() < 0.8:
        ts = NOW - timedelta(seconds=rng.randrange(90 * 86400))
        ev["timestamp"] = _pick(
            rng, [ts.isoformat(), ts.strftime("%Y-%m-%dT%H:%M:%SZ"), int(ts.timestamp())],
            ["yesterday", "2999-01-01T00:00:00Z"],
        )  # fmt: skip
    if rng.random() < 0.4:
        ev["duration_ms"] = _pick(rng, [12.5, 0, 300], [-1, 1e12, "fast"])
    if rng.random() < 0.2:
        ev["value"] = _pick(rng, [1.0, 3], [float("nan"), 10**400])
        ev["unit"] = rng.choice(["ms", "bytes", None])
    if rng.random() < 0.3:
        ev["service"] = rng.choice(["web", "api"])
        ev["service_version"] = rng.choice(["1.0.0", "1.1.0"])
    if rng.random() < 0.2:
        ev["platform"] = rng.choice(["web", "ios", "android"])
        ev["os"] = rng.choice(["macOS", "Windows"])
        ev["framework"] = rng.choice(["react", "vue"])
    if rng.random() < 0.05:
        ev["severity"] = _pick(rng, ["warning", "fatal"], ["loud"])
    if rng.random() < 0.05:
        ev["ip"] = rng.choice(["192.168.0.1", "not-an-ip"])
    if rng.random() < 0.02:
        ev["do_not_track"] = True
    if rng.random() < 0.01:
        ev["unknown_field"] = 1
    return ev


def _app() -> App:
    return open_app(load_settings({"db": ":memory:", "threads": 2, "salt": SALT}, env={}))


def _rows(app: App) -> list[tuple[Any, ...]]:
    return app.store.fetch(
        "SELECT * EXCLUDE (seq) FROM events ORDER BY event_id, ts, coalesce(name, ''), coalesce(page, '')"
    )


def _same(a: IngestReport, b: IngestReport) -> None:
    assert a.errors == b.errors
    assert (a.accepted, a.rejected, a.duplicates, a.dropped_dnt, a.sampled_out, a.redactions) == (
        b.accepted,
        b.rejected,
        b.duplicates,
        b.dropped_dnt,
        b.sampled_out,
        b.redactions,
    )


@pytest.mark.parametrize("seed", [10])
def test_columnar_core_stores_what_the_per_event_reference_stores(seed: int) -> None:
    rng = random.Random(seed)
    events = [_event(rng, i) for i in range(N)]
    columnar, reference = _app(), _app()
    try:
        core = columnar.ingestor
        ref = ReferenceIngestor(Ingestor(reference.store))
        totals = [0, 0, 0]
        for start in range(0, N, BATCH):
            # each side gets its own copy: the privacy pipeline edits properties in place
            batch = events[start : start + BATCH]
            gen = lambda i, s=start: f"gen-{s + i}"  # noqa: E731 - same deterministic ids on both sides
            a = core.commit(
                core.prepare([copy.deepcopy(e) for e in batch], service="svc", now=NOW, default_ids=gen)
            )
            b = ref.ingest([copy.deepcopy(e) for e in batch], service="svc", now=NOW, default_ids=gen)
            _same(a, b)
            totals = [totals[0] + a.accepted, totals[1] + a.rejected, totals[2] + a.duplicates]
        # the generated mix exercises every outcome
        assert all(t > 1000 for t in totals), totals
        rows_a, rows_b = _rows(columnar), _rows(reference)
        assert len(rows_a) == totals[0]
        assert rows_a == rows_b
        redacted = columnar.store.fetch("SELECT count(*) FROM events WHERE redacted_paths IS NOT NULL")[0][0]
        assert redacted > 1000
        assert columnar.store.catalog("component") == {
            r[0]
            for r in columnar.store.fetch("SELECT DISTINCT component FROM events WHERE component IS NOT NULL")
        }
    finally:
        columnar.store.close()
        reference.store.close()


def test_ingest_json_of_a_body_stores_what_ingest_of_its_dicts_stores() -> None:
    rng = random.Random(11)
    events = []
    for i in range(10_000):
        ev = _event(rng, i)
        if isinstance(ev, dict):
            ev.setdefault("event_id", f"gen-{i}")
        try:
            json.dumps(ev, allow_nan=False)
        except ValueError:
            continue  # NaN has no JSON text
        events.append(ev)
    from_bytes, from_dicts = _app(), _app()
    try:
        body = json.dumps(events).encode()
        a = from_bytes.ingestor.ingest_json(body, service="svc", now=NOW)
        b = from_dicts.ingestor.ingest(json.loads(body), service="svc", now=NOW)
        _same(a, b)
        assert a.accepted > 5_000 and a.rejected > 100
        assert _rows(from_bytes) == _rows(from_dicts)
        with pytest.raises(InvalidArgument, match="expected a JSON array of events"):
            from_bytes.ingestor.ingest_json(b'{"event_type": "x"}')
        with pytest.raises(InvalidArgument, match="expected a JSON array of events"):
            from_bytes.ingestor.ingest_json(b"[{]")
        assert from_bytes.store.fetch("SELECT count(*) FROM events")[0][0] == a.accepted
    finally:
        from_bytes.store.close()
        from_dicts.store.close()
