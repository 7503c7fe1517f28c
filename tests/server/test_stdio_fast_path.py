"""The bridge's quick path (the guard's cheap envelope check, the client's bytes forwarded as sent)
answers every line exactly as the SDK's own path does: the same lines to a bridge on a file store
and to a `:memory:` server (no bridge: the guard's full JSON-RPC validation, the SDK's stdio loop)."""

import json
from pathlib import Path
from typing import Any

from wire import RawServer


def _call(rid: str, arguments: str) -> bytes:
    return (
        '{"jsonrpc":"2.0","id":"' + rid + '","method":"tools/call","params":{"name":"ingest_events",'
        '"arguments":' + arguments + "}}"
    ).encode()


def _events(n: int, prefix: str, *, ids: bool = True) -> list[dict[str, Any]]:
    return [
        {**({"event_id": f"{prefix}-{i}"} if ids else {}), "event_type": "component_load",
         "component": "Button", "duration_ms": i, "user_id": f"user-{i % 7}",
         "timestamp": 1_700_000_000_000 + i, "properties": {"k": [i, {"v": "x"}]}}
        for i in range(n)
    ]  # fmt: skip


def _batch(rid: str, events: list[str], extra: str = "") -> bytes:
    return _call(rid, '{"events":[' + ",".join(events) + "]" + extra + "}")


def _nested(depth: int) -> str:
    return '{"event_type":"x","properties":{"a":' + "[" * depth + "]" * depth + "}}"


def _lines() -> list[bytes]:
    good = [json.dumps(e) for e in _events(300, "good")]
    no_ids = [json.dumps(e) for e in _events(20, "anon", ids=False)]
    bad = [
        *good[:5],
        '{"name":"no type"}',
        '{"event_type":"x","timestamp":"yesterday"}',
        '"a string"',
        "5",
        "null",
        "[]",
        '{"event_type":"x","duration_ms":NaN}',
        '{"event_type":"x","duration_ms":1e400}',
        '{"event_type":"x","value":123456789012345678901234567890}',
        '{"event_type":"x","name":"nul \\u0000 inside"}',
        '{"event_type":"x","event_type":"duplicate key","name":"d"}',
        '{"event_type":"x","properties":' + '{"a":' * 40 + "1" + "}" * 40 + "}",
    ]
    lines = [
        _batch("valid", good),
        _batch("valid-again", good),  # all duplicates now
        _batch("without-ids", no_ids),
        _batch("invalid-events", bad),
        _batch("with-service", good[:3], ',"service":"svc","service_version":"1.2","do_not_track":false'),
        _batch("do-not-track", good[:3], ',"do_not_track":true'),
        _call("empty", '{"events":[]}'),
        _call("not-a-list", '{"events":"abc"}'),
        _call("missing", "{}"),
        _call("service-int", '{"events":[{"event_type":"x"}],"service":5}'),
        _call("dnt-string", '{"events":[{"event_type":"x"}],"do_not_track":"yes"}'),
        _call("extra-arg", '{"events":[{"event_type":"x"}],"bogus":1}'),
        _call("args-list", "[1,2]"),
        _call("args-null", "null"),
        b'{"jsonrpc":"2.0","id":"no-args","method":"tools/call","params":{"name":"ingest_events"}}',
        b'{"jsonrpc":"2.0","id":"unknown-tool","method":"tools/call","params":{"name":"nope","arguments":{}}}',
        b'{"jsonrpc":"2.0","id":"params-list","method":"tools/call","params":[1]}',
        b'{"jsonrpc":"2.0","id":1.5,"method":"tools/call","params":{"name":"ingest_events","arguments":{}}}',
        b'{"jsonrpc":"1.0","id":"old","method":"tools/call","params":{"name":"ingest_events","arguments":{}}}',
        b'{"jsonrpc":"2.0","id":"no-method","params":{"name":"ingest_events"}}',
        b'{"jsonrpc":"2.0","id":true,"method":"ping","params":{}}',
        b'{"jsonrpc":"2.0","id":"ping-params","method":"ping","params":{"x":[1,{"y":NaN}]}}',
        # around the parser's nesting limit (~196 levels in all): some parse, the rest are salvaged
        *(_batch(f"deep-{d}", [*good[:3], _nested(d)]) for d in (150, 187, 188, 189, 190, 196, 250, 1000)),
        _batch("surrogate-event", [*good[:3], '{"event_type":"x","name":"\\ud800 broken"}']),
        _batch("surrogate-service", good[:3], ',"service":"\\udc00"'),
        _batch("bad-utf8", [*good[:3], '{"event_type":"x","name":"\xff"}']),
        b'{"jsonrpc":"2.0","id":"garbage","method":"tools/call", garbage',
    ]
    return [line.replace("\xff".encode(), b"\xff") for line in lines]


def _answers(db: Path | str) -> list[dict[str, Any]]:
    """The answer to each line (a ping after each one tells when it is done; the bridge may answer
    the two in either order)."""
    with RawServer(db) as server:
        server.initialize()
        out = []
        for n, line in enumerate(_lines()):
            server.send_line(line)
            server.send_line(b'{"jsonrpc":"2.0","id":"fence-%d","method":"ping"}' % n)
            replies = []
            while True:
                reply = server.read(timeout=60)
                if reply.get("id") == f"fence-{n}":
                    break
                replies.append(reply)
            if not replies:
                try:
                    replies.append(server.read(timeout=3))
                except AssertionError:
                    replies.append({"no answer": True})
            assert len(replies) == 1, replies
            out.append(replies[0])
        return out


def test_every_valid_invalid_and_hostile_line_gets_the_answer_the_sdk_path_gives(tmp_path: Path) -> None:
    bridged = _answers(tmp_path / "bridged.duckdb")
    direct = _answers(":memory:")
    for line, a, b in zip(_lines(), bridged, direct, strict=True):
        assert a == b, line[:200]
    first = bridged[0]["result"]["structuredContent"]
    assert (first["accepted"], bridged[1]["result"]["structuredContent"]["duplicates"]) == (300, 300)


def test_the_quick_check_takes_the_valid_batches_and_leaves_the_hostile_lines_to_the_full_path() -> None:
    from telemetry_mcp.server.stdio import _quick_request

    taken = {line[:80] for line in _lines() if _quick_request(line) is not None}
    assert any(b'"id":"valid"' in head for head in taken)
    assert any(b'"id":"invalid-events"' in head for head in taken)
    for name in (
        b"deep-250",
        b"deep-1000",
        b"surrogate-event",
        b"bad-utf8",
        b"garbage",
        b"params-list",
        b"old",
    ):
        assert not any(b'"id":"' + name + b'"' in head for head in taken), name
