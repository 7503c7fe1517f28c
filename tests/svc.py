"""A real `telemetry-mcp serve` subprocess for tests, and an MCP client of it over Streamable HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from mcp import Client

from wire import server_env

WRITE_KEY = "test-write-key-0123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServiceProcess:
    """`python -m telemetry_mcp serve --db DB --port P --write-key K`, ready when /ready answers."""

    def __init__(
        self,
        db: Path | str,
        *args: str,
        port: int | None = None,
        write_key: str | None = WRITE_KEY,
        host: str = "127.0.0.1",
        wait: bool = True,
        env: dict[str, str] | None = None,
    ) -> None:
        self.db = Path(db)
        self.port = port or free_port()
        self.host = host
        self.write_key = write_key
        cmd = [sys.executable, "-m", "telemetry_mcp", "serve", "--db", str(db), "--host", host]
        cmd += ["--port", str(self.port), *args]
        if write_key:
            cmd += ["--write-key", write_key]
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**server_env(), **(env or {})},
        )
        if wait:
            self.wait_ready()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited with {self.proc.returncode}: {self.stderr()}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"serve did not become ready in {timeout} s")

    def post(self, path: str, body: Any, **kwargs: Any) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"content-type": "application/json", **kwargs.pop("headers", {})}
        return httpx.post(f"{self.url}{path}", content=content, headers=headers, timeout=30, **kwargs)

    def stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return "(running)"
        return self.proc.stderr.read().decode(errors="replace")[-3000:]

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> ServiceProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


async def call_tool(url: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
    """One tool call through a fresh MCP session over Streamable HTTP; its structured content."""
    async with Client(f"{url}/mcp") as client:
        result = await client.call_tool(name, args)
        assert not result.is_error, result.content
        assert result.structured_content is not None
        return result.structured_content
