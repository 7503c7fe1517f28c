"""Builds the MCP server around one open store."""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

from telemetry_mcp import __version__
from telemetry_mcp.config import Settings
from telemetry_mcp.errors import TelemetryError
from telemetry_mcp.store import Store
from telemetry_mcp.store.ingest import Ingestor

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

INSTRUCTIONS = """\
telemetry-mcp stores UI-component / CLI / SDK telemetry in a local DuckDB file and answers analytics
questions about it. Start with describe_events to see which event types, components, names,
versions and property keys exist; then ask collect_metrics (usage over time), analyze_performance
(percentiles, release regressions), analyze_user_behavior (funnels, journeys, retention, drop-off,
engagement), analyze_feature_adoption and get_realtime_stats. Submit events with ingest_events.
Ranges are half-open [since, until), default the last 7 days; relative values like 24h, 7d, 8w work.
Every answer has a `summary` you can quote and bounded lists (`truncated: true` when cut).
user_id values are stored as keyed hashes; pass raw ids to tools and they are hashed the same way."""


@dataclass
class App:
    """What tools need: the store and its ingest path."""

    settings: Settings
    store: Store
    ingestor: Ingestor


def tool(
    mcp: MCPServer[Any],
    *,
    title: str,
    description: str,
    read_only: bool = True,
    idempotent: bool = True,
) -> Callable[[F], F]:
    """Register a tool whose TelemetryErrors reach the agent as readable is_error results."""

    def deco(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except TelemetryError as exc:
                raise ToolError(str(exc)) from None
            except ToolError:
                raise
            except Exception as exc:  # the top: report, keep serving
                log.exception("tool %s failed", fn.__name__)
                raise ToolError(
                    f"internal error in {fn.__name__} ({type(exc).__name__}: {str(exc)[:300]}); "
                    "the server is still running — please report this"
                ) from None

        mcp.tool(
            name=fn.__name__,
            title=title,
            description=description,
            annotations=ToolAnnotations(
                title=title,
                read_only_hint=read_only,
                destructive_hint=False,
                idempotent_hint=idempotent,
                open_world_hint=False,
            ),
        )(wrapper)
        return fn

    return deco


def build_server(app: App) -> MCPServer[Any]:
    """An MCPServer with every tool, resource and prompt registered against `app`."""
    from telemetry_mcp.server.tools import TOOL_MODULES

    mcp: MCPServer[Any] = MCPServer(
        "telemetry-mcp",
        title="telemetry-mcp",
        description="Component telemetry you can interrogate: usage, performance, funnels, retention.",
        instructions=INSTRUCTIONS,
        version=__version__,
        log_level=app.settings.log_level if app.settings.log_level != "DEBUG" else "DEBUG",
    )
    for name in TOOL_MODULES:
        module = importlib.import_module(f"telemetry_mcp.server.tools.{name}")
        module.register(mcp, app)
    return mcp


def open_app(settings: Settings) -> App:
    """Open the store (raises StoreLockedError when another process holds it)."""
    store = Store(settings)
    return App(settings=settings, store=store, ingestor=Ingestor(store))
