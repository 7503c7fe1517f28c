"""Serving: stdio (the default) or the HTTP service, on a store that may be shared with others."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
from mcp import Client
from mcp.server.mcpserver import MCPServer

from telemetry_mcp.config import Settings
from telemetry_mcp.server.app import build_server, open_app
from telemetry_mcp.server.stdio import guarded_stdio


async def _serve_stdio(mcp: MCPServer[Any], max_bytes: int) -> None:
    low = mcp._lowlevel_server  # the SDK's own run loop, fed by our guarded transport
    async with guarded_stdio(max_bytes) as (read_stream, write_stream):
        await low.run(read_stream, write_stream, low.create_initialization_options())


def serve(settings: Settings, transport: str = "stdio", host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve MCP until the client goes away (stdio) or the process is stopped (the HTTP service).

    A file store is shared: the first process owns it, the others reach the owner (service/process.py).
    """
    if transport == "http":
        from telemetry_mcp.service.process import run_serve

        run_serve(settings, host, port)
        return
    if not settings.is_memory:
        from telemetry_mcp.service.process import run_stdio

        run_stdio(settings)
        return
    app = open_app(settings)  # :memory: is private to this process: nothing to share
    try:
        anyio.run(_serve_stdio, build_server(app), settings.max_request_bytes)
    finally:
        app.store.close()


@contextlib.asynccontextmanager
async def client_for(settings: Settings) -> AsyncIterator[Client]:
    """An MCP client of the store's server: the owner's /mcp over HTTP when a live service holds the
    store, else an in-process server on the store opened here (closed on exit)."""
    if not settings.is_memory:
        from telemetry_mcp.service.owner import find_owner, try_open

        store = try_open(settings)
        if store is None:
            owner = find_owner(settings, wait=5)
            if owner is None:
                from telemetry_mcp.errors import StoreLockedError

                raise StoreLockedError(
                    f"{settings.db} is held by another process that does not answer as its owner; "
                    "stop it, or run this command through that process"
                )
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {owner.secret}"}, timeout=120)
            async with http, Client(streamable_http_client(f"{owner.url}/mcp", http_client=http)) as client:
                yield client
            return
        store.close()
    app = open_app(settings)
    try:
        async with Client(build_server(app)) as client:
            yield client
    finally:
        app.store.close()
