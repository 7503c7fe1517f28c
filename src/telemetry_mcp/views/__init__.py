"""MCP App views and the report's HTML: templates plus the pinned, bundled chart library (uPlot).

No data logic here: a view draws the structured result a tool already returned. Everything a page
needs is inlined (hosts block outside resources; the report is mailed as one file), nothing is
fetched from a CDN. `scripts/build_views.sh` rebuilds `static/uPlot.*` from npm (.ci/views).
"""

from __future__ import annotations

import functools
import html
import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from telemetry_mcp import __version__

URI_PREFIX = "ui://telemetry-mcp/"
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


@dataclass(frozen=True)
class View:
    """One `ui://` view: the kind of answer it draws (a renderer in static/charts.js)."""

    name: str
    title: str
    description: str

    @property
    def uri(self) -> str:
        return URI_PREFIX + self.name


# One view per kind of answer a tool gives; behavior draws funnel, drop-off, retention (triangle),
# journeys (flow), engagement and milestones, chosen by the answer's `analysis`.
VIEWS: dict[str, View] = {
    v.name: v
    for v in (
        View("metrics", "Usage over time", "collect_metrics: events, users and errors per bucket"),
        View("performance", "Percentiles and regressions", "analyze_performance: p50/p95/p99 per group"),
        View("behavior", "Funnel, retention, journeys", "analyze_user_behavior: the chosen analysis"),
        View("adoption", "Feature adoption", "analyze_feature_adoption: adoption rate per period"),
        View("anomalies", "Anomalies", "detect_anomalies: each anomaly against its expected band"),
    )
}


@functools.cache
def static(name: str) -> str:
    """A file of views/static (the bundled library, the renderers, the stylesheet)."""
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")


@functools.cache
def _template(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def library_version() -> str:
    """The bundled chart library and its version, e.g. "uplot 1.6.32"."""
    return static("VERSION").strip()


def _script(js: str) -> str:
    """JavaScript safe to inline in a <script> element."""
    return js.replace("</", "<\\/")


def inline_json(data: Any) -> str:
    """JSON safe to inline in a <script type="application/json"> element."""
    return json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")


def fill(template: str, **values: str) -> str:
    """The template with each {{key}} replaced, in one pass (inserted text is never re-read)."""
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def assets() -> dict[str, str]:
    """The inlined pieces every page shares."""
    return {
        "uplot_css": static("uPlot.min.css"),
        "base_css": static("base.css"),
        "uplot_js": _script(static("uPlot.iife.min.js")),
        "charts_js": _script(static("charts.js")),
        "version": html.escape(__version__),
    }


@functools.cache
def view_html(name: str) -> str:
    """The self-contained HTML of one view (served as text/html;profile=mcp-app)."""
    view = VIEWS[name]
    return fill(
        _template("view.html"),
        kind=view.name,
        title=html.escape(view.title),
        app_js=_script(static("app.js")),
        **assets(),
    )


def page_html(template: str, **values: str) -> str:
    """A page of this package (report, dashboard) with the shared assets inlined."""
    return fill(_template(template), **values, **assets())
