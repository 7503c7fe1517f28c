"""The dashboard of `telemetry-mcp serve`: `/` and /api/v1/dashboard, over HTTP and in Chromium."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from browser import Browser
from helpers import SAMPLE
from screens import compare_or_update
from svc import ServiceProcess
from wire import server_env

DOCS = Path(__file__).resolve().parents[2] / "docs"
OCTOBER = {"since": "2026-10-01", "until": "2026-11-01"}


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("dash") / "sample.duckdb"
    done = subprocess.run(
        [sys.executable, "-m", "telemetry_mcp", "import", "--db", str(db), "--quiet", str(SAMPLE)],
        capture_output=True,
        text=True,
        timeout=120,
        env=server_env(),
    )
    assert done.returncode == 0, done.stderr
    return db


@pytest.fixture(scope="module")
def service(sample_db: Path) -> Iterator[ServiceProcess]:
    with ServiceProcess(sample_db) as svc:
        yield svc


def test_the_dashboard_data_has_the_seed_tiles_from_the_analytics(service: ServiceProcess) -> None:
    r = httpx.get(f"{service.url}/api/v1/dashboard", params=OCTOBER, timeout=30)
    assert r.status_code == 200
    body = r.json()
    tiles = body["tiles"]
    # the same numbers collect_metrics gives for the range (fixture sample, October 2026)
    assert tiles["events"] == 12437 and tiles["errors"] == 49 and tiles["error_rate"] == 0.0039
    assert tiles["page_views"] == 1049 and tiles["api_calls"] == 296 and tiles["sessions"] == 703
    assert tiles["actions"] == 1094
    assert tiles["mean_session_seconds"] == 103.4147
    assert tiles["api_latency_mean_ms"] == 159.1963 and tiles["api_latency_p95_ms"] == 353.675
    assert body["interval"] == "day" and len(body["timeline"]["series"]) == 31
    assert [p["page"] for p in body["top_pages"]][:2] == ["/dashboard", "/"]
    assert body["top_pages"] == sorted(body["top_pages"], key=lambda p: (-p["views"], p["page"]))
    assert body["errors_by_name"] == sorted(body["errors_by_name"], key=lambda e: (-e["errors"], e["name"]))
    assert body["load_time"]["groups"][0]["key"] == "LegacyCarousel"


def test_saved_funnels_and_retention_are_answered_by_the_analyses_and_can_be_replaced(
    service: ServiceProcess,
) -> None:
    url = f"{service.url}/api/v1/dashboard"
    defaults = httpx.get(f"{url}/insights", timeout=30).json()["insights"]
    assert [d["analysis"] for d in defaults] == ["funnel", "retention"]
    assert defaults[0]["args"]["steps"] == [
        "session_start",
        "page_view",
        "component_load",
        "user_interaction",
    ]
    saved = [
        {"title": "Signup", "analysis": "funnel", "args": {"steps": ["page_view", "feature_used"]}},
        {
            "title": "Daily retention",
            "analysis": "retention",
            "args": {"period": "day", "since": "2026-10-01"},
        },
    ]
    try:
        assert httpx.put(f"{url}/insights", json=saved, timeout=30).json()["insights"] == saved
        body = httpx.get(url, params=OCTOBER, timeout=30).json()
        funnel, retention = body["insights"]
        assert (funnel["title"], funnel["error"]) == ("Signup", None)
        # the same numbers analyze_user_behavior gives for the dashboard's range
        assert [s["label"] for s in funnel["result"]["steps"]] == ["page_view", "feature_used"]
        assert funnel["result"]["steps"][0]["users"] > funnel["result"]["steps"][1]["users"] > 0
        assert retention["result"]["retention_period"] == "day"
        assert retention["result"]["retention_since"].startswith("2026-10-01")
        bad = httpx.put(f"{url}/insights", json=[{"title": "x", "analysis": "journeys"}], timeout=30)
        assert bad.status_code == 400 and "funnel or retention" in bad.json()["error"]
        bad = httpx.put(
            f"{url}/insights", json=[{"title": "x", "analysis": "funnel", "args": {"steps": 3}}], timeout=30
        )
        assert bad.status_code == 400 and "insight 0" in bad.json()["error"]
        assert (
            httpx.get(f"{url}/insights", timeout=30).json()["insights"] == saved
        )  # a refusal changes nothing
    finally:
        httpx.put(f"{url}/insights", json=defaults, timeout=30)


def test_a_bad_range_is_a_400_saying_what_is_accepted(service: ServiceProcess) -> None:
    r = httpx.get(f"{service.url}/api/v1/dashboard", params={"since": "yesterday-ish"}, timeout=30)
    assert r.status_code == 400
    assert "relative" in r.json()["error"]


def test_health_and_the_collector_are_untouched_by_the_dashboard_at_the_root(service: ServiceProcess) -> None:
    assert httpx.get(f"{service.url}/health", timeout=10).json()["status"] == "ok"
    page = httpx.get(f"{service.url}/", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "uPlot" in page.text
    r = service.post(
        "/api/v1/events", {"events": [{"event_type": "page_view"}]}, headers={"authorization": "Bearer nope"}
    )
    assert r.status_code == 401


def test_with_a_token_the_dashboard_needs_it_and_a_browser_passes_it_once_in_the_url(
    tmp_path: Path,
) -> None:
    with ServiceProcess(tmp_path / "t.duckdb", "--token", "s3cret-token") as svc:
        assert httpx.get(f"{svc.url}/", timeout=10).status_code == 401
        assert httpx.get(f"{svc.url}/api/v1/dashboard", timeout=10).status_code == 401
        bearer = {"authorization": "Bearer s3cret-token"}
        assert httpx.get(f"{svc.url}/api/v1/dashboard", headers=bearer, timeout=30).status_code == 200
        with httpx.Client(base_url=svc.url, timeout=30) as browser_like:
            first = browser_like.get("/?token=s3cret-token")
            assert first.status_code == 303 and first.headers["location"] == "/"
            assert "httponly" in first.headers["set-cookie"].lower()
            assert browser_like.get("/").status_code == 200
            assert browser_like.get("/api/v1/dashboard").status_code == 200
        assert httpx.get(f"{svc.url}/?token=wrong", timeout=10).status_code == 401


@pytest.mark.slow
def test_the_dashboard_draws_its_tiles_and_charts_in_chromium(
    service: ServiceProcess, tmp_path: Path
) -> None:
    browser = Browser()
    try:
        page = browser.page(1280, 2300)
        page.navigate(f"{service.url}/?since={OCTOBER['since']}&until={OCTOBER['until']}")
        page.wait_for("window.__tmDashboard.loads >= 1")
        tiles = page.evaluate("[...document.querySelectorAll('.tile .k')].map(e => e.textContent)")
        values = page.evaluate("[...document.querySelectorAll('.tile .v')].map(e => e.textContent)")
        rendered = page.evaluate("window.__tmRendered.map(r => [r.kind, r.marks])")
        bars = page.evaluate(
            "document.querySelectorAll('#pages .tm-mark, #components .tm-mark, #errors .tm-mark').length"
        )
        # what changes from run to run (the temporary store's path, the clock) is masked in the shot
        page.evaluate(
            "(() => { document.querySelector('.store').textContent = 'sample.duckdb';"
            " document.getElementById('status').textContent = '2026-10-01 → 2026-11-01 UTC'; })()"
        )
        page.wait_for("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))")
        shot = tmp_path / "dashboard.png"
        page.screenshot(shot)
        # the range picker asks again for the chosen range
        page.evaluate(
            "(() => { const s = document.getElementById('range'); s.value = '7d'; s.dispatchEvent(new Event('change')); })()"
        )
        page.wait_for("window.__tmDashboard.loads >= 2")
        requested = page.evaluate("window.__tmDashboard.requested")
        errors = page.errors()
    finally:
        browser.close()
    assert tiles == [
        "events", "page views", "actions", "errors", "API calls", "sessions", "mean session",
        "API latency (mean)", "API latency (p95)", "error rate",
    ]  # fmt: skip
    assert values[:6] == ["12.4k", "1,049", "1,094", "49", "296", "703"]
    assert values[6:] == ["1 min 43 s", "159 ms", "354 ms", "0.4 %"]
    data = httpx.get(f"{service.url}/api/v1/dashboard", params=OCTOBER, timeout=30).json()
    funnel, retention = (i["result"] for i in data["insights"])  # the default saved insights
    cells = sum(len(c["retained"]) for c in retention["cohorts"]) + len(retention["average_rates"])
    assert retention["retention_since"].startswith("2026-10-01")  # the dashboard's range (a month)
    # 31 days; the 10 slowest × p50/p95/p99; a bar per funnel step; a cell per retention period
    assert rendered == [
        ["metrics", 31],
        ["performance", 30],
        ["behavior", len(funnel["steps"])],
        ["behavior", cells],
    ]
    assert bars == len(data["top_pages"]) + len(data["top_components"]) + len(data["errors_by_name"]) == 29
    assert requested == ["since=2026-10-01&until=2026-11-01", "since=7d"]
    assert errors == []
    compare_or_update(shot, DOCS / "dashboard.png")
