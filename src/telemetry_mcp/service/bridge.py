"""The stdio side of every `telemetry-mcp` process: MCP messages from stdin go to the store's owner.

The owner may be this process (it opened the store first and runs a loopback service for the
others), a `telemetry-mcp serve`, or another stdio process. Messages are forwarded to the owner's
Streamable HTTP endpoint; its answers (JSON or an SSE stream) come back on stdout. The client's
`initialize` is kept, so that when the owner changes (it exited, was killed, or yielded the store
to a `serve`) the bridge opens a session with the new owner and carries on: the client sees no
break. A request whose owner died under it is sent again to the successor; `ingest_events` calls
get an event_id for every event that lacks one first, so a resent call never stores an event twice.
"""

from __future__ import annotations

import json
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import httpx

from telemetry_mcp.service.owner import OwnerInfo

log = logging.getLogger(__name__)

REINIT_ID = "telemetry-mcp-bridge-reinit"
INTERNAL_ERROR = -32603


class OwnerGone(Exception):
    """The owner could not be reached, or dropped the connection mid-answer."""


def with_event_ids(message: dict[str, Any]) -> dict[str, Any]:
    """An ingest_events call whose events all carry an event_id (resending it is then harmless)."""
    params = message.get("params")
    if message.get("method") != "tools/call" or not isinstance(params, dict):
        return message
    args = params.get("arguments")
    if params.get("name") != "ingest_events" or not isinstance(args, dict):
        return message
    events = args.get("events")
    if not isinstance(events, list):
        return message
    if not any(isinstance(e, dict) and e.get("event_id") is None for e in events):
        return message  # nothing to add: the client's text is forwarded as it is
    fixed = [
        {**e, "event_id": str(uuid.uuid4())} if isinstance(e, dict) and e.get("event_id") is None else e
        for e in events
    ]
    return {**message, "params": {**params, "arguments": {**args, "events": fixed}}}


async def _sse_messages(response: httpx.Response) -> AsyncIterator[str]:
    data: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield "\n".join(data)
                data = []
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
    if data:
        yield "\n".join(data)


class Bridge:
    """Forwards one stdio client's messages to the current owner."""

    def __init__(
        self,
        current_owner: Callable[[], Awaitable[OwnerInfo]],
        owner_lost: Callable[[OwnerInfo], Awaitable[None]],
        *,
        timeout: float = 3600.0,
    ) -> None:
        self._current_owner = current_owner
        self._owner_lost = owner_lost
        # TCP_NODELAY: without it a small request waits ~40 ms for the peer's delayed ACK (Nagle).
        transport = httpx.AsyncHTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        self._client = httpx.AsyncClient(
            transport=transport, timeout=httpx.Timeout(timeout, connect=5.0), trust_env=False
        )
        self._init: dict[str, Any] | None = None
        self._session: tuple[str, str | None] | None = None  # (owner_id, session id)
        self._protocol: str | None = None
        self._lock = anyio.Lock()

    async def aclose(self) -> None:
        await self._client.aclose()

    def _headers(self, owner: OwnerInfo) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            "authorization": f"Bearer {owner.secret}",
        }
        if self._session is not None and self._session[0] == owner.owner_id and self._session[1]:
            headers["mcp-session-id"] = self._session[1]
        if self._protocol:
            headers["mcp-protocol-version"] = self._protocol
        return headers

    async def _post(
        self,
        owner: OwnerInfo,
        message: dict[str, Any],
        emit: Callable[[str], Awaitable[None]],
        body: bytes | None = None,
    ) -> httpx.Response:
        """POST one message (`body`: its JSON text as the client sent it); every JSON-RPC message of
        the answer goes to `emit`. Raises OwnerGone."""
        if body is None:
            body = json.dumps(message, ensure_ascii=False).encode("utf-8", "surrogatepass")
        try:
            async with self._client.stream(
                "POST", f"{owner.url}/mcp", content=body, headers=self._headers(owner)
            ) as response:
                kind = response.headers.get("content-type", "")
                if response.status_code in (202, 204):
                    await response.aread()
                elif kind.startswith("text/event-stream"):
                    async for data in _sse_messages(response):
                        await emit(data)
                else:
                    text = (await response.aread()).decode("utf-8", "replace")
                    if response.status_code == 200:
                        await emit(text)
                    elif response.status_code != 404 and '"jsonrpc"' in text:
                        await emit(text)  # a JSON-RPC error the owner answered (400 and the like)
                    elif response.status_code != 404 and "id" in message and "method" in message:
                        reason = text.strip()[:300] or f"HTTP {response.status_code}"
                        await emit(
                            json.dumps(
                                {
                                    "jsonrpc": "2.0",
                                    "id": message["id"],
                                    "error": {
                                        "code": INTERNAL_ERROR,
                                        "message": f"the store's owner refused: {reason}",
                                    },
                                }
                            )
                        )
                return response
        except (httpx.TransportError, httpx.StreamError) as exc:
            raise OwnerGone(f"{type(exc).__name__}: {exc}") from exc

    async def _open_session(self, owner: OwnerInfo) -> None:
        """Replay the client's initialize with the owner (after a change of owner or an expired session)."""
        if self._init is None:
            return
        replay = {**self._init, "id": REINIT_ID}

        async def discard(_: str) -> None:
            return None

        self._session = None
        response = await self._post(owner, replay, discard)
        if response.status_code != 200:
            raise OwnerGone(f"initialize with the new owner answered HTTP {response.status_code}")
        self._session = (owner.owner_id, response.headers.get("mcp-session-id"))
        await self._post(owner, {"jsonrpc": "2.0", "method": "notifications/initialized"}, discard)

    async def handle(
        self,
        message: dict[str, Any],
        client_emit: Callable[[str], Awaitable[None]],
        body: bytes | None = None,
    ) -> None:
        """Forward one client message (request, notification or response) until an owner answers it.

        `body` is the message's text as the client sent it, forwarded as is unless the bridge adds
        event ids to it.
        """
        method = message.get("method")
        fixed = with_event_ids(message)
        if fixed is not message:
            message, body = fixed, None
        answered = False

        async def emit(text: str) -> None:
            nonlocal answered
            if _answers(text, message.get("id")):
                if answered:
                    return  # never two answers to one request
                answered = True
                if method == "initialize":
                    self._protocol = _protocol_of_result(text) or self._protocol
            await client_emit(text)

        is_request = "id" in message and method is not None
        for _attempt in range(30):
            owner = await self._current_owner()
            try:
                async with self._lock:
                    if method == "initialize":
                        self._init = message
                        self._session = None
                    elif self._init is not None and (
                        self._session is None or self._session[0] != owner.owner_id
                    ):
                        await self._open_session(owner)
                response = await self._post(owner, message, emit, body)
                if method == "initialize" and response.status_code == 200:
                    self._session = (owner.owner_id, response.headers.get("mcp-session-id"))
                if response.status_code == 404 and self._init is not None and method != "initialize":
                    self._session = None  # the owner forgot the session (idle timeout): open a new one
                    continue
                return
            except OwnerGone as exc:
                if answered:
                    return  # the answer arrived before the connection broke: nothing to resend
                log.info("owner %s at %s unreachable (%s); finding the next owner", owner.pid, owner.url, exc)
                await self._owner_lost(owner)
        if is_request:
            await emit(
                json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": message["id"],
                        "error": {"code": INTERNAL_ERROR, "message": "no owner of the store answered; retry"},
                    }
                )
            )


def _answers(text: str, request_id: Any) -> bool:
    """Is `text` the response (result or error) to the request with this id?"""
    if request_id is None or '"id"' not in text:
        return False
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("id") == request_id and ("result" in data or "error" in data)


def _protocol_of_result(text: str) -> str | None:
    try:
        value = json.loads(text).get("result", {}).get("protocolVersion")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def as_line(text: str) -> bytes | None:
    """One JSON-RPC message from the owner as one stdout line, unchanged when it is one line already.

    The owner is a telemetry-mcp (its JSON is compact); anything that is not a JSON object is dropped.
    """
    stripped = text.strip()
    if not stripped.startswith("{"):
        log.warning("dropping a message from the owner that is not JSON-RPC: %.200s", text)
        return None
    if "\n" in stripped or "\r" in stripped:
        try:
            stripped = json.dumps(json.loads(stripped), ensure_ascii=False, separators=(",", ":"))
        except ValueError:
            log.warning("dropping a message from the owner that is not JSON: %.200s", text)
            return None
    return stripped.encode("utf-8", "surrogatepass")
