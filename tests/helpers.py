"""Helpers for tests (importable as `helpers`)."""

from pathlib import Path
from typing import Any

from mcp import Client
from mcp.types import CallToolResult, TextContent

from telemetry_mcp.server.app import App, build_server
from telemetry_mcp.store.importer import import_file

# The committed fixture sample (fixtures/README.md lists its planted stories).
SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "sample.jsonl"


def load_sample(app: App) -> None:
    """Import the fixture sample through the normal path; every record must be accepted."""
    report = import_file(app.ingestor, SAMPLE)
    assert report.rejected == 0, report.errors[:3]


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


def text_of(result: CallToolResult) -> str:
    """The text of a result's first content block (an error message, say)."""
    first = result.content[0]
    assert isinstance(first, TextContent)
    return first.text
