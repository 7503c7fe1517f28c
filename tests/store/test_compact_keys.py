"""Migration 006 on a store of the previous layout: text actors and session keys become 64-bit keys.

The old store is built with every migration but 006, its rows in the old layout (actor text
user_id / 's:'||session_id / 'e:'||event_id, session keys 'x:'||session_id or 'd:'||actor||':'||n
from the old derivation, copied below), rollups folded over hash(session key text). Opening it
with the current code must keep every row in arrival order, the same actors and sessions, and
rebuild the rollups of buckets that are wholly raw.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from conftest import TEST_SALT
from lifecycle_data import events
from telemetry_mcp.analytics import metrics
from telemetry_mcp.analytics.metrics import MetricsQuery
from telemetry_mcp.config import load_settings
from telemetry_mcp.store import Store, migrations
from telemetry_mcp.store.ingest import Ingestor
from telemetry_mcp.store.rollups import Rollups, events_with_slots, high, low, partial_sql

START = datetime(2026, 3, 1)
CUTOFF = START + timedelta(days=4, hours=5, minutes=30)  # pruning stopped mid-hour

# The derivation of the previous layout (store/db.py before migration 006), run on the old store.
OLD_DERIVE = """
UPDATE events SET session_key = d.session_key
FROM (
    SELECT seq, 'd:' || actor || ':' || sum(new_session) OVER (
               PARTITION BY actor ORDER BY ts, seq ROWS UNBOUNDED PRECEDING) AS session_key
    FROM (
        SELECT seq, actor, ts,
               CASE WHEN lag(ts) OVER w IS NULL OR epoch(ts) - epoch(lag(ts) OVER w) > $2 THEN 1 ELSE 0 END
                   AS new_session
        FROM events
        WHERE session_id IS NULL
          AND actor IN (SELECT DISTINCT actor FROM events WHERE session_id IS NULL AND seq > $1)
        WINDOW w AS (PARTITION BY actor ORDER BY ts, seq)
    )
) AS d
WHERE events.seq = d.seq AND events.session_key IS DISTINCT FROM d.session_key
"""
OLD_COLUMNS = (
    "seq, event_id, ts, received_at, event_type, name, component, user_id, session_id, severity, duration_ms, "
    "value, unit, service, service_version, platform, os, framework, page, properties, redacted_paths, id_hash"
)


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _settings(path: Path) -> Any:
    return load_settings({"db": str(path), "threads": 2, "salt": TEST_SALT}, env={})


def _old_store(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store of the previous layout: every migration but 006, rows and rollups as it kept them."""
    data = events(6_000, START, days=10, users=150, seed=3)
    with Store(load_settings({"db": ":memory:", "threads": 2, "salt": TEST_SALT}, env={})) as scratch:
        Ingestor(scratch).ingest(data)
        cur = scratch.cursor()
        rows = cur.sql(f"SELECT {OLD_COLUMNS} FROM events ORDER BY seq").to_arrow_table()
        cur.close()
    old = [m for m in migrations.MIGRATIONS if m[0] != "006_integer_keys"]
    with monkeypatch.context() as m:
        m.setattr(migrations, "MIGRATIONS", old)
        con = duckdb.connect(str(path))
        migrations.migrate(con)
    con.register("old_rows", rows)
    con.execute(
        f"INSERT INTO events ({OLD_COLUMNS}, actor, session_key) SELECT {OLD_COLUMNS}, "
        "coalesce(user_id, 's:' || session_id, 'e:' || event_id), 'x:' || session_id FROM old_rows"
    )
    con.execute(OLD_DERIVE, [0, 1800.0])
    con.execute("UPDATE meta SET value = (SELECT max(seq)::VARCHAR FROM events) WHERE key = 'sessions_seq'")
    con.execute("UPDATE meta SET value = '30.0' WHERE key = 'session_timeout_minutes'")
    con.execute("UPDATE meta SET value = ? WHERE key = 'salt'", [TEST_SALT])
    for grain in ("hour", "day"):
        old_rows = events_with_slots([]).replace(
            "SELECT *,", "SELECT * REPLACE (hash(session_key) AS session_key),"
        )
        con.execute(f"INSERT INTO rollup_{grain} {partial_sql(old_rows, grain)}")
    con.execute("UPDATE meta SET value = (SELECT max(seq)::VARCHAR FROM events) WHERE key = 'rollups_seq'")
    # a prune: events before CUTOFF are gone, only the rollups know them
    con.execute("DELETE FROM events WHERE ts < ?", [CUTOFF])
    con.execute("INSERT INTO meta VALUES ('raw_cutoff', ?)", [CUTOFF.isoformat()])
    con.close()


def _groups(rows: list[tuple[Any, ...]]) -> set[frozenset[str]]:
    """Event ids grouped by their key (the partition, whatever the key's values are)."""
    out: dict[Any, set[str]] = defaultdict(set)
    for event_id, key in rows:
        out[key].add(event_id)
    return {frozenset(v) for v in out.values()}


_PRUNED = (
    "SELECT b, event_type, component, name, service_version, platform, framework, page, n, errors, d_n, "
    "round(d_sum, 6), {low}, {high}, len(users), len(sessions), d_keys, d_counts, v_n, v_keys, v_counts "
    "FROM rollup_hour WHERE b < '2026-03-05 06:00:00' ORDER BY ALL"
)


def _old_answers(path: Path) -> dict[str, Any]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {
            "order": con.execute("SELECT event_id FROM events ORDER BY seq").fetchall(),
            "actors": _groups(con.execute("SELECT event_id, actor FROM events").fetchall()),
            "sessions": _groups(con.execute("SELECT event_id, session_key FROM events").fetchall()),
            "daily": con.execute(
                "SELECT date_trunc('day', ts) AS d, count(DISTINCT actor), count(DISTINCT session_key) "
                "FROM events GROUP BY d ORDER BY d"
            ).fetchall(),
            "pruned_rollups": con.execute(_PRUNED.format(low=low("d"), high=high("d"))).fetchall(),
        }
    finally:
        con.close()


def test_migration_006_keeps_rows_actors_and_sessions_and_rebuilds_the_raw_rollups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.duckdb"
    _old_store(path, monkeypatch)
    before = _old_answers(path)

    with Store(_settings(path)) as store:
        types = dict(
            store.fetch("SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'events'")
        )
        assert (types["actor"], types["session_key"], types["user_id"]) == ("UBIGINT", "UBIGINT", "VARCHAR")
        assert store.fetch("SELECT event_id FROM events ORDER BY seq") == before["order"]
        assert _groups(store.fetch("SELECT event_id, actor FROM events")) == before["actors"]
        assert _groups(store.fetch("SELECT event_id, session_key FROM events")) == before["sessions"]
        assert (
            store.fetch(
                "SELECT date_trunc('day', ts) AS d, count(DISTINCT actor), count(DISTINCT session_key) "
                "FROM events GROUP BY d ORDER BY d"
            )
            == before["daily"]
        )
        # the keys are the stated functions of the old texts
        user, anon, sess = store.fetch(
            "SELECT (SELECT user_id FROM events WHERE user_id IS NOT NULL LIMIT 1), "
            "(SELECT event_id FROM events WHERE user_id IS NULL AND session_id IS NULL LIMIT 1), "
            "(SELECT session_id FROM events WHERE session_id IS NOT NULL LIMIT 1)"
        )[0]
        keys = dict(
            store.fetch(
                "SELECT 'u', any_value(actor) FROM events WHERE user_id = ? UNION ALL "
                "SELECT 'e', any_value(actor) FROM events WHERE event_id = ? UNION ALL "
                "SELECT 'x', any_value(session_key) FROM events WHERE session_id = ?",
                [user, anon, sess],
            )
        )
        assert keys == {"u": int(user, 16), "e": _digest("e:" + anon), "x": _digest("x:" + sess)}
        # derived sessions: actor XOR the session's first timestamp in µs
        assert store.fetch(
            "SELECT count(*) FROM (SELECT actor, session_key, min(epoch_us(ts)) AS t0 FROM events "
            "WHERE session_id IS NULL GROUP BY ALL) WHERE xor(actor, t0::UBIGINT) <> session_key"
        ) == [(0,)]
        # the buckets pruning removed or cut into keep their rows; the wholly raw ones are refolded
        # (compared by what the rows say: low/high read both rollup layouts)
        assert store.fetch(_PRUNED.format(low=low("d"), high=high("d"))) == before["pruned_rollups"]
        fresh = store.fetch(
            f"SELECT * FROM ({partial_sql(events_with_slots([]), 'hour')}) "
            "WHERE b >= '2026-03-05 06:00:00' ORDER BY kh"
        )
        assert store.fetch("SELECT * FROM rollup_hour WHERE b >= '2026-03-05 06:00:00' ORDER BY kh") == fresh
        assert Rollups.refresh(store).events == 0
        # sessions answered from rollups over raw buckets match the exact answer
        q = MetricsQuery.model_validate({"since": "2026-03-06", "until": "2026-03-11", "interval": "day"})
        exact = metrics.run(store, q)
        sessions = store.fetch(
            "SELECT b, len(list_distinct(flatten(list(sessions)))) FROM rollup_day "
            "WHERE b >= '2026-03-06' GROUP BY b ORDER BY b"
        )
        assert [s.unique_sessions for s in exact.series] == [n for _, n in sessions]
        assert len(sessions) == 5
