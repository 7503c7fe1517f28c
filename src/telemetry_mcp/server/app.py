"""Builds the MCP server around one open store."""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin

from mcp.server.apps import Apps
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, InputRequiredResult, ToolAnnotations
from mcp.types import Tool as MCPTool
from pydantic import BaseModel, ValidationError

from telemetry_mcp import __version__
from telemetry_mcp.analytics.common import Filter
from telemetry_mcp.config import Settings
from telemetry_mcp.errors import TelemetryError
from telemetry_mcp.events.privacy import hash_user_id
from telemetry_mcp.server import budget
from telemetry_mcp.server.arg_errors import argument_problems
from telemetry_mcp.server.lean import slim_tool
from telemetry_mcp.store import Store
from telemetry_mcp.store.ingest import Ingestor
from telemetry_mcp.views import VIEWS, view_html

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


_APP_ATTR = "_telemetry_app"


def _with_hashed_user_ids(value: Any, hasher: Callable[[str], str]) -> Any:
    """Make user_id filters match stored (hashed) ids, wherever a Filter sits in the arguments.

    A raw id is matched through its hash; a value that is already a stored hash (copied from an
    earlier answer) still matches itself.
    """
    if isinstance(value, Filter):
        if value.field != "user_id" or value.op == "contains":
            return value
        raw = value.value if isinstance(value.value, list) else [value.value]
        both = [*raw, *(hasher(v) for v in raw if isinstance(v, str))]
        op = "in" if value.op in ("eq", "in") else "nin" if value.op in ("ne", "nin") else value.op
        if op == value.op and not isinstance(value.value, list):
            return value  # gt/lt on an id: nothing sensible to hash
        return value.model_copy(update={"op": op, "value": both})
    if isinstance(value, BaseModel):
        updates = {}
        for name in type(value).model_fields:
            old = getattr(value, name)
            new = _with_hashed_user_ids(old, hasher)
            if new is not old:
                updates[name] = new
        return value.model_copy(update=updates) if updates else value
    if isinstance(value, list):
        items = [_with_hashed_user_ids(v, hasher) for v in value]
        return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
    return value


def _may_hold_model(annotation: Any) -> bool:
    """Can a validated argument of this type hold a pydantic model (where a Filter may sit)?

    `Any`, plain values and Literals cannot: the SDK validates JSON into dicts, lists and scalars
    there. Forms not recognised count as able to.
    """
    if annotation is Any:
        return False
    if isinstance(annotation, type) and not get_args(annotation):
        return issubclass(annotation, BaseModel)
    origin = get_origin(annotation)
    if origin is Literal:
        return False
    args = get_args(annotation)
    if origin is Annotated:
        return _may_hold_model(args[0])
    if not args:
        return True
    return any(_may_hold_model(a) for a in args)


class TelemetryServer(MCPServer[Any]):
    """MCPServer with a lean tools/list and argument errors rewritten one short line per problem."""

    _lean: list[MCPTool] | None = None

    async def list_tools(self) -> list[MCPTool]:
        if self._lean is None:
            self._lean = [slim_tool(t) for t in await super().list_tools()]
        return list(self._lean)

    def add_tool(self, *args: Any, **kwargs: Any) -> None:
        self._lean = None
        super().add_tool(*args, **kwargs)

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, ValidationError):
                raise ToolError(argument_problems(name, cause, arguments)) from cause
            raise


def tool(
    mcp: MCPServer[Any],
    *,
    title: str,
    description: str,
    read_only: bool = True,
    idempotent: bool = True,
    rest_hint: str = budget.DEFAULT_REST_HINT,
    view: str | None = None,
) -> Callable[[F], F]:
    """Register a tool whose TelemetryErrors reach the agent as readable is_error results.

    The function returns a pydantic result model (with `summary`); the answer is fitted to the
    answer budget (`budget.answer`: compact text, cut lists, `truncated`, `rest_hint` in the summary)
    and the output schema stays the model's. user_id values in filter arguments are hashed as the
    stored ids are (SPEC section 3, step 6). `view` names an MCP App view (`telemetry_mcp.views.VIEWS`)
    linked through `_meta.ui.resourceUri`: an Apps host draws the structured content there, the model
    still reads the compact text, and clients without Apps see nothing new.
    """
    meta = {"ui": {"resourceUri": VIEWS[view].uri}} if view is not None else None

    def deco(fn: F) -> F:
        signature = inspect.signature(fn, eval_str=True)
        model = signature.return_annotation
        # only these arguments can hold a Filter: the others (ingest_events' events) are not walked
        filtered = {name for name, p in signature.parameters.items() if _may_hold_model(p.annotation)}

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            app: App | None = getattr(mcp, _APP_ATTR, None)
            if app is not None and app.settings.hash_user_ids:
                salt = app.store.salt
                kwargs = {
                    k: _with_hashed_user_ids(v, lambda raw: hash_user_id(raw, salt)) if k in filtered else v
                    for k, v in kwargs.items()
                }
            try:
                result = fn(*args, **kwargs)
            except TelemetryError as exc:
                raise ToolError(str(exc)) from None
            except ToolError:
                raise
            except ValidationError as exc:  # a query model refused what the signature let through
                raise ToolError(argument_problems(fn.__name__, exc, kwargs)) from None
            except Exception as exc:  # the top: report, keep serving
                log.exception("tool %s failed", fn.__name__)
                raise ToolError(
                    f"internal error in {fn.__name__} ({type(exc).__name__}: {str(exc)[:300]}); "
                    "the server is still running — please report this"
                ) from None
            if not isinstance(result, BaseModel):
                return result
            max_chars = app.settings.answer_max_chars if app is not None else budget.DEFAULT_MAX_CHARS
            return budget.answer(result, max_chars=max_chars, rest_hint=rest_hint)

        if isinstance(model, type) and issubclass(model, BaseModel):
            # The SDK reads the output schema from this annotation; the body returns the fitted result.
            wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
                return_annotation=Annotated[CallToolResult, model]
            )
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
            meta=meta,
        )(wrapper)
        return fn

    return deco


def build_server(app: App) -> MCPServer[Any]:
    """An MCPServer with every tool, resource and prompt registered against `app`."""
    from telemetry_mcp.server.tools import TOOL_MODULES

    apps = Apps()
    for view in VIEWS.values():
        apps.add_html_resource(
            view.uri,
            view_html(view.name),
            name=f"view-{view.name}",
            title=view.title,
            description=view.description,
            prefers_border=True,
        )
    mcp: MCPServer[Any] = TelemetryServer(
        "telemetry-mcp",
        title="telemetry-mcp",
        description="Component telemetry you can interrogate: usage, performance, funnels, retention.",
        instructions=INSTRUCTIONS,
        version=__version__,
        log_level=app.settings.log_level if app.settings.log_level != "DEBUG" else "DEBUG",
        extensions=[apps],
    )
    setattr(mcp, _APP_ATTR, app)
    for name in TOOL_MODULES:
        module = importlib.import_module(f"telemetry_mcp.server.tools.{name}")
        module.register(mcp, app)
    return mcp


def open_app(settings: Settings) -> App:
    """Open the store (raises StoreLockedError when another process holds it)."""
    store = Store(settings)
    return App(settings=settings, store=store, ingestor=Ingestor(store))
