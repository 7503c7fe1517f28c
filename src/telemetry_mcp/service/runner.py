"""One running service: an open store, its group committer, the ASGI app on a bound socket."""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Iterator

import anyio
import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from telemetry_mcp.config import Settings
from telemetry_mcp.server.app import App
from telemetry_mcp.service.admin import admin_routes
from telemetry_mcp.service.app import build_app
from telemetry_mcp.service.committer import Committer
from telemetry_mcp.service.context import HANDING_OVER, ServiceContext, is_loopback, new_write_key
from telemetry_mcp.service.metrics import ServiceMetrics
from telemetry_mcp.service.owner import OwnerInfo, remove_owner, write_owner
from telemetry_mcp.service.workers import Workers
from telemetry_mcp.store import Store
from telemetry_mcp.store.ingest import Ingestor
from telemetry_mcp.store.lifecycle import Maintenance

log = logging.getLogger(__name__)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free port). SO_REUSEADDR lets a successor reuse the port at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP: asyncio sets TCP_NODELAY only on such sockets (else ~40 ms per small answer)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.set_inheritable(False)
    return sock


def url_of(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = host if host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the process decides what a signal stops (see `run_until_signal`).

    uvicorn re-raises a captured SIGTERM once it has stopped, which would kill the process before the
    store is released and the owner file withdrawn.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def run_until_signal(main: Callable[[], Awaitable[None]], on_signal: Callable[[], None]) -> None:
    """Run `main`; SIGINT / SIGTERM call `on_signal` (which makes `main` finish cleanly)."""
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    on_signal()

        tg.start_soon(watch)
        await main()
        tg.cancel_scope.cancel()


class Service:
    """The owner's HTTP side. Construct with the store open; `run()` serves until `stop()`."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        kind: str,
        sock: socket.socket,
        host: str,
        on_yield: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.host = host
        self.sock = sock
        self.app = App(settings=settings, store=store, ingestor=Ingestor(store))
        # The key in effect is kept in the store, so that a successor owner accepts the same senders.
        write_key = store.meta_value("write_key", new_write_key, set_to=settings.write_key)
        self.owner = OwnerInfo.new(url_of(sock, host), kind)
        self.committer = Committer(self.app.ingestor)
        self.maintenance = Maintenance(store)  # retention, in bounded background steps
        # started on the first collector request: an owner that only serves MCP never spawns them
        self.workers = Workers(settings, store.salt, write_key, settings.collector_workers)
        self.ctx = ServiceContext(
            app=self.app,
            owner=self.owner,
            write_key=write_key,
            committer=self.committer,
            metrics=ServiceMetrics(lambda: self.ctx.store_gauges()),
            workers=self.workers,
        )
        asgi = build_app(self.ctx, host, extra_routes=self._admin_routes(on_yield))
        self.server = _Server(
            uvicorn.Config(
                asgi,
                log_level="warning",
                access_log=False,
                lifespan="on",
                timeout_graceful_shutdown=5,
                timeout_keep_alive=30,
            )
        )

    @property
    def url(self) -> str:
        return self.owner.url

    @property
    def write_key(self) -> str:
        return self.ctx.write_key

    def _admin_routes(self, on_yield: Callable[[], Awaitable[None]] | None) -> list[Route]:
        async def yield_store(request: Request) -> Response:
            if on_yield is None:
                return JSONResponse({"yielded": False, "reason": f"this owner is a {self.owner.kind}"}, 409)
            self.stop()
            await on_yield()
            return JSONResponse({"yielded": True})

        return [
            Route("/admin/yield", yield_store, methods=["POST"]),
            *admin_routes(self.store, hold_ingest=self._hold_ingest),
        ]

    @contextlib.contextmanager
    def _hold_ingest(self) -> Iterator[None]:
        """While the store is compacted: the collector answers 503 + Retry-After (as at hand-over), the
        requests in flight finish first (their events committed); MCP ingest waits for the write lock."""
        if self.ctx.closing:  # handing over already
            yield
            return
        self.ctx.closing, self.ctx.closing_reason = True, "the store is being compacted"
        try:
            deadline = time.monotonic() + 10
            while self.ctx.inflight and time.monotonic() < deadline:
                time.sleep(0.01)
            yield
        finally:
            self.ctx.closing, self.ctx.closing_reason = False, HANDING_OVER

    def announce(self) -> None:
        """Where the service listens and its write key, on stderr (stdout may carry the protocol)."""
        print(
            f"telemetry-mcp: serving store {self.store.path} at {self.url} "
            f"(MCP at {self.url}/mcp, collector at {self.url}/batch/ …)\n"
            f"telemetry-mcp: collector write key: {self.write_key}",
            file=sys.stderr,
            flush=True,
        )

    async def run(self) -> None:
        """Publish the owner file, serve until stopped, then drain commits and withdraw the file."""
        write_owner(self.settings, self.owner)
        self.maintenance.start()
        try:
            await self.server.serve(sockets=[self.sock])
        finally:
            await anyio.to_thread.run_sync(self.maintenance.stop)
            await anyio.to_thread.run_sync(self.workers.close)
            await anyio.to_thread.run_sync(self.committer.close)
            remove_owner(self.settings, self.owner)

    def stop(self) -> None:
        self.server.should_exit = True

    async def release(self) -> None:
        """Close the store for a successor: refuse new collector requests, finish those in flight."""
        self.ctx.closing = True
        with anyio.move_on_after(10):
            while self.ctx.inflight:
                await anyio.sleep(0.01)
        await anyio.to_thread.run_sync(self.maintenance.stop)
        await anyio.to_thread.run_sync(self.workers.close)
        await anyio.to_thread.run_sync(self.committer.close)
        self.stop()
        await anyio.to_thread.run_sync(self.store.close)


def listen_address(settings: Settings, host: str) -> None:
    """Refuse a non-loopback address without a token (SPEC section 8)."""
    from telemetry_mcp.errors import ConfigError

    if not is_loopback(host) and not settings.token:
        raise ConfigError(
            f"refusing to listen on {host} without a token: set --token / TELEMETRY_MCP_TOKEN "
            "(clients then send Authorization: Bearer <token>), or listen on 127.0.0.1"
        )
