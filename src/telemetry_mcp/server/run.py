"""Serving: open the store first (fail fast on a lock), then run the chosen transport."""

from __future__ import annotations

from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer

from telemetry_mcp.config import Settings
from telemetry_mcp.server.app import build_server, open_app
from telemetry_mcp.server.stdio import guarded_stdio


async def _serve_stdio(mcp: MCPServer[Any], max_bytes: int) -> None:
    low = mcp._lowlevel_server  # the SDK's own run loop, fed by our guarded transport
    async with guarded_stdio(max_bytes) as (read_stream, write_stream):
        await low.run(read_stream, write_stream, low.create_initialization_options())


def serve(settings: Settings, transport: str = "stdio", host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve MCP until the client goes away (stdio) or the process is stopped (http)."""
    app = open_app(settings)
    try:
        mcp = build_server(app)
        if transport == "http":
            anyio.run(
                lambda: mcp.run_streamable_http_async(
                    host=host, port=port, max_request_body_size=settings.max_request_bytes
                )
            )
        else:
            anyio.run(_serve_stdio, mcp, settings.max_request_bytes)
    finally:
        app.store.close()
