"""The per-event ingest path, kept as the reference the columnar core is checked against.

Each event is validated (fast path, else the pydantic model), passed through the whole privacy
pipeline on its own (`PrivacyPipeline.apply`) and turned into a row dict, exactly as version 1 did.
The columnar core (store/ingest.py) must store the same rows and report the same errors; the
differential test runs both on the same events. It also serves configurations the core does not
handle column-wise (excluded paths outside `properties`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from telemetry_mcp.events.columns import Unparsable
from telemetry_mcp.events.fastpath import validate_row
from telemetry_mcp.events.model import DEFAULT_SEVERITY, EventRejected
from telemetry_mcp.events.privacy import is_sampled_in, sampling_key
from telemetry_mcp.store.keys import actor_key, explicit_session_key

if TYPE_CHECKING:
    from telemetry_mcp.store.ingest import Ingestor, IngestReport, Preparer


def reference_rows(
    ingestor: Preparer,
    events: Sequence[Any],
    report: IngestReport,
    received_at: datetime,
    service: str | None,
    service_version: str | None,
    default_ids: Callable[[int], str] | None = None,
    prehashed_users: bool = False,
) -> pa.Table | None:
    """Validate and scrub event by event; the accepted rows as a table of ROW_SCHEMA (None: none)."""
    from telemetry_mcp.store.ingest import ROW_SCHEMA

    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, raw in enumerate(events):
        if isinstance(raw, Unparsable):
            report.reject(index, raw.reason)
            continue
        if isinstance(raw, bytes):
            try:
                raw = json.loads(raw)
            except (ValueError, RecursionError) as exc:
                report.reject(index, f"malformed JSON ({str(exc)[:120]})")
                continue
        try:
            row, props_json = validate_row(raw, received_at)
        except EventRejected as exc:
            report.reject(index, str(exc))
            continue
        if row["do_not_track"] and ingestor.settings.honor_dnt:
            report.dropped_dnt += 1
            continue
        # before sampling: anonymous events are sampled too
        event_id = row["event_id"] or (default_ids(index) if default_ids else str(uuid.uuid4()))
        rate = ingestor.settings.sample_rate
        if rate < 1.0 and not is_sampled_in(sampling_key(row["user_id"], row["session_id"], event_id), rate):
            report.sampled_out += 1
            continue
        if event_id in seen:
            report.duplicates += 1
            continue
        seen.add(event_id)
        row["event_id"] = event_id
        if row["service"] is None:
            row["service"] = service
        if row["service_version"] is None:
            row["service_version"] = service_version
        stored_hash = row["user_id"] if prehashed_users else None
        if stored_hash is not None:
            row["user_id"] = None  # already the stored hash: not hashed again
        paths = ingestor.privacy.apply(row)
        if stored_hash is not None:
            row["user_id"] = stored_hash
        report.redactions += len(paths)
        user_id, session_id, props = row["user_id"], row["session_id"], row["properties"]
        if props is not None and any(p.startswith("properties") for p in paths):
            props_json = json.dumps(props, ensure_ascii=False, separators=(",", ":"))
        row["ts"] = row["timestamp"] or received_at
        row["actor"] = actor_key(user_id, session_id, event_id)
        if row["severity"] is None:
            row["severity"] = DEFAULT_SEVERITY.get(row["event_type"], "info")
        row["properties"] = None if props is None else props_json
        row["redacted_paths"] = paths or None
        row["session_key"] = None if session_id is None else explicit_session_key(session_id)
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=ROW_SCHEMA) if rows else None


class ReferenceIngestor:
    """An Ingestor whose preparation is the per-event reference (same commit, same report)."""

    def __init__(self, ingestor: Ingestor) -> None:
        self.ingestor = ingestor

    def ingest(self, events: Sequence[Any], **kw: Any) -> IngestReport:
        from telemetry_mcp.store.ingest import IngestReport, Prepared

        ing = self.ingestor
        ing._check_size(len(events))
        now = kw.get("now")
        received_at = (now or datetime.now(UTC)).replace(tzinfo=None)
        report = IngestReport()
        if kw.get("do_not_track") and ing.settings.honor_dnt:
            report.dropped_dnt = len(events)
            table = None
        else:
            table = reference_rows(
                ing,
                events,
                report,
                received_at,
                kw.get("service"),
                kw.get("service_version"),
                kw.get("default_ids"),
            )
        return ing.commit(Prepared(report, table, received_at, len(events)))
