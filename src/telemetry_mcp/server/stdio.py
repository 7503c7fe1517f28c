"""A stdio transport that answers hostile lines instead of dropping them.

The SDK's stdio reader silently drops a line it cannot parse (nesting deeper than ~200 levels,
a lone surrogate escape, an oversized body): the client would wait forever. This reader parses
each line itself and answers such a line at once with a JSON-RPC error naming the problem.
Only protocol frames reach stdout; stray writes to fd 1 are diverted to stderr while serving.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

import anyio
import mcp_types as types
import pydantic_core
from mcp.shared._context_streams import create_context_streams
from mcp.shared.message import SessionMessage

from telemetry_mcp.events.model import WIRE_REJECTED, _depth_exceeds

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
_ID = re.compile(rb'"id"\s*:\s*(-?\d+|"(?:[^"\\]|\\.){0,200}")')


def _request_id(line: bytes) -> str | int | None:
    """Best-effort id of a line we refuse to parse fully (looked for at both ends)."""
    for chunk in (line[:4096], line[-4096:]):
        m = _ID.search(chunk)
        if m:
            raw = m.group(1)
            try:
                value = json.loads(raw)
            except ValueError:
                return None
            return value if isinstance(value, str | int) else None
    return None


def _reject(line: bytes, max_bytes: int) -> tuple[int, str] | None:
    """Why this raw line must be refused before the SDK sees it, or None when it is fine."""
    if len(line) > max_bytes:
        return (
            INVALID_REQUEST,
            f"request of {len(line):,} bytes exceeds the limit of {max_bytes:,} bytes "
            "(TELEMETRY_MCP_MAX_REQUEST_BYTES); send fewer events per call or use `telemetry-mcp import`",
        )
    if b"\\ud" in line or b"\\uD" in line:  # only then can a lone surrogate hide in the escapes
        try:
            json.dumps(json.loads(line), ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return (
                PARSE_ERROR,
                "request contains a lone UTF-16 surrogate escape (e.g. \\ud800): not valid Unicode",
            )
        except (ValueError, RecursionError):
            pass
    return None


async def _respond_error(write: Any, request_id: str | int | None, code: int, message: str) -> None:
    if request_id is None:
        return  # a notification (or unknowable id): JSON-RPC sends no response
    err = types.JSONRPCError(jsonrpc="2.0", id=request_id, error=types.ErrorData(code=code, message=message))
    await write.send(SessionMessage(err))


@dataclass(frozen=True)
class RawLine:
    """A client line that passed the guard, as sent (raw mode: a bridge forwards the bytes unchanged)."""

    data: bytes
    message: Any  # the validated JSON-RPC message (params left out when `parsed` is set)
    parsed: dict[str, Any] | None = None  # the whole message as parsed, when the guard has it


def _quick_request(line: bytes) -> tuple[Any, dict[str, Any]] | None:
    """(message, parsed) of a request or notification with object params, checked without the
    per-union validation of every value in the params, or None to take the full path.

    The parser is the one `validate_json` uses (the same nesting limit, the same refusals), and
    JSON-RPC's `params` is `dict[str, Any]`: any parsed object is valid there, so the envelope is
    checked with the params left out. Whatever this accepts, the full validation accepts too.
    """
    try:
        parsed = pydantic_core.from_json(line)
    except ValueError:
        return None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("params"), dict):
        return None
    try:
        message = types.jsonrpc_message_adapter.validate_python({**parsed, "params": {}}, by_name=False)
    except ValueError:
        return None
    if not isinstance(message, types.JSONRPCRequest | types.JSONRPCNotification):
        return None
    return message, parsed


@asynccontextmanager
async def guarded_stdio(max_bytes: int, *, raw: bool = False) -> AsyncIterator[tuple[Any, Any]]:
    """Like mcp.server.stdio.stdio_server, with hostile-input answers and fd 1 diverted.

    raw: the read stream carries RawLine items (the line's bytes with its validated message), and the
    write stream also takes bytes, each one JSON-RPC message written as one line as it is.
    """
    wire_in: BinaryIO = os.fdopen(os.dup(0), "rb")  # buffered: readline on a raw fd reads byte by byte
    wire_out: BinaryIO = os.fdopen(os.dup(1), "wb", buffering=0)
    # Anything else that writes to fd 1 (a library, a stray print) lands on stderr, not in the stream.
    saved_stdout = os.dup(1)
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    saved_stdin = os.dup(0)
    os.dup2(devnull, 0)
    os.close(devnull)
    read_writer, read_stream = create_context_streams[SessionMessage | RawLine | Exception](0)
    write_stream, write_reader = create_context_streams[SessionMessage | bytes](0)
    line_limit = max_bytes

    async def reader() -> None:
        async with read_writer:
            stream = anyio.wrap_file(wire_in)
            while True:
                line = await stream.readline()
                if not line:
                    return
                if not line.strip():
                    continue
                refused = _reject(line, line_limit)
                if refused is not None and refused[0] == PARSE_ERROR:
                    salvaged = _salvage(line)
                    if salvaged is not None:
                        await read_writer.send(_item(salvaged, None, raw))
                        continue
                if refused is None and raw:
                    quick = _quick_request(line)
                    if quick is not None:
                        await read_writer.send(RawLine(line, quick[0], quick[1]))
                        continue
                if refused is None:
                    try:
                        message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
                    except Exception as exc:
                        salvaged = _salvage(line)
                        if salvaged is not None:
                            await read_writer.send(_item(salvaged, None, raw))
                            continue
                        refused = (PARSE_ERROR, _parse_problem(line, exc))
                    else:
                        await read_writer.send(_item(message, line, raw))
                        continue
                await _respond_error(write_stream, _request_id(line), *refused)

    async def writer() -> None:
        out = anyio.wrap_file(wire_out)
        async with write_reader:
            async for item in write_reader:
                if isinstance(item, bytes):
                    await out.write(item.rstrip(b"\r\n") + b"\n")
                    continue
                data = item.message.model_dump_json(by_alias=True, exclude_unset=True)
                await out.write(data.encode("utf-8", "backslashreplace") + b"\n")

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            tg.start_soon(writer)
            yield read_stream, write_stream
            tg.cancel_scope.cancel()
    finally:
        os.dup2(saved_stdout, 1)
        os.dup2(saved_stdin, 0)
        os.close(saved_stdout)
        os.close(saved_stdin)


def _item(message: Any, line: bytes | None, raw: bool) -> SessionMessage | RawLine:
    if not raw:
        return SessionMessage(message)
    if line is None:  # salvaged: the line as it will be forwarded
        line = message.model_dump_json(by_alias=True, exclude_unset=True).encode("utf-8")
    return RawLine(line, message)


def _parse_problem(line: bytes, exc: Exception) -> str:
    text = str(exc)
    if "recursion" in text.lower() or "depth" in text.lower():
        return "request is nested too deeply to parse (limit ~200 levels; event properties allow 32)"
    try:
        json.loads(line)
    except RecursionError:
        return "request is nested too deeply to parse (limit ~200 levels; event properties allow 32)"
    except ValueError as err:
        return f"malformed JSON: {err}"
    return f"not a valid JSON-RPC message: {text.splitlines()[0][:300]}"


MAX_EVENT_DEPTH = 40  # properties allow 32 levels; deeper events cannot be valid anyway


def _has_lone_surrogate(node: Any) -> bool:
    stack = [node]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def _salvage(line: bytes) -> Any | None:
    """An ingest_events call whose line the JSON-RPC parser refuses because of what some events hold
    (nesting deeper than it parses, a lone surrogate): those events are replaced by a rejection
    marker, so they are rejected by index and the rest of the batch is stored. None otherwise."""
    limit = sys.getrecursionlimit()
    try:
        sys.setrecursionlimit(max(limit, 20_000))
        message = json.loads(line)
    except (ValueError, RecursionError):
        return None
    finally:
        sys.setrecursionlimit(limit)
    if not isinstance(message, dict) or message.get("method") != "tools/call":
        return None
    params = message.get("params")
    if not isinstance(params, dict) or params.get("name") != "ingest_events":
        return None
    args = params.get("arguments")
    if not isinstance(args, dict) or not isinstance(args.get("events"), list):
        return None
    events = args["events"]
    for i, event in enumerate(events):
        if _depth_exceeds(event, MAX_EVENT_DEPTH):
            events[i] = {WIRE_REJECTED: "properties: nested deeper than 32 levels"}
        elif _has_lone_surrogate(event):
            events[i] = {
                WIRE_REJECTED: "a string holds a lone UTF-16 surrogate escape (e.g. \\ud800): not valid Unicode"
            }
    for key in ("service", "service_version"):
        if _has_lone_surrogate(args.get(key)):
            return None
    try:
        text = json.dumps(message, ensure_ascii=False)
        return types.jsonrpc_message_adapter.validate_json(text, by_name=False)
    except Exception:
        return None
