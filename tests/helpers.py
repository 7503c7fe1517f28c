"""Helpers for tests (importable as `helpers`)."""

from typing import Any

from mcp import Client
from mcp.types import CallToolResult

from telemetry_mcp.server.app import App, build_server


def load(app: App, events: list[dict[str, Any]]) -> None:
    """Ingest events that must all be accepted (test data, not a test of ingest)."""
    report = app.ingestor.ingest(events)
    assert report.rejected == 0, report.errors
    assert report.accepted == len(events)


class Session:
    """A server with one fresh in-process client per call (for tests that need a second app)."""

    def __init__(self, app: App) -> None:
        self.server = build_server(app)

    async def call_tool(self, name: str, args: dict[str, Any]) -> CallToolResult:
        async with Client(self.server) as c:
            return await c.call_tool(name, args)
