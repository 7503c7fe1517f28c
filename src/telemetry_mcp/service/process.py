"""Who owns the store, from the point of view of one process: `serve` and the stdio server.

- `telemetry-mcp serve` owns the store and listens on its address. If a stdio server owns the store,
  `serve` asks it to yield (the stdio server keeps serving its client through `serve`); if another
  `serve` owns it, this one waits as a hot standby and takes over when that one exits.
- `telemetry-mcp` (stdio) opens the store if it is free and runs a loopback service for the other
  processes; otherwise it forwards its client's messages to the owner. When the owner goes away,
  it opens the store itself (on the old owner's loopback address when that is free) within a second.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx

from telemetry_mcp.config import Settings
from telemetry_mcp.errors import ConfigError, TelemetryError
from telemetry_mcp.server.stdio import RawLine, guarded_stdio
from telemetry_mcp.service.bridge import Bridge, as_line
from telemetry_mcp.service.context import is_loopback
from telemetry_mcp.service.owner import OwnerInfo, is_live, pid_alive, read_owner, try_open
from telemetry_mcp.service.runner import Service, bind, listen_address, run_until_signal
from telemetry_mcp.store import Store

log = logging.getLogger(__name__)

POLL_SECONDS = 0.25
OWNER_WAIT_SECONDS = 30.0


def _say(text: str) -> None:
    print(f"telemetry-mcp: {text}", file=sys.stderr, flush=True)


def ask_to_yield(info: OwnerInfo, timeout: float = 30.0) -> bool:
    """Ask a stdio owner to hand the store over; True once it has closed it."""
    try:
        r = httpx.post(
            f"{info.url}/admin/yield",
            headers={"authorization": f"Bearer {info.secret}"},
            timeout=timeout,
            trust_env=False,
        )
    except httpx.HTTPError:
        return False
    return r.status_code == 200 and bool(r.json().get("yielded"))


# -- serve --------------------------------------------------------------------------------------


def run_serve(settings: Settings, host: str, port: int) -> None:
    """`telemetry-mcp serve`: own the store and serve it over HTTP until stopped."""
    listen_address(settings, host)
    try:
        sock = bind(host, port)  # fail now if the port is taken, before touching the store
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); another service may use that port: "
            "choose another with --port"
        ) from None
    store = _own_for_serve(settings)
    try:
        service = Service(settings, store, kind="serve", sock=sock, host=host)
        service.announce()
        anyio.run(run_until_signal, service.run, service.stop)
    finally:
        store.close()


def _own_for_serve(settings: Settings) -> Store:
    if settings.is_memory:
        return Store(settings)
    said = False
    while True:
        store = try_open(settings)
        if store is not None:
            if said:
                _say(f"took over the store {settings.db}")
            return store
        info = read_owner(settings)
        if info is not None and info.kind == "stdio" and is_live(info):
            _say(f"asking the stdio server (pid {info.pid}) that owns {settings.db} to hand it over")
            ask_to_yield(info)
            continue
        if not said:
            who = f"pid {info.pid} at {info.url}" if info is not None else "another process"
            _say(
                f"the store {settings.db} is owned by {who}; waiting to take over when it exits "
                "(Ctrl-C to stop)"
            )
            said = True
        time.sleep(POLL_SECONDS)


# -- stdio --------------------------------------------------------------------------------------


class StdioProcess:
    """A stdio MCP server on a store that it may or may not own."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.target: OwnerInfo | None = None
        self.service: Service | None = None
        self._changed = anyio.Event()
        self._lock = anyio.Lock()
        self._tg: Any = None
        self._yielding = False

    async def current_owner(self) -> OwnerInfo:
        with anyio.fail_after(OWNER_WAIT_SECONDS):
            while self.target is None:
                await self._settle()
        return self.target

    async def owner_lost(self, lost: OwnerInfo) -> None:
        async with self._lock:
            if self.target is not None and self.target.owner_id != lost.owner_id:
                return  # already moved on
            if self.service is not None and self.service.owner.owner_id == lost.owner_id:
                await anyio.sleep(POLL_SECONDS)  # our own service is busy or starting: try it again
                return
            self.target = None
        await self._settle()

    async def _settle(self) -> None:
        """Become the owner, or point at the live one (waiting while an owner is starting up)."""
        async with self._lock:
            if self.target is not None:
                return
            previous = read_owner(self.settings)
            deadline = time.monotonic() + OWNER_WAIT_SECONDS
            while self.target is None:
                if not self._yielding:
                    store = await anyio.to_thread.run_sync(try_open, self.settings)
                    if store is not None:
                        self._become_owner(store, previous)
                        return
                info = read_owner(self.settings)
                if info is not None and await anyio.to_thread.run_sync(is_live, info):
                    self.target = info
                    self._yielding = False
                    return
                if time.monotonic() > deadline:
                    self._yielding = False
                    raise TelemetryError(
                        f"the store {self.settings.db} is locked by a process that is not a telemetry-mcp "
                        "owner, or its owner does not answer; stop it, or use --db PATH"
                    )
                await anyio.sleep(POLL_SECONDS / 2)

    def _become_owner(self, store: Store, previous: OwnerInfo | None) -> None:
        sock = None
        if previous is not None and not pid_alive(previous.pid):
            # Keep the address the old owner published when it is loopback (SDKs may be sending there).
            host, _, port = previous.url.removeprefix("http://").rpartition(":")
            if is_loopback(host.strip("[]")) and port.isdigit():
                with contextlib.suppress(OSError):
                    sock = bind(host.strip("[]"), int(port))
        if sock is None:
            sock = bind("127.0.0.1", 0)
        service = Service(
            self.settings, store, kind="stdio", sock=sock, host="127.0.0.1", on_yield=self._yield
        )
        self.service = service
        self.target = service.owner
        log.info("owning store %s; loopback service at %s", store.path, service.url)
        self._tg.start_soon(self._run_service, service, store)

    async def _run_service(self, service: Service, store: Store) -> None:
        try:
            await service.run()
        finally:
            store.close()
            if self.service is service:
                self.service = None

    async def _yield(self) -> None:
        """A `serve` wants the store: finish what is in flight, close the store, follow the new owner."""
        service = self.service
        if service is None:
            return
        self._yielding = True
        self.target = None
        await service.release()
        _say(f"handed the store {self.settings.db} over to telemetry-mcp serve")

    async def run(self) -> None:
        bridge = Bridge(self.current_owner, self.owner_lost)
        try:
            async with guarded_stdio(self.settings.max_request_bytes, raw=True) as (
                read_stream,
                write_stream,
            ):

                async def emit(text: str) -> None:
                    line = as_line(text)
                    if line is not None:
                        await write_stream.send(line)

                async with anyio.create_task_group() as tg:
                    self._tg = tg
                    finished = anyio.Event()

                    async def pump() -> None:
                        async for item in read_stream:
                            if not isinstance(item, RawLine):
                                continue
                            body: bytes | None = item.data
                            if item.parsed is not None:
                                raw = item.parsed  # the guard parsed it already
                            else:
                                try:
                                    raw = json.loads(item.data)
                                except ValueError:  # validated, but not by the stdlib (a lone surrogate)
                                    raw = item.message.model_dump(
                                        by_alias=True, exclude_unset=True, mode="json"
                                    )
                                    body = None
                            tg.start_soon(_guarded, bridge.handle, raw, emit, body)
                        finished.set()  # the client has gone

                    async def on_signal() -> None:
                        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                            async for _ in signals:
                                finished.set()

                    tg.start_soon(self._watch)
                    tg.start_soon(pump)
                    tg.start_soon(on_signal)
                    await finished.wait()
                    # Hand back the store cleanly (commits drained, owner file withdrawn), then stop.
                    if self.service is not None:
                        await self.service.release()
                        with anyio.move_on_after(10):
                            while self.service is not None:
                                await anyio.sleep(0.02)
                    tg.cancel_scope.cancel()
        finally:
            await bridge.aclose()
            if self.service is not None:
                self.service.stop()
                with anyio.CancelScope(shield=True):
                    await self.service.release()

    async def _watch(self) -> None:
        """Notice a dead owner within a poll, so the store and its collector come back without a request."""
        while True:
            await anyio.sleep(POLL_SECONDS)
            target = self.target
            if target is not None and self.service is None and not pid_alive(target.pid):
                with contextlib.suppress(TelemetryError):
                    await self.owner_lost(target)


async def _guarded(
    handle: Callable[[dict[str, Any], Callable[[str], Awaitable[None]], bytes | None], Awaitable[None]],
    message: dict[str, Any],
    emit: Callable[[str], Awaitable[None]],
    body: bytes | None,
) -> None:
    try:
        await handle(message, emit, body)
    except Exception as exc:  # one message's failure never ends the session
        log.warning("forwarding %s failed: %s", message.get("method"), exc)
        if "id" in message and "method" in message:
            error = {"code": -32603, "message": f"telemetry-mcp: {exc}"}
            await emit(json.dumps({"jsonrpc": "2.0", "id": message["id"], "error": error}))


def run_stdio(settings: Settings) -> None:
    """`telemetry-mcp`: serve one MCP client over stdio on a shared store."""
    anyio.run(StdioProcess(settings).run)
