"""Schema migrations: an ordered registry, each applied together with its record in one transaction."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime

import duckdb

from telemetry_mcp.store.transaction import transaction

Migration = Callable[[duckdb.DuckDBPyConnection], None]


def _m001_events(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE TABLE events (
            seq             BIGINT NOT NULL,     -- arrival order: ties on ts sort by it
            event_id        VARCHAR PRIMARY KEY, -- dedupe
            ts              TIMESTAMP NOT NULL,  -- UTC
            received_at     TIMESTAMP NOT NULL,
            event_type      VARCHAR NOT NULL,
            name            VARCHAR,
            component       VARCHAR,
            user_id         VARCHAR,             -- keyed hash, never the raw id
            session_id      VARCHAR,             -- explicit sessions only; derived ones are computed
            actor           VARCHAR NOT NULL,    -- user_id, else 's:' || session_id, else 'e:' || event_id
            severity        VARCHAR NOT NULL,
            duration_ms     DOUBLE,
            value           DOUBLE,
            unit            VARCHAR,
            service         VARCHAR,
            service_version VARCHAR,
            platform        VARCHAR,
            os              VARCHAR,
            framework       VARCHAR,
            page            VARCHAR,
            properties      JSON,
            redacted_paths  VARCHAR[]
        )
        """
    )


def _m002_meta(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)")
    # The per-store salt for user_id hashing: random, created once, never leaves the store.
    con.execute("INSERT INTO meta VALUES ('salt', ?)", [secrets.token_hex(32)])
    con.execute("INSERT INTO meta VALUES ('created_at', ?)", [datetime.now(UTC).isoformat()])


def _m003_session_keys(con: duckdb.DuckDBPyConnection) -> None:
    # Sessions are kept with the events: explicit ones at insert, derived ones (30-minute gaps) by
    # Store.refresh_sessions for the actors that got new session-less events. Analyses then read
    # a column instead of re-running a window over every event on every question.
    con.execute("ALTER TABLE events ADD COLUMN session_key VARCHAR")
    con.execute("UPDATE events SET session_key = 'x:' || session_id WHERE session_id IS NOT NULL")
    con.execute("INSERT INTO meta VALUES ('sessions_seq', '0'), ('session_timeout_minutes', '')")


def _m004_dedupe_by_id_hash(con: duckdb.DuckDBPyConnection) -> None:
    # The ART index behind PRIMARY KEY(event_id) took ~40 MB per million events, more than the data
    # itself, and a third of insert time. Dedupe now probes a 64-bit hash column (then compares the
    # ids of the few candidates): the table is rebuilt without the key, rows kept in arrival order.
    con.execute(
        """
        CREATE TABLE events_v4 (
            seq BIGINT NOT NULL, event_id VARCHAR NOT NULL, ts TIMESTAMP NOT NULL,
            received_at TIMESTAMP NOT NULL, event_type VARCHAR NOT NULL, name VARCHAR, component VARCHAR,
            user_id VARCHAR, session_id VARCHAR, actor VARCHAR NOT NULL, severity VARCHAR NOT NULL,
            duration_ms DOUBLE, value DOUBLE, unit VARCHAR, service VARCHAR, service_version VARCHAR,
            platform VARCHAR, os VARCHAR, framework VARCHAR, page VARCHAR, properties JSON,
            redacted_paths VARCHAR[], session_key VARCHAR, id_hash UBIGINT NOT NULL
        )
        """
    )
    con.execute(
        "INSERT INTO events_v4 SELECT seq, event_id, ts, received_at, event_type, name, component, "
        "user_id, session_id, actor, severity, duration_ms, value, unit, service, service_version, platform, os, "
        "framework, page, properties, redacted_paths, session_key, hash(event_id) FROM events ORDER BY seq"
    )
    con.execute("DROP TABLE events")
    con.execute("ALTER TABLE events_v4 RENAME TO events")


# The columns whose distinct values analyses validate their arguments against ("metric": the names
# of performance events). Kept by ingest in the catalog table (and in memory by Store).
CATALOG_KINDS = ("event_type", "component", "metric", "service", "service_version", "platform", "os",
                 "framework")  # fmt: skip
_CATALOG_SOURCES = {"metric": ("name", "event_type = 'performance' AND ")}


def _m005_catalog(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "CREATE TABLE catalog (kind VARCHAR NOT NULL, value VARCHAR NOT NULL, PRIMARY KEY (kind, value))"
    )
    for kind in CATALOG_KINDS:
        column, where = _CATALOG_SOURCES.get(kind, (kind, ""))
        # identifiers from the fixed tuple above, never from input
        con.execute(
            f"INSERT INTO catalog SELECT DISTINCT ?, {column} FROM events WHERE {where}{column} IS NOT NULL",
            [kind],
        )


_V6_COLUMNS = (
    "seq BIGINT NOT NULL, event_id VARCHAR NOT NULL, ts TIMESTAMP NOT NULL, received_at TIMESTAMP NOT NULL, "
    "event_type VARCHAR NOT NULL, name VARCHAR, component VARCHAR, user_id VARCHAR, session_id VARCHAR, "
    "actor UBIGINT NOT NULL, severity VARCHAR NOT NULL, duration_ms DOUBLE, value DOUBLE, unit VARCHAR, "
    "service VARCHAR, service_version VARCHAR, platform VARCHAR, os VARCHAR, framework VARCHAR, page VARCHAR, "
    "properties JSON, redacted_paths VARCHAR[], session_key UBIGINT, id_hash UBIGINT NOT NULL"
)


def _m006_integer_keys(con: duckdb.DuckDBPyConnection) -> None:
    # actor and session_key become 64-bit keys (store/keys.py): analyses group and count them
    # without hashing strings first. The table is rebuilt in arrival order; each distinct actor text
    # and session_id is keyed once in Python, derived sessions are recomputed here in one pass.
    if not con.execute("SELECT count(*) FROM events").fetchall()[0][0]:
        # A new store: only the column types change (and no Arrow table is built, which would
        # import pandas into every new server's start).
        con.execute("DROP TABLE events")
        con.execute(f"CREATE TABLE events ({_V6_COLUMNS})")
        _refold_raw_rollups(con)
        return
    import pyarrow as pa

    from telemetry_mcp.store.keys import DERIVED_KEY_SQL, actor_text_key, explicit_session_key

    actors = [r[0] for r in con.execute("SELECT DISTINCT actor FROM events").fetchall()]
    sessions = [
        r[0]
        for r in con.execute("SELECT DISTINCT session_id FROM events WHERE session_id IS NOT NULL").fetchall()
    ]
    actor_map = pa.table({"a": pa.array(actors, pa.string()),
                          "k": pa.array([actor_text_key(a) for a in actors], pa.uint64())})  # fmt: skip
    session_map = pa.table({"s": pa.array(sessions, pa.string()),
                            "k": pa.array([explicit_session_key(x) for x in sessions], pa.uint64())})  # fmt: skip
    rows = con.execute("SELECT value FROM meta WHERE key = 'session_timeout_minutes'").fetchall()
    timeout = float(rows[0][0]) if rows and rows[0][0] else 30.0
    start = (
        "max(CASE WHEN new_session THEN ts END) "
        "OVER (PARTITION BY actor, session_id IS NULL ORDER BY ts, seq ROWS UNBOUNDED PRECEDING)"
    )
    con.register("_actor_map", actor_map)
    con.register("_session_map", session_map)
    try:
        con.execute(f"CREATE TABLE events_v6 ({_V6_COLUMNS})")
        con.execute(
            f"""
            INSERT INTO events_v6
            SELECT seq, event_id, ts, received_at, event_type, name, component, user_id, session_id, actor,
                   severity, duration_ms, value, unit, service, service_version, platform, os, framework, page,
                   properties, redacted_paths,
                   CASE WHEN session_id IS NOT NULL THEN sk WHEN new_session IS NOT NULL
                        THEN {DERIVED_KEY_SQL.format(actor="actor", start=start)} END,
                   id_hash
            FROM (
                SELECT e.* REPLACE (am.k AS actor), sm.k AS sk,
                       CASE WHEN e.session_id IS NOT NULL THEN NULL
                            ELSE coalesce(epoch(e.ts) - epoch(lag(e.ts) OVER w) > ?, true) END AS new_session
                FROM events e JOIN _actor_map am ON e.actor = am.a LEFT JOIN _session_map sm ON e.session_id = sm.s
                WINDOW w AS (PARTITION BY e.actor, e.session_id IS NULL ORDER BY e.ts, e.seq)
            )
            ORDER BY seq
            """,
            [timeout * 60.0],
        )
    finally:
        con.unregister("_actor_map")
        con.unregister("_session_map")
    con.execute("DROP TABLE events")
    con.execute("ALTER TABLE events_v6 RENAME TO events")
    con.execute(
        "UPDATE meta SET value = (SELECT coalesce(max(seq), 0)::VARCHAR FROM events) WHERE key = 'sessions_seq'"
    )
    con.execute("UPDATE meta SET value = ? WHERE key = 'session_timeout_minutes'", [repr(timeout)])
    _refold_raw_rollups(con)


def _refold_raw_rollups(con: duckdb.DuckDBPyConnection) -> None:
    """Rollup rows whose bucket is wholly raw are rebuilt from the events (their session sets were
    hashes of the old text keys); rows of buckets pruning cut into or removed are left as they are."""
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if "rollup_hour" not in tables:
        return  # a new store: migration 010 creates the rollups, the first refresh folds everything
    from telemetry_mcp.store.rollups import (
        GRAINS,
        META_CUTOFF,
        META_SEQ,
        ceil_to,
        events_with_slots,
        partial_sql,
    )

    _m011_smaller_rollups(con)  # the rollups' current layout first (011 finds nothing left to do then)

    meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    folded = int(meta.get(META_SEQ) or 0)
    cutoff = datetime.fromisoformat(meta[META_CUTOFF]) if META_CUTOFF in meta else None
    for grain, table in GRAINS.items():
        floor = ceil_to(cutoff, grain) if cutoff is not None else datetime(1970, 1, 1)
        con.execute(f"DELETE FROM {table} WHERE b >= ?", [floor])
        source = events_with_slots([], "seq <= ? AND ts >= ?")  # no property keys before 011
        con.execute(f"INSERT INTO {table} {partial_sql(source, grain)}", [folded, floor])


def _m010_rollups(con: duckdb.DuckDBPyConnection) -> None:
    # Hourly and daily rollups that outlive raw events (store/rollups.py describes the rows);
    # every event already stored is folded by the first Rollups.refresh.
    from telemetry_mcp.store.rollups import create_tables

    create_tables(con)


def _m011_smaller_rollups(con: duckdb.DuckDBPyConnection) -> None:
    # Rollups in less space (store/rollups.py): the hourly user and session sets keep the high 32 bits
    # of each hash, and a row with one value of a metric stores no min/max (its sum is both); and three
    # property dimensions p1-p3 (the rollup_property_keys setting; meta rollup_property_slots).
    # A store created with the new layout (010 makes it now) has nothing to convert.
    from telemetry_mcp.store.rollups import KEYS, PROPERTY_SLOTS, STAT_COLUMNS, create_tables

    kind = con.execute(
        "SELECT data_type FROM duckdb_columns() WHERE table_name = 'rollup_hour' AND column_name = 'users'"
    ).fetchall()
    hourly_64 = bool(kind) and kind[0][0] == "UBIGINT[]"
    has_slots = bool(
        con.execute(
            "SELECT 1 FROM duckdb_columns() WHERE table_name = 'rollup_hour' AND column_name = 'p1'"
        ).fetchall()
    )
    for table in ("rollup_hour", "rollup_day"):  # identifiers from this fixed tuple
        con.execute(f"DROP INDEX IF EXISTS {table}_b")
        con.execute(f"ALTER TABLE {table} RENAME TO {table}_v10")
    create_tables(con)
    for table in ("rollup_hour", "rollup_day"):
        cols = {c: c for c in ("b", *KEYS, *STAT_COLUMNS, "kh")}
        for slot in PROPERTY_SLOTS if not has_slots else ():  # none configured before 011
            cols[slot] = "NULL::VARCHAR"
        if not has_slots:  # the row's identity covers the new key columns too (rollups._kh)
            cols["kh"] = "hash(" + ", ".join(cols[c] for c in ("b", *KEYS)) + ")"
        for m in ("d", "v"):
            cols[f"{m}_min"] = f"CASE WHEN {m}_n <> 1 THEN {m}_min END"
            cols[f"{m}_max"] = f"CASE WHEN {m}_n <> 1 THEN {m}_max END"
        if table == "rollup_hour" and hourly_64:
            for c in ("users", "sessions"):
                cols[c] = f"list_transform({c}, lambda x: (x >> 32)::UINTEGER)"
        con.execute(f"INSERT INTO {table} SELECT {', '.join(cols.values())} FROM {table}_v10 ORDER BY b")
        con.execute(f"DROP TABLE {table}_v10")


MIGRATIONS: list[tuple[str, Migration]] = [
    ("001_events", _m001_events),
    ("002_meta", _m002_meta),
    ("003_session_keys", _m003_session_keys),
    ("004_dedupe_by_id_hash", _m004_dedupe_by_id_hash),
    ("005_catalog", _m005_catalog),
    ("006_integer_keys", _m006_integer_keys),
    # 007–009 are reserved for issue 10
    ("010_rollups", _m010_rollups),
    ("011_smaller_rollups", _m011_smaller_rollups),
]


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply every migration not yet recorded; return the names applied now."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP NOT NULL)"
    )
    done = {r[0] for r in con.execute("SELECT name FROM schema_migrations").fetchall()}
    applied = []
    for name, step in MIGRATIONS:
        if name in done:
            continue
        with transaction(con):
            step(con)
            con.execute("INSERT INTO schema_migrations VALUES (?, now()::TIMESTAMP)", [name])
        applied.append(name)
    return applied
