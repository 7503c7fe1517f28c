"""The DuckDB connection, its settings, the single-writer lock, and guarded reads."""

from __future__ import annotations

import gc
import logging
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from telemetry_mcp.config import Settings
from telemetry_mcp.errors import QueryLimitError, StoreBusyError, StoreLockedError
from telemetry_mcp.store.idset import IdHashSet
from telemetry_mcp.store.keys import DERIVED_KEY_SQL, START_OF_KEY_SQL
from telemetry_mcp.store.migrations import CATALOG_KINDS, migrate
from telemetry_mcp.store.transaction import transaction

log = logging.getLogger(__name__)


@dataclass
class IngestCounters:
    """Ingest totals since this process started (reported by get_realtime_stats)."""

    received: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    dropped_dnt: int = 0
    sampled_out: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **deltas: int) -> None:
        with self.lock:
            for key, value in deltas.items():
                setattr(self, key, getattr(self, key) + value)


# Derived sessions of the actors that got new session-less events (seq > $1), recomputed from a
# point that is a session start: `_SESSION_STARTS` finds, per such actor, the latest older event at
# most one timeout (plus a second of margin) before its earliest new event; the window starts at
# that event's session start (read back from its key), or at the new event when there is none (no
# older session can reach it). Sessions before that point cannot change. Every scan is bounded by
# constant ts / seq ranges, so DuckDB's zone maps skip the row groups of older events.
_NEW_SESSIONLESS = """
SELECT actor, min(ts) FROM events WHERE seq > $1 AND seq <= $2 AND session_id IS NULL GROUP BY actor
"""
_SESSION_STARTS = f"""
WITH n AS (SELECT unnest($1::UBIGINT[]) AS actor, unnest($2::TIMESTAMP[]) AS t_new),
p AS (
    SELECT e.actor, max_by(e.session_key, e.ts) AS k
    FROM events e JOIN n ON e.actor = n.actor
    WHERE e.session_id IS NULL AND e.seq <= $3 AND e.ts >= $4 AND e.ts <= $5
      AND e.ts <= n.t_new AND epoch_us(e.ts) >= epoch_us(n.t_new) - $6
    GROUP BY e.actor
)
SELECT n.actor, CASE WHEN p.k IS NULL THEN n.t_new ELSE {START_OF_KEY_SQL.format(key="p.k", actor="n.actor")} END
FROM n LEFT JOIN p ON n.actor = p.actor
"""
_DERIVE_SESSIONS = f"""
UPDATE events SET session_key = d.k
FROM (
    SELECT seq, {DERIVED_KEY_SQL.format(actor="actor", start="start")} AS k
    FROM (
        SELECT seq, actor, max(CASE WHEN new_session THEN ts END) OVER (
                   PARTITION BY actor ORDER BY ts, seq ROWS UNBOUNDED PRECEDING) AS start
        FROM (
            SELECT e.seq, e.actor, e.ts,
                   lag(e.ts) OVER w IS NULL OR epoch(e.ts) - epoch(lag(e.ts) OVER w) > $3 AS new_session
            FROM events e JOIN (SELECT unnest($1::UBIGINT[]) AS actor, unnest($2::TIMESTAMP[]) AS s) f
                 ON e.actor = f.actor
            WHERE e.session_id IS NULL AND e.ts >= $4 AND e.ts >= f.s
            WINDOW w AS (PARTITION BY e.actor ORDER BY e.ts, e.seq)
        )
    )
) AS d
WHERE events.seq = d.seq AND events.ts >= $4 AND events.session_key IS DISTINCT FROM d.k
"""


def _lock_message(path: str, exc: Exception) -> str:
    pid = re.search(r"PID (\d+)", str(exc))
    holder = f"process {pid.group(1)}" if pid else "another process"
    return (
        f"telemetry-mcp: the store {path} is locked by {holder} (another telemetry-mcp server?). "
        "Stop that process, or use a different store with --db PATH / TELEMETRY_MCP_DB."
    )


class Store:
    """One DuckDB database (file or :memory:) opened for this process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.path = settings.db
        self.started_at = time.time()
        self.counters = IngestCounters()
        self.write_lock = threading.Lock()
        # held by the owner's background maintenance step and by compaction: never both at once
        self.maintenance_lock = threading.Lock()
        # cursors handed out and not yet released, and whether the file is being swapped (compaction)
        self._cursors: weakref.WeakSet[duckdb.DuckDBPyConnection] = weakref.WeakSet()
        self._gate = threading.Condition()
        self._swapping = False
        # cursors kept between calls (the ingest writer's) give themselves up when the file is swapped
        self._keepers: list[weakref.WeakMethod[Callable[[], None]]] = []
        if not settings.is_memory:
            Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self._con = self._connect()
        applied = migrate(self._con)
        if applied:
            log.info("store %s: applied migrations %s", self.path, ", ".join(applied))
        salt_hex = settings.salt or self._meta("salt")
        self.salt = bytes.fromhex(salt_hex)
        row = self._con.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
        self._next_seq = int(row[0]) + 1 if row else 1
        timeout = repr(float(settings.session_timeout_minutes))
        # Derived sessions depend on the timeout: a store opened with another one recomputes them all.
        self._sessions_seq = (
            int(self._meta("sessions_seq")) if self._meta("session_timeout_minutes") == timeout else 0
        )
        self._con.execute("UPDATE meta SET value = ? WHERE key = 'session_timeout_minutes'", [timeout])
        self._catalog: dict[str, frozenset[str]] = {kind: frozenset() for kind in CATALOG_KINDS}
        for kind, value in self._con.execute("SELECT kind, value FROM catalog").fetchall():
            self._catalog[kind] = self._catalog.get(kind, frozenset()) | {value}
        self._id_hashes: IdHashSet | None = None

    def _connect(self) -> duckdb.DuckDBPyConnection:
        settings = self.settings
        try:
            con = duckdb.connect(
                self.path if settings.is_memory else str(Path(self.path).expanduser()),
                config={
                    "threads": settings.threads,
                    "memory_limit": settings.memory_limit,
                    # No file or network access from SQL (the read-only SQL tool relies on this too).
                    "enable_external_access": False,
                    "autoinstall_known_extensions": False,
                    "autoload_known_extensions": False,
                    # Each automatic checkpoint rewrites the table's last, partly filled row group and
                    # frees the blocks of its previous version, which stay in the file: at the default
                    # 16 MB of WAL an import of 1 M events left 42 free blocks (11 MB, a quarter of the
                    # data). At 64 MB none were left, and peak memory was lower (bench/storage.py).
                    "checkpoint_threshold": "64MB",
                },
            )
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreLockedError(_lock_message(self.path, exc)) from None
            raise
        con.execute("SET TimeZone = 'UTC'; SET enable_progress_bar = false")
        return con

    def swap_file(self, replace: Callable[[Path], None], wait: float = 30.0) -> None:
        """Close the store's file, let `replace(path)` put another database file at its path, reopen.

        For compaction; call with write_lock held (no write can be under way). New cursors wait
        until the store is open again; the cursors already handed out (queries running) are waited
        for up to `wait` seconds, else nothing is closed and StoreBusyError says so. The file is
        closed only when no connection to it is left, so `replace` may open it elsewhere.
        """
        if self.settings.is_memory:
            raise RuntimeError("an in-memory store has no file to swap")
        with self._gate:
            self._swapping = True
        try:
            for ref in list(self._keepers):  # under write_lock: none of them is in use
                release = ref()
                if release is not None:
                    release()
            # every cursor is released by the code that took it (closed, then dropped)
            deadline = time.monotonic() + wait
            while len(self._cursors):
                gc.collect()  # one closed but kept by a reference cycle holds nothing either
                if not len(self._cursors):
                    break
                if time.monotonic() >= deadline:
                    raise StoreBusyError(
                        f"{len(self._cursors)} queries still running on {self.path} after {wait:g} s; "
                        "run the command again when they are done"
                    )
                time.sleep(0.01)
            self._con.close()  # closes every cursor made from it, too
            try:
                replace(Path(self.path).expanduser())
            finally:
                self._con = self._connect()
        finally:
            with self._gate:
                self._swapping = False
                self._gate.notify_all()

    def keep_cursor(self, release: Callable[[], None]) -> None:
        """Register the bound method that closes and forgets a cursor kept between calls, used only
        with write_lock held; swap_file calls it (held weakly: the keeper may go away first)."""
        self._keepers = [r for r in self._keepers if r() is not None]
        self._keepers.append(weakref.WeakMethod(release))  # type: ignore[arg-type]

    def catalog(self, kind: str) -> frozenset[str]:
        """The distinct stored values of one column (see CATALOG_KINDS), kept current by ingest.

        Answers argument validation in microseconds instead of a `SELECT DISTINCT` over every event.
        Values stay listed after their events are deleted (a superset: a filter on one finds nothing).
        """
        return self._catalog[kind]

    def add_to_catalog(
        self, cur: duckdb.DuckDBPyConnection, values: dict[str, set[str]]
    ) -> dict[str, set[str]]:
        """Insert the values not yet catalogued (inside the caller's transaction); return them.

        Call with write_lock held, then `catalog_committed` once the transaction has committed.
        """
        new = {k: v - self._catalog[k] for k, v in values.items()}
        rows = [(k, value) for k, vs in new.items() for value in vs]
        if rows:
            cur.execute(
                "INSERT INTO catalog SELECT * FROM (SELECT unnest($1::VARCHAR[]), unnest($2::VARCHAR[])) "
                "ON CONFLICT DO NOTHING",
                [[r[0] for r in rows], [r[1] for r in rows]],
            )
        return {k: v for k, v in new.items() if v}

    def catalog_committed(self, new: dict[str, set[str]]) -> None:
        for kind, values in new.items():
            self._catalog[kind] = self._catalog[kind] | values

    def id_hashes(self) -> IdHashSet:
        """The in-memory set of stored id hashes (loaded once, then kept by ingest); call with write_lock held."""
        if self._id_hashes is None:
            cur = self.cursor()
            try:
                column = cur.execute("SELECT id_hash AS h FROM events").fetchnumpy()["h"]
            finally:
                cur.close()
            self._id_hashes = IdHashSet(np.asarray(column, dtype=np.uint64))
        return self._id_hashes

    def _meta(self, key: str) -> str:
        row = self._con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        if row is None:
            raise RuntimeError(f"store {self.path} has no {key!r} in meta")
        return str(row[0])

    def meta_value(self, key: str, default: Callable[[], str], *, set_to: str | None = None) -> str:
        """A value kept in the store (e.g. the collector's write key): created once from `default`,
        or replaced by `set_to` when given."""
        with self.write_lock:
            cur = self.cursor()
            try:
                if set_to is not None:
                    cur.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, set_to])
                    return set_to
                row = cur.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
                if row is not None:
                    return str(row[0])
                value = default()
                cur.execute("INSERT INTO meta VALUES (?, ?)", [key, value])
                return value
            finally:
                cur.close()

    def peek_seq(self) -> int:
        """The next arrival-order number, not reserved; call with write_lock held."""
        return self._next_seq

    def take_seq(self, n: int) -> int:
        """Reserve n arrival-order numbers; call with write_lock held."""
        start = self._next_seq
        self._next_seq += n
        return start

    def refresh_sessions(self) -> None:
        """Derive session keys for session-less events that arrived since the last refresh.

        Per actor, over its session-less events in (ts, seq) order, a gap longer than the session
        timeout starts a new session; a session's key comes from the actor and its first timestamp.
        Only the actors with new session-less events are recomputed, each from the start of the
        session just before its earliest new event: the work follows what arrived, not the history.
        """
        if self._sessions_seq >= self._next_seq - 1:
            return
        with self.write_lock:
            last, upto = self._sessions_seq, self._next_seq - 1
            if last >= upto:
                return
            cur = self.cursor()
            try:
                with transaction(cur):  # one commit for the keys and the mark
                    self._derive_sessions(cur, last, upto)
                    cur.execute("UPDATE meta SET value = ? WHERE key = 'sessions_seq'", [str(upto)])
            finally:
                cur.close()
            self._sessions_seq = upto

    def _derive_sessions(self, cur: duckdb.DuckDBPyConnection, last: int, upto: int) -> None:
        rows = cur.execute(_NEW_SESSIONLESS, [last, upto]).fetchall()
        if not rows:
            return
        timeout = self.settings.session_timeout_minutes * 60.0
        actors = [int(r[0]) for r in rows]
        firsts = [r[1] for r in rows]
        reach = timedelta(seconds=timeout + 1.0)
        starts = cur.execute(
            _SESSION_STARTS,
            [actors, firsts, last, min(firsts) - reach, max(firsts), int(reach.total_seconds() * 1e6)],
        ).fetchall()
        cur.execute(
            _DERIVE_SESSIONS,
            [[int(r[0]) for r in starts], [r[1] for r in starts], timeout, min(r[1] for r in starts)],
        )

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection of its own for one call (one DuckDB connection is not shareable across threads)."""
        with self._gate:
            while self._swapping:
                self._gate.wait()
            cur = self._con.cursor()
            self._cursors.add(cur)
        # never draw a progress bar on stdout: in stdio mode it carries only the protocol
        cur.execute("SET TimeZone = 'UTC'; SET enable_progress_bar = false")
        return cur

    @contextmanager
    def guarded(self, timeout: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor whose work is interrupted after `timeout` seconds (QueryLimitError)."""
        limit = self.settings.query_timeout_seconds if timeout is None else timeout
        self.refresh_sessions()
        cur = self.cursor()
        timer = threading.Timer(limit, cur.interrupt)
        timer.daemon = True
        timer.start()
        try:
            yield cur
        except duckdb.InterruptException:
            raise QueryLimitError(
                f"query cancelled after {limit:g} s (query_timeout_seconds); "
                "narrow the time range, add filters, or raise TELEMETRY_MCP_QUERY_TIMEOUT_SECONDS"
            ) from None
        finally:
            timer.cancel()
            cur.close()

    def fetch(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        """Run one read query under the time guard and return all rows."""
        with self.guarded() as cur:
            return cur.execute(sql, params).fetchall()

    def fetch_dicts(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        """Like fetch, rows as dicts keyed by column name."""
        with self.guarded() as cur:
            res = cur.execute(sql, params)
            cols = [d[0] for d in res.description or []]
            return [dict(zip(cols, r, strict=True)) for r in res.fetchall()]

    def database_bytes(self) -> int:
        if self.settings.is_memory:
            cur = self.cursor()
            try:
                row = cur.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchall()[0]
            finally:
                cur.close()
            return int(row[0] or 0)
        base = Path(self.path).expanduser()
        wal = base.with_name(base.name + ".wal")
        return sum(p.stat().st_size for p in (base, wal) if p.exists())

    def probe_writable(self) -> None:
        """Raise unless the store accepts a write now (a no-op transaction that touches meta)."""
        with self.write_lock:
            cur = self.cursor()
            try:
                cur.execute("UPDATE meta SET value = value WHERE key = 'created_at'")
            finally:
                cur.close()

    def total_events(self) -> int:
        """Events stored (DuckDB keeps the count: no scan)."""
        cur = self.cursor()
        try:
            row = cur.execute("SELECT count(*) FROM events").fetchone()
        finally:
            cur.close()
        return int(row[0]) if row else 0

    def checkpoint(self) -> None:
        cur = self.cursor()
        try:
            cur.execute("CHECKPOINT")
        finally:
            cur.close()

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
