"""The one ingest path: validate → privacy pipeline → one Arrow batch → one committed INSERT."""

from __future__ import annotations

import gc
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from telemetry_mcp.config import Settings
from telemetry_mcp.errors import InvalidArgument
from telemetry_mcp.events.fastpath import validate_row
from telemetry_mcp.events.model import DEFAULT_SEVERITY, EventRejected
from telemetry_mcp.events.privacy import PrivacyPipeline, PrivacySettings, is_sampled_in, sampling_key
from telemetry_mcp.store.db import Store

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
        ("actor", _TEXT),
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
        ("session_key", _TEXT),
    ]
)
_COLUMNS = [f.name for f in SCHEMA]
_ROW_SCHEMA = pa.schema([f for f in SCHEMA if f.name not in ("seq", "received_at")])
_SELECT = {"received_at": "$1::TIMESTAMP AS received_at", "properties": "properties::JSON"}
_COPIED = ("name", "component", "session_id", "duration_ms", "value", "unit", "service", "service_version",
           "platform", "os", "framework", "page")  # fmt: skip


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


class Ingestor:
    """Turns raw event dicts into stored rows for one store. Thread-safe (writes are serialised)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.settings = store.settings
        self.privacy = PrivacyPipeline(privacy_settings(store.settings), store.salt)

    def ingest(
        self,
        events: Sequence[Any],
        *,
        service: str | None = None,
        service_version: str | None = None,
        do_not_track: bool = False,
        now: datetime | None = None,
    ) -> IngestReport:
        """Validate, scrub and store one batch. One bad event never loses the good ones.

        The accepted rows are committed in one statement before this returns.
        """
        limit = self.settings.max_batch_events
        if len(events) > limit:
            raise InvalidArgument(
                f"batch of {len(events):,} events exceeds the limit of {limit:,} per call; "
                "split it into several calls (or use `telemetry-mcp import FILE` for bulk loads)"
            )
        report = IngestReport()
        if do_not_track and self.settings.honor_dnt:
            report.dropped_dnt = len(events)
            self.store.counters.add(received=len(events), dropped_dnt=len(events))
            return report
        received_at = (now or datetime.now(UTC)).replace(tzinfo=None)
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        # The cyclic GC is the largest single cost of big payloads (PERF_NOTES): pause it per batch.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            for index, raw in enumerate(events):
                self._one(index, raw, report, rows, seen, received_at, service, service_version)
        finally:
            if gc_was_enabled:
                gc.enable()
        inserted = self._write(rows, received_at) if rows else 0
        report.duplicates += len(rows) - inserted
        report.accepted = inserted
        self.store.counters.add(
            received=len(events),
            accepted=report.accepted,
            rejected=report.rejected,
            duplicates=report.duplicates,
            dropped_dnt=report.dropped_dnt,
            sampled_out=report.sampled_out,
        )
        return report

    def _one(
        self,
        index: int,
        raw: Any,
        report: IngestReport,
        rows: list[dict[str, Any]],
        seen: set[str],
        received_at: datetime,
        service: str | None,
        service_version: str | None,
    ) -> None:
        try:
            row, props_json = validate_row(raw, received_at)
        except EventRejected as exc:
            report.reject(index, str(exc))
            return
        if row["do_not_track"] and self.settings.honor_dnt:
            report.dropped_dnt += 1
            return
        event_id = row["event_id"] or str(uuid.uuid4())  # before sampling: anonymous events are sampled too
        rate = self.settings.sample_rate
        if rate < 1.0 and not is_sampled_in(sampling_key(row["user_id"], row["session_id"], event_id), rate):
            report.sampled_out += 1
            return
        if event_id in seen:
            report.duplicates += 1
            return
        seen.add(event_id)
        row["event_id"] = event_id
        if row["service"] is None:
            row["service"] = service
        if row["service_version"] is None:
            row["service_version"] = service_version
        paths = self.privacy.apply(row)
        report.redactions += len(paths)
        user_id = row["user_id"]
        session_id = row["session_id"]
        props = row["properties"]
        if props is not None and any(p.startswith("properties") for p in paths):
            props_json = json.dumps(props, ensure_ascii=False, separators=(",", ":"))
        event_type = row["event_type"]
        row["ts"] = row["timestamp"] or received_at
        row["actor"] = (
            user_id
            if user_id is not None
            else f"s:{session_id}"
            if session_id is not None
            else f"e:{event_id}"
        )
        if row["severity"] is None:
            row["severity"] = DEFAULT_SEVERITY.get(event_type, "info")
        row["properties"] = None if props is None else props_json
        row["redacted_paths"] = paths or None
        # Derived sessions (no session_id) are filled in by Store.refresh_sessions.
        row["session_key"] = None if session_id is None else "x:" + session_id
        rows.append(row)

    def _write(self, rows: list[dict[str, Any]], received_at: datetime) -> int:
        """Insert the rows whose event_id is not stored yet; return how many were inserted."""
        with self.store.write_lock:
            cur = self.store.cursor()
            try:
                stored = self._stored_ids(cur, [r["event_id"] for r in rows])
                if stored:
                    rows = [r for r in rows if r["event_id"] not in stored]
                if not rows:
                    return 0
                n = len(rows)
                # Row dicts → columns in C (pyarrow); seq and received_at are added as whole columns.
                table = pa.Table.from_pylist(rows, schema=_ROW_SCHEMA)
                start = self.store.take_seq(n)
                table = table.append_column("seq", pa.array(range(start, start + n), pa.int64()))
                cur.register("batch", table)
                try:
                    cur.execute(
                        f"INSERT INTO events ({', '.join(_COLUMNS)}, id_hash) SELECT "
                        + ", ".join(_SELECT.get(c, c) for c in _COLUMNS)
                        + ", hash(event_id) FROM batch",
                        [received_at],
                    )
                finally:
                    cur.unregister("batch")
            finally:
                cur.close()
        return n

    @staticmethod
    def _stored_ids(cur: Any, ids: list[str]) -> set[str]:
        """The ids among `ids` already stored: a probe of the 64-bit hash column, then an exact check."""
        cur.register("incoming", pa.table({"event_id": pa.array(ids, pa.string())}))
        try:
            seqs = cur.execute(
                "SELECT seq FROM events WHERE id_hash IN (SELECT hash(event_id) FROM incoming)"
            ).fetchall()
            if not seqs:
                return set()
            found = cur.execute(
                "SELECT event_id FROM events WHERE seq IN (SELECT unnest($1::BIGINT[]))",
                [[s[0] for s in seqs]],
            ).fetchall()
        finally:
            cur.unregister("incoming")
        return {f[0] for f in found} & set(ids)
