"""Schema migrations: an ordered registry, each applied together with its record in one transaction."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime

import duckdb

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
    # 006–009 are reserved for another issue
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
        con.execute("BEGIN TRANSACTION")
        try:
            step(con)
            con.execute("INSERT INTO schema_migrations VALUES (?, now()::TIMESTAMP)", [name])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied
