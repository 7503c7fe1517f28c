"""The collector's HTTP endpoints: read the body within limits, check the write key, map, ingest, and
answer each SDK exactly what its own backend would, so unchanged SDKs neither fail nor retry forever.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from telemetry_mcp.errors import InvalidArgument
from telemetry_mcp.service.collector.amplitude import AmplitudeMapped, map_amplitude
from telemetry_mcp.service.collector.body import decode_body
from telemetry_mcp.service.collector.common import Mapped, WireError
from telemetry_mcp.service.collector.ours import map_ours
from telemetry_mcp.service.collector.posthog import map_posthog
from telemetry_mcp.service.committer import Overloaded
from telemetry_mcp.service.context import ServiceContext, bearer_of
from telemetry_mcp.service.workers import Job, Outcome, WorkersUnavailable, do_job
from telemetry_mcp.store.ingest import IngestReport, Prepared

log = logging.getLogger(__name__)

RETRY_AFTER = "1"


def retry_later(status: int, message: str) -> JSONResponse:
    """A 429 / 503 with Retry-After: what makes the SDKs back off and resend."""
    return JSONResponse({"error": message}, status_code=status, headers={"Retry-After": RETRY_AFTER})


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it passes `limit` bytes (before any decompression)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise WireError(413, f"request body of {int(declared):,} bytes exceeds the limit of {limit:,} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise WireError(413, f"request body exceeds the limit of {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _payload(request: Request, raw: bytes, limit: int) -> Any:
    return decode_body(
        raw,
        content_type=request.headers.get("content-type"),
        content_encoding=request.headers.get("content-encoding"),
        query=dict(request.query_params),
        max_decoded_bytes=limit,
    )


def basic_user(request: Request) -> str | None:
    """The user part of Basic auth (Segment sends its write key there)."""
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, _ = base64.b64decode(value.strip()).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user or None


def _remap(report: IngestReport, mapped: Mapped) -> list[tuple[int, str]]:
    """Ingest errors at the sender's indexes, after the mapper's own rejections."""
    errors = list(mapped.errors)
    errors.extend((mapped.origin[i] if i < len(mapped.origin) else i, r) for i, r in report.errors)
    return sorted(errors)


class Collector:
    """The endpoints of one service."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.limit = ctx.app.settings.max_request_bytes

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = []
        for path in ("/batch", "/capture", "/e", "/i/v0/e", "/track", "/engage"):
            for p in (path, path + "/"):
                routes.append(Route(p, self.posthog, methods=["POST", "GET"]))
        for kind in ("batch", "track", "page", "screen", "identify", "group", "alias"):
            routes.append(Route(f"/v1/{kind}", self._segment(kind), methods=["POST"]))
        for p in ("/i/v1/analytics/events", "/i/v1/analytics/events/"):
            routes.append(Route(p, self.posthog_v1, methods=["POST"]))
        routes.append(Route("/2/httpapi", self.amplitude, methods=["POST"]))
        routes.append(Route("/api/v1/events", self.ours, methods=["POST"]))
        for p in ("/flags", "/flags/", "/decide", "/decide/"):
            routes.append(Route(p, self.flags, methods=["POST", "GET"]))
        routes.append(Route("/array/{token}/config", self.remote_config, methods=["GET"]))
        routes.append(Route("/array/{token}/config.js", self.remote_config_js, methods=["GET"]))
        return routes

    # -- the shared path ------------------------------------------------------------------------

    async def _collect(
        self,
        request: Request,
        endpoint: str,
        handle: Callable[[bytes, datetime], Awaitable[Response]],
    ) -> Response:
        ctx = self.ctx
        started = time.perf_counter()
        status = 500
        if ctx.closing:
            ctx.metrics.requests.labels(endpoint, "503").inc()
            return retry_later(503, f"{ctx.closing_reason}; retry shortly")
        if ctx.inflight >= ctx.max_inflight:
            status = 429
            ctx.metrics.requests.labels(endpoint, str(status)).inc()
            return retry_later(429, f"too many requests in flight ({ctx.inflight}); retry shortly")
        ctx.inflight += 1
        try:
            raw = await read_body(request, self.limit)
            response = await handle(raw, datetime.now(UTC))
            status = response.status_code
            return response
        except WireError as exc:
            status = exc.status
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        except InvalidArgument as exc:
            status = 400
            return JSONResponse({"error": str(exc)}, status_code=400)
        except Overloaded as exc:
            status = 503
            return retry_later(status, f"the store is busy ({exc}); retry shortly")
        except WorkersUnavailable as exc:
            status = 503
            return retry_later(status, f"{exc}; nothing of this request was stored, retry shortly")
        finally:
            ctx.inflight -= 1
            ctx.metrics.requests.labels(endpoint, str(status)).inc()
            ctx.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)

    async def _map(self, fn: Callable[[], Any]) -> Any:
        return await anyio.to_thread.run_sync(fn)

    def _unauthorized(self, what: str) -> JSONResponse:
        detail = (
            f"{what} is missing or wrong: nothing was stored. "
            "Use the write key telemetry-mcp printed at start (or TELEMETRY_MCP_WRITE_KEY)."
        )
        # PostHog's SDKs read `detail`; Segment's read `code` and `message`.
        return JSONResponse(
            {"type": "authentication_error", "code": "invalid_api_key", "detail": detail, "message": detail},
            status_code=401,
        )

    def _count(self, endpoint: str, mapped: Mapped, report: IngestReport) -> None:
        m = self.ctx.metrics
        m.received.labels(endpoint).inc(mapped.received)
        m.accepted.labels(endpoint).inc(report.accepted)
        m.rejected.labels(endpoint).inc(report.rejected + len(mapped.errors))
        m.dropped.labels(endpoint).inc(report.dropped_dnt + report.sampled_out + report.duplicates)
        if report.rejected or mapped.errors:
            log.info(
                "%s: %d event(s) rejected, first: %s",
                endpoint,
                report.rejected + len(mapped.errors),
                _remap(report, mapped)[:1],
            )

    async def _store(self, endpoint: str, mapped: Mapped, now: datetime, **envelope: Any) -> IngestReport:
        prepared = await self.ctx.prepare(mapped.events, now=now, **envelope)
        return await self._commit(endpoint, mapped, prepared)

    async def _commit(self, endpoint: str, mapped: Mapped, prepared: Prepared) -> IngestReport:
        report = await self.ctx.commit(prepared)
        self._count(endpoint, mapped, report)
        return report

    async def _decode_map_prepare(
        self, request: Request, raw: bytes, now: datetime, wire: str, kind: str, fallback_key: str | None
    ) -> Outcome:
        """Decode, map and (for the right key) validate: in a collector worker process when they are
        running, else in one worker-thread hop. The bulk path of PostHog and Segment.

        The outcome's `prepared` is None when the write key is wrong (nothing validated or stored);
        a body the request cannot have raises WireError.
        """
        job = Job(
            wire=wire,
            kind=kind,
            raw=raw,
            content_type=request.headers.get("content-type"),
            content_encoding=request.headers.get("content-encoding"),
            query=dict(request.query_params),
            now=now,
            fallback_key=fallback_key,
            max_bytes=self.limit,
        )
        workers = self.ctx.workers
        outcome = await workers.run(job) if workers is not None else None
        if outcome is None:
            preparer, key = self.ctx.app.ingestor, self.ctx.write_key
            outcome = await anyio.to_thread.run_sync(lambda: do_job(job, preparer, key))
        if outcome.error is not None:
            raise WireError(*outcome.error)
        if outcome.mapped is not None and not self.ctx.key_ok(outcome.mapped.key or fallback_key):
            outcome.prepared = None  # the serve's own verdict on the key decides
        return outcome

    # -- PostHog ----------------------------------------------------------------------------------

    async def posthog(self, request: Request) -> Response:
        path = request.url.path.rstrip("/")

        async def handle(raw: bytes, now: datetime) -> Response:
            query_key = request.query_params.get("api_key") or request.query_params.get("token")
            outcome = await self._decode_map_prepare(request, raw, now, "posthog", path, query_key)
            if outcome.declined or outcome.mapped is None:  # Amplitude's /batch API
                payload = await self._map(lambda: _payload(request, raw, self.limit))
                return await self._amplitude_payload(payload, raw, now)
            if outcome.prepared is None:
                return self._unauthorized("the project API key (api_key / token)")
            await self._commit("posthog", outcome.mapped, outcome.prepared)
            return JSONResponse({"status": 1})

        if request.method == "GET" and not request.query_params.get("data"):
            return JSONResponse({"status": 1})
        return await self._collect(request, "posthog", handle)

    async def posthog_v1(self, request: Request) -> Response:
        """PostHog capture v1 (posthog-python's capture_mode="v1"): Bearer key, `{created_at, batch}`,
        and a per-event answer `{"results": {uuid: {"result": "ok" | "drop", "details"?}}}`."""

        async def handle(raw: bytes, now: datetime) -> Response:
            if not self.ctx.key_ok(bearer_of(request)):
                return self._unauthorized("the project API key (Authorization: Bearer)")
            payload = await self._map(lambda: _payload(request, raw, self.limit))
            if isinstance(payload, dict):  # v1 has no sent_at: its timestamps are the events' own
                payload = {k: v for k, v in payload.items() if k not in ("sent_at", "created_at")}
            mapped: Mapped = await self._map(lambda: map_posthog(payload, now=now))
            report = await self._store("posthog", mapped, now)
            items = payload.get("batch") if isinstance(payload, dict) else payload
            items = items if isinstance(items, list) else [payload]
            dropped = dict(_remap(report, mapped))
            results: dict[str, dict[str, str]] = {}
            for index, item in enumerate(items):
                uid = item.get("uuid") if isinstance(item, dict) else None
                if isinstance(uid, str):
                    reason = dropped.get(index)
                    results[uid] = (
                        {"result": "ok"} if reason is None else {"result": "drop", "details": reason}
                    )
            return JSONResponse({"results": results})

        return await self._collect(request, "posthog", handle)

    async def flags(self, request: Request) -> Response:
        """No feature flags: what PostHog answers for a project without any (so posthog-js starts)."""
        return JSONResponse(
            {
                "flags": {},
                "featureFlags": {},
                "featureFlagPayloads": {},
                "errorsWhileComputingFlags": False,
                "quotaLimited": [],
                "requestId": "00000000-0000-0000-0000-000000000000",
                "sessionRecording": False,
                "supportedCompression": ["gzip", "gzip-js"],
                "autocapture_opt_out": False,
                "capturePerformance": False,
                "heatmaps": False,
                "surveys": False,
                "siteApps": [],
                "toolbarParams": {},
                "config": {"enable_collect_everything": True},
            }
        )

    async def remote_config(self, request: Request) -> Response:
        return JSONResponse(
            {
                "token": request.path_params["token"],
                "supportedCompression": ["gzip", "gzip-js"],
                "hasFeatureFlags": False,
                "captureDeadClicks": False,
                "capturePerformance": False,
                "autocapture_opt_out": False,
                "autocaptureExceptions": False,
                "analytics": {"endpoint": "/i/v0/e/"},
                "elementsChainAsString": True,
                "sessionRecording": False,
                "heatmaps": False,
                "surveys": False,
                "defaultIdentifiedOnly": True,
                "siteApps": [],
            }
        )

    async def remote_config_js(self, request: Request) -> Response:
        config = json.dumps(bytes((await self.remote_config(request)).body).decode())
        script = (
            f"(function(){{window._POSTHOG_REMOTE_CONFIG=window._POSTHOG_REMOTE_CONFIG||{{}};"
            f"window._POSTHOG_REMOTE_CONFIG[{json.dumps(request.path_params['token'])}]="
            f"{{config:JSON.parse({config}),siteApps:[]}}}})();"
        )
        return Response(script, media_type="application/javascript")

    # -- Segment ----------------------------------------------------------------------------------

    def _segment(self, kind: str) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            async def handle(raw: bytes, now: datetime) -> Response:
                outcome = await self._decode_map_prepare(
                    request, raw, now, "segment", kind, basic_user(request)
                )
                if outcome.mapped is None or outcome.prepared is None:
                    return self._unauthorized("the write key (writeKey or Basic auth)")
                await self._commit("segment", outcome.mapped, outcome.prepared)
                return JSONResponse({"success": True})

            return await self._collect(request, "segment", handle)

        return endpoint

    # -- Amplitude --------------------------------------------------------------------------------

    async def amplitude(self, request: Request) -> Response:
        async def handle(raw: bytes, now: datetime) -> Response:
            payload = await self._map(lambda: _payload(request, raw, self.limit))
            return await self._amplitude_payload(payload, raw, now)

        return await self._collect(request, "amplitude", handle)

    async def _amplitude_payload(self, payload: Any, raw: bytes, now: datetime) -> Response:
        mapped: AmplitudeMapped = await self._map(lambda: map_amplitude(payload, now=now))
        if mapped.missing_field is None and not self.ctx.key_ok(mapped.key):
            # "Invalid API key" makes the SDK drop the batch instead of retrying it forever
            return JSONResponse(
                {"code": 401, "error": "Invalid API key: use the collector write key telemetry-mcp printed"},
                status_code=401,
            )
        prepared = await self.ctx.prepare(mapped.events, now=now)
        mapped.add_rejects(prepared.report.errors)
        verdict = mapped.error_body()
        if verdict is not None:
            # As Amplitude: nothing of a 400 request is stored; the SDK drops the listed events and
            # resends the others, which are accepted then (amplitude.py explains the SDK's side).
            self.ctx.metrics.received.labels("amplitude").inc(mapped.received)
            self.ctx.metrics.rejected.labels("amplitude").inc(mapped.received)
            return JSONResponse(verdict, status_code=400)
        report = await self.ctx.commit(prepared)
        self._count("amplitude", mapped, report)
        return JSONResponse(
            {
                "code": 200,
                "events_ingested": mapped.received,
                "payload_size_bytes": len(raw),
                "server_upload_time": int(now.timestamp() * 1000),
            }
        )

    # -- ours -------------------------------------------------------------------------------------

    async def ours(self, request: Request) -> Response:
        from telemetry_mcp.server.tools.ingest import to_result

        async def handle(raw: bytes, now: datetime) -> Response:
            if not self.ctx.key_ok(bearer_of(request) or request.headers.get("x-write-key")):
                return self._unauthorized("the write key (Authorization: Bearer <write key>)")
            payload = await self._map(lambda: _payload(request, raw, self.limit))
            mapped, envelope = map_ours(payload, now=now)
            self.ctx.app.ingestor._check_size(len(mapped.events))
            report = await self._store("ours", mapped, now, **envelope)
            return JSONResponse(to_result(report, mapped.received).model_dump())

        return await self._collect(request, "ours", handle)
