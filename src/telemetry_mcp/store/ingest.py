"""The one ingest core: validate per column → privacy per column → one Arrow batch → one commit.

Used by ingest_events, `import` and the HTTP collector. Work is done on whole columns: values are
validated as typed structs (events/columns.py), user ids are hashed once per distinct value, names
and pages are cleaned once per distinct value, and properties go through the exact scrubber only
when a cheap test on their JSON text says they might hold a secret, an address or an id. The
per-event path (store/reference.py) is kept as the reference the differential test compares with.
"""

from __future__ import annotations

import gc
import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from itertools import compress
from typing import Any

import duckdb
import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from telemetry_mcp.config import Settings
from telemetry_mcp.errors import InvalidArgument
from telemetry_mcp.events.columns import COL, Validated, timestamps, validate_arrow, validate_batch
from telemetry_mcp.events.fastpath import dump_json
from telemetry_mcp.events.model import DEFAULT_SEVERITY
from telemetry_mcp.events.privacy import (
    PrivacyPipeline,
    PrivacySettings,
    anonymize_url,
    hash_user_id,
    is_sampled_in,
    sampling_key,
    scrub_text,
)
from telemetry_mcp.store.db import Store
from telemetry_mcp.store.keys import actor_key, explicit_session_key
from telemetry_mcp.store.migrations import CATALOG_KINDS

MAX_ERRORS = 100

_TEXT = pa.string()
SCHEMA = pa.schema(
    [
        ("seq", pa.int64()),
        ("event_id", _TEXT),
        ("ts", pa.timestamp("us")),
        ("received_at", pa.timestamp("us")),
        ("event_type", _TEXT),
        ("name", _TEXT),
        ("component", _TEXT),
        ("user_id", _TEXT),
        ("session_id", _TEXT),
        ("actor", pa.uint64()),
        ("severity", _TEXT),
        ("duration_ms", pa.float64()),
        ("value", pa.float64()),
        ("unit", _TEXT),
        ("service", _TEXT),
        ("service_version", _TEXT),
        ("platform", _TEXT),
        ("os", _TEXT),
        ("framework", _TEXT),
        ("page", _TEXT),
        ("properties", _TEXT),
        ("redacted_paths", pa.list_(_TEXT)),
        ("session_key", pa.uint64()),
    ]
)
_COLUMNS = [f.name for f in SCHEMA]
ROW_SCHEMA = pa.schema([f for f in SCHEMA if f.name not in ("seq", "received_at")])
_SELECT = {"received_at": "$1::TIMESTAMP AS received_at", "properties": "properties::JSON"}
_INSERT = (
    f"INSERT INTO events ({', '.join(_COLUMNS)}, id_hash) SELECT "
    + ", ".join(_SELECT.get(c, c) for c in _COLUMNS)
    + ", hash(event_id) FROM batch"
)
_INSERT_RETURNING = _INSERT + " RETURNING seq, id_hash"
_BATCH_COLUMNS = [c for c in _COLUMNS if c != "received_at"]  # what the writer's `batch` view holds


@dataclass
class IngestReport:
    """What one ingest call did (SPEC tool 1)."""

    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    dropped_dnt: int = 0
    sampled_out: int = 0
    redactions: int = 0

    def reject(self, index: int, reason: str) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append((index, reason))

    def merge(self, other: IngestReport, offset: int = 0) -> None:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.dropped_dnt += other.dropped_dnt
        self.sampled_out += other.sampled_out
        self.redactions += other.redactions
        self.rejected += other.rejected
        room = MAX_ERRORS - len(self.errors)
        self.errors.extend((i + offset, r) for i, r in other.errors[: max(room, 0)])


def privacy_settings(settings: Settings) -> PrivacySettings:
    return PrivacySettings(
        honor_dnt=settings.honor_dnt,
        sample_rate=settings.sample_rate,
        exclude_fields=settings.exclude_fields,
        excluded_paths=tuple(settings.excluded_paths),
        scrub_values=settings.scrub_values,
        anonymize_urls=settings.anonymize_urls,
        hash_user_ids=settings.hash_user_ids,
    )


# A conservative test on a properties object's JSON text: when it does not match, no step of the
# privacy pipeline can change the object (tests/store/test_columnar_core.py checks this property).
# e-mail "@"; URL "://" or a string starting with "/"; JWT "eyJ"; dotted quad; 13+ digits with
# separators (card); "h:h:" or "::" (IPv6); bearer. Secret key names are tested on the squashed text.
_PROPS_MAYBE = re.compile(
    r'@|://|"/|eyJ|[0-9]\.[0-9]+\.[0-9]+\.[0-9]|[0-9][0-9 -]{11,}[0-9]|[0-9A-Fa-f]:[0-9A-Fa-f]*:|::|(?i:bearer)'
)
_NOT_ALNUM = re.compile(r"[\W_]+")
_SECRET_WORDS = ("pass", "secret", "token", "apikey", "authorization", "cookie", "email", "creditcard")
_PROPS_CACHE = 65_536


@dataclass
class Prepared:
    """One batch after validation and the privacy pipeline: the rows to store, as an Arrow table."""

    report: IngestReport
    table: pa.Table | None
    received_at: datetime
    received: int
    # The distinct values of the table's catalogued columns (`catalog_of(table)`), when they were
    # computed beside the writer (collector workers); else the writer computes them.
    catalog: dict[str, set[str]] | None = None


class Preparer:
    """Validation and the privacy pipeline of one store's settings and salt: no I/O, no store handle.

    The HTTP collector runs one in each of its worker processes (service/workers.py); the Ingestor
    below is one that also stores.
    """

    def __init__(self, settings: Settings, salt: bytes) -> None:
        self.settings = settings
        self.privacy = PrivacyPipeline(privacy_settings(settings), salt)
        s = self.privacy.settings
        self._hash = lru_cache(maxsize=262_144)(lambda u: hash_user_id(u, salt))
        self._name = lru_cache(maxsize=65_536)(scrub_text)
        self._page = lru_cache(maxsize=65_536)(self._clean_page)
        self._props: dict[str, tuple[str, tuple[str, ...]]] = {}
        # Excluded paths outside properties (e.g. "page") are applied by the per-event reference.
        self._row_exclusions = s.exclude_fields and any(
            not p.startswith("properties.") for p in s.excluded_paths if p
        )
        self._excluded_keys = tuple(
            f'"{p.rsplit(".", 1)[-1]}"' for p in s.excluded_paths if p.startswith("properties.")
        )

    def _check_size(self, n: int) -> None:
        limit = self.settings.max_batch_events
        if n > limit:
            raise InvalidArgument(
                f"batch of {n:,} events exceeds the limit of {limit:,} per call; "
                "split it into several calls (or use `telemetry-mcp import FILE` for bulk loads)"
            )

    def prepare(
        self,
        events: Sequence[Any],
        *,
        service: str | None = None,
        service_version: str | None = None,
        do_not_track: bool = False,
        now: datetime | None = None,
        default_ids: Callable[[int], str] | None = None,
        prehashed_users: bool = False,
    ) -> Prepared:
        """Validation and the privacy pipeline, no I/O (safe to run in another thread than commit).

        `default_ids(index)` gives the event id of a record without one (import: from the file and the
        record's position, so a re-run never stores it twice); otherwise a random UUID.
        """
        received_at = (now or datetime.now(UTC)).replace(tzinfo=None)
        report = IngestReport()
        if do_not_track and self.settings.honor_dnt:
            report.dropped_dnt = len(events)
            return Prepared(report, None, received_at, len(events))
        if self._row_exclusions:
            from telemetry_mcp.store.reference import reference_rows

            table = reference_rows(
                self, events, report, received_at, service, service_version, default_ids, prehashed_users
            )
            return Prepared(report, table, received_at, len(events))
        # The cyclic GC is the largest single cost of big payloads (PERF_NOTES): pause it per batch.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            table = self._columns(
                events, report, received_at, service, service_version, default_ids, prehashed_users
            )
        finally:
            if gc_was_enabled:
                gc.enable()
        return Prepared(report, table, received_at, len(events))

    def _columns(
        self,
        events: Sequence[Any],
        report: IngestReport,
        received_at: datetime,
        service: str | None,
        service_version: str | None,
        default_ids: Callable[[int], str] | None,
        prehashed_users: bool = False,
    ) -> pa.Table | None:
        return self._validated(
            validate_batch(events, received_at),
            report,
            received_at,
            service,
            service_version,
            default_ids,
            prehashed_users,
        )

    def prepare_arrow(
        self,
        table: pa.Table,
        raw: Callable[[int], Any],
        *,
        default_ids: Callable[[int], str] | None = None,
        prehashed_users: bool = False,
    ) -> Prepared:
        """`prepare` of a table of typed columns (a Parquet batch), validated column by column.

        `raw(row)` is the row as a record (a dict, as the file reader gives it): rows that fail a
        column check, or the whole table when a column is not of a type handled in Arrow, go through
        `prepare`'s record path, so every result is the one `prepare([raw(0), raw(1), ...])` gives.
        """
        n = table.num_rows
        if self._row_exclusions:
            return self.prepare(
                [raw(i) for i in range(n)], default_ids=default_ids, prehashed_users=prehashed_users
            )
        received_at = datetime.now(UTC).replace(tzinfo=None)
        report = IngestReport()
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            v = validate_arrow(table, received_at, raw)
            if v is None:
                events = [raw(i) for i in range(n)]
                return self.prepare(
                    events, now=received_at, default_ids=default_ids, prehashed_users=prehashed_users
                )
            out = self._validated(v, report, received_at, None, None, default_ids, prehashed_users)
        finally:
            if gc_was_enabled:
                gc.enable()
        return Prepared(report, out, received_at, n)

    def _validated(
        self,
        v: Validated,
        report: IngestReport,
        received_at: datetime,
        service: str | None,
        service_version: str | None,
        default_ids: Callable[[int], str] | None,
        prehashed_users: bool = False,
    ) -> pa.Table | None:
        for index, reason in v.rejects:
            report.reject(index, reason)
        rows, props_json = v.rows, v.props_json
        if not rows:
            return None
        cols = list(zip(*rows, strict=True))
        keep = [True] * len(rows)
        if self.settings.honor_dnt and any(cols[COL["do_not_track"]]):
            for k, dnt in enumerate(cols[COL["do_not_track"]]):
                if dnt:
                    keep[k] = False
                    report.dropped_dnt += 1
        ids: list[str | None] = list(cols[COL["event_id"]])
        if None in ids:
            for k, event_id in enumerate(ids):
                if event_id is None and keep[k]:
                    ids[k] = default_ids(v.index[k]) if default_ids is not None else str(uuid.uuid4())
        rate = self.settings.sample_rate
        if rate < 1.0:
            user_col, session_col = cols[COL["user_id"]], cols[COL["session_id"]]
            for k in range(len(rows)):
                if keep[k] and not _sampled_in(sampling_key(user_col[k], session_col[k], ids[k]), rate):
                    keep[k] = False
                    report.sampled_out += 1
        if len(set(ids)) < len(ids) or not all(keep):
            seen: set[str | None] = set()
            for k, event_id in enumerate(ids):
                if keep[k]:
                    if event_id in seen:
                        keep[k] = False
                        report.duplicates += 1
                    else:
                        seen.add(event_id)
        if not any(keep):
            return None
        if not all(keep):
            rows = list(compress(rows, keep))
            ids = list(compress(ids, keep))
            props_json = list(compress(props_json, keep))
            cols = list(zip(*rows, strict=True))
        return self._private_table(
            cols, ids, props_json, report, received_at, service, service_version, prehashed_users
        )

    def _private_table(
        self,
        cols: list[tuple[Any, ...]],
        ids: list[str | None],
        props_json: list[str | None],
        report: IngestReport,
        received_at: datetime,
        service: str | None,
        service_version: str | None,
        prehashed_users: bool = False,
    ) -> pa.Table:
        s = self.privacy.settings
        n = len(ids)
        paths: list[list[str] | None] = [None] * n
        # steps 3-5 on properties: exact scrubber only where the cheap test says it might matter
        props_col = cols[COL["properties"]]
        props_json = list(props_json)
        for k, text in enumerate(props_json):
            if text is None:
                continue
            hit = self._props.get(text)
            if hit is None:
                hit = self._clean_props(props_col[k], text)
            new_text, changed = hit
            if changed:
                props_json[k] = new_text
                paths[k] = list(changed)
        names: list[str | None] = list(cols[COL["name"]])
        if s.scrub_values:
            for k, name in enumerate(names):
                if name is not None:
                    clean, kinds = self._name(name) if len(name) <= 200 else scrub_text(name)
                    if kinds:
                        names[k] = clean
                        _add_path(paths, k, "name")
        pages: list[str | None] = list(cols[COL["page"]])
        for k, page in enumerate(pages):
            if page is not None:
                clean_page = self._page(page)
                if clean_page != page:
                    pages[k] = clean_page
                    _add_path(paths, k, "page")
        raw_users = cols[COL["user_id"]]
        hashing = s.hash_user_ids and not prehashed_users
        users = [None if u is None else self._hash(u) for u in raw_users] if hashing else list(raw_users)
        ip_col = cols[COL["ip"]]
        if any(ip is not None for ip in ip_col):
            for k, ip in enumerate(ip_col):
                if ip is not None:
                    _add_path(paths, k, "ip")
        redacted: list[list[str] | None] = [None if p is None else list(dict.fromkeys(p)) for p in paths]
        report.redactions += sum(len(p) for p in redacted if p is not None)
        sessions = cols[COL["session_id"]]
        types = cols[COL["event_type"]]
        actors = [actor_key(u, sid, eid) for u, sid, eid in zip(users, sessions, ids, strict=True)]  # type: ignore[arg-type]
        severities = [
            sev if sev is not None else DEFAULT_SEVERITY.get(t, "info")
            for sev, t in zip(cols[COL["severity"]], types, strict=True)
        ]
        services = cols[COL["service"]]
        if service is not None:
            services = tuple(service if x is None else x for x in services)
        versions = cols[COL["service_version"]]
        if service_version is not None:
            versions = tuple(service_version if x is None else x for x in versions)
        columns: dict[str, Any] = {
            "event_id": ids,
            "ts": timestamps(cols[COL["timestamp"]], received_at),
            "event_type": types,
            "name": names,
            "component": cols[COL["component"]],
            "user_id": users,
            "session_id": sessions,
            "actor": actors,
            "severity": severities,
            "duration_ms": cols[COL["duration_ms"]],
            "value": cols[COL["value"]],
            "unit": cols[COL["unit"]],
            "service": services,
            "service_version": versions,
            "platform": cols[COL["platform"]],
            "os": cols[COL["os"]],
            "framework": cols[COL["framework"]],
            "page": pages,
            "properties": props_json,
            "redacted_paths": redacted,
            # Derived sessions (no session_id) are filled in by Store.refresh_sessions.
            "session_key": [None if sid is None else explicit_session_key(sid) for sid in sessions],
        }
        return pa.Table.from_pydict(columns, schema=ROW_SCHEMA)

    def _clean_props(self, props: dict[str, Any], text: str) -> tuple[str, tuple[str, ...]]:
        if self._might_change(text):
            changed = self.privacy.apply({"properties": props})
            new_text = dump_json(props) if any(p.startswith("properties") for p in changed) else text
            hit = (new_text, tuple(changed))
        else:
            hit = (text, ())
        if len(text) <= 512:
            if len(self._props) >= _PROPS_CACHE:
                self._props.clear()
            self._props[text] = hit
        return hit

    def _might_change(self, text: str) -> bool:
        """Could any privacy step change properties with this JSON text? False only when none can."""
        if _PROPS_MAYBE.search(text):
            return True
        lowered = text.lower()
        if "ssn" in lowered or any(key in text for key in self._excluded_keys):
            return True
        squashed = _NOT_ALNUM.sub("", lowered)
        return any(word in squashed for word in _SECRET_WORDS)

    def _clean_page(self, page: str) -> str:
        s = self.privacy.settings
        if s.anonymize_urls:
            page = anonymize_url(page)
        if s.scrub_values:
            page, _ = scrub_text(page)
        return page


class Ingestor(Preparer):
    """Turns raw events into stored rows for one store. Thread-safe (writes are serialised)."""

    def __init__(self, store: Store) -> None:
        super().__init__(store.settings, store.salt)
        self.store = store
        self._writer: duckdb.DuckDBPyConnection | None = None
        self._source = _CurrentBatch()

    def ingest(
        self,
        events: Sequence[Any],
        *,
        service: str | None = None,
        service_version: str | None = None,
        do_not_track: bool = False,
        now: datetime | None = None,
        prehashed_users: bool = False,
    ) -> IngestReport:
        """Validate, scrub and store one batch. One bad event never loses the good ones.

        The accepted rows are committed in one statement before this returns. `prehashed_users`:
        the user_ids are stored hashes already (an export being imported) and are kept as they are.
        """
        self._check_size(len(events))
        prepared = self.prepare(
            events,
            service=service,
            service_version=service_version,
            do_not_track=do_not_track,
            now=now,
            prehashed_users=prehashed_users,
        )
        return self.commit(prepared)

    def ingest_json(
        self,
        body: bytes,
        *,
        service: str | None = None,
        service_version: str | None = None,
        do_not_track: bool = False,
        now: datetime | None = None,
    ) -> IngestReport:
        """Like `ingest`, from the JSON text of an array of events (each decoded straight to a struct).

        Raises InvalidArgument when the body is not a JSON array.
        """
        items: list[Any]
        try:
            items = msgspec.json.decode(body, type=list[msgspec.Raw])
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            # msgspec refuses text the stdlib reads (a lone surrogate escape in one event, say):
            # then the stdlib decides, so one such event is rejected on its own, never the batch.
            try:
                parsed = json.loads(body)
            except (ValueError, RecursionError):
                parsed = None
            if not isinstance(parsed, list):
                raise InvalidArgument(f"body: expected a JSON array of events ({str(exc)[:200]})") from None
            items = parsed
        return self.ingest(
            items, service=service, service_version=service_version, do_not_track=do_not_track, now=now
        )

    def commit_group(self, group: Sequence[Prepared]) -> list[IngestReport]:
        """Store several prepared batches in one transaction (group commit); one report per batch.

        The HTTP collector gathers the batches of concurrent requests here: one commit instead of one
        per request. An event_id repeated across the batches is stored once (for the first batch).
        """
        if len(group) == 1:
            return [self.commit(group[0])]
        tables = [(k, p.table) for k, p in enumerate(group) if p.table is not None and p.table.num_rows]
        parts = [t.append_column("_part", pa.array(np.full(t.num_rows, k, np.int32))) for k, t in tables]
        catalogs = [group[k].catalog for k, _ in tables]
        reports = [p.report for p in group]
        counts = np.zeros(len(group), np.int64)
        if parts:
            combined = pa.concat_tables(parts)
            ids = combined.column("event_id").to_pylist()
            seen: set[str] = set()
            keep: list[bool] = []
            for event_id in ids:
                keep.append(event_id not in seen)
                seen.add(event_id)
            catalog: dict[str, set[str]] | None = None
            if not all(keep):
                combined = combined.filter(pa.array(keep))
            elif all(c is not None for c in catalogs):
                catalog = {kind: set().union(*(c[kind] for c in catalogs if c)) for kind in CATALOG_KINDS}
            merged = Prepared(IngestReport(), combined, max(p.received_at for p in group), 0, catalog)
            stored = self._write(merged, None)
            if stored is not None:
                counts = np.bincount(stored.column("_part").to_numpy(), minlength=len(group))
        for k, p in enumerate(group):
            report = reports[k]
            rows = p.table.num_rows if p.table is not None else 0
            report.accepted = int(counts[k])
            report.duplicates += rows - report.accepted
            self._count(p, report)
        return reports

    def commit(
        self, prepared: Prepared, after: Callable[[duckdb.DuckDBPyConnection], None] | None = None
    ) -> IngestReport:
        """Store the prepared rows whose event_id is not stored yet, in one transaction.

        `after(cursor)` runs inside that transaction (import records its progress there).
        """
        report = prepared.report
        inserted = 0
        if prepared.table is not None or after is not None:
            stored = self._write(prepared, after)
            inserted = stored.num_rows if stored is not None else 0
        if prepared.table is not None:
            report.duplicates += prepared.table.num_rows - inserted
        report.accepted = inserted
        self._count(prepared, report)
        return report

    def _count(self, prepared: Prepared, report: IngestReport) -> None:
        self.store.counters.add(
            received=prepared.received,
            accepted=report.accepted,
            rejected=report.rejected,
            duplicates=report.duplicates,
            dropped_dnt=report.dropped_dnt,
            sampled_out=report.sampled_out,
        )

    def _write(
        self, prepared: Prepared, after: Callable[[duckdb.DuckDBPyConnection], None] | None
    ) -> pa.Table | None:
        """Insert the rows not stored yet; return them (None when there were none)."""
        table = prepared.table
        with self.store.write_lock:
            id_set = self.store.id_hashes()
            cur = self._cursor()
            new_values: dict[str, set[str]] = {}
            hashes = np.empty(0, np.uint64)
            present = None
            try:
                cur.execute("BEGIN TRANSACTION")
                if table is not None and table.num_rows:
                    table, hashes, present, filtered = self._insert_new(
                        cur, table, prepared.received_at, id_set
                    )
                    if table.num_rows:
                        catalog = prepared.catalog if prepared.catalog is not None and not filtered else None
                        new_values = self.store.add_to_catalog(cur, catalog or catalog_of(table))
                if after is not None:
                    after(cur)
                cur.execute("COMMIT")
            except BaseException:
                self._writer = None  # a fresh cursor next time, whatever state this one is in
                try:
                    cur.execute("ROLLBACK")
                finally:
                    cur.close()
                raise
            if table is None or not table.num_rows:
                return None
            id_set.add(hashes, present)
            self.store.catalog_committed(new_values)
            return table

    def _insert_new(
        self, cur: duckdb.DuckDBPyConnection, table: pa.Table, received_at: datetime, id_set: Any
    ) -> tuple[pa.Table, Any, Any, bool]:
        """Insert the rows of `table` whose event_id is not stored (inside the caller's transaction).

        Returns the inserted rows (with their `seq`), their id hashes, which of those the id set
        holds already (stale entries, collisions), and whether stored duplicates were left out.

        Optimistic, because duplicates are rare (an SDK's retry): every row is inserted by one
        statement that also returns each row's id hash (no separate hash query: ~0.6 ms less per
        batch). Only when a row's event_id turns out to be stored already (a row of an earlier
        arrival number: all stored rows have one) is the insert undone and repeated without them.
        """
        start = self.store.peek_seq()
        n = table.num_rows
        batch = self._batch(table, start)
        try:
            returned = cur.execute(_INSERT_RETURNING, [received_at]).fetchnumpy()
            hashes = np.empty(n, np.uint64)
            hashes[np.asarray(returned["seq"], dtype=np.int64) - start] = returned["id_hash"]
            filtered = False
            hits = id_set.contains(hashes)
            stored: set[str] = set()
            if hits.any():
                candidates = table.column("event_id").filter(pa.array(hits)).to_pylist()
                found = cur.execute(
                    "SELECT event_id FROM events WHERE seq < $3 AND id_hash IN (SELECT unnest($1::UBIGINT[])) "
                    "AND event_id IN (SELECT unnest($2::VARCHAR[]))",
                    [[int(h) for h in hashes[hits]], candidates, start],
                ).fetchall()
                stored = {f[0] for f in found}
            if stored:
                cur.execute("ROLLBACK")
                cur.execute("BEGIN TRANSACTION")
                mask = np.array([e not in stored for e in table.column("event_id").to_pylist()])
                table, hashes, hits, filtered = table.filter(pa.array(mask)), hashes[mask], hits[mask], True
                n = table.num_rows
                batch = self._batch(table, start)
                if n:
                    cur.execute(_INSERT, [received_at])
        finally:
            self._source.table = None  # hold no batch between writes
        self.store.take_seq(n)
        return batch, hashes, hits, filtered

    def _batch(self, table: pa.Table, start: int) -> pa.Table:
        """The rows with their arrival numbers, as the writer cursor's `batch` view reads them."""
        batch = table.append_column("seq", pa.array(np.arange(start, start + table.num_rows, dtype=np.int64)))
        self._source.table = batch.select(_BATCH_COLUMNS)  # one fixed schema for the view
        return batch

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        """The writer's own cursor, kept between batches (its setup costs as much as a small insert)."""
        if self._writer is None:
            self._writer = self.store.cursor()
            # one view for the cursor's life, over a source whose table each write swaps in:
            # registering a table per write created and dropped a view each time (~0.9 ms)
            self._writer.register("batch", self._source)
            self.store.keep_cursor(self._release_writer)
        return self._writer

    def _release_writer(self) -> None:
        """Close the kept cursor (the store's file is being swapped: compaction holds write_lock)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class _CurrentBatch:
    """An Arrow stream source (the PyCapsule interface) that reads whichever table was set last:
    the writer cursor registers it once as `batch`, and DuckDB asks it for a stream at each scan."""

    def __init__(self) -> None:
        self.table: pa.Table | None = None

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        table = self.table
        if table is None:  # only the writer's own statements read `batch`, with a table set
            table = ROW_SCHEMA.append(pa.field("seq", pa.int64())).empty_table().select(_BATCH_COLUMNS)
        return table.__arrow_c_stream__(requested_schema)


def _add_path(paths: list[list[str] | None], k: int, path: str) -> None:
    current = paths[k]
    if current is None:
        paths[k] = [path]
    else:
        current.append(path)


@lru_cache(maxsize=262_144)
def _sampled_in(key: str | None, rate: float) -> bool:
    return is_sampled_in(key, rate)


def catalog_of(table: pa.Table | None) -> dict[str, set[str]]:
    """The distinct values of the catalogued columns in a batch."""
    if table is None or not table.num_rows:
        return {}
    out: dict[str, set[str]] = {}
    for kind in CATALOG_KINDS:
        if kind == "metric":
            perf = table.filter(pc.equal(table.column("event_type"), "performance"))
            values = perf.column("name").unique().to_pylist()
        else:
            values = table.column(kind).unique().to_pylist()
        out[kind] = {v for v in values if v is not None}
    return out
