"""Helpers for tests (importable as `helpers`)."""

from typing import Any

from telemetry_mcp.server.app import App


def load(app: App, events: list[dict[str, Any]]) -> None:
    """Ingest events that must all be accepted (test data, not a test of ingest)."""
    report = app.ingestor.ingest(events)
    assert report.rejected == 0, report.errors
    assert report.accepted == len(events)
