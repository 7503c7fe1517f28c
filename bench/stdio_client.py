"""A raw JSON-RPC client over a server's stdio: what an MCP client sees, with no SDK in between.

Each call is timed from the write of its request line to the read of the whole answer line;
parsing the answer happens after the clock stops. stderr goes to a file (a pipe could fill up).
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

PROTOCOL = "2025-11-25"  # the newest revision reachable through the initialize handshake


class ServerGone(RuntimeError):
    """The server closed its stdout or did not answer in time."""


@dataclass
class Answer:
    """One request's answer: the raw line, its parsed message, and the time it took."""

    seconds: float
    nbytes: int
    message: dict[str, Any]

    @property
    def result(self) -> dict[str, Any]:
        res = self.message.get("result")
        return res if isinstance(res, dict) else {}

    @property
    def is_error(self) -> bool:
        return "error" in self.message or bool(self.result.get("isError"))

    @property
    def error_text(self) -> str:
        if "error" in self.message:
            err = self.message["error"]
            return f"JSON-RPC error {err.get('code')}: {err.get('message')}"
        parts = [c.get("text", "") for c in self.result.get("content", []) if isinstance(c, dict)]
        return " ".join(p for p in parts if p) or "(is_error without text)"

    @property
    def structured(self) -> dict[str, Any] | None:
        sc = self.result.get("structuredContent")
        return sc if isinstance(sc, dict) else None


class StdioPeer:
    """One server subprocess driven line by line."""

    def __init__(
        self, argv: list[str], env: dict[str, str], stderr_path: Path, cwd: Path | None = None
    ) -> None:
        self.argv = argv
        self.started = time.perf_counter()
        self._stderr: IO[bytes] = stderr_path.open("wb")
        self.stderr_path = stderr_path
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=env, cwd=cwd
        )
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self._out_fd = self.proc.stdout.fileno()
        self._stdin = self.proc.stdin
        self._buf = bytearray()
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._out_fd, selectors.EVENT_READ)
        self._next_id = 0

    @property
    def pid(self) -> int:
        return self.proc.pid

    # ------------------------------------------------------------------ framing

    def _read_line(self, deadline: float) -> bytes:
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line = bytes(self._buf[:nl])
                del self._buf[: nl + 1]
                return line
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise ServerGone(f"no answer within the time limit; stderr: {self.stderr_tail()}")
            if not self._sel.select(timeout=remaining):
                continue
            chunk = os.read(self._out_fd, 1 << 20)
            if not chunk:
                raise ServerGone(
                    f"server closed stdout (exit {self.proc.poll()}); stderr: {self.stderr_tail()}"
                )
            self._buf += chunk

    def send_line(self, line: bytes) -> None:
        self._stdin.write(line + b"\n")
        self._stdin.flush()

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def exchange(self, line: bytes, request_id: int, timeout: float = 600.0) -> Answer:
        """Send one request line and wait for the answer with that id (notifications are skipped)."""
        started = time.perf_counter()
        self.send_line(line)
        deadline = started + timeout
        while True:
            raw = self._read_line(deadline)
            if not raw.strip():
                continue
            elapsed = time.perf_counter() - started
            message = json.loads(raw)
            if message.get("id") == request_id and ("result" in message or "error" in message):
                return Answer(elapsed, len(raw), message)

    def request(self, method: str, params: dict[str, Any] | None = None, timeout: float = 600.0) -> Answer:
        rid = self.new_id()
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        return self.exchange(json.dumps(msg, separators=(",", ":")).encode(), rid, timeout)

    def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        self.send_line(json.dumps(msg, separators=(",", ":")).encode())

    # ------------------------------------------------------------------ MCP

    def initialize(self, timeout: float = 120.0) -> Answer:
        answer = self.request(
            "initialize",
            {
                "protocolVersion": PROTOCOL,
                "capabilities": {},
                "clientInfo": {"name": "telemetry-mcp-bench", "version": "1"},
            },
            timeout,
        )
        if answer.is_error:
            raise ServerGone(f"initialize failed: {answer.error_text}")
        self.notify("notifications/initialized")
        return answer

    def list_tools(self, timeout: float = 60.0) -> list[dict[str, Any]]:
        tools: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            answer = self.request("tools/list", {"cursor": cursor} if cursor else {}, timeout)
            if answer.is_error:
                raise ServerGone(f"tools/list failed: {answer.error_text}")
            tools += answer.result.get("tools", [])
            cursor = answer.result.get("nextCursor")
            if not cursor:
                return tools

    def call(self, tool: str, arguments: dict[str, Any], timeout: float = 600.0) -> Answer:
        return self.request("tools/call", {"name": tool, "arguments": arguments}, timeout)

    def call_line(self, request_id: int, tool: str, arguments_json: bytes) -> bytes:
        """A tools/call request line whose arguments are already JSON (no client-side encoding cost)."""
        return (
            b'{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"%s","arguments":'
            % (request_id, tool.encode())
            + arguments_json
            + b"}}"
        )

    # ------------------------------------------------------------------ teardown

    def stderr_tail(self, chars: int = 1500) -> str:
        try:
            self._stderr.flush()
            return self.stderr_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(stderr unavailable)"

    def close(self, timeout: float = 30.0) -> int:
        """Close stdin (the stdio way to say goodbye) and wait; kill only if it will not exit."""
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self._stdin.close()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._sel.close()
        if self.proc.stdout:
            self.proc.stdout.close()
        self._stderr.close()
        return self.proc.returncode

    def __enter__(self) -> StdioPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
