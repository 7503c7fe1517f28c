"""Data lifecycle on an open store: forget users, prune raw events past their retention, compact.

Deletions hold the store's write lock one chunk at a time (`maintenance_chunk_rows` rows per
transaction), so ingest waits at most one chunk and readers never wait: DuckDB's MVCC lets a read
see the store as it was when the read began.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from telemetry_mcp.errors import InvalidArgument, StoreBusyError
from telemetry_mcp.events.privacy import hash_user_id
from telemetry_mcp.store.db import Store
from telemetry_mcp.store.export import is_stored_hash
from telemetry_mcp.store.rollups import Rollups, raw_cutoff, set_raw_cutoff
from telemetry_mcp.store.transaction import transaction

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
MAX_FORGET_IDS = 10_000
# DuckDB returns no space to the OS by itself; a CHECKPOINT after this many deletions at least
# makes the freed blocks reusable (and truncates the file when they are at its end).
CHECKPOINT_AFTER_ROWS = 100_000
COMPACT_HINT_BYTES = 64 * 2**20  # prune mentions `compact` when at least this much of the file is free


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# ---------------------------------------------------------------- forget


@dataclass
class ForgottenUser:
    given: str
    matched_as: str  # "stored hash" or "raw id" (hashed as at ingest)
    user_hash: str
    events: int


@dataclass
class ForgetReport:
    users: list[ForgottenUser]
    events: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        out = [f"forgot {len(self.users)} user(s): {self.events:,} events deleted"]
        out += [f"  {u.given} ({u.matched_as} {u.user_hash}): {u.events:,} events" for u in self.users]
        return out


def _stored_form(store: Store, given: str, present: set[str]) -> tuple[str, str]:
    """The user_id as stored for one argument: a stored hash as it is, else the raw id hashed."""
    if not store.settings.hash_user_ids:
        return given, "stored id"
    if is_stored_hash(given) and given in present:
        return given, "stored hash"
    return hash_user_id(given, store.salt), "raw id"


def forget_users(store: Store, user_ids: Sequence[str]) -> ForgetReport:
    """Delete every event of these users (raw ids, hashed as at ingest, or stored hashes).

    All of them go in one transaction: a forget is never half done. The rollups lose them in the
    same transaction (Rollups.forget): their events' share of every count, and their hash in the
    user sets of every bucket, pruned ones included.
    """
    ids = [u for u in dict.fromkeys(user_ids) if u]
    if not ids:
        raise InvalidArgument("forget: give at least one user id (a raw id as sent, or a stored hash)")
    if len(ids) > MAX_FORGET_IDS:
        raise InvalidArgument(f"forget: at most {MAX_FORGET_IDS:,} user ids per call; split the list")
    Rollups.refresh(store)  # nothing of theirs stays unfolded, so nothing is missed below
    floor = raw_cutoff(store)
    with store.write_lock:
        cur = store.cursor()
        try:
            maybe = [u for u in ids if is_stored_hash(u)]
            present = {
                r[0]
                for r in cur.execute(
                    "SELECT DISTINCT user_id FROM events WHERE list_contains(?::VARCHAR[], user_id)", [maybe]
                ).fetchall()
            }
            forms = [(u, *_stored_form(store, u, present)) for u in ids]
            hashes = [f[1] for f in forms]
            counts = dict(
                cur.execute(
                    "SELECT user_id, count(*) FROM events WHERE list_contains(?::VARCHAR[], user_id) GROUP BY 1",
                    [hashes],
                ).fetchall()
            )
            with transaction(cur):
                Rollups.forget(cur, hashes, floor)
                cur.execute("DELETE FROM events WHERE list_contains(?::VARCHAR[], user_id)", [hashes])
        finally:
            cur.close()
    users = [ForgottenUser(given, how, h, int(counts.get(h, 0))) for given, h, how in forms]
    return ForgetReport(users, sum(u.events for u in users))


# ---------------------------------------------------------------- retention


@dataclass
class PruneReport:
    dry_run: bool
    raw_retention_days: int
    cutoff: str | None  # events before this (UTC) are past retention; None: kept forever
    raw_events: int  # deleted, or that would be deleted
    oldest: str | None  # the oldest event past retention
    remaining: int  # raw events past retention still stored (a bounded step may leave some)
    database_bytes_before: int
    database_bytes_after: int
    seconds: float
    free_bytes: int = 0  # of the file, in blocks DuckDB marked free: what `compact` would return

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        if self.cutoff is None:
            return ["raw events are kept forever (raw_retention_days = 0): nothing to prune"]
        verb = "would delete" if self.dry_run else "deleted"
        head = (
            f"{verb} {self.raw_events:,} raw events older than {self.cutoff}Z "
            f"(raw_retention_days = {self.raw_retention_days})"
        )
        if self.oldest:
            head += f", the oldest from {self.oldest}Z"
        out = [head]
        if self.remaining:
            out.append(f"  {self.remaining:,} more remain past retention (the next step deletes them)")
        if not self.dry_run:
            out.append(
                f"  store {self.database_bytes_before:,} → {self.database_bytes_after:,} bytes "
                f"in {self.seconds:.1f} s"
            )
            if self.free_bytes >= COMPACT_HINT_BYTES:
                out.append(
                    f"  {self.free_bytes:,} bytes of the file are free (new events reuse them); "
                    "`telemetry-mcp compact` returns them to the disk"
                )
        return out


def cutoff_of(store: Store, now: datetime) -> datetime | None:
    days = store.settings.raw_retention_days
    return None if days == 0 else now - timedelta(days=days)


def _past(store: Store, cutoff: datetime) -> tuple[int, datetime | None]:
    cur = store.cursor()
    try:
        row = cur.execute("SELECT count(*), min(ts) FROM events WHERE ts < ?", [cutoff]).fetchall()[0]
    finally:
        cur.close()
    return int(row[0]), row[1]


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat(timespec="seconds")


def prune(
    store: Store, now: datetime | None = None, *, dry_run: bool = False, max_chunks: int | None = None
) -> PruneReport:
    """Delete raw events older than the raw retention, one chunk per transaction.

    `max_chunks` bounds the work of one call (the background step); None: until none are left.
    Every event is folded into the rollups first (Rollups.refresh), so none is pruned unfolded; the
    cutoff is kept in meta (`raw_cutoff`): analyses of earlier buckets then answer from rollups.
    """
    started = time.perf_counter()
    now = now or utcnow()
    cutoff = cutoff_of(store, now)
    before = store.database_bytes()
    if cutoff is None:
        return PruneReport(dry_run, 0, None, 0, None, 0, before, before, 0.0)
    pending, oldest = _past(store, cutoff)
    deleted = 0
    if not dry_run and pending:
        folded = Rollups.refresh(store).upto_seq  # a later arrival waits for the next step
        chunk = store.settings.maintenance_chunk_rows
        chunks = 0
        while max_chunks is None or chunks < max_chunks:
            n = _delete_chunk(store, cutoff, chunk, folded)
            deleted += n
            chunks += 1
            if n < chunk:
                break
        if deleted >= CHECKPOINT_AFTER_ROWS or deleted == pending:
            _checkpoint(store)
    remaining = pending - deleted if not dry_run else pending
    shown = pending if dry_run else deleted
    return PruneReport(
        dry_run,
        store.settings.raw_retention_days,
        _iso(cutoff),
        shown,
        _iso(oldest),
        remaining if not dry_run else 0,
        before,
        store.database_bytes(),
        time.perf_counter() - started,
        0 if dry_run or store.settings.is_memory else free_bytes(store),
    )


def _checkpoint(store: Store) -> None:
    """CHECKPOINT with ingest held off (DuckDB refuses one while a write transaction is open)."""
    with store.write_lock:
        try:
            store.checkpoint()
        except duckdb.TransactionException as exc:  # the freed blocks become reusable at the next one
            log.info("checkpoint after pruning deferred: %s", exc)


def _delete_chunk(store: Store, cutoff: datetime, chunk: int, folded: int) -> int:
    """Delete up to `chunk` of the oldest-arrived events past the cutoff, in one transaction.

    Only events already folded into the rollups (seq ≤ `folded`) go.
    """
    with store.write_lock:
        cur = store.cursor()
        try:
            with transaction(cur):
                set_raw_cutoff(cur, cutoff)
                row = cur.execute(
                    "DELETE FROM events WHERE seq IN "
                    "(SELECT seq FROM events WHERE ts < ? AND seq <= ? ORDER BY seq LIMIT ?)",
                    [cutoff, folded, chunk],
                ).fetchall()
        finally:
            cur.close()
    return int(row[0][0]) if row else 0


# ---------------------------------------------------------------- compaction


@dataclass
class CompactReport:
    path: str
    bytes_before: int
    bytes_after: int
    free_bytes_before: int  # blocks DuckDB had marked free (reusable) before the copy
    tables: int
    rows: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        saved = self.bytes_before - self.bytes_after
        return [
            f"compacted {self.path}: {self.bytes_before:,} → {self.bytes_after:,} bytes "
            f"({saved:,} bytes returned; {self.rows:,} rows in {self.tables} tables copied) in {self.seconds:.1f} s"
        ]


def free_bytes(store: Store) -> int:
    """Bytes of the store file in blocks DuckDB marked free (what compaction would return)."""
    cur = store.cursor()
    try:
        row = cur.execute("SELECT free_blocks * block_size FROM pragma_database_size()").fetchall()
    finally:
        cur.close()
    return int(row[0][0] or 0) if row else 0


def compact(store: Store) -> CompactReport:
    """Shrink the store file: copy the database into a new file and put it in place of the old one.

    DuckDB does not return a file's free blocks to the OS; its documentation's way to reclaim them
    is to copy the database into a new file (`ATTACH` + `COPY FROM DATABASE`). Writes are held the
    whole time (write_lock; the service's collector answers 503 + Retry-After meanwhile), reads
    wait while the file is swapped (Store.swap_file). Order: CHECKPOINT (everything in the main
    file, no WAL), close, copy with a connection of its own into `<db>.compact.tmp`, compare every
    table's row count, fsync, atomic rename over the store, fsync the directory, reopen. Killed at
    any point, the path holds a complete store: the old file until the rename, the new one after.
    """
    if store.settings.is_memory:
        raise InvalidArgument("compact: an in-memory store has no file to shrink")
    started = time.perf_counter()
    with store.maintenance_lock, store.write_lock:
        store.checkpoint()
        before, free = store.database_bytes(), free_bytes(store)
        counted: dict[str, int] = {}
        store.swap_file(lambda path: _copy_into_new_file(store, path, counted))
        after = store.database_bytes()
    return CompactReport(
        str(Path(store.path).expanduser()), before, after, free, len(counted), sum(counted.values()),
        time.perf_counter() - started,
    )  # fmt: skip


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _copy_into_new_file(store: Store, path: Path, counted: dict[str, int]) -> None:
    wal = path.with_name(path.name + ".wal")
    if wal.exists() and wal.stat().st_size > 0:  # the CHECKPOINT left a log: never rename over it
        raise StoreBusyError(
            f"compact: {wal} is not empty after CHECKPOINT; nothing was changed, run it again"
        )
    tmp = path.with_name(path.name + ".compact.tmp")
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)  # from a compaction killed before its rename
    con = duckdb.connect(
        config={"threads": store.settings.threads, "memory_limit": store.settings.memory_limit,
                "autoinstall_known_extensions": False, "autoload_known_extensions": False}
    )  # fmt: skip
    try:
        # paths are ours (the store's own), quoted as SQL text: ATTACH takes no bound parameters
        con.execute(f"ATTACH {_sql_text(str(path))} AS old_store (READ_ONLY)")
        con.execute(f"ATTACH {_sql_text(str(tmp))} AS new_store")
        con.execute("COPY FROM DATABASE old_store TO new_store")
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = 'old_store' ORDER BY 1"
            ).fetchall()
        ]
        for table in tables:  # names from the catalog, quoted as identifiers
            ident = '"' + table.replace('"', '""') + '"'
            a = con.execute(f"SELECT count(*) FROM old_store.{ident}").fetchall()[0][0]
            b = con.execute(f"SELECT count(*) FROM new_store.{ident}").fetchall()[0][0]
            if a != b:
                raise RuntimeError(
                    f"compact: table {table} has {a} rows but its copy {b}; nothing was changed"
                )
            counted[table] = int(a)
        con.execute("DETACH new_store")  # checkpoints the copy: all of it in the file
        con.execute("DETACH old_store")
    except BaseException:
        con.close()
        tmp.unlink(missing_ok=True)
        raise
    con.close()
    tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# ---------------------------------------------------------------- the owner's background step


@dataclass
class Maintenance:
    """The owner's background job: every `interval` seconds, one bounded prune step.

    `clock` is injectable so that tests decide what "now" is; `step()` runs one step at once.
    """

    store: Store
    clock: Clock = utcnow
    max_chunks: int = 20
    interval: float | None = None
    steps: int = 0
    last: PruneReport | None = None
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def step(self) -> PruneReport:
        with self.store.maintenance_lock:  # not while a compaction runs
            Rollups.refresh(self.store)  # before pruning: no event is pruned unfolded
            report = prune(self.store, self.clock(), max_chunks=self.max_chunks)
        self.steps += 1
        self.last = report
        if report.raw_events:
            log.info("maintenance: %s", "; ".join(report.lines()))
        return report

    def start(self) -> None:
        """Run steps in a daemon thread until `stop()` (no-op when the interval is 0)."""
        seconds = (
            self.interval
            if self.interval is not None
            else self.store.settings.maintenance_interval_minutes * 60
        )
        if seconds <= 0 or self._thread is not None:
            return

        def loop() -> None:
            while not self._stop.wait(seconds):
                try:
                    # a step with work left runs again soon, so a backlog drains in bounded steps
                    while self.step().remaining and not self._stop.wait(1.0):
                        pass
                except Exception as exc:  # the top of the thread: log, keep the owner serving
                    log.warning("maintenance step failed: %s", exc)
                    self.errors.append(f"{type(exc).__name__}: {exc}")

        self._thread = threading.Thread(target=loop, name="telemetry-mcp-maintenance", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
