"""`telemetry-mcp report`: the daily-health / weekly-trends report, as one self-contained HTML file
(the views' charts, the chart library inlined) and/or Markdown.

Every section is a tool call answered by the server (in process, or by the store's owner over
HTTP): the same analytics, argument checks and answer budget as an agent gets; no second query
layer. The HTML draws each answer with the renderer its tool's view uses.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mcp import Client

from telemetry_mcp import __version__
from telemetry_mcp.config import Settings
from telemetry_mcp.errors import TelemetryError
from telemetry_mcp.views import inline_json, library_version, page_html


@dataclass(frozen=True)
class Section:
    """One chart of the report: a tool call over the last `span` before the report's end."""

    title: str
    view: str  # a renderer of views/static/charts.js
    tool: str
    span: timedelta
    args: dict[str, Any]


DAY, WEEK = timedelta(days=1), timedelta(weeks=1)
SECTIONS: dict[str, list[Section]] = {
    "daily": [
        Section(
            "Traffic and errors, last 24 h",
            "metrics",
            "collect_metrics",
            DAY,
            {"interval": "hour", "limit": 48},
        ),
        Section(
            "Load time by component, last 24 h",
            "performance",
            "analyze_performance",
            DAY,
            {"metric": "load_time"},
        ),
        Section(
            "API latency vs the day before",
            "performance",
            "analyze_performance",
            DAY,
            {"metric": "api_latency", "group_by": "none", "compare": {"previous_period": True}},
        ),
        Section(
            "Error anomalies, last 7 days (hourly)",
            "anomalies",
            "detect_anomalies",
            WEEK,
            {"metric": "errors"},
        ),
        Section(
            "Active users, last 7 days",
            "engagement",
            "analyze_user_behavior",
            WEEK,
            {"analysis": "engagement", "period": "day"},
        ),
    ],
    "weekly": [
        Section("Weekly traffic, last 8 weeks", "metrics", "collect_metrics", 8 * WEEK, {"interval": "week"}),
        Section(
            "Load time this week vs the week before",
            "performance",
            "analyze_performance",
            WEEK,
            {"metric": "load_time", "compare": {"previous_period": True}},
        ),
        Section(
            "Feature adoption, last 8 weeks",
            "adoption",
            "analyze_feature_adoption",
            8 * WEEK,
            {"period": "week"},
        ),
        Section(
            "Weekly retention, last 8 weeks",
            "retention",
            "analyze_user_behavior",
            8 * WEEK,
            {"analysis": "retention", "period": "week"},
        ),
        Section(
            "Top journeys by page, last week",
            "journeys",
            "analyze_user_behavior",
            WEEK,
            {"analysis": "journeys", "node": "page", "limit": 12},
        ),
        Section(
            "Anomalies, last 8 weeks (daily)",
            "anomalies",
            "detect_anomalies",
            8 * WEEK,
            {"metric": "events", "interval": "day"},
        ),
    ],
}
KINDS = ("daily", "weekly", "both")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def gather(client: Client, kind: str, until: datetime) -> dict[str, Any]:
    """Ask every section's tool; the report's data (what the HTML and the Markdown are drawn from)."""
    if kind not in KINDS:
        raise TelemetryError(f"unknown report {kind!r}: choose daily, weekly or both")
    parts = ["daily", "weekly"] if kind == "both" else [kind]
    out: dict[str, Any] = {
        "title": f"telemetry-mcp {' & '.join(parts)} report",
        "until": _iso(until),
        "generated": _iso(datetime.now(UTC)),
        "version": __version__,
        "parts": [],
    }
    for part in parts:
        sections = []
        for s in SECTIONS[part]:
            args = {**s.args, "since": _iso(until - s.span), "until": _iso(until)}
            result = await client.call_tool(s.tool, args)
            text = result.content[0].text if result.content else ""  # type: ignore[union-attr]
            sections.append(
                {
                    "title": s.title,
                    "view": s.view,
                    "tool": s.tool,
                    "arguments": args,
                    "error": text if result.is_error else None,
                    "data": None if result.is_error else result.structured_content,
                }
            )
        out["parts"].append({"name": part, "sections": sections})
    return out


def render_html(report: dict[str, Any]) -> str:
    """One HTML file: the charts drawn in the reader's browser from the inlined data, nothing fetched."""
    return page_html(
        "report.html",
        title=html.escape(report["title"]),
        subtitle=html.escape(
            f"up to {report['until']} · generated {report['generated']} · {library_version()}"
        ),
        noscript="".join(
            f"<h3>{html.escape(s['title'])}</h3><p>{html.escape(_summary(s))}</p>"
            for part in report["parts"]
            for s in part["sections"]
        ),
        report_json=inline_json(report),
    )


def _summary(section: dict[str, Any]) -> str:
    if section["error"]:
        return f"not available: {section['error']}"
    return str((section["data"] or {}).get("summary", ""))


def _md_cell(value: Any) -> str:
    if isinstance(value, float):
        value = round(value, 4)
    return str("–" if value is None else value).replace("|", "\\|").replace("\n", " ")


def _md_table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    if not rows:
        return []
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
    return [*lines, ""]


def _md_rows(view: str, d: dict[str, Any]) -> list[str]:
    """The section's main table (the chart's numbers), at most 12 rows."""
    if view == "metrics":
        busy = [r for r in d.get("series", []) if r["count"]]  # empty buckets are a line at 0 on the chart
        rows = [
            [r["bucket_start"][:16], r["group"], r["count"], r["unique_users"], r["error_count"]]
            for r in busy[:12]
        ]
        return _md_table(["bucket", "group", "events", "users", "errors"], rows)
    if view == "performance":
        rows = [
            [g["key"], g["count"], g["p50"], g["p95"], g["p99"], g["error_rate"]]
            for g in d.get("groups", [])[:12]
        ]
        out = _md_table(["group", "n", "p50", "p95", "p99", "error rate"], rows)
        regs = [
            [
                r["key"],
                r["baseline_p95"],
                r["candidate_p95"],
                r["change_pct"],
                "yes" if r["regressed"] else "",
            ]
            for r in d.get("regressions", [])[:12]
        ]
        return out + _md_table(["group", "baseline p95", "candidate p95", "change %", "regressed"], regs)
    if view == "adoption":
        rows = [
            [f["feature"], f["users"], f["adoption_rate"], f["trend"], f["trend_change_pct"]]
            for f in d.get("features", [])[:12]
        ]
        return _md_table(["feature", "users", "adoption", "trend", "trend %/period"], rows)
    if view == "retention":
        rows = [[c["cohort_start"][:10], c["size"], *c["rates"]] for c in d.get("cohorts", [])[:12]]
        n = max((len(c["rates"]) for c in d.get("cohorts", [])), default=0)
        return _md_table(
            ["cohort", "size", *(str(i) for i in range(n))], [r + [None] * (n + 2 - len(r)) for r in rows]
        )
    if view == "journeys":
        return _md_table(
            ["path", "sessions"], [[" → ".join(p["nodes"]), p["count"]] for p in d.get("paths", [])[:12]]
        )
    if view == "anomalies":
        rows = [
            [
                a["bucket_start"][:16],
                a["group"],
                a["observed"],
                a["expected"],
                f"{a['lower']}–{a['upper']}",
                a["direction"],
            ]
            for a in d.get("anomalies", [])[:12]
        ]
        return _md_table(["bucket", "group", "observed", "expected", "band", "direction"], rows)
    if view == "engagement":
        rows = [
            [r["period_start"][:10], r["dau"], r["wau"], r["mau"], r["sessions"]]
            for r in d.get("engagement", [])[:12]
        ]
        return _md_table(["period", "DAU", "WAU", "MAU", "sessions"], rows)
    return []


def render_md(report: dict[str, Any]) -> str:
    """The same report as Markdown: each section's summary and its numbers as a table."""
    lines = [f"# {report['title']}", "", f"Up to {report['until']} · generated {report['generated']}.", ""]
    for part in report["parts"]:
        lines += [f"## {part['name'].capitalize()}", ""]
        for s in part["sections"]:
            lines += [f"### {s['title']}", "", _summary(s), ""]
            if s["data"]:
                lines += _md_rows(s["view"], s["data"])
    return "\n".join(lines).rstrip() + "\n"


async def write_report(
    settings: Settings, kind: str, until: datetime, html_path: Path | None, md_path: Path | None
) -> dict[str, Any]:
    """Gather the report from the store's server and write the files asked for; the report's data."""
    from telemetry_mcp.server.run import client_for

    async with client_for(settings) as client:
        report = await gather(client, kind, until)
    if html_path is not None:
        html_path.write_text(render_html(report), encoding="utf-8")
    if md_path is not None:
        md_path.write_text(render_md(report), encoding="utf-8")
    return report
