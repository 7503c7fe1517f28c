"""The store: schema migrations, the per-store salt, the single-writer lock and the query time guard."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from telemetry_mcp.config import Settings, load_settings
from telemetry_mcp.errors import QueryLimitError, StoreLockedError
from telemetry_mcp.store import Store, migrations
from telemetry_mcp.store.ingest import Ingestor

EXPLICIT_SALT = "ffeeddccbbaa99887766554433221100"
# HMAC-SHA256(EXPLICIT_SALT, "alice"), first 16 hex characters
ALICE_WITH_EXPLICIT_SALT = "2f29b09fa5086c0e"


def file_settings(path: Path, **overrides: Any) -> Settings:
    return load_settings({"db": str(path), "threads": 2, **overrides}, env={})


def stored_user(store: Store, event_id: str) -> str:
    Ingestor(store).ingest([{"event_id": event_id, "event_type": "x", "user_id": "alice"}])
    return str(store.fetch("SELECT user_id FROM events WHERE event_id = ?", [event_id])[0][0])


# --- migrations ------------------------------------------------------------------------------------


ALL_MIGRATIONS = [name for name, _ in migrations.MIGRATIONS]


def test_the_registry_is_ordered_and_starts_with_the_events_table_and_the_meta_table() -> None:
    assert ALL_MIGRATIONS[:2] == ["001_events", "002_meta"]
    assert sorted(set(ALL_MIGRATIONS)) == ALL_MIGRATIONS


def test_a_new_store_records_every_migration_it_applied() -> None:
    con = duckdb.connect(":memory:")
    try:
        applied = migrations.migrate(con)

        assert applied == ALL_MIGRATIONS
        assert [r[0] for r in con.execute("SELECT name FROM schema_migrations ORDER BY name").fetchall()] == (
            ALL_MIGRATIONS
        )
        assert migrations.migrate(con) == []
    finally:
        con.close()


def test_migrations_are_not_reapplied_when_a_file_store_is_reopened(tmp_path: Path) -> None:
    settings = file_settings(tmp_path / "m.duckdb")
    with Store(settings) as store:
        first = store.fetch("SELECT name, applied_at FROM schema_migrations ORDER BY name")
        Ingestor(store).ingest([{"event_id": "kept", "event_type": "x"}])

    with Store(settings) as store:
        again = store.fetch("SELECT name, applied_at FROM schema_migrations ORDER BY name")
        salts = store.fetch("SELECT count(*) FROM meta WHERE key = 'salt'")
        events = store.fetch("SELECT event_id FROM events")

    assert [name for name, _ in first] == ALL_MIGRATIONS
    assert again == first
    assert salts == [(1,)]
    assert events == [("kept",)]


def test_migration_005_catalogues_the_events_of_an_older_store_and_ingest_keeps_it_current(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.duckdb"
    older = [m for m in migrations.MIGRATIONS if m[0] < "005"]
    con = duckdb.connect(str(path))
    try:
        monkeypatch.setattr(migrations, "MIGRATIONS", older)
        migrations.migrate(con)
        con.execute(
            "INSERT INTO events (seq, event_id, ts, received_at, event_type, name, component, actor, severity, "
            "service_version, id_hash) VALUES "
            "(1, 'a', now()::TIMESTAMP, now()::TIMESTAMP, 'performance', 'lcp', 'Cart', 'x', 'info', '1.0', hash('a')), "
            "(2, 'b', now()::TIMESTAMP, now()::TIMESTAMP, 'interaction', 'click', 'Nav', 'y', 'info', NULL, hash('b'))"
        )
    finally:
        con.close()
    monkeypatch.undo()

    with Store(file_settings(path)) as store:
        assert store.catalog("component") == {"Cart", "Nav"}
        assert store.catalog("metric") == {"lcp"}  # names of performance events only
        assert store.catalog("event_type") == {"performance", "interaction"}
        assert store.catalog("service_version") == {"1.0"}
        report = Ingestor(store).ingest(
            [{"event_id": "b", "event_type": "error", "component": "Dup"},  # a stored id: not catalogued
             {"event_id": "c", "event_type": "error", "component": "Search"}]
        )  # fmt: skip
        assert (report.accepted, report.duplicates) == (1, 1)
        assert store.catalog("component") == {"Cart", "Nav", "Search"}

    with Store(file_settings(path)) as store:
        assert store.catalog("component") == {"Cart", "Nav", "Search"}
        assert store.catalog("event_type") == {"performance", "interaction", "error"}


def test_a_failing_migration_leaves_nothing_behind_and_is_not_recorded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("migration bug")

    con = duckdb.connect(":memory:")
    try:
        migrations.migrate(con)
        monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, ("999_broken", broken)])

        with pytest.raises(RuntimeError, match="migration bug"):
            migrations.migrate(con)

        tables = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_name = 'half_done'"
        )
        assert tables.fetchall() == []
        recorded = con.execute("SELECT name FROM schema_migrations ORDER BY name").fetchall()
        assert [r[0] for r in recorded] == ALL_MIGRATIONS
    finally:
        con.close()


# --- the salt --------------------------------------------------------------------------------------


def test_the_salt_is_created_once_and_survives_reopening(tmp_path: Path) -> None:
    settings = file_settings(tmp_path / "s.duckdb")
    with Store(settings) as store:
        salt = store.salt
        before = stored_user(store, "before")

    with Store(settings) as store:
        assert store.salt == salt
        assert store.fetch("SELECT count(*) FROM meta WHERE key = 'salt'") == [(1,)]
        after = stored_user(store, "after")

    assert len(salt) == 32
    assert after == before


def test_each_new_store_gets_its_own_random_salt(tmp_path: Path) -> None:
    with (
        Store(file_settings(tmp_path / "one.duckdb")) as one,
        Store(file_settings(tmp_path / "two.duckdb")) as two,
    ):
        assert one.salt != two.salt
        assert stored_user(one, "a") != stored_user(two, "a")


def test_an_explicit_salt_setting_overrides_the_stored_one(tmp_path: Path) -> None:
    path = tmp_path / "e.duckdb"
    with Store(file_settings(path)) as store:
        generated = store.salt

    with Store(file_settings(path, salt=EXPLICIT_SALT)) as store:
        assert store.salt == bytes.fromhex(EXPLICIT_SALT)
        assert stored_user(store, "explicit") == ALICE_WITH_EXPLICIT_SALT
        # the stored salt is left as it was
        assert store.fetch("SELECT value FROM meta WHERE key = 'salt'") == [(generated.hex(),)]


# --- the single-writer lock ------------------------------------------------------------------------

HOLDER = """
import sys
from telemetry_mcp.config import load_settings
from telemetry_mcp.store import Store
store = Store(load_settings({"db": sys.argv[1], "threads": 1}, env={}))
print("ready", flush=True)
sys.stdin.read()
store.close()
"""


class Holder:
    """Another process holding a store file open until release()."""

    def __init__(self, path: Path) -> None:
        self.path = path
        env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMETRY_MCP_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout=timeout):
                raise AssertionError(f"the holder process did not open the store within {timeout} s")
        line = self.proc.stdout.readline()
        assert line == b"ready\n", self.proc.stderr.read() if self.proc.stderr else line

    def release(self) -> int:
        """Let the holder close the store and exit; its exit code."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)
        finally:
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[Holder]:
    held = Holder(tmp_path / "locked.duckdb")
    try:
        held.wait_ready()
        yield held
    finally:
        held.release()


def test_a_store_held_by_another_process_raises_store_locked_naming_the_file(holder: Holder) -> None:
    with pytest.raises(StoreLockedError) as info:
        Store(file_settings(holder.path))

    message = str(info.value)
    assert message.startswith(
        f"telemetry-mcp: the store {holder.path} is locked by process {holder.proc.pid} "
    )
    assert message.endswith("Stop that process, or use a different store with --db PATH / TELEMETRY_MCP_DB.")
    assert "\n" not in message


def test_the_store_opens_again_once_the_other_process_has_closed_it(holder: Holder) -> None:
    with pytest.raises(StoreLockedError):
        Store(file_settings(holder.path))

    assert holder.release() == 0

    with Store(file_settings(holder.path)) as store:
        assert store.fetch("SELECT count(*) FROM events") == [(0,)]


# --- the query time guard --------------------------------------------------------------------------

HEAVY = "SELECT count(*) FROM range(100000000) a, range(100) b"


def test_guarded_cancels_a_long_query_with_a_query_limit_error() -> None:
    store = Store(load_settings({"db": ":memory:", "threads": 2, "query_timeout_seconds": 0.5}, env={}))
    try:
        started = time.monotonic()
        with pytest.raises(QueryLimitError) as info, store.guarded() as cur:
            cur.execute(HEAVY).fetchall()

        assert time.monotonic() - started < 10
        assert str(info.value) == (
            "query cancelled after 0.5 s (query_timeout_seconds); narrow the time range, add filters, "
            "or raise TELEMETRY_MCP_QUERY_TIMEOUT_SECONDS"
        )
        # the store keeps answering afterwards
        assert store.fetch("SELECT 42") == [(42,)]
    finally:
        store.close()


def test_fetch_runs_under_the_same_guard_and_a_per_call_timeout_overrides_the_setting() -> None:
    store = Store(load_settings({"db": ":memory:", "threads": 2, "query_timeout_seconds": 0.3}, env={}))
    try:
        with pytest.raises(QueryLimitError, match=r"^query cancelled after 0\.3 s"):
            store.fetch(HEAVY)
        with (
            pytest.raises(QueryLimitError, match=r"^query cancelled after 0\.2 s"),
            store.guarded(0.2) as cur,
        ):
            cur.execute(HEAVY).fetchall()
        with store.guarded(0.2) as cur:
            assert cur.execute("SELECT 1").fetchall() == [(1,)]
    finally:
        store.close()
