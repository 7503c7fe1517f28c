"""The service's ASGI app: MCP (Streamable HTTP) at /mcp, the collector, /health, /ready, /metrics, the
dashboard at /."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from telemetry_mcp import __version__
from telemetry_mcp.server.app import build_server
from telemetry_mcp.service.collector.routes import Collector
from telemetry_mcp.service.context import ServiceContext, is_loopback
from telemetry_mcp.service.dashboard import dashboard_routes

READ_PATHS = ("/mcp", "/metrics", "/admin")


class _Guard:
    """Bearer auth in front of /mcp and the read endpoints; CORS only around the collector."""

    def __init__(self, ctx: ServiceContext, app: ASGIApp, collector: ASGIApp, paths: set[str]) -> None:
        self.ctx = ctx
        self.app = app
        self.collector = collector
        self.collector_paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in self.collector_paths or path.startswith("/array/"):
            await self.collector(scope, receive, send)
            return
        if path.startswith(READ_PATHS):
            request = Request(scope)
            if not self.ctx.reader_ok(request, always=path.startswith("/admin")):
                response: Response = JSONResponse(
                    {"error": "unauthorized: send Authorization: Bearer <token> (TELEMETRY_MCP_TOKEN)"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def build_app(ctx: ServiceContext, host: str, extra_routes: Sequence[BaseRoute] = ()) -> ASGIApp:
    """The whole service for one open store."""
    mcp = build_server(ctx.app)
    security = None
    if is_loopback(host):
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
            allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
        )
    mcp_app = mcp.streamable_http_app(
        host=host, max_request_body_size=ctx.app.settings.max_request_bytes, transport_security=security
    )

    async def health(request: Request) -> Response:
        return JSONResponse(
            {"status": "ok", "owner_id": ctx.owner.owner_id, "pid": ctx.owner.pid, "version": __version__}
        )

    async def ready(request: Request) -> Response:
        try:
            ctx.app.store.probe_writable()
        except Exception as exc:
            return JSONResponse({"ready": False, "reason": f"{type(exc).__name__}: {exc}"}, status_code=503)
        if not ctx.committer.alive:
            return JSONResponse({"ready": False, "reason": "the commit thread has stopped"}, status_code=503)
        workers = ctx.workers
        return JSONResponse(
            {
                "ready": True,
                "store": ctx.app.store.path,
                # processes preparing collector requests; they start with the first one
                "collector_workers": len(workers.pids) if workers is not None and workers.ready else 0,
            }
        )

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(ctx.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        async with mcp.session_manager.run():
            yield

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *extra_routes,
        *dashboard_routes(ctx),  # `/` and /api/v1/dashboard: they check read access themselves
        *mcp_app.routes,
    ]
    main = Starlette(routes=routes, lifespan=lifespan)
    collector_routes = Collector(ctx).routes()
    collector = CORSMiddleware(
        Starlette(routes=collector_routes),
        allow_origins=["*"],
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["*"],
        max_age=86400,
    )
    paths = {r.path for r in collector_routes if isinstance(r, Route)}
    return _Guard(ctx, main, collector, paths)
