#!/usr/bin/env python3
"""The service under load: collector throughput (PostHog /batch/) and the stdio bridge's latency.

    python bench/collector.py                  # 60 s per throughput run, 200 calls per bridge path
    python bench/collector.py --quick          # 5 s per run, 30 calls (what run.py --quick does)
    python bench/collector.py --stages         # plus a run with the serve's stages timed (see below)

Throughput: one `telemetry-mcp serve` on a fresh file store; --senders separate processes, each
with its own keep-alive HTTP connection, POST PostHog batches of --batch component events (unique
uuid per event) for --seconds. The senders are a lean load generator, so the cores go to the serve:
a minimal HTTP/1.1 client on a raw socket (`KeepAlive`: one sendall per request, TCP_NODELAY, the
full answer read by Content-Length or chunked; a closed connection is counted as an error and
reconnected); `--client http.client` uses the standard library's HTTPConnection instead. Reported:
events/s acknowledged (HTTP 200), request latency, the CPU the senders and the serve took (the
serve's main process and its descendants, e.g. collector worker processes, apart), and the loss
check: after the serve stopped, the store is opened read-only and stored events must equal 200
answers x batch. Then the same with gzip bodies, and the floor: the same events straight into plain
DuckDB (Arrow table, INSERT … SELECT).

Bridge: tools/list, get_realtime_stats and ping (a) over Streamable HTTP to the serve's /mcp with
a keep-alive raw JSON-RPC client, (b) through a stdio `telemetry-mcp` on the same store (it
forwards to the serve), (c) a stdio `telemetry-mcp` owning a store itself (its own loopback
service). Calls are interleaved so drifting load hits every path alike.

--stages (or TELEMETRY_BENCH_STAGES=1) adds one plain-JSON run whose serve is started through this
file's probe (`--probe-serve`): body decoding, PostHog mapping, prepare (validation + privacy),
group commit and its DuckDB write are wrapped with wall/CPU timers, and the event-loop thread is
cProfiled; nothing in src/ changes. The timers see the serve process only, so that run's serve has
TELEMETRY_MCP_COLLECTOR_WORKERS=0 (prepare in threads of the serve process, no worker processes).

--serve-arg ARG (repeatable; --serve-arg=--flag=value) is passed to the throughput runs'
`telemetry-mcp serve` for experiments and recorded in the report.

Writes <out>/<name>.json and .md and prints the Markdown.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import multiprocessing as mp
import os
import random
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from common import RESULTS, dump_json, log, machine_facts, quantile, server_env
from stdio_client import PROTOCOL, StdioPeer

WRITE_KEY = "bench-write-key-0123456789"
COMPONENTS = [
    "DataGrid",
    "DatePicker",
    "Modal",
    "Toast",
    "NavBar",
    "Chart",
    "Dropdown",
    "Tabs",
    "Tooltip",
    "SearchBox",
    "Sidebar",
    "Carousel",
]
EVENTS = ["component_load", "component_ready", "user_interaction", "state_change", "animation_complete"]
PAGES = ["/dashboard", "/settings/profile", "/reports/weekly", "/projects/42/board", "/checkout"]
USERS_PER_SENDER = 2_500
TEMPLATES_PER_SENDER = 2_000
TARGET_EVENTS_PER_S = 50_000
TARGET_BRIDGE_ADDED_MS = 2.0


# ---------------------------------------------------------------------------------- the events


def _posthog_event(rng: random.Random, sender: int) -> dict[str, Any]:
    user = rng.randrange(USERS_PER_SENDER)
    return {
        "event": rng.choice(EVENTS),
        "distinct_id": f"user-{sender}-{user}",
        "properties": {
            "$session_id": f"0190{sender:04x}-{user:04x}-7000-8000-{rng.randrange(4):012x}",
            "component": rng.choice(COMPONENTS),
            "duration_ms": round(rng.lognormvariate(3.0, 0.8), 2),
            "framework": "react",
            "$lib": "posthog-js",
            "$lib_version": "1.200.2",
            "$os": rng.choice(["Mac OS X", "Windows", "Linux", "iOS", "Android"]),
            "$browser": rng.choice(["Chrome", "Firefox", "Safari"]),
            "$current_url": "https://app.example.com" + rng.choice(PAGES),
            "variant": rng.choice(["a", "b"]),
        },
    }


class Batches:
    """Batch bodies from a pool of event templates: only the uuid and timestamp change per event, so
    building a 100-event body is one byte join (~25 µs; the senders must not starve the server)."""

    def __init__(self, sender: int, batch: int, seed: int = 42) -> None:
        rng = random.Random(seed * 1000 + sender)
        self.sender = sender
        self.batch = batch
        self.count = 0
        self.templates: list[tuple[bytes, bytes, bytes]] = []
        for _ in range(TEMPLATES_PER_SENDER):
            event = _posthog_event(rng, sender)
            event["uuid"] = "\x00"
            event["timestamp"] = "\x01"
            text = json.dumps(event, separators=(",", ":")).encode()
            head, rest = text.split(b"\\u0000")
            mid, tail = rest.split(b"\\u0001")
            self.templates.append((head, mid, tail))
        # body()'s flat join: the uuid's constant prefix baked into the head, the comma into the tail
        prefix = b"%08x-0000-4000-8000-" % sender
        self._fast = [(head + prefix, mid, tail + b",") for head, mid, tail in self.templates]
        self._opening = b'{"api_key":"' + WRITE_KEY.encode() + b'","sent_at":"'

    def body(self) -> bytes:
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z").encode()
        parts = [self._opening, now, b'","batch":[']
        fast = self._fast
        n = len(fast)
        start = self.count
        for i in range(start, start + self.batch):
            head, mid, tail = fast[i % n]
            parts += (head, b"%012x" % i, mid, now, tail)
        self.count = start + self.batch
        if self.batch:
            parts[-1] = parts[-1][:-1] + b"]}"  # the last event's tail: no comma, close the batch
        else:
            parts.append(b"]}")
        return b"".join(parts)

    def rows(self, k: int) -> list[dict[str, Any]]:
        """The next k events as our stored columns (for the plain-DuckDB floor)."""
        out = []
        for _ in range(k):
            event = json.loads(self.body_one())
            p = event["properties"]
            out.append(
                {
                    "event_id": event["uuid"],
                    "ts": datetime.now(UTC).replace(tzinfo=None),
                    "event_type": event["event"],
                    "component": p.pop("component"),
                    "user_id": event["distinct_id"],
                    "session_id": p.pop("$session_id"),
                    "duration_ms": p.pop("duration_ms"),
                    "framework": p.pop("framework"),
                    "os": p.pop("$os"),
                    "page": p.pop("$current_url"),
                    "properties": json.dumps(p, separators=(",", ":")),
                }
            )
        return out

    def body_one(self) -> bytes:
        head, mid, tail = self.templates[self.count % len(self.templates)]
        uid = b"%08x-0000-4000-8000-%012x" % (self.sender, self.count)
        self.count += 1
        return head + uid + mid + datetime.now(UTC).isoformat(timespec="milliseconds").encode() + tail


# ---------------------------------------------------------------------------------- the serve


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Serve:
    """`telemetry-mcp serve` as a subprocess, ready when /ready answers; stopped with SIGTERM.
    `extra_args` go to `telemetry-mcp serve` as given, `env` is added to its environment."""

    def __init__(
        self,
        db: Path,
        stderr: Path,
        probe: Path | None = None,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        import httpx

        self.db = db
        self.port = free_port()
        args = ["serve", "--db", str(db), "--port", str(self.port), "--write-key", WRITE_KEY]
        args += extra_args or []
        self.env = dict(env or {})
        if probe is None:
            argv = [sys.executable, "-m", "telemetry_mcp", *args]
        else:
            argv = [sys.executable, str(Path(__file__).resolve()), "--probe-serve", str(probe), "--", *args]
        self.argv = argv
        self._stderr = stderr.open("wb")
        self.stderr_path = stderr
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._stderr,
            stderr=self._stderr,
            env=server_env(**self.env),
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited {self.proc.returncode}: {self.stderr_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/ready", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"serve was not ready within 120 s: {self.stderr_tail()}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stderr_tail(self, chars: int = 1500) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")[-chars:]

    def cpu_seconds(self) -> tuple[float, float]:
        """(main process, descendants) CPU seconds, user + system. Descendants are the live ones
        (children recursively: the collector's worker processes) plus the reaped ones the main
        process waited for (its children_user/children_system), so a worker that ends mid-run keeps
        its CPU; one that appears or disappears while we look is skipped (psutil.NoSuchProcess)."""
        main = psutil.Process(self.proc.pid)
        t = main.cpu_times()
        children = t.children_user + t.children_system
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in main.children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):
                    c = child.cpu_times()
                    children += c.user + c.system
        return t.user + t.system, children

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._stderr.close()
        return self.proc.returncode


# ---------------------------------------------------------------------------------- senders


class ConnectionClosed(Exception):
    """The server closed the keep-alive connection before a full response arrived."""


class KeepAlive:
    """A minimal HTTP/1.1 client on one keep-alive TCP connection (TCP_NODELAY), for the load
    generator only: a request is one `sendall` of request line + headers + body; the answer's status
    line and headers are parsed, its body read fully by Content-Length or `Transfer-Encoding:
    chunked` (or to the close, when the server sends neither). httpx cost ~1.1 ms of sender CPU per
    request; this costs a small fraction of that, so the senders leave the cores to the serve."""

    def __init__(self, host: str, port: int, timeout: float = 60.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.sock: socket.socket | None = None
        self.buf = bytearray()
        self.reconnects = 0

    def connect(self) -> None:
        self.close()
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.buf.clear()

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None

    def request(self, method: str, path: str, body: bytes = b"", headers: bytes = b"") -> tuple[int, bytes]:
        """(status, body). `headers` are extra `Name: value\\r\\n` lines. Raises ConnectionClosed (the
        connection is closed then; the next request reconnects) or OSError."""
        if self.sock is None:
            self.connect()
            self.reconnects += 1
        sock = self.sock
        assert sock is not None
        head = b"%s %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Length: %d\r\n%s\r\n" % (
            method.encode(),
            path.encode(),
            self.host.encode(),
            self.port,
            len(body),
            headers,
        )
        try:
            sock.sendall(head + body)
            status, fields = self._head()
            if "transfer-encoding" in fields and "chunked" in fields["transfer-encoding"].lower():
                payload = self._chunked()
            elif "content-length" in fields:
                payload = self._exactly(int(fields["content-length"]))
            elif status in (204, 304) or 100 <= status < 200 or method == "HEAD":
                payload = b""
            else:
                payload = self._to_close()
        except BaseException:
            self.close()
            raise
        if "close" in fields.get("connection", "").lower():
            self.close()
        return status, payload

    def _fill(self) -> None:
        assert self.sock is not None
        chunk = self.sock.recv(262144)
        if not chunk:
            raise ConnectionClosed("the server closed the connection")
        self.buf += chunk

    def _line(self) -> bytes:
        while (i := self.buf.find(b"\r\n")) < 0:
            self._fill()
        line = bytes(self.buf[:i])
        del self.buf[: i + 2]
        return line

    def _head(self) -> tuple[int, dict[str, str]]:
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            self._fill()
        lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        del self.buf[: end + 4]
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise ConnectionClosed(f"not an HTTP/1.x status line: {lines[0][:100]!r}")
        fields: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        status = int(parts[1])
        if 100 <= status < 200 and status != 101:  # an interim answer: the real one follows
            return self._head()
        return status, fields

    def _exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def _chunked(self) -> bytes:
        out = bytearray()
        while True:
            size = int(self._line().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self._line():  # trailers, up to the empty line
                    pass
                return bytes(out)
            out += self._exactly(size)
            if self._exactly(2) != b"\r\n":
                raise ConnectionClosed("a chunk did not end in CRLF")

    def _to_close(self) -> bytes:
        assert self.sock is not None
        while chunk := self.sock.recv(262144):
            self.buf += chunk
        out = bytes(self.buf)
        self.buf.clear()
        self.close()
        return out


class StdlibConnection:
    """The same interface on `http.client.HTTPConnection` (measured against KeepAlive: --client)."""

    def __init__(self, host: str, port: int, timeout: float = 60.0) -> None:
        import http.client

        self._http = http.client
        self.host, self.port, self.timeout = host, port, timeout
        self.conn: Any = None
        self.reconnects = 0
        self._headers: dict[bytes, dict[str, str]] = {}

    def connect(self) -> None:
        self.close()
        self.conn = self._http.HTTPConnection(self.host, self.port, timeout=self.timeout)
        self.conn.connect()
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method: str, path: str, body: bytes = b"", headers: bytes = b"") -> tuple[int, bytes]:
        if self.conn is None:
            self.connect()
            self.reconnects += 1
        hdrs = self._headers.get(headers)
        if hdrs is None:
            lines = (ln.partition(":") for ln in headers.decode().split("\r\n") if ln)
            hdrs = self._headers[headers] = {k.strip(): v.strip() for k, _, v in lines}
        try:
            self.conn.request(method, path, body=body, headers=hdrs)
            response = self.conn.getresponse()
            payload = response.read()
        except (self._http.HTTPException, OSError) as exc:
            self.close()
            if isinstance(exc, self._http.RemoteDisconnected | self._http.IncompleteRead):
                raise ConnectionClosed(str(exc)) from exc
            raise
        if response.will_close:
            self.close()
        return response.status, payload


CLIENTS: dict[str, Any] = {"raw": KeepAlive, "http.client": StdlibConnection}


def _sender(
    index: int,
    url: str,
    batch: int,
    seconds: float,
    gzipped: bool,
    barrier: Any,
    results: Any,
    client: str = "raw",
) -> None:
    batches = Batches(index, batch)
    headers = b"Content-Type: application/json\r\n"
    if gzipped:
        headers += b"Content-Encoding: gzip\r\n"
    host, port = url.removeprefix("http://").rsplit(":", 1)
    conn = CLIENTS[client](host, int(port))
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors: list[str] = []
    sent_bytes = raw_bytes = 0
    conn.connect()  # open the keep-alive connection before the clock
    status, _ = conn.request("GET", "/health")
    if status != 200:
        errors.append(f"HTTP {status} from /health before the run")
    barrier.wait()
    cpu0 = time.process_time()
    started = time.time()
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        body = batches.body()
        raw_bytes += len(body)
        if gzipped:
            body = gzip.compress(body, compresslevel=1)
        sent_bytes += len(body)
        t0 = time.perf_counter()
        try:
            status, answer = conn.request("POST", "/batch/", body, headers)
        except (ConnectionClosed, OSError) as exc:  # counted; the next request reconnects
            statuses["error"] = statuses.get("error", 0) + 1
            if len(errors) < 3:
                errors.append(f"{type(exc).__name__}: {exc}")
            continue
        latencies.append(time.perf_counter() - t0)
        code = str(status)
        statuses[code] = statuses.get(code, 0) + 1
        if status != 200 and len(errors) < 3:
            errors.append(f"HTTP {code}: {answer[:200].decode(errors='replace')}")
    ended = time.time()
    cpu = time.process_time() - cpu0
    conn.close()
    results.put(
        {
            "sender": index,
            "started": started,
            "ended": ended,
            "cpu_seconds": cpu,
            "latencies": latencies,
            "statuses": statuses,
            "errors": errors,
            "sent_bytes": sent_bytes,
            "raw_bytes": raw_bytes,
            "reconnects": conn.reconnects,
        }
    )


def throughput(
    tmp: Path,
    label: str,
    senders: int,
    batch: int,
    seconds: float,
    gzipped: bool,
    probe: bool = False,
    serve_args: list[str] | None = None,
    client: str = "raw",
) -> dict[str, Any]:
    import duckdb

    db = tmp / f"collector-{label}.duckdb"
    probe_file = tmp / f"probe-{label}.json" if probe else None
    log(f"collector {label}: {senders} senders x {batch}-event batches for {seconds:g} s")
    # The probe times stages inside the serve process: no collector worker processes there.
    env = {"TELEMETRY_MCP_COLLECTOR_WORKERS": "0"} if probe else {}
    serve = Serve(db, tmp / f"serve-{label}.stderr", probe_file, serve_args, env)
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(senders + 1)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_sender, args=(i, serve.url, batch, seconds, gzipped, barrier, results, client))
        for i in range(senders)
    ]
    try:
        for p in procs:
            p.start()
        barrier.wait(timeout=120)
        (main0, kids0), sys0 = serve.cpu_seconds(), psutil.cpu_times()
        wall0 = time.time()
        got = [results.get(timeout=seconds + 120) for _ in procs]
        wall1 = time.time()
        main1, kids1 = serve.cpu_seconds()
        sys1 = psutil.cpu_times()
        serve_main_cpu, serve_kids_cpu = main1 - main0, kids1 - kids0
        serve_cpu = serve_main_cpu + serve_kids_cpu
        for p in procs:
            p.join(timeout=30)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        code = serve.stop()
    started = min(g["started"] for g in got)
    ended = max(g["ended"] for g in got)
    wall = ended - started
    statuses: dict[str, int] = {}
    for g in got:
        for k, v in g["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
    lat = [x for g in got for x in g["latencies"]]
    ok = statuses.get("200", 0)
    acknowledged = ok * batch
    with duckdb.connect(str(db), read_only=True) as con:
        stored, distinct = con.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM events"
        ).fetchone() or (0, 0)
    probe_data = (
        json.loads(probe_file.read_text()) if probe_file is not None and probe_file.exists() else None
    )
    sender_cpu = sum(g["cpu_seconds"] for g in got)
    requests = sum(statuses.values())
    span = wall1 - wall0
    busy = (sys1.user + sys1.system + sys1.nice) - (sys0.user + sys0.system + sys0.nice)
    result = {
        "label": label,
        "gzip": gzipped,
        "senders": senders,
        "batch": batch,
        "seconds": seconds,
        "wall_seconds": round(wall, 3),
        "requests": requests,
        "statuses": statuses,
        "acknowledged_events": acknowledged,
        "events_per_s": round(acknowledged / wall, 1) if wall else None,
        "requests_per_s": round(ok / wall, 1) if wall else None,
        "latency_ms": _pcts(lat),
        "stored_events": stored,
        "stored_distinct_ids": distinct,
        "lost": acknowledged - stored,
        "no_loss": stored == acknowledged and distinct == stored,
        "serve_exit": code,
        "serve_cpu_seconds": round(serve_cpu, 2),
        "serve_cpu_cores": round(serve_cpu / span, 2),
        "serve_main_cpu_seconds": round(serve_main_cpu, 2),
        "serve_main_cpu_cores": round(serve_main_cpu / span, 2),
        "serve_children_cpu_seconds": round(serve_kids_cpu, 2),
        "serve_children_cpu_cores": round(serve_kids_cpu / span, 2),
        "senders_cpu_seconds": round(sender_cpu, 2),
        "senders_cpu_cores": round(sender_cpu / wall, 2) if wall else None,
        "senders_cpu_ms_per_request": round(1000 * sender_cpu / requests, 3) if requests else None,
        "sender_client": client,
        "sender_reconnects": sum(g["reconnects"] for g in got),
        "machine_busy_cores": round(busy / span, 2),
        "other_processes_cores": round((busy - serve_cpu - sender_cpu) / span, 2),
        "body_bytes_per_request": round(sum(g["sent_bytes"] for g in got) / max(1, requests)),
        "raw_bytes_per_request": round(sum(g["raw_bytes"] for g in got) / max(1, requests)),
        "errors": [e for g in got for e in g["errors"]][:5],
        "argv": serve.argv[1:],
        "serve_env": serve.env,
    }
    if probe_data is not None:
        result["stages"] = probe_data
    _remove_db(db)
    log(
        f"  {result['events_per_s']:,.0f} events/s, p50 {result['latency_ms'].get('p50')} ms, "
        f"stored {stored:,} of {acknowledged:,} acknowledged"
    )
    return result


def floor(events: int, batches: list[int]) -> list[dict[str, Any]]:
    """The same events straight into a plain DuckDB file table: Arrow table, INSERT … SELECT, commit."""
    import duckdb
    import pyarrow as pa

    out = []
    with tempfile.TemporaryDirectory(prefix="floor-") as d:
        for size in batches:
            gen = Batches(99, size)
            chunks = [pa.Table.from_pylist(gen.rows(size)) for _ in range(max(1, events // size))]
            con = duckdb.connect(str(Path(d) / f"floor-{size}.duckdb"))
            con.execute(
                "CREATE TABLE events (event_id VARCHAR, ts TIMESTAMP, event_type VARCHAR, component VARCHAR, "
                "user_id VARCHAR, session_id VARCHAR, duration_ms DOUBLE, framework VARCHAR, os VARCHAR, "
                "page VARCHAR, properties JSON)"
            )
            t0 = time.perf_counter()
            for chunk in chunks:
                con.register("batch", chunk)
                con.execute("BEGIN; INSERT INTO events SELECT * FROM batch; COMMIT")
                con.unregister("batch")
            seconds = time.perf_counter() - t0
            n = sum(c.num_rows for c in chunks)
            con.close()
            out.append(
                {
                    "batch": size,
                    "events": n,
                    "seconds": round(seconds, 3),
                    "events_per_s": round(n / seconds, 1),
                }
            )
            log(f"floor: plain DuckDB, batches of {size}: {n / seconds:,.0f} events/s")
    return out


# ---------------------------------------------------------------------------------- bridge


class HttpMcp:
    """Raw JSON-RPC over Streamable HTTP with one keep-alive connection (what the bridge itself sends)."""

    def __init__(self, url: str) -> None:
        import httpx

        transport = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        self.client = httpx.Client(transport=transport, timeout=60.0, trust_env=False)
        self.url = f"{url}/mcp"
        self.headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
        self._id = 0
        self.last_bytes = 0
        init = self.request(
            "initialize",
            {
                "protocolVersion": PROTOCOL,
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "1"},
            },
        )
        self.headers["mcp-protocol-version"] = init[1]["result"]["protocolVersion"]
        self.client.post(
            self.url, content=b'{"jsonrpc":"2.0","method":"notifications/initialized"}', headers=self.headers
        )

    def request(self, method: str, params: dict[str, Any] | None = None) -> tuple[float, dict[str, Any]]:
        self._id += 1
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": self._id, "method": method}
        if params is not None:
            msg["params"] = params
        body = json.dumps(msg).encode()
        t0 = time.perf_counter()
        response = self.client.post(self.url, content=body, headers=self.headers)
        raw = response.read()
        elapsed = time.perf_counter() - t0
        if "mcp-session-id" in response.headers:
            self.headers["mcp-session-id"] = response.headers["mcp-session-id"]
        text = raw.decode()
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            data = [ln[5:].strip() for ln in text.splitlines() if ln.startswith("data:")]
            text = data[-1]
        message = json.loads(text)
        self.last_bytes = len(raw)
        if "error" in message or message.get("result", {}).get("isError"):
            raise RuntimeError(f"{method} failed over HTTP: {text[:300]}")
        return elapsed, message

    def close(self) -> None:
        self.client.close()


CALLS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("tools/list", "tools/list", {}),
    ("get_realtime_stats", "tools/call", {"name": "get_realtime_stats", "arguments": {"window": "1h"}}),
    ("ping", "ping", None),
]


def _stdio_call(peer: StdioPeer, method: str, params: dict[str, Any] | None) -> float:
    answer = peer.request(method, params, timeout=60)
    if answer.is_error:
        raise RuntimeError(f"{method} failed over stdio: {answer.error_text[:300]}")
    return answer.seconds


def bridge(tmp: Path, calls: int, warmup: int = 5) -> dict[str, Any]:
    import httpx

    small = tmp / "bridge-serve.duckdb"
    own = tmp / "bridge-own.duckdb"
    serve = Serve(small, tmp / "bridge-serve.stderr")
    seed = Batches(7, 100)
    try:
        for _ in range(10):  # 1,000 events, so get_realtime_stats has something to count
            r = httpx.post(
                f"{serve.url}/batch/", content=seed.body(), headers={"content-type": "application/json"}
            )
            r.raise_for_status()
        http = HttpMcp(serve.url)
        env = server_env()
        cmd = [sys.executable, "-m", "telemetry_mcp"]
        with (
            StdioPeer([*cmd, "--db", str(small)], env, tmp / "bridge-stdio.stderr") as bridged,
            StdioPeer([*cmd, "--db", str(own)], env, tmp / "bridge-own.stderr") as owner,
        ):
            bridged.initialize()
            owner.initialize()
            events = [json.loads(seed.body_one()) for _ in range(1000)]
            rows = [
                {
                    "event_id": e["uuid"],
                    "event_type": e["event"],
                    "user_id": e["distinct_id"],
                    "component": e["properties"]["component"],
                    "duration_ms": e["properties"]["duration_ms"],
                }
                for e in events
            ]
            _stdio_call(owner, "tools/call", {"name": "ingest_events", "arguments": {"events": rows}})
            paths = {
                "a_http_direct": lambda m, p: http.request(m, p)[0],
                "b_stdio_bridged_to_serve": lambda m, p: _stdio_call(bridged, m, p),
                "c_stdio_owning_store": lambda m, p: _stdio_call(owner, m, p),
            }
            answer_bytes = {}
            for name, method, params in CALLS:
                http.request(method, params)
                answer_bytes[name] = http.last_bytes
            samples: dict[str, dict[str, list[float]]] = {k: {c[0]: [] for c in CALLS} for k in paths}
            for i in range(warmup + calls):
                for name, method, params in CALLS:
                    for path, fn in paths.items():
                        seconds = fn(method, params)
                        if i >= warmup:
                            samples[path][name].append(seconds)
            owner_code = owner.close()
            bridged_code = bridged.close()
        http.close()
    finally:
        serve.stop()
    result: dict[str, Any] = {
        "calls": calls,
        "warmup": warmup,
        "answer_bytes_http": answer_bytes,
        "paths": {},
        "added_b_over_a": {},
    }
    for path, per in samples.items():
        result["paths"][path] = {name: _pcts(v) for name, v in per.items()}
    for name, *_ in CALLS:
        a = result["paths"]["a_http_direct"][name]
        b = result["paths"]["b_stdio_bridged_to_serve"][name]
        result["added_b_over_a"][name] = {
            "median_ms": round(b["p50"] - a["p50"], 3),
            "p95_ms": round(b["p95"] - a["p95"], 3),
        }
    result["exit_codes"] = {"bridged": bridged_code, "owner": owner_code}
    return result


# ---------------------------------------------------------------------------------- probe


def probe_serve(out: Path, args: list[str]) -> int:
    """Run `telemetry-mcp <args>` with the collector's stages timed; totals go to `out` at exit."""
    import atexit
    import cProfile
    import importlib
    import io
    import pstats
    import threading

    import telemetry_mcp.service.collector.routes as routes
    from telemetry_mcp.cli import main
    from telemetry_mcp.store.db import Store
    from telemetry_mcp.store.ingest import Ingestor

    totals: dict[str, dict[str, float]] = {}
    lock = threading.Lock()

    main_clock = time.pthread_getcpuclockid(threading.main_thread().ident or 0)
    first: dict[str, float] = {}

    def timed(name: str, fn: Any) -> Any:
        def wrapper(*a: Any, **k: Any) -> Any:
            if not first:  # the first request: from here on the CPU counts (not start-up and imports)
                first.update(
                    process=time.process_time(), main=time.clock_gettime(main_clock), wall=time.perf_counter()
                )
            w0, c0 = time.perf_counter(), time.thread_time()
            try:
                return fn(*a, **k)
            finally:
                w, c = time.perf_counter() - w0, time.thread_time() - c0
                with lock:
                    t = totals.setdefault(name, {"calls": 0, "wall_s": 0.0, "cpu_s": 0.0})
                    t["calls"] += 1
                    t["wall_s"] += w
                    t["cpu_s"] += c

        return wrapper

    profiler = cProfile.Profile() if os.environ.get("TELEMETRY_BENCH_CPROFILE") else None
    posthog = routes.Collector.posthog

    async def profiled_posthog(self: Any, request: Any) -> Any:
        if profiler is not None and not first.get("profiling"):
            first["profiling"] = 1.0
            profiler.enable()  # in the event-loop thread, from the first collector request on
        return await posthog(self, request)

    routes.Collector.posthog = profiled_posthog  # type: ignore[method-assign]
    decode = timed("decode_body (worker thread)", routes.decode_body)
    mapper = timed("map_posthog (worker thread)", routes.map_posthog)
    # With collector workers in the code base, the serve's thread path (collector_workers=0) calls
    # them through service/workers.py (do_job): time them there too, under the same names.
    for module_name in ("telemetry_mcp.service.collector.routes", "telemetry_mcp.service.workers"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        if hasattr(module, "decode_body"):
            module.decode_body = decode
        if hasattr(module, "map_posthog"):
            module.map_posthog = mapper
    Ingestor.prepare = timed("Ingestor.prepare: validation + privacy (worker thread)", Ingestor.prepare)  # type: ignore[method-assign]
    Ingestor.commit_group = timed("Ingestor.commit_group (committer thread)", Ingestor.commit_group)  # type: ignore[method-assign]
    Ingestor.commit = timed("  Ingestor.commit, a group of one (inside commit_group)", Ingestor.commit)  # type: ignore[method-assign]
    Ingestor._write = timed("  Ingestor._write: DuckDB transaction (inside commit)", Ingestor._write)  # type: ignore[method-assign]
    Ingestor._insert_new = timed(  # type: ignore[method-assign]
        "    Ingestor._insert_new: INSERT … RETURNING + dedupe probe (inside _write)", Ingestor._insert_new
    )

    class TimedCursor:
        """A DuckDB connection whose execute() calls are timed by statement (the GIL is released there)."""

        def __init__(self, cur: Any) -> None:
            self._cur = cur

        def execute(self, sql: str, *a: Any, **k: Any) -> Any:
            words = " ".join(sql.split()[:3])
            label = "INSERT INTO events" if words.startswith("INSERT INTO events") else words[:40]
            return timed(f"      cursor.execute {label}", self._cur.execute)(sql, *a, **k)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._cur, name)

    cursor = timed("    Store.cursor + SET (inside _write and queries)", Store.cursor)
    Store.cursor = lambda self: TimedCursor(cursor(self))  # type: ignore[method-assign]
    Store.add_to_catalog = timed("    Store.add_to_catalog (inside _write)", Store.add_to_catalog)  # type: ignore[method-assign]

    def dump() -> None:
        stream = io.StringIO()
        if profiler is not None:
            profiler.disable()
            pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(30)
        data = {
            "seconds_from_first_request": round(time.perf_counter() - first.get("wall", 0.0), 3),
            "process_cpu_s": round(time.process_time() - first.get("process", 0.0), 3),
            "main_thread_cpu_s": round(time.thread_time() - first.get("main", 0.0), 3),
            "stages": {k: {kk: round(vv, 4) for kk, vv in v.items()} for k, v in totals.items()},
            "main_thread_cprofiled": profiler is not None,
            "main_thread_profile_top": stream.getvalue().splitlines()[:70],
        }
        out.write_text(json.dumps(data, indent=2))

    atexit.register(dump)
    return int(main(args) or 0)


# ---------------------------------------------------------------------------------- report


def _pcts(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    ms = [v * 1000 for v in values]
    return {
        "n": len(ms),
        "p50": round(quantile(ms, 0.5), 3),
        "p95": round(quantile(ms, 0.95), 3),
        "p99": round(quantile(ms, 0.99), 3),
        "max": round(max(ms), 3),
    }


def _remove_db(path: Path) -> None:
    for p in (path, path.with_name(path.name + ".wal")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def measure(
    quick: bool,
    tmp: Path,
    *,
    seconds: float | None = None,
    senders: int = 8,
    batch: int = 100,
    calls: int | None = None,
    stages: bool = False,
    serve_args: list[str] | None = None,
    client: str = "raw",
) -> dict[str, Any]:
    """Every figure of this file as one dict (run.py embeds it in its report). `serve_args` go to
    the throughput runs' `telemetry-mcp serve` (not the bridge's)."""
    secs = seconds if seconds is not None else (5.0 if quick else 60.0)
    extra = list(serve_args or [])
    r: dict[str, Any] = {
        "seconds": secs,
        "senders": senders,
        "batch": batch,
        "serve_args": extra,
        "sender_client": client,
        "runs": [],
    }
    for label, gz in (("json", False), ("gzip", True)):
        r["runs"].append(throughput(tmp, label, senders, batch, secs, gz, serve_args=extra, client=client))
    if stages:
        r["runs"].append(throughput(tmp, "json-stages", senders, batch, secs, False, True, extra, client))
    floor_events = 20_000 if quick else 200_000
    r["floor"] = floor(floor_events, [batch, 2_000])
    r["bridge"] = bridge(tmp, calls if calls is not None else (30 if quick else 200))
    return r


STAGE_ORDER = (
    "decode_body",
    "map_posthog",
    "Ingestor.prepare",
    "Ingestor.commit_group",
    "Ingestor.commit,",
    "Ingestor._write",
    "Store.cursor",
    "BEGIN",
    "Ingestor._stored_ids",
    "SELECT hash",
    "INSERT INTO events",
    "Store.add_to_catalog",
    "INSERT INTO catalog",
    "COMMIT",
)


def _stage_rank(label: str) -> tuple[int, str]:
    for i, key in enumerate(STAGE_ORDER):
        if key in label:
            return i, label
    return len(STAGE_ORDER), label


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def render_section(c: dict[str, Any], level: str = "##") -> str:
    """The Markdown of one `measure()` result."""
    lines = [
        f"{level} Collector throughput (PostHog /batch/, {c['senders']} sender processes, "
        f"{c['batch']} events per request, {c['seconds']:g} s per run)",
        "",
    ]
    if c.get("serve_args"):
        lines += [f"Serve arguments: `{shlex.join(c['serve_args'])}`.", ""]
    rows = []
    for run in c["runs"]:
        lat = run["latency_ms"]
        met = "met" if (run["events_per_s"] or 0) >= TARGET_EVENTS_PER_S else "**MISSED**"
        rows.append(
            [
                run["label"],
                f"{run['events_per_s']:,.0f} ({met})",
                f"{lat.get('p50')} / {lat.get('p95')} / {lat.get('p99')}",
                f"{run['acknowledged_events']:,}",
                f"{run['stored_events']:,}",
                "yes" if run["no_loss"] else f"**NO: {run['lost']:,} lost**",
                ", ".join(f"{k}: {v:,}" for k, v in sorted(run["statuses"].items())),
                f"{run['serve_cpu_cores']} ({run.get('serve_main_cpu_cores', '?')} + "
                f"{run.get('serve_children_cpu_cores', '?')}) / {run['senders_cpu_cores']} / "
                f"{run['other_processes_cores']}",
                run.get("senders_cpu_ms_per_request", ""),
                f"{run['body_bytes_per_request']:,}",
            ]
        )
    lines += _table(
        [
            "body",
            f"events/s (target ≥ {TARGET_EVENTS_PER_S:,})",
            "latency p50 / p95 / p99 ms",
            "acknowledged",
            "stored",
            "stored = acknowledged",
            "answers",
            "CPU cores: serve (main + workers) / senders / other",
            "sender CPU ms/request",
            "bytes/request",
        ],
        rows,
    )
    lines += [
        "",
        "Floor, the same events straight into plain DuckDB (Arrow table → INSERT … SELECT, one "
        "commit per batch, one thread, no validation or privacy):",
        "",
    ]
    lines += _table(
        ["batch", "events", "events/s"],
        [[f["batch"], f"{f['events']:,}", f"{f['events_per_s']:,.0f}"] for f in c["floor"]],
    )
    for run in c["runs"]:
        if "stages" in run:
            st = run["stages"]
            lines += [
                "",
                f"Where the serve's time goes ({run['label']} run, {run['events_per_s']:,.0f} events/s under the probe; "
                f"process CPU {st['process_cpu_s']} s; serve environment "
                f"{' '.join(f'{k}={v}' for k, v in run.get('serve_env', {}).items()) or 'default'}):",
                "",
            ]
            order = sorted(st["stages"].items(), key=lambda kv: _stage_rank(kv[0]))
            srows = [[k, v["calls"], round(v["wall_s"], 2), round(v["cpu_s"], 2)] for k, v in order]
            top = sum(v["cpu_s"] for k, v in st["stages"].items() if not k.startswith(" "))
            profiled = " (under cProfile)" if st.get("main_thread_cprofiled") else ""
            srows.append(
                [
                    f"main thread: event loop, HTTP (uvicorn), ASGI, answers{profiled}",
                    "",
                    "",
                    st["main_thread_cpu_s"],
                ]
            )
            rest = round(st["process_cpu_s"] - st["main_thread_cpu_s"] - top, 2)
            srows.append(["rest: DuckDB's own threads, thread hand-offs, outside the timers", "", "", rest])
            lines += _table(["stage", "calls", "wall s", "CPU s"], srows)
    b = c["bridge"]
    lines += [
        "",
        f"{level} Bridge latency ({b['calls']} calls each after {b['warmup']} warm-up, interleaved)",
        "",
    ]
    rows = []
    for path, per in b["paths"].items():
        for name, s in per.items():
            rows.append([path, name, b["answer_bytes_http"].get(name, ""), s["p50"], s["p95"], s["p99"]])
    lines += _table(["path", "call", "answer bytes", "median ms", "p95 ms", "p99 ms"], rows)
    lines += ["", "Added by the stdio bridge, (b) − (a):", ""]
    lines += _table(
        ["call", "median ms", "p95 ms", f"target ≤ {TARGET_BRIDGE_ADDED_MS} ms"],
        [
            [
                k,
                v["median_ms"],
                v["p95_ms"],
                "met" if v["median_ms"] <= TARGET_BRIDGE_ADDED_MS else "**MISSED**",
            ]
            for k, v in b["added_b_over_a"].items()
        ],
    )
    lines.append("")
    return "\n".join(lines)


@contextlib.contextmanager
def _scratch(keep: bool) -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="bench-collector-"))
    try:
        yield d
    finally:
        if not keep:
            import shutil

            shutil.rmtree(d, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--probe-serve"]:
        rest = argv[3:] if argv[2:3] == ["--"] else argv[2:]
        return probe_serve(Path(argv[1]), rest)
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="5 s runs, 30 bridge calls")
    parser.add_argument("--seconds", type=float, help="per throughput run (default 60; quick 5)")
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument(
        "--calls", type=int, help="timed calls per bridge path and call (default 200; quick 30)"
    )
    parser.add_argument(
        "--stages",
        action="store_true",
        default=bool(os.environ.get("TELEMETRY_BENCH_STAGES")),
        help="add a run with the serve's stages timed and its event loop profiled",
    )
    parser.add_argument(
        "--serve-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="passed to the throughput runs' `telemetry-mcp serve` (repeatable; recorded in the "
        "report); write --serve-arg=--flag=value for flags",
    )
    parser.add_argument(
        "--client",
        choices=sorted(CLIENTS),
        default="raw",
        help="the senders' HTTP client (default raw: KeepAlive on a socket)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", help="report name (default collector, or collector-quick)")
    parser.add_argument("--keep-tmp", action="store_true")
    ns = parser.parse_args(argv)
    name = ns.name or ("collector-quick" if ns.quick else "collector")
    report: dict[str, Any] = {
        "name": name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python bench/collector.py " + " ".join(shlex.quote(a) for a in argv),
        "machine": machine_facts(),
    }
    with _scratch(ns.keep_tmp) as tmp:
        report["collector"] = measure(
            ns.quick,
            tmp,
            seconds=ns.seconds,
            senders=ns.senders,
            batch=ns.batch,
            calls=ns.calls,
            stages=ns.stages,
            serve_args=ns.serve_arg,
            client=ns.client,
        )
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    m = report["machine"]
    md = [
        f"# telemetry-mcp benchmark: {name}",
        "",
        f"{report['created']} · `{report['command']}` · commit {m.get('git_commit')}"
        f"{' (uncommitted changes)' if m.get('git_dirty') else ''}",
        "",
        f"Machine: {m['cpu_model']}, {m['logical_cores']} logical cores, {m['memory_gib']} GiB; {m['os']}; "
        f"Python {m['python']}, DuckDB {m['duckdb']}, mcp {m['mcp']}. Load average at start "
        f"{m.get('load_average_at_start')}, at end {m.get('load_average_at_end')}. Senders and the serve share "
        "the same cores.",
        "",
        render_section(report["collector"]),
    ]
    markdown = "\n".join(md)
    ns.out.mkdir(parents=True, exist_ok=True)
    dump_json(ns.out / f"{name}.json", report)
    (ns.out / f"{name}.md").write_text(markdown, encoding="utf-8")
    print(markdown)
    ok = all(r["no_loss"] for r in report["collector"]["runs"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
