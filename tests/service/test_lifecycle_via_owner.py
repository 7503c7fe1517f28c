"""export, forget and prune on a store a running service owns: the commands ask the owner."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from lifecycle_data import events
from svc import WRITE_KEY, ServiceProcess, call_tool
from telemetry_mcp.analytics.common import utcnow
from telemetry_mcp.cli import main


def _send(svc: ServiceProcess, batch: list[dict[str, object]]) -> None:
    r = svc.post("/api/v1/events", {"events": batch}, headers={"authorization": f"Bearer {WRITE_KEY}"})
    assert r.status_code == 200 and r.json()["accepted"] == len(batch), r.text


async def test_lifecycle_commands_on_an_owned_store_are_done_by_the_owner(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "owned.duckdb"
    with ServiceProcess(db) as svc:
        _send(svc, events(2_000, utcnow() - timedelta(days=120), days=119, users=10))
        for path in ("/admin/export", "/admin/forget", "/admin/prune"):
            assert httpx.post(f"{svc.url}{path}", json={}, timeout=10).status_code == 401

        assert main(["prune", "--db", str(db), "--dry-run"]) == 0
        captured = capsys.readouterr()
        assert captured.out.startswith("would delete ") and "done by the store's owner" in captured.err

        assert main(["forget", "--db", str(db), "user-1"]) == 0
        forgotten = capsys.readouterr().out
        assert forgotten.startswith("forgot 1 user(s): ")
        user_hash = forgotten.split("(raw id ")[1].split(")")[0]

        out = tmp_path / "owned.jsonl"
        assert main(["export", "--db", str(db), str(out)]) == 0
        assert capsys.readouterr().out.startswith("exported ")
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        assert lines and all(e["user_id_hash"] != user_hash for e in lines)

        assert main(["prune", "--db", str(db)]) == 0
        assert capsys.readouterr().out.startswith("deleted ")
        stats = await call_tool(svc.url, "get_realtime_stats", {})
        oldest = stats["storage"]["oldest_event"]
        assert oldest >= (utcnow() - timedelta(days=90)).isoformat()[:10]
