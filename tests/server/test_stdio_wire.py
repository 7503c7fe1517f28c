"""Real stdio subprocesses: persistence across restarts, kill -9 durability, the store lock, and
hostile lines that the SDK's own reader would silently drop."""

import json
import os
import signal
from pathlib import Path

from telemetry_mcp.config import load_settings
from telemetry_mcp.store import Store
from wire import RawServer


def _events(n: int, prefix: str) -> list[dict[str, object]]:
    return [
        {"event_id": f"{prefix}-{i}", "event_type": "component_load", "component": "Button",
         "duration_ms": i, "user_id": f"user-{i % 7}", "timestamp": 1_700_000_000_000 + i}
        for i in range(n)
    ]  # fmt: skip


def _count(db: Path) -> int:
    with Store(load_settings({"db": str(db)}, env={})) as store:
        return int(store.fetch("SELECT count(*) FROM events")[0][0])


def test_events_ingested_over_stdio_are_there_after_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    with RawServer(db) as server:
        server.initialize()
        reply = server.call("ingest_events", {"events": _events(250, "a")})
        assert reply["result"]["structuredContent"]["accepted"] == 250
    with RawServer(db) as server:
        server.initialize()
        again = server.call("ingest_events", {"events": _events(250, "a")[:10]})
        # the restarted server sees the stored ids: all ten are duplicates
        assert again["result"]["structuredContent"]["accepted"] == 0
        assert again["result"]["structuredContent"]["duplicates"] == 10
    assert _count(db) == 250


def test_acknowledged_events_survive_kill_9_right_after_the_answer(tmp_path: Path) -> None:
    db = tmp_path / "k.duckdb"
    server = RawServer(db)
    server.initialize()
    acknowledged = 0
    for batch in range(3):
        reply = server.call("ingest_events", {"events": _events(1000, f"b{batch}")})
        acknowledged += reply["result"]["structuredContent"]["accepted"]
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait(timeout=10)
    server.close()
    assert acknowledged == 3000
    assert _count(db) == 3000


def test_a_second_stdio_server_on_the_same_file_serves_its_client_through_the_first(tmp_path: Path) -> None:
    db = tmp_path / "shared.duckdb"
    with RawServer(db) as first, RawServer(db) as second:
        first.initialize()
        second.initialize()
        names = lambda s: sorted(t["name"] for t in s.request("tools/list", {})["result"]["tools"])  # noqa: E731
        assert names(second) == names(first)
        reply = second.call("ingest_events", {"events": _events(5, "via-second")})
        assert reply["result"]["structuredContent"]["accepted"] == 5
        reply = first.call("ingest_events", {"events": _events(3, "via-first")})
        assert reply["result"]["structuredContent"]["accepted"] == 3
        for server in (first, second):
            stats = server.call("get_realtime_stats", {})["result"]["structuredContent"]
            assert stats["storage"]["total_events"] == 8
    assert _count(db) == 8


def test_hostile_lines_get_a_json_rpc_error_and_the_server_keeps_serving(tmp_path: Path) -> None:
    with RawServer(tmp_path / "h.duckdb", "--max-request-bytes", "200000") as server:
        server.initialize()
        deep = "[" * 5000 + "]" * 5000
        cases = {
            "nested too deeply": '{"jsonrpc":"2.0","id":"deep","method":"tools/list","params":{"x":'
            + deep
            + "}}",
            "lone UTF-16 surrogate": '{"jsonrpc":"2.0","id":"sur","method":"tools/call","params":{"name":'
            '"describe_events","arguments":{"since":"\\ud800"}}}',
            "exceeds the limit of 200,000 bytes": '{"jsonrpc":"2.0","id":"big","method":"tools/call","params":'
            '{"name":"ingest_events","arguments":{"events":[{"event_type":"x","name":"'
            + "a" * 300_000
            + '"}]}}}',
            "malformed JSON": '{"jsonrpc":"2.0","id":"bad","method":"tools/call", garbage',
        }
        for expected, line in cases.items():
            server.send_line(line.encode())
            reply = server.read(timeout=20)
            assert "error" in reply, reply
            assert expected in reply["error"]["message"], reply
        ok = server.call("ingest_events", {"events": [{"event_type": "still_alive"}]})
        assert ok["result"]["structuredContent"]["accepted"] == 1


def test_one_event_nested_1000_deep_and_one_lone_surrogate_are_rejected_alone_in_a_1000_event_batch(
    tmp_path: Path,
) -> None:
    db = tmp_path / "w.duckdb"
    events = [json.dumps(e) for e in _events(1000, "w")]
    events[10] = '{"event_type":"x","properties":{"a":' + "[" * 1000 + "]" * 1000 + "}}"
    events[500] = '{"event_type":"x","name":"\\ud800 broken"}'
    line = (
        '{"jsonrpc":"2.0","id":"mixed","method":"tools/call","params":{"name":"ingest_events",'
        '"arguments":{"events":[' + ",".join(events) + "]}}}"
    )
    with RawServer(db) as server:
        server.initialize()
        server.send_line(line.encode())
        reply = server.read(timeout=60)
        answer = reply["result"]["structuredContent"]
        assert (answer["accepted"], answer["rejected"]) == (998, 2)
        assert answer["errors"] == [
            {"index": 10, "reason": "properties: nested deeper than 32 levels"},
            {
                "index": 500,
                "reason": "a string holds a lone UTF-16 surrogate escape (e.g. \\ud800): not valid Unicode",
            },
        ]
    assert _count(db) == 998


def test_stdout_carries_only_protocol_frames(tmp_path: Path) -> None:
    with RawServer(tmp_path / "o.duckdb", "--log-level", "DEBUG") as server:
        server.initialize()
        server.call("ingest_events", {"events": [{"event_type": "x"}, {"event_type": "BAD"}]})
        server.call("no_such_tool", {})
        assert server.proc.stdin is not None
        server.proc.stdin.close()
        server.proc.wait(timeout=20)
        rest = server.rest_of_stdout().decode()
        for line in filter(None, rest.splitlines()):
            assert json.loads(line)["jsonrpc"] == "2.0"
