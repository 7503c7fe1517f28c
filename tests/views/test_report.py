"""`telemetry-mcp report --html/--md`: the daily-health / weekly-trends report from the tools' answers."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from browser import Browser
from helpers import SAMPLE
from screens import compare_or_update
from svc import ServiceProcess
from telemetry_mcp.server.report import SECTIONS
from wire import server_env

DOCS = Path(__file__).resolve().parents[2] / "docs"
UNTIL = "2026-11-01"  # the end of the fixture sample: the same report every run


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "telemetry_mcp", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        env=server_env(),
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("report") / "sample.duckdb"
    done = run("import", "--db", str(db), "--quiet", str(SAMPLE))
    assert done.returncode == 0, done.stderr
    return db


@pytest.fixture(scope="module")
def report_files(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, str]]:
    out = tmp_path_factory.mktemp("out")
    html, md = out / "report.html", out / "report.md"
    done = run("report", "--db", str(store), "--html", str(html), "--md", str(md), "--until", UNTIL)
    assert done.returncode == 0, done.stderr
    yield html, md, done.stderr


def inlined_report(html: str) -> dict[str, object]:
    match = re.search(r'<script type="application/json" id="tm-report-data">(.*?)</script>', html, re.S)
    assert match
    data: dict[str, object] = json.loads(match.group(1))
    return data


def test_the_html_report_is_one_file_holding_every_sections_answer_and_the_chart_library(
    report_files: tuple[Path, Path, str],
) -> None:
    html_path, _, stderr = report_files
    html = html_path.read_text()
    report = inlined_report(html)
    sections = [s for part in report["parts"] for s in part["sections"]]  # type: ignore[attr-defined]

    assert [s["title"] for s in sections] == [s.title for s in SECTIONS["daily"] + SECTIONS["weekly"]]
    assert all(s["error"] is None and s["data"]["summary"] for s in sections)
    assert report["until"] == "2026-11-01T00:00:00Z"
    assert "uPlot" in html and "TM.render" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert f"wrote {html_path} (11 sections up to 2026-11-01T00:00:00Z)" in stderr


def test_the_markdown_report_has_each_sections_summary_and_its_numbers(
    report_files: tuple[Path, Path, str],
) -> None:
    html_path, md_path, _ = report_files
    md = md_path.read_text()
    report = inlined_report(html_path.read_text())

    assert md.startswith("# telemetry-mcp daily & weekly report\n")
    for part in report["parts"]:  # type: ignore[attr-defined]
        for s in part["sections"]:
            assert f"### {s['title']}\n\n{s['data']['summary']}\n" in md
    assert "| group | n | p50 | p95 | p99 | error rate |" in md
    assert "| cohort | size | 0 | 1 |" in md


def test_the_report_of_a_store_a_running_service_owns_is_asked_of_that_service(
    store: Path, tmp_path: Path
) -> None:
    md = tmp_path / "owned.md"
    with ServiceProcess(store):
        done = run("report", "--db", str(store), "--md", str(md), "--kind", "daily", "--until", UNTIL)
    assert done.returncode == 0, done.stderr
    assert md.read_text().startswith("# telemetry-mcp daily report\n")
    assert "### Load time by component, last 24 h" in md.read_text()


def test_report_without_an_output_file_says_what_to_pass(store: Path) -> None:
    done = run("report", "--db", str(store))
    assert done.returncode == 2
    assert done.stderr.strip() == "telemetry-mcp: report needs --html FILE and/or --md FILE"


@pytest.mark.slow
def test_every_section_of_the_html_report_draws_in_chromium_without_errors(
    report_files: tuple[Path, Path, str], tmp_path: Path
) -> None:
    html_path, _, _ = report_files
    browser = Browser()
    try:
        page = browser.page(1000, 900)
        page.navigate(html_path.as_uri())
        drawn = page.wait_for("window.__tmReport")
        rendered = page.evaluate("window.__tmRendered.map(r => [r.kind, r.marks, r.labels.length])")
        errors = page.errors()
        height = page.evaluate("document.documentElement.scrollHeight")
        page.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1000, "height": min(height, 2400), "deviceScaleFactor": 1, "mobile": False},
        )
        shot = tmp_path / "report.png"
        page.screenshot(shot)
    finally:
        browser.close()
    assert drawn == {"sections": 11, "drawn": 11, "failed": []}
    assert [kind for kind, _, _ in rendered] == [s.view for s in SECTIONS["daily"] + SECTIONS["weekly"]]
    # every chart but the anomaly ones (the sample has none in those ranges) drew marks and labels
    assert all(marks > 0 and labels > 0 for kind, marks, labels in rendered if kind != "anomalies")
    assert errors == []
    compare_or_update(shot, DOCS / "report.png")
