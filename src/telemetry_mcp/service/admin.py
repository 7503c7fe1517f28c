"""Lifecycle commands on a store: `export`, `forget`, `prune`, run here or by the store's owner.

Each command is one operation on an open store taking a JSON body and answering a JSON report. The
CLI opens the store itself when no process owns it; when a running service does, it POSTs the same
body to the owner's `/admin/<command>` with the owner's secret (only the store's user can read it,
from the owner file), and the owner runs the same operation in a worker thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import anyio
import httpx
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from telemetry_mcp.analytics.common import Filter, Params, compile_filters
from telemetry_mcp.config import Settings
from telemetry_mcp.errors import InvalidArgument, StoreLockedError, TelemetryError
from telemetry_mcp.server.arg_errors import argument_problems
from telemetry_mcp.service.owner import find_owner, is_live, read_owner, try_open
from telemetry_mcp.store import Store
from telemetry_mcp.store.export import export_events
from telemetry_mcp.store.lifecycle import Clock, compact, forget_users, prune, utcnow

Operation = Callable[[Store, dict[str, Any], Clock], dict[str, Any]]
MAX_FILTERS = 50  # as the tools' `filters`
OWNER_TIMEOUT = 3600.0  # an export of a large store takes minutes


def _instant(body: dict[str, Any], key: str) -> datetime | None:
    value = body.get(key)
    if value is None:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise InvalidArgument(f"{key}: expected an ISO 8601 datetime (UTC), got {value!r}") from None


def _export(store: Store, body: dict[str, Any], clock: Clock) -> dict[str, Any]:
    raw = body.get("filters") or []
    if not isinstance(raw, list) or len(raw) > MAX_FILTERS:
        raise InvalidArgument(f"export: filters must be a list of at most {MAX_FILTERS} {{field, op, value}}")
    try:
        filters = [Filter.model_validate(f) for f in raw]
    except ValidationError as exc:
        raise InvalidArgument(f"export: {argument_problems('filters', exc, raw)}") from None
    p = Params()
    condition = compile_filters(filters, p)  # the tools' allow-listed fields; every value bound
    report = export_events(
        store,
        str(body.get("path", "")),
        str(body.get("format", "")),
        _instant(body, "since"),
        _instant(body, "until"),
        condition=condition,
        condition_params=p.values,
    )
    return {"lines": [report.line()], **vars(report)}


def _forget(store: Store, body: dict[str, Any], clock: Clock) -> dict[str, Any]:
    ids = body.get("user_ids")
    if not isinstance(ids, list) or not all(isinstance(u, str) for u in ids):
        raise InvalidArgument('forget: expected {"user_ids": ["…", …]}')
    report = forget_users(store, ids)
    return {"lines": report.lines(), **report.as_dict()}


def _prune(store: Store, body: dict[str, Any], clock: Clock) -> dict[str, Any]:
    report = prune(store, clock(), dry_run=bool(body.get("dry_run", False)))
    return {"lines": report.lines(), **report.as_dict()}


def _compact(store: Store, body: dict[str, Any], clock: Clock) -> dict[str, Any]:
    report = compact(store)
    return {"lines": report.lines(), **report.as_dict()}


def _import(store: Store, body: dict[str, Any], clock: Clock) -> dict[str, Any]:
    """`telemetry-mcp import` on an owned store: the owner reads the file (same user, same machine)."""
    from pathlib import Path

    from telemetry_mcp.store.importer import import_file
    from telemetry_mcp.store.ingest import Ingestor

    path = Path(str(body.get("path", "")))
    if not path.is_absolute():
        raise InvalidArgument('import: expected {"path": "/absolute/path/of/the/file"}')
    report = import_file(Ingestor(store), path)
    return {
        "lines": [
            f"{path}: accepted {report.accepted:,}, rejected {report.rejected:,}, duplicates "
            f"{report.duplicates:,}, dropped (do-not-track/sampling) {report.dropped_dnt + report.sampled_out:,}, "
            f"redactions {report.redactions:,}",
            *(f"  record {i}: {reason}" for i, reason in report.errors[:10]),
        ],
        "accepted": report.accepted,
        "rejected": report.rejected,
        "duplicates": report.duplicates,
    }


OPERATIONS: dict[str, Operation] = {
    "export": _export, "forget": _forget, "prune": _prune, "import": _import, "compact": _compact,
}  # fmt: skip
# Operations during which the owner holds ingest off (its collector answers 503 + Retry-After)
HOLDS_INGEST = frozenset({"compact"})


def admin_routes(
    store: Store, clock: Clock = utcnow, hold_ingest: Callable[[], AbstractContextManager[None]] | None = None
) -> list[Route]:
    """POST /admin/export, /admin/forget, /admin/prune, /admin/import, /admin/compact (the guard in
    front requires the owner secret). `hold_ingest` wraps the operations of HOLDS_INGEST."""

    def run(name: str, op: Operation, body: dict[str, Any]) -> dict[str, Any]:
        if hold_ingest is not None and name in HOLDS_INGEST:
            with hold_ingest():
                return op(store, body, clock)
        return op(store, body, clock)

    def handler(name: str, op: Operation) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            try:
                body = await request.json()
            except ValueError:
                return JSONResponse({"error": "expected a JSON object body"}, status_code=400)
            if not isinstance(body, dict):
                return JSONResponse({"error": "expected a JSON object body"}, status_code=400)
            try:
                result = await anyio.to_thread.run_sync(lambda: run(name, op, body))
            except TelemetryError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse(result)

        return endpoint

    return [Route(f"/admin/{name}", handler(name, op), methods=["POST"]) for name, op in OPERATIONS.items()]


def run_command(settings: Settings, name: str, body: dict[str, Any], wait: float = 10.0) -> dict[str, Any]:
    """Run one lifecycle command on the store: by its live owner when there is one, else directly."""
    op = OPERATIONS[name]
    deadline = time.monotonic() + wait
    while True:
        if not settings.is_memory:
            info = read_owner(settings)
            if info is not None and is_live(info):
                return _ask_owner(info.url, info.secret, name, body)
        store = try_open(settings)
        if store is not None:
            try:
                return op(store, body, utcnow)
            finally:
                store.close()
        # locked, but its owner has not published its address yet (starting up or handing over)
        info = find_owner(settings, wait=max(0.0, deadline - time.monotonic()))
        if info is not None:
            return _ask_owner(info.url, info.secret, name, body)
        if time.monotonic() >= deadline:
            raise StoreLockedError(
                f"telemetry-mcp: the store {settings.db} is locked by a process that is not a telemetry-mcp "
                "owner (or it does not answer); stop it and run the command again"
            )


def _ask_owner(url: str, secret: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    try:
        r = httpx.post(
            f"{url}/admin/{name}",
            json=body,
            headers={"authorization": f"Bearer {secret}"},
            timeout=OWNER_TIMEOUT,
            trust_env=False,
        )
    except httpx.HTTPError as exc:
        raise TelemetryError(
            f"the store's owner at {url} did not answer {name}: {exc}; run it again"
        ) from None
    data = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    if r.status_code != 200:
        raise TelemetryError(str(data.get("error") or f"the owner answered HTTP {r.status_code} to {name}"))
    out: dict[str, Any] = data
    out.setdefault("lines", [])
    out["via_owner"] = url
    return out
