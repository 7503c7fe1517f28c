"""A raw JSON-RPC stdio peer for wire-level tests: real subprocess, bounded waits, no SDK in between."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PROTOCOL = "2025-06-18"


def server_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMETRY_MCP_")}
    env.update(extra)
    return env


class RawServer:
    """`python -m telemetry_mcp --db PATH` driven line by line."""

    def __init__(self, db: Path | str, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "telemetry_mcp", "--db", str(db), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env or server_env(),
        )
        self._next_id = 0
        self._out = b""  # stdout read but not yet returned as lines

    def send_line(self, line: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + b"\n")
        self.proc.stdin.flush()

    def read(self, timeout: float = 30.0) -> dict[str, Any]:
        """The next stdout line as JSON, or AssertionError after `timeout` seconds.

        Reads the pipe unbuffered into a buffer of its own: a buffered readline() after select()
        would pull two answers written together into Python's buffer, and select() would then
        wait for the second one until more output came.
        """
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._out:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no answer within {timeout} s")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 1 << 16)
                assert chunk, f"server closed stdout; stderr: {self.stderr_tail()}"
                self._out += chunk
        line, _, self._out = self._out.partition(b"\n")
        return json.loads(line)  # type: ignore[no-any-return]

    def request(
        self, method: str, params: dict[str, Any] | None = None, timeout: float = 30.0
    ) -> dict[str, Any]:
        self._next_id += 1
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        if params is not None:
            msg["params"] = params
        self.send_line(json.dumps(msg).encode())
        reply = self.read(timeout)
        assert reply.get("id") == self._next_id, reply
        return reply

    def initialize(self) -> dict[str, Any]:
        reply = self.request(
            "initialize",
            {
                "protocolVersion": PROTOCOL,
                "capabilities": {},
                "clientInfo": {"name": "wire-test", "version": "0"},
            },
        )
        self.send_line(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode())
        return reply

    def call(self, tool: str, arguments: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
        return self.request("tools/call", {"name": tool, "arguments": arguments}, timeout)

    def rest_of_stdout(self) -> bytes:
        """Everything on stdout not yet returned by read() (call once the server has exited)."""
        assert self.proc.stdout is not None
        rest, self._out = self._out + self.proc.stdout.read(), b""
        return rest

    def stderr_tail(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return "(running)"
        return self.proc.stderr.read().decode(errors="replace")[-2000:]

    def close(self) -> int:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()
        return self.proc.returncode

    def __enter__(self) -> RawServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
