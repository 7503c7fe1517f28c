"""get_realtime_stats (SPEC tool 5): what is happening right now, ingest counters, storage and health.

"Now" is the wall clock (UTC). Recent windows are open-ended at the top: a client whose clock runs
up to 5 minutes ahead (ingest accepts that) still counts as recent rather than vanishing.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import duckdb
from pydantic import BaseModel, Field

import telemetry_mcp
from telemetry_mcp.analytics.common import (
    DEFAULT_LIMIT,
    Params,
    clip,
    iso_utc,
    parse_duration,
    pct,
    r4,
    rate,
    sessionized,
    utcnow,
)
from telemetry_mcp.errors import InvalidArgument
from telemetry_mcp.events.model import ERROR_SEVERITIES
from telemetry_mcp.store import Store

MAX_WINDOW = timedelta(days=7)


class EventTypeCount(BaseModel):
    event_type: str
    count: int


class IngestStats(BaseModel):
    """Ingest counters since this server process started."""

    received: int = Field(description="events submitted")
    accepted: int = Field(description="events stored")
    rejected: int = Field(description="events refused by validation")
    duplicates: int = Field(description="events whose event_id was already stored")
    dropped: int = Field(description="events dropped by do-not-track or sampling (never stored)")


class StorageStats(BaseModel):
    total_events: int = Field(description="every event in the store")
    oldest_event: str | None = Field(description="timestamp of the oldest stored event (UTC)")
    newest_event: str | None = Field(description="timestamp of the newest stored event (UTC)")
    database_bytes: int = Field(description="store file + WAL size (memory used for :memory:)")


class HealthStats(BaseModel):
    status: str = Field(description='"ok" when the store answers')
    uptime_seconds: float
    version: str = Field(description="telemetry-mcp version")
    duckdb_version: str


class RealtimeResult(BaseModel):
    now: str = Field(description="the wall-clock instant these figures are taken at (UTC)")
    window: str = Field(description="the window events_per_second, error_rate and top_event_types cover")
    active_window_minutes: float = Field(
        description="the session timeout: activity within it counts as active"
    )
    active_sessions: int = Field(
        description="sessions (explicit or derived) with an event within the timeout"
    )
    active_users: int = Field(
        description="actors (hashed user_id, else session) with an event within the timeout"
    )
    events_last_1m: int
    events_last_5m: int
    events_last_15m: int
    events_in_window: int
    events_per_second: float = Field(description="events in the window / window seconds")
    error_rate: float = Field(description="events with severity error or critical / events, in the window")
    top_event_types: list[EventTypeCount] = Field(description="most frequent event types in the window")
    truncated: bool = Field(description="true when top_event_types was cut at limit")
    ingest: IngestStats
    storage: StorageStats
    health: HealthStats
    summary: str


def parse_window(window: str) -> timedelta:
    """A window like 5m, 15m, 1h (at least 1 second, at most 7 days)."""
    span = parse_duration(window, "window")
    if span <= timedelta(0) or span > MAX_WINDOW:
        raise InvalidArgument(f'window "{window}" must be between 1s and 7d (e.g. 5m, 15m, 1h)')
    return span


def window_sql(now: datetime, span: timedelta, p: Params) -> str:
    """One scan over the recent events: counts for the fixed windows and the chosen one."""
    err = p.add(list(ERROR_SEVERITIES))
    spans = {
        "m1": timedelta(minutes=1),
        "m5": timedelta(minutes=5),
        "m15": timedelta(minutes=15),
        "win": span,
    }
    cut = {key: p.add(now - d) for key, d in spans.items()}
    earliest = p.add(now - max(spans.values()))
    return f"""
        SELECT count(*) FILTER (WHERE ts >= {cut["m1"]}::TIMESTAMP),
               count(*) FILTER (WHERE ts >= {cut["m5"]}::TIMESTAMP),
               count(*) FILTER (WHERE ts >= {cut["m15"]}::TIMESTAMP),
               count(*) FILTER (WHERE ts >= {cut["win"]}::TIMESTAMP),
               count(*) FILTER (WHERE ts >= {cut["win"]}::TIMESTAMP
                                AND list_contains({err}::VARCHAR[], severity))
        FROM events WHERE ts >= {earliest}::TIMESTAMP"""


def top_types_sql(now: datetime, span: timedelta, limit: int, p: Params) -> str:
    start = p.add(now - span)
    return f"""
        SELECT event_type, count(*) AS n, count(*) OVER () AS distinct_types
        FROM events WHERE ts >= {start}::TIMESTAMP
        GROUP BY event_type ORDER BY n DESC, event_type LIMIT {p.add(limit)}"""


def active_sql(now: datetime, timeout: timedelta, p: Params) -> str:
    """Actors and sessions with an event within the session timeout (sessions as in every analysis)."""
    where = f"ts >= {p.add(now - timeout)}::TIMESTAMP"
    source = sessionized(where, timeout.total_seconds() / 60.0, p)
    return f"SELECT count(DISTINCT actor), count(DISTINCT session_key) FROM {source}"


STORAGE_SQL = "SELECT count(*), min(ts), max(ts) FROM events"


def run(
    store: Store, window: str = "5m", limit: int = DEFAULT_LIMIT, now: datetime | None = None
) -> RealtimeResult:
    """Compute the live picture; `now` (naive UTC) defaults to the wall clock."""
    span = parse_window(window)
    now = now or utcnow()
    timeout = timedelta(minutes=store.settings.session_timeout_minutes)

    p = Params()
    m1, m5, m15, in_window, errors = store.fetch(window_sql(now, span, p), p.values)[0]
    p = Params()
    top = store.fetch(top_types_sql(now, span, limit, p), p.values)
    p = Params()
    users, sessions = store.fetch(active_sql(now, timeout, p), p.values)[0]
    total, oldest, newest = store.fetch(STORAGE_SQL)[0]

    c = store.counters
    with c.lock:
        ingest = IngestStats(
            received=c.received,
            accepted=c.accepted,
            rejected=c.rejected,
            duplicates=c.duplicates,
            dropped=c.dropped_dnt + c.sampled_out,
        )
    seconds = span.total_seconds()
    result = RealtimeResult(
        now=iso_utc(now) or "",
        window=window.strip(),
        active_window_minutes=r4(timeout.total_seconds() / 60.0) or 0.0,
        active_sessions=int(sessions),
        active_users=int(users),
        events_last_1m=int(m1),
        events_last_5m=int(m5),
        events_last_15m=int(m15),
        events_in_window=int(in_window),
        events_per_second=r4(in_window / seconds) or 0.0,
        error_rate=rate(errors, in_window),
        top_event_types=[EventTypeCount(event_type=t, count=int(n)) for t, n, _ in top],
        truncated=bool(top) and int(top[0][2]) > len(top),
        ingest=ingest,
        storage=StorageStats(
            total_events=int(total),
            oldest_event=iso_utc(oldest),
            newest_event=iso_utc(newest),
            database_bytes=store.database_bytes(),
        ),
        health=HealthStats(
            status="ok",
            uptime_seconds=round(time.time() - store.started_at, 1),
            version=telemetry_mcp.__version__,
            duckdb_version=duckdb.__version__,
        ),
        summary="",
    )
    result.summary = summarize(result, _note(store, now))
    return result


def _note(store: Store, now: datetime) -> str | None:
    """The shared detector's error spike over the last 24 hours (hour buckets), if it flags one."""
    from telemetry_mcp.analytics.anomalies import spike_sentence, worst
    from telemetry_mcp.analytics.common import TimeRange

    tr = TimeRange(now - timedelta(hours=24), now)
    found = worst(store, tr, "hour", None)
    return None if found is None else spike_sentence(found, "hour", "UTC")


def summarize(r: RealtimeResult, note: str | None = None) -> str:
    minutes = f"{r.active_window_minutes:g}"
    parts = [
        f"{r.events_in_window:,} events in the last {r.window} ({r.events_per_second:g}/s), "
        f"error rate {pct(r.error_rate)}; {r.active_users:,} active users in {r.active_sessions:,} sessions "
        f"(last {minutes} min)."
    ]
    if note:
        parts.append(note)
    if r.top_event_types:
        top = ", ".join(f"{t.event_type} {t.count:,}" for t in r.top_event_types[:3])
        parts.append(f"Top: {top}.")
    s = r.storage
    if s.total_events:
        parts.append(f"Store: {s.total_events:,} events from {s.oldest_event} to {s.newest_event}.")
    else:
        parts.append("Store: empty.")
    i = r.ingest
    parts.append(
        f"Ingest since start: {i.received:,} received, {i.accepted:,} accepted, {i.rejected:,} rejected, "
        f"{i.duplicates:,} duplicates, {i.dropped:,} dropped. Health {r.health.status}."
    )
    return clip(" ".join(parts))
