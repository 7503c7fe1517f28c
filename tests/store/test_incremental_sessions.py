"""Derived sessions refreshed batch by batch equal a full recompute, whatever the arrival order.

Events of a few actors with gaps just under, exactly at and just over the 30-minute timeout (and
ties) arrive shuffled in random batches, late and out of order; after every batch the store's
incremental refresh runs. The keys must equal those of a store that received everything at once,
and the sessions must be the ones the definition gives (a gap longer than the timeout starts one;
the key is the actor's key XOR the session's first timestamp in µs).
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import pytest

from conftest import TEST_SALT
from telemetry_mcp.config import load_settings
from telemetry_mcp.store import Store
from telemetry_mcp.store.ingest import Ingestor

BASE = datetime(2026, 6, 1, 8, 0)
TIMEOUT = timedelta(minutes=30)
US = timedelta(microseconds=1)
GAPS = [timedelta(0), timedelta(seconds=5), TIMEOUT - US, TIMEOUT, TIMEOUT + US, timedelta(hours=2),
        timedelta(minutes=10)]  # fmt: skip


def _events(rng: random.Random) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for a in range(5):
        t = BASE + timedelta(minutes=rng.randrange(60))
        for i in range(rng.randrange(10, 40)):
            t += rng.choice(GAPS)
            ev: dict[str, Any] = {
                "event_id": f"a{a}-{i}",
                "event_type": "page_view",
                "timestamp": t.isoformat(timespec="microseconds") + "Z",
            }
            if a < 4:
                ev["user_id"] = f"user-{a}"
            if rng.random() < 0.1:
                ev["session_id"] = f"explicit-{a}-{i // 5}"  # never part of a derived session
            out.append(ev)
    return out


def _store() -> Store:
    return Store(load_settings({"db": ":memory:", "threads": 2, "salt": TEST_SALT}, env={}))


def _keys(store: Store) -> dict[str, int | None]:
    return dict(store.fetch("SELECT event_id, session_key FROM events"))


def _by_definition(store: Store) -> dict[str, int | None]:
    """The sessions the definition gives, computed here from the stored rows."""
    rows = store.fetch("SELECT event_id, actor, ts, seq, session_id, session_key FROM events")
    out: dict[str, int | None] = {r[0]: r[5] for r in rows if r[4] is not None}
    per_actor: dict[int, list[tuple[datetime, int, str]]] = defaultdict(list)
    for event_id, actor, ts, seq, session_id, _ in rows:
        if session_id is None:
            per_actor[actor].append((ts, seq, event_id))
    for actor, evs in per_actor.items():
        evs.sort()
        start = prev = evs[0][0]
        for ts, _, event_id in evs:
            if ts - prev > TIMEOUT:
                start = ts
            prev = ts
            out[event_id] = actor ^ int((start - datetime(1970, 1, 1)) / US)
    return out


@pytest.mark.parametrize("seed", range(12))
def test_sessions_refreshed_batch_by_batch_equal_a_full_recompute_in_any_arrival_order(seed: int) -> None:
    rng = random.Random(seed)
    data = _events(rng)
    rng.shuffle(data)
    with _store() as live, _store() as whole:
        ingest = Ingestor(live)
        k = 0
        while k < len(data):
            n = rng.randrange(1, 25)
            assert ingest.ingest(data[k : k + n]).accepted == len(data[k : k + n])
            live.refresh_sessions()
            k += n
        Ingestor(whole).ingest(data)

        assert _keys(live) == _keys(whole)
        assert _keys(live) == _by_definition(live)
        sessions = live.fetch("SELECT count(DISTINCT session_key) FROM events WHERE session_id IS NULL")[0][0]
        assert 5 <= sessions < len(data)


def test_a_late_event_that_bridges_two_sessions_merges_them_and_one_that_splits_nothing_changes_nothing() -> (
    None
):
    def ev(event_id: str, minutes: float) -> dict[str, Any]:
        t = BASE + timedelta(minutes=minutes)
        return {"event_id": event_id, "event_type": "x", "user_id": "u", "timestamp": t.isoformat() + "Z"}

    with _store() as store:
        ingest = Ingestor(store)
        ingest.ingest([ev("a", 0), ev("b", 20), ev("c", 70), ev("d", 80), ev("e", 200)])
        before = _keys(store)
        assert len({before[x] for x in "abcde"}) == 3  # {a, b}, {c, d}, {e}

        ingest.ingest([ev("late", 45)])  # 25 minutes after b, 25 before c: one session a..d
        after = _keys(store)
        assert {after[x] for x in ("a", "b", "late", "c", "d")} == {before["a"]}
        assert after["e"] == before["e"]

        ingest.ingest([ev("inside", 10)])  # within a session: no key changes
        assert _keys(store) == {**after, "inside": before["a"]}
