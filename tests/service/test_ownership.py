"""One owner per store, seen from outside: real processes sharing one store file, an owner killed
with SIGKILL mid-load, a successor taking over, and every acknowledged event stored exactly once."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx

from svc import WRITE_KEY, ServiceProcess, call_tool, free_port
from telemetry_mcp.config import load_settings
from telemetry_mcp.store import Store
from wire import RawServer, server_env


def _events(n: int, prefix: str) -> list[dict[str, object]]:
    return [
        {"event_id": f"{prefix}-{i}", "event_type": "component_load", "component": "Button",
         "duration_ms": i, "user_id": f"user-{i % 7}"}
        for i in range(n)
    ]  # fmt: skip


def _stored(db: Path) -> tuple[int, set[str]]:
    with Store(load_settings({"db": str(db)}, env={})) as store:
        rows = store.fetch("SELECT event_id FROM events")
    return len(rows), {r[0] for r in rows}


def _accepted(reply: dict[str, object]) -> int:
    return int(reply["result"]["structuredContent"]["accepted"])  # type: ignore[index]


def test_the_owner_file_names_a_live_owner_and_is_readable_by_the_store_user_only(tmp_path: Path) -> None:
    db = tmp_path / "o.duckdb"
    with ServiceProcess(db) as svc:
        owner = db.with_name("o.duckdb.owner")
        info = json.loads(owner.read_text())
        assert info["pid"] == svc.proc.pid
        assert info["url"] == svc.url and info["kind"] == "serve"
        assert stat.S_IMODE(owner.stat().st_mode) == 0o600
        health = httpx.get(f"{svc.url}/health", timeout=5).json()
        assert health["owner_id"] == info["owner_id"]
    assert not owner.exists()  # withdrawn on a clean exit


async def test_two_stdio_servers_and_a_collector_share_one_store_and_survive_a_sigkill_of_the_owner(
    tmp_path: Path,
) -> None:
    db = tmp_path / "shared.duckdb"
    svc = ServiceProcess(db)
    first, second = RawServer(db), RawServer(db)
    try:
        first.initialize()
        second.initialize()
        acknowledged: set[str] = set()
        lock = threading.Lock()
        stop = threading.Event()
        collector_errors: list[str] = []

        def send_posthog() -> None:
            """A PostHog-style sender that keeps retrying, as the SDKs do."""
            with httpx.Client(timeout=10) as client:
                while not stop.is_set():
                    ids = [str(uuid.uuid4()) for _ in range(50)]
                    body = {
                        "api_key": WRITE_KEY,
                        "batch": [
                            {"event": "feature_used", "distinct_id": "sdk-user", "uuid": i} for i in ids
                        ],
                    }
                    try:
                        r = client.post(f"{svc.url}/batch/", json=body)
                    except httpx.HTTPError as exc:
                        collector_errors.append(type(exc).__name__)
                        time.sleep(0.05)
                        continue
                    if r.status_code == 200:
                        with lock:
                            acknowledged.update(ids)
                    else:
                        time.sleep(0.05)

        sender = threading.Thread(target=send_posthog, daemon=True)
        sender.start()
        for k in range(4):
            for peer, name in ((first, "a"), (second, "b")):
                batch = _events(100, f"{name}{k}")
                if _accepted(peer.call("ingest_events", {"events": batch})) == 100:
                    acknowledged.update(str(e["event_id"]) for e in batch)
        svc.kill()  # SIGKILL mid-load: the collector sender is still posting
        for k in range(4, 8):
            for peer, name in ((first, "a"), (second, "b")):
                batch = _events(100, f"{name}{k}")
                reply = peer.call("ingest_events", {"events": batch}, timeout=90)
                assert _accepted(reply) == 100, reply
                acknowledged.update(str(e["event_id"]) for e in batch)
        # A successor owns the store now, at the old owner's loopback address: the sender resumes.
        deadline = time.monotonic() + 30
        before = len(acknowledged)
        while len(acknowledged) < before + 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        sender.join(timeout=30)
        assert len(acknowledged) >= before + 200, "the collector address did not come back after the kill"
        owner = json.loads(db.with_name("shared.duckdb.owner").read_text())
        assert owner["pid"] in (first.proc.pid, second.proc.pid)
        stats = first.call("get_realtime_stats", {})["result"]["structuredContent"]
        total = stats["storage"]["total_events"]
        assert (
            second.call("get_realtime_stats", {})["result"]["structuredContent"]["storage"]["total_events"]
            >= total
        )
    finally:
        for peer in (first, second):
            peer.close()
        svc.kill()
    count, ids = _stored(db)
    assert acknowledged <= ids, f"{len(acknowledged - ids)} acknowledged events are missing"
    assert count == len(ids), "an event was stored twice"


async def test_serve_takes_the_store_from_a_stdio_owner_which_keeps_serving_its_client(
    tmp_path: Path,
) -> None:
    db = tmp_path / "y.duckdb"
    with RawServer(db) as stdio:
        stdio.initialize()
        assert _accepted(stdio.call("ingest_events", {"events": _events(10, "before")})) == 10
        owner = json.loads(db.with_name("y.duckdb.owner").read_text())
        assert owner["kind"] == "stdio" and owner["pid"] == stdio.proc.pid
        with ServiceProcess(db) as svc:
            owner = json.loads(db.with_name("y.duckdb.owner").read_text())
            assert owner["kind"] == "serve" and owner["pid"] == svc.proc.pid
            assert _accepted(stdio.call("ingest_events", {"events": _events(10, "after")})) == 10
            described = await call_tool(svc.url, "describe_events", {})
            assert described["total_events"] == 20


def test_a_stale_owner_file_after_a_kill_9_does_not_stop_the_next_server(tmp_path: Path) -> None:
    db = tmp_path / "stale.duckdb"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    db.with_name("stale.duckdb.owner").write_text(
        json.dumps({"pid": int(dead.stdout), "url": f"http://127.0.0.1:{free_port()}", "secret": "x" * 20,
                    "owner_id": "deadbeefdeadbeef", "kind": "serve", "started_at": 0.0})
    )  # fmt: skip
    with RawServer(db) as server:
        server.initialize()
        assert _accepted(server.call("ingest_events", {"events": _events(3, "s")})) == 3
        owner = json.loads(db.with_name("stale.duckdb.owner").read_text())
        assert owner["pid"] == server.proc.pid


def test_a_second_serve_waits_as_a_standby_and_takes_over_when_the_first_stops(tmp_path: Path) -> None:
    db = tmp_path / "standby.duckdb"
    with ServiceProcess(db) as first:
        assert first.post("/api/v1/events", {"events": _events(5, "one")},
                          headers={"authorization": f"Bearer {WRITE_KEY}"}).status_code == 200  # fmt: skip
        standby = ServiceProcess(db, wait=False)
        try:
            deadline = time.monotonic() + 30
            while "waiting to take over" not in _peek_stderr(standby) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert standby.proc.poll() is None
            first.stop()
            standby.wait_ready(timeout=30)
            r = standby.post("/api/v1/events", {"events": _events(5, "two")},
                             headers={"authorization": f"Bearer {WRITE_KEY}"})  # fmt: skip
            assert r.json()["accepted"] == 5
        finally:
            standby.stop()
    count, _ = _stored(db)
    assert count == 10


def _peek_stderr(svc: ServiceProcess) -> str:
    """What the process wrote to stderr so far, without waiting for it to exit."""
    assert svc.proc.stderr is not None
    os.set_blocking(svc.proc.stderr.fileno(), False)
    chunk = svc.proc.stderr.read() or b""
    svc.__dict__.setdefault("_err", b"")
    svc.__dict__["_err"] += chunk
    return svc.__dict__["_err"].decode(errors="replace")


def test_serve_on_a_public_address_without_a_token_refuses_to_start_with_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "telemetry_mcp", "serve", "--db", str(tmp_path / "p.duckdb"),
         "--host", "0.0.0.0", "--port", str(free_port())],
        capture_output=True, text=True, timeout=60, env=server_env(),
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "without a token" in proc.stderr and "TELEMETRY_MCP_TOKEN" in proc.stderr
    assert not (tmp_path / "p.duckdb").exists()  # refused before the store was touched


async def test_beyond_loopback_mcp_and_metrics_need_the_token_and_the_collector_its_write_key(
    tmp_path: Path,
) -> None:
    token = "test-token-abcdefgh"
    with ServiceProcess(tmp_path / "t.duckdb", "--token", token, host="0.0.0.0") as svc:
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                           "clientInfo": {"name": "t", "version": "1"}}}  # fmt: skip
        accept = {"accept": "application/json, text/event-stream"}
        assert svc.post("/mcp", init, headers=accept).status_code == 401
        assert (
            svc.post("/mcp", init, headers={**accept, "authorization": "Bearer wrong-token"}).status_code
            == 401
        )
        assert (
            svc.post("/mcp", init, headers={**accept, "authorization": f"Bearer {token}"}).status_code == 200
        )
        assert httpx.get(f"{svc.url}/metrics", timeout=5).status_code == 401
        ok = httpx.get(f"{svc.url}/metrics", headers={"authorization": f"Bearer {token}"}, timeout=5)
        assert ok.status_code == 200 and "telemetry_events_received_total" in ok.text
        # the token is not a write key, and the write key does not open /mcp
        r = svc.post("/batch/", {"api_key": token, "batch": [{"event": "x", "distinct_id": "u"}]})
        assert r.status_code == 401
        r = svc.post("/mcp", init, headers={**accept, "authorization": f"Bearer {WRITE_KEY}"})
        assert r.status_code == 401
        assert httpx.get(f"{svc.url}/health", timeout=5).status_code == 200


async def test_import_on_a_store_a_service_owns_is_done_by_the_owner(tmp_path: Path) -> None:
    db = tmp_path / "imp.duckdb"
    data = tmp_path / "events.jsonl"
    data.write_text("".join(json.dumps(e) + "\n" for e in _events(40, "file")))
    with ServiceProcess(db) as svc:
        done = subprocess.run(
            [sys.executable, "-m", "telemetry_mcp", "import", "--db", str(db), str(data)],
            capture_output=True, text=True, timeout=120, env=server_env(),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "accepted 40" in done.stderr and f"owner at {svc.url}" in done.stderr
        described = await call_tool(svc.url, "describe_events", {})
        assert described["total_events"] == 40


def test_serve_on_a_port_in_use_exits_with_one_line_naming_it(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "telemetry_mcp", "serve", "--db", str(tmp_path / "p.duckdb"), "--port", str(port)],
            capture_output=True, text=True, timeout=60, env=server_env(),
        )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert f"127.0.0.1:{port}" in proc.stderr and "--port" in proc.stderr
