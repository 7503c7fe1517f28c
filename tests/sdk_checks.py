"""What every real-SDK test checks, through the MCP tools of a running `telemetry-mcp serve` only."""

from __future__ import annotations

import asyncio
import importlib
import json
import re
import time
from types import ModuleType
from typing import Any

import pytest

from svc import call_tool

SETUP = "run `bash scripts/test.sh` (it installs the dev extras, the Node SDKs and Chromium)"
HASHED = re.compile(r"^[0-9a-f]{16}$")
IP = "203.0.113.7"  # sent by the tests wherever an SDK lets a caller set an address: never stored


def need_module(name: str) -> ModuleType:
    """A Python SDK, or a test failure saying how to install it (never a skip)."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        pytest.fail(f"{name} is not installed ({exc}): {SETUP}", pytrace=False)


async def tool(url: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
    return await call_tool(url, name, args)


async def sql(url: str, query: str) -> list[list[Any]]:
    out = await tool(url, "run_sql", {"sql": query, "limit": 1000})
    assert not out["truncated"], out["summary"]
    return list(out["rows"])


async def wait_for_events(url: str, expected: int, timeout: float = 20.0) -> None:
    """Poll describe_events until `expected` events are stored (and no more), within `timeout` s."""
    deadline = time.monotonic() + timeout
    total = -1
    while time.monotonic() < deadline:
        total = (await tool(url, "describe_events", {}))["total_events"]
        if total >= expected:
            break
        await asyncio.sleep(0.2)
    assert total == expected, f"{total} events stored after {timeout} s, expected {expected}"


async def counts_by_type(url: str) -> dict[str, int]:
    rows = await sql(url, "SELECT event_type, count(*) FROM events GROUP BY 1")
    return {str(t): int(n) for t, n in rows}


async def events_of(url: str, columns: str = "*") -> list[dict[str, Any]]:
    """Every stored event as a dict (properties parsed), in arrival order."""
    out = await tool(url, "run_sql", {"sql": f"SELECT {columns} FROM events ORDER BY seq", "limit": 1000})
    names = [c["name"] for c in out["columns"]]
    rows = [dict(zip(names, row, strict=True)) for row in out["rows"]]
    for row in rows:
        if isinstance(row.get("properties"), str):
            row["properties"] = json.loads(row["properties"])
    return rows


async def check_user_ids(url: str, raw_ids: dict[str, int]) -> None:
    """user_id is stored hashed (16 hex chars, never the raw id), and a user_id filter given the raw
    id finds exactly that user's events (the tools hash it with the store's salt)."""
    stored = {
        str(u) for (u,) in await sql(url, "SELECT DISTINCT user_id FROM events WHERE user_id IS NOT NULL")
    }
    assert len(stored) == len(raw_ids), stored
    for user in stored:
        assert HASHED.fullmatch(user), user
        assert user not in raw_ids
    for raw, count in raw_ids.items():
        metrics = await tool(url, "collect_metrics", {"filters": [{"field": "user_id", "value": raw}]})
        assert metrics["totals"]["count"] == count, (raw, metrics["summary"])


def _keys(node: Any) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found.update(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def check_privacy(events: list[dict[str, Any]], raw_ids: list[str], secret_keys: set[str]) -> None:
    """No address and no raw user id anywhere; secret-looking keys gone (and listed as redacted)."""
    for event in events:
        text = json.dumps(event)
        assert IP not in text, event
        for raw in raw_ids:
            assert raw not in text, (raw, event)
        keys = _keys(event.get("properties") or {})
        assert not keys & {"ip", "$ip"}, event
        assert not keys & secret_keys, event
    redacted = {p for e in events for p in e.get("redacted_paths") or []}
    for key in secret_keys:
        assert any(p.endswith("." + key) for p in redacted), (key, redacted)
