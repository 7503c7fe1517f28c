"""The dashboard of `telemetry-mcp serve`: `/` (the page) and `/api/v1/dashboard` (its data).

Read access as for /mcp (a Bearer token when one is configured; a browser can pass it once as
`/?token=…`, which sets an HttpOnly, same-site cookie). The data comes from the analytics functions
the tools call — collect_metrics, analyze_performance, analyze_user_behavior (engagement) — with
their validation; nothing here writes SQL. The page draws it with the views' renderers.
"""

from __future__ import annotations

import hmac
import html
from typing import Any

import anyio
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from telemetry_mcp.analytics import metrics, performance
from telemetry_mcp.analytics.behavior import BehaviorQuery, run_behavior
from telemetry_mcp.analytics.common import Filter, Interval
from telemetry_mcp.errors import TelemetryError
from telemetry_mcp.service.context import ServiceContext
from telemetry_mcp.store import Store
from telemetry_mcp.views import page_html

COOKIE = "telemetry_mcp_token"
INSIGHTS_KEY = "dashboard_insights"  # saved definitions, a JSON list in the store's meta table
MAX_INSIGHTS = 8
SAVED_KINDS = ("funnel", "retention")
# Shown until definitions are saved: the first of these steps the store has, in this order.
DEFAULT_STEPS = ("session_start", "page_view", "component_load", "user_interaction", "feature_used")
# "Actions": what a person does, as opposed to what the UI reports about itself.
ACTION_TYPES = ("user_interaction", "event_trigger", "command_executed", "feature_used")
TOP = 10


def _dump(result: BaseModel) -> dict[str, Any]:
    data: dict[str, Any] = result.model_dump(mode="json")
    return data


def dashboard_data(
    store: Store, since: str | None, until: str | None, timezone: str = "UTC"
) -> dict[str, Any]:
    """Tiles and charts for [since, until) (default the last 24 h), through the analytics functions."""
    since = since or "24h"
    window: dict[str, Any] = {"since": since, "until": until, "timezone": timezone}
    by_type = metrics.run(
        store, metrics.MetricsQuery(interval="total", group_by="event_type", limit=1000, **window)
    )
    counts = {str(r.group): r.count for r in by_type.series}
    totals = by_type.totals
    span = (_instant(by_type.until) - _instant(by_type.since)).total_seconds()
    interval: Interval = "minute" if span <= 3 * 3600 else "hour" if span <= 3 * 86400 else "day"
    timeline = metrics.run(store, metrics.MetricsQuery(interval=interval, limit=1000, **window))
    pages = metrics.run(
        store,
        metrics.MetricsQuery(
            interval="total", group_by="page", event_types=["page_view"], limit=TOP, **window
        ),
    )
    errors = metrics.run(
        store,
        metrics.MetricsQuery(
            interval="total",
            group_by="name",
            filters=[Filter(field="severity", op="in", value=["error", "critical"])],
            limit=1000,
            **window,
        ),
    )
    api = performance.run(
        store, performance.PerformanceQuery(metric="api_latency", group_by="none", **window)
    )
    loads = performance.run(store, performance.PerformanceQuery(metric="load_time", limit=TOP, **window))
    engagement: Any = run_behavior(store, BehaviorQuery(analysis="engagement", period="day", **window))
    tiles = {
        "events": totals.count,
        "page_views": counts.get("page_view", 0),
        "actions": sum(counts.get(t, 0) for t in ACTION_TYPES),
        "errors": totals.error_count,
        "api_calls": counts.get("api_call", 0),
        "sessions": totals.unique_sessions,
        "users": totals.unique_users,
        "mean_session_seconds": engagement.engagement_avg_session_seconds,
        "api_latency_mean_ms": api.overall.avg if api.overall else None,
        "api_latency_p95_ms": api.overall.p95 if api.overall else None,
        "error_rate": round(totals.error_count / totals.count, 4) if totals.count else None,
    }
    # total-interval series run by group name: the busiest first, here
    top_pages = [{"page": r.group, "views": r.count, "users": r.unique_users} for r in _busiest(pages)]
    return {
        "since": by_type.since,
        "until": by_type.until,
        "interval": interval,
        "tiles": tiles,
        "timeline": _dump(timeline),
        "top_pages": top_pages,
        "top_components": [_dump(c) for c in timeline.components[:TOP]],
        "load_time": _dump(loads),
        "errors_by_name": [
            {"name": r.group, "errors": r.count, "users": r.unique_users} for r in _busiest(errors)
        ],
        "event_types": [
            {"event_type": k, "events": v} for k, v in sorted(counts.items(), key=lambda kv: -kv[1])
        ],
        "insights": insights_data(store, by_type.since, by_type.until, timezone),
    }


class InsightDefinition(BaseModel):
    """A saved funnel or retention: a title and the analyze_user_behavior arguments (no range:
    funnels follow the dashboard's range; a retention without `since` shows its last 8 weeks)."""

    model_config = {"extra": "forbid"}

    title: str
    analysis: str
    args: dict[str, Any] = {}


def _checked(definitions: Any) -> list[dict[str, Any]]:
    """Definitions validated as the tool validates its arguments; InvalidArgument says what is wrong."""
    from pydantic import ValidationError

    from telemetry_mcp.errors import InvalidArgument

    if not isinstance(definitions, list) or len(definitions) > MAX_INSIGHTS:
        raise InvalidArgument(f"expected a list of at most {MAX_INSIGHTS} insight definitions")
    out: list[dict[str, Any]] = []
    for i, raw in enumerate(definitions):
        try:
            d = InsightDefinition.model_validate(raw)
        except ValidationError as exc:
            raise InvalidArgument(
                f"insight {i}: {exc.errors()[0]['msg']} ({exc.errors()[0]['loc']})"
            ) from None
        if not d.title.strip() or len(d.title) > 100:
            raise InvalidArgument(f"insight {i}: title must be 1-100 characters")
        if d.analysis not in SAVED_KINDS:
            raise InvalidArgument(f"insight {i}: analysis must be funnel or retention, got {d.analysis!r}")
        if {"analysis", "until"} & set(d.args):
            raise InvalidArgument(
                f"insight {i}: args may not set analysis or until (the dashboard's range does)"
            )
        try:
            BehaviorQuery(analysis=d.analysis, **d.args)  # type: ignore[arg-type]
        except (ValidationError, TypeError) as exc:
            raise InvalidArgument(f"insight {i}: {str(exc).splitlines()[0][:300]}") from None
        out.append(d.model_dump())
    return out


def saved_insights(store: Store) -> list[dict[str, Any]]:
    """The saved definitions, or defaults drawn from what the store holds."""
    import json

    text = store.meta_value(INSIGHTS_KEY, lambda: "")
    if text:
        return list(json.loads(text))
    known = store.catalog("event_type")
    steps = [s for s in DEFAULT_STEPS if s in known][:4]
    defaults: list[dict[str, Any]] = []
    if len(steps) >= 2:
        defaults.append(
            {"title": "Funnel: " + " → ".join(steps), "analysis": "funnel", "args": {"steps": steps}}
        )
    defaults.append(
        {"title": "Weekly retention (any event)", "analysis": "retention", "args": {"period": "week"}}
    )
    return defaults


def save_insights(store: Store, definitions: Any) -> list[dict[str, Any]]:
    import json

    checked = _checked(definitions)
    store.meta_value(INSIGHTS_KEY, lambda: "", set_to=json.dumps(checked))
    return checked


def insights_data(store: Store, since: str, until: str, timezone: str) -> list[dict[str, Any]]:
    """Each saved insight answered through analyze_user_behavior's own code, over the dashboard's
    resolved range [since, until); a retention without its own `since` takes that range when it
    spans two weeks or more, else the 8 weeks before `until` (a day of cohorts says little)."""
    from datetime import timedelta

    out: list[dict[str, Any]] = []
    start, end = _instant(since), _instant(until)
    for d in saved_insights(store):
        args = dict(d.get("args", {}))
        if d["analysis"] == "funnel" or "since" not in args:
            wide = end - start >= timedelta(days=14)
            first = start if d["analysis"] == "funnel" or wide else end - timedelta(weeks=8)
            args["since"], args["until"] = first.isoformat(), end.isoformat()
        args.setdefault("timezone", timezone)
        try:
            result: Any = run_behavior(store, BehaviorQuery(analysis=d["analysis"], **args))
            out.append(
                {"title": d["title"], "analysis": d["analysis"], "result": _dump(result), "error": None}
            )
        except TelemetryError as exc:
            out.append({"title": d["title"], "analysis": d["analysis"], "result": None, "error": str(exc)})
    return out


def _busiest(result: metrics.MetricsResult) -> list[metrics.SeriesPoint]:
    return sorted(result.series, key=lambda r: (-r.count, str(r.group)))[:TOP]


def _instant(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def dashboard_routes(ctx: ServiceContext) -> list[BaseRoute]:
    """`/` and `/api/v1/dashboard`, each checking read access itself (the guard leaves `/` alone)."""

    def allowed(request: Request) -> bool:
        if ctx.reader_ok(request):
            return True
        cookie = request.cookies.get(COOKIE)
        return ctx.token is not None and cookie is not None and hmac.compare_digest(cookie, ctx.token)

    def refused() -> Response:
        return JSONResponse(
            {"error": "unauthorized: open /?token=<token> once, or send Authorization: Bearer <token>"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    async def page(request: Request) -> Response:
        given = request.query_params.get("token")
        if given is not None and ctx.token is not None and hmac.compare_digest(given, ctx.token):
            response: Response = RedirectResponse("/", status_code=303)
            response.set_cookie(
                COOKIE, given, httponly=True, samesite="strict", secure=request.url.scheme == "https"
            )
            return response
        if not allowed(request):
            return refused()
        return HTMLResponse(page_html("dashboard.html", store=html.escape(str(ctx.app.store.path))))

    async def data(request: Request) -> Response:
        if not allowed(request):
            return refused()
        q = request.query_params
        try:
            body = await anyio.to_thread.run_sync(
                lambda: dashboard_data(
                    ctx.app.store, q.get("since"), q.get("until"), q.get("timezone") or "UTC"
                )
            )
        except TelemetryError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    async def insights(request: Request) -> Response:
        """GET: the saved funnel/retention definitions; PUT: replace them (a JSON list)."""
        if not allowed(request):
            return refused()
        store = ctx.app.store
        try:
            if request.method == "PUT":
                try:
                    body = await request.json()
                except ValueError:
                    return JSONResponse({"error": "expected a JSON list of definitions"}, status_code=400)
                saved = await anyio.to_thread.run_sync(lambda: save_insights(store, body))
            else:
                saved = await anyio.to_thread.run_sync(lambda: saved_insights(store))
        except TelemetryError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"insights": saved})

    return [
        Route("/", page, methods=["GET"]),
        Route("/api/v1/dashboard", data, methods=["GET"]),
        Route("/api/v1/dashboard/insights", insights, methods=["GET", "PUT"]),
    ]
