"""What every request handler of the service needs: the open store, its ingest path, the keys."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
from starlette.requests import Request

from telemetry_mcp.server.app import App
from telemetry_mcp.service.committer import Committer
from telemetry_mcp.service.metrics import ServiceMetrics
from telemetry_mcp.service.owner import OwnerInfo
from telemetry_mcp.service.workers import Workers, key_matches
from telemetry_mcp.store.ingest import IngestReport, Prepared

MAX_INFLIGHT = 256  # collector requests being read, mapped or committed at once; more get 429


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


HANDING_OVER = "the store is being handed over to another telemetry-mcp"


@dataclass
class ServiceContext:
    app: App
    owner: OwnerInfo
    write_key: str
    committer: Committer
    metrics: ServiceMetrics
    workers: Workers | None = None  # collector workers (None or count 0: requests prepared in threads)
    max_inflight: int = MAX_INFLIGHT
    inflight: int = 0
    closing: bool = False  # handed over or compacted: collector requests get 503 + Retry-After
    closing_reason: str = HANDING_OVER
    started: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def token(self) -> str | None:
        return self.app.settings.token

    def key_ok(self, key: str | None) -> bool:
        return key_matches(key, self.write_key)

    def reader_ok(self, request: Request, *, always: bool = False) -> bool:
        """May this request read (or, for /admin, manage) the store?

        The owner's secret always works (other telemetry-mcp processes); the configured token when set.
        Without a token the service is loopback-only and reads are open unless `always`.
        """
        bearer = bearer_of(request)
        if bearer is not None:
            if hmac.compare_digest(bearer.encode(), self.owner.secret.encode()):
                return True
            if self.token is not None and hmac.compare_digest(bearer.encode(), self.token.encode()):
                return True
        return self.token is None and not always

    async def prepare(self, events: list[Any], *, now: datetime | None = None, **envelope: Any) -> Prepared:
        """Validation and the privacy pipeline, in a worker thread (nothing stored yet)."""
        ingestor = self.app.ingestor
        return await anyio.to_thread.run_sync(lambda: ingestor.prepare(events, now=now, **envelope))

    async def commit(self, prepared: Prepared) -> IngestReport:
        """Wait for the group commit of `prepared`: committed when this returns."""
        return await asyncio.wrap_future(self.committer.submit(prepared))

    def store_gauges(self) -> dict[str, float]:
        return {
            "bytes": float(self.app.store.database_bytes()),
            "events": float(self.app.store.total_events()),
            "backlog": float(self.committer.backlog),
            "workers": float(
                len(self.workers.pids) if self.workers is not None and self.workers.ready else 0
            ),
            "worker_restarts": float(self.workers.restarts if self.workers is not None else 0),
        }


def bearer_of(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def new_write_key() -> str:
    return "tmk_" + secrets.token_urlsafe(24)
