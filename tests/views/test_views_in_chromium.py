"""Each MCP App view in headless Chromium, as an Apps host shows it.

A small test host page (tests/views/host.html) loads the view's HTML — exactly what resources/read
returns — in a sandboxed iframe (scripts only: an opaque origin), performs the Apps handshake from
the host side and sends a tool result recorded from the fixture sample through the in-process
server. The test then reads, inside the view, what it drew (marks and axis labels), checks that
nothing was logged as an error, and compares a screenshot with the committed one in docs/views/
(TM_UPDATE_SCREENSHOTS=1 rewrites them).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import TextResourceContents

from browser import Browser, Page
from helpers import load_sample
from screens import compare_or_update
from telemetry_mcp.config import load_settings
from telemetry_mcp.server.app import build_server, open_app

HOST = Path(__file__).with_name("host.html")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "views"
RANGE = {"since": "2026-09-01", "until": "2026-11-01"}  # the whole fixture sample, fixed for the screenshots
CHECKOUT = [
    {
        "event_type": "page_view",
        "filters": [{"field": "page", "op": "eq", "value": "/checkout"}],
        "label": "checkout",
    },
    {"event_type": "user_interaction", "name": "add_payment"},
    {"event_type": "event_trigger", "name": "submit_order"},
    {"event_type": "feature_used", "name": "order_confirmed"},
]
# case → (tool, arguments): one recorded answer per kind of view.
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "metrics": ("collect_metrics", {**RANGE, "interval": "day", "limit": 100}),
    "performance": (
        "analyze_performance",
        {
            **RANGE,
            "metric": "load_time",
            "compare": {"baseline_version": "2.2.0", "candidate_version": "2.3.0"},
        },
    ),
    "funnel": (
        "analyze_user_behavior",
        {**RANGE, "analysis": "funnel", "steps": CHECKOUT, "conversion_window": "1h"},
    ),
    "retention": ("analyze_user_behavior", {**RANGE, "analysis": "retention", "period": "week"}),
    "journeys": ("analyze_user_behavior", {**RANGE, "analysis": "journeys", "node": "page", "limit": 12}),
    "adoption": ("analyze_feature_adoption", {**RANGE}),
    "anomalies": (
        "detect_anomalies",
        {**RANGE, "metric": "load_time", "group_by": "component", "interval": "day"},
    ),
}


def expected_marks(case: str, data: dict[str, Any]) -> int:
    """What the view must draw for this answer, counted from the answer itself."""
    if case == "metrics":
        return len(data["series"])  # one point per bucket
    if case == "performance":
        return 3 * len(data["groups"]) + 2 * len(data["regressions"])  # p50/p95/p99 bars; baseline/candidate
    if case == "funnel":
        return len(data["steps"])
    if case == "retention":  # one shaded cell per known rate, cohorts and the average row
        return sum(len(c["rates"]) for c in data["cohorts"]) + len(data["average_rates"])
    if case == "journeys":
        return len(data["transitions"])  # one flow band per transition
    if case == "adoption":
        return min(8, len(data["features"]))  # one line per feature, the eight most used
    if case == "anomalies":
        return len(data["anomalies"])  # one observed dot against its band each
    raise AssertionError(case)


def expected_labels(case: str, data: dict[str, Any]) -> set[str]:
    """Labels that must appear on the chart (axis ticks, categories, nodes)."""
    if case == "metrics":
        return {data["series"][0]["bucket_start"][5:10]}  # the first day on the time axis
    if case == "performance":
        return {g["key"] for g in data["groups"]} | {"0"}
    if case == "funnel":
        return {s["label"] for s in data["steps"]}
    if case == "retention":
        return {c["cohort_start"][:10] for c in data["cohorts"]}
    if case == "journeys":
        return {t["source"] for t in data["transitions"]} | {t["target"] for t in data["transitions"]}
    if case == "adoption":
        return {"0.0 %", "100.0 %"}
    if case == "anomalies":
        return {a["bucket_start"][:10] for a in data["anomalies"]}
    raise AssertionError(case)


async def _record() -> dict[str, Any]:
    app = open_app(load_settings({"db": ":memory:", "threads": 2, "salt": "00" * 16}, env={}))
    try:
        load_sample(app)
        out: dict[str, Any] = {}
        async with Client(build_server(app)) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            htmls: dict[str, str] = {}
            for case, (tool, args) in CASES.items():
                uri = (tools[tool].meta or {})["ui"]["resourceUri"]
                if uri not in htmls:
                    content = (await client.read_resource(uri)).contents[0]
                    assert isinstance(content, TextResourceContents)
                    assert content.mime_type == "text/html;profile=mcp-app"
                    htmls[uri] = content.text
                result = await client.call_tool(tool, args)
                assert not result.is_error, result.content
                out[case] = {
                    "html": htmls[uri],
                    "arguments": args,
                    "result": result.model_dump(mode="json", by_alias=True, exclude_none=True),
                }
        return out
    finally:
        app.store.close()


@pytest.fixture(scope="module")
def recorded() -> dict[str, Any]:
    """Each case's view HTML (from resources/read) and tool result, from the fixture sample."""
    return asyncio.run(_record())


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    browser = Browser()
    yield browser
    browser.close()


def host_page(
    tmp: Path, case: dict[str, Any], theme: str = "light", variables: dict[str, str] | None = None
) -> Path:
    config = {
        "html": case["html"],
        "width": 720,
        "theme": theme,
        "variables": variables or {},
        "arguments": case["arguments"],
        "result": case["result"],
    }
    text = HOST.read_text().replace(
        "/*CONFIG*/", "window.HOST_CONFIG = " + json.dumps(config).replace("<", "\\u003c") + ";"
    )
    path = tmp / "host.html"
    path.write_text(text)
    return path


def show(browser: Browser, page_file: Path) -> tuple[Page, str, dict[str, Any]]:
    """Load the host page; once the view drew, its session and what it reported."""
    page = browser.page(760, 2200)
    page.navigate(page_file.as_uri())
    page.wait_for("window.__host.initialized")
    view = page.wait_iframe()
    last = "window.__tmRendered.length && JSON.stringify(window.__tmRendered[window.__tmRendered.length - 1])"
    drawn = json.loads(page.wait_for(last, session=view))
    return page, view, drawn


def frame_clip(page: Page) -> dict[str, float]:
    """The iframe's box, once the view's size notifications have settled (two quiet frames)."""
    page.wait_for("window.__host.sizes.length > 0")
    page.wait_for(
        "new Promise(r => { const n = window.__host.sizes.length;"
        " setTimeout(() => requestAnimationFrame(() => r(window.__host.sizes.length === n)), 100); })"
    )
    rect = page.evaluate(
        "(() => { const r = document.querySelector('iframe').getBoundingClientRect();"
        " return {x: r.x, y: r.y, width: r.width, height: r.height}; })()"
    )
    return {k: float(v) for k, v in rect.items()}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_the_view_draws_the_recorded_answer_after_the_apps_handshake(
    case: str, recorded: dict[str, Any], chromium: Browser, tmp_path: Path
) -> None:
    data = recorded[case]["result"]["structuredContent"]
    page, _, drawn = show(chromium, host_page(tmp_path, recorded[case]))

    host = page.evaluate("window.__host")
    assert host["received"][:1] == ["ui/initialize"]
    assert host["received"].index("ui/notifications/initialized") > 0
    assert host["sent"] == ["reply 1", "ui/notifications/tool-input", "ui/notifications/tool-result"]
    assert drawn["marks"] == expected_marks(case, data) > 0
    missing = expected_labels(case, data) - set(drawn["labels"])
    assert not missing, f"labels not drawn: {sorted(missing)}"
    assert page.errors() == []
    shot = tmp_path / f"{case}.png"
    page.screenshot(shot, frame_clip(page))
    compare_or_update(shot, DOCS / f"{case}.png")


@pytest.mark.slow
def test_a_view_follows_the_host_theme_and_its_style_variables(
    recorded: dict[str, Any], chromium: Browser, tmp_path: Path
) -> None:
    variables = {"--color-background-primary": "#101820", "--color-text-primary": "#f0f4f8"}
    page, view, drawn = show(
        chromium, host_page(tmp_path, recorded["metrics"], theme="dark", variables=variables)
    )

    assert drawn["marks"] > 0
    assert page.evaluate("document.documentElement.dataset.theme", view) == "dark"
    assert page.evaluate("getComputedStyle(document.body).backgroundColor", view) == "rgb(16, 24, 32)"
    assert page.evaluate("getComputedStyle(document.body).color", view) == "rgb(240, 244, 248)"
    assert page.errors() == []
    shot = tmp_path / "metrics-dark.png"
    page.screenshot(shot, frame_clip(page))
    compare_or_update(shot, DOCS / "metrics-dark.png")


@pytest.mark.slow
def test_a_chart_that_did_not_draw_fails_the_screenshot_comparison(
    recorded: dict[str, Any], chromium: Browser, tmp_path: Path
) -> None:
    broken = json.loads(json.dumps(recorded["performance"]))
    broken["result"]["structuredContent"]["groups"] = []  # the view gets an answer with nothing to draw
    broken["result"]["structuredContent"]["regressions"] = []
    page, _, drawn = show(chromium, host_page(tmp_path, broken))

    assert drawn["marks"] == 0
    shot = tmp_path / "broken.png"
    page.screenshot(shot, frame_clip(page))
    with pytest.raises(AssertionError, match="differs from"):
        compare_or_update(shot, DOCS / "performance.png", update=False)
