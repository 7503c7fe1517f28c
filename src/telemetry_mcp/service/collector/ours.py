"""Our own wire format: `POST /api/v1/events` with `{"events": [...], "service"?, "service_version"?,
"do_not_track"?}`, events as in SPEC section 2; the answer is what the ingest_events tool answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from telemetry_mcp.service.collector.common import Mapped, WireError

ENVELOPE = ("events", "service", "service_version", "do_not_track")


def map_ours(payload: Any, *, now: datetime) -> tuple[Mapped, dict[str, Any]]:
    """The events unchanged (the ingest core validates them) and the envelope's defaults."""
    if isinstance(payload, list):
        payload = {"events": payload}
    if not isinstance(payload, dict):
        raise WireError(400, 'body: expected {"events": [...], "service"?, "service_version"?}')
    unknown = sorted(set(payload) - set(ENVELOPE))
    if unknown:
        raise WireError(400, f"body: unknown field(s) {', '.join(unknown)}; accepted: {', '.join(ENVELOPE)}")
    events = payload.get("events")
    if not isinstance(events, list) or not events:
        raise WireError(400, 'body: "events" must be a non-empty array of event objects')
    envelope: dict[str, Any] = {}
    for name in ("service", "service_version"):
        value = payload.get(name)
        if value is not None and not isinstance(value, str):
            raise WireError(400, f'body: "{name}" must be a string')
        envelope[name] = value
    dnt = payload.get("do_not_track", False)
    if not isinstance(dnt, bool):
        raise WireError(400, 'body: "do_not_track" must be true or false')
    envelope["do_not_track"] = dnt
    mapped = Mapped(received=len(events), events=list(events), origin=list(range(len(events))))
    return mapped, envelope
