"""The in-memory id-hash set that replaces probing the id_hash column at dedupe."""

from __future__ import annotations

import numpy as np

from telemetry_mcp.config import load_settings
from telemetry_mcp.server.app import open_app
from telemetry_mcp.store.idset import IdHashSet

SALT = "00112233445566778899aabbccddeeff"


def test_membership_survives_many_adds_and_the_merges_of_the_delta() -> None:
    rng = np.random.default_rng(5)
    added = rng.integers(0, 2**64 - 1, size=300_000, dtype=np.uint64)
    s = IdHashSet(added[:1000])
    for start in range(1000, len(added), 7_000):  # passes the delta threshold several times
        s.add(added[start : start + 7_000])
    absent = rng.integers(0, 2**64 - 1, size=50_000, dtype=np.uint64)
    absent = absent[~np.isin(absent, added)]

    assert len(s) == len(np.unique(added))
    assert s.contains(added).all()
    assert not s.contains(absent).any()
    assert s.contains(np.array([np.iinfo(np.uint64).max], np.uint64)).tolist() == [False]


def test_a_stale_hit_is_confirmed_against_the_stored_ids_so_a_deleted_event_can_come_back() -> None:
    app = open_app(load_settings({"db": ":memory:", "threads": 2, "salt": SALT}, env={}))
    try:
        first = app.ingestor.ingest(
            [{"event_id": "a", "event_type": "x"}, {"event_id": "b", "event_type": "x"}]
        )
        again = app.ingestor.ingest(
            [{"event_id": "a", "event_type": "x"}, {"event_id": "c", "event_type": "x"}]
        )
        assert (first.accepted, again.accepted, again.duplicates) == (2, 1, 1)
        with app.store.write_lock:
            cur = app.store.cursor()
            cur.execute("DELETE FROM events WHERE event_id = 'a'")
            cur.close()
        back = app.ingestor.ingest(
            [{"event_id": "a", "event_type": "x"}, {"event_id": "b", "event_type": "x"}]
        )
        assert (back.accepted, back.duplicates) == (1, 1)
        ids = [r[0] for r in app.store.fetch("SELECT event_id FROM events ORDER BY event_id")]
        assert ids == ["a", "b", "c"]
    finally:
        app.store.close()
