"""Funnel invariants on small random event sets, and agreement with a brute-force Python oracle."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import load
from telemetry_mcp.analytics.behavior import BehaviorQuery
from telemetry_mcp.analytics.funnel import FunnelResult, run
from telemetry_mcp.config import load_settings
from telemetry_mcp.server.app import App, open_app

TEST_SALT = "00112233445566778899aabbccddeeff"
BASE = datetime(2026, 3, 2, 12, 0, 0)
SINCE, UNTIL = BASE + timedelta(minutes=1), BASE + timedelta(minutes=9)
TYPES = ["view", "click", "buy", "noise"]
STEP_CHOICES: list[dict[str, Any]] = [
    {"event_type": "view"},
    {"event_type": "click"},
    {"event_type": "buy"},
    {"event_type": "click", "name": "x"},
]


@dataclass(frozen=True)
class Ev:
    actor: str
    ts: datetime
    seq: int
    type: str
    name: str | None
    platform: str | None


@pytest.fixture(scope="module")
def shared_app() -> Iterator[App]:
    """One store for every example (emptied before each): a store per example would be slow."""
    application = open_app(load_settings({"db": ":memory:", "threads": 2, "salt": TEST_SALT}, env={}))
    yield application
    application.store.close()


event = st.tuples(
    st.sampled_from(["a", "b", "c"]),
    st.integers(0, 12),  # minutes after BASE: many equal timestamps
    st.sampled_from(TYPES),
    st.sampled_from([None, "x"]),
    st.sampled_from([None, "web", "ios"]),
)
event_sets = st.lists(event, max_size=30)
step_lists = st.lists(st.sampled_from(STEP_CHOICES), min_size=2, max_size=4)


def store_events(app: App, raw: list[tuple[str, int, str, str | None, str | None]]) -> list[Ev]:
    """Replace the store's events with `raw` (plus one old event per type so every type is known)."""
    with app.store.guarded() as cur:
        cur.execute("DELETE FROM events")
    seeds = [{"event_type": t, "user_id": "seed", "timestamp": "2026-01-01T00:00:00Z"} for t in TYPES]
    batch: list[dict[str, Any]] = []
    for actor, minute, etype, name, platform in raw:
        e: dict[str, Any] = {
            "event_type": etype,
            "user_id": actor,
            "timestamp": (BASE + timedelta(minutes=minute)).isoformat() + "Z",
        }
        if name:
            e["name"] = name
        if platform:
            e["platform"] = platform
        batch.append(e)
    load(app, seeds + batch)
    return [Ev(a, BASE + timedelta(minutes=m), i, t, n, p) for i, (a, m, t, n, p) in enumerate(raw)]


def funnel(app: App, steps: list[dict[str, Any]], **args: Any) -> FunnelResult:
    query = BehaviorQuery(
        analysis="funnel",
        steps=steps,
        since=SINCE.isoformat() + "Z",
        until=UNTIL.isoformat() + "Z",
        **args,
    )
    return run(app.store, query)


# ---------------------------------------------------------------- the oracle: the SPEC, literally


def matches(e: Ev, spec: dict[str, Any]) -> bool:
    return e.type == spec["event_type"] and ("name" not in spec or e.name == spec["name"])


def attempts(evs: list[Ev], steps: list[dict[str, Any]], window: timedelta, order: str) -> Iterator[list[Ev]]:
    """Every attempt of one actor: the step events in step order (unordered: in time order)."""
    evs = sorted(evs, key=lambda e: (e.ts, e.seq))
    n = len(steps)
    for i, first in enumerate(evs):
        if not SINCE <= first.ts < UNTIL:
            continue
        close = first.ts + window
        if order == "unordered":
            if not any(matches(first, s) for s in steps):
                continue
            done = []
            for s in steps:
                hits = [e for e in evs if matches(e, s) and first.ts <= e.ts <= close]
                if hits:
                    done.append(min(hits, key=lambda e: (e.ts, e.seq)))
            yield sorted(done, key=lambda e: (e.ts, e.seq))
            continue
        if not matches(first, steps[0]):
            continue
        chain = [first]
        for k in range(1, n):
            if order == "strict":
                nxt = evs[i + k] if i + k < len(evs) else None
                if nxt is None or not matches(nxt, steps[k]) or nxt.ts > close:
                    break
                chain.append(nxt)
            else:
                cands = [
                    e
                    for e in evs
                    if matches(e, steps[k]) and e.ts >= chain[-1].ts and e not in chain and e.ts <= close
                ]
                if not cands:
                    break
                chain.append(min(cands, key=lambda e: (e.ts, e.seq)))
        yield chain


def excluded(chain: list[Ev], evs: list[Ev], window: timedelta, exclusions: list[dict[str, Any]]) -> bool:
    for ex in exclusions:
        f, t = ex["from_step"], ex["to_step"]
        if len(chain) <= f:
            continue
        lo = chain[f].ts
        for e in evs:
            if e in chain or not matches(e, ex["event"]) or e.ts <= lo:
                continue
            if (e.ts < chain[t].ts) if len(chain) > t else (e.ts <= chain[0].ts + window):
                return True
    return False


def best_attempts(
    events: list[Ev],
    steps: list[dict[str, Any]],
    window: timedelta,
    order: str,
    exclusions: list[dict[str, Any]] | None = None,
) -> dict[str, list[Ev]]:
    """Each actor's counted attempt: the furthest clean one, the earliest of equals."""
    best: dict[str, list[Ev]] = {}
    for actor in sorted({e.actor for e in events}):
        evs = [e for e in events if e.actor == actor]
        clean = [
            c for c in attempts(evs, steps, window, order) if not excluded(c, evs, window, exclusions or [])
        ]
        if clean:
            best[actor] = max(clean, key=lambda c: (len(c), -c[0].ts.timestamp(), -c[0].seq))
    return best


def oracle(best: dict[str, list[Ev]], n: int) -> list[tuple[int, float | None, float | None]]:
    """(users, avg seconds, median seconds) per step."""
    out: list[tuple[int, float | None, float | None]] = []
    for k in range(n):
        reached = [c for c in best.values() if len(c) > k]
        if k == 0:
            out.append((len(reached), None, None))
            continue
        secs = [(c[k].ts - c[k - 1].ts).total_seconds() for c in reached]
        out.append(
            (
                len(reached),
                round(statistics.fmean(secs), 4) if secs else None,
                round(statistics.median(secs), 4) if secs else None,
            )
        )
    return out


def table(result: FunnelResult) -> list[tuple[int, float | None, float | None]]:
    return [(s.users, s.avg_seconds_to_convert, s.median_seconds_to_convert) for s in result.steps]


def users(result: FunnelResult) -> list[int]:
    return [s.users for s in result.steps]


PROPS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
ORDERS = ("ordered", "strict", "unordered")


@PROPS
@given(raw=event_sets, steps=step_lists, minutes=st.integers(1, 6))
def test_sql_funnels_and_breakdowns_agree_with_a_brute_force_oracle(
    shared_app: App, raw: list[Any], steps: list[dict[str, Any]], minutes: int
) -> None:
    events = store_events(shared_app, raw)
    window = timedelta(minutes=minutes)

    for order in ORDERS:
        result = funnel(
            shared_app, steps, order=order, conversion_window=f"{minutes}m", breakdown_by="platform"
        )

        best = best_attempts(events, steps, window, order)
        assert table(result) == oracle(best, len(steps)), order
        expected: dict[str | None, list[tuple[int, float | None, float | None]]] = {}
        for value in {c[0].platform for c in best.values()}:
            expected[value] = oracle({a: c for a, c in best.items() if c[0].platform == value}, len(steps))
        assert result.breakdown is not None
        assert {b.value: table(b) for b in result.breakdown} == expected, order


@PROPS
@given(
    raw=event_sets,
    steps=step_lists,
    minutes=st.integers(1, 6),
    order=st.sampled_from(["ordered", "strict"]),
    edges=st.lists(st.tuples(st.integers(0, 3), st.integers(1, 3)), min_size=1, max_size=2),
)
def test_exclusions_agree_with_a_brute_force_oracle(
    shared_app: App,
    raw: list[Any],
    steps: list[dict[str, Any]],
    minutes: int,
    order: str,
    edges: list[tuple[int, int]],
) -> None:
    last = len(steps) - 1
    exclusions = []
    for f, t in edges:
        f = min(f, last - 1)
        exclusions.append(
            {"event": {"event_type": "noise"}, "from_step": f, "to_step": max(f + 1, min(t, last))}
        )
    events = store_events(shared_app, raw)
    window = timedelta(minutes=minutes)

    result = funnel(shared_app, steps, order=order, conversion_window=f"{minutes}m", exclusions=exclusions)

    assert table(result) == oracle(best_attempts(events, steps, window, order, exclusions), len(steps))


@PROPS
@given(
    raw=event_sets,
    steps=step_lists,
    minutes=st.integers(1, 5),
    wider=st.integers(1, 5),
    order=st.sampled_from(ORDERS),
)
def test_funnel_invariants_hold(
    shared_app: App, raw: list[Any], steps: list[dict[str, Any]], minutes: int, wider: int, order: str
) -> None:
    store_events(shared_app, raw)

    narrow = {o: funnel(shared_app, steps, order=o, conversion_window=f"{minutes}m") for o in ORDERS}
    wide = funnel(shared_app, steps, order=order, conversion_window=f"{minutes + wider}m")

    for result in [*narrow.values(), wide]:
        counts = users(result)
        assert counts == sorted(counts, reverse=True), "step counts never increase"
        assert all(0.0 <= s.conversion_from_start <= 1.0 for s in result.steps)
        assert all(0.0 <= s.conversion_from_previous <= 1.0 for s in result.steps)
        assert 0.0 <= result.overall_conversion <= 1.0
    strict, ordered, unordered = (users(narrow[o]) for o in ("strict", "ordered", "unordered"))
    assert all(s <= o <= u for s, o, u in zip(strict, ordered, unordered, strict=True)), (
        "strict ≤ ordered ≤ unordered"
    )
    assert all(n <= w for n, w in zip(users(narrow[order]), users(wide), strict=True)), (
        "wider window, no lower count"
    )
