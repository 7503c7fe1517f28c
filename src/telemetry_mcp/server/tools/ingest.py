"""ingest_events (SPEC tool 1)."""

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel, Field

from telemetry_mcp.errors import InvalidArgument
from telemetry_mcp.server.app import App, tool
from telemetry_mcp.store.ingest import IngestReport


class IngestError(BaseModel):
    index: int = Field(description="0-based position of the event in the batch")
    reason: str


class IngestResult(BaseModel):
    accepted: int = Field(description="events stored (committed before this answer)")
    duplicates: int = Field(description="events whose event_id was already stored (or repeated in the batch)")
    rejected: int
    errors: list[IngestError] = Field(description="first 100 rejections")
    dropped_dnt: int = Field(description="events dropped for do_not_track")
    sampled_out: int = Field(description="events dropped by per-user sampling")
    redactions: int = Field(description="fields removed or values redacted by the privacy pipeline")
    summary: str
    truncated: bool = Field(default=False, description="errors was cut to fit the answer budget")


def to_result(report: IngestReport, received: int) -> IngestResult:
    parts = [f"Accepted {report.accepted:,} of {received:,} events"]
    if report.duplicates:
        parts.append(f"{report.duplicates:,} duplicates")
    if report.rejected:
        first = report.errors[0]
        parts.append(f"{report.rejected:,} rejected (first: #{first[0]} {first[1][:160]})")
    if report.dropped_dnt:
        parts.append(f"{report.dropped_dnt:,} dropped for do-not-track")
    if report.sampled_out:
        parts.append(f"{report.sampled_out:,} sampled out")
    if report.redactions:
        parts.append(f"{report.redactions:,} redactions")
    summary = "; ".join(parts) + "."
    return IngestResult(
        accepted=report.accepted,
        duplicates=report.duplicates,
        rejected=report.rejected,
        errors=[IngestError(index=i, reason=r) for i, r in report.errors],
        dropped_dnt=report.dropped_dnt,
        sampled_out=report.sampled_out,
        redactions=report.redactions,
        summary=summary[:600],
    )


def register(mcp: MCPServer[Any], app: App) -> None:
    limit = app.settings.max_batch_events

    @tool(
        mcp,
        title="Ingest telemetry events",
        description=(
            "Submit telemetry events, each a flat object: event_type (required, e.g. component_load, "
            "animation_play, performance, feature_used, error), timestamp (RFC 3339 or epoch ms; default "
            "now), name, component, user_id, session_id, severity, duration_ms, value, unit, service, "
            "service_version, platform, os, framework, page, properties (object: anything else), event_id "
            "(dedupe key). Bad events are reported by index, the others stored. Secrets and PII are "
            "removed, URLs anonymized, user ids hashed before storage."
        ),
        read_only=False,
        idempotent=True,
    )
    def ingest_events(
        events: Annotated[
            # Items stay untyped here so one malformed event is reported by index, not the whole call.
            list[Any],
            Field(description=f"1..{limit:,} event objects"),
        ],
        service: Annotated[str | None, Field(description="for events that lack one")] = None,
        service_version: Annotated[str | None, Field(description="for events that lack one")] = None,
        do_not_track: Annotated[bool, Field(description="true: the batch is dropped, never stored")] = False,
    ) -> IngestResult:
        if not events:
            raise InvalidArgument(f"events is empty: send 1..{limit:,} event objects")
        report = app.ingestor.ingest(
            events, service=service, service_version=service_version, do_not_track=do_not_track
        )
        return to_result(report, len(events))


DEMO_CALLS: list[tuple[str, dict[str, Any]]] = []
